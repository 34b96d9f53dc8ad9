#include "engine/security/secret_box.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "engine/security/encoding.h"
#include "engine/security/hmac.h"
#include "engine/security/internal/openssl.h"
#include "engine/security/random.h"

namespace herald::security {

namespace {

constexpr std::string_view kExpectedKeyFormat =
    "64 hex characters or the base64 encoding of 32 bytes (create one with `openssl rand -hex 32`)";
// Key files are a few dozen bytes; anything much larger is not a key file.
constexpr off_t kMaxKeyFileSize = 4096;

const EVP_CIPHER* aes_256_gcm() {
  static EVP_CIPHER* cipher = [] {
    EVP_CIPHER* fetched = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
    if (fetched == nullptr) internal::throw_crypto_failure("EVP_CIPHER_fetch(AES-256-GCM)");
    return fetched;
  }();
  return cipher;
}

const unsigned char* bytes_of(std::string_view text) {
  return reinterpret_cast<const unsigned char*>(text.data());
}

std::string errno_text(int error) {
  return std::generic_category().message(error);
}

std::string_view trim_whitespace(std::string_view text) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

// Closes a file descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now, reporting the error (close can report a failed write-back).
  int close() {
    int result = ::close(fd_);
    fd_ = -1;
    return result;
  }

 private:
  int fd_;
};

Status write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t written = ::write(fd, data.data(), data.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return make_error(ErrorCode::unavailable,
                        "cannot write key file " + path + ": " + errno_text(errno));
    }
    data.remove_prefix(static_cast<size_t>(written));
  }
  return ok_status();
}

// Writes `content` to a new file at `path` (O_EXCL: fails if it exists) with mode 0600, synced.
Status write_new_file(const std::string& path, std::string_view content) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    int error = errno;
    if (error == EEXIST) {
      return make_error(ErrorCode::already_exists, "key file " + path + " already exists");
    }
    return make_error(ErrorCode::failed_precondition,
                      "cannot create key file " + path + ": " + errno_text(error));
  }
  Status written = write_all(fd.get(), content, path);
  // The umask can only remove bits from 0600, but a umask such as 0277 would leave 0400 and
  // surprise an operator who later rewrites the file; fchmod sets the mode the docs promise.
  if (written.ok() &&
      (::fchmod(fd.get(), 0600) != 0 || ::fsync(fd.get()) != 0 || fd.close() != 0)) {
    written = make_error(ErrorCode::unavailable,
                         "cannot write key file " + path + ": " + errno_text(errno));
  }
  if (!written.ok()) ::unlink(path.c_str());
  return written;
}

