// herald/plugin.hpp: writing a Herald plugin in C++17 without touching the C ABI by hand.
//
// An author builds a herald::sdk::Plugin, registers each capability as a lambda taking the input
// JSON and a Call (the host API of that invocation) and returning the output JSON, and hands
// it to HERALD_PLUGIN:
//
//   static herald::sdk::Plugin make() {
//     herald::sdk::Plugin plugin("hello", "1.0.0", "Greets people");
//     plugin.step("hello.greet", "Says hello", R"({"type": "object", "required": ["name"],
//                  "properties": {"name": {"type": "string"}}})",
//                 [](const nlohmann::json& input, herald::sdk::Call& call) {
//                   call.info("greeting " + input["name"].get<std::string>());
//                   return nlohmann::json{{"text", "hello " + input["name"].get<std::string>()}};
//                 });
//     return plugin;
//   }
//   HERALD_PLUGIN(make)
//
// No exception crosses the boundary: every entry point is wrapped in try/catch. Throw
// herald::sdk::Failure for a structured error (code, message, retryable, retry_after); any other
// exception becomes an `internal` error naming the capability. Header-only; needs nlohmann/json.
#pragma once

#include <herald/plugin.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace herald::sdk {

using json = nlohmann::json;

// A structured error, as herald_error carries it.
struct Error {
  std::string code = "internal";
  std::string message;
  bool retryable = false;
  std::optional<int64_t> retry_after_ms;
  json details = nullptr;

  // From the host's error objects (http, secret, emit failures).
  static Error from_json(const json& value) {
    Error error;
    if (!value.is_object()) {
      error.message = value.dump();
      return error;
    }
    error.code = value.value("code", std::string("internal"));
    error.message = value.value("message", std::string());
    error.retryable = value.value("retryable", false);
    if (value.contains("retry_after_ms") && value["retry_after_ms"].is_number_integer()) {
      error.retry_after_ms = value["retry_after_ms"].get<int64_t>();
    }
    if (value.contains("details")) error.details = value["details"];
    return error;
  }
};

// Throw to fail the invocation with a structured error.
class Failure : public std::exception {
 public:
  explicit Failure(Error error) : error_(std::move(error)) {}
  Failure(std::string code, std::string message, bool retryable = false,
          std::optional<int64_t> retry_after_ms = std::nullopt) {
    error_.code = std::move(code);
    error_.message = std::move(message);
    error_.retryable = retryable;
    error_.retry_after_ms = retry_after_ms;
  }
  const char* what() const noexcept override { return error_.message.c_str(); }
  const Error& error() const { return error_; }

 private:
  Error error_;
};

// The host API for one invocation. Valid only inside the handler it is passed to.
class Call {
 public:
  Call(const herald_host_api* host, herald_call* call) : host_(host), call_(call) {}

  void log(int32_t level, const std::string& message) const {
    host_->log(call_, level, message.data(), message.size());
  }
  void debug(const std::string& message) const { log(HERALD_LOG_DEBUG, message); }
  void info(const std::string& message) const { log(HERALD_LOG_INFO, message); }
  void warn(const std::string& message) const { log(HERALD_LOG_WARN, message); }
  void error(const std::string& message) const { log(HERALD_LOG_ERROR, message); }

  // One HTTP request through Herald's client (the `http` step's fields). Throws Failure with
  // the host's error (timeouts, refused connections, unexpected statuses: retryable when a
  // retry can help, with retry_after from Retry-After).
  json http(const json& request) const {
    std::string text = request.dump();
    herald_str response{nullptr, 0};
    int32_t status = host_->http(call_, text.data(), text.size(), &response);
    json answer = json::parse(response.data, response.data + response.size);
    if (status != HERALD_OK) throw Failure(Error::from_json(answer));
    return answer;
  }

  // A secret of the run's workspace; throws Failure(not_found) when it is not set.
  std::string secret(const std::string& name) const {
    herald_str value{nullptr, 0};
    int32_t status = host_->secret(call_, name.data(), name.size(), &value);
    if (status != HERALD_OK) {
      throw Failure(Error::from_json(json::parse(value.data, value.data + value.size)));
    }
    return std::string(value.data, value.size);
  }
  std::optional<std::string> find_secret(const std::string& name) const {
    herald_str value{nullptr, 0};
    if (host_->secret(call_, name.data(), name.size(), &value) != HERALD_OK) return std::nullopt;
    return std::string(value.data, value.size);
  }

