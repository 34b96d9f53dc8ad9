// Lua plugins: loading (with errors at load, with their line), calls with the `herald` host API,
// errors with file:line and a traceback, the limits, and sandbox escapes tried on purpose.
#include <gtest/gtest.h>

#include <stdexcept>

#include "engine/plugins/plugin.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/plugins/plugin_test_support.h"

namespace herald::plugins {
namespace {

using testing::CallContext;

constexpr const char* kGood = R"(-- A Lua plugin for Herald's tests.
local M = {
  name = "luagood",
  version = "0.3.0",
  description = "A Lua plugin for Herald's tests",
  capabilities = {},
}

M.capabilities.echo = {
  kind = "step",
  description = "Echoes text",
  input = { type = "object", required = { "text" }, properties = { text = { type = "string" } } },
  run = function(input, ctx)
    herald.log("info", "echo " .. input.text)
    local secret, err = herald.secret("TOKEN")
    assert(herald.emit("echo.done", { text = input.text }))
    return {
      text = input.text,
      run = ctx.run_id,
      step = ctx.step_id,
      key = herald.idempotency_key(),
      cancelled = herald.cancelled(),
      secret_length = secret and #secret or -1,
      secret_error = err and err.code or json.null,
      encoded = herald.json.encode({ a = 1 }),
    }
  end,
}
M.capabilities.refuse = { run = function() return nil, "not today" end }
M.capabilities.busy = {
  run = function()
    return nil, { code = "unavailable", message = "busy", retryable = true, retry_after_ms = 2000 }
  end,
}
M.capabilities.crash = {
  run = function()
    local function inner() error("boom") end
    inner()
  end,
}
M.capabilities.loop = { run = function() while true do end end }
M.capabilities.nothing_json = { run = function() return { f = function() end } end }
return M
)";

int line_of(const std::string& text, const std::string& needle) {
  size_t at = text.find(needle);
  return at == std::string::npos
             ? -1
             : 1 + static_cast<int>(std::count(text.begin(), text.begin() + at, '\n'));
}

LuaLimits test_limits() {
  LuaLimits limits;
  limits.instructions = 2'000'000;
  limits.memory_bytes = 16u * 1024 * 1024;
  limits.wall = std::chrono::seconds(20);
  return limits;
}

class LuaPluginTest : public ::testing::Test {
 protected:
  herald::testing::TempDir dir_{"herald-lua-plugin"};

  Result<LoadedPlugin> load(const std::string& file, const std::string& text,
                            LuaLimits limits = test_limits()) {
    return load_lua_plugin(dir_.write(file, text).string(), limits);
  }

