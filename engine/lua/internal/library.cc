// The sandbox's standard library: what chunks may call, built from an allow-list (after Redis's
// scripting), with the functions that catch errors wrapped so that a limit, once hit, cannot be
// caught. Everything a chunk can reach is either immutable, created fresh for its run, or a
// read-only shell, so no run can change what the next one sees.
#include <cmath>
#include <cstring>
#include <exception>
#include <initializer_list>

#include "engine/lua/internal/state.h"

namespace herald::lua::internal {

namespace {

// --- limits -----------------------------------------------------------------------------------

// Calls the original function (upvalue 1) with this call's arguments, for the wrappers below.
void call_original(lua_State* L, int nresults = LUA_MULTRET) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, nresults);
}

// pcall and xpcall: the originals, then a check. A continuation (lua_callk) keeps yields across
// them working inside coroutines.
int after_pcall(lua_State* L, int /*status*/, lua_KContext /*ctx*/) {
  if (must_stop(*state_of(L), !lua_toboolean(L, 1))) raise_kill(L);
  return lua_gettop(L);
}

int sandbox_pcall(lua_State* L) {
  luaL_checkany(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_callk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, after_pcall);
  return after_pcall(L, LUA_OK, 0);
}

// Lua leaves hooks disabled (allowhook) from an error raised in the hook until the enclosing
// protected call restores them, and calls xpcall's message handler in between. So after a kill
// the handler must not run any chunk code: it could loop forever, unhooked.
int guarded_handler(lua_State* L) {
  if (state_of(L)->killed != Kill::none) return 1;  // keep the kill's message
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

int sandbox_xpcall(lua_State* L) {
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, guarded_handler, 1);
  lua_replace(L, 2);
  return sandbox_pcall(L);
}

// coroutine.resume returns false instead of raising; same check.
int sandbox_resume(lua_State* L) {
  call_original(L);
  if (must_stop(*state_of(L), !lua_toboolean(L, 1))) raise_kill(L);
  return lua_gettop(L);
}

// Resumes `co` with the top `narg` values of L (lcorolib's auxresume): the number of results
// moved onto L, or -1 with the error on top.
int resume_thread(lua_State* L, lua_State* co, int narg) {
  if (!lua_checkstack(co, narg)) {
    lua_pushliteral(L, "too many arguments to resume");
    return -1;
  }
  lua_xmove(L, co, narg);
  int nres = 0;
  const int status = lua_resume(co, L, narg, &nres);
  if (status == LUA_OK || status == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      lua_pushliteral(L, "too many results to resume");
      return -1;
    }
    lua_xmove(co, L, nres);
    return nres;
  }
  lua_xmove(co, L, 1);
  return -1;
}

// The function coroutine.wrap returns (lcorolib's auxwrap), except that a coroutine that was
// killed is not reset: resetting runs its __close handlers, and a thread killed from the hook
// still has hooks disabled (see guarded_handler).
int wrapped_call(lua_State* L) {
  lua_State* co = lua_tothread(L, lua_upvalueindex(1));
  const int results = resume_thread(L, co, lua_gettop(L));
  if (results >= 0) return results;
  if (must_stop(*state_of(L), true)) raise_kill(L);
  int status = lua_status(co);
  if (status != LUA_OK && status != LUA_YIELD) {
    status = lua_resetthread(co);
    lua_xmove(co, L, 1);
  }
  if (status != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
  }
  return lua_error(L);
}

int sandbox_wrap(lua_State* L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_State* co = lua_newthread(L);  // inherits the hook
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushcclosure(L, wrapped_call, 1);
  return 1;
}

// load(chunk [, chunkname [, mode [, env]]]): text chunks only, and by default the chunk shares
// the running chunk's _ENV rather than the state's real globals.
int sandbox_load(lua_State* L) {
  const int given = lua_gettop(L);
  luaL_checkany(L, 1);
  lua_settop(L, 4);
  lua_pushliteral(L, "t");
  lua_replace(L, 3);
  if (given < 4) {
    push_ref(L, kCurrentEnv);
    lua_replace(L, 4);
  }
  call_original(L);
  if (must_stop(*state_of(L), lua_isnil(L, 1))) raise_kill(L);
  return lua_gettop(L);
}

// --- things chunks must not change --------------------------------------------------------------

bool is_frozen(lua_State* L, int index) {
  push_ref(L, kFrozen);
  lua_pushvalue(L, index);
  const bool frozen = lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  return frozen;
}

int sandbox_rawset(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  if (is_frozen(L, 1)) return luaL_error(L, "the sandbox library is read-only");
  call_original(L);
  return lua_gettop(L);
}

