// The engine against a real SQLite store: ordering, parallel needs, when, foreach, retries with
// backoff, timeouts, on_error, waits as timers, resuming after the engine is torn down, secrets.
#include "engine/runtime/engine.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "engine/steps/builtins.h"

namespace herald::runtime {
namespace {

using namespace std::chrono_literals;
using store::RunState;
using store::StepState;

// A step that fails with a retryable error a set number of times, then succeeds; counts calls
// per idempotency key.
class FlakyStep final : public steps::Step {
 public:
  explicit FlakyStep(int failures, bool retryable) : failures_(failures), retryable_(retryable) {}
  steps::StepOutcome run(const Json& input, steps::StepContext& context) override {
    std::lock_guard lock(mu_);
    int& seen = calls_[context.idempotency_key];
    ++seen;
    keys_.insert(context.idempotency_key);
    attempts_.push_back(context.attempt);
    if (seen <= failures_) {
      Error error = make_error(ErrorCode::unavailable, "flaky failure " + std::to_string(seen), retryable_);
      if (input.contains("retry_after_ms")) error.retry_after = std::chrono::milliseconds(input["retry_after_ms"].get<int>());
      return steps::StepOutcome::failed(error);
    }
    return steps::StepOutcome::done({{"calls", seen}, {"echo", input}});
  }
  int calls(const std::string& key) {
    std::lock_guard lock(mu_);
    return calls_[key];
  }
  std::vector<int> attempts() {
    std::lock_guard lock(mu_);
    return attempts_;
  }

 private:
  std::mutex mu_;
  int failures_;
  bool retryable_;
  std::map<std::string, int> calls_;
  std::set<std::string> keys_;
  std::vector<int> attempts_;
};

// Records when it started and ended, and sleeps a little, to observe parallelism.
class SpanStep final : public steps::Step {
 public:
  steps::StepOutcome run(const Json& input, steps::StepContext& context) override {
    auto start = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(input.value("sleep_ms", 50)));
    auto end = std::chrono::steady_clock::now();
    std::lock_guard lock(mu);
    spans[context.step_id] = {start, end};
    return steps::StepOutcome::done({{"step", context.step_id}});
  }
  std::mutex mu;
  std::map<std::string, std::pair<std::chrono::steady_clock::time_point, std::chrono::steady_clock::time_point>> spans;
};

// A step that holds its worker until the test opens it; the test registers it as pure or not.
class GateStep final : public steps::Step {
 public:
  steps::StepOutcome run(const Json&, steps::StepContext&) override {
    std::unique_lock lock(mu_);
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return open_; });
    return steps::StepOutcome::done({{"passed", true}});
  }
  bool wait_entered() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [this] { return entered_; });
  }
  void open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false;
  bool open_ = false;
};

// Asks to run again until woken (as the approval step does), holding its first attempt until the
// test opens it; done on its second run.
class RerunStep final : public steps::Step {
 public:
  steps::StepOutcome run(const Json& input, steps::StepContext& context) override {
    if (runs_++ > 0) return steps::StepOutcome::done({{"runs", runs_.load()}});
    gate_.run(input, context);
    return steps::StepOutcome::rerun_at(steps::Clock::time_point::max());
  }
  GateStep& gate() { return gate_; }

 private:
  std::atomic<int> runs_{0};
  GateStep gate_;
};