void sync_directory(const std::filesystem::path& directory) {
  // Best effort: makes the new directory entry durable. Some file systems refuse fsync on a
  // directory; the key file itself is already synced.
  int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

// --- MasterKey ---------------------------------------------------------------------------------

MasterKey::~MasterKey() {
  OPENSSL_cleanse(bytes_.data(), bytes_.size());
}

Result<MasterKey> MasterKey::from_bytes(std::string_view raw) {
  if (raw.size() != kSize) {
    return make_error(ErrorCode::invalid_argument,
                      "a master key must be exactly 32 bytes, got " + std::to_string(raw.size()));
  }
  MasterKey key;
  std::memcpy(key.bytes_.data(), raw.data(), kSize);
  return key;
}

Result<MasterKey> MasterKey::parse(std::string_view text) {
  text = trim_whitespace(text);
  Result<std::string> raw = make_error(ErrorCode::invalid_argument, "");
  if (text.size() == 2 * kSize) {
    raw = hex_decode(text);
  } else if (text.size() == 44) {  // base64 of 32 bytes: 43 characters and one '='
    raw = base64_decode(text);
  }
  if (!raw.ok() || raw->size() != kSize) {
    // The length helps tell a truncated paste from a wrong format; the content is never shown.
    return make_error(ErrorCode::invalid_argument,
                      "a master key must be " + std::string(kExpectedKeyFormat) + "; got " +
                          std::to_string(text.size()) + " characters that are not");
  }
  auto key = from_bytes(*raw);
  internal::cleanse(*raw);
  return key;
}

MasterKey MasterKey::generate() {
  std::string raw = random_bytes(kSize);
  MasterKey key;
  std::memcpy(key.bytes_.data(), raw.data(), kSize);
  internal::cleanse(raw);
  return key;
}

std::string MasterKey::to_hex() const {
  return hex_encode(bytes());
}

std::string MasterKey::fingerprint() const {
  return hmac_sha256_hex(bytes(), "herald master key fingerprint v1").substr(0, 16);
}

std::string MasterKey::derive(std::string_view label) const {
  return hmac_sha256(bytes(), label);
}

bool MasterKey::operator==(const MasterKey& other) const {
  return CRYPTO_memcmp(bytes_.data(), other.bytes_.data(), kSize) == 0;
}

// --- Key files and the environment -------------------------------------------------------------

Result<MasterKey> load_master_key_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  // Open first and inspect the open file (fstat), so the mode checked is the mode of the file
  // actually read, even if the path is swapped in between. Symlinks are followed on purpose:
  // mounted secrets (Kubernetes, Docker) are usually symlinks to the real file.
  // O_NONBLOCK: a FIFO at the path would otherwise block open() until a writer appears, before
  // the regular-file check could refuse it. It changes nothing for regular files.
  Fd fd(::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) {
    int error = errno;
    ErrorCode code = error == ENOENT ? ErrorCode::not_found : ErrorCode::failed_precondition;
    return make_error(code, "cannot open master key file " + name + ": " + errno_text(error));
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) {
    return make_error(ErrorCode::failed_precondition,
                      "cannot stat master key file " + name + ": " + errno_text(errno));
  }
  if (!S_ISREG(info.st_mode)) {
    return make_error(ErrorCode::failed_precondition,
                      "master key file " + name + " is not a regular file");
  }
  if ((info.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(info.st_mode & 07777));
    return make_error(ErrorCode::permission_denied,
                      "master key file " + name + " has mode " + mode +
                          ", which lets other users read it; run `chmod 600 " + name +
                          "` (only the owner may have access)");
  }
  if (info.st_size > kMaxKeyFileSize) {
    return make_error(ErrorCode::invalid_argument,
                      "master key file " + name + " is too large to be a key file; it must hold " +
                          std::string(kExpectedKeyFormat));
  }
  std::string content(static_cast<size_t>(kMaxKeyFileSize) + 1, '\0');
  size_t total = 0;
  while (total < content.size()) {
    ssize_t got = ::read(fd.get(), content.data() + total, content.size() - total);
    if (got < 0) {
      if (errno == EINTR) continue;
      int error = errno;
      internal::cleanse(content);
      return make_error(ErrorCode::failed_precondition,
                        "cannot read master key file " + name + ": " + errno_text(error));
    }
    if (got == 0) break;
    total += static_cast<size_t>(got);
  }
  auto key = MasterKey::parse(std::string_view(content).substr(0, total));
  internal::cleanse(content);
  if (!key.ok()) {
    return make_error(ErrorCode::invalid_argument, "master key file " + name + " must contain " +
                                                       std::string(kExpectedKeyFormat));
  }
  return key;
}

Result<MasterKey> load_master_key(const std::optional<std::filesystem::path>& key_file) {
  const std::string env_name(kMasterKeyEnv);
  if (const char* value = std::getenv(env_name.c_str()); value != nullptr && *value != '\0') {
    auto key = MasterKey::parse(value);
    if (!key.ok()) {
      return make_error(ErrorCode::invalid_argument,
                        env_name + " must be " + std::string(kExpectedKeyFormat) + "; got " +
                            std::to_string(trim_whitespace(value).size()) +
                            " characters that are not");
    }
    return key;
  }
  if (key_file) return load_master_key_file(*key_file);
  return make_error(ErrorCode::failed_precondition,
                    "no master key: set " + env_name + " to " + std::string(kExpectedKeyFormat) +
                        ", or use a key file (`herald init` creates one)");
}

