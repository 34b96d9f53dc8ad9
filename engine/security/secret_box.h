// SecretBox: encryption at rest for workspace secrets and platform tokens. Values are sealed with
// AES-256-GCM under one 32-byte master key that never enters the database: it comes from the
// HERALD_MASTER_KEY environment variable or a key file with mode 0600 that `herald init` creates.
// A database copied without the key yields nothing readable.
//
// Every value is sealed with "associated data" naming where it belongs (for example
// "<workspace-id>/<secret-name>"). The AAD is authenticated but not stored, so a ciphertext
// copied into another row, workspace or name fails to open instead of quietly handing one
// client's token to another.
//
// Sealed format, version 1 (binary; base64 of it as text for storage):
//   byte 0       format version (1); also authenticated, as the first byte of the AAD
//   bytes 1-12   random 96-bit nonce, fresh for every encryption
//   bytes 13..   ciphertext, as long as the plaintext
//   last 16      GCM authentication tag
// Random nonces are safe for far more encryptions than one master key will see (NIST SP
// 800-38D bounds them at 2^32 per key). The version byte leaves room for a later format with
// key ids for master-key rotation.
//
// Errors never contain key bytes, plaintext or the associated data: a malformed input is
// invalid_argument, and a value that fails authentication (modified, wrong key, wrong AAD) is
// permission_denied.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "engine/common/result.h"

namespace herald::security {

inline constexpr std::string_view kMasterKeyEnv = "HERALD_MASTER_KEY";

// A 256-bit key. Its bytes are wiped when it is destroyed; it has no stream output, so it cannot
// end up in a log line by accident.
class MasterKey {
 public:
  static constexpr size_t kSize = 32;

  // Exactly 32 raw bytes.
  static Result<MasterKey> from_bytes(std::string_view raw);
  // 64 hex characters, or standard base64 of 32 bytes (44 characters with padding). Leading and
  // trailing whitespace (a newline at the end of a file) is ignored. Anything else is
  // invalid_argument naming the expected formats.
  static Result<MasterKey> parse(std::string_view text);
  // A fresh key from the CSPRNG.
  static MasterKey generate();

  MasterKey(const MasterKey& other) = default;
  MasterKey& operator=(const MasterKey& other) = default;
  ~MasterKey();

  // The key as 64 lowercase hex characters, the format of key files and HERALD_MASTER_KEY.
  std::string to_hex() const;
  // 16 hex characters that identify the key without revealing it (an HMAC under the key of a
  // fixed label), so Herald can tell "this database was sealed with another key" apart from
  // corruption, and an operator can compare keys across machines.
  std::string fingerprint() const;

  // A key for another purpose (signing approval links): HMAC-SHA256(key, label), 32 raw bytes,
  // from which this key cannot be recovered.
  std::string derive(std::string_view label) const;

  // Constant time.
  bool operator==(const MasterKey& other) const;

 private:
  MasterKey() = default;
  std::string_view bytes() const {
    return {reinterpret_cast<const char*>(bytes_.data()), bytes_.size()};
  }

  std::array<unsigned char, kSize> bytes_{};
  friend class SecretBox;
};

// The key from a key file. The file holds the key in one of MasterKey::parse's formats (key files
// written by create_key_file hold hex and a newline). Refused, with the path in the message:
// a missing or unreadable file, anything but a regular file, and a file whose mode gives group or
// others any access (permission_denied: "run chmod 600 <path>"), since anyone who can read the
// key can read every secret.
Result<MasterKey> load_master_key_file(const std::filesystem::path& path);

// The master key for this process: HERALD_MASTER_KEY when it is set and not empty (it wins over
// the file, as environment settings override files everywhere in Herald's configuration), else
// `key_file` when given. A malformed variable is an error, not a reason to fall back to the file:
// silently using another key would make existing secrets unreadable. Neither available is
// failed_precondition saying how to provide one.
Result<MasterKey> load_master_key(
    const std::optional<std::filesystem::path>& key_file = std::nullopt);

// Creates a key file holding a new random key (hex and a newline) with mode 0600 and returns the
// key. Atomic: the key is written and synced to a temporary file created with O_CREAT|O_EXCL in
// the same directory, then linked to `path`, which fails if `path` exists; so a crash never
// leaves a half-written key file, and an existing file — possibly the only copy of the key that
// opens the stored secrets — is never overwritten (already_exists). The parent directory must
// exist.
Result<MasterKey> create_key_file(const std::filesystem::path& path);

class SecretBox {
 public:
  static constexpr uint8_t kVersion = 1;
  static constexpr size_t kNonceSize = 12;
  static constexpr size_t kTagSize = 16;
  static constexpr size_t kOverhead = 1 + kNonceSize + kTagSize;
  // Secrets are small; the cap keeps every length within OpenSSL's int-sized calls and turns an
  // accidental multi-gigabyte input into a clear error.
  static constexpr size_t kMaxPlaintextSize = 64 * 1024 * 1024;
  static constexpr size_t kMaxAssociatedDataSize = 64 * 1024;

  explicit SecretBox(MasterKey key) : key_(std::move(key)) {}

  // The sealed binary blob. Errors: invalid_argument for inputs over the caps.
  Result<std::string> encrypt(std::string_view plaintext, std::string_view associated_data) const;
  // The plaintext, given the same associated data the value was sealed with.
  Result<std::string> decrypt(std::string_view sealed, std::string_view associated_data) const;

  // The same with the blob as standard base64 text, the form stored in database columns.
  Result<std::string> encrypt_to_base64(std::string_view plaintext,
                                        std::string_view associated_data) const;
  Result<std::string> decrypt_from_base64(std::string_view text,
                                          std::string_view associated_data) const;

  std::string key_fingerprint() const { return key_.fingerprint(); }

 private:
  MasterKey key_;
};

}  // namespace herald::security
