#include "engine/store/sqlite/sqlite_store.h"

#include <Poco/SHA2Engine.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <exception>
#include <initializer_list>
#include <iterator>
#include <utility>

#include "engine/store/checks.h"
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
    " created_at, started_at, finished_at, updated_at, vars, workspace_id, lease_owner,"
    " lease_token, lease_expires_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";
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
    " started_at, finished_at, logs)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    " ON CONFLICT (run_id, step_id, item, attempt) DO UPDATE SET state = excluded.state,"
    " input = excluded.input, output = excluded.output, error = excluded.error,"
    " started_at = excluded.started_at, finished_at = excluded.finished_at,"
    " logs = excluded.logs";
constexpr const char* kInsertTimer =
    "INSERT INTO timers (run_id, step_id, item, kind, due_at) VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr const char* kDeleteTimer = "DELETE FROM timers WHERE id = ?1";
constexpr const char* kDeleteTimersOfRun = "DELETE FROM timers WHERE run_id = ?1";
constexpr const char* kInsertEvent =
    "INSERT INTO events (workspace_id, name, payload, source, created_at, consumed_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
// Only an unconsumed event is taken: of two dispatchers, the second changes no row and fails.
constexpr const char* kConsumeEvent =
    "UPDATE events SET consumed_at = ?2 WHERE id = ?1 AND consumed_at IS NULL";
constexpr const char* kEventExists = "SELECT 1 FROM events WHERE id = ?1";
constexpr const char* kUpsertScheduleMark =
    "INSERT INTO schedule_marks (workspace_id, workflow_id, trigger_index, last_fire)"
    " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (workspace_id, workflow_id, trigger_index)"
    " DO UPDATE SET last_fire = excluded.last_fire"
    " WHERE schedule_marks.last_fire < excluded.last_fire";
constexpr const char* kLeaseToken = "SELECT lease_token FROM runs WHERE id = ?1";
constexpr const char* kReleaseLease =
    "UPDATE runs SET lease_owner = '', lease_expires_at = 0 WHERE id = ?1 AND lease_token = ?2";
constexpr const char* kRenewLease =
    "UPDATE runs SET lease_expires_at = ?3"
    " WHERE id = ?1 AND lease_token = ?2 AND lease_owner <> ''";
// ?1 leases ending by then are over (now, or the end of time for a take-over), ?2 limit, ?3 now.
constexpr const char* kClaimableRuns =
    "SELECT id FROM runs WHERE state IN ('queued', 'running') AND lease_expires_at <= ?1"
    " ORDER BY lease_expires_at, id LIMIT ?2";
constexpr const char* kClaimableByTimer =
    "SELECT DISTINCT t.run_id FROM timers t JOIN runs r ON r.id = t.run_id"
    " WHERE t.due_at <= ?3 AND r.state = 'waiting' AND r.lease_expires_at <= ?1 LIMIT ?2";
// ?1 run, ?2 owner, ?3 lease end, ?4 leases ending by then are over. A new owner gets a larger token; the same owner keeps
// its token (nobody claimed the run in between, or the owner would have changed).
constexpr const char* kClaimRun =
    "UPDATE runs SET lease_token = CASE WHEN lease_owner = ?2 THEN lease_token"
    " ELSE lease_token + 1 END, lease_owner = ?2, lease_expires_at = ?3"
    " WHERE id = ?1 AND (lease_expires_at <= ?4 OR lease_owner = ?2) RETURNING lease_token";

#define HERALD_RUN_COLUMNS                                                           \
  "SELECT id, workflow_id, workflow_version_id, state, inputs, trigger_data, error," \
  " created_at, started_at, finished_at, updated_at, vars, workspace_id FROM runs"
constexpr const char* kGetRun = HERALD_RUN_COLUMNS " WHERE id = ?1";
constexpr const char* kUnfinishedRuns =
    "SELECT id FROM runs WHERE state IN ('queued', 'running') ORDER BY id";

constexpr const char* kGetSteps =
    "SELECT run_id, step_id, item, on_error, state, attempt, input, output, error,"
    " idempotency_key, started_at, finished_at FROM steps WHERE run_id = ?1"
    " ORDER BY step_id, item";
constexpr const char* kGetAttempts =
    "SELECT run_id, step_id, item, attempt, state, input, output, error, started_at, finished_at,"
    " logs FROM attempts WHERE run_id = ?1 ORDER BY started_at, step_id, item, attempt";

#define HERALD_TIMER_COLUMNS "SELECT id, run_id, step_id, item, kind, due_at FROM timers"
constexpr const char* kDueTimers =
    HERALD_TIMER_COLUMNS " WHERE due_at <= ?1 ORDER BY due_at, id LIMIT ?2";
constexpr const char* kTimersOfRun = HERALD_TIMER_COLUMNS " WHERE run_id = ?1 ORDER BY due_at, id";
constexpr const char* kNextTimerDue = "SELECT MIN(due_at) FROM timers";

#define HERALD_VERSION_COLUMNS                                                                \
  "SELECT id, workflow_id, version, source, file_name, source_hash, created_at, workspace_id" \
  " FROM workflow_versions"
constexpr const char* kGetVersion = HERALD_VERSION_COLUMNS " WHERE id = ?1";
constexpr const char* kFindVersionByHash =
    HERALD_VERSION_COLUMNS " WHERE workspace_id = ?1 AND workflow_id = ?2 AND source_hash = ?3";
constexpr const char* kNextVersion =
    "SELECT COALESCE(MAX(version), 0) + 1 FROM workflow_versions"
    " WHERE workspace_id = ?1 AND workflow_id = ?2";
constexpr const char* kInsertVersion =
    "INSERT INTO workflow_versions (workspace_id, workflow_id, version, source, file_name,"
    " source_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id";
constexpr const char* kListVersions =
    HERALD_VERSION_COLUMNS " WHERE workspace_id = ?1 AND workflow_id = ?2 ORDER BY version DESC";

#define HERALD_EVENT_COLUMNS \
  "SELECT id, workspace_id, name, payload, source, created_at, consumed_at FROM events"
constexpr const char* kPendingEvents =
    HERALD_EVENT_COLUMNS " WHERE consumed_at IS NULL ORDER BY id LIMIT ?1";
constexpr const char* kListScheduleMarks =
    "SELECT workspace_id, workflow_id, trigger_index, last_fire FROM schedule_marks"
    " ORDER BY workspace_id, workflow_id, trigger_index";

// --- Deployments ---

#define HERALD_DEPLOYED_COLUMNS                                                             \
  "SELECT d.workspace_id, d.workflow_id, d.version_id, v.version, d.enabled, d.updated_by," \
  " d.created_at, d.updated_at FROM deployed_workflows d"                                   \
  " JOIN workflow_versions v ON v.id = d.version_id"
constexpr const char* kGetDeployed =
    HERALD_DEPLOYED_COLUMNS " WHERE d.workspace_id = ?1 AND d.workflow_id = ?2";
constexpr const char* kAllEnabledDeployed =
    HERALD_DEPLOYED_COLUMNS " WHERE d.enabled = 1 ORDER BY d.workspace_id, d.workflow_id";
constexpr const char* kInsertDeployed =
    "INSERT INTO deployed_workflows (workspace_id, workflow_id, version_id, enabled, updated_by,"
    " created_at, updated_at) VALUES (?1, ?2, ?3, 1, ?4, ?5, ?5)";
constexpr const char* kUpdateDeployedVersion =
    "UPDATE deployed_workflows SET version_id = ?3, updated_by = ?4, updated_at = ?5"
    " WHERE workspace_id = ?1 AND workflow_id = ?2";
constexpr const char* kSetDeployedEnabled =
    "UPDATE deployed_workflows SET enabled = ?3, updated_by = ?4, updated_at = ?5"
    " WHERE workspace_id = ?1 AND workflow_id = ?2";
constexpr const char* kDeleteDeployed =
    "DELETE FROM deployed_workflows WHERE workspace_id = ?1 AND workflow_id = ?2";
constexpr const char* kDeleteScheduleMarksOf =
    "DELETE FROM schedule_marks WHERE workspace_id = ?1 AND workflow_id = ?2";

// --- Workspaces, users, memberships, tokens, secrets, audit ---

constexpr const char* kInsertWorkspace =
    "INSERT INTO workspaces (id, name, created_at) VALUES (?1, ?2, ?3)";
constexpr const char* kGetWorkspace = "SELECT id, name, created_at FROM workspaces WHERE id = ?1";
constexpr const char* kListWorkspaces = "SELECT id, name, created_at FROM workspaces ORDER BY id";
constexpr const char* kInsertUser =
    "INSERT INTO users (id, name, email, created_at) VALUES (?1, ?2, ?3, ?4)";
constexpr const char* kGetUser = "SELECT id, name, email, created_at FROM users WHERE id = ?1";
constexpr const char* kUserExists = "SELECT 1 FROM users WHERE id = ?1";
constexpr const char* kUpsertMembership =
    "INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role";
#define HERALD_MEMBERSHIP_COLUMNS "SELECT workspace_id, user_id, role, created_at FROM memberships"
constexpr const char* kGetMembership =
    HERALD_MEMBERSHIP_COLUMNS " WHERE workspace_id = ?1 AND user_id = ?2";
constexpr const char* kListMemberships =
    HERALD_MEMBERSHIP_COLUMNS " WHERE workspace_id = ?1 ORDER BY user_id";
constexpr const char* kDeleteMembership =
    "DELETE FROM memberships WHERE workspace_id = ?1 AND user_id = ?2";
constexpr const char* kRevokeTokensOfMember =
    "UPDATE tokens SET revoked_at = ?3"
    " WHERE workspace_id = ?1 AND user_id = ?2 AND revoked_at IS NULL";
constexpr const char* kInsertToken =
    "INSERT INTO tokens (id, workspace_id, user_id, role, name, hash, created_at, expires_at,"
    " revoked_at, last_used_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
#define HERALD_TOKEN_COLUMNS                                                                \
  "SELECT id, workspace_id, user_id, role, name, hash, created_at, expires_at, revoked_at," \
  " last_used_at FROM tokens"
constexpr const char* kGetToken = HERALD_TOKEN_COLUMNS " WHERE id = ?1";
constexpr const char* kListTokens = HERALD_TOKEN_COLUMNS " WHERE workspace_id = ?1 ORDER BY id";
// The first revocation's time stays: revoking again changes nothing.
constexpr const char* kRevokeToken =
    "UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?3) WHERE id = ?1 AND workspace_id = ?2";
