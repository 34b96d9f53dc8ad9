// Workflows of `http` steps against a local HTTP server, on a real SQLite file: retries with
// backoff against 503 and 429, timeouts, parallel `needs`, `foreach`, `on_error`, idempotency keys.
#include <gtest/gtest.h>

#include "engine/runtime/engine.h"
#include "engine/steps/builtins.h"
#include "tests/support/local_http_server.h"
#include "tests/support/temp_dir.h"

namespace herald::testing {
namespace {

using namespace std::chrono_literals;
using store::RunState;
using store::StepState;

class HttpWorkflowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = store::open_store("sqlite:" + (dir_ / "herald.db").string());
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    store_ = std::move(opened).value();
    runtime::EngineOptions options;
    options.worker_threads = 4;
    options.random_seed = 7;
    engine_ = std::make_unique<runtime::Engine>(*store_, registry_, options);
  }

  // Replaces BASE in the workflow with the server's URL.
  std::string with_base(std::string yaml) const {
    std::string base = server_.url();
    for (size_t pos = yaml.find("BASE"); pos != std::string::npos; pos = yaml.find("BASE", pos)) {
      yaml.replace(pos, 4, base);
    }
    return yaml;
  }

  store::RunRecord run(const std::string& yaml, Json inputs = Json::object()) {
    auto id = engine_->start_run(with_base(yaml), "http.yaml", inputs);
    EXPECT_TRUE(id.ok()) << (id.ok() ? "" : id.error().message);
    if (!id.ok()) return {};
    auto record = engine_->wait_for_run(*id, 30s);
    EXPECT_TRUE(record.ok());
    return record.ok() ? *record : store::RunRecord{};
  }

  std::map<std::string, store::StepRecord> steps_of(const std::string& run_id) {
    std::map<std::string, store::StepRecord> out;
    auto rows = store_->get_steps(run_id);
    EXPECT_TRUE(rows.ok());
    if (!rows.ok()) return out;
    for (const auto& row : *rows) {
      std::string key = (row.on_error ? "on_error." : "") + row.step_id;
      if (row.item >= 0) key += "[" + std::to_string(row.item) + "]";
      out[key] = row;
    }
    return out;
  }

  TempDir dir_{"herald-http-workflow"};
  LocalHttpServer server_;
  steps::StepRegistry registry_ = steps::StepRegistry::with_builtins();
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<runtime::Engine> engine_;
};

TEST_F(HttpWorkflowTest, RetriesThrough503sWithBackoff) {
  server_.script("GET", "/flaky",
                 {Response::text(503, "busy"), Response::text(503, "busy"), Response::json(200, {{"ok", true}})});
  auto record = run(R"(
id: flaky
steps:
  - id: call
    uses: http
    with: { url: "BASE/flaky" }
    retry: { attempts: 4, backoff: exponential, initial: 50ms, max: 1s, jitter: 0 }
  - id: after
    uses: set
    with: { ok: "{{ steps.call.output.body.ok }}" }
)");
  ASSERT_EQ(record.state, RunState::succeeded) << record.error.dump();
  auto requests = server_.requests("GET", "/flaky");
  ASSERT_EQ(requests.size(), 3u);
  // Exponential: ~50ms, then ~100ms between attempts.
  EXPECT_GE(requests[1].received_at - requests[0].received_at, 45ms);
  EXPECT_GE(requests[2].received_at - requests[1].received_at, 95ms);
  EXPECT_EQ(steps_of(record.id)["after"].output["ok"], true);
  EXPECT_EQ(steps_of(record.id)["call"].attempt, 3);
}

TEST_F(HttpWorkflowTest, HonoursRetryAfterOn429) {
  server_.script("POST", "/limited",
                 {Response::json(429, {{"error", "slow down"}}).with_header("Retry-After", "1"),
                  Response::json(201, {{"id", "p1"}})});
  auto record = run(R"(
id: limited
steps:
  - id: post
    uses: http
    with: { method: POST, url: "BASE/limited", json: { text: "hi" } }
    retry: { attempts: 3, initial: 10ms, max: 20ms }
)");
  ASSERT_EQ(record.state, RunState::succeeded) << record.error.dump();
  auto requests = server_.requests("POST", "/limited");
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_GE(requests[1].received_at - requests[0].received_at, 950ms);
}

TEST_F(HttpWorkflowTest, GivesUpAfterTheLastAttemptAndRunsOnError) {
  server_.route("GET", "/down", Response::text(503, "down for maintenance"));
  server_.route("POST", "/alerts", Response::json(200, {{"ok", true}}));
  auto record = run(R"(
id: down
steps:
  - id: call
    uses: http
    with: { url: "BASE/down" }
    retry: { attempts: 2, initial: 10ms }
  - id: never
    uses: set
    with: { x: 1 }
on_error:
  - id: alert
    uses: http
    with:
      method: POST
      url: "BASE/alerts"
      json: { failed: "{{ error.step }}", message: "{{ error.message }}" }
)");
  ASSERT_EQ(record.state, RunState::failed);
  EXPECT_EQ(server_.request_count("GET", "/down"), 2u);
  auto alerts = server_.requests("POST", "/alerts");
  ASSERT_EQ(alerts.size(), 1u);
  Json body = Json::parse(alerts[0].body);
  EXPECT_EQ(body["failed"], "call");
  auto steps = steps_of(record.id);
  EXPECT_EQ(steps["never"].state, StepState::cancelled);
  EXPECT_EQ(steps["on_error.alert"].state, StepState::succeeded);
}

