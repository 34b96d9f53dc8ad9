// The Engine runs workflows durably: it creates runs, makes steps ready as their dependencies
// finish, executes them on a pool of worker threads, and commits every state change to the store
// before the next action. Waiting (a `wait` step, a retry's backoff) is a timer row in the store,
// so a waiting run holds no thread and no memory; restarting resumes every run from the store.
// Used by `herald run`, `herald resume`, and later `herald serve`.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "engine/common/redactor.h"
#include "engine/common/result.h"
#include "engine/expr/evaluator.h"
#include "engine/model/workflow.h"
#include "engine/steps/step.h"
#include "engine/store/store.h"

namespace herald::approvals {
class Desk;
}  // namespace herald::approvals

namespace herald::runtime {

// One line of progress: a step (or the run itself, with step_id empty) changed state.
struct ProgressEvent {
  std::string run_id;
  std::string workspace_id;
  std::string workflow_id;
  std::string step_id;  // empty for the run
  std::string uses;     // the step's type ("http", "set", ...); empty for the run
  int item = -1;
  std::string state;    // a RunState or StepState name
  int attempt = 0;
  std::optional<std::chrono::milliseconds> duration;
  std::optional<Error> error;  // redacted
  std::string message;         // for `log` lines
  Json output = nullptr;       // a succeeded step's output (redacted)
  store::TimePoint at;
};

// The secrets of one workspace, as step inputs see them, with the redactor that hides them.
struct WorkspaceSecrets {
  Json values = Json::object();
  Redactor redactor;
};

// A run to start from a stored workflow version (a deployed workflow).
struct RunRequest {
  std::string workspace_id;
  int64_t version_id = 0;
  Json inputs = Json::object();
  Json trigger = Json::object();
};

// A run checked and rendered, not yet stored: see Engine::prepare_run.
struct PreparedRun {
  store::RunRecord record;
  std::shared_ptr<const model::Workflow> workflow;
};

struct EngineStats {
  size_t active_runs = 0;    // runs in memory (running, or being planned)
  size_t leased_runs = 0;    // runs this engine holds a lease on
  size_t queued_units = 0;   // units waiting for a worker thread (the ready queue)
  size_t running_units = 0;  // units executing on worker threads
};

struct EngineOptions {
  int worker_threads = 2;
  expr::Limits limits;            // for every expression, template and script
  Json env = Json::object();      // what `env` shows to expressions
  Json secrets = Json::object();  // what `secrets` shows to step inputs; redacted everywhere
  std::function<void(const ProgressEvent&)> on_progress;  // called from worker threads
  // Whether anything listens to an event (`run.succeeded`, a step's `emit`) in a workspace; events
  // nobody listens to are not stored. Unset: every event of a workspace run is stored.
  std::function<bool(const std::string& workspace_id, const std::string& name)> wants_event;
  // The secrets of a workspace's runs (cached by the caller; called when a run is loaded). When
  // unset or returning null, runs see `secrets` above.
  std::function<std::shared_ptr<const WorkspaceSecrets>(const std::string& workspace_id)>
      secrets_for;
  // `herald run` drives only the run it started, so that two of them (or a `herald run` next to
  // `herald resume`) on one store never fire each other's timers; everything else drives every
  // run in the store.
  bool own_runs_only = false;
  // The approvals desk `approval` steps use (its link settings, its event filter); unset: the
  // engine makes one over its store. Borrowed: must outlive the engine.
  approvals::Desk* approvals = nullptr;
  // Seeds retry jitter, for reproducible tests; 0 picks a random seed.
  uint64_t random_seed = 0;

