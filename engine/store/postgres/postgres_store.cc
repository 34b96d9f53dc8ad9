#include "engine/store/postgres/postgres_store.h"

#include <Poco/SHA2Engine.h>

#include <algorithm>
#include <array>
#include <initializer_list>
#include <iterator>
#include <type_traits>
#include <utility>

#include "engine/store/checks.h"
#include "engine/store/postgres/connection.h"
#include "engine/store/postgres/migrations.h"

namespace herald::store {

using postgres::from_millis;
using postgres::Params;
using postgres::Pool;
using postgres::to_millis;
using postgres::Tx;

namespace {

// The statements mirror the SQLite store's one for one (engine/store/sqlite/sqlite_store.cc);
// each is a constant whose address keys its connection's prepared statements, so each is
// prepared once per connection and no SQL text is built on the hot path.

constexpr const char* kInsertRun =
    "INSERT INTO runs (id, workflow_id, workflow_version_id, state, inputs, trigger_data, error,"
    " created_at, started_at, finished_at, updated_at, vars, workspace_id, lease_owner,"
    " lease_token, lease_expires_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";
// As in SQLite, the state has a statement of its own that leaves the row alone when the state
// is unchanged: an UPDATE naming an indexed column cannot be a HOT update, even when the value
// stays the same.
constexpr const char* kUpdateRun =
    "UPDATE runs SET error = $2, started_at = $3, finished_at = $4, updated_at = $5 WHERE id = $1";
constexpr const char* kUpdateRunState = "UPDATE runs SET state = $2 WHERE id = $1 AND state <> $2";
constexpr const char* kUpsertStep =
    "INSERT INTO steps (run_id, step_id, item, on_error, state, attempt, input, output, error,"
    " idempotency_key, started_at, finished_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    " ON CONFLICT (run_id, step_id, item) DO UPDATE SET on_error = excluded.on_error,"
    " state = excluded.state, attempt = excluded.attempt, input = excluded.input,"
    " output = excluded.output, error = excluded.error,"
    " idempotency_key = excluded.idempotency_key, started_at = excluded.started_at,"
    " finished_at = excluded.finished_at";
constexpr const char* kUpsertAttempt =
    "INSERT INTO attempts (run_id, step_id, item, attempt, state, input, output, error,"
    " started_at, finished_at, logs)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    " ON CONFLICT (run_id, step_id, item, attempt) DO UPDATE SET state = excluded.state,"
    " input = excluded.input, output = excluded.output, error = excluded.error,"
    " started_at = excluded.started_at, finished_at = excluded.finished_at,"
    " logs = excluded.logs";
constexpr const char* kInsertTimer =
    "INSERT INTO timers (run_id, step_id, item, kind, due_at) VALUES ($1, $2, $3, $4, $5)";
constexpr const char* kDeleteTimer = "DELETE FROM timers WHERE id = $1";
constexpr const char* kDeleteTimersOfRun = "DELETE FROM timers WHERE run_id = $1";
constexpr const char* kInsertEvent =
    "INSERT INTO events (workspace_id, name, payload, source, created_at, consumed_at)"
    " VALUES ($1, $2, $3, $4, $5, $6)";
// Only an unconsumed event is taken: of two dispatchers, the second waits for the first's row
// lock, then sees the row consumed (READ COMMITTED re-checks the WHERE) and changes nothing.
constexpr const char* kConsumeEvent =
    "UPDATE events SET consumed_at = $2 WHERE id = $1 AND consumed_at IS NULL";
constexpr const char* kEventExists = "SELECT 1 FROM events WHERE id = $1";
constexpr const char* kUpsertScheduleMark =
    "INSERT INTO schedule_marks (workspace_id, workflow_id, trigger_index, last_fire)"
    " VALUES ($1, $2, $3, $4) ON CONFLICT (workspace_id, workflow_id, trigger_index)"
    " DO UPDATE SET last_fire = excluded.last_fire"
    " WHERE schedule_marks.last_fire < excluded.last_fire";
constexpr const char* kLeaseToken = "SELECT lease_token FROM runs WHERE id = $1";
constexpr const char* kReleaseLease =
    "UPDATE runs SET lease_owner = '', lease_expires_at = 0 WHERE id = $1 AND lease_token = $2";
constexpr const char* kRenewLease =
    "UPDATE runs SET lease_expires_at = $3"
    " WHERE id = $1 AND lease_token = $2 AND lease_owner <> ''";
// $1 leases ending by then are over (now, or the end of time for a take-over), $2 limit, $3 now.
// SKIP LOCKED: engines claiming at once each take other runs instead of
// queueing behind one another's row locks.
constexpr const char* kClaimableRuns =
    "SELECT id FROM runs WHERE state IN ('queued', 'running') AND lease_expires_at <= $1"
    " ORDER BY lease_expires_at, id LIMIT $2 FOR UPDATE SKIP LOCKED";
// Driven from the due timers (an index range), never from the waiting runs, which may be many.
constexpr const char* kClaimableByTimer =
    "SELECT r.id FROM runs r WHERE r.id IN (SELECT t.run_id FROM timers t WHERE t.due_at <= $3"
    " ORDER BY t.due_at LIMIT 1000) AND r.state = 'waiting' AND r.lease_expires_at <= $1"
    " LIMIT $2 FOR UPDATE OF r SKIP LOCKED";
// $1 run, $2 owner, $3 lease end, $4 leases ending by then are over; as in the SQLite store. A concurrent claimer waits for
// the row lock, then READ COMMITTED re-checks the WHERE against the new lease and changes nothing.
constexpr const char* kClaimRun =
    "UPDATE runs SET lease_token = CASE WHEN lease_owner = $2 THEN lease_token"
    " ELSE lease_token + 1 END, lease_owner = $2, lease_expires_at = $3"
    " WHERE id = $1 AND (lease_expires_at <= $4 OR lease_owner = $2) RETURNING lease_token";

#define HERALD_RUN_COLUMNS                                                           \
  "SELECT id, workflow_id, workflow_version_id, state, inputs, trigger_data, error," \
  " created_at, started_at, finished_at, updated_at, vars, workspace_id FROM runs"
constexpr const char* kGetRun = HERALD_RUN_COLUMNS " WHERE id = $1";
constexpr const char* kUnfinishedRuns =
    "SELECT id FROM runs WHERE state IN ('queued', 'running') ORDER BY id";
constexpr const char* kCountRuns =
    "SELECT count(*) FROM runs WHERE ($1::text IS NULL OR workspace_id = $1) AND"
    " ($2::text IS NULL OR workflow_id = $2) AND ($3::text IS NULL OR state = $3)";

constexpr const char* kGetSteps =
    "SELECT run_id, step_id, item, on_error, state, attempt, input, output, error,"
    " idempotency_key, started_at, finished_at FROM steps WHERE run_id = $1"
    " ORDER BY step_id, item";
constexpr const char* kGetAttempts =
    "SELECT run_id, step_id, item, attempt, state, input, output, error, started_at, finished_at,"
    " logs FROM attempts WHERE run_id = $1 ORDER BY started_at, step_id, item, attempt";

#define HERALD_TIMER_COLUMNS "SELECT id, run_id, step_id, item, kind, due_at FROM timers"
constexpr const char* kDueTimers =
    HERALD_TIMER_COLUMNS " WHERE due_at <= $1 ORDER BY due_at, id LIMIT $2";
constexpr const char* kTimersOfRun = HERALD_TIMER_COLUMNS " WHERE run_id = $1 ORDER BY due_at, id";
constexpr const char* kNextTimerDue = "SELECT MIN(due_at) FROM timers";

#define HERALD_VERSION_COLUMNS                                                                \
  "SELECT id, workflow_id, version, source, file_name, source_hash, created_at, workspace_id" \
  " FROM workflow_versions"
constexpr const char* kGetVersion = HERALD_VERSION_COLUMNS " WHERE id = $1";
constexpr const char* kFindVersionByHash =
    HERALD_VERSION_COLUMNS " WHERE workspace_id = $1 AND workflow_id = $2 AND source_hash = $3";
constexpr const char* kNextVersion =
    "SELECT COALESCE(MAX(version), 0) + 1 FROM workflow_versions"
    " WHERE workspace_id = $1 AND workflow_id = $2";
constexpr const char* kInsertVersion =
    "INSERT INTO workflow_versions (workspace_id, workflow_id, version, source, file_name,"
    " source_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";
constexpr const char* kListVersions =
    HERALD_VERSION_COLUMNS " WHERE workspace_id = $1 AND workflow_id = $2 ORDER BY version DESC";

// Where SQLite has one writer, PostgreSQL lets writers run side by side. The writes that read
// before they decide (the next version number of a workflow or policy, the number of a plugin's
// entries) take a transaction-scoped advisory lock on what they number or count first, so two
// of them never decide on the same reading. The key is a hash of a text naming it: a collision
// only makes two unrelated writes wait for each other.
constexpr const char* kLockKey = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";

#define HERALD_EVENT_COLUMNS \
  "SELECT id, workspace_id, name, payload, source, created_at, consumed_at FROM events"
constexpr const char* kPendingEvents =
    HERALD_EVENT_COLUMNS " WHERE consumed_at IS NULL ORDER BY id LIMIT $1";
constexpr const char* kListScheduleMarks =
    "SELECT workspace_id, workflow_id, trigger_index, last_fire FROM schedule_marks"
    " ORDER BY workspace_id, workflow_id, trigger_index";

// --- Deployments ---

#define HERALD_DEPLOYED_COLUMNS                                                             \
  "SELECT d.workspace_id, d.workflow_id, d.version_id, v.version, d.enabled, d.updated_by," \
  " d.created_at, d.updated_at FROM deployed_workflows d"                                   \
  " JOIN workflow_versions v ON v.id = d.version_id"
constexpr const char* kGetDeployed =
    HERALD_DEPLOYED_COLUMNS " WHERE d.workspace_id = $1 AND d.workflow_id = $2";
constexpr const char* kAllEnabledDeployed =
    HERALD_DEPLOYED_COLUMNS " WHERE d.enabled ORDER BY d.workspace_id, d.workflow_id";
constexpr const char* kInsertDeployed =
    "INSERT INTO deployed_workflows (workspace_id, workflow_id, version_id, enabled, updated_by,"
    " created_at, updated_at) VALUES ($1, $2, $3, true, $4, $5, $5)";
constexpr const char* kUpdateDeployedVersion =
    "UPDATE deployed_workflows SET version_id = $3, updated_by = $4, updated_at = $5"
    " WHERE workspace_id = $1 AND workflow_id = $2";
constexpr const char* kSetDeployedEnabled =
    "UPDATE deployed_workflows SET enabled = $3, updated_by = $4, updated_at = $5"
    " WHERE workspace_id = $1 AND workflow_id = $2";
constexpr const char* kDeleteDeployed =
    "DELETE FROM deployed_workflows WHERE workspace_id = $1 AND workflow_id = $2";
constexpr const char* kDeleteScheduleMarksOf =
    "DELETE FROM schedule_marks WHERE workspace_id = $1 AND workflow_id = $2";

// --- Workspaces, users, memberships, tokens, secrets, audit ---

constexpr const char* kInsertWorkspace =
    "INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)";
constexpr const char* kGetWorkspace = "SELECT id, name, created_at FROM workspaces WHERE id = $1";
constexpr const char* kListWorkspaces = "SELECT id, name, created_at FROM workspaces ORDER BY id";
constexpr const char* kInsertUser =
    "INSERT INTO users (id, name, email, created_at) VALUES ($1, $2, $3, $4)";
constexpr const char* kGetUser = "SELECT id, name, email, created_at FROM users WHERE id = $1";
constexpr const char* kUserExists = "SELECT 1 FROM users WHERE id = $1";
constexpr const char* kUpsertMembership =
    "INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role";
#define HERALD_MEMBERSHIP_COLUMNS "SELECT workspace_id, user_id, role, created_at FROM memberships"
constexpr const char* kGetMembership =
    HERALD_MEMBERSHIP_COLUMNS " WHERE workspace_id = $1 AND user_id = $2";
constexpr const char* kListMemberships =
    HERALD_MEMBERSHIP_COLUMNS " WHERE workspace_id = $1 ORDER BY user_id";
constexpr const char* kDeleteMembership =
    "DELETE FROM memberships WHERE workspace_id = $1 AND user_id = $2";
constexpr const char* kRevokeTokensOfMember =
    "UPDATE tokens SET revoked_at = $3"
    " WHERE workspace_id = $1 AND user_id = $2 AND revoked_at IS NULL";
constexpr const char* kInsertToken =
    "INSERT INTO tokens (id, workspace_id, user_id, role, name, hash, created_at, expires_at,"
    " revoked_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
#define HERALD_TOKEN_COLUMNS                                                                \
  "SELECT id, workspace_id, user_id, role, name, hash, created_at, expires_at, revoked_at," \
  " last_used_at FROM tokens"
constexpr const char* kGetToken = HERALD_TOKEN_COLUMNS " WHERE id = $1";
constexpr const char* kListTokens = HERALD_TOKEN_COLUMNS " WHERE workspace_id = $1 ORDER BY id";
// The first revocation's time stays: revoking again changes nothing.
constexpr const char* kRevokeToken =
    "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $3) WHERE id = $1 AND workspace_id = $2";
constexpr const char* kTouchToken = "UPDATE tokens SET last_used_at = $2 WHERE id = $1";
constexpr const char* kUpsertSecret =
    "INSERT INTO secrets (workspace_id, name, ciphertext, updated_by, created_at, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (workspace_id, name) DO UPDATE SET"
    " ciphertext = excluded.ciphertext, updated_by = excluded.updated_by,"
    " updated_at = excluded.updated_at";
#define HERALD_SECRET_COLUMNS \
  "SELECT workspace_id, name, ciphertext, updated_by, created_at, updated_at FROM secrets"
constexpr const char* kGetSecret = HERALD_SECRET_COLUMNS " WHERE workspace_id = $1 AND name = $2";
constexpr const char* kListSecrets = HERALD_SECRET_COLUMNS " WHERE workspace_id = $1 ORDER BY name";
constexpr const char* kDeleteSecret = "DELETE FROM secrets WHERE workspace_id = $1 AND name = $2";
constexpr const char* kPurgeExpiredKv =
    "DELETE FROM plugin_kv WHERE workspace_id = $1 AND plugin = $2 AND expires_at IS NOT NULL"
    " AND expires_at <= $3";
constexpr const char* kCountOtherKv =
    "SELECT count(*) FROM plugin_kv WHERE workspace_id = $1 AND plugin = $2 AND key <> $3";
constexpr const char* kUpsertKv =
    "INSERT INTO plugin_kv (workspace_id, plugin, key, value, expires_at, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (workspace_id, plugin, key) DO UPDATE SET"
    " value = excluded.value, expires_at = excluded.expires_at, updated_at = excluded.updated_at";
constexpr const char* kGetKv =
    "SELECT workspace_id, plugin, key, value, expires_at, updated_at FROM plugin_kv"
    " WHERE workspace_id = $1 AND plugin = $2 AND key = $3"
    " AND (expires_at IS NULL OR expires_at > $4)";
constexpr const char* kDeleteKv =
    "DELETE FROM plugin_kv WHERE workspace_id = $1 AND plugin = $2 AND key = $3";
constexpr const char* kInsertAudit =
    "INSERT INTO audit_log (workspace_id, actor, action, object_type, object_id, address,"
    " request_id, details, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";

constexpr const char* kInsertMigration =
    "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)";

// Listings have a statement per combination of their optional filters (a bit each), built
// once, so each keeps a plan that uses the matching index. PostgreSQL must know the type of
// every parameter a statement has, so an absent filter cannot leave a gap in the numbering as
// it does in SQLite: each '?' in `fixed`, the chosen conditions (in bit order) and `tail`
// becomes the next $n, and the caller adds values in that same order, skipping absent filters.
template <size_t N>
std::array<std::string, (size_t{1} << N)> filtered_statements(
    const char* select, const char* fixed, const std::array<const char*, N>& conditions,
    const char* tail) {
  std::array<std::string, (size_t{1} << N)> result;
  for (size_t mask = 0; mask < result.size(); ++mask) {
    std::string sql = select;
    const char* glue = " WHERE ";
    if (fixed != nullptr) {
      sql += std::exchange(glue, " AND ");
      sql += fixed;
    }
    for (size_t bit = 0; bit < N; ++bit) {
      if ((mask & (size_t{1} << bit)) == 0) continue;
      sql += std::exchange(glue, " AND ");
      sql += conditions[bit];
    }
    sql += tail;
    std::string numbered;
    int next = 0;
    for (char c : sql) {
      if (c == '?') {
        numbered += '$';
        numbered += std::to_string(++next);
      } else {
        numbered += c;
      }
    }
    result[mask] = std::move(numbered);
  }
  return result;
}

// Bits: 0 workspace, 1 workflow, 2 state, 3 cursor.
const std::array<std::string, 16>& list_runs_statements() {
  static const auto statements = filtered_statements<4>(
      HERALD_RUN_COLUMNS, nullptr, {"workspace_id = ?", "workflow_id = ?", "state = ?", "id < ?"},
      " ORDER BY id DESC LIMIT ?");
  return statements;
}

// Bits: 0 enabled, 1 cursor; the workspace always.
const std::array<std::string, 4>& list_deployed_statements() {
  static const auto statements = filtered_statements<2>(
      HERALD_DEPLOYED_COLUMNS, "d.workspace_id = ?", {"d.enabled = ?", "d.workflow_id > ?"},
      " ORDER BY d.workflow_id LIMIT ?");
  return statements;
}

// Bits: 0 action, 1 actor, 2 object id, 3 cursor; the workspace always.
const std::array<std::string, 16>& list_audit_statements() {
  static const auto statements = filtered_statements<4>(
      "SELECT id, workspace_id, actor, action, object_type, object_id, address, request_id,"
      " details, at FROM audit_log",
      "workspace_id = ?", {"action = ?", "actor = ?", "object_id = ?", "id < ?"},
      " ORDER BY id DESC LIMIT ?");
  return statements;
}

#undef HERALD_RUN_COLUMNS
#undef HERALD_TIMER_COLUMNS
#undef HERALD_VERSION_COLUMNS
#undef HERALD_EVENT_COLUMNS
#undef HERALD_DEPLOYED_COLUMNS
#undef HERALD_MEMBERSHIP_COLUMNS
#undef HERALD_TOKEN_COLUMNS
#undef HERALD_SECRET_COLUMNS

std::string sha256_hex(std::string_view text) {
  Poco::SHA2Engine engine(Poco::SHA2Engine::SHA_256);
  engine.update(text.data(), text.size());
  return Poco::DigestEngine::digestToHex(engine.digest());
}

TimePoint now_millis() {
  return from_millis(to_millis(Clock::now()));
}

// Puts `context` in front of an error's message ("updating run X: ...").
Status with_context(Status status, const std::string& context) {
  if (status) return status;
  Error error = std::move(status).error();
  error.message = context + ": " + error.message;
  return error;
}

Error corrupt_row(std::string_view what) {
  return make_error(ErrorCode::internal, "damaged row in the store: " + std::string(what));
}

// Runs `body(tx)` in a write transaction (see postgres::run_write); its value once committed.
template <typename T, typename F>
Result<T> write(Pool& pool, std::string_view what, F&& body) {
  if constexpr (std::is_void_v<T>) {
    return postgres::run_write(pool, what, [&](Tx& tx) -> Status { return body(tx); });
  } else {
    std::optional<T> value;
    Status status = postgres::run_write(pool, what, [&](Tx& tx) -> Status {
      Result<T> result = body(tx);  // again from the start when the transaction is retried
      if (!result) return std::move(result).error();
      value = std::move(*result);
      return ok_status();
    });
    if (!status) return std::move(status).error();
    return std::move(*value);
  }
}

// Runs `body(tx)` outside a transaction (see postgres::run_read).
template <typename T, typename F>
Result<T> read(Pool& pool, std::string_view what, F&& body) {
  std::optional<T> value;
  Status status = postgres::run_read(pool, what, [&](Tx& tx) -> Status {
    Result<T> result = body(tx);
    if (!result) return std::move(result).error();
    value = std::move(*result);
    return ok_status();
  });
  if (!status) return std::move(status).error();
  return std::move(*value);
}

// --- Fields to values ---

std::string text(const pqxx::field& field) {
  return std::string(field.c_str(), field.size());
}

int64_t integer(const pqxx::field& field) {
  return field.as<int64_t>();
}

TimePoint time(const pqxx::field& field) {
  return from_millis(field.as<int64_t>());
}

std::optional<TimePoint> optional_time(const pqxx::field& field) {
  if (field.is_null()) return std::nullopt;
  return time(field);
}

// SQL NULL reads back as JSON null; text that does not parse is an error (a damaged row).
Result<Json> json(const pqxx::field& field) {
  if (field.is_null()) return Json(nullptr);
  Json parsed = Json::parse(field.c_str(), field.c_str() + field.size(), nullptr, false);
  if (parsed.is_discarded())
    return corrupt_row(std::string("unreadable JSON in column ") + field.name());
  return parsed;
}

Status read_json_columns(const pqxx::row& row,
                         std::initializer_list<std::pair<int, Json*>> columns) {
  for (auto [column, field] : columns) {
    auto value = json(row[column]);
    if (!value) return std::move(value).error();
    *field = std::move(*value);
  }
  return ok_status();
}

// --- Rows to records ---

Result<WorkflowVersion> read_version(const pqxx::row& row) {
  WorkflowVersion version;
  version.id = integer(row[0]);
  version.workflow_id = text(row[1]);
  version.version = static_cast<int>(integer(row[2]));
  version.source = text(row[3]);
  version.file_name = text(row[4]);
  version.source_hash = text(row[5]);
  version.created_at = time(row[6]);
  version.workspace_id = text(row[7]);
  return version;
}

Result<RunRecord> read_run(const pqxx::row& row) {
  RunRecord run;
  run.id = text(row[0]);
  run.workflow_id = text(row[1]);
  run.workflow_version_id = integer(row[2]);
  auto state = parse_run_state(text(row[3]));
  if (!state) return corrupt_row("run " + run.id + " has an unknown state");
  run.state = *state;
  if (auto status = read_json_columns(
          row, {{4, &run.inputs}, {5, &run.trigger}, {6, &run.error}, {11, &run.vars}});
      !status) {
    return std::move(status).error();
  }
  run.created_at = time(row[7]);
  run.started_at = optional_time(row[8]);
  run.finished_at = optional_time(row[9]);
  run.updated_at = time(row[10]);
  run.workspace_id = text(row[12]);
  return run;
}

Result<StepRecord> read_step(const pqxx::row& row) {
  StepRecord step;
  step.run_id = text(row[0]);
  step.step_id = text(row[1]);
  step.item = static_cast<int>(integer(row[2]));
  step.on_error = row[3].as<bool>();
  auto state = parse_step_state(text(row[4]));
  if (!state) return corrupt_row("step " + step.step_id + " has an unknown state");
  step.state = *state;
  step.attempt = static_cast<int>(integer(row[5]));
  if (auto status = read_json_columns(row, {{6, &step.input}, {7, &step.output}, {8, &step.error}});
      !status) {
    return std::move(status).error();
  }
  step.idempotency_key = text(row[9]);
  step.started_at = optional_time(row[10]);
  step.finished_at = optional_time(row[11]);
  return step;
}

Result<AttemptRecord> read_attempt(const pqxx::row& row) {
  AttemptRecord attempt;
  attempt.run_id = text(row[0]);
  attempt.step_id = text(row[1]);
  attempt.item = static_cast<int>(integer(row[2]));
  attempt.attempt = static_cast<int>(integer(row[3]));
  auto state = parse_step_state(text(row[4]));
  if (!state) return corrupt_row("attempt of step " + attempt.step_id + " has an unknown state");
  attempt.state = *state;
  if (auto status = read_json_columns(
          row,
          {{5, &attempt.input}, {6, &attempt.output}, {7, &attempt.error}, {10, &attempt.logs}});
      !status) {
    return std::move(status).error();
  }
  attempt.started_at = time(row[8]);
  attempt.finished_at = optional_time(row[9]);
  return attempt;
}

Result<TimerRecord> read_timer(const pqxx::row& row) {
  TimerRecord timer;
  timer.id = integer(row[0]);
  timer.run_id = text(row[1]);
  timer.step_id = text(row[2]);
  timer.item = static_cast<int>(integer(row[3]));
  timer.kind = text(row[4]);
  timer.due_at = time(row[5]);
  return timer;
}

Result<EventRecord> read_event(const pqxx::row& row) {
  EventRecord event;
  event.id = integer(row[0]);
  event.workspace_id = text(row[1]);
  event.name = text(row[2]);
  if (auto status = read_json_columns(row, {{3, &event.payload}}); !status) {
    return std::move(status).error();
  }
  event.source = text(row[4]);
  event.created_at = time(row[5]);
  event.consumed_at = optional_time(row[6]);
  return event;
}

Result<ScheduleMark> read_schedule_mark(const pqxx::row& row) {
  ScheduleMark mark;
  mark.workspace_id = text(row[0]);
  mark.workflow_id = text(row[1]);
  mark.trigger_index = static_cast<int>(integer(row[2]));
  mark.last_fire = time(row[3]);
  return mark;
}

Result<DeployedWorkflow> read_deployed(const pqxx::row& row) {
  DeployedWorkflow deployed;
  deployed.workspace_id = text(row[0]);
  deployed.workflow_id = text(row[1]);
  deployed.version_id = integer(row[2]);
  deployed.version = static_cast<int>(integer(row[3]));
  deployed.enabled = row[4].as<bool>();
  deployed.updated_by = text(row[5]);
  deployed.created_at = time(row[6]);
  deployed.updated_at = time(row[7]);
  return deployed;
}

Result<Workspace> read_workspace(const pqxx::row& row) {
  Workspace workspace;
  workspace.id = text(row[0]);
  workspace.name = text(row[1]);
  workspace.created_at = time(row[2]);
  return workspace;
}

Result<User> read_user(const pqxx::row& row) {
  User user;
  user.id = text(row[0]);
  user.name = text(row[1]);
  user.email = text(row[2]);
  user.created_at = time(row[3]);
  return user;
}

Result<Membership> read_membership(const pqxx::row& row) {
  Membership membership;
  membership.workspace_id = text(row[0]);
  membership.user_id = text(row[1]);
  membership.role = text(row[2]);
  membership.created_at = time(row[3]);
  return membership;
}

Result<TokenRecord> read_token(const pqxx::row& row) {
  TokenRecord token;
  token.id = text(row[0]);
  token.workspace_id = text(row[1]);
  token.user_id = text(row[2]);
  token.role = text(row[3]);
  token.name = text(row[4]);
  token.hash = text(row[5]);
  token.created_at = time(row[6]);
  token.expires_at = optional_time(row[7]);
  token.revoked_at = optional_time(row[8]);
  token.last_used_at = optional_time(row[9]);
  return token;
}

Result<SecretRecord> read_secret(const pqxx::row& row) {
  SecretRecord secret;
  secret.workspace_id = text(row[0]);
  secret.name = text(row[1]);
  secret.ciphertext = text(row[2]);
  secret.updated_by = text(row[3]);
  secret.created_at = time(row[4]);
  secret.updated_at = time(row[5]);
  return secret;
}

Result<KvEntry> read_kv(const pqxx::row& row) {
  KvEntry entry;
  entry.workspace_id = text(row[0]);
  entry.plugin = text(row[1]);
  entry.key = text(row[2]);
  auto value = json(row[3]);
  if (!value) return std::move(value).error();
  entry.value = std::move(value).value();
  entry.expires_at = optional_time(row[4]);
  entry.updated_at = time(row[5]);
  return entry;
}

Result<AuditRecord> read_audit(const pqxx::row& row) {
  AuditRecord record;
  record.id = integer(row[0]);
  record.workspace_id = text(row[1]);
  record.actor = text(row[2]);
  record.action = text(row[3]);
  record.object_type = text(row[4]);
  record.object_id = text(row[5]);
  record.address = text(row[6]);
  record.request_id = text(row[7]);
  if (auto status = read_json_columns(row, {{8, &record.details}}); !status) {
    return std::move(status).error();
  }
  record.at = time(row[9]);
  return record;
}

// Every row of a query, each turned into a record with `read`.
template <typename Record>
Result<std::vector<Record>> read_all(Tx& tx, const char* sql, const Params& params,
                                     Result<Record> (*read)(const pqxx::row&),
                                     std::string_view what) {
  auto rows = tx.exec(sql, params, what);
  if (!rows) return std::move(rows).error();
  std::vector<Record> records;
  records.reserve(rows->size());
  for (const auto& row : *rows) {
    auto record = read(row);
    if (!record) return std::move(record).error();
    records.push_back(std::move(*record));
  }
  return records;
}

// One row: the record, or not_found with `missing` as the message.
template <typename Record>
Result<Record> read_one(Tx& tx, const char* sql, const Params& params,
                        Result<Record> (*read)(const pqxx::row&), std::string_view what,
                        std::string missing) {
  auto rows = tx.exec(sql, params, what);
  if (!rows) return std::move(rows).error();
  if (rows->empty()) return make_error(ErrorCode::not_found, std::move(missing));
  return read((*rows)[0]);
}

// The first row as a record, or nullopt.
template <typename Record>
Result<std::optional<Record>> read_optional(Tx& tx, const char* sql, const Params& params,
                                            Result<Record> (*read)(const pqxx::row&),
                                            std::string_view what) {
  auto rows = tx.exec(sql, params, what);
  if (!rows) return std::move(rows).error();
  if (rows->empty()) return std::optional<Record>();
  auto record = read((*rows)[0]);
  if (!record) return std::move(record).error();
  return std::optional<Record>(std::move(*record));
}

// Rows a statement changed, or its error.
Result<int64_t> changed(Tx& tx, const char* sql, const Params& params, std::string_view what) {
  auto rows = tx.exec(sql, params, what);
  if (!rows) return std::move(rows).error();
  return static_cast<int64_t>(rows->affected_rows());
}

Status execute(Tx& tx, const char* sql, const Params& params, std::string_view what) {
  auto rows = tx.exec(sql, params, what);
  if (!rows) return std::move(rows).error();
  return ok_status();
}

Status lock_key(Tx& tx, const std::string& key) {
  return execute(tx, kLockKey, Params().text(key), "waiting for " + key);
}

// --- Commit parts ---

Status insert_run(Tx& tx, const RunRecord& run, const std::optional<LeaseGrant>& lease) {
  Params params;
  params.text(run.id)
      .text(run.workflow_id)
      .integer(run.workflow_version_id)
      .text(to_string(run.state))
      .json(run.inputs)
      .json(run.trigger)
      .json(run.error)
      .time(run.created_at)
      .time(run.started_at)
      .time(run.finished_at)
      .time(run.updated_at)
      .json(run.vars)
      .text(run.workspace_id)
      .text(lease ? std::string_view(lease->owner) : std::string_view(""))
      .integer(lease ? 1 : 0)
      .integer(lease ? to_millis(lease->until) : 0);
  auto status = execute(tx, kInsertRun, params, "inserting a run");
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

Status update_run(Tx& tx, const RunRecord& run) {
  Params params;
  params.text(run.id)
      .json(run.error)
      .time(run.started_at)
      .time(run.finished_at)
      .time(run.updated_at);
  auto updated = changed(tx, kUpdateRun, params, "updating run " + run.id);
  if (!updated) return std::move(updated).error();
  if (*updated == 0) {
    return make_error(ErrorCode::not_found, "cannot update run " + run.id + ": no such run");
  }
  return execute(tx, kUpdateRunState, Params().text(run.id).text(to_string(run.state)),
                 "updating the state of run " + run.id);
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

Status upsert_step(Tx& tx, const StepRecord& step) {
  Params params;
  params.text(step.run_id)
      .text(step.step_id)
      .integer(step.item)
      .boolean(step.on_error)
      .text(to_string(step.state))
      .integer(step.attempt)
      .json(step.input)
      .json(step.output)
      .json(step.error)
      .text(step.idempotency_key)
      .time(step.started_at)
      .time(step.finished_at);
  return explain(execute(tx, kUpsertStep, params, {}), "step", step.step_id, step.run_id);
}

Status upsert_attempt(Tx& tx, const AttemptRecord& attempt) {
  Params params;
  params.text(attempt.run_id)
      .text(attempt.step_id)
      .integer(attempt.item)
      .integer(attempt.attempt)
      .text(to_string(attempt.state))
      .json(attempt.input)
      .json(attempt.output)
      .json(attempt.error)
      .time(attempt.started_at)
      .time(attempt.finished_at)
      .json(attempt.logs);
  return explain(execute(tx, kUpsertAttempt, params, {}), "an attempt of step", attempt.step_id,
                 attempt.run_id);
}

Status insert_timer(Tx& tx, const TimerRecord& timer) {
  Params params;
  params.text(timer.run_id)
      .text(timer.step_id)
      .integer(timer.item)
      .text(timer.kind)
      .time(timer.due_at);
  return explain(execute(tx, kInsertTimer, params, {}), "a timer of step", timer.step_id,
                 timer.run_id);
}

Status insert_event(Tx& tx, const EventRecord& event) {
  Params params;
  params.text(event.workspace_id)
      .text(event.name)
      .json(event.payload)
      .text(event.source)
      .time(event.created_at)
      .time(event.consumed_at);
  return with_context(execute(tx, kInsertEvent, params, {}), "storing event " + event.name);
}

// One audit entry, in the caller's transaction; its id.
Result<int64_t> insert_audit(Tx& tx, const AuditRecord& record) {
  Params params;
  params.text(record.workspace_id)
      .text(record.actor)
      .text(record.action)
      .text(record.object_type)
      .text(record.object_id)
      .text(record.address)
      .text(record.request_id)
      .json(record.details)
      .time(record.at);
  auto rows = tx.exec(kInsertAudit, params, "appending to the audit log");
  if (!rows) return std::move(rows).error();
  return integer((*rows)[0][0]);
}

Status consume_event(Tx& tx, int64_t id, TimePoint now) {
  auto consumed = changed(tx, kConsumeEvent, Params().integer(id).time(now),
                          "consuming event " + std::to_string(id));
  if (!consumed) return std::move(consumed).error();
  if (*consumed == 1) return ok_status();
  // Tell "someone else got there first" from "no such event"; both fail the Commit.
  auto exists =
      tx.exec(kEventExists, Params().integer(id), "looking up event " + std::to_string(id));
  if (!exists) return std::move(exists).error();
  return make_error(ErrorCode::failed_precondition,
                    "cannot consume event " + std::to_string(id) +
                        (exists->empty() ? ": no such event" : ": it is already consumed"));
}

Status upsert_schedule_mark(Tx& tx, const ScheduleMark& mark) {
  Params params;
  params.text(mark.workspace_id)
      .text(mark.workflow_id)
      .integer(mark.trigger_index)
      .time(mark.last_fire);
  auto stored = changed(tx, kUpsertScheduleMark, params,
                        "storing the schedule mark of workflow " + mark.workflow_id);
  if (!stored) return std::move(stored).error();
  if (*stored == 0) return schedule_mark_behind(mark);
  return ok_status();
}

Status check_fence(Tx& tx, const RunLease& fence) {
  auto rows = tx.exec(kLeaseToken, Params().text(fence.run_id),
                      "reading the lease of run " + fence.run_id);
  if (!rows) return std::move(rows).error();
  if (rows->empty()) return make_error(ErrorCode::not_found, "run " + fence.run_id + " is not stored");
  return check_lease_token(fence, (*rows)[0][0].as<int64_t>());
}

// Runs `sql` with (run id, token[, until]) for each lease; returns the ids it changed no row of.
Result<std::vector<std::string>> update_leases(Tx& tx, const char* sql,
                                               const std::vector<RunLease>& leases,
                                               std::optional<TimePoint> until) {
  std::vector<std::string> unchanged;
  for (const auto& lease : leases) {
    Params params;
    params.text(lease.run_id).integer(lease.token);
    if (until) params.time(*until);
    auto count = changed(tx, sql, params, "updating the lease of run " + lease.run_id);
    if (!count) return std::move(count).error();
    if (*count == 0) unchanged.push_back(lease.run_id);
  }
  return unchanged;
}

// Everything in one Commit, in the SQLite store's order: the runs first (so their steps can
// refer to them), timer deletions before additions (so "replace this run's timers" works).
Status apply(Tx& tx, const Commit& commit) {
  if (auto status = check_lease_fields(commit); !status) return status;
  for (const auto& run : commit.insert_runs) {
    if (auto status = insert_run(tx, run, commit.lease_inserted); !status) return status;
  }
  if (commit.fence) {
    if (auto status = check_fence(tx, *commit.fence); !status) return status;
  }
  if (commit.update_run) {
    if (auto status = update_run(tx, *commit.update_run); !status) return status;
  }
  for (const auto& step : commit.steps) {
    if (auto status = upsert_step(tx, step); !status) return status;
  }
  for (const auto& attempt : commit.attempts) {
    if (auto status = upsert_attempt(tx, attempt); !status) return status;
  }
  for (int64_t id : commit.delete_timers) {
    if (auto status = execute(tx, kDeleteTimer, Params().integer(id), "deleting a timer");
        !status) {
      return status;
    }
  }
  for (const auto& run_id : commit.delete_timers_of_runs) {
    auto status =
        execute(tx, kDeleteTimersOfRun, Params().text(run_id), "deleting the timers of a run");
    if (!status) return status;
  }
  for (const auto& timer : commit.add_timers) {
    if (auto status = insert_timer(tx, timer); !status) return status;
  }
  for (const auto& event : commit.add_events) {
    if (auto status = insert_event(tx, event); !status) return status;
  }
  if (!commit.consume_events.empty()) {
    const TimePoint now = now_millis();
    for (int64_t id : commit.consume_events) {
      if (auto status = consume_event(tx, id, now); !status) return status;
    }
  }
  for (const auto& mark : commit.schedule_marks) {
    if (auto status = upsert_schedule_mark(tx, mark); !status) return status;
  }
  if (commit.release) {
    auto released = update_leases(tx, kReleaseLease, {*commit.fence}, std::nullopt);
    if (!released) return std::move(released).error();
  }
  return ok_status();
}

std::string version_lock(std::string_view workspace_id, std::string_view workflow_id) {
  return "workflow " + std::string(workflow_id) + " in workspace '" + std::string(workspace_id) +
         "'";
}

// The version of a workflow with this source: the stored one, or a new one numbered max+1 in
// its (workspace, workflow). Runs inside the caller's write transaction, under the workflow's
// lock, so two writers never give out the same number.
Result<WorkflowVersion> put_version(Tx& tx, std::string_view workspace_id,
                                    std::string_view workflow_id, std::string_view source,
                                    std::string_view file_name, const std::string& hash) {
  if (auto status = lock_key(tx, version_lock(workspace_id, workflow_id)); !status) {
    return std::move(status).error();
  }
  {
    auto found = read_optional<WorkflowVersion>(
        tx, kFindVersionByHash, Params().text(workspace_id).text(workflow_id).text(hash),
        read_version, "looking up workflow " + std::string(workflow_id));
    if (!found) return std::move(found).error();
    if (*found) return std::move(**found);
  }
  WorkflowVersion version;
  version.workspace_id = workspace_id;
  version.workflow_id = workflow_id;
  version.source = source;
  version.file_name = file_name;
  version.source_hash = hash;
  version.created_at = now_millis();
  {
    auto next = tx.exec(kNextVersion, Params().text(workspace_id).text(workflow_id),
                        "numbering workflow " + version.workflow_id);
    if (!next) return std::move(next).error();
    version.version = static_cast<int>(integer((*next)[0][0]));
  }
  Params params;
  params.text(workspace_id)
      .text(workflow_id)
      .integer(version.version)
      .text(source)
      .text(file_name)
      .text(hash)
      .time(version.created_at);
  auto inserted = tx.exec(kInsertVersion, params, "storing workflow " + version.workflow_id);
  if (!inserted) return std::move(inserted).error();
  version.id = integer((*inserted)[0][0]);
  return version;
}

// Whether a row exists for a one-parameter "SELECT 1 ... WHERE key = $1" statement.
Result<bool> row_exists(Tx& tx, const char* sql, std::string_view key, std::string_view what) {
  auto rows = tx.exec(sql, Params().text(key), what);
  if (!rows) return std::move(rows).error();
  return !rows->empty();
}

// pool_size=N from the URL's query, which is ours: libpq refuses query parameters it does not
// know. The rest of the URL is left as it is.
Result<std::string> take_pool_size(const std::string& url, PostgresOptions& options) {
  const size_t question = url.find('?');
  if (question == std::string::npos) return url;
  std::string kept;
  std::string_view query = std::string_view(url).substr(question + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.starts_with("pool_size=")) {
      const std::string value(pair.substr(10));
      int size = 0;
      try {
        size_t used = 0;
        size = std::stoi(value, &used);
        if (used != value.size()) size = 0;
      } catch (const std::exception&) {
        size = 0;
      }
      if (size < 1 || size > 1000) {
        return make_error(
            ErrorCode::invalid_argument,
            "pool_size in the store URL must be a number from 1 to 1000, not \"" + value + "\"");
      }
      options.pool_size = size;
      continue;
    }
    if (!kept.empty()) kept += '&';
    kept += pair;
  }
  std::string result = url.substr(0, question);
  if (!kept.empty()) result += "?" + kept;
  return result;
}

}  // namespace

// --- PostgresStore ---

PostgresStore::PostgresStore(std::unique_ptr<Pool> pool) : pool_(std::move(pool)) {}

PostgresStore::~PostgresStore() = default;

int PostgresStore::latest_schema_version() {
  return postgres::migrations().back().version;
}

int PostgresStore::pool_size() const {
  return pool_->size();
}

Result<std::unique_ptr<PostgresStore>> PostgresStore::open(const std::string& url,
                                                           PostgresOptions options) {
  auto libpq_url = take_pool_size(url, options);
  if (!libpq_url) return std::move(libpq_url).error();
  if (options.pool_size < 1) {
    return make_error(ErrorCode::invalid_argument, "a PostgreSQL store needs a pool of 1 or more");
  }
  auto pool = std::make_unique<Pool>(*libpq_url, options.pool_size, options.pool_wait);
  // Connect now, so a wrong URL or an unreachable server is reported by open, not later.
  {
    auto connection = pool->acquire();
    if (!connection) {
      Error error = std::move(connection).error();
      // libpq's words for a malformed URL; the rest (refused, timed out) is the server's state.
      for (const char* malformed : {"invalid URI", "invalid connection option", "missing \"=\"",
                                    "invalid integer value", "unterminated quoted string"}) {
        if (error.message.find(malformed) != std::string::npos) {
          error.code = ErrorCode::invalid_argument;
          error.retryable = false;
        }
      }
      return error;
    }
    pool->release(std::move(*connection), true);
  }
  std::unique_ptr<PostgresStore> store(new PostgresStore(std::move(pool)));
  if (auto status = store->migrate(); !status) return std::move(status).error();
  return store;
}

Status PostgresStore::migrate() {
  const std::string& where = pool_->display_url();
  return write<void>(*pool_, "migrating " + where, [&](Tx& tx) -> Status {
    // Several processes starting at once on one database: one migrates, the others wait for it
    // here and then find nothing left to do.
    if (auto status = lock_key(tx, "herald schema migrations"); !status) return status;
    auto has_table = tx.exec_text("SELECT to_regclass('schema_migrations') IS NOT NULL",
                                  "reading the schema of " + where);
    if (!has_table) return std::move(has_table).error();
    if (!(*has_table)[0][0].as<bool>()) {
      auto others =
          tx.exec_text("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()",
                       "reading the schema of " + where);
      if (!others) return std::move(others).error();
      if (integer((*others)[0][0]) != 0) {
        return make_error(ErrorCode::failed_precondition,
                          "cannot open the store " + where +
                              ": the database has tables and no schema_migrations, so it is "
                              "not a Herald store; point Herald at an empty database");
      }
      auto created = tx.exec_text(
          "CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY,"
          " name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
          "creating schema_migrations");
      if (!created) return std::move(created).error();
    }
    auto current_row = tx.exec_text("SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                                    "reading the schema version");
    if (!current_row) return std::move(current_row).error();
    const int current = static_cast<int>(integer((*current_row)[0][0]));
    const int latest = latest_schema_version();
    if (current > latest) {
      return make_error(ErrorCode::failed_precondition,
                        "the store " + where + " has schema version " + std::to_string(current) +
                            ", newer than this Herald knows (" + std::to_string(latest) +
                            "); run a newer Herald, or use another store");
    }
    for (const auto& migration : postgres::migrations()) {
      if (migration.version <= current) continue;
      const std::string what = "applying migration " + std::to_string(migration.version) + " (" +
                               migration.name + ") to " + where;
      if (auto done = tx.exec_text(migration.sql, what); !done) return std::move(done).error();
      Params params;
      params.integer(migration.version).text(migration.name).time(Clock::now());
      if (auto status = execute(tx, kInsertMigration, params, what); !status) return status;
    }
    return ok_status();
  });
}

Result<WorkflowVersion> PostgresStore::put_workflow_version(std::string_view workspace_id,
                                                            std::string_view workflow_id,
                                                            std::string_view source,
                                                            std::string_view file_name) {
  const std::string hash = sha256_hex(source);
  return write<WorkflowVersion>(
      *pool_, "storing workflow " + std::string(workflow_id),
      [&](Tx& tx) { return put_version(tx, workspace_id, workflow_id, source, file_name, hash); });
}

// Each Commit is its own transaction: PostgreSQL runs them side by side (the SQLite store
// batches them because it has one writer), so there is nothing to gain from grouping them and a
// failing Commit never touches another's.
Status PostgresStore::commit(const Commit& commit) {
  if (commit.empty() && !commit.fence) return ok_status();
  return write<void>(*pool_, "committing", [&](Tx& tx) { return apply(tx, commit); });
}

// --- Reads ---

Result<WorkflowVersion> PostgresStore::get_workflow_version(int64_t id) {
  const std::string what = "reading workflow version " + std::to_string(id);
  return read<WorkflowVersion>(*pool_, what, [&](Tx& tx) {
    return read_one<WorkflowVersion>(tx, kGetVersion, Params().integer(id), read_version, what,
                                     "no workflow version " + std::to_string(id));
  });
}

Result<RunRecord> PostgresStore::get_run(std::string_view run_id) {
  const std::string what = "reading run " + std::string(run_id);
  return read<RunRecord>(*pool_, what, [&](Tx& tx) {
    return read_one<RunRecord>(tx, kGetRun, Params().text(run_id), read_run, what,
                               "no run " + std::string(run_id));
  });
}

Result<std::vector<RunRecord>> PostgresStore::list_runs(const RunFilter& filter) {
  const int mask = (filter.workspace_id ? 1 : 0) | (filter.workflow_id ? 2 : 0) |
                   (filter.state ? 4 : 0) | (filter.before_id ? 8 : 0);
  const int64_t limit = std::clamp(filter.limit, 1, 1000);
  Params params;
  if (filter.workspace_id) params.text(*filter.workspace_id);
  if (filter.workflow_id) params.text(*filter.workflow_id);
  if (filter.state) params.text(to_string(*filter.state));
  if (filter.before_id) params.text(*filter.before_id);
  params.integer(limit);
  return read<std::vector<RunRecord>>(*pool_, "listing runs", [&](Tx& tx) {
    return read_all<RunRecord>(tx, list_runs_statements()[mask].c_str(), params, read_run,
                               "listing runs");
  });
}

Result<int64_t> PostgresStore::count_runs(const RunFilter& filter) {
  Params params;
  if (filter.workspace_id)
    params.text(*filter.workspace_id);
  else
    params.null();
  if (filter.workflow_id)
    params.text(*filter.workflow_id);
  else
    params.null();
  if (filter.state)
    params.text(to_string(*filter.state));
  else
    params.null();
  return read<int64_t>(*pool_, "counting runs", [&](Tx& tx) -> Result<int64_t> {
    auto rows = tx.exec(kCountRuns, params, "counting runs");
    if (!rows) return std::move(rows).error();
    return integer((*rows)[0][0]);
  });
}

Result<std::vector<std::string>> PostgresStore::unfinished_run_ids() {
  return read<std::vector<std::string>>(
      *pool_, "listing unfinished runs", [&](Tx& tx) -> Result<std::vector<std::string>> {
        auto rows = tx.exec(kUnfinishedRuns, Params(), "listing unfinished runs");
        if (!rows) return std::move(rows).error();
        std::vector<std::string> ids;
        ids.reserve(rows->size());
        for (const auto& row : *rows) ids.push_back(text(row[0]));
        return ids;
      });
}

Result<std::vector<StepRecord>> PostgresStore::get_steps(std::string_view run_id) {
  const std::string what = "reading the steps of run " + std::string(run_id);
  return read<std::vector<StepRecord>>(*pool_, what, [&](Tx& tx) {
    return read_all<StepRecord>(tx, kGetSteps, Params().text(run_id), read_step, what);
  });
}

Result<std::vector<AttemptRecord>> PostgresStore::get_attempts(std::string_view run_id) {
  const std::string what = "reading the attempts of run " + std::string(run_id);
  return read<std::vector<AttemptRecord>>(*pool_, what, [&](Tx& tx) {
    return read_all<AttemptRecord>(tx, kGetAttempts, Params().text(run_id), read_attempt, what);
  });
}

Result<std::vector<RunLease>> PostgresStore::claim_runs(const ClaimRequest& request) {
  if (request.limit <= 0) return std::vector<RunLease>{};
  return write<std::vector<RunLease>>(
      *pool_, "claiming runs", [&](Tx& tx) -> Result<std::vector<RunLease>> {
        std::vector<std::string> candidates = request.run_ids;
        if (candidates.empty()) {
          for (const char* sql : {kClaimableRuns, kClaimableByTimer}) {
            const auto room = static_cast<int64_t>(request.limit) -
                              static_cast<int64_t>(candidates.size());
            if (room <= 0) break;
            Params params;
            params.integer(lease_cutoff(request)).integer(room);
            if (sql == kClaimableByTimer) params.time(request.now);
            auto rows = tx.exec(sql, params, "finding runs to claim");
            if (!rows) return std::move(rows).error();
            for (const auto& row : *rows) candidates.push_back(row[0].as<std::string>());
          }
        }
        std::vector<RunLease> claimed;
        for (const auto& id : candidates) {
          if (claimed.size() >= static_cast<size_t>(request.limit)) break;
          Params params;
          params.text(id).text(request.owner).time(request.lease_until).integer(lease_cutoff(request));
          auto rows = tx.exec(kClaimRun, params, "claiming run " + id);
          if (!rows) return std::move(rows).error();
          if (!rows->empty()) claimed.push_back({id, (*rows)[0][0].as<int64_t>()});
        }
        return claimed;
      });
}

Result<std::vector<std::string>> PostgresStore::renew_leases(const std::vector<RunLease>& leases,
                                                             TimePoint until) {
  if (leases.empty()) return std::vector<std::string>{};
  return write<std::vector<std::string>>(*pool_, "renewing leases", [&](Tx& tx) {
    return update_leases(tx, kRenewLease, leases, until);
  });
}

Status PostgresStore::release_leases(const std::vector<RunLease>& leases) {
  if (leases.empty()) return ok_status();
  auto released = write<std::vector<std::string>>(*pool_, "releasing leases", [&](Tx& tx) {
    return update_leases(tx, kReleaseLease, leases, std::nullopt);
  });
  if (!released) return std::move(released).error();
  return ok_status();
}

Result<std::vector<TimerRecord>> PostgresStore::due_timers(TimePoint now, int limit) {
  if (limit <= 0) return std::vector<TimerRecord>{};
  return read<std::vector<TimerRecord>>(*pool_, "reading due timers", [&](Tx& tx) {
    return read_all<TimerRecord>(tx, kDueTimers, Params().time(now).integer(limit), read_timer,
                                 "reading due timers");
  });
}

Result<std::optional<TimePoint>> PostgresStore::next_timer_due() {
  return read<std::optional<TimePoint>>(
      *pool_, "reading the next timer", [&](Tx& tx) -> Result<std::optional<TimePoint>> {
        auto rows = tx.exec(kNextTimerDue, Params(), "reading the next timer");
        if (!rows) return std::move(rows).error();
        if (rows->empty()) return std::optional<TimePoint>();
        return optional_time((*rows)[0][0]);
      });
}

Result<std::vector<TimerRecord>> PostgresStore::timers_of_run(std::string_view run_id) {
  const std::string what = "reading the timers of run " + std::string(run_id);
  return read<std::vector<TimerRecord>>(*pool_, what, [&](Tx& tx) {
    return read_all<TimerRecord>(tx, kTimersOfRun, Params().text(run_id), read_timer, what);
  });
}

// --- Events and schedules ---

Result<std::vector<EventRecord>> PostgresStore::pending_events(int limit) {
  if (limit <= 0) return std::vector<EventRecord>{};
  return read<std::vector<EventRecord>>(*pool_, "reading pending events", [&](Tx& tx) {
    return read_all<EventRecord>(tx, kPendingEvents, Params().integer(limit), read_event,
                                 "reading pending events");
  });
}

Result<std::vector<ScheduleMark>> PostgresStore::schedule_marks() {
  return read<std::vector<ScheduleMark>>(*pool_, "reading schedule marks", [&](Tx& tx) {
    return read_all<ScheduleMark>(tx, kListScheduleMarks, Params(), read_schedule_mark,
                                  "reading schedule marks");
  });
}

// --- Deployments ---

namespace {

std::string deployment_name(std::string_view workspace_id, std::string_view workflow_id) {
  return "workflow " + std::string(workflow_id) + " in workspace " + std::string(workspace_id);
}

Error not_deployed(std::string_view workspace_id, std::string_view workflow_id) {
  return make_error(ErrorCode::not_found,
                    deployment_name(workspace_id, workflow_id) + " is not deployed");
}

Result<DeployedWorkflow> get_deployed_on(Tx& tx, std::string_view workspace_id,
                                         std::string_view workflow_id) {
  auto found = read_optional<DeployedWorkflow>(
      tx, kGetDeployed, Params().text(workspace_id).text(workflow_id), read_deployed,
      "reading " + deployment_name(workspace_id, workflow_id));
  if (!found) return std::move(found).error();
  if (!*found) return not_deployed(workspace_id, workflow_id);
  return std::move(**found);
}

}  // namespace

Result<DeployResult> PostgresStore::deploy_workflow(std::string_view workspace_id,
                                                    std::string_view workflow_id,
                                                    std::string_view source,
                                                    std::string_view file_name,
                                                    std::string_view actor) {
  const std::string hash = sha256_hex(source);
  const std::string name = deployment_name(workspace_id, workflow_id);
  return write<DeployResult>(*pool_, "deploying " + name, [&](Tx& tx) -> Result<DeployResult> {
    DeployResult result;
    // put_version takes the workflow's lock, which also keeps two deployments of it apart.
    auto version = put_version(tx, workspace_id, workflow_id, source, file_name, hash);
    if (!version) return std::move(version).error();
    result.version = std::move(*version);
    auto current = get_deployed_on(tx, workspace_id, workflow_id);
    if (!current && current.error().code != ErrorCode::not_found) {
      return std::move(current).error();
    }
    const TimePoint now = now_millis();
    if (current && current->version_id == result.version.id) {
      result.workflow = std::move(*current);
      result.new_version = false;
      return result;
    }
    Params params;
    params.text(workspace_id).text(workflow_id).integer(result.version.id).text(actor).time(now);
    if (auto status = execute(tx, current ? kUpdateDeployedVersion : kInsertDeployed, params,
                              "deploying " + name);
        !status) {
      return std::move(status).error();
    }
    if (current) {
      result.workflow = std::move(*current);
    } else {
      result.workflow.workspace_id = workspace_id;
      result.workflow.workflow_id = workflow_id;
      result.workflow.enabled = true;
      result.workflow.created_at = now;
    }
    result.workflow.version_id = result.version.id;
    result.workflow.version = result.version.version;
    result.workflow.updated_by = actor;
    result.workflow.updated_at = now;
    result.new_version = true;
    return result;
  });
}

Result<DeployedWorkflow> PostgresStore::get_deployed(std::string_view workspace_id,
                                                     std::string_view workflow_id) {
  return read<DeployedWorkflow>(
      *pool_, "reading " + deployment_name(workspace_id, workflow_id),
      [&](Tx& tx) { return get_deployed_on(tx, workspace_id, workflow_id); });
}

Result<std::vector<DeployedWorkflow>> PostgresStore::list_deployed(const WorkflowFilter& filter) {
  const int mask = (filter.enabled ? 1 : 0) | (filter.after_id ? 2 : 0);
  const int64_t limit = std::clamp(filter.limit, 1, 1000);
  Params params;
  params.text(filter.workspace_id);
  if (filter.enabled) params.boolean(*filter.enabled);
  if (filter.after_id) params.text(*filter.after_id);
  params.integer(limit);
  return read<std::vector<DeployedWorkflow>>(*pool_, "listing deployed workflows", [&](Tx& tx) {
    return read_all<DeployedWorkflow>(tx, list_deployed_statements()[mask].c_str(), params,
                                      read_deployed, "listing deployed workflows");
  });
}

Result<std::vector<DeployedWorkflow>> PostgresStore::all_enabled_deployed() {
  return read<std::vector<DeployedWorkflow>>(*pool_, "listing enabled workflows", [&](Tx& tx) {
    return read_all<DeployedWorkflow>(tx, kAllEnabledDeployed, Params(), read_deployed,
                                      "listing enabled workflows");
  });
}

Status PostgresStore::set_workflow_enabled(std::string_view workspace_id,
                                           std::string_view workflow_id, bool enabled,
                                           std::string_view actor) {
  const std::string what =
      (enabled ? "enabling " : "disabling ") + deployment_name(workspace_id, workflow_id);
  return write<void>(*pool_, what, [&](Tx& tx) -> Status {
    Params params;
    params.text(workspace_id).text(workflow_id).boolean(enabled).text(actor).time(now_millis());
    auto updated = changed(tx, kSetDeployedEnabled, params, what);
    if (!updated) return std::move(updated).error();
    if (*updated == 0) return not_deployed(workspace_id, workflow_id);
    return ok_status();
  });
}

Status PostgresStore::delete_deployed(std::string_view workspace_id, std::string_view workflow_id) {
  const std::string what = "deleting " + deployment_name(workspace_id, workflow_id);
  return write<void>(*pool_, what, [&](Tx& tx) -> Status {
    const Params key = Params().text(workspace_id).text(workflow_id);
    auto deleted = changed(tx, kDeleteDeployed, key, what);
    if (!deleted) return std::move(deleted).error();
    if (*deleted == 0) return not_deployed(workspace_id, workflow_id);
    return execute(tx, kDeleteScheduleMarksOf, key,
                   "deleting the schedule marks of a deleted workflow");
  });
}

Result<std::vector<WorkflowVersion>> PostgresStore::list_workflow_versions(
    std::string_view workspace_id, std::string_view workflow_id) {
  return read<std::vector<WorkflowVersion>>(*pool_, "listing workflow versions", [&](Tx& tx) {
    return read_all<WorkflowVersion>(tx, kListVersions,
                                     Params().text(workspace_id).text(workflow_id), read_version,
                                     "listing workflow versions");
  });
}

// --- Workspaces and users ---

Status PostgresStore::create_workspace(const Workspace& workspace) {
  if (auto status = check_slug("workspace id", workspace.id); !status) return status;
  const std::string what = "creating workspace " + workspace.id;
  return write<void>(*pool_, what, [&](Tx& tx) -> Status {
    Params params;
    params.text(workspace.id).text(workspace.name).time(workspace.created_at);
    auto status = execute(tx, kInsertWorkspace, params, {});
    if (!status && status.error().code == ErrorCode::already_exists) {
      return make_error(ErrorCode::already_exists, "workspace " + workspace.id + " already exists");
    }
    return with_context(std::move(status), what);
  });
}

Result<Workspace> PostgresStore::get_workspace(std::string_view id) {
  return read<Workspace>(*pool_, "reading a workspace", [&](Tx& tx) {
    return read_one<Workspace>(tx, kGetWorkspace, Params().text(id), read_workspace,
                               "reading a workspace", "no workspace " + std::string(id));
  });
}

Result<std::vector<Workspace>> PostgresStore::list_workspaces() {
  return read<std::vector<Workspace>>(*pool_, "listing workspaces", [&](Tx& tx) {
    return read_all<Workspace>(tx, kListWorkspaces, Params(), read_workspace, "listing workspaces");
  });
}

Status PostgresStore::create_user(const User& user) {
  if (auto status = check_slug("user id", user.id); !status) return status;
  const std::string what = "creating user " + user.id;
  return write<void>(*pool_, what, [&](Tx& tx) -> Status {
    Params params;
    params.text(user.id).text(user.name).text(user.email).time(user.created_at);
    auto status = execute(tx, kInsertUser, params, {});
    if (!status && status.error().code == ErrorCode::already_exists) {
      return make_error(ErrorCode::already_exists, "user " + user.id + " already exists");
    }
    return with_context(std::move(status), what);
  });
}

Result<User> PostgresStore::get_user(std::string_view id) {
  return read<User>(*pool_, "reading a user", [&](Tx& tx) {
    return read_one<User>(tx, kGetUser, Params().text(id), read_user, "reading a user",
                          "no user " + std::string(id));
  });
}

// --- Memberships and tokens ---

namespace {

// not_found naming whichever of the two is missing; run in the write transaction that then
// refers to them.
Status check_member_exists(Tx& tx, std::string_view workspace_id, std::string_view user_id) {
  auto workspace = row_exists(tx, kGetWorkspace, workspace_id, "looking up a workspace");
  if (!workspace) return std::move(workspace).error();
  if (!*workspace) {
    return make_error(ErrorCode::not_found, "no workspace " + std::string(workspace_id));
  }
  auto user = row_exists(tx, kUserExists, user_id, "looking up a user");
  if (!user) return std::move(user).error();
  if (!*user) return make_error(ErrorCode::not_found, "no user " + std::string(user_id));
  return ok_status();
}

}  // namespace

Status PostgresStore::put_membership(const Membership& membership) {
  if (auto status = check_slug("workspace id", membership.workspace_id); !status) return status;
  if (auto status = check_slug("user id", membership.user_id); !status) return status;
  if (auto status = check_role(membership.role); !status) return status;
  const std::string what =
      "adding user " + membership.user_id + " to workspace " + membership.workspace_id;
  return write<void>(*pool_, what, [&](Tx& tx) -> Status {
    if (auto status = check_member_exists(tx, membership.workspace_id, membership.user_id);
        !status) {
      return status;
    }
    Params params;
    params.text(membership.workspace_id)
        .text(membership.user_id)
        .text(membership.role)
        .time(membership.created_at);
    return with_context(execute(tx, kUpsertMembership, params, {}), what);
  });
}

Result<Membership> PostgresStore::get_membership(std::string_view workspace_id,
                                                 std::string_view user_id) {
  return read<Membership>(*pool_, "reading a membership", [&](Tx& tx) {
    return read_one<Membership>(tx, kGetMembership, Params().text(workspace_id).text(user_id),
                                read_membership, "reading a membership",
                                "user " + std::string(user_id) + " is not a member of workspace " +
                                    std::string(workspace_id));
  });
}

Result<std::vector<Membership>> PostgresStore::list_memberships(std::string_view workspace_id) {
  return read<std::vector<Membership>>(*pool_, "listing memberships", [&](Tx& tx) {
    return read_all<Membership>(tx, kListMemberships, Params().text(workspace_id), read_membership,
                                "listing memberships");
  });
}

Status PostgresStore::delete_membership(std::string_view workspace_id, std::string_view user_id) {
  return write<void>(*pool_, "removing a membership", [&](Tx& tx) -> Status {
    auto deleted = changed(tx, kDeleteMembership, Params().text(workspace_id).text(user_id),
                           "removing a membership");
    if (!deleted) return std::move(deleted).error();
    if (*deleted == 0) {
      return make_error(ErrorCode::not_found, "user " + std::string(user_id) +
                                                  " is not a member of workspace " +
                                                  std::string(workspace_id));
    }
    // In the same transaction: a removed member's tokens stop working at the same moment.
    return execute(tx, kRevokeTokensOfMember,
                   Params().text(workspace_id).text(user_id).time(now_millis()),
                   "revoking the tokens of a removed member");
  });
}

Status PostgresStore::create_token(const TokenRecord& token) {
  if (auto status = check_slug("workspace id", token.workspace_id); !status) return status;
  if (auto status = check_slug("user id", token.user_id); !status) return status;
  if (auto status = check_role(token.role); !status) return status;
  const std::string what = "creating token " + token.id;
  return write<void>(*pool_, what, [&](Tx& tx) -> Status {
    if (auto status = check_member_exists(tx, token.workspace_id, token.user_id); !status) {
      return status;
    }
    Params params;
    params.text(token.id)
        .text(token.workspace_id)
        .text(token.user_id)
        .text(token.role)
        .text(token.name)
        .text(token.hash)
        .time(token.created_at)
        .time(token.expires_at)
        .time(token.revoked_at)
        .time(token.last_used_at);
    auto status = execute(tx, kInsertToken, params, {});
    if (!status && status.error().code == ErrorCode::already_exists) {
      return make_error(ErrorCode::already_exists, "token " + token.id + " already exists");
    }
    return with_context(std::move(status), what);
  });
}

Result<TokenRecord> PostgresStore::get_token(std::string_view id) {
  return read<TokenRecord>(*pool_, "reading a token", [&](Tx& tx) {
    return read_one<TokenRecord>(tx, kGetToken, Params().text(id), read_token, "reading a token",
                                 "no token " + std::string(id));
  });
}

Result<std::vector<TokenRecord>> PostgresStore::list_tokens(std::string_view workspace_id) {
  return read<std::vector<TokenRecord>>(*pool_, "listing tokens", [&](Tx& tx) {
    return read_all<TokenRecord>(tx, kListTokens, Params().text(workspace_id), read_token,
                                 "listing tokens");
  });
}

Status PostgresStore::revoke_token(std::string_view workspace_id, std::string_view id) {
  return write<void>(*pool_, "revoking a token", [&](Tx& tx) -> Status {
    auto updated =
        changed(tx, kRevokeToken, Params().text(id).text(workspace_id).time(now_millis()),
                "revoking a token");
    if (!updated) return std::move(updated).error();
    if (*updated == 0) {
      return make_error(ErrorCode::not_found, "no token " + std::string(id) + " in workspace " +
                                                  std::string(workspace_id));
    }
    return ok_status();
  });
}

Status PostgresStore::touch_token(std::string_view id, TimePoint used_at) {
  return write<void>(*pool_, "recording the use of a token", [&](Tx& tx) -> Status {
    auto updated =
        changed(tx, kTouchToken, Params().text(id).time(used_at), "recording the use of a token");
    if (!updated) return std::move(updated).error();
    if (*updated == 0) return make_error(ErrorCode::not_found, "no token " + std::string(id));
    return ok_status();
  });
}

// --- Secrets ---

Status PostgresStore::put_secret(const SecretRecord& secret) {
  return write<void>(*pool_, "storing a secret", [&](Tx& tx) -> Status {
    Params params;
    params.text(secret.workspace_id)
        .text(secret.name)
        .text(secret.ciphertext)
        .text(secret.updated_by)
        .time(secret.created_at)
        .time(secret.updated_at);
    return execute(tx, kUpsertSecret, params, "storing a secret");
  });
}

Result<SecretRecord> PostgresStore::get_secret(std::string_view workspace_id,
                                               std::string_view name) {
  return read<SecretRecord>(*pool_, "reading a secret", [&](Tx& tx) {
    return read_one<SecretRecord>(
        tx, kGetSecret, Params().text(workspace_id).text(name), read_secret, "reading a secret",
        "no secret " + std::string(name) + " in workspace " + std::string(workspace_id));
  });
}

Result<std::vector<SecretRecord>> PostgresStore::list_secrets(std::string_view workspace_id) {
  return read<std::vector<SecretRecord>>(*pool_, "listing secrets", [&](Tx& tx) {
    return read_all<SecretRecord>(tx, kListSecrets, Params().text(workspace_id), read_secret,
                                  "listing secrets");
  });
}

Status PostgresStore::delete_secret(std::string_view workspace_id, std::string_view name) {
  return write<void>(*pool_, "deleting a secret", [&](Tx& tx) -> Status {
    auto deleted =
        changed(tx, kDeleteSecret, Params().text(workspace_id).text(name), "deleting a secret");
    if (!deleted) return std::move(deleted).error();
    if (*deleted == 0) {
      return make_error(ErrorCode::not_found, "no secret " + std::string(name) + " in workspace " +
                                                  std::string(workspace_id));
    }
    return ok_status();
  });
}

// --- Plugin key-value entries ---

Status PostgresStore::kv_put(const KvEntry& entry, int64_t max_entries) {
  return write<void>(*pool_, "storing a plugin entry", [&](Tx& tx) -> Status {
    // Counting then writing: two writers of one plugin must not both see room for one more.
    if (auto status = lock_key(tx, "the entries of plugin " + entry.plugin + " in workspace '" +
                                       entry.workspace_id + "'");
        !status) {
      return status;
    }
    if (auto status =
            execute(tx, kPurgeExpiredKv,
                    Params().text(entry.workspace_id).text(entry.plugin).time(entry.updated_at),
                    "dropping expired plugin entries");
        !status) {
      return status;
    }
    auto count =
        tx.exec(kCountOtherKv, Params().text(entry.workspace_id).text(entry.plugin).text(entry.key),
                "counting plugin entries");
    if (!count) return std::move(count).error();
    if (integer((*count)[0][0]) >= max_entries) {
      return make_error(ErrorCode::resource_exhausted,
                        "plugin " + entry.plugin + " already keeps " + std::to_string(max_entries) +
                            " entries in workspace '" + entry.workspace_id +
                            "'; delete some first");
    }
    Params params;
    params.text(entry.workspace_id)
        .text(entry.plugin)
        .text(entry.key)
        .json(entry.value)
        .time(entry.expires_at)
        .time(entry.updated_at);
    return execute(tx, kUpsertKv, params, "storing a plugin entry");
  });
}

Result<std::optional<KvEntry>> PostgresStore::kv_get(std::string_view workspace_id,
                                                     std::string_view plugin, std::string_view key,
                                                     TimePoint now) {
  return read<std::optional<KvEntry>>(*pool_, "reading a plugin entry", [&](Tx& tx) {
    return read_optional<KvEntry>(tx, kGetKv,
                                  Params().text(workspace_id).text(plugin).text(key).time(now),
                                  read_kv, "reading a plugin entry");
  });
}

Result<bool> PostgresStore::kv_delete(std::string_view workspace_id, std::string_view plugin,
                                      std::string_view key) {
  return write<bool>(*pool_, "deleting a plugin entry", [&](Tx& tx) -> Result<bool> {
    auto deleted = changed(tx, kDeleteKv, Params().text(workspace_id).text(plugin).text(key),
                           "deleting a plugin entry");
    if (!deleted) return std::move(deleted).error();
    return *deleted > 0;
  });
}

// --- Approvals, approval policies, groups and delegations ---

namespace {

#define HERALD_APPROVAL_COLUMNS                                                               \
  "SELECT a.id, a.workspace_id, a.run_id, a.step_id, a.item, a.status, a.title, a.submitter," \
  " a.policy_name, a.policy_version, a.state, a.revision, a.due_at, a.created_at,"            \
  " a.updated_at"
// ON CONFLICT DO NOTHING rather than an error: after an error PostgreSQL takes no further
// statement in the transaction, and the store still has to find out which key collided.
constexpr const char* kInsertApproval =
    "INSERT INTO approvals (id, workspace_id, run_id, step_id, item, status, title, submitter,"
    " policy_name, policy_version, state, revision, due_at, created_at, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    " ON CONFLICT DO NOTHING";
// The compare-and-set: only the revision the writer read is replaced. A concurrent writer of
// the same approval waits for the first one's row lock, then (READ COMMITTED re-checks the
// WHERE on the new row) finds the revision changed and updates nothing.
constexpr const char* kUpdateApproval =
    "UPDATE approvals SET status = $4, title = $5, submitter = $6, policy_name = $7,"
    " policy_version = $8, state = $9, revision = $10, due_at = $11, updated_at = $12"
    " WHERE id = $1 AND workspace_id = $2 AND revision = $3";
constexpr const char* kApprovalRevision =
    "SELECT revision FROM approvals WHERE id = $1 AND workspace_id = $2";
constexpr const char* kApprovalIdExists = "SELECT 1 FROM approvals WHERE id = $1";
constexpr const char* kDeleteAwaiting = "DELETE FROM approval_awaiting WHERE approval_id = $1";
// A principal named twice for one level is one assignment.
constexpr const char* kInsertAwaiting =
    "INSERT INTO approval_awaiting (approval_id, workspace_id, principal, level)"
    " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
constexpr const char* kGetApproval =
    HERALD_APPROVAL_COLUMNS " FROM approvals a WHERE a.id = $1 AND a.workspace_id = $2";
constexpr const char* kGetApprovalById =
    HERALD_APPROVAL_COLUMNS " FROM approvals a WHERE a.id = $1";
constexpr const char* kFindStepApproval = HERALD_APPROVAL_COLUMNS
    " FROM approvals a WHERE a.run_id = $1 AND a.step_id = $2 AND a.item = $3";
// The literal status matches the partial index approvals_due.
constexpr const char* kDueApprovals = HERALD_APPROVAL_COLUMNS
    " FROM approvals a WHERE a.status = 'pending' AND a.due_at <= $1"
    " ORDER BY a.due_at, a.id LIMIT $2";

// Bits: 0 status, 1 run, 2 cursor, 3 awaiting (a JSON array of principals); the workspace
// always. Awaiting is only ever combined with a run here (see list_approvals).
const std::array<std::string, 16>& list_approvals_statements() {
  static const auto statements =
      filtered_statements<4>(HERALD_APPROVAL_COLUMNS " FROM approvals a", "a.workspace_id = ?",
                             {"a.status = ?", "a.run_id = ?", "a.id < ?",
                              "EXISTS (SELECT 1 FROM approval_awaiting w WHERE w.approval_id = a.id"
                              " AND w.principal IN (SELECT json_array_elements_text(?::json)))"},
                             " ORDER BY a.id DESC LIMIT ?");
  return statements;
}

// "Pending for one principal": newest first off approval_awaiting_by_principal, one approval
// per group however many of its levels the principal is on, stopping at the limit. Grouped by
// a.id (the key of approvals) so PostgreSQL accepts every column of a. Bits: 0 status, 1
// cursor; the workspace and principal always.
const std::array<std::string, 4>& awaiting_statements() {
  static const auto statements = filtered_statements<2>(
      HERALD_APPROVAL_COLUMNS " FROM approval_awaiting w JOIN approvals a ON a.id = w.approval_id",
      "w.workspace_id = ? AND w.principal = ?", {"a.status = ?", "w.approval_id < ?"},
      " GROUP BY a.id ORDER BY a.id DESC LIMIT ?");
  return statements;
}

#define HERALD_POLICY_COLUMNS                                                        \
  "SELECT workspace_id, name, version, description, source, file_name, source_hash," \
  " created_by, created_at FROM approval_policies"
constexpr const char* kNewestPolicy =
    HERALD_POLICY_COLUMNS " WHERE workspace_id = $1 AND name = $2 ORDER BY version DESC LIMIT 1";
constexpr const char* kGetPolicyVersion =
    HERALD_POLICY_COLUMNS " WHERE workspace_id = $1 AND name = $2 AND version = $3";
constexpr const char* kListPolicyVersions =
    HERALD_POLICY_COLUMNS " WHERE workspace_id = $1 AND name = $2 ORDER BY version DESC";
constexpr const char* kListPolicies = HERALD_POLICY_COLUMNS
    " p WHERE p.workspace_id = $1 AND p.version = (SELECT MAX(q.version) FROM approval_policies q"
    " WHERE q.workspace_id = p.workspace_id AND q.name = p.name) ORDER BY p.name";
constexpr const char* kInsertPolicy =
    "INSERT INTO approval_policies (workspace_id, name, version, description, source, file_name,"
    " source_hash, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

#define HERALD_GROUP_COLUMNS                                                                 \
  "SELECT workspace_id, name, description, members, updated_by, created_at, updated_at FROM" \
  " approval_groups"
constexpr const char* kUpsertGroup =
    "INSERT INTO approval_groups (workspace_id, name, description, members, updated_by,"
    " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    " ON CONFLICT (workspace_id, name) DO UPDATE SET description = excluded.description,"
    " members = excluded.members, updated_by = excluded.updated_by,"
    " updated_at = excluded.updated_at";
constexpr const char* kGetGroup = HERALD_GROUP_COLUMNS " WHERE workspace_id = $1 AND name = $2";
constexpr const char* kListGroups = HERALD_GROUP_COLUMNS " WHERE workspace_id = $1 ORDER BY name";
constexpr const char* kDeleteGroup =
    "DELETE FROM approval_groups WHERE workspace_id = $1 AND name = $2";

#define HERALD_DELEGATION_COLUMNS                                                              \
  "SELECT workspace_id, user_id, delegate_id, starts_at, ends_at, created_by, created_at FROM" \
  " approval_delegations"
constexpr const char* kUpsertDelegation =
    "INSERT INTO approval_delegations (workspace_id, user_id, delegate_id, starts_at, ends_at,"
    " created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    " ON CONFLICT (workspace_id, user_id) DO UPDATE SET delegate_id = excluded.delegate_id,"
    " starts_at = excluded.starts_at, ends_at = excluded.ends_at,"
    " created_by = excluded.created_by, created_at = excluded.created_at";
constexpr const char* kGetDelegation =
    HERALD_DELEGATION_COLUMNS " WHERE workspace_id = $1 AND user_id = $2";
constexpr const char* kDeleteDelegation =
    "DELETE FROM approval_delegations WHERE workspace_id = $1 AND user_id = $2";
constexpr const char* kDelegationsTo = HERALD_DELEGATION_COLUMNS
    " WHERE workspace_id = $1 AND delegate_id = $2 AND (starts_at IS NULL OR starts_at <= $3)"
    " AND (ends_at IS NULL OR ends_at > $3) ORDER BY user_id";

#undef HERALD_APPROVAL_COLUMNS
#undef HERALD_POLICY_COLUMNS
#undef HERALD_GROUP_COLUMNS
#undef HERALD_DELEGATION_COLUMNS

Result<ApprovalRecord> read_approval(const pqxx::row& row) {
  ApprovalRecord approval;
  approval.id = text(row[0]);
  approval.workspace_id = text(row[1]);
  approval.run_id = text(row[2]);
  approval.step_id = text(row[3]);
  approval.item = static_cast<int>(integer(row[4]));
  approval.status = text(row[5]);
  approval.title = text(row[6]);
  approval.submitter = text(row[7]);
  approval.policy_name = text(row[8]);
  approval.policy_version = static_cast<int>(integer(row[9]));
  if (auto status = read_json_columns(row, {{10, &approval.state}}); !status) {
    return std::move(status).error();
  }
  approval.revision = integer(row[11]);
  approval.due_at = optional_time(row[12]);
  approval.created_at = time(row[13]);
  approval.updated_at = time(row[14]);
  return approval;
}

Result<ApprovalPolicyRecord> read_policy(const pqxx::row& row) {
  ApprovalPolicyRecord policy;
  policy.workspace_id = text(row[0]);
  policy.name = text(row[1]);
  policy.version = static_cast<int>(integer(row[2]));
  policy.description = text(row[3]);
  policy.source = text(row[4]);
  policy.file_name = text(row[5]);
  policy.source_hash = text(row[6]);
  policy.created_by = text(row[7]);
  policy.created_at = time(row[8]);
  return policy;
}

Result<GroupRecord> read_group(const pqxx::row& row) {
  GroupRecord group;
  group.workspace_id = text(row[0]);
  group.name = text(row[1]);
  group.description = text(row[2]);
  auto members = json(row[3]);
  if (!members) return std::move(members).error();
  if (!members->is_array()) return corrupt_row("group " + group.name + " has no member list");
  for (const auto& member : *members) {
    if (!member.is_string()) return corrupt_row("group " + group.name + " has an odd member");
    group.members.push_back(member.get<std::string>());
  }
  group.updated_by = text(row[4]);
  group.created_at = time(row[5]);
  group.updated_at = time(row[6]);
  return group;
}

Result<DelegationRecord> read_delegation(const pqxx::row& row) {
  DelegationRecord delegation;
  delegation.workspace_id = text(row[0]);
  delegation.user_id = text(row[1]);
  delegation.delegate_id = text(row[2]);
  delegation.starts_at = optional_time(row[3]);
  delegation.ends_at = optional_time(row[4]);
  delegation.created_by = text(row[5]);
  delegation.created_at = time(row[6]);
  return delegation;
}

std::string approval_name(const ApprovalRecord& approval) {
  return "approval " + approval.id;
}

Status insert_approval(Tx& tx, const ApprovalRecord& approval) {
  Params params;
  params.text(approval.id)
      .text(approval.workspace_id)
      .text(approval.run_id)
      .text(approval.step_id)
      .integer(approval.item)
      .text(approval.status)
      .text(approval.title)
      .text(approval.submitter)
      .text(approval.policy_name)
      .integer(approval.policy_version)
      .json(approval.state)
      .integer(approval.revision)
      .time(approval.due_at)
      .time(approval.created_at)
      .time(approval.updated_at);
  auto inserted = changed(tx, kInsertApproval, params, "storing " + approval_name(approval));
  if (!inserted) return std::move(inserted).error();
  if (*inserted == 1) return ok_status();
  // Two unique keys: say which one the approval collided with.
  auto same_id = row_exists(tx, kApprovalIdExists, approval.id, "looking up an approval");
  if (!same_id) return std::move(same_id).error();
  if (*same_id) {
    return make_error(ErrorCode::already_exists, approval_name(approval) + " already exists");
  }
  return make_error(ErrorCode::already_exists, "step " + approval.step_id + " (item " +
                                                   std::to_string(approval.item) + ") of run " +
                                                   approval.run_id + " already has an approval");
}

Status update_approval(Tx& tx, const ApprovalRecord& approval, int64_t expected) {
  Params params;
  params.text(approval.id)
      .text(approval.workspace_id)
      .integer(expected)
      .text(approval.status)
      .text(approval.title)
      .text(approval.submitter)
      .text(approval.policy_name)
      .integer(approval.policy_version)
      .json(approval.state)
      .integer(approval.revision)
      .time(approval.due_at)
      .time(approval.updated_at);
  auto updated = changed(tx, kUpdateApproval, params, "updating " + approval_name(approval));
  if (!updated) return std::move(updated).error();
  if (*updated == 1) return ok_status();
  // Tell "someone else wrote it first" from "no such approval (here)".
  auto rows = tx.exec(kApprovalRevision, Params().text(approval.id).text(approval.workspace_id),
                      "looking up " + approval_name(approval));
  if (!rows) return std::move(rows).error();
  if (rows->empty()) {
    return make_error(ErrorCode::not_found, "no approval " + approval.id + " in workspace '" +
                                                approval.workspace_id + "'");
  }
  const int64_t stored = integer((*rows)[0][0]);
  Error error = make_error(ErrorCode::aborted, approval_name(approval) +
                                                   " was changed by someone else (revision " +
                                                   std::to_string(stored) + "); read it again");
  error.details = {{"revision", stored}, {"expected_revision", expected}};
  return error;
}

Status replace_awaiting(Tx& tx, const ApprovalRecord& approval,
                        const std::vector<ApprovalAssignment>& awaiting, bool is_new) {
  if (!is_new) {
    auto status = execute(tx, kDeleteAwaiting, Params().text(approval.id),
                          "replacing the assignments of an approval");
    if (!status) return status;
  }
  for (const auto& assignment : awaiting) {
    Params params;
    params.text(approval.id)
        .text(approval.workspace_id)
        .text(assignment.principal)
        .text(assignment.level);
    if (auto status = execute(tx, kInsertAwaiting, params, {}); !status) {
      return with_context(std::move(status),
                          "assigning " + approval_name(approval) + " to " + assignment.principal);
    }
  }
  return ok_status();
}

}  // namespace

Status PostgresStore::write_approval(const ApprovalWrite& write_) {
  const ApprovalRecord& approval = write_.approval;
  if (approval.id.empty()) {
    return make_error(ErrorCode::invalid_argument, "an approval needs an id");
  }
  // Writing the revision it read would let a second writer that read the same one through.
  if (write_.expected_revision && approval.revision <= *write_.expected_revision) {
    return make_error(ErrorCode::invalid_argument,
                      "the new revision of " + approval_name(approval) + " (" +
                          std::to_string(approval.revision) + ") must be greater than " +
                          std::to_string(*write_.expected_revision));
  }
  return write<void>(*pool_, "storing " + approval_name(approval), [&](Tx& tx) -> Status {
    const bool is_new = !write_.expected_revision;
    auto written = is_new ? insert_approval(tx, approval)
                          : update_approval(tx, approval, *write_.expected_revision);
    if (!written) return written;
    if (auto status = replace_awaiting(tx, approval, write_.awaiting, is_new); !status) {
      return status;
    }
    for (const auto& event : write_.events) {
      if (auto status = insert_event(tx, event); !status) return status;
    }
    for (const auto& record : write_.audit) {
      if (auto id = insert_audit(tx, record); !id) return std::move(id).error();
    }
    if (write_.wake) {
      if (auto status = insert_timer(tx, *write_.wake); !status) return status;
    }
    return ok_status();
  });
}

Result<ApprovalRecord> PostgresStore::get_approval(std::string_view workspace_id,
                                                   std::string_view id) {
  return read<ApprovalRecord>(*pool_, "reading an approval", [&](Tx& tx) {
    return read_one<ApprovalRecord>(
        tx, kGetApproval, Params().text(id).text(workspace_id), read_approval,
        "reading an approval",
        "no approval " + std::string(id) + " in workspace '" + std::string(workspace_id) + "'");
  });
}

Result<ApprovalRecord> PostgresStore::get_approval_by_id(std::string_view id) {
  return read<ApprovalRecord>(*pool_, "reading an approval", [&](Tx& tx) {
    return read_one<ApprovalRecord>(tx, kGetApprovalById, Params().text(id), read_approval,
                                    "reading an approval", "no approval " + std::string(id));
  });
}

Result<std::optional<ApprovalRecord>> PostgresStore::find_step_approval(std::string_view run_id,
                                                                        std::string_view step_id,
                                                                        int item) {
  return read<std::optional<ApprovalRecord>>(
      *pool_, "looking up the approval of a step", [&](Tx& tx) {
        return read_optional<ApprovalRecord>(tx, kFindStepApproval,
                                             Params().text(run_id).text(step_id).integer(item),
                                             read_approval, "looking up the approval of a step");
      });
}

Result<std::vector<ApprovalRecord>> PostgresStore::list_approvals(const ApprovalFilter& filter) {
  const int64_t limit = std::clamp(filter.limit, 1, 1000);
  std::vector<std::string> principals = filter.awaiting;
  std::sort(principals.begin(), principals.end());
  principals.erase(std::unique(principals.begin(), principals.end()), principals.end());
  // Without a run, "awaiting" is one index walk per principal (the caller and the few who
  // delegated to them), each stopping at the page size, merged here; with a run, its few
  // approvals are checked against every principal at once.
  if (principals.empty() || filter.run_id) {
    const int mask = (filter.status ? 1 : 0) | (filter.run_id ? 2 : 0) |
                     (filter.before_id ? 4 : 0) | (principals.empty() ? 0 : 8);
    Params params;
    params.text(filter.workspace_id);
    if (filter.status) params.text(*filter.status);
    if (filter.run_id) params.text(*filter.run_id);
    if (filter.before_id) params.text(*filter.before_id);
    if (!principals.empty()) params.json(Json(principals));
    params.integer(limit);
    return read<std::vector<ApprovalRecord>>(*pool_, "listing approvals", [&](Tx& tx) {
      return read_all<ApprovalRecord>(tx, list_approvals_statements()[mask].c_str(), params,
                                      read_approval, "listing approvals");
    });
  }
  const int mask = (filter.status ? 1 : 0) | (filter.before_id ? 2 : 0);
  return read<std::vector<ApprovalRecord>>(
      *pool_, "listing approvals", [&](Tx& tx) -> Result<std::vector<ApprovalRecord>> {
        std::vector<ApprovalRecord> merged;
        for (const auto& principal : principals) {
          Params params;
          params.text(filter.workspace_id).text(principal);
          if (filter.status) params.text(*filter.status);
          if (filter.before_id) params.text(*filter.before_id);
          params.integer(limit);
          auto page =
              read_all<ApprovalRecord>(tx, awaiting_statements()[mask].c_str(), params,
                                       read_approval, "listing approvals awaiting " + principal);
          if (!page) return std::move(page).error();
          if (principals.size() == 1) return page;
          std::move(page->begin(), page->end(), std::back_inserter(merged));
        }
        // Each principal's page holds its newest `limit`, so the newest `limit` of all are
        // among them.
        std::sort(merged.begin(), merged.end(),
                  [](const ApprovalRecord& a, const ApprovalRecord& b) { return a.id > b.id; });
        merged.erase(std::unique(merged.begin(), merged.end(),
                                 [](const ApprovalRecord& a, const ApprovalRecord& b) {
                                   return a.id == b.id;
                                 }),
                     merged.end());
        if (merged.size() > static_cast<size_t>(limit)) merged.resize(static_cast<size_t>(limit));
        return merged;
      });
}

Result<std::vector<ApprovalRecord>> PostgresStore::due_approvals(TimePoint now, int limit) {
  if (limit <= 0) return std::vector<ApprovalRecord>{};
  return read<std::vector<ApprovalRecord>>(*pool_, "reading due approvals", [&](Tx& tx) {
    return read_all<ApprovalRecord>(tx, kDueApprovals, Params().time(now).integer(limit),
                                    read_approval, "reading due approvals");
  });
}

// --- Approval policies ---

namespace {

std::string policy_name(std::string_view workspace_id, std::string_view name) {
  return "approval policy " + std::string(name) + " in workspace '" + std::string(workspace_id) +
         "'";
}

}  // namespace

Result<ApprovalPolicyRecord> PostgresStore::put_approval_policy(
    const ApprovalPolicyRecord& policy) {
  const std::string hash = sha256_hex(policy.source);
  const std::string name = policy_name(policy.workspace_id, policy.name);
  return write<ApprovalPolicyRecord>(
      *pool_, "storing " + name, [&](Tx& tx) -> Result<ApprovalPolicyRecord> {
        // Reading the newest version, then numbering the next: one writer at a time per policy.
        if (auto status = lock_key(tx, name); !status) return std::move(status).error();
        ApprovalPolicyRecord stored = policy;
        stored.version = 1;
        {
          auto found = read_optional<ApprovalPolicyRecord>(
              tx, kNewestPolicy, Params().text(policy.workspace_id).text(policy.name), read_policy,
              "reading " + name);
          if (!found) return std::move(found).error();
          if (*found) {
            const ApprovalPolicyRecord& current = **found;
            if (current.source_hash == hash && current.description == policy.description) {
              return current;  // nothing changed: no new version
            }
            stored.version = current.version + 1;
          }
        }
        stored.source_hash = hash;
        // The caller's time, or now when it gave none; kept to the millisecond like every time.
        stored.created_at = policy.created_at == TimePoint{}
                                ? now_millis()
                                : from_millis(to_millis(policy.created_at));
        Params params;
        params.text(stored.workspace_id)
            .text(stored.name)
            .integer(stored.version)
            .text(stored.description)
            .text(stored.source)
            .text(stored.file_name)
            .text(stored.source_hash)
            .text(stored.created_by)
            .time(stored.created_at);
        if (auto status = execute(tx, kInsertPolicy, params, "storing " + name); !status) {
          return std::move(status).error();
        }
        return stored;
      });
}

Result<ApprovalPolicyRecord> PostgresStore::get_approval_policy(std::string_view workspace_id,
                                                                std::string_view name,
                                                                std::optional<int> version) {
  std::string missing = "no " + policy_name(workspace_id, name);
  Params params;
  params.text(workspace_id).text(name);
  if (version) {
    params.integer(*version);
    missing = "no version " + std::to_string(*version) + " of " + policy_name(workspace_id, name);
  }
  return read<ApprovalPolicyRecord>(*pool_, "reading an approval policy", [&](Tx& tx) {
    return read_one<ApprovalPolicyRecord>(tx, version ? kGetPolicyVersion : kNewestPolicy, params,
                                          read_policy, "reading an approval policy", missing);
  });
}

Result<std::vector<ApprovalPolicyRecord>> PostgresStore::list_approval_policies(
    std::string_view workspace_id) {
  return read<std::vector<ApprovalPolicyRecord>>(*pool_, "listing approval policies", [&](Tx& tx) {
    return read_all<ApprovalPolicyRecord>(tx, kListPolicies, Params().text(workspace_id),
                                          read_policy, "listing approval policies");
  });
}

Result<std::vector<ApprovalPolicyRecord>> PostgresStore::list_approval_policy_versions(
    std::string_view workspace_id, std::string_view name) {
  const char* what = "listing the versions of an approval policy";
  return read<std::vector<ApprovalPolicyRecord>>(*pool_, what, [&](Tx& tx) {
    return read_all<ApprovalPolicyRecord>(
        tx, kListPolicyVersions, Params().text(workspace_id).text(name), read_policy, what);
  });
}

// --- Groups ---

Status PostgresStore::put_group(const GroupRecord& group) {
  std::vector<std::string> members = group.members;
  for (const auto& member : members) {
    if (auto status = check_slug("user id", member); !status) return status;
  }
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  const Json member_list = members;
  const std::string what = "storing group " + group.name;
  return write<void>(*pool_, what, [&](Tx& tx) -> Status {
    Params params;
    params.text(group.workspace_id)
        .text(group.name)
        .text(group.description)
        .json(member_list)
        .text(group.updated_by)
        .time(group.created_at)
        .time(group.updated_at);
    return with_context(execute(tx, kUpsertGroup, params, {}), what);
  });
}

Result<GroupRecord> PostgresStore::get_group(std::string_view workspace_id, std::string_view name) {
  return read<GroupRecord>(*pool_, "reading a group", [&](Tx& tx) {
    return read_one<GroupRecord>(
        tx, kGetGroup, Params().text(workspace_id).text(name), read_group, "reading a group",
        "no group " + std::string(name) + " in workspace '" + std::string(workspace_id) + "'");
  });
}

Result<std::vector<GroupRecord>> PostgresStore::list_groups(std::string_view workspace_id) {
  return read<std::vector<GroupRecord>>(*pool_, "listing groups", [&](Tx& tx) {
    return read_all<GroupRecord>(tx, kListGroups, Params().text(workspace_id), read_group,
                                 "listing groups");
  });
}

Status PostgresStore::delete_group(std::string_view workspace_id, std::string_view name) {
  return write<void>(*pool_, "deleting a group", [&](Tx& tx) -> Status {
    auto deleted =
        changed(tx, kDeleteGroup, Params().text(workspace_id).text(name), "deleting a group");
    if (!deleted) return std::move(deleted).error();
    if (*deleted == 0) {
      return make_error(ErrorCode::not_found, "no group " + std::string(name) + " in workspace '" +
                                                  std::string(workspace_id) + "'");
    }
    return ok_status();
  });
}

// --- Delegations ---

Status PostgresStore::put_delegation(const DelegationRecord& delegation) {
  if (auto status = check_slug("user id", delegation.user_id); !status) return status;
  if (auto status = check_slug("user id", delegation.delegate_id); !status) return status;
  const std::string what = "storing the delegation of " + delegation.user_id;
  return write<void>(*pool_, what, [&](Tx& tx) -> Status {
    Params params;
    params.text(delegation.workspace_id)
        .text(delegation.user_id)
        .text(delegation.delegate_id)
        .time(delegation.starts_at)
        .time(delegation.ends_at)
        .text(delegation.created_by)
        .time(delegation.created_at);
    return with_context(execute(tx, kUpsertDelegation, params, {}), what);
  });
}

Result<std::optional<DelegationRecord>> PostgresStore::get_delegation(std::string_view workspace_id,
                                                                      std::string_view user_id) {
  return read<std::optional<DelegationRecord>>(*pool_, "reading a delegation", [&](Tx& tx) {
    return read_optional<DelegationRecord>(tx, kGetDelegation,
                                           Params().text(workspace_id).text(user_id),
                                           read_delegation, "reading a delegation");
  });
}

Status PostgresStore::delete_delegation(std::string_view workspace_id, std::string_view user_id) {
  return write<void>(*pool_, "deleting a delegation", [&](Tx& tx) -> Status {
    auto deleted = changed(tx, kDeleteDelegation, Params().text(workspace_id).text(user_id),
                           "deleting a delegation");
    if (!deleted) return std::move(deleted).error();
    if (*deleted == 0) {
      return make_error(ErrorCode::not_found, "user " + std::string(user_id) +
                                                  " has no delegation in workspace '" +
                                                  std::string(workspace_id) + "'");
    }
    return ok_status();
  });
}

Result<std::vector<DelegationRecord>> PostgresStore::delegations_to(std::string_view workspace_id,
                                                                    std::string_view delegate_id,
                                                                    TimePoint at) {
  return read<std::vector<DelegationRecord>>(*pool_, "reading delegations", [&](Tx& tx) {
    return read_all<DelegationRecord>(tx, kDelegationsTo,
                                      Params().text(workspace_id).text(delegate_id).time(at),
                                      read_delegation, "reading delegations");
  });
}

// --- Audit ---

Result<int64_t> PostgresStore::append_audit(const AuditRecord& record) {
  return write<int64_t>(*pool_, "appending to the audit log",
                        [&](Tx& tx) { return insert_audit(tx, record); });
}

Result<std::vector<AuditRecord>> PostgresStore::list_audit(const AuditFilter& filter) {
  const int mask = (filter.action ? 1 : 0) | (filter.actor ? 2 : 0) | (filter.object_id ? 4 : 0) |
                   (filter.before_id ? 8 : 0);
  const int64_t limit = std::clamp(filter.limit, 1, 1000);
  Params params;
  params.text(filter.workspace_id);
  if (filter.action) params.text(*filter.action);
  if (filter.actor) params.text(*filter.actor);
  if (filter.object_id) params.text(*filter.object_id);
  if (filter.before_id) params.integer(*filter.before_id);
  params.integer(limit);
  return read<std::vector<AuditRecord>>(*pool_, "reading the audit log", [&](Tx& tx) {
    return read_all<AuditRecord>(tx, list_audit_statements()[mask].c_str(), params, read_audit,
                                 "reading the audit log");
  });
}

}  // namespace herald::store
