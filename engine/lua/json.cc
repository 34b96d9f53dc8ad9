// JSON <-> Lua: lazy read-only views (proxies), deep copies, and the `json` library for chunks.
//
// The C functions here are called by Lua and may raise Lua errors (longjmp). Their C++ work is
// done in noexcept helpers that return before anything can raise, and hand text over through
// State::scratch, so no C++ destructor is ever skipped.
#include "engine/lua/json.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "engine/lua/internal/state.h"

namespace herald::lua {

using internal::State;
using internal::state_of;

namespace {

constexpr int kMaxDepth = 200;

static_assert(std::is_trivially_destructible_v<Json::object_t::const_iterator> &&
                  std::is_trivially_destructible_v<Json::array_t::const_iterator>,
              "push_json iterates in frames a Lua error may unwind");

// A proxy is a full userdata holding a borrowed pointer and the generation it belongs to.
struct Proxy {
  const Json* node;
  uint64_t generation;
};

bool has_registry_metatable(lua_State* L, int index, internal::Ref key) {
  if (!lua_getmetatable(L, index)) return false;
  internal::push_ref(L, key);
  const bool same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same;
}

// The proxy at `index` or nullptr; never raises.
const Proxy* as_proxy(lua_State* L, int index) {
  if (lua_type(L, index) != LUA_TUSERDATA) return nullptr;
  if (!has_registry_metatable(L, index, internal::kProxyMeta)) return nullptr;
  return static_cast<const Proxy*>(lua_touserdata(L, index));
}

bool is_current(lua_State* L, const Proxy& proxy) {
  return proxy.generation == state_of(L)->generation;
}

constexpr const char* kStaleMessage =
    "a context value was kept after its evaluation ended and can no longer be read";

// For metamethods, where Lua guarantees `index` holds a proxy. Raises when it is stale.
const Json& node_of(lua_State* L, int index) {
  const auto* proxy = static_cast<const Proxy*>(lua_touserdata(L, index));
  if (!is_current(L, *proxy)) luaL_error(L, "%s", kStaleMessage);
  return *proxy->node;
}

// As node_of, for functions a chunk can call with anything.
const Json& checked_node(lua_State* L, int index) {
  const Proxy* proxy = as_proxy(L, index);
  if (proxy == nullptr) luaL_typeerror(L, index, "context value");
  if (!is_current(L, *proxy)) luaL_error(L, "%s", kStaleMessage);
  return *proxy->node;
}

int proxy_index(lua_State* L) {
  const Json& node = node_of(L, 1);
  if (node.is_object()) {
    if (lua_type(L, 2) != LUA_TSTRING) return 0;
    size_t length = 0;
    const char* key = lua_tolstring(L, 2, &length);
    const auto& object = node.get_ref<const Json::object_t&>();
    const auto found = object.find(std::string_view(key, length));
    if (found == object.end()) return 0;
    push_view(L, found->second);
    return 1;
  }
  if (lua_type(L, 2) != LUA_TNUMBER) return 0;
  int is_integer = 0;
  const lua_Integer i = lua_tointegerx(L, 2, &is_integer);
  const auto& array = node.get_ref<const Json::array_t&>();
  if (!is_integer || i < 1 || static_cast<uint64_t>(i) > array.size()) return 0;
  push_view(L, array[static_cast<size_t>(i - 1)]);
  return 1;
}

int proxy_newindex(lua_State* L) {
  if (lua_type(L, 2) == LUA_TSTRING) {
    return luaL_error(L, "context is read-only (cannot set '%s')", lua_tostring(L, 2));
  }
  return luaL_error(L, "context is read-only");
}

int proxy_len(lua_State* L) {
  const Json& node = node_of(L, 1);
  lua_pushinteger(L, node.is_array() ? static_cast<lua_Integer>(node.size()) : 0);
  return 1;
}

// The iterator pairs() returns: (proxy, key) -> next key, value.
int proxy_next(lua_State* L) {
  const Json& node = checked_node(L, 1);
  lua_settop(L, 2);
  if (node.is_object()) {
    const auto& object = node.get_ref<const Json::object_t&>();
    auto it = object.begin();
    if (!lua_isnil(L, 2)) {
      size_t length = 0;
      const char* key = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &length) : nullptr;
      if (key == nullptr) return luaL_error(L, "invalid key to 'next'");
      it = object.find(std::string_view(key, length));
      if (it == object.end()) return luaL_error(L, "invalid key to 'next'");
      ++it;
    }
    if (it == object.end()) {
      lua_pushnil(L);
      return 1;
    }
    lua_pushlstring(L, it->first.data(), it->first.size());
    push_view(L, it->second);
    return 2;
  }
  const auto& array = node.get_ref<const Json::array_t&>();
  const lua_Integer i = lua_isnil(L, 2) ? 1 : luaL_checkinteger(L, 2) + 1;
  if (i < 1 || static_cast<uint64_t>(i) > array.size()) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushinteger(L, i);
  push_view(L, array[static_cast<size_t>(i - 1)]);
  return 2;
}

int proxy_pairs(lua_State* L) {
  node_of(L, 1);
  lua_pushcfunction(L, proxy_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

// Compact JSON into s.scratch; false (and an empty scratch) when memory ran out.
bool dump_to_scratch(State& s, const Json& value, int indent) noexcept {
  try {
    s.scratch = value.dump(indent, ' ', false, Json::error_handler_t::replace);
    return true;
  } catch (const std::exception&) {
    s.scratch.clear();
    return false;
  }
}

int proxy_tostring(lua_State* L) {
  State& s = *state_of(L);
  if (!dump_to_scratch(s, node_of(L, 1), -1)) return luaL_error(L, "not enough memory");
  lua_pushlstring(L, s.scratch.data(), s.scratch.size());
  return 1;
}

int proxy_eq(lua_State* L) {
  const Proxy* a = as_proxy(L, 1);
  const Proxy* b = as_proxy(L, 2);
  lua_pushboolean(L, a != nullptr && b != nullptr && a->node == b->node);
  return 1;
}

int null_tostring(lua_State* L) {
  lua_pushliteral(L, "null");
  return 1;
}

// --- the `json` library -------------------------------------------------------------------------

// json.array([t]) marks t (or a new table) as a JSON array, so `{}` encodes as [] not {}.
int json_array(lua_State* L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  } else {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    if (lua_getmetatable(L, 1)) return luaL_error(L, "json.array: the table has a metatable");
  }
  internal::push_ref(L, internal::kArrayMeta);
  lua_setmetatable(L, 1);
  return 1;
}

bool encode_to_scratch(lua_State* L, State& s, int indent) noexcept {
  try {
    Result<Json> json = to_json(L, 1);
    if (!json.ok()) {
      s.scratch = json.error().message;
      return false;
    }
    return dump_to_scratch(s, *json, indent);
  } catch (const std::exception&) {
    s.scratch.clear();
    return false;
  }
}

// json.encode(value [, pretty]) -> text; raises for values with no JSON form.
int json_encode(lua_State* L) {
  luaL_checkany(L, 1);
  const int indent = lua_toboolean(L, 2) ? 2 : -1;
  State& s = *state_of(L);
  if (!encode_to_scratch(L, s, indent)) {
    if (s.scratch.empty()) return luaL_error(L, "json.encode: not enough memory");
    return luaL_error(L, "json.encode: %s", s.scratch.c_str());
  }
  lua_pushlstring(L, s.scratch.data(), s.scratch.size());
  return 1;
}

bool decode_to_scratch(State& s, std::string_view text) noexcept {
  try {
    s.scratch_json = Json::parse(text);
    return true;
  } catch (const Json::parse_error& e) {
    try {
      s.scratch = e.what();
    } catch (const std::exception&) {
      s.scratch.clear();
    }
  } catch (const std::exception&) {
    s.scratch.clear();
  }
  return false;
}

// json.decode(text) -> value, or nil and the parse error (a recoverable failure, OpenResty-style).
int json_decode(lua_State* L) {
  size_t length = 0;
  const char* text = luaL_checklstring(L, 1, &length);
  State& s = *state_of(L);
  if (!decode_to_scratch(s, std::string_view(text, length))) {
    lua_pushnil(L);
    if (s.scratch.empty()) {
      lua_pushliteral(L, "not enough memory");
    } else {
      lua_pushlstring(L, s.scratch.data(), s.scratch.size());
    }
    return 2;
  }
  push_json(L, s.scratch_json);
  s.scratch_json = nullptr;
  return 1;
}

void push_json_at(lua_State* L, const Json& value, int depth) {
  if (depth > kMaxDepth) luaL_error(L, "JSON nested more than %d levels deep", kMaxDepth);
  luaL_checkstack(L, 4, "JSON nested too deeply");
  switch (value.type()) {
    case Json::value_t::boolean:
      lua_pushboolean(L, value.get<bool>());
      return;
    case Json::value_t::number_integer:
      lua_pushinteger(L, value.get<int64_t>());
      return;
    case Json::value_t::number_unsigned: {
      const uint64_t u = value.get<uint64_t>();
      if (u <= static_cast<uint64_t>(LUA_MAXINTEGER)) {
        lua_pushinteger(L, static_cast<lua_Integer>(u));
      } else {
        lua_pushnumber(L, static_cast<lua_Number>(u));
      }
      return;
    }
    case Json::value_t::number_float:
      lua_pushnumber(L, value.get<double>());
      return;
    case Json::value_t::string: {
      const auto& text = value.get_ref<const std::string&>();
      lua_pushlstring(L, text.data(), text.size());
      return;
    }
    case Json::value_t::array: {
      const auto& array = value.get_ref<const Json::array_t&>();
      lua_createtable(L, static_cast<int>(std::min<size_t>(array.size(), 1u << 20)), 0);
      lua_Integer i = 0;
      for (const Json& item : array) {
        push_json_at(L, item, depth + 1);
        lua_rawseti(L, -2, ++i);
      }
      internal::push_ref(L, internal::kArrayMeta);
      lua_setmetatable(L, -2);
      return;
    }
    case Json::value_t::object: {
      const auto& object = value.get_ref<const Json::object_t&>();
      lua_createtable(L, 0, static_cast<int>(std::min<size_t>(object.size(), 1u << 20)));
      for (const auto& [key, item] : object) {
        lua_pushlstring(L, key.data(), key.size());
        push_json_at(L, item, depth + 1);
        lua_rawset(L, -3);
      }
      return;
    }
    default:  // null, and the binary/discarded kinds JSON text never produces
      internal::push_ref(L, internal::kNull);
      return;
  }
}

// --- Lua -> JSON ---------------------------------------------------------------------------------

}  // namespace

bool internal::valid_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int extra = 0;
    uint32_t code = 0;
    if ((c & 0xE0) == 0xC0) {
      extra = 1;
      code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      code = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      code = (code << 6) | (p[i] & 0x3F);
    }
    static constexpr uint32_t kMinimum[] = {0, 0x80, 0x800, 0x10000};
    if (code < kMinimum[extra] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    p += extra + 1;
  }
  return true;
}

