// The PostgreSQL store: it joins the conformance suite (each test on a fresh database of the
// test process's own cluster, tests/support/postgres_server.h), and here are the things only a
// server has: URLs and pools, databases that are not stores, schema versions, several processes
// migrating at once, connections lost mid-transaction, SQLSTATEs and what they become, deadlocks
// retried inside the store, and compare-and-set between two writers at once.
#include "engine/store/postgres/postgres_store.h"

#include <array>
#include <atomic>
#include <chrono>
#include <thread>

#include "engine/store/postgres/connection.h"
#include "tests/support/postgres_server.h"
#include "tests/unit/store/store_conformance.h"

namespace herald::store::testing {
namespace {

using herald::testing::PostgresServer;
using std::chrono::milliseconds;

// A fresh database on the shared cluster, dropped with the harness.
class PostgresHarness : public StoreHarness {
 public:
  PostgresHarness()
      : server_(PostgresServer::shared()), database_(server_.create_database("herald_store")) {}
  ~PostgresHarness() override { server_.drop_database(database_); }

  Result<std::unique_ptr<Store>> open() override { return open_store(url()); }
  bool persistent() const override { return true; }

  std::string url() const { return server_.url(database_); }
  const std::string& database() const { return database_; }
  PostgresServer& server() { return server_; }

 private:
  PostgresServer& server_;
  std::string database_;
};

INSTANTIATE_TEST_SUITE_P(Postgres, StoreConformance,
                         ::testing::Values(StoreKind{
                             "postgres", [] { return std::make_unique<PostgresHarness>(); }}),
                         StoreKindName{});

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}


RunRecord make_run(const std::string& id, int64_t version_id) {
  RunRecord run;
  run.id = id;
  run.workflow_id = "wf";
  run.workflow_version_id = version_id;
  run.inputs = {{"n", 1}};
  run.created_at = run.updated_at = at(kT0);
  return run;
}

StepRecord make_step(const std::string& run_id, const std::string& step_id, StepState state) {
  StepRecord step;
  step.run_id = run_id;
  step.step_id = step_id;
  step.state = state;
  step.idempotency_key = run_id + ":" + step_id;
  return step;
}

// Polls `query` (one integer) on its own connection until it gives at least `want`.
bool wait_for_count(const std::string& url, const std::string& query, int64_t want,
                    milliseconds timeout = milliseconds(10'000)) {
  pqxx::connection watcher(url);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    pqxx::nontransaction tx(watcher);
    if (tx.exec(query)[0][0].as<int64_t>() >= want) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return false;
}

// Backends of this database waiting for a lock, other than the watcher's own.
std::string lock_waiters_query() {
  return "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
         " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()";
}

class PostgresStoreTest : public ::testing::Test {
 protected:
  Result<std::unique_ptr<PostgresStore>> open(const std::string& suffix = "") {
    return PostgresStore::open(harness_.url() + suffix);
  }
  PostgresHarness harness_;
};

// --- URLs, pools, schemas ---

TEST_F(PostgresStoreTest, BothSchemesOpenAndPoolSizeIsOurs) {
  const std::string url = harness_.url();
  auto postgresql = open_store("postgresql" + url.substr(std::string("postgres").size()));
  ASSERT_TRUE(postgresql.ok()) << postgresql.error().message;
  auto store = open("?pool_size=3&application_name=herald-test");
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ((*store)->pool_size(), 3);
  EXPECT_EQ(value_of(PostgresStore::open(url))->pool_size(), PostgresOptions{}.pool_size);
  for (const char* bad : {"?pool_size=0", "?pool_size=many", "?pool_size=2x"}) {
    auto refused = open(bad);
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_EQ(refused.error().code, ErrorCode::invalid_argument) << bad;
  }
}

TEST_F(PostgresStoreTest, AnUnreachableServerIsUnavailableAndThePasswordIsNotEchoed) {
  const uint16_t port = herald::testing::free_loopback_port();
  auto store = open_store("postgres://herald:hunter2@127.0.0.1:" + std::to_string(port) + "/x");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, ErrorCode::unavailable) << store.error().message;
  EXPECT_TRUE(store.error().retryable);
  EXPECT_TRUE(contains(store.error().message, "127.0.0.1")) << store.error().message;
  EXPECT_FALSE(contains(store.error().message, "hunter2")) << store.error().message;
  EXPECT_EQ(postgres::redact_url("postgres://u:pw@h:1/d?password=pw"), "postgres://u@h:1/d");
}

TEST_F(PostgresStoreTest, ADatabaseOfAnotherProgramIsRefusedAndLeftAlone) {
  const std::string other = harness_.server().create_database("not_herald");
  harness_.server().psql("CREATE TABLE customers (id integer)", other);
  auto store = open_store(harness_.server().url(other));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, ErrorCode::failed_precondition);
  EXPECT_TRUE(contains(store.error().message, "not a Herald store")) << store.error().message;
  EXPECT_EQ(
      harness_.server().psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", other),
      "1\n");
  harness_.server().drop_database(other);
}