constexpr const char* kTouchToken = "UPDATE tokens SET last_used_at = ?2 WHERE id = ?1";
constexpr const char* kUpsertSecret =
    "INSERT INTO secrets (workspace_id, name, ciphertext, updated_by, created_at, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (workspace_id, name) DO UPDATE SET"
    " ciphertext = excluded.ciphertext, updated_by = excluded.updated_by,"
    " updated_at = excluded.updated_at";
#define HERALD_SECRET_COLUMNS \
  "SELECT workspace_id, name, ciphertext, updated_by, created_at, updated_at FROM secrets"
constexpr const char* kGetSecret = HERALD_SECRET_COLUMNS " WHERE workspace_id = ?1 AND name = ?2";
constexpr const char* kListSecrets = HERALD_SECRET_COLUMNS " WHERE workspace_id = ?1 ORDER BY name";
constexpr const char* kDeleteSecret = "DELETE FROM secrets WHERE workspace_id = ?1 AND name = ?2";
constexpr const char* kPurgeExpiredKv =
    "DELETE FROM plugin_kv WHERE workspace_id = ?1 AND plugin = ?2 AND expires_at IS NOT NULL"
    " AND expires_at <= ?3";
constexpr const char* kCountOtherKv =
    "SELECT count(*) FROM plugin_kv WHERE workspace_id = ?1 AND plugin = ?2 AND key <> ?3";
constexpr const char* kUpsertKv =
    "INSERT INTO plugin_kv (workspace_id, plugin, key, value, expires_at, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (workspace_id, plugin, key) DO UPDATE SET"
    " value = excluded.value, expires_at = excluded.expires_at, updated_at = excluded.updated_at";
constexpr const char* kGetKv =
    "SELECT workspace_id, plugin, key, value, expires_at, updated_at FROM plugin_kv"
    " WHERE workspace_id = ?1 AND plugin = ?2 AND key = ?3 AND (expires_at IS NULL OR expires_at > ?4)";
constexpr const char* kDeleteKv =
    "DELETE FROM plugin_kv WHERE workspace_id = ?1 AND plugin = ?2 AND key = ?3";
constexpr const char* kInsertAudit =
    "INSERT INTO audit_log (workspace_id, actor, action, object_type, object_id, address,"
    " request_id, details, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id";

constexpr const char* kInsertMigration =
    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)";
constexpr const char* kCurrentSchemaVersion =
    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations";

// Listings have a statement per combination of their optional filters (a bit each), built
// once, so each keeps a plan that uses the matching index. Parameters keep fixed numbers: ?1
// for the first condition, ?2 for the second, and so on, then `tail` (an ORDER BY and LIMIT).
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
    result[mask] = std::move(sql);
  }
  return result;
}

// Bits: 0 workspace, 1 workflow, 2 state, 3 cursor.
const std::array<std::string, 16>& list_runs_statements() {
  static const auto statements =
      filtered_statements<4>(HERALD_RUN_COLUMNS, nullptr,
                             {"workspace_id = ?1", "workflow_id = ?2", "state = ?3", "id < ?4"},
                             " ORDER BY id DESC LIMIT ?5");
  return statements;
}

// Bits: 0 enabled, 1 cursor; the workspace (?1) always.
const std::array<std::string, 4>& list_deployed_statements() {
  static const auto statements = filtered_statements<2>(
      HERALD_DEPLOYED_COLUMNS, "d.workspace_id = ?1", {"d.enabled = ?2", "d.workflow_id > ?3"},
      " ORDER BY d.workflow_id LIMIT ?4");
  return statements;
}

