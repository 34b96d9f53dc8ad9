// API tokens and random helpers: the token format, uniqueness, hashing, constant-time
// verification, parsing of presented tokens, and the shape and spread of random ids.
#include "engine/security/tokens.h"

#include <gtest/gtest.h>

#include <cctype>
#include <map>
#include <set>
#include <string>

#include "engine/security/encoding.h"
#include "engine/security/hmac.h"

namespace herald::security {
namespace {

TEST(TokenTest, Format) {
  auto generated = generate_token();
  ASSERT_TRUE(generated.ok());
  // hld_[0-9A-Za-z]{16}_[0-9A-Za-z]{43}, checked by hand: <regex> trips GCC 12's
  // -Wmaybe-uninitialized in sanitizer builds.
  const std::string& token = generated->token;
  ASSERT_EQ(token.size(), 4u + 16 + 1 + 43) << token;
  EXPECT_EQ(token.substr(0, 4), "hld_");
  EXPECT_EQ(token[20], '_');
  for (size_t i = 4; i < token.size(); ++i) {
    if (i == 20) continue;
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(token[i]))) << token;
  }
  EXPECT_EQ(generated->token.substr(4, 16), generated->token_id);
  EXPECT_EQ(generated->hash, sha256_hex(generated->token));
  EXPECT_EQ(generated->hash, hash_token(generated->token));
  EXPECT_EQ(generated->hash.find(generated->token_id), std::string::npos);
}

TEST(TokenTest, CustomPrefix) {
  auto generated = generate_token("hldw2");
  ASSERT_TRUE(generated.ok());
  EXPECT_EQ(generated->token.rfind("hldw2_", 0), 0u);
  auto parts = parse_token(generated->token, "hldw2");
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ(parts->token_id, generated->token_id);
  EXPECT_FALSE(parse_token(generated->token).ok());  // not an "hld" token
}

TEST(TokenTest, BadPrefixesAreRefused) {
  for (std::string_view prefix : {"", "HLD", "hl_d", "hld-", "a b", "abcdefghijklmnopq", "é"}) {
    auto generated = generate_token(prefix);
    ASSERT_FALSE(generated.ok()) << prefix;
    EXPECT_EQ(generated.error().code, ErrorCode::invalid_argument);
  }
  EXPECT_TRUE(generate_token("abcdefghijklmnop").ok());  // 16 characters is the limit
}

TEST(TokenTest, TokensAndIdsAreUnique) {
  std::set<std::string> tokens;
  std::set<std::string> ids;
  std::set<std::string> hashes;
  constexpr int kCount = 10'000;
  for (int i = 0; i < kCount; ++i) {
    auto generated = generate_token().value();
    tokens.insert(generated.token);
    ids.insert(generated.token_id);
    hashes.insert(generated.hash);
  }
  EXPECT_EQ(tokens.size(), static_cast<size_t>(kCount));
  EXPECT_EQ(ids.size(), static_cast<size_t>(kCount));
  EXPECT_EQ(hashes.size(), static_cast<size_t>(kCount));
}

TEST(TokenTest, VerifyAcceptsOnlyTheExactToken) {
  auto generated = generate_token().value();
  EXPECT_TRUE(verify_token(generated.token, generated.hash));
  // Stored hashes in uppercase still verify (hex either case).
  std::string upper;
  for (char c : generated.hash) upper += static_cast<char>(std::toupper(c));
  EXPECT_TRUE(verify_token(generated.token, upper));

  for (size_t i = 0; i < generated.token.size(); ++i) {
    std::string altered = generated.token;
    altered[i] = altered[i] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(verify_token(altered, generated.hash)) << i;
  }
  EXPECT_FALSE(verify_token(generated.token + "x", generated.hash));
  EXPECT_FALSE(verify_token(generated.token.substr(1), generated.hash));
  EXPECT_FALSE(verify_token("", generated.hash));
  EXPECT_FALSE(verify_token(std::string(1'000'000, 'h'), generated.hash));
  EXPECT_FALSE(verify_token(generate_token()->token, generated.hash));
}

TEST(TokenTest, MalformedStoredHashNeverVerifies) {
  auto generated = generate_token().value();
  for (std::string stored : {std::string(""), generated.hash.substr(1), generated.hash + "0",
                             std::string(64, 'z'), generated.token}) {
    EXPECT_FALSE(verify_token(generated.token, stored)) << stored;
  }
  EXPECT_FALSE(verify_token("", ""));
}

TEST(TokenTest, ParseSplitsAPresentedToken) {
  auto generated = generate_token().value();
  auto parts = parse_token(generated.token);
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ(parts->prefix, "hld");
  EXPECT_EQ(parts->token_id, generated.token_id);
  EXPECT_EQ(parts->secret.size(), kTokenSecretLength);
  EXPECT_EQ(std::string(parts->prefix) + "_" + std::string(parts->token_id) + "_" +
                std::string(parts->secret),
            generated.token);
}

TEST(TokenTest, ParseRefusesMalformedTokensWithoutEchoingThem) {
  std::string good = generate_token()->token;
  std::string wrong_separator = good;
  wrong_separator[3] = '-';
  std::string wrong_second = good;
  wrong_second[20] = 'x';
  std::string bad_char = good;
  bad_char[30] = '/';
  for (std::string bad :
       {std::string(""), std::string("hld_"), good + "a", good.substr(0, good.size() - 1),
        "xyz" + good.substr(3), wrong_separator, wrong_second, bad_char,
        std::string("Bearer ") + good, std::string(100'000, 'a')}) {
    auto parts = parse_token(bad);
    ASSERT_FALSE(parts.ok()) << bad.substr(0, 80);
    EXPECT_EQ(parts.error().code, ErrorCode::unauthenticated);
    if (bad.size() > 8) {
      EXPECT_EQ(parts.error().message.find(bad), std::string::npos);
    }
  }
}

TEST(RandomTest, Shapes) {
  EXPECT_EQ(random_bytes(0), "");
  EXPECT_EQ(random_bytes(32).size(), 32u);
  EXPECT_EQ(random_hex(16).size(), 32u);
  EXPECT_TRUE(hex_decode(random_hex(16)).ok());
  EXPECT_EQ(random_base64url(32).size(), 43u);
  EXPECT_EQ(base64url_decode(random_base64url(32))->size(), 32u);
  EXPECT_EQ(random_base62(0), "");
  EXPECT_EQ(random_base62(1000).size(), 1000u);
  EXPECT_EQ(random_id().size(), 32u);
  EXPECT_NE(random_id(), random_id());
  EXPECT_EQ(random_bytes(3 * 1024 * 1024).size(), 3u * 1024 * 1024);
}

TEST(RandomTest, Base62IsUniform) {
  // 620,000 characters: 10,000 expected per symbol. A modulo bias (no rejection) would give the
  // first eight symbols about 10,300; the bounds below are more than 5 standard deviations wide
  // around the fair count and still catch that bias.
  std::string text = random_base62(620'000);
  std::map<char, int> counts;
  for (char c : text) ++counts[c];
  ASSERT_EQ(counts.size(), 62u);
  for (const auto& [symbol, count] : counts) {
    EXPECT_GT(count, 9'500) << symbol;
    EXPECT_LT(count, 10'500) << symbol;
  }
}

}  // namespace
}  // namespace herald::security
