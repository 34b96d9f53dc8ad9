#include "engine/store/postgres/migrations.h"

#include <array>

namespace herald::store::postgres {

namespace {

// Dialect, against the SQLite list: `INTEGER PRIMARY KEY AUTOINCREMENT` is `BIGINT GENERATED
// ALWAYS AS IDENTITY` (a sequence never hands out an id twice, so a deleted timer's id is never
// reused either), columns holding milliseconds or ids are BIGINT, flags are BOOLEAN, and
// `WITHOUT ROWID` has no counterpart. Every text column that is a key, compared or sorted on is
// COLLATE "C": bytewise, as SQLite compares, so listings and cursors order the same way whatever
// locale the database was created with (and comparisons skip the locale's cost). Constraints
// that a later migration replaces are named, as PostgreSQL drops them by name.
constexpr const char* kInitialSchema = R"sql(
CREATE TABLE workflow_versions (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  workflow_id TEXT COLLATE "C" NOT NULL,
  version INTEGER NOT NULL,
  source TEXT NOT NULL,
  file_name TEXT NOT NULL,
  source_hash TEXT COLLATE "C" NOT NULL,
  created_at BIGINT NOT NULL,
  CONSTRAINT workflow_versions_number UNIQUE (workflow_id, version),
  CONSTRAINT workflow_versions_source UNIQUE (workflow_id, source_hash)
);

CREATE TABLE runs (
  id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  workflow_id TEXT COLLATE "C" NOT NULL,
  workflow_version_id BIGINT NOT NULL REFERENCES workflow_versions (id),
  state TEXT COLLATE "C" NOT NULL,
  inputs TEXT,
  trigger_data TEXT,
  error TEXT,
  created_at BIGINT NOT NULL,
  started_at BIGINT,
  finished_at BIGINT,
  updated_at BIGINT NOT NULL
);
CREATE INDEX runs_by_workflow ON runs (workflow_id, id);
CREATE INDEX runs_by_state ON runs (state, id);

-- The primary key leads with run_id, so it is also the steps-by-run index.
CREATE TABLE steps (
  run_id TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  step_id TEXT COLLATE "C" NOT NULL,
  item INTEGER NOT NULL,
  on_error BOOLEAN NOT NULL,
  state TEXT COLLATE "C" NOT NULL,
  attempt INTEGER NOT NULL,
  input TEXT,
  output TEXT,
  error TEXT,
  idempotency_key TEXT NOT NULL,
  started_at BIGINT,
  finished_at BIGINT,
  PRIMARY KEY (run_id, step_id, item)
);

CREATE TABLE attempts (
  run_id TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  step_id TEXT COLLATE "C" NOT NULL,
  item INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  state TEXT COLLATE "C" NOT NULL,
  input TEXT,
  output TEXT,
  error TEXT,
  started_at BIGINT NOT NULL,
  finished_at BIGINT,
  PRIMARY KEY (run_id, step_id, item, attempt)
);

CREATE TABLE timers (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  step_id TEXT COLLATE "C" NOT NULL,
  item INTEGER NOT NULL,
  kind TEXT COLLATE "C" NOT NULL,
  due_at BIGINT NOT NULL
);
CREATE INDEX timers_by_due ON timers (due_at, id);
CREATE INDEX timers_by_run ON timers (run_id);
)sql";

constexpr const char* kRunVars = R"sql(
ALTER TABLE runs ADD COLUMN vars TEXT;
)sql";

// Workspaces and what lives in them. SQLite rebuilds workflow_versions to change its UNIQUE
// constraints; here they are dropped and added again. Rows from before get workspace ''. The
// audit log refuses UPDATE, DELETE and TRUNCATE itself, so not even a bug in the store can
// rewrite history.
constexpr const char* kWorkspaces = R"sql(
ALTER TABLE workflow_versions ADD COLUMN workspace_id TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE workflow_versions ALTER COLUMN workspace_id DROP DEFAULT;
ALTER TABLE workflow_versions DROP CONSTRAINT workflow_versions_number;
ALTER TABLE workflow_versions DROP CONSTRAINT workflow_versions_source;
ALTER TABLE workflow_versions
  ADD CONSTRAINT workflow_versions_number UNIQUE (workspace_id, workflow_id, version);
ALTER TABLE workflow_versions
  ADD CONSTRAINT workflow_versions_source UNIQUE (workspace_id, workflow_id, source_hash);

ALTER TABLE runs ADD COLUMN workspace_id TEXT COLLATE "C" NOT NULL DEFAULT '';
CREATE INDEX runs_by_workspace ON runs (workspace_id, id);
CREATE INDEX runs_by_workspace_workflow ON runs (workspace_id, workflow_id, id);

-- Pending events are found through a partial index that holds only the unconsumed ones.
CREATE TABLE events (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  workspace_id TEXT COLLATE "C" NOT NULL,
  name TEXT COLLATE "C" NOT NULL,
  payload TEXT,
  source TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  consumed_at BIGINT
);
CREATE INDEX events_pending ON events (id) WHERE consumed_at IS NULL;

CREATE TABLE schedule_marks (
  workspace_id TEXT COLLATE "C" NOT NULL,
  workflow_id TEXT COLLATE "C" NOT NULL,
  trigger_index INTEGER NOT NULL,
  last_fire BIGINT NOT NULL,
  PRIMARY KEY (workspace_id, workflow_id, trigger_index)
);

