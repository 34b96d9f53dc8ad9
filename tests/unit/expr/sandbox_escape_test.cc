// Each way out of the sandbox that a workflow author might try, through the Evaluator: each is
// stopped with a clear error, and the evaluator keeps working afterwards.
#include <gtest/gtest.h>

#include "engine/expr/evaluator.h"

namespace herald::expr {
namespace {

class SandboxEscapeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    inputs_ = Json::parse(R"({"x": "y"})");
    steps_ = Json::parse(R"({"a": {"output": {"n": 5}}})");
    scope_.inputs = &inputs_;
    scope_.steps = &steps_;
  }
  void TearDown() override {
    // Whatever the test did, the evaluator is fine.
    Result<Json> r = evaluator_.evaluate(R"(steps.a.output.n > 3 and inputs.x == "y")", scope_);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(*r, true);
  }
  void expect_stopped(std::string_view code, ErrorCode expected, std::string_view fragment,
                      const Limits& limits = {}) {
    Result<Json> r = evaluator_.run_script(code, scope_, limits);
    ASSERT_FALSE(r.ok()) << code << " returned " << r->dump();
    EXPECT_EQ(r.error().code, expected) << code << ": " << r.error().message;
    EXPECT_NE(r.error().message.find(fragment), std::string::npos)
        << code << ": " << r.error().message;
  }
  void expect_invalid(std::string_view code, std::string_view fragment) {
    expect_stopped(code, ErrorCode::invalid_argument, fragment);
  }

  Evaluator evaluator_;
  Scope scope_;
  Json inputs_, steps_;
};

