// Signed one-click links for approval notifications (approve / reject / request changes / open).
// A token binds one approval, level, round, approver and action, and expires; it is
// HMAC-SHA256-signed with a server key, so it cannot be altered or forged without that key.
//
// Format: "hal1.<payload>.<mac>", both parts unpadded base64url; <payload> is compact JSON
// {"a": approval id, "l": level, "r": round, "p": approver principal, "d": action,
//  "e": expiry in Unix seconds, "n": nonce}, and <mac> = HMAC-SHA256(key,
// "herald.approval-link.v1." + <payload>). Nothing in the payload is secret (it is readable by
// whoever holds the link); only its integrity is protected.
//
// Single use is the caller's part: verify_link_token cannot know whether a token was used.
// Store each used nonce (until its expiry) and refuse a second use, or pass link_decision()'s
// idempotency key to decide(), which then answers a second use with `duplicate` and the first
// result. A link for a closed level, or from before a restart (its round), gets level_closed
// from decide().
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "engine/approvals/approval.h"
#include "engine/common/result.h"
#include "engine/common/time.h"

namespace herald::approvals {

enum class LinkAction { approve, reject, request_changes, open };
std::string_view to_string(LinkAction action);

struct LinkClaims {
  std::string approval_id;
  std::string level;
  int round = 0;
  std::string approver;  // a principal: user:<id> or email:<address>
  LinkAction action = LinkAction::open;
  TimePoint expires_at;  // kept to the second
  std::string nonce;     // unique per link; new_link_nonce()
  bool operator==(const LinkClaims&) const = default;
};

// 128 random bits, base64url.
std::string new_link_nonce();

// invalid_argument when a claim is empty; failed_precondition for an empty key.
Result<std::string> make_link_token(std::string_view key, const LinkClaims& claims);

// Which check refused a token. Each failure is an Error with code `unauthenticated` (except an
// empty key: failed_precondition) and details {"check": "<name>"}.
enum class LinkCheck {
  malformed,  // not a token of this format
  tampered,   // the signature does not match: altered, or signed with another key
  expired,    // validly signed, but past its expiry
};
std::string_view to_string(LinkCheck check);
std::optional<LinkCheck> link_check_of(const Error& error);

// The claims, when the token is well formed, signed with `key` and not expired at `now`.
Result<LinkClaims> verify_link_token(std::string_view key, std::string_view token, TimePoint now);
// With several keys (a rotation: the new key first, the old one until its links have expired).
Result<LinkClaims> verify_link_token(std::span<const std::string> keys, std::string_view token,
                                     TimePoint now);

// The decide() arguments a verified link stands for: the approver through Channel::link, the
// link's level and round, and an idempotency key from its nonce. A reject needs `comment` (the
// reason the link's page asks for). `open` links decide nothing: invalid_argument.
struct LinkDecision {
  Actor actor;
  DecisionRequest request;
};
Result<LinkDecision> link_decision(const LinkClaims& claims, std::string comment = "",
                                   std::optional<std::string> edited_text = std::nullopt);

}  // namespace herald::approvals