  static Capability& capability(const LoadedPlugin& plugin, const std::string& name) {
    for (const auto& c : plugin.capabilities) {
      if (c->info().name == name) return *c;
    }
    throw std::runtime_error("no capability " + name);
  }
};

TEST_F(LuaPluginTest, LoadsTheDescription) {
  auto plugin = load("luagood.lua", kGood);
  ASSERT_TRUE(plugin.ok()) << plugin.error().message;
  EXPECT_EQ(plugin->info.name, "luagood");
  EXPECT_EQ(plugin->info.version, "0.3.0");
  EXPECT_EQ(plugin->info.type, "lua");
  ASSERT_EQ(plugin->info.capabilities.size(), 6u);
  const CapabilityInfo& echo = capability(*plugin, "luagood.echo").info();
  EXPECT_EQ(echo.description, "Echoes text");
  EXPECT_EQ(echo.kind, CapabilityKind::step);
  EXPECT_EQ(echo.input_schema["required"], Json::array({"text"}));
  EXPECT_EQ(echo.input_schema["properties"]["text"]["type"], "string");
}

TEST_F(LuaPluginTest, RunsWithTheHostApi) {
  auto plugin = load("luagood.lua", kGood);
  ASSERT_TRUE(plugin.ok()) << plugin.error().message;
  CallContext call;
  call.secrets["TOKEN"] = "abcdef";
  auto outcome = capability(*plugin, "luagood.echo").invoke({{"text", "hi"}}, call.context);
  ASSERT_EQ(outcome.kind, steps::StepOutcome::Kind::done) << outcome.error.message;
  EXPECT_EQ(outcome.output["text"], "hi");
  EXPECT_EQ(outcome.output["run"], "run-1");
  EXPECT_EQ(outcome.output["step"], "post");
  EXPECT_EQ(outcome.output["key"], "run-1/post");
  EXPECT_EQ(outcome.output["cancelled"], false);
  EXPECT_EQ(outcome.output["secret_length"], 6);
  EXPECT_EQ(outcome.output["encoded"], R"({"a":1})");
  ASSERT_EQ(outcome.events.size(), 1u);
  EXPECT_EQ(outcome.events[0].name, "echo.done");
  EXPECT_EQ(outcome.events[0].payload["text"], "hi");
  ASSERT_EQ(call.logs.size(), 1u);
  EXPECT_EQ(call.logs[0], "info: echo hi");

  CallContext without;
  auto missing = capability(*plugin, "luagood.echo").invoke({{"text", "x"}}, without.context);
  ASSERT_EQ(missing.kind, steps::StepOutcome::Kind::done) << missing.error.message;
  EXPECT_EQ(missing.output["secret_length"], -1);
  EXPECT_EQ(missing.output["secret_error"], "not_found");
}

TEST_F(LuaPluginTest, KvKeepsEntriesBetweenCalls) {
  auto plugin = load("counter.lua", R"(return {
  name = "counter", version = "1.0.0",
  capabilities = {
    bump = { run = function(input)
      local n = herald.kv.get("n") or 0
      assert(herald.kv.set("n", n + 1, input.ttl))
      return { n = n + 1 }
    end },
    forget = { run = function() return { deleted = herald.kv.delete("n") } end },
    oversize = { run = function()
      local ok, err = herald.kv.set("big", string.rep("x", 70 * 1024))
      return { ok = ok or false, code = err.code, message = err.message }
    end },
    bad_ttl = { run = function() return herald.kv.set("n", 1, -1) end },
  },
})");
  ASSERT_TRUE(plugin.ok()) << plugin.error().message;
  auto cap = [&](const std::string& name) -> Capability& {
    for (const auto& c : plugin->capabilities) {
      if (c->info().name == name) return *c;
    }
    throw std::runtime_error("no capability " + name);
  };
  CallContext call;
  EXPECT_EQ(cap("counter.bump").invoke(Json::object(), call.context).output["n"], 1);
  EXPECT_EQ(cap("counter.bump").invoke({{"ttl", 60}}, call.context).output["n"], 2);
  EXPECT_EQ(cap("counter.forget").invoke(Json::object(), call.context).output["deleted"], true);
  EXPECT_EQ(cap("counter.bump").invoke(Json::object(), call.context).output["n"], 1);
  auto oversize = cap("counter.oversize").invoke(Json::object(), call.context);
  ASSERT_EQ(oversize.kind, steps::StepOutcome::Kind::done) << oversize.error.message;
  EXPECT_EQ(oversize.output["code"], "invalid_argument");
  EXPECT_NE(oversize.output["message"].get<std::string>().find("64 KiB"), std::string::npos);
  auto bad_ttl = cap("counter.bad_ttl").invoke(Json::object(), call.context);
  ASSERT_EQ(bad_ttl.kind, steps::StepOutcome::Kind::failed);
  EXPECT_NE(bad_ttl.error.message.find("positive number of seconds"), std::string::npos)
      << bad_ttl.error.message;
}

