// SHA-256 and HMAC-SHA256 against published vectors (FIPS 180-2 examples, RFC 4231), and the
// constant-time comparison's contract.
#include "engine/security/hmac.h"

#include <gtest/gtest.h>

#include <string>

#include "engine/security/encoding.h"

namespace herald::security {
namespace {

std::string unhex(std::string_view hex) {
  return hex_decode(hex).value();
}

TEST(Sha256Test, KnownDigests) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256("abc").size(), kSha256Size);
}

TEST(Sha256Test, MillionAs) {
  EXPECT_EQ(sha256_hex(std::string(1'000'000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

struct Rfc4231Case {
  const char* name;
  std::string key;
  std::string data;
  std::string_view expected_hex;  // full or, for case 5, the first 128 bits
};

TEST(HmacSha256Test, Rfc4231Vectors) {
  const std::string large_key(131, '\xaa');
  const Rfc4231Case cases[] = {
      {"1", std::string(20, '\x0b'), "Hi There",
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {"2", "Jefe", "what do ya want for nothing?",
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {"3", std::string(20, '\xaa'), std::string(50, '\xdd'),
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {"4", unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"), std::string(50, '\xcd'),
       "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
      {"5", std::string(20, '\x0c'), "Test With Truncation", "a3b6167473100ee06e0c796c2955552b"},
      {"6", large_key, "Test Using Larger Than Block-Size Key - Hash Key First",
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {"7", large_key,
       "This is a test using a larger than block-size key and a larger than block-size data. The "
       "key needs to be hashed before being used by the HMAC algorithm.",
       "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
  for (const auto& test : cases) {
    SCOPED_TRACE(std::string("RFC 4231 test case ") + test.name);
    std::string hex = hmac_sha256_hex(test.key, test.data);
    EXPECT_EQ(hex.substr(0, test.expected_hex.size()), test.expected_hex);
    EXPECT_EQ(hex_encode(hmac_sha256(test.key, test.data)), hex);
  }
}

TEST(HmacSha256Test, EmptyKeyAndMessage) {
  // HMAC is defined for an empty key (it is zero-padded); the value is the well-known one.
  EXPECT_EQ(hmac_sha256_hex("", ""),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  EXPECT_EQ(hmac_sha256_hex("", "x"), hmac_sha256_hex(std::string(1, '\0'), "x"));
}

TEST(HmacSha256Test, HugeMessage) {
  std::string big(8 * 1024 * 1024, 'z');
  EXPECT_EQ(hmac_sha256(big, big).size(), kSha256Size);
  EXPECT_NE(hmac_sha256_hex("k", big), hmac_sha256_hex("k", big + "z"));
}

TEST(ConstantTimeEqualsTest, Contract) {
  EXPECT_TRUE(constant_time_equals("", ""));
  EXPECT_TRUE(constant_time_equals("abc", "abc"));
  EXPECT_FALSE(constant_time_equals("abc", "abd"));
  EXPECT_FALSE(constant_time_equals("abc", "ab"));
  EXPECT_FALSE(constant_time_equals("", "a"));
  EXPECT_TRUE(constant_time_equals(std::string("a\0b", 3), std::string("a\0b", 3)));
  EXPECT_FALSE(constant_time_equals(std::string("a\0b", 3), std::string("a\0c", 3)));
}

}  // namespace
}  // namespace herald::security
