// The SQLite store: it joins the conformance suite (as a file in a temporary folder and as an
// in-memory database), and here are the things only SQLite has: store URLs, files that are not
// stores, schema versions and upgrades between them, journal mode.
#include "engine/store/sqlite/sqlite_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>
#include <thread>

#include "engine/store/sqlite/connection.h"
#include "engine/store/sqlite/migrations.h"
#include "tests/unit/store/store_conformance.h"

namespace herald::store::testing {
namespace {

namespace fs = std::filesystem;

class SqliteFileHarness : public StoreHarness {
 public:
  Result<std::unique_ptr<Store>> open() override {
    return open_store("sqlite:" + (dir_.path() / "data" / "herald.db").string());
  }
  bool persistent() const override { return true; }

 private:
  TempDir dir_;
};

class SqliteMemoryHarness : public StoreHarness {
 public:
  Result<std::unique_ptr<Store>> open() override { return open_store("sqlite::memory:"); }
  bool persistent() const override { return false; }
};

INSTANTIATE_TEST_SUITE_P(
    Sqlite, StoreConformance,
    ::testing::Values(StoreKind{"file", [] { return std::make_unique<SqliteFileHarness>(); }},
                      StoreKind{"memory", [] { return std::make_unique<SqliteMemoryHarness>(); }}),
    StoreKindName{});

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

// Runs SQL on a database file behind the store's back, as another tool would.
void sql(const fs::path& path, const std::string& text) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* message = nullptr;
  int rc = sqlite3_exec(db, text.c_str(), nullptr, nullptr, &message);
  std::string error = message != nullptr ? message : "";
  sqlite3_free(message);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << error;
}

std::string sql_value(const fs::path& path, const std::string& query) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, query.c_str(), -1, &stmt, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  std::string value;
  if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
    value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return value;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(SqliteStoreUrl, AcceptsSqliteUrlsAndPlainPaths) {
  TempDir dir;
  auto prefixed = dir.path() / "a" / "b" / "prefixed.db";  // folders created on the way
  auto plain = dir.path() / "plain.db";
  auto triple = dir.path() / "triple.db";
  for (const auto& [url, file] :
       std::vector<std::pair<std::string, fs::path>>{{"sqlite:" + prefixed.string(), prefixed},
                                                     {plain.string(), plain},
                                                     {"sqlite://" + triple.string(), triple}}) {
    auto store = open_store(url);
    ASSERT_TRUE(store.ok()) << url << ": " << store.error().message;
    EXPECT_TRUE(fs::exists(file)) << url;
  }
  auto memory = open_store("sqlite::memory:");
  ASSERT_TRUE(memory.ok()) << memory.error().message;
  EXPECT_TRUE((*memory)->put_workflow_version("", "wf", "x", "x.yaml").ok());
}

TEST(SqliteStoreUrl, RelativePathsWork) {
  TempDir dir;
  auto old = fs::current_path();
  fs::current_path(dir.path());
  auto store = open_store("sqlite:.herald/herald.db");
  fs::current_path(old);
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_TRUE(fs::exists(dir.path() / ".herald" / "herald.db"));
}

TEST(SqliteStoreUrl, UnknownSchemeNamesItAndWhatIsAccepted) {
  auto store = open_store("mysql://admin:hunter2@db.example/herald");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, ErrorCode::invalid_argument);
  const auto& message = store.error().message;
  EXPECT_TRUE(contains(message, "\"mysql:\"")) << message;
  EXPECT_TRUE(contains(message, "sqlite:")) << message;
  EXPECT_TRUE(contains(message, "postgres://")) << message;
  EXPECT_FALSE(contains(message, "hunter2")) << "a URL's password must not be echoed: " << message;
}

TEST(SqliteStoreUrl, EmptyUrlsAreRefused) {
  for (const char* url : {"", "sqlite:"}) {
    auto store = open_store(url);
    ASSERT_FALSE(store.ok()) << url;
    EXPECT_EQ(store.error().code, ErrorCode::invalid_argument) << url;
  }
}

