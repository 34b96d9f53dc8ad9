// The HTTP layer: error bodies and statuses for every error code, and a real HttpServer on a free
// port driven over TCP — JSON bodies, query and path decoding, request ids, body limits (with
// Content-Length and chunked), keep-alive, metrics, stop() — plus parse_listen_address.
#include "engine/server/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <future>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "engine/server/metrics.h"
#include "tests/support/http_client.h"

namespace herald::server {
namespace {

using namespace std::chrono_literals;
using testing::http_call;
using testing::HttpConnection;
using testing::HttpReply;

Json body_of(const Response& response) {
  return Json::parse(response.body);
}

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// A raw client connection, for holding many kept-alive connections open at once.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    // A safety net so a broken server cannot hang the test; never reached when it works.
    timeval timeout{30, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~RawConnection() { ::close(fd_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return connected_; }
  bool send(const std::string& data) {
    return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }
  // Reads one response with a Content-Length body; "" when the connection ended first.
  std::string read_response() {
    while (true) {
      size_t end = buffer_.find("\r\n\r\n");
      if (end != std::string::npos) {
        std::string head = lower(buffer_.substr(0, end));
        size_t at = head.find("content-length:");
        size_t length = at == std::string::npos ? 0 : std::stoul(head.substr(at + 15));
        if (buffer_.size() >= end + 4 + length) {
          std::string response = buffer_.substr(0, end + 4 + length);
          buffer_.erase(0, end + 4 + length);
          return response;
        }
      }
      char chunk[4096];
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return "";
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  // True once the server has closed the connection (end of stream or reset), reading and
  // dropping whatever came before.
  bool closed_by_server() {
    char chunk[4096];
    while (true) {
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
  }

 private:
  int fd_;
  bool connected_ = false;
  std::string buffer_;
};

// ---------------------------------------------------------------------------------------------
// Errors

TEST(ErrorResponseTest, StatusForEveryCode) {
  const std::vector<std::pair<ErrorCode, int>> expected = {
      {ErrorCode::invalid_argument, 400},   {ErrorCode::unauthenticated, 401},
      {ErrorCode::permission_denied, 403},  {ErrorCode::not_found, 404},
      {ErrorCode::already_exists, 409},     {ErrorCode::failed_precondition, 409},
      {ErrorCode::resource_exhausted, 429}, {ErrorCode::cancelled, 499},
      {ErrorCode::unavailable, 503},        {ErrorCode::deadline_exceeded, 504},
      {ErrorCode::internal, 500},
  };
  ASSERT_EQ(expected.size(), 11u);  // every ErrorCode
  for (const auto& [code, status] : expected) {
    Error error = make_error(code, "something about " + std::string(to_string(code)));
    EXPECT_EQ(http_status_for(error), status) << to_string(code);
    Response response = error_response(error, "rid-1");
    EXPECT_EQ(response.status, status) << to_string(code);
    EXPECT_EQ(response.content_type, "application/json");
    Json body = body_of(response);
    ASSERT_TRUE(body.is_object());
    ASSERT_EQ(body.size(), 1u) << response.body;
    const Json& e = body["error"];
    EXPECT_EQ(e["code"], std::string(to_string(code)));
    EXPECT_EQ(e["request_id"], "rid-1");
    EXPECT_FALSE(e.contains("details")) << response.body;
    if (code == ErrorCode::internal) {
      EXPECT_EQ(e["message"], "internal error; see the server log for request rid-1");
      EXPECT_EQ(e.size(), 3u) << response.body;
    } else {
      EXPECT_EQ(e["message"], "something about " + std::string(to_string(code)));
      EXPECT_EQ(e.size(), 3u) << response.body;
    }
  }
}

TEST(ErrorResponseTest, DetailsAreShown) {
  Error error = make_error(ErrorCode::invalid_argument, "bad workflow");
  error.details = {{"problems", {"steps[0].uses: unknown step type"}}};
  Json body = body_of(error_response(error, "r"));
  EXPECT_EQ(body["error"]["details"], error.details);
  EXPECT_EQ(body["error"]["message"], "bad workflow");

  // Non-object details are shown as they are.
  error.details = Json::array({1, 2});
  EXPECT_EQ(body_of(error_response(error, "r"))["error"]["details"], Json::array({1, 2}));
}

TEST(ErrorResponseTest, HttpStatusInDetailsOverridesAndIsHidden) {
  Error error = make_error(ErrorCode::invalid_argument, "unprocessable");
  error.details = {{"http_status", 422}, {"field", "inputs.brand"}};
  EXPECT_EQ(http_status_for(error), 422);
  Response response = error_response(error, "r");
  EXPECT_EQ(response.status, 422);
  EXPECT_EQ(body_of(response)["error"]["details"], (Json{{"field", "inputs.brand"}}));

  // Only http_status: no details left to show.
  error.details = {{"http_status", 415}};
  response = error_response(error, "r");
  EXPECT_EQ(response.status, 415);
  EXPECT_FALSE(body_of(response)["error"].contains("details")) << response.body;

  // Nonsense overrides are ignored.
  for (Json bad : {Json("413"), Json(99), Json(600), Json(413.5), Json(nullptr)}) {
    error.details = {{"http_status", bad}};
    EXPECT_EQ(http_status_for(error), 400) << bad.dump();
  }
}

TEST(ErrorResponseTest, HttpErrorHelper) {
  Error error = http_error(ErrorCode::resource_exhausted, 413, "too big");
  EXPECT_EQ(error.code, ErrorCode::resource_exhausted);
  EXPECT_EQ(error.message, "too big");
  EXPECT_EQ(http_status_for(error), 413);
  Response response = error_response(error, "r");
  EXPECT_EQ(response.status, 413);
  Json e = body_of(response)["error"];
  EXPECT_EQ(e["code"], "resource_exhausted");
  EXPECT_EQ(e["message"], "too big");
  EXPECT_FALSE(e.contains("details"));

  Error with_details =
      http_error(ErrorCode::invalid_argument, 422, "bad input", {{"field", "name"}});
  response = error_response(with_details, "r");
  EXPECT_EQ(response.status, 422);
  EXPECT_EQ(body_of(response)["error"]["details"], (Json{{"field", "name"}}));

  Error with_array = http_error(ErrorCode::invalid_argument, 422, "bad", Json::array({"a"}));
  response = error_response(with_array, "r");
  EXPECT_EQ(response.status, 422);
  EXPECT_EQ(body_of(response)["error"]["details"], (Json{{"value", {"a"}}}));
}

TEST(ErrorResponseTest, InternalErrorsHideMessageAndDetails) {
  Error error = make_error(ErrorCode::internal, "sqlite: disk I/O error at /var/lib/secret.db");
  error.details = {{"sql", "SELECT token FROM api_tokens"}};
  Response response = error_response(error, "req-42");
  EXPECT_EQ(response.status, 500);
  EXPECT_EQ(response.body.find("sqlite"), std::string::npos) << response.body;
  EXPECT_EQ(response.body.find("api_tokens"), std::string::npos) << response.body;
  Json e = body_of(response)["error"];
  EXPECT_EQ(e["code"], "internal");
  EXPECT_EQ(e["message"], "internal error; see the server log for request req-42");
  EXPECT_EQ(e["request_id"], "req-42");
  EXPECT_FALSE(e.contains("details"));
}

std::string header_of(const Response& response, const std::string& name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) return value;
  }
  return "";
}

TEST(ErrorResponseTest, RetryAfterBecomesAHeader) {
  Error error = make_error(ErrorCode::resource_exhausted, "slow down", true);
  error.retry_after = 1500ms;
  Response response = error_response(error, "r");
  EXPECT_EQ(response.status, 429);
  EXPECT_EQ(header_of(response, "Retry-After"), "2");
  error.retry_after = 1ms;
  EXPECT_EQ(header_of(error_response(error, "r"), "Retry-After"), "1");
  EXPECT_EQ(header_of(error_response(make_error(ErrorCode::unavailable, "x"), "r"), "Retry-After"),
            "");
  size_t count = 0;
  for (const auto& header : error_response(error, "r").headers)
    count += header.first == "Retry-After";
  EXPECT_EQ(count, 1u);
}

TEST(JsonResponseTest, InvalidUtf8DoesNotThrow) {
  Response response = json_response(404, {{"message", std::string("bad \xff byte")}});
  EXPECT_EQ(response.status, 404);
  Json parsed;
  EXPECT_NO_THROW(parsed = Json::parse(response.body));
  EXPECT_EQ(parsed["message"].get<std::string>().substr(0, 4), "bad ");
}

TEST(RequestTest, HeaderAndContentType) {
  Request request;
  request.headers = {{"content-type", " Application/JSON ; charset=utf-8"}, {"x-a", "1"}};
  ASSERT_NE(request.header("x-a"), nullptr);
  EXPECT_EQ(*request.header("x-a"), "1");
  EXPECT_EQ(request.header("x-b"), nullptr);
  EXPECT_EQ(request.content_type(), "application/json");
  request.headers.clear();
  EXPECT_EQ(request.content_type(), "");
}

// ---------------------------------------------------------------------------------------------
// parse_listen_address

TEST(ParseListenAddressTest, AcceptedForms) {
  using Pair = std::pair<std::string, uint16_t>;
  const std::vector<std::pair<std::string, Pair>> cases = {
      {"127.0.0.1:8080", {"127.0.0.1", 8080}},
      {"[::1]:8080", {"::1", 8080}},
      {":8080", {"0.0.0.0", 8080}},
      {"8080", {"127.0.0.1", 8080}},
      {"localhost:0", {"localhost", 0}},
      {"0.0.0.0:65535", {"0.0.0.0", 65535}},
      {"[::]:80", {"::", 80}},
      {"example.org:00443", {"example.org", 443}},
  };
  for (const auto& [text, expected] : cases) {
    auto parsed = parse_listen_address(text);
    ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.error().message;
    EXPECT_EQ(*parsed, expected) << text;
  }
}

TEST(ParseListenAddressTest, RefusedForms) {
  for (std::string text : {"", "127.0.0.1:", ":", "127.0.0.1:65536", "99999", "host:http",
                           "host:-1", "host:+80", "host:80 ", "::1:8080", "[::1]", "[::1]8080",
                           "[::1:8080", "[]:80", "a b:80", "host:1234567"}) {
    auto parsed = parse_listen_address(text);
    ASSERT_FALSE(parsed.ok()) << "'" << text << "' was accepted";
    EXPECT_EQ(parsed.error().code, ErrorCode::invalid_argument) << text;
    EXPECT_NE(parsed.error().message.find("'" + text + "'"), std::string::npos)
        << parsed.error().message;
  }
}

// ---------------------------------------------------------------------------------------------
// HttpServer

bool looks_generated(const std::string& id) {
  return id.size() == 16 &&
         std::all_of(id.begin(), id.end(), [](unsigned char c) { return std::isalnum(c) != 0; });
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router.add("GET", "/echo", "echo the request", [this](Request& request) {
      ++echo_calls;
      Json headers = Json::object();
      for (const auto& [name, value] : request.headers) headers[name] = value;
      Json query = Json::object();
      for (const auto& [name, value] : request.query) query[name] = value;
      return json_response(200, {{"method", request.method},
                                 {"path", request.path},
                                 {"query", query},
                                 {"headers", headers},
                                 {"body", request.body},
                                 {"remote_address", request.remote_address},
                                 {"request_id", request.request_id},
                                 {"route", request.route}});
    });
    router.add("POST", "/echo", "echo a body", [](Request& request) {
      Response response;
      response.content_type = "text/plain; charset=utf-8";
      response.body = request.body;
      response.headers.emplace_back("X-Body-Size", std::to_string(request.body.size()));
      return response;
    });
    router.add("POST", "/items", "create an item", [this](Request& request) {
      ++item_posts;
      if (request.content_type() != "application/json") {
        return error_response(
            http_error(ErrorCode::invalid_argument, 415, "expected application/json"),
            request.request_id);
      }
      Json item = Json::parse(request.body, nullptr, false);
      if (item.is_discarded()) {
        return error_response(make_error(ErrorCode::invalid_argument, "body is not JSON"),
                              request.request_id);
      }
      item["id"] = "item-1";
      return json_response(201, item);
    });
    router.add("GET", "/items/{id}", "show an item", [](Request& request) {
      return json_response(200, {{"id", request.params.at("id")}});
    });
    router.add("GET", "/boom", "throws",
               [](Request&) -> Response { throw std::runtime_error("secret internals"); });
    router.add("DELETE", "/items/{id}", "no content", [](Request&) {
      Response response;
      response.status = 204;
      return response;
    });
    router.add("GET", "/slow", "sleeps", [this](Request& request) {
      slow_started.set_value();
      std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(request.query.at("ms"))));
      ++slow_finished;
      return json_response(200, {{"slept", true}});
    });
    // Blocks until the test releases it: a handler that never ends as far as stop() can tell.
    router.add("GET", "/stuck", "blocks", [this](Request&) {
      slow_started.set_value();
      stuck_released.wait();
      ++slow_finished;
      return json_response(200, {{"released", true}});
    });
  }

