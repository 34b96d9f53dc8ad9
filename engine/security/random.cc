#include "engine/security/random.h"

#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <string_view>

#include "engine/security/encoding.h"
#include "engine/security/internal/openssl.h"

namespace herald::security {

std::string random_bytes(size_t count) {
  std::string out(count, '\0');
  size_t done = 0;
  // RAND_bytes takes an int; larger requests go in slices.
  while (done < count) {
    size_t slice = std::min<size_t>(count - done, INT_MAX);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data() + done), static_cast<int>(slice)) !=
        1) {
      internal::throw_crypto_failure("RAND_bytes");
    }
    done += slice;
  }
  return out;
}

std::string random_hex(size_t byte_count) {
  std::string bytes = random_bytes(byte_count);
  std::string hex = hex_encode(bytes);
  internal::cleanse(bytes);
  return hex;
}

std::string random_base64url(size_t byte_count) {
  std::string bytes = random_bytes(byte_count);
  std::string text = base64url_encode(bytes);
  internal::cleanse(bytes);
  return text;
}

std::string random_base62(size_t length) {
  static constexpr std::string_view kAlphabet =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  // Rejection sampling: bytes of 248 and above are discarded so that `byte % 62` is uniform
  // (248 = 4 * 62). A plain modulo would make the first eight characters more likely.
  static constexpr unsigned kLimit = 248;
  std::string out;
  out.reserve(length);
  while (out.size() < length) {
    // About 3% of bytes are rejected; ask for a little more than needed to usually finish in one
    // call.
    size_t missing = length - out.size();
    std::string pool = random_bytes(missing + missing / 16 + 4);
    for (unsigned char byte : pool) {
      if (byte >= kLimit) continue;
      out += kAlphabet[byte % kAlphabet.size()];
      if (out.size() == length) break;
    }
    internal::cleanse(pool);
  }
  return out;
}

std::string random_id() {
  return random_hex(16);
}

}  // namespace herald::security
