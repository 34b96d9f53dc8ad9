// Expression, template and script evaluation on a realistic run context: what every `when:`,
// every `{{ }}` in a step's input and every `script` step costs. Target: under 2 us for
// `steps.a.output.n > 3 and inputs.x == "y"`.
#include <benchmark/benchmark.h>

#include "engine/expr/evaluator.h"

namespace herald::expr {
namespace {

// A context the size of a mid-sized run: a dozen inputs, ten finished steps with outputs of a
// few KiB (an HTTP response among them), the trigger's payload, env and vars.
struct Context {
  Json inputs, vars, trigger, steps, run, env;
  Scope scope;

  Context() {
    inputs = {{"x", "y"},
              {"name", "Ada"},
              {"limit", 10},
              {"channel", "news"},
              {"dry_run", false},
              {"ratio", 0.25},
              {"tags", {"launch", "product", "social"}},
              {"locale", "en-GB"},
              {"account", {{"id", 42}, {"handle", "@herald"}, {"verified", true}}}};
    vars = {{"greeting", "hello"}, {"max_posts", 5}, {"platforms", {"mastodon", "bluesky"}}};
    trigger = {{"kind", "webhook"},
               {"body", {{"id", 7}, {"title", "A post"}, {"text", std::string(500, 'x')}}}};
    steps = Json::object();
    for (int i = 0; i < 10; ++i) {
      Json items = Json::array();
      for (int j = 0; j < 20; ++j)
        items.push_back({{"id", j}, {"title", "item " + std::to_string(j)}});
      steps["s" + std::to_string(i)] = {
          {"output", {{"n", i}, {"items", items}}}, {"state", "succeeded"}, {"attempts", 1}};
    }
    steps["a"] = {{"output", {{"n", 5}, {"status", 200}, {"body", {{"ok", true}}}}},
                  {"state", "succeeded"},
                  {"attempts", 1}};
    run = {{"id", "0190f3a2-7c1e-7b61-9d4e-5c2a1f0e8b3d"},
           {"workflow", "publish-launch"},
           {"started_at", "2024-05-01T10:00:00Z"}};
    env = {{"REGION", "eu"}, {"STAGE", "prod"}};
    scope.inputs = &inputs;
    scope.vars = &vars;
    scope.trigger = &trigger;
    scope.steps = &steps;
    scope.run = &run;
    scope.env = &env;
  }
};

void check(const Result<Json>& result, benchmark::State& state) {
  if (!result.ok()) state.SkipWithError(result.error().message.c_str());
}

void BM_Expression(benchmark::State& state) {
  Context context;
  Evaluator& evaluator = Evaluator::for_this_thread();
  for (auto _ : state) {
    Result<Json> r =
        evaluator.evaluate(R"(steps.a.output.n > 3 and inputs.x == "y")", context.scope);
    benchmark::DoNotOptimize(r);
  }
  check(evaluator.evaluate(R"(steps.a.output.n > 3 and inputs.x == "y")", context.scope), state);
}
BENCHMARK(BM_Expression);

// The fixed cost of one evaluation: sandbox entry, fresh _ENV, limits, result conversion.
void BM_ExpressionConstant(benchmark::State& state) {
  Context context;
  Evaluator& evaluator = Evaluator::for_this_thread();
  for (auto _ : state) {
    Result<Json> r = evaluator.evaluate("true", context.scope);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_ExpressionConstant);

void BM_ExpressionDeepField(benchmark::State& state) {
  Context context;
  Evaluator& evaluator = Evaluator::for_this_thread();
  for (auto _ : state) {
    Result<Json> r = evaluator.evaluate(
        "#steps.s9.output.items > 10 and steps.s9.output.items[20].id", context.scope);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_ExpressionDeepField);

void BM_TemplateInterpolation(benchmark::State& state) {
  Context context;
  Evaluator& evaluator = Evaluator::for_this_thread();
  const Json text = "Hello {{ inputs.name }}, step a returned {{ steps.a.output.status }}";
  for (auto _ : state) {
    Result<Json> r = evaluator.render(text, context.scope);
    benchmark::DoNotOptimize(r);
  }
  check(evaluator.render(text, context.scope), state);
}
BENCHMARK(BM_TemplateInterpolation);

void BM_TemplateExactValue(benchmark::State& state) {
  Context context;
  Evaluator& evaluator = Evaluator::for_this_thread();
  const Json text = "{{ steps.a.output.body }}";
  for (auto _ : state) {
    Result<Json> r = evaluator.render(text, context.scope);
    benchmark::DoNotOptimize(r);
  }
  check(evaluator.render(text, context.scope), state);
}
BENCHMARK(BM_TemplateExactValue);

// A typical step input: an http step's `with:` with templates in a few of its strings.
void BM_RenderStepInput(benchmark::State& state) {
  Context context;
  Evaluator& evaluator = Evaluator::for_this_thread();
  const Json with = Json::parse(R"({
    "method": "POST",
    "url": "https://api.example.com/accounts/{{ inputs.account.id }}/posts",
    "headers": {"Content-Type": "application/json", "X-Run": "{{ run.id }}"},
    "json": {"text": "{{ trigger.body.title }}", "tags": "{{ inputs.tags }}", "draft": false},
    "timeout": "10s"
  })");
  for (auto _ : state) {
    Result<Json> r = evaluator.render(with, context.scope);
    benchmark::DoNotOptimize(r);
  }
  check(evaluator.render(with, context.scope), state);
}
BENCHMARK(BM_RenderStepInput);

void BM_Script(benchmark::State& state) {
  Context context;
  Evaluator& evaluator = Evaluator::for_this_thread();
  const char* code = R"(
    local total, titles = 0, {}
    for _, item in ipairs(steps.s3.output.items) do
      total = total + item.id
      if item.id % 5 == 0 then titles[#titles + 1] = item.title end
    end
    return {total = total, titles = titles, who = inputs.name}
  )";
  for (auto _ : state) {
    Result<Json> r = evaluator.run_script(code, context.scope);
    benchmark::DoNotOptimize(r);
  }
  check(evaluator.run_script(code, context.scope), state);
}
BENCHMARK(BM_Script);

// `herald validate`: a syntax check on the compile-only state.
void BM_CheckExpression(benchmark::State& state) {
  for (auto _ : state) {
    auto message = check_expression(R"(steps.a.output.n > 3 and inputs.x == "y")");
    benchmark::DoNotOptimize(message);
  }
}
BENCHMARK(BM_CheckExpression);

}  // namespace
}  // namespace herald::expr

BENCHMARK_MAIN();
