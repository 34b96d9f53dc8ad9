#include "engine/runtime/engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <random>
#include <thread>

#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <spdlog/spdlog.h>

#include "engine/approvals/desk.h"
#include "engine/common/redactor.h"
#include "engine/common/time.h"
#include "engine/runtime/run_state.h"
#include "engine/runtime/store_key_values.h"

namespace herald::runtime {

using store::RunState;
using store::StepState;
using Clock = std::chrono::system_clock;

StepSlot* ActiveRun::find_slot(const std::string& step_id, bool on_error) {
  for (auto& slot : slots) {
    if (slot.on_error == on_error && slot.def->id == step_id) return &slot;
  }
  return nullptr;
}

namespace {

// How often the timer loop looks at the store even when nothing told it to: covers timers
// written by another process sharing the store.
constexpr std::chrono::milliseconds kTimerPollInterval{1000};

bool done_for_dependents(StepState state) {
  return state == StepState::succeeded || state == StepState::skipped;
}

std::string idempotency_key(const std::string& run_id, const StepSlot& slot, int item) {
  std::string key = run_id + ":" + (slot.on_error ? "on_error." : "") + slot.def->id;
  if (item >= 0) key += ":" + std::to_string(item);
  return key;
}

// A unit of work handed to a worker thread.
struct WorkItem {
  std::shared_ptr<ActiveRun> run;
  size_t slot = 0;
  int item = -1;
  int attempt = 1;
  std::shared_ptr<const Json> steps_view;
  std::shared_ptr<const Json> error_view;
  Json logs = nullptr;  // what the step logged during this attempt, for its AttemptRecord
};

// An attempt keeps at most this many log lines of at most this many bytes each: enough to read
// what a step did, without letting a chatty plugin grow the timeline without bound.
constexpr size_t kMaxAttemptLogLines = 200;
constexpr size_t kMaxAttemptLogLineBytes = 4000;

// "<host>:<pid>:<random>": unique among the engines sharing a store, and telling an operator
// reading the runs table which machine and process holds a lease.
std::string default_engine_id() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::random_device random;
  char suffix[9];
  std::snprintf(suffix, sizeof suffix, "%08x", random());
  return std::string(host[0] != '\0' ? host : "herald") + ":" + std::to_string(getpid()) + ":" +
         suffix;
}

}  // namespace

struct Engine::Impl {
  store::Store& store;
  const steps::StepRegistry& registry;
  EngineOptions options;
  // HERALD_SECRET_* for runs of `herald run`, and for workspaces secrets_for knows nothing of.
  std::shared_ptr<const WorkspaceSecrets> default_secrets;
  StoreKeyValues key_values{store};
  // The approvals desk of `approval` steps: the caller's (it knows the link settings), or one of
  // our own over the same store.
  std::unique_ptr<approvals::Desk> own_desk;
  approvals::Desk* approvals = nullptr;

  boost::asio::thread_pool pool;

  std::mutex runs_mu;
  std::map<std::string, std::shared_ptr<ActiveRun>> active;

  std::mutex workflows_mu;
  std::map<int64_t, std::shared_ptr<const model::Workflow>> workflows;
  // Workflows started from source text, by file name and source: starting the same file again
  // neither parses it nor stores a version again.
  struct KnownSource {
    std::shared_ptr<const model::Workflow> workflow;
    int64_t version_id = 0;
  };
  std::map<std::pair<std::string, std::string>, KnownSource> sources;

  std::mutex random_mu;
  std::mt19937_64 random;

  // Timer loop.
  std::mutex timer_mu;
  std::condition_variable timer_cv;
  bool timer_wakeup = false;
  bool stopping = false;
  std::thread timer_thread;
  std::atomic<bool> stopping_flag{false};  // read by workers without the timer lock

  std::atomic<size_t> queued_units{0};   // posted, not yet started
  std::atomic<size_t> running_units{0};  // executing

  std::mutex owned_mu;
  std::set<std::string> owned;  // with own_runs_only: the runs this engine started

  // Leases: the runs this engine holds (in memory, or asleep with own_runs_only), by run id,
  // with their fencing tokens.
  std::string owner;
  std::mutex leases_mu;
  std::map<std::string, int64_t> held;
  std::chrono::steady_clock::time_point next_renewal{};

  // Signalled when a run finishes or is dropped from memory.
  std::mutex done_mu;
  std::condition_variable done_cv;

  Impl(store::Store& s, const steps::StepRegistry& r, EngineOptions o)
      : store(s),
        registry(r),
        options(std::move(o)),
        pool(static_cast<size_t>(std::max(1, options.worker_threads))),
        random(options.random_seed != 0 ? options.random_seed : std::random_device{}()) {
    auto secrets = std::make_shared<WorkspaceSecrets>();
    if (options.secrets.is_object()) {
      secrets->values = options.secrets;
      for (const auto& [name, value] : options.secrets.items()) {
        if (value.is_string()) secrets->redactor.add(value.get<std::string>());
      }
    }
    default_secrets = std::move(secrets);
    approvals = options.approvals;
    if (approvals == nullptr) {
      own_desk = std::make_unique<approvals::Desk>(store);
      approvals = own_desk.get();
    }
    owner = options.engine_id.empty() ? default_engine_id() : options.engine_id;
    if (options.lease_duration < std::chrono::milliseconds(100)) {
      options.lease_duration = std::chrono::milliseconds(100);
    }
    if (options.poll_interval <= std::chrono::milliseconds(0)) {
      options.poll_interval = kTimerPollInterval;
    }
    if (options.drive_runs) timer_thread = std::thread([this] { timer_loop(); });
  }

  ~Impl() { stop(); }

