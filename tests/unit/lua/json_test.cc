#include "engine/lua/json.h"

#include <gtest/gtest.h>
#include <lua.hpp>

#include <string>
#include <vector>

#include "engine/lua/sandbox.h"

namespace herald::lua {
namespace {

class JsonTest : public ::testing::Test {
 protected:
  Result<Json> expr(std::string_view source) {
    return sandbox_.run(ChunkKind::expression, source, globals_);
  }
  Result<Json> script(std::string_view source) {
    return sandbox_.run(ChunkKind::script, source, globals_);
  }
  Json value(std::string_view source) {
    Result<Json> r = expr(source);
    EXPECT_TRUE(r.ok()) << source << ": " << r.error().message;
    return r.ok() ? *r : Json("<error>");
  }
  void expect_error(const Result<Json>& r, std::string_view fragment) {
    ASSERT_FALSE(r.ok()) << "unexpectedly succeeded with " << r->dump();
    EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << r.error().message;
    EXPECT_NE(r.error().message.find(fragment), std::string::npos) << r.error().message;
  }

  Sandbox sandbox_;
  std::vector<Global> globals_;
};

// --- Lua -> JSON ---------------------------------------------------------------------------------

TEST_F(JsonTest, Scalars) {
  EXPECT_EQ(value("nil"), nullptr);
  EXPECT_EQ(value("true"), true);
  EXPECT_EQ(value("false"), false);
  EXPECT_EQ(value("'text'"), "text");
  Json integer = value("42");
  EXPECT_TRUE(integer.is_number_integer());
  EXPECT_EQ(integer, 42);
  Json floating = value("2.5");
  EXPECT_TRUE(floating.is_number_float());
  EXPECT_EQ(floating, 2.5);
  // Lua keeps 3.0 a float and 7 // 2 an integer; so does the JSON.
  EXPECT_TRUE(value("3.0").is_number_float());
  EXPECT_TRUE(value("6 / 2").is_number_float());
  EXPECT_TRUE(value("7 // 2").is_number_integer());
  EXPECT_EQ(value("math.maxinteger"), INT64_MAX);
  EXPECT_EQ(value("-0x7fffffffffffffff - 1"), INT64_MIN);
}

TEST_F(JsonTest, Tables) {
  EXPECT_EQ(value("{1, 2, 'three'}"), Json::parse(R"([1, 2, "three"])"));
  EXPECT_EQ(value("{a = 1, b = {c = true}}"), Json::parse(R"({"a": 1, "b": {"c": true}})"));
  EXPECT_EQ(value("{list = {{x = 1}, {x = 2}}, empty = {}}"),
            Json::parse(R"({"list": [{"x": 1}, {"x": 2}], "empty": {}})"));
  EXPECT_EQ(value("{[1] = 'a', [2] = 'b'}"), Json::parse(R"(["a", "b"])"));
  EXPECT_EQ(value("{}"), Json::object());
  EXPECT_EQ(value("json.array()"), Json::array());
  EXPECT_EQ(value("json.array({1, 2})"), Json::parse("[1, 2]"));
  EXPECT_EQ(value("{1, json.null, 3}"), Json::parse("[1, null, 3]"));
  EXPECT_EQ(value("{a = json.null}"), Json::parse(R"({"a": null})"));
  EXPECT_EQ(value("{['ü'] = 'ö'}"), Json::parse(R"({"ü": "ö"})"));
}

TEST_F(JsonTest, ValuesWithNoJsonFormAreClearErrors) {
  expect_error(script("local t = {} t.self = t return t"),
               "at .self: a table that contains itself");
  expect_error(script("local t = {} t[1] = {t} return t"),
               "at [1][1]: a table that contains itself");
  expect_error(expr("{print}"), "at [1]: a function has no JSON form");
  expect_error(expr("{a = {b = coroutine.create(print)}}"), "at .a.b: a thread has no JSON form");
  expect_error(expr("{[true] = 1}"), "a table key true (keys must be strings");
  expect_error(expr("{[1.5] = 1}"), "a table key 1.5");
  expect_error(expr("{[0] = 1}"), "a table key 0");
  expect_error(expr("{[{}] = 1}"), "a table key of type table");
  expect_error(expr("{1, 2, x = 3}"), "both string keys and array items");
  expect_error(expr("{[1] = 1, [3] = 3}"), "an array with holes (use json.null");
  expect_error(expr("{1, nil, 3}"), "an array with holes");
  expect_error(expr("0/0"), "NaN and infinity");
  expect_error(expr("math.huge"), "NaN and infinity");
  expect_error(expr("'\\xff'"), "not valid UTF-8");
  expect_error(expr("{['\\xc3'] = 1}"), "not valid UTF-8");
  expect_error(expr("'\\xed\\xa0\\x80'"), "not valid UTF-8");  // a surrogate
  expect_error(script("local t = {} for i = 1, 300 do t = {t} end return t"), "levels deep");
}

// --- the json library
// ------------------------------------------------------------------------------

TEST_F(JsonTest, EncodeAndDecode) {
  EXPECT_EQ(value("json.encode({a = {1, 2.5, 'x', true}})"), R"({"a":[1,2.5,"x",true]})");
  EXPECT_EQ(value("json.encode(json.array())"), "[]");
  EXPECT_EQ(value("json.encode(nil)"), "null");
  EXPECT_EQ(value("json.decode('{\"a\": [1, null, {\"b\": 2.5}]}').a[3].b"), 2.5);
  EXPECT_EQ(value("json.decode('[1, null]')[2] == json.null"), true);
  EXPECT_EQ(value("math.type(json.decode('7'))"), "integer");
  EXPECT_EQ(value("json.decode('[]')"), Json::array());  // stays an array
  EXPECT_EQ(value("json.decode('{\"x\": {}}')"), Json::parse(R"({"x": {}})"));
  EXPECT_EQ(value("tostring(json.null)"), "null");
  // Decoding failures are values (nil, message); encoding failures are errors.
  EXPECT_EQ(value("select('#', json.decode('{'))"), 2);
  EXPECT_EQ(value("json.decode('{') == nil"), true);
  EXPECT_NE(value("select(2, json.decode('{'))").get<std::string>().find("parse error"),
            std::string::npos);
  expect_error(expr("json.encode({f = print})"), "json.encode: cannot convert to JSON: at .f:");
  expect_error(script("json.null.x = 1"), "attempt to index a userdata value");
  expect_error(expr("setmetatable(json.array(), {})"), "protected");
}

// --- JSON -> Lua (views)
// ---------------------------------------------------------------------------

class ViewTest : public JsonTest {
 protected:
  void SetUp() override {
    inputs_ = Json::parse(R"({
      "name": "Ada", "count": 3, "ratio": 0.5, "on": true, "none": null,
      "tags": ["a", "b", "c"],
      "nested": {"list": [{"id": 1}, {"id": 2}], "empty": {}, "empty_list": []},
      "with-dash": 1
    })");
    globals_ = {Global::of_json("inputs", inputs_), Global::of_integer("index", 2),
                Global::of_number("now", 1.5)};
  }
  Json inputs_;
};

TEST_F(ViewTest, ReadsFieldsAndElements) {
  EXPECT_EQ(value("inputs.name"), "Ada");
  EXPECT_EQ(value("math.type(inputs.count)"), "integer");
  EXPECT_EQ(value("inputs.ratio"), 0.5);
  EXPECT_EQ(value("inputs.on"), true);
  EXPECT_EQ(value("inputs.none == nil"), true);
  EXPECT_EQ(value("inputs.missing == nil"), true);
  EXPECT_EQ(value("inputs['with-dash']"), 1);
  EXPECT_EQ(value("inputs.tags[1]"), "a");  // 1-based
  EXPECT_EQ(value("inputs.tags[3]"), "c");
  EXPECT_EQ(value("inputs.tags[0] == nil and inputs.tags[4] == nil"), true);
  EXPECT_EQ(value("inputs.tags[1.0]"), "a");
  EXPECT_EQ(value("inputs.tags['1'] == nil"), true);
  EXPECT_EQ(value("inputs.nested.list[2].id"), 2);
  EXPECT_EQ(value("inputs[1] == nil"), true);
  EXPECT_EQ(value("index"), 2);
  EXPECT_EQ(value("now"), 1.5);
}

TEST_F(ViewTest, LengthPairsAndIpairs) {
  EXPECT_EQ(value("#inputs.tags"), 3);
  EXPECT_EQ(value("#inputs.nested.empty_list"), 0);
  EXPECT_EQ(value("#inputs"), 0);  // like a Lua table with only string keys
  EXPECT_EQ(*script("local out = {} for i, v in ipairs(inputs.tags) do out[i] = v .. i end\n"
                    "return out"),
            Json::parse(R"(["a1", "b2", "c3"])"));
  EXPECT_EQ(*script("local keys = {} for k in pairs(inputs) do keys[#keys + 1] = k end\n"
                    "table.sort(keys) return table.concat(keys, ',')"),
            "count,name,nested,none,on,ratio,tags,with-dash");
  EXPECT_EQ(*script("local n = 0 for i, v in pairs(inputs.nested.list) do n = n + i * v.id end\n"
                    "return n"),
            5);
  EXPECT_EQ(*script("for k in pairs(inputs.nested.empty) do return 'not empty' end return 'ok'"),
            "ok");
  // next-style misuse of the iterator is an error, not a crash.
  expect_error(script("local f = pairs(inputs) return f({}, nil)"), "context value expected");
  expect_error(script("local f, s = pairs(inputs) return f(s, 'nope')"), "invalid key to 'next'");
}

TEST_F(ViewTest, IsReadOnly) {
  expect_error(script("inputs.name = 'x'"), "context is read-only (cannot set 'name')");
  expect_error(script("inputs.tags[1] = 'x'"), "context is read-only");
  expect_error(script("table.insert(inputs.tags, 'd')"), "");
  expect_error(script("rawset(inputs, 'name', 'x')"), "table expected, got userdata");
  expect_error(script("setmetatable(inputs, {})"), "table expected, got userdata");
  EXPECT_EQ(value("getmetatable(inputs)"), false);
  EXPECT_EQ(value("inputs.name"), "Ada");
  EXPECT_EQ(inputs_["name"], "Ada");
}

TEST_F(ViewTest, ToStringEqualityAndCopies) {
  EXPECT_EQ(value("tostring(inputs.tags)"), R"(["a","b","c"])");
  EXPECT_EQ(value("inputs.nested == inputs.nested"), true);
  EXPECT_EQ(value("inputs.nested == inputs.nested.empty"), false);
  EXPECT_EQ(value("type(inputs)"), "userdata");
  // Results holding views copy the JSON they view.
  EXPECT_EQ(value("inputs.nested.list"), inputs_["nested"]["list"]);
  EXPECT_EQ(value("{first = inputs.nested.list[1], all = inputs.tags}"),
            Json::parse(R"({"first": {"id": 1}, "all": ["a", "b", "c"]})"));
  EXPECT_EQ(value("inputs.nested.empty_list"), Json::array());
  EXPECT_EQ(value("json.encode(inputs.tags)"), R"(["a","b","c"])");
}

// A host library that keeps one value in the registry across runs, as a buggy or hostile host
// function might: the only way a chunk's value can outlive its run.
int keep(lua_State* L) {
  lua_settop(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, "herald.test.kept");
  return 0;
}
int kept(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "herald.test.kept");
  return 1;
}

TEST_F(ViewTest, ViewsDieWithTheirRun) {
  static const luaL_Reg functions[] = {{"keep", keep}, {"kept", kept}, {nullptr, nullptr}};
  ASSERT_TRUE(sandbox_.add_library("host", functions).ok());
  ASSERT_TRUE(script("host.keep(inputs.nested)").ok());
  {
    Json other = Json::parse(R"({"nested": "replaced"})");
    globals_ = {Global::of_json("inputs", other)};
    inputs_ = nullptr;  // the JSON the kept view pointed at is gone
    expect_error(expr("host.kept().list"), "can no longer be read");
    expect_error(expr("#host.kept()"), "can no longer be read");
    expect_error(expr("tostring(host.kept())"), "can no longer be read");
    expect_error(script("for k in pairs(host.kept()) do end"), "can no longer be read");
    expect_error(expr("host.kept()"), "can no longer be read");
    expect_error(expr("{host.kept()}"), "can no longer be read");
    EXPECT_EQ(value("inputs.nested"), "replaced");
  }
}

}  // namespace
}  // namespace herald::lua
