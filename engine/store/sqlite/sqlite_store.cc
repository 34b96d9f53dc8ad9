#include "engine/store/sqlite/sqlite_store.h"

#include <Poco/SHA2Engine.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <exception>
#include <initializer_list>
#include <utility>

#include "engine/store/sqlite/connection.h"
#include "engine/store/sqlite/migrations.h"

namespace herald::store {

using sqlite::Connection;
using sqlite::Statement;

namespace {

// Every statement is a constant whose address keys the connection's statement cache, so each is
// prepared once per connection and no SQL text is built on the hot path.

constexpr const char* kInsertRun =
    "INSERT INTO runs (id, workflow_id, workflow_version_id, state, inputs, trigger_data, error,"
    " created_at, started_at, finished_at, updated_at, vars)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
// The state is set by a statement of its own that leaves the row alone when it already has that
// state: most commits of a run do not change its state, and an UPDATE that names an indexed
// column rewrites that index entry (one more page per commit) even when the value is the same.
constexpr const char* kUpdateRun =
    "UPDATE runs SET error = ?2, started_at = ?3, finished_at = ?4, updated_at = ?5 WHERE id = ?1";
constexpr const char* kUpdateRunState = "UPDATE runs SET state = ?2 WHERE id = ?1 AND state <> ?2";
constexpr const char* kUpsertStep =
    "INSERT INTO steps (run_id, step_id, item, on_error, state, attempt, input, output, error,"
    " idempotency_key, started_at, finished_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    " ON CONFLICT (run_id, step_id, item) DO UPDATE SET on_error = excluded.on_error,"
    " state = excluded.state, attempt = excluded.attempt, input = excluded.input,"
    " output = excluded.output, error = excluded.error,"
    " idempotency_key = excluded.idempotency_key, started_at = excluded.started_at,"
    " finished_at = excluded.finished_at";
constexpr const char* kUpsertAttempt =
    "INSERT INTO attempts (run_id, step_id, item, attempt, state, input, output, error,"
    " started_at, finished_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    " ON CONFLICT (run_id, step_id, item, attempt) DO UPDATE SET state = excluded.state,"
    " input = excluded.input, output = excluded.output, error = excluded.error,"
    " started_at = excluded.started_at, finished_at = excluded.finished_at";
constexpr const char* kInsertTimer =
    "INSERT INTO timers (run_id, step_id, item, kind, due_at) VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr const char* kDeleteTimer = "DELETE FROM timers WHERE id = ?1";
constexpr const char* kDeleteTimersOfRun = "DELETE FROM timers WHERE run_id = ?1";

#define HERALD_RUN_COLUMNS                                                           \
  "SELECT id, workflow_id, workflow_version_id, state, inputs, trigger_data, error," \
  " created_at, started_at, finished_at, updated_at, vars FROM runs"
constexpr const char* kGetRun = HERALD_RUN_COLUMNS " WHERE id = ?1";
constexpr const char* kUnfinishedRuns =
    "SELECT id FROM runs WHERE state IN ('queued', 'running') ORDER BY id";

constexpr const char* kGetSteps =
    "SELECT run_id, step_id, item, on_error, state, attempt, input, output, error,"
    " idempotency_key, started_at, finished_at FROM steps WHERE run_id = ?1"
    " ORDER BY step_id, item";
constexpr const char* kGetAttempts =
    "SELECT run_id, step_id, item, attempt, state, input, output, error, started_at, finished_at"
    " FROM attempts WHERE run_id = ?1 ORDER BY started_at, step_id, item, attempt";

#define HERALD_TIMER_COLUMNS "SELECT id, run_id, step_id, item, kind, due_at FROM timers"
constexpr const char* kDueTimers =
    HERALD_TIMER_COLUMNS " WHERE due_at <= ?1 ORDER BY due_at, id LIMIT ?2";
constexpr const char* kTimersOfRun = HERALD_TIMER_COLUMNS " WHERE run_id = ?1 ORDER BY due_at, id";
constexpr const char* kNextTimerDue = "SELECT MIN(due_at) FROM timers";

#define HERALD_VERSION_COLUMNS                                                  \
  "SELECT id, workflow_id, version, source, file_name, source_hash, created_at" \
  " FROM workflow_versions"
constexpr const char* kGetVersion = HERALD_VERSION_COLUMNS " WHERE id = ?1";
constexpr const char* kFindVersionByHash =
    HERALD_VERSION_COLUMNS " WHERE workflow_id = ?1 AND source_hash = ?2";
constexpr const char* kNextVersion =
    "SELECT COALESCE(MAX(version), 0) + 1 FROM workflow_versions WHERE workflow_id = ?1";
constexpr const char* kInsertVersion =
    "INSERT INTO workflow_versions (workflow_id, version, source, file_name, source_hash,"
    " created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id";

constexpr const char* kInsertMigration =
    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)";
constexpr const char* kCurrentSchemaVersion =
    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations";

// list_runs has a statement per combination of filters (bit 0: workflow, 1: state, 2: cursor),
// built once, so each keeps a plan that uses the matching index. Parameters keep fixed numbers.
const std::array<std::string, 8>& list_runs_statements() {
  static const std::array<std::string, 8> statements = [] {
    std::array<std::string, 8> result;
    for (int mask = 0; mask < 8; ++mask) {
      std::string sql = HERALD_RUN_COLUMNS;
      const char* glue = " WHERE ";
      if (mask & 1) sql += std::exchange(glue, " AND ") + std::string("workflow_id = ?1");
      if (mask & 2) sql += std::exchange(glue, " AND ") + std::string("state = ?2");
      if (mask & 4) sql += std::exchange(glue, " AND ") + std::string("id < ?3");
      sql += " ORDER BY id DESC LIMIT ?4";
      result[mask] = std::move(sql);
    }
    return result;
  }();
  return statements;
}

#undef HERALD_RUN_COLUMNS
#undef HERALD_TIMER_COLUMNS
#undef HERALD_VERSION_COLUMNS

constexpr int kMaxIdleReaders = 8;
constexpr int kBusyTimeoutMs = 5000;

std::string sha256_hex(std::string_view text) {
  Poco::SHA2Engine engine(Poco::SHA2Engine::SHA_256);
  engine.update(text.data(), text.size());
  return Poco::DigestEngine::digestToHex(engine.digest());
}

TimePoint now_millis() {
  return sqlite::from_millis(sqlite::to_millis(Clock::now()));
}

// Puts `context` in front of an error's message ("updating run X: database is locked").
Status with_context(Status status, const std::string& context) {
  if (status) return status;
  Error error = std::move(status).error();
  error.message = context + ": " + error.message;
  return error;
}

Error corrupt_row(std::string_view what) {
  return make_error(ErrorCode::internal, "damaged row in the store: " + std::string(what));
}

// --- Rows to records ---

Status read_json_columns(const Statement& row,
                         std::initializer_list<std::pair<int, Json*>> columns) {
  for (auto [column, field] : columns) {
    auto json = row.column_json(column);
    if (!json) return std::move(json).error();
    *field = std::move(*json);
  }
  return ok_status();
}

Result<WorkflowVersion> read_version(const Statement& row) {
  WorkflowVersion version;
  version.id = row.column_int64(0);
  version.workflow_id = row.column_text(1);
  version.version = static_cast<int>(row.column_int64(2));
  version.source = row.column_text(3);
  version.file_name = row.column_text(4);
  version.source_hash = row.column_text(5);
  version.created_at = row.column_time(6);
  return version;
}

Result<RunRecord> read_run(const Statement& row) {
  RunRecord run;
  run.id = row.column_text(0);
  run.workflow_id = row.column_text(1);
  run.workflow_version_id = row.column_int64(2);
  auto state = parse_run_state(row.column_text(3));
  if (!state) return corrupt_row("run " + run.id + " has an unknown state");
  run.state = *state;
  if (auto status = read_json_columns(row, {{4, &run.inputs}, {5, &run.trigger}, {6, &run.error}});
      !status) {
    return std::move(status).error();
  }
  run.created_at = row.column_time(7);
  run.started_at = row.column_optional_time(8);
  run.finished_at = row.column_optional_time(9);
  run.updated_at = row.column_time(10);
  if (auto status = read_json_columns(row, {{11, &run.vars}}); !status) {
    return std::move(status).error();
  }
  return run;
}

Result<StepRecord> read_step(const Statement& row) {
  StepRecord step;
  step.run_id = row.column_text(0);
  step.step_id = row.column_text(1);
  step.item = static_cast<int>(row.column_int64(2));
  step.on_error = row.column_int64(3) != 0;
  auto state = parse_step_state(row.column_text(4));
  if (!state) return corrupt_row("step " + step.step_id + " has an unknown state");
  step.state = *state;
  step.attempt = static_cast<int>(row.column_int64(5));
  if (auto status = read_json_columns(row, {{6, &step.input}, {7, &step.output}, {8, &step.error}});
      !status) {
    return std::move(status).error();
  }
  step.idempotency_key = row.column_text(9);
  step.started_at = row.column_optional_time(10);
  step.finished_at = row.column_optional_time(11);
  return step;
}

Result<AttemptRecord> read_attempt(const Statement& row) {
  AttemptRecord attempt;
  attempt.run_id = row.column_text(0);
  attempt.step_id = row.column_text(1);
  attempt.item = static_cast<int>(row.column_int64(2));
  attempt.attempt = static_cast<int>(row.column_int64(3));
  auto state = parse_step_state(row.column_text(4));
  if (!state) return corrupt_row("attempt of step " + attempt.step_id + " has an unknown state");
  attempt.state = *state;
  if (auto status =
          read_json_columns(row, {{5, &attempt.input}, {6, &attempt.output}, {7, &attempt.error}});
      !status) {
    return std::move(status).error();
  }
  attempt.started_at = row.column_time(8);
  attempt.finished_at = row.column_optional_time(9);
  return attempt;
}

Result<TimerRecord> read_timer(const Statement& row) {
  TimerRecord timer;
  timer.id = row.column_int64(0);
  timer.run_id = row.column_text(1);
  timer.step_id = row.column_text(2);
  timer.item = static_cast<int>(row.column_int64(3));
  timer.kind = row.column_text(4);
  timer.due_at = row.column_time(5);
  return timer;
}

// Steps a prepared query to its end, turning each row into a record with `read`.
template <typename Record>
Result<std::vector<Record>> read_all(Statement& stmt, Result<Record> (*read)(const Statement&),
                                     std::string_view what) {
  std::vector<Record> records;
  while (true) {
    auto row = stmt.step(what);
    if (!row) return std::move(row).error();
    if (!*row) return records;
    auto record = read(stmt);
    if (!record) return std::move(record).error();
    records.push_back(std::move(*record));
  }
}

// --- Commit parts ---

Status insert_run(Connection& db, const RunRecord& run) {
  auto stmt = db.prepare(kInsertRun);
  if (!stmt) return std::move(stmt).error();
  stmt->bind(1, run.id);
  stmt->bind(2, run.workflow_id);
  stmt->bind(3, run.workflow_version_id);
  stmt->bind(4, to_string(run.state));
  stmt->bind_json(5, run.inputs);
  stmt->bind_json(6, run.trigger);
  stmt->bind_json(7, run.error);
  stmt->bind(8, run.created_at);
  stmt->bind(9, run.started_at);
  stmt->bind(10, run.finished_at);
  stmt->bind(11, run.updated_at);
  stmt->bind_json(12, run.vars);
  auto status = stmt->run("inserting a run");
  if (!status && status.error().code == ErrorCode::already_exists) {
    return make_error(ErrorCode::already_exists, "run " + run.id + " already exists");
  }
  if (!status && status.error().code == ErrorCode::failed_precondition) {
    return make_error(ErrorCode::failed_precondition,
                      "run " + run.id + " refers to workflow version " +
                          std::to_string(run.workflow_version_id) + ", which is not stored");
  }
  return status;
}

Status update_run(Connection& db, const RunRecord& run) {
  {
    auto stmt = db.prepare(kUpdateRun);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, run.id);
    stmt->bind_json(2, run.error);
    stmt->bind(3, run.started_at);
    stmt->bind(4, run.finished_at);
    stmt->bind(5, run.updated_at);
    if (auto status = stmt->run({}); !status) {
      return with_context(std::move(status), "updating run " + run.id);
    }
    if (sqlite3_changes(db.handle()) == 0) {
      return make_error(ErrorCode::not_found, "cannot update run " + run.id + ": no such run");
    }
  }
  auto stmt = db.prepare(kUpdateRunState);
  if (!stmt) return std::move(stmt).error();
  stmt->bind(1, run.id);
  stmt->bind(2, to_string(run.state));
  if (auto status = stmt->run({}); !status) {
    return with_context(std::move(status), "updating the state of run " + run.id);
  }
  return ok_status();
}

