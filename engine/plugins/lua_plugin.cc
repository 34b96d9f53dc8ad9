// Lua plugins: a `.lua` file returning {name, version, description, capabilities}, compiled and
// run once when loaded (so a syntax error is reported at load, with its line), each capability's
// `run(input, ctx)` then called in the sandbox of engine/lua under the plugin's limits plus a
// wall clock. The host API is the read-only `herald` table; recoverable failures return
// `nil, err`.
//
// A sandbox is single-threaded, so each plugin keeps a pool of instances (each the file loaded
// into its own sandbox) and a call takes an idle one or loads another. Module-level variables
// therefore belong to one instance: they are caches, not shared state.
//
// Lua reports errors with longjmp, which skips C++ destructors: the C functions below keep no
// C++ object with a destructor alive across a call that can raise (see engine/lua/json.h); the
// C++ work happens in helpers that return first, leaving results in thread-local scratch space.
#include <lua.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "engine/lua/json.h"
#include "engine/lua/sandbox.h"
#include "engine/model/input_schema.h"
#include "engine/plugins/internal/checks.h"
#include "engine/plugins/invocation.h"
#include "engine/plugins/plugin.h"
#include "engine/security/hmac.h"

namespace herald::plugins {

namespace {

using steps::Clock;

// The invocation running on this thread, for the `herald` functions.
thread_local Invocation* current_call = nullptr;

// Where host functions leave results for their Lua side to push.
struct Scratch {
  Json value;
  bool ok = false;
};
thread_local Scratch scratch;

// Raises an error (at the Lua line that called `what`) outside a capability call.
Invocation* require_call(lua_State* L, const char* what) {
  if (current_call == nullptr) {
    luaL_error(L, "%s is only available while a capability runs, not when the file is loaded", what);
  }
  return current_call;
}

// Leaves the value (ok) or the error object in scratch.
void keep_result(Result<Json> result) noexcept {
  try {
    scratch.ok = result.ok();
    scratch.value = result.ok() ? std::move(result).value() : result.error().to_json();
  } catch (...) {
    scratch.ok = false;
    scratch.value = nullptr;
  }
}

// `value` or `nil, err` from scratch.
int push_scratch(lua_State* L) {
  if (scratch.ok) {
    lua::push_json(L, scratch.value);
    return 1;
  }
  lua_pushnil(L);
  if (scratch.value.is_null()) {
    lua_pushliteral(L, "out of memory");
  } else {
    lua::push_json(L, scratch.value);
  }
  return 2;
}

void do_log(Invocation* call, const char* level, const char* text, size_t size) noexcept {
  try {
    call->log(level, std::string_view(text, size));
  } catch (...) {
  }
}

// herald.log([level,] message)
int herald_log(lua_State* L) {
  Invocation* call = require_call(L, "herald.log");
  const char* level = "info";
  int message_index = 1;
  if (lua_gettop(L) >= 2) {
    level = luaL_checkstring(L, 1);
    message_index = 2;
    if (std::strcmp(level, "debug") != 0 && std::strcmp(level, "info") != 0 &&
        std::strcmp(level, "warn") != 0 && std::strcmp(level, "error") != 0) {
      return luaL_error(L, "herald.log: level '%s' is not one of debug, info, warn, error", level);
    }
  }
  size_t size = 0;
  const char* text = luaL_tolstring(L, message_index, &size);
  do_log(call, level, text, size);
  return 0;
}

void do_http(lua_State* L, Invocation* call) noexcept {
  try {
    Result<Json> request = lua::to_json(L, 1);
    if (!request.ok()) {
      keep_result(
          make_error(ErrorCode::invalid_argument, "herald.http: " + request.error().message));
      return;
    }
    keep_result(call->http(*request));
  } catch (const std::exception& e) {
    keep_result(make_error(ErrorCode::internal, std::string("herald.http: ") + e.what()));
  }
}

// herald.http{method=, url=, headers=, json=, ...} -> response | nil, err
int herald_http(lua_State* L) {
  Invocation* call = require_call(L, "herald.http");
  luaL_checktype(L, 1, LUA_TTABLE);
  do_http(L, call);
  return push_scratch(L);
}

void do_secret(Invocation* call, const char* name, size_t size) noexcept {
  try {
    auto secret = call->secret(std::string_view(name, size));
    if (secret.ok()) {
      keep_result(Json(std::move(secret).value()));
    } else {
      keep_result(std::move(secret).error());
    }
  } catch (const std::exception& e) {
    keep_result(make_error(ErrorCode::internal, std::string("herald.secret: ") + e.what()));
  }
}

// herald.secret(name) -> text | nil, err
int herald_secret(lua_State* L) {
  Invocation* call = require_call(L, "herald.secret");
  size_t size = 0;
  const char* name = luaL_checklstring(L, 1, &size);
  do_secret(call, name, size);
  return push_scratch(L);
}

void do_emit(lua_State* L, Invocation* call, const char* name, size_t size) noexcept {
  try {
    Json payload = Json::object();
    if (!lua_isnoneornil(L, 2)) {
      Result<Json> converted = lua::to_json(L, 2);
      if (!converted.ok()) {
        keep_result(
            make_error(ErrorCode::invalid_argument, "herald.emit: " + converted.error().message));
        return;
      }
      payload = std::move(converted).value();
    }
    Status status = call->emit(std::string_view(name, size), std::move(payload));
    if (status.ok()) {
      keep_result(Json(true));
    } else {
      keep_result(std::move(status).error());
    }
  } catch (const std::exception& e) {
    keep_result(make_error(ErrorCode::internal, std::string("herald.emit: ") + e.what()));
  }
}

// herald.emit(name [, payload]) -> true | nil, err
int herald_emit(lua_State* L) {
  Invocation* call = require_call(L, "herald.emit");
  size_t size = 0;
  const char* name = luaL_checklstring(L, 1, &size);
  do_emit(L, call, name, size);
  return push_scratch(L);
}

void do_kv_get(Invocation* call, const char* key, size_t size) noexcept {
  try {
    auto found = call->kv_get(std::string_view(key, size));
    if (found.ok()) {
      keep_result(found->has_value() ? std::move(**found) : Json(nullptr));
    } else {
      keep_result(std::move(found).error());
    }
  } catch (const std::exception& e) {
    keep_result(make_error(ErrorCode::internal, std::string("herald.kv.get: ") + e.what()));
  }
}

// herald.kv.get(key) -> value | nil (no entry) | nil, err
int herald_kv_get(lua_State* L) {
  Invocation* call = require_call(L, "herald.kv.get");
  size_t size = 0;
  const char* key = luaL_checklstring(L, 1, &size);
  do_kv_get(call, key, size);
  if (scratch.ok && scratch.value.is_null()) {
    lua_pushnil(L);  // no entry: nil, not the truthy json.null (a stored null reads the same)
    return 1;
  }
  return push_scratch(L);
}

void do_kv_set(lua_State* L, Invocation* call, const char* key, size_t size,
               lua_Integer ttl) noexcept {
  try {
    Result<Json> value = lua::to_json(L, 2);
    if (!value.ok()) {
      keep_result(make_error(ErrorCode::invalid_argument, "herald.kv.set: " + value.error().message));
      return;
    }
    std::optional<std::chrono::seconds> lifetime;
    if (ttl != 0) lifetime = std::chrono::seconds(ttl);
    Status status = call->kv_set(std::string_view(key, size), std::move(value).value(), lifetime);
    if (status.ok()) {
      keep_result(Json(true));
    } else {
      keep_result(std::move(status).error());
    }
  } catch (const std::exception& e) {
    keep_result(make_error(ErrorCode::internal, std::string("herald.kv.set: ") + e.what()));
  }
}

// herald.kv.set(key, value [, ttl_seconds]) -> true | nil, err
int herald_kv_set(lua_State* L) {
  Invocation* call = require_call(L, "herald.kv.set");
  size_t size = 0;
  const char* key = luaL_checklstring(L, 1, &size);
  luaL_checkany(L, 2);
  lua_Integer ttl = 0;
  if (!lua_isnoneornil(L, 3)) {
    ttl = luaL_checkinteger(L, 3);
    if (ttl <= 0) return luaL_argerror(L, 3, "a ttl is a positive number of seconds");
  }
  do_kv_set(L, call, key, size, ttl);
  return push_scratch(L);
}

void do_kv_delete(Invocation* call, const char* key, size_t size) noexcept {
  try {
    auto removed = call->kv_delete(std::string_view(key, size));
    if (removed.ok()) {
      keep_result(Json(true));
    } else {
      keep_result(std::move(removed).error());
    }
  } catch (const std::exception& e) {
    keep_result(make_error(ErrorCode::internal, std::string("herald.kv.delete: ") + e.what()));
  }
}

// herald.kv.delete(key) -> true | nil, err
int herald_kv_delete(lua_State* L) {
  Invocation* call = require_call(L, "herald.kv.delete");
  size_t size = 0;
  const char* key = luaL_checklstring(L, 1, &size);
  do_kv_delete(call, key, size);
  return push_scratch(L);
}

// herald.idempotency_key() -> text
int herald_idempotency_key(lua_State* L) {
  Invocation* call = require_call(L, "herald.idempotency_key");
  const std::string& key = call->idempotency_key();
  lua_pushlstring(L, key.data(), key.size());
  return 1;
}

// herald.cancelled() -> boolean
int herald_cancelled(lua_State* L) {
  Invocation* call = require_call(L, "herald.cancelled");
  lua_pushboolean(L, call->cancelled() ? 1 : 0);
  return 1;
}

// herald.now() -> Unix time in seconds (an integer), e.g. to sign a webhook's timestamp.
int herald_now(lua_State* L) {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  lua_pushinteger(L, std::chrono::duration_cast<std::chrono::seconds>(now).count());
  return 1;
}

// herald.crypto.hmac_sha256(key, message) -> 64 lowercase hex characters (RFC 2104, as
// engine/security/hmac.h computes it for the webhooks Herald verifies).
int herald_hmac_sha256(lua_State* L) {
  size_t key_size = 0;
  size_t message_size = 0;
  const char* key = luaL_checklstring(L, 1, &key_size);
  const char* message = luaL_checklstring(L, 2, &message_size);
  char hex[2 * security::kSha256Size];
  bool failed = false;
  try {  // no C++ object may live across a Lua error (longjmp)
    std::string digest = security::hmac_sha256_hex({key, key_size}, {message, message_size});
    std::memcpy(hex, digest.data(), sizeof hex);
  } catch (...) {
    failed = true;
  }
  if (failed) return luaL_error(L, "herald.crypto.hmac_sha256: the MAC could not be computed");
  lua_pushlstring(L, hex, sizeof hex);
  return 1;
}

const luaL_Reg kCryptoFunctions[] = {{"hmac_sha256", herald_hmac_sha256}, {nullptr, nullptr}};
const luaL_Reg kKvFunctions[] = {{"get", herald_kv_get},
                                 {"set", herald_kv_set},
                                 {"delete", herald_kv_delete},
                                 {nullptr, nullptr}};

const luaL_Reg kHeraldFunctions[] = {{"log", herald_log},
                                     {"http", herald_http},
                                     {"secret", herald_secret},
                                     {"emit", herald_emit},
                                     {"idempotency_key", herald_idempotency_key},
                                     {"cancelled", herald_cancelled},
                                     {"now", herald_now},
                                     {nullptr, nullptr}};

const lua::Sandbox::LibraryPart kHeraldParts[] = {{"json", nullptr, "json"},
                                                  {"crypto", kCryptoFunctions, nullptr},
                                                  {"kv", kKvFunctions, nullptr}};

// --- reading the module -------------------------------------------------------------------------

struct CapabilityDescription {
  std::string key;
  std::string kind = "step";
  std::string description;
  Json input = nullptr;
  int run_ref = LUA_NOREF;
};

struct ModuleDescription {
  int module_ref = LUA_NOREF;
  std::string name;
  std::string version;
  std::string description;
  std::vector<CapabilityDescription> capabilities;
  std::string problem;  // set when the module's shape is wrong
};

void set_problem(ModuleDescription& d, std::string text) noexcept {
  try {
    if (d.problem.empty()) d.problem = std::move(text);
  } catch (...) {
  }
}

// The string field `name` of the table at `index` (absent: empty; another type: a problem).
// `capability` is the key of the capability being read, or null for the module's own fields.
void read_string(lua_State* L, int index, const char* name, std::string& out, ModuleDescription& d,
                 const std::string* capability) {
  lua_getfield(L, index, name);
  if (lua_type(L, -1) == LUA_TSTRING) {
    size_t size = 0;
    const char* text = lua_tolstring(L, -1, &size);
    out.assign(text, size);
  } else if (!lua_isnil(L, -1)) {
    set_problem(d, (capability != nullptr ? "capability '" + *capability + "': " : std::string()) +
                       "`" + name + "` must be a string, not a " + luaL_typename(L, -1));
  }
  lua_pop(L, 1);
}

void read_input(lua_State* L, int index, CapabilityDescription& c, ModuleDescription& d) {
  Result<Json> input = lua::to_json(L, index);
  if (!input.ok()) {
    set_problem(d,
                "capability '" + c.key + "': `input` has no JSON form: " + input.error().message);
  } else {
    c.input = std::move(input).value();
  }
}

int describe_body(lua_State* L) {
  auto* d = static_cast<ModuleDescription*>(lua_touserdata(L, 1));
  lua_rawgeti(L, LUA_REGISTRYINDEX, d->module_ref);
  if (!lua_istable(L, -1)) {
    set_problem(*d, std::string("the file must return a table {name, version, description, "
                                "capabilities}, not a ") +
                        luaL_typename(L, -1));
    return 0;
  }
  const int module = lua_gettop(L);
  read_string(L, module, "name", d->name, *d, nullptr);
  read_string(L, module, "version", d->version, *d, nullptr);
  read_string(L, module, "description", d->description, *d, nullptr);
  if (lua_getfield(L, module, "capabilities") != LUA_TTABLE) {
    set_problem(*d, "`capabilities` must be a table mapping names to {kind, input, run}");
    return 0;
  }
  const int capabilities = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, capabilities) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      set_problem(*d, "`capabilities` keys must be names (strings)");
      return 0;
    }
    d->capabilities.emplace_back();
    CapabilityDescription& c = d->capabilities.back();
    size_t size = 0;
    const char* key = lua_tolstring(L, -2, &size);
    c.key.assign(key, size);
    if (!lua_istable(L, -1)) {
      set_problem(*d, "capability '" + c.key + "' must be a table {kind, input, run}");
      return 0;
    }
    const int entry = lua_gettop(L);
    read_string(L, entry, "kind", c.kind, *d, &c.key);
    read_string(L, entry, "description", c.description, *d, &c.key);
    const int input_type = lua_getfield(L, entry, "input");
    if (input_type == LUA_TTABLE) {
      read_input(L, lua_gettop(L), c, *d);
    } else if (input_type != LUA_TNIL) {
      set_problem(*d, "capability '" + c.key + "': `input` must be a JSON Schema as a table");
    }
    lua_pop(L, 1);
    if (lua_getfield(L, entry, "run") != LUA_TFUNCTION) {
      set_problem(*d, "capability '" + c.key + "': `run` must be a function(input, ctx)");
      lua_pop(L, 1);
    } else {
      c.run_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_pop(L, 1);  // the entry; the key stays for lua_next
  }
  return 0;
}