TEST_F(LuaPluginTest, NilErrReturnsAStructuredError) {
  auto plugin = load("luagood.lua", kGood);
  ASSERT_TRUE(plugin.ok()) << plugin.error().message;
  CallContext call;
  auto refused = capability(*plugin, "luagood.refuse").invoke(Json::object(), call.context);
  ASSERT_EQ(refused.kind, steps::StepOutcome::Kind::failed);
  EXPECT_EQ(refused.error.code, ErrorCode::failed_precondition);
  EXPECT_EQ(refused.error.message, "not today");
  EXPECT_FALSE(refused.error.retryable);

  auto busy = capability(*plugin, "luagood.busy").invoke(Json::object(), call.context);
  ASSERT_EQ(busy.kind, steps::StepOutcome::Kind::failed);
  EXPECT_EQ(busy.error.code, ErrorCode::unavailable);
  EXPECT_EQ(busy.error.message, "busy");
  EXPECT_TRUE(busy.error.retryable);
  ASSERT_TRUE(busy.error.retry_after.has_value());
  EXPECT_EQ(busy.error.retry_after->count(), 2000);

  auto no_json = capability(*plugin, "luagood.nothing_json").invoke(Json::object(), call.context);
  ASSERT_EQ(no_json.kind, steps::StepOutcome::Kind::failed);
  EXPECT_NE(no_json.error.message.find("no JSON form"), std::string::npos) << no_json.error.message;
}

TEST_F(LuaPluginTest, RuntimeErrorsCarryFileLineAndTraceback) {
  auto plugin = load("luagood.lua", kGood);
  ASSERT_TRUE(plugin.ok()) << plugin.error().message;
  CallContext call;
  auto outcome = capability(*plugin, "luagood.crash").invoke(Json::object(), call.context);
  ASSERT_EQ(outcome.kind, steps::StepOutcome::Kind::failed);
  EXPECT_EQ(outcome.error.code, ErrorCode::internal);
  const int line = line_of(kGood, "error(\"boom\")");
  EXPECT_EQ(outcome.error.message, "luagood.crash: luagood.lua:" + std::to_string(line) + ": boom");
  ASSERT_TRUE(outcome.error.details.is_object()) << outcome.error.details.dump();
  const std::string traceback = outcome.error.details.value("traceback", "");
  EXPECT_EQ(traceback.rfind("stack traceback:", 0), 0u) << traceback;
  EXPECT_NE(traceback.find("luagood.lua:" + std::to_string(line) + ": in "), std::string::npos)
      << traceback;
  EXPECT_NE(traceback.find("luagood.lua:" + std::to_string(line_of(kGood, "    inner()"))),
            std::string::npos)
      << traceback;
}

