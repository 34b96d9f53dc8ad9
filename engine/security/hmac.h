// Hashes, MACs and webhook signatures. SHA-256 and HMAC-SHA256 (RFC 2104) for anything Herald
// signs or fingerprints, a constant-time comparison for anything secret-derived, and the
// verifier that guards `webhook` triggers: it checks an HMAC signature over a timestamp and the
// raw body, refuses requests outside a time window, and with a replay cache refuses a second
// delivery of the same signed request. The same scheme signs the webhooks Herald sends.
//
// The webhook scheme (documented for senders):
//   timestamp header  X-Herald-Timestamp: 1700000000      (Unix seconds, decimal digits)
//   signature header  X-Herald-Signature: sha256=<hex>     (lowercase or uppercase hex)
//   where <hex> = hex(HMAC-SHA256(secret, "<timestamp>.<raw body>")), the timestamp exactly as
//   sent in its header and the body byte for byte as received (before any JSON parsing).
// The signature header may carry several comma-separated entries ("sha256=<a>,sha256=<b>") so a
// sender can sign with an old and a new secret while a rotation is under way; the request is
// accepted when any entry matches. Entries with another scheme ("v2=...") are ignored so the
// scheme can evolve. Signing the timestamp with the body is what makes the time window
// meaningful: an attacker cannot move an old request into the window without the secret.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/common/result.h"

namespace herald::security {

// --- Hashes and MACs --------------------------------------------------------------------------
// These throw std::runtime_error only if OpenSSL itself fails (memory exhaustion, a broken
// installation); any input, including empty and very large ones, is valid.

inline constexpr size_t kSha256Size = 32;

std::string sha256(std::string_view data);      // 32 raw bytes
std::string sha256_hex(std::string_view data);  // 64 lowercase hex characters

std::string hmac_sha256(std::string_view key, std::string_view message);      // 32 raw bytes
std::string hmac_sha256_hex(std::string_view key, std::string_view message);  // 64 hex chars

// True when a and b are equal. For equal lengths the time taken does not depend on where they
// differ (CRYPTO_memcmp), so comparing a presented MAC or hash against the expected one does not
// leak how many leading bytes were right. Different lengths return false at once: the length of
// a MAC or hash is public.
bool constant_time_equals(std::string_view a, std::string_view b);

// --- Webhook signatures ----------------------------------------------------------------------

inline constexpr std::string_view kWebhookTimestampHeader = "X-Herald-Timestamp";
inline constexpr std::string_view kWebhookSignatureHeader = "X-Herald-Signature";
inline constexpr std::string_view kWebhookSignatureScheme = "sha256";
inline constexpr std::chrono::seconds kDefaultWebhookTolerance{300};
// A window of more than a day would make the timestamp check meaningless.
inline constexpr std::chrono::seconds kMaxWebhookTolerance{86400};

// "<timestamp>.<body>": the exact bytes the HMAC covers.
std::string webhook_signed_payload(std::string_view timestamp, std::string_view body);
// "sha256=<hex>" for a request sent at `timestamp` (Unix seconds as decimal text). What Herald's
// own signed webhooks send, and what tests use to build valid requests.
std::string sign_webhook(std::string_view secret, std::string_view timestamp,
                         std::string_view body);

// Which check refused a request. Each failure is an Error with code `unauthenticated` and
// details {"check": "<name>"}, so the HTTP layer can answer 401 for all of them while logs and
// the run timeline say exactly what was wrong.
enum class WebhookCheck {
  missing_header,  // the timestamp or signature header is absent or empty
  malformed,       // the timestamp is not decimal seconds, or a sha256 entry is not 64 hex digits
  expired,         // the timestamp is older than the tolerance
  in_future,       // the timestamp is further ahead than the tolerance (a clock far off, or a
                   // request prepared in advance to be replayed later)
  bad_signature,   // no entry matches any secret
  replayed,        // a valid request already seen within the window
};
std::string_view to_string(WebhookCheck check);
// The check an Error from verify_webhook reports; nullopt for any other error.
std::optional<WebhookCheck> webhook_check_of(const Error& error);

// Remembers verified signatures so the same signed request is accepted once. Only signatures
// that passed verification are recorded, so an unauthenticated client cannot fill the cache.
// One implementation per deployment shape: in memory for a single process; a shared one (Redis
// SET NX with an expiry) when several workers receive webhooks.
class ReplayCache {
 public:
  virtual ~ReplayCache() = default;
  // Test-and-set in one step: returns true if `signature` was recorded and has not expired yet;
  // otherwise records it until `expires_at` and returns false. Must be atomic so that two
  // concurrent deliveries of the same request cannot both see "not seen".
  virtual bool has_seen(std::string_view signature,
                        std::chrono::system_clock::time_point expires_at,
                        std::chrono::system_clock::time_point now) = 0;
};

// A thread-safe, bounded ReplayCache for one process. Entries expire at the time given by the
// verifier (the request's timestamp plus the tolerance: after that the timestamp check refuses
// the request anyway, so remembering longer would only cost memory). When `capacity` entries are
// live, the ones closest to expiry are dropped first: memory stays bounded under any load, and
// the only requests that could be replayed are those about to be refused by the time window.
// Only signed (authenticated) requests can fill the cache, so reaching capacity takes a sender
// that holds the secret.
class InMemoryReplayCache final : public ReplayCache {
 public:
  static constexpr size_t kDefaultCapacity = 100'000;