// --- calling a capability -----------------------------------------------------------------------

struct CallData {
  int run_ref = LUA_NOREF;
  const Json* input = nullptr;
  const Json* context = nullptr;
  bool failed = false;
  Json output;
  Error error;
};

void collect_results(lua_State* L, CallData& d) noexcept {
  try {
    if (lua_isnil(L, -2) && !lua_isnil(L, -1)) {
      d.failed = true;
      if (lua_type(L, -1) == LUA_TSTRING) {
        size_t size = 0;
        const char* text = lua_tolstring(L, -1, &size);
        d.error = make_error(ErrorCode::failed_precondition, std::string(text, size));
        return;
      }
      Result<Json> value = lua::to_json(L, -1);
      if (value.ok() && value->is_object()) {
        d.error = Error::from_json(*value);
        if (!value->contains("code")) d.error.code = ErrorCode::failed_precondition;
      } else {
        d.error = make_error(ErrorCode::failed_precondition,
                             value.ok() ? value->dump() : "(an error value with no JSON form)");
      }
      return;
    }
    Result<Json> output = lua::to_json(L, -2);
    if (!output.ok()) {
      d.failed = true;
      d.error = make_error(ErrorCode::internal,
                           "returned a value with no JSON form: " + output.error().message);
      return;
    }
    d.output = std::move(output).value();
  } catch (...) {
    d.failed = true;
    d.error = make_error(ErrorCode::internal, "out of memory reading the result");
  }
}