class ThrowingStep final : public steps::Step {
 public:
  steps::StepOutcome run(const Json&, steps::StepContext&) override { throw std::runtime_error("boom"); }
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("herald-engine-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
    open();
    registry_ = steps::StepRegistry::with_builtins();
    flaky_ = std::make_shared<FlakyStep>(2, true);
    fatal_ = std::make_shared<FlakyStep>(100, false);
    span_ = std::make_shared<SpanStep>();
    ASSERT_TRUE(registry_.add({"flaky", "fails twice", {}, flaky_}).ok());
    ASSERT_TRUE(registry_.add({"fatal", "always fails", {}, fatal_}).ok());
    ASSERT_TRUE(registry_.add({"span", "sleeps", {}, span_}).ok());
    ASSERT_TRUE(registry_.add({"throws", "throws", {}, std::make_shared<ThrowingStep>()}).ok());
  }
  void TearDown() override {
    engine_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void open() {
    auto store = store::open_store("sqlite:" + (dir_ / "herald.db").string());
    ASSERT_TRUE(store.ok()) << store.error().message;
    store_ = std::move(store).value();
  }

  Engine& engine(EngineOptions options = {}) {
    if (!engine_) {
      options.worker_threads = std::max(options.worker_threads, 4);
      options.random_seed = 42;
      engine_ = std::make_unique<Engine>(*store_, registry_, options);
    }
    return *engine_;
  }

  store::RunRecord run_to_end(const std::string& yaml, Json inputs = Json::object()) {
    auto id = engine().start_run(yaml, "test.yaml", inputs);
    EXPECT_TRUE(id.ok()) << (id.ok() ? "" : id.error().message);
    if (!id.ok()) return {};
    auto record = engine().wait_for_run(*id, 20s);
    EXPECT_TRUE(record.ok()) << (record.ok() ? "" : record.error().message);
    return record.ok() ? *record : store::RunRecord{};
  }

  // Polls the store until the run sleeps on a timer; false if it never does within 2 s.
  bool wait_until_waiting(const std::string& run_id) {
    for (int i = 0; i < 400; ++i) {
      auto record = store_->get_run(run_id);
      if (record.ok() && record->state == RunState::waiting) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }

  std::map<std::string, store::StepRecord> steps_of(const std::string& run_id) {
    std::map<std::string, store::StepRecord> out;
    auto rows = store_->get_steps(run_id);
    EXPECT_TRUE(rows.ok());
    for (const auto& row : *rows) {
      std::string key = (row.on_error ? "on_error." : "") + row.step_id;
      if (row.item >= 0) key += "[" + std::to_string(row.item) + "]";
      out[key] = row;
    }
    return out;
  }

  static inline int counter_ = 0;
  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
  steps::StepRegistry registry_;
  std::shared_ptr<FlakyStep> flaky_;
  std::shared_ptr<FlakyStep> fatal_;
  std::shared_ptr<SpanStep> span_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineTest, SequentialStepsPassOutputsAlong) {
  auto run = run_to_end(R"(
id: seq
inputs:
  n: { type: integer, default: 4 }
steps:
  - id: a
    uses: set
    with: { doubled: "{{ inputs.n * 2 }}", label: "n={{ inputs.n }}" }
  - id: b
    uses: script
    with:
      code: return { sum = steps.a.output.doubled + 1, label = steps.a.output.label }
  - id: c
    uses: log
    with: { message: "sum is {{ steps.b.output.sum }}" }
)");
  ASSERT_EQ(run.state, RunState::succeeded) << run.error.dump();
  auto steps = steps_of(run.id);
  EXPECT_EQ(steps["a"].output["doubled"], 8);
  EXPECT_EQ(steps["a"].output["label"], "n=4");
  EXPECT_EQ(steps["b"].output["sum"], 9);
  EXPECT_EQ(steps["c"].output["message"], "sum is 9");
  for (const auto& [id, row] : steps) {
    EXPECT_EQ(row.state, StepState::succeeded) << id;
    EXPECT_EQ(row.attempt, 1) << id;
    EXPECT_TRUE(row.started_at && row.finished_at) << id;
  }
  auto attempts = store_->get_attempts(run.id);
  ASSERT_TRUE(attempts.ok());
  EXPECT_EQ(attempts->size(), 3u);
  EXPECT_TRUE(run.started_at && run.finished_at);
}

TEST_F(EngineTest, WhenFalseSkipsAndLaterStepsStillRun) {
  auto run = run_to_end(R"(
id: branch
inputs:
  publish: { type: boolean, default: false }
steps:
  - id: post
    uses: set
    when: inputs.publish
    with: { posted: true }
  - id: after
    uses: set
    with: { post_state: "{{ steps.post.state }}" }
)");
  ASSERT_EQ(run.state, RunState::succeeded) << run.error.dump();
  auto steps = steps_of(run.id);
  EXPECT_EQ(steps["post"].state, StepState::skipped);
  EXPECT_EQ(steps["after"].output["post_state"], "skipped");
}

TEST_F(EngineTest, IndependentNeedsRunInParallel) {
  auto run = run_to_end(R"(
id: fan
steps:
  - id: left
    uses: span
    needs: []
    with: { sleep_ms: 150 }
  - id: right
    uses: span
    needs: []
    with: { sleep_ms: 150 }
  - id: join
    uses: span
    needs: [left, right]
    with: { sleep_ms: 1 }
)");
  ASSERT_EQ(run.state, RunState::succeeded) << run.error.dump();
  std::lock_guard lock(span_->mu);
  auto& spans = span_->spans;
  ASSERT_EQ(spans.size(), 3u);
  // The two branches overlap in time; the join starts after both ended.
  EXPECT_LT(spans["left"].first, spans["right"].second);
  EXPECT_LT(spans["right"].first, spans["left"].second);
  EXPECT_GE(spans["join"].first, spans["left"].second);
  EXPECT_GE(spans["join"].first, spans["right"].second);
}

TEST_F(EngineTest, ForeachKeepsOrderAndGivesItemAndIndex) {
  auto run = run_to_end(R"(
id: each
inputs:
  words: { type: array, default: ["a", "bb", "ccc", "dddd", "eeeee"] }
steps:
  - id: lengths
    uses: script
    foreach: inputs.words
    concurrency: 3
    with:
      code: |
        return { word = item, length = #item, index = index }
  - id: total
    uses: script
    with:
      code: |
        local sum = 0
        for _, r in ipairs(steps.lengths.output) do sum = sum + r.length end
        return sum
)");
  ASSERT_EQ(run.state, RunState::succeeded) << run.error.dump();
  auto steps = steps_of(run.id);
  ASSERT_TRUE(steps["lengths"].output.is_array());
  ASSERT_EQ(steps["lengths"].output.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(steps["lengths"].output[i]["length"], i + 1);
    EXPECT_EQ(steps["lengths"].output[i]["index"], i);
    EXPECT_EQ(steps["lengths[" + std::to_string(i) + "]"].state, StepState::succeeded);
  }
  EXPECT_EQ(steps["total"].output, 15);
}

TEST_F(EngineTest, ForeachOverEmptyListSucceedsWithEmptyOutput) {
  auto run = run_to_end(R"(
id: none
steps:
  - id: each
    uses: set
    foreach: "{}"
    with: { x: "{{ item }}" }
)");
  ASSERT_EQ(run.state, RunState::succeeded) << run.error.dump();
  EXPECT_EQ(steps_of(run.id)["each"].output, Json::array());
}

TEST_F(EngineTest, RetryableErrorsRetryWithBackoffUntilSuccess) {
  auto run = run_to_end(R"(
id: retry
steps:
  - id: call
    uses: flaky
    retry: { attempts: 3, backoff: exponential, initial: 20ms, max: 100ms }
)");
  ASSERT_EQ(run.state, RunState::succeeded) << run.error.dump();
  auto steps = steps_of(run.id);
  EXPECT_EQ(steps["call"].attempt, 3);
  EXPECT_EQ(steps["call"].output["calls"], 3);
  EXPECT_EQ(flaky_->attempts(), (std::vector<int>{1, 2, 3}));
  // Every attempt used the same idempotency key.
  EXPECT_EQ(flaky_->calls(steps["call"].idempotency_key), 3);
  auto attempts = store_->get_attempts(run.id);
  ASSERT_TRUE(attempts.ok());
  ASSERT_EQ(attempts->size(), 3u);
  EXPECT_EQ((*attempts)[0].state, StepState::failed);
  EXPECT_EQ((*attempts)[2].state, StepState::succeeded);
  // The second attempt came at least the initial delay (less jitter) after the first ended.
  auto gap = (*attempts)[1].started_at - *(*attempts)[0].finished_at;
  EXPECT_GE(gap, 15ms);
}

TEST_F(EngineTest, RetriesStopAtTheLimit) {
  auto run = run_to_end(R"(
id: retry-limit
steps:
  - id: call
    uses: flaky
    retry: { attempts: 2, initial: 10ms }
  - id: never
    uses: set
    with: { x: 1 }
)");
  ASSERT_EQ(run.state, RunState::failed);
  auto steps = steps_of(run.id);
  EXPECT_EQ(steps["call"].state, StepState::failed);
  EXPECT_EQ(steps["call"].attempt, 2);
  EXPECT_EQ(run.error["step"], "call");
  EXPECT_EQ(run.error["message"], "flaky failure 2");
  EXPECT_NE(steps["never"].state, StepState::succeeded);
}

TEST_F(EngineTest, RetryAfterFromTheErrorIsHonoured) {
  auto run = run_to_end(R"(
id: retry-after
steps:
  - id: call
    uses: flaky
    with: { retry_after_ms: 300 }
    retry: { attempts: 3, initial: 1ms, max: 5ms }
)");
  ASSERT_EQ(run.state, RunState::succeeded) << run.error.dump();
  auto attempts = store_->get_attempts(run.id);
  ASSERT_TRUE(attempts.ok());
  ASSERT_EQ(attempts->size(), 3u);
  EXPECT_GE((*attempts)[1].started_at - *(*attempts)[0].finished_at, 290ms);
}

TEST_F(EngineTest, NonRetryableErrorFailsAtOnceAndOnErrorSeesIt) {
  auto run = run_to_end(R"(
id: fails
steps:
  - id: call
    uses: fatal
    retry: { attempts: 5, initial: 10ms }
on_error:
  - id: notice
    uses: set
    with: { failed_step: "{{ error.step }}", why: "{{ error.message }}" }
)");
  ASSERT_EQ(run.state, RunState::failed);
  auto steps = steps_of(run.id);
  EXPECT_EQ(steps["call"].attempt, 1);
  ASSERT_EQ(steps["on_error.notice"].state, StepState::succeeded);
  EXPECT_EQ(steps["on_error.notice"].output["failed_step"], "call");
  EXPECT_EQ(steps["on_error.notice"].output["why"], "flaky failure 1");
}

TEST_F(EngineTest, AStepThatThrowsFailsCleanly) {
  auto run = run_to_end(R"(
id: throws
steps:
  - id: bad
    uses: throws
)");
  ASSERT_EQ(run.state, RunState::failed);
  EXPECT_EQ(run.error["code"], "internal");
  EXPECT_NE(run.error["message"].get<std::string>().find("boom"), std::string::npos);
}

TEST_F(EngineTest, ExpressionErrorsNameTheStepAndField) {
  auto run = run_to_end(R"(
id: bad-expr
steps:
  - id: a
    uses: set
    with: { x: "{{ nothing.here }}" }
)");
  ASSERT_EQ(run.state, RunState::failed);
  std::string message = run.error["message"];
  EXPECT_NE(message.find("test.yaml:"), std::string::npos) << message;
  EXPECT_NE(message.find("steps[0].with"), std::string::npos) << message;
}

TEST_F(EngineTest, TimeoutStopsARunawayScript) {
  auto run = run_to_end(R"(
id: slow
steps:
  - id: spin
    uses: script
    timeout: 200ms
    with:
      code: |
        local x = 0
        while true do x = x + 1 end
)");
  ASSERT_EQ(run.state, RunState::failed);
  // Either limit may stop it first; both are reported as such, never as a crash.
  std::string code = run.error["code"];
  EXPECT_TRUE(code == "deadline_exceeded" || code == "resource_exhausted") << run.error.dump();
}

TEST_F(EngineTest, AWakeUpWhileTheStepRunsIsNotLost) {
  // A decision that lands while the approval step is computing the previous one fires its
  // "rerun" timer while the step is running; the step's answer (rerun when woken) was computed
  // from the state before, so the engine must run it again rather than park it for good.
  auto rerun = std::make_shared<RerunStep>();
  ASSERT_TRUE(registry_.add({"rerun", "reruns when woken", {}, rerun}).ok());
  auto id = engine().start_run(R"(
id: woken
steps:
  - id: ask
    uses: rerun
)", "test.yaml", Json::object());
  ASSERT_TRUE(id.ok()) << id.error().message;
  ASSERT_TRUE(rerun->gate().wait_entered());
  store::Commit commit;
  commit.add_timers.push_back(store::TimerRecord{0, *id, "ask", -1, "rerun", std::chrono::system_clock::now()});
  ASSERT_TRUE(store_->commit(commit).ok());
  engine().wake();
  bool fired = false;
  for (int i = 0; i < 400 && !fired; ++i) {
    auto timers = store_->timers_of_run(*id);
    fired = timers.ok() && timers->empty();
    if (!fired) std::this_thread::sleep_for(5ms);
  }
  ASSERT_TRUE(fired) << "the wake-up timer never fired";
  rerun->gate().open();
  auto record = engine().wait_for_run(*id, 10s);
  ASSERT_TRUE(record.ok()) << record.error().message;
  EXPECT_EQ(record->state, RunState::succeeded);
  EXPECT_EQ(steps_of(*id)["ask"].output["runs"], 2);
}

TEST_F(EngineTest, WaitIsATimerAndTheRunSleepsInTheStore) {
  auto id = engine().start_run(R"(
id: sleepy
steps:
  - id: nap
    uses: wait
    with: { for: 400ms }
  - id: after
    uses: set
    with: { woke: true }
)", "test.yaml", Json::object());
  ASSERT_TRUE(id.ok()) << id.error().message;
  // While it waits, the run is `waiting` with a timer row.
  EXPECT_TRUE(wait_until_waiting(*id));
  auto timers = store_->timers_of_run(*id);
  ASSERT_TRUE(timers.ok());
  EXPECT_EQ(timers->size(), 1u);
  auto record = engine().wait_for_run(*id, 10s);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->state, RunState::succeeded);
  EXPECT_GE(*record->finished_at - record->created_at, 390ms);
  auto steps = steps_of(*id);
  EXPECT_TRUE(steps["after"].output["woke"].get<bool>());
  EXPECT_TRUE(steps["nap"].output.contains("waited_until"));
  auto left = store_->timers_of_run(*id);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
}

TEST_F(EngineTest, AWaitingRunResumesInANewEngine) {
  std::string run_id;
  {
    auto id = engine().start_run(R"(
id: resume-wait
steps:
  - id: before
    uses: set
    with: { x: 1 }
  - id: nap
    uses: wait
    with: { for: 500ms }
  - id: after
    uses: script
    with: { code: "return steps.before.output.x + 1" }
)", "test.yaml", Json::object());
    ASSERT_TRUE(id.ok());
    run_id = *id;
    ASSERT_TRUE(wait_until_waiting(run_id));
    engine_.reset();  // the process "stops" while the run waits
  }
  auto record = store_->get_run(run_id);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->state, RunState::waiting);
  ASSERT_TRUE(engine().resume_all().ok());
  auto done = engine().wait_for_run(run_id, 10s);
  ASSERT_TRUE(done.ok()) << done.error().message;
  EXPECT_EQ(done->state, RunState::succeeded);
  auto steps = steps_of(run_id);
  EXPECT_EQ(steps["after"].output, 2);
  EXPECT_EQ(steps["before"].attempt, 1);  // finished steps are never re-run
}

TEST_F(EngineTest, VarsAreRenderedOnceAndKeptAcrossAResume) {
  std::string run_id;
  {
    auto id = engine().start_run(R"(
id: vars-once
vars:
  stamp: "{{ now }}"
  tag: "#{{ inputs.brand }}"
inputs:
  brand: { type: string, default: Acme }
steps:
  - id: before
    uses: set
    with: { stamp: "{{ vars.stamp }}" }
  - id: nap
    uses: wait
    with: { for: 300ms }
  - id: after
    uses: set
    with: { stamp: "{{ vars.stamp }}", tag: "{{ vars.tag }}" }
)", "test.yaml", Json::object());
    ASSERT_TRUE(id.ok()) << id.error().message;
    run_id = *id;
    ASSERT_TRUE(wait_until_waiting(run_id));
    engine_.reset();
  }
  std::this_thread::sleep_for(20ms);  // `now` has moved on
  ASSERT_TRUE(engine().resume_all().ok());
  auto done = engine().wait_for_run(run_id, 10s);
  ASSERT_TRUE(done.ok());
  ASSERT_EQ(done->state, RunState::succeeded) << done->error.dump();
  auto steps = steps_of(run_id);
  EXPECT_EQ(steps["after"].output["stamp"], steps["before"].output["stamp"]);
  EXPECT_EQ(steps["after"].output["tag"], "#Acme");
  EXPECT_EQ(done->vars["tag"], "#Acme");
}

TEST_F(EngineTest, SecretsAreUsableInInputsButRedactedInTheStore) {
  EngineOptions options;
  options.secrets = {{"API_TOKEN", "s3cr3t-token-value"}};
  engine(options);
  auto run = run_to_end(R"(
id: secret
steps:
  - id: call
    uses: set
    with: { header: "Bearer {{ secrets.API_TOKEN }}" }
  - id: leak
    uses: script
    with: { code: "return steps.call.output.header" }
)");
  ASSERT_EQ(run.state, RunState::succeeded) << run.error.dump();
  auto steps = steps_of(run.id);
  EXPECT_EQ(steps["call"].input["header"], "Bearer [redacted]");
  EXPECT_EQ(steps["call"].output["header"], "Bearer [redacted]");
  auto attempts = store_->get_attempts(run.id);
  ASSERT_TRUE(attempts.ok());
  for (const auto& attempt : *attempts) {
    EXPECT_EQ(attempt.input.dump().find("s3cr3t"), std::string::npos);
    EXPECT_EQ(attempt.output.dump().find("s3cr3t"), std::string::npos);
  }
}

// A step that keeps the first 12 bytes of its `text` (as the http step cuts a body into its
// error message), masking the run's secrets first through the context.
class CutStep final : public steps::Step {
 public:
  steps::StepOutcome run(const Json& input, steps::StepContext& context) override {
    std::string text = input.value("text", "");
    if (context.redact) text = context.redact(text);
    return steps::StepOutcome::done({{"cut", text.substr(0, 12)}});
  }
};

TEST_F(EngineTest, StepsAndPrintSeeTheRunsRedactor) {
  ASSERT_TRUE(registry_.add({"cut", "cuts", {}, std::make_shared<CutStep>()}).ok());
  EngineOptions options;
  options.secrets = {{"API_TOKEN", "s3cr3t-token-value"}};
  engine(options);
  std::ostringstream log;
  auto previous = spdlog::default_logger();
  auto capture = std::make_shared<spdlog::logger>(
      "captured", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  capture->set_level(spdlog::level::debug);
  spdlog::set_default_logger(capture);
  auto run = run_to_end(R"(
id: cut
steps:
  - id: cut
    uses: cut
    with: { text: "a {{ secrets.API_TOKEN }}" }
  - id: talk
    uses: script
    with: { code: "print('token', secrets.API_TOKEN) return 1" }
)");
  spdlog::set_default_logger(previous);
  ASSERT_EQ(run.state, RunState::succeeded) << run.error.dump();
  // Cut unmasked, "a s3cr3t-tok" would be stored: a fragment the run's redactor cannot see.
  EXPECT_EQ(steps_of(run.id)["cut"].output["cut"], "a [redacted]");
  EXPECT_EQ(log.str().find("s3cr3t"), std::string::npos) << log.str();
  EXPECT_NE(log.str().find("lua print: token\t[redacted]"), std::string::npos) << log.str();
}

// Logs through the context: `lines` lines, one with the run's secret in it.
class ChattyStep final : public steps::Step {
 public:
  steps::StepOutcome run(const Json& input, steps::StepContext& context) override {
    const int lines = input.value("lines", 1);
    context.log("info", "calling with " + input.value("token", std::string()));
    for (int i = 1; i < lines; ++i) context.log("debug", "line " + std::to_string(i));
    if (context.attempt == 1 && input.value("fail_first", false)) {
      return steps::StepOutcome::failed(make_error(ErrorCode::unavailable, "busy", true));
    }
    return steps::StepOutcome::done({{"ok", true}});
  }
};

TEST_F(EngineTest, EachAttemptKeepsWhatItsStepLoggedRedacted) {
  ASSERT_TRUE(registry_.add({"chatty", "logs", {}, std::make_shared<ChattyStep>()}).ok());
  EngineOptions options;
  options.secrets = {{"API_TOKEN", "s3cr3t-token-value"}};
  engine(options);
  auto run = run_to_end(R"(
id: chatty
steps:
  - id: talk
    uses: chatty
    with: { token: "{{ secrets.API_TOKEN }}", lines: 2, fail_first: true }
    retry: { attempts: 2, initial: 10ms }
  - id: flood
    uses: chatty
    with: { lines: 500 }
  - id: quiet
    uses: set
    with: { x: 1 }
)");
  ASSERT_EQ(run.state, RunState::succeeded) << run.error.dump();
  auto attempts = store_->get_attempts(run.id);
  ASSERT_TRUE(attempts.ok());
  std::map<std::string, std::vector<Json>> logs;  // "step#attempt" -> lines
  for (const auto& attempt : *attempts) {
    std::string key = attempt.step_id + "#" + std::to_string(attempt.attempt);
    if (attempt.logs.is_array()) {
      for (const auto& line : attempt.logs) logs[key].push_back(line);
    } else {
      EXPECT_TRUE(attempt.logs.is_null()) << key;
      logs[key];
    }
  }
  // Each attempt has its own lines, secrets masked.
  ASSERT_EQ(logs["talk#1"].size(), 2u);
  EXPECT_EQ(logs["talk#1"][0]["message"], "calling with [redacted]");
  EXPECT_EQ(logs["talk#1"][0]["level"], "info");
  EXPECT_TRUE(logs["talk#1"][0]["at"].is_string());
  EXPECT_EQ(logs["talk#1"][1]["message"], "line 1");
  ASSERT_EQ(logs["talk#2"].size(), 2u);
  // A flood keeps the first lines and says how many it dropped.
  ASSERT_EQ(logs["flood#1"].size(), 201u);
  EXPECT_EQ(logs["flood#1"].back()["message"], "300 more log lines were not kept");
  EXPECT_TRUE(logs["quiet#1"].empty());
  for (const auto& attempt : *attempts) {
    EXPECT_EQ(attempt.logs.dump().find("s3cr3t"), std::string::npos);
  }
}

TEST_F(EngineTest, InvalidWorkflowIsRefusedWithLocations) {
  auto id = engine().start_run("id: x\nsteps:\n  - id: a\n    uses: nope\n", "bad.yaml", Json::object());
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(id.error().message.find("bad.yaml:4:"), std::string::npos) << id.error().message;
  auto runs = store_->list_runs({});
  ASSERT_TRUE(runs.ok());
  EXPECT_TRUE(runs->empty());
}

TEST_F(EngineTest, ManyRunsAtOnceAllFinish) {
  const char* yaml = R"(
id: many
inputs:
  n: { type: integer, required: true }
steps:
  - id: a
    uses: set
    with: { v: "{{ inputs.n }}" }
  - id: b
    uses: script
    with: { code: "return steps.a.output.v * 10" }
)";
  std::vector<std::string> ids;
  for (int i = 0; i < 200; ++i) {
    auto id = engine().start_run(yaml, "many.yaml", {{"n", i}});
    ASSERT_TRUE(id.ok());
    ids.push_back(*id);
  }
  for (int i = 0; i < 200; ++i) {
    auto record = engine().wait_for_run(ids[i], 30s);
    ASSERT_TRUE(record.ok());
    ASSERT_EQ(record->state, RunState::succeeded);
    EXPECT_EQ(steps_of(ids[i])["b"].output, i * 10);
  }
}

// Pure steps' results go to the store with the run's next write that cannot wait: here the
// "running" of a step with effects. While the pure gate holds, the store still has the run as
// it was inserted; once a step with effects starts, everything before it is stored.
TEST_F(EngineTest, PureStepsAreCommittedWithTheNextWriteThatCannotWait) {
  auto pure_gate = std::make_shared<GateStep>();
  auto effect_gate = std::make_shared<GateStep>();
  steps::StepInfo pure{"pure_gate", "holds, pure", {}, pure_gate};
  pure.pure = true;
  ASSERT_TRUE(registry_.add(pure).ok());
  ASSERT_TRUE(registry_.add({"effect_gate", "holds, with effects", {}, effect_gate}).ok());
  auto id = engine().start_run(R"(
id: deferred
steps:
  - id: a
    uses: set
    with: { x: 1 }
  - id: b
    uses: pure_gate
  - id: c
    uses: effect_gate
  - id: d
    uses: set
    with: { y: "{{ steps.a.output.x + 1 }}" }
)", "test.yaml", Json::object());
  ASSERT_TRUE(id.ok()) << id.error().message;

  ASSERT_TRUE(pure_gate->wait_entered());
  auto record = store_->get_run(*id);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->state, RunState::queued);
  EXPECT_TRUE(steps_of(*id).empty()) << "a's result is deferred until a write that cannot wait";

