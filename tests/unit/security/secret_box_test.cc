// SecretBox and master keys: round trips, the documented sealed format checked with raw OpenSSL,
// every kind of tampering, wrong keys and associated data, nonce uniqueness, key parsing, the
// environment variable, and key files (0600, refused when readable by others, never overwritten).
#include "engine/security/secret_box.h"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>

#include "engine/security/encoding.h"
#include "tests/support/temp_dir.h"

namespace herald::security {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kHexKey =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
constexpr std::string_view kAad = "ws_123/STRIPE_API_KEY";

MasterKey test_key() {
  return MasterKey::parse(kHexKey).value();
}

// Sets or clears an environment variable for one test and restores it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

unsigned mode_of(const fs::path& path) {
  struct stat info {};
  EXPECT_EQ(::stat(path.c_str(), &info), 0);
  return info.st_mode & 07777;
}

// --- Sealing -------------------------------------------------------------------------------------

TEST(SecretBoxTest, RoundTrips) {
  SecretBox box(test_key());
  for (std::string plaintext : {std::string(""), std::string("x"), std::string("sk_live_abc123"),
                                std::string("\0binary\xff\x00", 9), std::string(100'000, 'q')}) {
    auto sealed = box.encrypt(plaintext, kAad);
    ASSERT_TRUE(sealed.ok());
    EXPECT_EQ(sealed->size(), plaintext.size() + SecretBox::kOverhead);
    auto opened = box.decrypt(*sealed, kAad);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    EXPECT_EQ(*opened, plaintext);
  }
}

TEST(SecretBoxTest, RoundTripsAsBase64) {
  SecretBox box(test_key());
  auto text = box.encrypt_to_base64("hunter2", kAad);
  ASSERT_TRUE(text.ok());
  EXPECT_TRUE(base64_decode(*text).ok());
  EXPECT_EQ(text->find("hunter2"), std::string::npos);
  EXPECT_EQ(*box.decrypt_from_base64(*text, kAad), "hunter2");
}

TEST(SecretBoxTest, EmptyAssociatedDataIsAllowedButDistinct) {
  SecretBox box(test_key());
  auto sealed = box.encrypt("v", "");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(*box.decrypt(*sealed, ""), "v");
  EXPECT_FALSE(box.decrypt(*sealed, "x").ok());
}

TEST(SecretBoxTest, FormatIsTheDocumentedOne) {
  // Opens a sealed value with OpenSSL directly, following only the layout in secret_box.h:
  // version byte, 12-byte nonce, ciphertext, 16-byte tag; AAD = version byte + associated data.
  SecretBox box(test_key());
  const std::string plaintext = "documented format";
  std::string sealed = box.encrypt(plaintext, kAad).value();
  ASSERT_EQ(static_cast<unsigned char>(sealed[0]), 1);
  auto* in = reinterpret_cast<unsigned char*>(sealed.data());
  std::string key = hex_decode(kHexKey).value();
  std::string aad = std::string(1, '\x01') + std::string(kAad);
  size_t ct_size = sealed.size() - 29;

  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ASSERT_NE(ctx, nullptr);
  int length = 0;
  std::string out(ct_size, '\0');
  ASSERT_EQ(EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr,
                               reinterpret_cast<const unsigned char*>(key.data()), in + 1),
            1);
  ASSERT_EQ(
      EVP_DecryptUpdate(ctx, nullptr, &length, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())),
      1);
  ASSERT_EQ(EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &length, in + 13,
                              static_cast<int>(ct_size)),
            1);
  ASSERT_EQ(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, in + 13 + ct_size), 1);
  int final_length = 0;
  EXPECT_EQ(EVP_DecryptFinal_ex(ctx, nullptr, &final_length), 1);
  EVP_CIPHER_CTX_free(ctx);
  EXPECT_EQ(out, plaintext);
}

