#include "engine/lua/sandbox.h"

#include <gtest/gtest.h>
#include <lua.hpp>

#include <string>
#include <vector>

namespace herald::lua {
namespace {

class SandboxTest : public ::testing::Test {
 protected:
  Result<Json> expr(std::string_view source, const Limits& limits = {}) {
    return sandbox_.run(ChunkKind::expression, source, globals_, limits);
  }
  Result<Json> script(std::string_view source, const Limits& limits = {}) {
    return sandbox_.run(ChunkKind::script, source, globals_, limits);
  }
  // The sandbox still works after whatever the test did to it.
  void expect_still_usable() {
    Result<Json> r = expr("1 + 2");
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(*r, 3);
  }
  void expect_error(const Result<Json>& r, ErrorCode code, std::string_view fragment) {
    ASSERT_FALSE(r.ok()) << "unexpectedly succeeded with " << r->dump();
    EXPECT_EQ(r.error().code, code) << r.error().message;
    EXPECT_NE(r.error().message.find(fragment), std::string::npos) << r.error().message;
  }

  Sandbox sandbox_;
  std::vector<Global> globals_;
};

TEST_F(SandboxTest, EvaluatesExpressionsAndScripts) {
  EXPECT_EQ(*expr("1 + 2 * 3"), 7);
  EXPECT_EQ(*expr("'a' .. 'b'"), "ab");
  EXPECT_EQ(*script("local x = 2\nreturn x * 21"), 42);
  EXPECT_EQ(*script("local x = 1"), nullptr);     // no return value
  EXPECT_EQ(*expr("string.upper('x'), 5"), "X");  // the first value of a list
}

TEST_F(SandboxTest, SyntaxErrorsCarryLuasMessageAndPosition) {
  expect_error(expr("1 +"), ErrorCode::invalid_argument, "[expression \"1 +\"]:1:");
  expect_error(script("local x = 1\nx = = 2"), ErrorCode::invalid_argument, "[script]:2:");
  expect_error(expr("   "), ErrorCode::invalid_argument, "empty expression");
  // `return` must end a block, so an expression cannot smuggle statements after it.
  expect_error(expr("1; os = nil"), ErrorCode::invalid_argument, "expected");
  expect_still_usable();
}

TEST_F(SandboxTest, RuntimeErrorsCarryTheLineAndTheValue) {
  expect_error(script("local t = nil\n\nreturn t.x"), ErrorCode::invalid_argument,
               "[script]:3: attempt to index a nil value (local 't')");
  expect_error(script("error('boom')"), ErrorCode::invalid_argument, "[script]:1: boom");
  expect_error(script("error({code = 'x'})"), ErrorCode::invalid_argument, R"({"code":"x"})");
  expect_error(script("error(42)"), ErrorCode::invalid_argument, "42");
  expect_error(script("error(function() end)"), ErrorCode::invalid_argument,
               "(error object is a function value)");
}

TEST_F(SandboxTest, CompilesEachSourceOnce) {
  for (int i = 0; i < 5; ++i) EXPECT_EQ(*expr("40 + 2"), 42);
  EXPECT_EQ(sandbox_.cached_chunks(), 1u);
  EXPECT_EQ(*script("return 40 + 2"), 42);
  EXPECT_EQ(sandbox_.cached_chunks(), 2u);
  EXPECT_TRUE(sandbox_.compile(ChunkKind::expression, "1 + 1").ok());
  EXPECT_EQ(sandbox_.cached_chunks(), 3u);
  Status bad = sandbox_.compile(ChunkKind::script, "if then");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::invalid_argument);
}

TEST_F(SandboxTest, GlobalsDoNotLeakBetweenRuns) {
  EXPECT_TRUE(script("leaked = 1; function f() return 2 end").ok());
  EXPECT_EQ(*expr("leaked"), nullptr);
  EXPECT_EQ(*expr("f"), nullptr);
  // Not even by writing through _G or _ENV.
  EXPECT_TRUE(script("_G.x = 1; _ENV.y = 2; rawset(_ENV, 'z', 3)").ok());
  EXPECT_EQ(*expr("{x, y, z}"), Json::object());
}

TEST_F(SandboxTest, EveryRunStartsWithAnEmptyEnvironment) {
  // Runs that write nothing share one _ENV; a run that writes gets the next run a new one.
  EXPECT_EQ(*script("local n = 0 for k in next, _ENV do n = n + 1 end return n"), 0);
  EXPECT_TRUE(script("a = 1").ok());
  EXPECT_EQ(*script("local n = 0 for k in next, _ENV do n = n + 1 end return n"), 0);
  EXPECT_TRUE(script("load('b = 2')()").ok());  // through load's default environment
  EXPECT_EQ(*expr("b"), nullptr);
  EXPECT_TRUE(script("c = 3; c = nil").ok());  // emptied again: as good as new
  EXPECT_EQ(*script("return next(_ENV)"), nullptr);
  EXPECT_EQ(*expr("_G == _ENV"), true);
}

TEST_F(SandboxTest, CompileCacheIsBounded) {
  for (int i = 0; i < 5000; ++i) {
    Result<Json> r = expr(std::to_string(i) + " + 1");
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(*r, i + 1);
  }
  EXPECT_LE(sandbox_.cached_chunks(), 4096u);
  EXPECT_EQ(*expr("1 + 1"), 2);
  EXPECT_EQ(*expr("4999 + 1"), 5000);
}

TEST_F(SandboxTest, TheLibraryCannotBeChanged) {
  expect_error(script("string.upper = function() return 'pwned' end"), ErrorCode::invalid_argument,
               "read-only");
  expect_error(script("rawset(string, 'upper', print)"), ErrorCode::invalid_argument, "read-only");
  expect_error(script("table.insert(math, 1)"), ErrorCode::invalid_argument, "read-only");
  expect_error(script("setmetatable(string, {})"), ErrorCode::invalid_argument, "protected");
  // The string metatable is shared by every string of the state: locked.
  EXPECT_EQ(*expr("getmetatable('')"), false);
  expect_error(script("getmetatable('').__index.upper = nil"), ErrorCode::invalid_argument,
               "attempt to index a boolean value");
  expect_error(script("setmetatable(_ENV, {})"), ErrorCode::invalid_argument, "protected");
  EXPECT_EQ(*expr("('x'):upper()"), "X");
  // The library is still iterable.
  EXPECT_EQ(*script("local n = 0 for k in pairs(math) do n = n + 1 end return n > 10"), true);
}

TEST_F(SandboxTest, OnlyAllowListedFunctionsExist) {
  const char* absent[] = {"io",
                          "package",
                          "require",
                          "debug",
                          "dofile",
                          "loadfile",
                          "os.execute",
                          "os.getenv",
                          "os.exit",
                          "os.remove",
                          "os.rename",
                          "os.tmpname",
                          "string.dump",
                          "loadstring",
                          "setfenv",
                          "module",
                          "collectgarbage ~= nil and nil"};
  for (const char* name : absent) {
    Result<Json> r = expr(name);
    ASSERT_TRUE(r.ok()) << name << ": " << r.error().message;
    EXPECT_EQ(*r, nullptr) << name;
  }
  const char* present[] = {"os.time",      "os.date",    "os.clock",     "string.format",
                           "table.concat", "math.floor", "utf8.char",    "coroutine.wrap",
                           "pcall",        "xpcall",     "load",         "json.encode",
                           "select",       "tostring",   "setmetatable", "print"};
  for (const char* name : present) {
    Result<Json> r = script(std::string("return type(") + name + ")");
    ASSERT_TRUE(r.ok()) << name << ": " << r.error().message;
    EXPECT_EQ(*r, "function") << name;
  }
}

TEST_F(SandboxTest, LoadTakesTextOnlyAndSharesTheRunsEnvironment) {
  Result<Json> binary = script(R"(return select(2, load("\27Lua\84\0")))");
  ASSERT_TRUE(binary.ok()) << binary.error().message;
  EXPECT_NE(binary->get<std::string>().find("binary chunk"), std::string::npos) << *binary;
  // Even when the caller asks for binary mode.
  Result<Json> forced = script(R"(return select(2, load("\27Lua", "x", "b")))");
  EXPECT_NE(forced->get<std::string>().find("binary chunk"), std::string::npos) << *forced;
  EXPECT_EQ(*script("y = 5; return load('return y + 1')()"), 6);
  EXPECT_EQ(*script("return load('return y', 'c', 't', {y = 7})()"), 7);
  // A loaded chunk does not see the state's real globals either.
  EXPECT_EQ(*script("return load('return io')()"), nullptr);
}

TEST_F(SandboxTest, FinalizersAreRefused) {
  expect_error(script("setmetatable({}, {__gc = function() end})"), ErrorCode::invalid_argument,
               "__gc");
  EXPECT_EQ(*script("return getmetatable(setmetatable({}, {__index = {a = 1}})).__index.a"), 1);
}

TEST_F(SandboxTest, CollectGarbageOnlyCounts) {
  EXPECT_EQ(*script("return type(collectgarbage('count'))"), "number");
  expect_error(script("collectgarbage()"), ErrorCode::invalid_argument, "not available");
  expect_error(script("collectgarbage('stop')"), ErrorCode::invalid_argument, "not available");
}

TEST_F(SandboxTest, OsDateAcceptsFractionalSeconds) {
  EXPECT_EQ(*expr("os.date('!%Y-%m-%d %H:%M:%S', 86400.75)"), "1970-01-02 00:00:00");
  EXPECT_EQ(*expr("os.time({year = 2024, month = 1, day = 1, hour = 12}) > 0"), true);
}

TEST_F(SandboxTest, PrintGoesToTheHandler) {
  std::vector<std::string> lines;
  sandbox_.set_print([&](std::string_view text) { lines.emplace_back(text); });
  EXPECT_TRUE(script("print('a', 1, nil, true)").ok());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "a\t1\tnil\ttrue");
}

