// The REST API of `herald serve`, in process over real HTTP: the happy path of every route —
// workflows (deploy YAML and JSON, versions, validate, list pages, get, enable/disable, delete),
// runs (start with inputs, timeline, list, cancel, retry), events (filters, run.failed), secrets
// (never shown, redacted from runs and the audit log), tokens, users, the audit log, health,
// metrics and the OpenAPI document. Errors and roles: api_errors_test.cc, api_roles_test.cc;
// webhooks: api_webhooks_test.cc.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <set>
#include <string>
#include <thread>

#include "engine/security/tokens.h"
#include "tests/support/api_fixture.h"
#include "tests/support/local_http_server.h"

namespace herald::testing {
namespace {

using security::Role;

const std::string kHello =
    "id: hello\n"
    "name: Hello\n"
    "inputs:\n"
    "  name: { type: string, required: true }\n"
    "  times: { type: integer, default: 1 }\n"
    "steps:\n"
    "  - id: greet\n"
    "    uses: set\n"
    "    with: { text: \"hello {{ inputs.name }}\", times: \"{{ inputs.times }}\" }\n";

const std::string kSleeper =
    "id: sleeper\n"
    "steps:\n"
    "  - id: nap\n"
    "    uses: wait\n"
    "    with: { for: 1h }\n";

std::string versioned(const std::string& mark) {
  return "id: versioned\n"
         "steps:\n"
         "  - id: pause\n"
         "    uses: wait\n"
         "    with: { for: 500ms }\n"
         "  - id: mark\n"
         "    uses: set\n"
         "    with: { version: " + mark + " }\n";
}

std::string simple(const std::string& id, const std::string& extra = "") {
  return "id: " + id + "\n" + extra +
         "steps:\n"
         "  - id: only\n"
         "    uses: set\n"
         "    with: { ok: true }\n";
}

// ---- workflows --------------------------------------------------------------------------------

TEST_F(ApiTest, DeployYamlVersionsAndRunsKeepTheirVersion) {
  auto first = deploy(admin(), versioned("one"));
  ASSERT_EQ(first.status, 201) << first;
  EXPECT_EQ(first.json["id"], "versioned");
  EXPECT_EQ(first.json["version"], 1);
  EXPECT_EQ(first.json["new_version"], true);
  EXPECT_EQ(first.json["enabled"], true);
  EXPECT_EQ(first.json["updated_by"], "user:acme-admin");
  int64_t v1 = first.json["version_id"].get<int64_t>();

  auto again = deploy(admin(), versioned("one"));
  ASSERT_EQ(again.status, 200) << again;
  EXPECT_EQ(again.json["new_version"], false);
  EXPECT_EQ(again.json["version"], 1);
  EXPECT_EQ(again.json["version_id"], v1);

  std::string early = start_run("versioned");
  ASSERT_FALSE(early.empty());

  auto second = deploy(admin(), versioned("two"));
  ASSERT_EQ(second.status, 201) << second;
  EXPECT_EQ(second.json["version"], 2);
  EXPECT_EQ(second.json["new_version"], true);
  int64_t v2 = second.json["version_id"].get<int64_t>();
  EXPECT_NE(v2, v1);

  std::string late = start_run("versioned");
  Json early_run = wait_final(early);
  Json late_run = wait_final(late);
  EXPECT_EQ(early_run["state"], "succeeded") << early_run.dump();
  EXPECT_EQ(early_run["workflow_version_id"], v1);
  EXPECT_EQ(step_of(early_run, "mark")["output"]["version"], "one") << early_run.dump();
  EXPECT_EQ(late_run["workflow_version_id"], v2);
  EXPECT_EQ(step_of(late_run, "mark")["output"]["version"], "two") << late_run.dump();

  auto versions = get("/api/v1/workflows/versioned/versions", token(Role::viewer));
  ASSERT_EQ(versions.status, 200) << versions;
  ASSERT_EQ(versions.json["items"].size(), 2u) << versions;
  EXPECT_EQ(versions.json["items"][0]["version"], 2);
  EXPECT_EQ(versions.json["items"][0]["id"], v2);
  EXPECT_EQ(versions.json["items"][1]["version"], 1);
  EXPECT_FALSE(versions.json["items"][0].contains("source"));
  EXPECT_EQ(versions.json["items"][0]["source_hash"].get<std::string>().size(), 64u);

  // Deploying the first source again makes version 1 current again (no version 3).
  auto back = deploy(admin(), versioned("one"));
  ASSERT_EQ(back.status, 201) << back;
  EXPECT_EQ(back.json["version"], 1);
  EXPECT_EQ(back.json["version_id"], v1);
}

TEST_F(ApiTest, DeployJson) {
  Json workflow = {{"id", "from-json"},
                   {"steps", Json::array({{{"id", "only"}, {"uses", "set"}, {"with", {{"x", 1}}}}})}};
  auto reply = call("POST", "/api/v1/workflows", admin(), workflow.dump(), "application/json");
  ASSERT_EQ(reply.status, 201) << reply;
  EXPECT_EQ(reply.json["id"], "from-json");
  auto got = get("/api/v1/workflows/from-json", admin());
  ASSERT_EQ(got.status, 200) << got;
  EXPECT_EQ(got.json["source"], workflow.dump());
  Json run = wait_final(start_run("from-json"));
  EXPECT_EQ(run["state"], "succeeded") << run.dump();
  EXPECT_EQ(step_of(run, "only")["output"]["x"], 1);

  // text/yaml and application/x-yaml are YAML too.
  EXPECT_EQ(call("POST", "/api/v1/workflows", admin(), simple("as-text-yaml"), "text/yaml").status, 201);
  EXPECT_EQ(call("POST", "/api/v1/workflows", admin(), simple("as-x-yaml"), "application/x-yaml; charset=utf-8").status,
            201);
}

TEST_F(ApiTest, ValidateReportsErrorsWithLineAndColumn) {
  auto ok = call("POST", "/api/v1/workflows/validate", token(Role::viewer), kHello, "application/yaml");
  ASSERT_EQ(ok.status, 200) << ok;
  EXPECT_EQ(ok.json["valid"], true);
  EXPECT_EQ(ok.json["id"], "hello");
  EXPECT_TRUE(ok.json["errors"].empty());

  const std::string broken =
      "id: broken\n"
      "steps:\n"
      "  - id: a\n"
      "    uses: scirpt\n"
      "  - id: b\n"
      "    uses: set\n"
      "    retires: 3\n";
  auto bad = call("POST", "/api/v1/workflows/validate", token(Role::viewer), broken, "application/yaml");
  ASSERT_EQ(bad.status, 200) << bad;
  EXPECT_EQ(bad.json["valid"], false);
  ASSERT_GE(bad.json["errors"].size(), 2u) << bad;
  const Json& e0 = bad.json["errors"][0];
  EXPECT_EQ(e0["line"], 4) << bad;
  EXPECT_EQ(e0["column"], 11) << bad;
  EXPECT_NE(e0["message"].get<std::string>().find("scirpt"), std::string::npos) << bad;
  EXPECT_EQ(bad.json["errors"][1]["line"], 7) << bad;
  EXPECT_GT(bad.json["errors"][1]["column"].get<int>(), 0) << bad;

  // Validating deploys nothing.
  EXPECT_TRUE(is_error(get("/api/v1/workflows/hello", admin()), 404, "not_found"));
}

TEST_F(ApiTest, InvalidCronIs422WithItsLine) {
  const std::string source =
      "id: cron-bad\n"
      "triggers:\n"
      "  - schedule: { cron: \"61 * * * *\" }\n"
      "steps:\n"
      "  - id: only\n"
      "    uses: set\n"
      "    with: { ok: true }\n";
  auto reply = deploy(admin(), source);
  ASSERT_TRUE(is_error(reply, 422, "invalid_argument"));
  const Json& errors = reply.json["error"]["details"]["errors"];
  ASSERT_EQ(errors.size(), 1u) << reply;
  EXPECT_EQ(errors[0]["line"], 3) << reply;
  EXPECT_GT(errors[0]["column"].get<int>(), 0) << reply;
  EXPECT_NE(errors[0]["path"].get<std::string>().find("triggers[0].schedule"), std::string::npos) << reply;
  EXPECT_TRUE(is_error(get("/api/v1/workflows/cron-bad", admin()), 404));
}

TEST_F(ApiTest, ListPagesGetAndFilter) {
  for (const char* id : {"wf-c", "wf-a", "wf-b"}) must_deploy(simple(id));
  std::vector<std::string> seen;
  std::string cursor;
  for (int page = 0; page < 5; ++page) {
    auto reply = get("/api/v1/workflows?limit=1" + (cursor.empty() ? std::string() : "&cursor=" + cursor),
                     token(Role::viewer));
    ASSERT_EQ(reply.status, 200) << reply;
    for (const auto& item : reply.json["items"]) seen.push_back(item["id"]);
    EXPECT_LE(reply.json["items"].size(), 1u);
    if (reply.json["next_cursor"].is_null()) break;
    cursor = reply.json["next_cursor"];
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"wf-a", "wf-b", "wf-c"}));