Result<MasterKey> create_key_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  if (path.empty() || !path.has_filename()) {
    return make_error(ErrorCode::invalid_argument, "a key file path must name a file");
  }
  struct stat existing {};
  if (::lstat(name.c_str(), &existing) == 0) {
    return make_error(ErrorCode::already_exists,
                      "refusing to overwrite existing key file " + name +
                          ": it may be the only copy of the key that decrypts stored secrets");
  }
  std::filesystem::path directory = path.parent_path();
  if (directory.empty()) directory = ".";
  std::error_code ec;
  if (!std::filesystem::is_directory(directory, ec)) {
    return make_error(
        ErrorCode::failed_precondition,
        "cannot create key file " + name + ": directory " + directory.string() + " does not exist");
  }

  MasterKey key = MasterKey::generate();
  std::string content = key.to_hex() + "\n";
  const std::string temporary =
      (directory / ("." + path.filename().string() + ".tmp-" + random_hex(8))).string();
  Status written = write_new_file(temporary, content);
  if (!written.ok()) {
    internal::cleanse(content);
    return std::move(written).error();
  }
  // link() publishes the finished file under its name and fails with EEXIST instead of
  // replacing an existing one (rename() would replace it).
  if (::link(temporary.c_str(), name.c_str()) == 0) {
    ::unlink(temporary.c_str());
    internal::cleanse(content);
    sync_directory(directory);
    return key;
  }
  int error = errno;
  ::unlink(temporary.c_str());
  if (error == EEXIST) {
    internal::cleanse(content);
    return make_error(ErrorCode::already_exists,
                      "refusing to overwrite existing key file " + name +
                          ": it may be the only copy of the key that decrypts stored secrets");
  }
  if (error == EPERM || error == EOPNOTSUPP || error == EXDEV) {
    // A file system without hard links (some FUSE and network mounts): create the file in place
    // with O_EXCL, still refusing to overwrite, at the cost of atomicity of the content.
    Status direct = write_new_file(name, content);
    internal::cleanse(content);
    if (!direct.ok()) return std::move(direct).error();
    sync_directory(directory);
    return key;
  }
  internal::cleanse(content);
  return make_error(ErrorCode::failed_precondition,
                    "cannot create key file " + name + ": " + errno_text(error));
}

// --- SecretBox ---------------------------------------------------------------------------------

Result<std::string> SecretBox::encrypt(std::string_view plaintext,
                                       std::string_view associated_data) const {
  if (plaintext.size() > kMaxPlaintextSize) {
    return make_error(ErrorCode::invalid_argument,
                      "a secret value may be at most " + std::to_string(kMaxPlaintextSize) +
                          " bytes, got " + std::to_string(plaintext.size()));
  }
  if (associated_data.size() > kMaxAssociatedDataSize) {
    return make_error(
        ErrorCode::invalid_argument,
        "associated data may be at most " + std::to_string(kMaxAssociatedDataSize) + " bytes");
  }
  std::string sealed(kOverhead + plaintext.size(), '\0');
  auto* out = reinterpret_cast<unsigned char*>(sealed.data());
  out[0] = kVersion;
  std::string nonce = random_bytes(kNonceSize);
  std::memcpy(out + 1, nonce.data(), kNonceSize);

  internal::CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) internal::throw_crypto_failure("EVP_CIPHER_CTX_new");
  int length = 0;
  // The GCM default IV length is 12 bytes, which is kNonceSize.
  if (EVP_EncryptInit_ex2(ctx.get(), aes_256_gcm(), key_.bytes_.data(), out + 1, nullptr) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &length, out, 1) != 1 ||
      (!associated_data.empty() &&
       EVP_EncryptUpdate(ctx.get(), nullptr, &length, bytes_of(associated_data),
                         static_cast<int>(associated_data.size())) != 1)) {
    internal::throw_crypto_failure("AES-256-GCM encryption setup");
  }
  unsigned char* ciphertext = out + 1 + kNonceSize;
  int written = 0;
  if (!plaintext.empty()) {
    if (EVP_EncryptUpdate(ctx.get(), ciphertext, &length, bytes_of(plaintext),
                          static_cast<int>(plaintext.size())) != 1) {
      internal::throw_crypto_failure("AES-256-GCM encryption");
    }
    written = length;
  }
  if (EVP_EncryptFinal_ex(ctx.get(), ciphertext + written, &length) != 1) {
    internal::throw_crypto_failure("AES-256-GCM encryption");
  }
  written += length;
  if (static_cast<size_t>(written) != plaintext.size()) {
    internal::throw_crypto_failure("AES-256-GCM encryption (unexpected length)");
  }
  OSSL_PARAM get_tag[] = {
      OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, ciphertext + written, kTagSize),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_CIPHER_CTX_get_params(ctx.get(), get_tag) != 1) {
    internal::throw_crypto_failure("AES-256-GCM tag");
  }
  return sealed;
}