namespace {

using internal::valid_utf8;

// Converts without raising: only Lua API calls that cannot fail are used (lua_next on a key it
// produced, raw gets, lua_checkstack, which reports failure instead of raising).
class Converter {
 public:
  explicit Converter(lua_State* L) : L_(L) {}

  bool convert(int index, Json& out, int depth) {
    index = lua_absindex(L_, index);
    switch (lua_type(L_, index)) {
      case LUA_TNIL:
      case LUA_TNONE:
        out = nullptr;
        return true;
      case LUA_TBOOLEAN:
        out = lua_toboolean(L_, index) != 0;
        return true;
      case LUA_TNUMBER:
        return convert_number(index, out);
      case LUA_TSTRING:
        return convert_string(index, out);
      case LUA_TTABLE:
        return convert_table(index, out, depth);
      case LUA_TUSERDATA:
        return convert_userdata(index, out);
      default:
        return fail(std::string("a ") + lua_typename(L_, lua_type(L_, index)) +
                    " has no JSON form");
    }
  }

  const std::string& error() const { return error_; }
  const std::string& where() const { return where_; }

 private:
  bool fail(std::string message) {
    error_ = std::move(message);
    return false;
  }

  bool convert_number(int index, Json& out) {
    if (lua_isinteger(L_, index)) {
      out = static_cast<int64_t>(lua_tointeger(L_, index));
      return true;
    }
    const double number = lua_tonumber(L_, index);
    if (!std::isfinite(number)) return fail("NaN and infinity have no JSON form");
    out = number;
    return true;
  }

