// `herald plugins list | inspect | call`, and plugin capabilities in `herald validate` and
// `herald run`, with plugins named by HERALD_PLUGINS_PATHS (files and folders).
#include <gtest/gtest.h>

#include "tests/support/herald_command.h"
#include "tests/support/temp_dir.h"

namespace herald::testing {
namespace {

constexpr const char* kLuaPlugin = R"(
return {
  name = "shout",
  version = "1.0.0",
  description = "Shouts",
  capabilities = {
    upper = {
      description = "Upper-cases text",
      input = { type = "object", required = { "text" }, properties = { text = { type = "string" } } },
      run = function(input) return { text = string.upper(input.text) } end,
    },
    crash = { run = function() error("lua went wrong") end },
  },
}
)";

std::string plugin_file(const std::string& name) {
  return std::string(HERALD_TEST_PLUGIN_DIR) + "/" + name + ".so";
}

class PluginsCliTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_.write("lua/shout.lua", kLuaPlugin); }

  std::map<std::string, std::string> env(const std::string& extra = "") const {
    std::string paths = plugin_file("test_good") + ":" + (dir_ / "lua").string();
    if (!extra.empty()) paths += ":" + extra;
    return {{"HERALD_DATA_DIR", (dir_ / "data").string()}, {"HERALD_PLUGINS_PATHS", paths}};
  }
  CommandResult herald(const std::vector<std::string>& args, const std::string& extra = "") {
    return run_herald(args, env(extra));
  }

  TempDir dir_{"herald-plugins-cli"};
};

TEST_F(PluginsCliTest, ListShowsPluginsAndCapabilities) {
  auto list = herald({"plugins", "list"});
  ASSERT_EQ(list.code(), 0) << list.err;
  EXPECT_NE(list.out.find("testgood 1.2.3  (native, in-process)  " + plugin_file("test_good")),
            std::string::npos)
      << list.out;
  EXPECT_NE(
      list.out.find("shout 1.0.0  (lua, in-process)  " + (dir_ / "lua" / "shout.lua").string()),
      std::string::npos)
      << list.out;
  EXPECT_NE(list.out.find("testgood.echo"), std::string::npos);
  EXPECT_NE(list.out.find("shout.upper"), std::string::npos);
  EXPECT_NE(list.out.find("provider"), std::string::npos);

  auto json = herald({"plugins", "list", "--json"});
  ASSERT_EQ(json.code(), 0) << json.err;
  Json parsed = Json::parse(json.out);
  // The plugins built with Herald (mastodon, slack, webhook) are listed first.
  Json mine = Json::array();
  for (const auto& plugin : parsed["plugins"]) {
    if (plugin["name"] == "testgood" || plugin["name"] == "shout") mine.push_back(plugin);
  }
  ASSERT_EQ(mine.size(), 2u) << parsed.dump();
  EXPECT_EQ(mine[0]["name"], "testgood");
  EXPECT_EQ(mine[0]["isolation"], "in-process");
  EXPECT_TRUE(parsed["errors"].empty());
}

TEST_F(PluginsCliTest, ListReportsPluginsThatFailToLoad) {
  auto list = herald({"plugins", "list"}, plugin_file("test_abi_major"));
  EXPECT_EQ(list.code(), 1);
  EXPECT_NE(list.out.find("testgood"), std::string::npos) << "the good ones are still listed";
  EXPECT_NE(list.err.find(plugin_file("test_abi_major") + ": incompatible ABI"), std::string::npos)
      << list.err;
  // Commands that run workflows refuse to start with a broken plugin.
  dir_.write("hello.yaml",
             "id: hello\nsteps:\n  - id: a\n    uses: log\n    with: { message: hi }\n");
  auto run = herald({"run", (dir_ / "hello.yaml").string()}, plugin_file("test_init_fails"));
  EXPECT_EQ(run.code(), 2);
  EXPECT_NE(run.err.find("init failed: TESTCASE_API_KEY is not set"), std::string::npos) << run.err;
}

TEST_F(PluginsCliTest, InspectPrintsSchemas) {
  auto inspect = herald({"plugins", "inspect", "testgood"});
  ASSERT_EQ(inspect.code(), 0) << inspect.err;
  Json plugin = Json::parse(inspect.out);
  EXPECT_EQ(plugin["name"], "testgood");
  EXPECT_EQ(plugin["capabilities"][0]["name"], "testgood.echo");
  EXPECT_EQ(plugin["capabilities"][0]["input_schema"]["required"], Json::array({"text"}));
  auto by_capability = herald({"plugins", "inspect", "shout.upper"});
  ASSERT_EQ(by_capability.code(), 0) << by_capability.err;
  EXPECT_EQ(Json::parse(by_capability.out)["name"], "shout");
  auto unknown = herald({"plugins", "inspect", "nothing"});
  EXPECT_EQ(unknown.code(), 1);
  EXPECT_NE(unknown.err.find("no plugin or capability named 'nothing'"), std::string::npos);
}