// Bits: 0 action, 1 actor, 2 object id, 3 cursor; the workspace (?1) always.
const std::array<std::string, 16>& list_audit_statements() {
  static const auto statements = filtered_statements<4>(
      "SELECT id, workspace_id, actor, action, object_type, object_id, address, request_id,"
      " details, at FROM audit_log",
      "workspace_id = ?1", {"action = ?2", "actor = ?3", "object_id = ?4", "id < ?5"},
      " ORDER BY id DESC LIMIT ?6");
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
  version.workspace_id = row.column_text(7);
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
  run.workspace_id = row.column_text(12);
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
          read_json_columns(row, {{5, &attempt.input},
                                  {6, &attempt.output},
                                  {7, &attempt.error},
                                  {10, &attempt.logs}});
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

Result<EventRecord> read_event(const Statement& row) {
  EventRecord event;
  event.id = row.column_int64(0);
  event.workspace_id = row.column_text(1);
  event.name = row.column_text(2);
  if (auto status = read_json_columns(row, {{3, &event.payload}}); !status) {
    return std::move(status).error();
  }
  event.source = row.column_text(4);
  event.created_at = row.column_time(5);
  event.consumed_at = row.column_optional_time(6);
  return event;
}

Result<ScheduleMark> read_schedule_mark(const Statement& row) {
  ScheduleMark mark;
  mark.workspace_id = row.column_text(0);
  mark.workflow_id = row.column_text(1);
  mark.trigger_index = static_cast<int>(row.column_int64(2));
  mark.last_fire = row.column_time(3);
  return mark;
}

Result<DeployedWorkflow> read_deployed(const Statement& row) {
  DeployedWorkflow deployed;
  deployed.workspace_id = row.column_text(0);
  deployed.workflow_id = row.column_text(1);
  deployed.version_id = row.column_int64(2);
  deployed.version = static_cast<int>(row.column_int64(3));
  deployed.enabled = row.column_int64(4) != 0;
  deployed.updated_by = row.column_text(5);
  deployed.created_at = row.column_time(6);
  deployed.updated_at = row.column_time(7);
  return deployed;
}

Result<Workspace> read_workspace(const Statement& row) {
  Workspace workspace;
  workspace.id = row.column_text(0);
  workspace.name = row.column_text(1);
  workspace.created_at = row.column_time(2);
  return workspace;
}

Result<User> read_user(const Statement& row) {
  User user;
  user.id = row.column_text(0);
  user.name = row.column_text(1);
  user.email = row.column_text(2);
  user.created_at = row.column_time(3);
  return user;
}

Result<Membership> read_membership(const Statement& row) {
  Membership membership;
  membership.workspace_id = row.column_text(0);
  membership.user_id = row.column_text(1);
  membership.role = row.column_text(2);
  membership.created_at = row.column_time(3);
  return membership;
}

Result<TokenRecord> read_token(const Statement& row) {
  TokenRecord token;
  token.id = row.column_text(0);
  token.workspace_id = row.column_text(1);
  token.user_id = row.column_text(2);
  token.role = row.column_text(3);
  token.name = row.column_text(4);
  token.hash = row.column_text(5);
  token.created_at = row.column_time(6);
  token.expires_at = row.column_optional_time(7);
  token.revoked_at = row.column_optional_time(8);
  token.last_used_at = row.column_optional_time(9);
  return token;
}

Result<SecretRecord> read_secret(const Statement& row) {
  SecretRecord secret;
  secret.workspace_id = row.column_text(0);
  secret.name = row.column_text(1);
  secret.ciphertext = row.column_text(2);
  secret.updated_by = row.column_text(3);
  secret.created_at = row.column_time(4);
  secret.updated_at = row.column_time(5);
  return secret;
}

Result<KvEntry> read_kv(const Statement& row) {
  KvEntry entry;
  entry.workspace_id = row.column_text(0);
  entry.plugin = row.column_text(1);
  entry.key = row.column_text(2);
  auto value = row.column_json(3);
  if (!value) return std::move(value).error();
  entry.value = std::move(value).value();
  entry.expires_at = row.column_optional_time(4);
  entry.updated_at = row.column_time(5);
  return entry;
}

Result<AuditRecord> read_audit(const Statement& row) {
  AuditRecord record;
  record.id = row.column_int64(0);
  record.workspace_id = row.column_text(1);
  record.actor = row.column_text(2);
  record.action = row.column_text(3);
  record.object_type = row.column_text(4);
  record.object_id = row.column_text(5);
  record.address = row.column_text(6);
  record.request_id = row.column_text(7);
  if (auto status = read_json_columns(row, {{8, &record.details}}); !status) {
    return std::move(status).error();
  }
  record.at = row.column_time(9);
  return record;
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

// Steps a prepared query for one row: the record, or not_found with `missing` as the message.
template <typename Record>
Result<Record> read_one(Statement& stmt, Result<Record> (*read)(const Statement&),
                        std::string_view what, std::string missing) {
  auto row = stmt.step(what);
  if (!row) return std::move(row).error();
  if (!*row) return make_error(ErrorCode::not_found, std::move(missing));
  return read(stmt);
}

// Rows the last INSERT, UPDATE or DELETE on `db` touched.
int changes(Connection& db) {
  return sqlite3_changes(db.handle());
}

// --- Commit parts ---

Status insert_run(Connection& db, const RunRecord& run, const std::optional<LeaseGrant>& lease) {
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
  stmt->bind(13, run.workspace_id);
  stmt->bind(14, lease ? std::string_view(lease->owner) : std::string_view(""));
  stmt->bind(15, int64_t{lease ? 1 : 0});
  stmt->bind(16, lease ? sqlite::to_millis(lease->until) : int64_t{0});
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
  stmt->bind_json(11, attempt.logs);
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

Status insert_event(Connection& db, const EventRecord& event) {
  auto stmt = db.prepare(kInsertEvent);
  if (!stmt) return std::move(stmt).error();
  stmt->bind(1, event.workspace_id);
  stmt->bind(2, event.name);
  stmt->bind_json(3, event.payload);
  stmt->bind(4, event.source);
  stmt->bind(5, event.created_at);
  stmt->bind(6, event.consumed_at);
  auto status = stmt->run({});
  if (!status) return with_context(std::move(status), "storing event " + event.name);
  return status;
}

// One audit entry, in the caller's transaction; its id.
Result<int64_t> insert_audit(Connection& db, const AuditRecord& record) {
  auto stmt = db.prepare(kInsertAudit);
  if (!stmt) return std::move(stmt).error();
  stmt->bind(1, record.workspace_id);
  stmt->bind(2, record.actor);
  stmt->bind(3, record.action);
  stmt->bind(4, record.object_type);
  stmt->bind(5, record.object_id);
  stmt->bind(6, record.address);
  stmt->bind(7, record.request_id);
  stmt->bind_json(8, record.details);
  stmt->bind(9, record.at);
  auto row = stmt->step("appending to the audit log");
  if (!row) return std::move(row).error();
  const int64_t id = stmt->column_int64(0);
  // Step past the RETURNING row so the insert is complete before COMMIT.
  if (auto done = stmt->step("appending to the audit log"); !done) {
    return std::move(done).error();
  }
  return id;
}

Status consume_event(Connection& db, int64_t id, TimePoint now) {
  {
    auto stmt = db.prepare(kConsumeEvent);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id);
    stmt->bind(2, now);
    if (auto status = stmt->run({}); !status) {
      return with_context(std::move(status), "consuming event " + std::to_string(id));
    }
    if (changes(db) == 1) return ok_status();
  }
  // Tell "someone else got there first" from "no such event"; both fail the Commit.
  auto exists = db.prepare(kEventExists);
  if (!exists) return std::move(exists).error();
  exists->bind(1, id);
  auto row = exists->step("looking up event " + std::to_string(id));
  if (!row) return std::move(row).error();
  return make_error(ErrorCode::failed_precondition,
                    "cannot consume event " + std::to_string(id) +
                        (*row ? ": it is already consumed" : ": no such event"));
}

Status upsert_schedule_mark(Connection& db, const ScheduleMark& mark) {
  auto stmt = db.prepare(kUpsertScheduleMark);
  if (!stmt) return std::move(stmt).error();
  stmt->bind(1, mark.workspace_id);
  stmt->bind(2, mark.workflow_id);
  stmt->bind(3, int64_t{mark.trigger_index});
  stmt->bind(4, mark.last_fire);
  auto status = stmt->run({});
  if (!status) {
    return with_context(std::move(status),
                        "storing the schedule mark of workflow " + mark.workflow_id);
  }
  if (changes(db) == 0) return schedule_mark_behind(mark);
  return status;
}

// The fence of a Commit: the run's lease must still carry the token the change is made under.
Status check_fence(Connection& db, const RunLease& fence) {
  auto stmt = db.prepare(kLeaseToken);
  if (!stmt) return std::move(stmt).error();
  stmt->bind(1, fence.run_id);
  auto row = stmt->step("reading the lease of run " + fence.run_id);
  if (!row) return std::move(row).error();
  if (!*row) return make_error(ErrorCode::not_found, "run " + fence.run_id + " is not stored");
  return check_lease_token(fence, stmt->column_int64(0));
}

// Runs `sql` with (run id, token) for each lease; returns the ids of those it changed no row of.
Result<std::vector<std::string>> update_leases(Connection& db, const char* sql,
                                               const std::vector<RunLease>& leases,
                                               std::optional<TimePoint> until) {
  std::vector<std::string> unchanged;
  for (const auto& lease : leases) {
    auto stmt = db.prepare(sql);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, lease.run_id);
    stmt->bind(2, lease.token);
    if (until) stmt->bind(3, *until);
    if (auto status = stmt->run("updating the lease of run " + lease.run_id); !status) {
      return std::move(status).error();
    }
    if (changes(db) == 0) unchanged.push_back(lease.run_id);
  }
  return unchanged;
}

// Everything in one Commit, in a fixed order: the runs first (so their steps can refer to them),
// timer deletions before additions (so "replace this run's timers" works in one Commit).
Status apply(Connection& db, const Commit& commit) {
  if (auto status = check_lease_fields(commit); !status) return status;
  for (const auto& run : commit.insert_runs) {
    if (auto status = insert_run(db, run, commit.lease_inserted); !status) return status;
  }
  if (commit.fence) {
    if (auto status = check_fence(db, *commit.fence); !status) return status;
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
  for (const auto& event : commit.add_events) {
    if (auto status = insert_event(db, event); !status) return status;
  }
  if (!commit.consume_events.empty()) {
    const TimePoint now = now_millis();
    for (int64_t id : commit.consume_events) {
      if (auto status = consume_event(db, id, now); !status) return status;
    }
  }
  for (const auto& mark : commit.schedule_marks) {
    if (auto status = upsert_schedule_mark(db, mark); !status) return status;
  }
  if (commit.release) {
    auto released = update_leases(db, kReleaseLease, {*commit.fence}, std::nullopt);
    if (!released) return std::move(released).error();
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

// The version of a workflow with this source: the stored one, or a new one numbered max+1 in
// its (workspace, workflow). Runs inside the caller's write transaction.
Result<WorkflowVersion> put_version(Connection& db, std::string_view workspace_id,
                                    std::string_view workflow_id, std::string_view source,
                                    std::string_view file_name, const std::string& hash) {
  {
    auto find = db.prepare(kFindVersionByHash);
    if (!find) return std::move(find).error();
    find->bind(1, workspace_id);
    find->bind(2, workflow_id);
    find->bind(3, hash);
    auto row = find->step("looking up workflow " + std::string(workflow_id));
    if (!row) return std::move(row).error();
    if (*row) return read_version(*find);
  }
  WorkflowVersion version;
  version.workspace_id = workspace_id;
  version.workflow_id = workflow_id;
  version.source = source;
  version.file_name = file_name;
  version.source_hash = hash;
  version.created_at = now_millis();
  {
    auto next = db.prepare(kNextVersion);
    if (!next) return std::move(next).error();
    next->bind(1, workspace_id);
    next->bind(2, workflow_id);
    auto row = next->step("numbering workflow " + version.workflow_id);
    if (!row) return std::move(row).error();
    version.version = static_cast<int>(next->column_int64(0));
  }
  auto insert = db.prepare(kInsertVersion);
  if (!insert) return std::move(insert).error();
  insert->bind(1, workspace_id);
  insert->bind(2, workflow_id);
  insert->bind(3, int64_t{version.version});
  insert->bind(4, source);
  insert->bind(5, file_name);
  insert->bind(6, hash);
  insert->bind(7, version.created_at);
  auto row = insert->step("storing workflow " + version.workflow_id);
  if (!row) return std::move(row).error();
  version.id = insert->column_int64(0);
  // Step past the RETURNING row so the insert is complete before COMMIT.
  if (auto done = insert->step("storing workflow " + version.workflow_id); !done) {
    return std::move(done).error();
  }
  return version;
}

// Whether a row exists for a one-parameter "SELECT 1 ... WHERE key = ?1" statement.
Result<bool> row_exists(Connection& db, const char* sql, std::string_view key,
                        std::string_view what) {
  auto stmt = db.prepare(sql);
  if (!stmt) return std::move(stmt).error();
  stmt->bind(1, key);
  return stmt->step(what);
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
  // Rebuilding a table that others refer to (migration 3) needs foreign keys off, which SQLite
  // only lets us switch outside a transaction; foreign_key_check below stands in for them, so a
  // migration still cannot leave a dangling reference behind.
  if (auto status = db.exec("PRAGMA foreign_keys = OFF", "migrating " + path_); !status) {
    return status;
  }
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
    bool applied = false;
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
      applied = true;
    }
    if (applied) {
      auto broken = db.query_text("PRAGMA foreign_key_check", "checking the migrated schema");
      if (!broken) return std::move(broken).error();
      if (*broken) {
        return make_error(ErrorCode::failed_precondition, "cannot migrate the store " + path_ +
                                                              ": rows of table " + **broken +
                                                              " refer to rows that do not exist");
      }
    }
    return true;
  });
  // Back on whatever happened: every commit relies on them.
  auto restored = db.exec("PRAGMA foreign_keys = ON", "migrating " + path_);
  if (!result) return std::move(result).error();
  return restored;
}

template <typename T, typename F>
Result<T> SqliteStore::with_writer(F&& body) {
  std::lock_guard lock(write_mutex_);
  Connection& db = *writer_;
  return in_transaction<T>(db, [&]() -> Result<T> { return body(db); });
}

Result<WorkflowVersion> SqliteStore::put_workflow_version(std::string_view workspace_id,
                                                          std::string_view workflow_id,
                                                          std::string_view source,
                                                          std::string_view file_name) {
  const std::string hash = sha256_hex(source);
  return with_writer<WorkflowVersion>([&](Connection& db) {
    return put_version(db, workspace_id, workflow_id, source, file_name, hash);
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
  const int mask = (filter.workspace_id ? 1 : 0) | (filter.workflow_id ? 2 : 0) |
                   (filter.state ? 4 : 0) | (filter.before_id ? 8 : 0);
  const int64_t limit = std::clamp(filter.limit, 1, 1000);
  return with_reader([&](Connection& db) -> Result<std::vector<RunRecord>> {
    auto stmt = db.prepare(list_runs_statements()[mask].c_str());
    if (!stmt) return std::move(stmt).error();
    if (filter.workspace_id) stmt->bind(1, *filter.workspace_id);
    if (filter.workflow_id) stmt->bind(2, *filter.workflow_id);
    if (filter.state) stmt->bind(3, to_string(*filter.state));
    if (filter.before_id) stmt->bind(4, *filter.before_id);
    stmt->bind(5, limit);
    return read_all<RunRecord>(*stmt, read_run, "listing runs");
  });
}

Result<int64_t> SqliteStore::count_runs(const RunFilter& filter) {
  return with_reader([&](Connection& db) -> Result<int64_t> {
    auto stmt = db.prepare(
        "SELECT count(*) FROM runs WHERE (?1 IS NULL OR workspace_id = ?1) AND "
        "(?2 IS NULL OR workflow_id = ?2) AND (?3 IS NULL OR state = ?3)");
    if (!stmt) return std::move(stmt).error();
    if (filter.workspace_id) stmt->bind(1, *filter.workspace_id); else stmt->bind_null(1);
    if (filter.workflow_id) stmt->bind(2, *filter.workflow_id); else stmt->bind_null(2);
    if (filter.state) stmt->bind(3, to_string(*filter.state)); else stmt->bind_null(3);
    auto row = stmt->step("counting runs");
    if (!row) return std::move(row).error();
    return *row ? stmt->column_int64(0) : int64_t{0};
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

namespace {

// The runs a claim with no named runs may take, at most `limit`.
Result<std::vector<std::string>> claimable_runs(Connection& db, const ClaimRequest& request) {
  std::vector<std::string> candidates;
  for (const char* sql : {kClaimableRuns, kClaimableByTimer}) {
    const auto room =
        static_cast<int64_t>(request.limit) - static_cast<int64_t>(candidates.size());
    if (room <= 0) break;
    auto stmt = db.prepare(sql);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, lease_cutoff(request));
    stmt->bind(2, room);
    if (sql == kClaimableByTimer) stmt->bind(3, request.now);
    while (true) {
      auto row = stmt->step("finding runs to claim");
      if (!row) return std::move(row).error();
      if (!*row) break;
      candidates.emplace_back(stmt->column_text(0));
    }
  }
  return candidates;
}

}  // namespace

Result<std::vector<RunLease>> SqliteStore::claim_runs(const ClaimRequest& request) {
  if (request.limit <= 0) return std::vector<RunLease>{};
  if (request.run_ids.empty()) {
    // Idle engines poll: look on a reader first, so a poll that finds nothing never queues up
    // behind the writer (nor holds it up).
    auto found = with_reader([&](Connection& db) { return claimable_runs(db, request); });
    if (!found) return std::move(found).error();
    if (found->empty()) return std::vector<RunLease>{};
  }
  return with_writer<std::vector<RunLease>>(
      [&](Connection& db) -> Result<std::vector<RunLease>> {
        std::vector<std::string> candidates = request.run_ids;
        if (candidates.empty()) {
          auto found = claimable_runs(db, request);
          if (!found) return std::move(found).error();
          candidates = std::move(*found);
        }
        std::vector<RunLease> claimed;
        for (const auto& id : candidates) {
          if (claimed.size() >= static_cast<size_t>(request.limit)) break;
          auto stmt = db.prepare(kClaimRun);
          if (!stmt) return std::move(stmt).error();
          stmt->bind(1, id);
          stmt->bind(2, request.owner);
          stmt->bind(3, request.lease_until);
          stmt->bind(4, lease_cutoff(request));
          auto row = stmt->step("claiming run " + id);
          if (!row) return std::move(row).error();
          if (*row) claimed.push_back({id, stmt->column_int64(0)});
          // RETURNING rows are produced as the statement runs; finish it before the next one.
          while (*row) {
            row = stmt->step("claiming run " + id);
            if (!row) return std::move(row).error();
          }
        }
        return claimed;
      });
}

Result<std::vector<std::string>> SqliteStore::renew_leases(const std::vector<RunLease>& leases,
                                                           TimePoint until) {
  if (leases.empty()) return std::vector<std::string>{};
  return with_writer<std::vector<std::string>>(
      [&](Connection& db) { return update_leases(db, kRenewLease, leases, until); });
}

Status SqliteStore::release_leases(const std::vector<RunLease>& leases) {
  if (leases.empty()) return ok_status();
  auto released = with_writer<std::vector<std::string>>(
      [&](Connection& db) { return update_leases(db, kReleaseLease, leases, std::nullopt); });
  if (!released) return std::move(released).error();
  return ok_status();
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

// --- Events and schedules ---

Result<std::vector<EventRecord>> SqliteStore::pending_events(int limit) {
  if (limit <= 0) return std::vector<EventRecord>{};
  return with_reader([&](Connection& db) -> Result<std::vector<EventRecord>> {
    auto stmt = db.prepare(kPendingEvents);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, int64_t{limit});
    return read_all<EventRecord>(*stmt, read_event, "reading pending events");
  });
}

Result<std::vector<ScheduleMark>> SqliteStore::schedule_marks() {
  return with_reader([&](Connection& db) -> Result<std::vector<ScheduleMark>> {
    auto stmt = db.prepare(kListScheduleMarks);
    if (!stmt) return std::move(stmt).error();
    return read_all<ScheduleMark>(*stmt, read_schedule_mark, "reading schedule marks");
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

Result<DeployedWorkflow> get_deployed_on(Connection& db, std::string_view workspace_id,
                                         std::string_view workflow_id) {
  auto stmt = db.prepare(kGetDeployed);
  if (!stmt) return std::move(stmt).error();
  stmt->bind(1, workspace_id);
  stmt->bind(2, workflow_id);
  auto row = stmt->step("reading " + deployment_name(workspace_id, workflow_id));
  if (!row) return std::move(row).error();
  if (!*row) return not_deployed(workspace_id, workflow_id);
  return read_deployed(*stmt);
}

}  // namespace

Result<DeployResult> SqliteStore::deploy_workflow(std::string_view workspace_id,
                                                  std::string_view workflow_id,
                                                  std::string_view source,
                                                  std::string_view file_name,
                                                  std::string_view actor) {
  const std::string hash = sha256_hex(source);
  return with_writer<DeployResult>([&](Connection& db) -> Result<DeployResult> {
    DeployResult result;
    auto version = put_version(db, workspace_id, workflow_id, source, file_name, hash);
    if (!version) return std::move(version).error();
    result.version = std::move(*version);
    auto current = get_deployed_on(db, workspace_id, workflow_id);
    if (!current && current.error().code != ErrorCode::not_found) {
      return std::move(current).error();
    }
    const TimePoint now = now_millis();
    if (current && current->version_id == result.version.id) {
      result.workflow = std::move(*current);
      result.new_version = false;
      return result;
    }
    auto stmt = db.prepare(current ? kUpdateDeployedVersion : kInsertDeployed);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, workspace_id);
    stmt->bind(2, workflow_id);
    stmt->bind(3, result.version.id);
    stmt->bind(4, actor);
    stmt->bind(5, now);
    if (auto status = stmt->run({}); !status) {
      return with_context(std::move(status),
                          "deploying " + deployment_name(workspace_id, workflow_id))
          .error();
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

Result<DeployedWorkflow> SqliteStore::get_deployed(std::string_view workspace_id,
                                                   std::string_view workflow_id) {
  return with_reader([&](Connection& db) -> Result<DeployedWorkflow> {
    return get_deployed_on(db, workspace_id, workflow_id);
  });
}

Result<std::vector<DeployedWorkflow>> SqliteStore::list_deployed(const WorkflowFilter& filter) {
  const int mask = (filter.enabled ? 1 : 0) | (filter.after_id ? 2 : 0);
  const int64_t limit = std::clamp(filter.limit, 1, 1000);
  return with_reader([&](Connection& db) -> Result<std::vector<DeployedWorkflow>> {
    auto stmt = db.prepare(list_deployed_statements()[mask].c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, filter.workspace_id);
    if (filter.enabled) stmt->bind(2, int64_t{*filter.enabled ? 1 : 0});
    if (filter.after_id) stmt->bind(3, *filter.after_id);
    stmt->bind(4, limit);
    return read_all<DeployedWorkflow>(*stmt, read_deployed, "listing deployed workflows");
  });
}

Result<std::vector<DeployedWorkflow>> SqliteStore::all_enabled_deployed() {
  return with_reader([&](Connection& db) -> Result<std::vector<DeployedWorkflow>> {
    auto stmt = db.prepare(kAllEnabledDeployed);
    if (!stmt) return std::move(stmt).error();
    return read_all<DeployedWorkflow>(*stmt, read_deployed, "listing enabled workflows");
  });
}

Status SqliteStore::set_workflow_enabled(std::string_view workspace_id,
                                         std::string_view workflow_id, bool enabled,
                                         std::string_view actor) {
  return with_writer<void>([&](Connection& db) -> Status {
    auto stmt = db.prepare(kSetDeployedEnabled);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, workspace_id);
    stmt->bind(2, workflow_id);
    stmt->bind(3, int64_t{enabled ? 1 : 0});
    stmt->bind(4, actor);
    stmt->bind(5, now_millis());
    if (auto status = stmt->run({}); !status) {
      return with_context(std::move(status), (enabled ? "enabling " : "disabling ") +
                                                 deployment_name(workspace_id, workflow_id));
    }
    if (changes(db) == 0) return not_deployed(workspace_id, workflow_id);
    return ok_status();
  });
}

Status SqliteStore::delete_deployed(std::string_view workspace_id, std::string_view workflow_id) {
  return with_writer<void>([&](Connection& db) -> Status {
    {
      auto stmt = db.prepare(kDeleteDeployed);
      if (!stmt) return std::move(stmt).error();
      stmt->bind(1, workspace_id);
      stmt->bind(2, workflow_id);
      if (auto status = stmt->run({}); !status) {
        return with_context(std::move(status),
                            "deleting " + deployment_name(workspace_id, workflow_id));
      }
      if (changes(db) == 0) return not_deployed(workspace_id, workflow_id);
    }
    auto marks = db.prepare(kDeleteScheduleMarksOf);
    if (!marks) return std::move(marks).error();
    marks->bind(1, workspace_id);
    marks->bind(2, workflow_id);
    return marks->run("deleting the schedule marks of a deleted workflow");
  });
}

Result<std::vector<WorkflowVersion>> SqliteStore::list_workflow_versions(
    std::string_view workspace_id, std::string_view workflow_id) {
  return with_reader([&](Connection& db) -> Result<std::vector<WorkflowVersion>> {
    auto stmt = db.prepare(kListVersions);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, workspace_id);
    stmt->bind(2, workflow_id);
    return read_all<WorkflowVersion>(*stmt, read_version, "listing workflow versions");
  });
}

// --- Workspaces and users ---

Status SqliteStore::create_workspace(const Workspace& workspace) {
  if (auto status = check_slug("workspace id", workspace.id); !status) return status;
  return with_writer<void>([&](Connection& db) -> Status {
    auto stmt = db.prepare(kInsertWorkspace);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, workspace.id);
    stmt->bind(2, workspace.name);
    stmt->bind(3, workspace.created_at);
    auto status = stmt->run({});
    if (!status && status.error().code == ErrorCode::already_exists) {
      return make_error(ErrorCode::already_exists, "workspace " + workspace.id + " already exists");
    }
    if (!status) return with_context(std::move(status), "creating workspace " + workspace.id);
    return status;
  });
}

Result<Workspace> SqliteStore::get_workspace(std::string_view id) {
  return with_reader([&](Connection& db) -> Result<Workspace> {
    auto stmt = db.prepare(kGetWorkspace);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id);
    return read_one<Workspace>(*stmt, read_workspace, "reading a workspace",
                               "no workspace " + std::string(id));
  });
}

Result<std::vector<Workspace>> SqliteStore::list_workspaces() {
  return with_reader([&](Connection& db) -> Result<std::vector<Workspace>> {
    auto stmt = db.prepare(kListWorkspaces);
    if (!stmt) return std::move(stmt).error();
    return read_all<Workspace>(*stmt, read_workspace, "listing workspaces");
  });
}

Status SqliteStore::create_user(const User& user) {
  if (auto status = check_slug("user id", user.id); !status) return status;
  return with_writer<void>([&](Connection& db) -> Status {
    auto stmt = db.prepare(kInsertUser);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, user.id);
    stmt->bind(2, user.name);
    stmt->bind(3, user.email);
    stmt->bind(4, user.created_at);
    auto status = stmt->run({});
    if (!status && status.error().code == ErrorCode::already_exists) {
      return make_error(ErrorCode::already_exists, "user " + user.id + " already exists");
    }
    if (!status) return with_context(std::move(status), "creating user " + user.id);
    return status;
  });
}

Result<User> SqliteStore::get_user(std::string_view id) {
  return with_reader([&](Connection& db) -> Result<User> {
    auto stmt = db.prepare(kGetUser);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id);
    return read_one<User>(*stmt, read_user, "reading a user", "no user " + std::string(id));
  });
}

// --- Memberships and tokens ---

namespace {

// not_found naming whichever of the two is missing; run in the write transaction that then
// refers to them.
Status check_member_exists(Connection& db, std::string_view workspace_id,
                           std::string_view user_id) {
  auto workspace = row_exists(db, kGetWorkspace, workspace_id, "looking up a workspace");
  if (!workspace) return std::move(workspace).error();
  if (!*workspace) {
    return make_error(ErrorCode::not_found, "no workspace " + std::string(workspace_id));
  }
  auto user = row_exists(db, kUserExists, user_id, "looking up a user");
  if (!user) return std::move(user).error();
  if (!*user) return make_error(ErrorCode::not_found, "no user " + std::string(user_id));
  return ok_status();
}

}  // namespace

Status SqliteStore::put_membership(const Membership& membership) {
  if (auto status = check_slug("workspace id", membership.workspace_id); !status) return status;
  if (auto status = check_slug("user id", membership.user_id); !status) return status;
  if (auto status = check_role(membership.role); !status) return status;
  return with_writer<void>([&](Connection& db) -> Status {
    if (auto status = check_member_exists(db, membership.workspace_id, membership.user_id);
        !status) {
      return status;
    }
    auto stmt = db.prepare(kUpsertMembership);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, membership.workspace_id);
    stmt->bind(2, membership.user_id);
    stmt->bind(3, membership.role);
    stmt->bind(4, membership.created_at);
    auto status = stmt->run({});
    if (!status) {
      return with_context(std::move(status), "adding user " + membership.user_id +
                                                 " to workspace " + membership.workspace_id);
    }
    return status;
  });
}

Result<Membership> SqliteStore::get_membership(std::string_view workspace_id,
                                               std::string_view user_id) {
  return with_reader([&](Connection& db) -> Result<Membership> {
    auto stmt = db.prepare(kGetMembership);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, workspace_id);
    stmt->bind(2, user_id);
    return read_one<Membership>(*stmt, read_membership, "reading a membership",
                                "user " + std::string(user_id) + " is not a member of workspace " +
                                    std::string(workspace_id));
  });
}

Result<std::vector<Membership>> SqliteStore::list_memberships(std::string_view workspace_id) {
  return with_reader([&](Connection& db) -> Result<std::vector<Membership>> {
    auto stmt = db.prepare(kListMemberships);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, workspace_id);
    return read_all<Membership>(*stmt, read_membership, "listing memberships");
  });
}

Status SqliteStore::delete_membership(std::string_view workspace_id, std::string_view user_id) {
  return with_writer<void>([&](Connection& db) -> Status {
    {
      auto stmt = db.prepare(kDeleteMembership);
      if (!stmt) return std::move(stmt).error();
      stmt->bind(1, workspace_id);
      stmt->bind(2, user_id);
      if (auto status = stmt->run("removing a membership"); !status) return status;
      if (changes(db) == 0) {
        return make_error(ErrorCode::not_found, "user " + std::string(user_id) +
                                                    " is not a member of workspace " +
                                                    std::string(workspace_id));
      }
    }
    // In the same transaction: a removed member's tokens stop working at the same moment.
    auto revoke = db.prepare(kRevokeTokensOfMember);
    if (!revoke) return std::move(revoke).error();
    revoke->bind(1, workspace_id);
    revoke->bind(2, user_id);
    revoke->bind(3, now_millis());
    return revoke->run("revoking the tokens of a removed member");
  });
}

Status SqliteStore::create_token(const TokenRecord& token) {
  if (auto status = check_slug("workspace id", token.workspace_id); !status) return status;
  if (auto status = check_slug("user id", token.user_id); !status) return status;
  if (auto status = check_role(token.role); !status) return status;
  return with_writer<void>([&](Connection& db) -> Status {
    if (auto status = check_member_exists(db, token.workspace_id, token.user_id); !status) {
      return status;
    }
    auto stmt = db.prepare(kInsertToken);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, token.id);
    stmt->bind(2, token.workspace_id);
    stmt->bind(3, token.user_id);
    stmt->bind(4, token.role);
    stmt->bind(5, token.name);
    stmt->bind(6, token.hash);
    stmt->bind(7, token.created_at);
    stmt->bind(8, token.expires_at);
    stmt->bind(9, token.revoked_at);
    stmt->bind(10, token.last_used_at);
    auto status = stmt->run({});
    if (!status && status.error().code == ErrorCode::already_exists) {
      return make_error(ErrorCode::already_exists, "token " + token.id + " already exists");
    }
    if (!status) return with_context(std::move(status), "creating token " + token.id);
    return status;
  });
}

