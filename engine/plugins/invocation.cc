#include "engine/plugins/invocation.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <functional>

#include "engine/expr/evaluator.h"
#include "engine/plugins/rate_limits.h"
#include "engine/steps/builtins.h"

namespace herald::plugins {

namespace {

using steps::Clock;

Error contract_error(const Invocation& call, std::string what) {
  return make_error(ErrorCode::internal,
                    "plugin " + call.plugin() + ": " + call.capability() + " " + std::move(what));
}

const char* level_name(int32_t level) {
  switch (level) {
    case HERALD_LOG_DEBUG:
      return "debug";
    case HERALD_LOG_WARN:
      return "warn";
    case HERALD_LOG_ERROR:
      return "error";
    default:
      return "info";
  }
}

std::string_view view(const char* data, size_t size) {
  return data == nullptr ? std::string_view() : std::string_view(data, size);
}

// Whom a platform's "slow down" applies to: the host, and the credential the request carries
// (platforms limit per token or account), never the credential itself.
std::string limit_key(const Json& request, const std::string& url) {
  std::string key = url_host(url);
  const Json headers = request.value("headers", Json::object());
  if (headers.is_object()) {
    for (const auto& [name, value] : headers.items()) {
      std::string lower = name;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (lower == "authorization" && value.is_string()) {
        const size_t digest = std::hash<std::string>{}(value.get<std::string>()) % 100000;
        key += " (credential " + std::to_string(digest) + ")";
      }
    }
  }
  return key;
}

// --- the C table: each function is noexcept and turns any failure into an error answer --------

void abi_log(herald_call* call, int32_t level, const char* message, size_t size) noexcept {
  try {
    Invocation::from(call).log(level_name(level), view(message, size));
  } catch (...) {
  }
}

// Writes `result` into *out as the ABI expects: the value's text on success, the error object
// otherwise.
int32_t answer(Invocation& call, const Result<Json>& result, herald_str* out) {
  if (result.ok()) {
    if (out) *out = call.keep(result->dump(-1, ' ', false, Json::error_handler_t::replace));
    return HERALD_OK;
  }
  if (out)
    *out = call.keep(result.error().to_json().dump(-1, ' ', false, Json::error_handler_t::replace));
  return HERALD_FAILED;
}

int32_t abi_http(herald_call* call, const char* request, size_t size,
                 herald_str* response) noexcept {
  try {
    Invocation& self = Invocation::from(call);
    Json parsed = Json::parse(view(request, size), nullptr, false);
    if (parsed.is_discarded()) {
      return answer(self,
                    make_error(ErrorCode::invalid_argument, "http: the request is not valid JSON"),
                    response);
    }
    return answer(self, self.http(parsed), response);
  } catch (const std::exception& e) {
    if (response)
      *response = Invocation::from(call).keep(
          make_error(ErrorCode::internal, std::string("http: ") + e.what()).to_json().dump());
    return HERALD_FAILED;
  }
}

int32_t abi_secret(herald_call* call, const char* name, size_t size, herald_str* value) noexcept {
  try {
    Invocation& self = Invocation::from(call);
    auto secret = self.secret(view(name, size));
    if (secret.ok()) {
      if (value) *value = self.keep(std::move(secret).value());
      return HERALD_OK;
    }
    if (value) *value = self.keep(secret.error().to_json().dump());
    return HERALD_FAILED;
  } catch (...) {
    return HERALD_FAILED;
  }
}

int32_t abi_emit(herald_call* call, const char* name, size_t name_size, const char* payload,
                 size_t payload_size, herald_str* error) noexcept {
  try {
    Invocation& self = Invocation::from(call);
    Json parsed = payload == nullptr || payload_size == 0
                      ? Json::object()
                      : Json::parse(view(payload, payload_size), nullptr, false);
    Status status =
        parsed.is_discarded()
            ? Status(make_error(ErrorCode::invalid_argument, "emit: the payload is not valid JSON"))
            : self.emit(view(name, name_size), std::move(parsed));
    if (status.ok()) return HERALD_OK;
    if (error) *error = self.keep(status.error().to_json().dump());
    return HERALD_FAILED;
  } catch (...) {
    return HERALD_FAILED;
  }
}

herald_str abi_idempotency_key(herald_call* call) noexcept {
  const std::string& key = Invocation::from(call).idempotency_key();
  return {key.c_str(), key.size()};
}

int32_t abi_cancelled(herald_call* call) noexcept {
  return Invocation::from(call).cancelled() ? 1 : 0;
}

herald_str abi_context(herald_call* call) noexcept {
  try {
    Invocation& self = Invocation::from(call);
    return self.keep(self.context_json().dump());
  } catch (...) {
    return {"{}", 2};
  }
}

void abi_set_output(herald_call* call, const char* output, size_t size) noexcept {
  try {
    Invocation::from(call).set_output(std::string(view(output, size)));
  } catch (...) {
    Invocation::from(call).set_error(make_error(ErrorCode::internal, "out of memory"));
  }
}

void abi_set_error(herald_call* call, const herald_error* error) noexcept {
  Invocation& self = Invocation::from(call);
  try {
    if (error == nullptr) {
      self.set_error(contract_error(self, "called set_error with no error"));
      return;
    }
    self.set_error(error_from_abi(*error));
  } catch (...) {
    self.set_error(make_error(ErrorCode::internal, "out of memory"));
  }
}

// An error object into *out (when given), and HERALD_FAILED.
int32_t fail_with(Invocation& call, const Error& error, herald_str* out) {
  if (out) *out = call.keep(error.to_json().dump(-1, ' ', false, Json::error_handler_t::replace));
  return HERALD_FAILED;
}

int32_t abi_kv_get(herald_call* call, const char* key, size_t key_size, herald_str* value) noexcept {
  try {
    Invocation& self = Invocation::from(call);
    auto found = self.kv_get(view(key, key_size));
    if (!found.ok()) return fail_with(self, found.error(), value);
    if (value) {
      *value = found->has_value()
                   ? self.keep((*found)->dump(-1, ' ', false, Json::error_handler_t::replace))
                   : self.keep(std::string());
    }
    return HERALD_OK;
  } catch (const std::exception& e) {
    return fail_with(Invocation::from(call),
                     make_error(ErrorCode::internal, std::string("kv: ") + e.what()), value);
  }
}

int32_t abi_kv_set(herald_call* call, const char* key, size_t key_size, const char* value_json,
                   size_t value_size, int64_t ttl_seconds, herald_str* error) noexcept {
  try {
    Invocation& self = Invocation::from(call);
    Json value = Json::parse(view(value_json, value_size), nullptr, false);
    if (value.is_discarded()) {
      return fail_with(self, make_error(ErrorCode::invalid_argument, "kv: the value is not valid JSON"),
                       error);
    }
    if (ttl_seconds < 0) {
      return fail_with(
          self, make_error(ErrorCode::invalid_argument, "kv: ttl_seconds is 0 (none) or positive"),
          error);
    }
    std::optional<std::chrono::seconds> ttl;
    if (ttl_seconds > 0) ttl = std::chrono::seconds(ttl_seconds);
    Status status = self.kv_set(view(key, key_size), std::move(value), ttl);
    return status.ok() ? HERALD_OK : fail_with(self, status.error(), error);
  } catch (const std::exception& e) {
    return fail_with(Invocation::from(call),
                     make_error(ErrorCode::internal, std::string("kv: ") + e.what()), error);
  }
}

int32_t abi_kv_delete(herald_call* call, const char* key, size_t key_size,
                      herald_str* error) noexcept {
  try {
    Invocation& self = Invocation::from(call);
    auto removed = self.kv_delete(view(key, key_size));
    return removed.ok() ? HERALD_OK : fail_with(self, removed.error(), error);
  } catch (const std::exception& e) {
    return fail_with(Invocation::from(call),
                     make_error(ErrorCode::internal, std::string("kv: ") + e.what()), error);
  }
}

const herald_host_api kHostApi = {
    sizeof(herald_host_api),
    HERALD_ABI_VERSION_MAJOR,
    HERALD_ABI_VERSION_MINOR,
    HERALD_ABI_VERSION_PATCH,
    abi_log,
    abi_http,
    abi_secret,
    abi_emit,
    abi_idempotency_key,
    abi_cancelled,
    abi_context,
    abi_set_output,
    abi_set_error,
    abi_kv_get,
    abi_kv_set,
    abi_kv_delete,
};

}  // namespace

const herald_host_api* host_api() {
  return &kHostApi;
}

Error error_from_abi(const herald_error& given) {
  // Read only the fields the plugin's struct has.
  herald_error error{};
  std::memcpy(&error, &given, std::min(given.size, sizeof(herald_error)));
  std::optional<ErrorCode> code =
      error.code != nullptr ? parse_error_code(error.code) : std::optional<ErrorCode>();
  std::string message = error.message != nullptr ? error.message : "";
  if (!code && error.code != nullptr) {
    message = "(unknown error code '" + std::string(error.code) + "') " + message;
  }
  Error out =
      make_error(code.value_or(ErrorCode::internal), std::move(message), error.retryable != 0);
  if (error.retry_after_ms >= 0 &&
      given.size >= offsetof(herald_error, retry_after_ms) + sizeof(int64_t)) {
    out.retry_after = std::chrono::milliseconds(error.retry_after_ms);
  }
  if (error.details_json != nullptr) {
    Json details = Json::parse(error.details_json, nullptr, false);
    out.details = details.is_discarded() ? Json(error.details_json) : details;
  }
  return out;
}

Invocation::Invocation(std::string plugin, std::string capability, steps::StepContext& context)
    : plugin_(std::move(plugin)), capability_(std::move(capability)), context_(context) {}

void Invocation::log(std::string_view level, std::string_view message) {
  if (context_.log) context_.log(level, message);
}

Result<Json> Invocation::http(const Json& request) {
  static const std::shared_ptr<steps::Step> client = steps::make_http_step().step;
  if (!request.is_object()) {
    return make_error(ErrorCode::invalid_argument,
                      "http: the request must be an object with at least `url`");
  }
  if (cancelled()) return make_error(ErrorCode::cancelled, "http: the call was cancelled");
  const std::string method = request.value("method", std::string("GET"));
  const std::string url = request.value("url", std::string());
  auto bucket = RateLimits::read_bucket(request);
  if (!bucket.ok()) return std::move(bucket).error();
  const std::string host = limit_key(request, url);
  if (auto admitted = RateLimits::shared().admit(host, *bucket, RateLimits::Clock::now());
      !admitted.ok()) {
    log("warn", "http " + method + " " + url + " not sent: " + admitted.error().message);
    return std::move(admitted).error();
  }
  Json sent = request;
  sent.erase("rate_limit");  // Herald's, not the http step's
  auto started = std::chrono::steady_clock::now();
  steps::StepOutcome outcome = client->run(sent, context_);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  started)
                .count();
  if (outcome.kind == steps::StepOutcome::Kind::done) {
    log("info", "http " + method + " " + url + " -> " +
                    std::to_string(outcome.output.value("status", 0)) + " (" + std::to_string(ms) +
                    " ms)");
    return std::move(outcome.output);
  }
  if (outcome.error.retry_after) {
    // The platform asked every caller to wait, not only this call.
    RateLimits::shared().back_off(host, *outcome.error.retry_after, RateLimits::Clock::now());
  }
  std::string status = outcome.error.details.is_object() && outcome.error.details.contains("status")
                           ? " -> " + outcome.error.details["status"].dump()
                           : "";
  log("warn", "http " + method + " " + url + status + " failed (" + std::to_string(ms) +
                  " ms): " + outcome.error.message);
  return std::move(outcome.error);
}