  // Stops the timer loop and the workers: units not started are left (the store has them as
  // ready or pending, so the next start picks them up); units executing get up to `grace` to
  // finish. Returns false when some were still executing after it.
  bool stop(std::chrono::milliseconds grace = std::chrono::milliseconds::max()) {
    {
      std::lock_guard lock(timer_mu);
      if (stopping) return running_units.load() == 0;
      stopping = true;
      stopping_flag = true;
    }
    timer_cv.notify_all();
    if (timer_thread.joinable()) timer_thread.join();
    if (grace != std::chrono::milliseconds::max()) {
      auto deadline = std::chrono::steady_clock::now() + grace;
      std::unique_lock lock(done_mu);
      while (running_units.load() > 0 && std::chrono::steady_clock::now() < deadline) {
        done_cv.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() +
                                                        std::chrono::milliseconds(20)));
      }
      if (running_units.load() > 0) {
        pool.stop();
        return false;  // the pool's threads finish on their own; the process may exit now
      }
    }
    pool.join();
    release_all_leases();
    return true;
  }

  // Cancels a run that another engine drives (or that this one, driving none, cannot): a timer
  // of kind "cancel", due now, which the driving engine fires.
  Status request_cancel(const std::string& run_id) {
    auto record = store.get_run(run_id);
    if (!record.ok()) return record.error();
    if (store::is_final(record->state)) {
      return make_error(ErrorCode::failed_precondition,
                        "run " + run_id + " is already " + std::string(store::to_string(record->state)));
    }
    store::Commit commit;
    commit.add_timers.push_back({0, run_id, "", -1, "cancel", Clock::now()});
    if (auto status = store.commit(commit); !status.ok()) return status;
    announce();
    wake_timer_loop();
    return {};
  }

  // ---- leases ----------------------------------------------------------------------------

  store::TimePoint lease_end() const { return Clock::now() + options.lease_duration; }

  void hold(const std::string& run_id, int64_t token) {
    std::lock_guard lock(leases_mu);
    held[run_id] = token;
  }

  void let_go(const std::string& run_id) {
    std::lock_guard lock(leases_mu);
    held.erase(run_id);
  }

  bool holds(const std::string& run_id) {
    std::lock_guard lock(leases_mu);
    return held.count(run_id) != 0;
  }

  std::vector<store::RunLease> held_leases() {
    std::lock_guard lock(leases_mu);
    std::vector<store::RunLease> leases;
    leases.reserve(held.size());
    for (const auto& [id, token] : held) leases.push_back({id, token});
    return leases;
  }

  // Every lease/3, so that one failed renewal still leaves time for the next.
  void renew_leases_if_due() {
    auto now = std::chrono::steady_clock::now();
    if (now < next_renewal) return;
    next_renewal = now + options.lease_duration / 3;
    auto leases = held_leases();
    if (leases.empty()) return;
    auto lost = store.renew_leases(leases, lease_end());
    if (!lost.ok()) {
      spdlog::warn("renewing {} run lease(s) failed: {}", leases.size(), lost.error().message);
      return;
    }
    for (const auto& id : *lost) {
      spdlog::warn("run {}: lease lost to another engine; this engine stops driving it", id);
      let_go(id);
    }
  }

  // A clean stop: the runs go back to the store at once for other engines (or the next start)
  // instead of when their leases end.
  void release_all_leases() {
    auto leases = held_leases();
    if (leases.empty()) return;
    if (auto status = store.release_leases(leases); !status.ok()) {
      spdlog::warn("releasing {} run lease(s) failed (they end on their own): {}", leases.size(),
                   status.error().message);
      return;
    }
    std::lock_guard lock(leases_mu);
    held.clear();
  }

  void announce() {
    if (options.announce_work) options.announce_work();
  }

  bool is_stopping() {
    std::lock_guard lock(timer_mu);
    return stopping;
  }

  // ---- workflows -------------------------------------------------------------------------

  model::ParseOptions parse_options() const { return workflow_parse_options(registry); }

  Result<std::shared_ptr<const model::Workflow>> parse_source(const std::string& source,
                                                              const std::string& file_name) {
    auto outcome = model::parse_workflow(source, file_name, parse_options());
    if (!outcome.ok()) {
      std::string message;
      Json details = Json::array();
      for (const auto& diagnostic : outcome.diagnostics) {
        message += (message.empty() ? "" : "\n") + diagnostic.to_string();
        details.push_back(diagnostic.to_json());
      }
      Error error = make_error(ErrorCode::invalid_argument, message);
      error.details = std::move(details);
      return error;
    }
    return std::make_shared<const model::Workflow>(std::move(*outcome.workflow));
  }

  Result<std::shared_ptr<const model::Workflow>> workflow_version(int64_t version_id) {
    {
      std::lock_guard lock(workflows_mu);
      if (auto it = workflows.find(version_id); it != workflows.end()) return it->second;
    }
    auto version = store.get_workflow_version(version_id);
    if (!version.ok()) return version.error();
    auto parsed = parse_source(version->source, version->file_name);
    if (!parsed.ok()) return parsed.error();
    std::lock_guard lock(workflows_mu);
    workflows.emplace(version_id, *parsed);
    return *parsed;
  }

  // ---- scopes and rendering --------------------------------------------------------------

  expr::Scope scope_for(const ActiveRun& run, const Json* steps_view, const Json* error_view,
                        const Json* item, int index) const {
    expr::Scope scope;
    scope.inputs = run.inputs.get();
    scope.vars = run.vars.get();
    scope.trigger = run.trigger.get();
    scope.run = run.run_info.get();
    scope.env = &options.env;
    scope.steps = steps_view;
    scope.error = error_view;
    if (item != nullptr) {
      scope.item = item;
      scope.index = index;
    }
    scope.now = Clock::now();
    return scope;
  }

  Error located(const ActiveRun& run, const std::string& path, const Error& error) const {
    Error out = error;
    std::string where = run.workflow->file;
    if (auto it = run.workflow->locations.find(path); it != run.workflow->locations.end()) {
      where += ":" + std::to_string(it->second.line) + ":" + std::to_string(it->second.column);
    }
    out.message = where + ": " + path + ": " + error.message;
    return run.secrets->redactor.redact_error(out);
  }

  Json render_vars(const model::Workflow& workflow, const Json& inputs, const Json& trigger,
                   const Json& run_info, Error* error) {
    expr::Scope scope;
    scope.inputs = &inputs;
    scope.trigger = &trigger;
    scope.run = &run_info;
    scope.env = &options.env;
    auto rendered = expr::Evaluator::for_this_thread().render(workflow.vars, scope, options.limits);
    if (!rendered.ok()) {
      *error = rendered.error();
      return Json::object();
    }
    return std::move(rendered).value();
  }

  // ---- loading ---------------------------------------------------------------------------

  std::shared_ptr<const WorkspaceSecrets> secrets_of(const std::string& workspace_id) {
    if (!workspace_id.empty() && options.secrets_for) {
      if (auto secrets = options.secrets_for(workspace_id)) return secrets;
    }
    return default_secrets;
  }

  std::shared_ptr<ActiveRun> make_active(const store::RunRecord& record,
                                         std::shared_ptr<const model::Workflow> workflow) {
    auto run = std::make_shared<ActiveRun>();
    run->record = record;
    run->workflow = std::move(workflow);
    run->dependencies = run->workflow->dependencies();
    const auto& wf = *run->workflow;
    for (size_t i = 0; i < wf.steps.size(); ++i) {
      StepSlot slot;
      slot.def = &wf.steps[i];
      slot.index = i;
      slot.path = "steps[" + std::to_string(i) + "]";
      slot.is_foreach = !slot.def->foreach.empty();
      run->slots.push_back(std::move(slot));
    }
    for (size_t i = 0; i < wf.on_error.size(); ++i) {
      StepSlot slot;
      slot.def = &wf.on_error[i];
      slot.index = i;
      slot.on_error = true;
      slot.path = "on_error[" + std::to_string(i) + "]";
      slot.is_foreach = !slot.def->foreach.empty();
      run->slots.push_back(std::move(slot));
    }
    run->secrets = secrets_of(record.workspace_id);
    run->inputs = std::make_shared<const Json>(record.inputs);
    run->trigger = std::make_shared<const Json>(record.trigger);
    Json info = {{"id", record.id},
                 {"workspace", record.workspace_id},
                 {"workflow", record.workflow_id},
                 {"workflow_version", record.workflow_version_id},
                 {"created_at", format_iso8601(record.created_at)}};
    run->run_info = std::make_shared<const Json>(std::move(info));
    Error vars_error;
    run->vars = std::make_shared<const Json>(
        record.vars.is_object()
            ? record.vars
            : render_vars(wf, record.inputs, record.trigger, *run->run_info, &vars_error));
    run->steps_view = std::make_shared<const Json>(Json::object());
    if (!vars_error.message.empty() && record.error.is_null()) {
      // Nothing can run without its vars: the run fails (after its on_error steps).
      Json error = located(*run, "vars", vars_error).to_json();
      run->failing = true;
      run->record.error = error;
      run->error_view = std::make_shared<const Json>(std::move(error));
    }
    return run;
  }

  Result<std::shared_ptr<ActiveRun>> load_run(const std::string& run_id) {
    auto record = store.get_run(run_id);
    if (!record.ok()) return record.error();
    auto workflow = workflow_version(record->workflow_version_id);
    if (!workflow.ok()) return workflow.error();
    auto run = make_active(*record, *workflow);
    auto rows = store.get_steps(run_id);
    if (!rows.ok()) return rows.error();
    for (const auto& row : *rows) {
      StepSlot* slot = run->find_slot(row.step_id, row.on_error);
      if (slot == nullptr) continue;  // a row of a step the version does not have: ignore
      Unit unit;
      unit.state = row.state;
      unit.attempt = row.attempt;
      unit.input = row.input;
      unit.output = row.output;
      unit.error = row.error;
      unit.started_at = row.started_at;
      unit.finished_at = row.finished_at;
      // A unit that was executing when the process died runs again as the same attempt, with
      // the same idempotency key.
      if (unit.state == StepState::running && !(slot->is_foreach && row.item < 0)) {
        unit.state = StepState::ready;
        unit.attempt = std::max(0, unit.attempt - 1);
      }
      if (row.item < 0) {
        slot->self = std::move(unit);
        if (slot->is_foreach && row.input.is_object() && row.input.contains("items")) {
          slot->items = row.input["items"];
          slot->elements.resize(slot->items.size());
        }
      } else {
        if (static_cast<size_t>(row.item) >= slot->elements.size()) {
          slot->elements.resize(static_cast<size_t>(row.item) + 1);
        }
        slot->elements[static_cast<size_t>(row.item)] = std::move(unit);
      }
    }
    if (!record->error.is_null()) {
      run->failing = record->state == RunState::running || record->state == RunState::waiting;
      run->error_view = std::make_shared<const Json>(record->error);
    }
    // A main step that failed for good before the crash means on_error was under way.
    for (size_t i = 0; i < run->main_count(); ++i) {
      if (run->slots[i].self.state == StepState::failed) run->failing = true;
    }
    rebuild_steps_view(*run);
    return run;
  }

  // Finds the run in memory or loads it from the store. A run dropped from memory (evicted)
  // while this was called is reloaded, so there is never more than one live copy.
  Result<std::shared_ptr<ActiveRun>> get_or_load(const std::string& run_id) {
    std::lock_guard lock(runs_mu);
    if (auto it = active.find(run_id); it != active.end()) {
      std::unique_lock run_lock(it->second->mu);
      if (!it->second->evicted) return it->second;
      run_lock.unlock();
      active.erase(it);
    }
    store::ClaimRequest claim;
    claim.owner = owner;
    claim.now = Clock::now();
    claim.lease_until = claim.now + options.lease_duration;
    claim.limit = 1;
    claim.run_ids = {run_id};
    auto claimed = store.claim_runs(claim);
    if (!claimed.ok()) return claimed.error();
    if (claimed->empty()) {
      auto record = store.get_run(run_id);
      if (!record.ok()) return record.error();
      return make_error(ErrorCode::unavailable,
                        "run " + run_id + " is driven by another engine right now");
    }
    auto loaded = load_run(run_id);
    if (!loaded.ok()) {
      (void)store.release_leases(*claimed);
      return loaded.error();
    }
    (*loaded)->lease_token = claimed->front().token;
    hold(run_id, (*loaded)->lease_token);
    active.emplace(run_id, *loaded);
    return *loaded;
  }

  // Drops a run that was loaded for a look (a cancel or retry it turned out not to need) and
  // gives its lease back.
  void put_back(const std::shared_ptr<ActiveRun>& run) {
    int64_t token = 0;
    {
      std::lock_guard lock(run->mu);
      if (run->in_flight > 0 || run->evicted) return;
      if (!store::is_final(run->record.state) && run->record.state != RunState::waiting) return;
      run->evicted = true;
      token = run->lease_token;
    }
    evict(run);
    if (options.own_runs_only && !store::is_final(run->record.state)) return;
    (void)store.release_leases({{run->record.id, token}});
    let_go(run->record.id);
  }

  void evict(const std::shared_ptr<ActiveRun>& run) {
    {
      std::lock_guard lock(runs_mu);
      auto it = active.find(run->record.id);
      if (it != active.end() && it->second == run) active.erase(it);
    }
    done_cv.notify_all();
  }

  // ---- steps view ------------------------------------------------------------------------

  static Json step_entry(const StepSlot& slot) {
    Json entry = {{"state", std::string(store::to_string(slot.self.state))},
                  {"output", slot.self.output},
                  {"attempts", slot.self.attempt}};
    if (!slot.self.error.is_null()) entry["error"] = slot.self.error;
    return entry;
  }

  void rebuild_steps_view(ActiveRun& run) {
    Json view = Json::object();
    for (const auto& slot : run.slots) {
      if (store::is_final(slot.self.state)) view[slot.def->id] = step_entry(slot);
    }
    run.steps_view = std::make_shared<const Json>(std::move(view));
  }

  void publish_step(ActiveRun& run, const StepSlot& slot) {
    Json view = *run.steps_view;
    view[slot.def->id] = step_entry(slot);
    run.steps_view = std::make_shared<const Json>(std::move(view));
  }

  // ---- records ---------------------------------------------------------------------------

  store::StepRecord step_record(const ActiveRun& run, const StepSlot& slot, int item) const {
    const Unit& unit = item < 0 ? slot.self : slot.elements[static_cast<size_t>(item)];
    store::StepRecord record;
    record.run_id = run.record.id;
    record.step_id = slot.def->id;
    record.item = item;
    record.on_error = slot.on_error;
    record.state = unit.state;
    record.attempt = unit.attempt;
    record.input = item < 0 && slot.is_foreach ? Json{{"items", slot.items}} : unit.input;
    record.output = unit.output;
    record.error = unit.error;
    record.idempotency_key = idempotency_key(run.record.id, slot, item);
    record.started_at = unit.started_at;
    record.finished_at = unit.finished_at;
    return record;
  }

  store::AttemptRecord attempt_record(const ActiveRun& run, const StepSlot& slot, int item,
                                      const Unit& unit, StepState state) const {
    store::AttemptRecord record;
    record.run_id = run.record.id;
    record.step_id = (slot.on_error ? "on_error." : "") + slot.def->id;
    record.item = item;
    record.attempt = std::max(1, unit.attempt);
    record.state = state;
    record.input = unit.input;
    record.output = unit.output;
    record.error = unit.error;
    record.logs = unit.logs;
    record.started_at = unit.started_at.value_or(Clock::now());
    record.finished_at = unit.finished_at;
    return record;
  }

  void emit(const ActiveRun& run, const StepSlot* slot, int item, std::string_view state,
            const Unit* unit, std::optional<Error> error = std::nullopt) {
    if (!options.on_progress) return;
    ProgressEvent event;
    event.run_id = run.record.id;
    event.workspace_id = run.record.workspace_id;
    event.workflow_id = run.record.workflow_id;
    if (slot != nullptr) {
      event.step_id = (slot->on_error ? "on_error." : "") + slot->def->id;
      event.uses = slot->def->uses;
    }
    event.item = item;
    event.state = std::string(state);
    if (unit != nullptr) {
      event.attempt = unit->attempt;
      if (state == "succeeded") event.output = unit->output;
      if (unit->started_at && unit->finished_at) {
        event.duration = std::chrono::duration_cast<std::chrono::milliseconds>(*unit->finished_at -
                                                                               *unit->started_at);
      }
    } else if (run.record.started_at && run.record.finished_at) {
      event.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
          *run.record.finished_at - *run.record.started_at);
    }
    event.error = std::move(error);
    event.at = Clock::now();
    options.on_progress(event);
  }

  // ---- planning --------------------------------------------------------------------------

  // Marks a unit ready to execute and returns the work item; the caller dispatches it after the
  // commit that precedes it.
  WorkItem take(const std::shared_ptr<ActiveRun>& run, size_t slot_index, int item) {
    StepSlot& slot = run->slots[slot_index];
    Unit& unit = item < 0 ? slot.self : slot.elements[static_cast<size_t>(item)];
    unit.state = StepState::running;
    unit.woken_while_running = false;
    unit.attempt += 1;
    run->in_flight += 1;
    if (item >= 0) slot.elements_in_flight += 1;
    return WorkItem{run, slot_index, item, unit.attempt, run->steps_view, run->error_view};
  }

  void fail_step(ActiveRun& run, StepSlot& slot, const Error& error, store::Commit& commit) {
    slot.self.state = StepState::failed;
    slot.self.error = error.to_json();
    slot.self.finished_at = Clock::now();
    commit.steps.push_back(step_record(run, slot, -1));
    publish_step(run, slot);
    emit(run, &slot, -1, "failed", &slot.self, error);
    if (slot.on_error) return;  // an on_error step failing does not stop the others
    if (!run.failing) {
      run.failing = true;
      Json run_error = error.to_json();
      run_error["step"] = slot.def->id;
      run.record.error = run_error;
      run.error_view = std::make_shared<const Json>(std::move(run_error));
    }
  }

  // Decides what happens next for a run and adds the writes to `commit`; units to execute go to
  // `dispatch`. Called with the run's lock held.
  void plan(const std::shared_ptr<ActiveRun>& run, store::Commit& commit,
            std::vector<WorkItem>& dispatch) {
    ActiveRun& r = *run;
    if (store::is_final(r.record.state)) return;
    auto now = Clock::now();
    bool run_changed = false;
    if (r.record.state == RunState::queued || r.record.state == RunState::waiting) {
      r.record.state = RunState::running;
      if (!r.record.started_at) r.record.started_at = now;
      run_changed = true;
    }

    if (r.cancel_requested) {
      for (size_t i = 0; i < r.slots.size(); ++i) {
        StepSlot& slot = r.slots[i];
        auto cancel_unit = [&](Unit& unit, int item) {
          if (unit.state == StepState::pending || unit.state == StepState::ready ||
              unit.state == StepState::waiting) {
            unit.state = StepState::cancelled;
            unit.finished_at = now;
            commit.steps.push_back(step_record(r, slot, item));
          }
        };
        for (size_t e = 0; e < slot.elements.size(); ++e) cancel_unit(slot.elements[e], static_cast<int>(e));
        if (slot.is_foreach && slot.self.state == StepState::running && slot.elements_in_flight == 0) {
          slot.self.state = StepState::waiting;  // so that cancel_unit takes it
        }
        cancel_unit(slot.self, -1);
      }
      commit.delete_timers_of_runs.push_back(r.record.id);
      if (r.in_flight == 0) {
        finish_run(r, RunState::cancelled, commit);
        return;
      }
      if (run_changed) commit.update_run = r.record;
      return;
    }

    if (!r.failing) plan_main(run, commit, dispatch, now);
    if (r.failing) plan_failure(run, commit, dispatch, now);
    if (store::is_final(r.record.state)) return;

    if (dispatch.empty() && r.in_flight == 0) {
      bool any_waiting = false;
      for (const auto& slot : r.slots) {
        any_waiting = any_waiting || slot.self.state == StepState::waiting;
        for (const auto& unit : slot.elements) any_waiting = any_waiting || unit.state == StepState::waiting;
      }
      if (any_waiting) {
        r.record.state = RunState::waiting;
        run_changed = true;
      }
    }
    if (run_changed) {
      r.record.updated_at = now;
      commit.update_run = r.record;
    }
  }

  void plan_main(const std::shared_ptr<ActiveRun>& run, store::Commit& commit,
                 std::vector<WorkItem>& dispatch, store::TimePoint now) {
    ActiveRun& r = *run;
    bool progressed = true;
    while (progressed && !r.failing) {
      progressed = false;
      for (size_t i = 0; i < r.main_count() && !r.failing; ++i) {
        StepSlot& slot = r.slots[i];
        if (slot.self.state == StepState::pending) {
          bool ready = true;
          for (size_t dep : r.dependencies[i]) ready = ready && done_for_dependents(r.slots[dep].self.state);
          if (!ready) continue;
          if (activate(run, i, commit, dispatch, now)) progressed = true;
        } else if (slot.self.state == StepState::ready) {
          dispatch.push_back(take(run, i, -1));
        } else if (slot.is_foreach && slot.self.state == StepState::running) {
          if (advance_foreach(run, i, commit, dispatch, now)) progressed = true;
        }
      }
    }
    if (r.failing) return;
    bool all_done = true;
    for (size_t i = 0; i < r.main_count(); ++i) all_done = all_done && done_for_dependents(r.slots[i].self.state);
    if (all_done && r.in_flight == 0) finish_run(r, RunState::succeeded, commit);
  }

  // Evaluates `when` and `foreach` of a step whose dependencies are done. Returns true when the
  // step reached a final state at once (so dependents may now be ready).
  bool activate(const std::shared_ptr<ActiveRun>& run, size_t i, store::Commit& commit,
                std::vector<WorkItem>& dispatch, store::TimePoint now) {
    ActiveRun& r = *run;
    StepSlot& slot = r.slots[i];
    auto& evaluator = expr::Evaluator::for_this_thread();
    auto scope = scope_for(r, r.steps_view.get(), r.error_view.get(), nullptr, 0);
    if (!slot.def->when.empty()) {
      auto when = evaluator.evaluate(slot.def->when, scope, options.limits);
      if (!when.ok()) {
        fail_step(r, slot, located(r, slot.path + ".when", when.error()), commit);
        return true;
      }
      bool truthy = !(when->is_null() || (when->is_boolean() && !when->get<bool>()));
      if (!truthy) {
        slot.self.state = StepState::skipped;
        slot.self.started_at = slot.self.finished_at = now;
        commit.steps.push_back(step_record(r, slot, -1));
        publish_step(r, slot);
        emit(r, &slot, -1, "skipped", &slot.self);
        return true;
      }
    }
    if (slot.is_foreach) {
      auto items = evaluator.evaluate(slot.def->foreach, scope, options.limits);
      if (!items.ok()) {
        fail_step(r, slot, located(r, slot.path + ".foreach", items.error()), commit);
        return true;
      }
      // Lua cannot tell an empty list from an empty map: both mean "no elements" here.
      if (items->is_null() || (items->is_object() && items->empty())) *items = Json::array();
      if (!items->is_array()) {
        fail_step(r, slot,
                  located(r, slot.path + ".foreach",
                          make_error(ErrorCode::invalid_argument,
                                     std::string("expected a list, got ") + items->type_name())),
                  commit);
        return true;
      }
      slot.items = std::move(items).value();
      slot.elements.assign(slot.items.size(), Unit{});
      slot.self.state = StepState::running;
      slot.self.started_at = now;
      commit.steps.push_back(step_record(r, slot, -1));
      return advance_foreach(run, i, commit, dispatch, now);
    }
    slot.self.state = StepState::ready;
    dispatch.push_back(take(run, i, -1));
    return false;
  }

  // Starts elements up to the step's concurrency; completes the step when every element is done.
  bool advance_foreach(const std::shared_ptr<ActiveRun>& run, size_t i, store::Commit& commit,
                       std::vector<WorkItem>& dispatch, store::TimePoint now) {
    ActiveRun& r = *run;
    StepSlot& slot = r.slots[i];
    int limit = std::max(1, slot.def->concurrency);
    bool all_succeeded = true;
    for (size_t e = 0; e < slot.elements.size(); ++e) {
      Unit& unit = slot.elements[e];
      if ((unit.state == StepState::pending || unit.state == StepState::ready) &&
          slot.elements_in_flight < limit) {
        dispatch.push_back(take(run, i, static_cast<int>(e)));
      }
      all_succeeded = all_succeeded && unit.state == StepState::succeeded;
    }
    if (!all_succeeded || slot.elements_in_flight > 0) return false;
    Json outputs = Json::array();
    for (const auto& unit : slot.elements) outputs.push_back(unit.output);
    slot.self.state = StepState::succeeded;
    slot.self.output = std::move(outputs);
    slot.self.finished_at = now;
    slot.self.attempt = std::max(slot.self.attempt, 1);
    commit.steps.push_back(step_record(r, slot, -1));
    publish_step(r, slot);
    emit(r, &slot, -1, "succeeded", &slot.self);
    return true;
  }

  // After a main step failed: cancel what has not started, let what runs finish, then run the
  // on_error steps one after another, then fail the run.
  void plan_failure(const std::shared_ptr<ActiveRun>& run, store::Commit& commit,
                    std::vector<WorkItem>& dispatch, store::TimePoint now) {
    ActiveRun& r = *run;
    for (size_t i = 0; i < r.main_count(); ++i) {
      StepSlot& slot = r.slots[i];
      for (size_t e = 0; e < slot.elements.size(); ++e) {
        Unit& unit = slot.elements[e];
        if (unit.state == StepState::pending || unit.state == StepState::ready ||
            unit.state == StepState::waiting) {
          unit.state = StepState::cancelled;
          unit.finished_at = now;
          commit.steps.push_back(step_record(r, slot, static_cast<int>(e)));
        }
      }
      Unit& self = slot.self;
      bool element_running = slot.elements_in_flight > 0;
      if (self.state == StepState::pending || self.state == StepState::ready ||
          self.state == StepState::waiting || (self.state == StepState::running && slot.is_foreach && !element_running)) {
        self.state = StepState::cancelled;
        self.finished_at = now;
        commit.steps.push_back(step_record(r, slot, -1));
      }
    }
    if (!commit.steps.empty()) commit.delete_timers_of_runs.push_back(r.record.id);
    if (r.in_flight > 0) return;
    for (size_t i = r.main_count(); i < r.slots.size(); ++i) {
      StepSlot& slot = r.slots[i];
      if (store::is_final(slot.self.state)) continue;
      if (slot.is_foreach && slot.self.state == StepState::running) {
        advance_foreach(run, i, commit, dispatch, now);
        if (!store::is_final(slot.self.state)) return;
        continue;
      }
      if (slot.self.state == StepState::running || slot.self.state == StepState::waiting) return;
      if (slot.self.state == StepState::pending) {
        activate(run, i, commit, dispatch, now);
        if (!store::is_final(slot.self.state)) return;
        continue;
      }
      if (slot.self.state == StepState::ready) {
        dispatch.push_back(take(run, i, -1));
        return;
      }
    }
    finish_run(r, RunState::failed, commit);
  }

  // Events belong to workspaces (runs of `herald run` have none) and are stored only when
  // something may listen.
  bool wants_event(const std::string& workspace_id, const std::string& name) const {
    if (workspace_id.empty()) return false;
    return !options.wants_event || options.wants_event(workspace_id, name);
  }

  void finish_run(ActiveRun& r, RunState state, store::Commit& commit) {
    auto now = Clock::now();
    r.record.state = state;
    r.record.finished_at = now;
    r.record.updated_at = now;
    if (!r.record.started_at) r.record.started_at = now;
    commit.update_run = r.record;
    std::string event_name = "run." + std::string(store::to_string(state));
    if (wants_event(r.record.workspace_id, event_name)) {
      // Event triggers see runs finish; written with the final state, so never lost.
      store::EventRecord event;
      event.workspace_id = r.record.workspace_id;
      event.name = std::move(event_name);
      event.payload = {{"run_id", r.record.id},
                       {"workflow", r.record.workflow_id},
                       {"workflow_version", r.record.workflow_version_id},
                       {"state", std::string(store::to_string(state))},
                       {"error", r.record.error},
                       {"trigger", r.record.trigger.value("type", "")}};
      event.source = "run:" + r.record.id;
      event.created_at = now;
      commit.add_events.push_back(std::move(event));
    }
    emit(r, nullptr, -1, store::to_string(state), nullptr,
         r.record.error.is_null() ? std::nullopt : std::optional<Error>(Error::from_json(r.record.error)));
  }

  // Commits what the run deferred, then `commit`, under the run's lease. Called with the run's
  // lock held.
  Status commit_run(ActiveRun& r, store::Commit& commit) {
    if (!r.deferred.empty()) {
      store::Commit merged = std::move(r.deferred);
      r.deferred = store::Commit{};
      merged.append(std::move(commit));
      commit = std::move(merged);
    }
    if (r.lease_token > 0) commit.fence = store::RunLease{r.record.id, r.lease_token};
    return store.commit(commit);
  }

  // Whether `commit` may wait for the run's next one: only when all it leads to is pure steps
  // (re-running them after a crash gives the same writes), and it holds nothing another part
  // of Herald waits for in the store (timers, consumed events, schedule marks, a final state).
  bool can_defer(const ActiveRun& r, const store::Commit& commit,
                 const std::vector<WorkItem>& dispatch) const {
    if (dispatch.empty() || store::is_final(r.record.state)) return false;
    if (!commit.insert_runs.empty() || !commit.add_timers.empty() || !commit.delete_timers.empty() ||
        !commit.delete_timers_of_runs.empty() || !commit.consume_events.empty() ||
        !commit.schedule_marks.empty()) {
      return false;
    }
    for (const auto& item : dispatch) {
      const steps::StepInfo* info = registry.find(item.run->slots[item.slot].def->uses);
      if (info == nullptr || !info->pure) return false;
    }
    return true;
  }

  // Commits (or defers, see can_defer), then either hands out the work or drops the run from
  // memory. Called with the run's lock held; returns the work to dispatch once the lock is
  // released.
  std::vector<WorkItem> commit_and_collect(const std::shared_ptr<ActiveRun>& run,
                                           store::Commit& commit, std::vector<WorkItem> dispatch,
                                           bool* drop) {
    *drop = false;
    const bool goes = run->in_flight == 0 && dispatch.empty() &&
                      (store::is_final(run->record.state) || run->record.state == RunState::waiting);
    // A run that leaves memory gives its lease back with its last commit, so that whoever its
    // timer wakes (this engine or another) can claim it; `herald run` keeps its own runs.
    const bool release =
        goes && run->lease_token > 0 &&
        (store::is_final(run->record.state) || !options.own_runs_only);
    if (release) commit.release = true;
    if (!commit.empty() && can_defer(*run, commit, dispatch)) {
      run->deferred.append(std::move(commit));
    } else if (!commit.empty() || !run->deferred.empty()) {
      auto status = commit_run(*run, commit);
      if (!status.ok()) {
        // The store refused the change: what is in memory is now ahead of it. Drop the run from
        // memory; the next load (a restart, `herald resume`) continues from what was committed.
        if (status.error().code == ErrorCode::aborted) {
          spdlog::warn("run {}: {}; this engine stops driving it", run->record.id,
                       status.error().message);
        } else {
          spdlog::error("run {}: store commit failed: {}", run->record.id, status.error().message);
        }
        let_go(run->record.id);
        for (auto& item : dispatch) {
          (void)item;
          run->in_flight -= 1;
        }
        run->evicted = true;
        *drop = true;
        return {};
      }
      if (!commit.add_timers.empty()) wake_timer_loop();
    }
    if (release) let_go(run->record.id);
    if (goes) {
      run->evicted = true;
      *drop = true;
    }
    return dispatch;
  }

  void advance(const std::shared_ptr<ActiveRun>& run) {
    std::vector<WorkItem> dispatch;
    bool drop = false;
    {
      std::lock_guard lock(run->mu);
      if (run->evicted) return;
      store::Commit commit;
      plan(run, commit, dispatch);
      dispatch = commit_and_collect(run, commit, std::move(dispatch), &drop);
    }
    if (drop) evict(run);
    for (auto& item : dispatch) post(std::move(item));
  }

  void post(WorkItem item) {
    queued_units.fetch_add(1);
    boost::asio::post(pool, [this, item = std::move(item)]() mutable {
      queued_units.fetch_sub(1);
      execute(std::move(item));
    });
  }

  void post_advance(std::shared_ptr<ActiveRun> run) {
    boost::asio::post(pool, [this, run = std::move(run)] {
      if (!stopping_flag.load()) advance(run);
    });
  }

  // ---- execution -------------------------------------------------------------------------

  void execute(WorkItem work) {
    // Runs a chain of units on this thread: when a unit's completion makes exactly one unit
    // ready, it runs here next instead of going through the queue.
    std::optional<WorkItem> next = std::move(work);
    while (next) {
      // Shutting down: leave the unit; the store has it as ready (or running, for a step with
      // effects that was recorded), and the next start runs it with the same idempotency key.
      if (stopping_flag.load()) return;
      WorkItem current = std::move(*next);
      next.reset();
      running_units.fetch_add(1);
      auto more = execute_one(current);
      if (running_units.fetch_sub(1) == 1 && stopping_flag.load()) done_cv.notify_all();
      if (!more.empty()) {
        next = std::move(more.front());
        for (size_t i = 1; i < more.size(); ++i) post(std::move(more[i]));
      }
    }
  }

  std::vector<WorkItem> execute_one(WorkItem& work) {
    ActiveRun& r = *work.run;
    StepSlot& slot = r.slots[work.slot];
    const model::StepDef& def = *slot.def;
    const steps::StepInfo* info = registry.find(def.uses);
    auto started = Clock::now();

    const Json* item_json = nullptr;
    if (work.item >= 0) item_json = &slot.items[static_cast<size_t>(work.item)];
    auto scope = scope_for(r, work.steps_view.get(), work.error_view.get(), item_json, work.item);
    scope.secrets = &r.secrets->values;
    scope.redactor = &r.secrets->redactor;
    auto& evaluator = expr::Evaluator::for_this_thread();

    steps::StepOutcome outcome;
    Json stored_input = nullptr;
    if (info == nullptr) {
      outcome = steps::StepOutcome::failed(
          located(r, slot.path + ".uses", make_error(ErrorCode::failed_precondition,
                                                     "no step named '" + def.uses + "' is available")));
    } else {
      Json input = def.with;
      Json raw = Json::object();
      for (const auto& field : info->raw_fields) {
        if (input.is_object() && input.contains(field)) {
          raw[field] = input[field];
          input.erase(field);
        }
      }
      auto rendered = evaluator.render(input, scope, options.limits);
      if (!rendered.ok()) {
        outcome = steps::StepOutcome::failed(located(r, slot.path + ".with", rendered.error()));
      } else {
        input = std::move(rendered).value();
        for (auto& [field, value] : raw.items()) input[field] = value;
        stored_input = r.secrets->redactor.redact_json(input);
        if (!info->pure && !record_running(work, stored_input, started)) return {};
        outcome = call_step(*info, input, work, scope, evaluator);
      }
    }
    return complete(work, std::move(outcome), std::move(stored_input), started);
  }

  // Commits "running" before a step with effects, so a crash leaves a trace that the attempt
  // was under way. Returns false when the store refused (the run is dropped from memory).
  bool record_running(WorkItem& work, const Json& stored_input, store::TimePoint started) {
    ActiveRun& r = *work.run;
    bool drop = false;
    {
      std::lock_guard lock(r.mu);
      StepSlot& slot = r.slots[work.slot];
      Unit& unit = work.item < 0 ? slot.self : slot.elements[static_cast<size_t>(work.item)];
      unit.input = stored_input;
      unit.logs = nullptr;
      unit.started_at = started;
      unit.finished_at.reset();
      store::Commit commit;
      commit.steps.push_back(step_record(r, slot, work.item));
      commit.attempts.push_back(attempt_record(r, slot, work.item, unit, StepState::running));
      auto status = commit_run(r, commit);
      if (!status.ok()) {
        spdlog::error("run {}: store commit failed: {}", r.record.id, status.error().message);
        let_go(r.record.id);
        r.in_flight -= 1;
        r.evicted = true;
        drop = true;
      }
    }
    emit(r, &r.slots[work.slot], work.item, "running", nullptr);
    if (drop) evict(work.run);
    return !drop;
  }

  steps::StepOutcome call_step(const steps::StepInfo& info, const Json& input, WorkItem& work,
                               const expr::Scope& scope, expr::Evaluator& evaluator) {
    ActiveRun& r = *work.run;
    StepSlot& slot = r.slots[work.slot];
    steps::StepContext context;
    context.run_id = r.record.id;
    context.step_id = slot.def->id;
    context.item = work.item;
    context.attempt = work.attempt;
    context.idempotency_key = idempotency_key(r.record.id, slot, work.item);
    if (slot.def->timeout) context.deadline = Clock::now() + *slot.def->timeout;
    context.cancelled = &r.cancelled;
    context.evaluator = &evaluator;
    context.scope = &scope;
    std::mutex logs_mu;  // a plugin may log from a thread of its own
    Json logs = Json::array();
    size_t dropped = 0;
    context.log = [this, &r, &slot, &work, &logs_mu, &logs, &dropped](std::string_view level,
                                                                      std::string_view message) {
      std::string text = r.secrets->redactor.redact_text(message);
      {
        std::lock_guard lock(logs_mu);
        if (logs.size() < kMaxAttemptLogLines) {
          std::string kept = text.size() > kMaxAttemptLogLineBytes
                                 ? text.substr(0, kMaxAttemptLogLineBytes) + "..."
                                 : text;
          logs.push_back({{"at", format_iso8601(Clock::now())},
                          {"level", std::string(level)},
                          {"message", std::move(kept)}});
        } else {
          ++dropped;
        }
      }
      spdlog::log(spdlog::level::from_str(std::string(level)), "run {} step {}: {}", r.record.id,
                  slot.def->id, text);
      if (options.on_progress) {
        ProgressEvent event;
        event.run_id = r.record.id;
        event.workspace_id = r.record.workspace_id;
        event.workflow_id = r.record.workflow_id;
        event.step_id = slot.def->id;
        event.uses = slot.def->uses;
        event.item = work.item;
        event.state = "log";
        event.message = std::string(level) + ": " + text;
        event.at = Clock::now();
        options.on_progress(event);
      }
    };
    context.redact = [&r](std::string_view text) { return r.secrets->redactor.redact_text(text); };
    context.kv = &key_values;
    context.approvals = approvals;
    steps::StepOutcome outcome;
    try {
      outcome = info.step->run(input, context);
    } catch (const std::exception& e) {
      outcome = steps::StepOutcome::failed(
          make_error(ErrorCode::internal, std::string("step threw: ") + e.what()));
    } catch (...) {
      outcome = steps::StepOutcome::failed(
          make_error(ErrorCode::internal, "step threw a non-standard exception"));
    }
    // The attempt's lines go with its record (complete() moves them to the unit).
    std::lock_guard lock(logs_mu);
    if (dropped > 0) {
      logs.push_back({{"at", format_iso8601(Clock::now())},
                      {"level", "warn"},
                      {"message", std::to_string(dropped) + " more log lines were not kept"}});
    }
    if (!logs.empty()) work.logs = std::move(logs);
    return outcome;
  }

  std::chrono::milliseconds retry_delay(const model::RetryPolicy& policy, int attempt,
                                        const Error& error) {
    double delay = static_cast<double>(policy.initial.count());
    if (policy.backoff == model::RetryPolicy::Backoff::exponential) {
      delay *= std::pow(2.0, std::max(0, attempt - 1));
    }
    delay = std::min(delay, static_cast<double>(policy.max.count()));
    if (policy.jitter > 0) {
      std::lock_guard lock(random_mu);
      std::uniform_real_distribution<double> spread(-policy.jitter, policy.jitter);
      delay *= 1.0 + spread(random);
    }
    auto ms = std::chrono::milliseconds(static_cast<int64_t>(std::max(0.0, delay)));
    if (error.retry_after && *error.retry_after > ms) ms = *error.retry_after;
    return ms;
  }

  std::vector<WorkItem> complete(WorkItem& work, steps::StepOutcome outcome, Json stored_input,
                                 store::TimePoint started) {
    auto run = work.run;
    ActiveRun& r = *run;
    std::vector<WorkItem> dispatch;
    bool drop = false;
    {
      std::lock_guard lock(r.mu);
      if (r.evicted) return {};
      StepSlot& slot = r.slots[work.slot];
      Unit& unit = work.item < 0 ? slot.self : slot.elements[static_cast<size_t>(work.item)];
      auto now = Clock::now();
      r.in_flight -= 1;
      if (work.item >= 0) slot.elements_in_flight -= 1;
      unit.input = std::move(stored_input);
      unit.logs = std::move(work.logs);
      unit.started_at = started;
      unit.finished_at = now;
      store::Commit commit;

      if (r.cancel_requested) {
        unit.state = StepState::cancelled;
        commit.steps.push_back(step_record(r, slot, work.item));
        commit.attempts.push_back(attempt_record(r, slot, work.item, unit, StepState::cancelled));
      } else if (outcome.kind == steps::StepOutcome::Kind::done) {
        unit.state = StepState::succeeded;
        unit.output = r.secrets->redactor.redact_json(outcome.output);
        unit.error = nullptr;
        for (auto& emitted : outcome.events) {
          if (!wants_event(r.record.workspace_id, emitted.name)) continue;
          store::EventRecord event;
          event.workspace_id = r.record.workspace_id;
          event.name = std::move(emitted.name);
          event.payload = r.secrets->redactor.redact_json(emitted.payload);
          event.source = "run:" + r.record.id;
          event.created_at = now;
          commit.add_events.push_back(std::move(event));
        }
        commit.steps.push_back(step_record(r, slot, work.item));
        commit.attempts.push_back(attempt_record(r, slot, work.item, unit, StepState::succeeded));
        if (work.item < 0) publish_step(r, slot);
        emit(r, &slot, work.item, "succeeded", &unit);
      } else if (outcome.kind == steps::StepOutcome::Kind::suspend) {
        unit.state = StepState::waiting;
        unit.output = r.secrets->redactor.redact_json(outcome.output);
        unit.finished_at.reset();
        // A rerun waiting for nothing in time (an approval without deadlines) has no timer: what
        // it waits for wakes it with one.
        Clock::time_point resume_at = outcome.resume_at;
        if (outcome.rerun && unit.woken_while_running) resume_at = now;
        unit.woken_while_running = false;
        if (!(outcome.rerun && resume_at == Clock::time_point::max())) {
          store::TimerRecord timer{0, r.record.id, slot.def->id, work.item,
                                   outcome.rerun ? "rerun" : "wait", resume_at};
          if (slot.on_error) timer.step_id = "on_error." + slot.def->id;
          commit.add_timers.push_back(timer);
        }
        commit.steps.push_back(step_record(r, slot, work.item));
        commit.attempts.push_back(attempt_record(r, slot, work.item, unit, StepState::waiting));
        emit(r, &slot, work.item, "waiting", &unit);
      } else {
        Error error = r.secrets->redactor.redact_error(outcome.error);
        unit.error = error.to_json();
        unit.output = nullptr;
        commit.attempts.push_back(attempt_record(r, slot, work.item, unit, StepState::failed));
        if (error.retryable && unit.attempt < slot.def->retry.attempts) {
          auto delay = retry_delay(slot.def->retry, unit.attempt, error);
          unit.state = StepState::waiting;
          store::TimerRecord timer{0, r.record.id, slot.def->id, work.item, "retry", now + delay};
          if (slot.on_error) timer.step_id = "on_error." + slot.def->id;
          commit.add_timers.push_back(timer);
          commit.steps.push_back(step_record(r, slot, work.item));
          emit(r, &slot, work.item, "retrying", &unit, error);
        } else {
          unit.state = StepState::failed;
          if (work.item >= 0) {
            commit.steps.push_back(step_record(r, slot, work.item));
            emit(r, &slot, work.item, "failed", &unit, error);
            Error step_error = error;
            step_error.message = "item " + std::to_string(work.item) + ": " + error.message;
            fail_step(r, slot, step_error, commit);
          } else {
            fail_step(r, slot, error, commit);
          }
        }
      }
      plan(run, commit, dispatch);
      dispatch = commit_and_collect(run, commit, std::move(dispatch), &drop);
    }
    if (drop) evict(run);
    return dispatch;
  }

  // ---- timers ----------------------------------------------------------------------------

  void wake_timer_loop() {
    {
      std::lock_guard lock(timer_mu);
      timer_wakeup = true;
    }
    timer_cv.notify_all();
  }

  // The timers this engine drives: all of them, or those of its own runs.
  Result<std::optional<store::TimePoint>> next_due() {
    if (!options.own_runs_only) return store.next_timer_due();
    std::optional<store::TimePoint> earliest;
    for (const auto& timer : own_timers()) {
      if (!earliest || timer.due_at < *earliest) earliest = timer.due_at;
    }
    return earliest;
  }

  std::vector<store::TimerRecord> own_timers() {
    std::vector<std::string> ids;
    {
      std::lock_guard lock(owned_mu);
      ids.assign(owned.begin(), owned.end());
    }
    std::vector<store::TimerRecord> timers;
    for (const auto& id : ids) {
      auto of_run = store.timers_of_run(id);
      if (of_run.ok()) timers.insert(timers.end(), of_run->begin(), of_run->end());
    }
    return timers;
  }

  // The work loop: fires the due timers of the runs this engine holds, claims what other engines
  // left (queued runs, waiting runs whose timer is due, runs of engines that died), and renews
  // leases. It sleeps until the next timer, a wake-up, or the poll interval.
  void timer_loop() {
    bool idle = false;
    while (true) {
      auto now = Clock::now();
      auto wake_at = now + options.poll_interval;
      auto next = next_due();
      // A due timer that nothing here could fire (its run is another engine's) must not keep the
      // loop spinning: after an idle pass, wait for the poll or a wake-up.
      if (next.ok() && next->has_value() && (!idle || **next > now)) {
        wake_at = std::min(wake_at, **next);
      }
      auto renewal = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                         next_renewal - std::chrono::steady_clock::now());
      wake_at = std::min(wake_at, std::max(now, renewal));
      {
        std::unique_lock lock(timer_mu);
        if (stopping) return;
        if (wake_at > now) {
          timer_cv.wait_until(lock, wake_at, [this] { return stopping || timer_wakeup; });
        }
        if (stopping) return;
        timer_wakeup = false;
      }
      renew_leases_if_due();
      size_t done = fire_due_timers();
      if (!options.own_runs_only) done += claim_work();
      idle = done == 0;
    }
  }

  // Fires the due timers of runs this engine holds; returns how many it fired.
  size_t fire_due_timers() {
    size_t fired = 0;
    if (options.own_runs_only) {
      auto now = Clock::now();
      for (const auto& timer : own_timers()) {
        if (timer.due_at <= now) {
          fire(timer);
          ++fired;
        }
      }
      return fired;
    }
    auto due = store.due_timers(Clock::now(), 256);
    if (!due.ok()) {
      spdlog::error("reading due timers failed: {}", due.error().message);
      return 0;
    }
    for (const auto& timer : *due) {
      if (!holds(timer.run_id)) continue;  // claimed (and fired) by claim_work, or another's
      fire(timer);
      ++fired;
    }
    return fired;
  }

  // Claims runs nobody drives and starts driving them; returns how many it claimed. With
  // `take_over`, also those other engines' live leases hold (see take_over_leases).
  size_t claim_work(bool take_over = false) {
    constexpr int kClaimBatch = 64;
    size_t claimed_total = 0;
    while (!is_stopping()) {
      store::ClaimRequest claim;
      claim.owner = owner;
      claim.now = Clock::now();
      claim.lease_until = claim.now + options.lease_duration;
      claim.limit = kClaimBatch;
      claim.take_over = take_over;
      auto claimed = store.claim_runs(claim);
      if (!claimed.ok()) {
        spdlog::error("claiming runs failed: {}", claimed.error().message);
        return claimed_total;
      }
      for (const auto& lease : *claimed) drive_claimed(lease);
      claimed_total += claimed->size();
      if (claimed->size() < static_cast<size_t>(kClaimBatch)) return claimed_total;
    }
    return claimed_total;
  }

  // `herald resume`: waiting runs whose timers are not due may still be leased to the crashed
  // engine (`herald run` keeps its run while it waits). Taking them over and giving them back
  // at once lets their timers be claimed when due, instead of after the dead lease ends.
  void take_over_waiting_runs() {
    store::RunFilter filter;
    filter.state = RunState::waiting;
    filter.limit = 1000;
    while (true) {
      auto page = store.list_runs(filter);
      if (!page.ok()) {
        spdlog::error("listing waiting runs failed: {}", page.error().message);
        return;
      }
      if (page->empty()) return;
      store::ClaimRequest claim;
      claim.owner = owner;
      claim.now = Clock::now();
      claim.lease_until = claim.now + options.lease_duration;
      claim.limit = static_cast<int>(page->size());
      claim.take_over = true;
      for (const auto& run : *page) {
        if (!holds(run.id)) claim.run_ids.push_back(run.id);
      }
      auto claimed = store.claim_runs(claim);
      if (!claimed.ok()) {
        spdlog::error("taking over waiting runs failed: {}", claimed.error().message);
        return;
      }
      if (auto status = store.release_leases(*claimed); !status.ok()) {
        spdlog::error("releasing waiting runs failed: {}", status.error().message);
      }
      if (page->size() < 1000) return;
      filter.before_id = page->back().id;
    }
  }

  // A run just claimed: loaded, its due timers fired, and planned.
  void drive_claimed(const store::RunLease& lease) {
    std::shared_ptr<ActiveRun> run;
    {
      std::lock_guard lock(runs_mu);
      if (auto it = active.find(lease.run_id); it != active.end()) {
        std::unique_lock run_lock(it->second->mu);
        if (!it->second->evicted && it->second->lease_token == lease.token) {
          hold(lease.run_id, lease.token);  // the lease lapsed but nobody took it: carry on
          return;
        }
        // Another engine drove the run meanwhile: what is in memory is behind the store.
        it->second->evicted = true;
        run_lock.unlock();
        active.erase(it);
      }
      auto loaded = load_run(lease.run_id);
      if (!loaded.ok()) {
        spdlog::error("cannot load claimed run {}: {}", lease.run_id, loaded.error().message);
        (void)store.release_leases({lease});
        return;
      }
      run = *loaded;
      run->lease_token = lease.token;
      hold(lease.run_id, lease.token);
      active.emplace(lease.run_id, run);
    }
    auto timers = store.timers_of_run(lease.run_id);
    auto now = Clock::now();
    bool fired = false;
    if (timers.ok()) {
      for (const auto& timer : *timers) {
        if (timer.due_at > now) break;
        fire(timer);
        fired = true;
      }
    }
    if (!fired) post_advance(run);
  }

  void fire(const store::TimerRecord& timer) {
    auto loaded = get_or_load(timer.run_id);
    if (!loaded.ok() && loaded.error().code == ErrorCode::unavailable) return;  // another's run
    if (!loaded.ok()) {
      spdlog::error("timer {} for run {}: {}", timer.id, timer.run_id, loaded.error().message);
      store::Commit commit;
      commit.delete_timers.push_back(timer.id);
      (void)store.commit(commit);
      return;
    }
    auto run = *loaded;
    std::vector<WorkItem> dispatch;
    bool drop = false;
    {
      std::lock_guard lock(run->mu);
      if (run->evicted) return;  // reloaded by the next pass of the loop
      store::Commit commit;
      commit.delete_timers.push_back(timer.id);
      bool on_error = timer.step_id.rfind("on_error.", 0) == 0;
      std::string step_id = on_error ? timer.step_id.substr(9) : timer.step_id;
      StepSlot* slot = run->find_slot(step_id, on_error);
      Unit* unit = nullptr;
      if (slot != nullptr) {
        if (timer.item < 0) unit = &slot->self;
        else if (static_cast<size_t>(timer.item) < slot->elements.size()) unit = &slot->elements[static_cast<size_t>(timer.item)];
      }
      if (timer.kind == "cancel") {
        // Asked through another engine (cancel_run), or through the API of one that drives none.
        run->cancel_requested = true;
        run->cancelled = true;
      } else if (unit != nullptr && timer.kind == "rerun" && unit->state == StepState::running) {
        unit->woken_while_running = true;
      } else if (unit != nullptr && unit->state == StepState::waiting &&
                 !store::is_final(run->record.state)) {
        if (timer.kind == "wait") {
          unit->state = StepState::succeeded;
          unit->finished_at = Clock::now();
          commit.steps.push_back(step_record(*run, *slot, timer.item));
          commit.attempts.push_back(attempt_record(*run, *slot, timer.item, *unit, StepState::succeeded));
          if (timer.item < 0) publish_step(*run, *slot);
          emit(*run, slot, timer.item, "succeeded", unit);
        } else {
          unit->state = StepState::ready;
          commit.steps.push_back(step_record(*run, *slot, timer.item));
          // The step runs now and sets the timer it needs next: the other wake-ups of this
          // step (a deadline, a second decision) would only run it again for nothing.
          if (timer.kind == "rerun") {
            auto others = store.timers_of_run(timer.run_id);
            if (others.ok()) {
              for (const auto& other : *others) {
                if (other.id != timer.id && other.kind == "rerun" &&
                    other.step_id == timer.step_id && other.item == timer.item) {
                  commit.delete_timers.push_back(other.id);
                }
              }
            }
          }
        }
      }
      plan(run, commit, dispatch);
      dispatch = commit_and_collect(run, commit, std::move(dispatch), &drop);
    }
    if (drop) evict(run);
    for (auto& item : dispatch) post(std::move(item));
  }
};

