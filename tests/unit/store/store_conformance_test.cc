// The store conformance suite (see store_conformance.h): what every Store must do, tested through
// the interface only.
#include "tests/unit/store/store_conformance.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <set>
#include <thread>
#include <vector>

namespace herald::store::testing {

namespace {

using std::chrono::milliseconds;

// Fixed times with a millisecond part, so precision loss would show.
TimePoint at(int64_t millis) {
  return TimePoint(milliseconds(millis));
}
constexpr int64_t kT0 = 1'700'000'000'123;

Json time_json(const std::optional<TimePoint>& time) {
  if (!time) return nullptr;
  return std::chrono::duration_cast<milliseconds>(time->time_since_epoch()).count();
}

// Records as JSON, so a mismatch prints every field side by side.
Json to_json(const WorkflowVersion& v) {
  return {{"id", v.id},
          {"workflow_id", v.workflow_id},
          {"version", v.version},
          {"source", v.source},
          {"file_name", v.file_name},
          {"source_hash", v.source_hash},
          {"created_at", time_json(v.created_at)}};
}

Json to_json(const RunRecord& r) {
  return {{"id", r.id},
          {"workflow_id", r.workflow_id},
          {"workflow_version_id", r.workflow_version_id},
          {"state", to_string(r.state)},
          {"inputs", r.inputs},
          {"trigger", r.trigger},
          {"error", r.error},
          {"vars", r.vars},
          {"created_at", time_json(r.created_at)},
          {"started_at", time_json(r.started_at)},
          {"finished_at", time_json(r.finished_at)},
          {"updated_at", time_json(r.updated_at)}};
}

Json to_json(const StepRecord& s) {
  return {{"run_id", s.run_id},
          {"step_id", s.step_id},
          {"item", s.item},
          {"on_error", s.on_error},
          {"state", to_string(s.state)},
          {"attempt", s.attempt},
          {"input", s.input},
          {"output", s.output},
          {"error", s.error},
          {"idempotency_key", s.idempotency_key},
          {"started_at", time_json(s.started_at)},
          {"finished_at", time_json(s.finished_at)}};
}

Json to_json(const AttemptRecord& a) {
  return {{"run_id", a.run_id},
          {"step_id", a.step_id},
          {"item", a.item},
          {"attempt", a.attempt},
          {"state", to_string(a.state)},
          {"input", a.input},
          {"output", a.output},
          {"error", a.error},
          {"started_at", time_json(a.started_at)},
          {"finished_at", time_json(a.finished_at)}};
}

Json to_json(const TimerRecord& t) {
  return {{"id", t.id},     {"run_id", t.run_id}, {"step_id", t.step_id},
          {"item", t.item}, {"kind", t.kind},     {"due_at", time_json(t.due_at)}};
}

template <typename T>
Json to_json(const std::vector<T>& records) {
  Json list = Json::array();
  for (const auto& r : records) list.push_back(to_json(r));
  return list;
}

template <typename T>
T value_of(Result<T> result) {
  EXPECT_TRUE(result.ok()) << result.error().message;
  if (!result.ok()) throw std::runtime_error(result.error().message);
  return std::move(result).value();
}

#define ASSERT_OK(expr)                                                    \
  do {                                                                     \
    auto _status = (expr);                                                 \
    ASSERT_TRUE(_status.ok()) << #expr << ": " << _status.error().message; \
  } while (false)

StepRecord make_step(const std::string& run_id, const std::string& step_id, int item = -1) {
  StepRecord step;
  step.run_id = run_id;
  step.step_id = step_id;
  step.item = item;
  step.state = StepState::running;
  step.attempt = 1;
  step.input = {{"url", "https://example.test"}, {"n", 1}};
  step.idempotency_key = run_id + "/" + step_id + "/" + std::to_string(item);
  step.started_at = at(kT0 + 10);
  return step;
}

AttemptRecord make_attempt(const std::string& run_id, const std::string& step_id, int attempt,
                           int item = -1) {
  AttemptRecord record;
  record.run_id = run_id;
  record.step_id = step_id;
  record.item = item;
  record.attempt = attempt;
  record.state = StepState::running;
  record.input = {{"n", attempt}};
  record.started_at = at(kT0 + 100 * attempt);
  return record;
}

TimerRecord make_timer(const std::string& run_id, const std::string& step_id, int64_t due,
                       std::string kind = "wait") {
  TimerRecord timer;
  timer.run_id = run_id;
  timer.step_id = step_id;
  timer.kind = std::move(kind);
  timer.due_at = at(due);
  return timer;
}

}  // namespace

// --- Fixture ---

TempDir::TempDir() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "herald-store-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::permissions(path_, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::add, ec);
  std::filesystem::remove_all(path_, ec);
}

void StoreConformance::SetUp() {
  harness_ = GetParam().make();
  auto opened = harness_->open();
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  store_ = std::move(*opened);
}