TEST(SqliteStoreFile, UsesWalAndRecordsEachMigrationOnce) {
  TempDir dir;
  auto path = dir.path() / "herald.db";
  for (int i = 0; i < 3; ++i) {
    auto store = open_store(path.string());
    ASSERT_TRUE(store.ok()) << store.error().message;
    ASSERT_TRUE((*store)->migrate().ok());
  }
  EXPECT_EQ(sql_value(path, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(sql_value(path, "SELECT count(*) FROM schema_migrations"),
            std::to_string(SqliteStore::latest_schema_version()));
  EXPECT_EQ(sql_value(path, "SELECT max(version) FROM schema_migrations"),
            std::to_string(SqliteStore::latest_schema_version()));
  for (const char* table : {"workflow_versions", "runs", "steps", "attempts", "timers"}) {
    EXPECT_EQ(sql_value(path, std::string("SELECT count(*) FROM sqlite_master WHERE name = '") +
                                  table + "'"),
              "1")
        << table;
  }
}

TEST(SqliteStoreFile, ANewerSchemaIsRefusedAndLeftAlone) {
  TempDir dir;
  auto path = dir.path() / "herald.db";
  ASSERT_TRUE(open_store(path.string()).ok());
  sql(path, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)");

  auto store = open_store(path.string());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, ErrorCode::failed_precondition);
  const auto& message = store.error().message;
  EXPECT_TRUE(contains(message, "999")) << message;
  EXPECT_TRUE(contains(message, path.string())) << message;
  EXPECT_TRUE(contains(message, "newer")) << message;
  EXPECT_EQ(sql_value(path, "SELECT count(*) FROM schema_migrations"),
            std::to_string(SqliteStore::latest_schema_version() + 1));
}

TEST(SqliteStoreFile, AFileThatIsNotADatabaseIsLeftUntouched) {
  TempDir dir;
  std::string garbage;
  for (int i = 0; i < 8192; ++i) garbage.push_back(static_cast<char>((i * 7919) % 251));
  for (const auto& bytes : {garbage, std::string("hello, I am a text file\n")}) {
    auto path = dir.path() / "not-a-db.db";
    write_file(path, bytes);
    auto store = open_store("sqlite:" + path.string());
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.error().code, ErrorCode::failed_precondition);
    EXPECT_TRUE(contains(store.error().message, path.string())) << store.error().message;
    EXPECT_TRUE(contains(store.error().message, "not a database")) << store.error().message;
    EXPECT_EQ(read_file(path), bytes);
    EXPECT_FALSE(fs::exists(path.string() + "-wal"));
    EXPECT_FALSE(fs::exists(path.string() + "-shm"));
    EXPECT_FALSE(fs::exists(path.string() + "-journal"));
  }
}

TEST(SqliteStoreFile, AnotherProgramsDatabaseIsRefused) {
  TempDir dir;
  auto path = dir.path() / "other.db";
  sql(path, "CREATE TABLE contacts (name TEXT)");
  auto store = open_store(path.string());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, ErrorCode::failed_precondition);
  EXPECT_TRUE(contains(store.error().message, "not a Herald store")) << store.error().message;
  EXPECT_EQ(sql_value(path, "SELECT count(*) FROM sqlite_master"), "1");
}

TEST(SqliteStoreFile, AFolderThatCannotBeCreatedIsAClearError) {
  TempDir dir;
  auto blocker = dir.path() / "a-file";
  write_file(blocker, "x");
  auto path = blocker / "sub" / "herald.db";
  auto store = open_store("sqlite:" + path.string());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, ErrorCode::failed_precondition);
  EXPECT_TRUE(contains(store.error().message, (blocker / "sub").string())) << store.error().message;
}

TEST(SqliteStoreFile, AnUnwritableFolderIsAClearError) {
  if (geteuid() == 0) GTEST_SKIP() << "root writes into any folder";
  TempDir dir;
  auto locked = dir.path() / "locked";
  fs::create_directory(locked);
  fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec);
  auto path = locked / "herald.db";
  auto store = open_store(path.string());
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(contains(store.error().message, path.string())) << store.error().message;
  EXPECT_FALSE(fs::exists(path));
}