TEST_F(PluginsCliTest, CallRunsOneCapability) {
  auto echo =
      herald({"plugins", "call", "testgood.echo", "--input", R"({"text": "ab", "count": 2})"});
  ASSERT_EQ(echo.code(), 0) << echo.err;
  EXPECT_EQ(Json::parse(echo.out)["text"], "abab");
  EXPECT_NE(echo.err.find("info: echoing ab"), std::string::npos) << echo.err;

  auto lua = herald({"plugins", "call", "shout.upper", "--input", R"({"text": "hey"})"});
  ASSERT_EQ(lua.code(), 0) << lua.err;
  EXPECT_EQ(Json::parse(lua.out)["text"], "HEY");

  auto secret = herald({"plugins", "call", "testgood.secret", "--input", R"({"name": "TOKEN"})",
                        "--secret", "TOKEN=hunter2hunter2"});
  ASSERT_EQ(secret.code(), 0) << secret.err;
  EXPECT_EQ(Json::parse(secret.out)["length"], 14);
  EXPECT_EQ(secret.err.find("hunter2hunter2"), std::string::npos) << secret.err;
  EXPECT_NE(secret.err.find("the secret is [redacted]"), std::string::npos) << secret.err;
}

TEST_F(PluginsCliTest, CallKeepsKvEntriesInTheDataDirPerWorkspace) {
  auto count = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"plugins", "call", "testgood.count"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto result = herald(args);
    EXPECT_EQ(result.code(), 0) << result.err;
    return Json::parse(result.out, nullptr, false).value("count", -1);
  };
  EXPECT_EQ(count({}), 1);
  EXPECT_EQ(count({}), 2);  // a second process sees what the first kept
  EXPECT_EQ(count({"--workspace", "acme"}), 1);
  EXPECT_EQ(count({"--workspace", "acme"}), 2);
  EXPECT_EQ(count({}), 3);
}

TEST_F(PluginsCliTest, CallReportsErrors) {
  auto invalid = herald({"plugins", "call", "testgood.echo", "--input", R"({"txt": "a"})"});
  EXPECT_EQ(invalid.code(), 2);
  EXPECT_NE(invalid.err.find("testgood.echo: invalid input"), std::string::npos) << invalid.err;
  EXPECT_NE(invalid.err.find("unknown field 'txt'"), std::string::npos) << invalid.err;

  auto busy = herald({"plugins", "call", "testgood.fail"});
  EXPECT_EQ(busy.code(), 1);
  EXPECT_NE(busy.err.find("error: unavailable (retryable): the service is busy"), std::string::npos)
      << busy.err;
  EXPECT_NE(busy.err.find("retry after: 1500 ms"), std::string::npos) << busy.err;

  auto crash = herald({"plugins", "call", "shout.crash"});
  EXPECT_EQ(crash.code(), 1);
  EXPECT_NE(crash.err.find("shout.crash: shout.lua:"), std::string::npos) << crash.err;
  EXPECT_NE(crash.err.find("stack traceback:"), std::string::npos) << crash.err;

  auto unknown = herald({"plugins", "call", "testgood.ecko"});
  EXPECT_EQ(unknown.code(), 2);
  EXPECT_NE(unknown.err.find("no capability named 'testgood.ecko'"), std::string::npos);
}

TEST_F(PluginsCliTest, ValidateAndRunUsePluginCapabilities) {
  dir_.write("post.yaml", R"(id: post
steps:
  - id: say
    uses: testgood.echo
    with:
      txt: hello
)");
  auto invalid = herald({"validate", (dir_ / "post.yaml").string()});
  EXPECT_EQ(invalid.code(), 2);
  EXPECT_NE(invalid.err.find("post.yaml:6:7: steps[0].with.txt: unknown field 'txt'; did you mean "
                             "'text'?"),
            std::string::npos)
      << invalid.err;

  dir_.write("greet.yaml", R"(id: greet
steps:
  - id: say
    uses: testgood.echo
    with: { text: "hi " }
  - id: loud
    uses: shout.upper
    with: { text: "{{ steps.say.output.text }}there" }
)");
  auto run = herald({"run", (dir_ / "greet.yaml").string(), "--json"});
  ASSERT_EQ(run.code(), 0) << run.out << run.err;
  EXPECT_NE(run.out.find("\"state\":\"succeeded\""), std::string::npos) << run.out;
}

}  // namespace
}  // namespace herald::testing