void StoreConformance::TearDown() {
  store_.reset();
  harness_.reset();
}

void StoreConformance::reopen() {
  store_.reset();
  auto opened = harness_->open();
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  store_ = std::move(*opened);
}

int64_t StoreConformance::version_id(const std::string& workflow_id) {
  return value_of(store().put_workflow_version(workflow_id, "id: " + workflow_id, "wf.yaml")).id;
}

RunRecord StoreConformance::insert_run(const std::string& id, const std::string& workflow_id,
                                       RunState state) {
  RunRecord run;
  run.id = id;
  run.workflow_id = workflow_id;
  run.workflow_version_id = version_id(workflow_id);
  run.state = state;
  run.inputs = {{"topic", "spring"}};
  run.trigger = {{"kind", "manual"}};
  run.created_at = at(kT0);
  run.updated_at = at(kT0);
  Commit commit;
  commit.insert_run = run;
  auto status = store().commit(commit);
  EXPECT_TRUE(status.ok()) << status.error().message;
  return run;
}

// --- Workflow versions ---

TEST_P(StoreConformance, PutWorkflowVersionHashesAndNumbersPerWorkflow) {
  auto before = Clock::now() - milliseconds(1);
  auto v1 = value_of(store().put_workflow_version("launch", "abc", "launch.yaml"));
  EXPECT_GT(v1.id, 0);
  EXPECT_EQ(v1.workflow_id, "launch");
  EXPECT_EQ(v1.version, 1);
  EXPECT_EQ(v1.source, "abc");
  EXPECT_EQ(v1.file_name, "launch.yaml");
  // SHA-256("abc"), FIPS 180-2 test vector.
  EXPECT_EQ(v1.source_hash, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_GE(v1.created_at, before);
  EXPECT_LE(v1.created_at, Clock::now());

  // The same source again is the same version, whatever the file is called now.
  auto again = value_of(store().put_workflow_version("launch", "abc", "renamed.yaml"));
  EXPECT_EQ(to_json(again), to_json(v1));

  auto v2 = value_of(store().put_workflow_version("launch", "abc\n", "launch.yaml"));
  EXPECT_EQ(v2.version, 2);
  EXPECT_NE(v2.id, v1.id);

  // Numbering is per workflow; the same source under another id is a new version 1.
  auto other = value_of(store().put_workflow_version("other", "abc", "other.yaml"));
  EXPECT_EQ(other.version, 1);
  EXPECT_NE(other.id, v1.id);

  // Going back to an older source finds the older version rather than making a third.
  auto back = value_of(store().put_workflow_version("launch", "abc", "launch.yaml"));
  EXPECT_EQ(back.id, v1.id);

  EXPECT_EQ(to_json(value_of(store().get_workflow_version(v2.id))), to_json(v2));
  EXPECT_EQ(to_json(value_of(store().get_workflow_version(v1.id))), to_json(v1));
}

TEST_P(StoreConformance, GetWorkflowVersionMissingIsNotFound) {
  auto missing = store().get_workflow_version(424242);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::not_found);
}

TEST_P(StoreConformance, WorkflowSourceKeepsEveryByte) {
  std::string source =
      "id: x\nname: \"é ü — 日本\"\n\ttabs\r\nand 'quotes' ; DROP TABLE runs; --\n";
  auto stored = value_of(store().put_workflow_version("x", source, "dir/x.yaml"));
  EXPECT_EQ(value_of(store().get_workflow_version(stored.id)).source, source);
}

// --- Runs ---

TEST_P(StoreConformance, RunRoundTripsEveryField) {
  RunRecord run;
  run.id = new_run_id();
  run.workflow_id = "wf";
  run.workflow_version_id = version_id();
  run.state = RunState::failed;
  run.inputs = {{"n", 3},
                {"pi", 3.141592653589793},
                {"list", {1, "two", nullptr, false}},
                {"nested", {{"empty", Json::object()}, {"emoji", "🚀"}}}};
  run.trigger = {{"kind", "webhook"}, {"body", "line\nbreak \"quoted\""}};
  run.error = make_error(ErrorCode::unavailable, "503 from api", true).to_json();
  run.vars = {{"hashtag", "#Acme"}, {"limits", {{"x", 280}}}};
  run.created_at = at(kT0);
  run.started_at = at(kT0 + 1);
  run.finished_at = at(kT0 + 999);
  run.updated_at = at(kT0 + 1000);
  Commit commit;
  commit.insert_run = run;
  ASSERT_OK(store().commit(commit));
  EXPECT_EQ(to_json(value_of(store().get_run(run.id))), to_json(run));
}