TEST(SqliteStoreFile, AReadOnlyFileIsAClearError) {
  if (geteuid() == 0) GTEST_SKIP() << "root writes into any file";
  TempDir dir;
  auto path = dir.path() / "herald.db";
  ASSERT_TRUE(open_store(path.string()).ok());
  fs::permissions(path, fs::perms::owner_read);
  auto store = open_store(path.string());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, ErrorCode::permission_denied);
  EXPECT_TRUE(contains(store.error().message, path.string())) << store.error().message;
}

TEST(SqliteStoreFile, WritesAreVisibleToAnotherConnectionAtOnce) {
  // What `herald runs list` in another process sees while a run is going.
  TempDir dir;
  auto path = dir.path() / "herald.db";
  auto store = open_store(path.string());
  ASSERT_TRUE(store.ok());
  auto version = (*store)->put_workflow_version("", "wf", "x", "x.yaml");
  ASSERT_TRUE(version.ok());
  RunRecord run;
  run.id = "run-1";
  run.workflow_id = "wf";
  run.workflow_version_id = version->id;
  Commit commit;
  commit.insert_runs = {run};
  ASSERT_TRUE((*store)->commit(commit).ok());
  EXPECT_EQ(sql_value(path, "SELECT state FROM runs WHERE id = 'run-1'"), "queued");
}

TEST(SqliteStoreFile, CheckpointsKeepTheWalBoundedAndLoseNothing) {
  TempDir dir;
  auto path = dir.path() / "herald.db";
  auto wal = fs::path(path.string() + "-wal");
  auto opened = open_store(path.string());
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  Store& store = **opened;
  const auto initial_size = fs::file_size(path);
  auto version = store.put_workflow_version("", "wf", "x", "x.yaml");
  ASSERT_TRUE(version.ok());

  // Some 6,000 commits of three pages each: about 70 MB of WAL if nothing were checkpointed.
  constexpr int kRuns = 600;
  constexpr int kSteps = 10;
  uintmax_t largest_wal = 0;
  for (int r = 0; r < kRuns; ++r) {
    RunRecord run;
    run.id = new_run_id();
    run.workflow_id = "wf";
    run.workflow_version_id = version->id;
    Commit insert;
    insert.insert_runs = {run};
    ASSERT_TRUE(store.commit(insert).ok());
    for (int s = 0; s < kSteps; ++s) {
      Commit commit;
      StepRecord step;
      step.run_id = run.id;
      step.step_id = "s" + std::to_string(s);
      step.output = {{"text", std::string(200, 'x')}};
      commit.steps = {step};
      run.updated_at = Clock::now();
      commit.update_run = run;
      ASSERT_TRUE(store.commit(commit).ok());
    }
    largest_wal = std::max(largest_wal, fs::file_size(wal));
  }
  // The writer's own checkpoint mark (4000 pages of 4 KiB, 16 MB) bounds the WAL, with slack for
  // commits made while the checkpointer thread held the checkpoint lock.
  EXPECT_LT(largest_wal, uintmax_t{40} << 20);
  // Checkpoints ran while the store was open: pages reached the database file itself.
  for (int i = 0; i < 100 && fs::file_size(path) <= initial_size; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GT(fs::file_size(path), initial_size);

  opened->reset();
  auto reopened = open_store(path.string());
  ASSERT_TRUE(reopened.ok());
  RunFilter filter;
  filter.limit = 1000;
  auto runs = (*reopened)->list_runs(filter);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), size_t{kRuns});
  for (const auto& run : *runs) {
    auto steps = (*reopened)->get_steps(run.id);
    ASSERT_TRUE(steps.ok());
    EXPECT_EQ(steps->size(), size_t{kSteps});
  }
}