model::ParseOptions workflow_parse_options(const steps::StepRegistry& registry) {
  model::ParseOptions parse;
  const steps::StepRegistry* reg = &registry;
  parse.known_steps = registry.names();
  parse.is_known_step = [reg](std::string_view uses) { return reg->find(uses) != nullptr; };
  parse.raw_fields = [reg](std::string_view uses) {
    const auto* info = reg->find(uses);
    return info ? info->raw_fields : std::vector<std::string>{};
  };
  parse.input_schema = [reg](std::string_view uses) -> const Json* {
    const auto* info = reg->find(uses);
    return info != nullptr && !info->input_schema.is_null() ? &info->input_schema : nullptr;
  };
  parse.check_expression = [](std::string_view source, model::ExpressionKind kind) {
    switch (kind) {
      case model::ExpressionKind::expression: return expr::check_expression(source);
      case model::ExpressionKind::template_text: return expr::check_template(source);
      case model::ExpressionKind::script: return expr::check_script(source);
    }
    return std::optional<std::string>{};
  };
  return parse;
}

Engine::Engine(store::Store& store, const steps::StepRegistry& registry, EngineOptions options)
    : impl_(std::make_unique<Impl>(store, registry, std::move(options))) {}

Engine::~Engine() { impl_->stop(); }