  pure_gate->open();
  ASSERT_TRUE(effect_gate->wait_entered());
  auto steps = steps_of(*id);
  EXPECT_EQ(steps["a"].state, StepState::succeeded);
  EXPECT_EQ(steps["b"].state, StepState::succeeded);
  EXPECT_EQ(steps["c"].state, StepState::running) << "a step with effects is recorded before it runs";
  EXPECT_EQ(steps.count("d"), 0u);
  record = store_->get_run(*id);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->state, RunState::running);

  effect_gate->open();
  auto finished = engine().wait_for_run(*id, 20s);
  ASSERT_TRUE(finished.ok()) << finished.error().message;
  EXPECT_EQ(finished->state, RunState::succeeded);
  steps = steps_of(*id);
  EXPECT_EQ(steps["d"].state, StepState::succeeded);
  EXPECT_EQ(steps["d"].output["y"], 2);
  auto attempts = store_->get_attempts(*id);
  ASSERT_TRUE(attempts.ok());
  EXPECT_EQ(attempts->size(), 4u);
}

TEST_F(EngineTest, CancelStopsAWaitingRun) {
  auto id = engine().start_run(R"(
id: cancel-me
steps:
  - id: nap
    uses: wait
    with: { for: 1h }
  - id: after
    uses: set
    with: { x: 1 }
)", "test.yaml", Json::object());
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(wait_until_waiting(*id));
  ASSERT_TRUE(engine().cancel_run(*id).ok());
  auto record = engine().wait_for_run(*id, 5s);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->state, RunState::cancelled);
  auto timers = store_->timers_of_run(*id);
  ASSERT_TRUE(timers.ok());
  EXPECT_TRUE(timers->empty());
}