TEST_F(PostgresStoreTest, MigrationsAreRecordedOnceAndANewerSchemaIsRefused) {
  for (int i = 0; i < 2; ++i) ASSERT_OK(value_of(open())->migrate());
  const std::string latest = std::to_string(PostgresStore::latest_schema_version());
  EXPECT_EQ(harness_.server().psql("SELECT count(*), max(version) FROM schema_migrations",
                                   harness_.database()),
            latest + "|" + latest + "\n");
  harness_.server().psql("INSERT INTO schema_migrations VALUES (99, 'from the future', 0)",
                         harness_.database());
  auto store = open();
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, ErrorCode::failed_precondition);
  EXPECT_TRUE(contains(store.error().message, "schema version 99")) << store.error().message;
}

// Several workers starting at once on an empty database: one migrates, the others wait for it.
TEST_F(PostgresStoreTest, ProcessesMigratingAtOnceAllOpenOnOneSchema) {
  constexpr int kOpeners = 4;
  std::vector<std::string> errors(kOpeners);
  std::vector<std::thread> threads;
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] {
      auto store = PostgresStore::open(harness_.url());
      if (!store.ok()) errors[i] = store.error().message;
    });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& error : errors) EXPECT_EQ(error, "");
  EXPECT_EQ(harness_.server().psql("SELECT count(*) FROM schema_migrations", harness_.database()),
            std::to_string(PostgresStore::latest_schema_version()) + "\n");
}

// --- Failures ---

// The commit blocks on a row another session holds, so it is mid-transaction (its first insert
// done) when the test ends its session from a second connection.
TEST_F(PostgresStoreTest, ALostConnectionMidTransactionIsUnavailableAndLosesNothingCommitted) {
  auto store = value_of(open("?pool_size=2"));
  const int64_t version = value_of(store->put_workflow_version("", "wf", "id: wf", "wf.yaml")).id;
  Commit first;
  first.insert_runs = {make_run("run-1", version)};
  ASSERT_OK(store->commit(first));

  pqxx::connection holder(harness_.url());
  pqxx::work hold(holder);
  hold.exec("SELECT 1 FROM runs WHERE id = 'run-1' FOR UPDATE");

  Status outcome;
  std::thread committer([&] {
    Commit commit;
    commit.insert_runs = {make_run("run-2", version)};
    RunRecord update = make_run("run-1", version);
    update.state = RunState::running;
    commit.update_run = update;
    outcome = store->commit(commit);
  });
  ASSERT_TRUE(wait_for_count(harness_.url(), lock_waiters_query(), 1))
      << "the commit never blocked";
  pqxx::connection killer(harness_.url());
  pqxx::nontransaction kill(killer);
  const auto killed = kill.exec(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
      " AND wait_event_type = 'Lock'");
  EXPECT_EQ(killed.size(), 1u);
  committer.join();
  hold.abort();

  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.error().code, ErrorCode::unavailable) << outcome.error().message;
  // Nothing of the lost transaction, everything committed before it.
  EXPECT_EQ(store->get_run("run-2").error().code, ErrorCode::not_found);
  EXPECT_EQ(value_of(store->get_run("run-1")).state, RunState::queued);

  // The pool opened a new connection for the one it lost; and when the server ends every
  // session the pool holds (a restart, an idle timeout), reads and writes still go through.
  Commit after;
  after.insert_runs = {make_run("run-3", version)};
  ASSERT_OK(store->commit(after));
  kill.exec(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
      " AND pid <> pg_backend_pid()");
  EXPECT_EQ(value_of(store->get_run("run-3")).id, "run-3");
  kill.exec(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
      " AND pid <> pg_backend_pid()");
  Commit last;
  last.insert_runs = {make_run("run-4", version)};
  ASSERT_OK(store->commit(last));
  RunFilter filter;
  EXPECT_EQ(value_of(store->count_runs(filter)), 3);
}