TEST_F(LuaPluginTest, SyntaxErrorsAreReportedAtLoadWithTheLine) {
  auto plugin = load("broken.lua",
                     "return {\n  name = 'broken',\n  capabilities = {\n"
                     "    x = { run = function() return 1 + end },\n  },\n}\n");
  ASSERT_FALSE(plugin.ok());
  EXPECT_EQ(plugin.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(plugin.error().message.find("broken.lua: broken.lua:4: unexpected symbol near 'end'"),
            std::string::npos)
      << plugin.error().message;
  EXPECT_EQ(plugin.error().message.find("stack traceback"), std::string::npos)
      << plugin.error().message;
}

TEST_F(LuaPluginTest, LoadErrorsSayWhatIsWrong) {
  auto not_table = load("plain.lua", "return 42\n");
  ASSERT_FALSE(not_table.ok());
  EXPECT_NE(not_table.error().message.find("must return a table"), std::string::npos)
      << not_table.error().message;

  auto no_run = load("norun.lua",
                     "return { name = 'norun', version = '1.0.0', capabilities = "
                     "{ x = { kind = 'step' } } }\n");
  ASSERT_FALSE(no_run.ok());
  EXPECT_NE(no_run.error().message.find("capability 'x': `run` must be a function"),
            std::string::npos)
      << no_run.error().message;

  auto bad_schema = load("badschema.lua",
                         "return { name = 'badschema', version = '1.0.0', capabilities = { x = {"
                         " input = { type = 'strin' }, run = function() end } } }\n");
  ASSERT_FALSE(bad_schema.ok());
  EXPECT_NE(bad_schema.error().message.find("schema invalid: capability 'badschema.x'"),
            std::string::npos)
      << bad_schema.error().message;

  auto bad_version =
      load("badversion.lua", "return { name = 'v', version = 'one', capabilities = {} }\n");
  ASSERT_FALSE(bad_version.ok());
  EXPECT_NE(bad_version.error().message.find("is not a semantic version"), std::string::npos);

  auto host_at_load = load("early.lua", "herald.log('too early')\nreturn {}\n");
  ASSERT_FALSE(host_at_load.ok());
  EXPECT_NE(host_at_load.error().message.find(
                "early.lua:1: herald.log is only available while a capability runs"),
            std::string::npos)
      << "[" << host_at_load.error().message << "]";

  auto loops_at_load = load("spin.lua", "while true do end\n");
  ASSERT_FALSE(loops_at_load.ok());
  EXPECT_NE(loops_at_load.error().message.find("instruction limit"), std::string::npos)
      << loops_at_load.error().message;
}

TEST_F(LuaPluginTest, AnInfiniteLoopIsStoppedAndTheNextCallWorks) {
  auto plugin = load("luagood.lua", kGood);
  ASSERT_TRUE(plugin.ok()) << plugin.error().message;
  CallContext call;
  auto outcome = capability(*plugin, "luagood.loop").invoke(Json::object(), call.context);
  ASSERT_EQ(outcome.kind, steps::StepOutcome::Kind::failed);
  EXPECT_EQ(outcome.error.code, ErrorCode::resource_exhausted);
  EXPECT_NE(outcome.error.message.find("luagood.loop: Lua instruction limit exceeded"),
            std::string::npos)
      << outcome.error.message;
  auto after = capability(*plugin, "luagood.echo").invoke({{"text", "again"}}, call.context);
  EXPECT_EQ(after.kind, steps::StepOutcome::Kind::done) << after.error.message;
}

TEST_F(LuaPluginTest, TheWallClockLimitStopsACall) {
  LuaLimits limits = test_limits();
  limits.instructions = uint64_t{1} << 60;
  limits.wall = std::chrono::milliseconds(50);
  auto plugin = load("luagood.lua", kGood, limits);
  ASSERT_TRUE(plugin.ok()) << plugin.error().message;
  CallContext call;
  auto outcome = capability(*plugin, "luagood.loop").invoke(Json::object(), call.context);
  ASSERT_EQ(outcome.kind, steps::StepOutcome::Kind::failed);
  EXPECT_EQ(outcome.error.code, ErrorCode::deadline_exceeded);
  EXPECT_NE(outcome.error.message.find("wall-clock limit"), std::string::npos)
      << outcome.error.message;
}

// Each capability tries one way out of the sandbox.
constexpr const char* kEscapes = R"(
local attempts = {
  read_io = function() return io.open("/etc/passwd"):read("a") end,
  read_loadfile = function() return loadfile("/etc/passwd")() end,
  read_dofile = function() return dofile("/etc/passwd") end,
  read_require = function() return require("io").open("/etc/passwd"):read("a") end,
  read_package = function() return package.loadlib("libc.so.6", "system") end,
  read_debug = function() return debug.getregistry() end,
  getenv = function() return os.getenv("HOME") end,
  execute = function() return os.execute("cat /etc/passwd") end,
  dump_and_load = function() return load(string.dump(function() return 1 end))() end,
  binary_chunk = function()
    local f, err = load("\27Lua\84\0\25\147\13\10\26\10")
    if not f then error(err) end
    return f()
  end,
  assign_herald = function() herald.http = function() return {} end end,
  assign_herald_json = function() herald.json.decode = nil end,
  rawset_herald = function() rawset(herald, "secret", function() return "x" end) end,
  setmetatable_herald = function() setmetatable(herald, { __index = function() return 1 end }) end,
  getmetatable_herald = function() getmetatable(herald).__index = {} end,
  string_metatable = function() getmetatable("").__index = {} end,
  stop_collector = function() collectgarbage("stop") end,
  coroutine_loop = function()
    local co = coroutine.wrap(function() while true do coroutine.yield() end end)
    while true do co() end
  end,
  coroutine_swallow = function()
    local co = coroutine.create(function() while true do end end)
    while true do pcall(coroutine.resume, co) end
  end,
  yield_out = function() coroutine.yield("out") end,
  big_string = function() return #string.rep("x", 1024 * 1024 * 1024) end,
  still_works = function() herald.log("info", "fine"); return { ok = type(herald.http) == "function" } end,
}
local capabilities = {}
for name, attempt in pairs(attempts) do capabilities[name] = { run = attempt } end
return { name = "escapes", version = "1.0.0", capabilities = capabilities }
)";

