// The model wired to the real Lua syntax checks of engine/expr, the way the runtime and
// `herald validate` wire it: Lua's own error text lands at the field's line and column.
#include <gtest/gtest.h>

#include "engine/expr/evaluator.h"
#include "engine/model/workflow.h"
#include "tests/unit/model/model_test_util.h"

namespace herald::model {
namespace {

ParseOptions lua_options() {
  ParseOptions options = testing::test_options();
  options.check_expression = [](std::string_view source,
                                ExpressionKind kind) -> std::optional<std::string> {
    switch (kind) {
      case ExpressionKind::expression:
        return expr::check_expression(source);
      case ExpressionKind::template_text:
        return expr::check_template(source);
      case ExpressionKind::script:
        return expr::check_script(source);
    }
    return std::nullopt;
  };
  return options;
}

TEST(WorkflowWithLua, ValidExpressionsTemplatesAndScriptsPass) {
  ParseOutcome outcome = testing::parse(R"(id: lua-ok
inputs:
  n: { type: integer, default: 3 }
vars:
  label: "n is {{ inputs.n }}"
steps:
  - id: a
    uses: script
    with:
      code: |
        local total = 0
        for i = 1, inputs.n do total = total + i end
        return { total = total }
  - id: b
    uses: log
    when: steps.a.output.total > 3 and inputs.n ~= nil
    foreach: "{ 1, 2, 3 }"
    concurrency: 2
    with: { message: "{{ item }} of {{ steps.a.output.total }}", plain: no braces here }
)",
                                        lua_options());
  EXPECT_TRUE(outcome.ok()) << testing::all_diagnostics(outcome);
}

TEST(WorkflowWithLua, LuaSyntaxErrorsAreReportedAtTheField) {
  ParseOutcome outcome = testing::parse(R"(id: lua-bad
steps:
  - id: a
    uses: script
    with:
      code: "return 1 +"
  - id: b
    uses: log
    when: steps.a.output ==
    with: { message: "{{ steps.a.output. }}" }
)",
                                        lua_options());
  ASSERT_EQ(outcome.diagnostics.size(), 3u) << testing::all_diagnostics(outcome);
  const auto& d = outcome.diagnostics;
  EXPECT_EQ(d[0].path, "steps[0].with.code");
  EXPECT_EQ(d[0].location.line, 6);
  EXPECT_EQ(d[0].location.column, 13);
  EXPECT_TRUE(d[0].message.starts_with("invalid Lua script: ")) << d[0].message;
  EXPECT_EQ(d[1].path, "steps[1].when");
  EXPECT_EQ(d[1].location.line, 9);
  EXPECT_EQ(d[1].location.column, 11);
  EXPECT_TRUE(d[1].message.starts_with("invalid Lua expression: ")) << d[1].message;
  EXPECT_EQ(d[2].path, "steps[1].with.message");
  EXPECT_EQ(d[2].location.line, 10);
  EXPECT_EQ(d[2].location.column, 22);
  EXPECT_TRUE(d[2].message.starts_with("invalid template: ")) << d[2].message;
}

}  // namespace
}  // namespace herald::model