TEST_F(PostgresStoreTest, AServerThatIsGoneMakesCallsUnavailable) {
  auto store = value_of(open("?pool_size=1"));
  // From another database: a database cannot refuse connections while one is connected to it.
  pqxx::connection killer(harness_.server().url());
  pqxx::nontransaction kill(killer);
  // Refuse new sessions on the store's database, then end the one the store has.
  kill.exec("ALTER DATABASE " + harness_.database() + " ALLOW_CONNECTIONS false");
  kill.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" +
            harness_.database() + "'");
  auto run = store->get_run("x");
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.error().code, ErrorCode::unavailable) << run.error().message;
  EXPECT_TRUE(run.error().retryable);
  kill.exec("ALTER DATABASE " + harness_.database() + " ALLOW_CONNECTIONS true");
  EXPECT_EQ(store->get_run("x").error().code, ErrorCode::not_found);
}

// What the server's SQLSTATEs become, from real errors of a real server.
TEST_F(PostgresStoreTest, SqlStatesMapToErrorCodes) {
  pqxx::connection connection(harness_.url());
  {
    pqxx::work setup(connection);
    setup.exec(
        "CREATE TABLE parent (id int PRIMARY KEY);"
        "CREATE TABLE child (id int REFERENCES parent (id), n int NOT NULL CHECK (n > 0));"
        "INSERT INTO parent VALUES (1)");
    setup.commit();
  }
  auto code_of = [&](const std::string& sql) {
    pqxx::work tx(connection);
    try {
      tx.exec(sql);
    } catch (const std::exception& e) {
      return postgres::make_pg_error(e, "testing");
    }
    return make_error(ErrorCode::internal, "no error from " + sql);
  };
  EXPECT_EQ(code_of("INSERT INTO parent VALUES (1)").code, ErrorCode::already_exists);
  EXPECT_EQ(code_of("INSERT INTO child VALUES (2, 1)").code, ErrorCode::failed_precondition);
  EXPECT_EQ(code_of("INSERT INTO child VALUES (1, NULL)").code, ErrorCode::invalid_argument);
  EXPECT_EQ(code_of("INSERT INTO child VALUES (1, 0)").code, ErrorCode::invalid_argument);
  EXPECT_EQ(code_of("SELECT 1 / 0").code, ErrorCode::invalid_argument);
  auto serialization = code_of("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001'; END $$");
  EXPECT_EQ(serialization.code, ErrorCode::aborted);
  EXPECT_TRUE(serialization.retryable);
  EXPECT_EQ(code_of("SET LOCAL statement_timeout = 10; SELECT pg_sleep(1)").code,
            ErrorCode::deadline_exceeded);
  auto unique = code_of("INSERT INTO parent VALUES (1)");
  EXPECT_EQ(unique.details.value("sqlstate", ""), "23505");
  EXPECT_TRUE(contains(unique.message, "testing: ")) << unique.message;
}

