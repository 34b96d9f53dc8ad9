#include "engine/store/sqlite/migrations.h"

#include <array>

namespace herald::store::sqlite {

namespace {

// Dialect notes for the PostgreSQL sibling: `INTEGER PRIMARY KEY AUTOINCREMENT` becomes
// `BIGINT GENERATED ALWAYS AS IDENTITY`, INTEGER columns holding milliseconds or ids become
// BIGINT, and `WITHOUT ROWID` is dropped (PostgreSQL tables have no rowid to begin with). It is
// here because steps and attempts are only ever reached by their primary key: stored in the key's
// own b-tree, each upsert writes one b-tree instead of a table plus its key index. AUTOINCREMENT is
// used so a deleted timer's id is never handed out again: the runtime deletes timers by id, and a
// reused id could delete the wrong one.
constexpr const char* kInitialSchema = R"sql(
CREATE TABLE workflow_versions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  workflow_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  source TEXT NOT NULL,
  file_name TEXT NOT NULL,
  source_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (workflow_id, version),
  UNIQUE (workflow_id, source_hash)
);

CREATE TABLE runs (
  id TEXT NOT NULL PRIMARY KEY,
  workflow_id TEXT NOT NULL,
  workflow_version_id INTEGER NOT NULL REFERENCES workflow_versions (id),
  state TEXT NOT NULL,
  inputs TEXT,
  trigger_data TEXT,
  error TEXT,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  updated_at INTEGER NOT NULL
);
CREATE INDEX runs_by_workflow ON runs (workflow_id, id);
CREATE INDEX runs_by_state ON runs (state, id);

-- The primary key leads with run_id, so it is also the steps-by-run index; a second index would
-- only slow down every step commit.
CREATE TABLE steps (
  run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  step_id TEXT NOT NULL,
  item INTEGER NOT NULL,
  on_error INTEGER NOT NULL,
  state TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  input TEXT,
  output TEXT,
  error TEXT,
  idempotency_key TEXT NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  PRIMARY KEY (run_id, step_id, item)
) WITHOUT ROWID;

CREATE TABLE attempts (
  run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  step_id TEXT NOT NULL,
  item INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  state TEXT NOT NULL,
  input TEXT,
  output TEXT,
  error TEXT,
  started_at INTEGER NOT NULL,
  finished_at INTEGER,
  PRIMARY KEY (run_id, step_id, item, attempt)
) WITHOUT ROWID;

CREATE TABLE timers (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  step_id TEXT NOT NULL,
  item INTEGER NOT NULL,
  kind TEXT NOT NULL,
  due_at INTEGER NOT NULL
);
CREATE INDEX timers_by_due ON timers (due_at, id);
CREATE INDEX timers_by_run ON timers (run_id);
)sql";

// The rendered `vars` of a run, kept so that resuming it does not render them again.
constexpr const char* kRunVars = R"sql(
ALTER TABLE runs ADD COLUMN vars TEXT;
)sql";

// Workspaces and what lives in them. workflow_versions is rebuilt (the SQLite way: a new table,
// copy, drop, rename) because its table-level UNIQUE constraints must now lead with the
// workspace, and SQLite cannot drop a constraint. migrate() runs this with foreign keys off, as
// the rebuild needs (runs refer to workflow_versions by name, so they refer to the new table
// once it is renamed), and checks every foreign key before committing. Rows from before get
// workspace ''. PostgreSQL does the same with ALTER TABLE ... DROP/ADD CONSTRAINT.
//
// Tenancy tables are keyed by the ids people choose (slugs). memberships and tokens refer to
// their workspace and user; secrets, deployments, events and audit entries do not, since the
// workspace '' of `herald run` has no row. The audit log refuses UPDATE and DELETE itself, so
// not even a bug in the store can rewrite history.
constexpr const char* kWorkspaces = R"sql(
CREATE TABLE workflow_versions_new (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  workspace_id TEXT NOT NULL,
  workflow_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  source TEXT NOT NULL,
  file_name TEXT NOT NULL,
  source_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (workspace_id, workflow_id, version),
  UNIQUE (workspace_id, workflow_id, source_hash)
);
INSERT INTO workflow_versions_new
  (id, workspace_id, workflow_id, version, source, file_name, source_hash, created_at)
  SELECT id, '', workflow_id, version, source, file_name, source_hash, created_at
  FROM workflow_versions;
DROP TABLE workflow_versions;
ALTER TABLE workflow_versions_new RENAME TO workflow_versions;

ALTER TABLE runs ADD COLUMN workspace_id TEXT NOT NULL DEFAULT '';
CREATE INDEX runs_by_workspace ON runs (workspace_id, id);
CREATE INDEX runs_by_workspace_workflow ON runs (workspace_id, workflow_id, id);

-- Pending events are found through a partial index that holds only the unconsumed ones, so the
-- dispatcher's poll stays cheap however many consumed events pile up.
CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  workspace_id TEXT NOT NULL,
  name TEXT NOT NULL,
  payload TEXT,
  source TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  consumed_at INTEGER
);
CREATE INDEX events_pending ON events (id) WHERE consumed_at IS NULL;

CREATE TABLE schedule_marks (
  workspace_id TEXT NOT NULL,
  workflow_id TEXT NOT NULL,
  trigger_index INTEGER NOT NULL,
  last_fire INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, workflow_id, trigger_index)
) WITHOUT ROWID;