// A step, attempt or timer of a run that is not stored breaks a foreign key; say which. The
// names are only put together on failure, so a successful commit builds no message text.
Status explain(Status status, std::string_view what, std::string_view step_id,
               std::string_view run_id) {
  if (status) return status;
  std::string where =
      std::string(what) + " " + std::string(step_id) + " of run " + std::string(run_id);
  if (status.error().code == ErrorCode::failed_precondition) {
    return make_error(ErrorCode::failed_precondition,
                      "cannot store " + where + ": the run is not stored");
  }
  return with_context(std::move(status), "storing " + where);
}

Status upsert_step(Connection& db, const StepRecord& step) {
  auto stmt = db.prepare(kUpsertStep);
  if (!stmt) return std::move(stmt).error();
  stmt->bind(1, step.run_id);
  stmt->bind(2, step.step_id);
  stmt->bind(3, int64_t{step.item});
  stmt->bind(4, int64_t{step.on_error ? 1 : 0});
  stmt->bind(5, to_string(step.state));
  stmt->bind(6, int64_t{step.attempt});
  stmt->bind_json(7, step.input);
  stmt->bind_json(8, step.output);
  stmt->bind_json(9, step.error);
  stmt->bind(10, step.idempotency_key);
  stmt->bind(11, step.started_at);
  stmt->bind(12, step.finished_at);
  return explain(stmt->run({}), "step", step.step_id, step.run_id);
}

