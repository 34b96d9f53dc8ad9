#include "engine/expr/evaluator.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

namespace herald::expr {
namespace {

class EvaluatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    inputs_ = Json::parse(R"({"x": "y", "name": "Ada", "limit": 10, "tags": ["a", "b"]})");
    vars_ = Json::parse(R"({"greeting": "hello"})");
    trigger_ = Json::parse(R"({"kind": "webhook", "body": {"id": 7}})");
    steps_ = Json::parse(R"({
      "a": {"output": {"n": 5, "items": [1, 2, 3]}, "state": "succeeded", "attempts": 1},
      "fetch-user": {"output": {"user": {"name": "Grace"}}, "state": "succeeded"}
    })");
    run_ = Json::parse(R"({"id": "run-1", "workflow": "wf"})");
    env_ = Json::parse(R"({"REGION": "eu"})");
    scope_.inputs = &inputs_;
    scope_.vars = &vars_;
    scope_.trigger = &trigger_;
    scope_.steps = &steps_;
    scope_.run = &run_;
    scope_.env = &env_;
    scope_.now =
        std::chrono::system_clock::time_point(std::chrono::milliseconds(1'700'000'000'250));
  }

  Json eval(std::string_view expression) {
    Result<Json> r = evaluator_.evaluate(expression, scope_);
    EXPECT_TRUE(r.ok()) << expression << ": " << r.error().message;
    return r.ok() ? *r : Json("<error>");
  }

  Evaluator evaluator_;
  Scope scope_;
  Json inputs_, vars_, trigger_, steps_, run_, env_;
};

TEST_F(EvaluatorTest, TheBenchmarkedExpression) {
  EXPECT_EQ(eval(R"(steps.a.output.n > 3 and inputs.x == "y")"), true);
  EXPECT_EQ(eval(R"(steps.a.output.n > 5 and inputs.x == "y")"), false);
}

TEST_F(EvaluatorTest, Types) {
  EXPECT_TRUE(eval("1 + 1").is_number_integer());
  EXPECT_TRUE(eval("1 / 2").is_number_float());
  EXPECT_EQ(eval("1 / 2"), 0.5);
  EXPECT_EQ(eval("inputs.limit * 2"), 20);
  EXPECT_EQ(eval("'a' .. inputs.name"), "aAda");
  EXPECT_EQ(eval("nil"), nullptr);
  EXPECT_EQ(eval("inputs.missing"), nullptr);
  EXPECT_EQ(eval("not inputs.missing"), true);
  EXPECT_EQ(eval("{a = 1, b = {c = {1, 2.5, 'x'}}}"),
            Json::parse(R"({"a": 1, "b": {"c": [1, 2.5, "x"]}})"));
  EXPECT_EQ(eval("steps.a.output"), steps_["a"]["output"]);
  EXPECT_EQ(eval("{n = steps.a.output.n, items = steps.a.output.items}"),
            Json::parse(R"({"n": 5, "items": [1, 2, 3]})"));
}

