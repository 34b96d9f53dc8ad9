// `herald serve` as a process: start-up, JSON logs, and the SIGTERM drain (a step in flight
// finishes, the process exits 0, and the next start finishes the run without repeating it).
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/support/herald_command.h"
#include "tests/support/http_client.h"
#include "tests/support/local_http_server.h"
#include "tests/support/temp_dir.h"

namespace herald::testing {
namespace {

using namespace std::chrono_literals;

Json get_json(const std::string& url, const std::string& token) {
  auto reply = http_call("GET", url, {{"Authorization", "Bearer " + token}});
  Json body = Json::parse(reply.body, nullptr, false);
  return body.is_discarded() ? Json() : body;
}

class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = {{"HERALD_DATA_DIR", dir_.path().string()}, {"HERALD_MASTER_KEY", ""}};
    auto init = run_herald({"init", "--workspace", "acme", "--quiet"}, env_);
    ASSERT_EQ(init.code(), 0) << init.err;
    token_ = init.out.substr(0, init.out.find('\n'));
    ASSERT_EQ(token_.rfind("hld_", 0), 0u) << init.out;
  }

  TempDir dir_;
  std::map<std::string, std::string> env_;
  std::string token_;
};

TEST_F(ServeTest, AnswersReadyzAndLogsJsonLines) {
  auto server = start_herald({"serve", "--listen", "127.0.0.1:0"}, env_);
  std::string base = wait_for_listening(server);
  ASSERT_FALSE(base.empty());
  EXPECT_EQ(http_call("GET", base + "/healthz").status, 200);
  EXPECT_EQ(http_call("GET", base + "/readyz").status, 200);
  auto me = get_json(base + "/api/v1/me", token_);
  EXPECT_EQ(me.value("workspace", ""), "acme");
  EXPECT_EQ(me.value("role", ""), "admin");
  auto status = server.stop(SIGTERM, 10s);
  EXPECT_TRUE(status.exited);
  EXPECT_EQ(status.code, 0);
  std::istringstream log(read_file(server.stderr_path()));
  std::string line;
  int lines = 0;
  while (std::getline(log, line)) {
    if (line.empty()) continue;
    Json parsed = Json::parse(line, nullptr, false);
    ASSERT_TRUE(parsed.is_object()) << "not a JSON log line: " << line;
    EXPECT_TRUE(parsed.contains("ts") && parsed.contains("level") && parsed.contains("msg")) << line;
    ++lines;
  }
  EXPECT_GE(lines, 2);  // "listening" and "draining" at least
}

TEST_F(ServeTest, ListensWhereTheConfigOrHeraldListenSays) {
  // --config: herald.yaml's `listen` and `max_body_bytes`.
  auto config = dir_.write("herald.yaml", "listen: 127.0.0.1:0\nmax_body_bytes: 100\n");
  {
    auto server = start_herald({"serve", "--config", config.string()}, env_);
    std::string base = wait_for_listening(server);
    ASSERT_FALSE(base.empty());
    EXPECT_EQ(http_call("GET", base + "/readyz").status, 200);
    auto big = http_call("POST", base + "/api/v1/events",
                         {{"Authorization", "Bearer " + token_}, {"Content-Type", "application/json"}},
                         R"({"name": "x", "payload": {"text": ")" + std::string(200, 'a') + R"("}})");
    EXPECT_EQ(big.status, 413) << big.body;
    EXPECT_EQ(server.stop(SIGTERM, 10s).code, 0);
  }
  // HERALD_LISTEN overrides the file.
  auto env = env_;
  env["HERALD_LISTEN"] = "127.0.0.1:0";
  auto other = dir_.write("other.yaml", "listen: 127.0.0.1:1\n");
  auto server = start_herald({"serve", "--config", other.string()}, env);
  std::string base = wait_for_listening(server);
  ASSERT_FALSE(base.empty());
  EXPECT_NE(base, "http://127.0.0.1:1");
  EXPECT_EQ(http_call("GET", base + "/healthz").status, 200);
  EXPECT_EQ(server.stop(SIGTERM, 10s).code, 0);
}