TEST(PrepareInputsTest, ConvertsTextToDeclaredTypesAndAppliesDefaults) {
  model::Workflow workflow;
  workflow.id = "w";
  workflow.inputs = {{"count", "integer", Json(3), false, ""},
                     {"ratio", "number", std::nullopt, false, ""},
                     {"on", "boolean", std::nullopt, false, ""},
                     {"tags", "array", std::nullopt, false, ""},
                     {"name", "string", std::nullopt, true, ""}};
  auto ok = prepare_inputs(workflow, {{"ratio", "0.5"}, {"on", "yes"}, {"tags", "[1,2]"}, {"name", "x"}});
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ((*ok)["count"], 3);
  EXPECT_EQ((*ok)["ratio"], 0.5);
  EXPECT_EQ((*ok)["on"], true);
  EXPECT_EQ((*ok)["tags"], Json::parse("[1,2]"));

  auto missing = prepare_inputs(workflow, Json::object());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("'name'"), std::string::npos);

  auto unknown = prepare_inputs(workflow, {{"name", "x"}, {"colour", "red"}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("unknown input 'colour'"), std::string::npos);

  auto bad = prepare_inputs(workflow, {{"name", "x"}, {"count", "three"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("not an integer"), std::string::npos);

  auto wrong_type = prepare_inputs(workflow, {{"name", 5}});
  ASSERT_FALSE(wrong_type.ok());
}

// ---- engines sharing one store (leases) ------------------------------------------------------

namespace {

constexpr const char* kFlakyWorkflow = R"(
id: shared
steps:
  - id: call
    uses: flaky
    retry: { attempts: 3, backoff: fixed, initial: 20ms }
  - id: after
    uses: set
    with: { done: true }
)";

EngineOptions quick_polling() {
  EngineOptions options;
  options.worker_threads = 4;
  options.poll_interval = 20ms;
  options.random_seed = 7;
  return options;
}

}  // namespace

// Each run sleeps between its attempts (its lease given back), so the engines take turns: every
// run still ends, and every attempt happened once.
TEST_F(EngineTest, EnginesSharingAStoreDriveEveryRunToItsEndWithEachAttemptOnce) {
  auto second_store = store::open_store("sqlite:" + (dir_ / "herald.db").string());
  ASSERT_TRUE(second_store.ok()) << second_store.error().message;
  Engine& a = engine(quick_polling());
  Engine b(**second_store, registry_, quick_polling());
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    auto id = (i % 2 == 0 ? a : b).start_run(kFlakyWorkflow, "shared.yaml", Json::object());
    ASSERT_TRUE(id.ok()) << id.error().message;
    ids.push_back(*id);
  }
  for (const auto& id : ids) {
    auto record = a.wait_for_run(id, 20s);
    ASSERT_TRUE(record.ok()) << record.error().message;
    EXPECT_EQ(record->state, RunState::succeeded) << record->error.dump();
    auto steps = steps_of(id);
    EXPECT_EQ(steps["call"].attempt, 3);
    EXPECT_EQ(flaky_->calls(steps["call"].idempotency_key), 3) << id;
    EXPECT_EQ(steps["after"].state, StepState::succeeded);
  }
}