Result<TokenRecord> SqliteStore::get_token(std::string_view id) {
  return with_reader([&](Connection& db) -> Result<TokenRecord> {
    auto stmt = db.prepare(kGetToken);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id);
    return read_one<TokenRecord>(*stmt, read_token, "reading a token",
                                 "no token " + std::string(id));
  });
}

Result<std::vector<TokenRecord>> SqliteStore::list_tokens(std::string_view workspace_id) {
  return with_reader([&](Connection& db) -> Result<std::vector<TokenRecord>> {
    auto stmt = db.prepare(kListTokens);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, workspace_id);
    return read_all<TokenRecord>(*stmt, read_token, "listing tokens");
  });
}

Status SqliteStore::revoke_token(std::string_view workspace_id, std::string_view id) {
  return with_writer<void>([&](Connection& db) -> Status {
    auto stmt = db.prepare(kRevokeToken);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id);
    stmt->bind(2, workspace_id);
    stmt->bind(3, now_millis());
    if (auto status = stmt->run("revoking a token"); !status) return status;
    if (changes(db) == 0) {
      return make_error(ErrorCode::not_found, "no token " + std::string(id) + " in workspace " +
                                                  std::string(workspace_id));
    }
    return ok_status();
  });
}

Status SqliteStore::touch_token(std::string_view id, TimePoint used_at) {
  return with_writer<void>([&](Connection& db) -> Status {
    auto stmt = db.prepare(kTouchToken);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id);
    stmt->bind(2, used_at);
    if (auto status = stmt->run("recording the use of a token"); !status) return status;
    if (changes(db) == 0) return make_error(ErrorCode::not_found, "no token " + std::string(id));
    return ok_status();
  });
}

