// Sandbox::load_module, call_protected and nested library tables: what Lua plugins are built on.
#include <lua.hpp>

#include <gtest/gtest.h>

#include "engine/lua/json.h"
#include "engine/lua/sandbox.h"

namespace herald::lua {
namespace {

struct Call {
  int ref = LUA_NOREF;
  Json result;
};

// Calls module.f() and keeps its result.
int call_f(lua_State* L) {
  auto* call = static_cast<Call*>(lua_touserdata(L, 1));
  lua_rawgeti(L, LUA_REGISTRYINDEX, call->ref);
  lua_getfield(L, -1, "f");
  lua_call(L, 0, 1);
  Result<Json> value = to_json(L, -1);
  if (value.ok()) call->result = *value;
  return 0;
}

TEST(SandboxModule, KeepsTheModuleAndItsGlobalsBetweenCalls) {
  Sandbox sandbox;
  auto ref = sandbox.load_module(
      "count = 0\nreturn { f = function() count = count + 1; return count end }\n", "@counter.lua");
  ASSERT_TRUE(ref.ok()) << ref.error().message;
  Call call{*ref, nullptr};
  ASSERT_TRUE(sandbox.call_protected(call_f, &call).ok());
  ASSERT_TRUE(sandbox.call_protected(call_f, &call).ok());
  EXPECT_EQ(call.result, 2);
  // Expressions run in their own _ENV and do not see the module's globals.
  auto seen = sandbox.run(ChunkKind::expression, "count", {});
  ASSERT_TRUE(seen.ok());
  EXPECT_TRUE(seen->is_null());
}

TEST(SandboxModule, ErrorsNameTheFileAndLineAndCarryATraceback) {
  Sandbox sandbox;
  auto syntax = sandbox.load_module("return {\n  f = function( end\n}\n", "@bad.lua");
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.error().message.rfind("bad.lua:2:", 0), 0u) << syntax.error().message;
  EXPECT_TRUE(syntax.error().details.is_null());

  auto ref = sandbox.load_module(
      "local function g() error('nope') end\nreturn { f = function() g() end }\n", "@fails.lua");
  ASSERT_TRUE(ref.ok()) << ref.error().message;
  Call call{*ref, nullptr};
  auto status = sandbox.call_protected(call_f, &call);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(status.error().message, "fails.lua:1: nope");
  const std::string traceback = status.error().details.value("traceback", "");
  EXPECT_NE(traceback.find("fails.lua:1: in "), std::string::npos) << traceback;
  EXPECT_NE(traceback.find("fails.lua:2: in "), std::string::npos) << traceback;
}

TEST(SandboxModule, LimitsApplyToCallsAndTheStateStaysUsable) {
  Sandbox sandbox;
  auto ref = sandbox.load_module("return { f = function() while true do end end }", "@spin.lua");
  ASSERT_TRUE(ref.ok());
  Call call{*ref, nullptr};
  Limits limits;
  limits.instructions = 100'000;
  auto status = sandbox.call_protected(call_f, &call, limits);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::resource_exhausted);
  auto after = sandbox.run(ChunkKind::expression, "1 + 1", {});
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, 2);
}

int answer(lua_State* L) {
  lua_pushinteger(L, 42);
  return 1;
}

TEST(SandboxModule, LibrariesHaveReadOnlyPartsAndAliases) {
  Sandbox sandbox;
  static const luaL_Reg top[] = {{"answer", answer}, {nullptr, nullptr}};
  static const luaL_Reg nested[] = {{"get", answer}, {nullptr, nullptr}};
  const Sandbox::LibraryPart parts[] = {{"kv", nested, nullptr}, {"json", nullptr, "json"}};
  ASSERT_TRUE(sandbox.add_library("host", top, parts).ok());
  auto value = sandbox.run(ChunkKind::expression,
                           "host.answer() + host.kv.get() + #host.json.encode({1})", {});
  ASSERT_TRUE(value.ok()) << value.error().message;
  EXPECT_EQ(*value, 87);
  for (const char* attempt :
       {"host.kv.get = nil", "host.kv = {}", "host.json.encode = nil", "rawset(host.kv, 'x', 1)"}) {
    auto result = sandbox.run(ChunkKind::script, attempt, {});
    ASSERT_FALSE(result.ok()) << attempt;
    EXPECT_NE(result.error().message.find("read-only"), std::string::npos)
        << attempt << ": " << result.error().message;
  }
  const Sandbox::LibraryPart unknown[] = {{"x", nullptr, "no_such_library"}};
  EXPECT_FALSE(sandbox.add_library("other", top, unknown).ok());
}

}  // namespace
}  // namespace herald::lua
