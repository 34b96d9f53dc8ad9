// Hex and base64 codecs: RFC 4648 vectors, round trips over every byte value, and the strictness
// the key and signature parsers rely on (no padding games, no stray characters).
#include "engine/security/encoding.h"

#include <gtest/gtest.h>

#include <string>

namespace herald::security {
namespace {

std::string all_bytes() {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes += static_cast<char>(i);
  return bytes;
}

TEST(HexTest, EncodesLowercase) {
  EXPECT_EQ(hex_encode(""), "");
  EXPECT_EQ(hex_encode(std::string("\x00\x01\xab\xff", 4)), "0001abff");
}

TEST(HexTest, DecodesBothCases) {
  EXPECT_EQ(*hex_decode("0001abff"), std::string("\x00\x01\xab\xff", 4));
  EXPECT_EQ(*hex_decode("0001ABFF"), std::string("\x00\x01\xab\xff", 4));
  EXPECT_EQ(*hex_decode(""), "");
}

TEST(HexTest, RoundTripsEveryByte) {
  EXPECT_EQ(*hex_decode(hex_encode(all_bytes())), all_bytes());
}

TEST(HexTest, RefusesOddLengthAndNonHex) {
  for (std::string_view bad : {"0", "abc", "0g", "zz", " 00", "00 ", "0x00", "--"}) {
    auto decoded = hex_decode(bad);
    ASSERT_FALSE(decoded.ok()) << bad;
    EXPECT_EQ(decoded.error().code, ErrorCode::invalid_argument);
  }
}

TEST(HexTest, ErrorDoesNotEchoTheInput) {
  auto decoded = hex_decode("secretvalue!");
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().message.find("secretvalue"), std::string::npos);
}

// RFC 4648 section 10.
TEST(Base64Test, Rfc4648Vectors) {
  const std::pair<std::string_view, std::string_view> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(plain), encoded);
    auto decoded = base64_decode(encoded);
    ASSERT_TRUE(decoded.ok()) << encoded;
    EXPECT_EQ(*decoded, plain);
  }
}

TEST(Base64Test, RoundTripsEveryByteAndEveryLength) {
  std::string bytes = all_bytes();
  for (size_t length = 0; length <= bytes.size(); ++length) {
    std::string part = bytes.substr(0, length);
    ASSERT_EQ(*base64_decode(base64_encode(part)), part) << length;
    ASSERT_EQ(*base64url_decode(base64url_encode(part)), part) << length;
  }
}

TEST(Base64Test, RefusesMalformedText) {
  for (std::string_view bad : {"Zg=", "Zg", "Z===", "====", "Zm9v!A==", "Zm9 v", "Zm9v\n",
                               "Zh==",  // non-canonical: unused bits set
                               "Zm9=Zm9v", "-_8=", "Zm8==="}) {
    auto decoded = base64_decode(bad);
    ASSERT_FALSE(decoded.ok()) << bad;
    EXPECT_EQ(decoded.error().code, ErrorCode::invalid_argument);
  }
}

TEST(Base64UrlTest, UsesUrlAlphabetWithoutPadding) {
  EXPECT_EQ(base64url_encode(std::string("\xfb\xff", 2)), "-_8");
  EXPECT_EQ(base64_encode(std::string("\xfb\xff", 2)), "+/8=");
  EXPECT_EQ(*base64url_decode("-_8"), std::string("\xfb\xff", 2));
  EXPECT_EQ(base64url_encode("f"), "Zg");
}

TEST(Base64UrlTest, RefusesPaddingAndStandardAlphabet) {
  for (std::string_view bad : {"Zg==", "+/8", "Z", "Zh", "a b"}) {
    EXPECT_FALSE(base64url_decode(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace herald::security
