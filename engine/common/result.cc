#include "engine/common/result.h"

#include <array>

namespace herald {

namespace {
constexpr std::array<std::pair<ErrorCode, std::string_view>, 12> kErrorCodeNames{{
    {ErrorCode::invalid_argument, "invalid_argument"},
    {ErrorCode::not_found, "not_found"},
    {ErrorCode::already_exists, "already_exists"},
    {ErrorCode::failed_precondition, "failed_precondition"},
    {ErrorCode::unavailable, "unavailable"},
    {ErrorCode::deadline_exceeded, "deadline_exceeded"},
    {ErrorCode::resource_exhausted, "resource_exhausted"},
    {ErrorCode::cancelled, "cancelled"},
    {ErrorCode::permission_denied, "permission_denied"},
    {ErrorCode::unauthenticated, "unauthenticated"},
    {ErrorCode::internal, "internal"},
    {ErrorCode::aborted, "aborted"},
}};
}  // namespace

std::string_view to_string(ErrorCode code) {
  for (const auto& [c, name] : kErrorCodeNames) {
    if (c == code) return name;
  }
  return "internal";
}

std::optional<ErrorCode> parse_error_code(std::string_view text) {
  for (const auto& [c, name] : kErrorCodeNames) {
    if (name == text) return c;
  }
  return std::nullopt;
}

Json Error::to_json() const {
  Json json = {{"code", std::string(to_string(code))}, {"message", message}, {"retryable", retryable}};
  if (retry_after) json["retry_after_ms"] = retry_after->count();
  if (!details.is_null()) json["details"] = details;
  return json;
}

Error Error::from_json(const Json& json) {
  Error error;
  if (!json.is_object()) {
    error.message = json.is_string() ? json.get<std::string>() : json.dump();
    return error;
  }
  if (auto it = json.find("code"); it != json.end() && it->is_string()) {
    error.code = parse_error_code(it->get<std::string>()).value_or(ErrorCode::internal);
  }
  if (auto it = json.find("message"); it != json.end() && it->is_string()) {
    error.message = it->get<std::string>();
  }
  if (auto it = json.find("retryable"); it != json.end() && it->is_boolean()) {
    error.retryable = it->get<bool>();
  }
  if (auto it = json.find("retry_after_ms"); it != json.end() && it->is_number()) {
    error.retry_after = std::chrono::milliseconds(it->get<int64_t>());
  }
  if (auto it = json.find("details"); it != json.end()) error.details = *it;
  return error;
}

Error make_error(ErrorCode code, std::string message, bool retryable) {
  Error error;
  error.code = code;
  error.message = std::move(message);
  error.retryable = retryable;
  return error;
}

}  // namespace herald