model::ParseOptions Engine::parse_options() const { return impl_->parse_options(); }

Result<std::string> Engine::start_run(const std::string& source, const std::string& file_name,
                                      Json inputs, Json trigger) {
  Impl::KnownSource known;
  auto source_key = std::make_pair(file_name, source);
  {
    std::lock_guard lock(impl_->workflows_mu);
    if (auto it = impl_->sources.find(source_key); it != impl_->sources.end()) known = it->second;
  }
  if (!known.workflow) {
    auto parsed = impl_->parse_source(source, file_name);
    if (!parsed.ok()) return parsed.error();
    auto version = impl_->store.put_workflow_version("", (*parsed)->id, source, file_name);
    if (!version.ok()) return version.error();
    known = {*parsed, version->id};
    std::lock_guard lock(impl_->workflows_mu);
    impl_->workflows.emplace(version->id, known.workflow);
    impl_->sources.emplace(std::move(source_key), known);
  }
  RunRequest request;
  request.version_id = known.version_id;
  request.inputs = std::move(inputs);
  request.trigger = std::move(trigger);
  return start_version(std::move(request));
}

Result<PreparedRun> Engine::prepare_run(RunRequest request) {
  auto workflow = impl_->workflow_version(request.version_id);
  if (!workflow.ok()) return workflow.error();
  auto prepared = prepare_inputs(**workflow, request.inputs);
  if (!prepared.ok()) return prepared.error();
  auto now = Clock::now();
  store::RunRecord record;
  record.id = store::new_run_id();
  record.workspace_id = std::move(request.workspace_id);
  record.workflow_id = (*workflow)->id;
  record.workflow_version_id = request.version_id;
  record.state = RunState::queued;
  record.inputs = std::move(prepared).value();
  record.trigger = request.trigger.is_null() ? Json::object() : std::move(request.trigger);
  record.created_at = record.updated_at = now;
  auto run = impl_->make_active(record, *workflow);
  record.vars = *run->vars;
  return PreparedRun{std::move(record), *workflow};
}

