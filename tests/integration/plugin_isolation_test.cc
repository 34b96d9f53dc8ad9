// `plugins.isolate` end to end: `herald run` of a workflow whose isolated plugin segfaults on its
// first attempt and succeeds on the retry (in a new plugin host), and `herald plugins list`
// showing the isolation.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/herald_command.h"
#include "tests/support/temp_dir.h"

namespace herald::testing {
namespace {

class PluginIsolationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Appended piece by piece: GCC 12 reports a false array-bounds error on the `+` chain.
    std::string config = "plugins:\n  paths: [\"";
    config.append(HERALD_TEST_PLUGIN_DIR);
    config.append("/test_isolation.so\"]\n  isolate: [testiso]\n  call_timeout: 20s\n");
    dir_.write("herald.yaml", config);
  }

  CommandResult herald(std::vector<std::string> args) {
    args.push_back("--config");
    args.push_back((dir_ / "herald.yaml").string());
    return run_herald(args, {{"HERALD_DATA_DIR", (dir_ / "data").string()}});
  }

  TempDir dir_{"herald-plugin-isolation"};
};

TEST_F(PluginIsolationTest, ListShowsProcessIsolation) {
  auto list = herald({"plugins", "list"});
  ASSERT_EQ(list.code(), 0) << list.err;
  EXPECT_NE(list.out.find("testiso 0.1.0  (native, process)"), std::string::npos) << list.out;
}

TEST_F(PluginIsolationTest, SegfaultOnTheFirstAttemptSucceedsOnTheRetry) {
  const std::string marker = (dir_ / "crashed-once").string();
  dir_.write("flaky.yaml", R"(id: flaky
steps:
  - id: risky
    uses: testiso.crash_once
    with: { marker: ")" + marker +
                               R"(" }
    retry: { attempts: 3, initial: 10ms, max: 50ms }
  - id: after
    uses: log
    with: { message: "survived={{ steps.risky.output.survived }}" }
)");
  auto run = herald({"run", (dir_ / "flaky.yaml").string(), "--json"});
  ASSERT_EQ(run.code(), 0) << run.out << run.err;
  EXPECT_NE(run.out.find("\"state\":\"succeeded\""), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("survived=true"), std::string::npos) << run.out;
  EXPECT_TRUE(std::filesystem::exists(marker)) << "the first attempt ran and crashed";
}

TEST_F(PluginIsolationTest, PluginThatAlwaysCrashesFailsOnlyItsStep) {
  dir_.write("doomed.yaml", R"(id: doomed
steps:
  - id: risky
    uses: testiso.crash
    retry: { attempts: 2, initial: 10ms, max: 20ms }
)");
  auto run = herald({"run", (dir_ / "doomed.yaml").string(), "--json"});
  EXPECT_NE(run.code(), 0);
  EXPECT_NE(run.out.find("\"state\":\"failed\""), std::string::npos) << run.out << run.err;
  EXPECT_NE((run.out + run.err).find("the plugin host died"), std::string::npos)
      << run.out << run.err;
}

}  // namespace
}  // namespace herald::testing