  bool convert_string(int index, Json& out) {
    size_t length = 0;
    const char* text = lua_tolstring(L_, index, &length);
    if (!valid_utf8({text, length})) return fail("a string that is not valid UTF-8");
    out = std::string(text, length);
    return true;
  }

  bool convert_userdata(int index, Json& out) {
    if (const Proxy* proxy = as_proxy(L_, index)) {
      if (!is_current(L_, *proxy)) return fail(kStaleMessage);
      out = *proxy->node;
      return true;
    }
    internal::push_ref(L_, internal::kNull);
    const bool is_null = lua_rawequal(L_, -1, index);
    lua_pop(L_, 1);
    if (!is_null) return fail("a userdata has no JSON form");
    out = nullptr;
    return true;
  }

  bool convert_table(int index, Json& out, int depth) {
    if (depth >= kMaxDepth) {
      return fail("tables nested more than " + std::to_string(kMaxDepth) + " levels deep");
    }
    if (!lua_checkstack(L_, 6)) return fail("tables nested too deeply");
    const void* identity = lua_topointer(L_, index);
    for (const void* open : open_tables_) {
      if (open == identity) return fail("a table that contains itself (a cycle)");
    }
    const bool marked_array = has_registry_metatable(L_, index, internal::kArrayMeta);

    // First pass: what kind of keys.
    size_t string_keys = 0;
    size_t integer_keys = 0;
    lua_Integer max_index = 0;
    lua_pushnil(L_);
    while (lua_next(L_, index) != 0) {
      lua_pop(L_, 1);
      if (lua_type(L_, -1) == LUA_TSTRING) {
        ++string_keys;
      } else if (lua_isinteger(L_, -1) && lua_tointeger(L_, -1) >= 1) {
        ++integer_keys;
        max_index = std::max(max_index, lua_tointeger(L_, -1));
      } else {
        std::string key = describe_key(-1);
        lua_pop(L_, 1);
        return fail("a table key " + key + " (keys must be strings or array indexes 1..n)");
      }
    }
    if (string_keys > 0 && integer_keys > 0) {
      return fail("a table with both string keys and array items");
    }
    if (marked_array && string_keys > 0) return fail("a json.array with string keys");

    open_tables_.push_back(identity);
    const bool ok = (integer_keys > 0 || marked_array)
                        ? convert_array(index, out, depth, integer_keys, max_index)
                        : convert_object(index, out, depth);
    open_tables_.pop_back();
    return ok;
  }