// A __gc metamethod would run Lua code during some later collection, outside the run that
// created it (and possibly during another run): refused.
int sandbox_setmetatable(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    const bool has_gc = lua_rawget(L, 2) != LUA_TNIL;
    lua_pop(L, 1);
    if (has_gc) return luaL_error(L, "__gc metamethods are not allowed in the sandbox");
  }
  call_original(L);
  return lua_gettop(L);
}

int frozen_newindex(lua_State* L) {
  return luaL_error(L, "the sandbox library is read-only");
}

// pairs() over a shell iterates the real table without handing it out.
int frozen_next(lua_State* L) {
  lua_settop(L, 2);
  if (lua_next(L, lua_upvalueindex(1)) != 0) return 2;
  lua_pushnil(L);
  return 1;
}

int frozen_pairs(lua_State* L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushcclosure(L, frozen_next, 1);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

// Only "count": a full collection is unbounded C work the instruction limit would not see.
int sandbox_collectgarbage(lua_State* L) {
  const char* option = luaL_optstring(L, 1, "collect");
  if (std::strcmp(option, "count") != 0) {
    return luaL_error(L, "collectgarbage('%s') is not available in the sandbox", option);
  }
  const size_t used = state_of(L)->memory.used;
  lua_pushnumber(L, static_cast<lua_Number>(used) / 1024.0);
  return 1;
}

// --- the rest ------------------------------------------------------------------------------------

// Never throws into Lua: the text is already a Lua string, and a failing handler is ignored.
void deliver_print(State& s, const char* text, size_t length) noexcept {
  if (!s.print) return;
  try {
    s.print(std::string_view(text, length));
  } catch (const std::exception&) {
  }
}

int sandbox_print(lua_State* L) {
  const int n = lua_gettop(L);
  luaL_Buffer buffer;
  luaL_buffinit(L, &buffer);
  for (int i = 1; i <= n; ++i) {
    if (i > 1) luaL_addchar(&buffer, '\t');
    luaL_tolstring(L, i, nullptr);
    luaL_addvalue(&buffer);
  }
  luaL_pushresult(&buffer);
  size_t length = 0;
  const char* text = lua_tolstring(L, -1, &length);
  deliver_print(*state_of(L), text, length);
  return 0;
}

// os.date(format, time) wants an integer time; `now` is fractional seconds, so floor it.
int sandbox_date(lua_State* L) {
  if (lua_type(L, 2) == LUA_TNUMBER && !lua_isinteger(L, 2)) {
    const double t = std::floor(lua_tonumber(L, 2));
    if (t >= -9.0e15 && t <= 9.0e15) {
      lua_pushinteger(L, static_cast<lua_Integer>(t));
      lua_replace(L, 2);
    }
  }
  call_original(L);
  return lua_gettop(L);
}

// Replaces field `name` of the table at -1 with a closure over its original value.
void wrap_field(lua_State* L, const char* name, lua_CFunction wrapper) {
  lua_getfield(L, -1, name);
  lua_pushcclosure(L, wrapper, 1);
  lua_setfield(L, -2, name);
}

// Copies the listed fields of the table at `from` into the table at -1.
void copy_fields(lua_State* L, int from, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    lua_getfield(L, from, name);
    lua_setfield(L, -2, name);
  }
}

// Leaves the library `open` returns on the stack (without registering it as a global).
void open_one(lua_State* L, const char* name, lua_CFunction open) {
  luaL_requiref(L, name, open, 0);
}

}  // namespace

const char* kill_message(Kill kill) {
  switch (kill) {
    case Kill::instructions:
      return "sandbox instruction limit exceeded";
    case Kill::memory:
      return "sandbox memory limit exceeded";
    case Kill::wall:
      return "sandbox wall-clock limit exceeded";
    case Kill::none:
      break;
  }
  return "stopped";
}

bool must_stop(State& s, bool call_failed) {
  if (s.killed == Kill::none && call_failed && s.memory.refused) s.killed = Kill::memory;
  return s.killed != Kill::none;
}

void raise_kill(lua_State* L) {
  State& s = *state_of(L);
  lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
  if (L != s.L) lua_sethook(s.L, count_hook, LUA_MASKCOUNT, 1);
  lua_pushstring(L, kill_message(s.killed));
  lua_error(L);
  std::terminate();  // lua_error does not return; this keeps [[noreturn]] honest
}

void count_hook(lua_State* L, lua_Debug* /*ar*/) {
  State& s = *state_of(L);
  if (s.killed == Kill::none) {
    s.instructions += static_cast<uint64_t>(s.hook_interval);
    if (s.instructions > s.instruction_limit) {
      s.killed = Kill::instructions;
    } else if (s.has_deadline && std::chrono::steady_clock::now() >= s.deadline) {
      s.killed = Kill::wall;
    } else {
      return;
    }
  }
  raise_kill(L);
}

