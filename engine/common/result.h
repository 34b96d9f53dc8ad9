// Result<T> and Error: how Herald reports a failure that is expected at run time (a bad input,
// an unreachable server, a sandbox limit) as a value instead of an exception. Exceptions are kept
// for configuration loading; anything on the run path returns a Result.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include <nlohmann/json.hpp>

namespace herald {

using Json = nlohmann::json;

// A small canonical set, after absl::StatusCode. `retryable` on Error, not the code, decides
// whether the runtime tries again: an `unavailable` from a 503 is, an `invalid_argument` never.
enum class ErrorCode {
  invalid_argument,     // the input is wrong; retrying cannot help
  not_found,
  already_exists,
  failed_precondition,  // the system is not in a state where this can run
  unavailable,          // a server or connection failed; usually retryable
  deadline_exceeded,    // a timeout
  resource_exhausted,   // a rate limit or a sandbox limit (memory, instructions)
  cancelled,
  permission_denied,
  unauthenticated,
  internal,             // a broken invariant or an unexpected failure
  aborted,              // a concurrent change got there first; read again and retry
};

std::string_view to_string(ErrorCode code);
std::optional<ErrorCode> parse_error_code(std::string_view text);

struct Error {
  ErrorCode code = ErrorCode::internal;
  std::string message;
  bool retryable = false;
  // Set when the other side said how long to wait (HTTP Retry-After, a rate-limit reset).
  std::optional<std::chrono::milliseconds> retry_after;
  Json details = nullptr;  // extra structured facts (HTTP status, response body, ...)

  // {"code": "...", "message": "...", "retryable": bool, "retry_after_ms"?: n, "details"?: ...}
  Json to_json() const;
  static Error from_json(const Json& json);
};

// Shorthands for the common cases.
Error make_error(ErrorCode code, std::string message, bool retryable = false);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::in_place_index<0>, std::move(value)) {}
  Result(Error error) : value_(std::in_place_index<1>, std::move(error)) {}

  bool ok() const { return value_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(value_); }
  const T& value() const& { return std::get<0>(value_); }
  T&& value() && { return std::get<0>(std::move(value_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(value_); }
  Error&& error() && { return std::get<1>(std::move(value_)); }

 private:
  std::variant<T, Error> value_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const& { return *error_; }
  Error&& error() && { return std::move(*error_); }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

inline Status ok_status() { return {}; }

}  // namespace herald