  void start(ServerOptions options = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    if (options.max_body_bytes == ServerOptions{}.max_body_bytes) options.max_body_bytes = 1024;
    options.max_threads = 8;
    server = std::make_unique<HttpServer>(router, options, &metrics);
    Status started = server->start();
    ASSERT_TRUE(started.ok()) << started.error().message;
    ASSERT_NE(server->port(), 0);
  }

  std::string url(const std::string& target) const {
    return "http://127.0.0.1:" + std::to_string(server->port()) + target;
  }

  Router router;
  Metrics metrics;
  std::unique_ptr<HttpServer> server;
  std::atomic<int> echo_calls{0};
  std::atomic<int> item_posts{0};
  std::atomic<int> slow_finished{0};
  std::promise<void> slow_started;
  std::promise<void> release_stuck;
  std::shared_future<void> stuck_released = release_stuck.get_future().share();
};

TEST_F(HttpServerTest, GetEcho) {
  start();
  HttpReply reply = http_call("GET", url("/echo"), {{"X-Custom-Header", "Value"}});
  ASSERT_EQ(reply.status, 200) << reply.error << reply.body;
  EXPECT_EQ(reply.headers["content-type"], "application/json");
  EXPECT_EQ(reply.headers["content-length"], std::to_string(reply.body.size()));
  Json body = Json::parse(reply.body);
  EXPECT_EQ(body["method"], "GET");
  EXPECT_EQ(body["path"], "/echo");
  EXPECT_EQ(body["route"], "/echo");
  EXPECT_EQ(body["body"], "");
  EXPECT_EQ(body["remote_address"], "127.0.0.1");
  EXPECT_EQ(body["headers"]["x-custom-header"], "Value");  // names lowercased
  EXPECT_FALSE(body["headers"].contains("X-Custom-Header"));
  EXPECT_TRUE(body["headers"].contains("host"));
}

TEST_F(HttpServerTest, PostJson) {
  start();
  HttpReply reply =
      http_call("POST", url("/items"), {{"Content-Type", "application/json; charset=utf-8"}},
                R"({"name":"mug","price":12.5})");
  ASSERT_EQ(reply.status, 201) << reply.error << reply.body;
  Json body = Json::parse(reply.body);
  EXPECT_EQ(body, (Json{{"name", "mug"}, {"price", 12.5}, {"id", "item-1"}}));

  HttpReply wrong_type = http_call("POST", url("/items"), {{"Content-Type", "text/plain"}}, "x");
  EXPECT_EQ(wrong_type.status, 415);
  EXPECT_EQ(Json::parse(wrong_type.body)["error"]["code"], "invalid_argument");
  HttpReply not_json =
      http_call("POST", url("/items"), {{"Content-Type", "application/json"}}, "{nope");
  EXPECT_EQ(not_json.status, 400);
}

TEST_F(HttpServerTest, HandlerContentTypeAndHeaders) {
  start();
  HttpReply reply = http_call("POST", url("/echo"), {}, "hello");
  ASSERT_EQ(reply.status, 200) << reply.error;
  EXPECT_EQ(reply.body, "hello");
  EXPECT_EQ(reply.headers["content-type"], "text/plain; charset=utf-8");
  EXPECT_EQ(reply.headers["x-body-size"], "5");
}

TEST_F(HttpServerTest, QueryAndPathArePercentDecoded) {
  start();
  HttpReply reply =
      http_call("GET", url("/echo?name=caf%C3%A9%20bar&x=1&x=2&empty=&amp=a%26b&flag"));
  ASSERT_EQ(reply.status, 200) << reply.error << reply.body;
  Json query = Json::parse(reply.body)["query"];
  EXPECT_EQ(query["name"], "café bar");
  EXPECT_EQ(query["x"], "2");  // the last of a repeated key
  EXPECT_EQ(query["empty"], "");
  EXPECT_EQ(query["amp"], "a&b");
  EXPECT_EQ(query["flag"], "");
  EXPECT_EQ(query.size(), 5u) << query.dump();

  HttpReply item = http_call("GET", url("/items/a%20b%C3%A9"));
  ASSERT_EQ(item.status, 200) << item.body;
  EXPECT_EQ(Json::parse(item.body)["id"], "a bé");

  HttpReply slash = http_call("GET", url("/echo/"));
  EXPECT_EQ(slash.status, 200);
  EXPECT_EQ(Json::parse(slash.body)["path"], "/echo/");
}

TEST_F(HttpServerTest, MalformedPercentEncodingIs400) {
  start();
  HttpConnection connection("127.0.0.1", server->port());
  HttpReply reply = connection.call("GET", "/items/%zz");
  EXPECT_EQ(reply.status, 400) << reply.error << reply.body;
  Json e = Json::parse(reply.body)["error"];
  EXPECT_EQ(e["code"], "invalid_argument");
  // The connection stays usable.
  EXPECT_EQ(connection.call("GET", "/items/7").status, 200);
  EXPECT_EQ(connection.connections_used(), 1u);
}

TEST_F(HttpServerTest, RequestIdIsEchoedWhenSane) {
  start();
  const std::string id = "client.Req-123_abc";
  HttpReply reply = http_call("GET", url("/echo"), {{"X-Request-Id", id}});
  ASSERT_EQ(reply.status, 200) << reply.error;
  EXPECT_EQ(reply.headers["x-request-id"], id);
  EXPECT_EQ(Json::parse(reply.body)["request_id"], id);

  const std::string longest(128, 'a');
  EXPECT_EQ(http_call("GET", url("/echo"), {{"X-Request-Id", longest}}).headers["x-request-id"],
            longest);
}

TEST_F(HttpServerTest, RequestIdIsGeneratedWhenMissing) {
  start();
  std::set<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    HttpReply reply = http_call("GET", url("/echo"));
    ASSERT_EQ(reply.status, 200) << reply.error;
    std::string id = reply.headers["x-request-id"];
    EXPECT_TRUE(looks_generated(id)) << id;
    EXPECT_EQ(Json::parse(reply.body)["request_id"], id);
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 5u);
  // Also on errors the router produces.
  HttpReply missing = http_call("GET", url("/missing"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_TRUE(looks_generated(missing.headers["x-request-id"]));
  EXPECT_EQ(Json::parse(missing.body)["error"]["request_id"], missing.headers["x-request-id"]);
}

TEST_F(HttpServerTest, BadRequestIdsAreReplaced) {
  start();
  for (std::string bad :
       {std::string("has space"), std::string("semi;colon"), std::string("new\\line"),
        std::string(129, 'a'), std::string("é"), std::string("<script>")}) {
    HttpReply reply = http_call("GET", url("/echo"), {{"X-Request-Id", bad}});
    ASSERT_EQ(reply.status, 200) << bad << ": " << reply.error;
    std::string id = reply.headers["x-request-id"];
    EXPECT_NE(id, bad);
    EXPECT_TRUE(looks_generated(id)) << bad << " -> " << id;
    EXPECT_EQ(Json::parse(reply.body)["request_id"], id);
  }
}

TEST_F(HttpServerTest, HandlerExceptionIsAGeneric500) {
  start();
  HttpReply reply = http_call("GET", url("/boom"), {{"X-Request-Id", "trace-1"}});
  EXPECT_EQ(reply.status, 500);
  EXPECT_EQ(reply.headers["content-type"], "application/json");
  EXPECT_EQ(reply.headers["x-request-id"], "trace-1");
  EXPECT_EQ(reply.body.find("secret"), std::string::npos) << reply.body;
  EXPECT_EQ(Json::parse(reply.body)["error"]["message"],
            "internal error; see the server log for request trace-1");
}

TEST_F(HttpServerTest, NotFoundAndMethodNotAllowed) {
  start();
  HttpReply missing = http_call("GET", url("/nowhere"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.find("GET /nowhere"), std::string::npos) << missing.body;
  HttpReply wrong = http_call("PATCH", url("/items/1"), {}, "{}");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.headers["allow"], "DELETE, GET");
}

TEST_F(HttpServerTest, NoContentAndHead) {
  start();
  HttpReply deleted = http_call("DELETE", url("/items/1"));
  EXPECT_EQ(deleted.status, 204) << deleted.error;
  EXPECT_EQ(deleted.body, "");
  EXPECT_EQ(deleted.headers.count("content-length"), 0u);

  HttpConnection connection("127.0.0.1", server->port());
  HttpReply head = connection.call("HEAD", "/items/1");
  EXPECT_EQ(head.status, 200) << head.error;
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(head.headers["content-length"], std::to_string(std::string(R"({"id":"1"})").size()));
  // The connection is still in step after a HEAD (no body was sent).
  HttpReply after = connection.call("GET", "/items/2");
  EXPECT_EQ(after.status, 200);
  EXPECT_EQ(after.body, R"({"id":"2"})");
  EXPECT_EQ(connection.connections_used(), 1u);
}

TEST_F(HttpServerTest, BodyOverTheLimitWithContentLengthIs413) {
  start();
  HttpReply reply = http_call("POST", url("/items"), {{"Content-Type", "application/json"}},
                              std::string(64 * 1024, 'x'));
  ASSERT_EQ(reply.status, 413) << reply.error;
  Json e = Json::parse(reply.body)["error"];
  EXPECT_EQ(e["code"], "resource_exhausted");
  EXPECT_NE(std::string(e["message"]).find("1024 bytes"), std::string::npos) << reply.body;
  EXPECT_EQ(e["details"], (Json{{"limit_bytes", 1024}}));
  EXPECT_EQ(lower(reply.headers["connection"]), "close");
  EXPECT_FALSE(reply.headers["x-request-id"].empty());
  EXPECT_EQ(item_posts, 0);  // the handler never ran

  // Exactly at the limit is fine.
  HttpReply at_limit = http_call("POST", url("/echo"), {}, std::string(1024, 'y'));
  EXPECT_EQ(at_limit.status, 200);
  EXPECT_EQ(at_limit.body.size(), 1024u);
}

TEST_F(HttpServerTest, HugeContentLengthIsRefusedWithoutWaitingForTheBody) {
  start();
  // Only the headers are sent; a server that waited for 100 MB would time the client out.
  auto started = std::chrono::steady_clock::now();
  HttpReply reply = http_call("GET", url("/echo"), {{"Content-Length", "100000000"}}, "", 5s);
  EXPECT_EQ(reply.status, 413) << reply.error;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
  EXPECT_EQ(echo_calls, 0);
}

TEST_F(HttpServerTest, ChunkedBodies) {
  start();
  HttpConnection connection("127.0.0.1", server->port());
  HttpReply small = connection.call("POST", "/echo", {}, std::string(1000, 'c'), true);
  ASSERT_EQ(small.status, 200) << small.error << small.body;
  EXPECT_EQ(small.body, std::string(1000, 'c'));

  HttpReply exact = connection.call("POST", "/echo", {}, std::string(1024, 'd'), true);
  ASSERT_EQ(exact.status, 200) << exact.error;
  EXPECT_EQ(exact.body.size(), 1024u);
  EXPECT_EQ(connection.connections_used(), 1u);

  HttpReply big = connection.call("POST", "/items", {{"Content-Type", "application/json"}},
                                  std::string(1025, 'e'), true);
  ASSERT_EQ(big.status, 413) << big.error << big.body;
  EXPECT_EQ(Json::parse(big.body)["error"]["code"], "resource_exhausted");
  EXPECT_EQ(lower(big.headers["connection"]), "close");
  EXPECT_EQ(item_posts, 0);

  HttpReply much_bigger = connection.call("POST", "/items", {}, std::string(200 * 1024, 'f'), true);
  EXPECT_EQ(much_bigger.status, 413) << much_bigger.error;
  EXPECT_EQ(item_posts, 0);
}

TEST_F(HttpServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  start();
  HttpConnection connection("127.0.0.1", server->port());
  for (int i = 0; i < 20; ++i) {
    HttpReply reply = connection.call("GET", "/items/" + std::to_string(i));
    ASSERT_EQ(reply.status, 200) << i << ": " << reply.error;
    EXPECT_EQ(Json::parse(reply.body)["id"], std::to_string(i));
    EXPECT_EQ(lower(reply.headers["connection"]), "keep-alive");
  }
  // Errors and bodies do not end the connection either.
  EXPECT_EQ(connection.call("GET", "/nowhere").status, 404);
  EXPECT_EQ(connection.call("GET", "/boom").status, 500);
  EXPECT_EQ(connection.call("POST", "/echo", {}, "abc").body, "abc");
  EXPECT_EQ(connection.connections_used(), 1u);

  // A refused body closes the connection; the next call opens another.
  EXPECT_EQ(connection.call("POST", "/echo", {}, std::string(5000, 'z')).status, 413);
  EXPECT_EQ(connection.call("GET", "/items/x").status, 200);
  EXPECT_EQ(connection.connections_used(), 2u);
}

TEST_F(HttpServerTest, MetricsCountRequestsPerRouteAndStatus) {
  start();
  ASSERT_EQ(http_call("GET", url("/items/1")).status, 200);
  ASSERT_EQ(http_call("GET", url("/items/2")).status, 200);
  ASSERT_EQ(http_call("GET", url("/nowhere")).status, 404);
  ASSERT_EQ(http_call("GET", url("/nowhere/else")).status, 404);
  ASSERT_EQ(http_call("POST", url("/items"), {{"Content-Type", "application/json"}}, "{}").status,
            201);
  ASSERT_EQ(http_call("POST", url("/items"), {}, std::string(2000, 'x')).status, 413);
  ASSERT_EQ(http_call("PUT", url("/items/1"), {}, "x").status, 405);

  // Parse the samples out of the rendered text.
  std::map<std::string, std::string> samples;
  std::istringstream in(metrics.render());
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.rfind(' ');
    samples[line.substr(0, space)] = line.substr(space + 1);
  }
  const std::string total = "herald_http_requests_total";
  EXPECT_EQ(samples[total + R"({route="/items/{id}",method="GET",status="200"})"], "2");
  EXPECT_EQ(samples[total + R"({route="unmatched",method="GET",status="404"})"], "2");
  EXPECT_EQ(samples[total + R"({route="/items",method="POST",status="201"})"], "1");
  EXPECT_EQ(samples[total + R"({route="/items",method="POST",status="413"})"], "1");
  EXPECT_EQ(samples[total + R"({route="unmatched",method="PUT",status="405"})"], "1");
  const std::string duration = "herald_http_request_duration_seconds";
  EXPECT_EQ(samples[duration + R"(_count{route="/items/{id}"})"], "2");
  EXPECT_EQ(samples[duration + R"(_bucket{route="/items/{id}",le="+Inf"})"], "2");
  EXPECT_EQ(samples.count(duration + R"(_bucket{route="/items/{id}",le="0.0005"})"), 1u);
  EXPECT_EQ(samples.count(duration + R"(_bucket{route="/items/{id}",le="10"})"), 1u);
  EXPECT_EQ(samples[duration + R"(_count{route="unmatched"})"], "3");
  double sum = std::stod(samples[duration + R"(_sum{route="/items/{id}"})"]);
  EXPECT_GT(sum, 0);
  EXPECT_LT(sum, 10);
}

TEST_F(HttpServerTest, StopRefusesNewConnections) {
  start();
  uint16_t port = server->port();
  ASSERT_EQ(http_call("GET", url("/items/1")).status, 200);
  // An idle kept-alive connection does not hold the stop up.
  HttpConnection idle("127.0.0.1", port);
  ASSERT_EQ(idle.call("GET", "/items/1").status, 200);
  auto started = std::chrono::steady_clock::now();
  server->stop(30s);
  // Far less than the grace: nothing was in progress (the margin is for loaded machines).
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  EXPECT_EQ(server->port(), port);
  HttpReply after =
      http_call("GET", "http://127.0.0.1:" + std::to_string(port) + "/items/1", {}, "", 2s);
  EXPECT_EQ(after.status, 0);
  EXPECT_FALSE(after.error.empty());
  server->stop();  // twice is fine
}

TEST_F(HttpServerTest, StopClosesKeptAliveConnectionsAtOnceAfterABurst) {
  // A burst of short keep-alive connections, then a few held open. A burst leaves some of Poco's
  // connection threads waiting in its queue, and Poco 1.11's TCPServer::stop() wakes only one of
  // them: stop() waited for the others' idle timeout (10 s by default; in about one round in four
  // here). No timing is asserted, the time is printed. Every held connection must be closed by
  // the server, none left to its keep-alive timeout.
  ServerOptions options;
  options.keep_alive_timeout = 30s;  // far longer than any stop may take
  const std::string request = "GET /items/1 HTTP/1.1\r\nHost: test\r\n\r\n";
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    start(options);  // 8 threads
    // The burst: four clients opening connection after connection for a while.
    std::atomic<bool> go{true};
    std::atomic<int> served{0};
    std::vector<std::thread> clients;
    for (int c = 0; c < 4; ++c) {
      clients.emplace_back([&] {
        while (go) {
          RawConnection connection(server->port());
          if (!connection.connected() || !connection.send(request)) return;
          if (connection.read_response().empty()) return;
          ++served;
        }
      });
    }
    std::this_thread::sleep_for(200ms);
    go = false;
    for (auto& client : clients) client.join();
    EXPECT_GT(served.load(), 0);

    // Held open: one connected but silent (Poco's wait for a first request), two answered and
    // idle.
    std::vector<std::unique_ptr<RawConnection>> held;
    held.push_back(std::make_unique<RawConnection>(server->port()));
    ASSERT_TRUE(held.back()->connected());
    for (int i = 0; i < 2; ++i) {
      held.push_back(std::make_unique<RawConnection>(server->port()));
      ASSERT_TRUE(held.back()->connected());
      ASSERT_TRUE(held.back()->send(request));
      std::string response = held.back()->read_response();
      ASSERT_EQ(response.rfind("HTTP/1.1 200", 0), 0u) << i << ": " << response;
      ASSERT_NE(lower(response).find("connection: keep-alive"), std::string::npos) << response;
    }
    auto started = std::chrono::steady_clock::now();
    server->stop(2s);
    auto took = std::chrono::steady_clock::now() - started;
    std::cout << "[ stop     ] "
              << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
              << " ms after a burst of " << served.load() << " connections, with 3 open\n";
    for (auto& connection : held) EXPECT_TRUE(connection->closed_by_server());
  }
}