TEST(SecretBoxTest, EveryModifiedByteIsRefused) {
  SecretBox box(test_key());
  const std::string sealed = box.encrypt("a secret worth stealing", kAad).value();
  for (size_t i = 0; i < sealed.size(); ++i) {
    for (unsigned char flip : {0x01, 0x80, 0xff}) {
      std::string tampered = sealed;
      tampered[i] = static_cast<char>(tampered[i] ^ flip);
      auto opened = box.decrypt(tampered, kAad);
      ASSERT_FALSE(opened.ok()) << "byte " << i << " flip " << int(flip);
      EXPECT_TRUE(opened.error().code == ErrorCode::permission_denied ||
                  opened.error().code == ErrorCode::invalid_argument);
      EXPECT_EQ(opened.error().message.find("secret worth"), std::string::npos);
    }
  }
}

TEST(SecretBoxTest, TruncatedOrExtendedIsRefused) {
  SecretBox box(test_key());
  const std::string sealed = box.encrypt("value", kAad).value();
  for (size_t length = 0; length < sealed.size(); ++length) {
    EXPECT_FALSE(box.decrypt(sealed.substr(0, length), kAad).ok()) << length;
  }
  EXPECT_FALSE(box.decrypt(sealed + "x", kAad).ok());
  EXPECT_FALSE(box.decrypt(sealed.substr(1), kAad).ok());
}

TEST(SecretBoxTest, WrongKeyIsPermissionDenied) {
  SecretBox box(test_key());
  SecretBox other(MasterKey::generate());
  auto sealed = box.encrypt("value", kAad).value();
  auto opened = other.decrypt(sealed, kAad);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, ErrorCode::permission_denied);
  EXPECT_NE(opened.error().message.find("master key"), std::string::npos);
}

TEST(SecretBoxTest, WrongAssociatedDataIsPermissionDenied) {
  SecretBox box(test_key());
  auto sealed = box.encrypt("value", "ws_1/TOKEN").value();
  for (std::string_view aad : {"ws_2/TOKEN", "ws_1/OTHER", "ws_1/TOKEN ", "", "ws_1/TOKE"}) {
    auto opened = box.decrypt(sealed, aad);
    ASSERT_FALSE(opened.ok()) << aad;
    EXPECT_EQ(opened.error().code, ErrorCode::permission_denied);
    // The AAD (workspace and secret name) stays out of the message too.
    EXPECT_EQ(opened.error().message.find("ws_"), std::string::npos);
  }
}

TEST(SecretBoxTest, UnknownVersionIsInvalidArgument) {
  SecretBox box(test_key());
  auto sealed = box.encrypt("value", kAad).value();
  sealed[0] = 2;
  auto opened = box.decrypt(sealed, kAad);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(opened.error().message.find("version 2"), std::string::npos);
}

TEST(SecretBoxTest, BadBase64IsInvalidArgument) {
  SecretBox box(test_key());
  for (std::string_view text : {"", "not base64!", "AAAA", "====", "QUFB\n"}) {
    auto opened = box.decrypt_from_base64(text, kAad);
    ASSERT_FALSE(opened.ok()) << text;
    EXPECT_EQ(opened.error().code, ErrorCode::invalid_argument);
  }
}

TEST(SecretBoxTest, NoncesAreUniqueAndCiphertextsDiffer) {
  SecretBox box(test_key());
  std::set<std::string> nonces;
  std::set<std::string> sealed_values;
  constexpr int kCount = 20'000;
  for (int i = 0; i < kCount; ++i) {
    std::string sealed = box.encrypt("same plaintext", kAad).value();
    nonces.insert(sealed.substr(1, SecretBox::kNonceSize));
    sealed_values.insert(sealed);
  }
  EXPECT_EQ(nonces.size(), static_cast<size_t>(kCount));
  EXPECT_EQ(sealed_values.size(), static_cast<size_t>(kCount));
}

TEST(SecretBoxTest, HugeInputsHaveClearLimits) {
  SecretBox box(test_key());
  std::string big(SecretBox::kMaxPlaintextSize, 'b');
  auto sealed = box.encrypt(big, kAad);
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(box.decrypt(*sealed, kAad)->size(), big.size());
  big.push_back('b');
  auto too_big = box.encrypt(big, kAad);
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.error().code, ErrorCode::invalid_argument);
  EXPECT_FALSE(box.encrypt("v", std::string(SecretBox::kMaxAssociatedDataSize + 1, 'a')).ok());
  EXPECT_FALSE(box.decrypt(std::string(SecretBox::kMaxPlaintextSize + 100, '\x01'), kAad).ok());
}

