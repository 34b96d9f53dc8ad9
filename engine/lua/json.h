// JSON <-> Lua on a Sandbox's state, for the sandbox itself and for host functions (the plugin
// host API): lend a document to Lua without copying it (push_view), copy one in (push_json), and
// read a Lua value back (to_json).
//
// Lua's C library reports errors with longjmp, which skips C++ destructors. So: functions that
// may raise a Lua error (push_*) must only be called where no C++ object with a destructor is
// alive in the frames between the call and the enclosing lua_pcall; to_json never raises and
// can be called anywhere, including outside a protected call.
//
// Mapping: nil <-> null; booleans; Lua integers <-> JSON integers and Lua floats <-> JSON floats
// (3 and 3.0 stay distinct); strings (must be UTF-8 to become JSON); a table whose keys are
// exactly 1..n becomes an array, one with only string keys an object, an empty table `{}` (or
// `[]` when marked with json.array). `json.null` stands for null inside tables, where nil would
// leave a hole. Cycles, other key types, functions, coroutines and NaN/inf are errors.
#pragma once

#include "engine/common/result.h"

struct lua_State;

namespace herald::lua {

// Pushes `value` as a lazy read-only view: scalars directly (null as nil), objects and arrays
// as proxies over `value` that read it on access (`.field`, `[i]` 1-based, `#`, `pairs`,
// `ipairs`, `tostring` as compact JSON, `==` by identity) and refuse writes. The proxies stop
// working (a Lua error, never a read of freed memory) once the current run ends, so `value`
// only has to outlive the run. May raise a Lua error (out of memory).
void push_view(lua_State* L, const Json& value);

// Pushes a deep copy of `value` as plain Lua tables (arrays marked so they stay arrays; null as
// json.null). May raise a Lua error (out of memory, nesting deeper than 200).
void push_json(lua_State* L, const Json& value);

// Converts the Lua value at `index` to JSON; proxies are copied from the document they view.
// Never raises a Lua error or throws. The error (invalid_argument) names the path, e.g.
// `cannot convert to JSON: at .items[2]: a function has no JSON form`.
Result<Json> to_json(lua_State* L, int index);

}  // namespace herald::lua