TEST_F(LuaPluginTest, SandboxEscapesAreRefused) {
  auto plugin = load("escapes.lua", kEscapes);
  ASSERT_TRUE(plugin.ok()) << plugin.error().message;
  const std::vector<std::tuple<std::string, ErrorCode, std::string>> cases = {
      {"read_io", ErrorCode::internal, "attempt to index a nil value (global 'io')"},
      {"read_loadfile", ErrorCode::internal, "attempt to call a nil value (global 'loadfile')"},
      {"read_dofile", ErrorCode::internal, "attempt to call a nil value (global 'dofile')"},
      {"read_require", ErrorCode::internal, "attempt to call a nil value (global 'require')"},
      {"read_package", ErrorCode::internal, "attempt to index a nil value (global 'package')"},
      {"read_debug", ErrorCode::internal, "attempt to index a nil value (global 'debug')"},
      {"getenv", ErrorCode::internal, "attempt to call a nil value (field 'getenv')"},
      {"execute", ErrorCode::internal, "attempt to call a nil value (field 'execute')"},
      {"dump_and_load", ErrorCode::internal, "attempt to call a nil value (field 'dump')"},
      {"binary_chunk", ErrorCode::internal, "attempt to load a binary chunk"},
      {"assign_herald", ErrorCode::internal, "the sandbox library is read-only"},
      {"assign_herald_json", ErrorCode::internal, "the sandbox library is read-only"},
      {"rawset_herald", ErrorCode::internal, "the sandbox library is read-only"},
      {"setmetatable_herald", ErrorCode::internal, "cannot change a protected metatable"},
      {"getmetatable_herald", ErrorCode::internal, "attempt to index a boolean value"},
      {"string_metatable", ErrorCode::internal, "attempt to index a boolean value"},
      {"stop_collector", ErrorCode::internal, "collectgarbage('stop') is not available"},
      {"coroutine_loop", ErrorCode::resource_exhausted, "Lua instruction limit exceeded"},
      {"coroutine_swallow", ErrorCode::resource_exhausted, "Lua instruction limit exceeded"},
      {"yield_out", ErrorCode::internal, "attempt to yield from outside a coroutine"},
      {"big_string", ErrorCode::resource_exhausted, "Lua memory limit exceeded"},
  };
  for (const auto& [name, code, text] : cases) {
    CallContext call;
    auto outcome = capability(*plugin, "escapes." + name).invoke(Json::object(), call.context);
    ASSERT_EQ(outcome.kind, steps::StepOutcome::Kind::failed)
        << name << ": " << outcome.output.dump();
    EXPECT_EQ(outcome.error.code, code) << name << ": " << outcome.error.message;
    EXPECT_NE(outcome.error.message.find(text), std::string::npos)
        << name << ": " << outcome.error.message;
    EXPECT_EQ(outcome.error.message.find("root:"), std::string::npos)
        << name << " read /etc/passwd";
  }
  CallContext call;
  auto still = capability(*plugin, "escapes.still_works").invoke(Json::object(), call.context);
  ASSERT_EQ(still.kind, steps::StepOutcome::Kind::done) << still.error.message;
  EXPECT_EQ(still.output["ok"], true);
  EXPECT_EQ(call.logs, std::vector<std::string>{"info: fine"});
}

}  // namespace
}  // namespace herald::plugins
