// The `notify` step through the real binary: `herald run` with a herald.yaml whose channels are
// Slack webhooks (two SlackServers from tests/support), a 429 with Retry-After retried without
// sending again to the channel that had succeeded, and the errors `herald validate` gives for an
// unknown channel and for a channel whose step is not loaded or whose settings have a typo.
#include <gtest/gtest.h>

#include "tests/support/herald_command.h"
#include "tests/support/local_http_server.h"
#include "tests/support/slack_server.h"
#include "tests/support/temp_dir.h"

namespace herald::testing {
namespace {

using namespace std::chrono_literals;

class NotifyTest : public ::testing::Test {
 protected:
  NotifyTest() {
    dir_.write("herald.yaml", R"y(notify:
  channels:
    ops:  { uses: slack.post, with: { url_secret: SLACK_OPS_URL, username: herald } }
    team: { uses: slack.post, with: { url_secret: SLACK_TEAM_URL } }
)y");
  }

  std::map<std::string, std::string> env() const {
    return {{"HERALD_DATA_DIR", (dir_ / "data").string()},
            {"HERALD_SECRET_SLACK_OPS_URL", ops_.webhook_url()},
            {"HERALD_SECRET_SLACK_TEAM_URL", team_.webhook_url()}};
  }
  std::string config() const { return (dir_ / "herald.yaml").string(); }

  TempDir dir_{"herald-notify"};
  SlackServer ops_;
  SlackServer team_;
};

TEST_F(NotifyTest, RunSendsToAConfiguredSlackChannelAndTheLog) {
  dir_.write("deploy.yaml", R"y(id: deploy
inputs:
  version: { type: string, default: "1.2" }
steps:
  - id: tell
    uses: notify
    with:
      to: [ops, log]
      title: Deploy
      text: "version {{ inputs.version }} is live"
      blocks:
        - type: section
          text: { type: mrkdwn, text: "*Deploy* of `{{ inputs.version }}` finished" }
)y");
  auto run =
      run_herald({"run", (dir_ / "deploy.yaml").string(), "--config", config(), "--json"}, env());
  ASSERT_EQ(run.code(), 0) << run.out << run.err;

  auto messages = ops_.messages();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0]["text"], "*Deploy*\nversion 1.2 is live");
  EXPECT_EQ(messages[0]["username"], "herald");  // the channel's settings from herald.yaml
  EXPECT_EQ(messages[0]["blocks"][0]["text"]["text"], "*Deploy* of `1.2` finished");
  EXPECT_TRUE(team_.messages().empty());

  bool logged = false;
  for (const Json& line : json_lines(run.out)) {
    if (line["state"] == "log" && line.value("step", "") == "tell") {
      logged = logged || line.value("message", "") == "info: Deploy: version 1.2 is live";
    }
  }
  EXPECT_TRUE(logged) << run.out;
}

TEST_F(NotifyTest, ARateLimitedChannelIsRetriedAfterRetryAfterAndTheOtherIsNotSentTwice) {
  ops_.http().script("POST", "/services/*",
                     {Response::text(429, "rate_limited").with_header("Retry-After", "1")});
  dir_.write("alert.yaml", R"y(id: alert
steps:
  - id: tell
    uses: notify
    retry: { attempts: 3, initial: 100ms }
    with: { to: [team, ops], text: "queue is backing up" }
)y");
  auto run =
      run_herald({"run", (dir_ / "alert.yaml").string(), "--config", config(), "--json"}, env());
  ASSERT_EQ(run.code(), 0) << run.out << run.err;

  auto attempts = ops_.http().requests("POST", SlackServer::kPath);
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_GE(attempts[1].received_at - attempts[0].received_at, 950ms)
      << "the retry waited for Retry-After (1 s), not the policy's 100ms";
  ASSERT_EQ(ops_.messages().size(), 1u);
  EXPECT_EQ(ops_.messages()[0]["text"], "queue is backing up");
  EXPECT_EQ(team_.http().request_count("POST", SlackServer::kPath), 1u)
      << "team succeeded on the first attempt and is not sent again";

  bool reported_429 = false;
  for (const Json& line : json_lines(run.out)) {
    if (line.contains("error") && line["error"].value("code", "") == "resource_exhausted") {
      reported_429 =
          reported_429 ||
          (line["error"]["retryable"] == true &&
           line["error"]["message"].get<std::string>().find("1 of 2 channels failed: ops: "
                                                            "slack: the webhook answered "
                                                            "429") != std::string::npos);
    }
  }
  EXPECT_TRUE(reported_429) << run.out;
}