TEST_P(StoreConformance, RunKeepsJsonNullApartFromEmptyObject) {
  RunRecord run;
  run.id = "run-null";
  run.workflow_id = "wf";
  run.workflow_version_id = version_id();
  run.inputs = nullptr;
  run.trigger = Json::object();
  run.error = nullptr;
  run.created_at = run.updated_at = at(kT0);
  Commit commit;
  commit.insert_run = run;
  ASSERT_OK(store().commit(commit));
  auto stored = value_of(store().get_run(run.id));
  EXPECT_TRUE(stored.inputs.is_null());
  EXPECT_TRUE(stored.trigger.is_object());
  EXPECT_TRUE(stored.trigger.empty());
  EXPECT_TRUE(stored.error.is_null());
  EXPECT_TRUE(stored.vars.is_null());
  EXPECT_FALSE(stored.started_at.has_value());
  EXPECT_FALSE(stored.finished_at.has_value());

  // Scalars and arrays at the top level survive too (a JSON string "null" is not null).
  run.id = "run-scalars";
  run.inputs = "null";
  run.trigger = Json::array({1, 2});
  run.error = 0;
  commit.insert_run = run;
  ASSERT_OK(store().commit(commit));
  EXPECT_EQ(to_json(value_of(store().get_run(run.id))), to_json(run));
}

TEST_P(StoreConformance, TimesKeepMillisecondsAndDropFinerParts) {
  RunRecord run;
  run.id = "run-times";
  run.workflow_id = "wf";
  run.workflow_version_id = version_id();
  run.created_at = at(kT0) + std::chrono::microseconds(999);
  run.started_at = at(kT0 + 7) + std::chrono::nanoseconds(1);
  run.updated_at = at(kT0);
  Commit commit;
  commit.insert_run = run;
  ASSERT_OK(store().commit(commit));
  auto stored = value_of(store().get_run(run.id));
  EXPECT_EQ(stored.created_at, at(kT0));
  EXPECT_EQ(stored.started_at, at(kT0 + 7));
  // Real clock readings survive to the millisecond.
  auto now = std::chrono::floor<milliseconds>(Clock::now());
  run.id = "run-now";
  run.created_at = now;
  commit.insert_run = run;
  ASSERT_OK(store().commit(commit));
  EXPECT_EQ(value_of(store().get_run("run-now")).created_at, now);
}

TEST_P(StoreConformance, GetRunMissingIsNotFound) {
  auto missing = store().get_run("no-such-run");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::not_found);
}

TEST_P(StoreConformance, InsertingAnExistingRunIsAlreadyExistsAndWritesNothing) {
  auto run = insert_run("run-1");
  Commit again;
  again.insert_run = run;
  again.insert_run->state = RunState::failed;
  again.steps.push_back(make_step("run-1", "a"));
  again.add_timers.push_back(make_timer("run-1", "a", kT0));
  auto status = store().commit(again);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::already_exists);
  EXPECT_NE(status.error().message.find("run-1"), std::string::npos) << status.error().message;
  EXPECT_EQ(value_of(store().get_run("run-1")).state, RunState::queued);
  EXPECT_TRUE(value_of(store().get_steps("run-1")).empty());
  EXPECT_TRUE(value_of(store().timers_of_run("run-1")).empty());
}

TEST_P(StoreConformance, RunOfUnknownWorkflowVersionIsRefused) {
  RunRecord run;
  run.id = "run-orphan";
  run.workflow_id = "wf";
  run.workflow_version_id = 987654;
  Commit commit;
  commit.insert_run = run;
  auto status = store().commit(commit);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::failed_precondition);
  EXPECT_FALSE(store().get_run("run-orphan").ok());
}

TEST_P(StoreConformance, UpdateRunChangesOnlyItsFields) {
  auto run = insert_run("run-1");
  RunRecord update = run;
  update.state = RunState::failed;
  update.error = {{"code", "internal"}, {"message", "boom"}};
  update.started_at = at(kT0 + 5);
  update.finished_at = at(kT0 + 50);
  update.updated_at = at(kT0 + 50);
  // Not part of an update: these must stay as inserted.
  update.workflow_id = "changed";
  update.inputs = {{"changed", true}};
  update.trigger = nullptr;
  update.created_at = at(1);
  Commit commit;
  commit.update_run = update;
  ASSERT_OK(store().commit(commit));

  RunRecord expected = run;
  expected.state = update.state;
  expected.error = update.error;
  expected.started_at = update.started_at;
  expected.finished_at = update.finished_at;
  expected.updated_at = update.updated_at;
  EXPECT_EQ(to_json(value_of(store().get_run("run-1"))), to_json(expected));

  // An update writes all five fields, so it can also clear them.
  update = expected;
  update.state = RunState::running;
  update.error = nullptr;
  update.finished_at.reset();
  commit.update_run = update;
  ASSERT_OK(store().commit(commit));
  auto stored = value_of(store().get_run("run-1"));
  EXPECT_EQ(stored.state, RunState::running);
  EXPECT_TRUE(stored.error.is_null());
  EXPECT_FALSE(stored.finished_at.has_value());
  EXPECT_EQ(stored.started_at, at(kT0 + 5));
}