// --- Master keys ---------------------------------------------------------------------------------

TEST(MasterKeyTest, ParsesHexAndBase64) {
  MasterKey from_hex = MasterKey::parse(kHexKey).value();
  EXPECT_EQ(from_hex.to_hex(), kHexKey);
  std::string upper;
  for (char c : kHexKey) upper += static_cast<char>(std::toupper(c));
  EXPECT_TRUE(MasterKey::parse(upper).value() == from_hex);
  std::string b64 = base64_encode(hex_decode(kHexKey).value());
  ASSERT_EQ(b64.size(), 44u);
  EXPECT_TRUE(MasterKey::parse(b64).value() == from_hex);
  EXPECT_TRUE(MasterKey::parse("  " + std::string(kHexKey) + "\n").value() == from_hex);
  EXPECT_TRUE(MasterKey::parse(b64 + "\r\n").value() == from_hex);
}

TEST(MasterKeyTest, RefusesEverythingElseWithTheExpectedFormat) {
  std::string b64_31 = base64_encode(std::string(31, 'k'));
  std::string b64_33 = base64_encode(std::string(33, 'k'));
  std::string unpadded = base64_encode(std::string(32, 'k')).substr(0, 43);
  for (std::string bad :
       {std::string(""), std::string(63, 'a'), std::string(65, 'a'), std::string(64, 'g'),
        "zz" + std::string(62, '0'), std::string(32, 'k'),  // raw bytes are not a text format
        b64_31, b64_33, unpadded, std::string(44, '='),
        std::string(kHexKey.substr(0, 32)) + " " + std::string(kHexKey.substr(32, 31)),
        std::string(1'000'000, 'a')}) {
    auto key = MasterKey::parse(bad);
    ASSERT_FALSE(key.ok()) << bad.substr(0, 80);
    EXPECT_EQ(key.error().code, ErrorCode::invalid_argument);
    EXPECT_NE(key.error().message.find("64 hex characters"), std::string::npos);
    EXPECT_NE(key.error().message.find("base64"), std::string::npos);
    if (bad.size() >= 8) {
      EXPECT_EQ(key.error().message.find(bad), std::string::npos);
    }
  }
}

TEST(MasterKeyTest, FromBytesNeedsExactly32) {
  EXPECT_TRUE(MasterKey::from_bytes(std::string(32, '\0')).ok());
  EXPECT_FALSE(MasterKey::from_bytes(std::string(31, '\0')).ok());
  EXPECT_FALSE(MasterKey::from_bytes(std::string(33, '\0')).ok());
  EXPECT_FALSE(MasterKey::from_bytes("").ok());
}

TEST(MasterKeyTest, GeneratedKeysDifferAndFingerprintsIdentify) {
  MasterKey a = MasterKey::generate();
  MasterKey b = MasterKey::generate();
  EXPECT_FALSE(a == b);
  EXPECT_EQ(a.fingerprint().size(), 16u);
  EXPECT_NE(a.fingerprint(), b.fingerprint());
  EXPECT_EQ(a.fingerprint(), MasterKey::parse(a.to_hex()).value().fingerprint());
  EXPECT_EQ(a.to_hex().find(a.fingerprint()), std::string::npos);
  EXPECT_EQ(SecretBox(a).key_fingerprint(), a.fingerprint());
}

// --- HERALD_MASTER_KEY -------------------------------------------------------------------------

TEST(LoadMasterKeyTest, FromTheEnvironment) {
  ScopedEnv env("HERALD_MASTER_KEY", std::string(kHexKey).c_str());
  auto key = load_master_key();
  ASSERT_TRUE(key.ok()) << key.error().message;
  EXPECT_EQ(key->to_hex(), kHexKey);
}

