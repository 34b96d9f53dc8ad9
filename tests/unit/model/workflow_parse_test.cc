// Valid workflows: the typed model, locations, defaults, dependencies, and JSON input.
#include <gtest/gtest.h>

#include "engine/model/workflow.h"
#include "tests/unit/model/model_test_util.h"

namespace herald::model {
namespace {

using std::chrono::milliseconds;
using testing::all_diagnostics;
using testing::parse;

// DESIGN.md's sketch, adapted to the steps that exist today (http, set, log, script, wait).
constexpr std::string_view kLaunchPost = R"(id: launch-post
name: Launch post
description: Drafts, reviews and posts the launch announcement.
triggers:
  - schedule: { cron: "0 9 * * MON-FRI", timezone: Europe/Paris }
  - webhook: { path: launch, secret: "{{ secrets.LAUNCH_HOOK }}" }
  - manual:
inputs:
  topic: { type: string, default: "our spring launch" }
  variations: { type: integer, default: 3, description: How many drafts }
  audience: { type: array, required: true }
vars:
  signature: "-- the {{ inputs.topic }} team"
steps:
  - id: draft
    uses: script
    with:
      code: |
        local out = {}
        for i = 1, inputs.variations do out[i] = { text = "About " .. inputs.topic } end
        return { variations = out }
  - id: review
    uses: log
    with:
      message: "{{ steps.draft.output.variations[1].text }}"
  - id: post
    uses: http
    when: steps.review.output ~= nil
    with: { method: POST, url: "https://example.test/posts", json: { text: "{{ steps.draft.output.variations[1].text }}" } }
    retry: { attempts: 3, backoff: exponential, initial: 1s, max: 30s }
    timeout: 1m30s
  - id: fan_out
    uses: set
    foreach: inputs.audience
    concurrency: 4
    needs: [draft]
    with: { who: "{{ item }}" }
  - id: pause
    uses: wait
    needs: []
    with: { for: 30s }
on_error:
  - uses: log
    with: { message: "launch-post failed: {{ error.message }}" }
  - id: tidy_up
    uses: set
    with: { done: true }
)";

TEST(WorkflowParse, FullWorkflowBuildsTheTypedModel) {
  ParseOutcome outcome = parse(kLaunchPost);
  ASSERT_TRUE(outcome.ok()) << all_diagnostics(outcome);
  const Workflow& wf = *outcome.workflow;
  EXPECT_EQ(wf.id, "launch-post");
  EXPECT_EQ(wf.name, "Launch post");
  EXPECT_EQ(wf.description, "Drafts, reviews and posts the launch announcement.");
  EXPECT_EQ(wf.file, "wf.yaml");

  ASSERT_EQ(wf.triggers.size(), 3u);
  EXPECT_EQ(wf.triggers[0].type, "schedule");
  EXPECT_EQ(wf.triggers[0].config["cron"], "0 9 * * MON-FRI");
  EXPECT_EQ(wf.triggers[0].config["timezone"], "Europe/Paris");
  EXPECT_EQ(wf.triggers[0].location.line, 5);
  EXPECT_EQ(wf.triggers[0].location.column, 5);
  EXPECT_EQ(wf.triggers[1].type, "webhook");
  EXPECT_EQ(wf.triggers[1].config["secret"], "{{ secrets.LAUNCH_HOOK }}");
  EXPECT_EQ(wf.triggers[2].type, "manual");
  EXPECT_EQ(wf.triggers[2].config, Json::object());  // `manual:` with nothing is {}

  // Inputs keep the file's order, not nlohmann's sorted order.
  ASSERT_EQ(wf.inputs.size(), 3u);
  EXPECT_EQ(wf.inputs[0].name, "topic");
  EXPECT_EQ(wf.inputs[0].type, "string");
  EXPECT_EQ(wf.inputs[0].default_value, Json("our spring launch"));
  EXPECT_FALSE(wf.inputs[0].required);
  EXPECT_EQ(wf.inputs[1].name, "variations");
  EXPECT_EQ(wf.inputs[1].type, "integer");
  EXPECT_EQ(wf.inputs[1].default_value, Json(3));
  EXPECT_EQ(wf.inputs[1].description, "How many drafts");
  EXPECT_EQ(wf.inputs[2].name, "audience");
  EXPECT_TRUE(wf.inputs[2].required);
  EXPECT_FALSE(wf.inputs[2].default_value.has_value());

  EXPECT_EQ(wf.vars, Json({{"signature", "-- the {{ inputs.topic }} team"}}));

  ASSERT_EQ(wf.steps.size(), 5u);
  const StepDef& draft = wf.steps[0];
  EXPECT_EQ(draft.id, "draft");
  EXPECT_EQ(draft.uses, "script");
  EXPECT_TRUE(draft.with["code"].get<std::string>().starts_with("local out = {}\n"));
  EXPECT_FALSE(draft.has_needs);
  EXPECT_EQ(draft.location.line, 15);
  EXPECT_EQ(draft.location.column, 5);

  const StepDef& post = wf.steps[2];
  EXPECT_EQ(post.when, "steps.review.output ~= nil");
  EXPECT_EQ(post.with["json"]["text"], "{{ steps.draft.output.variations[1].text }}");
  EXPECT_EQ(post.retry.attempts, 3);
  EXPECT_EQ(post.retry.backoff, RetryPolicy::Backoff::exponential);
  EXPECT_EQ(post.retry.initial, milliseconds(1000));
  EXPECT_EQ(post.retry.max, milliseconds(30000));
  EXPECT_DOUBLE_EQ(post.retry.jitter, 0.2);
  ASSERT_TRUE(post.timeout.has_value());
  EXPECT_EQ(*post.timeout, milliseconds(90000));

  const StepDef& fan_out = wf.steps[3];
  EXPECT_EQ(fan_out.foreach, "inputs.audience");
  EXPECT_EQ(fan_out.concurrency, 4);
  EXPECT_TRUE(fan_out.has_needs);
  EXPECT_EQ(fan_out.needs, std::vector<std::string>{"draft"});

  const StepDef& pause = wf.steps[4];
  EXPECT_TRUE(pause.has_needs);
  EXPECT_TRUE(pause.needs.empty());
  EXPECT_EQ(pause.concurrency, 1);
  EXPECT_FALSE(pause.timeout.has_value());

  ASSERT_EQ(wf.on_error.size(), 2u);
  EXPECT_EQ(wf.on_error[0].id, "on_error_0");  // generated: the sketch gives no id
  EXPECT_EQ(wf.on_error[0].uses, "log");
  EXPECT_EQ(wf.on_error[1].id, "tidy_up");
  EXPECT_FALSE(wf.on_error[1].has_needs);
}

TEST(WorkflowParse, RecordsTheLocationOfEveryFieldPath) {
  ParseOutcome outcome = parse(kLaunchPost);
  ASSERT_TRUE(outcome.ok()) << all_diagnostics(outcome);
  const auto& at = outcome.workflow->locations;
  auto expect_at = [&](const std::string& path, int line, int column) {
    auto found = at.find(path);
    ASSERT_NE(found, at.end()) << path;
    EXPECT_EQ(found->second.line, line) << path;
    EXPECT_EQ(found->second.column, column) << path;
  };
  expect_at("", 1, 1);
  expect_at("id", 1, 5);
  expect_at("triggers[0].schedule.cron", 5, 23);
  expect_at("triggers[1].webhook.secret", 6, 38);
  expect_at("inputs.topic.default", 9, 35);
  expect_at("vars.signature", 13, 14);
  expect_at("steps[0].with.code", 18, 13);  // a block scalar starts at its |
  expect_at("steps[1].with.message", 25, 16);
  expect_at("steps[2].when", 28, 11);
  expect_at("steps[2].with.url", 29, 32);
  expect_at("steps[2].with.json.text", 29, 76);
  expect_at("steps[2].retry.initial", 30, 58);
  expect_at("steps[3].needs[0]", 36, 13);
  expect_at("on_error[0].with.message", 44, 22);
}

TEST(WorkflowParse, FindStepLooksInStepsThenOnError) {
  ParseOutcome outcome = parse(kLaunchPost);
  ASSERT_TRUE(outcome.ok()) << all_diagnostics(outcome);
  const Workflow& wf = *outcome.workflow;
  ASSERT_NE(wf.find_step("post"), nullptr);
  EXPECT_EQ(wf.find_step("post")->uses, "http");
  ASSERT_NE(wf.find_step("tidy_up"), nullptr);
  EXPECT_EQ(wf.find_step("tidy_up"), &wf.on_error[1]);
  EXPECT_EQ(wf.find_step("on_error_0"), &wf.on_error[0]);
  EXPECT_EQ(wf.find_step("nope"), nullptr);
}

TEST(WorkflowParse, DependenciesFollowFileOrderUnlessNeedsSaysOtherwise) {
  ParseOutcome outcome = parse(R"(id: deps
steps:
  - { id: a, uses: log }
  - { id: b, uses: log }
  - { id: c, uses: log, needs: [] }
  - { id: d, uses: log, needs: [b, a, a] }
  - { id: e, uses: log, needs: a }
  - { id: f, uses: log }
  - { id: g, uses: log, needs: [h] }
  - { id: h, uses: log, needs: [c] }
)");
  ASSERT_TRUE(outcome.ok()) << all_diagnostics(outcome);
  std::vector<std::vector<size_t>> expected = {
      {},      // a: first step, waits for nothing
      {0},     // b: no needs -> the step before it
      {},      // c: needs: [] -> nothing
      {0, 1},  // d: exactly a and b (sorted, duplicates dropped)
      {0},     // e: a single name
      {4},     // f: no needs -> e
      {7},     // g: a later step is fine when there is no cycle
      {2},     // h
  };
  EXPECT_EQ(outcome.workflow->dependencies(), expected);
  EXPECT_FALSE(outcome.workflow->steps[1].has_needs);
  EXPECT_TRUE(outcome.workflow->steps[2].has_needs);
}

TEST(WorkflowParse, AcceptsJson) {
  ParseOutcome outcome = parse(R"({
  "id": "from-json",
  "inputs": {"n": {"type": "number", "default": 1.5}},
  "steps": [
    {"id": "a", "uses": "set", "with": {"x": "{{ inputs.n }}", "path": "a\/b \u00e9"}},
    {"id": "b", "uses": "log", "needs": ["a"], "retry": {"attempts": 2, "backoff": "fixed", "jitter": 0}}
  ]
})");
  ASSERT_TRUE(outcome.ok()) << all_diagnostics(outcome);
  const Workflow& wf = *outcome.workflow;
  EXPECT_EQ(wf.id, "from-json");
  EXPECT_EQ(wf.inputs[0].default_value, Json(1.5));
  EXPECT_EQ(wf.steps[0].with["path"], "a/b \xC3\xA9");
  EXPECT_EQ(wf.steps[1].retry.backoff, RetryPolicy::Backoff::fixed);
  EXPECT_EQ(wf.steps[1].retry.jitter, 0.0);
  EXPECT_EQ(wf.locations.at("steps[1].needs[0]").line, 6);
  EXPECT_EQ(wf.locations.at("steps[1].needs[0]").column, 42);
}