  // Emitted with the step's result, only if the invocation succeeds.
  void emit(const std::string& name, const json& payload = json::object()) const {
    std::string text = payload.dump();
    herald_str error{nullptr, 0};
    if (host_->emit(call_, name.data(), name.size(), text.data(), text.size(), &error) !=
        HERALD_OK) {
      throw Failure(Error::from_json(json::parse(error.data, error.data + error.size)));
    }
  }

  std::string idempotency_key() const {
    herald_str key = host_->idempotency_key(call_);
    return std::string(key.data, key.size);
  }
  bool cancelled() const { return host_->cancelled(call_) != 0; }
  json context() const {
    herald_str text = host_->context(call_);
    return json::parse(text.data, text.data + text.size);
  }

  // The plugin's key-value entries in the run's workspace (ABI 1.1). Each throws Failure with
  // the host's error, or failed_precondition on a host older than 1.1.
  std::optional<json> kv_get(const std::string& key) const {
    require_kv();
    herald_str value{nullptr, 0};
    int32_t status = host_->kv_get(call_, key.data(), key.size(), &value);
    if (status != HERALD_OK) {
      throw Failure(Error::from_json(json::parse(value.data, value.data + value.size)));
    }
    if (value.size == 0) return std::nullopt;
    return json::parse(value.data, value.data + value.size);
  }
  // ttl_seconds 0: kept until deleted or replaced.
  void kv_set(const std::string& key, const json& value, int64_t ttl_seconds = 0) const {
    require_kv();
    std::string text = value.dump();
    herald_str error{nullptr, 0};
    if (host_->kv_set(call_, key.data(), key.size(), text.data(), text.size(), ttl_seconds,
                      &error) != HERALD_OK) {
      throw Failure(Error::from_json(json::parse(error.data, error.data + error.size)));
    }
  }
  void kv_delete(const std::string& key) const {
    require_kv();
    herald_str error{nullptr, 0};
    if (host_->kv_delete(call_, key.data(), key.size(), &error) != HERALD_OK) {
      throw Failure(Error::from_json(json::parse(error.data, error.data + error.size)));
    }
  }

  const herald_host_api* host() const { return host_; }
  herald_call* raw() const { return call_; }

 private:
  void require_kv() const {
    if (!HERALD_HOST_HAS(host_, kv_delete)) {
      throw Failure("failed_precondition", "this Herald is older than ABI 1.1: it has no kv");
    }
  }

  const herald_host_api* host_;
  herald_call* call_;
};

using Handler = std::function<json(const json& input, Call& call)>;
using InitHandler = std::function<void(Call& call)>;

namespace detail {

// Hands an error to the host; never throws (falls back to a fixed message when even building
// the error fails, e.g. out of memory).
inline void report(const herald_host_api* host, herald_call* call, const Error& error) noexcept {
  try {
    std::string details = error.details.is_null() ? std::string() : error.details.dump();
    herald_error out{};
    out.size = sizeof(herald_error);
    out.code = error.code.c_str();
    out.message = error.message.c_str();
    out.retryable = error.retryable ? 1 : 0;
    out.retry_after_ms = error.retry_after_ms.value_or(-1);
    out.details_json = details.empty() ? nullptr : details.c_str();
    host->set_error(call, &out);
  } catch (...) {
    herald_error out{};
    out.size = sizeof(herald_error);
    out.code = "internal";
    out.message = "the plugin failed and could not describe the failure";
    out.retry_after_ms = -1;
    host->set_error(call, &out);
  }
}

inline void report_exception(const herald_host_api* host, herald_call* call,
                             const std::string& where) noexcept {
  try {
    throw;
  } catch (const Failure& failure) {
    report(host, call, failure.error());
  } catch (const std::exception& e) {
    Error error;
    try {
      error.message = where + ": unexpected exception: " + e.what();
    } catch (...) {
    }
    report(host, call, error);
  } catch (...) {
    Error error;
    try {
      error.message = where + ": unexpected exception of an unknown type";
    } catch (...) {
    }
    report(host, call, error);
  }
}

}  // namespace detail

class Plugin {
 public:
  Plugin(std::string name, std::string version, std::string description)
      : state_(std::make_shared<State>()) {
    state_->name = std::move(name);
    state_->version = std::move(version);
    state_->description = std::move(description);
  }