  explicit InMemoryReplayCache(size_t capacity = kDefaultCapacity);

  bool has_seen(std::string_view signature, std::chrono::system_clock::time_point expires_at,
                std::chrono::system_clock::time_point now) override;

  // Live entries (expired ones are dropped lazily, so this may count a few stale ones).
  size_t size() const;
  size_t capacity() const { return capacity_; }

 private:
  using TimePoint = std::chrono::system_clock::time_point;
  using HeapEntry = std::pair<TimePoint, std::string>;

  void drop_expired(TimePoint now);
  void drop_soonest();

  size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, TimePoint> expiry_by_signature_;
  // Min-heap on expiry. An entry may be stale (its signature was dropped and recorded again);
  // it is recognised by its expiry differing from the map's.
  std::priority_queue<HeapEntry, std::vector<HeapEntry>, std::greater<>> by_expiry_;
};

struct WebhookVerifyOptions {
  // How far the timestamp may be from now, either way; 0 to kMaxWebhookTolerance.
  std::chrono::seconds tolerance = kDefaultWebhookTolerance;
  // Not owned; nullptr disables replay protection (the time window still applies).
  ReplayCache* replay_cache = nullptr;
  // The current time; unset means the system clock. Tests set it to check the window edges.
  std::optional<std::chrono::system_clock::time_point> now;
  // Upper bound on comma-separated entries in the signature header, so a hostile header cannot
  // make verification do unbounded work.
  size_t max_signatures = 8;
};

struct WebhookVerified {
  std::chrono::system_clock::time_point timestamp;  // the request's signed timestamp
  size_t secret_index = 0;                          // which of the secrets matched
};

// Checks, in order: both headers present, both well formed, timestamp within the tolerance,
// some entry matching an HMAC under `secret`, and (with a replay cache) not seen before.
// `timestamp_header` and `signature_header` are the header values; pass "" when a header is
// absent. An empty secret is a configuration error (failed_precondition): a MAC under an empty
// key proves nothing.
Result<WebhookVerified> verify_webhook(std::string_view secret, std::string_view body,
                                       std::string_view timestamp_header,
                                       std::string_view signature_header,
                                       const WebhookVerifyOptions& options = {});
// The same with several secrets (a rotation on Herald's side: new secret first, old still
// accepted until senders have switched). Accepted when any entry matches any secret.
Result<WebhookVerified> verify_webhook(std::span<const std::string> secrets, std::string_view body,
                                       std::string_view timestamp_header,
                                       std::string_view signature_header,
                                       const WebhookVerifyOptions& options = {});

}  // namespace herald::security