Status upsert_attempt(Connection& db, const AttemptRecord& attempt) {
  auto stmt = db.prepare(kUpsertAttempt);
  if (!stmt) return std::move(stmt).error();
  stmt->bind(1, attempt.run_id);
  stmt->bind(2, attempt.step_id);
  stmt->bind(3, int64_t{attempt.item});
  stmt->bind(4, int64_t{attempt.attempt});
  stmt->bind(5, to_string(attempt.state));
  stmt->bind_json(6, attempt.input);
  stmt->bind_json(7, attempt.output);
  stmt->bind_json(8, attempt.error);
  stmt->bind(9, attempt.started_at);
  stmt->bind(10, attempt.finished_at);
  return explain(stmt->run({}), "an attempt of step", attempt.step_id, attempt.run_id);
}

Status insert_timer(Connection& db, const TimerRecord& timer) {
  auto stmt = db.prepare(kInsertTimer);
  if (!stmt) return std::move(stmt).error();
  stmt->bind(1, timer.run_id);
  stmt->bind(2, timer.step_id);
  stmt->bind(3, int64_t{timer.item});
  stmt->bind(4, timer.kind);
  stmt->bind(5, timer.due_at);
  return explain(stmt->run({}), "a timer of step", timer.step_id, timer.run_id);
}

