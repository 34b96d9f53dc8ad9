// Private to engine/lua: the per-state bookkeeping shared by the sandbox, its standard library
// and the JSON views. Reached from any thread of the state through lua_getextraspace (Lua copies
// the main thread's extra space into every coroutine it creates).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string>

#include <lua.hpp>

#include "engine/common/result.h"
#include "engine/lua/sandbox.h"

namespace herald::lua::internal {

// What the sandbox keeps in the registry. Each is a luaL_ref slot (the registry's array part),
// so reaching one is an index, not a hash lookup: this is on the path of every context access.
enum Ref : int {
  kProxyMeta,   // metatable of context proxies
  kNull,        // the json.null userdata
  kArrayMeta,   // metatable marking a table as a JSON array
  kFrozen,      // weak set of read-only library tables (rawset refuses them)
  kEnvMeta,     // metatable of each run's _ENV
  kBase,        // the library every _ENV falls back to
  kCurrentEnv,  // the _ENV of the current or next run (default env of `load`)
  kChunks,      // compiled chunks, by id
  kRefCount
};

enum class Kill : uint8_t { none, instructions, memory, wall };

// Memory accounting for the custom allocator. `limit` is absolute (bytes in use), set from the
// run's Limits when it starts and lifted again when it ends.
struct Memory {
  size_t used = 0;
  size_t limit = std::numeric_limits<size_t>::max();
  // Set when an allocation was refused, cleared when Lua's retry of that same request (after
  // its emergency collection) succeeds: while set, the run has hit the cap.
  bool refused = false;
  const void* refused_block = nullptr;
  size_t refused_old = 0;
  size_t refused_new = 0;
};

struct State {
  lua_State* L = nullptr;
  Memory memory;

  // The current run.
  bool running = false;
  Kill killed = Kill::none;
  uint64_t instructions = 0;  // executed so far, in steps of hook_interval
  uint64_t instruction_limit = 0;
  int hook_interval = 1000;
  bool has_deadline = false;
  std::chrono::steady_clock::time_point deadline;
  std::span<const Global> globals;
  // A run starts with an empty _ENV. One that nothing wrote to is reused by the next run, which
  // is the same as a fresh one and saves a table per run; otherwise a new one is made.
  bool env_dirty = false;
  // Proxies remember the generation they were made in; it moves on after every run, which makes
  // every older proxy stale.
  uint64_t generation = 1;

  // Text and JSON handed from C++ helpers to Lua-facing C functions through members rather than
  // locals, so no C++ destructor sits in a frame a Lua error could longjmp over.
  std::string scratch;
  Json scratch_json;

  std::function<void(std::string_view)> print;

  int refs[kRefCount] = {};  // 0: not set yet (luaL_ref never returns 0)
};

inline State* state_of(lua_State* L) {
  return *static_cast<State**>(lua_getextraspace(L));
}

inline void push_ref(lua_State* L, Ref ref) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, state_of(L)->refs[ref]);
}

// Pops the top value into `ref`. The first time may allocate (luaL_ref); replacing an existing
// value never does.
inline void set_ref(lua_State* L, Ref ref) {
  State* s = state_of(L);
  if (s->refs[ref] == 0) {
    s->refs[ref] = luaL_ref(L, LUA_REGISTRYINDEX);
  } else {
    lua_rawseti(L, LUA_REGISTRYINDEX, s->refs[ref]);
  }
}

// Opens the allow-listed library and leaves the base table (the fallback of every _ENV) in the
// registry under kBase. Raises Lua errors: call in protected mode.
void open_library(lua_State* L);

// Creates the proxy and json.null metatables (registry kProxyMeta, kNull, kArrayMeta) and the
// `json` library table, which it leaves on the stack. Raises Lua errors.
void open_json(lua_State* L);

// Pushes a read-only shell over the table at `index` (its __index), registered in kFrozen.
void push_frozen(lua_State* L, int index);

// Ends the run with the limit error: keeps the hook firing on every instruction of this thread
// and the main one, so an error caught by a `pcall` the sandbox did not wrap is raised again
// at once. Never returns.
[[noreturn]] void raise_kill(lua_State* L);

// The count hook: adds up instructions and checks the deadline.
void count_hook(lua_State* L, lua_Debug* ar);

// True when the run must end: a limit fired, or a failure came from the memory cap (which then
// becomes the kill). Called by every library function that catches errors.
bool must_stop(State& s, bool call_failed);

const char* kill_message(Kill kill);

// True when the value at `index` is a view of `node` made in the current run.
bool is_current_view(lua_State* L, int index, const Json* node);

// Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF): JSON strings must be.
bool valid_utf8(std::string_view text);

}  // namespace herald::lua::internal
