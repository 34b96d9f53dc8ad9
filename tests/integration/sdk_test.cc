// The SDK as an author outside this repository sees it: `cmake --install` of this build into a
// temporary prefix, examples/plugins/cpp-hello configured and built out of tree against it
// (find_package(Herald), herald_add_plugin), and the installed herald loading that plugin, the
// Lua example and its own built-in plugins (from <prefix>/lib/herald/plugins, not the build).
#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/child_process.h"
#include "tests/support/herald_command.h"
#include "tests/support/local_http_server.h"
#include "tests/support/temp_dir.h"

namespace herald::testing {
namespace {

namespace fs = std::filesystem;

// The build under test: the folder of the herald binary (the top of its CMake build tree).
fs::path build_dir() {
  return fs::path(herald_binary()).parent_path();
}

// A value of the build's CMakeCache.txt ("NAME:TYPE=VALUE"), "" when absent.
std::string cache_value(const fs::path& build, const std::string& name) {
  std::ifstream in(build / "CMakeCache.txt");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + ":", 0) != 0) continue;
    auto eq = line.find('=');
    if (eq != std::string::npos) return line.substr(eq + 1);
  }
  return "";
}

CommandResult run(const std::vector<std::string>& args,
                  const std::map<std::string, std::string>& env = {},
                  std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
  ChildOptions options;
  options.args = args;
  options.env = env;
  ChildProcess child(options);
  CommandResult result;
  auto status = child.wait(timeout);
  result.status = status ? *status : child.stop(SIGKILL);
  result.out = child.stdout_text();
  result.err = child.stderr_text();
  return result;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class SdkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cmake_ = cache_value(build_dir(), "CMAKE_COMMAND");
    ASSERT_FALSE(cmake_.empty()) << "no CMAKE_COMMAND in " << build_dir() / "CMakeCache.txt";
    auto install = run({cmake_, "--install", build_dir().string(), "--prefix", prefix().string()});
    ASSERT_EQ(install.code(), 0) << install.out << install.err;
  }

  fs::path prefix() const { return dir_ / "prefix"; }
  std::string herald() const { return (prefix() / "bin" / "herald").string(); }

  // The installed herald with only `plugin_paths` configured.
  CommandResult herald_with(const std::string& plugin_paths, std::vector<std::string> args) {
    args.insert(args.begin(), herald());
    return run(args, {{"HERALD_PLUGINS_PATHS", plugin_paths},
                      {"HERALD_DATA_DIR", (dir_ / "data").string()}});
  }

  TempDir dir_{"herald-sdk"};
  std::string cmake_;
};

TEST_F(SdkTest, InstallsHeraldItsPluginsAndTheSdk) {
  for (const char* file :
       {"bin/herald", "include/herald/plugin.h", "include/herald/plugin.hpp",
        "lib/cmake/Herald/HeraldConfig.cmake", "lib/cmake/Herald/HeraldConfigVersion.cmake",
        "lib/cmake/Herald/HeraldPlugin.cmake", "share/herald/sdk/lua/README.md",
        "lib/herald/plugins/mastodon.so", "lib/herald/plugins/slack.so",
        "lib/herald/plugins/webhook.lua"}) {
    EXPECT_TRUE(fs::is_regular_file(prefix() / file)) << file;
  }
  EXPECT_FALSE(fs::exists(prefix() / "lib/herald/plugins/CMakeFiles"));

  // The installed herald loads the installed built-in plugins, not the build's.
  auto list = herald_with("", {"plugins", "list"});
  ASSERT_EQ(list.code(), 0) << list.out << list.err;
  const std::string plugins = (prefix() / "lib/herald/plugins").string();
  EXPECT_TRUE(contains(list.out, "(native, in-process)  " + plugins + "/mastodon.so")) << list.out;
  EXPECT_TRUE(contains(list.out, "(lua, in-process)  " + plugins + "/webhook.lua")) << list.out;
  EXPECT_FALSE(contains(list.out, build_dir().string() + "/plugins")) << list.out;
}

