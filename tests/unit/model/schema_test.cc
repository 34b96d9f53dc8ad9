// The JSON Schema: its text, and each kind of schema error with its line, column, path and
// message.
#include <gtest/gtest.h>

#include "engine/model/workflow.h"
#include "tests/unit/model/model_test_util.h"

namespace herald::model {
namespace {

using testing::all_diagnostics;
using testing::HasDiagnostic;
using testing::HasOnlyDiagnostic;
using testing::parse;

TEST(WorkflowSchema, TextIsValidDraft7Json) {
  Json schema = Json::parse(workflow_schema_text());
  EXPECT_EQ(schema["$schema"], "http://json-schema.org/draft-07/schema#");
  EXPECT_EQ(schema["required"], Json({"id", "steps"}));
  EXPECT_EQ(schema["additionalProperties"], false);
  for (const char* field :
       {"id", "name", "description", "triggers", "inputs", "vars", "steps", "on_error"}) {
    EXPECT_TRUE(schema["properties"].contains(field)) << field;
  }
}

TEST(WorkflowSchema, OnErrorStepsAreStepsWithoutNeedsAndWithAnOptionalId) {
  // Written out twice in the schema text (so `herald schema` shows each plainly); this keeps the
  // two from drifting apart.
  Json schema = Json::parse(workflow_schema_text());
  Json step = schema["definitions"]["step"]["properties"];
  Json on_error = schema["definitions"]["on_error_step"]["properties"];
  step.erase("needs");
  step["id"].erase("description");
  on_error["id"].erase("description");
  EXPECT_EQ(step, on_error);
  EXPECT_EQ(schema["definitions"]["on_error_step"]["required"], Json({"uses"}));
}

TEST(WorkflowSchema, MissingRequiredFields) {
  ParseOutcome outcome = parse("name: nothing else\n");
  EXPECT_EQ(outcome.diagnostics.size(), 2u) << all_diagnostics(outcome);
  EXPECT_TRUE(HasDiagnostic(outcome, 1, 1, "", "missing required field 'id'"));
  EXPECT_TRUE(HasDiagnostic(outcome, 1, 1, "", "missing required field 'steps'"));

  outcome = parse("id: x\nsteps:\n  - id: a\n  - uses: log\n");
  EXPECT_EQ(outcome.diagnostics.size(), 2u) << all_diagnostics(outcome);
  EXPECT_TRUE(HasDiagnostic(outcome, 3, 5, "steps[0]",
                            "missing required field 'uses'; a step needs id and uses"));
  EXPECT_TRUE(HasDiagnostic(outcome, 4, 5, "steps[1]", "missing required field 'id'"));
}

TEST(WorkflowSchema, UnknownFieldsSayWhichAreAllowed) {
  ParseOutcome outcome = parse(R"(id: x
title: not a field
steps:
  - id: a
    uses: http
    retries: 3
    retry: { attempts: 2, delay: 1s }
)");
  EXPECT_EQ(outcome.diagnostics.size(), 3u) << all_diagnostics(outcome);
  EXPECT_TRUE(HasDiagnostic(outcome, 2, 1, "title",
                            "unknown field 'title'; allowed fields: description, id, inputs, "
                            "name, on_error, steps, triggers, vars"));
  EXPECT_TRUE(HasDiagnostic(outcome, 6, 5, "steps[0].retries",
                            "unknown field 'retries' in step; did you mean 'retry'? allowed "
                            "fields: concurrency, description, foreach, id, name, needs, retry, "
                            "timeout, uses, when, with"));
  EXPECT_TRUE(HasDiagnostic(outcome, 7, 27, "steps[0].retry.delay",
                            "unknown field 'delay' in retry policy; allowed fields: attempts, "
                            "backoff, initial, jitter, max"));
}

TEST(WorkflowSchema, WrongTypes) {
  ParseOutcome outcome = parse(R"(id: 12
steps:
  - id: a
    uses: log
    with: [1, 2]
    when: true
    needs: { a: 1 }
vars: [1]
)");
  EXPECT_EQ(outcome.diagnostics.size(), 5u) << all_diagnostics(outcome);
  EXPECT_TRUE(HasDiagnostic(outcome, 1, 5, "id",
                            "expected a string, got an integer (12); put it in quotes to make it "
                            "text"));
  EXPECT_TRUE(HasDiagnostic(outcome, 5, 11, "steps[0].with", "expected a mapping, got a list"));
  EXPECT_TRUE(HasDiagnostic(outcome, 6, 11, "steps[0].when", "expected a string, got true"));
  EXPECT_TRUE(HasDiagnostic(outcome, 7, 12, "steps[0].needs",
                            "expected a string or a list, got a mapping"));
  EXPECT_TRUE(HasDiagnostic(outcome, 8, 7, "vars", "expected a mapping, got a list"));
}

TEST(WorkflowSchema, PatternsForIds) {
  ParseOutcome outcome = parse(R"(id: Launch Post
steps:
  - id: fetch-feed
    uses: http
)");
  EXPECT_EQ(outcome.diagnostics.size(), 2u) << all_diagnostics(outcome);
  EXPECT_TRUE(HasDiagnostic(outcome, 1, 5, "id",
                            "'Launch Post' is not a valid id; expected lower-case letters, "
                            "digits, '-' and '_', starting with a letter or digit"));
  EXPECT_TRUE(HasDiagnostic(outcome, 3, 9, "steps[0].id",
                            "'fetch-feed' is not a valid id; expected letters, digits and '_', "
                            "not starting with a digit, so steps.<id> works in Lua"));
}

TEST(WorkflowSchema, RangesAndEnums) {
  ParseOutcome outcome = parse(R"(id: x
inputs:
  n: { type: int }
steps:
  - id: a
    uses: http
    foreach: inputs.n
    concurrency: 1001
    retry:
      attempts: 0
      backoff: linear
      jitter: 1.5
)");
  EXPECT_EQ(outcome.diagnostics.size(), 5u) << all_diagnostics(outcome);
  EXPECT_TRUE(HasDiagnostic(outcome, 3, 14, "inputs.n.type",
                            "expected one of string, number, integer, boolean, object, array; "
                            "got a string ('int')"));
  EXPECT_TRUE(HasDiagnostic(outcome, 8, 18, "steps[0].concurrency",
                            "expected an integer from 1 to 1000, got 1001"));
  EXPECT_TRUE(HasDiagnostic(outcome, 10, 17, "steps[0].retry.attempts",
                            "expected an integer from 1 to 100, got 0"));
  EXPECT_TRUE(HasDiagnostic(outcome, 11, 16, "steps[0].retry.backoff",
                            "expected one of fixed, exponential; got a string ('linear')"));
  EXPECT_TRUE(HasDiagnostic(outcome, 12, 15, "steps[0].retry.jitter",
                            "expected a number from 0 to 1, got 1.5"));
}

TEST(WorkflowSchema, EmptyStepsAndEmptyUses) {
  EXPECT_TRUE(HasOnlyDiagnostic(parse("id: x\nsteps: []\n"), 2, 8, "steps",
                                "expected at least one step, got an empty list"));
  EXPECT_TRUE(HasOnlyDiagnostic(parse("id: x\nsteps:\n  - { id: a, uses: '' }\n"), 3, 20,
                                "steps[0].uses", "must not be empty"));
}

TEST(WorkflowSchema, Triggers) {
  ParseOutcome outcome = parse(R"(id: x
triggers:
  - cron: "0 9 * * *"
  - schedule: { cron: "0 9 * * *" }
    webhook: { path: a }
  - {}
  - schedule: { cron: 9, catch_up: "yes" }
  - webhook: { path: hook, extra: kept }
  - manual:
  - poll: { every: soon }
  - schedule: { timezone: UTC }
  - schedule: { cron: "0 9 * * *", catch_up: last, window: 2h }
  - schedule: { at: "2026-12-01T09:00:00+01:00", catch_up: false }
  - event: { name: post.published, filter: 'event.platform == "x"' }
steps:
  - { id: a, uses: log }
)");
  EXPECT_EQ(outcome.diagnostics.size(), 7u) << all_diagnostics(outcome);
  EXPECT_TRUE(HasDiagnostic(outcome, 3, 5, "triggers[0].cron",
                            "unknown trigger type 'cron'; expected event, manual, poll, schedule "
                            "or webhook"));
  EXPECT_TRUE(HasDiagnostic(outcome, 4, 5, "triggers[1]",
                            "a trigger names exactly one trigger type (event, manual, poll, "
                            "schedule or webhook); got schedule, webhook"));
  EXPECT_TRUE(HasDiagnostic(outcome, 6, 5, "triggers[2]", "got an empty mapping"));
  EXPECT_TRUE(HasDiagnostic(outcome, 7, 23, "triggers[3].schedule.cron",
                            "expected a string, got an integer (9)"));
  EXPECT_TRUE(HasDiagnostic(outcome, 7, 36, "triggers[3].schedule.catch_up",
                            "expected one of none, last, all, true, false; got a string ('yes')"));
  EXPECT_TRUE(HasDiagnostic(outcome, 10, 20, "triggers[6].poll.every", "bad duration 'soon'"));
  EXPECT_TRUE(HasDiagnostic(outcome, 11, 15, "triggers[7].schedule",
                            "a schedule needs a time; expected cron"));
}

TEST(WorkflowSchema, OnErrorStepsTakeNoNeeds) {
  ParseOutcome outcome = parse(R"(id: x
steps:
  - { id: a, uses: log }
on_error:
  - uses: log
    needs: [a]
)");
  EXPECT_TRUE(HasOnlyDiagnostic(outcome, 6, 5, "on_error[0].needs",
                                "unknown field 'needs' in on_error step"));
}

}  // namespace
}  // namespace herald::model