  bool convert_array(int index, Json& out, int depth, size_t count, lua_Integer max_index) {
    if (static_cast<size_t>(max_index) != count) {
      return fail("an array with holes (use json.null for null items)");
    }
    out = Json::array();
    auto& array = out.get_ref<Json::array_t&>();
    array.resize(count);
    for (size_t i = 0; i < count; ++i) {
      lua_rawgeti(L_, index, static_cast<lua_Integer>(i + 1));
      const bool ok = convert(-1, array[i], depth + 1);
      lua_pop(L_, 1);
      if (!ok) {
        where_ = "[" + std::to_string(i + 1) + "]" + where_;
        return false;
      }
    }
    return true;
  }

  bool convert_object(int index, Json& out, int depth) {
    out = Json::object();
    auto& object = out.get_ref<Json::object_t&>();
    lua_pushnil(L_);
    while (lua_next(L_, index) != 0) {
      size_t length = 0;
      const char* key = lua_tolstring(L_, -2, &length);
      std::string name(key, length);
      if (!valid_utf8(name)) {
        lua_pop(L_, 2);
        return fail("a key that is not valid UTF-8");
      }
      const bool ok = convert(-1, object[name], depth + 1);
      lua_pop(L_, 1);
      if (!ok) {
        lua_pop(L_, 1);
        where_ = "." + name + where_;
        return false;
      }
    }
    return true;
  }