  // ---- sharing a store with other engines (store.h, RunLease) ------------------------------
  // The engine drives only runs it holds a lease on: those it starts, and those it claims from
  // the store (queued ones nobody holds, waiting ones whose timer is due, and those whose engine
  // died and whose lease ran out). Leases are renewed while held and given back when a run
  // finishes or goes to sleep on a timer.
  std::string engine_id;  // names this engine in leases; "" picks "<host>:<pid>:<random>"
  std::chrono::milliseconds lease_duration{30'000};
  // How often an engine looks for work in the store when nothing wakes it up.
  std::chrono::milliseconds poll_interval{1'000};
  // False: the engine starts, retries and cancels runs but drives none (`herald serve
  // --no-workers`); the runs it starts are left for other engines to claim.
  bool drive_runs = true;
  // `herald resume`, after a crash: the first claim also takes runs that another engine's live
  // lease holds (the dead engine's leases would keep them until they end). Fencing keeps any late
  // write of a still-living engine out of the store.
  bool take_over_leases = false;
  // Called after a commit that leaves work for other engines (a run queued for any engine to
  // claim, a timer due now for a run another engine holds): publishes a wake-up, so idle engines
  // look at once instead of at their next poll.
  std::function<void()> announce_work;
};

class Engine {
 public:
  Engine(store::Store& store, const steps::StepRegistry& registry, EngineOptions options);
  ~Engine();  // stops the workers; runs in flight stay in the store and resume on the next start
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // The parse options that make a workflow valid for this engine: known steps, expression checks.
  model::ParseOptions parse_options() const;

  // Stores the workflow's source as a version (deduplicated by content), checks the inputs
  // against the declared ones (applying defaults, converting text given on the command line to
  // the declared type), commits a queued run and schedules it. Returns the run id.
  Result<std::string> start_run(const std::string& source, const std::string& file_name,
                                Json inputs, Json trigger = Json::object());

  // Checks the inputs of a run of a stored version and renders its vars, without storing it.
  // The run id is assigned here, so a caller can watch for its progress before it starts.
  Result<PreparedRun> prepare_run(RunRequest request);

  // Commits the runs together with `with` (schedule marks, consumed events, ...) in one
  // transaction, then schedules them. Nothing is stored when the commit fails.
  Status start_prepared(std::vector<PreparedRun> runs, store::Commit with = {});

  // prepare_run + start_prepared for one run; returns its id.
  Result<std::string> start_version(RunRequest request);

  // Runs a failed run again from its failed step: failed and cancelled steps (and foreach
  // elements) go back to pending, keeping their attempt counts and idempotency keys; finished
  // steps keep their outputs. failed_precondition unless the run failed.
  Status retry_run(const std::string& run_id);

  // Picks up every run that is queued or running in the store (what a restart does) and arms the
  // timer loop for the waiting ones.
  Status resume_all();

  // Looks at the store now rather than at the next poll: something (a decision through the API,
  // a wake-up from another engine) added work. Also announces it to other engines when this one
  // drives no runs.
  void wake();
  // Looks at the store now, without announcing: for wake-ups that came from other engines.
  void poke();

  // Blocks until the run is final (succeeded, failed or cancelled) or the timeout passes.
  Result<store::RunRecord> wait_for_run(const std::string& run_id,
                                        std::optional<std::chrono::milliseconds> timeout = {});

  // Blocks until no run is queued, running or waiting in the store.
  Status wait_until_idle(std::optional<std::chrono::milliseconds> timeout = {});

  // Cancels a run: steps not started are cancelled, running ones finish and are discarded.
  Status cancel_run(const std::string& run_id);

  // Stops taking new work and waits up to `grace` for steps in flight to finish; units not yet
  // started stay in the store and resume on the next start. False when steps were still
  // executing after the grace period (the caller should exit; they re-run on the next start).
  bool shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds::max());

  EngineStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The parse options that make a workflow valid for these steps: known `uses`, raw fields, and
// Lua syntax checks of every expression, template and script.
model::ParseOptions workflow_parse_options(const steps::StepRegistry& registry);

// Checks `given` against the workflow's declared inputs: unknown names and missing required ones
// are errors; defaults fill the rest; strings are converted to the declared type.
Result<Json> prepare_inputs(const model::Workflow& workflow, const Json& given);

}  // namespace herald::runtime
