#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "engine/expr/evaluator.h"

namespace herald::expr {
namespace {

TEST(EvaluatorThreads, ThreadLocalEvaluatorsRunAtOnce) {
  constexpr int kThreads = 4;
  constexpr int kEvaluations = 2000;
  std::atomic<int> failures{0};
  std::vector<Evaluator*> evaluators(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &failures, &evaluators] {
      Evaluator& evaluator = Evaluator::for_this_thread();
      evaluators[t] = &evaluator;
      for (int i = 0; i < kEvaluations; ++i) {
        Json inputs = {{"thread", t}, {"i", i}};
        Scope scope;
        scope.inputs = &inputs;
        Result<Json> r = evaluator.evaluate("inputs.thread * 100000 + inputs.i", scope);
        if (!r.ok() || *r != t * 100000 + i) ++failures;
        Result<Json> s = evaluator.render("t{{ inputs.thread }}-{{ inputs.i }}", scope);
        if (!s.ok() || *s != "t" + std::to_string(t) + "-" + std::to_string(i)) ++failures;
        if (i % 500 == 0) {
          Limits limits;
          limits.instructions = 10'000;
          if (evaluator.run_script("while true do end", scope, limits).ok()) ++failures;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  for (int a = 0; a < kThreads; ++a) {
    for (int b = a + 1; b < kThreads; ++b) EXPECT_NE(evaluators[a], evaluators[b]);
  }
}

}  // namespace
}  // namespace herald::expr