Status delete_by(Connection& db, const char* sql, auto key, std::string_view what) {
  auto stmt = db.prepare(sql);
  if (!stmt) return std::move(stmt).error();
  stmt->bind(1, key);
  return stmt->run(what);
}

// Everything in one Commit, in a fixed order: the run first (so its steps can refer to it),
// timer deletions before additions (so "replace this run's timers" works in one Commit).
Status apply(Connection& db, const Commit& commit) {
  if (commit.insert_run) {
    if (auto status = insert_run(db, *commit.insert_run); !status) return status;
  }
  if (commit.update_run) {
    if (auto status = update_run(db, *commit.update_run); !status) return status;
  }
  for (const auto& step : commit.steps) {
    if (auto status = upsert_step(db, step); !status) return status;
  }
  for (const auto& attempt : commit.attempts) {
    if (auto status = upsert_attempt(db, attempt); !status) return status;
  }
  for (int64_t id : commit.delete_timers) {
    if (auto status = delete_by(db, kDeleteTimer, id, "deleting a timer"); !status) return status;
  }
  for (const auto& run_id : commit.delete_timers_of_runs) {
    auto status =
        delete_by(db, kDeleteTimersOfRun, std::string_view(run_id), "deleting the timers of a run");
    if (!status) return status;
  }
  for (const auto& timer : commit.add_timers) {
    if (auto status = insert_timer(db, timer); !status) return status;
  }
  return ok_status();
}

// apply(), with an exception (a bad_alloc, say) turned into an Error like any other failure.
Status apply_guarded(Connection& db, const Commit& commit) {
  try {
    return apply(db, commit);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::internal, std::string("store commit: ") + e.what());
  }
}

// Runs `body` inside BEGIN IMMEDIATE ... COMMIT on the writer, rolling back on any failure,
// including an exception (a bad_alloc, say): the caller gets an Error either way.
template <typename T, typename F>
Result<T> in_transaction(Connection& db, F&& body) {
  if (auto status = db.begin_immediate(); !status) return std::move(status).error();
  std::optional<Result<T>> result;
  try {
    result.emplace(body());
  } catch (const std::exception& e) {
    result.emplace(make_error(ErrorCode::internal, std::string("store transaction: ") + e.what()));
  }
  if (result->ok()) {
    if (auto status = db.commit(); !status) result.emplace(std::move(status).error());
  }
  if (!result->ok()) db.rollback();
  return std::move(*result);
}

Status configure_writer(Connection& db, const std::string& path, bool in_memory) {
  // busy_timeout: another process (a second `herald run` on the same file) may hold the write
  // lock for a moment. temp_store: the per-Commit savepoints of a group commit stay in memory.
  const std::string pragmas = "PRAGMA busy_timeout = " + std::to_string(kBusyTimeoutMs) +
                              "; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY";
  if (auto status = db.exec(pragmas, "configuring " + path); !status) return status;
  if (in_memory) return ok_status();
  auto mode = db.query_text("PRAGMA journal_mode = WAL", "enabling WAL on " + path);
  if (!mode) return std::move(mode).error();
  if (mode->value_or("") != "wal") {
    return make_error(ErrorCode::failed_precondition, "cannot use WAL journaling on " + path +
                                                          " (got " + mode->value_or("?") +
                                                          "); is it on a network file system?");
  }
  // synchronous=NORMAL in WAL mode: a commit is in the OS once COMMIT returns, so a killed
  // process (kill -9, a crash) loses nothing; only a power loss or kernel crash can drop the
  // last commits (never corrupt the file). FULL would fsync every commit and cap us at the
  // disk's flush rate, far below what the runtime needs.
  return db.exec("PRAGMA synchronous = NORMAL", "setting synchronous");
}

}  // namespace