// --- limits --------------------------------------------------------------------------------------

TEST_F(SandboxTest, InstructionLimitStopsAnInfiniteLoop) {
  Limits limits;
  limits.instructions = 100'000;
  expect_error(script("while true do end", limits), ErrorCode::resource_exhausted,
               "instruction limit exceeded: more than 100000 instructions");
  expect_still_usable();
}

TEST_F(SandboxTest, PcallCannotSwallowTheKill) {
  Limits limits;
  limits.instructions = 100'000;
  expect_error(script("pcall(function() while true do end end) return 'escaped'", limits),
               ErrorCode::resource_exhausted, "instruction limit");
  expect_error(script("for i = 1, 1e9 do pcall(function() while true do end end) end", limits),
               ErrorCode::resource_exhausted, "instruction limit");
  expect_error(script("xpcall(function() while true do end end, function() return 1 end)\n"
                      "return 'escaped'",
                      limits),
               ErrorCode::resource_exhausted, "instruction limit");
  // An error handler that loops is stopped too.
  expect_error(script("xpcall(error, function() while true do end end) return 'escaped'", limits),
               ErrorCode::resource_exhausted, "instruction limit");
  // A loop that keeps calling pcall on a function that does nothing is still counted.
  expect_error(script("while true do pcall(tostring, 1) end", limits),
               ErrorCode::resource_exhausted, "instruction limit");
  expect_still_usable();
}

