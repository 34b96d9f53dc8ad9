// Store throughput: commits per second of the Commit the runtime makes at each step transition
// (one step upsert, one attempt upsert, one run update), on a real SQLite file in WAL mode. The
// runtime's target of 1,000 runs/s of 10 steps at ~2 commits per step needs 20,000 commits/s.
//
//   store_benchmark --benchmark_filter=StepTransition
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "engine/store/store.h"

namespace herald::store {
namespace {

constexpr int kStepsPerRun = 10;

// One store file per benchmark, in a fresh temporary folder removed at the end.
class BenchStore {
 public:
  explicit BenchStore(const std::string& name) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / ("herald-bench-" + name + "-XXXXXX")).string();
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    dir_ = pattern;
    auto opened = open_store("sqlite:" + (dir_ / "herald.db").string());
    if (!opened) {
      fprintf(stderr, "%s\n", opened.error().message.c_str());
      std::abort();
    }
    store_ = std::move(*opened);
    auto version = store_->put_workflow_version("", "bench", "id: bench", "bench.yaml");
    version_id_ = version->id;
  }
  ~BenchStore() {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  Store& store() { return *store_; }

  RunRecord new_run() {
    RunRecord run;
    run.id = new_run_id();
    run.workflow_id = "bench";
    run.workflow_version_id = version_id_;
    run.state = RunState::running;
    run.inputs = {{"topic", "spring launch"}, {"accounts", {"linkedin:acme", "x:acme"}}};
    run.trigger = {{"kind", "manual"}};
    run.created_at = run.updated_at = Clock::now();
    run.started_at = run.created_at;
    Commit commit;
    commit.insert_runs = {run};
    if (!store_->commit(commit)) std::abort();
    return run;
  }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  int64_t version_id_ = 0;
};

// Walks runs forward the way the runtime does: per step, a "started" commit (step running,
// attempt 1 running) and a "finished" commit (both succeeded, with an output); a new run after
// ten steps. Each call is one commit.
class RunDriver {
 public:
  explicit RunDriver(BenchStore& bench) : bench_(bench) { next_run(); }

  Commit next_commit() {
    const auto now = Clock::now();
    Commit commit;
    StepRecord step;
    step.run_id = run_.id;
    step.step_id = "step-" + std::to_string(step_);
    step.attempt = 1;
    step.input = {{"message", "hello {{ inputs.topic }}"}, {"n", step_}};
    step.idempotency_key = run_.id + "/" + step.step_id;
    step.started_at = now;
    AttemptRecord attempt;
    attempt.run_id = run_.id;
    attempt.step_id = step.step_id;
    attempt.attempt = 1;
    attempt.input = step.input;
    attempt.started_at = now;
    if (!finishing_) {
      step.state = attempt.state = StepState::running;
    } else {
      step.state = attempt.state = StepState::succeeded;
      step.output = attempt.output = {{"text", "hello spring launch"}, {"n", step_}};
      step.finished_at = attempt.finished_at = now;
    }
    run_.updated_at = now;
    if (finishing_ && step_ + 1 == kStepsPerRun) {
      run_.state = RunState::succeeded;
      run_.finished_at = now;
    }
    commit.steps.push_back(std::move(step));
    commit.attempts.push_back(std::move(attempt));
    commit.update_run = run_;
    advance();
    return commit;
  }

 private:
  void advance() {
    if (!finishing_) {
      finishing_ = true;
      return;
    }
    finishing_ = false;
    if (++step_ == kStepsPerRun) next_run();
  }
  void next_run() {
    run_ = bench_.new_run();
    step_ = 0;
    finishing_ = false;
  }

  BenchStore& bench_;
  RunRecord run_;
  int step_ = 0;
  bool finishing_ = false;
};

BenchStore& shared_store() {
  // Shared by every thread of every run of the benchmark; static initialisation is thread-safe.
  static BenchStore store("transition");
  return store;
}

// The timed loop includes building the Commit (a few small JSON values), as the runtime pays it,
// and the insert_runs Commit that starts each run (one per 20 transitions, not counted in
// commits/s). runs/s is 10-step runs completed: the figure the runtime's 1,000 runs/s target
// compares with, for the store's share of the work.
void BM_StepTransitionCommit(benchmark::State& state) {
  BenchStore& bench = shared_store();
  RunDriver driver(bench);
  for (auto _ : state) {
    Commit commit = driver.next_commit();
    if (!bench.store().commit(commit)) state.SkipWithError("commit failed");
  }
  const auto iterations = static_cast<double>(state.iterations());
  state.counters["commits/s"] = benchmark::Counter(iterations, benchmark::Counter::kIsRate);
  state.counters["runs/s"] =
      benchmark::Counter(iterations / (2 * kStepsPerRun), benchmark::Counter::kIsRate);
}

// The store alone: Commits are built ahead, outside the timed region (so are the insert_runs
// Commits that start each run).
void BM_StepTransitionCommitPrebuilt(benchmark::State& state) {
  BenchStore& bench = shared_store();
  RunDriver driver(bench);
  std::vector<Commit> commits;
  size_t next = 0;
  for (auto _ : state) {
    if (next == commits.size()) {
      state.PauseTiming();
      commits.clear();
      for (int i = 0; i < 2000; ++i) commits.push_back(driver.next_commit());
      next = 0;
      state.ResumeTiming();
    }
    if (!bench.store().commit(commits[next++])) state.SkipWithError("commit failed");
  }
  state.counters["commits/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

}  // namespace
}  // namespace herald::store

BENCHMARK(herald::store::BM_StepTransitionCommit)
    ->UseRealTime()
    ->MeasureProcessCPUTime()
    ->MinTime(2.0)
    ->ThreadRange(1, 8);

BENCHMARK(herald::store::BM_StepTransitionCommitPrebuilt)
    ->UseRealTime()
    ->MeasureProcessCPUTime()
    ->MinTime(2.0);

BENCHMARK_MAIN();
