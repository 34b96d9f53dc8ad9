// TempDir, ChildProcess and the standalone herald-test-server, as the integration tests use them.
#include <gtest/gtest.h>

#include <fstream>

#include "engine/common/result.h"
#include "tests/support/child_process.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"

namespace herald::testing {
namespace {

using namespace std::chrono_literals;

TEST(TempDir, CreatesAndRemoves) {
  std::filesystem::path path;
  {
    TempDir dir("herald-support-test");
    path = dir.path();
    EXPECT_TRUE(std::filesystem::is_directory(path));
    EXPECT_NE(path.filename().string().find("herald-support-test-"), std::string::npos);
    auto file = dir.write("a/b/c.txt", "hello");
    EXPECT_EQ(file, path / "a/b/c.txt");
    EXPECT_EQ(dir.read("a/b/c.txt"), "hello");
    EXPECT_EQ(read_file(dir / "a/b/c.txt"), "hello");
    EXPECT_EQ(read_file(dir / "missing"), "");
    EXPECT_THROW(dir.read("missing"), std::runtime_error);
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(TempDir, MovesAndKeeps) {
  std::filesystem::path path;
  {
    TempDir first;
    path = first.path();
    TempDir second = std::move(first);
    EXPECT_EQ(second.path(), path);
    EXPECT_TRUE(first.path().empty());
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  {
    TempDir kept;
    path = kept.path();
    kept.keep();
  }
  EXPECT_TRUE(std::filesystem::exists(path));
  std::filesystem::remove_all(path);
}

TEST(ChildProcess, CapturesOutputAndExitCode) {
  ChildProcess child({"sh", "-c", "echo out; echo err >&2; exit 3"});
  auto status = child.wait(10s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->exited);
  EXPECT_EQ(status->code, 3);
  EXPECT_FALSE(status->success());
  EXPECT_EQ(status->describe(), "exit 3");
  EXPECT_EQ(child.stdout_text(), "out\n");
  EXPECT_EQ(child.stderr_text(), "err\n");
  EXPECT_FALSE(child.running());
}

TEST(ChildProcess, EnvironmentAndWorkingDirectory) {
  TempDir dir;
  setenv("HERALD_SUPPORT_TEST_INHERITED", "yes", 1);
  setenv("HERALD_SUPPORT_TEST_UNSET", "present", 1);
  ChildOptions options;
  options.args = {"sh", "-c",
                  "echo $HERALD_X $HERALD_SUPPORT_TEST_INHERITED "
                  "${HERALD_SUPPORT_TEST_UNSET:-gone}; pwd"};
  options.env = {{"HERALD_X", "set"}};
  options.unset_env = {"HERALD_SUPPORT_TEST_UNSET"};
  options.cwd = dir.path();
  options.output_dir = dir.path();
  options.output_prefix = "sh.";
  ChildProcess child(options);
  ASSERT_TRUE(child.wait(10s).value_or(ExitStatus{}).success());
  EXPECT_EQ(child.stdout_path(), dir / "sh.stdout");
  EXPECT_EQ(child.stdout_text(),
            "set yes gone\n" + std::filesystem::canonical(dir.path()).string() + "\n");
}

TEST(ChildProcess, ClearEnvironment) {
  ChildOptions options;
  options.args = {"/bin/sh", "-c", "echo \"[$HOME]\""};
  options.clear_env = true;
  ChildProcess child(options);
  ASSERT_TRUE(child.wait(10s).has_value());
  EXPECT_EQ(child.stdout_text(), "[]\n");
}

TEST(ChildProcess, KillAndTimeout) {
  ChildProcess child({"sleep", "30"});
  EXPECT_TRUE(child.running());
  EXPECT_FALSE(child.wait(50ms).has_value());
  child.kill(SIGKILL);
  auto status = child.wait(10s);
  ASSERT_TRUE(status.has_value());
  EXPECT_FALSE(status->exited);
  EXPECT_EQ(status->signal, SIGKILL);
  EXPECT_NE(status->describe().find("signal 9"), std::string::npos);
  child.kill(SIGKILL);  // already reaped: a no-op, never a signal to a recycled pid
}

TEST(ChildProcess, StopEscalatesToSigkill) {
  ChildProcess child({"sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.05; done"});
  ASSERT_TRUE(child.wait_for_stdout("ready", 10s));
  auto status = child.stop(SIGTERM, 200ms);
  EXPECT_EQ(status.signal, SIGKILL);
}

TEST(ChildProcess, DestructorKillsARunningChild) {
  pid_t pid;
  {
    ChildProcess child({"sleep", "30"});
    pid = child.pid();
  }
  EXPECT_NE(::kill(pid, 0), 0);  // reaped and gone
}

TEST(ChildProcess, MissingProgramThrows) {
  EXPECT_THROW(ChildProcess({"/no/such/program"}), std::runtime_error);
  EXPECT_THROW(ChildProcess({"no-such-program-anywhere"}), std::runtime_error);
  ChildOptions options;
  options.args = {"true"};
  options.cwd = "/no/such/folder";
  EXPECT_THROW(ChildProcess{options}, std::runtime_error);
}

TEST(ChildProcess, WaitForStdoutStopsWhenTheChildEnds) {
  ChildProcess child({"sh", "-c", "echo something else"});
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(child.wait_for_stdout("never printed", 10s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

// herald-test-server, as the crash tests drive it.

TEST(TestServer, ServesEffectsAndPrintsStatsOnSigterm) {
  TempDir dir;
  ChildProcess server({HERALD_TEST_SERVER_BINARY, "--port-file", (dir / "port").string()});
  ASSERT_TRUE(server.wait_for_stdout("\n", 10s)) << server.stderr_text();
  Json started = Json::parse(server.stdout_text());
  int port = started["port"];
  EXPECT_GT(port, 0);
  EXPECT_EQ(started["url"], "http://127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(started["pid"], server.pid());
  EXPECT_EQ(dir.read("port"), std::to_string(port) + "\n");

  std::string base = started["url"];
  EXPECT_EQ(http_call("POST", base + "/effects/a", {{"Idempotency-Key", "k1"}}, "{}").status, 200);
  EXPECT_EQ(http_call("POST", base + "/effects/a", {{"Idempotency-Key", "k1"}}, "{}").status, 200);
  EXPECT_EQ(http_call("POST", base + "/effects/b", {{"Idempotency-Key", "k2"}}, "{}").status, 200);
  auto stats = http_call("GET", base + "/__stats");
  ASSERT_EQ(stats.status, 200);
  EXPECT_EQ(Json::parse(stats.body)["effects"], 2);
  EXPECT_EQ(Json::parse(stats.body)["keys"]["k1"]["requests"], 2);

  auto status_reply = http_call("GET", base + "/status/503?retry_after=2");
  EXPECT_EQ(status_reply.status, 503);
  EXPECT_EQ(status_reply.headers["retry-after"], "2");
  auto echo = http_call("PUT", base + "/echo/x?q=1", {{"X-A", "b"}}, "hi");
  EXPECT_EQ(Json::parse(echo.body)["headers"]["x-a"], "b");
  EXPECT_EQ(Json::parse(echo.body)["body"], "hi");

  auto exit = server.stop(SIGTERM, 10s);
  EXPECT_TRUE(exit.success()) << exit.describe() << server.stderr_text();
  std::string out = server.stdout_text();
  std::string last_line = out.substr(out.rfind('\n', out.size() - 2) + 1);
  Json final_stats = Json::parse(last_line);
  EXPECT_EQ(final_stats["effects"], 2);
  EXPECT_EQ(final_stats["order"], Json({"k1", "k2"}));
}

TEST(TestServer, ResetClearsTheLedger) {
  ChildProcess server({HERALD_TEST_SERVER_BINARY});
  ASSERT_TRUE(server.wait_for_stdout("\n", 10s));
  std::string base = Json::parse(server.stdout_text())["url"];
  http_call("POST", base + "/effects", {{"Idempotency-Key", "k"}}, "");
  EXPECT_EQ(http_call("POST", base + "/__reset").status, 200);
  EXPECT_EQ(Json::parse(http_call("GET", base + "/__stats").body)["effects"], 0);
}

TEST(TestServer, RejectsABadCommandLine) {
  for (std::vector<std::string> args :
       {std::vector<std::string>{"--port", "http"}, {"--bogus", "1"}, {"--port"}}) {
    args.insert(args.begin(), HERALD_TEST_SERVER_BINARY);
    ChildProcess server(args);
    auto status = server.wait(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->code, 2) << args[1];
    EXPECT_FALSE(server.stderr_text().empty());
  }
}

}  // namespace
}  // namespace herald::testing