Result<std::string> Invocation::secret(std::string_view name) {
  const Json* secrets = context_.scope != nullptr ? context_.scope->secrets : nullptr;
  if (secrets != nullptr && secrets->is_object()) {
    auto found = secrets->find(std::string(name));
    if (found != secrets->end() && found->is_string()) return found->get<std::string>();
  }
  return make_error(ErrorCode::not_found,
                    "secret '" + std::string(name) + "' is not set for this workspace");
}

Status Invocation::emit(std::string_view name, Json payload) {
  if (name.empty() || name.size() > 200 || name.substr(0, 4) == "run.") {
    return make_error(
        ErrorCode::invalid_argument,
        "emit: '" + std::string(name) +
            "' is not an event name (1 to 200 characters; run.* names are Herald's own)");
  }
  events_.push_back({std::string(name), std::move(payload)});
  return ok_status();
}

namespace {

constexpr size_t kMaxKvKey = 256;
constexpr size_t kMaxKvValue = 64 * 1024;

Status check_kv_key(std::string_view key) {
  if (key.empty() || key.size() > kMaxKvKey) {
    return make_error(ErrorCode::invalid_argument,
                      "kv: a key is 1 to 256 bytes, not " + std::to_string(key.size()));
  }
  return ok_status();
}

}  // namespace