void push_frozen(lua_State* L, int index) {
  index = lua_absindex(L, index);
  lua_newtable(L);
  lua_createtable(L, 0, 4);
  lua_pushvalue(L, index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, frozen_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushvalue(L, index);
  lua_pushcclosure(L, frozen_pairs, 1);
  lua_setfield(L, -2, "__pairs");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  push_ref(L, kFrozen);
  lua_pushvalue(L, -2);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

void open_library(lua_State* L) {
  // The weak set of frozen tables.
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  set_ref(L, kFrozen);

  // luaopen_base fills the state's real globals; chunks never see that table, only `base`.
  open_one(L, LUA_GNAME, luaopen_base);
  const int globals = lua_gettop(L);
  lua_newtable(L);
  const int base = lua_gettop(L);
  copy_fields(L, globals,
              {"assert", "error", "getmetatable", "ipairs", "next", "pairs", "rawequal", "rawget",
               "rawlen", "select", "tonumber", "tostring", "type", "_VERSION"});
  lua_getfield(L, globals, "pcall");
  lua_pushcclosure(L, sandbox_pcall, 1);
  lua_setfield(L, base, "pcall");
  lua_getfield(L, globals, "xpcall");
  lua_pushcclosure(L, sandbox_xpcall, 1);
  lua_setfield(L, base, "xpcall");
  lua_getfield(L, globals, "load");
  lua_pushcclosure(L, sandbox_load, 1);
  lua_setfield(L, base, "load");
  lua_getfield(L, globals, "rawset");
  lua_pushcclosure(L, sandbox_rawset, 1);
  lua_setfield(L, base, "rawset");
  lua_getfield(L, globals, "setmetatable");
  lua_pushcclosure(L, sandbox_setmetatable, 1);
  lua_setfield(L, base, "setmetatable");
  lua_pushcfunction(L, sandbox_collectgarbage);
  lua_setfield(L, base, "collectgarbage");
  lua_pushcfunction(L, sandbox_print);
  lua_setfield(L, base, "print");

  // string without string.dump (binary chunks); its metatable, shared by every string, locked.
  open_one(L, LUA_STRLIBNAME, luaopen_string);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);
  push_frozen(L, -1);
  lua_setfield(L, base, "string");
  lua_pop(L, 1);

  const struct {
    const char* name;
    lua_CFunction open;
  } plain[] = {{LUA_TABLIBNAME, luaopen_table},
               {LUA_MATHLIBNAME, luaopen_math},
               {LUA_UTF8LIBNAME, luaopen_utf8}};
  for (const auto& lib : plain) {
    open_one(L, lib.name, lib.open);
    push_frozen(L, -1);
    lua_setfield(L, base, lib.name);
    lua_pop(L, 1);
  }

  // Coroutines: Lua 5.4 copies the hook of the creating thread into each new coroutine
  // (lua_newthread), so create needs no wrapping; resume and wrap catch errors, so they are.
  open_one(L, LUA_COLIBNAME, luaopen_coroutine);
  wrap_field(L, "resume", sandbox_resume);
  lua_pushcfunction(L, sandbox_wrap);
  lua_setfield(L, -2, "wrap");
  push_frozen(L, -1);
  lua_setfield(L, base, LUA_COLIBNAME);
  lua_pop(L, 1);

  // os: the clock and calendar only.
  open_one(L, LUA_OSLIBNAME, luaopen_os);
  const int os = lua_gettop(L);
  lua_createtable(L, 0, 3);
  copy_fields(L, os, {"time", "clock"});
  lua_getfield(L, os, "date");
  lua_pushcclosure(L, sandbox_date, 1);
  lua_setfield(L, -2, "date");
  push_frozen(L, -1);
  lua_setfield(L, base, LUA_OSLIBNAME);
  lua_pop(L, 2);

  open_json(L);
  push_frozen(L, -1);
  lua_setfield(L, base, "json");
  lua_pop(L, 1);

  lua_pushvalue(L, base);
  set_ref(L, kBase);

  // Argument errors raised by an original function called through a wrapper name it by
  // searching the loaded modules (luaL_argerror): keep the originals findable there as "_G.*".
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, globals) != 0) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  lua_setfield(L, -2, LUA_GNAME);
  lua_pop(L, 1);

  // Empty the real globals: nothing should reach them, and if something did it finds nothing.
  lua_pushnil(L);
  while (lua_next(L, globals) != 0) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushnil(L);
    lua_rawset(L, globals);
  }
  lua_settop(L, globals - 1);
}

}  // namespace herald::lua::internal