TEST_F(HttpServerTest, StopLetsARequestInProgressFinish) {
  start();
  auto reply =
      std::async(std::launch::async, [&] { return http_call("GET", url("/slow?ms=400")); });
  slow_started.get_future().wait();
  server->stop(5s);
  EXPECT_EQ(slow_finished, 1);
  HttpReply answered = reply.get();
  EXPECT_EQ(answered.status, 200) << answered.error;
  EXPECT_EQ(lower(answered.headers["connection"]), "close");
}

TEST_F(HttpServerTest, StopAfterGraceClosesTheConnection) {
  start();
  auto reply =
      std::async(std::launch::async, [&] { return http_call("GET", url("/slow?ms=700")); });
  slow_started.get_future().wait();
  server->stop(50ms);
  // The aborted handler returned within stop()'s second of waiting.
  EXPECT_EQ(slow_finished, 1);
  HttpReply cut = reply.get();
  EXPECT_EQ(cut.status, 0) << cut.body;
}

TEST_F(HttpServerTest, StopDoesNotWaitForAHandlerThatNeverEnds) {
  start();
  auto reply = std::async(std::launch::async, [&] { return http_call("GET", url("/stuck")); });
  slow_started.get_future().wait();
  auto started = std::chrono::steady_clock::now();
  server->stop(100ms);
  // stop() returned with the handler still blocked (it cannot end before the release below);
  // the bound only keeps a regression from hanging the suite.
  EXPECT_LT(std::chrono::steady_clock::now() - started, 30s);
  EXPECT_EQ(slow_finished, 0);
  // The client is cut off, and the server can go away while the handler still runs.
  EXPECT_EQ(reply.get().status, 0);
  server.reset();
  release_stuck.set_value();
  // The handler uses this fixture: wait for it (the caller's duty once stop() gave up).
  while (slow_finished == 0) std::this_thread::sleep_for(10ms);
  // It was not counted after stop() returned (the metrics may be gone by then).
  EXPECT_EQ(metrics.render().find("route=\"/slow\""), std::string::npos);
}