std::string Invocation::workspace_id() const {
  if (context_.scope != nullptr && context_.scope->run != nullptr &&
      context_.scope->run->is_object()) {
    return context_.scope->run->value("workspace", std::string());
  }
  return "";
}

Status Invocation::kv_ready() const {
  if (context_.kv == nullptr) {
    return make_error(ErrorCode::failed_precondition,
                      "kv: there is no key-value store for this call (plugin " + plugin_ + ")");
  }
  return ok_status();
}

Result<std::optional<Json>> Invocation::kv_get(std::string_view key) {
  if (auto status = check_kv_key(key); !status.ok()) return std::move(status).error();
  if (auto status = kv_ready(); !status.ok()) return std::move(status).error();
  return context_.kv->get(workspace_id(), plugin_, key);
}

Status Invocation::kv_set(std::string_view key, Json value,
                          std::optional<std::chrono::seconds> ttl) {
  if (auto status = check_kv_key(key); !status.ok()) return status;
  if (auto status = kv_ready(); !status.ok()) return status;
  const size_t size = value.dump(-1, ' ', false, Json::error_handler_t::replace).size();
  if (size > kMaxKvValue) {
    return make_error(ErrorCode::invalid_argument, "kv: a value is at most 64 KiB as JSON, not " +
                                                       std::to_string(size) + " bytes");
  }
  if (ttl && ttl->count() <= 0) {
    return make_error(ErrorCode::invalid_argument, "kv: a ttl is a positive number of seconds");
  }
  return context_.kv->put(workspace_id(), plugin_, key, value, ttl);
}