TEST(LoadMasterKeyTest, MalformedEnvironmentIsAnErrorNamingTheVariable) {
  herald::testing::TempDir dir("herald-security");
  auto file = create_key_file(dir / "master.key");
  ASSERT_TRUE(file.ok());
  for (const char* bad :
       {"not-a-key", "0123", "this is definitely not a key, is it? no it isn't!!"}) {
    ScopedEnv env("HERALD_MASTER_KEY", bad);
    // Even with a valid key file available: a typo in the variable must not quietly switch keys.
    auto key = load_master_key(dir / "master.key");
    ASSERT_FALSE(key.ok()) << bad;
    EXPECT_EQ(key.error().code, ErrorCode::invalid_argument);
    EXPECT_NE(key.error().message.find("HERALD_MASTER_KEY"), std::string::npos);
    EXPECT_NE(key.error().message.find("64 hex characters"), std::string::npos);
    EXPECT_EQ(key.error().message.find(bad), std::string::npos);
  }
}

TEST(LoadMasterKeyTest, EnvironmentWinsOverTheFile) {
  herald::testing::TempDir dir("herald-security");
  ASSERT_TRUE(create_key_file(dir / "master.key").ok());
  ScopedEnv env("HERALD_MASTER_KEY", std::string(kHexKey).c_str());
  EXPECT_EQ(load_master_key(dir / "master.key")->to_hex(), kHexKey);
}

TEST(LoadMasterKeyTest, EmptyEnvironmentFallsBackToTheFile) {
  herald::testing::TempDir dir("herald-security");
  auto created = create_key_file(dir / "master.key");
  ASSERT_TRUE(created.ok());
  ScopedEnv env("HERALD_MASTER_KEY", "");
  auto key = load_master_key(dir / "master.key");
  ASSERT_TRUE(key.ok()) << key.error().message;
  EXPECT_TRUE(*key == *created);
}

TEST(LoadMasterKeyTest, NothingConfiguredSaysHowToProvideAKey) {
  ScopedEnv env("HERALD_MASTER_KEY", nullptr);
  auto key = load_master_key();
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.error().code, ErrorCode::failed_precondition);
  EXPECT_NE(key.error().message.find("HERALD_MASTER_KEY"), std::string::npos);
  EXPECT_NE(key.error().message.find("herald init"), std::string::npos);
}

// --- Key files -----------------------------------------------------------------------------------

TEST(KeyFileTest, CreatedWith0600AndLoadsBack) {
  herald::testing::TempDir dir("herald-security");
  fs::path path = dir / "master.key";
  auto created = create_key_file(path);
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_EQ(mode_of(path), 0600u);
  std::string content = herald::testing::read_file(path);
  EXPECT_EQ(content, created->to_hex() + "\n");
  auto loaded = load_master_key_file(path);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_TRUE(*loaded == *created);
  // Only the key file is left in the directory: the temporary file is gone.
  size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST(KeyFileTest, ModeIs0600WhateverTheUmask) {
  herald::testing::TempDir dir("herald-security");
  mode_t old = ::umask(0277);
  auto created = create_key_file(dir / "k");
  ::umask(old);
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(mode_of(dir / "k"), 0600u);
}

TEST(KeyFileTest, RefusesToOverwrite) {
  herald::testing::TempDir dir("herald-security");
  fs::path path = dir / "master.key";
  ASSERT_TRUE(create_key_file(path).ok());
  std::string before = herald::testing::read_file(path);
  auto again = create_key_file(path);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::already_exists);
  EXPECT_NE(again.error().message.find(path.string()), std::string::npos);
  EXPECT_EQ(herald::testing::read_file(path), before);
}

TEST(KeyFileTest, RefusesToReplaceAnyExistingEntry) {
  herald::testing::TempDir dir("herald-security");
  dir.write("plain", "whatever");
  EXPECT_EQ(create_key_file(dir / "plain").error().code, ErrorCode::already_exists);
  EXPECT_EQ(herald::testing::read_file(dir / "plain"), "whatever");
  fs::create_symlink(dir / "nowhere", dir / "dangling");
  EXPECT_EQ(create_key_file(dir / "dangling").error().code, ErrorCode::already_exists);
  EXPECT_FALSE(fs::exists(dir / "nowhere"));
}