int call_body(lua_State* L) {
  auto* d = static_cast<CallData*>(lua_touserdata(L, 1));
  lua_rawgeti(L, LUA_REGISTRYINDEX, d->run_ref);
  lua::push_json(L, *d->input);
  lua::push_json(L, *d->context);
  lua_call(L, 2, 2);
  collect_results(L, *d);
  return 0;
}

lua::Limits sandbox_limits(const LuaLimits& limits, std::chrono::milliseconds wall) {
  lua::Limits out;
  out.instructions = limits.instructions;
  out.memory_bytes = limits.memory_bytes;
  out.wall = wall;
  return out;
}

struct Instance {
  lua::Sandbox sandbox;
  std::map<std::string, int, std::less<>> run_refs;  // capability key -> `run`
};

// The source and the pool of loaded instances of one plugin file.
class LuaPluginState {
 public:
  LuaPluginState(std::string path, std::string source, LuaLimits limits)
      : path_(std::move(path)),
        chunk_name_("@" + std::filesystem::path(path_).filename().string()),
        source_(std::move(source)),
        limits_(limits) {}

  const LuaLimits& limits() const { return limits_; }

  // Loads the file into a new sandbox; `description` (optional) receives what it declares.
  Result<std::unique_ptr<Instance>> create(ModuleDescription* description) {
    auto instance = std::make_unique<Instance>();
    if (auto status = instance->sandbox.add_library("herald", kHeraldFunctions, kHeraldParts);
        !status.ok()) {
      return std::move(status).error();
    }
    instance->sandbox.set_print([](std::string_view text) {
      if (current_call != nullptr) current_call->log("debug", text);
    });
    const lua::Limits limits = sandbox_limits(limits_, limits_.wall);
    auto ref = instance->sandbox.load_module(source_, chunk_name_, limits);
    if (!ref.ok()) return std::move(ref).error();
    ModuleDescription local;
    ModuleDescription& d = description != nullptr ? *description : local;
    d.module_ref = *ref;
    if (auto status = instance->sandbox.call_protected(describe_body, &d, limits); !status.ok()) {
      return std::move(status).error();
    }
    if (!d.problem.empty()) return make_error(ErrorCode::invalid_argument, d.problem);
    for (const auto& capability : d.capabilities) {
      instance->run_refs.emplace(capability.key, capability.run_ref);
    }
    return instance;
  }