TEST_P(StoreConformance, InsertAndUpdateInOneCommit) {
  RunRecord run;
  run.id = "run-both";
  run.workflow_id = "wf";
  run.workflow_version_id = version_id();
  run.created_at = run.updated_at = at(kT0);
  Commit commit;
  commit.insert_run = run;
  commit.update_run = run;
  commit.update_run->state = RunState::running;
  commit.update_run->started_at = at(kT0 + 1);
  ASSERT_OK(store().commit(commit));
  auto stored = value_of(store().get_run("run-both"));
  EXPECT_EQ(stored.state, RunState::running);
  EXPECT_EQ(stored.started_at, at(kT0 + 1));
}

TEST_P(StoreConformance, UpdatingAMissingRunIsNotFoundAndWritesNothing) {
  insert_run("run-1");
  auto step = make_step("run-1", "a");
  Commit commit;
  commit.steps.push_back(step);
  ASSERT_OK(store().commit(commit));

  RunRecord missing;
  missing.id = "run-missing";
  missing.state = RunState::running;
  Commit failing;
  failing.update_run = missing;
  auto changed = step;
  changed.state = StepState::succeeded;
  failing.steps.push_back(changed);
  failing.steps.push_back(make_step("run-1", "b"));
  failing.attempts.push_back(make_attempt("run-1", "a", 1));
  failing.add_timers.push_back(make_timer("run-1", "a", kT0));
  auto status = store().commit(failing);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::not_found);
  EXPECT_NE(status.error().message.find("run-missing"), std::string::npos);

  EXPECT_EQ(to_json(value_of(store().get_steps("run-1"))), to_json(std::vector{step}));
  EXPECT_TRUE(value_of(store().get_attempts("run-1")).empty());
  EXPECT_TRUE(value_of(store().timers_of_run("run-1")).empty());
  EXPECT_FALSE(store().get_run("run-missing").ok());
}

TEST_P(StoreConformance, ACommitThatFailsHalfwayWritesNothing) {
  insert_run("run-1");
  // The new run, its steps and a timer are written before the bad attempt is reached.
  RunRecord run;
  run.id = "run-2";
  run.workflow_id = "wf";
  run.workflow_version_id = version_id();
  run.created_at = run.updated_at = at(kT0);
  Commit commit;
  commit.insert_run = run;
  commit.steps.push_back(make_step("run-2", "a"));
  commit.steps.push_back(make_step("run-1", "a"));
  commit.attempts.push_back(make_attempt("run-2", "a", 1));
  commit.attempts.push_back(make_attempt("no-such-run", "a", 1));
  commit.add_timers.push_back(make_timer("run-2", "a", kT0));
  auto status = store().commit(commit);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::failed_precondition);
  EXPECT_NE(status.error().message.find("no-such-run"), std::string::npos)
      << status.error().message;

  EXPECT_EQ(store().get_run("run-2").error().code, ErrorCode::not_found);
  EXPECT_TRUE(value_of(store().get_steps("run-2")).empty());
  EXPECT_TRUE(value_of(store().get_steps("run-1")).empty());
  EXPECT_TRUE(value_of(store().get_attempts("run-2")).empty());
  EXPECT_FALSE(value_of(store().next_timer_due()).has_value());

  // And the store is usable afterwards: the same commit without the bad attempt goes through.
  commit.attempts.pop_back();
  ASSERT_OK(store().commit(commit));
  EXPECT_EQ(value_of(store().get_steps("run-2")).size(), 1u);
}

TEST_P(StoreConformance, StepsAttemptsAndTimersOfAnUnknownRunAreRefused) {
  for (int which = 0; which < 3; ++which) {
    Commit commit;
    if (which == 0) commit.steps.push_back(make_step("ghost", "a"));
    if (which == 1) commit.attempts.push_back(make_attempt("ghost", "a", 1));
    if (which == 2) commit.add_timers.push_back(make_timer("ghost", "a", kT0));
    auto status = store().commit(commit);
    ASSERT_FALSE(status.ok()) << which;
    EXPECT_EQ(status.error().code, ErrorCode::failed_precondition) << which;
    EXPECT_NE(status.error().message.find("ghost"), std::string::npos) << status.error().message;
  }
}

TEST_P(StoreConformance, EmptyCommitIsFine) {
  ASSERT_OK(store().commit(Commit{}));
}

// --- Steps and attempts ---