TEST_F(EvaluatorTest, EveryScopeName) {
  EXPECT_EQ(eval("vars.greeting"), "hello");
  EXPECT_EQ(eval("trigger.body.id"), 7);
  EXPECT_EQ(eval("steps['fetch-user'].output.user.name"), "Grace");
  EXPECT_EQ(eval("steps.a.state"), "succeeded");
  EXPECT_EQ(eval("run.id"), "run-1");
  EXPECT_EQ(eval("env.REGION"), "eu");
  EXPECT_EQ(eval("secrets"), nullptr);  // not given here
  EXPECT_EQ(eval("item"), nullptr);
  EXPECT_EQ(eval("index"), nullptr);
  EXPECT_EQ(eval("now"), 1'700'000'000.25);
  EXPECT_EQ(eval("os.date('!%Y-%m-%d', now)"), "2023-11-14");
  EXPECT_EQ(eval("type(error)"), "function");  // the Lua function outside on_error steps

  Json item = Json::parse(R"({"id": 3})");
  Json secrets = Json::parse(R"({"token": "s3cret"})");
  Json failure = Json::parse(R"({"code": "unavailable", "message": "503"})");
  scope_.item = &item;
  scope_.index = 4;
  scope_.secrets = &secrets;
  scope_.error = &failure;
  EXPECT_EQ(eval("item.id"), 3);
  EXPECT_EQ(eval("index"), 4);
  EXPECT_EQ(eval("math.type(index)"), "integer");
  EXPECT_EQ(eval("secrets.token"), "s3cret");
  EXPECT_EQ(eval("error.code"), "unavailable");
}

TEST_F(EvaluatorTest, ScalarScopeValues) {
  Json item = 42;
  scope_.item = &item;
  EXPECT_EQ(eval("item + 1"), 43);
  Json text = "hello";
  scope_.item = &text;
  EXPECT_EQ(eval("item:upper()"), "HELLO");
}

TEST_F(EvaluatorTest, RuntimeErrorsAreInvalidArgumentWithThePosition) {
  Result<Json> r = evaluator_.evaluate("steps.b.output.n > 3", scope_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(r.error().message,
            "[expression \"steps.b.output.n > 3\"]:1: attempt to index a nil value (field 'b')");
  r = evaluator_.evaluate("steps.a.output.n > 'x'", scope_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("attempt to compare string with number"), std::string::npos);
  r = evaluator_.evaluate("inputs.x ==", scope_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(r.error().message, "[expression \"inputs.x ==\"]:1: unexpected symbol near <eof>");
}

TEST_F(EvaluatorTest, Scripts) {
  Result<Json> r = evaluator_.run_script(R"(
    local total = 0
    for _, n in ipairs(steps.a.output.items) do total = total + n end
    return {total = total, who = inputs.name, tags = inputs.tags}
  )",
                                         scope_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, Json::parse(R"({"total": 6, "who": "Ada", "tags": ["a", "b"]})"));
  r = evaluator_.run_script("local x = 1", scope_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, nullptr);
  r = evaluator_.run_script("local t = {}\nreturn t.a.b", scope_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "[script]:2: attempt to index a nil value (field 'a')");
}

TEST_F(EvaluatorTest, ScriptsCanUseJsonAndTheLibrary) {
  Result<Json> r = evaluator_.run_script(R"(
    local body = json.decode('{"items": [3, 1, 2]}')
    table.sort(body.items)
    return {sorted = body.items, text = string.format('%s has %d', inputs.name, #body.items)}
  )",
                                         scope_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, Json::parse(R"({"sorted": [1, 2, 3], "text": "Ada has 3"})"));
}

TEST_F(EvaluatorTest, ContextIsReadOnly) {
  Result<Json> r = evaluator_.run_script("inputs.x = 'z'", scope_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("context is read-only"), std::string::npos);
  EXPECT_EQ(inputs_["x"], "y");
  EXPECT_EQ(eval("inputs.x"), "y");
}

TEST_F(EvaluatorTest, Checks) {
  EXPECT_EQ(check_expression("steps.a.output.n > 3"), std::nullopt);
  EXPECT_EQ(check_expression("steps.a.output.n >"),
            "[expression \"steps.a.output.n >\"]:1: unexpected symbol near <eof>");
  EXPECT_EQ(check_expression(""), "empty expression");
  EXPECT_EQ(check_script("return 1"), std::nullopt);
  EXPECT_EQ(check_script("return 1 +"), "[script]:1: unexpected symbol near <eof>");
  EXPECT_TRUE(has_template("a {{ b }}"));
  EXPECT_TRUE(has_template("{{ unclosed"));
  EXPECT_FALSE(has_template("plain { text }"));
}

TEST_F(EvaluatorTest, ForThisThreadIsOnePerThread) {
  Evaluator& a = Evaluator::for_this_thread();
  EXPECT_EQ(&a, &Evaluator::for_this_thread());
  Result<Json> r = a.evaluate("inputs.limit + 1", scope_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 11);
}

// Captures what is logged through spdlog's default logger at debug level while it lives.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>(
        "captured", std::make_shared<spdlog::sinks::ostream_sink_mt>(text_));
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  std::string text() const { return text_.str(); }

 private:
  std::ostringstream text_;
  std::shared_ptr<spdlog::logger> previous_;
};

TEST_F(EvaluatorTest, PrintGoesToTheDebugLogWithTheScopesSecretsMasked) {
  Json secrets = {{"TOKEN", "tok-0123456789"}};
  Redactor redactor({"tok-0123456789"});
  scope_.secrets = &secrets;
  scope_.redactor = &redactor;
  CapturedLog log;
  ASSERT_TRUE(evaluator_.run_script("print('script ' .. secrets.TOKEN) return 1", scope_).ok());
  ASSERT_TRUE(evaluator_.render(Json("{{ print('template', secrets.TOKEN) }}"), scope_).ok());
  ASSERT_TRUE(evaluator_.evaluate("print(secrets.TOKEN:upper())", scope_).ok());
  // Without a redactor (no secrets in the scope) the text is written as it is.
  scope_.redactor = nullptr;
  ASSERT_TRUE(evaluator_.evaluate("print(inputs.name)", scope_).ok());

  std::string text = log.text();
  EXPECT_EQ(text.find("tok-0123456789"), std::string::npos) << text;
  EXPECT_NE(text.find("lua print: script [redacted]"), std::string::npos) << text;
  EXPECT_NE(text.find("lua print: template\t[redacted]"), std::string::npos) << text;
  // Only the exact value is masked.
  EXPECT_NE(text.find("lua print: TOK-0123456789"), std::string::npos) << text;
  EXPECT_NE(text.find("lua print: Ada"), std::string::npos) << text;
}

}  // namespace
}  // namespace herald::expr