TEST_F(SandboxTest, CoroutinesAreCountedAndCannotSwallowTheKill) {
  Limits limits;
  limits.instructions = 100'000;
  expect_error(script("local co = coroutine.create(function() while true do end end)\n"
                      "local ok, err = coroutine.resume(co)\nreturn 'escaped'",
                      limits),
               ErrorCode::resource_exhausted, "instruction limit");
  expect_error(script("local f = coroutine.wrap(function() while true do end end)\n"
                      "pcall(f) return 'escaped'",
                      limits),
               ErrorCode::resource_exhausted, "instruction limit");
  // Ping-pong between coroutines forever.
  expect_error(script("local co = coroutine.wrap(function() while true do coroutine.yield() end "
                      "end)\nwhile true do co() end",
                      limits),
               ErrorCode::resource_exhausted, "instruction limit");
  // __close handlers of a killed coroutine do not get to run unhooked.
  expect_error(script("local f = coroutine.wrap(function()\n"
                      "  local x <close> = setmetatable({}, {__close = function()\n"
                      "    while true do end end})\n"
                      "  while true do end\n"
                      "end)\n"
                      "pcall(f) return 'escaped'",
                      limits),
               ErrorCode::resource_exhausted, "instruction limit");
  expect_error(script("local x <close> = setmetatable({}, {__close = function()\n"
                      "  while true do end end})\n"
                      "while true do end",
                      limits),
               ErrorCode::resource_exhausted, "instruction limit");
  expect_error(script("local co = coroutine.create(function()\n"
                      "  local ok = pcall(function()\n"
                      "    local x <close> = setmetatable({}, {__close = function()\n"
                      "      while true do end end})\n"
                      "    while true do end\n"
                      "  end)\n"
                      "  while true do end\n"
                      "end)\n"
                      "coroutine.resume(co) coroutine.close(co) return 'escaped'",
                      limits),
               ErrorCode::resource_exhausted, "instruction limit");
  // Yields across the sandbox's pcall still work.
  EXPECT_EQ(*script("local co = coroutine.wrap(function() pcall(coroutine.yield, 1) return 2 end)\n"
                    "return co() + co()"),
            3);
  expect_still_usable();
}

