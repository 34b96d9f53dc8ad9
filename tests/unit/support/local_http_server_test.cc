// The test server's own rules: route precedence, scripts, recording, the effects ledger, and a
// stop that does not wait out a long delay.
#include <gtest/gtest.h>

#include <thread>

#include "tests/support/http_client.h"
#include "tests/support/local_http_server.h"

namespace herald::testing {
namespace {

using namespace std::chrono_literals;

TEST(LocalHttpServer, BindsAFreePortOnLoopback) {
  LocalHttpServer a;
  LocalHttpServer b;
  EXPECT_NE(a.port(), 0);
  EXPECT_NE(a.port(), b.port());
  EXPECT_EQ(a.url("/x?y=1"), "http://127.0.0.1:" + std::to_string(a.port()) + "/x?y=1");
}

TEST(LocalHttpServer, UnmatchedRequestsGet404) {
  LocalHttpServer server;
  auto reply = http_call("GET", server.url("/nowhere"));
  EXPECT_EQ(reply.status, 404);
  EXPECT_NE(reply.body.find("GET /nowhere"), std::string::npos);
  EXPECT_EQ(server.request_count("GET", "/nowhere"), 1u);
}

TEST(LocalHttpServer, RoutePrecedence) {
  LocalHttpServer server;
  server.route("*", "/*", Response::text(200, "catch-all"));
  server.route("*", "/api/*", Response::text(200, "api"));
  server.route("*", "/api/v2/*", Response::text(200, "v2"));
  server.route("GET", "/api/v2/*", Response::text(200, "v2 get"));
  server.route("*", "/api/v2/exact", Response::text(200, "exact"));
  EXPECT_EQ(http_call("GET", server.url("/other")).body, "catch-all");
  EXPECT_EQ(http_call("GET", server.url("/api")).body, "api");
  EXPECT_EQ(http_call("GET", server.url("/apix")).body, "catch-all");
  EXPECT_EQ(http_call("GET", server.url("/api/v1/x")).body, "api");
  EXPECT_EQ(http_call("POST", server.url("/api/v2/x")).body, "v2");
  EXPECT_EQ(http_call("GET", server.url("/api/v2/x")).body, "v2 get");
  EXPECT_EQ(http_call("GET", server.url("/api/v2/exact")).body, "exact");
}

TEST(LocalHttpServer, ScriptThenHandler) {
  LocalHttpServer server;
  server.route("GET", "/s", Response::text(200, "handler"));
  server.script("GET", "/s", {Response::text(503, "one"), Response::text(429, "two")});
  EXPECT_EQ(http_call("GET", server.url("/s")).status, 503);
  EXPECT_EQ(http_call("GET", server.url("/s")).status, 429);
  EXPECT_EQ(http_call("GET", server.url("/s")).body, "handler");
  EXPECT_EQ(http_call("GET", server.url("/s")).body, "handler");
}

TEST(LocalHttpServer, ScriptWithoutHandlerRepeatsItsLastResponse) {
  LocalHttpServer server;
  server.script("GET", "/s", {Response::text(503, ""), Response::json(200, {{"ok", true}})});
  EXPECT_EQ(http_call("GET", server.url("/s")).status, 503);
  EXPECT_EQ(http_call("GET", server.url("/s")).body, "{\"ok\":true}");
  auto again = http_call("GET", server.url("/s"));
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.headers["content-type"], "application/json");
}

TEST(LocalHttpServer, RecordsRequests) {
  LocalHttpServer server;
  server.route("POST", "/r", [](const RecordedRequest& request) {
    return Response::text(200, request.header("X-Thing"));
  });
  auto before = std::chrono::steady_clock::now();
  auto reply = http_call("POST", server.url("/r?a=1&b=x%20y&c=p+q"), {{"X-Thing", "t"}}, "payload");
  EXPECT_EQ(reply.body, "t");
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  const RecordedRequest& request = requests[0];
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.path, "/r");
  EXPECT_EQ(request.query, "a=1&b=x%20y&c=p+q");
  EXPECT_EQ(request.query_params(),
            (std::map<std::string, std::string>{{"a", "1"}, {"b", "x y"}, {"c", "p q"}}));
  EXPECT_EQ(request.headers.at("x-thing"), "t");
  EXPECT_EQ(request.header("X-THING"), "t");
  EXPECT_EQ(request.body, "payload");
  EXPECT_GE(request.received_at, before);
  server.clear_requests();
  EXPECT_EQ(server.request_count(), 0u);
}

TEST(LocalHttpServer, HandlerExceptionsBecome500) {
  LocalHttpServer server;
  server.route("GET", "/throws",
               [](const RecordedRequest&) -> Response { throw std::runtime_error("oops"); });
  auto reply = http_call("GET", server.url("/throws"));
  EXPECT_EQ(reply.status, 500);
  EXPECT_NE(reply.body.find("oops"), std::string::npos);
}