TEST(WorkflowParse, JsonErrorsHaveLinesAndColumnsToo) {
  ParseOutcome outcome = parse(R"({
  "id": "j",
  "steps": [
    {"id": "a", "uses": "log", "retry": {"attempts": 0}}
  ]
})");
  EXPECT_TRUE(testing::HasOnlyDiagnostic(outcome, 4, 54, "steps[0].retry.attempts",
                                         "expected an integer from 1 to 100, got 0"));
}

TEST(WorkflowParse, ScalarsFollowTheYaml12CoreSchema) {
  ParseOutcome outcome = parse(R"(id: scalars
vars:
  yes_is_text: yes
  on_is_text: on
  t: true
  n: ~
  i: -12
  hex: 0x1F
  octal: 0o17
  f: 2.5e3
  big: 123456789012345678901234567890
  quoted_number: "12"
  tagged: !!str 12
  float_tag: !!float 3
  version: 1.10.2
  inf: .inf
steps:
  - { id: a, uses: log }
)");
  ASSERT_TRUE(outcome.ok()) << all_diagnostics(outcome);
  const Json& vars = outcome.workflow->vars;
  EXPECT_EQ(vars["yes_is_text"], "yes");
  EXPECT_EQ(vars["on_is_text"], "on");
  EXPECT_EQ(vars["t"], true);
  EXPECT_TRUE(vars["n"].is_null());
  EXPECT_EQ(vars["i"], -12);
  EXPECT_EQ(vars["hex"], 31);
  EXPECT_EQ(vars["octal"], 15);
  EXPECT_EQ(vars["f"], 2500.0);
  EXPECT_TRUE(vars["big"].is_number_float());
  EXPECT_EQ(vars["quoted_number"], "12");
  EXPECT_EQ(vars["tagged"], "12");
  EXPECT_TRUE(vars["float_tag"].is_number_float());
  EXPECT_EQ(vars["version"], "1.10.2");
  EXPECT_TRUE(std::isinf(vars["inf"].get<double>()));
}

