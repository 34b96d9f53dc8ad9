// The sandbox: state creation, the capped allocator, the compile cache and one run from start to
// cleanup. See internal/library.cc for what chunks can call and json.cc for the context views.
#include "engine/lua/sandbox.h"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <new>
#include <stdexcept>
#include <unordered_map>

#include "engine/lua/internal/state.h"
#include "engine/lua/json.h"

namespace herald::lua {

using internal::Kill;
using internal::State;
using internal::state_of;

namespace {

// The compile cache is dropped whole when it grows past either bound: workflows have a bounded
// set of expressions, so this only trims pathological growth.
constexpr size_t kMaxCachedChunks = 4096;
constexpr size_t kMaxCachedSourceBytes = 16u * 1024 * 1024;
constexpr size_t kCompileOnlyMemory = 64u * 1024 * 1024;
constexpr int kHookInterval = 1000;  // instructions between two checks of the limits

// lua_Alloc with a hard cap. Lua retries a refused request once after an emergency collection;
// Memory::refused tracks whether the run is really out of room (see state.h).
void* allocate(void* ud, void* block, size_t old_size, size_t new_size) {
  auto& m = *static_cast<internal::Memory*>(ud);
  const size_t old = block != nullptr ? old_size : 0;
  if (new_size == 0) {
    std::free(block);
    m.used -= old;
    return nullptr;
  }
  if (new_size > old && (m.used >= m.limit || new_size - old > m.limit - m.used)) {
    m.refused = true;
    m.refused_block = block;
    m.refused_old = old_size;
    m.refused_new = new_size;
    return nullptr;
  }
  void* result = std::realloc(block, new_size);
  if (result == nullptr) return nullptr;
  m.used = m.used - old + new_size;
  if (m.refused && block == m.refused_block && old_size == m.refused_old &&
      new_size == m.refused_new) {
    m.refused = false;
  }
  return result;
}

bool is_blank(std::string_view text) {
  return text.find_first_not_of(" \t\r\n\f\v") == std::string_view::npos;
}

std::string chunk_source(ChunkKind kind, std::string_view source) {
  if (kind == ChunkKind::script) return std::string(source);
  // `return <expression>` rather than `return (<expression>)`: a trailing `--` comment cannot
  // swallow a closing parenthesis, and syntax errors keep Lua's natural wording and line.
  std::string text = "return ";
  text.append(source);
  return text;
}

// `=[expression "steps.a.output.n > 3 and ..."]` gives messages like
// `[expression "steps.a.output.n > 3 and ..."]:1: attempt to compare nil with number`.
std::string chunk_name(ChunkKind kind, std::string_view source) {
  if (kind == ChunkKind::script) return "=[script]";
  constexpr size_t kShown = 36;  // Lua keeps 59 characters of a chunk name
  std::string_view text = source;
  const size_t first = text.find_first_not_of(" \t\r\n");
  text = first == std::string_view::npos ? std::string_view() : text.substr(first);
  text = text.substr(0, text.find_last_not_of(" \t\r\n") + 1);
  const std::string_view line = text.substr(0, text.find('\n'));
  const bool cut = line.size() > kShown || line.size() < text.size();
  std::string name = "=[expression \"";
  name.append(line.substr(0, kShown));
  if (cut) name.append("...");
  name.append("\"]");
  return name;
}

// Lua error values become text without running any Lua (no __tostring), and valid UTF-8.
std::string error_text(lua_State* L, int index) {
  std::string text;
  switch (lua_type(L, index)) {
    case LUA_TSTRING: {
      size_t length = 0;
      const char* s = lua_tolstring(L, index, &length);
      text.assign(s, length);
      break;
    }
    case LUA_TNUMBER:
      text = lua_isinteger(L, index) ? std::to_string(lua_tointeger(L, index))
                                     : Json(lua_tonumber(L, index)).dump();
      break;
    default: {
      Result<Json> json = to_json(L, index);
      if (json.ok() && !json->is_null()) {
        text = json->dump(-1, ' ', false, Json::error_handler_t::replace);
      } else {
        text = std::string("(error object is a ") + luaL_typename(L, index) + " value)";
      }
    }
  }
  if (!internal::valid_utf8(text)) {
    text = Json(text).dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  return text;
}

// --- protected entry points (all Lua work that can raise happens inside lua_pcall) -------------

struct CompileRequest {
  const char* source;
  size_t length;
  const char* name;
  lua_Integer id;
  bool reset_cache;
};

int compile_chunk(lua_State* L) {
  const auto* request = static_cast<const CompileRequest*>(lua_touserdata(L, 1));
  if (request->reset_cache) {
    lua_newtable(L);
    internal::set_ref(L, internal::kChunks);
  }
  if (luaL_loadbufferx(L, request->source, request->length, request->name, "t") != LUA_OK) {
    return lua_error(L);
  }
  internal::push_ref(L, internal::kChunks);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, request->id);
  return 0;
}

// _ENV's __index: the run's globals, then the sandbox library (upvalue 1). Views of globals are
// kept per run in a registry-only table (upvalue 2, one slot per global), not in _ENV, so that
// repeated reads make one proxy and _ENV stays clean for reuse.
int env_index(lua_State* L) {
  if (lua_type(L, 2) == LUA_TSTRING) {
    size_t length = 0;
    const char* key = lua_tolstring(L, 2, &length);
    const std::string_view name(key, length);
    const std::span<const Global> globals = state_of(L)->globals;
    for (size_t i = 0; i < globals.size(); ++i) {
      const Global& global = globals[i];
      if (global.name != name) continue;
      switch (global.kind) {
        case Global::Kind::json: {
          if (!global.json->is_structured()) {
            push_view(L, *global.json);
            return 1;
          }
          const auto slot = static_cast<lua_Integer>(i + 1);
          lua_rawgeti(L, lua_upvalueindex(2), slot);
          if (internal::is_current_view(L, -1, global.json)) return 1;
          lua_pop(L, 1);
          push_view(L, *global.json);
          lua_pushvalue(L, -1);
          lua_rawseti(L, lua_upvalueindex(2), slot);
          return 1;
        }
        case Global::Kind::integer:
          lua_pushinteger(L, global.integer);
          return 1;
        case Global::Kind::number:
          lua_pushnumber(L, global.number);
          return 1;
      }
    }
    if (name == "_G") {
      lua_pushvalue(L, 1);
      return 1;
    }
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

// Makes the _ENV for the next runs (registry kCurrentEnv).
int make_env(lua_State* L) {
  lua_newtable(L);
  internal::push_ref(L, internal::kEnvMeta);
  lua_setmetatable(L, -2);
  internal::set_ref(L, internal::kCurrentEnv);
  return 0;
}

int set_up(lua_State* L) {
  internal::open_library(L);
  lua_createtable(L, 0, 2);
  internal::push_ref(L, internal::kBase);
  lua_createtable(L, 16, 0);  // the view cache; 16 slots covers every Scope name
  lua_pushcclosure(L, env_index, 2);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  internal::set_ref(L, internal::kEnvMeta);
  lua_newtable(L);
  internal::set_ref(L, internal::kChunks);
  return make_env(L);
}

struct LibraryRequest {
  const char* name;
  const luaL_Reg* functions;
  std::span<const Sandbox::LibraryPart> parts;
};

int add_library_table(lua_State* L) {
  const auto* request = static_cast<const LibraryRequest*>(lua_touserdata(L, 1));
  lua_newtable(L);
  if (request->functions != nullptr) luaL_setfuncs(L, request->functions, 0);
  for (const auto& part : request->parts) {
    if (part.alias_of != nullptr) {
      internal::push_ref(L, internal::kBase);
      if (lua_getfield(L, -1, part.alias_of) == LUA_TNIL) {
        return luaL_error(L, "no sandbox library named '%s'", part.alias_of);
      }
      lua_setfield(L, -3, part.name);
      lua_pop(L, 1);
      continue;
    }
    lua_newtable(L);
    if (part.functions != nullptr) luaL_setfuncs(L, part.functions, 0);
    internal::push_frozen(L, -1);
    lua_setfield(L, -3, part.name);
    lua_pop(L, 1);
  }
  internal::push_frozen(L, -1);
  internal::push_ref(L, internal::kBase);
  lua_insert(L, -2);
  lua_setfield(L, -2, request->name);
  return 0;
}

// The message handler of load_module and call_protected: Lua's message plus a traceback. After
// a kill the message is kept as it is (and nothing runs: see guarded_handler in library.cc);
// error values that are not strings are kept for error_text.
int traceback_handler(lua_State* L) {
  if (state_of(L)->killed != Kill::none || lua_type(L, 1) != LUA_TSTRING) return 1;
  luaL_traceback(L, L, lua_tostring(L, 1), 1);
  return 1;
}

struct ModuleRequest {
  const char* source;
  size_t length;
  const char* name;
  bool syntax_error;
  int ref;
};

int load_module_body(lua_State* L) {
  auto* request = static_cast<ModuleRequest*>(lua_touserdata(L, 1));
  if (luaL_loadbufferx(L, request->source, request->length, request->name, "t") != LUA_OK) {
    request->syntax_error = true;
    return lua_error(L);
  }
  lua_newtable(L);  // the module's own _ENV, with the same fallbacks as a run's
  internal::push_ref(L, internal::kEnvMeta);
  lua_setmetatable(L, -2);
  lua_setupvalue(L, -2, 1);
  lua_call(L, 0, 1);
  request->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

constexpr std::string_view kTracebackMark = "\nstack traceback:\n";

struct TransparentHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};

}  // namespace

struct Sandbox::Impl {
  State state;
  Limits limits;
  // Source text -> id in the registry's chunk table, one map per ChunkKind.
  std::unordered_map<std::string, lua_Integer, TransparentHash, std::equal_to<>> cache[2];
  lua_Integer next_id = 1;
  size_t cached_bytes = 0;
  bool reset_pending = false;

  void begin(const Limits& run_limits);
  void end();
  Result<lua_Integer> chunk_for(ChunkKind kind, std::string_view source);
  Result<Json> call(lua_Integer id, std::span<const Global> globals);
  Error limit_error() const;
  Error failure(int status);
  // failure(), with a traceback from traceback_handler moved to details.traceback.
  Error failure_with_traceback(int status);
  Status protected_call(lua_CFunction body, void* data);
};

Error Sandbox::Impl::failure_with_traceback(int status) {
  Error error = failure(status);
  const size_t mark = error.message.find(kTracebackMark);
  if (mark != std::string::npos) {
    error.details = {{"traceback", error.message.substr(mark + 1)}};
    error.message.resize(mark);
  }
  return error;
}

Status Sandbox::Impl::protected_call(lua_CFunction body, void* data) {
  lua_State* L = state.L;
  lua_settop(L, 0);
  lua_pushcfunction(L, traceback_handler);
  lua_pushcfunction(L, body);
  lua_pushlightuserdata(L, data);
  const int status = lua_pcall(L, 1, 0, 1);
  if (state.killed != Kill::none || status != LUA_OK) return failure_with_traceback(status);
  return ok_status();
}

void Sandbox::Impl::begin(const Limits& run_limits) {
  limits = run_limits;
  State& s = state;
  s.running = true;
  s.killed = Kill::none;
  s.instructions = 0;
  s.instruction_limit = std::max<uint64_t>(limits.instructions, 1);
  s.hook_interval = static_cast<int>(std::min<uint64_t>(s.instruction_limit, kHookInterval));
  s.has_deadline = limits.wall.count() > 0;
  if (s.has_deadline) s.deadline = std::chrono::steady_clock::now() + limits.wall;
  s.memory.refused = false;
  s.memory.limit = s.memory.used + std::min(limits.memory_bytes, SIZE_MAX - s.memory.used);
  lua_sethook(s.L, internal::count_hook, LUA_MASKCOUNT, s.hook_interval);
}

void Sandbox::Impl::end() {
  State& s = state;
  lua_settop(s.L, 0);
  internal::push_ref(s.L, internal::kCurrentEnv);
  lua_pushnil(s.L);
  if (lua_next(s.L, -2) != 0) s.env_dirty = true;
  lua_settop(s.L, 0);
  s.globals = {};
  ++s.generation;  // every proxy of this run is now stale
  s.scratch_json = nullptr;
  const bool hit_memory_cap = s.killed == Kill::memory || s.memory.refused;
  s.memory.limit = SIZE_MAX;
  s.memory.refused = false;
  // Give the memory back now rather than letting the next run start next to the debris.
  if (hit_memory_cap) lua_gc(s.L, LUA_GCCOLLECT);
  s.running = false;
}

Error Sandbox::Impl::limit_error() const {
  switch (state.killed) {
    case Kill::instructions:
      return make_error(ErrorCode::resource_exhausted,
                        "Lua instruction limit exceeded: more than " +
                            std::to_string(limits.instructions) + " instructions");
    case Kill::wall:
      return make_error(ErrorCode::deadline_exceeded, "Lua wall-clock limit exceeded: more than " +
                                                          std::to_string(limits.wall.count()) +
                                                          " ms");
    default:
      return make_error(
          ErrorCode::resource_exhausted,
          "Lua memory limit exceeded: more than " + std::to_string(limits.memory_bytes) + " bytes");
  }
}

// The Error for a failed lua_pcall whose error value is on top of the stack.
Error Sandbox::Impl::failure(int status) {
  if (state.killed != Kill::none) return limit_error();
  if (status == LUA_ERRMEM || state.memory.refused) {
    state.killed = Kill::memory;
    return limit_error();
  }
  return make_error(ErrorCode::invalid_argument, error_text(state.L, -1));
}

Result<lua_Integer> Sandbox::Impl::chunk_for(ChunkKind kind, std::string_view source) {
  auto& map = cache[static_cast<int>(kind)];
  if (auto found = map.find(source); found != map.end()) return found->second;

  if (kind == ChunkKind::expression && is_blank(source)) {
    return make_error(ErrorCode::invalid_argument, "empty expression");
  }
  if (map.size() + cache[1 - static_cast<int>(kind)].size() >= kMaxCachedChunks ||
      cached_bytes + source.size() > kMaxCachedSourceBytes) {
    cache[0].clear();
    cache[1].clear();
    cached_bytes = 0;
    next_id = 1;
    reset_pending = true;
  }
  const std::string text = chunk_source(kind, source);
  const std::string name = chunk_name(kind, source);
  CompileRequest request{text.data(), text.size(), name.c_str(), next_id, reset_pending};
  lua_State* L = state.L;
  lua_pushcfunction(L, compile_chunk);
  lua_pushlightuserdata(L, &request);
  const int status = lua_pcall(L, 1, 0, 0);
  if (status != LUA_OK) {
    Error error = failure(status);
    lua_settop(L, 0);
    return error;
  }
  reset_pending = false;
  map.emplace(std::string(source), next_id);
  cached_bytes += source.size();
  return next_id++;
}

Result<Json> Sandbox::Impl::call(lua_Integer id, std::span<const Global> globals) {
  lua_State* L = state.L;
  if (state.env_dirty) {
    lua_pushcfunction(L, make_env);
    if (const int status = lua_pcall(L, 0, 0, 0); status != LUA_OK) return failure(status);
    state.env_dirty = false;
  }
  state.globals = globals;
  // None of these allocate, so they are safe outside a protected call.
  internal::push_ref(L, internal::kChunks);
  lua_rawgeti(L, -1, id);
  internal::push_ref(L, internal::kCurrentEnv);
  lua_setupvalue(L, -2, 1);  // a main chunk's only upvalue is _ENV
  const int status = lua_pcall(L, 0, 1, 0);
  if (state.killed != Kill::none || status != LUA_OK) return failure(status);
  return to_json(L, -1);
}

Sandbox::Sandbox() : impl_(std::make_unique<Impl>()) {
  State& s = impl_->state;
  s.L = lua_newstate(allocate, &s.memory);
  if (s.L == nullptr) throw std::bad_alloc();
  *static_cast<State**>(lua_getextraspace(s.L)) = &s;
  // Each run leaves a little garbage (its _ENV, a few proxies) and keeps almost nothing: the
  // young-dies-young case generational collection is for.
  lua_gc(s.L, LUA_GCGEN, 0, 0);
  lua_pushcfunction(s.L, set_up);
  if (lua_pcall(s.L, 0, 0, 0) != LUA_OK) {
    std::string message = error_text(s.L, -1);
    lua_close(s.L);
    throw std::runtime_error("cannot create the Lua sandbox: " + message);
  }
}

Sandbox::~Sandbox() {
  lua_close(impl_->state.L);
}

Result<Json> Sandbox::run(ChunkKind kind, std::string_view source, std::span<const Global> globals,
                          const Limits& limits) {
  if (impl_->state.running) {
    return make_error(ErrorCode::failed_precondition, "the Lua sandbox is already running a chunk");
  }
  impl_->begin(limits);
  try {
    Result<lua_Integer> id = impl_->chunk_for(kind, source);
    Result<Json> result = id.ok() ? impl_->call(*id, globals) : Result<Json>(id.error());
    impl_->end();
    return result;
  } catch (const std::exception& e) {
    impl_->end();
    return make_error(ErrorCode::internal, std::string("Lua sandbox: ") + e.what());
  }
}

Status Sandbox::compile(ChunkKind kind, std::string_view source) {
  if (impl_->state.running) {
    return make_error(ErrorCode::failed_precondition, "the Lua sandbox is already running a chunk");
  }
  impl_->begin(Limits{});
  try {
    Result<lua_Integer> id = impl_->chunk_for(kind, source);
    impl_->end();
    if (!id.ok()) return std::move(id).error();
    return ok_status();
  } catch (const std::exception& e) {
    impl_->end();
    return make_error(ErrorCode::internal, std::string("Lua sandbox: ") + e.what());
  }
}

Result<int> Sandbox::load_module(std::string_view source, std::string_view chunk_name,
                                 const Limits& limits) {
  if (impl_->state.running) {
    return make_error(ErrorCode::failed_precondition, "the Lua sandbox is already running a chunk");
  }
  const std::string name(chunk_name);
  ModuleRequest request{source.data(), source.size(), name.c_str(), false, LUA_NOREF};
  impl_->begin(limits);
  try {
    Status status = impl_->protected_call(load_module_body, &request);
    impl_->end();
    if (!status.ok()) {
      Error error = std::move(status).error();
      if (request.syntax_error) error.details = nullptr;  // a traceback of the loader says nothing
      return error;
    }
    return request.ref;
  } catch (const std::exception& e) {
    impl_->end();
    return make_error(ErrorCode::internal, std::string("Lua sandbox: ") + e.what());
  }
}

Status Sandbox::call_protected(int (*body)(lua_State*), void* data, const Limits& limits) {
  if (impl_->state.running) {
    return make_error(ErrorCode::failed_precondition, "the Lua sandbox is already running a chunk");
  }
  impl_->begin(limits);
  try {
    Status status = impl_->protected_call(body, data);
    impl_->end();
    return status;
  } catch (const std::exception& e) {
    impl_->end();
    return make_error(ErrorCode::internal, std::string("Lua sandbox: ") + e.what());
  }
}

Status Sandbox::add_library(const char* name, const luaL_Reg* functions) {
  return add_library(name, functions, {});
}

Status Sandbox::add_library(const char* name, const luaL_Reg* functions,
                            std::span<const LibraryPart> parts) {
  lua_State* L = impl_->state.L;
  LibraryRequest request{name, functions, parts};
  lua_pushcfunction(L, add_library_table);
  lua_pushlightuserdata(L, &request);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    Error error = make_error(ErrorCode::internal, error_text(L, -1));
    lua_settop(L, 0);
    return error;
  }
  return ok_status();
}

void Sandbox::set_print(std::function<void(std::string_view)> print) {
  impl_->state.print = std::move(print);
}

lua_State* Sandbox::state() const {
  return impl_->state.L;
}
size_t Sandbox::memory_in_use() const {
  return impl_->state.memory.used;
}
size_t Sandbox::cached_chunks() const {
  return impl_->cache[0].size() + impl_->cache[1].size();
}

namespace {

// A bare state (no library: nothing can run) for syntax checks, one per thread.
class CompileOnlyState {
 public:
  CompileOnlyState() {
    memory_.limit = kCompileOnlyMemory;
    L_ = lua_newstate(allocate, &memory_);
  }
  ~CompileOnlyState() {
    if (L_ != nullptr) lua_close(L_);
  }
  CompileOnlyState(const CompileOnlyState&) = delete;
  CompileOnlyState& operator=(const CompileOnlyState&) = delete;

  std::optional<std::string> check(const std::string& text, const std::string& name) {
    if (L_ == nullptr) return "cannot create a Lua state";
    std::optional<std::string> message;
    if (luaL_loadbufferx(L_, text.data(), text.size(), name.c_str(), "t") != LUA_OK) {
      message = error_text(L_, -1);
    }
    lua_settop(L_, 0);
    return message;
  }

 private:
  internal::Memory memory_;
  lua_State* L_ = nullptr;
};

}  // namespace

std::optional<std::string> check_syntax(ChunkKind kind, std::string_view source) {
  if (kind == ChunkKind::expression && is_blank(source)) return "empty expression";
  try {
    thread_local CompileOnlyState compiler;
    return compiler.check(chunk_source(kind, source), chunk_name(kind, source));
  } catch (const std::exception& e) {
    return std::string(e.what());
  }
}

}  // namespace herald::lua
