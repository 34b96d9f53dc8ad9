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

constexpr std::array<Migration, 2> kMigrations{{
    {1, "initial schema", kInitialSchema},
    {2, "rendered vars of a run", kRunVars},
}};

}  // namespace

std::span<const Migration> migrations() {
  return kMigrations;
}

}  // namespace herald::store::sqlite
