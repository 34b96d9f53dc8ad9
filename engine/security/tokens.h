// API tokens: how `herald init`, `herald token create` and the REST API mint, store and check the
// bearer tokens that act as a user in a workspace. A token is shown once, at creation, and only
// its SHA-256 hash is stored, so a leaked database does not leak working tokens.
//
// Format: "<prefix>_<id>_<secret>", e.g. "hld_4Fq8ZpL0aXw2cN7e_<43 base62 characters>".
//   - prefix: "hld" by default; lets secret scanners and people recognise a Herald token.
//   - id: 16 base62 characters, stored in clear next to the hash: `herald token list` shows it,
//     `herald token revoke` takes it, logs may mention it. It is not a secret.
//   - secret: 43 base62 characters, 256 bits from the CSPRNG.
// Base62 rather than base64url because '_' separates the parts and '-' breaks double-click
// selection; both parts are therefore free of separators and the format parses unambiguously.
//
// The random helpers (random_bytes, random_hex, random_base64url, random_id) live in random.h,
// included here for callers that mint other ids and nonces.
#pragma once

#include <string>
#include <string_view>

#include "engine/common/result.h"
#include "engine/security/random.h"

namespace herald::security {

inline constexpr std::string_view kDefaultTokenPrefix = "hld";
inline constexpr size_t kMaxTokenPrefixLength = 16;
inline constexpr size_t kTokenIdLength = 16;
inline constexpr size_t kTokenSecretLength = 43;  // 43 * log2(62) = 256.03 bits

struct GeneratedToken {
  std::string token;     // the full token: show it once, never store it
  std::string token_id;  // store in clear, for lookup, listing and revocation
  std::string hash;      // hash_token(token): store this
};

// A new token. `prefix` must be 1 to 16 lowercase letters or digits; anything else is
// invalid_argument.
Result<GeneratedToken> generate_token(std::string_view prefix = kDefaultTokenPrefix);

// The parts of a presented token, as views into it.
struct TokenParts {
  std::string_view prefix;
  std::string_view token_id;
  std::string_view secret;
};
// Splits a presented token so the caller can look the stored hash up by id. A token that does
// not have the expected prefix and part lengths is `unauthenticated`, with a message that never
// repeats the presented text (it may be a real token pasted in the wrong place).
Result<TokenParts> parse_token(std::string_view presented,
                               std::string_view expected_prefix = kDefaultTokenPrefix);

// Lowercase hex SHA-256 of the whole token. A plain hash is enough here, unlike for passwords:
// a slow, salted KDF (argon2, bcrypt) exists to make guessing low-entropy human choices
// expensive, but a 256-bit random secret cannot be guessed at any speed, and every token is
// unique, so precomputed tables are useless too. A fast hash also keeps per-request
// authentication cheap.
std::string hash_token(std::string_view token);

// True when `presented` hashes to `stored_hash` (hex, either case), compared in constant time.
// False for a malformed stored hash.
bool verify_token(std::string_view presented, std::string_view stored_hash);

}  // namespace herald::security
