#include "engine/steps/http/http_response.h"

#include <algorithm>
#include <cctype>

#include <Poco/DateTime.h>
#include <Poco/DateTimeParser.h>
#include <Poco/Exception.h>
#include <Poco/Timestamp.h>

namespace herald::steps::http {
namespace {

// How much of a failed body goes into the one-line message; details carry more.
constexpr size_t kMessageBodyChars = 200;

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  return text;
}

bool is_json_media_type(std::string_view content_type) {
  std::string type = lower(trim(content_type.substr(0, content_type.find(';'))));
  return type == "application/json" || type == "text/json" ||
         (type.size() > 5 && type.ends_with("+json"));
}

// Cuts at a character boundary so the kept part stays valid UTF-8.
std::string truncate_utf8(std::string_view text, size_t limit) {
  if (text.size() <= limit) return to_valid_utf8(text);
  size_t cut = limit;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return to_valid_utf8(text.substr(0, cut));
}

std::string one_line(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : trim(text)) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = true;
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

struct Classification {
  ErrorCode code;
  bool retryable;
};

Classification classify(int status) {
  if (status >= 500) return {ErrorCode::unavailable, true};
  switch (status) {
    case 429:
      return {ErrorCode::resource_exhausted, true};
    case 408:
      return {ErrorCode::deadline_exceeded, true};
    case 401:
      return {ErrorCode::unauthenticated, false};
    case 403:
      return {ErrorCode::permission_denied, false};
    case 404:
    case 410:
      return {ErrorCode::not_found, false};
    case 409:
    case 412:
      return {ErrorCode::failed_precondition, false};
    default:
      break;
  }
  if (status >= 400) return {ErrorCode::invalid_argument, false};
  // A 1xx-3xx status the workflow's `expect:` did not list.
  return {ErrorCode::failed_precondition, false};
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    if (value.size() > 9) return std::nullopt;  // beyond 30 years; not a real answer
    return std::chrono::seconds(std::stoll(std::string(value)));
  }
  Poco::DateTime date;
  int tzd = 0;
  if (!Poco::DateTimeParser::tryParse(std::string(value), date, tzd)) return std::nullopt;
  date.makeUTC(tzd);
  auto at = std::chrono::system_clock::time_point(
      std::chrono::microseconds(date.timestamp().epochMicroseconds()));
  auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(at - now);
  return std::max(delay, std::chrono::milliseconds(0));
}

std::string to_valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    auto byte = static_cast<unsigned char>(text[i]);
    size_t length = byte < 0x80                    ? 1
                    : byte >= 0xC2 && byte <= 0xDF ? 2
                    : byte >= 0xE0 && byte <= 0xEF ? 3
                    : byte >= 0xF0 && byte <= 0xF4 ? 4
                                                   : 0;
    bool valid = length > 0 && i + length <= text.size();
    for (size_t k = 1; valid && k < length; ++k) {
      valid = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    }
    if (valid && length >= 3) {
      // Reject overlong forms, UTF-16 surrogates and code points past U+10FFFF.
      auto second = static_cast<unsigned char>(text[i + 1]);
      if (byte == 0xE0 && second < 0xA0) valid = false;
      if (byte == 0xED && second > 0x9F) valid = false;
      if (byte == 0xF0 && second < 0x90) valid = false;
      if (byte == 0xF4 && second > 0x8F) valid = false;
    }
    if (valid) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

Json decode_body(const std::string& body, std::string_view content_type) {
  if (is_json_media_type(content_type) && !body.empty()) {
    Json parsed = Json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_discarded()) return parsed;
  }
  return to_valid_utf8(body);
}

Error status_error(const ResponseFacts& response, std::chrono::system_clock::time_point now) {
  Classification kind = classify(response.status);
  std::string message = "http: " + response.method + " " + response.url + " answered " +
                        std::to_string(response.status);
  if (!response.reason.empty()) message += " " + response.reason;
  std::string snippet = one_line(truncate_utf8(response.body, kMessageBodyChars));
  if (!snippet.empty()) {
    message += ": " + snippet;
    if (response.body.size() > kMessageBodyChars) message += "...";
  }
  Error error = make_error(kind.code, std::move(message), kind.retryable);
  if (kind.retryable && response.headers.contains("retry-after")) {
    error.retry_after = parse_retry_after(response.headers["retry-after"].get<std::string>(), now);
  }
  // A small JSON error body stays JSON, so `error.details.body.message` works in on_error steps.
  Json body = response.body.size() <= kErrorBodyBytes
                  ? decode_body(response.body, response.content_type)
                  : Json(truncate_utf8(response.body, kErrorBodyBytes));
  error.details = {{"status", response.status},
                   {"headers", response.headers},
                   {"body", std::move(body)},
                   {"url", response.url}};
  if (response.body.size() > kErrorBodyBytes) error.details["body_truncated"] = true;
  return error;
}

}  // namespace herald::steps::http
