// The Store: where every workflow version, run, step, attempt and timer lives. One interface,
// implementations under sqlite/ (embedded, the default) and later postgres/. The runtime commits
// each state change through commit() before it takes the next action, so a crash at any moment
// loses nothing that was already decided. No implementation-specific SQL leaks past this header.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/common/result.h"

namespace herald::store {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;  // stored with millisecond precision

enum class RunState { queued, running, waiting, succeeded, failed, cancelled };
enum class StepState { pending, ready, running, waiting, succeeded, failed, skipped, cancelled };

std::string_view to_string(RunState state);
std::string_view to_string(StepState state);
std::optional<RunState> parse_run_state(std::string_view text);
std::optional<StepState> parse_step_state(std::string_view text);
bool is_final(RunState state);
bool is_final(StepState state);

// One deployed (or run-from-file) version of a workflow. Runs keep the version they started on.
struct WorkflowVersion {
  int64_t id = 0;
  std::string workflow_id;
  int version = 0;           // 1, 2, ... per workflow_id
  std::string source;        // the file as written
  std::string file_name;     // for error messages
  std::string source_hash;   // hex SHA-256 of source
  TimePoint created_at;
};

struct RunRecord {
  std::string id;  // time-ordered, so ordering by id is ordering by creation
  std::string workflow_id;
  int64_t workflow_version_id = 0;
  RunState state = RunState::queued;
  Json inputs = Json::object();
  Json trigger = Json::object();
  // The workflow's `vars`, rendered once when the run was created, so a resumed run sees the
  // same values; null when the run has none stored.
  Json vars = nullptr;
  Json error = nullptr;  // Error::to_json() of what failed the run
  TimePoint created_at;
  std::optional<TimePoint> started_at;
  std::optional<TimePoint> finished_at;
  TimePoint updated_at;
};

// A step of a run. `item` is -1 for the step as a whole and 0..n-1 for the elements of a
// `foreach` step; on_error steps are stored under their own ids with `on_error` set.
struct StepRecord {
  std::string run_id;
  std::string step_id;
  int item = -1;
  bool on_error = false;
  StepState state = StepState::pending;
  int attempt = 0;   // attempts started so far
  Json input = nullptr;   // the rendered `with:` of the latest attempt (secrets redacted)
  Json output = nullptr;
  Json error = nullptr;
  std::string idempotency_key;  // stable across retries and restarts
  std::optional<TimePoint> started_at;
  std::optional<TimePoint> finished_at;
};

// The timeline: one row per attempt of a step (or element).
struct AttemptRecord {
  std::string run_id;
  std::string step_id;
  int item = -1;
  int attempt = 1;
  StepState state = StepState::running;  // running, succeeded, failed, waiting
  Json input = nullptr;
  Json output = nullptr;
  Json error = nullptr;
  TimePoint started_at;
  std::optional<TimePoint> finished_at;
};

// Something a run waits for in time: a `wait` step, or the backoff before a retry.
struct TimerRecord {
  int64_t id = 0;  // assigned by the store
  std::string run_id;
  std::string step_id;
  int item = -1;
  std::string kind;  // "wait" | "retry"
  TimePoint due_at;
};

// Everything one state change writes, committed in one transaction. Steps and attempts are
// upserted by their keys ((run_id, step_id, item) and (run_id, step_id, item, attempt)).
// Applied in field order, except that timer deletions come before add_timers (so one Commit can
// replace a run's timers). All or nothing: insert_run of an existing id fails with
// already_exists, update_run of a missing run with not_found, a step, attempt or timer of a run
// that is not stored (nor inserted by this Commit) with failed_precondition, and then nothing of
// the Commit is written.
struct Commit {
  std::optional<RunRecord> insert_run;
  // Updates of an existing run: state, error, started_at, finished_at, updated_at.
  std::optional<RunRecord> update_run;
  std::vector<StepRecord> steps;
  std::vector<AttemptRecord> attempts;
  std::vector<TimerRecord> add_timers;
  std::vector<int64_t> delete_timers;
  // Timers to remove by owner, when the id is not known (e.g. the run was cancelled).
  std::vector<std::string> delete_timers_of_runs;
};

struct RunFilter {
  std::optional<std::string> workflow_id;
  std::optional<RunState> state;
  std::optional<std::string> before_id;  // cursor: runs with a smaller id
  int limit = 50;
};

class Store {
 public:
  virtual ~Store() = default;

  // Applies the numbered migrations that are not applied yet.
  virtual Status migrate() = 0;

  // Stores a version unless one with the same workflow id and source hash exists; returns the id
  // of the stored (or existing) version.
  virtual Result<WorkflowVersion> put_workflow_version(std::string_view workflow_id,
                                                       std::string_view source,
                                                       std::string_view file_name) = 0;
  virtual Result<WorkflowVersion> get_workflow_version(int64_t id) = 0;

  virtual Status commit(const Commit& commit) = 0;

  virtual Result<RunRecord> get_run(std::string_view run_id) = 0;
  // Newest first (by id); `limit` is clamped to 1..1000.
  virtual Result<std::vector<RunRecord>> list_runs(const RunFilter& filter) = 0;
  // Runs that are queued or running: what a restart must pick up at once. Waiting runs come back
  // through their timers.
  virtual Result<std::vector<std::string>> unfinished_run_ids() = 0;

  // Ordered by step_id, then item. A run with no steps (or no such run) gives an empty list.
  virtual Result<std::vector<StepRecord>> get_steps(std::string_view run_id) = 0;
  // In timeline order: started_at, then step_id, item, attempt.
  virtual Result<std::vector<AttemptRecord>> get_attempts(std::string_view run_id) = 0;

  // Timers due at or before `now`, oldest first (ties by id); none when limit <= 0.
  virtual Result<std::vector<TimerRecord>> due_timers(TimePoint now, int limit) = 0;
  virtual Result<std::optional<TimePoint>> next_timer_due() = 0;
  // Ordered by due_at, then id.
  virtual Result<std::vector<TimerRecord>> timers_of_run(std::string_view run_id) = 0;
};

// Opens a store from its URL: "sqlite:PATH" (or a plain path; "sqlite:///abs/path" also works,
// and "sqlite::memory:" gives a private in-memory store for tests). Creates the file and its
// folder when missing and applies migrations. Refuses, with the path in the message and the file
// untouched: a file that is not a database, another program's database, and a store whose
// schema is newer than this build. An unknown scheme is invalid_argument.
Result<std::unique_ptr<Store>> open_store(const std::string& url);

// A new run id: 26 characters, Crockford base32, time-ordered (ULID layout: 48-bit milliseconds,
// 80 random bits). Strictly increasing within one process, even within one millisecond.
std::string new_run_id();

}  // namespace herald::store