// --- SqliteStore ---

SqliteStore::SqliteStore(std::string path, std::unique_ptr<Connection> writer)
    : path_(std::move(path)), in_memory_(path_ == ":memory:"), writer_(std::move(writer)) {}

SqliteStore::~SqliteStore() {
  if (checkpointer_.joinable()) {
    {
      std::lock_guard lock(checkpoint_mutex_);
      stopping_ = true;
    }
    checkpoint_wake_.notify_one();
    checkpointer_.join();
  }
  // Closing the writer, the last connection, checkpoints what is left and removes the WAL.
}

int SqliteStore::latest_schema_version() {
  return sqlite::migrations().back().version;
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path) {
  auto writer = Connection::open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (!writer) return std::move(writer).error();
  // Read before anything can write: a file that is not a database fails here, untouched.
  if (auto check = (*writer)->query_text("SELECT count(*) FROM sqlite_master",
                                         "cannot open the store " + path);
      !check) {
    Error error = std::move(check).error();
    error.message += " (the file was left as it is)";
    return error;
  }
  if (sqlite3_db_readonly((*writer)->handle(), "main") == 1) {
    return make_error(ErrorCode::permission_denied,
                      "cannot open the store " + path + ": the file is read-only");
  }
  if (auto status = configure_writer(**writer, path, path == ":memory:"); !status) {
    return std::move(status).error();
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(path, std::move(*writer)));
  if (auto status = store->migrate(); !status) return std::move(status).error();
  if (!store->in_memory_) {
    if (auto status = store->start_checkpointer(); !status) return std::move(status).error();
  }
  return store;
}

Status SqliteStore::migrate() {
  std::lock_guard lock(write_mutex_);
  Connection& db = *writer_;
  auto result = in_transaction<bool>(db, [&]() -> Result<bool> {
    auto has_table = db.query_text(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
        "reading the schema of " + path_);
    if (!has_table) return std::move(has_table).error();
    if (has_table->value_or("0") == "0") {
      auto others = db.query_text(
          "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
          "reading the schema of " + path_);
      if (!others) return std::move(others).error();
      if (others->value_or("0") != "0") {
        return make_error(ErrorCode::failed_precondition,
                          "cannot open the store " + path_ +
                              ": it is an SQLite database but not a Herald store (it has tables "
                              "and no schema_migrations); point Herald at a new file");
      }
      auto created = db.exec(
          "CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY,"
          " name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
          "creating schema_migrations");
      if (!created) return std::move(created).error();
    }
    auto current_text = db.query_text(kCurrentSchemaVersion, "reading the schema version");
    if (!current_text) return std::move(current_text).error();
    const int current = std::stoi(current_text->value_or("0"));
    const int latest = latest_schema_version();
    if (current > latest) {
      return make_error(ErrorCode::failed_precondition,
                        "the store " + path_ + " has schema version " + std::to_string(current) +
                            ", newer than this Herald knows (" + std::to_string(latest) +
                            "); run a newer Herald, or use another store");
    }
    for (const auto& migration : sqlite::migrations()) {
      if (migration.version <= current) continue;
      const std::string what = "applying migration " + std::to_string(migration.version) + " (" +
                               migration.name + ") to " + path_;
      if (auto status = db.exec(migration.sql, what); !status) return std::move(status).error();
      auto insert = db.prepare(kInsertMigration);
      if (!insert) return std::move(insert).error();
      insert->bind(1, int64_t{migration.version});
      insert->bind(2, std::string_view(migration.name));
      insert->bind(3, Clock::now());
      if (auto status = insert->run(what); !status) return std::move(status).error();
    }
    return true;
  });
  if (!result) return std::move(result).error();
  return ok_status();
}