Status Engine::start_prepared(std::vector<PreparedRun> runs, store::Commit with) {
  std::vector<std::shared_ptr<ActiveRun>> active;
  for (auto& prepared : runs) {
    active.push_back(impl_->make_active(prepared.record, prepared.workflow));
    with.insert_runs.push_back(std::move(prepared.record));
  }
  const bool drive = impl_->options.drive_runs;
  if (drive && !with.insert_runs.empty()) {
    with.lease_inserted = store::LeaseGrant{impl_->owner, impl_->lease_end()};
  }
  if (auto status = impl_->store.commit(with); !status.ok()) return status;
  if (!drive) {
    // Queued for the engines that drive runs.
    if (!active.empty()) impl_->announce();
    for (auto& run : active) impl_->emit(*run, nullptr, -1, "queued", nullptr);
    return {};
  }
  for (auto& run : active) {
    run->lease_token = 1;
    impl_->hold(run->record.id, 1);
    {
      std::lock_guard lock(impl_->runs_mu);
      impl_->active.emplace(run->record.id, run);
    }
    if (impl_->options.own_runs_only) {
      std::lock_guard lock(impl_->owned_mu);
      impl_->owned.insert(run->record.id);
    }
    impl_->emit(*run, nullptr, -1, "queued", nullptr);
    impl_->post_advance(run);
  }
  return {};
}