  std::string describe_key(int index) {
    switch (lua_type(L_, index)) {
      case LUA_TNUMBER:
        if (lua_isinteger(L_, index)) return std::to_string(lua_tointeger(L_, index));
        return std::to_string(lua_tonumber(L_, index));
      case LUA_TBOOLEAN:
        return lua_toboolean(L_, index) ? "true" : "false";
      default:
        return std::string("of type ") + lua_typename(L_, lua_type(L_, index));
    }
  }

  lua_State* L_;
  std::vector<const void*> open_tables_;
  std::string error_;
  std::string where_;
};

}  // namespace

void push_view(lua_State* L, const Json& value) {
  switch (value.type()) {
    case Json::value_t::object:
    case Json::value_t::array: {
      auto* proxy = static_cast<Proxy*>(lua_newuserdatauv(L, sizeof(Proxy), 0));
      proxy->node = &value;
      proxy->generation = state_of(L)->generation;
      internal::push_ref(L, internal::kProxyMeta);
      lua_setmetatable(L, -2);
      return;
    }
    case Json::value_t::null:
      lua_pushnil(L);
      return;
    default:
      push_json_at(L, value, 0);
      return;
  }
}

void push_json(lua_State* L, const Json& value) {
  push_json_at(L, value, 0);
}

Result<Json> to_json(lua_State* L, int index) {
  try {
    Converter converter(L);
    Json out;
    if (converter.convert(index, out, 0)) return out;
    std::string message = "cannot convert to JSON: ";
    if (!converter.where().empty()) message += "at " + converter.where() + ": ";
    message += converter.error();
    return make_error(ErrorCode::invalid_argument, std::move(message));
  } catch (const std::exception& e) {
    return make_error(ErrorCode::resource_exhausted,
                      std::string("cannot convert to JSON: ") + e.what());
  }
}

namespace internal {

bool is_current_view(lua_State* L, int index, const Json* node) {
  if (lua_type(L, index) != LUA_TUSERDATA) return false;
  const auto* proxy = static_cast<const Proxy*>(lua_touserdata(L, index));
  // Only the sandbox stores userdata where this is asked (its view cache), and they are all
  // proxies; the metatable check keeps that an invariant rather than an assumption.
  return is_current(L, *proxy) && proxy->node == node &&
         has_registry_metatable(L, index, internal::kProxyMeta);
}

void open_json(lua_State* L) {
  static const luaL_Reg proxy_methods[] = {
      {"__index", proxy_index}, {"__newindex", proxy_newindex}, {"__len", proxy_len},
      {"__pairs", proxy_pairs}, {"__tostring", proxy_tostring}, {"__eq", proxy_eq},
      {nullptr, nullptr}};
  lua_newtable(L);
  luaL_setfuncs(L, proxy_methods, 0);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  set_ref(L, kProxyMeta);

  lua_createtable(L, 0, 1);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  set_ref(L, kArrayMeta);

  lua_newuserdatauv(L, 0, 0);
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, null_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  set_ref(L, kNull);

  static const luaL_Reg functions[] = {
      {"encode", json_encode}, {"decode", json_decode}, {"array", json_array}, {nullptr, nullptr}};
  luaL_newlib(L, functions);
  push_ref(L, kNull);
  lua_setfield(L, -2, "null");
}

}  // namespace internal

}  // namespace herald::lua