// A store file as a build that knew only the first `version` migrations left it: their SQL,
// recorded in schema_migrations as SqliteStore::migrate() records them.
void make_store_at_schema(const fs::path& path, int version) {
  sql(path,
      "CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY,"
      " name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
  for (const auto& migration : sqlite::migrations()) {
    if (migration.version > version) break;
    sql(path, migration.sql);
    sql(path, "INSERT INTO schema_migrations VALUES (" + std::to_string(migration.version) +
                  ", 'old', 0)");
  }
}

constexpr const char* kAbcSha256 =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

TEST(SqliteStoreMigration, AStoreAtSchemaTwoUpgradesKeepingVersionsAndRuns) {
  TempDir dir;
  auto path = dir.path() / "herald.db";
  make_store_at_schema(path, 2);
  // What a schema-2 store holds: versions of two workflows (the same source in both, which the
  // old constraints allowed per workflow), runs on them with steps and a timer.
  sql(path, std::string("INSERT INTO workflow_versions VALUES"
                        " (1, 'launch', 1, 'abc', 'launch.yaml', '") +
                kAbcSha256 +
                "', 1700000000123),"
                " (2, 'launch', 2, 'abc2', 'launch.yaml', 'hash2', 1700000000456),"
                " (3, 'digest', 1, 'abc', 'digest.yaml', '" +
                kAbcSha256 +
                "', 1700000000789);"
                "INSERT INTO runs (id, workflow_id, workflow_version_id, state, inputs,"
                " trigger_data, error, created_at, started_at, finished_at, updated_at, vars)"
                " VALUES ('run-1', 'launch', 2, 'waiting', '{\"topic\":\"spring\"}',"
                " '{\"kind\":\"manual\"}', NULL, 1700000001000, 1700000001001, NULL,"
                " 1700000001002, '{\"tag\":\"#acme\"}'),"
                " ('run-2', 'digest', 3, 'succeeded', NULL, '{}', NULL, 1700000002000, NULL,"
                " 1700000002500, 1700000002500, NULL);"
                "INSERT INTO steps VALUES ('run-1', 'wait', -1, 0, 'waiting', 1, NULL, NULL,"
                " NULL, 'run-1/wait/-1', 1700000001003, NULL);"
                "INSERT INTO timers (id, run_id, step_id, item, kind, due_at)"
                " VALUES (7, 'run-1', 'wait', -1, 'wait', 1700000009000);");

  auto opened = open_store(path.string());
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  Store& store = **opened;
  EXPECT_EQ(sql_value(path, "SELECT max(version) FROM schema_migrations"),
            std::to_string(sqlite::migrations().back().version));
  EXPECT_EQ(sql_value(path, "SELECT count(*) FROM sqlite_master WHERE name LIKE '%_new'"), "0");
  // Later migrations apply on top (migration 4: the plugins' kv entries).
  KvEntry entry;
  entry.workspace_id = "acme";
  entry.plugin = "mastodon";
  entry.key = "cursor";
  entry.value = "109";
  entry.updated_at = Clock::now();
  ASSERT_TRUE(store.kv_put(entry, 10).ok());

  // Versions: every field kept, workspace ''.
  auto v1 = store.get_workflow_version(1);
  ASSERT_TRUE(v1.ok()) << v1.error().message;
  EXPECT_EQ(v1->workspace_id, "");
  EXPECT_EQ(v1->workflow_id, "launch");
  EXPECT_EQ(v1->version, 1);
  EXPECT_EQ(v1->source, "abc");
  EXPECT_EQ(v1->file_name, "launch.yaml");
  EXPECT_EQ(v1->source_hash, kAbcSha256);
  EXPECT_EQ(v1->created_at, sqlite::from_millis(1700000000123));
  auto v3 = store.get_workflow_version(3);
  ASSERT_TRUE(v3.ok());
  EXPECT_EQ(v3->workflow_id, "digest");
  EXPECT_EQ(v3->workspace_id, "");

  // Runs: every field kept, workspace ''.
  auto run = store.get_run("run-1");
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_EQ(run->workspace_id, "");
  EXPECT_EQ(run->workflow_version_id, 2);
  EXPECT_EQ(run->state, RunState::waiting);
  EXPECT_EQ(run->inputs, Json({{"topic", "spring"}}));
  EXPECT_EQ(run->vars, Json({{"tag", "#acme"}}));
  EXPECT_EQ(run->started_at, sqlite::from_millis(1700000001001));
  RunFilter filter;
  filter.workspace_id = "";
  auto cli_runs = store.list_runs(filter);
  ASSERT_TRUE(cli_runs.ok());
  EXPECT_EQ(cli_runs->size(), 2u);
  filter.workspace_id = "acme";
  EXPECT_TRUE(store.list_runs(filter)->empty());
  auto steps = store.get_steps("run-1");
  ASSERT_TRUE(steps.ok());
  ASSERT_EQ(steps->size(), 1u);
  EXPECT_EQ(steps->at(0).idempotency_key, "run-1/wait/-1");
  auto timers = store.timers_of_run("run-1");
  ASSERT_TRUE(timers.ok());
  ASSERT_EQ(timers->size(), 1u);
  EXPECT_EQ(timers->at(0).id, 7);

  // The old rows take part in dedup and numbering under workspace ''.
  auto again = store.put_workflow_version("", "launch", "abc", "launch.yaml");
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->id, 1);
  auto next = store.put_workflow_version("", "launch", "abc3", "launch.yaml");
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_EQ(next->version, 3);
  EXPECT_GT(next->id, 3);
  // The old constraints are gone: the same workflow and source in a workspace is its own version.
  auto in_acme = store.put_workflow_version("acme", "launch", "abc", "launch.yaml");
  ASSERT_TRUE(in_acme.ok()) << in_acme.error().message;
  EXPECT_EQ(in_acme->version, 1);
  EXPECT_NE(in_acme->id, 1);

  // runs still refer to the rebuilt table, and foreign keys are enforced again.
  EXPECT_EQ(sql_value(path, "SELECT \"table\" FROM pragma_foreign_key_list('runs')"),
            "workflow_versions");
  RunRecord orphan;
  orphan.id = "run-orphan";
  orphan.workflow_id = "launch";
  orphan.workflow_version_id = 999;
  Commit commit;
  commit.insert_runs = {orphan};
  auto refused = store.commit(commit);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::failed_precondition);
  RunRecord fine = orphan;
  fine.id = "run-3";
  fine.workspace_id = "acme";
  fine.workflow_version_id = in_acme->id;
  commit.insert_runs = {fine};
  ASSERT_TRUE(store.commit(commit).ok());
  EXPECT_EQ(store.get_run("run-3")->workspace_id, "acme");

  // Deployments work on the migrated store, continuing the numbering.
  auto deployed = store.deploy_workflow("", "launch", "abc4", "launch.yaml", "cli");
  ASSERT_TRUE(deployed.ok()) << deployed.error().message;
  EXPECT_EQ(deployed->version.version, 4);
  for (const char* index : {"runs_by_workspace", "runs_by_workspace_workflow", "events_pending"}) {
    EXPECT_EQ(sql_value(path, std::string("SELECT count(*) FROM sqlite_master WHERE name = '") +
                                  index + "'"),
              "1")
        << index;
  }
}