  // Registers a capability. `input_schema` is a JSON Schema (draft 7) as JSON text, or empty
  // for "any input".
  Plugin& capability(std::string name, int32_t kind, std::string description,
                     std::string input_schema, Handler handler) {
    auto entry = std::make_unique<Entry>();
    entry->name = std::move(name);
    entry->description = std::move(description);
    entry->schema = std::move(input_schema);
    entry->handler = std::move(handler);
    entry->capability.size = sizeof(herald_capability);
    entry->capability.kind = kind;
    state_->entries.push_back(std::move(entry));
    return *this;
  }
  Plugin& step(std::string name, std::string description, std::string input_schema,
               Handler handler) {
    return capability(std::move(name), HERALD_KIND_STEP, std::move(description),
                      std::move(input_schema), std::move(handler));
  }
  Plugin& on_init(InitHandler init) {
    state_->init = std::move(init);
    return *this;
  }

  // The descriptor. Pointers into this Plugin's state: keep the Plugin alive for the life of
  // the process (HERALD_PLUGIN keeps it in a function-local static).
  const herald_plugin_descriptor* descriptor() {
    State& s = *state_;
    s.pointers.clear();
    for (auto& entry : s.entries) {
      herald_capability& c = entry->capability;
      c.name = entry->name.c_str();
      c.description = entry->description.c_str();
      c.input_schema = entry->schema.empty() ? nullptr : entry->schema.c_str();
      c.on_invoke = &Plugin::invoke;
      c.user_data = entry.get();
      s.pointers.push_back(&c);
    }
    s.descriptor = herald_plugin_descriptor{};
    s.descriptor.size = sizeof(herald_plugin_descriptor);
    s.descriptor.abi_major = HERALD_ABI_VERSION_MAJOR;
    s.descriptor.abi_minor = HERALD_ABI_VERSION_MINOR;
    s.descriptor.abi_patch = HERALD_ABI_VERSION_PATCH;
    s.descriptor.name = s.name.c_str();
    s.descriptor.version = s.version.c_str();
    s.descriptor.description = s.description.c_str();
    s.descriptor.capabilities = s.pointers.data();
    s.descriptor.capability_count = s.pointers.size();
    s.descriptor.on_init = s.init ? &Plugin::init_trampoline : nullptr;
    current_state() = state_.get();
    return &s.descriptor;
  }

 private:
  struct Entry {
    std::string name;
    std::string description;
    std::string schema;
    Handler handler;
    herald_capability capability{};
  };
  struct State {
    std::string name;
    std::string version;
    std::string description;
    std::vector<std::unique_ptr<Entry>> entries;
    std::vector<const herald_capability*> pointers;
    InitHandler init;
    herald_plugin_descriptor descriptor{};
  };

  // on_init has no user_data: the one plugin of this library is remembered here.
  static State*& current_state() {
    static State* state = nullptr;
    return state;
  }

  static int32_t invoke(void* user_data, const herald_host_api* host, herald_call* call,
                        const char* input, size_t input_size) noexcept {
    auto* entry = static_cast<Entry*>(user_data);
    try {
      json parsed = json::parse(input, input + input_size);
      Call context(host, call);
      json output = entry->handler(parsed, context);
      // dump() throws on invalid UTF-8 rather than sending the host something that is not JSON.
      std::string text = output.dump();
      host->set_output(call, text.data(), text.size());
      return HERALD_OK;
    } catch (...) {
      detail::report_exception(host, call, entry->name);
      return HERALD_FAILED;
    }
  }

  static int32_t init_trampoline(const herald_host_api* host, herald_call* call) noexcept {
    State* state = current_state();
    try {
      Call context(host, call);
      if (state != nullptr && state->init) state->init(context);
      return HERALD_OK;
    } catch (...) {
      detail::report_exception(host, call, state != nullptr ? state->name + " init" : "init");
      return HERALD_FAILED;
    }
  }

  std::shared_ptr<State> state_;
};

}  // namespace herald::sdk

// Defines the plugin's entry point from a function returning a herald::sdk::Plugin. The plugin
// is built on the first call and kept for the life of the process; if building it throws, the
// entry returns NULL and Herald refuses the plugin.
#define HERALD_PLUGIN(make_plugin)                                         \
  HERALD_PLUGIN_ENTRY {                                                    \
    try {                                                                  \
      static herald::sdk::Plugin herald_plugin_instance = (make_plugin)(); \
      static const herald_plugin_descriptor* herald_plugin_descriptor_ =   \
          herald_plugin_instance.descriptor();                             \
      return herald_plugin_descriptor_;                                    \
    } catch (...) {                                                        \
      return nullptr;                                                      \
    }                                                                      \
  }
