// Runs per second of a 10-step workflow of `set`/`script` steps, every state change durable on
// SQLite; and the resident memory of 10,000 runs waiting on timers.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "engine/runtime/engine.h"
#include "engine/steps/builtins.h"

namespace {

using namespace std::chrono_literals;

const char* kTenSteps = R"(
id: ten-steps
inputs:
  n: { type: integer, default: 1 }
steps:
  - { id: s1, uses: set, with: { v: "{{ inputs.n }}" } }
  - { id: s2, uses: script, with: { code: "return steps.s1.output.v + 1" } }
  - { id: s3, uses: set, with: { v: "{{ steps.s2.output * 2 }}" } }
  - { id: s4, uses: script, with: { code: "return { total = steps.s3.output.v, ok = true }" } }
  - { id: s5, uses: set, with: { label: "total={{ steps.s4.output.total }}" } }
  - { id: s6, uses: script, with: { code: "return #steps.s5.output.label" } }
  - { id: s7, uses: set, with: { big: "{{ steps.s6.output > 3 }}" } }
  - { id: s8, uses: script, with: { code: "return steps.s7.output.big and 'yes' or 'no'" } }
  - { id: s9, uses: set, with: { answer: "{{ steps.s8.output }}" } }
  - { id: s10, uses: script, with: { code: "return { done = steps.s9.output.answer }" } }
)";

const char* kWaiting = R"(
id: waiting
steps:
  - { id: nap, uses: wait, with: { for: 1h } }
  - { id: after, uses: set, with: { x: 1 } }
)";

std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("herald-bench-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

long resident_kb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

void BM_DurableTenStepRuns(benchmark::State& state) {
  auto dir = fresh_dir("runs");
  auto store = herald::store::open_store("sqlite:" + (dir / "herald.db").string());
  if (!store.ok()) {
    state.SkipWithError(store.error().message.c_str());
    return;
  }
  auto registry = herald::steps::StepRegistry::with_builtins();
  herald::runtime::EngineOptions options;
  options.worker_threads = 2;
  herald::runtime::Engine engine(**store, registry, options);
  const int batch = static_cast<int>(state.range(0));
  int64_t runs = 0;
  for (auto _ : state) {
    std::vector<std::string> ids;
    ids.reserve(batch);
    for (int i = 0; i < batch; ++i) {
      auto id = engine.start_run(kTenSteps, "ten-steps.yaml", {{"n", i}});
      if (!id.ok()) {
        state.SkipWithError(id.error().message.c_str());
        return;
      }
      ids.push_back(*id);
    }
    if (!engine.wait_until_idle(120s).ok()) {
      state.SkipWithError("runs did not finish");
      return;
    }
    runs += batch;
  }
  state.counters["runs_per_s"] = benchmark::Counter(static_cast<double>(runs), benchmark::Counter::kIsRate);
  state.counters["steps_per_s"] = benchmark::Counter(static_cast<double>(runs * 10), benchmark::Counter::kIsRate);
  engine.shutdown();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_DurableTenStepRuns)->Arg(2000)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

void BM_TenThousandWaitingRuns(benchmark::State& state) {
  auto dir = fresh_dir("waiting");
  auto store = herald::store::open_store("sqlite:" + (dir / "herald.db").string());
  if (!store.ok()) {
    state.SkipWithError(store.error().message.c_str());
    return;
  }
  auto registry = herald::steps::StepRegistry::with_builtins();
  herald::runtime::EngineOptions options;
  options.worker_threads = 2;
  herald::runtime::Engine engine(**store, registry, options);
  long before = resident_kb();
  const int count = static_cast<int>(state.range(0));
  for (auto _ : state) {
    for (int i = 0; i < count; ++i) {
      auto id = engine.start_run(kWaiting, "waiting.yaml", herald::Json::object());
      if (!id.ok()) {
        state.SkipWithError(id.error().message.c_str());
        return;
      }
    }
    // Wait until every run sleeps in the store.
    herald::store::RunFilter filter;
    filter.state = herald::store::RunState::waiting;
    filter.limit = 1000;
    for (int tries = 0; tries < 600; ++tries) {
      auto unfinished = (*store)->unfinished_run_ids();
      if (unfinished.ok() && unfinished->empty()) break;
      std::this_thread::sleep_for(100ms);
    }
  }
  state.counters["waiting_runs"] = count;
  state.counters["rss_mb"] = static_cast<double>(resident_kb()) / 1024.0;
  state.counters["rss_growth_mb"] = static_cast<double>(resident_kb() - before) / 1024.0;
  engine.shutdown();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_TenThousandWaitingRuns)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
