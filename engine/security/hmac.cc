#include "engine/security/hmac.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <charconv>

#include "engine/security/encoding.h"
#include "engine/security/internal/openssl.h"

namespace herald::security {

namespace {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

// Fetched once: an explicit fetch per call would look the algorithm up in the provider store
// every time, and webhook verification runs on every request.
EVP_MAC* hmac_algorithm() {
  static EVP_MAC* mac = [] {
    EVP_MAC* fetched = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
    if (fetched == nullptr) internal::throw_crypto_failure("EVP_MAC_fetch(HMAC)");
    return fetched;
  }();
  return mac;
}

const EVP_MD* sha256_algorithm() {
  static EVP_MD* md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (fetched == nullptr) internal::throw_crypto_failure("EVP_MD_fetch(SHA256)");
    return fetched;
  }();
  return md;
}

Error webhook_error(WebhookCheck check, std::string message) {
  Error error = make_error(ErrorCode::unauthenticated, std::move(message));
  error.details = {{"check", std::string(to_string(check))}};
  return error;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Unix seconds: 1 to 12 decimal digits, nothing else (no sign, no fraction, no spaces inside).
// Twelve digits reach past the year 30000 and keep the arithmetic far from overflow.
std::optional<int64_t> parse_unix_seconds(std::string_view text) {
  if (text.empty() || text.size() > 12) return std::nullopt;
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.front() == '-') {
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::string sha256(std::string_view data) {
  std::string out(kSha256Size, '\0');
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(out.data()), &length,
                 sha256_algorithm(), nullptr) != 1 ||
      length != kSha256Size) {
    internal::throw_crypto_failure("EVP_Digest(SHA256)");
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  return hex_encode(sha256(data));
}

std::string hmac_sha256(std::string_view key, std::string_view message) {
  internal::MacCtx ctx(EVP_MAC_CTX_new(hmac_algorithm()));
  if (!ctx) internal::throw_crypto_failure("EVP_MAC_CTX_new");
  char digest_name[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
      OSSL_PARAM_construct_end(),
  };
  // HMAC pads the key with zeros to the block size, so the empty key is the same as one zero
  // byte; passing that instead avoids OpenSSL reading a null pointer as "reuse the old key".
  static constexpr unsigned char kZero = 0;
  const auto* key_bytes = key.empty() ? &kZero : reinterpret_cast<const unsigned char*>(key.data());
  size_t key_size = key.empty() ? 1 : key.size();
  if (EVP_MAC_init(ctx.get(), key_bytes, key_size, params) != 1) {
    internal::throw_crypto_failure("EVP_MAC_init");
  }
  if (EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) != 1) {
    internal::throw_crypto_failure("EVP_MAC_update");
  }
  std::string out(kSha256Size, '\0');
  size_t length = 0;
  if (EVP_MAC_final(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &length, out.size()) !=
          1 ||
      length != kSha256Size) {
    internal::throw_crypto_failure("EVP_MAC_final");
  }
  return out;
}

std::string hmac_sha256_hex(std::string_view key, std::string_view message) {
  return hex_encode(hmac_sha256(key, message));
}

bool constant_time_equals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// --- Webhooks ----------------------------------------------------------------------------------

std::string webhook_signed_payload(std::string_view timestamp, std::string_view body) {
  std::string payload;
  payload.reserve(timestamp.size() + 1 + body.size());
  payload.append(timestamp).append(".").append(body);
  return payload;
}

std::string sign_webhook(std::string_view secret, std::string_view timestamp,
                         std::string_view body) {
  return std::string(kWebhookSignatureScheme) + "=" +
         hmac_sha256_hex(secret, webhook_signed_payload(timestamp, body));
}

std::string_view to_string(WebhookCheck check) {
  switch (check) {
    case WebhookCheck::missing_header:
      return "missing_header";
    case WebhookCheck::malformed:
      return "malformed";
    case WebhookCheck::expired:
      return "expired";
    case WebhookCheck::in_future:
      return "in_future";
    case WebhookCheck::bad_signature:
      return "bad_signature";
    case WebhookCheck::replayed:
      return "replayed";
  }
  return "malformed";
}

std::optional<WebhookCheck> webhook_check_of(const Error& error) {
  if (error.code != ErrorCode::unauthenticated || !error.details.is_object()) return std::nullopt;
  auto it = error.details.find("check");
  if (it == error.details.end() || !it->is_string()) return std::nullopt;
  const auto& name = it->get_ref<const std::string&>();
  for (auto check :
       {WebhookCheck::missing_header, WebhookCheck::malformed, WebhookCheck::expired,
        WebhookCheck::in_future, WebhookCheck::bad_signature, WebhookCheck::replayed}) {
    if (to_string(check) == name) return check;
  }
  return std::nullopt;
}

InMemoryReplayCache::InMemoryReplayCache(size_t capacity)
    : capacity_(capacity == 0 ? 1 : capacity) {}

bool InMemoryReplayCache::has_seen(std::string_view signature, TimePoint expires_at,
                                   TimePoint now) {
  std::lock_guard lock(mu_);
  std::string key(signature);
  if (auto it = expiry_by_signature_.find(key); it != expiry_by_signature_.end()) {
    if (it->second > now) return true;
    // Expired but not yet dropped: it counts as new and is recorded again below.
    expiry_by_signature_.erase(it);
  }
  drop_expired(now);
  while (expiry_by_signature_.size() >= capacity_) drop_soonest();
  expiry_by_signature_.emplace(key, expires_at);
  by_expiry_.emplace(expires_at, std::move(key));
  return false;
}

size_t InMemoryReplayCache::size() const {
  std::lock_guard lock(mu_);
  return expiry_by_signature_.size();
}

void InMemoryReplayCache::drop_expired(TimePoint now) {
  while (!by_expiry_.empty() && by_expiry_.top().first <= now) drop_soonest();
}

void InMemoryReplayCache::drop_soonest() {
  if (by_expiry_.empty()) {
    // Cannot happen (every map entry has a heap entry); guards the caller's loop regardless.
    expiry_by_signature_.clear();
    return;
  }
  const auto& [expiry, signature] = by_expiry_.top();
  if (auto it = expiry_by_signature_.find(signature);
      it != expiry_by_signature_.end() && it->second == expiry) {
    expiry_by_signature_.erase(it);
  }
  by_expiry_.pop();
}

Result<WebhookVerified> verify_webhook(std::string_view secret, std::string_view body,
                                       std::string_view timestamp_header,
                                       std::string_view signature_header,
                                       const WebhookVerifyOptions& options) {
  std::string secrets[] = {std::string(secret)};
  auto result = verify_webhook(std::span<const std::string>(secrets), body, timestamp_header,
                               signature_header, options);
  internal::cleanse(secrets[0]);
  return result;
}

Result<WebhookVerified> verify_webhook(std::span<const std::string> secrets, std::string_view body,
                                       std::string_view timestamp_header,
                                       std::string_view signature_header,
                                       const WebhookVerifyOptions& options) {
  if (secrets.empty()) {
    return make_error(ErrorCode::failed_precondition,
                      "webhook verification has no secret configured");
  }
  for (const auto& secret : secrets) {
    if (secret.empty()) {
      return make_error(ErrorCode::failed_precondition,
                        "a webhook secret is empty; a signature under an empty key proves nothing");
    }
  }
  if (options.tolerance < std::chrono::seconds(0) || options.tolerance > kMaxWebhookTolerance) {
    return make_error(ErrorCode::failed_precondition,
                      "webhook tolerance must be between 0 and 86400 seconds");
  }

  // 1. Presence.
  std::string_view timestamp_text = trim(timestamp_header);
  std::string_view signature_text = trim(signature_header);
  if (timestamp_text.empty()) {
    return webhook_error(
        WebhookCheck::missing_header,
        "the webhook timestamp header (" + std::string(kWebhookTimestampHeader) + ") is missing");
  }
  if (signature_text.empty()) {
    return webhook_error(
        WebhookCheck::missing_header,
        "the webhook signature header (" + std::string(kWebhookSignatureHeader) + ") is missing");
  }

  // 2. Form. The timestamp goes into the signed payload exactly as sent, so it is parsed only to
  // check the window, never re-formatted.
  std::optional<int64_t> seconds = parse_unix_seconds(timestamp_text);
  if (!seconds) {
    return webhook_error(WebhookCheck::malformed,
                         "the webhook timestamp must be Unix seconds (decimal digits only)");
  }
  std::vector<std::string> presented;  // raw 32-byte MACs
  size_t entries = 0;
  std::string_view rest = signature_text;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view entry = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (entry.empty()) continue;
    if (++entries > options.max_signatures) {
      return webhook_error(WebhookCheck::malformed, "the webhook signature header has more than " +
                                                        std::to_string(options.max_signatures) +
                                                        " entries");
    }
    size_t equals = entry.find('=');
    if (equals == std::string_view::npos) {
      return webhook_error(WebhookCheck::malformed,
                           "each webhook signature entry must look like sha256=<64 hex digits>");
    }
    if (entry.substr(0, equals) != kWebhookSignatureScheme) continue;  // another scheme: skip
    std::string_view hex = entry.substr(equals + 1);
    auto raw = hex_decode(hex);
    if (hex.size() != 2 * kSha256Size || !raw.ok()) {
      return webhook_error(WebhookCheck::malformed,
                           "a sha256 webhook signature must be 64 hex digits");
    }
    presented.push_back(std::move(raw).value());
  }
  if (presented.empty()) {
    return webhook_error(WebhookCheck::malformed,
                         "the webhook signature header has no sha256=<hex> entry");
  }