TEST_F(HttpServerTest, PortInUseIsUnavailable) {
  start();
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = server->port();
  HttpServer second(router, options);
  Status started = second.start();
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().code, ErrorCode::unavailable);
  EXPECT_NE(started.error().message.find("127.0.0.1:" + std::to_string(server->port())),
            std::string::npos)
      << started.error().message;
  // The first server is unaffected.
  EXPECT_EQ(http_call("GET", url("/items/1")).status, 200);
}

TEST_F(HttpServerTest, StartTwiceIsRefusedAndRestartWorks) {
  start();
  Status again = server->start();
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::failed_precondition);
  server->stop();
  ASSERT_TRUE(server->start().ok());
  EXPECT_EQ(http_call("GET", url("/items/1")).status, 200);
}

TEST_F(HttpServerTest, ServesThousandsOfRequestsPerSecondWithKeepAlive) {
  start();
  constexpr int kClients = 2;
  constexpr int kPerClient = 2000;
  std::atomic<int> ok{0};
  auto started = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      HttpConnection connection("127.0.0.1", server->port());
      for (int i = 0; i < kPerClient; ++i) {
        if (connection.call("GET", "/items/" + std::to_string(i)).status == 200) ++ok;
      }
    });
  }
  for (auto& client : clients) client.join();
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  double rate = kClients * kPerClient / seconds;
  std::cout << "[ rate     ] " << static_cast<int>(rate) << " requests/s over keep-alive\n";
  EXPECT_EQ(ok, kClients * kPerClient);
  // Loose, to hold on a loaded machine: the optimised build does 10-40k/s on 2 shared cores,
  // the ASan+UBSan debug build about 1k/s.
#if defined(__SANITIZE_ADDRESS__)
  EXPECT_GT(rate, 100);
#else
  EXPECT_GT(rate, 1000);
#endif
}

}  // namespace
}  // namespace herald::server