// --- Secrets ---

Status SqliteStore::put_secret(const SecretRecord& secret) {
  return with_writer<void>([&](Connection& db) -> Status {
    auto stmt = db.prepare(kUpsertSecret);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, secret.workspace_id);
    stmt->bind(2, secret.name);
    stmt->bind(3, secret.ciphertext);
    stmt->bind(4, secret.updated_by);
    stmt->bind(5, secret.created_at);
    stmt->bind(6, secret.updated_at);
    return stmt->run("storing a secret");
  });
}

Result<SecretRecord> SqliteStore::get_secret(std::string_view workspace_id, std::string_view name) {
  return with_reader([&](Connection& db) -> Result<SecretRecord> {
    auto stmt = db.prepare(kGetSecret);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, workspace_id);
    stmt->bind(2, name);
    return read_one<SecretRecord>(
        *stmt, read_secret, "reading a secret",
        "no secret " + std::string(name) + " in workspace " + std::string(workspace_id));
  });
}

Result<std::vector<SecretRecord>> SqliteStore::list_secrets(std::string_view workspace_id) {
  return with_reader([&](Connection& db) -> Result<std::vector<SecretRecord>> {
    auto stmt = db.prepare(kListSecrets);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, workspace_id);
    return read_all<SecretRecord>(*stmt, read_secret, "listing secrets");
  });
}

Status SqliteStore::delete_secret(std::string_view workspace_id, std::string_view name) {
  return with_writer<void>([&](Connection& db) -> Status {
    auto stmt = db.prepare(kDeleteSecret);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, workspace_id);
    stmt->bind(2, name);
    if (auto status = stmt->run("deleting a secret"); !status) return status;
    if (changes(db) == 0) {
      return make_error(ErrorCode::not_found, "no secret " + std::string(name) + " in workspace " +
                                                  std::string(workspace_id));
    }
    return ok_status();
  });
}

// --- Plugin key-value entries ---

Status SqliteStore::kv_put(const KvEntry& entry, int64_t max_entries) {
  return with_writer<void>([&](Connection& db) -> Status {
    auto purge = db.prepare(kPurgeExpiredKv);
    if (!purge) return std::move(purge).error();
    purge->bind(1, entry.workspace_id);
    purge->bind(2, entry.plugin);
    purge->bind(3, entry.updated_at);
    if (auto status = purge->run("dropping expired plugin entries"); !status) return status;
    auto count = db.prepare(kCountOtherKv);
    if (!count) return std::move(count).error();
    count->bind(1, entry.workspace_id);
    count->bind(2, entry.plugin);
    count->bind(3, entry.key);
    if (auto row = count->step("counting plugin entries"); !row) return std::move(row).error();
    if (count->column_int64(0) >= max_entries) {
      return make_error(ErrorCode::resource_exhausted,
                        "plugin " + entry.plugin + " already keeps " +
                            std::to_string(max_entries) + " entries in workspace '" +
                            entry.workspace_id + "'; delete some first");
    }
    auto stmt = db.prepare(kUpsertKv);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, entry.workspace_id);
    stmt->bind(2, entry.plugin);
    stmt->bind(3, entry.key);
    stmt->bind_json(4, entry.value);
    stmt->bind(5, entry.expires_at);
    stmt->bind(6, entry.updated_at);
    return stmt->run("storing a plugin entry");
  });
}