TEST_F(PostgresStoreTest, ConstraintViolationsThroughTheStore) {
  auto store = value_of(open());
  const int64_t version = value_of(store->put_workflow_version("", "wf", "id: wf", "wf.yaml")).id;
  Commit insert;
  insert.insert_runs = {make_run("run-1", version)};
  ASSERT_OK(store->commit(insert));
  EXPECT_EQ(store->commit(insert).error().code, ErrorCode::already_exists);
  Commit orphan;
  orphan.steps = {make_step("no-such-run", "a", StepState::ready)};
  EXPECT_EQ(store->commit(orphan).error().code, ErrorCode::failed_precondition);
  Commit unknown_version;
  unknown_version.insert_runs = {make_run("run-2", version + 1000)};
  EXPECT_EQ(store->commit(unknown_version).error().code, ErrorCode::failed_precondition);
  // The audit log refuses changes in the schema itself, not only in the store's code.
  ASSERT_TRUE(store->append_audit(AuditRecord{}).ok());
  EXPECT_THROW(
      harness_.server().psql("UPDATE audit_log SET actor = 'someone else'", harness_.database()),
      std::runtime_error);
  EXPECT_THROW(harness_.server().psql("DELETE FROM audit_log", harness_.database()),
               std::runtime_error);
}

// libpq would cut a text parameter at a NUL byte; the store refuses it instead, writing nothing.
TEST_F(PostgresStoreTest, ATextWithANulByteIsRefusedNotCutShort) {
  auto store = value_of(open());
  auto stored = store->put_workflow_version("", "wf", std::string("id: a\0b", 7), "wf.yaml");
  ASSERT_FALSE(stored.ok());
  EXPECT_EQ(stored.error().code, ErrorCode::invalid_argument);
  EXPECT_TRUE(value_of(store->list_workflow_versions("", "wf")).empty());
  // In JSON it is escaped, so it round-trips.
  const int64_t version = value_of(store->put_workflow_version("", "wf", "id: wf", "wf.yaml")).id;
  RunRecord run = make_run("run-nul", version);
  run.inputs = {{"text", std::string("a\0b", 3)}};
  Commit commit;
  commit.insert_runs = {run};
  ASSERT_OK(store->commit(commit));
  EXPECT_EQ(value_of(store->get_run("run-nul")).inputs, run.inputs);
}

// The store's commit takes row x, then waits for row y, which the test holds; the test then
// asks for x: a deadlock. The store's session finds it first (its deadlock_timeout is the
// shorter), so PostgreSQL aborts the store's transaction with 40P01, and the store runs it
// again, which succeeds once the test lets go. The test's own statement must not be the one
// aborted, or the store would not have been put to the test.
TEST_F(PostgresStoreTest, ADeadlockIsRetriedInsideTheStore) {
  harness_.server().psql("ALTER DATABASE " + harness_.database() + " SET deadlock_timeout = '1s'");
  auto store = value_of(open());
  const int64_t version = value_of(store->put_workflow_version("", "wf", "id: wf", "wf.yaml")).id;
  Commit setup;
  setup.insert_runs = {make_run("run-1", version)};
  setup.steps = {make_step("run-1", "x", StepState::ready),
                 make_step("run-1", "y", StepState::ready)};
  ASSERT_OK(store->commit(setup));

  pqxx::connection other(harness_.url());
  pqxx::work hold(other);
  hold.exec("SET LOCAL deadlock_timeout = '60s'");
  hold.exec("SELECT 1 FROM steps WHERE run_id = 'run-1' AND step_id = 'y' FOR UPDATE");

  Status outcome;
  std::thread committer([&] {
    Commit commit;
    commit.steps = {make_step("run-1", "x", StepState::succeeded),
                    make_step("run-1", "y", StepState::succeeded)};
    outcome = store->commit(commit);
  });
  ASSERT_TRUE(wait_for_count(harness_.url(), lock_waiters_query(), 1))
      << "the commit never blocked";
  bool test_was_aborted = false;
  try {
    hold.exec("SELECT 1 FROM steps WHERE run_id = 'run-1' AND step_id = 'x' FOR UPDATE");
    hold.commit();
  } catch (const pqxx::sql_error& e) {
    test_was_aborted = true;
    ADD_FAILURE() << "the test's session was the deadlock's victim: " << e.what();
  }
  committer.join();
  ASSERT_FALSE(test_was_aborted);
  ASSERT_TRUE(outcome.ok()) << outcome.error().message;
  for (const auto& step : value_of(store->get_steps("run-1"))) {
    EXPECT_EQ(step.state, StepState::succeeded) << step.step_id;
  }
  EXPECT_TRUE(wait_for_count(harness_.url(),
                             "SELECT deadlocks FROM pg_stat_database"
                             " WHERE datname = current_database()",
                             1))
      << "PostgreSQL counted no deadlock";
}

