// How the `http` step reads an answer: the body as JSON or text, and an unexpected status as a
// herald::Error whose code and `retryable` flag tell the runtime whether trying again can help.
// Kept apart from the socket code so the rules are tested without a server.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "engine/common/result.h"

namespace herald::steps::http {

// Error.details.body keeps at most this much of a failed response.
inline constexpr size_t kErrorBodyBytes = 4096;

// `Retry-After` as delta-seconds ("120") or an HTTP-date; a date in the past gives 0. nullopt
// when the value is neither.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

// The body as JSON when the media type says JSON (application/json, */*+json) and it parses;
// otherwise as a string, with invalid UTF-8 replaced so the output can always be stored.
Json decode_body(const std::string& body, std::string_view content_type);

// Replaces each invalid UTF-8 sequence with U+FFFD.
std::string to_valid_utf8(std::string_view text);

struct ResponseFacts {
  std::string method;
  std::string url;
  int status = 0;
  std::string reason;
  Json headers = Json::object();  // lower-cased names
  std::string body;
  std::string content_type;
};

// The error for a status the step does not accept: 5xx unavailable, 429 resource_exhausted and
// 408 deadline_exceeded are retryable (with retry_after from Retry-After); 400 invalid_argument,
// 401 unauthenticated, 403 permission_denied, 404/410 not_found, 409/412 failed_precondition and
// other statuses are not. details = {status, headers, body (first 4 KiB), url}.
Error status_error(const ResponseFacts& response, std::chrono::system_clock::time_point now);

}  // namespace herald::steps::http
