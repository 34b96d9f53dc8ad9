// The REST API's 4xx answers: 401 for every way a token can be wrong, 403, 404 (another
// workspace's objects look exactly like missing ones), 405, 409, 413, 415, 400, 422 and 429 — each
// with the error body {"error": {"code", "message", "request_id"}}.
#include <gtest/gtest.h>

#include <string>

#include "engine/security/tokens.h"
#include "tests/support/api_fixture.h"

namespace herald::testing {
namespace {

using security::Role;

std::string simple(const std::string& id, const std::string& extra = "") {
  return "id: " + id + "\n" + extra +
         "steps:\n"
         "  - id: only\n"
         "    uses: set\n"
         "    with: { ok: true }\n";
}

TEST_F(ApiTest, UnauthenticatedRequestsAre401) {
  const std::string path = "/api/v1/workflows";
  EXPECT_TRUE(is_error(call("GET", path), 401, "unauthenticated"));
  EXPECT_TRUE(is_error(call("GET", path, "", "", "", {{"Authorization", "Basic YWRtaW46YWRtaW4="}}), 401));
  EXPECT_TRUE(is_error(call("GET", path, "", "", "", {{"Authorization", "Bearer"}}), 401));
  EXPECT_TRUE(is_error(call("GET", path, "", "", "", {{"Authorization", "Bearer "}}), 401));
  EXPECT_TRUE(is_error(call("GET", path, "not-a-token"), 401, "unauthenticated"));
  // Well formed, never issued.
  auto unknown = security::generate_token();
  ASSERT_TRUE(unknown.ok());
  EXPECT_TRUE(is_error(call("GET", path, unknown->token), 401, "unauthenticated"));
  // A real token id with the wrong secret.
  std::string forged = admin();
  forged.back() = forged.back() == 'a' ? 'b' : 'a';
  EXPECT_TRUE(is_error(call("GET", path, forged), 401, "unauthenticated"));
  // The message never repeats what was presented.
  auto reply = call("GET", path, forged);
  EXPECT_EQ(reply.body.find(forged), std::string::npos) << reply;

  // Revoked.
  std::string viewer = token(Role::viewer);
  ASSERT_EQ(get(path, viewer).status, 200);
  ASSERT_EQ(call("DELETE", "/api/v1/tokens/" + token_ids_[kAcme][Role::viewer], admin()).status, 204);
  EXPECT_TRUE(is_error(get(path, viewer), 401, "unauthenticated"));

  // Expired.
  auto store = open_store();
  ASSERT_TRUE(store);
  auto expired = server::create_token(*store, kAcme, "acme-editor", std::nullopt, "old",
                                      std::chrono::system_clock::now() - std::chrono::seconds(1),
                                      server::Actor::cli(kAcme));
  ASSERT_TRUE(expired.ok()) << expired.error().message;
  EXPECT_TRUE(is_error(get(path, expired->token), 401, "unauthenticated"));

  // Public routes need no token.
  EXPECT_EQ(call("GET", "/healthz").status, 200);
  EXPECT_EQ(call("GET", "/api/v1/openapi.json").status, 200);
}

TEST_F(ApiTest, ForbiddenIs403) {
  auto reply = deploy(token(Role::viewer), simple("nope"));
  ASSERT_TRUE(is_error(reply, 403, "permission_denied"));
  EXPECT_NE(reply.json["error"]["message"].get<std::string>().find("workflows.write"), std::string::npos) << reply;
  EXPECT_TRUE(is_error(get("/api/v1/workflows/nope", admin()), 404));  // nothing deployed
  EXPECT_TRUE(is_error(get("/api/v1/audit", token(Role::editor)), 403));
  EXPECT_TRUE(is_error(get("/api/v1/workflows", token(Role::influencer)), 403));
}

TEST_F(ApiTest, UnknownAndOtherWorkspacesObjectsAre404) {
  must_deploy(simple("mine", "triggers:\n  - webhook: { path: mine }\n"));
  auto run = post_json("/api/v1/workflows/mine/runs", admin(), Json::object());
  ASSERT_EQ(run.status, 201) << run;
  std::string run_id = run.json["id"];
  put_secret("MINE", "value");
  const std::string& globex = token(Role::admin, kGlobex);
  const std::string acme_token_id = token_ids_[kAcme][Role::viewer];

  struct Case {
    std::string method, path;
  };
  const std::vector<Case> cases = {
      {"GET", "/api/v1/workflows/mine"},          {"GET", "/api/v1/workflows/mine/versions"},
      {"POST", "/api/v1/workflows/mine/enable"},  {"POST", "/api/v1/workflows/mine/disable"},
      {"POST", "/api/v1/workflows/mine/runs"},    {"DELETE", "/api/v1/workflows/mine"},
      {"GET", "/api/v1/runs/" + run_id},          {"POST", "/api/v1/runs/" + run_id + "/cancel"},
      {"POST", "/api/v1/runs/" + run_id + "/retry"}, {"DELETE", "/api/v1/secrets/MINE"},
      {"DELETE", "/api/v1/tokens/" + acme_token_id}, {"DELETE", "/api/v1/users/acme-viewer"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.method + " " + c.path);
    auto foreign = call(c.method, c.path, globex);
    EXPECT_TRUE(is_error(foreign, 404, "not_found"));
    // Exactly what a missing object gives (apart from the id in the message).
    std::string missing_path = c.path;
    for (const std::string& id : {std::string("mine"), run_id, std::string("MINE"), acme_token_id,
                                  std::string("acme-viewer")}) {
      auto at = missing_path.find(id);
      if (at != std::string::npos) missing_path.replace(at, id.size(), id == run_id ? "01ARZ3NDEKTSV4RRFFQ69G5FAV" : "zzz");
    }
    EXPECT_TRUE(is_error(call(c.method, missing_path, admin()), 404, "not_found")) << missing_path;
  }
  // Nothing changed in acme.
  EXPECT_EQ(get("/api/v1/workflows/mine", admin()).json["enabled"], true);
  EXPECT_EQ(get("/api/v1/secrets", admin()).json["items"].size(), 1u);
  EXPECT_EQ(get("/api/v1/me", token(Role::viewer)).status, 200);
  EXPECT_EQ(call("POST", "/hooks/acme/mine", "", "{}", "application/json").status, 202);
  EXPECT_TRUE(is_error(call("POST", "/hooks/globex/mine", "", "{}", "application/json"), 404));

  // Unknown routes: 404 with the same body; a known path with another method: 405 with Allow.
  EXPECT_TRUE(is_error(get("/api/v1/nothing-here", admin()), 404));
  auto wrong_method = call("PATCH", "/api/v1/workflows/mine", admin());
  EXPECT_TRUE(is_error(wrong_method, 405));
  EXPECT_NE(wrong_method.header("allow").find("GET"), std::string::npos) << wrong_method.header("allow");
}

TEST_F(ApiTest, ConflictsAre409) {
  must_deploy(simple("first", "triggers:\n  - webhook: { path: shared }\n"));
  auto taken = deploy(admin(), simple("second", "triggers:\n  - webhook: { path: shared }\n"));
  EXPECT_TRUE(is_error(taken, 409, "already_exists"));
  // The same path in another workspace is fine.
  EXPECT_EQ(deploy(token(Role::admin, kGlobex), simple("second", "triggers:\n  - webhook: { path: shared }\n")).status,
            201);

  // A disabled workflow keeps its path: otherwise enabling it again would put two workflows on
  // one path, and the webhook would silently start only one of them.
  ASSERT_EQ(post_json("/api/v1/workflows/first/disable", admin(), Json::object()).status, 200);
  EXPECT_TRUE(is_error(deploy(admin(), simple("second", "triggers:\n  - webhook: { path: shared }\n")), 409));
  ASSERT_EQ(post_json("/api/v1/workflows/first/enable", admin(), Json::object()).status, 200);
  auto hook = call("POST", "/hooks/acme/shared", "", "{}", "application/json");
  ASSERT_EQ(hook.status, 202) << hook;
  EXPECT_EQ(hook.json["workflow"], "first");
}

TEST_F(ApiTest, BodiesOverTheLimitAre413) {
  std::string big(70 * 1024, 'x');
  std::string yaml = simple("large", "description: \"" + big + "\"\n");
  EXPECT_TRUE(is_error(deploy(admin(), yaml), 413));
  Json event = {{"name", "big"}, {"payload", {{"blob", big}}}};
  EXPECT_TRUE(is_error(post_json("/api/v1/events", admin(), event), 413));
  EXPECT_TRUE(is_error(call("POST", "/api/v1/workflows/validate", admin(), yaml, "application/yaml"), 413));
  EXPECT_TRUE(get("/api/v1/workflows", admin()).json["items"].empty());
  // Just under the limit is fine.
  std::string fits = simple("large", "description: \"" + std::string(60 * 1024, 'x') + "\"\n");
  EXPECT_EQ(deploy(admin(), fits).status, 201);
}

TEST_F(ApiTest, WrongContentTypesAre415) {
  must_deploy(simple("plain"));
  EXPECT_TRUE(is_error(call("POST", "/api/v1/workflows", admin(), simple("x"), "text/plain"), 415));
  EXPECT_TRUE(is_error(call("POST", "/api/v1/workflows", admin(), simple("x")), 415));
  EXPECT_TRUE(is_error(call("POST", "/api/v1/workflows/validate", admin(), simple("x"), "text/plain"), 415));
  const std::string json = "{\"name\": \"x\"}";
  EXPECT_TRUE(is_error(call("POST", "/api/v1/events", admin(), json), 415));
  EXPECT_TRUE(is_error(call("POST", "/api/v1/events", admin(), json, "text/plain"), 415));
  EXPECT_TRUE(is_error(call("POST", "/api/v1/workflows/plain/runs", admin(), "{}"), 415));
  EXPECT_TRUE(is_error(call("PUT", "/api/v1/secrets/X", admin(), "{\"value\": \"v\"}"), 415));
  EXPECT_TRUE(is_error(call("POST", "/api/v1/tokens", admin(), "{\"user\": \"acme-viewer\"}"), 415));
  EXPECT_TRUE(is_error(call("PUT", "/api/v1/users/someone", admin(), "{\"role\": \"viewer\"}"), 415));
  // Parameters after the media type are fine.
  EXPECT_EQ(call("POST", "/api/v1/events", admin(), json, "application/json; charset=utf-8").status, 202);
}

TEST_F(ApiTest, MalformedJsonIs400) {
  must_deploy(simple("plain"));
  EXPECT_TRUE(is_error(call("POST", "/api/v1/events", admin(), "{\"name\": ", "application/json"), 400, "invalid_argument"));
  EXPECT_TRUE(is_error(call("POST", "/api/v1/events", admin(), "[1, 2]", "application/json"), 400));
  EXPECT_TRUE(is_error(call("POST", "/api/v1/events", admin(), "", "application/json"), 400));
  EXPECT_TRUE(is_error(post_json("/api/v1/events", admin(), {{"name", 5}}), 400));
  EXPECT_TRUE(is_error(post_json("/api/v1/events", admin(), {{"name", "run.failed"}}), 400));  // Herald's own
  EXPECT_TRUE(is_error(post_json("/api/v1/events", admin(), {{"name", ""}}), 400));
  EXPECT_TRUE(is_error(call("POST", "/api/v1/workflows/plain/runs", admin(), "{inputs}", "application/json"), 400));
  EXPECT_TRUE(is_error(call("PUT", "/api/v1/secrets/X", admin(), "nope", "application/json"), 400));
  EXPECT_TRUE(is_error(call("POST", "/api/v1/tokens", admin(), "{", "application/json"), 400));
  EXPECT_TRUE(is_error(call("PUT", "/api/v1/users/u", admin(), "\"viewer\"", "application/json"), 400));
  // A deployed JSON workflow that is not JSON is a workflow error (422), not a body error.
  auto reply = call("POST", "/api/v1/workflows", admin(), "{\"id\": ", "application/json");
  EXPECT_TRUE(reply.status == 422 || reply.status == 400) << reply;
  EXPECT_TRUE(is_error(reply, reply.status));
}

TEST_F(ApiTest, AMalformedSecretIsNotQuotedBack) {
  const std::string value = "s3cr3t-0123456789";
  for (const std::string& body : {"{\"value\": \"" + value, "{\"value\": " + value + "}"}) {
    auto reply = call("PUT", "/api/v1/secrets/X", admin(), body, "application/json");
    EXPECT_TRUE(is_error(reply, 400, "invalid_argument"));
    EXPECT_EQ(reply.body.find("s3cr3t"), std::string::npos) << reply;
    // Still says where the mistake is.
    EXPECT_NE(reply.body.find("column"), std::string::npos) << reply;
  }
}

TEST_F(ApiTest, InvalidWorkflowsAre422WithPlaces) {
  const std::string source =
      "id: Bad Id\n"
      "steps:\n"
      "  - id: a\n"
      "    uses: scirpt\n"
      "    with: { code: 'return 1' }\n"
      "  - id: b\n"
      "    uses: set\n"
      "    when: 'this is not lua'\n";
  auto reply = deploy(admin(), source);
  ASSERT_TRUE(is_error(reply, 422, "invalid_argument"));
  const Json& errors = reply.json["error"]["details"]["errors"];
  ASSERT_GE(errors.size(), 3u) << reply;
  for (const auto& error : errors) {
    EXPECT_GT(error["line"].get<int>(), 0) << error.dump();
    EXPECT_GT(error["column"].get<int>(), 0) << error.dump();
    EXPECT_FALSE(error["message"].get<std::string>().empty());
  }
  EXPECT_EQ(errors[0]["line"], 1);
  EXPECT_FALSE(reply.json["error"]["details"].contains("http_status"));

  // Trigger checks too: an unknown respond step, a bad webhook path, a bad event filter.
  const std::string triggers =
      "id: bad-triggers\n"
      "triggers:\n"
      "  - webhook: { path: \"no/slashes\", respond: { step: missing } }\n"
      "  - event: { name: x, filter: 'not lua at all (' }\n"
      "steps:\n"
      "  - id: a\n"
      "    uses: set\n"
      "    with: { ok: true }\n";
  auto bad_triggers = deploy(admin(), triggers);
  ASSERT_TRUE(is_error(bad_triggers, 422));
  const Json& trigger_errors = bad_triggers.json["error"]["details"]["errors"];
  ASSERT_EQ(trigger_errors.size(), 3u) << bad_triggers;
  EXPECT_EQ(trigger_errors[0]["line"], 3);
  EXPECT_EQ(trigger_errors[2]["line"], 4);
  EXPECT_TRUE(get("/api/v1/workflows", admin()).json["items"].empty());
}

TEST_F(ApiTest, TooManyRequestsAre429WithRetryAfter) {
  stop_service();
  auto o = options();
  // A burst of 5, refilled at one per second: slow enough that even a sanitizer build reaches
  // the limit within the loop below.
  o.api_rate_per_second = 1;
  o.api_burst = 5;
  start_service(o);
  const std::string& viewer = token(Role::viewer);
  int ok = 0;
  ApiReply limited;
  for (int i = 0; i < 20; ++i) {
    auto reply = get("/api/v1/workflows", viewer);
    if (reply.status == 200) {
      ++ok;
    } else {
      limited = reply;
      break;
    }
  }
  EXPECT_GE(ok, 5);
  EXPECT_LE(ok, 6);  // the burst, and what refilled meanwhile
  ASSERT_TRUE(is_error(limited, 429, "resource_exhausted"));
  std::string retry_after = limited.header("retry-after");
  ASSERT_FALSE(retry_after.empty()) << limited;
  EXPECT_GE(std::stoi(retry_after), 1);
  // Retry-After is sent once.
  std::string raw = raw_exchange(port_, "GET /api/v1/workflows HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + viewer +
                                            "\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(raw.rfind("HTTP/1.1 429", 0), 0u) << raw;
  size_t count = 0;
  std::string lower = raw;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (size_t at = lower.find("\r\nretry-after:"); at != std::string::npos; at = lower.find("\r\nretry-after:", at + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 1u) << raw;

  // Per token: another token is not limited.
  EXPECT_EQ(get("/api/v1/workflows", token(Role::editor)).status, 200);
  // Public routes are not limited.
  EXPECT_EQ(get("/healthz", "").status, 200);
  // The bucket refills at one per second.
  std::this_thread::sleep_for(1100ms);
  EXPECT_EQ(get("/api/v1/workflows", viewer).status, 200);
}

}  // namespace
}  // namespace herald::testing
