// One call of a plugin capability (or a plugin's init), and the host API it is given: log, HTTP
// through the engine's client, secrets, emit, idempotency key, cancellation, context. Native
// plugins reach it through the C table of sdk/include/herald/plugin.h (host_api()), Lua plugins
// through the `herald` table; both land here, so the two kinds behave the same. Every
// operation takes and gives JSON or text, so a later `herald plugin-host` child can forward it
// over a pipe unchanged.
#pragma once

#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <herald/plugin.h>

#include "engine/common/result.h"
#include "engine/steps/step.h"

namespace herald::plugins {

class Invocation {
 public:
  // `context` must outlive the invocation.
  Invocation(std::string plugin, std::string capability, steps::StepContext& context);
  Invocation(const Invocation&) = delete;
  Invocation& operator=(const Invocation&) = delete;

  // The C handle for this invocation (and back).
  herald_call* handle() { return reinterpret_cast<herald_call*>(this); }
  static Invocation& from(herald_call* call) { return *reinterpret_cast<Invocation*>(call); }

  // --- the host API --------------------------------------------------------------------------
  // level: debug, info, warn, error. Goes to the run's timeline through StepContext::log, which
  // redacts secrets.
  void log(std::string_view level, std::string_view message);
  // One request through the `http` step's client (same fields as its `with:`), bounded by the
  // invocation's deadline, recorded in the timeline as "http METHOD URL -> STATUS (N ms)".
  Result<Json> http(const Json& request);
  // A secret of the run's workspace, as `{{ secrets.NAME }}` gives it; not_found otherwise.
  Result<std::string> secret(std::string_view name);
  // Queued; returned with the outcome only if the invocation succeeds.
  Status emit(std::string_view name, Json payload);
  // The plugin's entries in the run's workspace (steps::KeyValueStore). Keys are 1 to 256 bytes,
  // values any JSON up to 64 KiB as text. Written at once, not with the step's result: a write
  // stays even when the invocation then fails.
  Result<std::optional<Json>> kv_get(std::string_view key);
  Status kv_set(std::string_view key, Json value, std::optional<std::chrono::seconds> ttl);
  Result<bool> kv_delete(std::string_view key);
  const std::string& idempotency_key() const { return context_.idempotency_key; }
  bool cancelled() const;
  Json context_json() const;

  // --- the answer ----------------------------------------------------------------------------
  void set_output(std::string text);  // JSON text, parsed by finish()
  void set_output_json(Json value);
  void set_error(Error error);
  // The outcome for the plugin's return code (HERALD_OK / HERALD_FAILED): the output and events,
  // or the error; a plugin that broke the contract (no answer, two answers, invalid JSON, a
  // code that does not match) gets an internal error saying so.
  steps::StepOutcome finish(int32_t status);

  // Keeps `text` until the invocation ends and returns a view of it (host-owned buffers of the
  // C ABI).
  herald_str keep(std::string text);

  const std::string& plugin() const { return plugin_; }
  const std::string& capability() const { return capability_; }
  steps::StepContext& step_context() { return context_; }

 private:
  std::string workspace_id() const;  // "" outside a workspace (herald run, plugins call)
  Status kv_ready() const;

  std::string plugin_;
  std::string capability_;
  steps::StepContext& context_;
  std::deque<std::string> kept_;
  std::vector<steps::EmittedEvent> events_;
  int answers_ = 0;
  std::optional<std::string> output_text_;
  std::optional<Json> output_json_;
  std::optional<Error> error_;
};

// The host function table given to native plugins: the same for every call, for the life of the
// process.
const herald_host_api* host_api();

// An Error from a plugin's herald_error (codes Herald does not know become internal).
Error error_from_abi(const herald_error& error);

}  // namespace herald::plugins
