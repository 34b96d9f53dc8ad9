#include "engine/plugins/rate_limits.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "engine/common/duration.h"

namespace herald::plugins {

RateLimits& RateLimits::shared() {
  static RateLimits limits;
  return limits;
}

Result<std::optional<RateLimits::Bucket>> RateLimits::read_bucket(const Json& request) {
  auto found = request.find("rate_limit");
  if (found == request.end() || found->is_null()) return std::optional<Bucket>();
  const Json& given = *found;
  auto bad = [](const std::string& why) {
    return make_error(ErrorCode::invalid_argument,
                      "http: rate_limit " + why +
                          " (expected {key: TEXT, requests: N, per: DURATION such as 1s})");
  };
  if (!given.is_object()) return bad("is not an object");
  Bucket bucket;
  if (!given.contains("key") || !given["key"].is_string() || given["key"].get<std::string>().empty()) {
    return bad("needs a key");
  }
  bucket.key = given["key"].get<std::string>();
  if (!given.contains("requests") || !given["requests"].is_number() ||
      given["requests"].get<double>() <= 0) {
    return bad("needs requests > 0");
  }
  bucket.requests = given["requests"].get<double>();
  if (given.contains("per")) {
    if (!given["per"].is_string()) return bad("has a per that is not a duration");
    auto per = parse_duration(given["per"].get<std::string>());
    if (!per.ok() || per->count() <= 0) return bad("has a per that is not a duration");
    bucket.per = *per;
  }
  return std::optional<Bucket>(std::move(bucket));
}

Status RateLimits::admit(const std::string& host, const std::optional<Bucket>& bucket,
                         Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (auto paused = paused_until_.find(host); paused != paused_until_.end()) {
    if (now < paused->second) {
      auto wait = std::chrono::ceil<std::chrono::milliseconds>(paused->second - now);
      Error error = make_error(ErrorCode::resource_exhausted,
                               "http: " + host + " asked to slow down; no call for another " +
                                   std::to_string(wait.count()) + " ms",
                               /*retryable=*/true);
      error.retry_after = wait;
      return error;
    }
    paused_until_.erase(paused);
  }
  if (!bucket) return ok_status();
  Tokens& tokens = buckets_[bucket->key];
  const double per_ms = static_cast<double>(bucket->per.count());
  if (tokens.refilled == Clock::time_point{}) {
    tokens.available = bucket->requests;
  } else {
    const double elapsed_ms = std::chrono::duration<double, std::milli>(now - tokens.refilled).count();
    tokens.available =
        std::min(bucket->requests, tokens.available + elapsed_ms * bucket->requests / per_ms);
  }
  tokens.refilled = now;
  if (tokens.available >= 1.0) {
    tokens.available -= 1.0;
    return ok_status();
  }
  const auto wait = std::chrono::milliseconds(
      static_cast<int64_t>(std::ceil((1.0 - tokens.available) * per_ms / bucket->requests)));
  Error error = make_error(ErrorCode::resource_exhausted,
                           "http: rate limit '" + bucket->key + "' (" +
                               std::to_string(static_cast<int64_t>(bucket->requests)) + " per " +
                               std::to_string(bucket->per.count()) + " ms) is spent; next call in " +
                               std::to_string(wait.count()) + " ms",
                           /*retryable=*/true);
  error.retry_after = wait;
  return error;
}

void RateLimits::back_off(const std::string& host, std::chrono::milliseconds wait,
                          Clock::time_point now) {
  if (host.empty() || wait.count() <= 0) return;
  std::lock_guard lock(mu_);
  auto& until = paused_until_[host];
  until = std::max(until, now + wait);
}

void RateLimits::clear() {
  std::lock_guard lock(mu_);
  paused_until_.clear();
  buckets_.clear();
}

std::string url_host(const std::string& url) {
  size_t start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  size_t end = url.find_first_of("/?#", start);
  std::string host = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (auto at = host.rfind('@'); at != std::string::npos) host = host.substr(at + 1);
  std::transform(host.begin(), host.end(), host.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return host;
}

}  // namespace herald::plugins
