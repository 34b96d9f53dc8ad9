// The router on its own (no sockets): pattern matching and params, literal-over-param precedence,
// trailing slashes, 404 and 405 bodies, HEAD on GET routes, malformed patterns, and handler
// exceptions turned into a 500 that hides the exception's text.
#include <gtest/gtest.h>

#include <stdexcept>

#include "engine/server/http.h"

namespace herald::server {
namespace {

Request make_request(std::string method, std::string path) {
  Request request;
  request.method = std::move(method);
  request.path = std::move(path);
  request.request_id = "req-1";
  return request;
}

// A handler that answers with the name it was given and the params it saw.
Handler named(std::string name) {
  return [name](Request& request) {
    Json params = Json::object();
    for (const auto& [key, value] : request.params) params[key] = value;
    return json_response(200, {{"handler", name}, {"params", params}, {"route", request.route}});
  };
}

Json body_of(const Response& response) {
  return Json::parse(response.body);
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router.add("GET", "/api/v1/runs", "list runs", named("list"));
    router.add("POST", "/api/v1/runs", "start a run", named("start"));
    router.add("GET", "/api/v1/runs/{id}", "show a run", named("show"));
    router.add("DELETE", "/api/v1/runs/{id}", "cancel a run", named("cancel"));
    router.add("GET", "/api/v1/runs/stats", "run stats", named("stats"));
    router.add("GET", "/api/v1/workflows/{id}/versions/{version}", "a version", named("version"));
    router.add("GET", "/api/v1/workflows/{id}/versions/latest", "latest", named("latest"));
    router.add("GET", "/api/v1/workflows/special/versions/{version}", "special", named("special"));
    router.add("GET", "/", "root", named("root"));
  }