TEST_F(SandboxTest, WallClockLimit) {
  Limits limits;
  limits.instructions = UINT64_MAX;
  limits.wall = std::chrono::milliseconds(50);
  const auto start = std::chrono::steady_clock::now();
  expect_error(script("while true do end", limits), ErrorCode::deadline_exceeded,
               "wall-clock limit exceeded: more than 50 ms");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  expect_error(script("pcall(function() while true do end end) return 1", limits),
               ErrorCode::deadline_exceeded, "wall-clock");
  expect_error(script("xpcall(error, function() while true do end end) return 1", limits),
               ErrorCode::deadline_exceeded, "wall-clock");
  expect_still_usable();
}

TEST_F(SandboxTest, MemoryLimitStopsTableGrowth) {
  Limits limits;
  limits.instructions = UINT64_MAX;
  limits.memory_bytes = 4u << 20;
  expect_error(script("local t = {} for i = 1, 1e9 do t[i] = {i} end", limits),
               ErrorCode::resource_exhausted, "memory limit exceeded: more than 4194304 bytes");
  expect_still_usable();
  EXPECT_LT(sandbox_.memory_in_use(), 2u << 20);  // the garbage was collected
}

TEST_F(SandboxTest, MemoryLimitCannotBeCaught) {
  Limits limits;
  limits.instructions = UINT64_MAX;
  limits.memory_bytes = 4u << 20;
  expect_error(script("local ok = pcall(string.rep, 'x', 1e9) return 'escaped'", limits),
               ErrorCode::resource_exhausted, "memory limit");
  expect_error(script("local t = {}\n"
                      "local ok = pcall(function() for i = 1, 1e9 do t[i] = {} end end)\n"
                      "t = nil return 'escaped'",
                      limits),
               ErrorCode::resource_exhausted, "memory limit");
  expect_error(script("local co = coroutine.create(function() return ('x'):rep(1e9) end)\n"
                      "coroutine.resume(co) return 'escaped'",
                      limits),
               ErrorCode::resource_exhausted, "memory limit");
  expect_error(script("return load(('x = 1 '):rep(1e6)) and 'escaped'", limits),
               ErrorCode::resource_exhausted, "memory limit");
  expect_still_usable();
}