Result<WorkflowVersion> SqliteStore::put_workflow_version(std::string_view workflow_id,
                                                          std::string_view source,
                                                          std::string_view file_name) {
  const std::string hash = sha256_hex(source);
  std::lock_guard lock(write_mutex_);
  Connection& db = *writer_;
  return in_transaction<WorkflowVersion>(db, [&]() -> Result<WorkflowVersion> {
    {
      auto find = db.prepare(kFindVersionByHash);
      if (!find) return std::move(find).error();
      find->bind(1, workflow_id);
      find->bind(2, hash);
      auto row = find->step("looking up workflow " + std::string(workflow_id));
      if (!row) return std::move(row).error();
      if (*row) return read_version(*find);
    }
    WorkflowVersion version;
    version.workflow_id = workflow_id;
    version.source = source;
    version.file_name = file_name;
    version.source_hash = hash;
    version.created_at = now_millis();
    {
      auto next = db.prepare(kNextVersion);
      if (!next) return std::move(next).error();
      next->bind(1, workflow_id);
      auto row = next->step("numbering workflow " + version.workflow_id);
      if (!row) return std::move(row).error();
      version.version = static_cast<int>(next->column_int64(0));
    }
    auto insert = db.prepare(kInsertVersion);
    if (!insert) return std::move(insert).error();
    insert->bind(1, workflow_id);
    insert->bind(2, int64_t{version.version});
    insert->bind(3, source);
    insert->bind(4, file_name);
    insert->bind(5, hash);
    insert->bind(6, version.created_at);
    auto row = insert->step("storing workflow " + version.workflow_id);
    if (!row) return std::move(row).error();
    version.id = insert->column_int64(0);
    // Step past the RETURNING row so the insert is complete before COMMIT.
    if (auto done = insert->step("storing workflow " + version.workflow_id); !done) {
      return std::move(done).error();
    }
    return version;
  });
}

// Group commit. Worker threads commit at the same time; instead of one SQLite transaction each
// (each paying the transaction overhead and writing its own copy of the pages all of them touch:
// the newest runs, steps and attempts share leaf pages), callers queue up and the one at the
// front writes everything queued so far in one transaction, one savepoint per Commit, so a
// failing Commit is undone alone. Every caller returns only once the transaction holding its
// Commit is committed, so "committed before the next action" holds for each of them.
struct SqliteStore::PendingCommit {
  explicit PendingCommit(const Commit* c) : commit(c) {}
  const Commit* commit;
  Status status;
  bool done = false;
  std::condition_variable wake;
};

Status SqliteStore::commit(const Commit& commit) {
  PendingCommit self(&commit);
  std::unique_lock lock(queue_mutex_);
  queue_.push_back(&self);
  while (!self.done && queue_.front() != &self) self.wake.wait(lock);
  if (self.done) return std::move(self.status);

  // This caller leads: it writes the front of the queue, itself included.
  std::array<PendingCommit*, kMaxBatch> batch;
  const size_t count = std::min(queue_.size(), batch.size());
  std::copy_n(queue_.begin(), count, batch.begin());
  lock.unlock();
  write_batch(std::span(batch.data(), count));
  lock.lock();
  for (size_t i = 0; i < count; ++i) {
    queue_.pop_front();
    if (batch[i] != &self) {
      batch[i]->done = true;
      batch[i]->wake.notify_one();  // under the lock, so the waiter cannot be gone yet
    }
  }
  if (!queue_.empty()) queue_.front()->wake.notify_one();  // the next leader
  return std::move(self.status);
}

void SqliteStore::write_batch(std::span<PendingCommit*> batch) {
  static constexpr const char* kSavepoint = "SAVEPOINT herald_commit";
  static constexpr const char* kRollbackTo = "ROLLBACK TO herald_commit";
  static constexpr const char* kRelease = "RELEASE herald_commit";
  auto fail_all = [&](const Error& error) {
    for (PendingCommit* pending : batch) pending->status = error;
  };
  auto run = [&](const char* sql) -> Status {
    auto stmt = writer_->prepare(sql);
    if (!stmt) return std::move(stmt).error();
    return stmt->run({});
  };

  std::lock_guard lock(write_mutex_);
  Connection& db = *writer_;
  if (auto status = db.begin_immediate(); !status) return fail_all(status.error());
  const bool alone = batch.size() == 1;  // the transaction is its savepoint
  for (PendingCommit* pending : batch) {
    if (!alone) {
      if (auto status = run(kSavepoint); !status) {
        db.rollback();
        return fail_all(status.error());
      }
    }
    pending->status = apply_guarded(db, *pending->commit);
    if (!pending->status.ok() && sqlite3_get_autocommit(db.handle()) != 0) {
      // SQLite rolled the whole transaction back itself (an I/O error, a full disk): the
      // Commits before this one are gone too.
      return fail_all(pending->status.error());
    }
    if (alone) continue;
    if (!pending->status.ok()) {
      if (auto status = run(kRollbackTo); !status) {
        db.rollback();
        return fail_all(status.error());
      }
    }
    if (auto status = run(kRelease); !status) {
      db.rollback();
      return fail_all(status.error());
    }
  }
  if (alone && !batch[0]->status.ok()) {
    db.rollback();
    return;
  }
  if (auto status = db.commit(); !status) {
    db.rollback();
    for (PendingCommit* pending : batch) {
      if (pending->status.ok()) pending->status = status.error();
    }
  }
}