TEST(SqliteStoreMigration, AnEmptyStoreAtSchemaTwoUpgrades) {
  TempDir dir;
  auto path = dir.path() / "herald.db";
  make_store_at_schema(path, 2);
  auto opened = open_store(path.string());
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto version = (*opened)->put_workflow_version("", "wf", "x", "x.yaml");
  ASSERT_TRUE(version.ok()) << version.error().message;
  EXPECT_EQ(version->version, 1);
  EXPECT_EQ(sql_value(path, "SELECT max(version) FROM schema_migrations"),
            std::to_string(sqlite::migrations().back().version));
}

TEST(SqliteStoreMigration, ADanglingReferenceStopsTheMigrationAndChangesNothing) {
  TempDir dir;
  auto path = dir.path() / "herald.db";
  make_store_at_schema(path, 2);
  // Written behind the store's back, with foreign keys off (sqlite3's default).
  sql(path,
      "INSERT INTO runs (id, workflow_id, workflow_version_id, state, created_at, updated_at)"
      " VALUES ('run-1', 'wf', 42, 'queued', 0, 0)");
  auto opened = open_store(path.string());
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, ErrorCode::failed_precondition);
  EXPECT_TRUE(contains(opened.error().message, "runs")) << opened.error().message;
  EXPECT_EQ(sql_value(path, "SELECT max(version) FROM schema_migrations"), "2");
  EXPECT_EQ(sql_value(path,
                      "SELECT count(*) FROM pragma_table_info('workflow_versions')"
                      " WHERE name = 'workspace_id'"),
            "0");
  EXPECT_EQ(sql_value(path, "SELECT count(*) FROM sqlite_master WHERE name = 'events'"), "0");
}

