// The mastodon plugin (plugins/mastodon/) against MastodonServer (tests/support/), through the
// loader, the input schemas and the real C ABI, as a workflow step would call it.
#include <gtest/gtest.h>

#include <stdexcept>

#include "engine/plugins/plugin.h"
#include "engine/plugins/rate_limits.h"
#include "tests/support/mastodon_server.h"
#include "tests/unit/plugins/plugin_test_support.h"

namespace herald::plugins {
namespace {

using herald::testing::MastodonServer;
using herald::testing::Response;
using testing::CallContext;

// Loads one plugin file, with the default options otherwise.
PluginSet load_only(const std::string& file) {
  LoadOptions options;
  options.paths = {file};
  return PluginSet::load(options);
}

class MastodonPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    set_ = load_only(std::string(HERALD_BUILTIN_PLUGIN_DIR) + "/mastodon.so");
    ASSERT_TRUE(set_.errors().empty()) << set_.errors()[0].message;
    call_.secrets = {{"MASTODON_INSTANCE", server_.url()},
                     {"MASTODON_ACCESS_TOKEN", server_.token()}};
  }

  steps::StepOutcome run(const std::string& capability, const Json& input) {
    auto found = set_.find_capability(capability);
    if (!found) throw std::runtime_error("no capability " + capability);
    return make_step_info(found).step->run(input, call_.context);
  }
  Json ok(const std::string& capability, const Json& input) {
    auto outcome = run(capability, input);
    EXPECT_EQ(outcome.kind, steps::StepOutcome::Kind::done) << outcome.error.message;
    return outcome.output;
  }
  Error failure(const std::string& capability, const Json& input) {
    auto outcome = run(capability, input);
    EXPECT_NE(outcome.kind, steps::StepOutcome::Kind::done) << outcome.output.dump();
    return outcome.error;
  }

  MastodonServer server_;
  PluginSet set_;
  CallContext call_;
};

TEST_F(MastodonPluginTest, OffersTheSixPlatformCapabilities) {
  for (const char* name : {"mastodon.validate", "mastodon.publish", "mastodon.reply",
                           "mastodon.delete", "mastodon.metrics", "mastodon.mentions"}) {
    EXPECT_NE(set_.find_capability(name), nullptr) << name;
  }
}

TEST_F(MastodonPluginTest, ValidateUsesFiveHundredCharactersWithoutAnInstance) {
  call_.secrets = Json::object();
  Json fits = ok("mastodon.validate", {{"text", std::string(500, 'a')}});
  EXPECT_EQ(fits["valid"], true);
  EXPECT_EQ(fits["max_characters"], 500);
  EXPECT_EQ(fits["limits_from"], "default");
  Json long_text = ok("mastodon.validate", {{"text", std::string(501, 'a')}});
  EXPECT_EQ(long_text["valid"], false);
  EXPECT_EQ(long_text["problems"][0], "the text is 501 characters; the limit is 500");
  EXPECT_EQ(server_.http().request_count(), 0u);
}

TEST_F(MastodonPluginTest, ValidateCountsLikeMastodon) {
  call_.secrets = Json::object();
  // Code points, not bytes; a link is 23 characters; a remote mention counts its user part.
  EXPECT_EQ(ok("mastodon.validate", {{"text", "héllo ✨"}})["length"], 7);
  EXPECT_EQ(
      ok("mastodon.validate",
         {{"text", "see https://example.com/a/very/long/path/that/goes/on/and/on"}})["length"],
      4 + 23);
  EXPECT_EQ(ok("mastodon.validate", {{"text", "hi @ada@example.social"}})["length"], 7);
}

TEST_F(MastodonPluginTest, ValidateReadsTheInstanceLimitAndMediaCount) {
  server_.set_max_characters(1000);
  Json result = ok("mastodon.validate", {{"text", std::string(800, 'a')},
                                         {"media", {"a.png", "b.png", "c.png", "d.png", "e.png"}}});
  EXPECT_EQ(result["max_characters"], 1000);
  EXPECT_EQ(result["limits_from"], "instance");
  EXPECT_EQ(result["valid"], false);
  ASSERT_EQ(result["problems"].size(), 1u);
  EXPECT_EQ(result["problems"][0], "5 media attachments; the limit is 4");
  EXPECT_EQ(server_.http().request_count("GET", "/api/v2/instance"), 1u);
}

TEST_F(MastodonPluginTest, PublishSendsTheRunsIdempotencyKey) {
  Json first = ok("mastodon.publish", {{"text", "Hello from Herald"}, {"visibility", "unlisted"}});
  EXPECT_FALSE(first["id"].get<std::string>().empty());
  EXPECT_EQ(first["idempotency_key"], "run-1/post");
  auto posts = server_.http().requests("POST", "/api/v1/statuses");
  ASSERT_EQ(posts.size(), 1u);
  EXPECT_EQ(posts[0].header("Idempotency-Key"), "run-1/post");
  EXPECT_EQ(posts[0].header("Authorization"), "Bearer " + server_.token());
  Json sent = Json::parse(posts[0].body);
  EXPECT_EQ(sent["status"], "Hello from Herald");
  EXPECT_EQ(sent["visibility"], "unlisted");
  // A retry of the same step (same key) is the same status, not a second one.
  Json again = ok("mastodon.publish", {{"text", "Hello from Herald"}});
  EXPECT_EQ(again["id"], first["id"]);
  EXPECT_EQ(server_.status_count(), 1u);
}