// --- Checkpoints ---

// SQLite's own autocheckpoint runs in the committing thread: every thousand pages it would hold
// up every queued Commit for two fsyncs (milliseconds on a busy disk) and the copying. Instead
// the WAL hook wakes this thread, which checkpoints PASSIVE on its own connection, alongside the
// writer. A checkpoint can only let the WAL start over once it has caught up with the writer, so
// under sustained load the writer still checkpoints itself at a higher mark; by then the thread
// has copied and synced nearly everything, and that stall is short and four times rarer.
constexpr int kCheckpointFrames = 1000;        // SQLite's default autocheckpoint
constexpr int kWriterCheckpointFrames = 4000;  // about 16 MB of WAL with 4 KiB pages

int SqliteStore::on_wal_commit(void* store, sqlite3* db, const char* schema, int frames) {
  // Runs on the writer, under write_mutex_, so the marks need no lock of their own.
  auto* self = static_cast<SqliteStore*>(store);
  if (frames < self->wal_frames_) self->next_checkpoint_at_ = kCheckpointFrames;  // WAL restarted
  self->wal_frames_ = frames;
  if (frames >= kWriterCheckpointFrames) {
    sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  } else if (frames >= self->next_checkpoint_at_) {
    // Once per thousand new frames, not on every commit past the mark.
    self->next_checkpoint_at_ = frames + kCheckpointFrames;
    {
      std::lock_guard lock(self->checkpoint_mutex_);
      self->checkpoint_requested_ = true;
    }
    self->checkpoint_wake_.notify_one();
  }
  return SQLITE_OK;
}

Status SqliteStore::start_checkpointer() {
  auto connection = Connection::open(path_, SQLITE_OPEN_READWRITE);
  if (!connection) return std::move(connection).error();
  const std::string busy = "PRAGMA busy_timeout = " + std::to_string(kBusyTimeoutMs);
  if (auto status = (*connection)->exec(busy, "setting busy_timeout"); !status) return status;
  // Replaces SQLite's autocheckpoint hook on the writer.
  sqlite3_wal_hook(writer_->handle(), &SqliteStore::on_wal_commit, this);
  checkpointer_ = std::thread(&SqliteStore::run_checkpointer, this, std::move(*connection));
  return ok_status();
}

void SqliteStore::run_checkpointer(std::unique_ptr<Connection> connection) {
  std::unique_lock lock(checkpoint_mutex_);
  while (true) {
    checkpoint_wake_.wait(lock, [&] { return checkpoint_requested_ || stopping_; });
    if (stopping_) return;
    checkpoint_requested_ = false;
    lock.unlock();
    // A failure (a reader holding old frames, a busy lock) only means the next request tries
    // again; the WAL keeps every commit meanwhile.
    sqlite3_wal_checkpoint_v2(connection->handle(), "main", SQLITE_CHECKPOINT_PASSIVE, nullptr,
                              nullptr);
    lock.lock();
  }
}

// --- Reads ---

Result<std::unique_ptr<Connection>> SqliteStore::acquire_reader() {
  {
    std::lock_guard lock(readers_mutex_);
    if (!idle_readers_.empty()) {
      auto connection = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return connection;
    }
  }
  // The file exists and is migrated by now, so readers never create anything.
  auto connection = Connection::open(path_, SQLITE_OPEN_READWRITE);
  if (!connection) return std::move(connection).error();
  std::string busy = "PRAGMA busy_timeout = " + std::to_string(kBusyTimeoutMs);
  if (auto status = (*connection)->exec(busy, "setting busy_timeout"); !status) {
    return std::move(status).error();
  }
  if (auto status = (*connection)->exec("PRAGMA query_only = ON", "making a reader"); !status) {
    return std::move(status).error();
  }
  return std::move(*connection);
}

void SqliteStore::release_reader(std::unique_ptr<Connection> connection) {
  std::lock_guard lock(readers_mutex_);
  if (static_cast<int>(idle_readers_.size()) < kMaxIdleReaders) {
    idle_readers_.push_back(std::move(connection));
  }
}

template <typename F>
auto SqliteStore::with_reader(F&& read) -> decltype(read(std::declval<Connection&>())) {
  using R = decltype(read(std::declval<Connection&>()));
  if (in_memory_) {
    // A private in-memory database is visible to its own connection only.
    std::lock_guard lock(write_mutex_);
    return read(*writer_);
  }
  auto connection = acquire_reader();
  if (!connection) return R(std::move(connection).error());
  R result = [&]() -> R {
    try {
      return read(**connection);
    } catch (const std::exception& e) {
      return R(make_error(ErrorCode::internal, std::string("store read: ") + e.what()));
    }
  }();
  release_reader(std::move(*connection));
  return result;
}