TEST_F(SandboxEscapeTest, OsExecute) {
  expect_invalid("os.execute('touch /tmp/herald-pwned')",
                 "attempt to call a nil value (field 'execute')");
}
TEST_F(SandboxEscapeTest, IoOpen) {
  expect_invalid("return io.open('/etc/passwd'):read('a')",
                 "attempt to index a nil value (global 'io')");
}
TEST_F(SandboxEscapeTest, Require) {
  expect_invalid("return require('os')", "attempt to call a nil value (global 'require')");
}
TEST_F(SandboxEscapeTest, Dofile) {
  expect_invalid("dofile('/etc/passwd')", "attempt to call a nil value (global 'dofile')");
}
TEST_F(SandboxEscapeTest, Loadfile) {
  expect_invalid("loadfile('/etc/passwd')()", "attempt to call a nil value (global 'loadfile')");
}
TEST_F(SandboxEscapeTest, BinaryChunks) {
  expect_invalid("return string.dump(print)", "attempt to call a nil value (field 'dump')");
  expect_invalid("assert(load('\\27Lua\\x54\\0\\x19\\x93\\r\\n\\x1a\\n'))", "binary chunk");
  expect_invalid("assert(load('\\27Lua', 'x', 'b'))", "binary chunk");
}
TEST_F(SandboxEscapeTest, Debug) {
  expect_invalid("debug.sethook()", "attempt to index a nil value (global 'debug')");
}
TEST_F(SandboxEscapeTest, Package) {
  expect_invalid("package.loadlib('libc.so.6', 'system')",
                 "attempt to index a nil value (global 'package')");
}
TEST_F(SandboxEscapeTest, OsGetenv) {
  expect_invalid("return os.getenv('HOME')", "attempt to call a nil value (field 'getenv')");
}
TEST_F(SandboxEscapeTest, SetmetatableOnTheContext) {
  expect_invalid("setmetatable(inputs, {__index = function() return 'pwned' end})",
                 "bad argument #1 to 'setmetatable' (table expected, got userdata)");
  expect_invalid("getmetatable(inputs).__index = nil", "attempt to index a boolean value");
  expect_invalid("inputs.x = 'pwned'", "context is read-only");
}
TEST_F(SandboxEscapeTest, ChangingTheLibraryForLaterRuns) {
  expect_invalid("string.format = function() return 'pwned' end", "read-only");
  expect_invalid("getmetatable('').__index = {}", "attempt to index a boolean value");
  Result<Json> r = evaluator_.evaluate("string.format('%d', 1)", scope_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "1");
}
TEST_F(SandboxEscapeTest, InfiniteLoop) {
  expect_stopped("while true do end", ErrorCode::resource_exhausted,
                 "Lua instruction limit exceeded: more than 10000000 instructions");
}
TEST_F(SandboxEscapeTest, InfiniteLoopInsidePcall) {
  expect_stopped("pcall(function() while true do end end) return 'escaped'",
                 ErrorCode::resource_exhausted, "instruction limit");
  expect_stopped("while true do pcall(function() while true do end end) end",
                 ErrorCode::resource_exhausted, "instruction limit");
}
TEST_F(SandboxEscapeTest, InfiniteLoopInAnExpression) {
  Limits limits;
  limits.instructions = 100'000;
  Result<Json> r = evaluator_.evaluate("(function() while true do end end)()", scope_, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::resource_exhausted);
}
TEST_F(SandboxEscapeTest, WallClock) {
  Limits limits;
  limits.instructions = UINT64_MAX;
  limits.wall = std::chrono::milliseconds(30);
  expect_stopped("while true do end", ErrorCode::deadline_exceeded,
                 "Lua wall-clock limit exceeded: more than 30 ms", limits);
}
TEST_F(SandboxEscapeTest, MemoryBomb) {
  Limits limits;
  limits.instructions = UINT64_MAX;
  expect_stopped("local t = {} for i = 1, 1e9 do t[i] = {i, i} end", ErrorCode::resource_exhausted,
                 "Lua memory limit exceeded: more than 33554432 bytes", limits);
}
TEST_F(SandboxEscapeTest, StringBomb) {
  expect_stopped("return string.rep('x', 1e9)", ErrorCode::resource_exhausted, "memory limit");
  expect_stopped("local s = 'xxxxxxxx' while true do s = s .. s end", ErrorCode::resource_exhausted,
                 "memory limit");
  expect_stopped("local ok = pcall(string.rep, 'x', 1e9) return 'escaped'",
                 ErrorCode::resource_exhausted, "memory limit");
}
TEST_F(SandboxEscapeTest, CoroutineLoop) {
  Limits limits;  // resume/yield are slow instructions: a smaller budget keeps the test quick
  limits.instructions = 1'000'000;
  expect_stopped(
      "local co = coroutine.wrap(function() while true do coroutine.yield() end end)\n"
      "while true do co() end",
      ErrorCode::resource_exhausted, "instruction limit", limits);
  expect_stopped(
      "coroutine.resume(coroutine.create(function() while true do end end))\n"
      "return 'escaped'",
      ErrorCode::resource_exhausted, "instruction limit", limits);
}
TEST_F(SandboxEscapeTest, DeepRecursion) {
  // Lua's stack overflow or the memory cap, whichever comes first (with the default 32 MiB, the
  // cap: Lua allows a million stack slots).
  Result<Json> r =
      evaluator_.run_script("local function f() return 1 + f() end return f()", scope_);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().message.find("stack overflow") != std::string::npos ||
              r.error().message.find("memory limit exceeded") != std::string::npos)
      << r.error().message;
  Limits roomy;
  roomy.memory_bytes = 256u * 1024 * 1024;
  expect_stopped("local function f() return 1 + f() end return f()", ErrorCode::invalid_argument,
                 "stack overflow", roomy);
  // Recursion through C (metamethods, gsub callbacks) hits Lua's C-stack limit.
  expect_invalid(
      "local t = setmetatable({}, {__index = function(t, k) return t[k] end})\n"
      "return t.x",
      "stack overflow");
}

TEST_F(SandboxEscapeTest, GlobalsDoNotLeakBetweenCalls) {
  Result<Json> r = evaluator_.run_script("secret = inputs.x; tostring = nil", scope_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  r = evaluator_.evaluate("secret", scope_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, nullptr);
  r = evaluator_.evaluate("tostring(1)", scope_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, "1");
}
TEST_F(SandboxEscapeTest, ContextFromAnEarlierCallCannotBeRead) {
  // Nothing a chunk can reach outlives its call; a `load`ed chunk's env is the call's own.
  Result<Json> r = evaluator_.run_script("keep = load('return inputs')", scope_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  r = evaluator_.evaluate("keep", scope_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, nullptr);
}

}  // namespace
}  // namespace herald::expr