Result<std::string> Engine::start_version(RunRequest request) {
  auto prepared = prepare_run(std::move(request));
  if (!prepared.ok()) return prepared.error();
  std::string id = prepared->record.id;
  std::vector<PreparedRun> runs;
  runs.push_back(std::move(prepared).value());
  if (auto status = start_prepared(std::move(runs)); !status.ok()) return status.error();
  return id;
}

Status Engine::retry_run(const std::string& run_id) {
  auto loaded = impl_->get_or_load(run_id);
  if (!loaded.ok()) return loaded.error();
  auto run = *loaded;
  bool drop = false;
  std::optional<Error> refused;
  {
    std::lock_guard lock(run->mu);
    if (run->evicted) return make_error(ErrorCode::unavailable, "run " + run_id + " is busy; try again");
    if (run->record.state != RunState::failed) {
      refused = make_error(ErrorCode::failed_precondition,
                           "run " + run_id + " is " + std::string(store::to_string(run->record.state)) +
                               "; only a failed run can be retried");
    }
  }
  if (refused) {
    impl_->put_back(run);
    return *refused;
  }
  const bool drive = impl_->options.drive_runs;
  {
    std::lock_guard lock(run->mu);
    auto now = Clock::now();
    store::Commit commit;
    // on_error steps run again if the retried run fails again.
    auto reset = [](Unit& unit, bool any_state) {
      if (unit.state == StepState::pending) return false;
      if (!any_state && unit.state != StepState::failed && unit.state != StepState::cancelled) {
        return false;
      }
      unit.state = StepState::pending;
      unit.error = nullptr;
      unit.output = nullptr;
      unit.finished_at.reset();
      return true;
    };
    for (auto& slot : run->slots) {
      bool element_reset = false;
      for (size_t e = 0; e < slot.elements.size(); ++e) {
        if (reset(slot.elements[e], slot.on_error)) {
          element_reset = true;
          commit.steps.push_back(impl_->step_record(*run, slot, static_cast<int>(e)));
        }
      }
      if (slot.on_error) {
        slot.elements.clear();
        slot.items = nullptr;
      }
      bool self_reset = reset(slot.self, slot.on_error);
      // A foreach whose list is known continues with its unfinished elements; one that failed
      // before its list was evaluated starts over.
      if (self_reset && slot.is_foreach && !slot.items.is_null() && slot.items.is_array()) {
        slot.self.state = StepState::running;
      }
      if (self_reset || element_reset) commit.steps.push_back(impl_->step_record(*run, slot, -1));
    }
    run->failing = false;
    run->error_view.reset();
    run->record.state = RunState::queued;
    run->record.error = nullptr;
    run->record.finished_at.reset();
    run->record.updated_at = now;
    commit.update_run = run->record;
    // An engine that drives no runs queues the retried run for those that do.
    commit.release = !drive;
    impl_->rebuild_steps_view(*run);
    auto status = impl_->commit_run(*run, commit);
    if (!status.ok() || !drive) {
      run->evicted = true;
      drop = true;
    }
    if (!status.ok()) refused = status.error();
  }
  if (drop) {
    impl_->evict(run);
    impl_->let_go(run_id);
  }
  if (refused) {
    return make_error(ErrorCode::unavailable,
                      "the store refused the retry of run " + run_id + ": " + refused->message);
  }
  impl_->emit(*run, nullptr, -1, "queued", nullptr);
  if (drive) {
    impl_->post_advance(run);
  } else {
    impl_->announce();
  }
  return {};
}

