// kill -9 at many moments — during an http call, during a wait, between commits, during a
// resume — then `herald resume`: every run must finish, each effect must happen exactly once per
// idempotency key (counted by the local server's ledger), and finished steps must not re-run.
#include <gtest/gtest.h>

#include <thread>

#include "tests/support/herald_command.h"
#include "tests/support/local_http_server.h"
#include "tests/support/temp_dir.h"

namespace herald::testing {
namespace {

using namespace std::chrono_literals;

const char* kWorkflow = R"(
id: crash
inputs:
  tag: { type: string, required: true }
steps:
  - id: prepare
    uses: set
    with: { body: { tag: "{{ inputs.tag }}", what: "first" } }
  - id: first
    uses: http
    with:
      method: POST
      url: "BASE/effects/first?delay_ms=300"
      json: "{{ steps.prepare.output.body }}"
      idempotency: true
    retry: { attempts: 10, initial: 50ms, max: 500ms }
  - id: pause
    uses: wait
    with: { for: 600ms }
  - id: each
    uses: http
    foreach: "{ 'a', 'b', 'c' }"
    concurrency: 2
    with:
      method: POST
      url: "BASE/effects/each/{{ item }}?delay_ms=150"
      json: { tag: "{{ inputs.tag }}", item: "{{ item }}" }
      idempotency: true
    retry: { attempts: 10, initial: 50ms, max: 500ms }
  - id: last
    uses: http
    with:
      method: POST
      url: "BASE/effects/last"
      json: { tag: "{{ inputs.tag }}" }
      idempotency: true
    retry: { attempts: 10, initial: 50ms, max: 500ms }
  - id: done
    uses: set
    with: { ok: true }
)";

constexpr int kEffectsPerRun = 5;  // first, each × 3, last

TEST(CrashTest, KillNineAtAnyMomentThenResumeFinishesEveryRunWithEffectsExactlyOnce) {
  TempDir dir("herald-crash-test");
  LocalHttpServer server;
  server.add_effects_route("/effects");
  std::string yaml = kWorkflow;
  for (size_t pos = yaml.find("BASE"); pos != std::string::npos; pos = yaml.find("BASE", pos)) {
    yaml.replace(pos, 4, server.url());
  }
  auto file = dir.write("crash.yaml", yaml);
  std::map<std::string, std::string> env = {{"HERALD_DATA_DIR", (dir / "data").string()}};

  // Kill moments, counted from when the run is stored (its "queued" line), so a slow build (ASan)
  // kills at the same points of the run: during the first http call (effect recorded, answer not
  // yet sent), during the wait, during the foreach, and late in the run. The first iteration
  // kills at once, possibly before anything is stored.
  const std::vector<std::chrono::milliseconds> kill_after = {0ms,   20ms,  120ms,  250ms, 400ms,
                                                             650ms, 900ms, 1150ms, 1400ms};
  int index = 0;
  for (auto delay : kill_after) {
    auto child = start_herald({"run", file.string(), "--input", "tag=run" + std::to_string(index)}, env);
    if (index == 0) {
      std::this_thread::sleep_for(30ms);
    } else {
      ASSERT_TRUE(child.wait_for_stdout("\"queued\"", 30s)) << child.stderr_text();
      std::this_thread::sleep_for(delay);
    }
    child.kill(SIGKILL);
    auto status = child.wait(10s);
    ASSERT_TRUE(status.has_value());
    // Every other time, also kill the resume that follows.
    if (index % 2 == 1) {
      auto resume = start_herald({"resume"}, env);
      std::this_thread::sleep_for(delay / 2 + 100ms);
      resume.kill(SIGKILL);
      ASSERT_TRUE(resume.wait(10s).has_value());
    }
    ++index;
  }

  auto resume = run_herald({"resume"}, env, 120s);
  ASSERT_EQ(resume.code(), 0) << resume.err;

  auto list = run_herald({"runs", "list", "--json", "--limit", "100"}, env);
  ASSERT_EQ(list.code(), 0) << list.err;
  Json runs = Json::parse(list.out);
  // A run killed before its first commit never existed; every run that did must have finished.
  ASSERT_GE(runs.size(), kill_after.size() - 1) << list.out;
  ASSERT_LE(runs.size(), kill_after.size()) << list.out;
  for (const auto& run : runs) {
    EXPECT_EQ(run["state"], "succeeded") << run.dump();
    auto show = run_herald({"runs", "show", run["id"], "--json"}, env);
    Json timeline = Json::parse(show.out);
    for (const auto& step : timeline["steps"]) {
      // Steps finished before a crash were never run again: one successful attempt each.
      int succeeded = 0;
      for (const auto& attempt : step["timeline"]) succeeded += attempt["state"] == "succeeded";
      EXPECT_LE(succeeded, 1) << run["id"] << " " << step.dump();
    }
  }

  const auto& ledger = server.effects();
  EXPECT_EQ(ledger.effect_count(), static_cast<int>(runs.size()) * kEffectsPerRun) << ledger.stats().dump(2);
  EXPECT_EQ(ledger.without_key(), 0);
  for (const auto& [key, count] : ledger.counts()) {
    EXPECT_EQ(count.effects, 1) << key;
    EXPECT_EQ(count.mismatches, 0) << key;
  }
}

}  // namespace
}  // namespace herald::testing