TEST_F(HttpWorkflowTest, NotFoundIsNotRetried) {
  auto record = run(R"(
id: missing
steps:
  - id: call
    uses: http
    with: { url: "BASE/nothing-here" }
    retry: { attempts: 5, initial: 10ms }
)");
  ASSERT_EQ(record.state, RunState::failed);
  EXPECT_EQ(server_.request_count("GET", "/nothing-here"), 1u);
}

TEST_F(HttpWorkflowTest, StepTimeoutBoundsASlowServer) {
  server_.route("GET", "/slow", Response::text(200, "late").after(3s));
  auto started = std::chrono::steady_clock::now();
  auto record = run(R"(
id: slow
steps:
  - id: call
    uses: http
    timeout: 300ms
    with: { url: "BASE/slow" }
)");
  ASSERT_EQ(record.state, RunState::failed);
  EXPECT_EQ(record.error["code"], "deadline_exceeded") << record.error.dump();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2500ms);
}

TEST_F(HttpWorkflowTest, ParallelBranchesAndForeachCallTheServer) {
  server_.route("GET", "/a", Response::json(200, {{"n", 1}}).after(1s));
  server_.route("GET", "/b", Response::json(200, {{"n", 2}}).after(1s));
  server_.route("POST", "/posts/*", [](const RecordedRequest& request) {
    return Response::json(201, {{"path", request.path}, {"body", Json::parse(request.body)}});
  });
  auto record = run(R"(
id: fan
inputs:
  accounts: { type: array, default: ["x", "linkedin", "mastodon"] }
steps:
  - id: a
    uses: http
    needs: []
    with: { url: "BASE/a" }
  - id: b
    uses: http
    needs: []
    with: { url: "BASE/b" }
  - id: publish
    uses: http
    needs: [a, b]
    foreach: inputs.accounts
    concurrency: 3
    with:
      method: POST
      url: "BASE/posts/{{ item }}"
      json: { total: "{{ steps.a.output.body.n + steps.b.output.body.n }}", position: "{{ index }}" }
)");
  ASSERT_EQ(record.state, RunState::succeeded) << record.error.dump();
  // a and b ran side by side: the second request arrived while the first was still being
  // answered (one after the other, they would arrive at least the 1 s answer delay apart).
  auto a = server_.requests("GET", "/a");
  auto b = server_.requests("GET", "/b");
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  auto gap = a[0].received_at > b[0].received_at ? a[0].received_at - b[0].received_at
                                                  : b[0].received_at - a[0].received_at;
  EXPECT_LT(gap, 1s);
  auto steps = steps_of(record.id);
  ASSERT_EQ(steps["publish"].output.size(), 3u);
  EXPECT_EQ(steps["publish"].output[1]["body"]["path"], "/posts/linkedin");
  EXPECT_EQ(steps["publish"].output[2]["body"]["body"]["total"], 3);
  EXPECT_EQ(steps["publish"].output[2]["body"]["body"]["position"], 2);
}

TEST_F(HttpWorkflowTest, IdempotencyKeyIsSentWhenAskedAndStaysTheSameAcrossRetries) {
  server_.add_effects_route("/charge");
  server_.script("POST", "/charge-flaky", {Response::text(502, "bad gateway"), Response::json(200, {{"ok", true}})});
  auto record = run(R"(
id: pay
steps:
  - id: charge
    uses: http
    with: { method: POST, url: "BASE/charge", json: { amount: 100 }, idempotency: true }
  - id: flaky
    uses: http
    with: { method: POST, url: "BASE/charge-flaky", json: { amount: 5 }, idempotency: true }
    retry: { attempts: 3, initial: 10ms }
  - id: plain
    uses: http
    with: { method: POST, url: "BASE/charge-flaky", json: { amount: 1 } }
)");
  ASSERT_EQ(record.state, RunState::succeeded) << record.error.dump();
  EXPECT_EQ(server_.effects().effect_count(), 1);
  auto flaky = server_.requests("POST", "/charge-flaky");
  ASSERT_EQ(flaky.size(), 3u);
  EXPECT_FALSE(flaky[0].header("Idempotency-Key").empty());
  EXPECT_EQ(flaky[0].header("Idempotency-Key"), flaky[1].header("Idempotency-Key"));
  EXPECT_TRUE(flaky[2].header("Idempotency-Key").empty());
  EXPECT_EQ(steps_of(record.id)["flaky"].idempotency_key, flaky[0].header("Idempotency-Key"));
}

TEST_F(HttpWorkflowTest, ConnectionRefusedIsRetryable) {
  auto record = run(R"(
id: refused
steps:
  - id: call
    uses: http
    with: { url: "http://127.0.0.1:1/nothing", timeout: 2s }
    retry: { attempts: 2, initial: 10ms }
)");
  ASSERT_EQ(record.state, RunState::failed);
  auto steps = steps_of(record.id);
  EXPECT_EQ(steps["call"].attempt, 2);
  EXPECT_TRUE(steps["call"].error["retryable"].get<bool>());
}

}  // namespace
}  // namespace herald::testing
