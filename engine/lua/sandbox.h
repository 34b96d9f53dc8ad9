// The sandboxed Lua 5.4 host. A Sandbox owns one lua_State with an allow-listed standard library,
// a hard memory cap (custom lua_Alloc), an instruction limit and optional wall-clock deadline (a
// count hook whose kill no `pcall` can swallow), a compile cache keyed by source, and a fresh
// `_ENV` per run so nothing a chunk does outlives it. Host values are lent to a run as globals
// (JSON documents exposed lazily through read-only proxies, see engine/lua/json.h).
//
// Used by engine/expr (expressions, templates, `script` steps) and, later, by Lua plugins, which
// add their host API table with add_library(). One Sandbox per thread: it is not thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "engine/common/result.h"

struct lua_State;
struct luaL_Reg;

namespace herald::lua {

// Limits for one run. Exceeding `instructions` or `memory_bytes` gives resource_exhausted,
// exceeding `wall` gives deadline_exceeded; the chunk cannot catch either.
struct Limits {
  uint64_t instructions = 10'000'000;
  // Memory the run may hold on top of what the state held when it began (the standard library
  // and the compile cache, a few hundred KiB).
  size_t memory_bytes = 32u * 1024 * 1024;
  std::chrono::milliseconds wall{0};  // 0: no wall-clock limit
};

// A value lent to one run as a global name. A JSON document is not copied: the chunk sees
// scalars directly and objects/arrays as read-only proxies that read `*json` on access and stop
// working when the run ends. The pointee must outlive the run.
struct Global {
  enum class Kind : uint8_t { json, integer, number };

  std::string_view name;
  Kind kind = Kind::json;
  const Json* json = nullptr;
  int64_t integer = 0;
  double number = 0;

  static Global of_json(std::string_view name, const Json& value) {
    return {name, Kind::json, &value, 0, 0};
  }
  static Global of_integer(std::string_view name, int64_t value) {
    return {name, Kind::integer, nullptr, value, 0};
  }
  static Global of_number(std::string_view name, double value) {
    return {name, Kind::number, nullptr, 0, value};
  }
};

// How a source text is compiled. An expression is compiled as `return <expression>` (its first
// value is the result); a script is a chunk whose first return value is the result.
enum class ChunkKind : uint8_t { expression, script };

class Sandbox {
 public:
  Sandbox();
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  // Compiles `source` (text only, never a binary chunk) on first use, then runs it with a fresh
  // `_ENV` that sees `globals` and the sandbox library, and returns its first result as JSON.
  // Errors: invalid_argument for syntax and runtime errors (the Lua message, with the line);
  // resource_exhausted / deadline_exceeded for the limits; failed_precondition when called
  // re-entrantly from inside a run. The state stays usable after every kind of failure.
  Result<Json> run(ChunkKind kind, std::string_view source, std::span<const Global> globals,
                   const Limits& limits = {});

  // Compiles (and caches) without running: for checking chunks ahead of time.
  Status compile(ChunkKind kind, std::string_view source);

  // Adds a read-only table `name` visible to every chunk, e.g. the plugin host API `herald`.
  // Its functions run under the same limits; they must follow the rules in json.h about Lua
  // errors and C++ objects.
  Status add_library(const char* name, const luaL_Reg* functions);

  // A field of a library table added with add_library: a nested read-only table of functions
  // (`herald.kv.get`), or, with `alias_of`, a library the sandbox already has (`herald.json`).
  struct LibraryPart {
    const char* name = nullptr;
    const luaL_Reg* functions = nullptr;
    const char* alias_of = nullptr;
  };
  Status add_library(const char* name, const luaL_Reg* functions,
                     std::span<const LibraryPart> parts);

  // Runs `source` once as a module (a Lua plugin file) and keeps its first result in the state:
  // compiled as text under `chunk_name` (give "@file.lua", so messages read "file.lua:12: ..."),
  // in an `_ENV` of its own that lives as long as the module (its globals persist between
  // calls), under `limits`. Returns the result's registry reference (LUA_REFNIL for nil), for
  // call_protected bodies: lua_rawgeti(L, LUA_REGISTRYINDEX, ref). Errors: invalid_argument for
  // a syntax error (Lua's message, with the line) and for a runtime error (with
  // details.traceback); resource_exhausted / deadline_exceeded for the limits.
  Result<int> load_module(std::string_view source, std::string_view chunk_name,
                          const Limits& limits = {});

  // Runs `body` in protected mode under `limits`, with `data` as its only argument (a light
  // userdata): for host code that works on the state itself, e.g. calling a module's functions.
  // A Lua error raised in `body` or in what it calls becomes invalid_argument with Lua's message
  // and details.traceback; the limits as for run(). `body` must follow json.h's rules about
  // Lua errors and C++ objects.
  Status call_protected(int (*body)(lua_State*), void* data, const Limits& limits = {});

  // Where `print` goes; by default its text is dropped.
  void set_print(std::function<void(std::string_view)> print);

  // For host functions and tests: the underlying state and a few gauges.
  lua_State* state() const;
  size_t memory_in_use() const;
  size_t cached_chunks() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Compiles `source` on a compile-only state (nothing runs) and returns Lua's message, e.g.
// `[expression "a +"]:1: unexpected symbol near <eof>`, or nullopt when it compiles.
std::optional<std::string> check_syntax(ChunkKind kind, std::string_view source);

}  // namespace herald::lua