void Engine::wake() {
  impl_->announce();
  impl_->wake_timer_loop();
}

void Engine::poke() { impl_->wake_timer_loop(); }

Status Engine::resume_all() {
  if (!impl_->options.drive_runs) return {};
  impl_->claim_work(impl_->options.take_over_leases);
  if (impl_->options.take_over_leases) impl_->take_over_waiting_runs();
  impl_->wake_timer_loop();
  return {};
}

Result<store::RunRecord> Engine::wait_for_run(const std::string& run_id,
                                              std::optional<std::chrono::milliseconds> timeout) {
  auto deadline = timeout ? std::chrono::steady_clock::now() + *timeout
                          : std::chrono::steady_clock::time_point::max();
  while (true) {
    auto record = impl_->store.get_run(run_id);
    if (!record.ok()) return record.error();
    if (store::is_final(record->state)) return record;
    if (std::chrono::steady_clock::now() >= deadline) {
      return make_error(ErrorCode::deadline_exceeded, "run " + run_id + " is still " +
                                                          std::string(store::to_string(record->state)));
    }
    std::unique_lock lock(impl_->done_mu);
    impl_->done_cv.wait_for(lock, std::chrono::milliseconds(100));
  }
}

Status Engine::wait_until_idle(std::optional<std::chrono::milliseconds> timeout) {
  auto deadline = timeout ? std::chrono::steady_clock::now() + *timeout
                          : std::chrono::steady_clock::time_point::max();
  while (true) {
    auto unfinished = impl_->store.unfinished_run_ids();
    if (!unfinished.ok()) return unfinished.error();
    store::RunFilter waiting;
    waiting.state = RunState::waiting;
    waiting.limit = 1;
    auto sleeping = impl_->store.list_runs(waiting);
    if (!sleeping.ok()) return sleeping.error();
    bool busy;
    {
      std::lock_guard lock(impl_->runs_mu);
      busy = !impl_->active.empty();
    }
    if (unfinished->empty() && sleeping->empty() && !busy) return {};
    if (std::chrono::steady_clock::now() >= deadline) {
      return make_error(ErrorCode::deadline_exceeded, "runs are still unfinished");
    }
    std::unique_lock lock(impl_->done_mu);
    impl_->done_cv.wait_for(lock, std::chrono::milliseconds(100));
  }
}