TEST(WorkflowParse, RetryBoundsFollowEachOtherWhenOnlyOneIsWritten) {
  ParseOutcome outcome = parse(R"(id: retry
steps:
  - { id: slow, uses: http, retry: { attempts: 5, initial: 2m } }
  - { id: quick, uses: http, retry: { attempts: 5, max: 500ms } }
  - { id: plain, uses: http }
)");
  ASSERT_TRUE(outcome.ok()) << all_diagnostics(outcome);
  const auto& steps = outcome.workflow->steps;
  EXPECT_EQ(steps[0].retry.initial, milliseconds(120000));
  EXPECT_EQ(steps[0].retry.max, milliseconds(120000));
  EXPECT_EQ(steps[1].retry.initial, milliseconds(500));
  EXPECT_EQ(steps[1].retry.max, milliseconds(500));
  EXPECT_EQ(steps[2].retry.attempts, 1);
  EXPECT_EQ(steps[2].retry.initial, milliseconds(1000));
  EXPECT_EQ(steps[2].retry.max, milliseconds(30000));
}

TEST(WorkflowParse, ByteOrderMarkAndWindowsLineEndingsAreFine) {
  ParseOutcome outcome =
      parse("\xEF\xBB\xBFid: crlf\r\nsteps:\r\n  - id: a\r\n    uses: log\r\n    timeout: 5s\r\n");
  ASSERT_TRUE(outcome.ok()) << all_diagnostics(outcome);
  EXPECT_EQ(outcome.workflow->steps[0].timeout, milliseconds(5000));
  EXPECT_EQ(outcome.workflow->locations.at("steps[0].timeout").line, 5);
  EXPECT_EQ(outcome.workflow->locations.at("steps[0].timeout").column, 14);
}