TEST_P(StoreConformance, StepsRoundTripAndUpsertByKey) {
  insert_run("run-1");
  insert_run("run-2");
  StepRecord whole = make_step("run-1", "fetch");
  StepRecord item0 = make_step("run-1", "fetch", 0);
  item0.input = Json::object();
  item0.output = nullptr;
  StepRecord item1 = make_step("run-1", "fetch", 1);
  item1.state = StepState::succeeded;
  item1.output = {{"status", 200}, {"body", {{"ok", true}}}};
  item1.finished_at = at(kT0 + 20);
  StepRecord handler = make_step("run-1", "notify");
  handler.on_error = true;
  handler.state = StepState::pending;
  handler.attempt = 0;
  handler.input = nullptr;
  handler.started_at.reset();
  StepRecord other_run = make_step("run-2", "fetch");
  Commit commit;
  commit.steps = {whole, item0, item1, handler, other_run};
  ASSERT_OK(store().commit(commit));

  // Ordered by step id, then item.
  EXPECT_EQ(to_json(value_of(store().get_steps("run-1"))),
            to_json(std::vector{whole, item0, item1, handler}));

  // Upsert: the same key updates every field in place; no new row.
  whole.state = StepState::failed;
  whole.attempt = 3;
  whole.input = {{"url", "https://example.test/2"}};
  whole.output = nullptr;
  whole.error = {{"code", "unavailable"}, {"message", "503"}};
  whole.idempotency_key = "changed-key";
  whole.on_error = true;
  whole.started_at.reset();
  whole.finished_at = at(kT0 + 99);
  Commit update;
  update.steps = {whole};
  ASSERT_OK(store().commit(update));
  EXPECT_EQ(to_json(value_of(store().get_steps("run-1"))),
            to_json(std::vector{whole, item0, item1, handler}));
  EXPECT_EQ(to_json(value_of(store().get_steps("run-2"))), to_json(std::vector{other_run}));
  EXPECT_TRUE(value_of(store().get_steps("no-such-run")).empty());
}

TEST_P(StoreConformance, AttemptsRoundTripUpsertAndComeInTimelineOrder) {
  insert_run("run-1");
  AttemptRecord first = make_attempt("run-1", "fetch", 1);
  AttemptRecord second = make_attempt("run-1", "fetch", 2);
  AttemptRecord element = make_attempt("run-1", "each", 1, 4);
  element.started_at = at(kT0 + 150);  // between the two attempts of fetch
  first.state = StepState::failed;
  first.error = {{"code", "unavailable"}, {"retryable", true}};
  first.finished_at = at(kT0 + 120);
  second.input = nullptr;
  second.output = Json::object();
  Commit commit;
  commit.steps = {make_step("run-1", "fetch")};
  commit.attempts = {second, element, first};
  ASSERT_OK(store().commit(commit));
  EXPECT_EQ(to_json(value_of(store().get_attempts("run-1"))),
            to_json(std::vector{first, element, second}));

  second.state = StepState::succeeded;
  second.output = {{"status", 200}};
  second.finished_at = at(kT0 + 260);
  Commit update;
  update.attempts = {second};
  ASSERT_OK(store().commit(update));
  EXPECT_EQ(to_json(value_of(store().get_attempts("run-1"))),
            to_json(std::vector{first, element, second}));
  EXPECT_TRUE(value_of(store().get_attempts("no-such-run")).empty());
}

// --- Timers ---

TEST_P(StoreConformance, TimersComeDueInOrder) {
  insert_run("run-1");
  insert_run("run-2");
  EXPECT_FALSE(value_of(store().next_timer_due()).has_value());
  EXPECT_TRUE(value_of(store().due_timers(at(kT0 + 1'000'000), 10)).empty());

  Commit commit;
  commit.add_timers = {
      make_timer("run-1", "late", kT0 + 300), make_timer("run-1", "early", kT0 + 100, "retry"),
      make_timer("run-2", "tie-a", kT0 + 200), make_timer("run-2", "tie-b", kT0 + 200)};
  commit.add_timers[3].item = 2;
  ASSERT_OK(store().commit(commit));

  auto all = value_of(store().due_timers(at(kT0 + 300), 100));
  ASSERT_EQ(all.size(), 4u);
  std::set<int64_t> ids;
  for (const auto& timer : all) {
    EXPECT_GT(timer.id, 0);
    ids.insert(timer.id);
  }
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_EQ(all[0].step_id, "early");
  EXPECT_EQ(all[0].kind, "retry");
  EXPECT_EQ(all[0].due_at, at(kT0 + 100));
  EXPECT_EQ(all[1].step_id, "tie-a");  // same due time: by id, the order they were added
  EXPECT_EQ(all[2].step_id, "tie-b");
  EXPECT_EQ(all[2].item, 2);
  EXPECT_EQ(all[2].run_id, "run-2");
  EXPECT_LT(all[1].id, all[2].id);
  EXPECT_EQ(all[3].step_id, "late");

  // Due means at or before `now`.
  EXPECT_EQ(value_of(store().due_timers(at(kT0 + 99), 10)).size(), 0u);
  EXPECT_EQ(value_of(store().due_timers(at(kT0 + 100), 10)).size(), 1u);
  EXPECT_EQ(value_of(store().due_timers(at(kT0 + 299), 10)).size(), 3u);
  auto limited = value_of(store().due_timers(at(kT0 + 300), 2));
  EXPECT_EQ(to_json(limited), to_json(std::vector{all[0], all[1]}));
  EXPECT_TRUE(value_of(store().due_timers(at(kT0 + 300), 0)).empty());

  EXPECT_EQ(value_of(store().next_timer_due()), at(kT0 + 100));
  EXPECT_EQ(to_json(value_of(store().timers_of_run("run-1"))),
            to_json(std::vector{all[0], all[3]}));
  EXPECT_EQ(to_json(value_of(store().timers_of_run("run-2"))),
            to_json(std::vector{all[1], all[2]}));
  EXPECT_TRUE(value_of(store().timers_of_run("no-such-run")).empty());
}