namespace {

// A queued run leased to an engine that is gone (it never renews), as a crash leaves it.
std::string insert_orphan(store::Store& store, const std::string& source,
                          std::chrono::milliseconds lease_left) {
  auto version = store.put_workflow_version("", "orphan", source, "orphan.yaml");
  EXPECT_TRUE(version.ok());
  store::RunRecord run;
  run.id = store::new_run_id();
  run.workflow_id = "orphan";
  run.workflow_version_id = version->id;
  run.created_at = run.updated_at = std::chrono::system_clock::now();
  store::Commit commit;
  commit.insert_runs = {run};
  commit.lease_inserted = store::LeaseGrant{"crashed-engine", run.created_at + lease_left};
  auto status = store.commit(commit);
  EXPECT_TRUE(status.ok()) << status.error().message;
  return run.id;
}

constexpr const char* kOrphanWorkflow = R"(
id: orphan
steps:
  - id: only
    uses: set
    with: { x: 1 }
)";

}  // namespace

TEST_F(EngineTest, ARunOfAnEngineThatStoppedRenewingIsTakenOverWhenItsLeaseEnds) {
  const auto lease_end = std::chrono::system_clock::now() + 400ms;
  auto id = insert_orphan(*store_, kOrphanWorkflow, 400ms);
  Engine& e = engine(quick_polling());
  ASSERT_TRUE(e.resume_all().ok());
  auto record = e.wait_for_run(id, 10s);
  ASSERT_TRUE(record.ok()) << record.error().message;
  EXPECT_EQ(record->state, RunState::succeeded);
  ASSERT_TRUE(record->started_at.has_value());
  EXPECT_GE(*record->started_at, std::chrono::floor<std::chrono::milliseconds>(lease_end));
}