TEST(KeyFileTest, RefusedWhenGroupOrOthersHaveAccess) {
  herald::testing::TempDir dir("herald-security");
  fs::path path = dir / "master.key";
  ASSERT_TRUE(create_key_file(path).ok());
  for (mode_t mode : {0644, 0640, 0604, 0660, 0601, 0610, 0777}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    auto key = load_master_key_file(path);
    ASSERT_FALSE(key.ok()) << std::oct << mode;
    EXPECT_EQ(key.error().code, ErrorCode::permission_denied);
    EXPECT_NE(key.error().message.find(path.string()), std::string::npos);
    EXPECT_NE(key.error().message.find("chmod 600"), std::string::npos);
  }
  // Owner-only modes are fine, including read-only.
  for (mode_t mode : {0600, 0400}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    EXPECT_TRUE(load_master_key_file(path).ok()) << std::oct << mode;
  }
}

TEST(KeyFileTest, ModeIsCheckedThroughSymlinks) {
  herald::testing::TempDir dir("herald-security");
  ASSERT_TRUE(create_key_file(dir / "real.key").ok());
  fs::create_symlink(dir / "real.key", dir / "link.key");
  EXPECT_TRUE(load_master_key_file(dir / "link.key").ok());
  ASSERT_EQ(::chmod((dir / "real.key").c_str(), 0644), 0);
  EXPECT_EQ(load_master_key_file(dir / "link.key").error().code, ErrorCode::permission_denied);
}

TEST(KeyFileTest, AcceptsHandWrittenFilesInEitherFormat) {
  herald::testing::TempDir dir("herald-security");
  // Built with append: GCC 12 warns falsely (-Warray-bounds) on std::string(view) + "\n".
  std::string hex_content(kHexKey);
  hex_content.append("\n");
  fs::path hex = dir.write("hex.key", hex_content);
  fs::path b64 = dir.write("b64.key", base64_encode(hex_decode(kHexKey).value()));
  ::chmod(hex.c_str(), 0600);
  ::chmod(b64.c_str(), 0600);
  EXPECT_EQ(load_master_key_file(hex)->to_hex(), kHexKey);
  EXPECT_EQ(load_master_key_file(b64)->to_hex(), kHexKey);
}

TEST(KeyFileTest, BadFilesHaveClearErrors) {
  herald::testing::TempDir dir("herald-security");
  auto missing = load_master_key_file(dir / "missing.key");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::not_found);
  EXPECT_NE(missing.error().message.find("missing.key"), std::string::npos);

  EXPECT_EQ(load_master_key_file(dir.path()).error().code, ErrorCode::failed_precondition);

  for (auto [name, content] : {std::pair<const char*, std::string>{"empty.key", ""},
                               {"garbage.key", "not a key at all\n"},
                               {"short.key", std::string(kHexKey.substr(0, 60))},
                               {"huge.key", std::string(100'000, 'a')}}) {
    fs::path path = dir.write(name, content);
    ::chmod(path.c_str(), 0600);
    auto key = load_master_key_file(path);
    ASSERT_FALSE(key.ok()) << name;
    EXPECT_EQ(key.error().code, ErrorCode::invalid_argument) << name;
    EXPECT_NE(key.error().message.find(name), std::string::npos);
    EXPECT_NE(key.error().message.find("64 hex characters"), std::string::npos);
  }
}

TEST(KeyFileTest, CreateNeedsAnExistingDirectory) {
  herald::testing::TempDir dir("herald-security");
  auto created = create_key_file(dir / "no" / "such" / "master.key");
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().code, ErrorCode::failed_precondition);
  EXPECT_FALSE(create_key_file("").ok());
}

TEST(KeyFileTest, SecretsSealedWithAFileKeyOpenAfterReloading) {
  herald::testing::TempDir dir("herald-security");
  auto created = create_key_file(dir / "master.key");
  ASSERT_TRUE(created.ok());
  std::string stored = SecretBox(*created).encrypt_to_base64("token-value", kAad).value();
  SecretBox reloaded(load_master_key_file(dir / "master.key").value());
  EXPECT_EQ(*reloaded.decrypt_from_base64(stored, kAad), "token-value");
}

}  // namespace
}  // namespace herald::security