  Result<std::unique_ptr<Instance>> acquire() {
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        auto instance = std::move(idle_.back());
        idle_.pop_back();
        return instance;
      }
    }
    return create(nullptr);
  }

  void release(std::unique_ptr<Instance> instance) {
    std::lock_guard lock(mu_);
    idle_.push_back(std::move(instance));
  }

 private:
  std::string path_;
  std::string chunk_name_;
  std::string source_;
  LuaLimits limits_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Instance>> idle_;
};

class LuaCapability final : public Capability {
 public:
  LuaCapability(std::string plugin, std::string key, CapabilityInfo info,
                std::shared_ptr<LuaPluginState> state)
      : plugin_(std::move(plugin)),
        key_(std::move(key)),
        info_(std::move(info)),
        state_(std::move(state)) {}

  const CapabilityInfo& info() const override { return info_; }

  steps::StepOutcome invoke(const Json& input, steps::StepContext& context) override {
    try {
      return call(input, context);
    } catch (const std::exception& e) {
      return steps::StepOutcome::failed(make_error(
          ErrorCode::internal, "plugin " + plugin_ + ": " + info_.name + ": " + e.what()));
    }
  }

 private:
  steps::StepOutcome call(const Json& input, steps::StepContext& context) {
    auto instance = state_->acquire();
    if (!instance.ok()) {
      Error error = std::move(instance).error();
      error.message = "plugin " + plugin_ + ": cannot load another instance: " + error.message;
      error.code = ErrorCode::internal;
      return steps::StepOutcome::failed(std::move(error));
    }
    // The wall-clock limit, cut short by the step's deadline; HTTP calls made by the plugin see
    // the same deadline.
    const auto wall = state_->limits().wall;
    steps::StepContext bounded = context;
    bounded.deadline = std::min(context.deadline, Clock::now() + wall);
    const auto left = std::max(bounded.remaining(wall), std::chrono::milliseconds(1));

    Invocation invocation(plugin_, info_.name, bounded);
    const Json call_context = invocation.context_json();
    CallData data;
    data.run_ref = (*instance)->run_refs.at(key_);
    data.input = &input;
    data.context = &call_context;

    Invocation* previous = current_call;
    current_call = &invocation;
    Status status = (*instance)->sandbox.call_protected(call_body, &data,
                                                        sandbox_limits(state_->limits(), left));
    current_call = previous;

    if (!status.ok()) {
      Error error = std::move(status).error();
      // A limit leaves the instance's module state wherever the kill found it: drop it.
      const bool killed =
          error.code == ErrorCode::resource_exhausted || error.code == ErrorCode::deadline_exceeded;
      if (!killed) state_->release(std::move(instance).value());
      if (error.code == ErrorCode::invalid_argument) error.code = ErrorCode::internal;  // a bug
      error.message = info_.name + ": " + error.message;
      invocation.set_error(std::move(error));
      return invocation.finish(HERALD_FAILED);
    }
    state_->release(std::move(instance).value());
    if (data.failed) {
      invocation.set_error(std::move(data.error));
      return invocation.finish(HERALD_FAILED);
    }
    invocation.set_output_json(std::move(data.output));
    return invocation.finish(HERALD_OK);
  }

