// The contract between the runtime and a step implementation (built-in now, plugin capabilities
// later). A step gets its rendered input and a context, and answers with an output, an error, or
// "suspend until T" (a wait). It never touches the store: the runtime commits what it returns.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/common/result.h"

namespace herald::expr {
class Evaluator;
struct Scope;
}  // namespace herald::expr

namespace herald::approvals {
class Desk;
}  // namespace herald::approvals

namespace herald::steps {

using Clock = std::chrono::system_clock;

// Small values a plugin keeps between calls (herald_host_api.kv_*, herald.kv in Lua), scoped to
// a workspace and a plugin. The runtime backs it with the store; a step never sees the store.
class KeyValueStore {
 public:
  virtual ~KeyValueStore() = default;
  // nullopt when there is no such entry (or it expired).
  virtual Result<std::optional<Json>> get(std::string_view workspace_id, std::string_view plugin,
                                          std::string_view key) = 0;
  // ttl: nullopt keeps the entry until it is deleted or replaced.
  virtual Status put(std::string_view workspace_id, std::string_view plugin, std::string_view key,
                     const Json& value, std::optional<std::chrono::seconds> ttl) = 0;
  // True when an entry was removed.
  virtual Result<bool> remove(std::string_view workspace_id, std::string_view plugin,
                              std::string_view key) = 0;
};

struct StepContext {
  std::string run_id;
  std::string step_id;
  int item = -1;
  int attempt = 1;
  // Stable for (run, step, item) across retries and restarts; effects carry it so they happen
  // at most once.
  std::string idempotency_key;
  // When the step must be done (from `timeout:`); time_point::max() when unbounded.
  Clock::time_point deadline = Clock::time_point::max();
  const std::atomic<bool>* cancelled = nullptr;
  // For steps that evaluate Lua (`script`): the thread's evaluator and the run's scope.
  expr::Evaluator* evaluator = nullptr;
  const expr::Scope* scope = nullptr;
  // Writes a line to the run's log (and Herald's structured log) under this step.
  std::function<void(std::string_view level, std::string_view message)> log;
  // Masks the run's secrets in `text`. The runtime masks whatever a step returns, but cannot
  // recognise a secret the step cut in two (a body shortened for a message): a step that cuts or
  // reshapes text it was given masks it first. May be unset (a step called outside a run).
  std::function<std::string(std::string_view text)> redact;
  // Where plugins keep their entries; null where there is none (then kv calls fail clearly).
  KeyValueStore* kv = nullptr;
  // Where `approval` steps keep their approvals (engine/approvals/desk.h); null outside a
  // store-backed engine.
  approvals::Desk* approvals = nullptr;

  bool is_cancelled() const { return cancelled != nullptr && cancelled->load(); }
  // Time left before the deadline, or `fallback` when there is none.
  std::chrono::milliseconds remaining(std::chrono::milliseconds fallback) const;
};

// What a step returns.
// An event a step emits; stored with the step's result (for runs in a workspace).
struct EmittedEvent {
  std::string name;
  Json payload = Json::object();
};

struct StepOutcome {
  enum class Kind { done, failed, suspend } kind = Kind::done;
  Json output = nullptr;           // done; or for suspend: the output once the wait ends
  std::vector<EmittedEvent> events;  // done: committed in the same transaction as the result
  Error error;                     // failed
  Clock::time_point resume_at{};   // suspend; time_point::max(): until woken
  // suspend: run the step again when the wait ends (or something wakes it: a "rerun" timer),
  // instead of ending it with `output` — how an approval waits for decisions and deadlines.
  bool rerun = false;

  static StepOutcome done(Json output);
  static StepOutcome failed(Error error);
  static StepOutcome suspend_until(Clock::time_point at, Json output_when_resumed);
  // Waits until `at` (time_point::max(): until woken) and then runs the step again.
  static StepOutcome rerun_at(Clock::time_point at);
};

class Step {
 public:
  virtual ~Step() = default;
  virtual StepOutcome run(const Json& input, StepContext& context) = 0;
};

struct StepInfo {
  std::string name;         // what `uses:` names
  std::string description;
  // `with:` fields that are passed as written, not rendered as templates (e.g. script's code).
  std::vector<std::string> raw_fields;
  std::shared_ptr<Step> step;  // shared by all runs; implementations are thread-safe
  // A pure step has no effect outside the run (set, script, log): the runtime may skip
  // recording "running" before it, since re-running it after a crash changes nothing.
  bool pure = false;
  // The JSON Schema (draft 7) of `with:`, or null. Plugin capabilities declare one; the workflow
  // validator checks `with:` against it (engine/model/input_schema.h), so a typo fails
  // `herald validate` and a deploy rather than the run.
  Json input_schema = nullptr;
};

class StepRegistry {
 public:
  // Refuses a second step with the same name.
  Status add(StepInfo info);
  const StepInfo* find(std::string_view name) const;
  std::vector<std::string> names() const;

  // The registry with every built-in step.
  static StepRegistry with_builtins();

 private:
  std::map<std::string, StepInfo, std::less<>> steps_;
};

}  // namespace herald::steps