TEST_F(SandboxTest, StringBombs) {
  expect_error(expr("string.rep('x', 1e9)"), ErrorCode::resource_exhausted, "memory limit");
  expect_error(script("local s = 'x' while true do s = s .. s end"), ErrorCode::resource_exhausted,
               "memory limit");
  expect_error(script("local y, t = ('y'):rep(10000), {} for i = 1, 1e9 do t[#t + 1] = y .. i end"),
               ErrorCode::resource_exhausted, "limit");
  expect_still_usable();
}

TEST_F(SandboxTest, DeepRecursionIsAnError) {
  Limits limits;
  limits.instructions = UINT64_MAX;
  Result<Json> lua_stack =
      script("local function f(n) return 1 + f(n + 1) end return f(1)", limits);
  ASSERT_FALSE(lua_stack.ok());
  EXPECT_TRUE(lua_stack.error().message.find("stack overflow") != std::string::npos ||
              lua_stack.error().code == ErrorCode::resource_exhausted)
      << lua_stack.error().message;
  expect_error(script("local t = setmetatable({}, {__index = function(t, k) return t[k] end})\n"
                      "return t.x",
                      limits),
               ErrorCode::invalid_argument, "stack overflow");
  expect_error(script("local function f(s) return (s:gsub('.', f)) end return f('x')", limits),
               ErrorCode::invalid_argument, "stack overflow");
  expect_still_usable();
}

TEST_F(SandboxTest, LimitsResetBetweenRuns) {
  Limits limits;
  limits.instructions = 50'000;
  for (int i = 0; i < 5; ++i) {
    Result<Json> r = script("local n = 0 for i = 1, 5000 do n = n + i end return n", limits);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(*r, 12502500);
  }
}

// --- host libraries ------------------------------------------------------------------------------

int host_twice(lua_State* L) {
  lua_pushinteger(L, 2 * luaL_checkinteger(L, 1));
  return 1;
}

TEST_F(SandboxTest, AddLibraryExposesAReadOnlyTable) {
  static const luaL_Reg functions[] = {{"twice", host_twice}, {nullptr, nullptr}};
  ASSERT_TRUE(sandbox_.add_library("host", functions).ok());
  EXPECT_EQ(*expr("host.twice(21)"), 42);
  expect_error(script("host.twice = nil"), ErrorCode::invalid_argument, "read-only");
  EXPECT_EQ(*expr("host.twice(2)"), 4);
}

TEST_F(SandboxTest, RefusesToRunReentrantly) {
  static Sandbox* self = nullptr;
  static const luaL_Reg functions[] = {{"again",
                                        [](lua_State* L) -> int {
                                          const bool refused =
                                              !self->run(ChunkKind::expression, "1", {}).ok();
                                          lua_pushboolean(L, refused);
                                          return 1;
                                        }},
                                       {nullptr, nullptr}};
  self = &sandbox_;
  ASSERT_TRUE(sandbox_.add_library("host", functions).ok());
  EXPECT_EQ(*expr("host.again()"), true);
}

TEST(CheckSyntax, ReportsLuasMessageWithoutRunning) {
  EXPECT_EQ(check_syntax(ChunkKind::expression, "inputs.x == 'y'"), std::nullopt);
  EXPECT_EQ(check_syntax(ChunkKind::script, "while true do end"), std::nullopt);  // not run
  std::optional<std::string> message = check_syntax(ChunkKind::expression, "a +");
  ASSERT_TRUE(message);
  EXPECT_EQ(*message, "[expression \"a +\"]:1: unexpected symbol near <eof>");
  message = check_syntax(ChunkKind::script, "local x = 1\nif x then");
  ASSERT_TRUE(message);
  EXPECT_EQ(*message, "[script]:2: 'end' expected near <eof>");
  EXPECT_EQ(check_syntax(ChunkKind::expression, ""), "empty expression");
  message = check_syntax(ChunkKind::expression, "steps.a_very_long_step_name.output.some_field >");
  ASSERT_TRUE(message);
  EXPECT_EQ(message->rfind("[expression \"steps.a_very_long_step_name.output.s...\"]:1:", 0), 0u)
      << *message;
}

}  // namespace
}  // namespace herald::lua