TEST_F(ServeTest, SigtermLetsTheStepInFlightFinishAndTheRunResumesOnTheNextStart) {
  LocalHttpServer effects;
  effects.add_effects_route("/effects");
  std::string workflow = "id: slow\nsteps:\n"
                         "  - id: call\n    uses: http\n    with:\n      method: POST\n"
                         "      url: \"" + effects.url("/effects/one?delay_ms=1500") + "\"\n"
                         "      json: { n: 1 }\n      idempotency: true\n"
                         "  - id: after\n    uses: wait\n    with: { for: 200ms }\n"
                         "  - id: done\n    uses: set\n    with: { ok: true }\n";

  std::string run_id;
  {
    auto server = start_herald({"serve", "--listen", "127.0.0.1:0"}, env_);
    std::string base = wait_for_listening(server);
    ASSERT_FALSE(base.empty());
    auto deployed = http_call("POST", base + "/api/v1/workflows",
                              {{"Authorization", "Bearer " + token_}, {"Content-Type", "application/yaml"}},
                              workflow);
    ASSERT_EQ(deployed.status, 201) << deployed.body;
    auto started = http_call("POST", base + "/api/v1/workflows/slow/runs",
                             {{"Authorization", "Bearer " + token_}, {"Content-Type", "application/json"}}, "{}");
    ASSERT_EQ(started.status, 201) << started.body;
    run_id = Json::parse(started.body).value("id", "");
    ASSERT_TRUE(effects.wait_for_requests(1, 10s));
    server.kill(SIGTERM);  // while the http step waits for its 1.5 s answer
    auto status = server.wait(20s);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(status->exited);
    EXPECT_EQ(status->code, 0) << read_file(server.stderr_path());
  }
  // The step finished during the drain: its success is stored, nothing re-runs it.
  auto runs = run_herald({"runs", "show", run_id, "--json"}, env_);
  ASSERT_EQ(runs.code(), 0) << runs.err;
  EXPECT_NE(runs.out.find("\"call\""), std::string::npos);

  auto server = start_herald({"serve", "--listen", "127.0.0.1:0"}, env_);
  std::string base = wait_for_listening(server);
  ASSERT_FALSE(base.empty());
  std::string state;
  for (int i = 0; i < 200 && state != "succeeded"; ++i) {
    state = get_json(base + "/api/v1/runs/" + run_id, token_).value("state", "");
    if (state != "succeeded") std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(state, "succeeded");
  EXPECT_EQ(effects.request_count(), 1u) << "the step in flight at SIGTERM ran again";
  server.stop(SIGTERM, 10s);
}

// `herald serve --no-workers` and `herald worker` on one store: the API stores the run, the
// worker claims and runs it, and the webhook's `respond` answer comes back through the store.
TEST_F(ServeTest, AnApiWithoutWorkersAndAWorkerShareTheWork) {
  {
    std::ofstream config(dir_.path() / "herald.yaml");
    config << "engine: { poll: 20ms }\n";
  }
  auto config = (dir_.path() / "herald.yaml").string();
  auto api = start_herald({"serve", "--no-workers", "--listen", "127.0.0.1:0", "--config", config}, env_);
  std::string base = wait_for_listening(api);
  ASSERT_FALSE(base.empty());
  auto worker = start_herald({"worker", "--config", config}, env_);
  std::string worker_base = wait_for_listening(worker);
  ASSERT_FALSE(worker_base.empty());

  Json ready = Json::parse(http_call("GET", worker_base + "/readyz").body, nullptr, false);
  EXPECT_EQ(ready.value("workers", false), true) << ready.dump();
  EXPECT_EQ(ready.value("api", true), false) << ready.dump();
  EXPECT_EQ(http_call("GET", worker_base + "/api/v1/me", {{"Authorization", "Bearer " + token_}}).status, 404);

  const std::string workflow = R"(id: shape
triggers:
  - webhook: { path: in, respond: { step: shape, timeout: 10s } }
steps:
  - id: shape
    uses: set
    with: { got: "{{ trigger.body.n }}" }
)";
  auto deployed = http_call("POST", base + "/api/v1/workflows",
                            {{"Authorization", "Bearer " + token_}, {"Content-Type", "application/yaml"}},
                            workflow);
  ASSERT_EQ(deployed.status, 201) << deployed.body;
  for (int n = 1; n <= 3; ++n) {
    auto reply = http_call("POST", base + "/hooks/acme/in", {{"Content-Type", "application/json"}},
                           Json{{"n", n}}.dump());
    ASSERT_EQ(reply.status, 200) << reply.body;
    EXPECT_EQ(Json::parse(reply.body, nullptr, false).value("got", 0), n) << reply.body;
  }
  EXPECT_EQ(api.stop(SIGTERM, 10s).code, 0);
  EXPECT_EQ(worker.stop(SIGTERM, 10s).code, 0);
}

}  // namespace
}  // namespace herald::testing