Result<WorkflowVersion> SqliteStore::get_workflow_version(int64_t id) {
  return with_reader([&](Connection& db) -> Result<WorkflowVersion> {
    auto stmt = db.prepare(kGetVersion);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id);
    auto row = stmt->step("reading workflow version " + std::to_string(id));
    if (!row) return std::move(row).error();
    if (!*row) {
      return make_error(ErrorCode::not_found, "no workflow version " + std::to_string(id));
    }
    return read_version(*stmt);
  });
}

Result<RunRecord> SqliteStore::get_run(std::string_view run_id) {
  return with_reader([&](Connection& db) -> Result<RunRecord> {
    auto stmt = db.prepare(kGetRun);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, run_id);
    auto row = stmt->step("reading run " + std::string(run_id));
    if (!row) return std::move(row).error();
    if (!*row) return make_error(ErrorCode::not_found, "no run " + std::string(run_id));
    return read_run(*stmt);
  });
}

Result<std::vector<RunRecord>> SqliteStore::list_runs(const RunFilter& filter) {
  const int mask =
      (filter.workflow_id ? 1 : 0) | (filter.state ? 2 : 0) | (filter.before_id ? 4 : 0);
  const int64_t limit = std::clamp(filter.limit, 1, 1000);
  return with_reader([&](Connection& db) -> Result<std::vector<RunRecord>> {
    auto stmt = db.prepare(list_runs_statements()[mask].c_str());
    if (!stmt) return std::move(stmt).error();
    if (filter.workflow_id) stmt->bind(1, *filter.workflow_id);
    if (filter.state) stmt->bind(2, to_string(*filter.state));
    if (filter.before_id) stmt->bind(3, *filter.before_id);
    stmt->bind(4, limit);
    return read_all<RunRecord>(*stmt, read_run, "listing runs");
  });
}

Result<std::vector<std::string>> SqliteStore::unfinished_run_ids() {
  return with_reader([&](Connection& db) -> Result<std::vector<std::string>> {
    auto stmt = db.prepare(kUnfinishedRuns);
    if (!stmt) return std::move(stmt).error();
    std::vector<std::string> ids;
    while (true) {
      auto row = stmt->step("listing unfinished runs");
      if (!row) return std::move(row).error();
      if (!*row) return ids;
      ids.emplace_back(stmt->column_text(0));
    }
  });
}

Result<std::vector<StepRecord>> SqliteStore::get_steps(std::string_view run_id) {
  return with_reader([&](Connection& db) -> Result<std::vector<StepRecord>> {
    auto stmt = db.prepare(kGetSteps);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, run_id);
    return read_all<StepRecord>(*stmt, read_step,
                                "reading the steps of run " + std::string(run_id));
  });
}

Result<std::vector<AttemptRecord>> SqliteStore::get_attempts(std::string_view run_id) {
  return with_reader([&](Connection& db) -> Result<std::vector<AttemptRecord>> {
    auto stmt = db.prepare(kGetAttempts);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, run_id);
    return read_all<AttemptRecord>(*stmt, read_attempt,
                                   "reading the attempts of run " + std::string(run_id));
  });
}

Result<std::vector<TimerRecord>> SqliteStore::due_timers(TimePoint now, int limit) {
  if (limit <= 0) return std::vector<TimerRecord>{};
  return with_reader([&](Connection& db) -> Result<std::vector<TimerRecord>> {
    auto stmt = db.prepare(kDueTimers);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, now);
    stmt->bind(2, int64_t{limit});
    return read_all<TimerRecord>(*stmt, read_timer, "reading due timers");
  });
}

Result<std::optional<TimePoint>> SqliteStore::next_timer_due() {
  return with_reader([&](Connection& db) -> Result<std::optional<TimePoint>> {
    auto stmt = db.prepare(kNextTimerDue);
    if (!stmt) return std::move(stmt).error();
    auto row = stmt->step("reading the next timer");
    if (!row) return std::move(row).error();
    if (!*row) return std::optional<TimePoint>();
    return stmt->column_optional_time(0);
  });
}

Result<std::vector<TimerRecord>> SqliteStore::timers_of_run(std::string_view run_id) {
  return with_reader([&](Connection& db) -> Result<std::vector<TimerRecord>> {
    auto stmt = db.prepare(kTimersOfRun);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, run_id);
    return read_all<TimerRecord>(*stmt, read_timer,
                                 "reading the timers of run " + std::string(run_id));
  });
}

}  // namespace herald::store