TEST(LocalHttpServer, DelaysAndChunkedBodies) {
  LocalHttpServer server;
  server.route("GET", "/slow", Response::text(200, "late").after(150ms).as_chunked());
  auto start = std::chrono::steady_clock::now();
  auto reply = http_call("GET", server.url("/slow"));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);
  EXPECT_EQ(reply.body, "late");
  EXPECT_EQ(reply.headers["transfer-encoding"], "chunked");
}

TEST(LocalHttpServer, StopCutsDelaysShort) {
  auto server = std::make_unique<LocalHttpServer>();
  server->route("GET", "/forever", Response::text(200, "").after(60s));
  std::thread client([url = server->url("/forever")] { http_call("GET", url, {}, "", 30s); });
  ASSERT_TRUE(server->wait_for_requests(1, 5s));
  auto start = std::chrono::steady_clock::now();
  server.reset();
  client.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(LocalHttpServer, WaitForRequestsTimesOut) {
  LocalHttpServer server;
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(server.wait_for_requests(1, 50ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
}

TEST(LocalHttpServer, EffectsRouteCountsOnePerKey) {
  LocalHttpServer server;
  server.add_effects_route("/effects");
  auto first = http_call("POST", server.url("/effects/charge"), {{"Idempotency-Key", "k1"}},
                         "{\"amount\":5}");
  auto repeat = http_call("POST", server.url("/effects/charge"), {{"Idempotency-Key", "k1"}},
                          "{\"amount\":5}");
  auto other = http_call("POST", server.url("/effects"), {{"Idempotency-Key", "k2"}}, "x");
  auto changed = http_call("POST", server.url("/effects/charge"), {{"Idempotency-Key", "k1"}},
                           "{\"amount\":6}");
  auto keyless = http_call("POST", server.url("/effects/charge"), {}, "{}");
  EXPECT_EQ(first.status, 200);
  Json body = Json::parse(first.body);
  EXPECT_EQ(body["effect"], 1);
  EXPECT_EQ(body["key"], "k1");
  EXPECT_EQ(body["path"], "/effects/charge");
  EXPECT_EQ(body["body"]["amount"], 5);
  EXPECT_EQ(repeat.status, 200);
  EXPECT_EQ(repeat.body, first.body);
  EXPECT_EQ(repeat.headers["idempotent-replayed"], "true");
  EXPECT_EQ(first.headers.count("idempotent-replayed"), 0u);
  EXPECT_EQ(Json::parse(other.body)["effect"], 2);
  EXPECT_EQ(changed.status, 422);
  EXPECT_EQ(keyless.status, 400);

  const EffectLedger& ledger = server.effects();
  EXPECT_EQ(ledger.effect_count(), 2);
  EXPECT_EQ(ledger.request_count(), 5);
  EXPECT_EQ(ledger.without_key(), 1);
  EXPECT_EQ(ledger.count("k1").requests, 3);
  EXPECT_EQ(ledger.count("k1").effects, 1);
  EXPECT_EQ(ledger.count("k1").mismatches, 1);
  EXPECT_EQ(ledger.count("unseen").requests, 0);
  EXPECT_EQ(ledger.order(), (std::vector<std::string>{"k1", "k2"}));
  Json stats = ledger.stats();
  EXPECT_EQ(stats["effects"], 2);
  EXPECT_EQ(stats["requests"], 5);
  EXPECT_EQ(stats["mismatches"], 1);
  EXPECT_EQ(stats["keys"]["k2"], Json({{"requests", 1}, {"effects", 1}, {"mismatches", 0}}));
  EXPECT_EQ(stats["order"], Json({"k1", "k2"}));
}

TEST(LocalHttpServer, EffectIsRecordedBeforeTheDelayedAnswer) {
  LocalHttpServer server;
  server.add_effects_route("/effects");
  // The client gives up before the answer: the effect still happened, as after a kill -9.
  auto reply = http_call("POST", server.url("/effects/x?delay_ms=2000"), {{"Idempotency-Key", "k"}},
                         "", 100ms);
  EXPECT_EQ(reply.status, 0);
  EXPECT_FALSE(reply.error.empty());
  EXPECT_EQ(server.effects().effect_count(), 1);
}

TEST(EffectLedger, ClearForgetsEverything) {
  EffectLedger ledger;
  EXPECT_EQ(ledger.apply("k", "POST", "/e", "").status, 200);
  ledger.clear();
  EXPECT_EQ(ledger.effect_count(), 0);
  EXPECT_FALSE(ledger.apply("k", "POST", "/e", "").replayed);
}

TEST(HttpClient, ReportsConnectionFailures) {
  uint16_t port;
  {
    LocalHttpServer server;
    port = server.port();
  }
  auto reply = http_call("GET", "http://127.0.0.1:" + std::to_string(port) + "/", {}, "", 1s);
  EXPECT_EQ(reply.status, 0);
  EXPECT_FALSE(reply.error.empty());
}

}  // namespace
}  // namespace herald::testing
