// Rate limits the host's HTTP client keeps for every plugin in this process: a platform that
// answered "slow down" (429/503 with Retry-After) is not called again by any plugin call until
// then, and a request may name a token bucket (`rate_limit: {key, requests, per}`) that all calls
// sharing the key draw from. A call that would break a limit fails at once, retryable, with the
// wait in retry_after, so the step's retry policy (not a blocked thread) does the waiting.
// Across processes the buckets move to Redis (a later issue); the contract stays the same.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "engine/common/result.h"

namespace herald::plugins {

class RateLimits {
 public:
  using Clock = std::chrono::steady_clock;

  struct Bucket {
    std::string key;
    double requests = 0;  // per `per`
    std::chrono::milliseconds per{1000};
  };

  // The limits of the process (one table for every plugin and run).
  static RateLimits& shared();

  // Reads `rate_limit` of a host HTTP request: absent gives nullopt; a malformed one an error.
  static Result<std::optional<Bucket>> read_bucket(const Json& request);

  // ok: the call may go now (it took a token from `bucket`, if any). Otherwise a retryable
  // resource_exhausted error naming the key, with retry_after.
  Status admit(const std::string& host, const std::optional<Bucket>& bucket, Clock::time_point now);
  // The platform at `host` asked for a pause (Retry-After): no call until now + wait.
  void back_off(const std::string& host, std::chrono::milliseconds wait, Clock::time_point now);
  // Forgets every pause and bucket.
  void clear();

 private:
  struct Tokens {
    double available = 0;
    Clock::time_point refilled{};
  };
  std::mutex mu_;
  std::unordered_map<std::string, Clock::time_point> paused_until_;  // by host
  std::unordered_map<std::string, Tokens> buckets_;                  // by bucket key
};

// The host part of a URL ("api.example.com:8443"), lower-cased; "" when it has none.
std::string url_host(const std::string& url);

}  // namespace herald::plugins