  Router router;
};

TEST_F(RouterTest, MatchesLiteralPaths) {
  auto request = make_request("GET", "/api/v1/runs");
  Response response = router.dispatch(request);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(body_of(response)["handler"], "list");
  EXPECT_EQ(request.route, "/api/v1/runs");
  EXPECT_TRUE(request.params.empty());

  auto post = make_request("POST", "/api/v1/runs");
  EXPECT_EQ(body_of(router.dispatch(post))["handler"], "start");

  auto root = make_request("GET", "/");
  EXPECT_EQ(body_of(router.dispatch(root))["handler"], "root");
}

TEST_F(RouterTest, FillsParams) {
  auto request = make_request("GET", "/api/v1/workflows/welcome/versions/3");
  Response response = router.dispatch(request);
  ASSERT_EQ(response.status, 200) << response.body;
  Json body = body_of(response);
  EXPECT_EQ(body["handler"], "version");
  EXPECT_EQ(body["params"], (Json{{"id", "welcome"}, {"version", "3"}}));
  EXPECT_EQ(request.params.at("id"), "welcome");
  EXPECT_EQ(request.params.at("version"), "3");
  EXPECT_EQ(request.route, "/api/v1/workflows/{id}/versions/{version}");
}

TEST_F(RouterTest, LiteralBeatsParamAtTheSamePosition) {
  auto stats = make_request("GET", "/api/v1/runs/stats");
  EXPECT_EQ(body_of(router.dispatch(stats))["handler"], "stats");
  EXPECT_EQ(stats.route, "/api/v1/runs/stats");
  EXPECT_TRUE(stats.params.empty());

  auto other = make_request("GET", "/api/v1/runs/r-123");
  Json body = body_of(router.dispatch(other));
  EXPECT_EQ(body["handler"], "show");
  EXPECT_EQ(body["params"]["id"], "r-123");

  auto latest = make_request("GET", "/api/v1/workflows/w/versions/latest");
  EXPECT_EQ(body_of(router.dispatch(latest))["handler"], "latest");

  // Both "/workflows/special/versions/{version}" and "/workflows/{id}/versions/latest" match;
  // the leftmost difference decides: the literal "special" comes first.
  auto both = make_request("GET", "/api/v1/workflows/special/versions/latest");
  EXPECT_EQ(body_of(router.dispatch(both))["handler"], "special");
  auto special = make_request("GET", "/api/v1/workflows/special/versions/7");
  Json special_body = body_of(router.dispatch(special));
  EXPECT_EQ(special_body["handler"], "special");
  EXPECT_EQ(special_body["params"], (Json{{"version", "7"}}));
}

TEST_F(RouterTest, PrecedenceDoesNotDependOnTheOrderRoutesWereAdded) {
  Router reversed;
  reversed.add("GET", "/a/stats", "", named("literal"));
  reversed.add("GET", "/a/{id}", "", named("param"));
  Router forward;
  forward.add("GET", "/a/{id}", "", named("param"));
  forward.add("GET", "/a/stats", "", named("literal"));
  for (Router* router : {&reversed, &forward}) {
    auto literal = make_request("GET", "/a/stats");
    EXPECT_EQ(body_of(router->dispatch(literal))["handler"], "literal");
    auto param = make_request("GET", "/a/x");
    EXPECT_EQ(body_of(router->dispatch(param))["handler"], "param");
  }
}

TEST_F(RouterTest, TrailingSlashIsTolerated) {
  auto request = make_request("GET", "/api/v1/runs/");
  Response response = router.dispatch(request);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(body_of(response)["handler"], "list");

  auto with_id = make_request("GET", "/api/v1/runs/abc/");
  Json body = body_of(router.dispatch(with_id));
  EXPECT_EQ(body["handler"], "show");
  EXPECT_EQ(body["params"]["id"], "abc");
}

TEST_F(RouterTest, EmptySegmentsMatchNoParam) {
  auto request = make_request("GET", "/api/v1/runs//");
  // "/api/v1/runs//" is "/api/v1/runs/" + an empty segment: {id} does not take "".
  EXPECT_EQ(router.dispatch(request).status, 404);
  auto inner = make_request("GET", "/api/v1//runs");
  EXPECT_EQ(router.dispatch(inner).status, 404);
}

TEST_F(RouterTest, NoMatchIs404WithMethodAndPath) {
  auto request = make_request("GET", "/api/v1/nothing");
  Response response = router.dispatch(request);
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.content_type, "application/json");
  Json error = body_of(response)["error"];
  EXPECT_EQ(error["code"], "not_found");
  EXPECT_EQ(error["request_id"], "req-1");
  std::string message = error["message"];
  EXPECT_NE(message.find("GET /api/v1/nothing"), std::string::npos) << message;
  EXPECT_TRUE(request.route.empty());
  EXPECT_EQ(router.match(request), nullptr);

  // Too many or too few segments do not match either.
  auto longer = make_request("GET", "/api/v1/runs/a/b");
  EXPECT_EQ(router.dispatch(longer).status, 404);
  auto shorter = make_request("GET", "/api");
  EXPECT_EQ(router.dispatch(shorter).status, 404);
}

TEST_F(RouterTest, OtherMethodIs405WithAllow) {
  auto request = make_request("PUT", "/api/v1/runs");
  Response response = router.dispatch(request);
  EXPECT_EQ(response.status, 405);
  std::string allow;
  for (const auto& [name, value] : response.headers) {
    if (name == "Allow") allow = value;
  }
  EXPECT_EQ(allow, "GET, POST");
  Json error = body_of(response)["error"];
  EXPECT_EQ(error["code"], "invalid_argument");
  std::string message = error["message"];
  EXPECT_NE(message.find("PUT"), std::string::npos) << message;
  EXPECT_NE(message.find("/api/v1/runs"), std::string::npos) << message;
  EXPECT_EQ(error["details"], (Json{{"allowed", {"GET", "POST"}}}));

  // The Allow list takes every pattern that matches the path: here {id} (GET, DELETE).
  auto by_id = make_request("POST", "/api/v1/runs/x");
  Response by_id_response = router.dispatch(by_id);
  EXPECT_EQ(by_id_response.status, 405);
  ASSERT_EQ(by_id_response.headers.size(), 1u);
  EXPECT_EQ(by_id_response.headers[0].second, "DELETE, GET");
}

