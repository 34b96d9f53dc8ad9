#include "engine/security/tokens.h"

#include "engine/security/encoding.h"
#include "engine/security/hmac.h"

namespace herald::security {

namespace {

bool is_base62(std::string_view text) {
  for (char c : text) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!ok) return false;
  }
  return true;
}

bool is_valid_prefix(std::string_view prefix) {
  if (prefix.empty() || prefix.size() > kMaxTokenPrefixLength) return false;
  for (char c : prefix) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'))) return false;
  }
  return true;
}

}  // namespace

Result<GeneratedToken> generate_token(std::string_view prefix) {
  if (!is_valid_prefix(prefix)) {
    return make_error(ErrorCode::invalid_argument,
                      "a token prefix must be 1 to 16 lowercase letters or digits");
  }
  GeneratedToken generated;
  generated.token_id = random_base62(kTokenIdLength);
  generated.token.reserve(prefix.size() + 2 + kTokenIdLength + kTokenSecretLength);
  generated.token.append(prefix).append("_").append(generated.token_id).append("_");
  generated.token.append(random_base62(kTokenSecretLength));
  generated.hash = hash_token(generated.token);
  return generated;
}

Result<TokenParts> parse_token(std::string_view presented, std::string_view expected_prefix) {
  auto malformed = [&] {
    return make_error(ErrorCode::unauthenticated, "not a valid API token: expected " +
                                                      std::string(expected_prefix) +
                                                      "_<16 characters>_<43 characters>");
  };
  size_t expected_size = expected_prefix.size() + 2 + kTokenIdLength + kTokenSecretLength;
  if (presented.size() != expected_size) return malformed();
  TokenParts parts;
  parts.prefix = presented.substr(0, expected_prefix.size());
  if (parts.prefix != expected_prefix || presented[expected_prefix.size()] != '_') {
    return malformed();
  }
  parts.token_id = presented.substr(expected_prefix.size() + 1, kTokenIdLength);
  size_t second = expected_prefix.size() + 1 + kTokenIdLength;
  if (presented[second] != '_') return malformed();
  parts.secret = presented.substr(second + 1);
  if (!is_base62(parts.token_id) || !is_base62(parts.secret)) return malformed();
  return parts;
}

std::string hash_token(std::string_view token) {
  return sha256_hex(token);
}

bool verify_token(std::string_view presented, std::string_view stored_hash) {
  if (stored_hash.size() != 2 * kSha256Size) return false;
  auto stored = hex_decode(stored_hash);
  if (!stored.ok()) return false;
  return constant_time_equals(sha256(presented), *stored);
}

}  // namespace herald::security