TEST(SqliteStoreMigration, AStoreAtSchemaFourGetsApprovalsAndKeepsItsRuns) {
  TempDir dir;
  auto path = dir.path() / "herald.db";
  make_store_at_schema(path, 4);
  sql(path,
      "INSERT INTO workflow_versions (id, workspace_id, workflow_id, version, source, file_name,"
      " source_hash, created_at) VALUES (1, 'acme', 'launch', 1, 'abc', 'launch.yaml', 'h', 0);"
      "INSERT INTO runs (id, workflow_id, workflow_version_id, state, created_at, updated_at,"
      " workspace_id) VALUES ('run-1', 'launch', 1, 'waiting', 0, 0, 'acme');");
  ApprovalRecord approval;
  approval.id = "ap_01";
  approval.workspace_id = "acme";
  approval.run_id = "run-1";
  approval.step_id = "review";
  approval.status = "pending";
  approval.state = {{"levels", Json::array()}};
  approval.revision = 1;
  approval.due_at = sqlite::from_millis(1700000000123);
  approval.created_at = approval.updated_at = sqlite::from_millis(1700000000000);
  {
    auto opened = open_store(path.string());
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    EXPECT_EQ(sql_value(path, "SELECT max(version) FROM schema_migrations"),
              std::to_string(sqlite::migrations().back().version));
    EXPECT_EQ((*opened)->get_run("run-1")->state, RunState::waiting);
    ApprovalWrite write;
    write.approval = approval;
    write.awaiting = {{"user:alice", "legal"}};
    write.wake = TimerRecord{0, "run-1", "review", -1, "rerun", Clock::now()};
    auto written = (*opened)->write_approval(write);
    ASSERT_TRUE(written.ok()) << written.error().message;
  }
  for (const char* index : {"approvals_by_workspace", "approvals_by_status", "approvals_due",
                            "approval_awaiting_by_principal", "approval_delegations_by_delegate"}) {
    EXPECT_EQ(sql_value(path, std::string("SELECT count(*) FROM sqlite_master WHERE name = '") +
                                  index + "'"),
              "1")
        << index;
  }
  EXPECT_EQ(sql_value(path, "SELECT count(*) FROM approval_awaiting"), "1");
  auto reopened = open_store(path.string());
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  auto stored = (*reopened)->get_approval("acme", "ap_01");
  ASSERT_TRUE(stored.ok()) << stored.error().message;
  EXPECT_EQ(stored->state, approval.state);
  EXPECT_EQ(stored->due_at, approval.due_at);
  auto timers = (*reopened)->timers_of_run("run-1");
  ASSERT_TRUE(timers.ok());
  ASSERT_EQ(timers->size(), 1u);
  EXPECT_EQ(timers->at(0).kind, "rerun");
}