  std::string plugin_;
  std::string key_;
  CapabilityInfo info_;
  std::shared_ptr<LuaPluginState> state_;
};

Error load_error(const std::string& path, const std::string& message) {
  return make_error(ErrorCode::invalid_argument, path + ": " + message);
}

}  // namespace

Result<LoadedPlugin> load_lua_plugin(const std::string& path, const LuaLimits& limits) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return load_error(path, "cannot read the file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto state = std::make_shared<LuaPluginState>(path, buffer.str(), limits);

  ModuleDescription description;
  auto instance = state->create(&description);
  if (!instance.ok()) {
    const Error& error = instance.error();
    std::string message = error.message;
    if (error.details.is_object() && error.details.contains("traceback")) {
      message += "\n" + error.details["traceback"].get<std::string>();
    }
    return load_error(path, message);
  }

  LoadedPlugin plugin;
  plugin.info.name =
      description.name.empty() ? std::filesystem::path(path).stem().string() : description.name;
  plugin.info.version = description.version;
  plugin.info.description = description.description;
  plugin.info.file = path;
  plugin.info.type = "lua";
  if (auto problem = internal::check_plugin_identity(plugin.info))
    return load_error(path, *problem);

  std::sort(description.capabilities.begin(), description.capabilities.end(),
            [](const auto& a, const auto& b) { return a.key < b.key; });
  for (const auto& given : description.capabilities) {
    CapabilityInfo info;
    info.name = plugin.info.name + "." + given.key;
    info.description = given.description;
    if (auto problem = internal::check_capability_name(plugin.info.name, info.name)) {
      return load_error(path, *problem);
    }
    auto kind = internal::kind_from_name(given.kind);
    if (!kind) {
      return load_error(path, "capability '" + info.name + "': unknown kind '" + given.kind +
                                  "'; expected step, trigger_source or provider");
    }
    info.kind = *kind;
    if (!given.input.is_null()) {
      auto compiled = model::InputSchema::compile(given.input);
      if (!compiled.ok()) {
        return load_error(
            path, "schema invalid: capability '" + info.name + "': " + compiled.error().message);
      }
      info.input_schema = (*compiled)->json();
    }
    plugin.info.capabilities.push_back(info);
    plugin.capabilities.push_back(
        std::make_shared<LuaCapability>(plugin.info.name, given.key, std::move(info), state));
  }
  state->release(std::move(instance).value());
  return plugin;
}

}  // namespace herald::plugins
