// The slack plugin (plugins/slack/) against SlackServer (tests/support/): messages with text and
// blocks, Slack's documented error strings, and 429 with Retry-After.
#include <gtest/gtest.h>

#include "engine/plugins/plugin.h"
#include "engine/plugins/rate_limits.h"
#include "tests/support/slack_server.h"
#include "tests/unit/plugins/plugin_test_support.h"

namespace herald::plugins {
namespace {

using herald::testing::Response;
using herald::testing::SlackServer;
using testing::CallContext;

// Loads one plugin file, with the default options otherwise.
PluginSet load_only(const std::string& file) {
  LoadOptions options;
  options.paths = {file};
  return PluginSet::load(options);
}

class SlackPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    set_ = load_only(std::string(HERALD_BUILTIN_PLUGIN_DIR) + "/slack.so");
    ASSERT_TRUE(set_.errors().empty()) << set_.errors()[0].message;
    call_.secrets = {{"SLACK_WEBHOOK_URL", server_.webhook_url()}};
  }

  steps::StepOutcome run(const Json& input) {
    return make_step_info(set_.find_capability("slack.post")).step->run(input, call_.context);
  }
  Error failure(const Json& input) {
    auto outcome = run(input);
    EXPECT_NE(outcome.kind, steps::StepOutcome::Kind::done) << outcome.output.dump();
    return outcome.error;
  }

  SlackServer server_;
  PluginSet set_;
  CallContext call_;
};

TEST_F(SlackPluginTest, PostsTextAndBlocksToTheWebhookFromTheSecret) {
  Json blocks = Json::array(
      {{{"type", "section"}, {"text", {{"type", "mrkdwn"}, {"text", "*Deploy* finished"}}}}});
  auto outcome = run({{"text", "Deploy finished"}, {"blocks", blocks}});
  ASSERT_EQ(outcome.kind, steps::StepOutcome::Kind::done) << outcome.error.message;
  EXPECT_EQ(outcome.output, Json({{"ok", true}, {"status", 200}}));
  auto messages = server_.messages();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0]["text"], "Deploy finished");
  EXPECT_EQ(messages[0]["blocks"], blocks);
  // The URL is a secret: the timeline line about the request is redacted by the runtime, and
  // the plugin never puts it in its output.
  EXPECT_EQ(outcome.output.dump().find(server_.webhook_url()), std::string::npos);
}

TEST_F(SlackPluginTest, AnExplicitUrlOrAnotherSecret) {
  call_.secrets = {{"OPS_SLACK", server_.webhook_url()}};
  EXPECT_EQ(run({{"text", "a"}, {"url_secret", "OPS_SLACK"}}).kind, steps::StepOutcome::Kind::done);
  call_.secrets = Json::object();
  EXPECT_EQ(run({{"text", "b"}, {"url", server_.webhook_url()}}).kind,
            steps::StepOutcome::Kind::done);
  Error missing = failure({{"text", "c"}});
  EXPECT_EQ(missing.code, ErrorCode::failed_precondition);
  EXPECT_NE(missing.message.find("'SLACK_WEBHOOK_URL' is not set"), std::string::npos);
  EXPECT_EQ(server_.messages().size(), 2u);
}

TEST_F(SlackPluginTest, SlacksErrorStringsAreClearAndNotRetryable) {
  struct Case {
    Json input;
    ErrorCode code;
    std::string said;
  };
  server_.archive("#old");
  server_.restrict("#announcements");
  std::vector<Case> cases = {
      {{{"text", "x"}, {"channel", "#missing"}},
       ErrorCode::not_found,
       "404 channel_not_found: the webhook's channel does not exist"},
      {{{"text", "x"}, {"channel", "#old"}},
       ErrorCode::failed_precondition,
       "410 channel_is_archived: the webhook's channel is archived"},
      {{{"text", "x"}, {"channel", "#announcements"}},
       ErrorCode::permission_denied,
       "403 action_prohibited"},
      {{{"blocks", Json::array({{{"text", "no type"}}})}},
       ErrorCode::invalid_argument,
       "400 invalid_blocks: a block in `blocks` is not valid Block Kit"},
      {{{"text", ""}}, ErrorCode::invalid_argument, "400 no_text: the message has no text"},
      {{{"text", "x"}, {"url", server_.http().url("/services/T000/B000/GONE")}},
       ErrorCode::not_found,
       "404 no_service: the webhook is disabled, removed or invalid"},
  };
  for (const auto& c : cases) {
    Error error = failure(c.input);
    EXPECT_EQ(error.code, c.code) << c.input.dump() << ": " << error.message;
    EXPECT_FALSE(error.retryable) << error.message;
    EXPECT_NE(error.message.find(c.said), std::string::npos) << error.message;
  }
  EXPECT_TRUE(server_.messages().empty());
  Error nothing = failure({{"channel", "#general"}});
  EXPECT_EQ(nothing.code, ErrorCode::invalid_argument);
  EXPECT_NE(nothing.message.find("give `text`, `blocks`, or both"), std::string::npos);
}

TEST_F(SlackPluginTest, InvalidPayloadFromTheServer) {
  server_.http().script("POST", "/services/*", {Response::text(400, "invalid_payload")});
  Error error = failure({{"text", "x"}});
  EXPECT_EQ(error.code, ErrorCode::invalid_argument);
  EXPECT_FALSE(error.retryable);
  EXPECT_NE(error.message.find("400 invalid_payload: the message is not valid JSON"),
            std::string::npos)
      << error.message;
}

TEST_F(SlackPluginTest, TooManyRequestsIsRetryableAfterRetryAfter) {
  server_.http().script("POST", "/services/*",
                        {Response::text(429, "rate_limited").with_header("Retry-After", "12"),
                         Response::text(500, "rollup_error")});
  Error limited = failure({{"text", "x"}});
  EXPECT_EQ(limited.code, ErrorCode::resource_exhausted);
  EXPECT_TRUE(limited.retryable);
  ASSERT_TRUE(limited.retry_after.has_value());
  EXPECT_EQ(limited.retry_after->count(), 12000);
  // Honouring the Retry-After would hold the next call back (RateLimits); this test checks
  // what the next answer maps to, so it forgets the pause as a later process would.
  RateLimits::shared().clear();
  Error down = failure({{"text", "x"}});
  EXPECT_EQ(down.code, ErrorCode::unavailable);
  EXPECT_TRUE(down.retryable);
  EXPECT_NE(down.message.find("500: rollup_error"), std::string::npos) << down.message;
  RateLimits::shared().clear();
  EXPECT_EQ(run({{"text", "x"}}).kind, steps::StepOutcome::Kind::done);
  EXPECT_EQ(server_.messages().size(), 1u);
}

}  // namespace
}  // namespace herald::plugins
