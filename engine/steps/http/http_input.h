// The `http` step's `with:` block, checked and turned into a request description before any
// socket is opened, so a typo in a workflow fails with invalid_argument naming the field instead
// of sending a half-formed request. Used by http_step.cc and by its tests; no Poco here.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/common/result.h"

namespace herald::steps::http {

inline constexpr std::chrono::milliseconds kDefaultTimeout{30'000};
inline constexpr size_t kDefaultMaxResponseBytes = 10u * 1024 * 1024;
inline constexpr int kMaxRedirects = 5;

// An inclusive range of statuses the workflow accepts as success (`expect: [200, "4xx"]`).
struct StatusRange {
  int low = 0;
  int high = 0;
  bool contains(int status) const { return status >= low && status <= high; }
};

struct RequestSpec {
  std::string method = "GET";
  std::string url;  // absolute http(s) URL with `query:` already appended and encoded
  std::vector<std::pair<std::string, std::string>> headers;  // as written, in order
  std::optional<std::string> body;
  std::string content_type;  // set with body unless the headers name one
  std::chrono::milliseconds timeout = kDefaultTimeout;
  bool idempotency = false;
  std::vector<StatusRange> expect;  // empty: every status below 400 is a success
  size_t max_response_bytes = kDefaultMaxResponseBytes;
  bool follow_redirects = true;  // only ever for GET and HEAD

  bool is_expected(int status) const;
};

// Checks `with:` and builds the request. Every error is invalid_argument, not retryable, with a
// message that starts with the field's name.
Result<RequestSpec> parse_request(const Json& input);

// An absolute URL cut where the client needs it. `target` is the raw path and query as written
// (never decoded and re-encoded, so "/projects/group%2Fname" keeps its %2F), "/" when empty.
struct UrlParts {
  std::string scheme;  // lower-case "http" or "https"
  std::string host;
  uint16_t port = 0;
  std::string target;
};
Result<UrlParts> split_url(std::string_view url);

// RFC 3986 percent-encoding of everything but unreserved characters, for query names and values.
std::string percent_encode(std::string_view text);

}  // namespace herald::steps::http