TEST_F(RouterTest, HeadRunsTheGetRoute) {
  auto request = make_request("HEAD", "/api/v1/runs/r1");
  Response response = router.dispatch(request);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(body_of(response)["handler"], "show");
  EXPECT_EQ(request.route, "/api/v1/runs/{id}");
}

TEST_F(RouterTest, ParamsAndRouteAreResetBetweenDispatches) {
  auto request = make_request("GET", "/api/v1/runs/one");
  router.dispatch(request);
  EXPECT_EQ(request.params.size(), 1u);
  request.path = "/api/v1/nothing";
  router.dispatch(request);
  EXPECT_TRUE(request.params.empty());
  EXPECT_TRUE(request.route.empty());
}

TEST_F(RouterTest, MatchFillsTheRouteWithoutRunningIt) {
  bool ran = false;
  Router router;
  router.add("POST", "/x/{id}", "", [&](Request&) {
    ran = true;
    return json_response(200, nullptr);
  });
  auto request = make_request("POST", "/x/7");
  const Route* route = router.match(request);
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(route->pattern, "/x/{id}");
  EXPECT_EQ(request.route, "/x/{id}");
  EXPECT_EQ(request.params.at("id"), "7");
  EXPECT_FALSE(ran);
}

TEST_F(RouterTest, HandlerExceptionIs500WithAGenericMessage) {
  Router router;
  router.add("GET", "/boom", "", [](Request&) -> Response {
    throw std::runtime_error("database password is hunter2");
  });
  router.add("GET", "/weird", "", [](Request&) -> Response { throw 42; });
  for (const char* path : {"/boom", "/weird"}) {
    auto request = make_request("GET", path);
    request.request_id = "abc123";
    Response response = router.dispatch(request);
    EXPECT_EQ(response.status, 500);
    EXPECT_EQ(response.body.find("hunter2"), std::string::npos) << response.body;
    Json error = body_of(response)["error"];
    EXPECT_EQ(error["code"], "internal");
    EXPECT_EQ(error["message"], "internal error; see the server log for request abc123");
    EXPECT_EQ(error["request_id"], "abc123");
    EXPECT_FALSE(error.contains("details"));
  }
}

TEST(RouterAddTest, RefusesMalformedAndDuplicatePatterns) {
  Router router;
  auto add = [&](const char* method, const char* pattern) {
    router.add(method, pattern, "", named("x"));
  };
  EXPECT_THROW(add("GET", "api/v1"), std::invalid_argument);
  EXPECT_THROW(add("GET", ""), std::invalid_argument);
  EXPECT_THROW(add("GET", "/a//b"), std::invalid_argument);
  EXPECT_THROW(add("GET", "/a/{}"), std::invalid_argument);
  EXPECT_THROW(add("GET", "/a/x{id}"), std::invalid_argument);
  EXPECT_THROW(add("GET", "/a/{id}/b/{id}"), std::invalid_argument);
  EXPECT_THROW(add("", "/a"), std::invalid_argument);
  EXPECT_TRUE(router.routes().empty());

  add("GET", "/a/{id}");
  EXPECT_THROW(add("GET", "/a/{other}"), std::invalid_argument);  // same shape
  EXPECT_THROW(add("get", "/a/{id}/"), std::invalid_argument);    // same after normalising
  add("POST", "/a/{id}");
  add("GET", "/a/b");
  ASSERT_EQ(router.routes().size(), 3u);
  EXPECT_EQ(router.routes()[0].method, "GET");
  EXPECT_EQ(router.routes()[1].method, "POST");
}

TEST(RouterAddTest, MethodsAreCaseInsensitive) {
  Router router;
  router.add("get", "/a", "", named("a"));
  auto request = make_request("GET", "/a");
  EXPECT_EQ(router.dispatch(request).status, 200);
}

}  // namespace
}  // namespace herald::server
