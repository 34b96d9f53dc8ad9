#include "engine/expr/template.h"

#include <gtest/gtest.h>

#include "engine/expr/evaluator.h"

namespace herald::expr {
namespace {

TEST(ParseTemplate, SplitsTextAndExpressions) {
  Result<Template> t = parse_template("Hello {{ inputs.name }}!");
  ASSERT_TRUE(t.ok()) << t.error().message;
  ASSERT_EQ(t->parts.size(), 3u);
  EXPECT_EQ(t->parts[0].text, "Hello ");
  EXPECT_EQ(t->parts[1].kind, TemplatePart::Kind::expression);
  EXPECT_EQ(t->parts[1].text, "inputs.name");
  EXPECT_EQ(t->parts[1].position, 7u);
  EXPECT_EQ(t->parts[2].text, "!");
  EXPECT_FALSE(t->single_expression);
}

TEST(ParseTemplate, SingleExpression) {
  EXPECT_TRUE(parse_template("{{ x }}")->single_expression);
  EXPECT_TRUE(parse_template("{{x}}")->single_expression);
  EXPECT_TRUE(parse_template("{{\n  x\n}}")->single_expression);
  EXPECT_FALSE(parse_template(" {{ x }}")->single_expression);
  EXPECT_FALSE(parse_template("{{ x }}{{ y }}")->single_expression);
}

TEST(ParseTemplate, ClosingBracesInsideLuaAreNotTheEnd) {
  Result<Template> t = parse_template("{{ {a = {b = 1}} }}");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->parts[0].text, "{a = {b = 1}}");
  EXPECT_TRUE(t->single_expression);
  EXPECT_EQ(parse_template("{{ '}}' .. \"}}\" }}")->parts[0].text, "'}}' .. \"}}\"");
  EXPECT_EQ(parse_template("{{ [[}}]] }}")->parts[0].text, "[[}}]]");
  EXPECT_EQ(parse_template("{{ [==[}}]==] }}")->parts[0].text, "[==[}}]==]");
  EXPECT_EQ(parse_template("{{ 'it\\'s }}' }}")->parts[0].text, "'it\\'s }}'");
}

TEST(ParseTemplate, ErrorsNameThePosition) {
  Result<Template> t = parse_template("Hello {{ inputs.name");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(t.error().message, "`{{` at position 7 has no closing `}}`");
  t = parse_template("a {{ b }} c {{ }}");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message, "empty expression in `{{ }}` at position 13");
  EXPECT_FALSE(parse_template("{{ 'unterminated }}").ok());
}

class RenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    inputs_ = Json::parse(R"({"name": "Ada", "count": 3, "ratio": 0.5, "on": true,
                              "tags": ["a", "b"], "user": {"id": 7}})");
    steps_ = Json::parse(R"({"a": {"output": {"n": 5}}})");
    scope_.inputs = &inputs_;
    scope_.steps = &steps_;
  }
  Json render(const Json& value) {
    Result<Json> r = evaluator_.render(value, scope_);
    EXPECT_TRUE(r.ok()) << value.dump() << ": " << r.error().message;
    return r.ok() ? *r : Json("<error>");
  }

  Evaluator evaluator_;
  Scope scope_;
  Json inputs_, steps_;
};

TEST_F(RenderTest, ExactExpressionKeepsItsType) {
  EXPECT_EQ(render("{{ inputs.count }}"), 3);
  EXPECT_TRUE(render("{{ inputs.count }}").is_number_integer());
  EXPECT_EQ(render("{{ inputs.ratio }}"), 0.5);
  EXPECT_EQ(render("{{ inputs.on }}"), true);
  EXPECT_EQ(render("{{ inputs.missing }}"), nullptr);
  EXPECT_EQ(render("{{ inputs.tags }}"), Json::parse(R"(["a", "b"])"));
  EXPECT_EQ(render("{{ inputs.user }}"), Json::parse(R"({"id": 7})"));
  EXPECT_EQ(render("{{ {n = steps.a.output.n, list = {1, 2}} }}"),
            Json::parse(R"({"n": 5, "list": [1, 2]})"));
  EXPECT_EQ(render("{{inputs.name}}"), "Ada");
}

TEST_F(RenderTest, Interpolation) {
  EXPECT_EQ(render("Hello {{ inputs.name }}!"), "Hello Ada!");
  EXPECT_EQ(render("{{ inputs.name }} has {{ inputs.count }} ({{ inputs.ratio }}) {{ inputs.on }}"),
            "Ada has 3 (0.5) true");
  EXPECT_EQ(render("[{{ inputs.missing }}]"), "[]");
  EXPECT_EQ(render("tags={{ inputs.tags }} user={{ inputs.user }}"),
            R"(tags=["a","b"] user={"id":7})");
  EXPECT_EQ(render("{{ 1 }}{{ 2 }}"), "12");
  EXPECT_EQ(render(" {{ inputs.count }}"), " 3");  // not exactly one expression: text
  EXPECT_EQ(render("{{ '{{' }} literal"), "{{ literal");
  EXPECT_EQ(render("no template here"), "no template here");
}

TEST_F(RenderTest, WalksObjectsAndArrays) {
  Json input = Json::parse(R"({
    "url": "https://api/{{ inputs.user.id }}",
    "count": "{{ inputs.count }}",
    "list": ["{{ inputs.name }}", 1, null, {"deep": "{{ steps.a.output.n * 2 }}"}],
    "{{ keys }}": "are not rendered",
    "plain": true
  })");
  EXPECT_EQ(render(input), Json::parse(R"({
    "url": "https://api/7",
    "count": 3,
    "list": ["Ada", 1, null, {"deep": 10}],
    "{{ keys }}": "are not rendered",
    "plain": true
  })"));
}

TEST_F(RenderTest, ErrorsSayWhere) {
  Result<Json> r = evaluator_.render("Hello {{ inputs.name", scope_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(r.error().message, "`{{` at position 7 has no closing `}}`");

  r = evaluator_.render(Json::parse(R"({"headers": {"X": ["ok", "{{ inputs.user.a.b }}"]}})"),
                        scope_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(r.error().message,
            "headers.X[1]: [expression \"inputs.user.a.b\"]:1: attempt to index a nil value "
            "(field 'a')");

  r = evaluator_.render("{{ inputs.name + }}", scope_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("unexpected symbol"), std::string::npos);
}

TEST_F(RenderTest, LimitsApply) {
  Limits limits;
  limits.instructions = 10'000;
  Result<Json> r = evaluator_.render("x{{ (function() while true do end end)() }}", scope_, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::resource_exhausted);
  EXPECT_EQ(render("{{ 1 + 1 }}"), 2);
}

TEST(CheckTemplate, ReportsParseAndLuaErrors) {
  EXPECT_EQ(check_template("Hello {{ inputs.name }}"), std::nullopt);
  EXPECT_EQ(check_template("no template"), std::nullopt);
  EXPECT_EQ(check_template("Hello {{ inputs.name"), "`{{` at position 7 has no closing `}}`");
  EXPECT_EQ(check_template("ab {{ x + }}"),
            "in `{{ }}` at position 4: [expression \"x +\"]:1: unexpected symbol near <eof>");
}

}  // namespace
}  // namespace herald::expr