Result<std::optional<KvEntry>> SqliteStore::kv_get(std::string_view workspace_id,
                                                   std::string_view plugin, std::string_view key,
                                                   TimePoint now) {
  return with_reader([&](Connection& db) -> Result<std::optional<KvEntry>> {
    auto stmt = db.prepare(kGetKv);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, workspace_id);
    stmt->bind(2, plugin);
    stmt->bind(3, key);
    stmt->bind(4, now);
    auto found = read_all<KvEntry>(*stmt, read_kv, "reading a plugin entry");
    if (!found) return std::move(found).error();
    if (found->empty()) return std::optional<KvEntry>();
    return std::optional<KvEntry>(std::move(found->front()));
  });
}

Result<bool> SqliteStore::kv_delete(std::string_view workspace_id, std::string_view plugin,
                                    std::string_view key) {
  return with_writer<bool>([&](Connection& db) -> Result<bool> {
    auto stmt = db.prepare(kDeleteKv);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, workspace_id);
    stmt->bind(2, plugin);
    stmt->bind(3, key);
    if (auto status = stmt->run("deleting a plugin entry"); !status) return std::move(status).error();
    return changes(db) > 0;
  });
}

// --- Approvals, approval policies, groups and delegations ---

namespace {

#define HERALD_APPROVAL_COLUMNS                                                               \
  "SELECT a.id, a.workspace_id, a.run_id, a.step_id, a.item, a.status, a.title, a.submitter," \
  " a.policy_name, a.policy_version, a.state, a.revision, a.due_at, a.created_at,"            \
  " a.updated_at"
constexpr const char* kInsertApproval =
    "INSERT INTO approvals (id, workspace_id, run_id, step_id, item, status, title, submitter,"
    " policy_name, policy_version, state, revision, due_at, created_at, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
// The compare-and-set: only the revision the writer read is replaced. Where an approval belongs
// (its workspace, run step and item) and when it was created never change; an id of another
// workspace matches no row, as if it did not exist.
constexpr const char* kUpdateApproval =
    "UPDATE approvals SET status = ?4, title = ?5, submitter = ?6, policy_name = ?7,"
    " policy_version = ?8, state = ?9, revision = ?10, due_at = ?11, updated_at = ?12"
    " WHERE id = ?1 AND workspace_id = ?2 AND revision = ?3";
constexpr const char* kApprovalRevision =
    "SELECT revision FROM approvals WHERE id = ?1 AND workspace_id = ?2";
constexpr const char* kApprovalIdExists = "SELECT 1 FROM approvals WHERE id = ?1";
constexpr const char* kDeleteAwaiting = "DELETE FROM approval_awaiting WHERE approval_id = ?1";
// A principal named twice for one level is one assignment.
constexpr const char* kInsertAwaiting =
    "INSERT INTO approval_awaiting (approval_id, workspace_id, principal, level)"
    " VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING";
constexpr const char* kGetApproval =
    HERALD_APPROVAL_COLUMNS " FROM approvals a WHERE a.id = ?1 AND a.workspace_id = ?2";
constexpr const char* kGetApprovalById =
    HERALD_APPROVAL_COLUMNS " FROM approvals a WHERE a.id = ?1";
constexpr const char* kFindStepApproval = HERALD_APPROVAL_COLUMNS
    " FROM approvals a WHERE a.run_id = ?1 AND a.step_id = ?2 AND a.item = ?3";
// The literal status matches the partial index approvals_due.
constexpr const char* kDueApprovals = HERALD_APPROVAL_COLUMNS
    " FROM approvals a WHERE a.status = 'pending' AND a.due_at <= ?1"
    " ORDER BY a.due_at, a.id LIMIT ?2";

// Bits: 0 status, 1 run, 2 cursor, 3 awaiting (a JSON array of principals, ?5); the workspace
// (?1) always. With a run, the run's few approvals are found through UNIQUE (run_id, ...) and
// sorted: the unary + keeps SQLite from walking the whole workspace newest first instead, which
// it would prefer without statistics because it saves the sort. Awaiting is only ever combined
// with a run here (see list_approvals).
const std::array<std::string, 16>& list_approvals_statements(bool by_run) {
  static constexpr std::array<const char*, 4> kConditions = {
      "a.status = ?2", "a.run_id = ?3", "a.id < ?4",
      "EXISTS (SELECT 1 FROM approval_awaiting w WHERE w.approval_id = a.id"
      " AND w.principal IN (SELECT value FROM json_each(?5)))"};
  static const auto by_workspace =
      filtered_statements<4>(HERALD_APPROVAL_COLUMNS " FROM approvals a", "a.workspace_id = ?1",
                             kConditions, " ORDER BY a.id DESC LIMIT ?6");
  static const auto in_run =
      filtered_statements<4>(HERALD_APPROVAL_COLUMNS " FROM approvals a", "+a.workspace_id = ?1",
                             kConditions, " ORDER BY a.id DESC LIMIT ?6");
  return by_run ? in_run : by_workspace;
}

// "Pending for one principal": newest first straight off approval_awaiting_by_principal (the
// GROUP BY follows the index, so no sort), one approval per group however many of its levels
// the principal is on, stopping at the limit. Bits: 0 status, 1 cursor; the workspace (?1) and
// principal (?2) always.
const std::array<std::string, 4>& awaiting_statements() {
  static const auto statements = filtered_statements<2>(
      HERALD_APPROVAL_COLUMNS " FROM approval_awaiting w JOIN approvals a ON a.id = w.approval_id",
      "w.workspace_id = ?1 AND w.principal = ?2", {"a.status = ?3", "w.approval_id < ?4"},
      " GROUP BY w.approval_id ORDER BY w.approval_id DESC LIMIT ?5");
  return statements;
}

#define HERALD_POLICY_COLUMNS                                                        \
  "SELECT workspace_id, name, version, description, source, file_name, source_hash," \
  " created_by, created_at FROM approval_policies"
constexpr const char* kNewestPolicy =
    HERALD_POLICY_COLUMNS " WHERE workspace_id = ?1 AND name = ?2 ORDER BY version DESC LIMIT 1";
constexpr const char* kGetPolicyVersion =
    HERALD_POLICY_COLUMNS " WHERE workspace_id = ?1 AND name = ?2 AND version = ?3";
constexpr const char* kListPolicyVersions =
    HERALD_POLICY_COLUMNS " WHERE workspace_id = ?1 AND name = ?2 ORDER BY version DESC";
constexpr const char* kListPolicies = HERALD_POLICY_COLUMNS
    " p WHERE p.workspace_id = ?1 AND p.version = (SELECT MAX(q.version) FROM approval_policies q"
    " WHERE q.workspace_id = p.workspace_id AND q.name = p.name) ORDER BY p.name";
constexpr const char* kInsertPolicy =
    "INSERT INTO approval_policies (workspace_id, name, version, description, source, file_name,"
    " source_hash, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

#define HERALD_GROUP_COLUMNS                                                                 \
  "SELECT workspace_id, name, description, members, updated_by, created_at, updated_at FROM" \
  " approval_groups"
constexpr const char* kUpsertGroup =
    "INSERT INTO approval_groups (workspace_id, name, description, members, updated_by,"
    " created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    " ON CONFLICT (workspace_id, name) DO UPDATE SET description = excluded.description,"
    " members = excluded.members, updated_by = excluded.updated_by,"
    " updated_at = excluded.updated_at";
constexpr const char* kGetGroup = HERALD_GROUP_COLUMNS " WHERE workspace_id = ?1 AND name = ?2";
constexpr const char* kListGroups = HERALD_GROUP_COLUMNS " WHERE workspace_id = ?1 ORDER BY name";
constexpr const char* kDeleteGroup =
    "DELETE FROM approval_groups WHERE workspace_id = ?1 AND name = ?2";

#define HERALD_DELEGATION_COLUMNS                                                              \
  "SELECT workspace_id, user_id, delegate_id, starts_at, ends_at, created_by, created_at FROM" \
  " approval_delegations"
constexpr const char* kUpsertDelegation =
    "INSERT INTO approval_delegations (workspace_id, user_id, delegate_id, starts_at, ends_at,"
    " created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    " ON CONFLICT (workspace_id, user_id) DO UPDATE SET delegate_id = excluded.delegate_id,"
    " starts_at = excluded.starts_at, ends_at = excluded.ends_at,"
    " created_by = excluded.created_by, created_at = excluded.created_at";
constexpr const char* kGetDelegation =
    HERALD_DELEGATION_COLUMNS " WHERE workspace_id = ?1 AND user_id = ?2";
constexpr const char* kDeleteDelegation =
    "DELETE FROM approval_delegations WHERE workspace_id = ?1 AND user_id = ?2";
constexpr const char* kDelegationsTo = HERALD_DELEGATION_COLUMNS
    " WHERE workspace_id = ?1 AND delegate_id = ?2 AND (starts_at IS NULL OR starts_at <= ?3)"
    " AND (ends_at IS NULL OR ends_at > ?3) ORDER BY user_id";

#undef HERALD_APPROVAL_COLUMNS
#undef HERALD_POLICY_COLUMNS
#undef HERALD_GROUP_COLUMNS
#undef HERALD_DELEGATION_COLUMNS

Result<ApprovalRecord> read_approval(const Statement& row) {
  ApprovalRecord approval;
  approval.id = row.column_text(0);
  approval.workspace_id = row.column_text(1);
  approval.run_id = row.column_text(2);
  approval.step_id = row.column_text(3);
  approval.item = static_cast<int>(row.column_int64(4));
  approval.status = row.column_text(5);
  approval.title = row.column_text(6);
  approval.submitter = row.column_text(7);
  approval.policy_name = row.column_text(8);
  approval.policy_version = static_cast<int>(row.column_int64(9));
  if (auto status = read_json_columns(row, {{10, &approval.state}}); !status) {
    return std::move(status).error();
  }
  approval.revision = row.column_int64(11);
  approval.due_at = row.column_optional_time(12);
  approval.created_at = row.column_time(13);
  approval.updated_at = row.column_time(14);
  return approval;
}

Result<ApprovalPolicyRecord> read_policy(const Statement& row) {
  ApprovalPolicyRecord policy;
  policy.workspace_id = row.column_text(0);
  policy.name = row.column_text(1);
  policy.version = static_cast<int>(row.column_int64(2));
  policy.description = row.column_text(3);
  policy.source = row.column_text(4);
  policy.file_name = row.column_text(5);
  policy.source_hash = row.column_text(6);
  policy.created_by = row.column_text(7);
  policy.created_at = row.column_time(8);
  return policy;
}

Result<GroupRecord> read_group(const Statement& row) {
  GroupRecord group;
  group.workspace_id = row.column_text(0);
  group.name = row.column_text(1);
  group.description = row.column_text(2);
  auto members = row.column_json(3);
  if (!members) return std::move(members).error();
  if (!members->is_array()) return corrupt_row("group " + group.name + " has no member list");
  for (const auto& member : *members) {
    if (!member.is_string()) return corrupt_row("group " + group.name + " has an odd member");
    group.members.push_back(member.get<std::string>());
  }
  group.updated_by = row.column_text(4);
  group.created_at = row.column_time(5);
  group.updated_at = row.column_time(6);
  return group;
}

Result<DelegationRecord> read_delegation(const Statement& row) {
  DelegationRecord delegation;
  delegation.workspace_id = row.column_text(0);
  delegation.user_id = row.column_text(1);
  delegation.delegate_id = row.column_text(2);
  delegation.starts_at = row.column_optional_time(3);
  delegation.ends_at = row.column_optional_time(4);
  delegation.created_by = row.column_text(5);
  delegation.created_at = row.column_time(6);
  return delegation;
}

std::string approval_name(const ApprovalRecord& approval) {
  return "approval " + approval.id;
}

Status insert_approval(Connection& db, const ApprovalRecord& approval) {
  auto stmt = db.prepare(kInsertApproval);
  if (!stmt) return std::move(stmt).error();
  stmt->bind(1, approval.id);
  stmt->bind(2, approval.workspace_id);
  stmt->bind(3, approval.run_id);
  stmt->bind(4, approval.step_id);
  stmt->bind(5, int64_t{approval.item});
  stmt->bind(6, approval.status);
  stmt->bind(7, approval.title);
  stmt->bind(8, approval.submitter);
  stmt->bind(9, approval.policy_name);
  stmt->bind(10, int64_t{approval.policy_version});
  stmt->bind_json(11, approval.state);
  stmt->bind(12, approval.revision);
  stmt->bind(13, approval.due_at);
  stmt->bind(14, approval.created_at);
  stmt->bind(15, approval.updated_at);
  auto status = stmt->run({});
  if (status) return status;
  if (status.error().code != ErrorCode::already_exists) {
    return with_context(std::move(status), "storing " + approval_name(approval));
  }
  // Two unique keys: say which one the approval collided with.
  auto same_id = row_exists(db, kApprovalIdExists, approval.id, "looking up an approval");
  if (!same_id) return std::move(same_id).error();
  if (*same_id) {
    return make_error(ErrorCode::already_exists, approval_name(approval) + " already exists");
  }
  return make_error(ErrorCode::already_exists, "step " + approval.step_id + " (item " +
                                                   std::to_string(approval.item) + ") of run " +
                                                   approval.run_id + " already has an approval");
}

Status update_approval(Connection& db, const ApprovalRecord& approval, int64_t expected) {
  {
    auto stmt = db.prepare(kUpdateApproval);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, approval.id);
    stmt->bind(2, approval.workspace_id);
    stmt->bind(3, expected);
    stmt->bind(4, approval.status);
    stmt->bind(5, approval.title);
    stmt->bind(6, approval.submitter);
    stmt->bind(7, approval.policy_name);
    stmt->bind(8, int64_t{approval.policy_version});
    stmt->bind_json(9, approval.state);
    stmt->bind(10, approval.revision);
    stmt->bind(11, approval.due_at);
    stmt->bind(12, approval.updated_at);
    if (auto status = stmt->run({}); !status) {
      return with_context(std::move(status), "updating " + approval_name(approval));
    }
    if (changes(db) == 1) return ok_status();
  }
  // Tell "someone else wrote it first" from "no such approval (here)".
  auto stmt = db.prepare(kApprovalRevision);
  if (!stmt) return std::move(stmt).error();
  stmt->bind(1, approval.id);
  stmt->bind(2, approval.workspace_id);
  auto row = stmt->step("looking up " + approval_name(approval));
  if (!row) return std::move(row).error();
  if (!*row) {
    return make_error(ErrorCode::not_found, "no approval " + approval.id + " in workspace '" +
                                                approval.workspace_id + "'");
  }
  const int64_t stored = stmt->column_int64(0);
  Error error = make_error(ErrorCode::aborted, approval_name(approval) +
                                                   " was changed by someone else (revision " +
                                                   std::to_string(stored) + "); read it again");
  error.details = {{"revision", stored}, {"expected_revision", expected}};
  return error;
}

