// The plugins built with Herald (plugins/), through the real binary: `herald plugins call` for
// one capability, and `herald run` for a workflow that validates, publishes to Mastodon and
// tells Slack, against MastodonServer and SlackServer (tests/support/).
#include <gtest/gtest.h>

#include "tests/support/herald_command.h"
#include "tests/support/mastodon_server.h"
#include "tests/support/slack_server.h"
#include "tests/support/temp_dir.h"

namespace herald::testing {
namespace {

class BuiltinPluginsTest : public ::testing::Test {
 protected:
  std::map<std::string, std::string> env() const {
    return {{"HERALD_DATA_DIR", (dir_ / "data").string()},
            {"HERALD_SECRET_MASTODON_INSTANCE", mastodon_.url()},
            {"HERALD_SECRET_MASTODON_ACCESS_TOKEN", mastodon_.token()},
            {"HERALD_SECRET_SLACK_WEBHOOK_URL", slack_.webhook_url()}};
  }

  TempDir dir_{"herald-builtin-plugins"};
  MastodonServer mastodon_;
  SlackServer slack_;
};

TEST_F(BuiltinPluginsTest, ListedWithoutConfiguration) {
  auto list = run_herald({"plugins", "list"}, env());
  ASSERT_EQ(list.code(), 0) << list.err;
  for (const char* name : {"mastodon.publish", "mastodon.mentions", "slack.post", "webhook.send"}) {
    EXPECT_NE(list.out.find(name), std::string::npos) << name << " in " << list.out;
  }
}

TEST_F(BuiltinPluginsTest, CallPublishesWithAnIdempotencyKeyAndRedactsTheToken) {
  auto call = run_herald(
      {"plugins", "call", "mastodon.publish", "--input", R"({"text": "hello from the cli"})"},
      env());
  ASSERT_EQ(call.code(), 0) << call.err;
  Json output = Json::parse(call.out);
  auto posts = mastodon_.http().requests("POST", "/api/v1/statuses");
  ASSERT_EQ(posts.size(), 1u);
  EXPECT_TRUE(mastodon_.status(output["id"].get<std::string>()).has_value()) << call.out;
  EXPECT_EQ(posts[0].header("Idempotency-Key"), output["idempotency_key"].get<std::string>());
  EXPECT_EQ(posts[0].header("Idempotency-Key").rfind("cli-", 0), 0u);
  EXPECT_EQ(call.err.find(mastodon_.token()), std::string::npos) << call.err;
}

TEST_F(BuiltinPluginsTest, CallReportsMastodonErrorsAndRetryAfter) {
  mastodon_.http().script(
      "POST", "/api/v1/statuses",
      {Response::json(429, {{"error", "Too many requests"}}).with_header("Retry-After", "30")});
  auto limited =
      run_herald({"plugins", "call", "mastodon.publish", "--input", R"({"text": "hello"})"}, env());
  EXPECT_EQ(limited.code(), 1) << limited.out;
  EXPECT_NE(limited.err.find("error: resource_exhausted (retryable): mastodon: POST "
                             "/api/v1/statuses answered 429: Too many requests"),
            std::string::npos)
      << limited.err;
  EXPECT_NE(limited.err.find("retry after: 30000 ms"), std::string::npos) << limited.err;

  auto missing =
      run_herald({"plugins", "call", "mastodon.metrics", "--input", R"({"id": "404404"})"}, env());
  EXPECT_EQ(missing.code(), 1);
  EXPECT_NE(missing.err.find("error: not_found: mastodon: GET /api/v1/statuses/404404 answered "
                             "404: Record not found"),
            std::string::npos)
      << missing.err;
}

TEST_F(BuiltinPluginsTest, CallPagesMentions) {
  mastodon_.add_mention("ada", "first");
  std::string newest = mastodon_.add_mention("grace", "second");
  auto call =
      run_herald({"plugins", "call", "mastodon.mentions", "--input", R"({"limit": 1})"}, env());
  ASSERT_EQ(call.code(), 0) << call.err;
  Json page = Json::parse(call.out);
  ASSERT_EQ(page["mentions"].size(), 1u);
  EXPECT_EQ(page["mentions"][0]["id"], newest);
  auto next = run_herald({"plugins", "call", "mastodon.mentions", "--input",
                          Json({{"limit", 1}, {"max_id", page["next_max_id"]}}).dump()},
                         env());
  ASSERT_EQ(next.code(), 0) << next.err;
  EXPECT_EQ(Json::parse(next.out)["mentions"][0]["account"], "ada");
}

TEST_F(BuiltinPluginsTest, AWorkflowValidatesPublishesAndTellsSlack) {
  mastodon_.set_max_characters(1000);
  dir_.write("announce.yaml", R"y(id: announce
steps:
  - id: check
    uses: mastodon.validate
    with: { text: "Herald 1.0 is out" }
  - id: post
    uses: mastodon.publish
    with: { text: "Herald 1.0 is out", visibility: unlisted }
  - id: tell
    uses: slack.post
    with:
      text: "Posted {{ steps.post.output.url }} (limit {{ steps.check.output.max_characters }})"
      blocks:
        - type: section
          text: { type: mrkdwn, text: "*Posted* {{ steps.post.output.url }}" }
)y");
  auto run = run_herald({"run", (dir_ / "announce.yaml").string(), "--json"}, env());
  ASSERT_EQ(run.code(), 0) << run.out << run.err;
  EXPECT_NE(run.out.find("\"state\":\"succeeded\""), std::string::npos) << run.out;
  ASSERT_EQ(mastodon_.status_count(), 1u);
  auto posts = mastodon_.http().requests("POST", "/api/v1/statuses");
  ASSERT_EQ(posts.size(), 1u);
  EXPECT_FALSE(posts[0].header("Idempotency-Key").empty());
  auto messages = slack_.messages();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_NE(messages[0]["text"].get<std::string>().find("(limit 1000)"), std::string::npos)
      << messages[0].dump();
  EXPECT_EQ(messages[0]["blocks"][0]["type"], "section");

  // A typo in `with:` fails before anything is sent.
  dir_.write("typo.yaml", R"(id: typo
steps:
  - id: post
    uses: mastodon.publish
    with: { txt: "oops" }
)");
  auto typo = run_herald({"validate", (dir_ / "typo.yaml").string()}, env());
  EXPECT_NE(typo.code(), 0);
  EXPECT_NE((typo.out + typo.err).find("unknown field 'txt'; did you mean 'text'?"),
            std::string::npos)
      << typo.out << typo.err;
  EXPECT_EQ(mastodon_.http().request_count("POST", "/api/v1/statuses"), 1u);
}

}  // namespace
}  // namespace herald::testing