TEST_P(StoreConformance, TimersAreDeletedByIdAndByRun) {
  insert_run("run-1");
  insert_run("run-2");
  Commit add;
  add.add_timers = {make_timer("run-1", "a", kT0 + 1), make_timer("run-1", "b", kT0 + 2),
                    make_timer("run-2", "c", kT0 + 3)};
  ASSERT_OK(store().commit(add));
  auto timers = value_of(store().due_timers(at(kT0 + 10), 10));
  ASSERT_EQ(timers.size(), 3u);

  Commit remove;
  remove.delete_timers = {timers[0].id, 999'999};  // an unknown id is not an error
  ASSERT_OK(store().commit(remove));
  EXPECT_EQ(value_of(store().next_timer_due()), at(kT0 + 2));

  // By run, and in the same commit a new timer for that run: deletions come first.
  Commit replace;
  replace.delete_timers_of_runs = {"run-1"};
  replace.add_timers = {make_timer("run-1", "d", kT0 + 4)};
  ASSERT_OK(store().commit(replace));
  auto left = value_of(store().timers_of_run("run-1"));
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].step_id, "d");
  EXPECT_EQ(value_of(store().timers_of_run("run-2")).size(), 1u);

  Commit clear;
  clear.delete_timers_of_runs = {"run-1", "run-2"};
  ASSERT_OK(store().commit(clear));
  EXPECT_FALSE(value_of(store().next_timer_due()).has_value());

  // Ids are not handed out again after deletion.
  ASSERT_OK(store().commit(add));
  for (const auto& timer : value_of(store().due_timers(at(kT0 + 10), 10))) {
    EXPECT_GT(timer.id, left[0].id);
  }
}

// --- Listing ---

TEST_P(StoreConformance, ListRunsNewestFirstWithFiltersAndCursor) {
  std::vector<std::string> ids;
  const RunState states[] = {RunState::queued, RunState::running, RunState::succeeded};
  for (int i = 0; i < 12; ++i) {
    std::string id = new_run_id();
    ids.push_back(id);
    insert_run(id, i % 2 == 0 ? "even" : "odd", states[i % 3]);
  }
  auto ids_of = [](const std::vector<RunRecord>& runs) {
    std::vector<std::string> result;
    for (const auto& run : runs) result.push_back(run.id);
    return result;
  };
  std::vector<std::string> newest_first(ids.rbegin(), ids.rend());

  RunFilter all;
  all.limit = 100;
  auto listed = value_of(store().list_runs(all));
  EXPECT_EQ(ids_of(listed), newest_first);
  EXPECT_EQ(listed.front().inputs, Json({{"topic", "spring"}}));  // full records

  RunFilter even = all;
  even.workflow_id = "even";
  std::vector<std::string> expected;
  for (int i = 11; i >= 0; --i) {
    if (i % 2 == 0) expected.push_back(ids[i]);
  }
  EXPECT_EQ(ids_of(value_of(store().list_runs(even))), expected);

  RunFilter running = all;
  running.state = RunState::running;
  expected.clear();
  for (int i = 11; i >= 0; --i) {
    if (i % 3 == 1) expected.push_back(ids[i]);
  }
  EXPECT_EQ(ids_of(value_of(store().list_runs(running))), expected);

  RunFilter both = running;
  both.workflow_id = "odd";
  expected.clear();
  for (int i = 11; i >= 0; --i) {
    if (i % 3 == 1 && i % 2 == 1) expected.push_back(ids[i]);
  }
  EXPECT_EQ(ids_of(value_of(store().list_runs(both))), expected);

  RunFilter none = all;
  none.workflow_id = "no-such-workflow";
  EXPECT_TRUE(value_of(store().list_runs(none)).empty());

  // Paging with the cursor visits every run once, newest first.
  std::vector<std::string> paged;
  RunFilter page;
  page.limit = 5;
  while (true) {
    auto runs = value_of(store().list_runs(page));
    if (runs.empty()) break;
    EXPECT_LE(runs.size(), 5u);
    for (const auto& run : runs) paged.push_back(run.id);
    page.before_id = runs.back().id;
  }
  EXPECT_EQ(paged, newest_first);

  // The cursor combines with the filters.
  RunFilter even_page = even;
  even_page.before_id = ids[6];
  EXPECT_EQ(ids_of(value_of(store().list_runs(even_page))),
            (std::vector<std::string>{ids[4], ids[2], ids[0]}));
  RunFilter all_filters = both;
  all_filters.before_id = ids[7];
  EXPECT_EQ(ids_of(value_of(store().list_runs(all_filters))), (std::vector<std::string>{ids[1]}));
}

