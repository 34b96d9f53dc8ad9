// Checks a schema cannot express: ids, needs and cycles, uses, durations and retry, inputs,
// references to steps and inputs, and expression syntax through ParseOptions::check_expression.
#include <gtest/gtest.h>

#include "engine/model/workflow.h"
#include "tests/unit/model/model_test_util.h"

namespace herald::model {
namespace {

using testing::all_diagnostics;
using testing::HasDiagnostic;
using testing::HasOnlyDiagnostic;
using testing::parse;

TEST(WorkflowSemantics, DuplicateStepIdsAcrossStepsAndOnError) {
  ParseOutcome outcome = parse(R"(id: x
steps:
  - { id: a, uses: log }
  - { id: a, uses: log }
  - { id: on_error_1, uses: log }
on_error:
  - { id: a, uses: log }
  - uses: log
)");
  EXPECT_EQ(outcome.diagnostics.size(), 3u) << all_diagnostics(outcome);
  EXPECT_TRUE(HasDiagnostic(outcome, 4, 11, "steps[1].id",
                            "duplicate step id 'a' (already used by steps[0] at line 3); "
                            "expected each step id once"));
  EXPECT_TRUE(HasDiagnostic(outcome, 7, 11, "on_error[0].id", "duplicate step id 'a'"));
  // The second on_error step has no id; the one it is given clashes with steps[2].
  EXPECT_TRUE(HasDiagnostic(outcome, 8, 5, "on_error[1]",
                            "duplicate step id 'on_error_1' (already used by steps[2] at line 5)"));
}

TEST(WorkflowSemantics, NeedsNamingUnknownSteps) {
  ParseOutcome outcome = parse(R"(id: x
steps:
  - { id: fetch, uses: http }
  - { id: post, uses: http, needs: [fetc, ghost] }
  - { id: solo, uses: http, needs: nobody }
  - { id: me, uses: http, needs: [me] }
  - { id: late, uses: http, needs: [cleanup] }
on_error:
  - { id: cleanup, uses: log }
)");
  EXPECT_EQ(outcome.diagnostics.size(), 5u) << all_diagnostics(outcome);
  EXPECT_TRUE(HasDiagnostic(outcome, 4, 37, "steps[1].needs[0]",
                            "unknown step 'fetc' in needs; did you mean 'fetch'? known steps: "
                            "fetch, late, me, post, solo"));
  EXPECT_TRUE(HasDiagnostic(outcome, 4, 43, "steps[1].needs[1]", "unknown step 'ghost' in needs"));
  EXPECT_TRUE(HasDiagnostic(outcome, 5, 36, "steps[2].needs", "unknown step 'nobody' in needs"));
  EXPECT_TRUE(HasDiagnostic(outcome, 6, 35, "steps[3].needs[0]", "a step cannot need itself"));
  EXPECT_TRUE(HasDiagnostic(outcome, 7, 37, "steps[4].needs[0]",
                            "'cleanup' is an on_error step; needs can only name steps under "
                            "steps"));
}

TEST(WorkflowSemantics, CycleThroughNeedsIsNamed) {
  ParseOutcome outcome = parse(R"(id: x
steps:
  - { id: a, uses: log, needs: [b] }
  - { id: b, uses: log, needs: [a] }
  - { id: c, uses: log, needs: [a] }
)");
  EXPECT_TRUE(HasOnlyDiagnostic(outcome, 3, 32, "steps[0].needs",
                                "needs form a cycle: a -> b -> a; expected steps that can run one "
                                "after another, remove one of these links"));
}

TEST(WorkflowSemantics, CycleThroughFileOrderIsExplained) {
  // b and c have no needs:, so b waits for a and c for b; a waiting for c closes the loop.
  ParseOutcome outcome = parse(R"(id: x
steps:
  - id: a
    uses: log
    needs: c
  - id: b
    uses: log
  - id: c
    uses: log
)");
  EXPECT_TRUE(HasOnlyDiagnostic(outcome, 5, 12, "steps[0].needs",
                                "needs form a cycle: a -> c -> b -> a (c and b have no needs:, so "
                                "each waits for the step before it)"));
}

TEST(WorkflowSemantics, EachSeparateCycleIsReportedOnce) {
  ParseOutcome outcome = parse(R"(id: x
steps:
  - { id: a, uses: log, needs: [b] }
  - { id: b, uses: log, needs: [a] }
  - { id: waits_on_cycle, uses: log, needs: [a, b] }
  - { id: c, uses: log, needs: [d] }
  - { id: d, uses: log, needs: [e] }
  - { id: e, uses: log, needs: [c] }
)");
  EXPECT_EQ(outcome.diagnostics.size(), 2u) << all_diagnostics(outcome);
  EXPECT_TRUE(HasDiagnostic(outcome, 3, 32, "steps[0].needs", "needs form a cycle: a -> b -> a"));
  EXPECT_TRUE(
      HasDiagnostic(outcome, 6, 32, "steps[3].needs", "needs form a cycle: c -> d -> e -> c"));
}

TEST(WorkflowSemantics, UnknownUsesListsTheKnownSteps) {
  ParseOutcome outcome = parse(R"(id: x
steps:
  - { id: a, uses: htpp }
  - { id: b, uses: publish }
on_error:
  - uses: slack.notify
)");
  EXPECT_EQ(outcome.diagnostics.size(), 3u) << all_diagnostics(outcome);
  EXPECT_TRUE(HasDiagnostic(outcome, 3, 20, "steps[0].uses",
                            "unknown step type 'htpp'; did you mean 'http'? known step types: "
                            "http, log, script, set, wait"));
  EXPECT_TRUE(HasDiagnostic(outcome, 4, 20, "steps[1].uses", "unknown step type 'publish'"));
  EXPECT_TRUE(
      HasDiagnostic(outcome, 6, 11, "on_error[0].uses", "unknown step type 'slack.notify'"));
}

TEST(WorkflowSemantics, IsKnownStepDecidesWhenGiven) {
  ParseOptions options;
  options.is_known_step = [](std::string_view uses) { return uses.starts_with("x."); };
  ParseOutcome outcome =
      parse_workflow("id: x\nsteps:\n  - { id: a, uses: x.publish }\n  - { id: b, uses: log }\n",
                     "wf.yaml", options);
  EXPECT_TRUE(HasOnlyDiagnostic(outcome, 4, 20, "steps[1].uses",
                                "unknown step type 'log'; expected a built-in step or an "
                                "installed plugin capability"));
}

TEST(WorkflowSemantics, BadDurations) {
  ParseOutcome outcome = parse(R"(id: x
steps:
  - id: a
    uses: http
    timeout: 30
    retry: { attempts: 3, initial: 1x, max: soon }
  - id: b
    uses: http
    timeout: "0s"
  - id: c
    uses: http
    timeout: 90
)");
  EXPECT_EQ(outcome.diagnostics.size(), 5u) << all_diagnostics(outcome);
  // A bare number is not a duration: the schema says so, in words about the type.
  EXPECT_TRUE(
      HasDiagnostic(outcome, 5, 14, "steps[0].timeout", "expected a string, got an integer (30)"));
  EXPECT_TRUE(HasDiagnostic(outcome, 6, 36, "steps[0].retry.initial",
                            "bad duration '1x': unit 'x' unknown; expected ms, s, m, h or d"));
  EXPECT_TRUE(HasDiagnostic(outcome, 6, 45, "steps[0].retry.max", "bad duration 'soon'"));
  EXPECT_TRUE(HasDiagnostic(outcome, 9, 14, "steps[1].timeout",
                            "a timeout of 0 would fail every attempt; expected a positive "
                            "duration such as 30s"));
  EXPECT_TRUE(HasDiagnostic(outcome, 12, 14, "steps[2].timeout", "expected a string"));
}

TEST(WorkflowSemantics, RetryInitialLongerThanMax) {
  ParseOutcome outcome = parse(R"(id: x
steps:
  - id: a
    uses: http
    retry:
      attempts: 5
      initial: 1m
      max: 10s
)");
  EXPECT_TRUE(HasOnlyDiagnostic(outcome, 8, 12, "steps[0].retry.max",
                                "retry.max (10s) is shorter than retry.initial (1m); expected max "
                                ">= initial"));
}

TEST(WorkflowSemantics, ConcurrencyWithoutForeach) {
  ParseOutcome outcome = parse("id: x\nsteps:\n  - { id: a, uses: log, concurrency: 3 }\n");
  EXPECT_TRUE(HasOnlyDiagnostic(outcome, 3, 38, "steps[0].concurrency",
                                "concurrency only applies to a step with foreach"));
}

TEST(WorkflowSemantics, InputDefaultsMustHaveTheInputsType) {
  ParseOutcome outcome = parse(R"(id: x
inputs:
  a: { type: integer, default: 2.5 }
  b: { type: boolean, default: "yes" }
  c: { default: 3 }
  d: { type: array, default: {} }
  e: { type: object, default: [] }
  f: { type: number, default: "1" }
  ok_int: { type: integer, default: 4.0 }
  ok_num: { type: number, default: 4 }
  ok_obj: { type: object, default: { k: v } }
steps:
  - { id: a, uses: log }
)");
  EXPECT_EQ(outcome.diagnostics.size(), 6u) << all_diagnostics(outcome);
  EXPECT_TRUE(HasDiagnostic(outcome, 3, 32, "inputs.a.default",
                            "the default is a number (2.5) but the input's type is integer; "
                            "expected an integer"));
  EXPECT_TRUE(HasDiagnostic(outcome, 4, 32, "inputs.b.default",
                            "the default is a string ('yes') but the input's type is boolean; "
                            "expected true or false"));
  EXPECT_TRUE(HasDiagnostic(outcome, 5, 17, "inputs.c.default",
                            "the default is an integer (3) but the input's type is string"));
  EXPECT_TRUE(HasDiagnostic(outcome, 6, 30, "inputs.d.default", "expected a list"));
  EXPECT_TRUE(HasDiagnostic(outcome, 7, 31, "inputs.e.default", "expected a mapping"));
  EXPECT_TRUE(HasDiagnostic(outcome, 8, 31, "inputs.f.default", "expected a number"));
}

TEST(WorkflowSemantics, RequiredInputWithADefault) {
  ParseOutcome outcome = parse(R"(id: x
inputs:
  topic:
    type: string
    default: spring
    required: true
steps:
  - { id: a, uses: log }
)");
  EXPECT_TRUE(HasOnlyDiagnostic(outcome, 6, 15, "inputs.topic.required",
                                "an input with a default is never missing; expected either "
                                "required: true or a default, not both"));
}

TEST(WorkflowSemantics, InputNamesMustWorkInLua) {
  ParseOutcome outcome =
      parse("id: x\ninputs:\n  my-topic: { type: string }\nsteps:\n  - { id: a, uses: log }\n");
  EXPECT_TRUE(
      HasOnlyDiagnostic(outcome, 3, 3, "inputs.my-topic", "'my-topic' is not a valid input name"));
}

TEST(WorkflowSemantics, ReferencesToUnknownStepsAndInputs) {
  ParseOutcome outcome = parse(R"(id: x
inputs:
  topic: { type: string, default: t }
vars:
  greeting: "Hello {{ inputs.topik }}"
steps:
  - id: fetch
    uses: http
    with:
      url: "https://x.test/{{ inputs.topic }}/{{ steps.fetch_all.output.id }}"
      note: "steps.not_a_template stays text"
  - id: decide
    uses: log
    when: steps.fetch.output.status == 200 and steps["nope"] == nil
    foreach: inputs.items
    with: { message: "{{ mysteps.x }} {{ item.steps.y }}" }
  - id: run
    uses: script
    with:
      code: |
        local n = steps.fetch.output.n
        return inputs.topic .. steps.gone.output
)");
  EXPECT_EQ(outcome.diagnostics.size(), 5u) << all_diagnostics(outcome);
  EXPECT_TRUE(HasDiagnostic(outcome, 5, 13, "vars.greeting",
                            "inputs.topik refers to an undeclared input 'topik'; did you mean "
                            "'topic'? declared inputs: topic"));
  EXPECT_TRUE(HasDiagnostic(outcome, 10, 12, "steps[0].with.url",
                            "steps.fetch_all refers to an unknown step 'fetch_all'; did you mean "
                            "'fetch'? known steps: decide, fetch, run"));
  EXPECT_TRUE(HasDiagnostic(outcome, 14, 11, "steps[1].when", "unknown step 'nope'"));
  EXPECT_TRUE(HasDiagnostic(outcome, 15, 14, "steps[1].foreach",
                            "inputs.items refers to an undeclared input 'items'"));
  EXPECT_TRUE(HasDiagnostic(outcome, 20, 13, "steps[2].with.code", "unknown step 'gone'"));
}

TEST(WorkflowSemantics, NoInputsDeclared) {
  ParseOutcome outcome = parse("id: x\nsteps:\n  - { id: a, uses: log, when: inputs.go }\n");
  EXPECT_TRUE(HasOnlyDiagnostic(outcome, 3, 31, "steps[0].when",
                                "the workflow declares no inputs (add it under inputs:)"));
}

TEST(WorkflowSemantics, ExpressionSyntaxIsCheckedByKind) {
  std::vector<std::pair<std::string, ExpressionKind>> seen;
  ParseOptions options = testing::test_options();
  auto fake = options.check_expression;
  options.check_expression = [&](std::string_view source, ExpressionKind kind) {
    seen.emplace_back(std::string(source), kind);
    return fake(source, kind);
  };
  ParseOutcome outcome = parse(R"(id: x
vars:
  v: "{{ SYNTAX_ERROR }}"
steps:
  - id: a
    uses: set
    when: SYNTAX_ERROR
    foreach: "{1, 2}"
    with:
      list: [ok, { deep: "{{ SYNTAX_ERROR }}" }]
      n: 3
  - id: s
    uses: script
    with: { code: "return SYNTAX_ERROR" }
)",
                               options);
  EXPECT_EQ(outcome.diagnostics.size(), 4u) << all_diagnostics(outcome);
  EXPECT_TRUE(HasDiagnostic(outcome, 3, 6, "vars.v", "invalid template: fake: bad template"));
  EXPECT_TRUE(HasDiagnostic(outcome, 7, 11, "steps[0].when",
                            "invalid Lua expression: fake: bad expression"));
  EXPECT_TRUE(HasDiagnostic(outcome, 10, 26, "steps[0].with.list[1].deep",
                            "invalid template: fake: bad template"));
  EXPECT_TRUE(
      HasDiagnostic(outcome, 14, 19, "steps[1].with.code", "invalid Lua script: fake: bad script"));
  // Every string was offered with its kind; numbers were not.
  std::vector<std::pair<std::string, ExpressionKind>> expected = {
      {"SYNTAX_ERROR", ExpressionKind::expression},
      {"{1, 2}", ExpressionKind::expression},
      {"ok", ExpressionKind::template_text},
      {"{{ SYNTAX_ERROR }}", ExpressionKind::template_text},
      {"return SYNTAX_ERROR", ExpressionKind::script},
      {"{{ SYNTAX_ERROR }}", ExpressionKind::template_text},
  };
  EXPECT_EQ(seen, expected);
}

TEST(WorkflowSemantics, RawFieldsAreNotTemplates) {
  ParseOptions options = testing::test_options();
  options.raw_fields = [](std::string_view uses) -> std::vector<std::string> {
    if (uses == "script") return {"code"};
    if (uses == "http") return {"body"};
    return {};
  };
  ParseOutcome outcome = parse(R"(id: x
steps:
  - id: a
    uses: http
    with: { body: "SYNTAX_ERROR {{ steps.nothing }}", url: "{{ SYNTAX_ERROR }}" }
)",
                               options);
  EXPECT_TRUE(HasOnlyDiagnostic(outcome, 5, 60, "steps[0].with.url", "invalid template"));
}