TEST_F(SdkTest, BuildsTheCppExampleOutOfTreeAndRunsIt) {
  const fs::path source = fs::path(HERALD_SOURCE_DIR) / "examples/plugins/cpp-hello";
  const fs::path build = dir_ / "cpp-hello-build";
  // The generator and compiler of the build under test; the example's own flags are what an
  // author's -Wall -Wextra -Werror would see.
  std::vector<std::string> configure = {cmake_,
                                        "-S",
                                        source.string(),
                                        "-B",
                                        build.string(),
                                        "-G",
                                        cache_value(build_dir(), "CMAKE_GENERATOR"),
                                        "-DCMAKE_PREFIX_PATH=" + prefix().string(),
                                        "-DCMAKE_CXX_FLAGS=-Wall -Wextra -Werror"};
  for (const char* name : {"CMAKE_MAKE_PROGRAM", "CMAKE_CXX_COMPILER"}) {
    std::string value = cache_value(build_dir(), name);
    if (!value.empty()) configure.push_back("-D" + std::string(name) + "=" + value);
  }
  auto configured = run(configure);
  ASSERT_EQ(configured.code(), 0) << configured.out << configured.err;
  EXPECT_EQ(fs::path(cache_value(build, "Herald_DIR")), prefix() / "lib/cmake/Herald")
      << "find_package(Herald) must find the installed SDK";
  auto built = run({cmake_, "--build", build.string()});
  ASSERT_EQ(built.code(), 0) << built.out << built.err;
  const fs::path plugin = build / "hello.so";
  ASSERT_TRUE(fs::is_regular_file(plugin)) << built.out;

  auto list = herald_with(build.string(), {"plugins", "list"});
  ASSERT_EQ(list.code(), 0) << list.out << list.err;
  EXPECT_TRUE(contains(list.out, "hello 1.0.0  (native, in-process)  " + plugin.string()))
      << list.out;
  EXPECT_TRUE(contains(list.out, "hello.greet")) << list.out;
  EXPECT_TRUE(contains(list.out, "hello.announce")) << list.out;

  auto greet = herald_with(build.string(),
                           {"plugins", "call", "hello.greet", "--input", R"({"name":"Ada"})"});
  ASSERT_EQ(greet.code(), 0) << greet.out << greet.err;
  EXPECT_EQ(Json::parse(greet.out), Json({{"greeting", "Hello, Ada!"}}));
  EXPECT_TRUE(contains(greet.err, "info: greeting Ada")) << greet.err;

  // The input schema is checked before the plugin runs.
  auto misspelt = herald_with(build.string(),
                              {"plugins", "call", "hello.greet", "--input", R"({"nom":"Ada"})"});
  EXPECT_EQ(misspelt.code(), 2) << misspelt.out;
  EXPECT_TRUE(contains(misspelt.err, "hello.greet: invalid input")) << misspelt.err;
  EXPECT_TRUE(contains(misspelt.err, "unknown field 'nom'")) << misspelt.err;
  EXPECT_TRUE(contains(misspelt.err, "missing required field 'name'")) << misspelt.err;
  EXPECT_TRUE(misspelt.out.empty()) << misspelt.out;

  // The host's HTTP client, with the call's idempotency key.
  LocalHttpServer server;
  server.route("POST", "/hook", Response::json(201, {{"ok", true}}));
  Json input = {{"url", server.url("/hook")}, {"name", "Ada"}, {"greeting", "Hi"}};
  auto announce =
      herald_with(build.string(), {"plugins", "call", "hello.announce", "--input", input.dump()});
  ASSERT_EQ(announce.code(), 0) << announce.out << announce.err;
  EXPECT_EQ(Json::parse(announce.out), Json({{"status", 201}, {"greeting", "Hi, Ada!"}}));
  auto posts = server.requests("POST", "/hook");
  ASSERT_EQ(posts.size(), 1u);
  EXPECT_EQ(Json::parse(posts[0].body), Json({{"text", "Hi, Ada!"}}));
  EXPECT_EQ(posts[0].header("Idempotency-Key").rfind("cli-", 0), 0u);
  EXPECT_TRUE(contains(announce.err, "http POST " + server.url("/hook") + " -> 201"))
      << announce.err;

  // A failed request is the host's error, passed through by the plugin.
  server.route("POST", "/hook", Response::text(503, "down"));
  auto down =
      herald_with(build.string(), {"plugins", "call", "hello.announce", "--input", input.dump()});
  EXPECT_EQ(down.code(), 1) << down.out;
  EXPECT_TRUE(contains(down.err, "error: unavailable (retryable)")) << down.err;
}

TEST_F(SdkTest, RunsTheLuaExample) {
  const std::string folder = (fs::path(HERALD_SOURCE_DIR) / "examples/plugins/lua-hello").string();
  auto list = herald_with(folder, {"plugins", "list"});
  ASSERT_EQ(list.code(), 0) << list.out << list.err;
  EXPECT_TRUE(contains(list.out, "lua-hello 1.0.0  (lua, in-process)  " + folder + "/hello.lua"))
      << list.out;

  auto greet =
      herald_with(folder, {"plugins", "call", "lua-hello.greet", "--input",
                           R"({"name":"Ada","times":2})"});
  ASSERT_EQ(greet.code(), 0) << greet.out << greet.err;
  Json output = Json::parse(greet.out);
  EXPECT_EQ(output["greeting"], "Hello, Ada!");
  EXPECT_EQ(output["all"], Json::array({"Hello, Ada!", "Hello, Ada!"}));
  EXPECT_TRUE(output["at"].is_number_integer()) << greet.out;
  EXPECT_TRUE(contains(greet.err, "info: greeting Ada (attempt ")) << greet.err;

  auto misspelt =
      herald_with(folder, {"plugins", "call", "lua-hello.greet", "--input", R"({"nom":"Ada"})"});
  EXPECT_EQ(misspelt.code(), 2) << misspelt.out;
  EXPECT_TRUE(contains(misspelt.err, "lua-hello.greet: invalid input")) << misspelt.err;
  EXPECT_TRUE(contains(misspelt.err, "unknown field 'nom'")) << misspelt.err;

  auto nobody =
      herald_with(folder, {"plugins", "call", "lua-hello.greet", "--input", R"({"name":"nobody"})"});
  EXPECT_EQ(nobody.code(), 2) << nobody.out;
  EXPECT_TRUE(contains(nobody.err, "error: invalid_argument: lua-hello: nobody to greet"))
      << nobody.err;
}

}  // namespace
}  // namespace herald::testing
