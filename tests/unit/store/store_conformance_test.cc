// The store conformance suite (see store_conformance.h): what every Store must do, tested through
// the interface only.
#include "tests/unit/store/store_conformance.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace herald::store::testing {

namespace {

using std::chrono::milliseconds;


Json time_json(const std::optional<TimePoint>& time) {
  if (!time) return nullptr;
  return std::chrono::duration_cast<milliseconds>(time->time_since_epoch()).count();
}

// Records as JSON, so a mismatch prints every field side by side.
Json to_json(const WorkflowVersion& v) {
  return {{"id", v.id},
          {"workspace_id", v.workspace_id},
          {"workflow_id", v.workflow_id},
          {"version", v.version},
          {"source", v.source},
          {"file_name", v.file_name},
          {"source_hash", v.source_hash},
          {"created_at", time_json(v.created_at)}};
}

Json to_json(const RunRecord& r) {
  return {{"id", r.id},
          {"workspace_id", r.workspace_id},
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
          {"logs", a.logs},
          {"started_at", time_json(a.started_at)},
          {"finished_at", time_json(a.finished_at)}};
}

Json to_json(const TimerRecord& t) {
  return {{"id", t.id},     {"run_id", t.run_id}, {"step_id", t.step_id},
          {"item", t.item}, {"kind", t.kind},     {"due_at", time_json(t.due_at)}};
}

Json to_json(const EventRecord& e) {
  return {{"id", e.id},
          {"workspace_id", e.workspace_id},
          {"name", e.name},
          {"payload", e.payload},
          {"source", e.source},
          {"created_at", time_json(e.created_at)},
          {"consumed_at", time_json(e.consumed_at)}};
}

Json to_json(const ScheduleMark& m) {
  return {{"workspace_id", m.workspace_id},
          {"workflow_id", m.workflow_id},
          {"trigger_index", m.trigger_index},
          {"last_fire", time_json(m.last_fire)}};
}

Json to_json(const DeployedWorkflow& d) {
  return {{"workspace_id", d.workspace_id},
          {"workflow_id", d.workflow_id},
          {"version_id", d.version_id},
          {"version", d.version},
          {"enabled", d.enabled},
          {"updated_by", d.updated_by},
          {"created_at", time_json(d.created_at)},
          {"updated_at", time_json(d.updated_at)}};
}

Json to_json(const Workspace& w) {
  return {{"id", w.id}, {"name", w.name}, {"created_at", time_json(w.created_at)}};
}

Json to_json(const User& u) {
  return {
      {"id", u.id}, {"name", u.name}, {"email", u.email}, {"created_at", time_json(u.created_at)}};
}

Json to_json(const Membership& m) {
  return {{"workspace_id", m.workspace_id},
          {"user_id", m.user_id},
          {"role", m.role},
          {"created_at", time_json(m.created_at)}};
}

Json to_json(const TokenRecord& t) {
  return {{"id", t.id},
          {"workspace_id", t.workspace_id},
          {"user_id", t.user_id},
          {"role", t.role},
          {"name", t.name},
          {"hash", t.hash},
          {"created_at", time_json(t.created_at)},
          {"expires_at", time_json(t.expires_at)},
          {"revoked_at", time_json(t.revoked_at)},
          {"last_used_at", time_json(t.last_used_at)}};
}

Json to_json(const SecretRecord& s) {
  return {{"workspace_id", s.workspace_id},
          {"name", s.name},
          {"ciphertext", s.ciphertext},
          {"updated_by", s.updated_by},
          {"created_at", time_json(s.created_at)},
          {"updated_at", time_json(s.updated_at)}};
}

Json to_json(const AuditRecord& a) {
  return {{"id", a.id},           {"workspace_id", a.workspace_id}, {"actor", a.actor},
          {"action", a.action},   {"object_type", a.object_type},   {"object_id", a.object_id},
          {"address", a.address}, {"request_id", a.request_id},     {"details", a.details},
          {"at", time_json(a.at)}};
}

template <typename T>
Json to_json(const std::vector<T>& records) {
  Json list = Json::array();
  for (const auto& r : records) list.push_back(to_json(r));
  return list;
}

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
  if (attempt % 2 == 0) {
    record.logs = Json::array({{{"at", "2023-11-14T22:13:20.123Z"}, {"level", "info"},
                                {"message", "attempt " + std::to_string(attempt)}}});
  }
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

EventRecord make_event(const std::string& workspace_id, const std::string& name,
                       int64_t created = kT0) {
  EventRecord event;
  event.workspace_id = workspace_id;
  event.name = name;
  event.payload = {{"name", name}, {"n", created - kT0}, {"nested", {{"ok", true}}}};
  event.source = "cli";
  event.created_at = at(created);
  return event;
}

ScheduleMark make_mark(const std::string& workspace_id, const std::string& workflow_id,
                       int trigger_index, int64_t last_fire) {
  ScheduleMark mark;
  mark.workspace_id = workspace_id;
  mark.workflow_id = workflow_id;
  mark.trigger_index = trigger_index;
  mark.last_fire = at(last_fire);
  return mark;
}

TokenRecord make_token(const std::string& id, const std::string& workspace_id,
                       const std::string& user_id, const std::string& role = "editor") {
  TokenRecord token;
  token.id = id;
  token.workspace_id = workspace_id;
  token.user_id = user_id;
  token.role = role;
  token.name = "token " + id;
  token.hash = "hash-of-" + id;
  token.created_at = at(kT0);
  return token;
}

SecretRecord make_secret(const std::string& workspace_id, const std::string& name,
                         const std::string& ciphertext, int64_t when = kT0) {
  SecretRecord secret;
  secret.workspace_id = workspace_id;
  secret.name = name;
  secret.ciphertext = ciphertext;
  secret.updated_by = "user:alice";
  secret.created_at = secret.updated_at = at(when);
  return secret;
}

std::vector<int64_t> ids_of(const std::vector<EventRecord>& events) {
  std::vector<int64_t> ids;
  for (const auto& event : events) ids.push_back(event.id);
  return ids;
}

std::vector<std::string> workflow_ids_of(const std::vector<DeployedWorkflow>& deployed) {
  std::vector<std::string> ids;
  for (const auto& d : deployed) ids.push_back(d.workspace_id + "/" + d.workflow_id);
  return ids;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
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

int64_t StoreConformance::version_id(const std::string& workflow_id,
                                     const std::string& workspace_id) {
  return value_of(store().put_workflow_version(workspace_id, workflow_id, "id: " + workflow_id,
                                               "wf.yaml"))
      .id;
}

RunRecord StoreConformance::insert_run(const std::string& id, const std::string& workflow_id,
                                       RunState state, const std::string& workspace_id) {
  RunRecord run;
  run.id = id;
  run.workspace_id = workspace_id;
  run.workflow_id = workflow_id;
  run.workflow_version_id = version_id(workflow_id, workspace_id);
  run.state = state;
  run.inputs = {{"topic", "spring"}};
  run.trigger = {{"kind", "manual"}};
  run.created_at = at(kT0);
  run.updated_at = at(kT0);
  Commit commit;
  commit.insert_runs = {run};
  auto status = store().commit(commit);
  EXPECT_TRUE(status.ok()) << status.error().message;
  return run;
}

// --- Workflow versions ---

TEST_P(StoreConformance, PutWorkflowVersionHashesAndNumbersPerWorkflow) {
  auto before = Clock::now() - milliseconds(1);
  auto v1 = value_of(store().put_workflow_version("", "launch", "abc", "launch.yaml"));
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
  auto again = value_of(store().put_workflow_version("", "launch", "abc", "renamed.yaml"));
  EXPECT_EQ(to_json(again), to_json(v1));

  auto v2 = value_of(store().put_workflow_version("", "launch", "abc\n", "launch.yaml"));
  EXPECT_EQ(v2.version, 2);
  EXPECT_NE(v2.id, v1.id);

  // Numbering is per workflow; the same source under another id is a new version 1.
  auto other = value_of(store().put_workflow_version("", "other", "abc", "other.yaml"));
  EXPECT_EQ(other.version, 1);
  EXPECT_NE(other.id, v1.id);

  // Going back to an older source finds the older version rather than making a third.
  auto back = value_of(store().put_workflow_version("", "launch", "abc", "launch.yaml"));
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
  auto stored = value_of(store().put_workflow_version("", "x", source, "dir/x.yaml"));
  EXPECT_EQ(value_of(store().get_workflow_version(stored.id)).source, source);
}

// --- Runs ---

TEST_P(StoreConformance, RunRoundTripsEveryField) {
  RunRecord run;
  run.id = new_run_id();
  run.workspace_id = "acme";
  run.workflow_id = "wf";
  run.workflow_version_id = version_id("wf", "acme");
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
  commit.insert_runs = {run};
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
  commit.insert_runs = {run};
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
  commit.insert_runs = {run};
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
  commit.insert_runs = {run};
  ASSERT_OK(store().commit(commit));
  auto stored = value_of(store().get_run(run.id));
  EXPECT_EQ(stored.created_at, at(kT0));
  EXPECT_EQ(stored.started_at, at(kT0 + 7));
  // Real clock readings survive to the millisecond.
  auto now = std::chrono::floor<milliseconds>(Clock::now());
  run.id = "run-now";
  run.created_at = now;
  commit.insert_runs = {run};
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
  again.insert_runs = {run};
  again.insert_runs[0].state = RunState::failed;
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
  commit.insert_runs = {run};
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
  commit.insert_runs = {run};
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
  commit.insert_runs = {run};
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
    commit.insert_runs = {run};
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
  auto version = value_of(store().put_workflow_version("", "wf", "id: wf", "wf.yaml"));
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
  EXPECT_EQ(value_of(store().put_workflow_version("", "wf", "id: wf\n# v2", "wf.yaml")).version, 2);
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
      insert.insert_runs = {run};
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

// --- Several runs in one Commit ---

TEST_P(StoreConformance, InsertRunsWritesEveryRunOrNone) {
  const int64_t version = version_id();
  std::vector<RunRecord> runs;
  for (const char* id : {"run-a", "run-b", "run-c"}) {
    RunRecord run;
    run.id = id;
    run.workflow_id = "wf";
    run.workflow_version_id = version;
    run.created_at = run.updated_at = at(kT0);
    runs.push_back(run);
  }
  Commit commit;
  commit.insert_runs = runs;
  ASSERT_OK(store().commit(commit));
  for (const auto& run : runs) EXPECT_EQ(to_json(value_of(store().get_run(run.id))), to_json(run));

  // One run that exists already fails them all.
  RunRecord fresh = runs[0];
  fresh.id = "run-d";
  Commit again;
  again.insert_runs = {fresh, runs[1]};
  EXPECT_CODE(store().commit(again), ErrorCode::already_exists);
  EXPECT_CODE(store().get_run("run-d"), ErrorCode::not_found);
}

// --- Workspaces of runs and versions ---

TEST_P(StoreConformance, WorkflowVersionsAreNumberedPerWorkspace) {
  auto a1 = value_of(store().put_workflow_version("acme", "launch", "abc", "launch.yaml"));
  EXPECT_EQ(a1.workspace_id, "acme");
  EXPECT_EQ(a1.version, 1);
  // The same workflow id and source in another workspace is a version of its own.
  auto b1 = value_of(store().put_workflow_version("globex", "launch", "abc", "launch.yaml"));
  EXPECT_EQ(b1.workspace_id, "globex");
  EXPECT_EQ(b1.version, 1);
  EXPECT_NE(b1.id, a1.id);
  auto cli = value_of(store().put_workflow_version("", "launch", "abc", "launch.yaml"));
  EXPECT_EQ(cli.workspace_id, "");
  EXPECT_NE(cli.id, a1.id);
  EXPECT_NE(cli.id, b1.id);
  // Dedup stays within the workspace; numbering too.
  EXPECT_EQ(value_of(store().put_workflow_version("acme", "launch", "abc", "x.yaml")).id, a1.id);
  auto a2 = value_of(store().put_workflow_version("acme", "launch", "abc2", "launch.yaml"));
  EXPECT_EQ(a2.version, 2);
  EXPECT_EQ(value_of(store().put_workflow_version("globex", "launch", "abc2", "l.yaml")).version,
            2);
  EXPECT_EQ(to_json(value_of(store().get_workflow_version(a2.id))), to_json(a2));
  EXPECT_EQ(to_json(value_of(store().list_workflow_versions("acme", "launch"))),
            to_json(std::vector{a2, a1}));
  EXPECT_TRUE(value_of(store().list_workflow_versions("acme", "other")).empty());
  EXPECT_TRUE(value_of(store().list_workflow_versions("initech", "launch")).empty());
}

TEST_P(StoreConformance, ListRunsByWorkspace) {
  // Interleaved, so each workspace's runs are not a contiguous range of ids.
  std::vector<std::string> acme, globex, cli, acme_launch;
  for (int i = 0; i < 9; ++i) {
    std::string id = new_run_id();
    const char* workflow = i % 2 == 0 ? "launch" : "digest";
    if (i % 3 == 0) {
      insert_run(id, workflow, RunState::queued, "acme");
      acme.insert(acme.begin(), id);
      if (i % 2 == 0) acme_launch.insert(acme_launch.begin(), id);
    } else if (i % 3 == 1) {
      insert_run(id, workflow, RunState::running, "globex");
      globex.insert(globex.begin(), id);
    } else {
      insert_run(id, workflow, RunState::queued, "");
      cli.insert(cli.begin(), id);
    }
  }
  auto ids = [&](const RunFilter& filter) {
    std::vector<std::string> result;
    for (const auto& run : value_of(store().list_runs(filter))) result.push_back(run.id);
    return result;
  };
  RunFilter filter;
  filter.limit = 100;
  EXPECT_EQ(ids(filter).size(), 9u);  // nullopt: every workspace
  filter.workspace_id = "acme";
  EXPECT_EQ(ids(filter), acme);
  for (const auto& run : value_of(store().list_runs(filter))) EXPECT_EQ(run.workspace_id, "acme");
  filter.workspace_id = "globex";
  EXPECT_EQ(ids(filter), globex);
  filter.workspace_id = "";  // the runs of `herald run` only
  EXPECT_EQ(ids(filter), cli);
  filter.workspace_id = "initech";
  EXPECT_TRUE(ids(filter).empty());

  // With the other filters and the cursor.
  filter.workspace_id = "acme";
  filter.workflow_id = "launch";
  EXPECT_EQ(ids(filter), acme_launch);
  filter.state = RunState::running;
  EXPECT_TRUE(ids(filter).empty());
  filter.workspace_id = "globex";
  filter.workflow_id.reset();
  EXPECT_EQ(ids(filter), globex);
  RunFilter page;
  page.workspace_id = "acme";
  page.limit = 2;
  std::vector<std::string> paged;
  while (true) {
    auto runs = value_of(store().list_runs(page));
    if (runs.empty()) break;
    for (const auto& run : runs) paged.push_back(run.id);
    page.before_id = runs.back().id;
  }
  EXPECT_EQ(paged, acme);
}

// --- Events ---

TEST_P(StoreConformance, EventsGetIncreasingIdsAndComeOutOldestFirst) {
  EXPECT_TRUE(value_of(store().pending_events(10)).empty());
  Commit first;
  first.add_events = {make_event("acme", "run.succeeded", kT0 + 5),
                      make_event("globex", "order.paid", kT0 + 1)};
  first.add_events[1].source = "api:tok1";
  first.add_events[1].payload = Json::object();
  ASSERT_OK(store().commit(first));
  Commit second;
  second.add_events = {make_event("", "run.failed", kT0)};
  second.add_events[0].payload = {{"list", {1, "two", nullptr}}, {"emoji", "🚀"}};
  ASSERT_OK(store().commit(second));

  auto pending = value_of(store().pending_events(10));
  ASSERT_EQ(pending.size(), 3u);
  // Oldest first means by id (the order they were added), whatever their created_at says.
  EXPECT_GT(pending[0].id, 0);
  EXPECT_LT(pending[0].id, pending[1].id);
  EXPECT_LT(pending[1].id, pending[2].id);
  std::vector<EventRecord> expected = {first.add_events[0], first.add_events[1],
                                       second.add_events[0]};
  for (size_t i = 0; i < expected.size(); ++i) expected[i].id = pending[i].id;
  EXPECT_EQ(to_json(pending), to_json(expected));

  EXPECT_EQ(ids_of(value_of(store().pending_events(2))),
            (std::vector<int64_t>{pending[0].id, pending[1].id}));
  EXPECT_TRUE(value_of(store().pending_events(0)).empty());
  EXPECT_TRUE(value_of(store().pending_events(-1)).empty());
}

TEST_P(StoreConformance, ConsumedEventsAreNoLongerPending) {
  Commit add;
  add.add_events = {make_event("acme", "a"), make_event("acme", "b"), make_event("acme", "c")};
  ASSERT_OK(store().commit(add));
  auto pending = value_of(store().pending_events(10));
  ASSERT_EQ(pending.size(), 3u);

  // The dispatcher's Commit: the runs an event starts, and the event consumed, together.
  RunRecord run;
  run.id = "run-from-b";
  run.workspace_id = "acme";
  run.workflow_id = "wf";
  run.workflow_version_id = version_id("wf", "acme");
  run.trigger = {{"event", pending[1].id}};
  Commit dispatch;
  dispatch.insert_runs = {run};
  dispatch.consume_events = {pending[1].id};
  ASSERT_OK(store().commit(dispatch));
  EXPECT_EQ(ids_of(value_of(store().pending_events(10))),
            (std::vector<int64_t>{pending[0].id, pending[2].id}));
  EXPECT_EQ(value_of(store().get_run("run-from-b")).trigger, run.trigger);

  Commit both;
  both.consume_events = {pending[0].id, pending[2].id};
  ASSERT_OK(store().commit(both));
  EXPECT_TRUE(value_of(store().pending_events(10)).empty());

  // New events still come after the consumed ones.
  ASSERT_OK(store().commit(add));
  auto later = value_of(store().pending_events(10));
  ASSERT_EQ(later.size(), 3u);
  EXPECT_GT(later[0].id, pending[2].id);
}

TEST_P(StoreConformance, ConsumingAConsumedEventFailsTheWholeCommit) {
  insert_run("run-1");
  Commit add;
  add.add_events = {make_event("acme", "a"), make_event("acme", "b")};
  ASSERT_OK(store().commit(add));
  auto pending = value_of(store().pending_events(10));
  ASSERT_EQ(pending.size(), 2u);
  Commit first;
  first.consume_events = {pending[0].id};
  ASSERT_OK(store().commit(first));

  // Everything else in this Commit comes before the consumed event, and must be undone.
  RunRecord run;
  run.id = "run-2";
  run.workflow_id = "wf";
  run.workflow_version_id = version_id();
  Commit late;
  late.insert_runs = {run};
  late.steps = {make_step("run-1", "a")};
  late.attempts = {make_attempt("run-1", "a", 1)};
  late.add_timers = {make_timer("run-1", "a", kT0)};
  late.add_events = {make_event("acme", "caused")};
  late.consume_events = {pending[1].id, pending[0].id};
  late.schedule_marks = {make_mark("acme", "wf", 0, kT0)};
  auto status = store().commit(late);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::failed_precondition) << status.error().message;
  EXPECT_TRUE(contains(status.error().message, std::to_string(pending[0].id)))
      << status.error().message;

  EXPECT_CODE(store().get_run("run-2"), ErrorCode::not_found);
  EXPECT_TRUE(value_of(store().get_steps("run-1")).empty());
  EXPECT_TRUE(value_of(store().get_attempts("run-1")).empty());
  EXPECT_TRUE(value_of(store().timers_of_run("run-1")).empty());
  EXPECT_TRUE(value_of(store().schedule_marks()).empty());
  // The other event was not consumed, and the caused one was not written.
  EXPECT_EQ(to_json(value_of(store().pending_events(10))), to_json(std::vector{pending[1]}));

  // Consuming an event that does not exist fails the same way.
  Commit ghost;
  ghost.insert_runs = {run};
  ghost.consume_events = {pending[1].id + 1000};
  EXPECT_CODE(store().commit(ghost), ErrorCode::failed_precondition);
  EXPECT_CODE(store().get_run("run-2"), ErrorCode::not_found);
  // And the same id twice in one Commit: the second finds it consumed.
  Commit twice;
  twice.consume_events = {pending[1].id, pending[1].id};
  EXPECT_CODE(store().commit(twice), ErrorCode::failed_precondition);
  EXPECT_EQ(value_of(store().pending_events(10)).size(), 1u);
}

TEST_P(StoreConformance, TwoDispatchersConsumingOneEventExactlyOneWins) {
  constexpr int kEvents = 40;
  const int64_t version = version_id("wf", "acme");
  Commit add;
  for (int i = 0; i < kEvents; ++i) add.add_events.push_back(make_event("acme", "e"));
  ASSERT_OK(store().commit(add));
  auto events = value_of(store().pending_events(kEvents));
  ASSERT_EQ(events.size(), size_t{kEvents});

  std::atomic<int> wrong{0};
  std::string first_error;
  std::mutex error_mutex;
  for (const auto& event : events) {
    std::atomic<int> ready{0};
    std::array<Status, 2> outcomes;
    auto dispatcher = [&](int which) {
      RunRecord run;
      run.id = "run-" + std::to_string(event.id) + "-" + std::to_string(which);
      run.workspace_id = "acme";
      run.workflow_id = "wf";
      run.workflow_version_id = version;
      Commit commit;
      commit.insert_runs = {run};
      commit.consume_events = {event.id};
      // Both start together, so they really race.
      ready.fetch_add(1);
      while (ready.load() < 2) std::this_thread::yield();
      outcomes[which] = store().commit(commit);
    };
    std::thread a(dispatcher, 0), b(dispatcher, 1);
    a.join();
    b.join();
    const int won = (outcomes[0].ok() ? 1 : 0) + (outcomes[1].ok() ? 1 : 0);
    const auto& loser = outcomes[0].ok() ? outcomes[1] : outcomes[0];
    const bool lost_right = !loser.ok() && loser.error().code == ErrorCode::failed_precondition;
    if (won != 1 || !lost_right) {
      std::lock_guard lock(error_mutex);
      if (wrong++ == 0) {
        first_error = "event " + std::to_string(event.id) + ": " + std::to_string(won) +
                      " winners; " + (loser.ok() ? "" : loser.error().message);
      }
    }
    // Exactly one of the two runs exists.
    const int stored = (store().get_run("run-" + std::to_string(event.id) + "-0").ok() ? 1 : 0) +
                       (store().get_run("run-" + std::to_string(event.id) + "-1").ok() ? 1 : 0);
    EXPECT_EQ(stored, 1) << event.id;
  }
  EXPECT_EQ(wrong.load(), 0) << first_error;
  EXPECT_TRUE(value_of(store().pending_events(10)).empty());
  RunFilter filter;
  filter.limit = 1000;
  EXPECT_EQ(value_of(store().list_runs(filter)).size(), size_t{kEvents});
}

// --- Schedule marks ---

TEST_P(StoreConformance, ScheduleMarksAreUpsertedByKeyAndListedInKeyOrder) {
  EXPECT_TRUE(value_of(store().schedule_marks()).empty());
  Commit commit;
  commit.schedule_marks = {
      make_mark("globex", "digest", 0, kT0 + 1), make_mark("acme", "launch", 1, kT0 + 2),
      make_mark("acme", "launch", 0, kT0 + 3), make_mark("acme", "digest", 0, kT0 + 4)};
  ASSERT_OK(store().commit(commit));
  const auto& m = commit.schedule_marks;
  EXPECT_EQ(to_json(value_of(store().schedule_marks())),
            to_json(std::vector{m[3], m[2], m[1], m[0]}));

  // The same key again moves its time forward.
  Commit fire;
  fire.schedule_marks = {make_mark("acme", "launch", 0, kT0 + 100)};
  ASSERT_OK(store().commit(fire));
  EXPECT_EQ(to_json(value_of(store().schedule_marks())),
            to_json(std::vector{m[3], fire.schedule_marks[0], m[1], m[0]}));
}

// Two schedulers that compute the same fire both try to record it: only the first Commit is
// stored, runs and all, so the fire starts its runs once.
TEST_P(StoreConformance, AScheduleMarkAtOrBeforeTheStoredOneFailsTheWholeCommit) {
  const int64_t version = version_id("digest", "acme");
  auto fire_commit = [&](const std::string& run_id, int64_t fire) {
    RunRecord run;
    run.id = run_id;
    run.workspace_id = "acme";
    run.workflow_id = "digest";
    run.workflow_version_id = version;
    run.created_at = run.updated_at = at(kT0);
    Commit commit;
    commit.insert_runs = {run};
    commit.schedule_marks = {make_mark("acme", "digest", 0, fire)};
    return commit;
  };
  ASSERT_OK(store().commit(fire_commit("run-a", kT0 + 60'000)));
  for (int64_t fire : {kT0 + 60'000, kT0}) {
    auto second = store().commit(fire_commit("run-b", fire));
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.error().code, ErrorCode::failed_precondition);
    EXPECT_NE(second.error().message.find("already fired"), std::string::npos)
        << second.error().message;
    EXPECT_CODE(store().get_run("run-b"), ErrorCode::not_found);
  }
  auto marks = value_of(store().schedule_marks());
  ASSERT_EQ(marks.size(), 1u);
  EXPECT_EQ(marks[0].last_fire, at(kT0 + 60'000));
  ASSERT_OK(store().commit(fire_commit("run-c", kT0 + 120'000)));
}

// --- Deployments ---

TEST_P(StoreConformance, DeployCreatesAnEnabledDeployment) {
  const auto before = std::chrono::floor<milliseconds>(Clock::now());
  auto deployed = value_of(
      store().deploy_workflow("acme", "launch", "id: launch", "launch.yaml", "user:alice"));
  EXPECT_TRUE(deployed.new_version);
  EXPECT_EQ(deployed.version.workspace_id, "acme");
  EXPECT_EQ(deployed.version.workflow_id, "launch");
  EXPECT_EQ(deployed.version.version, 1);
  EXPECT_EQ(deployed.version.source, "id: launch");
  EXPECT_EQ(deployed.version.file_name, "launch.yaml");
  EXPECT_EQ(deployed.workflow.workspace_id, "acme");
  EXPECT_EQ(deployed.workflow.workflow_id, "launch");
  EXPECT_EQ(deployed.workflow.version_id, deployed.version.id);
  EXPECT_EQ(deployed.workflow.version, 1);
  EXPECT_TRUE(deployed.workflow.enabled);
  EXPECT_EQ(deployed.workflow.updated_by, "user:alice");
  EXPECT_GE(deployed.workflow.created_at, before);
  EXPECT_LE(deployed.workflow.created_at, Clock::now());
  EXPECT_EQ(deployed.workflow.updated_at, deployed.workflow.created_at);

  EXPECT_EQ(to_json(value_of(store().get_deployed("acme", "launch"))), to_json(deployed.workflow));
  EXPECT_EQ(to_json(value_of(store().get_workflow_version(deployed.version.id))),
            to_json(deployed.version));
  EXPECT_EQ(to_json(value_of(store().list_workflow_versions("acme", "launch"))),
            to_json(std::vector{deployed.version}));
  EXPECT_EQ(to_json(value_of(store().all_enabled_deployed())),
            to_json(std::vector{deployed.workflow}));
}

TEST_P(StoreConformance, DeployNumbersVersionsAcrossRedeployDeleteAndRedeploy) {
  auto deploy = [&](const std::string& source) {
    return value_of(store().deploy_workflow("acme", "launch", source, "launch.yaml", "cli"));
  };
  auto v1 = deploy("source A");
  EXPECT_EQ(v1.version.version, 1);
  EXPECT_TRUE(v1.new_version);
  auto v2 = deploy("source B");
  EXPECT_EQ(v2.version.version, 2);
  EXPECT_TRUE(v2.new_version);
  EXPECT_EQ(v2.workflow.version_id, v2.version.id);
  EXPECT_EQ(v2.workflow.created_at, v1.workflow.created_at);

  // The current source again: nothing new.
  auto same = deploy("source B");
  EXPECT_FALSE(same.new_version);
  EXPECT_EQ(same.version.id, v2.version.id);
  EXPECT_EQ(to_json(same.workflow), to_json(value_of(store().get_deployed("acme", "launch"))));

  // An older source: its version becomes current again, under its old number.
  auto back = deploy("source A");
  EXPECT_TRUE(back.new_version);
  EXPECT_EQ(back.version.id, v1.version.id);
  EXPECT_EQ(back.version.version, 1);
  EXPECT_EQ(value_of(store().get_deployed("acme", "launch")).version_id, v1.version.id);
  EXPECT_EQ(value_of(store().get_deployed("acme", "launch")).version, 1);
  EXPECT_EQ(value_of(store().list_workflow_versions("acme", "launch")).size(), 2u);

  // A run on version 2 keeps it through the delete.
  RunRecord run;
  run.id = "run-on-v2";
  run.workspace_id = "acme";
  run.workflow_id = "launch";
  run.workflow_version_id = v2.version.id;
  Commit commit;
  commit.insert_runs = {run};
  ASSERT_OK(store().commit(commit));

  ASSERT_OK(store().delete_deployed("acme", "launch"));
  EXPECT_CODE(store().get_deployed("acme", "launch"), ErrorCode::not_found);
  EXPECT_EQ(value_of(store().list_workflow_versions("acme", "launch")).size(), 2u);
  EXPECT_EQ(value_of(store().get_run("run-on-v2")).workflow_version_id, v2.version.id);
  EXPECT_EQ(value_of(store().get_workflow_version(v2.version.id)).source, "source B");

  // Deployed again with a new source: number 3, never a reused one.
  auto v3 = deploy("source C");
  EXPECT_TRUE(v3.new_version);
  EXPECT_EQ(v3.version.version, 3);
  EXPECT_TRUE(v3.workflow.enabled);
  auto versions = value_of(store().list_workflow_versions("acme", "launch"));
  ASSERT_EQ(versions.size(), 3u);
  EXPECT_EQ(versions[0].version, 3);  // newest first
  EXPECT_EQ(versions[1].version, 2);
  EXPECT_EQ(versions[2].version, 1);

  // Deleted and deployed again with the source it last had: that version, current again.
  ASSERT_OK(store().delete_deployed("acme", "launch"));
  auto again = deploy("source C");
  EXPECT_TRUE(again.new_version);  // there was no current version
  EXPECT_EQ(again.version.id, v3.version.id);
  EXPECT_EQ(value_of(store().get_deployed("acme", "launch")).version, 3);
}

TEST_P(StoreConformance, EnablingAndDisablingADeployment) {
  auto deployed =
      value_of(store().deploy_workflow("acme", "launch", "v1", "launch.yaml", "user:alice"));
  value_of(store().deploy_workflow("acme", "digest", "d1", "digest.yaml", "user:alice"));
  ASSERT_OK(store().set_workflow_enabled("acme", "launch", false, "user:bob"));
  auto disabled = value_of(store().get_deployed("acme", "launch"));
  EXPECT_FALSE(disabled.enabled);
  EXPECT_EQ(disabled.updated_by, "user:bob");
  EXPECT_GE(disabled.updated_at, deployed.workflow.updated_at);
  EXPECT_EQ(disabled.created_at, deployed.workflow.created_at);
  EXPECT_EQ(disabled.version_id, deployed.version.id);
  EXPECT_EQ(workflow_ids_of(value_of(store().all_enabled_deployed())),
            std::vector<std::string>{"acme/digest"});

  // A new version keeps the deployment disabled.
  auto v2 = value_of(store().deploy_workflow("acme", "launch", "v2", "launch.yaml", "user:carol"));
  EXPECT_TRUE(v2.new_version);
  EXPECT_FALSE(v2.workflow.enabled);
  EXPECT_EQ(v2.workflow.updated_by, "user:carol");
  EXPECT_EQ(to_json(value_of(store().get_deployed("acme", "launch"))), to_json(v2.workflow));

  ASSERT_OK(store().set_workflow_enabled("acme", "launch", true, "user:bob"));
  ASSERT_OK(store().set_workflow_enabled("acme", "launch", true, "user:bob"));  // twice is fine
  EXPECT_TRUE(value_of(store().get_deployed("acme", "launch")).enabled);
  EXPECT_EQ(workflow_ids_of(value_of(store().all_enabled_deployed())),
            (std::vector<std::string>{"acme/digest", "acme/launch"}));
}

TEST_P(StoreConformance, MissingDeploymentsAreNotFound) {
  EXPECT_CODE(store().get_deployed("acme", "nope"), ErrorCode::not_found);
  EXPECT_CODE(store().set_workflow_enabled("acme", "nope", false, "cli"), ErrorCode::not_found);
  EXPECT_CODE(store().delete_deployed("acme", "nope"), ErrorCode::not_found);
  value_of(store().deploy_workflow("acme", "launch", "v1", "launch.yaml", "cli"));
  // Another workspace's deployment of the same id is not this one.
  EXPECT_CODE(store().get_deployed("globex", "launch"), ErrorCode::not_found);
  EXPECT_CODE(store().set_workflow_enabled("globex", "launch", false, "cli"), ErrorCode::not_found);
  EXPECT_CODE(store().delete_deployed("globex", "launch"), ErrorCode::not_found);
  ASSERT_OK(store().delete_deployed("acme", "launch"));
  EXPECT_CODE(store().delete_deployed("acme", "launch"), ErrorCode::not_found);
  EXPECT_CODE(store().set_workflow_enabled("acme", "launch", true, "cli"), ErrorCode::not_found);
}

TEST_P(StoreConformance, DeletingADeploymentDropsItsScheduleMarksOnly) {
  value_of(store().deploy_workflow("acme", "launch", "v1", "launch.yaml", "cli"));
  value_of(store().deploy_workflow("acme", "digest", "v1", "digest.yaml", "cli"));
  value_of(store().deploy_workflow("globex", "launch", "v1", "launch.yaml", "cli"));
  Commit commit;
  commit.schedule_marks = {make_mark("acme", "launch", 0, kT0), make_mark("acme", "launch", 1, kT0),
                           make_mark("acme", "digest", 0, kT0),
                           make_mark("globex", "launch", 0, kT0)};
  ASSERT_OK(store().commit(commit));
  ASSERT_OK(store().delete_deployed("acme", "launch"));
  const auto& m = commit.schedule_marks;
  EXPECT_EQ(to_json(value_of(store().schedule_marks())), to_json(std::vector{m[2], m[3]}));
}

TEST_P(StoreConformance, ListDeployedFiltersAndPages) {
  std::vector<std::string> all;
  for (int i = 0; i < 7; ++i) {
    std::string id = "wf-" + std::to_string(6 - i);  // deployed out of order
    value_of(store().deploy_workflow("acme", id, "source " + id, id + ".yaml", "cli"));
    if (i % 3 == 0) ASSERT_OK(store().set_workflow_enabled("acme", id, false, "cli"));
  }
  value_of(store().deploy_workflow("globex", "wf-0", "other", "wf.yaml", "cli"));
  value_of(store().deploy_workflow("globex", "wf-9", "other", "wf.yaml", "cli"));
  auto ids = [&](const WorkflowFilter& filter) {
    std::vector<std::string> result;
    for (const auto& d : value_of(store().list_deployed(filter))) {
      EXPECT_EQ(d.workspace_id, filter.workspace_id);
      result.push_back(d.workflow_id);
    }
    return result;
  };
  WorkflowFilter filter;
  filter.workspace_id = "acme";
  EXPECT_EQ(ids(filter),
            (std::vector<std::string>{"wf-0", "wf-1", "wf-2", "wf-3", "wf-4", "wf-5", "wf-6"}));
  filter.enabled = false;  // i = 0, 3, 6: wf-6, wf-3, wf-0
  EXPECT_EQ(ids(filter), (std::vector<std::string>{"wf-0", "wf-3", "wf-6"}));
  filter.enabled = true;
  EXPECT_EQ(ids(filter), (std::vector<std::string>{"wf-1", "wf-2", "wf-4", "wf-5"}));
  filter.after_id = "wf-2";
  EXPECT_EQ(ids(filter), (std::vector<std::string>{"wf-4", "wf-5"}));
  filter.workspace_id = "globex";
  filter.enabled.reset();
  filter.after_id.reset();
  EXPECT_EQ(ids(filter), (std::vector<std::string>{"wf-0", "wf-9"}));
  filter.workspace_id = "initech";
  EXPECT_TRUE(ids(filter).empty());

  // Paging with the cursor visits each once, in order.
  WorkflowFilter page;
  page.workspace_id = "acme";
  page.limit = 3;
  std::vector<std::string> paged;
  int pages = 0;
  while (true) {
    auto batch = ids(page);
    if (batch.empty()) break;
    ++pages;
    EXPECT_LE(batch.size(), 3u);
    paged.insert(paged.end(), batch.begin(), batch.end());
    page.after_id = batch.back();
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(paged.size(), 7u);
  EXPECT_TRUE(std::is_sorted(paged.begin(), paged.end()));

  // The limit is clamped to 1..1000.
  page.after_id.reset();
  page.limit = 0;
  EXPECT_EQ(ids(page).size(), 1u);
  page.limit = -3;
  EXPECT_EQ(ids(page).size(), 1u);
  page.limit = 1'000'000;
  EXPECT_EQ(ids(page).size(), 7u);

  // Every enabled deployment of every workspace, by workspace and then workflow.
  EXPECT_EQ(workflow_ids_of(value_of(store().all_enabled_deployed())),
            (std::vector<std::string>{"acme/wf-1", "acme/wf-2", "acme/wf-4", "acme/wf-5",
                                      "globex/wf-0", "globex/wf-9"}));
}

// --- Workspaces and users ---

TEST_P(StoreConformance, WorkspacesAreCreatedOnceAndListedById) {
  EXPECT_TRUE(value_of(store().list_workspaces()).empty());
  Workspace acme{"acme", "Acme Coffee", at(kT0)};
  Workspace globex{"globex", "Globex — Ünïcode", at(kT0 + 1)};
  ASSERT_OK(store().create_workspace(globex));
  ASSERT_OK(store().create_workspace(acme));
  EXPECT_EQ(to_json(value_of(store().get_workspace("acme"))), to_json(acme));
  EXPECT_EQ(to_json(value_of(store().list_workspaces())), to_json(std::vector{acme, globex}));

  Workspace again{"acme", "Another name", at(kT0 + 5)};
  auto status = store().create_workspace(again);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::already_exists);
  EXPECT_TRUE(contains(status.error().message, "acme")) << status.error().message;
  EXPECT_EQ(value_of(store().get_workspace("acme")).name, "Acme Coffee");
  EXPECT_CODE(store().get_workspace("initech"), ErrorCode::not_found);
}

TEST_P(StoreConformance, UsersAreCreatedOnce) {
  User alice{"alice", "Alice Liddell", "alice@example.test", at(kT0)};
  User bob{"bob.smith_2", "Bob", "", at(kT0 + 1)};
  ASSERT_OK(store().create_user(alice));
  ASSERT_OK(store().create_user(bob));
  EXPECT_EQ(to_json(value_of(store().get_user("alice"))), to_json(alice));
  EXPECT_EQ(to_json(value_of(store().get_user("bob.smith_2"))), to_json(bob));
  EXPECT_CODE(store().create_user(alice), ErrorCode::already_exists);
  EXPECT_CODE(store().get_user("carol"), ErrorCode::not_found);
}

TEST_P(StoreConformance, IdsMustBeSlugs) {
  const std::vector<std::string> bad = {"",
                                        "Acme",
                                        "-acme",
                                        ".acme",
                                        "_acme",
                                        "ac me",
                                        "acme/x",
                                        "acme\n",
                                        "café",
                                        "a:b",
                                        std::string(64, 'a')};
  ASSERT_OK(store().create_workspace({"acme", "Acme", at(kT0)}));
  ASSERT_OK(store().create_user({"alice", "Alice", "", at(kT0)}));
  for (const auto& id : bad) {
    for (int which = 0; which < 6; ++which) {
      Status status;
      if (which == 0) status = store().create_workspace({id, "x", at(kT0)});
      if (which == 1) status = store().create_user({id, "x", "", at(kT0)});
      if (which == 2) status = store().put_membership({id, "alice", "viewer", at(kT0)});
      if (which == 3) status = store().put_membership({"acme", id, "viewer", at(kT0)});
      if (which == 4) status = store().create_token(make_token("t", id, "alice"));
      if (which == 5) status = store().create_token(make_token("t", "acme", id));
      ASSERT_FALSE(status.ok()) << "'" << id << "' accepted (" << which << ")";
      EXPECT_EQ(status.error().code, ErrorCode::invalid_argument) << id << " " << which;
      if (!id.empty() && id.find('\n') == std::string::npos && id != "café") {
        EXPECT_TRUE(contains(status.error().message, id)) << status.error().message;
      }
    }
  }
  EXPECT_EQ(value_of(store().list_workspaces()).size(), 1u);
  for (const std::string& good :
       std::vector<std::string>{"a", "0", "9-lives", "a.b_c-d", std::string(63, 'z')}) {
    EXPECT_TRUE(store().create_workspace({good, "x", at(kT0)}).ok()) << good;
    EXPECT_TRUE(store().create_user({good, "x", "", at(kT0)}).ok()) << good;
  }
}

// --- Memberships and tokens ---

TEST_P(StoreConformance, MembershipsAddChangeListAndRemove) {
  ASSERT_OK(store().create_workspace({"acme", "Acme", at(kT0)}));
  ASSERT_OK(store().create_workspace({"globex", "Globex", at(kT0)}));
  for (const char* user : {"carol", "alice", "bob"}) {
    ASSERT_OK(store().create_user({user, user, "", at(kT0)}));
  }
  Membership alice{"acme", "alice", "admin", at(kT0 + 1)};
  Membership carol{"acme", "carol", "influencer", at(kT0 + 2)};
  Membership bob{"acme", "bob", "approver", at(kT0 + 3)};
  Membership elsewhere{"globex", "alice", "viewer", at(kT0 + 4)};
  for (const auto& m : {alice, carol, bob, elsewhere}) ASSERT_OK(store().put_membership(m));
  EXPECT_EQ(to_json(value_of(store().get_membership("acme", "alice"))), to_json(alice));
  EXPECT_EQ(to_json(value_of(store().list_memberships("acme"))),
            to_json(std::vector{alice, bob, carol}));
  EXPECT_EQ(to_json(value_of(store().list_memberships("globex"))), to_json(std::vector{elsewhere}));

  // Putting again changes the role and keeps when they joined.
  Membership demoted{"acme", "alice", "editor", at(kT0 + 99)};
  ASSERT_OK(store().put_membership(demoted));
  auto stored = value_of(store().get_membership("acme", "alice"));
  EXPECT_EQ(stored.role, "editor");
  EXPECT_EQ(stored.created_at, alice.created_at);
  EXPECT_EQ(value_of(store().get_membership("globex", "alice")).role, "viewer");

  ASSERT_OK(store().delete_membership("acme", "bob"));
  EXPECT_CODE(store().get_membership("acme", "bob"), ErrorCode::not_found);
  EXPECT_CODE(store().delete_membership("acme", "bob"), ErrorCode::not_found);
  EXPECT_CODE(store().get_membership("globex", "bob"), ErrorCode::not_found);
  EXPECT_EQ(value_of(store().list_memberships("acme")).size(), 2u);
  EXPECT_TRUE(value_of(store().list_memberships("initech")).empty());
}

TEST_P(StoreConformance, MembershipsNeedAKnownRoleWorkspaceAndUser) {
  ASSERT_OK(store().create_workspace({"acme", "Acme", at(kT0)}));
  ASSERT_OK(store().create_user({"alice", "Alice", "", at(kT0)}));
  for (const char* role : {"", "Admin", "owner", "admin ", "viewers"}) {
    auto status = store().put_membership({"acme", "alice", role, at(kT0)});
    ASSERT_FALSE(status.ok()) << role;
    EXPECT_EQ(status.error().code, ErrorCode::invalid_argument) << role;
    EXPECT_TRUE(contains(status.error().message, "role")) << status.error().message;
    EXPECT_CODE(store().create_token(make_token("t", "acme", "alice", role)),
                ErrorCode::invalid_argument);
  }
  for (const char* role : {"admin", "editor", "approver", "viewer", "influencer"}) {
    ASSERT_OK(store().put_membership({"acme", "alice", role, at(kT0)}));
    EXPECT_EQ(value_of(store().get_membership("acme", "alice")).role, role);
  }
  auto no_user = store().put_membership({"acme", "zed", "viewer", at(kT0)});
  ASSERT_FALSE(no_user.ok());
  EXPECT_EQ(no_user.error().code, ErrorCode::not_found);
  EXPECT_TRUE(contains(no_user.error().message, "zed")) << no_user.error().message;
  auto no_workspace = store().put_membership({"initech", "alice", "viewer", at(kT0)});
  ASSERT_FALSE(no_workspace.ok());
  EXPECT_EQ(no_workspace.error().code, ErrorCode::not_found);
  EXPECT_TRUE(contains(no_workspace.error().message, "initech")) << no_workspace.error().message;
  EXPECT_TRUE(value_of(store().list_memberships("initech")).empty());
}

TEST_P(StoreConformance, TokensRoundTripRevokeAndTouch) {
  ASSERT_OK(store().create_workspace({"acme", "Acme", at(kT0)}));
  ASSERT_OK(store().create_workspace({"globex", "Globex", at(kT0)}));
  ASSERT_OK(store().create_user({"alice", "Alice", "", at(kT0)}));
  TokenRecord full = make_token("tok-b", "acme", "alice", "admin");
  full.expires_at = at(kT0 + 86'400'000);
  full.last_used_at = at(kT0 + 7);
  TokenRecord plain = make_token("tok-a", "acme", "alice", "viewer");
  TokenRecord other = make_token("tok-c", "globex", "alice");
  for (const auto& t : {full, plain, other}) ASSERT_OK(store().create_token(t));
  EXPECT_EQ(to_json(value_of(store().get_token("tok-b"))), to_json(full));
  EXPECT_EQ(to_json(value_of(store().get_token("tok-c"))), to_json(other));  // any workspace
  EXPECT_EQ(to_json(value_of(store().list_tokens("acme"))), to_json(std::vector{plain, full}));
  EXPECT_EQ(to_json(value_of(store().list_tokens("globex"))), to_json(std::vector{other}));
  EXPECT_TRUE(value_of(store().list_tokens("initech")).empty());

  EXPECT_CODE(store().create_token(plain), ErrorCode::already_exists);
  EXPECT_CODE(store().create_token(make_token("tok-x", "acme", "zed")), ErrorCode::not_found);
  EXPECT_CODE(store().create_token(make_token("tok-x", "initech", "alice")), ErrorCode::not_found);
  EXPECT_CODE(store().get_token("tok-x"), ErrorCode::not_found);

  // Revoking through another workspace finds nothing and changes nothing.
  EXPECT_CODE(store().revoke_token("globex", "tok-a"), ErrorCode::not_found);
  EXPECT_FALSE(value_of(store().get_token("tok-a")).revoked_at.has_value());
  EXPECT_CODE(store().revoke_token("acme", "tok-x"), ErrorCode::not_found);

  const auto before = std::chrono::floor<milliseconds>(Clock::now());
  ASSERT_OK(store().revoke_token("acme", "tok-a"));
  auto revoked = value_of(store().get_token("tok-a"));
  ASSERT_TRUE(revoked.revoked_at.has_value());
  EXPECT_GE(*revoked.revoked_at, before);
  EXPECT_LE(*revoked.revoked_at, Clock::now());
  std::this_thread::sleep_for(milliseconds(3));
  ASSERT_OK(store().revoke_token("acme", "tok-a"));  // twice is fine, and keeps the first time
  EXPECT_EQ(value_of(store().get_token("tok-a")).revoked_at, revoked.revoked_at);
  EXPECT_FALSE(value_of(store().get_token("tok-b")).revoked_at.has_value());

  ASSERT_OK(store().touch_token("tok-b", at(kT0 + 500)));
  EXPECT_EQ(value_of(store().get_token("tok-b")).last_used_at, at(kT0 + 500));
  ASSERT_OK(store().touch_token("tok-a", at(kT0 + 600)));
  EXPECT_EQ(value_of(store().get_token("tok-a")).last_used_at, at(kT0 + 600));
  EXPECT_CODE(store().touch_token("tok-x", at(kT0)), ErrorCode::not_found);
}

TEST_P(StoreConformance, RemovingAMemberRevokesTheirTokensInThatWorkspaceOnly) {
  ASSERT_OK(store().create_workspace({"acme", "Acme", at(kT0)}));
  ASSERT_OK(store().create_workspace({"globex", "Globex", at(kT0)}));
  ASSERT_OK(store().create_user({"alice", "Alice", "", at(kT0)}));
  ASSERT_OK(store().create_user({"bob", "Bob", "", at(kT0)}));
  ASSERT_OK(store().put_membership({"acme", "alice", "editor", at(kT0)}));
  ASSERT_OK(store().put_membership({"globex", "alice", "editor", at(kT0)}));
  ASSERT_OK(store().put_membership({"acme", "bob", "editor", at(kT0)}));
  TokenRecord old_revoked = make_token("t0", "acme", "alice");
  old_revoked.revoked_at = at(kT0 + 1);
  for (const auto& t :
       {make_token("t1", "acme", "alice"), make_token("t2", "acme", "alice"),
        make_token("t3", "globex", "alice"), make_token("t4", "acme", "bob"), old_revoked}) {
    ASSERT_OK(store().create_token(t));
  }
  const auto before = std::chrono::floor<milliseconds>(Clock::now());
  ASSERT_OK(store().delete_membership("acme", "alice"));
  for (const char* id : {"t1", "t2"}) {
    auto token = value_of(store().get_token(id));
    ASSERT_TRUE(token.revoked_at.has_value()) << id;
    EXPECT_GE(*token.revoked_at, before) << id;
  }
  EXPECT_FALSE(value_of(store().get_token("t3")).revoked_at.has_value());
  EXPECT_FALSE(value_of(store().get_token("t4")).revoked_at.has_value());
  EXPECT_EQ(value_of(store().get_token("t0")).revoked_at, at(kT0 + 1));  // revoked before stays

  // A failed removal (not a member) revokes nothing.
  EXPECT_CODE(store().delete_membership("globex", "bob"), ErrorCode::not_found);
  EXPECT_FALSE(value_of(store().get_token("t4")).revoked_at.has_value());
}

// --- Secrets ---

TEST_P(StoreConformance, SecretsUpsertKeepingCreatedAt) {
  auto first = make_secret("acme", "api_key", "c2VhbGVkIDE=", kT0);
  ASSERT_OK(store().put_secret(first));
  EXPECT_EQ(to_json(value_of(store().get_secret("acme", "api_key"))), to_json(first));

  auto replaced = make_secret("acme", "api_key", "c2VhbGVkIDI=", kT0 + 50);
  replaced.updated_by = "token:tok1";
  ASSERT_OK(store().put_secret(replaced));
  auto stored = value_of(store().get_secret("acme", "api_key"));
  EXPECT_EQ(stored.ciphertext, "c2VhbGVkIDI=");
  EXPECT_EQ(stored.updated_by, "token:tok1");
  EXPECT_EQ(stored.updated_at, at(kT0 + 50));
  EXPECT_EQ(stored.created_at, at(kT0));

  auto b = make_secret("acme", "b_token", "eA==");
  auto z = make_secret("acme", "z", "eQ==");
  ASSERT_OK(store().put_secret(z));
  ASSERT_OK(store().put_secret(b));
  EXPECT_EQ(to_json(value_of(store().list_secrets("acme"))), to_json(std::vector{stored, b, z}));

  ASSERT_OK(store().delete_secret("acme", "b_token"));
  EXPECT_CODE(store().get_secret("acme", "b_token"), ErrorCode::not_found);
  EXPECT_CODE(store().delete_secret("acme", "b_token"), ErrorCode::not_found);
  EXPECT_CODE(store().get_secret("acme", "missing"), ErrorCode::not_found);
  EXPECT_EQ(value_of(store().list_secrets("acme")).size(), 2u);
}

// --- Plugin key-value entries ---

KvEntry make_kv(const std::string& workspace_id, const std::string& plugin, const std::string& key,
                Json value, int64_t when = kT0, std::optional<int64_t> expires = std::nullopt) {
  KvEntry entry;
  entry.workspace_id = workspace_id;
  entry.plugin = plugin;
  entry.key = key;
  entry.value = std::move(value);
  if (expires) entry.expires_at = at(*expires);
  entry.updated_at = at(when);
  return entry;
}

TEST_P(StoreConformance, KvEntriesAreScopedByWorkspaceAndPlugin) {
  ASSERT_OK(store().kv_put(make_kv("acme", "mastodon", "cursor", "109"), 100));
  ASSERT_OK(store().kv_put(make_kv("acme", "slack", "cursor", Json{{"n", 1}}), 100));
  ASSERT_OK(store().kv_put(make_kv("globex", "mastodon", "cursor", "7"), 100));
  auto got = value_of(store().kv_get("acme", "mastodon", "cursor", at(kT0)));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->value, "109");
  EXPECT_FALSE(got->expires_at.has_value());
  EXPECT_EQ(got->updated_at, at(kT0));
  EXPECT_EQ(value_of(store().kv_get("acme", "slack", "cursor", at(kT0)))->value, (Json{{"n", 1}}));
  EXPECT_EQ(value_of(store().kv_get("globex", "mastodon", "cursor", at(kT0)))->value, "7");
  EXPECT_FALSE(value_of(store().kv_get("initech", "mastodon", "cursor", at(kT0))).has_value());

  // Replacing keeps one entry with the new value.
  ASSERT_OK(store().kv_put(make_kv("acme", "mastodon", "cursor", "110", kT0 + 5), 100));
  EXPECT_EQ(value_of(store().kv_get("acme", "mastodon", "cursor", at(kT0 + 5)))->value, "110");

  EXPECT_TRUE(value_of(store().kv_delete("acme", "mastodon", "cursor")));
  EXPECT_FALSE(value_of(store().kv_delete("acme", "mastodon", "cursor")));
  EXPECT_FALSE(value_of(store().kv_get("acme", "mastodon", "cursor", at(kT0 + 5))).has_value());
  EXPECT_EQ(value_of(store().kv_get("globex", "mastodon", "cursor", at(kT0)))->value, "7");
}

TEST_P(StoreConformance, KvEntriesExpire) {
  ASSERT_OK(store().kv_put(make_kv("acme", "x", "token", "abc", kT0, kT0 + 1000), 100));
  EXPECT_EQ(value_of(store().kv_get("acme", "x", "token", at(kT0 + 999)))->value, "abc");
  EXPECT_EQ(value_of(store().kv_get("acme", "x", "token", at(kT0 + 999)))->expires_at,
            at(kT0 + 1000));
  EXPECT_FALSE(value_of(store().kv_get("acme", "x", "token", at(kT0 + 1000))).has_value());
  // A later put drops what expired, so an expired entry does not count against the limit.
  ASSERT_OK(store().kv_put(make_kv("acme", "x", "other", 1, kT0 + 2000), 1));
  EXPECT_FALSE(value_of(store().kv_delete("acme", "x", "token")));
}

TEST_P(StoreConformance, KvPutRefusesMoreThanTheLimitButReplacesWithin) {
  ASSERT_OK(store().kv_put(make_kv("acme", "x", "a", 1), 2));
  ASSERT_OK(store().kv_put(make_kv("acme", "x", "b", 2), 2));
  EXPECT_CODE(store().kv_put(make_kv("acme", "x", "c", 3), 2), ErrorCode::resource_exhausted);
  EXPECT_FALSE(value_of(store().kv_get("acme", "x", "c", at(kT0))).has_value());
  ASSERT_OK(store().kv_put(make_kv("acme", "x", "b", 20), 2));  // a replacement is not a new entry
  EXPECT_EQ(value_of(store().kv_get("acme", "x", "b", at(kT0)))->value, 20);
  ASSERT_OK(store().kv_put(make_kv("acme", "y", "c", 3), 2));  // another plugin has its own limit
}

// --- Workspaces do not see each other ---

TEST_P(StoreConformance, AWorkspaceSeesNothingOfAnother) {
  ASSERT_OK(store().create_workspace({"acme", "Acme", at(kT0)}));
  ASSERT_OK(store().create_workspace({"globex", "Globex", at(kT0)}));
  ASSERT_OK(store().create_user({"alice", "Alice", "", at(kT0)}));
  ASSERT_OK(store().put_membership({"acme", "alice", "admin", at(kT0)}));
  ASSERT_OK(store().create_token(make_token("tok-acme", "acme", "alice")));
  ASSERT_OK(store().put_secret(make_secret("acme", "api_key", "c2VjcmV0")));
  value_of(store().deploy_workflow("acme", "launch", "v1", "launch.yaml", "user:alice"));
  insert_run("run-acme", "launch", RunState::queued, "acme");
  AuditRecord entry;
  entry.workspace_id = "acme";
  entry.actor = "user:alice";
  entry.action = "secret.set";
  entry.object_type = "secret";
  entry.object_id = "api_key";
  entry.at = at(kT0);
  value_of(store().append_audit(entry));

  RunFilter runs;
  runs.workspace_id = "globex";
  EXPECT_TRUE(value_of(store().list_runs(runs)).empty());
  runs.workflow_id = "launch";
  EXPECT_TRUE(value_of(store().list_runs(runs)).empty());
  EXPECT_CODE(store().get_secret("globex", "api_key"), ErrorCode::not_found);
  EXPECT_TRUE(value_of(store().list_secrets("globex")).empty());
  EXPECT_CODE(store().delete_secret("globex", "api_key"), ErrorCode::not_found);
  EXPECT_TRUE(value_of(store().list_tokens("globex")).empty());
  EXPECT_CODE(store().revoke_token("globex", "tok-acme"), ErrorCode::not_found);
  EXPECT_CODE(store().get_membership("globex", "alice"), ErrorCode::not_found);
  EXPECT_TRUE(value_of(store().list_memberships("globex")).empty());
  EXPECT_CODE(store().get_deployed("globex", "launch"), ErrorCode::not_found);
  WorkflowFilter deployed;
  deployed.workspace_id = "globex";
  EXPECT_TRUE(value_of(store().list_deployed(deployed)).empty());
  EXPECT_TRUE(value_of(store().list_workflow_versions("globex", "launch")).empty());
  AuditFilter audit;
  audit.workspace_id = "globex";
  EXPECT_TRUE(value_of(store().list_audit(audit)).empty());

  // And all of it is still there for acme.
  EXPECT_FALSE(value_of(store().get_token("tok-acme")).revoked_at.has_value());
  EXPECT_TRUE(store().get_secret("acme", "api_key").ok());
  runs.workspace_id = "acme";
  EXPECT_EQ(value_of(store().list_runs(runs)).size(), 1u);
  audit.workspace_id = "acme";
  EXPECT_EQ(value_of(store().list_audit(audit)).size(), 1u);
}

// --- Audit ---

TEST_P(StoreConformance, AuditAppendsAndListsNewestFirstWithFiltersAndCursor) {
  std::vector<AuditRecord> acme;
  int64_t last_id = 0;
  for (int i = 0; i < 12; ++i) {
    AuditRecord record;
    record.workspace_id = i % 4 == 3 ? "globex" : "acme";
    record.actor = i % 2 == 0 ? "user:alice" : "token:tok1";
    record.action = i % 3 == 0 ? "workflow.deploy" : "secret.set";
    record.object_type = i % 3 == 0 ? "workflow" : "secret";
    record.object_id = "obj-" + std::to_string(i % 5);
    record.address = i % 2 == 0 ? "203.0.113.7" : "";
    record.request_id = "req-" + std::to_string(i);
    record.details = {{"i", i}, {"note", "no secret values here"}};
    record.id = 999;  // ignored: the store assigns ids
    record.at = at(kT0 + i);
    record.id = value_of(store().append_audit(record));
    EXPECT_GT(record.id, last_id);
    last_id = record.id;
    if (record.workspace_id == "acme") acme.insert(acme.begin(), record);
  }
  auto matching = [&](auto keep) {
    std::vector<AuditRecord> result;
    for (const auto& r : acme) {
      if (keep(r)) result.push_back(r);
    }
    return to_json(result);
  };
  AuditFilter filter;
  filter.workspace_id = "acme";
  filter.limit = 100;
  EXPECT_EQ(to_json(value_of(store().list_audit(filter))), to_json(acme));

  filter.action = "workflow.deploy";
  EXPECT_EQ(to_json(value_of(store().list_audit(filter))),
            matching([](const AuditRecord& r) { return r.action == "workflow.deploy"; }));
  filter.actor = "user:alice";
  EXPECT_EQ(to_json(value_of(store().list_audit(filter))), matching([](const AuditRecord& r) {
              return r.action == "workflow.deploy" && r.actor == "user:alice";
            }));
  filter.action.reset();
  filter.object_id = "obj-2";
  EXPECT_EQ(to_json(value_of(store().list_audit(filter))), matching([](const AuditRecord& r) {
              return r.actor == "user:alice" && r.object_id == "obj-2";
            }));
  filter.actor.reset();
  EXPECT_EQ(to_json(value_of(store().list_audit(filter))),
            matching([](const AuditRecord& r) { return r.object_id == "obj-2"; }));

  // Paging with the cursor, alone and with a filter.
  AuditFilter page;
  page.workspace_id = "acme";
  page.limit = 4;
  std::vector<AuditRecord> paged;
  while (true) {
    auto batch = value_of(store().list_audit(page));
    if (batch.empty()) break;
    EXPECT_LE(batch.size(), 4u);
    paged.insert(paged.end(), batch.begin(), batch.end());
    page.before_id = batch.back().id;
  }
  EXPECT_EQ(to_json(paged), to_json(acme));
  page.before_id = acme[2].id;
  page.actor = "token:tok1";
  page.limit = 100;
  EXPECT_EQ(to_json(value_of(store().list_audit(page))), matching([&](const AuditRecord& r) {
              return r.id < acme[2].id && r.actor == "token:tok1";
            }));

  // The limit is clamped to 1..1000.
  AuditFilter clamp;
  clamp.workspace_id = "acme";
  clamp.limit = 0;
  EXPECT_EQ(value_of(store().list_audit(clamp)).size(), 1u);
  clamp.limit = -1;
  EXPECT_EQ(value_of(store().list_audit(clamp)).size(), 1u);
}

TEST_P(StoreConformance, AuditListReturnsAtMostAThousand) {
  AuditRecord record;
  record.workspace_id = "acme";
  record.actor = "system";
  record.action = "run.cancel";
  record.at = at(kT0);
  for (int i = 0; i < 1003; ++i) value_of(store().append_audit(record));
  AuditFilter filter;
  filter.workspace_id = "acme";
  filter.limit = 5000;
  EXPECT_EQ(value_of(store().list_audit(filter)).size(), 1000u);
}

TEST_P(StoreConformance, ReopeningKeepsWorkspacesEventsAndDeployments) {
  if (!harness().persistent()) GTEST_SKIP() << "this store does not outlive its handle";
  ASSERT_OK(store().create_workspace({"acme", "Acme", at(kT0)}));
  ASSERT_OK(store().create_user({"alice", "Alice", "a@example.test", at(kT0)}));
  ASSERT_OK(store().put_membership({"acme", "alice", "admin", at(kT0)}));
  ASSERT_OK(store().create_token(make_token("tok", "acme", "alice")));
  ASSERT_OK(store().put_secret(make_secret("acme", "k", "c2VhbGVk")));
  auto deployed = value_of(store().deploy_workflow("acme", "launch", "v1", "l.yaml", "cli"));
  Commit commit;
  commit.add_events = {make_event("acme", "e")};
  commit.schedule_marks = {make_mark("acme", "launch", 0, kT0)};
  ASSERT_OK(store().commit(commit));
  AuditRecord entry;
  entry.workspace_id = "acme";
  entry.actor = "cli";
  entry.action = "workflow.deploy";
  entry.at = at(kT0);
  entry.id = value_of(store().append_audit(entry));
  auto events = value_of(store().pending_events(10));

  reopen();
  EXPECT_EQ(value_of(store().get_workspace("acme")).name, "Acme");
  EXPECT_EQ(value_of(store().get_user("alice")).email, "a@example.test");
  EXPECT_EQ(value_of(store().get_membership("acme", "alice")).role, "admin");
  EXPECT_EQ(to_json(value_of(store().get_token("tok"))),
            to_json(make_token("tok", "acme", "alice")));
  EXPECT_EQ(value_of(store().get_secret("acme", "k")).ciphertext, "c2VhbGVk");
  EXPECT_EQ(to_json(value_of(store().get_deployed("acme", "launch"))), to_json(deployed.workflow));
  EXPECT_EQ(to_json(value_of(store().pending_events(10))), to_json(events));
  EXPECT_EQ(to_json(value_of(store().schedule_marks())), to_json(commit.schedule_marks));
  AuditFilter filter;
  filter.workspace_id = "acme";
  EXPECT_EQ(to_json(value_of(store().list_audit(filter))), to_json(std::vector{entry}));
  // Numbering and ids carry on.
  EXPECT_EQ(
      value_of(store().deploy_workflow("acme", "launch", "v2", "l.yaml", "cli")).version.version,
      2);
  EXPECT_GT(value_of(store().append_audit(entry)), entry.id);
}

}  // namespace herald::store::testing
