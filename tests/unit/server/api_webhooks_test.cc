// Webhooks, POST /hooks/{workspace}/{path}: an unsigned hook answers 202 with the run id; with
// `respond:` the step's output is the answer (502 when the step does not succeed, 504 when it
// takes too long); signed hooks check the HMAC, the time window and replays; the run sees the
// request's body, headers and query as `trigger`.
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "engine/security/hmac.h"
#include "tests/support/api_fixture.h"

namespace herald::testing {
namespace {

using security::Role;

std::string now_seconds(std::chrono::seconds offset = std::chrono::seconds(0)) {
  auto now = std::chrono::system_clock::now() + offset;
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
}

class ApiWebhookTest : public ApiTest {
 protected:
  ApiReply hook(const std::string& path, const std::string& body = "{}",
                const std::string& content_type = "application/json",
                std::map<std::string, std::string> headers = {}) {
    return call("POST", "/hooks/" + path, "", body, content_type, std::move(headers));
  }
  std::map<std::string, std::string> signed_headers(const std::string& secret, const std::string& body,
                                                    const std::string& timestamp) {
    return {{std::string(security::kWebhookTimestampHeader), timestamp},
            {std::string(security::kWebhookSignatureHeader), security::sign_webhook(secret, timestamp, body)}};
  }
};

TEST_F(ApiWebhookTest, UnsignedHookStartsARunThatSeesTheRequest) {
  must_deploy(
      "id: intake\n"
      "triggers:\n"
      "  - webhook: { path: intake }\n"
      "steps:\n"
      "  - id: seen\n"
      "    uses: set\n"
      "    with: { order: \"{{ trigger.body.order }}\", source: \"{{ trigger.query.source }}\" }\n");
  auto reply = hook("acme/intake?source=shop&n=2", Json{{"order", 42}, {"items", {1, 2}}}.dump(), "application/json",
                    {{"X-Custom", "yes"}, {"Authorization", "Bearer should-not-be-kept"}});
  ASSERT_EQ(reply.status, 202) << reply;
  EXPECT_EQ(reply.json["workflow"], "intake");
  std::string run_id = reply.json["run_id"];
  ASSERT_FALSE(run_id.empty());

  Json run = wait_final(run_id);
  EXPECT_EQ(run["state"], "succeeded") << run.dump();
  const Json& trigger = run["trigger"];
  EXPECT_EQ(trigger["type"], "webhook");
  EXPECT_EQ(trigger["path"], "intake");
  EXPECT_EQ(trigger["body"], (Json{{"order", 42}, {"items", {1, 2}}}));
  EXPECT_EQ(trigger["headers"]["x-custom"], "yes") << trigger.dump();
  EXPECT_FALSE(trigger["headers"].contains("authorization")) << trigger.dump();
  EXPECT_EQ(trigger["query"], (Json{{"source", "shop"}, {"n", "2"}}));
  EXPECT_EQ(trigger["request_id"], reply.header("x-request-id"));
  EXPECT_TRUE(trigger["received_at"].is_string());
  EXPECT_EQ(step_of(run, "seen")["output"], (Json{{"order", 42}, {"source", "shop"}})) << run.dump();

  // Text bodies arrive as text; an empty body as null.
  auto text = hook("acme/intake", "plain words", "text/plain");
  ASSERT_EQ(text.status, 202) << text;
  EXPECT_EQ(wait_final(text.json["run_id"])["trigger"]["body"], "plain words");
  auto empty = hook("acme/intake", "", "");
  ASSERT_EQ(empty.status, 202) << empty;
  EXPECT_TRUE(wait_final(empty.json["run_id"])["trigger"]["body"].is_null());

  // Invalid JSON sent as JSON, an unknown path, another workspace, a body over the limit.
  EXPECT_TRUE(is_error(hook("acme/intake", "{\"order\": ", "application/json"), 400, "invalid_argument"));
  EXPECT_TRUE(is_error(hook("acme/nowhere"), 404, "not_found"));
  EXPECT_TRUE(is_error(hook("globex/intake"), 404, "not_found"));
  EXPECT_TRUE(is_error(hook("acme/intake", std::string(70 * 1024, 'x'), "text/plain"), 413));
  EXPECT_TRUE(is_error(call("GET", "/hooks/acme/intake"), 405));
  // Only the accepted requests started runs.
  EXPECT_EQ(get("/api/v1/runs?workflow=intake", admin()).json["items"].size(), 3u);
}

TEST_F(ApiWebhookTest, RespondWithAStepsOutput) {
  must_deploy(
      "id: answer\n"
      "triggers:\n"
      "  - webhook: { path: answer, respond: { step: reply } }\n"
      "steps:\n"
      "  - id: reply\n"
      "    uses: set\n"
      "    with: { greeting: \"hi {{ trigger.body.name }}\", n: \"{{ trigger.query.n }}\" }\n"
      "  - id: after\n"
      "    uses: wait\n"
      "    with: { for: 300ms }\n");
  auto reply = hook("acme/answer?n=5", Json{{"name", "Ada"}}.dump());
  ASSERT_EQ(reply.status, 200) << reply;
  EXPECT_EQ(reply.json, (Json{{"greeting", "hi Ada"}, {"n", "5"}}));
  EXPECT_EQ(reply.header("content-type").rfind("application/json", 0), 0u);
  std::string run_id = reply.header("x-herald-run-id");
  ASSERT_FALSE(run_id.empty()) << reply;
  // The answer came with the step, before the run finished.
  Json run = wait_final(run_id);
  EXPECT_EQ(run["state"], "succeeded") << run.dump();
  EXPECT_EQ(run["trigger"]["type"], "webhook");
}

TEST_F(ApiWebhookTest, RespondStepSkippedOrFailedIs502) {
  must_deploy(
      "id: skipper\n"
      "triggers:\n"
      "  - webhook: { path: skip, respond: { step: reply } }\n"
      "steps:\n"
      "  - id: reply\n"
      "    uses: set\n"
      "    when: trigger.body.go == true\n"
      "    with: { ok: true }\n");
  must_deploy(
      "id: failer\n"
      "triggers:\n"
      "  - webhook: { path: fail, respond: { step: reply } }\n"
      "steps:\n"
      "  - id: reply\n"
      "    uses: script\n"
      "    with: { code: 'error(\"nope\")' }\n");
  auto go = hook("acme/skip", Json{{"go", true}}.dump());
  EXPECT_EQ(go.status, 200) << go;
  auto skipped = hook("acme/skip", Json{{"go", false}}.dump());
  ASSERT_TRUE(is_error(skipped, 502));
  EXPECT_EQ(skipped.json["error"]["details"]["step"], "reply") << skipped;
  EXPECT_EQ(skipped.json["error"]["details"]["state"], "skipped") << skipped;
  EXPECT_TRUE(skipped.json["error"]["details"]["run_id"].is_string());

  auto failed = hook("acme/fail");
  ASSERT_TRUE(is_error(failed, 502));
  EXPECT_EQ(failed.json["error"]["details"]["state"], "failed") << failed;
  EXPECT_NE(failed.json["error"]["details"]["error"].dump().find("nope"), std::string::npos) << failed;
  Json run = wait_final(failed.json["error"]["details"]["run_id"]);
  EXPECT_EQ(run["state"], "failed");
}

TEST_F(ApiWebhookTest, RespondTimeoutIs504AndTheRunContinues) {
  must_deploy(
      "id: slowpoke\n"
      "triggers:\n"
      "  - webhook: { path: slow, respond: { step: reply, timeout: 200ms } }\n"
      "steps:\n"
      "  - id: pause\n"
      "    uses: wait\n"
      "    with: { for: 1500ms }\n"
      "  - id: reply\n"
      "    uses: set\n"
      "    with: { done: true }\n");
  auto started = std::chrono::steady_clock::now();
  auto reply = hook("acme/slow");
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(is_error(reply, 504, "deadline_exceeded"));
  EXPECT_LT(took, 1200ms);  // long before the step
  EXPECT_GE(took, 190ms);
  std::string run_id = reply.json["error"]["details"]["run_id"];
  Json run = wait_final(run_id);
  EXPECT_EQ(run["state"], "succeeded") << run.dump();
}

TEST_F(ApiWebhookTest, SignedHooks) {
  const std::string secret = "whsec-0123456789abcdef";
  must_deploy(
      "id: signed\n"
      "triggers:\n"
      "  - webhook: { path: signed, secret: \"{{ secrets.HOOK }}\" }\n"
      "steps:\n"
      "  - id: got\n"
      "    uses: set\n"
      "    with: { body: \"{{ trigger.body }}\" }\n");
  const std::string body = Json{{"event", "order.paid"}, {"id", 1}}.dump();

  // Before the secret is set, nothing is accepted: 409, as openapi.json says.
  auto unset = hook("acme/signed", body, "application/json", signed_headers(secret, body, now_seconds()));
  EXPECT_TRUE(is_error(unset, 409, "failed_precondition"));

  put_secret("HOOK", secret);
  auto headers = signed_headers(secret, body, now_seconds());
  auto ok = hook("acme/signed", body, "application/json", headers);
  ASSERT_EQ(ok.status, 202) << ok;
  Json run = wait_final(ok.json["run_id"]);
  EXPECT_EQ(run["state"], "succeeded") << run.dump();
  EXPECT_EQ(run["trigger"]["body"], Json::parse(body));
  EXPECT_FALSE(run["trigger"]["headers"].contains("x-herald-signature")) << run.dump();
  EXPECT_EQ(run.dump().find(secret), std::string::npos);

  // The same signed request again: a replay.
  EXPECT_TRUE(is_error(hook("acme/signed", body, "application/json", headers), 401, "unauthenticated"));
  // Wrong secret, tampered body, missing headers, too old, too far ahead.
  EXPECT_TRUE(is_error(hook("acme/signed", body, "application/json", signed_headers("other", body, now_seconds())), 401));
  auto tampered = signed_headers(secret, body, now_seconds());
  EXPECT_TRUE(is_error(hook("acme/signed", body + " ", "application/json", tampered), 401));
  EXPECT_TRUE(is_error(hook("acme/signed", body), 401, "unauthenticated"));
  EXPECT_TRUE(is_error(hook("acme/signed", body, "application/json",
                            signed_headers(secret, body, now_seconds(std::chrono::seconds(-301)))),
                       401));
  EXPECT_TRUE(is_error(hook("acme/signed", body, "application/json",
                            signed_headers(secret, body, now_seconds(std::chrono::seconds(3600)))),
                       401));
  // Signed but not JSON although it says so: 400 (after the signature is checked).
  std::string broken = "{\"event\": ";
  EXPECT_TRUE(is_error(hook("acme/signed", broken, "application/json", signed_headers(secret, broken, now_seconds())),
                       400));
  // Too large is refused before anything else.
  std::string huge(70 * 1024, 'x');
  EXPECT_TRUE(is_error(hook("acme/signed", huge, "text/plain", signed_headers(secret, huge, now_seconds())), 413));
  // Only the one valid request started a run.
  EXPECT_EQ(get("/api/v1/runs?workflow=signed", admin()).json["items"].size(), 1u);

  // A rotated secret applies at once (the PUT drops the cached secrets).
  put_secret("HOOK", "whsec-rotated");
  EXPECT_TRUE(is_error(hook("acme/signed", body, "application/json", signed_headers(secret, body, now_seconds(std::chrono::seconds(1)))), 401));
  EXPECT_EQ(hook("acme/signed", body, "application/json", signed_headers("whsec-rotated", body, now_seconds())).status,
            202);
}


TEST_F(ApiWebhookTest, StopDoesNotWaitForAPendingRespondBeyondTheGracePeriod) {
  must_deploy(
      "id: forever\n"
      "triggers:\n"
      "  - webhook: { path: forever, respond: { step: reply, timeout: 8s } }\n"
      "steps:\n"
      "  - id: pause\n"
      "    uses: wait\n"
      "    with: { for: 1h }\n"
      "  - id: reply\n"
      "    uses: set\n"
      "    with: { done: true }\n");
  ApiReply reply;
  std::thread caller([&] { reply = hook("acme/forever"); });
  // Wait until the run sleeps on its timer, so the webhook is waiting for its step.
  Json runs = wait_runs_of("forever", 1);
  ASSERT_EQ(runs.size(), 1u);
  wait_state(runs[0]["id"], "waiting");
  auto started = std::chrono::steady_clock::now();
  service_->stop();  // drain_grace is 2s
  auto took = std::chrono::steady_clock::now() - started;
  caller.join();
  EXPECT_LT(took, 5s) << "stop() took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
  // The caller got an answer or the connection was closed; never a success.
  EXPECT_NE(reply.status, 200) << reply;
  if (reply.status != 0) {
    EXPECT_TRUE(is_error(reply, reply.status));
  }
}

}  // namespace
}  // namespace herald::testing