ApprovalRecord make_approval(int64_t revision, const std::string& title) {
  ApprovalRecord approval;
  approval.id = "ap_01";
  approval.workspace_id = "acme";
  approval.run_id = "run-1";
  approval.step_id = "review";
  approval.status = "pending";
  approval.title = title;
  approval.submitter = "user:ann";
  approval.state = {{"revision", revision}};
  approval.revision = revision;
  approval.created_at = approval.updated_at = at(kT0);
  return approval;
}

// Two deciders on one approval at the same moment, many times over: exactly one write lands,
// the other is `aborted` (re-read and decide again), and the stored approval is the winner's.
TEST_F(PostgresStoreTest, ConcurrentCompareAndSetOnOneApprovalExactlyOneWins) {
  auto store = value_of(open());
  ApprovalWrite create;
  create.approval = make_approval(1, "first");
  create.awaiting = {{"user:bob", "legal"}};
  ASSERT_OK(store->write_approval(create));
  constexpr int kRounds = 40;
  for (int round = 0; round < kRounds; ++round) {
    const int64_t current = round + 1;
    std::atomic<int> ready{0};
    std::array<Status, 2> outcomes;
    auto decide = [&](int which) {
      ApprovalWrite write;
      write.approval = make_approval(
          current + 1, "round " + std::to_string(round) + " by " + std::to_string(which));
      write.expected_revision = current;
      write.awaiting = {{which == 0 ? "user:carl" : "user:dana", "brand"}};
      ready.fetch_add(1);
      while (ready.load() < 2) std::this_thread::yield();
      outcomes[which] = store->write_approval(write);
    };
    std::thread a(decide, 0), b(decide, 1);
    a.join();
    b.join();
    ASSERT_NE(outcomes[0].ok(), outcomes[1].ok()) << "round " << round;
    const int winner = outcomes[0].ok() ? 0 : 1;
    const Status& loser = outcomes[1 - winner];
    EXPECT_EQ(loser.error().code, ErrorCode::aborted) << loser.error().message;
    EXPECT_EQ(loser.error().details.value("revision", int64_t{0}), current + 1);
    auto stored = value_of(store->get_approval("acme", "ap_01"));
    EXPECT_EQ(stored.revision, current + 1);
    EXPECT_EQ(stored.title, "round " + std::to_string(round) + " by " + std::to_string(winner));
    // Only the winner's assignment is left.
    ApprovalFilter filter;
    filter.workspace_id = "acme";
    filter.awaiting = {winner == 0 ? "user:carl" : "user:dana"};
    EXPECT_EQ(value_of(store->list_approvals(filter)).size(), 1u);
    filter.awaiting = {winner == 0 ? "user:dana" : "user:carl"};
    EXPECT_TRUE(value_of(store->list_approvals(filter)).empty());
  }
}

}  // namespace
}  // namespace herald::store::testing