  // 3. Time window, before any MAC work: stale requests cost nothing. Saying "expired" to a
  // client without the secret reveals nothing it did not send itself.
  // Compared in milliseconds: a 12-digit timestamp in the clock's nanoseconds would overflow,
  // while once inside the window (at most a day from now) it converts safely.
  TimePoint now = options.now.value_or(Clock::now());
  auto tolerance = options.tolerance;
  int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  int64_t age_ms = now_ms - *seconds * 1000;
  int64_t tolerance_ms = tolerance.count() * 1000;
  if (age_ms > tolerance_ms) {
    return webhook_error(WebhookCheck::expired,
                         "the webhook timestamp is " + std::to_string(age_ms / 1000) +
                             " s old; requests older than " + std::to_string(tolerance.count()) +
                             " s are refused");
  }
  if (-age_ms > tolerance_ms) {
    return webhook_error(WebhookCheck::in_future,
                         "the webhook timestamp is " + std::to_string(-age_ms / 1000) +
                             " s in the future; more than " + std::to_string(tolerance.count()) +
                             " s ahead is refused (check the sender's clock)");
  }

  TimePoint sent{std::chrono::seconds(*seconds)};

  // 4. Signature. Every comparison is constant time; which entry matched is not secret.
  std::string payload = webhook_signed_payload(timestamp_text, body);
  std::optional<size_t> matched;
  std::string replay_key;
  for (size_t i = 0; i < secrets.size(); ++i) {
    std::string expected = hmac_sha256(secrets[i], payload);
    // The replay key is the MAC under the first secret, whichever entry matched: a replay that
    // drops or reorders entries of a rotation header is still the same request.
    if (i == 0) replay_key = hex_encode(expected);
    for (const auto& candidate : presented) {
      if (constant_time_equals(candidate, expected) && !matched) matched = i;
    }
  }
  if (!matched) {
    return webhook_error(WebhookCheck::bad_signature,
                         "the webhook signature does not match (HMAC-SHA256 of "
                         "\"<timestamp>.<body>\" with the webhook's secret)");
  }

  // 5. Replay, only after the signature proved the request authentic. The entry lives as long as
  // the timestamp stays inside the window (plus a second for the whole-second timestamps).
  if (options.replay_cache != nullptr) {
    TimePoint expires_at = sent + tolerance + std::chrono::seconds(1);
    if (options.replay_cache->has_seen(replay_key, expires_at, now)) {
      return webhook_error(WebhookCheck::replayed,
                           "this signed webhook request was already received");
    }
  }
  return WebhookVerified{sent, *matched};
}

}  // namespace herald::security