// "Pending for me" reads one page off approval_awaiting_by_principal, whatever the number of
// pending approvals: with 100,000 of them (written behind the store's back, as one transaction
// is quicker), a page of 50 for one principal or for several takes well under a millisecond of
// SQLite's time; a plan that read every assignment would take tens of milliseconds.
TEST(SqliteStoreFile, PendingForMeIsAnIndexWalkAmongAHundredThousandApprovals) {
  TempDir dir;
  auto path = dir.path() / "herald.db";
  { ASSERT_TRUE(open_store(path.string()).ok()); }
  constexpr int kApprovals = 100'000;
  const std::string state =
      "'{\"levels\":[{\"name\":\"legal\",\"note\":\"" + std::string(200, 'x') + "\"}]}'";
  sql(path,
      "BEGIN;"
      "WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < " +
          std::to_string(kApprovals - 1) +
          ")"
          " INSERT INTO approvals SELECT printf('ap_%08d', x), 'acme', 'run-' || (x / 10),"
          " 'review', x % 10, 'pending', 'title', 'user:sam', 'brand', 1, " +
          state +
          ", 1, 1700000000000 + x, 1700000000000, 1700000000000 FROM n;"
          // alice and bob on legal for every approval, and bob on brand for every other one too.
          "INSERT INTO approval_awaiting SELECT id, 'acme', 'user:alice', 'legal' FROM approvals;"
          "INSERT INTO approval_awaiting SELECT id, 'acme', 'user:bob', 'legal' FROM approvals;"
          "INSERT INTO approval_awaiting SELECT id, 'acme', 'user:bob', 'brand' FROM approvals"
          " WHERE substr(id, -1) IN ('0', '2', '4', '6', '8');"
          "COMMIT;");
  auto opened = open_store(path.string());
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  Store& store = **opened;

  auto fastest_ms = [&](const ApprovalFilter& filter, size_t expected) {
    double best = 1e9;
    for (int i = 0; i < 7; ++i) {
      auto start = std::chrono::steady_clock::now();
      auto page = store.list_approvals(filter);
      auto took =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
      EXPECT_TRUE(page.ok());
      if (!page.ok()) return best;
      EXPECT_EQ(page->size(), expected);
      if (!page->empty()) {
        EXPECT_GT(page->front().id, page->back().id);
      }
      best = std::min(best, took);
    }
    return best;
  };
  ApprovalFilter filter;
  filter.workspace_id = "acme";
  filter.awaiting = {"user:alice"};
  EXPECT_LT(fastest_ms(filter, 50), 20.0);
  filter.awaiting = {"user:alice", "user:bob", "user:carol"};
  EXPECT_LT(fastest_ms(filter, 50), 20.0);
  filter.before_id = "ap_00050000";
  EXPECT_LT(fastest_ms(filter, 50), 20.0);
  filter.status = "pending";
  EXPECT_LT(fastest_ms(filter, 50), 20.0);
  filter.awaiting = {"user:carol"};
  EXPECT_LT(fastest_ms(filter, 0), 20.0);
  // The listing of a run reads that run's approvals only.
  filter.awaiting = {"user:alice"};
  filter.before_id.reset();
  filter.run_id = "run-42";
  EXPECT_LT(fastest_ms(filter, 10), 20.0);
  filter.awaiting.clear();
  EXPECT_LT(fastest_ms(filter, 10), 20.0);
  // And the deadline poll reads the soonest only.
  auto start = std::chrono::steady_clock::now();
  auto due = store.due_approvals(sqlite::from_millis(1700000000000 + kApprovals), 100);
  auto took =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 100u);
  EXPECT_EQ(due->front().id, "ap_00000000");
  EXPECT_LT(took, 50.0);
}

TEST(SqliteStoreFile, TheAuditLogRefusesChangesEvenBehindTheStoresBack) {
  TempDir dir;
  auto path = dir.path() / "herald.db";
  {
    auto store = open_store(path.string());
    ASSERT_TRUE(store.ok());
    AuditRecord record;
    record.workspace_id = "acme";
    record.actor = "cli";
    record.action = "secret.set";
    ASSERT_TRUE((*store)->append_audit(record).ok());
  }
  for (const char* change :
       {"UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"}) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    char* message = nullptr;
    int rc = sqlite3_exec(db, change, nullptr, nullptr, &message);
    std::string error = message != nullptr ? message : "";
    sqlite3_free(message);
    sqlite3_close(db);
    EXPECT_NE(rc, SQLITE_OK) << change;
    EXPECT_TRUE(contains(error, "append-only")) << error;
  }
  EXPECT_EQ(sql_value(path, "SELECT actor FROM audit_log"), "cli");
}

}  // namespace
}  // namespace herald::store::testing