TEST_F(MastodonPluginTest, ReplyDeleteAndMetrics) {
  std::string parent = server_.add_status("original", 3, 2, 0);
  Json reply = ok("mastodon.reply", {{"text", "thanks!"}, {"in_reply_to_id", parent}});
  EXPECT_EQ(reply["in_reply_to_id"], parent);
  EXPECT_EQ(
      Json::parse(server_.http().requests("POST", "/api/v1/statuses")[0].body)["in_reply_to_id"],
      parent);
  Json counts = ok("mastodon.metrics", {{"id", parent}});
  EXPECT_EQ(counts["favourites"], 3);
  EXPECT_EQ(counts["reblogs"], 2);
  EXPECT_EQ(counts["replies"], 1);
  Json deleted = ok("mastodon.delete", {{"id", reply["id"]}});
  EXPECT_EQ(deleted["deleted"], true);
  EXPECT_FALSE(server_.status(reply["id"].get<std::string>()).has_value());
}

TEST_F(MastodonPluginTest, ErrorBodiesAreSurfacedWithTheRightRetryability) {
  Error missing = failure("mastodon.metrics", {{"id", "999"}});
  EXPECT_EQ(missing.code, ErrorCode::not_found);
  EXPECT_FALSE(missing.retryable);
  EXPECT_NE(missing.message.find("answered 404: Record not found"), std::string::npos)
      << missing.message;

  server_.set_max_characters(10);
  Error invalid = failure("mastodon.publish", {{"text", "far too long for this instance"}});
  EXPECT_EQ(invalid.code, ErrorCode::invalid_argument);
  EXPECT_FALSE(invalid.retryable);
  EXPECT_NE(invalid.message.find("422: Validation failed: Text character limit of 10 exceeded"),
            std::string::npos)
      << invalid.message;

  Error reply = failure("mastodon.reply", {{"text", "hi"}, {"in_reply_to_id", "12345"}});
  EXPECT_EQ(reply.code, ErrorCode::not_found);

  call_.secrets["MASTODON_ACCESS_TOKEN"] = "wrong";
  Error denied = failure("mastodon.delete", {{"id", "1"}});
  EXPECT_EQ(denied.code, ErrorCode::unauthenticated);
  EXPECT_FALSE(denied.retryable);
  EXPECT_NE(denied.message.find("401: The access token is invalid (check the access token)"),
            std::string::npos)
      << denied.message;
}

TEST_F(MastodonPluginTest, ForbiddenAndServerErrors) {
  std::string id = server_.add_status("x");
  server_.http().script(
      "DELETE", "/api/v1/statuses/*",
      {Response::json(403, {{"error", "This action is not allowed"}}),
       Response::json(503, {{"error", "Service Unavailable"}}).with_header("Retry-After", "7")});
  Error forbidden = failure("mastodon.delete", {{"id", id}});
  EXPECT_EQ(forbidden.code, ErrorCode::permission_denied);
  EXPECT_FALSE(forbidden.retryable);
  EXPECT_NE(forbidden.message.find("This action is not allowed"), std::string::npos);
  Error down = failure("mastodon.delete", {{"id", id}});
  EXPECT_EQ(down.code, ErrorCode::unavailable);
  EXPECT_TRUE(down.retryable);
  ASSERT_TRUE(down.retry_after.has_value());
  EXPECT_EQ(down.retry_after->count(), 7000);
  // Honouring the Retry-After would hold the next call back (RateLimits); this test checks
  // what the next answer maps to, so it forgets the pause as a later process would.
  RateLimits::shared().clear();
  EXPECT_EQ(ok("mastodon.delete", {{"id", id}})["deleted"], true);
}

TEST_F(MastodonPluginTest, TooManyRequestsIsRetryableAfterRetryAfter) {
  server_.http().script(
      "POST", "/api/v1/statuses",
      {Response::json(429, {{"error", "Too many requests"}}).with_header("Retry-After", "30")});
  Error limited = failure("mastodon.publish", {{"text", "hello"}});
  EXPECT_EQ(limited.code, ErrorCode::resource_exhausted);
  EXPECT_TRUE(limited.retryable);
  ASSERT_TRUE(limited.retry_after.has_value());
  EXPECT_EQ(limited.retry_after->count(), 30000);
  EXPECT_NE(limited.message.find("429: Too many requests (rate limited)"), std::string::npos);
  // Honouring the Retry-After would hold the next call back (RateLimits); this test checks
  // what the next answer maps to, so it forgets the pause as a later process would.
  RateLimits::shared().clear();
  EXPECT_EQ(ok("mastodon.publish", {{"text", "hello"}})["idempotency_key"], "run-1/post");
}