  auto all = get("/api/v1/workflows", token(Role::viewer));
  ASSERT_EQ(all.status, 200);
  EXPECT_EQ(all.json["items"].size(), 3u);
  EXPECT_TRUE(all.json["next_cursor"].is_null());

  ASSERT_EQ(post_json("/api/v1/workflows/wf-b/disable", admin(), Json::object()).status, 200);
  auto disabled = get("/api/v1/workflows?enabled=false", token(Role::viewer));
  ASSERT_EQ(disabled.json["items"].size(), 1u) << disabled;
  EXPECT_EQ(disabled.json["items"][0]["id"], "wf-b");
  EXPECT_EQ(get("/api/v1/workflows?enabled=true", token(Role::viewer)).json["items"].size(), 2u);

  must_deploy(kHello);
  auto one = get("/api/v1/workflows/hello", token(Role::viewer));
  ASSERT_EQ(one.status, 200) << one;
  EXPECT_EQ(one.json["id"], "hello");
  EXPECT_EQ(one.json["name"], "Hello");
  EXPECT_EQ(one.json["source"], kHello);
  EXPECT_EQ(one.json["version"], 1);
  EXPECT_TRUE(one.json["triggers"].is_array());
}

TEST_F(ApiTest, VersionsSecretsAndTokensPageToo) {
  // Every page of `path` (limit 2), following next_cursor: the values of `key` in order.
  auto walk_pages = [this](const std::string& path, const std::string& key,
                           const std::string& bearer) {
    std::vector<Json> seen;
    std::string cursor;
    for (int page = 0; page < 20; ++page) {
      auto reply = get(path + "?limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor), bearer);
      EXPECT_EQ(reply.status, 200) << reply;
      EXPECT_LE(reply.json["items"].size(), 2u);
      for (const auto& item : reply.json["items"]) seen.push_back(item[key]);
      if (reply.json["next_cursor"].is_null()) break;
      cursor = reply.json["next_cursor"];
    }
    return seen;
  };
  for (int v = 1; v <= 5; ++v) must_deploy(simple("wf", "description: v" + std::to_string(v) + "\n"));
  EXPECT_EQ(walk_pages("/api/v1/workflows/wf/versions", "version", token(Role::viewer)),
            (std::vector<Json>{5, 4, 3, 2, 1}));
  for (const char* name : {"E_KEY", "A_KEY", "C_KEY", "B_KEY", "D_KEY"}) {
    ASSERT_EQ(put_json(std::string("/api/v1/secrets/") + name, admin(), {{"value", "v"}}).status, 204);
  }
  EXPECT_EQ(walk_pages("/api/v1/secrets", "name", admin()),
            (std::vector<Json>{"A_KEY", "B_KEY", "C_KEY", "D_KEY", "E_KEY"}));
  auto tokens = get("/api/v1/tokens", admin());
  ASSERT_EQ(tokens.status, 200) << tokens;
  std::vector<Json> all_tokens;
  for (const auto& item : tokens.json["items"]) all_tokens.push_back(item["id"]);
  EXPECT_EQ(walk_pages("/api/v1/tokens", "id", admin()), all_tokens);
  auto users = get("/api/v1/users", admin());
  std::vector<Json> all_users;
  for (const auto& item : users.json["items"]) all_users.push_back(item["user"]);
  EXPECT_EQ(walk_pages("/api/v1/users", "user", admin()), all_users);
  EXPECT_TRUE(is_error(get("/api/v1/workflows/wf/versions?cursor=abc", token(Role::viewer)), 400));
  EXPECT_TRUE(is_error(get("/api/v1/secrets?limit=0", admin()), 400));
}

TEST_F(ApiTest, DisabledWorkflowRefusesManualStartsAndItsWebhook) {
  must_deploy(simple("toggle", "triggers:\n  - webhook: { path: toggle }\n  - manual:\n"));
  auto off = post_json("/api/v1/workflows/toggle/disable", admin(), Json::object());
  ASSERT_EQ(off.status, 200) << off;
  EXPECT_EQ(off.json["enabled"], false);
  EXPECT_TRUE(is_error(post_json("/api/v1/workflows/toggle/runs", admin(), Json::object()), 409,
                       "failed_precondition"));
  EXPECT_TRUE(is_error(call("POST", "/hooks/acme/toggle", "", "{}", "application/json"), 404));
  EXPECT_EQ(get("/api/v1/workflows/toggle", admin()).json["enabled"], false);

  auto on = post_json("/api/v1/workflows/toggle/enable", admin(), Json::object());
  ASSERT_EQ(on.status, 200) << on;
  EXPECT_EQ(on.json["enabled"], true);
  auto hook = call("POST", "/hooks/acme/toggle", "", "{}", "application/json");
  EXPECT_EQ(hook.status, 202) << hook;
  EXPECT_EQ(post_json("/api/v1/workflows/toggle/runs", admin(), Json::object()).status, 201);

  // Redeploying a disabled workflow keeps it disabled.
  ASSERT_EQ(post_json("/api/v1/workflows/toggle/disable", admin(), Json::object()).status, 200);
  must_deploy(simple("toggle", "triggers:\n  - webhook: { path: toggle }\n  - manual: {}\n"));
  EXPECT_TRUE(is_error(call("POST", "/hooks/acme/toggle", "", "{}", "application/json"), 404));
}

TEST_F(ApiTest, DeleteWorkflow) {
  must_deploy(simple("doomed", "triggers:\n  - webhook: { path: doomed }\n"));
  std::string run = start_run("doomed");
  wait_final(run);
  auto deleted = call("DELETE", "/api/v1/workflows/doomed", admin());
  EXPECT_EQ(deleted.status, 204) << deleted;
  EXPECT_TRUE(deleted.body.empty());
  EXPECT_TRUE(is_error(get("/api/v1/workflows/doomed", admin()), 404, "not_found"));
  EXPECT_TRUE(is_error(call("DELETE", "/api/v1/workflows/doomed", admin()), 404));
  EXPECT_TRUE(is_error(post_json("/api/v1/workflows/doomed/runs", admin(), Json::object()), 404));
  EXPECT_TRUE(is_error(post_json("/api/v1/workflows/doomed/enable", admin(), Json::object()), 404));
  EXPECT_TRUE(is_error(call("POST", "/hooks/acme/doomed", "", "{}", "application/json"), 404));
  EXPECT_TRUE(get("/api/v1/workflows", admin()).json["items"].empty());
  // Its runs stay readable.
  EXPECT_EQ(get("/api/v1/runs/" + run, admin()).status, 200);
}

// ---- runs -------------------------------------------------------------------------------------

TEST_F(ApiTest, StartRunWithInputsAndReadItsTimeline) {
  must_deploy(kHello);
  auto started = post_json("/api/v1/workflows/hello/runs", token(Role::editor), {{"inputs", {{"name", "Ada"}, {"times", 3}}}});
  ASSERT_EQ(started.status, 201) << started;
  std::string id = started.json["id"];
  EXPECT_EQ(id.size(), 26u);
  EXPECT_EQ(started.json["workflow"], "hello");
  EXPECT_EQ(started.json["trigger"]["type"], "manual");
  EXPECT_EQ(started.json["trigger"]["by"], "user:acme-editor");

  Json run = wait_final(id);
  EXPECT_EQ(run["state"], "succeeded") << run.dump();
  EXPECT_EQ(run["inputs"], (Json{{"name", "Ada"}, {"times", 3}}));
  EXPECT_TRUE(run["error"].is_null());
  EXPECT_TRUE(run["finished_at"].is_string());
  Json greet = step_of(run, "greet");
  EXPECT_EQ(greet["state"], "succeeded");
  EXPECT_EQ(greet["output"], (Json{{"text", "hello Ada"}, {"times", 3}}));
  EXPECT_EQ(greet["attempts"], 1);
  ASSERT_EQ(run["timeline"].size(), 1u) << run.dump();
  EXPECT_EQ(run["timeline"][0]["step"], "greet");
  EXPECT_EQ(run["timeline"][0]["attempt"], 1);
  EXPECT_EQ(run["timeline"][0]["state"], "succeeded");
  EXPECT_TRUE(run["timeline"][0]["started_at"].is_string());

  // Defaults apply; text converts to the declared type.
  Json defaults = wait_final(start_run("hello", {{"name", "Bo"}}));
  EXPECT_EQ(step_of(defaults, "greet")["output"]["times"], 1) << defaults.dump();
  Json converted = wait_final(start_run("hello", {{"name", "Cy"}, {"times", "4"}}));
  EXPECT_EQ(step_of(converted, "greet")["output"]["times"], 4) << converted.dump();
}

TEST_F(ApiTest, BadInputsAre400) {
  must_deploy(kHello);
  const std::string path = "/api/v1/workflows/hello/runs";
  EXPECT_TRUE(is_error(post_json(path, admin(), {{"inputs", Json::object()}}), 400, "invalid_argument"));
  EXPECT_TRUE(is_error(post_json(path, admin(), {{"inputs", {{"name", "x"}, {"colour", "red"}}}}), 400));
  EXPECT_TRUE(is_error(post_json(path, admin(), {{"inputs", {{"name", "x"}, {"times", "many"}}}}), 400));
  EXPECT_TRUE(is_error(post_json(path, admin(), {{"inputs", {{"name", 5}}}}), 400));
  EXPECT_TRUE(is_error(post_json(path, admin(), {{"inputs", Json::array({1})}}), 400));
  EXPECT_TRUE(is_error(call("POST", path, admin(), "[]", "application/json"), 400));
  EXPECT_TRUE(is_error(call("POST", path, admin()), 400));  // empty body: no inputs, `name` missing
  EXPECT_TRUE(get("/api/v1/runs", admin()).json["items"].empty());
  // A workflow without required inputs starts from an empty body.
  must_deploy(simple("plain"));
  EXPECT_EQ(call("POST", "/api/v1/workflows/plain/runs", admin()).status, 201);
}

TEST_F(ApiTest, ListRunsPagesAndFilters) {
  must_deploy(kHello);
  must_deploy(simple("other"));
  std::vector<std::string> ids;
  for (const char* name : {"a", "b", "c"}) ids.push_back(start_run("hello", {{"name", name}}));
  std::string other = start_run("other");
  for (const auto& id : ids) wait_final(id);
  wait_final(other);

  auto first = get("/api/v1/runs?workflow=hello&limit=2", token(Role::viewer));
  ASSERT_EQ(first.status, 200) << first;
  ASSERT_EQ(first.json["items"].size(), 2u);
  EXPECT_EQ(first.json["items"][0]["id"], ids[2]);  // newest first
  EXPECT_EQ(first.json["items"][1]["id"], ids[1]);
  ASSERT_TRUE(first.json["next_cursor"].is_string()) << first;
  auto second = get("/api/v1/runs?workflow=hello&limit=2&cursor=" + first.json["next_cursor"].get<std::string>(),
                    token(Role::viewer));
  ASSERT_EQ(second.json["items"].size(), 1u) << second;
  EXPECT_EQ(second.json["items"][0]["id"], ids[0]);
  EXPECT_TRUE(second.json["next_cursor"].is_null());

  EXPECT_EQ(get("/api/v1/runs", token(Role::viewer)).json["items"].size(), 4u);
  EXPECT_EQ(get("/api/v1/runs?state=succeeded", token(Role::viewer)).json["items"].size(), 4u);
  EXPECT_EQ(get("/api/v1/runs?state=failed", token(Role::viewer)).json["items"].size(), 0u);
  EXPECT_TRUE(is_error(get("/api/v1/runs?state=sleeping", token(Role::viewer)), 400));
  EXPECT_TRUE(is_error(get("/api/v1/runs?limit=0", token(Role::viewer)), 400));
  EXPECT_TRUE(is_error(get("/api/v1/runs?limit=1001", token(Role::viewer)), 400));
  EXPECT_TRUE(is_error(get("/api/v1/runs?limit=2x", token(Role::viewer)), 400));
}

TEST_F(ApiTest, CancelAWaitingRunThenAFinishedOne) {
  must_deploy(kSleeper);
  std::string id = start_run("sleeper");
  wait_state(id, "waiting");
  auto cancelled = post_json("/api/v1/runs/" + id + "/cancel", token(Role::editor), Json::object());
  ASSERT_EQ(cancelled.status, 202) << cancelled;
  EXPECT_EQ(cancelled.json["id"], id);
  Json run = wait_final(id);
  EXPECT_EQ(run["state"], "cancelled") << run.dump();
  EXPECT_EQ(step_of(run, "nap")["state"], "cancelled") << run.dump();
  EXPECT_TRUE(is_error(post_json("/api/v1/runs/" + id + "/cancel", admin(), Json::object()), 409,
                       "failed_precondition"));

  must_deploy(simple("quick"));
  std::string done = start_run("quick");
  wait_final(done);
  EXPECT_TRUE(is_error(call("POST", "/api/v1/runs/" + done + "/cancel", admin()), 409));
  EXPECT_TRUE(is_error(call("POST", "/api/v1/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV/cancel", admin()), 404));
}

TEST_F(ApiTest, RetryRerunsTheFailedStepOfTheSameRun) {
  LocalHttpServer upstream;
  upstream.script("GET", "/flaky", {Response::text(500, "down"), Response::json(200, {{"ok", true}})});
  must_deploy(
      "id: flaky\n"
      "inputs: { url: { type: string, required: true } }\n"
      "steps:\n"
      "  - id: first\n"
      "    uses: set\n"
      "    with: { n: 1 }\n"
      "  - id: call\n"
      "    uses: http\n"
      "    with: { url: \"{{ inputs.url }}\" }\n");
  std::string id = start_run("flaky", {{"url", upstream.url("/flaky")}});
  Json failed = wait_final(id);
  ASSERT_EQ(failed["state"], "failed") << failed.dump();
  EXPECT_FALSE(failed["error"].is_null());

  auto retried = post_json("/api/v1/runs/" + id + "/retry", token(Role::editor), Json::object());
  ASSERT_EQ(retried.status, 202) << retried;
  EXPECT_EQ(retried.json["id"], id);
  Json run = wait_final(id);
  EXPECT_EQ(run["state"], "succeeded") << run.dump();
  EXPECT_TRUE(run["error"].is_null());
  EXPECT_EQ(step_of(run, "call")["attempts"], 2) << run.dump();
  EXPECT_EQ(step_of(run, "call")["output"]["body"]["ok"], true) << run.dump();
  EXPECT_EQ(step_of(run, "first")["attempts"], 1) << run.dump();  // finished steps did not run again
  EXPECT_EQ(upstream.request_count("GET", "/flaky"), 2u);
  // The same run: no second run was created.
  EXPECT_EQ(get("/api/v1/runs?workflow=flaky", admin()).json["items"].size(), 1u);

  EXPECT_TRUE(is_error(post_json("/api/v1/runs/" + id + "/retry", admin(), Json::object()), 409,
                       "failed_precondition"));

  // /metrics: one run started and retried once (a retry is not a new run).
  const std::string text = get("/metrics", "").body;
  EXPECT_NE(text.find("herald_runs_started_total{workspace=\"acme\",workflow=\"flaky\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("herald_runs_retried_total{workspace=\"acme\",workflow=\"flaky\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("herald_runs_finished_total{workspace=\"acme\",workflow=\"flaky\",outcome=\"failed\"} 1\n"),
            std::string::npos)
      << text;
}

TEST_F(ApiTest, RetryAfterTheMissingSecretIsSetSeesIt) {
  const std::string value = "sk-live-9f8e7d6c5b4a";
  must_deploy(
      "id: needs-secret\n"
      "steps:\n"
      "  - id: use\n"
      "    uses: set\n"
      "    with: { auth: \"Bearer {{ assert(secrets.API_KEY, 'API_KEY is not set') }}\", n: 1 }\n");
  std::string id = start_run("needs-secret");
  Json failed = wait_final(id);
  ASSERT_EQ(failed["state"], "failed") << failed.dump();
  EXPECT_NE(failed.dump().find("API_KEY is not set"), std::string::npos) << failed.dump();

  put_secret("API_KEY", value);
  auto retried = call("POST", "/api/v1/runs/" + id + "/retry", admin());
  ASSERT_EQ(retried.status, 202) << retried;
  Json run = wait_final(id);
  EXPECT_EQ(run["state"], "succeeded") << run.dump();
  Json use = step_of(run, "use");
  EXPECT_EQ(use["output"]["n"], 1);
  EXPECT_TRUE(use["output"]["auth"].is_string());
  auto full = get("/api/v1/runs/" + id, admin());
  EXPECT_EQ(full.body.find(value), std::string::npos) << full;
}

// ---- events -----------------------------------------------------------------------------------

std::string on_event(const std::string& id, const std::string& trigger) {
  return "id: " + id + "\n"
         "triggers:\n"
         "  - event: " + trigger + "\n"
         "steps:\n"
         "  - id: seen\n"
         "    uses: set\n"
         "    with: { name: \"{{ trigger.name }}\", payload: \"{{ trigger.payload }}\" }\n";
}

TEST_F(ApiTest, EmittedEventsStartTheWorkflowsWhoseFiltersMatch) {
  must_deploy(on_event("on-x", "{ name: post.published, filter: 'trigger.payload.platform == \"x\"' }"));
  must_deploy(on_event("on-y", "{ name: post.published, filter: 'trigger.payload.platform == \"y\"' }"));
  must_deploy(on_event("on-any-post", "{ name: \"post.*\" }"));
  must_deploy(on_event("on-other", "{ name: comment.created }"));

  auto emitted = post_json("/api/v1/events", token(Role::editor),
                           {{"name", "post.published"}, {"payload", {{"platform", "x"}, {"id", 7}}}});
  ASSERT_EQ(emitted.status, 202) << emitted;
  EXPECT_EQ(emitted.json["accepted"], true);

  Json runs = wait_runs_of("on-x", 1);
  ASSERT_EQ(runs.size(), 1u);
  Json run = wait_final(runs[0]["id"]);
  EXPECT_EQ(run["state"], "succeeded") << run.dump();
  EXPECT_EQ(run["trigger"]["type"], "event");
  EXPECT_EQ(run["trigger"]["name"], "post.published");
  EXPECT_EQ(run["trigger"]["payload"]["platform"], "x");
  EXPECT_EQ(step_of(run, "seen")["output"]["payload"]["id"], 7) << run.dump();
  EXPECT_EQ(wait_runs_of("on-any-post", 1).size(), 1u);
  // The runs of one event are committed together: by now the others would be there.
  EXPECT_TRUE(get("/api/v1/runs?workflow=on-y", admin()).json["items"].empty());
  EXPECT_TRUE(get("/api/v1/runs?workflow=on-other", admin()).json["items"].empty());

  // Another workspace's subscriptions never see acme's events.
  must_deploy(on_event("on-any-post", "{ name: \"post.*\" }"), kGlobex);
  ASSERT_EQ(post_json("/api/v1/events", admin(), {{"name", "post.deleted"}}).status, 202);
  EXPECT_EQ(wait_runs_of("on-any-post", 2).size(), 2u);
  EXPECT_TRUE(get("/api/v1/runs", token(Role::admin, kGlobex)).json["items"].empty());
}

TEST_F(ApiTest, RunFailedEventStartsAnotherWorkflow) {
  must_deploy(
      "id: breaks\n"
      "steps:\n"
      "  - id: boom\n"
      "    uses: script\n"
      "    with: { code: 'error(\"boom\")' }\n");
  must_deploy(
      "id: alerts\n"
      "triggers:\n"
      "  - event: { name: run.failed, filter: 'trigger.payload.workflow == \"breaks\"' }\n"
      "steps:\n"
      "  - id: note\n"
      "    uses: set\n"
      "    with: { failed_run: \"{{ trigger.payload.run_id }}\" }\n");
  std::string id = start_run("breaks");
  EXPECT_EQ(wait_final(id)["state"], "failed");
  Json runs = wait_runs_of("alerts", 1);
  ASSERT_EQ(runs.size(), 1u);
  Json alert = wait_final(runs[0]["id"]);
  EXPECT_EQ(alert["state"], "succeeded") << alert.dump();
  EXPECT_EQ(step_of(alert, "note")["output"]["failed_run"], id) << alert.dump();
  // A succeeded run does not match run.failed.
  must_deploy(simple("fine"));
  wait_final(start_run("fine"));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(get("/api/v1/runs?workflow=alerts", admin()).json["items"].size(), 1u);
}

// ---- secrets ----------------------------------------------------------------------------------

TEST_F(ApiTest, SecretsAreUsedInStepsButNeverShown) {
  const std::string value = "tok-3141592653-secret";
  LocalHttpServer upstream;
  upstream.route("GET", "/whoami", [](const RecordedRequest& request) {
    return Response::json(200, {{"auth", request.header("authorization")}});
  });
  must_deploy(
      "id: uses-secret\n"
      "inputs: { url: { type: string, required: true } }\n"
      "steps:\n"
      "  - id: call\n"
      "    uses: http\n"
      "    with:\n"
      "      url: \"{{ inputs.url }}\"\n"
      "      headers: { Authorization: \"Bearer {{ secrets.API_TOKEN }}\" }\n"
      "  - id: copy\n"
      "    uses: set\n"
      "    with: { token: \"{{ secrets.API_TOKEN }}\" }\n");

  auto put = put_json("/api/v1/secrets/API_TOKEN", admin(), {{"value", value}});
  ASSERT_EQ(put.status, 204) << put;
  auto list = get("/api/v1/secrets", token(Role::editor));
  ASSERT_EQ(list.status, 200) << list;
  ASSERT_EQ(list.json["items"].size(), 1u) << list;
  EXPECT_EQ(list.json["items"][0]["name"], "API_TOKEN");
  EXPECT_EQ(list.json["items"][0]["updated_by"], "user:acme-admin");
  EXPECT_FALSE(list.json["items"][0].contains("value"));
  EXPECT_EQ(list.body.find(value), std::string::npos);

  std::string id = start_run("uses-secret", {{"url", upstream.url("/whoami")}});
  Json run = wait_final(id);
  EXPECT_EQ(run["state"], "succeeded") << run.dump();
  auto requests = upstream.requests("GET", "/whoami");
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].header("authorization"), "Bearer " + value);

  auto shown = get("/api/v1/runs/" + id, admin());
  ASSERT_EQ(shown.status, 200);
  EXPECT_EQ(shown.body.find(value), std::string::npos) << shown;
  EXPECT_TRUE(step_of(shown.json, "copy")["output"]["token"].is_string());
  auto runs = get("/api/v1/runs", admin());
  EXPECT_EQ(runs.body.find(value), std::string::npos) << runs;
  auto audit = get("/api/v1/audit?limit=1000", admin());
  ASSERT_EQ(audit.status, 200);
  EXPECT_NE(audit.body.find("secret.set"), std::string::npos);
  EXPECT_EQ(audit.body.find(value), std::string::npos) << audit;

  // A new value is used by the next run (the PUT drops the cached secrets).
  put_secret("API_TOKEN", "tok-2718281828-second");
  Json next = wait_final(start_run("uses-secret", {{"url", upstream.url("/whoami")}}));
  EXPECT_EQ(next["state"], "succeeded");
  EXPECT_EQ(upstream.requests("GET", "/whoami").back().header("authorization"), "Bearer tok-2718281828-second");

  auto removed = call("DELETE", "/api/v1/secrets/API_TOKEN", admin());
  EXPECT_EQ(removed.status, 204) << removed;
  EXPECT_TRUE(get("/api/v1/secrets", admin()).json["items"].empty());
  EXPECT_TRUE(is_error(call("DELETE", "/api/v1/secrets/API_TOKEN", admin()), 404));
  // A deleted secret is gone from the next run (a missing secret reads as nil).
  Json without = wait_final(start_run("uses-secret", {{"url", upstream.url("/whoami")}}));
  EXPECT_EQ(step_of(without, "copy")["output"]["token"], nullptr) << without.dump();
  EXPECT_EQ(upstream.requests("GET", "/whoami").back().header("authorization").find("tok-"), std::string::npos);
}

TEST_F(ApiTest, SecretNamesAndValuesAreChecked) {
  EXPECT_TRUE(is_error(put_json("/api/v1/secrets/1BAD", admin(), {{"value", "x"}}), 400, "invalid_argument"));
  EXPECT_TRUE(is_error(put_json("/api/v1/secrets/BAD-NAME", admin(), {{"value", "x"}}), 400));
  EXPECT_TRUE(is_error(put_json("/api/v1/secrets/OK", admin(), {{"value", ""}}), 400));
  EXPECT_TRUE(is_error(put_json("/api/v1/secrets/OK", admin(), Json::object()), 400));
  EXPECT_TRUE(is_error(put_json("/api/v1/secrets/OK", admin(), {{"value", 5}}), 400));
  EXPECT_TRUE(is_error(call("PUT", "/api/v1/secrets/OK", admin(), "{\"value\": \"x\"}"), 415));
  EXPECT_TRUE(get("/api/v1/secrets", admin()).json["items"].empty());
  EXPECT_TRUE(is_error(put_json("/api/v1/secrets/OK", token(Role::editor), {{"value", "x"}}), 403, "permission_denied"));
}

TEST_F(ApiTest, SecretsWithoutAMasterKeyAre409) {
  stop_service();
  const std::string name(security::kMasterKeyEnv);
  std::string saved = std::getenv(name.c_str());
  ::unsetenv(name.c_str());
  TempDir other("herald-api-nokey");
  auto o = options();
  o.data_dir = other.path();  // no master.key there
  start_service(o);
  auto reply = put_json("/api/v1/secrets/X", admin(), {{"value", "v"}});
  ::setenv(name.c_str(), saved.c_str(), 1);
  EXPECT_TRUE(is_error(reply, 409, "failed_precondition"));
  EXPECT_EQ(get("/api/v1/secrets", admin()).status, 200);
}

// ---- tokens -----------------------------------------------------------------------------------

TEST_F(ApiTest, TokensCreateListRevoke) {
  auto created = post_json("/api/v1/tokens", admin(), {{"user", "acme-editor"}, {"name", "ci deploys"}});
  ASSERT_EQ(created.status, 201) << created;
  std::string secret = created.json["token"];
  std::string id = created.json["id"];
  EXPECT_EQ(created.json["role"], "editor");  // the member's role by default
  EXPECT_EQ(created.json["user"], "acme-editor");
  EXPECT_EQ(created.json["workspace"], "acme");
  EXPECT_EQ(created.json["revoked"], false);
  EXPECT_FALSE(created.json.contains("hash"));

  auto me = get("/api/v1/me", secret);
  ASSERT_EQ(me.status, 200) << me;
  EXPECT_EQ(me.json["user"], "acme-editor");
  EXPECT_EQ(me.json["role"], "editor");
  EXPECT_EQ(me.json["workspace"], "acme");
  EXPECT_EQ(me.json["token"], id);
  std::set<std::string> permissions(me.json["permissions"].begin(), me.json["permissions"].end());
  EXPECT_TRUE(permissions.count("workflows.write"));
  EXPECT_FALSE(permissions.count("secrets.write"));

  auto list = get("/api/v1/tokens", admin());
  ASSERT_EQ(list.status, 200) << list;
  bool listed = false;
  for (const auto& item : list.json["items"]) {
    EXPECT_FALSE(item.contains("token"));
    EXPECT_FALSE(item.contains("hash"));
    if (item["id"] == id) {
      listed = true;
      EXPECT_EQ(item["name"], "ci deploys");
    }
  }
  EXPECT_TRUE(listed) << list;
  EXPECT_EQ(list.body.find(secret), std::string::npos);

  // Revoked: refused at once, although the token was just cached.
  auto revoked = call("DELETE", "/api/v1/tokens/" + id, admin());
  EXPECT_EQ(revoked.status, 204) << revoked;
  EXPECT_TRUE(is_error(get("/api/v1/me", secret), 401, "unauthenticated"));
  auto after_revoke = get("/api/v1/tokens", admin());
  bool marked = false;
  for (const auto& item : after_revoke.json["items"]) {
    if (item["id"] == id) marked = item["revoked"] == true && item["revoked_at"].is_string();
  }
  EXPECT_TRUE(marked) << after_revoke;
  EXPECT_TRUE(is_error(call("DELETE", "/api/v1/tokens/notatokenid00000", admin()), 404));

  // An admin's token may have a narrower role, and an expiry; no token is wider than its member.
  auto viewer = post_json("/api/v1/tokens", admin(), {{"user", "acme-admin"}, {"role", "viewer"}, {"expires_in", "1h"}});
  ASSERT_EQ(viewer.status, 201) << viewer;
  EXPECT_EQ(viewer.json["role"], "viewer");
  EXPECT_TRUE(viewer.json["expires_at"].is_string());
  EXPECT_EQ(get("/api/v1/me", viewer.json["token"].get<std::string>()).json["role"], "viewer");
  EXPECT_TRUE(is_error(post_json("/api/v1/tokens", admin(), {{"user", "acme-editor"}, {"role", "admin"}}), 403));
  EXPECT_TRUE(is_error(post_json("/api/v1/tokens", admin(), {{"user", "nobody"}}), 404, "not_found"));
  EXPECT_TRUE(is_error(post_json("/api/v1/tokens", admin(), {{"user", "acme-editor"}, {"role", "boss"}}), 400));
  EXPECT_TRUE(is_error(post_json("/api/v1/tokens", admin(), {{"user", "acme-editor"}, {"expires_in", "soon"}}), 400));
  EXPECT_TRUE(is_error(post_json("/api/v1/tokens", admin(), Json::object()), 400));
}

// ---- users ------------------------------------------------------------------------------------

TEST_F(ApiTest, UsersPutListDelete) {
  auto put = put_json("/api/v1/users/newbie", admin(), {{"role", "viewer"}, {"name", "New Bie"}, {"email", "nb@example.com"}});
  ASSERT_EQ(put.status, 200) << put;
  EXPECT_EQ(put.json["user"], "newbie");
  EXPECT_EQ(put.json["role"], "viewer");

  auto list = get("/api/v1/users", admin());
  ASSERT_EQ(list.status, 200) << list;
  Json found;
  for (const auto& item : list.json["items"]) {
    if (item["user"] == "newbie") found = item;
  }
  ASSERT_TRUE(found.is_object()) << list;
  EXPECT_EQ(found["role"], "viewer");
  EXPECT_EQ(found["name"], "New Bie");
  EXPECT_EQ(found["email"], "nb@example.com");
  EXPECT_EQ(list.json["items"].size(), 6u);  // five seeded members and newbie

  auto promoted = put_json("/api/v1/users/newbie", admin(), {{"role", "Editor"}});
  ASSERT_EQ(promoted.status, 200) << promoted;
  EXPECT_EQ(promoted.json["role"], "editor");

  auto made = post_json("/api/v1/tokens", admin(), {{"user", "newbie"}});
  ASSERT_EQ(made.status, 201) << made;
  std::string newbie_token = made.json["token"];
  EXPECT_EQ(get("/api/v1/me", newbie_token).status, 200);

  auto removed = call("DELETE", "/api/v1/users/newbie", admin());
  EXPECT_EQ(removed.status, 204) << removed;
  EXPECT_TRUE(is_error(get("/api/v1/me", newbie_token), 401));  // their tokens are revoked
  EXPECT_TRUE(is_error(call("DELETE", "/api/v1/users/newbie", admin()), 404));
  EXPECT_TRUE(is_error(call("DELETE", "/api/v1/users/acme-admin", admin()), 409));  // yourself
  EXPECT_TRUE(is_error(put_json("/api/v1/users/x", admin(), {{"role", "owner"}}), 400));
  EXPECT_TRUE(is_error(put_json("/api/v1/users/x", admin(), {{"name", "no role"}}), 400));
  EXPECT_TRUE(is_error(put_json("/api/v1/users/Not%20A%20Slug", admin(), {{"role", "viewer"}}), 400));
}

TEST_F(ApiTest, UsersOfAnotherWorkspaceStayHidden) {
  // Users are global. Globex has a member with a name and an email...
  ASSERT_EQ(put_json("/api/v1/users/bob", token(Role::admin, kGlobex),
                     {{"role", "viewer"}, {"name", "Bob Globex"}, {"email", "bob@globex.example"}})
                .status,
            200);
  // ...whom acme's listing does not show,
  auto listed = get("/api/v1/users", admin());
  ASSERT_EQ(listed.status, 200) << listed;
  for (const auto& item : listed.json["items"]) EXPECT_NE(item["user"], "bob") << listed;
  EXPECT_EQ(listed.body.find("Bob Globex"), std::string::npos) << listed;
  EXPECT_EQ(listed.body.find("globex"), std::string::npos) << listed;  // no globex member at all
  // and whom acme's admin cannot add to acme through the API: that would show acme Bob's
  // name and email from globex. The refusal names neither.
  auto taken = put_json("/api/v1/users/bob", admin(), {{"role", "viewer"}, {"name", "Bob Acme"}});
  EXPECT_TRUE(is_error(taken, 409, "already_exists"));
  EXPECT_EQ(taken.body.find("Bob Globex"), std::string::npos) << taken;
  EXPECT_EQ(taken.body.find("bob@globex.example"), std::string::npos) << taken;
  for (const auto& other : {std::string("globex-admin"), std::string("globex-viewer")}) {
    EXPECT_TRUE(is_error(put_json("/api/v1/users/" + other, admin(), {{"role", "viewer"}}), 409)) << other;
  }
  listed = get("/api/v1/users", admin());
  EXPECT_EQ(listed.body.find("Bob Globex"), std::string::npos) << listed;
  EXPECT_EQ(listed.body.find("bob@globex.example"), std::string::npos) << listed;
  // Nothing else of acme's shows globex's people either.
  for (const auto& path : {"/api/v1/tokens", "/api/v1/audit?limit=1000", "/api/v1/me"}) {
    auto reply = get(path, admin());
    ASSERT_EQ(reply.status, 200) << path << ": " << reply;
    EXPECT_EQ(reply.body.find("Bob Globex"), std::string::npos) << path << ": " << reply;
    EXPECT_EQ(reply.body.find("bob@globex.example"), std::string::npos) << path << ": " << reply;
    EXPECT_EQ(reply.body.find("globex-"), std::string::npos) << path << ": " << reply;
  }

  // An operator may still add globex's Bob to acme (herald user add, as the CLI does).
  auto store = open_store();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(server::put_member(*store, kAcme, "bob", Role::viewer, "", "", server::Actor::cli(kAcme)).ok());
  listed = get("/api/v1/users", admin());
  EXPECT_NE(listed.body.find("Bob Globex"), std::string::npos) << listed;

  // A member removed from acme may be added back: acme had them, their profile is no news.
  ASSERT_EQ(put_json("/api/v1/users/carol", admin(), {{"role", "viewer"}, {"name", "Carol"}}).status, 200);
  ASSERT_EQ(call("DELETE", "/api/v1/users/carol", admin()).status, 204);
  auto back = put_json("/api/v1/users/carol", admin(), {{"role", "editor"}});
  EXPECT_EQ(back.status, 200) << back;
  // But globex, which never had carol, may not.
  EXPECT_TRUE(is_error(put_json("/api/v1/users/carol", token(Role::admin, kGlobex), {{"role", "viewer"}}), 409));
}

TEST_F(ApiTest, ChangingAMembersRoleLimitsTheirTokens) {
  // A token never grants more than its user has: after a demotion, the editor's token may no
  // longer deploy (at once, although it was just used and cached).
  const std::string& editor = token(Role::editor);
  ASSERT_EQ(deploy(editor, simple("before-demotion")).status, 201);
  auto demoted = put_json("/api/v1/users/acme-editor", admin(), {{"role", "viewer"}});
  ASSERT_EQ(demoted.status, 200) << demoted;
  auto after = deploy(editor, simple("after-demotion"));
  EXPECT_TRUE(after.status == 401 || after.status == 403) << after;
  EXPECT_TRUE(is_error(after, after.status));
  EXPECT_TRUE(is_error(get("/api/v1/workflows/after-demotion", admin()), 404));
  // New tokens get the new role.
  auto fresh = post_json("/api/v1/tokens", admin(), {{"user", "acme-editor"}});
  ASSERT_EQ(fresh.status, 201) << fresh;
  EXPECT_EQ(fresh.json["role"], "viewer");
  EXPECT_TRUE(is_error(deploy(fresh.json["token"].get<std::string>(), simple("still-not")), 403));

  // An admin demoted to editor keeps no admin token.
  ASSERT_EQ(put_json("/api/v1/users/acme-promoted", admin(), {{"role", "admin"}}).status, 200);
  auto admin_token = post_json("/api/v1/tokens", admin(), {{"user", "acme-promoted"}});
  ASSERT_EQ(admin_token.status, 201);
  const std::string promoted = admin_token.json["token"];
  ASSERT_EQ(get("/api/v1/audit", promoted).status, 200);
  ASSERT_EQ(put_json("/api/v1/users/acme-promoted", admin(), {{"role", "editor"}}).status, 200);
  auto audit = get("/api/v1/audit", promoted);
  EXPECT_TRUE(audit.status == 401 || audit.status == 403) << audit;
  // A promotion takes nothing away.
  ASSERT_EQ(put_json("/api/v1/users/acme-viewer", admin(), {{"role", "editor"}}).status, 200);
  EXPECT_EQ(get("/api/v1/workflows", token(Role::viewer)).status, 200);
}

TEST_F(ApiTest, ConcurrentDeploysAllReachTheTriggerIndex) {
  // Each deploy rebuilds the webhook index; deploys racing each other must not leave a stale one.
  constexpr int kThreads = 6;
  constexpr int kPerThread = 4;
  std::vector<std::thread> threads;
  std::atomic<int> created{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string id = "race-" + std::to_string(t) + "-" + std::to_string(i);
        if (deploy(admin(), simple(id, "triggers:\n  - webhook: { path: " + id + " }\n")).status == 201) ++created;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(created.load(), kThreads * kPerThread);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      std::string id = "race-" + std::to_string(t) + "-" + std::to_string(i);
      EXPECT_EQ(call("POST", "/hooks/acme/" + id, "", "{}", "application/json").status, 202) << id;
    }
  }

  // Workflows racing for one path: exactly one gets it.
  std::vector<int> statuses(kThreads);
  threads.clear();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string id = "same-path-" + std::to_string(t);
      statuses[t] = deploy(admin(), simple(id, "triggers:\n  - webhook: { path: contested }\n")).status;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 201), 1);
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 409), kThreads - 1);
}

