// The host HTTP client's rate limits: a platform's Retry-After pauses every call to it (per
// credential), and named token buckets are shared by every call that names them.
#include "engine/plugins/rate_limits.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "engine/plugins/plugin.h"
#include "tests/support/local_http_server.h"
#include "tests/unit/plugins/plugin_test_support.h"

namespace herald::plugins {
namespace {

using namespace std::chrono_literals;
using testing::CallContext;
using testing::test_plugin;

TEST(RateLimits, ABucketAdmitsItsRequestsThenRefillsOverTime) {
  RateLimits limits;
  auto bucket = RateLimits::read_bucket({{"rate_limit", {{"key", "x:app"}, {"requests", 2}, {"per", "1s"}}}});
  ASSERT_TRUE(bucket.ok()) << bucket.error().message;
  ASSERT_TRUE(bucket->has_value());
  const auto t0 = RateLimits::Clock::now();
  EXPECT_TRUE(limits.admit("api.x.com", *bucket, t0).ok());
  EXPECT_TRUE(limits.admit("api.x.com", *bucket, t0).ok());
  Status third = limits.admit("api.x.com", *bucket, t0);
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code, ErrorCode::resource_exhausted);
  EXPECT_TRUE(third.error().retryable);
  ASSERT_TRUE(third.error().retry_after.has_value());
  EXPECT_EQ(*third.error().retry_after, 500ms);  // one token every 500 ms
  EXPECT_NE(third.error().message.find("rate limit 'x:app'"), std::string::npos);
  EXPECT_FALSE(limits.admit("api.x.com", *bucket, t0 + 499ms).ok());
  EXPECT_TRUE(limits.admit("api.x.com", *bucket, t0 + 1s).ok());
  // Another key has its own tokens; no bucket, no limit.
  auto other = RateLimits::read_bucket({{"rate_limit", {{"key", "x:other"}, {"requests", 1}}}});
  EXPECT_TRUE(limits.admit("api.x.com", *other, t0).ok());
  EXPECT_TRUE(limits.admit("api.x.com", std::nullopt, t0).ok());
}

TEST(RateLimits, ABackOffPausesTheHostUntilItEnds) {
  RateLimits limits;
  const auto t0 = RateLimits::Clock::now();
  limits.back_off("api.x.com", 2s, t0);
  Status paused = limits.admit("api.x.com", std::nullopt, t0 + 500ms);
  ASSERT_FALSE(paused.ok());
  EXPECT_TRUE(paused.error().retryable);
  EXPECT_EQ(*paused.error().retry_after, 1500ms);
  EXPECT_TRUE(limits.admit("api.y.com", std::nullopt, t0 + 500ms).ok());
  EXPECT_TRUE(limits.admit("api.x.com", std::nullopt, t0 + 2s).ok());
}

TEST(RateLimits, MalformedBucketsAreClearErrors) {
  for (const Json& bad : {Json("fast"), Json{{"requests", 1}}, Json{{"key", "k"}},
                          Json{{"key", "k"}, {"requests", 0}},
                          Json{{"key", "k"}, {"requests", 1}, {"per", "soon"}}}) {
    auto bucket = RateLimits::read_bucket({{"rate_limit", bad}});
    ASSERT_FALSE(bucket.ok()) << bad.dump();
    EXPECT_EQ(bucket.error().code, ErrorCode::invalid_argument);
    EXPECT_NE(bucket.error().message.find("rate_limit"), std::string::npos);
  }
  EXPECT_FALSE(RateLimits::read_bucket(Json::object())->has_value());
}

TEST(RateLimits, UrlHostIsTheAuthorityLowerCased) {
  EXPECT_EQ(url_host("https://API.Example.com:8443/v1/x?y=1"), "api.example.com:8443");
  EXPECT_EQ(url_host("http://user:pw@host/a"), "host");
  EXPECT_EQ(url_host("http://127.0.0.1:9/"), "127.0.0.1:9");
}

Capability& find(const LoadedPlugin& plugin, const std::string& name) {
  for (const auto& c : plugin.capabilities) {
    if (c->info().name == name) return *c;
  }
  throw std::runtime_error("no capability " + name);
}

TEST(RateLimits, APlatformsRetryAfterHoldsBackTheNextCallsThroughTheHost) {
  herald::testing::LocalHttpServer server;
  server.route("GET", "/busy",
               herald::testing::Response::text(429, "slow down").with_header("Retry-After", "30"));
  auto plugin = load_native_plugin(test_plugin("test_good"));
  ASSERT_TRUE(plugin.ok()) << plugin.error().message;
  Capability& http = find(*plugin, "testgood.http");
  CallContext first;
  auto answered = http.invoke({{"url", server.url("/busy")}}, first.context);
  ASSERT_EQ(answered.kind, steps::StepOutcome::Kind::failed);
  EXPECT_TRUE(answered.error.retryable);
  // The next call, from another run, is not sent: the platform asked for 30 s.
  CallContext second;
  auto held = http.invoke({{"url", server.url("/busy")}}, second.context);
  ASSERT_EQ(held.kind, steps::StepOutcome::Kind::failed);
  EXPECT_EQ(held.error.code, ErrorCode::resource_exhausted) << held.error.message;
  EXPECT_TRUE(held.error.retryable);
  ASSERT_TRUE(held.error.retry_after.has_value());
  EXPECT_GT(*held.error.retry_after, 25s);
  EXPECT_EQ(server.request_count("GET", "/busy"), 1u);
  ASSERT_FALSE(second.logs.empty());
  EXPECT_NE(second.logs.back().find("not sent"), std::string::npos) << second.logs.back();
  RateLimits::shared().clear();  // the port may serve another test of this process next
}

}  // namespace
}  // namespace herald::plugins