TEST_F(MastodonPluginTest, ExhaustedRateLimitWaitsForTheReset) {
  // The plugin remembers exhausted limits per instance and token for the life of the process:
  // tokens of their own keep this test's state away from the others'.
  MastodonServer limited("rate-limit-token");
  limited.set_rate_limit(1, "2099-01-01T00:00:00.000Z");
  std::string id = limited.add_status("x", 1);
  call_.secrets = {{"MASTODON_INSTANCE", limited.url()},
                   {"MASTODON_ACCESS_TOKEN", limited.token()}};
  // The last request of the budget succeeds; the next one is refused without reaching the
  // server, retryable once the reset has passed.
  EXPECT_EQ(ok("mastodon.metrics", {{"id", id}})["favourites"], 1);
  EXPECT_EQ(limited.http().requests()[0].header("Authorization"), "Bearer rate-limit-token");
  size_t before = limited.http().request_count();
  Error refused = failure("mastodon.metrics", {{"id", id}});
  EXPECT_EQ(refused.code, ErrorCode::resource_exhausted);
  EXPECT_TRUE(refused.retryable);
  ASSERT_TRUE(refused.retry_after.has_value());
  EXPECT_GT(refused.retry_after->count(), 0);
  EXPECT_NE(refused.message.find("X-RateLimit-Remaining: 0"), std::string::npos) << refused.message;
  EXPECT_EQ(limited.http().request_count(), before) << "no request is sent while exhausted";

  // A 429 from the server without Retry-After waits for its X-RateLimit-Reset.
  MastodonServer other("other-rate-limit-token");
  other.set_rate_limit(0, "2099-01-01T00:00:00.000Z");
  call_.secrets = {{"MASTODON_INSTANCE", other.url()}, {"MASTODON_ACCESS_TOKEN", other.token()}};
  Error from_server = failure("mastodon.metrics", {{"id", "1"}});
  EXPECT_EQ(from_server.code, ErrorCode::resource_exhausted);
  EXPECT_TRUE(from_server.retryable);
  ASSERT_TRUE(from_server.retry_after.has_value());
  EXPECT_GT(from_server.retry_after->count(), 0);
  EXPECT_NE(from_server.message.find("429: Too many requests"), std::string::npos);
}

TEST_F(MastodonPluginTest, MentionsPageWithCursors) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i)
    ids.push_back(server_.add_mention("ada", "hello " + std::to_string(i)));
  Json first = ok("mastodon.mentions", {{"limit", 2}});
  ASSERT_EQ(first["mentions"].size(), 2u);
  EXPECT_EQ(first["mentions"][0]["id"], ids[4]) << "newest first";
  EXPECT_EQ(first["mentions"][1]["id"], ids[3]);
  EXPECT_EQ(first["mentions"][0]["account"], "ada");
  EXPECT_NE(first["mentions"][0]["content"].get<std::string>().find("hello 4"), std::string::npos);
  EXPECT_EQ(first["next_max_id"], ids[3]);
  EXPECT_EQ(first["since_id"], ids[4]);
  auto sent = server_.http().requests("GET", "/api/v1/notifications")[0].query_params();
  EXPECT_EQ(sent["types[]"], "mention");

  Json second = ok("mastodon.mentions", {{"limit", 2}, {"max_id", first["next_max_id"]}});
  ASSERT_EQ(second["mentions"].size(), 2u);
  EXPECT_EQ(second["mentions"][0]["id"], ids[2]);
  EXPECT_EQ(second["mentions"][1]["id"], ids[1]);
  Json third = ok("mastodon.mentions", {{"limit", 2}, {"max_id", second["next_max_id"]}});
  ASSERT_EQ(third["mentions"].size(), 1u);
  EXPECT_EQ(third["mentions"][0]["id"], ids[0]);

  // Nothing new since the newest seen: an empty page and no cursor.
  Json none = ok("mastodon.mentions", {{"since_id", first["since_id"]}});
  EXPECT_TRUE(none["mentions"].empty());
  EXPECT_TRUE(none["since_id"].is_null());
  std::string newer = server_.add_mention("grace", "new one");
  Json fresh = ok("mastodon.mentions", {{"since_id", first["since_id"]}});
  ASSERT_EQ(fresh["mentions"].size(), 1u);
  EXPECT_EQ(fresh["mentions"][0]["id"], newer);
  EXPECT_EQ(fresh["mentions"][0]["account"], "grace");
}

TEST_F(MastodonPluginTest, MissingTokenAndSchemaErrors) {
  call_.secrets.erase("MASTODON_ACCESS_TOKEN");
  Error no_token = failure("mastodon.publish", {{"text", "hi"}});
  EXPECT_EQ(no_token.code, ErrorCode::failed_precondition);
  EXPECT_NE(no_token.message.find("'MASTODON_ACCESS_TOKEN' is not set"), std::string::npos);
  Error typo = failure("mastodon.publish", {{"txt", "hi"}});
  EXPECT_EQ(typo.code, ErrorCode::invalid_argument);
  EXPECT_EQ(server_.http().request_count(), 0u);
}

}  // namespace
}  // namespace herald::plugins