Status Engine::cancel_run(const std::string& run_id) {
  if (impl_->options.drive_runs) {
    auto run = impl_->get_or_load(run_id);
    if (run.ok()) {
      std::optional<Error> refused;
      {
        std::lock_guard lock((*run)->mu);
        if (store::is_final((*run)->record.state)) {
          refused = make_error(ErrorCode::failed_precondition,
                               "run " + run_id + " is already " +
                                   std::string(store::to_string((*run)->record.state)));
        } else {
          (*run)->cancel_requested = true;
          (*run)->cancelled = true;
        }
      }
      if (refused) {
        impl_->put_back(*run);
        return *refused;
      }
      impl_->advance(*run);
      return {};
    }
    if (run.error().code != ErrorCode::unavailable) return run.error();
  }
  return impl_->request_cancel(run_id);
}

bool Engine::shutdown(std::chrono::milliseconds grace) { return impl_->stop(grace); }

EngineStats Engine::stats() const {
  EngineStats stats;
  {
    std::lock_guard lock(impl_->runs_mu);
    stats.active_runs = impl_->active.size();
  }
  {
    std::lock_guard lock(impl_->leases_mu);
    stats.leased_runs = impl_->held.size();
  }
  stats.queued_units = impl_->queued_units.load();
  stats.running_units = impl_->running_units.load();
  return stats;
}

}  // namespace herald::runtime