TEST_F(ApiTest, DeploysOfTwoServicesDoNotWaitForEachOther) {
  // A second service in this process, on a store of its own, with an admin token.
  TempDir other_dir{"herald-api-other"};
  std::string other_token;
  {
    auto opened = store::open_store("sqlite:" + (other_dir / "herald.db").string());
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    auto& other_store = **opened;
    auto actor = server::Actor::cli("solo");
    ASSERT_TRUE(server::create_workspace(other_store, "solo", "solo", actor).ok());
    ASSERT_TRUE(server::put_member(other_store, "solo", "solo-admin", Role::admin, "", "", actor).ok());
    auto made = server::create_token(other_store, "solo", "solo-admin", Role::admin, "test", std::nullopt, actor);
    ASSERT_TRUE(made.ok()) << made.error().message;
    other_token = made->token;
  }
  server::ServiceOptions other_options = options();
  other_options.store_url = "sqlite:" + (other_dir / "herald.db").string();
  other_options.data_dir = other_dir.path();
  server::Service other(std::move(other_options));
  ASSERT_TRUE(other.start().ok());
  auto other_deploy = [&](const std::string& id) {
    return http_call("POST", "http://127.0.0.1:" + std::to_string(other.port()) + "/api/v1/workflows",
                     {{"Authorization", "Bearer " + other_token}, {"Content-Type", "application/yaml"}},
                     simple(id), 10s);
  };
  ASSERT_EQ(other_deploy("warm-up").status, 201);
  ASSERT_EQ(get("/api/v1/workflows", admin()).status, 200);  // the admin token is cached now

  // Hold this service's store write lock: a deploy here waits in the store, inside its service's
  // deployments lock, until the lock is released or the store's busy timeout (5 s) gives up.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "herald.db").string().c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  ASSERT_EQ(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  auto stuck = std::async(std::launch::async, [&] { return deploy(admin(), simple("stuck")); });
  std::this_thread::sleep_for(200ms);  // a head start into the deployments lock, not a check

  // The other service deploys meanwhile. Were the lock one for the process, this deploy would
  // wait until the stuck one gave up, which then answers 503 instead of 201.
  EXPECT_EQ(other_deploy("free").status, 201);
  ASSERT_EQ(sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto stuck_reply = stuck.get();
  EXPECT_EQ(stuck_reply.status, 201) << stuck_reply;
  other.stop();
}

// ---- audit ------------------------------------------------------------------------------------

TEST_F(ApiTest, AuditListsMutationsWithActorAndAddress) {
  auto deployed = call("POST", "/api/v1/workflows", admin(), kHello, "application/yaml", {{"X-Request-Id", "audit-req-1"}});
  ASSERT_EQ(deployed.status, 201) << deployed;
  EXPECT_EQ(deployed.header("x-request-id"), "audit-req-1");
  ASSERT_EQ(post_json("/api/v1/workflows/hello/disable", admin(), Json::object()).status, 200);
  ASSERT_EQ(post_json("/api/v1/workflows/hello/enable", admin(), Json::object()).status, 200);
  std::string run = start_run("hello", {{"name", "Ada"}});
  wait_final(run);
  put_secret("AUDITED", "audit-secret-value");
  ASSERT_EQ(post_json("/api/v1/events", admin(), {{"name", "thing.happened"}}).status, 202);
  auto made = post_json("/api/v1/tokens", admin(), {{"user", "acme-viewer"}});
  ASSERT_EQ(made.status, 201);
  ASSERT_EQ(call("DELETE", "/api/v1/tokens/" + made.json["id"].get<std::string>(), admin()).status, 204);
  ASSERT_EQ(put_json("/api/v1/users/audited", admin(), {{"role", "viewer"}}).status, 200);
  ASSERT_EQ(call("DELETE", "/api/v1/users/audited", admin()).status, 204);
  ASSERT_EQ(call("DELETE", "/api/v1/secrets/AUDITED", admin()).status, 204);
  ASSERT_EQ(call("DELETE", "/api/v1/workflows/hello", admin()).status, 204);

  auto audit = get("/api/v1/audit?limit=1000", admin());
  ASSERT_EQ(audit.status, 200) << audit;
  std::map<std::string, Json> by_action;
  std::vector<int64_t> ids;
  for (const auto& entry : audit.json["items"]) {
    ids.push_back(entry["id"]);
    if (entry["actor"] == "cli") continue;  // the seeding
    EXPECT_EQ(entry["actor"], "user:acme-admin") << entry.dump();
    EXPECT_EQ(entry["address"], "127.0.0.1") << entry.dump();
    EXPECT_FALSE(entry["request_id"].get<std::string>().empty()) << entry.dump();
    if (!by_action.count(entry["action"])) by_action[entry["action"]] = entry;
  }
  EXPECT_TRUE(std::is_sorted(ids.rbegin(), ids.rend()));  // newest first
  for (const char* action : {"workflow.deploy", "workflow.disable", "workflow.enable", "workflow.delete", "run.start",
                             "secret.set", "secret.delete", "event.emit", "token.create", "token.revoke", "user.put",
                             "user.remove"}) {
    EXPECT_TRUE(by_action.count(action)) << action << " missing from " << audit;
  }
  EXPECT_EQ(by_action["workflow.deploy"]["request_id"], "audit-req-1");
  EXPECT_EQ(by_action["workflow.deploy"]["object_id"], "hello");
  EXPECT_EQ(by_action["run.start"]["object_id"], run);
  EXPECT_EQ(by_action["secret.set"]["object_id"], "AUDITED");
  EXPECT_EQ(audit.body.find("audit-secret-value"), std::string::npos);

  auto deploys = get("/api/v1/audit?action=workflow.deploy", admin());
  ASSERT_EQ(deploys.json["items"].size(), 1u) << deploys;
  auto page = get("/api/v1/audit?limit=2", admin());
  ASSERT_EQ(page.json["items"].size(), 2u);
  ASSERT_TRUE(page.json["next_cursor"].is_string()) << page;
  auto next = get("/api/v1/audit?limit=2&cursor=" + page.json["next_cursor"].get<std::string>(), admin());
  ASSERT_EQ(next.json["items"].size(), 2u) << next;
  EXPECT_LT(next.json["items"][0]["id"].get<int64_t>(), page.json["items"][1]["id"].get<int64_t>());
  EXPECT_TRUE(is_error(get("/api/v1/audit?cursor=abc", admin()), 400));

  // Globex's audit log shows none of it.
  auto other = get("/api/v1/audit?limit=1000", token(Role::admin, kGlobex));
  ASSERT_EQ(other.status, 200);
  for (const auto& entry : other.json["items"]) EXPECT_EQ(entry["actor"], "cli") << entry.dump();
}

// ---- health, metrics, OpenAPI -----------------------------------------------------------------

TEST_F(ApiTest, HealthReadinessMetricsAndOpenApi) {
  auto health = get("/healthz", "");
  ASSERT_EQ(health.status, 200) << health;
  EXPECT_EQ(health.json["status"], "ok");
  auto ready = get("/readyz", "");
  ASSERT_EQ(ready.status, 200) << ready;
  EXPECT_EQ(ready.json["status"], "ready");

  must_deploy(kHello);
  must_deploy(kSleeper);
  wait_final(start_run("hello", {{"name", "metrics"}}));
  std::string sleeping = start_run("sleeper");
  wait_state(sleeping, "waiting");

  auto metrics = get("/metrics", "");
  ASSERT_EQ(metrics.status, 200) << metrics;
  EXPECT_EQ(metrics.header("content-type").rfind("text/plain", 0), 0u) << metrics.header("content-type");
  const std::string& text = metrics.body;
  EXPECT_NE(text.find("herald_runs_started_total{workspace=\"acme\",workflow=\"hello\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("herald_runs_finished_total{workspace=\"acme\",workflow=\"hello\",outcome=\"succeeded\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("herald_http_requests_total{"), std::string::npos) << text;
  EXPECT_NE(text.find("route=\"/api/v1/workflows/{id}/runs\""), std::string::npos) << text;
  EXPECT_NE(text.find("herald_step_duration_seconds_bucket{step_type=\"set\""), std::string::npos) << text;
  EXPECT_NE(text.find("herald_waiting_runs 1"), std::string::npos) << text;

  auto doc = get("/api/v1/openapi.json", "");
  ASSERT_EQ(doc.status, 200) << doc;
  ASSERT_TRUE(doc.json.is_object()) << doc.body.substr(0, 200);
  EXPECT_TRUE(doc.json["openapi"].get<std::string>().rfind("3.", 0) == 0);
  EXPECT_TRUE(doc.json["paths"].contains("/api/v1/workflows"));
}

}  // namespace
}  // namespace herald::testing