TEST_F(EngineTest, ResumeTakingOverLeasesDoesNotWaitForThemToEnd) {
  auto id = insert_orphan(*store_, kOrphanWorkflow, std::chrono::hours(1));
  EngineOptions options = quick_polling();
  options.take_over_leases = true;
  Engine& e = engine(options);
  ASSERT_TRUE(e.resume_all().ok());
  auto record = e.wait_for_run(id, 10s);
  ASSERT_TRUE(record.ok()) << record.error().message;
  EXPECT_EQ(record->state, RunState::succeeded);
}

// `herald run` keeps its run's lease while the run waits; after it crashed, `herald resume`
// continues the run when its timer comes due, not when the dead lease ends.
TEST_F(EngineTest, ResumeTakesOverAWaitingRunOfACrashedEngine) {
  auto id = insert_orphan(*store_, R"(
id: orphan
steps:
  - id: nap
    uses: wait
    with: { for: 100ms }
)", std::chrono::hours(1));
  store::RunRecord waiting = *store_->get_run(id);
  waiting.state = RunState::waiting;
  store::Commit sleep;
  sleep.update_run = waiting;
  sleep.add_timers = {{0, id, "nap", -1, "wait", std::chrono::system_clock::now() + 300ms}};
  ASSERT_TRUE(store_->commit(sleep).ok());

  EngineOptions options = quick_polling();
  options.take_over_leases = true;
  Engine& e = engine(options);
  ASSERT_TRUE(e.resume_all().ok());
  auto record = e.wait_for_run(id, 10s);
  ASSERT_TRUE(record.ok()) << record.error().message;
  EXPECT_EQ(record->state, RunState::succeeded);
}