TEST_F(NotifyTest, AWebhookChannelGetsThePayloadAndAKeyOfItsOwn) {
  LocalHttpServer partner;
  partner.route("POST", "/hooks", Response::json(200, {{"received", true}}));
  dir_.write("herald.yaml", R"y(notify:
  channels:
    partner: { uses: webhook.send, with: { url: "PARTNER_URL", secret: PARTNER_KEY } }
)y");
  std::string config_text = read_file(dir_ / "herald.yaml");
  config_text.replace(config_text.find("PARTNER_URL"), 11, partner.url("/hooks"));
  dir_.write("herald.yaml", config_text);
  dir_.write("paid.yaml", R"y(id: paid
steps:
  - id: tell
    uses: notify
    with: { to: partner, title: Order paid, text: "order 42", data: { order: 42 } }
)y");
  auto environment = env();
  environment["HERALD_SECRET_PARTNER_KEY"] = "partner-signing-key";
  auto run = run_herald({"run", (dir_ / "paid.yaml").string(), "--config", config(), "--json"},
                        environment);
  ASSERT_EQ(run.code(), 0) << run.out << run.err;
  auto requests = partner.requests("POST", "/hooks");
  ASSERT_EQ(requests.size(), 1u);
  Json body = Json::parse(requests[0].body);
  EXPECT_EQ(body["text"], "order 42");
  EXPECT_EQ(body["title"], "Order paid");
  EXPECT_EQ(body["data"], (Json{{"order", 42}}));
  EXPECT_EQ(body["step_id"], "tell");
  EXPECT_EQ(requests[0].header("X-Herald-Event"), "herald.notify");
  EXPECT_EQ(requests[0].header("X-Herald-Signature").rfind("sha256=", 0), 0u);
  const std::string key = requests[0].header("Idempotency-Key");
  EXPECT_EQ(key, body["run_id"].get<std::string>() + ":tell:partner");
}

TEST_F(NotifyTest, ValidateRefusesAnUnknownChannelAndAnUnknownInlineStep) {
  dir_.write("typo.yaml", R"y(id: typo
steps:
  - id: tell
    uses: notify
    with: { to: opps, text: "hello" }
  - id: inline
    uses: notify
    with:
      text: "hello"
      to: [{ uses: slak.post, with: { url_secret: SLACK_OPS_URL } }]
)y");
  auto validate =
      run_herald({"validate", (dir_ / "typo.yaml").string(), "--config", config()}, env());
  EXPECT_EQ(validate.code(), 2) << validate.out << validate.err;
  EXPECT_NE(validate.err.find("typo.yaml:5:17: steps[0].with.to: a string ('opps') does not match "
                              "the pattern ^(log|ops|team)$"),
            std::string::npos)
      << validate.err;
  EXPECT_NE(validate.err.find("typo.yaml:10:20: steps[1].with.to[0].uses: expected one of "),
            std::string::npos)
      << validate.err;
  EXPECT_NE(validate.err.find("slack.post, wait, webhook.send; got a string ('slak.post')"),
            std::string::npos)
      << validate.err;
  EXPECT_TRUE(ops_.messages().empty());
}

TEST_F(NotifyTest, AChannelWhoseStepIsNotLoadedOrRefusesItsSettingsStopsEveryCommand) {
  dir_.write("hello.yaml", R"y(id: hello
steps:
  - id: tell
    uses: notify
    with: { text: "hello" }
)y");
  dir_.write("missing.yaml", R"y(notify:
  channels:
    chat: { uses: discord.post, with: { channel: general } }
)y");
  auto missing = run_herald(
      {"run", (dir_ / "hello.yaml").string(), "--config", (dir_ / "missing.yaml").string()}, env());
  EXPECT_NE(missing.code(), 0);
  EXPECT_NE(missing.err.find("notify.channels.chat: uses 'discord.post', which is not loaded"),
            std::string::npos)
      << missing.err;

  dir_.write("misspelt.yaml", R"y(notify:
  channels:
    ops: { uses: slack.post, with: { url_secrt: SLACK_OPS_URL } }
)y");
  auto misspelt = run_herald(
      {"validate", (dir_ / "hello.yaml").string(), "--config", (dir_ / "misspelt.yaml").string()},
      env());
  EXPECT_NE(misspelt.code(), 0);
  EXPECT_NE(misspelt.err.find("notify.channels.ops: slack.post refuses these settings: url_secrt: "
                              "unknown field 'url_secrt'; did you mean 'url_secret'?"),
            std::string::npos)
      << misspelt.err;

  dir_.write("no_uses.yaml", R"y(notify:
  channels:
    ops:
      with: { url_secret: SLACK_OPS_URL }
)y");
  auto no_uses = run_herald(
      {"validate", (dir_ / "hello.yaml").string(), "--config", (dir_ / "no_uses.yaml").string()},
      env());
  EXPECT_NE(no_uses.code(), 0);
  EXPECT_NE(no_uses.err.find("no_uses.yaml:4:7: notify.channels.ops.uses: expected the step type "
                             "that sends"),
            std::string::npos)
      << no_uses.err;
  EXPECT_TRUE(ops_.messages().empty());
}

}  // namespace
}  // namespace herald::testing