TEST_P(StoreConformance, ListRunsClampsTheLimit) {
  for (int i = 0; i < 3; ++i) insert_run(new_run_id());
  RunFilter filter;
  filter.limit = 0;
  EXPECT_EQ(value_of(store().list_runs(filter)).size(), 1u);
  filter.limit = -5;
  EXPECT_EQ(value_of(store().list_runs(filter)).size(), 1u);
  filter.limit = 2;
  EXPECT_EQ(value_of(store().list_runs(filter)).size(), 2u);
}

TEST_P(StoreConformance, ListRunsReturnsAtMostAThousand) {
  auto version = version_id();
  RunRecord run;
  run.workflow_id = "wf";
  run.workflow_version_id = version;
  for (int i = 0; i < 1005; ++i) {
    run.id = new_run_id();
    Commit commit;
    commit.insert_run = run;
    ASSERT_OK(store().commit(commit));
  }
  RunFilter filter;
  filter.limit = 1'000'000;
  EXPECT_EQ(value_of(store().list_runs(filter)).size(), 1000u);
}

TEST_P(StoreConformance, UnfinishedRunsAreQueuedAndRunningOnly) {
  std::vector<std::string> expected;
  for (RunState state :
       {RunState::queued, RunState::running, RunState::waiting, RunState::succeeded,
        RunState::failed, RunState::cancelled, RunState::running, RunState::queued}) {
    std::string id = new_run_id();
    insert_run(id, "wf", state);
    if (state == RunState::queued || state == RunState::running) expected.push_back(id);
  }
  EXPECT_EQ(value_of(store().unfinished_run_ids()), expected);

  // A run that finishes drops out.
  auto run = value_of(store().get_run(expected[0]));
  run.state = RunState::succeeded;
  Commit commit;
  commit.update_run = run;
  ASSERT_OK(store().commit(commit));
  expected.erase(expected.begin());
  EXPECT_EQ(value_of(store().unfinished_run_ids()), expected);
}

// --- Durability and concurrency ---

TEST_P(StoreConformance, MigrateTwiceChangesNothing) {
  insert_run("run-1");
  ASSERT_OK(store().migrate());
  ASSERT_OK(store().migrate());
  EXPECT_EQ(value_of(store().get_run("run-1")).inputs, Json({{"topic", "spring"}}));
}

TEST_P(StoreConformance, ReopeningKeepsEverything) {
  if (!harness().persistent()) GTEST_SKIP() << "this store does not outlive its handle";
  auto version = value_of(store().put_workflow_version("wf", "id: wf", "wf.yaml"));
  auto run = insert_run("run-1");
  Commit commit;
  commit.steps = {make_step("run-1", "a"), make_step("run-1", "b", 0)};
  commit.attempts = {make_attempt("run-1", "a", 1)};
  commit.add_timers = {make_timer("run-1", "b", kT0 + 5)};
  ASSERT_OK(store().commit(commit));
  auto timers = value_of(store().timers_of_run("run-1"));

  reopen();
  reopen();  // twice: a second open applies no migration again and loses nothing
  EXPECT_EQ(to_json(value_of(store().get_workflow_version(version.id))), to_json(version));
  EXPECT_EQ(to_json(value_of(store().get_run("run-1"))), to_json(run));
  EXPECT_EQ(to_json(value_of(store().get_steps("run-1"))), to_json(commit.steps));
  EXPECT_EQ(to_json(value_of(store().get_attempts("run-1"))), to_json(commit.attempts));
  EXPECT_EQ(to_json(value_of(store().timers_of_run("run-1"))), to_json(timers));
  EXPECT_EQ(value_of(store().unfinished_run_ids()), std::vector<std::string>{"run-1"});
  // Versions keep numbering after a reopen.
  EXPECT_EQ(value_of(store().put_workflow_version("wf", "id: wf\n# v2", "wf.yaml")).version, 2);
}