// `herald serve --no-workers`: its engine stores runs and cancellations; engines that drive runs
// carry them out.
TEST_F(EngineTest, AnEngineThatDrivesNoRunsLeavesThemToThoseThatDo) {
  auto second_store = store::open_store("sqlite:" + (dir_ / "herald.db").string());
  ASSERT_TRUE(second_store.ok()) << second_store.error().message;
  EngineOptions api_options = quick_polling();
  api_options.drive_runs = false;
  std::atomic<int> announced{0};
  api_options.announce_work = [&announced] { announced.fetch_add(1); };
  Engine api(**second_store, registry_, api_options);

  auto queued = api.start_run(kOrphanWorkflow, "orphan.yaml", Json::object());
  ASSERT_TRUE(queued.ok()) << queued.error().message;
  EXPECT_GE(announced.load(), 1);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(store_->get_run(*queued)->state, RunState::queued);  // nobody drives it yet

  Engine& worker = engine(quick_polling());
  auto done = worker.wait_for_run(*queued, 10s);
  ASSERT_TRUE(done.ok()) << done.error().message;
  EXPECT_EQ(done->state, RunState::succeeded);

  auto sleeping = api.start_run(R"(
id: sleeper
steps:
  - id: nap
    uses: wait
    with: { for: 30s }
)", "sleeper.yaml", Json::object());
  ASSERT_TRUE(sleeping.ok()) << sleeping.error().message;
  ASSERT_TRUE(wait_until_waiting(*sleeping));
  ASSERT_TRUE(api.cancel_run(*sleeping).ok());
  auto cancelled = worker.wait_for_run(*sleeping, 10s);
  ASSERT_TRUE(cancelled.ok()) << cancelled.error().message;
  EXPECT_EQ(cancelled->state, RunState::cancelled);
  auto again = api.cancel_run(*sleeping);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::failed_precondition);
}

}  // namespace
}  // namespace herald::runtime