CREATE TABLE deployed_workflows (
  workspace_id TEXT COLLATE "C" NOT NULL,
  workflow_id TEXT COLLATE "C" NOT NULL,
  version_id BIGINT NOT NULL REFERENCES workflow_versions (id),
  enabled BOOLEAN NOT NULL,
  updated_by TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (workspace_id, workflow_id)
);

CREATE TABLE workspaces (
  id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  name TEXT NOT NULL,
  created_at BIGINT NOT NULL
);

CREATE TABLE users (
  id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  name TEXT NOT NULL,
  email TEXT NOT NULL,
  created_at BIGINT NOT NULL
);

CREATE TABLE memberships (
  workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces (id),
  user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id),
  role TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (workspace_id, user_id)
);

CREATE TABLE tokens (
  id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces (id),
  user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id),
  role TEXT NOT NULL,
  name TEXT NOT NULL,
  hash TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT,
  revoked_at BIGINT,
  last_used_at BIGINT
);
CREATE INDEX tokens_by_member ON tokens (workspace_id, user_id);

CREATE TABLE secrets (
  workspace_id TEXT COLLATE "C" NOT NULL,
  name TEXT COLLATE "C" NOT NULL,
  ciphertext TEXT NOT NULL,
  updated_by TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (workspace_id, name)
);

CREATE TABLE audit_log (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  workspace_id TEXT COLLATE "C" NOT NULL,
  actor TEXT COLLATE "C" NOT NULL,
  action TEXT COLLATE "C" NOT NULL,
  object_type TEXT COLLATE "C" NOT NULL,
  object_id TEXT COLLATE "C" NOT NULL,
  address TEXT NOT NULL,
  request_id TEXT NOT NULL,
  details TEXT,
  at BIGINT NOT NULL
);
CREATE INDEX audit_by_workspace ON audit_log (workspace_id, id);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the audit log is append-only';
END
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
)sql";

constexpr const char* kPluginKv = R"sql(
CREATE TABLE plugin_kv (
  workspace_id TEXT COLLATE "C" NOT NULL,
  plugin TEXT COLLATE "C" NOT NULL,
  key TEXT COLLATE "C" NOT NULL,
  value TEXT NOT NULL,
  expires_at BIGINT,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (workspace_id, plugin, key)
);
ALTER TABLE attempts ADD COLUMN logs TEXT;
)sql";

// Approvals, as in SQLite: the whole state as one JSON column next to the columns lists filter
// on, approval_awaiting with one row per principal who may decide now, and nothing referring to
// runs.
constexpr const char* kApprovals = R"sql(
CREATE TABLE approvals (
  id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
  workspace_id TEXT COLLATE "C" NOT NULL,
  run_id TEXT COLLATE "C" NOT NULL,
  step_id TEXT COLLATE "C" NOT NULL,
  item INTEGER NOT NULL,
  status TEXT COLLATE "C" NOT NULL,
  title TEXT NOT NULL,
  submitter TEXT NOT NULL,
  policy_name TEXT NOT NULL,
  policy_version INTEGER NOT NULL,
  state TEXT,
  revision BIGINT NOT NULL,
  due_at BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  CONSTRAINT approvals_of_step UNIQUE (run_id, step_id, item)
);
CREATE INDEX approvals_by_workspace ON approvals (workspace_id, id DESC);
CREATE INDEX approvals_by_status ON approvals (workspace_id, status, id);
CREATE INDEX approvals_due ON approvals (due_at, id) WHERE status = 'pending';

CREATE TABLE approval_awaiting (
  approval_id TEXT COLLATE "C" NOT NULL REFERENCES approvals (id) ON DELETE CASCADE,
  workspace_id TEXT COLLATE "C" NOT NULL,
  principal TEXT COLLATE "C" NOT NULL,
  level TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (approval_id, principal, level)
);
CREATE INDEX approval_awaiting_by_principal
  ON approval_awaiting (workspace_id, principal, approval_id);

CREATE TABLE approval_policies (
  workspace_id TEXT COLLATE "C" NOT NULL,
  name TEXT COLLATE "C" NOT NULL,
  version INTEGER NOT NULL,
  description TEXT NOT NULL,
  source TEXT NOT NULL,
  file_name TEXT NOT NULL,
  source_hash TEXT COLLATE "C" NOT NULL,
  created_by TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (workspace_id, name, version)
);

CREATE TABLE approval_groups (
  workspace_id TEXT COLLATE "C" NOT NULL,
  name TEXT COLLATE "C" NOT NULL,
  description TEXT NOT NULL,
  members TEXT NOT NULL,
  updated_by TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (workspace_id, name)
);

CREATE TABLE approval_delegations (
  workspace_id TEXT COLLATE "C" NOT NULL,
  user_id TEXT COLLATE "C" NOT NULL,
  delegate_id TEXT COLLATE "C" NOT NULL,
  starts_at BIGINT,
  ends_at BIGINT,
  created_by TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX approval_delegations_by_delegate
  ON approval_delegations (workspace_id, delegate_id);
)sql";

// Leases, as in the SQLite store (migration 6 there, where the reasons are written).
constexpr const char* kRunLeases = R"sql(
ALTER TABLE runs ADD COLUMN lease_owner TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN lease_token BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN lease_expires_at BIGINT NOT NULL DEFAULT 0;
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

}  // namespace herald::store::postgres
