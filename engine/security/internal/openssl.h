// Private to engine/security: small RAII wrappers over the OpenSSL handles the .cc files use, and
// how they report a failure of OpenSSL itself. Public headers never include this, so the rest of
// Herald does not compile against OpenSSL.
#pragma once

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace herald::security::internal {

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

struct MacCtxDeleter {
  void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }
};
using MacCtx = std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter>;

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

// The last OpenSSL error of this thread as text (and clears the queue), for messages about
// OpenSSL itself failing. Never contains key or plaintext bytes: OpenSSL does not put data in its
// error strings.
inline std::string take_openssl_error() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "no OpenSSL error recorded";
  char buffer[256];
  ERR_error_string_n(code, buffer, sizeof(buffer));
  return buffer;
}

// Hashing, MACs and the random generator fail only when memory is exhausted or the OpenSSL
// installation is broken — the same class of failure as std::bad_alloc — so those paths throw
// instead of making every caller handle a Result that never happens in practice. What must never
// happen is returning a predictable value, and throwing guarantees that.
[[noreturn]] inline void throw_crypto_failure(std::string_view what) {
  throw std::runtime_error("OpenSSL failure in " + std::string(what) + ": " + take_openssl_error());
}

// Wipes a std::string's bytes (not just its size) before it is released.
inline void cleanse(std::string& value) {
  if (!value.empty()) OPENSSL_cleanse(value.data(), value.size());
  value.clear();
}

}  // namespace herald::security::internal
