#include "engine/approvals/links.h"

#include <algorithm>
#include <chrono>

#include "engine/security/encoding.h"
#include "engine/security/hmac.h"
#include "engine/security/random.h"

namespace herald::approvals {
namespace {

constexpr std::string_view kPrefix = "hal1";
// Domain separation: a MAC made for a link can never pass as any other Herald signature made
// with the same key, and a future format cannot be confused with this one.
constexpr std::string_view kMacContext = "herald.approval-link.v1.";
// Bounds the work an unauthenticated request can cause before the MAC check.
constexpr size_t kMaxTokenLength = 4096;

Error link_error(LinkCheck check, std::string message) {
  Error error = make_error(ErrorCode::unauthenticated, std::move(message));
  error.details = Json{{"check", to_string(check)}};
  return error;
}

std::optional<LinkAction> parse_action(std::string_view text) {
  for (LinkAction action : {LinkAction::approve, LinkAction::reject, LinkAction::request_changes,
                            LinkAction::open}) {
    if (to_string(action) == text) return action;
  }
  return std::nullopt;
}

std::string mac_of(std::string_view key, std::string_view payload) {
  return security::hmac_sha256(key, std::string(kMacContext) + std::string(payload));
}

}  // namespace

std::string_view to_string(LinkAction action) {
  switch (action) {
    case LinkAction::approve:
      return "approve";
    case LinkAction::reject:
      return "reject";
    case LinkAction::request_changes:
      return "request_changes";
    case LinkAction::open:
      return "open";
  }
  return "open";
}

std::string_view to_string(LinkCheck check) {
  switch (check) {
    case LinkCheck::malformed:
      return "malformed";
    case LinkCheck::tampered:
      return "tampered";
    case LinkCheck::expired:
      return "expired";
  }
  return "malformed";
}

std::optional<LinkCheck> link_check_of(const Error& error) {
  if (error.code != ErrorCode::unauthenticated || !error.details.is_object()) return std::nullopt;
  const Json& check = error.details.value("check", Json());
  for (LinkCheck candidate : {LinkCheck::malformed, LinkCheck::tampered, LinkCheck::expired}) {
    if (check == to_string(candidate)) return candidate;
  }
  return std::nullopt;
}

std::string new_link_nonce() {
  return security::random_base64url(16);
}

Result<std::string> make_link_token(std::string_view key, const LinkClaims& claims) {
  if (key.empty()) {
    return make_error(ErrorCode::failed_precondition,
                      "no link signing key is configured; a MAC under an empty key proves nothing");
  }
  if (claims.approval_id.empty() || claims.level.empty() || claims.approver.empty() ||
      claims.nonce.empty()) {
    return make_error(ErrorCode::invalid_argument,
                      "a link needs an approval id, a level, an approver and a nonce");
  }
  if (!is_user_principal(claims.approver) && !is_email_principal(claims.approver)) {
    return make_error(ErrorCode::invalid_argument,
                      "a link's approver must be a principal: user:<id> or email:<address>");
  }
  int64_t expires = std::chrono::duration_cast<std::chrono::seconds>(
                        claims.expires_at.time_since_epoch())
                        .count();
  Json payload{{"a", claims.approval_id}, {"l", claims.level},  {"r", claims.round},
               {"p", claims.approver},    {"d", to_string(claims.action)},
               {"e", expires},            {"n", claims.nonce}};
  std::string encoded = security::base64url_encode(payload.dump());
  return std::string(kPrefix) + "." + encoded + "." +
         security::base64url_encode(mac_of(key, encoded));
}

Result<LinkClaims> verify_link_token(std::string_view key, std::string_view token, TimePoint now) {
  std::string keys[] = {std::string(key)};
  return verify_link_token(std::span<const std::string>(keys), token, now);
}

Result<LinkClaims> verify_link_token(std::span<const std::string> keys, std::string_view token,
                                     TimePoint now) {
  if (keys.empty() || std::any_of(keys.begin(), keys.end(),
                                  [](const std::string& key) { return key.empty(); })) {
    return make_error(ErrorCode::failed_precondition, "no link signing key is configured");
  }
  // Messages never repeat the token: it is a bearer credential until it expires.
  if (token.size() > kMaxTokenLength) {
    return link_error(LinkCheck::malformed, "the link is too long to be an approval link");
  }
  size_t first = token.find('.');
  size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos ||
      token.substr(0, first) != kPrefix) {
    return link_error(LinkCheck::malformed, "the link is not an approval link (hal1.<payload>.<mac>)");
  }
  std::string_view payload = token.substr(first + 1, second - first - 1);
  Result<std::string> mac = security::base64url_decode(token.substr(second + 1));
  Result<std::string> payload_bytes = security::base64url_decode(payload);
  if (!mac.ok() || !payload_bytes.ok() || mac->size() != security::kSha256Size) {
    return link_error(LinkCheck::malformed, "the link is damaged (its parts are not base64url)");
  }
  bool signed_by_us = false;
  for (const auto& key : keys) {
    if (security::constant_time_equals(mac_of(key, payload), *mac)) signed_by_us = true;
  }
  if (!signed_by_us) {
    return link_error(LinkCheck::tampered,
                      "the link's signature does not match: it was altered or not issued here");
  }
  // Only a payload we signed is parsed.
  LinkClaims claims;
  try {
    Json json = Json::parse(*payload_bytes);
    claims.approval_id = json.at("a").get<std::string>();
    claims.level = json.at("l").get<std::string>();
    claims.round = json.at("r").get<int>();
    claims.approver = json.at("p").get<std::string>();
    std::optional<LinkAction> action = parse_action(json.at("d").get<std::string>());
    if (!action) return link_error(LinkCheck::malformed, "the link names an unknown action");
    claims.action = *action;
    claims.expires_at = TimePoint(std::chrono::seconds(json.at("e").get<int64_t>()));
    claims.nonce = json.at("n").get<std::string>();
  } catch (const Json::exception&) {
    return link_error(LinkCheck::malformed, "the link's content is not readable");
  }
  if (now >= claims.expires_at) {
    return link_error(LinkCheck::expired,
                      "the link expired at " + format_iso8601(claims.expires_at) +
                          "; open the approval in Herald or ask for a new link");
  }
  return claims;
}

Result<LinkDecision> link_decision(const LinkClaims& claims, std::string comment,
                                   std::optional<std::string> edited_text) {
  LinkDecision out;
  out.actor = Actor{claims.approver, Channel::link};
  switch (claims.action) {
    case LinkAction::approve:
      out.request.verdict = Verdict::approve;
      break;
    case LinkAction::reject:
      out.request.verdict = Verdict::reject;
      break;
    case LinkAction::request_changes:
      out.request.verdict = Verdict::request_changes;
      break;
    case LinkAction::open:
      return make_error(ErrorCode::invalid_argument,
                        "an open link shows the approval; it decides nothing");
  }
  out.request.comment = std::move(comment);
  out.request.edited_text = std::move(edited_text);
  out.request.level = claims.level;
  out.request.round = claims.round;
  out.request.idempotency_key = "link:" + claims.nonce;
  return out;
}

}  // namespace herald::approvals