Status replace_awaiting(Connection& db, const ApprovalRecord& approval,
                        const std::vector<ApprovalAssignment>& awaiting, bool is_new) {
  if (!is_new) {
    auto status = delete_by(db, kDeleteAwaiting, std::string_view(approval.id),
                            "replacing the assignments of an approval");
    if (!status) return status;
  }
  for (const auto& assignment : awaiting) {
    auto stmt = db.prepare(kInsertAwaiting);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, approval.id);
    stmt->bind(2, approval.workspace_id);
    stmt->bind(3, assignment.principal);
    stmt->bind(4, assignment.level);
    if (auto status = stmt->run({}); !status) {
      return with_context(std::move(status),
                          "assigning " + approval_name(approval) + " to " + assignment.principal);
    }
  }
  return ok_status();
}

}  // namespace

Status SqliteStore::write_approval(const ApprovalWrite& write) {
  const ApprovalRecord& approval = write.approval;
  if (approval.id.empty()) {
    return make_error(ErrorCode::invalid_argument, "an approval needs an id");
  }
  // Writing the revision it read would let a second writer that read the same one through.
  if (write.expected_revision && approval.revision <= *write.expected_revision) {
    return make_error(ErrorCode::invalid_argument,
                      "the new revision of " + approval_name(approval) + " (" +
                          std::to_string(approval.revision) + ") must be greater than " +
                          std::to_string(*write.expected_revision));
  }
  return with_writer<void>([&](Connection& db) -> Status {
    const bool is_new = !write.expected_revision;
    auto written = is_new ? insert_approval(db, approval)
                          : update_approval(db, approval, *write.expected_revision);
    if (!written) return written;
    if (auto status = replace_awaiting(db, approval, write.awaiting, is_new); !status) {
      return status;
    }
    for (const auto& event : write.events) {
      if (auto status = insert_event(db, event); !status) return status;
    }
    for (const auto& record : write.audit) {
      if (auto id = insert_audit(db, record); !id) return std::move(id).error();
    }
    if (write.wake) {
      if (auto status = insert_timer(db, *write.wake); !status) return status;
    }
    return ok_status();
  });
}

Result<ApprovalRecord> SqliteStore::get_approval(std::string_view workspace_id,
                                                 std::string_view id) {
  return with_reader([&](Connection& db) -> Result<ApprovalRecord> {
    auto stmt = db.prepare(kGetApproval);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id);
    stmt->bind(2, workspace_id);
    return read_one<ApprovalRecord>(
        *stmt, read_approval, "reading an approval",
        "no approval " + std::string(id) + " in workspace '" + std::string(workspace_id) + "'");
  });
}

Result<ApprovalRecord> SqliteStore::get_approval_by_id(std::string_view id) {
  return with_reader([&](Connection& db) -> Result<ApprovalRecord> {
    auto stmt = db.prepare(kGetApprovalById);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, id);
    return read_one<ApprovalRecord>(*stmt, read_approval, "reading an approval",
                                    "no approval " + std::string(id));
  });
}

Result<std::optional<ApprovalRecord>> SqliteStore::find_step_approval(std::string_view run_id,
                                                                      std::string_view step_id,
                                                                      int item) {
  return with_reader([&](Connection& db) -> Result<std::optional<ApprovalRecord>> {
    auto stmt = db.prepare(kFindStepApproval);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, run_id);
    stmt->bind(2, step_id);
    stmt->bind(3, int64_t{item});
    auto found =
        read_all<ApprovalRecord>(*stmt, read_approval, "looking up the approval of a step");
    if (!found) return std::move(found).error();
    if (found->empty()) return std::optional<ApprovalRecord>();
    return std::optional<ApprovalRecord>(std::move(found->front()));
  });
}

Result<std::vector<ApprovalRecord>> SqliteStore::list_approvals(const ApprovalFilter& filter) {
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
    return with_reader([&](Connection& db) -> Result<std::vector<ApprovalRecord>> {
      auto stmt = db.prepare(list_approvals_statements(filter.run_id.has_value())[mask].c_str());
      if (!stmt) return std::move(stmt).error();
      stmt->bind(1, filter.workspace_id);
      if (filter.status) stmt->bind(2, *filter.status);
      if (filter.run_id) stmt->bind(3, *filter.run_id);
      if (filter.before_id) stmt->bind(4, *filter.before_id);
      if (!principals.empty()) stmt->bind_json(5, Json(principals));
      stmt->bind(6, limit);
      return read_all<ApprovalRecord>(*stmt, read_approval, "listing approvals");
    });
  }
  const int mask = (filter.status ? 1 : 0) | (filter.before_id ? 2 : 0);
  return with_reader([&](Connection& db) -> Result<std::vector<ApprovalRecord>> {
    std::vector<ApprovalRecord> merged;
    for (const auto& principal : principals) {
      auto stmt = db.prepare(awaiting_statements()[mask].c_str());
      if (!stmt) return std::move(stmt).error();
      stmt->bind(1, filter.workspace_id);
      stmt->bind(2, principal);
      if (filter.status) stmt->bind(3, *filter.status);
      if (filter.before_id) stmt->bind(4, *filter.before_id);
      stmt->bind(5, limit);
      auto page =
          read_all<ApprovalRecord>(*stmt, read_approval, "listing approvals awaiting " + principal);
      if (!page) return std::move(page).error();
      if (principals.size() == 1) return page;
      std::move(page->begin(), page->end(), std::back_inserter(merged));
    }
    // Each principal's page holds its newest `limit`, so the newest `limit` of all are among them.
    std::sort(merged.begin(), merged.end(),
              [](const ApprovalRecord& a, const ApprovalRecord& b) { return a.id > b.id; });
    merged.erase(
        std::unique(merged.begin(), merged.end(),
                    [](const ApprovalRecord& a, const ApprovalRecord& b) { return a.id == b.id; }),
        merged.end());
    if (merged.size() > static_cast<size_t>(limit)) merged.resize(static_cast<size_t>(limit));
    return merged;
  });
}

