// The webhook plugin (plugins/webhook/webhook.lua) against a LocalHttpServer that checks its
// signature with Herald's own verifier, and herald.crypto.hmac_sha256 in the Lua host API.
#include <gtest/gtest.h>

#include "engine/plugins/plugin.h"
#include "engine/plugins/rate_limits.h"
#include "engine/security/hmac.h"
#include "tests/support/local_http_server.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/plugins/plugin_test_support.h"

namespace herald::plugins {
namespace {

using herald::testing::LocalHttpServer;
using herald::testing::Response;
using testing::CallContext;

// Loads one plugin file, with the default options otherwise.
PluginSet load_only(const std::string& file) {
  LoadOptions options;
  options.paths = {file};
  return PluginSet::load(options);
}

steps::StepOutcome run(const PluginSet& set, const std::string& name, const Json& input,
                       CallContext& call) {
  return make_step_info(set.find_capability(name)).step->run(input, call.context);
}

TEST(LuaCrypto, HmacSha256MatchesRfc4231) {
  herald::testing::TempDir dir("herald-lua-crypto");
  dir.write("mac.lua", R"(
return {
  name = "mac",
  version = "1.0.0",
  capabilities = {
    sign = { run = function(input)
      return { hex = herald.crypto.hmac_sha256(input.key, input.data), now = herald.now() }
    end },
    bad = { run = function() local mac = herald.crypto.hmac_sha256({}); return mac end },
  },
}
)");
  auto set = load_only((dir / "mac.lua").string());
  ASSERT_TRUE(set.errors().empty()) << set.errors()[0].message;
  CallContext call;
  // RFC 4231, test case 2.
  auto outcome =
      run(set, "mac.sign", {{"key", "Jefe"}, {"data", "what do ya want for nothing?"}}, call);
  ASSERT_EQ(outcome.kind, steps::StepOutcome::Kind::done) << outcome.error.message;
  EXPECT_EQ(outcome.output["hex"],
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_GT(outcome.output["now"].get<int64_t>(), 1700000000);
  auto bad = run(set, "mac.bad", Json::object(), call);
  ASSERT_NE(bad.kind, steps::StepOutcome::Kind::done);
  EXPECT_NE(bad.error.message.find("string expected"), std::string::npos) << bad.error.message;
}

class WebhookPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    set_ = load_only(std::string(HERALD_BUILTIN_PLUGIN_DIR) + "/webhook.lua");
    ASSERT_TRUE(set_.errors().empty()) << set_.errors()[0].message;
    call_.secrets = {{"WEBHOOK_SIGNING_KEY", "whsec-test-key"}};
  }

  LocalHttpServer server_;
  PluginSet set_;
  CallContext call_;
};

TEST_F(WebhookPluginTest, SendsASignedJsonBodyHeraldsVerifierAccepts) {
  server_.route("POST", "/hook", Response::json(200, {{"received", true}}));
  Json payload = {{"order", 42}, {"items", {"a", "b"}}, {"note", "héllo"}};
  auto outcome = run(set_, "webhook.send",
                     {{"url", server_.url("/hook")},
                      {"payload", payload},
                      {"event", "order.paid"},
                      {"headers", {{"X-Team", "ops"}}}},
                     call_);
  ASSERT_EQ(outcome.kind, steps::StepOutcome::Kind::done) << outcome.error.message;
  EXPECT_EQ(outcome.output["status"], 200);
  EXPECT_EQ(outcome.output["body"]["received"], true);
  auto requests = server_.requests("POST", "/hook");
  ASSERT_EQ(requests.size(), 1u);
  const auto& request = requests[0];
  EXPECT_EQ(Json::parse(request.body), payload);
  EXPECT_EQ(request.header("Content-Type"), "application/json");
  EXPECT_EQ(request.header("X-Herald-Event"), "order.paid");
  EXPECT_EQ(request.header("X-Team"), "ops");
  EXPECT_EQ(request.header("Idempotency-Key"), "run-1/post");
  EXPECT_EQ(request.header("X-Herald-Timestamp"), outcome.output["timestamp"].get<std::string>());
  EXPECT_EQ(
      request.header("X-Herald-Signature"),
      "sha256=" + security::hmac_sha256_hex(
                      "whsec-test-key", request.header("X-Herald-Timestamp") + "." + request.body));
  auto verified =
      security::verify_webhook("whsec-test-key", request.body, request.header("X-Herald-Timestamp"),
                               request.header("X-Herald-Signature"));
  EXPECT_TRUE(verified.ok()) << verified.error().message;
  EXPECT_FALSE(security::verify_webhook("another-key", request.body,
                                        request.header("X-Herald-Timestamp"),
                                        request.header("X-Herald-Signature"))
                   .ok());
}

TEST_F(WebhookPluginTest, ReceiverErrorsKeepTheirRetryability) {
  server_.script("POST", "/hook",
                 {Response::text(429, "slow down").with_header("Retry-After", "9"),
                  Response::text(400, "bad signature")});
  auto limited = run(set_, "webhook.send", {{"url", server_.url("/hook")}, {"payload", 1}}, call_);
  ASSERT_NE(limited.kind, steps::StepOutcome::Kind::done);
  EXPECT_TRUE(limited.error.retryable) << limited.error.message;
  ASSERT_TRUE(limited.error.retry_after.has_value());
  EXPECT_EQ(limited.error.retry_after->count(), 9000);
  // Honouring the Retry-After would hold the next call back (RateLimits); this test checks
  // what the next answer maps to, so it forgets the pause as a later process would.
  RateLimits::shared().clear();
  auto refused = run(set_, "webhook.send", {{"url", server_.url("/hook")}, {"payload", 1}}, call_);
  ASSERT_NE(refused.kind, steps::StepOutcome::Kind::done);
  EXPECT_FALSE(refused.error.retryable) << refused.error.message;
  EXPECT_NE(refused.error.message.find("400"), std::string::npos) << refused.error.message;
}

TEST_F(WebhookPluginTest, MissingSigningKeyIsAClearError) {
  call_.secrets = Json::object();
  auto outcome = run(set_, "webhook.send", {{"url", server_.url("/hook")}, {"payload", 1}}, call_);
  ASSERT_NE(outcome.kind, steps::StepOutcome::Kind::done);
  EXPECT_EQ(outcome.error.code, ErrorCode::failed_precondition);
  EXPECT_NE(outcome.error.message.find("'WEBHOOK_SIGNING_KEY' is not set"), std::string::npos)
      << outcome.error.message;
  EXPECT_EQ(server_.request_count(), 0u);
}

}  // namespace
}  // namespace herald::plugins