TEST(WorkflowSemantics, ACheckerThatThrowsIsReportedNotFatal) {
  ParseOptions options;
  options.check_expression = [](std::string_view, ExpressionKind) -> std::optional<std::string> {
    throw std::runtime_error("lua state lost");
  };
  ParseOutcome outcome =
      parse_workflow("id: x\nsteps:\n  - { id: a, uses: log, when: x }\n", "wf.yaml", options);
  EXPECT_TRUE(HasOnlyDiagnostic(outcome, 3, 31, "steps[0].when",
                                "invalid Lua expression: the check failed: lua state lost"));
}

TEST(WorkflowSemantics, AllErrorsAreReportedAtOnceInFileOrder) {
  ParseOutcome outcome = parse(R"(id: Bad
nmae: typo
inputs:
  n: { type: integer, default: x }
steps:
  - id: a
    uses: htp
    timeout: 5x
  - id: b
    uses: log
    needs: [zz]
    when: steps.q.output
    retry: { attempts: 101 }
  - id: a
    uses: log
on_error:
  - uses: log
    with: { m: "{{ SYNTAX_ERROR }}" }
)");
  ASSERT_EQ(outcome.diagnostics.size(), 10u) << all_diagnostics(outcome);
  std::vector<std::string> paths;
  for (size_t i = 0; i < outcome.diagnostics.size(); ++i) {
    paths.push_back(outcome.diagnostics[i].path);
    if (i > 0) {
      const Location& before = outcome.diagnostics[i - 1].location;
      const Location& here = outcome.diagnostics[i].location;
      EXPECT_TRUE(before.line < here.line ||
                  (before.line == here.line && before.column <= here.column))
          << all_diagnostics(outcome);
    }
  }
  std::vector<std::string> expected = {"id",
                                       "nmae",
                                       "inputs.n.default",
                                       "steps[0].uses",
                                       "steps[0].timeout",
                                       "steps[1].needs[0]",
                                       "steps[1].when",
                                       "steps[1].retry.attempts",
                                       "steps[2].id",
                                       "on_error[0].with.m"};
  EXPECT_EQ(paths, expected);
  EXPECT_FALSE(outcome.workflow.has_value());
}

TEST(Diagnostic, TextAndJson) {
  Diagnostic d{"flows/post.yaml", Location{12, 7}, "steps[2].retry.attempts",
               "expected an integer from 1 to 100, got 0"};
  EXPECT_EQ(d.to_string(),
            "flows/post.yaml:12:7: steps[2].retry.attempts: expected an integer from 1 to 100, "
            "got 0");
  EXPECT_EQ(d.to_json(), Json({{"file", "flows/post.yaml"},
                               {"line", 12},
                               {"column", 7},
                               {"path", "steps[2].retry.attempts"},
                               {"message", "expected an integer from 1 to 100, got 0"}}));
  Diagnostic whole{"a.yaml", Location{1, 1}, "", "the file is empty"};
  EXPECT_EQ(whole.to_string(), "a.yaml:1:1: the file is empty");
  Diagnostic nowhere{"a.yaml", Location{}, "", "cannot read file: Permission denied"};
  EXPECT_EQ(nowhere.to_string(), "a.yaml: cannot read file: Permission denied");
}

}  // namespace
}  // namespace herald::model