Result<std::vector<ApprovalRecord>> SqliteStore::due_approvals(TimePoint now, int limit) {
  if (limit <= 0) return std::vector<ApprovalRecord>{};
  return with_reader([&](Connection& db) -> Result<std::vector<ApprovalRecord>> {
    auto stmt = db.prepare(kDueApprovals);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, now);
    stmt->bind(2, int64_t{limit});
    return read_all<ApprovalRecord>(*stmt, read_approval, "reading due approvals");
  });
}

// --- Approval policies ---

namespace {

std::string policy_name(std::string_view workspace_id, std::string_view name) {
  return "approval policy " + std::string(name) + " in workspace '" + std::string(workspace_id) +
         "'";
}

}  // namespace

Result<ApprovalPolicyRecord> SqliteStore::put_approval_policy(const ApprovalPolicyRecord& policy) {
  const std::string hash = sha256_hex(policy.source);
  return with_writer<ApprovalPolicyRecord>([&](Connection& db) -> Result<ApprovalPolicyRecord> {
    ApprovalPolicyRecord stored = policy;
    stored.version = 1;
    {
      auto newest = db.prepare(kNewestPolicy);
      if (!newest) return std::move(newest).error();
      newest->bind(1, policy.workspace_id);
      newest->bind(2, policy.name);
      auto found = read_all<ApprovalPolicyRecord>(
          *newest, read_policy, "reading " + policy_name(policy.workspace_id, policy.name));
      if (!found) return std::move(found).error();
      if (!found->empty()) {
        const ApprovalPolicyRecord& current = found->front();
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
                            : sqlite::from_millis(sqlite::to_millis(policy.created_at));
    auto insert = db.prepare(kInsertPolicy);
    if (!insert) return std::move(insert).error();
    insert->bind(1, stored.workspace_id);
    insert->bind(2, stored.name);
    insert->bind(3, int64_t{stored.version});
    insert->bind(4, stored.description);
    insert->bind(5, stored.source);
    insert->bind(6, stored.file_name);
    insert->bind(7, stored.source_hash);
    insert->bind(8, stored.created_by);
    insert->bind(9, stored.created_at);
    if (auto status = insert->run({}); !status) {
      return with_context(std::move(status),
                          "storing " + policy_name(policy.workspace_id, policy.name))
          .error();
    }
    return stored;
  });
}

Result<ApprovalPolicyRecord> SqliteStore::get_approval_policy(std::string_view workspace_id,
                                                              std::string_view name,
                                                              std::optional<int> version) {
  return with_reader([&](Connection& db) -> Result<ApprovalPolicyRecord> {
    auto stmt = db.prepare(version ? kGetPolicyVersion : kNewestPolicy);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, workspace_id);
    stmt->bind(2, name);
    if (version) stmt->bind(3, int64_t{*version});
    std::string missing = "no " + policy_name(workspace_id, name);
    if (version) {
      missing = "no version " + std::to_string(*version) + " of " + policy_name(workspace_id, name);
    }
    return read_one<ApprovalPolicyRecord>(*stmt, read_policy, "reading an approval policy",
                                          std::move(missing));
  });
}

Result<std::vector<ApprovalPolicyRecord>> SqliteStore::list_approval_policies(
    std::string_view workspace_id) {
  return with_reader([&](Connection& db) -> Result<std::vector<ApprovalPolicyRecord>> {
    auto stmt = db.prepare(kListPolicies);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, workspace_id);
    return read_all<ApprovalPolicyRecord>(*stmt, read_policy, "listing approval policies");
  });
}

Result<std::vector<ApprovalPolicyRecord>> SqliteStore::list_approval_policy_versions(
    std::string_view workspace_id, std::string_view name) {
  return with_reader([&](Connection& db) -> Result<std::vector<ApprovalPolicyRecord>> {
    auto stmt = db.prepare(kListPolicyVersions);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, workspace_id);
    stmt->bind(2, name);
    return read_all<ApprovalPolicyRecord>(*stmt, read_policy,
                                          "listing the versions of an approval policy");
  });
}

// --- Groups ---

Status SqliteStore::put_group(const GroupRecord& group) {
  std::vector<std::string> members = group.members;
  for (const auto& member : members) {
    if (auto status = check_slug("user id", member); !status) return status;
  }
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  const Json member_list = members;
  return with_writer<void>([&](Connection& db) -> Status {
    auto stmt = db.prepare(kUpsertGroup);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, group.workspace_id);
    stmt->bind(2, group.name);
    stmt->bind(3, group.description);
    stmt->bind_json(4, member_list);
    stmt->bind(5, group.updated_by);
    stmt->bind(6, group.created_at);
    stmt->bind(7, group.updated_at);
    auto status = stmt->run({});
    if (!status) return with_context(std::move(status), "storing group " + group.name);
    return status;
  });
}

Result<GroupRecord> SqliteStore::get_group(std::string_view workspace_id, std::string_view name) {
  return with_reader([&](Connection& db) -> Result<GroupRecord> {
    auto stmt = db.prepare(kGetGroup);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, workspace_id);
    stmt->bind(2, name);
    return read_one<GroupRecord>(
        *stmt, read_group, "reading a group",
        "no group " + std::string(name) + " in workspace '" + std::string(workspace_id) + "'");
  });
}

Result<std::vector<GroupRecord>> SqliteStore::list_groups(std::string_view workspace_id) {
  return with_reader([&](Connection& db) -> Result<std::vector<GroupRecord>> {
    auto stmt = db.prepare(kListGroups);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, workspace_id);
    return read_all<GroupRecord>(*stmt, read_group, "listing groups");
  });
}

Status SqliteStore::delete_group(std::string_view workspace_id, std::string_view name) {
  return with_writer<void>([&](Connection& db) -> Status {
    auto stmt = db.prepare(kDeleteGroup);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, workspace_id);
    stmt->bind(2, name);
    if (auto status = stmt->run("deleting a group"); !status) return status;
    if (changes(db) == 0) {
      return make_error(ErrorCode::not_found, "no group " + std::string(name) + " in workspace '" +
                                                  std::string(workspace_id) + "'");
    }
    return ok_status();
  });
}

// --- Delegations ---

Status SqliteStore::put_delegation(const DelegationRecord& delegation) {
  if (auto status = check_slug("user id", delegation.user_id); !status) return status;
  if (auto status = check_slug("user id", delegation.delegate_id); !status) return status;
  return with_writer<void>([&](Connection& db) -> Status {
    auto stmt = db.prepare(kUpsertDelegation);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, delegation.workspace_id);
    stmt->bind(2, delegation.user_id);
    stmt->bind(3, delegation.delegate_id);
    stmt->bind(4, delegation.starts_at);
    stmt->bind(5, delegation.ends_at);
    stmt->bind(6, delegation.created_by);
    stmt->bind(7, delegation.created_at);
    auto status = stmt->run({});
    if (!status) {
      return with_context(std::move(status), "storing the delegation of " + delegation.user_id);
    }
    return status;
  });
}

Result<std::optional<DelegationRecord>> SqliteStore::get_delegation(std::string_view workspace_id,
                                                                    std::string_view user_id) {
  return with_reader([&](Connection& db) -> Result<std::optional<DelegationRecord>> {
    auto stmt = db.prepare(kGetDelegation);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, workspace_id);
    stmt->bind(2, user_id);
    auto found = read_all<DelegationRecord>(*stmt, read_delegation, "reading a delegation");
    if (!found) return std::move(found).error();
    if (found->empty()) return std::optional<DelegationRecord>();
    return std::optional<DelegationRecord>(std::move(found->front()));
  });
}

Status SqliteStore::delete_delegation(std::string_view workspace_id, std::string_view user_id) {
  return with_writer<void>([&](Connection& db) -> Status {
    auto stmt = db.prepare(kDeleteDelegation);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, workspace_id);
    stmt->bind(2, user_id);
    if (auto status = stmt->run("deleting a delegation"); !status) return status;
    if (changes(db) == 0) {
      return make_error(ErrorCode::not_found, "user " + std::string(user_id) +
                                                  " has no delegation in workspace '" +
                                                  std::string(workspace_id) + "'");
    }
    return ok_status();
  });
}

Result<std::vector<DelegationRecord>> SqliteStore::delegations_to(std::string_view workspace_id,
                                                                  std::string_view delegate_id,
                                                                  TimePoint at) {
  return with_reader([&](Connection& db) -> Result<std::vector<DelegationRecord>> {
    auto stmt = db.prepare(kDelegationsTo);
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, workspace_id);
    stmt->bind(2, delegate_id);
    stmt->bind(3, at);
    return read_all<DelegationRecord>(*stmt, read_delegation, "reading delegations");
  });
}

// --- Audit ---

Result<int64_t> SqliteStore::append_audit(const AuditRecord& record) {
  return with_writer<int64_t>([&](Connection& db) { return insert_audit(db, record); });
}

Result<std::vector<AuditRecord>> SqliteStore::list_audit(const AuditFilter& filter) {
  const int mask = (filter.action ? 1 : 0) | (filter.actor ? 2 : 0) | (filter.object_id ? 4 : 0) |
                   (filter.before_id ? 8 : 0);
  const int64_t limit = std::clamp(filter.limit, 1, 1000);
  return with_reader([&](Connection& db) -> Result<std::vector<AuditRecord>> {
    auto stmt = db.prepare(list_audit_statements()[mask].c_str());
    if (!stmt) return std::move(stmt).error();
    stmt->bind(1, filter.workspace_id);
    if (filter.action) stmt->bind(2, *filter.action);
    if (filter.actor) stmt->bind(3, *filter.actor);
    if (filter.object_id) stmt->bind(4, *filter.object_id);
    if (filter.before_id) stmt->bind(5, *filter.before_id);
    stmt->bind(6, limit);
    return read_all<AuditRecord>(*stmt, read_audit, "reading the audit log");
  });
}

}  // namespace herald::store