TEST_P(StoreConformance, ConcurrentCommitsAndReadsFromEightThreads) {
  constexpr int kThreads = 8;
  constexpr int kRunsPerThread = 25;
  constexpr int kSteps = 4;
  const int64_t version = version_id();
  std::atomic<int> failures{0};
  std::atomic<bool> writing{true};
  std::vector<std::string> first_error(kThreads);

  auto writer = [&](int thread) {
    for (int r = 0; r < kRunsPerThread; ++r) {
      RunRecord run;
      run.id = new_run_id();
      run.workflow_id = "t" + std::to_string(thread);
      run.workflow_version_id = version;
      run.created_at = run.updated_at = Clock::now();
      Commit insert;
      insert.insert_run = run;
      auto fail = [&](const Status& status) {
        if (status.ok()) return false;
        if (failures++ == 0) first_error[thread] = status.error().message;
        return true;
      };
      if (fail(store().commit(insert))) return;
      for (int s = 0; s < kSteps; ++s) {
        Commit start;
        start.steps = {make_step(run.id, "s" + std::to_string(s))};
        start.attempts = {make_attempt(run.id, "s" + std::to_string(s), 1)};
        run.state = RunState::running;
        start.update_run = run;
        if (fail(store().commit(start))) return;
        Commit finish = start;
        finish.steps[0].state = StepState::succeeded;
        finish.steps[0].output = {{"s", s}, {"thread", thread}};
        finish.attempts[0].state = StepState::succeeded;
        if (s + 1 == kSteps) finish.update_run->state = RunState::succeeded;
        if (fail(store().commit(finish))) return;
      }
    }
  };
  auto reader = [&] {
    while (writing) {
      RunFilter filter;
      filter.limit = 20;
      auto runs = store().list_runs(filter);
      if (!runs.ok()) {
        ++failures;
        return;
      }
      for (const auto& run : *runs) {
        if (!store().get_steps(run.id).ok() || !store().get_attempts(run.id).ok()) ++failures;
      }
      if (!store().unfinished_run_ids().ok()) ++failures;
    }
  };

  std::vector<std::thread> threads;
  std::thread reader1(reader), reader2(reader);
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(writer, t);
  for (auto& thread : threads) thread.join();
  writing = false;
  reader1.join();
  reader2.join();

  EXPECT_EQ(failures.load(), 0) << [&] {
    for (const auto& message : first_error) {
      if (!message.empty()) return message;
    }
    return std::string();
  }();
  RunFilter filter;
  filter.limit = 1000;
  auto runs = value_of(store().list_runs(filter));
  EXPECT_EQ(runs.size(), size_t{kThreads * kRunsPerThread});
  for (const auto& run : runs) {
    EXPECT_EQ(run.state, RunState::succeeded) << run.id;
    auto steps = value_of(store().get_steps(run.id));
    ASSERT_EQ(steps.size(), size_t{kSteps});
    for (const auto& step : steps) EXPECT_EQ(step.state, StepState::succeeded);
  }
  EXPECT_TRUE(value_of(store().unfinished_run_ids()).empty());
}

// Commits that fail among concurrent ones that succeed: each caller gets its own outcome, and a
// failed Commit leaves nothing behind, whether or not the store wrote it together with others.
TEST_P(StoreConformance, ConcurrentFailuresStayWithTheirOwnCommit) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 150;
  for (int t = 0; t < kThreads; ++t) insert_run("run-" + std::to_string(t));
  std::atomic<int> wrong{0};
  std::vector<std::string> first_error(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string run_id = "run-" + std::to_string(t);
      for (int round = 0; round < kRounds; ++round) {
        const std::string step_id = "s" + std::to_string(round);
        Commit commit;
        commit.steps = {make_step(run_id, step_id)};
        commit.add_timers = {make_timer(run_id, step_id, kT0 + round)};
        const bool should_fail = round % 3 == 1;
        if (should_fail) {
          // Written first, then undone when the missing run is reached.
          RunRecord missing;
          missing.id = "missing-" + std::to_string(t);
          commit.update_run = missing;
        }
        auto status = store().commit(commit);
        const bool ok =
            should_fail ? !status.ok() && status.error().code == ErrorCode::not_found : status.ok();
        if (!ok && wrong++ == 0) {
          first_error[t] = status.ok() ? "a failing commit succeeded" : status.error().message;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0) << [&] {
    for (const auto& message : first_error) {
      if (!message.empty()) return message;
    }
    return std::string();
  }();
  for (int t = 0; t < kThreads; ++t) {
    const std::string run_id = "run-" + std::to_string(t);
    auto steps = value_of(store().get_steps(run_id));
    auto timers = value_of(store().timers_of_run(run_id));
    std::set<std::string> stored;
    for (const auto& step : steps) stored.insert(step.step_id);
    for (int round = 0; round < kRounds; ++round) {
      const bool kept = round % 3 != 1;
      EXPECT_EQ(stored.count("s" + std::to_string(round)), kept ? 1u : 0u)
          << run_id << " " << round;
    }
    EXPECT_EQ(steps.size(), timers.size());
  }
}

}  // namespace herald::store::testing