TEST(WorkflowParse, AnchorsAndAliasesAreExpanded) {
  ParseOutcome outcome = parse(R"(id: aliases
steps:
  - id: a
    uses: http
    retry: &patient { attempts: 4, backoff: fixed, initial: 2s }
  - id: b
    uses: http
    retry: *patient
)");
  ASSERT_TRUE(outcome.ok()) << all_diagnostics(outcome);
  EXPECT_EQ(outcome.workflow->steps[1].retry.attempts, 4);
  EXPECT_EQ(outcome.workflow->steps[1].retry.backoff, RetryPolicy::Backoff::fixed);
}

TEST(WorkflowParse, KeysThatAreNotPlainNamesGetQuotedPaths) {
  ParseOutcome outcome = parse(R"(id: paths
steps:
  - id: a
    uses: http
    with:
      headers: { Content-Type: text/plain, "x.y": 1, "a b": SYNTAX_ERROR }
)");
  EXPECT_TRUE(testing::HasOnlyDiagnostic(outcome, 6, 61, R"(steps[0].with.headers["a b"])",
                                         "invalid template: fake: bad template"));
}

TEST(WorkflowParse, WorksWithoutAnyOptions) {
  // No step list and no expression checker: every `uses` is accepted, nothing is compiled.
  ParseOutcome outcome =
      parse_workflow("id: bare\nsteps:\n  - { id: a, uses: anything.goes, when: 'SYNTAX_ERROR' }\n",
                     "bare.yaml", ParseOptions{});
  EXPECT_TRUE(outcome.ok()) << all_diagnostics(outcome);
}

}  // namespace
}  // namespace herald::model
