// The in-memory image of one active run: what the engine needs to decide the next action. It is
// rebuilt from the store's rows when a run is loaded (a restart, a timer firing), and dropped
// when the run finishes or goes to sleep waiting, so a waiting run costs no memory.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/common/result.h"
#include "engine/model/workflow.h"
#include "engine/runtime/engine.h"
#include "engine/store/store.h"

namespace herald::runtime {

// One execution unit: a plain step, or one element of a `foreach` step.
struct Unit {
  store::StepState state = store::StepState::pending;
  int attempt = 0;  // attempts started
  Json input = nullptr;
  Json output = nullptr;
  Json error = nullptr;
  Json logs = nullptr;  // the latest attempt's log lines (AttemptRecord::logs)
  std::optional<store::TimePoint> started_at;
  std::optional<store::TimePoint> finished_at;
  // A "rerun" wake-up came while this attempt was running (a second decision while the approval
  // step computes the first): it may have read the state from before, so when it asks to rerun
  // it runs again at once instead of waiting.
  bool woken_while_running = false;
};

struct StepSlot {
  const model::StepDef* def = nullptr;
  size_t index = 0;       // in workflow.steps, or in workflow.on_error when on_error is set
  bool on_error = false;
  std::string path;       // "steps[2]" or "on_error[0]", for error messages
  Unit self;              // the step as a whole
  bool is_foreach = false;
  Json items = nullptr;   // the evaluated foreach list
  std::vector<Unit> elements;
  int elements_in_flight = 0;
};

struct ActiveRun {
  std::mutex mu;
  store::RunRecord record;
  std::shared_ptr<const model::Workflow> workflow;
  std::vector<std::vector<size_t>> dependencies;  // per main step
  std::vector<StepSlot> slots;                    // main steps, then on_error steps

  // Immutable once the run is loaded, so workers read them without the lock.
  std::shared_ptr<const Json> inputs;
  std::shared_ptr<const Json> trigger;
  std::shared_ptr<const Json> vars;
  std::shared_ptr<const Json> run_info;
  std::shared_ptr<const WorkspaceSecrets> secrets;  // what step inputs see, and what is redacted

  // {step id: {output, state, error, attempts}}: replaced (never mutated) when a step finishes,
  // so an expression evaluated on a worker reads a stable snapshot.
  std::shared_ptr<const Json> steps_view;
  std::shared_ptr<const Json> error_view;  // the run's error, for on_error steps

  // Writes of pure steps not yet committed: they go to the store with the run's next commit
  // that cannot wait (a step with effects starting, a timer, the run finishing). A crash loses
  // only work that re-running reproduces.
  store::Commit deferred;

  int64_t lease_token = 0;  // the fencing token of this engine's lease on the run
  int in_flight = 0;      // units executing on workers
  bool failing = false;   // a main step failed: on_error steps run, then the run fails
  bool cancel_requested = false;
  bool evicted = false;   // dropped from the engine's map; a new load must come from the store
  std::atomic<bool> cancelled{false};

  size_t main_count() const { return workflow->steps.size(); }
  StepSlot* find_slot(const std::string& step_id, bool on_error);
};

}  // namespace herald::runtime