CREATE TABLE deployed_workflows (
  workspace_id TEXT NOT NULL,
  workflow_id TEXT NOT NULL,
  version_id INTEGER NOT NULL REFERENCES workflow_versions (id),
  enabled INTEGER NOT NULL,
  updated_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, workflow_id)
);

CREATE TABLE workspaces (
  id TEXT NOT NULL PRIMARY KEY,
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE TABLE users (
  id TEXT NOT NULL PRIMARY KEY,
  name TEXT NOT NULL,
  email TEXT NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE TABLE memberships (
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  user_id TEXT NOT NULL REFERENCES users (id),
  role TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, user_id)
);

CREATE TABLE tokens (
  id TEXT NOT NULL PRIMARY KEY,
  workspace_id TEXT NOT NULL REFERENCES workspaces (id),
  user_id TEXT NOT NULL REFERENCES users (id),
  role TEXT NOT NULL,
  name TEXT NOT NULL,
  hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  revoked_at INTEGER,
  last_used_at INTEGER
);
CREATE INDEX tokens_by_member ON tokens (workspace_id, user_id);

CREATE TABLE secrets (
  workspace_id TEXT NOT NULL,
  name TEXT NOT NULL,
  ciphertext TEXT NOT NULL,
  updated_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, name)
);

CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  workspace_id TEXT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  object_type TEXT NOT NULL,
  object_id TEXT NOT NULL,
  address TEXT NOT NULL,
  request_id TEXT NOT NULL,
  details TEXT,
  at INTEGER NOT NULL
);
CREATE INDEX audit_by_workspace ON audit_log (workspace_id, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
)sql";

constexpr const char* kPluginKv = R"sql(
CREATE TABLE plugin_kv (
  workspace_id TEXT NOT NULL,
  plugin TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  expires_at INTEGER,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, plugin, key)
);
ALTER TABLE attempts ADD COLUMN logs TEXT;
)sql";

// Approvals, and what they are decided by: policies (versioned like workflows), groups and
// delegations. An approval's whole state is one JSON column the store does not interpret, next
// to the columns that lists filter on; its revision makes every write a compare-and-set.
// approval_awaiting holds one row per principal who may decide now, so "pending for me" walks
// approval_awaiting_by_principal newest first and stops at the page size, however many approvals
// are pending. The UNIQUE (run_id, step_id, item) is also the approvals-by-run index. Nothing
// refers to runs: an approval outlives nothing it needs, and the workspace '' of `herald run`
// has no row to refer to either.
constexpr const char* kApprovals = R"sql(
CREATE TABLE approvals (
  id TEXT NOT NULL PRIMARY KEY,
  workspace_id TEXT NOT NULL,
  run_id TEXT NOT NULL,
  step_id TEXT NOT NULL,
  item INTEGER NOT NULL,
  status TEXT NOT NULL,
  title TEXT NOT NULL,
  submitter TEXT NOT NULL,
  policy_name TEXT NOT NULL,
  policy_version INTEGER NOT NULL,
  state TEXT,
  revision INTEGER NOT NULL,
  due_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (run_id, step_id, item)
);
CREATE INDEX approvals_by_workspace ON approvals (workspace_id, id DESC);
CREATE INDEX approvals_by_status ON approvals (workspace_id, status, id);
-- Only pending approvals can come due, so the deadline poll reads a small index.
CREATE INDEX approvals_due ON approvals (due_at, id) WHERE status = 'pending';

CREATE TABLE approval_awaiting (
  approval_id TEXT NOT NULL REFERENCES approvals (id) ON DELETE CASCADE,
  workspace_id TEXT NOT NULL,
  principal TEXT NOT NULL,
  level TEXT NOT NULL,
  PRIMARY KEY (approval_id, principal, level)
) WITHOUT ROWID;
CREATE INDEX approval_awaiting_by_principal ON approval_awaiting (workspace_id, principal, approval_id);

CREATE TABLE approval_policies (
  workspace_id TEXT NOT NULL,
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  description TEXT NOT NULL,
  source TEXT NOT NULL,
  file_name TEXT NOT NULL,
  source_hash TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, name, version)
);

CREATE TABLE approval_groups (
  workspace_id TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  members TEXT NOT NULL,
  updated_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, name)
);

CREATE TABLE approval_delegations (
  workspace_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  delegate_id TEXT NOT NULL,
  starts_at INTEGER,
  ends_at INTEGER,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX approval_delegations_by_delegate ON approval_delegations (workspace_id, delegate_id);
)sql";

// Leases (store.h, RunLease). A free run has lease_expires_at 0, so "no live lease" is one range
// condition, and the partial index holds only the runs a claim can take without a timer: the
// claim poll reads the unleased ones first, however many runs other engines hold.
constexpr const char* kRunLeases = R"sql(
ALTER TABLE runs ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN lease_expires_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_claimable ON runs (lease_expires_at, id) WHERE state IN ('queued', 'running');
)sql";

constexpr std::array<Migration, 6> kMigrations{{
    {1, "initial schema", kInitialSchema},
    {2, "rendered vars of a run", kRunVars},
    {3, "workspaces, deployments, events, tenancy, secrets and audit", kWorkspaces},
    {4, "plugin key-value entries, and the log lines of each attempt", kPluginKv},
    {5, "approvals, approval policies, groups and delegations", kApprovals},
    {6, "run leases, so several engines share the runs", kRunLeases},
}};

}  // namespace

std::span<const Migration> migrations() {
  return kMigrations;
}

}  // namespace herald::store::sqlite