Result<std::string> SecretBox::decrypt(std::string_view sealed,
                                       std::string_view associated_data) const {
  if (sealed.size() < kOverhead) {
    return make_error(ErrorCode::invalid_argument,
                      "sealed secret is too short (" + std::to_string(sealed.size()) +
                          " bytes, at least " + std::to_string(kOverhead) + ")");
  }
  if (sealed.size() > kOverhead + kMaxPlaintextSize) {
    return make_error(ErrorCode::invalid_argument, "sealed secret is too large");
  }
  if (associated_data.size() > kMaxAssociatedDataSize) {
    return make_error(
        ErrorCode::invalid_argument,
        "associated data may be at most " + std::to_string(kMaxAssociatedDataSize) + " bytes");
  }
  const unsigned char* in = bytes_of(sealed);
  if (in[0] != kVersion) {
    return make_error(ErrorCode::invalid_argument,
                      "sealed secret has unknown format version " + std::to_string(in[0]) +
                          " (this Herald reads version " + std::to_string(kVersion) + ")");
  }
  const unsigned char* nonce = in + 1;
  const unsigned char* ciphertext = nonce + kNonceSize;
  size_t ciphertext_size = sealed.size() - kOverhead;
  // OSSL_PARAM wants a mutable pointer; the tag is copied so the input stays untouched.
  unsigned char tag[kTagSize];
  std::memcpy(tag, ciphertext + ciphertext_size, kTagSize);

  internal::CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) internal::throw_crypto_failure("EVP_CIPHER_CTX_new");
  int length = 0;
  if (EVP_DecryptInit_ex2(ctx.get(), aes_256_gcm(), key_.bytes_.data(), nonce, nullptr) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &length, in, 1) != 1 ||
      (!associated_data.empty() &&
       EVP_DecryptUpdate(ctx.get(), nullptr, &length, bytes_of(associated_data),
                         static_cast<int>(associated_data.size())) != 1)) {
    internal::throw_crypto_failure("AES-256-GCM decryption setup");
  }
  std::string plaintext(ciphertext_size, '\0');
  auto* out = reinterpret_cast<unsigned char*>(plaintext.data());
  int written = 0;
  if (ciphertext_size > 0) {
    if (EVP_DecryptUpdate(ctx.get(), out, &length, ciphertext, static_cast<int>(ciphertext_size)) !=
        1) {
      internal::cleanse(plaintext);
      internal::throw_crypto_failure("AES-256-GCM decryption");
    }
    written = length;
  }
  OSSL_PARAM set_tag[] = {
      OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, kTagSize),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_CIPHER_CTX_set_params(ctx.get(), set_tag) != 1) {
    internal::cleanse(plaintext);
    internal::throw_crypto_failure("AES-256-GCM tag");
  }
  if (EVP_DecryptFinal_ex(ctx.get(), out + written, &length) != 1) {
    // GCM decrypts before it authenticates: the buffer holds unauthenticated plaintext, which
    // must not outlive this call.
    internal::cleanse(plaintext);
    ERR_clear_error();
    return make_error(ErrorCode::permission_denied,
                      "secret could not be decrypted: the master key is not the one it was sealed "
                      "with, it was sealed for another workspace or name, or it was modified");
  }
  return plaintext;
}

Result<std::string> SecretBox::encrypt_to_base64(std::string_view plaintext,
                                                 std::string_view associated_data) const {
  auto sealed = encrypt(plaintext, associated_data);
  if (!sealed.ok()) return std::move(sealed).error();
  return base64_encode(*sealed);
}

Result<std::string> SecretBox::decrypt_from_base64(std::string_view text,
                                                   std::string_view associated_data) const {
  auto sealed = base64_decode(text);
  if (!sealed.ok()) {
    return make_error(ErrorCode::invalid_argument, "sealed secret is not valid base64");
  }
  return decrypt(*sealed, associated_data);
}

}  // namespace herald::security