Result<bool> Invocation::kv_delete(std::string_view key) {
  if (auto status = check_kv_key(key); !status.ok()) return std::move(status).error();
  if (auto status = kv_ready(); !status.ok()) return std::move(status).error();
  return context_.kv->remove(workspace_id(), plugin_, key);
}

bool Invocation::cancelled() const {
  return context_.is_cancelled() ||
         (context_.deadline != Clock::time_point::max() && Clock::now() >= context_.deadline);
}

Json Invocation::context_json() const {
  Json context = {{"run_id", context_.run_id},
                  {"step_id", context_.step_id},
                  {"item", context_.item},
                  {"attempt", context_.attempt},
                  {"idempotency_key", context_.idempotency_key},
                  {"plugin", plugin_},
                  {"capability", capability_},
                  {"workspace_id", workspace_id()}};
  if (context_.deadline != Clock::time_point::max()) {
    context["deadline_ms"] = context_.remaining(std::chrono::milliseconds(0)).count();
  }
  return context;
}

void Invocation::set_output(std::string text) {
  ++answers_;
  output_text_ = std::move(text);
}

void Invocation::set_output_json(Json value) {
  ++answers_;
  output_json_ = std::move(value);
}

void Invocation::set_error(Error error) {
  ++answers_;
  error_ = std::move(error);
}

herald_str Invocation::keep(std::string text) {
  kept_.push_back(std::move(text));
  return {kept_.back().c_str(), kept_.back().size()};
}

steps::StepOutcome Invocation::finish(int32_t status) {
  using steps::StepOutcome;
  if (answers_ > 1) {
    return StepOutcome::failed(
        contract_error(*this, "answered more than once (set_output/set_error)"));
  }
  if (status == HERALD_FAILED) {
    if (!error_) {
      return StepOutcome::failed(contract_error(*this, "failed without saying why (no set_error)"));
    }
    return StepOutcome::failed(*error_);
  }
  if (status != HERALD_OK) {
    return StepOutcome::failed(contract_error(
        *this, "returned " + std::to_string(status) + ", not HERALD_OK or HERALD_FAILED"));
  }
  if (error_) {
    return StepOutcome::failed(
        contract_error(*this, "returned HERALD_OK after set_error: " + error_->message));
  }
  Json output;
  if (output_json_) {
    output = std::move(*output_json_);
  } else if (output_text_) {
    output = Json::parse(*output_text_, nullptr, false);
    if (output.is_discarded()) {
      std::string why = "not JSON";
      try {
        Json strict = Json::parse(*output_text_);
        (void)strict;
      } catch (const Json::parse_error& e) {
        why = e.what();
      }
      return StepOutcome::failed(contract_error(*this, "returned invalid JSON: " + why));
    }
  } else {
    return StepOutcome::failed(
        contract_error(*this, "returned HERALD_OK without an output (no set_output)"));
  }
  StepOutcome outcome = StepOutcome::done(std::move(output));
  outcome.events = std::move(events_);
  return outcome;
}

}  // namespace herald::plugins
