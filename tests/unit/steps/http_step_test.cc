// The `http` step against a real local server: request shape, response decoding, the error and
// retry classification the runtime relies on, timeouts and deadlines, limits, and many callers.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <Poco/DateTimeFormat.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/Exception.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Timespan.h>
#include <Poco/Timestamp.h>

#include "engine/common/redactor.h"
#include "engine/steps/builtins.h"
#include "engine/steps/http/http_input.h"
#include "engine/steps/http/http_response.h"
#include "tests/support/local_http_server.h"

namespace herald::steps {
namespace {

using namespace std::chrono_literals;
using testing::LocalHttpServer;
using testing::RecordedRequest;
using testing::Response;

class HttpStepTest : public ::testing::Test {
 protected:
  HttpStepTest() : step_(make_http_step()) {
    context_.run_id = "run-1";
    context_.step_id = "call";
    context_.idempotency_key = "run-1/call/0";
  }

  StepOutcome run(Json with) { return step_.step->run(with, context_); }
  StepOutcome run(Json with, StepContext& context) { return step_.step->run(with, context); }

  // The one request the server received.
  RecordedRequest only_request() {
    auto requests = server_.requests();
    EXPECT_EQ(requests.size(), 1u);
    return requests.empty() ? RecordedRequest{} : requests.front();
  }

  LocalHttpServer server_;
  StepInfo step_;
  StepContext context_;
};

TEST_F(HttpStepTest, Describes) {
  EXPECT_EQ(step_.name, "http");
  EXPECT_FALSE(step_.description.empty());
  EXPECT_TRUE(step_.raw_fields.empty());
}

TEST_F(HttpStepTest, GetParsesJsonBody) {
  server_.route("GET", "/items", Response::json(200, {{"n", 3}, {"names", {"a", "b"}}}));
  auto outcome = run({{"url", server_.url("/items")}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::done) << outcome.error.message;
  EXPECT_EQ(outcome.output["status"], 200);
  EXPECT_EQ(outcome.output["body"]["n"], 3);
  EXPECT_EQ(outcome.output["body"]["names"][1], "b");
  EXPECT_EQ(outcome.output["headers"]["content-type"], "application/json");
  EXPECT_EQ(outcome.output["url"], server_.url("/items"));
  EXPECT_GE(outcome.output["duration_ms"].get<int64_t>(), 0);
  auto request = only_request();
  EXPECT_EQ(request.method, "GET");
  EXPECT_EQ(request.body, "");
  EXPECT_EQ(request.header("User-Agent").rfind("herald/", 0), 0u);
}

TEST_F(HttpStepTest, PostSendsJson) {
  server_.route("POST", "/posts", Response::json(201, {{"id", "p1"}}));
  auto outcome = run({{"method", "post"},
                      {"url", server_.url("/posts")},
                      {"json", {{"text", "héllo"}, {"tags", {1, 2}}}}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::done) << outcome.error.message;
  EXPECT_EQ(outcome.output["status"], 201);
  EXPECT_EQ(outcome.output["body"]["id"], "p1");
  auto request = only_request();
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.header("content-type"), "application/json");
  EXPECT_EQ(Json::parse(request.body), Json({{"text", "héllo"}, {"tags", {1, 2}}}));
}

TEST_F(HttpStepTest, PutPatchDeleteAndHead) {
  server_.route("*", "/thing", Response::text(200, "done"));
  for (const char* method : {"PUT", "PATCH", "DELETE", "HEAD"}) {
    auto outcome = run({{"method", method}, {"url", server_.url("/thing")}});
    ASSERT_EQ(outcome.kind, StepOutcome::Kind::done) << method << ": " << outcome.error.message;
    EXPECT_EQ(outcome.output["status"], 200) << method;
    EXPECT_EQ(outcome.output["body"], std::string(method) == "HEAD" ? "" : "done") << method;
  }
  auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[0].method, "PUT");
  EXPECT_EQ(requests[0].header("content-length"), "0");
  EXPECT_EQ(requests[3].method, "HEAD");
}

TEST_F(HttpStepTest, TextBodyAndHeaders) {
  server_.route("POST", "/notes", Response::text(200, "ok"));
  auto outcome = run({{"method", "POST"},
                      {"url", server_.url("/notes")},
                      {"headers", {{"X-Api-Key", "k-123"}, {"X-Count", 3}, {"User-Agent", "mine"}}},
                      {"body", "line one\nline two"}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::done) << outcome.error.message;
  auto request = only_request();
  EXPECT_EQ(request.body, "line one\nline two");
  EXPECT_EQ(request.header("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(request.header("x-api-key"), "k-123");
  EXPECT_EQ(request.header("x-count"), "3");
  EXPECT_EQ(request.header("user-agent"), "mine");
}

TEST_F(HttpStepTest, ExplicitContentTypeWins) {
  server_.route("PATCH", "/doc", Response::text(204, ""));
  auto outcome = run({{"method", "PATCH"},
                      {"url", server_.url("/doc")},
                      {"headers", {{"content-type", "application/merge-patch+json"}}},
                      {"json", {{"title", nullptr}}}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::done) << outcome.error.message;
  EXPECT_EQ(outcome.output["status"], 204);
  EXPECT_EQ(only_request().header("content-type"), "application/merge-patch+json");
}

TEST_F(HttpStepTest, QueryIsEncodedAndAppended) {
  server_.route("GET", "/search", Response::json(200, Json::object()));
  auto outcome =
      run({{"url", server_.url("/search?page=2")},
           {"query", {{"q", "a b&c=d/é+"}, {"tags", {"x", "y"}}, {"n", 3}, {"skip", nullptr}}}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::done) << outcome.error.message;
  auto request = only_request();
  EXPECT_EQ(request.path, "/search");
  EXPECT_EQ(request.query, "page=2&n=3&q=a%20b%26c%3Dd%2F%C3%A9%2B&tags=x&tags=y");
  EXPECT_EQ(request.query_params()["q"], "a b&c=d/é+");
  EXPECT_EQ(outcome.output["url"], server_.url("/search?" + request.query));
}

TEST_F(HttpStepTest, PathEscapesArePreserved) {
  server_.route("GET", "/*", Response::text(200, "ok"));
  auto outcome = run({{"url", server_.url("/projects/group%2Fname/a b#fragment")}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::done) << outcome.error.message;
  EXPECT_EQ(only_request().path, "/projects/group%2Fname/a%20b");
}

TEST_F(HttpStepTest, IdempotencyKeyOnlyWhenAsked) {
  server_.route("POST", "/pay", Response::json(200, {{"ok", true}}));
  ASSERT_EQ(run({{"method", "POST"}, {"url", server_.url("/pay")}}).kind, StepOutcome::Kind::done);
  ASSERT_EQ(run({{"method", "POST"}, {"url", server_.url("/pay")}, {"idempotency", false}}).kind,
            StepOutcome::Kind::done);
  ASSERT_EQ(run({{"method", "POST"},
                 {"url", server_.url("/pay")},
                 {"idempotency", true},
                 {"headers", {{"Idempotency-Key", "from-the-workflow"}}}})
                .kind,
            StepOutcome::Kind::done);
  auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].header("Idempotency-Key"), "");
  EXPECT_EQ(requests[1].header("Idempotency-Key"), "");
  // The runtime's key is the one that is stable across retries and restarts, so it wins.
  EXPECT_EQ(requests[2].header("Idempotency-Key"), "run-1/call/0");
}

TEST_F(HttpStepTest, IdempotentRetriesCountOneEffect) {
  server_.add_effects_route();
  Json with = {{"method", "POST"},
               {"url", server_.url("/effects/charge")},
               {"idempotency", true},
               {"json", {{"amount", 5}}}};
  auto first = run(with);
  auto second = run(with);
  ASSERT_EQ(first.kind, StepOutcome::Kind::done) << first.error.message;
  ASSERT_EQ(second.kind, StepOutcome::Kind::done) << second.error.message;
  EXPECT_EQ(first.output["body"], second.output["body"]);
  EXPECT_EQ(second.output["headers"]["idempotent-replayed"], "true");
  EXPECT_EQ(server_.effects().effect_count(), 1);
  EXPECT_EQ(server_.effects().count("run-1/call/0").requests, 2);
}

TEST_F(HttpStepTest, TextResponsesStayText) {
  server_.route("GET", "/text", Response::text(200, "{\"looks\": \"like json\"}"));
  server_.route("GET", "/broken",
                Response::text(200, "{not json").with_header("Content-Type", "application/json"));
  server_.route("GET", "/problem",
                Response::text(200, "{\"a\":1}")
                    .with_header("Content-Type", "application/problem+json; charset=utf-8"));
  server_.route("GET", "/binary", Response::text(200, std::string("ok\xff\xfe", 4)));
  EXPECT_EQ(run({{"url", server_.url("/text")}}).output["body"], "{\"looks\": \"like json\"}");
  EXPECT_EQ(run({{"url", server_.url("/broken")}}).output["body"], "{not json");
  EXPECT_EQ(run({{"url", server_.url("/problem")}}).output["body"]["a"], 1);
  auto binary = run({{"url", server_.url("/binary")}});
  ASSERT_EQ(binary.kind, StepOutcome::Kind::done);
  EXPECT_NO_THROW(binary.output.dump());  // invalid UTF-8 would make the output unstorable
  EXPECT_EQ(binary.output["body"], "ok\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_F(HttpStepTest, NotFoundIsNotRetryable) {
  server_.route("GET", "/missing", Response::json(404, {{"message", "no such post"}}));
  auto outcome = run({{"url", server_.url("/missing")}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::failed);
  EXPECT_EQ(outcome.error.code, ErrorCode::not_found);
  EXPECT_FALSE(outcome.error.retryable);
  EXPECT_NE(outcome.error.message.find("404"), std::string::npos) << outcome.error.message;
  EXPECT_NE(outcome.error.message.find("no such post"), std::string::npos) << outcome.error.message;
  EXPECT_EQ(outcome.error.details["status"], 404);
  EXPECT_EQ(outcome.error.details["body"]["message"], "no such post");
  EXPECT_EQ(outcome.error.details["headers"]["content-type"], "application/json");
}

TEST_F(HttpStepTest, ClientErrorsMapToCodes) {
  struct Case {
    int status;
    ErrorCode code;
  };
  for (Case c : {Case{400, ErrorCode::invalid_argument}, Case{401, ErrorCode::unauthenticated},
                 Case{403, ErrorCode::permission_denied}, Case{409, ErrorCode::failed_precondition},
                 Case{410, ErrorCode::not_found}, Case{422, ErrorCode::invalid_argument}}) {
    server_.route("GET", "/s", Response::text(c.status, "nope"));
    auto outcome = run({{"url", server_.url("/s")}});
    ASSERT_EQ(outcome.kind, StepOutcome::Kind::failed) << c.status;
    EXPECT_EQ(outcome.error.code, c.code) << c.status;
    EXPECT_FALSE(outcome.error.retryable) << c.status;
  }
}

TEST_F(HttpStepTest, ServerErrorsAreRetryable) {
  for (int status : {500, 502, 503}) {
    server_.route("GET", "/flaky", Response::text(status, "try later"));
    auto outcome = run({{"url", server_.url("/flaky")}});
    ASSERT_EQ(outcome.kind, StepOutcome::Kind::failed) << status;
    EXPECT_EQ(outcome.error.code, ErrorCode::unavailable) << status;
    EXPECT_TRUE(outcome.error.retryable) << status;
    EXPECT_FALSE(outcome.error.retry_after.has_value()) << status;
    EXPECT_EQ(outcome.error.details["body"], "try later");
  }
}

TEST_F(HttpStepTest, ScriptedRecoveryAfterFailures) {
  server_.script("GET", "/recovering",
                 {Response::text(503, ""), Response::text(503, "").with_header("Retry-After", "2"),
                  Response::json(200, {{"ok", true}})});
  auto first = run({{"url", server_.url("/recovering")}});
  auto second = run({{"url", server_.url("/recovering")}});
  auto third = run({{"url", server_.url("/recovering")}});
  EXPECT_TRUE(first.error.retryable);
  ASSERT_TRUE(second.error.retry_after.has_value());
  EXPECT_EQ(*second.error.retry_after, 2s);
  ASSERT_EQ(third.kind, StepOutcome::Kind::done);
  EXPECT_EQ(third.output["body"]["ok"], true);
}

TEST_F(HttpStepTest, TooManyRequestsWithRetryAfterSeconds) {
  server_.route("GET", "/limited",
                Response::json(429, {{"error", "slow down"}}).with_header("Retry-After", "7"));
  auto outcome = run({{"url", server_.url("/limited")}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::failed);
  EXPECT_EQ(outcome.error.code, ErrorCode::resource_exhausted);
  EXPECT_TRUE(outcome.error.retryable);
  ASSERT_TRUE(outcome.error.retry_after.has_value());
  EXPECT_EQ(*outcome.error.retry_after, 7s);
  EXPECT_EQ(outcome.error.details["headers"]["retry-after"], "7");
}

TEST_F(HttpStepTest, TooManyRequestsWithRetryAfterDate) {
  Poco::Timestamp in_two_minutes;
  in_two_minutes += Poco::Timespan(120, 0);
  std::string date =
      Poco::DateTimeFormatter::format(in_two_minutes, Poco::DateTimeFormat::HTTP_FORMAT);
  server_.route("GET", "/limited", Response::text(429, "").with_header("Retry-After", date));
  auto outcome = run({{"url", server_.url("/limited")}});
  ASSERT_TRUE(outcome.error.retry_after.has_value()) << date;
  // HTTP dates have whole seconds.
  EXPECT_GE(*outcome.error.retry_after, 118s) << date;
  EXPECT_LE(*outcome.error.retry_after, 120s) << date;
}

TEST_F(HttpStepTest, RequestTimeoutStatusIsRetryable) {
  server_.route("GET", "/slow", Response::text(408, ""));
  auto outcome = run({{"url", server_.url("/slow")}});
  EXPECT_EQ(outcome.error.code, ErrorCode::deadline_exceeded);
  EXPECT_TRUE(outcome.error.retryable);
}

TEST_F(HttpStepTest, LargeErrorBodyIsTruncatedInDetails) {
  server_.route("GET", "/boom", Response::text(500, std::string(10'000, 'x')));
  auto outcome = run({{"url", server_.url("/boom")}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::failed);
  EXPECT_EQ(outcome.error.details["body"].get<std::string>().size(), http::kErrorBodyBytes);
  EXPECT_EQ(outcome.error.details["body_truncated"], true);
  EXPECT_LT(outcome.error.message.size(), 400u);
}

// The message keeps the first 200 bytes of a failed body and the details the first 4 KiB: a secret
// across either cut would survive the runtime's masking as a fragment, so the step masks first.
TEST_F(HttpStepTest, SecretsInAFailedBodyAreMaskedBeforeItIsCut) {
  const std::string secret = "tok-0123456789abcdef";
  // One value across the message's 200-byte cut, one across the details' 4 KiB cut.
  std::string body = std::string(190, '.') + secret + std::string(3880, '.') + secret + "!";
  server_.route("GET", "/denied", Response::text(500, body));
  context_.redact = [&](std::string_view text) { return Redactor({secret}).redact_text(text); };
  auto outcome = run({{"url", server_.url("/denied")}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::failed);
  EXPECT_NE(outcome.error.message.find(std::string(190, '.') + "[redacted]"), std::string::npos)
      << outcome.error.message;
  std::string details = outcome.error.details.dump();
  EXPECT_EQ(details.find("tok-0123"), std::string::npos) << details;
  EXPECT_EQ(outcome.error.message.find("tok-0123"), std::string::npos) << outcome.error.message;

  // Without a redactor (outside a run) the body is cut as it is.
  context_.redact = nullptr;
  auto plain = run({{"url", server_.url("/denied")}});
  EXPECT_NE(plain.error.message.find(std::string(190, '.') + "tok-012345"), std::string::npos)
      << plain.error.message;
}

TEST_F(HttpStepTest, ExpectChoosesSuccessfulStatuses) {
  server_.route("GET", "/maybe", Response::json(404, {{"found", false}}));
  auto accepted = run({{"url", server_.url("/maybe")}, {"expect", {"2xx", 404}}});
  ASSERT_EQ(accepted.kind, StepOutcome::Kind::done) << accepted.error.message;
  EXPECT_EQ(accepted.output["status"], 404);
  EXPECT_EQ(accepted.output["body"]["found"], false);

  server_.route("GET", "/ok", Response::text(200, "ok"));
  auto refused = run({{"url", server_.url("/ok")}, {"expect", 201}});
  ASSERT_EQ(refused.kind, StepOutcome::Kind::failed);
  EXPECT_EQ(refused.error.code, ErrorCode::failed_precondition);
  EXPECT_FALSE(refused.error.retryable);
}

TEST_F(HttpStepTest, FollowsRedirectsForGet) {
  server_.route("GET", "/old", Response::text(301, "").with_header("Location", "/middle"));
  server_.route("GET", "/middle",
                Response::text(302, "").with_header("Location", server_.url("/new?x=1")));
  server_.route("GET", "/new", Response::json(200, {{"here", true}}));
  auto outcome = run({{"url", server_.url("/old")}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::done) << outcome.error.message;
  EXPECT_EQ(outcome.output["body"]["here"], true);
  EXPECT_EQ(outcome.output["url"], server_.url("/new?x=1"));
  EXPECT_EQ(server_.request_count(), 3u);
}

TEST_F(HttpStepTest, RedirectLoopStopsAfterFive) {
  server_.route("GET", "/loop", Response::text(302, "").with_header("Location", "/loop"));
  auto outcome = run({{"url", server_.url("/loop")}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::failed);
  EXPECT_EQ(outcome.error.code, ErrorCode::failed_precondition);
  EXPECT_NE(outcome.error.message.find("redirects"), std::string::npos);
  EXPECT_EQ(server_.request_count(), 6u);  // the request and five redirects
}

TEST_F(HttpStepTest, PostIsNotRedirected) {
  server_.route("POST", "/create",
                Response::text(303, "see /created").with_header("Location", "/created"));
  auto outcome = run({{"method", "POST"}, {"url", server_.url("/create")}, {"json", {{"a", 1}}}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::done) << outcome.error.message;
  EXPECT_EQ(outcome.output["status"], 303);
  EXPECT_EQ(outcome.output["headers"]["location"], "/created");
  EXPECT_EQ(outcome.output["body"], "see /created");
  EXPECT_EQ(server_.request_count(), 1u);
}

TEST_F(HttpStepTest, FollowRedirectsCanBeTurnedOff) {
  server_.route("GET", "/moved", Response::text(302, "moved").with_header("Location", "/there"));
  auto outcome = run({{"url", server_.url("/moved")}, {"follow_redirects", false}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::done) << outcome.error.message;
  EXPECT_EQ(outcome.output["status"], 302);
  EXPECT_EQ(outcome.output["body"], "moved");
  EXPECT_EQ(server_.request_count(), 1u);
}

TEST_F(HttpStepTest, CredentialsDoNotFollowRedirectsToAnotherServer) {
  LocalHttpServer other;
  other.route("GET", "/landing", Response::text(200, "there"));
  server_.route("GET", "/away",
                Response::text(302, "").with_header("Location", other.url("/landing")));
  server_.route("GET", "/near", Response::text(302, "").with_header("Location", "/landing"));
  server_.route("GET", "/landing", Response::text(200, "here"));
  Json headers = {{"Authorization", "Bearer secret"}, {"X-Trace", "t1"}};
  ASSERT_EQ(run({{"url", server_.url("/away")}, {"headers", headers}}).kind,
            StepOutcome::Kind::done);
  ASSERT_EQ(run({{"url", server_.url("/near")}, {"headers", headers}}).kind,
            StepOutcome::Kind::done);
  auto far = other.requests("GET", "/landing");
  ASSERT_EQ(far.size(), 1u);
  EXPECT_EQ(far[0].header("authorization"), "");
  EXPECT_EQ(far[0].header("x-trace"), "t1");
  auto near = server_.requests("GET", "/landing");
  ASSERT_EQ(near.size(), 1u);
  EXPECT_EQ(near[0].header("authorization"), "Bearer secret");
}

// A port that was free a moment ago: nothing listens there now.
uint16_t closed_port() {
  Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
  uint16_t port = socket.address().port();
  socket.close();
  return port;
}

TEST_F(HttpStepTest, ConnectionRefusedIsRetryable) {
  std::string url = "http://127.0.0.1:" + std::to_string(closed_port()) + "/x";
  auto outcome = run({{"url", url}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::failed);
  EXPECT_EQ(outcome.error.code, ErrorCode::unavailable);
  EXPECT_TRUE(outcome.error.retryable);
  EXPECT_NE(outcome.error.message.find("connection refused"), std::string::npos)
      << outcome.error.message;
  EXPECT_NE(outcome.error.message.find(url), std::string::npos) << outcome.error.message;
}

// Answers each connection with `reply` written raw (or nothing), then hangs up: for the broken
// servers LocalHttpServer is too well-behaved to imitate.
class RawServer {
 public:
  explicit RawServer(std::string reply)
      : socket_(Poco::Net::SocketAddress("127.0.0.1", 0)), reply_(std::move(reply)) {
    thread_ = std::thread([this] {
      try {
        Poco::Net::StreamSocket connection = socket_.acceptConnection();
        char buffer[4096];
        connection.receiveBytes(buffer, sizeof buffer);  // the request's head
        if (!reply_.empty()) connection.sendBytes(reply_.data(), static_cast<int>(reply_.size()));
        connection.shutdown();
        connection.close();
      } catch (const Poco::Exception&) {
      }
    });
  }
  ~RawServer() { thread_.join(); }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(socket_.address().port()) + "/";
  }

 private:
  Poco::Net::ServerSocket socket_;
  std::string reply_;
  std::thread thread_;
};

TEST_F(HttpStepTest, HangUpWithoutAnswerIsRetryable) {
  RawServer server("");
  auto outcome = run({{"url", server.url()}, {"timeout", "5s"}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::failed);
  EXPECT_EQ(outcome.error.code, ErrorCode::unavailable);
  EXPECT_TRUE(outcome.error.retryable);
  EXPECT_NE(outcome.error.message.find("without answering"), std::string::npos)
      << outcome.error.message;
}

TEST_F(HttpStepTest, BodyCutShortIsRetryable) {
  RawServer server(
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nonly this");
  auto outcome = run({{"url", server.url()}, {"timeout", "5s"}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::failed);
  EXPECT_EQ(outcome.error.code, ErrorCode::unavailable);
  EXPECT_TRUE(outcome.error.retryable);
  EXPECT_NE(outcome.error.message.find("9 of 100 bytes"), std::string::npos)
      << outcome.error.message;
}

TEST_F(HttpStepTest, GarbageAnswerIsRetryable) {
  RawServer server("SMTP ready\r\n\r\n");
  auto outcome = run({{"url", server.url()}, {"timeout", "5s"}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::failed);
  EXPECT_EQ(outcome.error.code, ErrorCode::unavailable);
  EXPECT_TRUE(outcome.error.retryable);
}

TEST_F(HttpStepTest, BadRedirectLocationFails) {
  server_.route("GET", "/odd", Response::text(302, "").with_header("Location", "http://[::1"));
  auto outcome = run({{"url", server_.url("/odd")}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::failed);
  EXPECT_EQ(outcome.error.code, ErrorCode::failed_precondition);
  EXPECT_FALSE(outcome.error.retryable);
}

TEST_F(HttpStepTest, UnknownHostIsRetryable) {
  auto outcome = run({{"url", "http://no-such-host.invalid/x"}, {"timeout", "5s"}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::failed);
  EXPECT_EQ(outcome.error.code, ErrorCode::unavailable);
  EXPECT_TRUE(outcome.error.retryable);
}

TEST_F(HttpStepTest, TimeoutIsDeadlineExceeded) {
  server_.route("GET", "/slow", Response::text(200, "late").after(3s));
  auto start = std::chrono::steady_clock::now();
  auto outcome = run({{"url", server_.url("/slow")}, {"timeout", "200ms"}});
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::failed);
  EXPECT_EQ(outcome.error.code, ErrorCode::deadline_exceeded);
  EXPECT_TRUE(outcome.error.retryable);
  EXPECT_NE(outcome.error.message.find("200ms"), std::string::npos) << outcome.error.message;
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 1500ms);
}

TEST_F(HttpStepTest, StepDeadlineShorterThanTimeoutWins) {
  server_.route("GET", "/slow", Response::text(200, "late").after(3s));
  context_.deadline = Clock::now() + 250ms;
  auto start = std::chrono::steady_clock::now();
  auto outcome = run({{"url", server_.url("/slow")}, {"timeout", "10s"}});
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::failed);
  EXPECT_EQ(outcome.error.code, ErrorCode::deadline_exceeded);
  EXPECT_NE(outcome.error.message.find("step's deadline"), std::string::npos)
      << outcome.error.message;
  EXPECT_LT(took, 1500ms);
}

TEST_F(HttpStepTest, PassedDeadlineFailsWithoutSending) {
  server_.route("GET", "/x", Response::text(200, "ok"));
  context_.deadline = Clock::now() - 1s;
  auto outcome = run({{"url", server_.url("/x")}});
  EXPECT_EQ(outcome.error.code, ErrorCode::deadline_exceeded);
  EXPECT_EQ(server_.request_count(), 0u);
}

TEST_F(HttpStepTest, CancelledRunDoesNotSend) {
  server_.route("GET", "/x", Response::text(200, "ok"));
  std::atomic<bool> cancelled{true};
  context_.cancelled = &cancelled;
  auto outcome = run({{"url", server_.url("/x")}});
  EXPECT_EQ(outcome.error.code, ErrorCode::cancelled);
  EXPECT_EQ(server_.request_count(), 0u);
}

TEST_F(HttpStepTest, ResponseTooLarge) {
  server_.route("GET", "/big", Response::text(200, std::string(5000, 'a')));
  server_.route("GET", "/big-chunked", Response::text(200, std::string(5000, 'a')).as_chunked());
  for (const char* path : {"/big", "/big-chunked"}) {
    auto outcome = run({{"url", server_.url(path)}, {"max_response_bytes", 1000}});
    ASSERT_EQ(outcome.kind, StepOutcome::Kind::failed) << path;
    EXPECT_EQ(outcome.error.code, ErrorCode::resource_exhausted) << path;
    EXPECT_FALSE(outcome.error.retryable) << path;
    EXPECT_NE(outcome.error.message.find("max_response_bytes"), std::string::npos);
  }
  auto fits = run({{"url", server_.url("/big-chunked")}, {"max_response_bytes", 5000}});
  ASSERT_EQ(fits.kind, StepOutcome::Kind::done) << fits.error.message;
  EXPECT_EQ(fits.output["body"].get<std::string>().size(), 5000u);
}

TEST_F(HttpStepTest, DefaultLimitRefusesOverTenMebibytes) {
  server_.route("GET", "/huge",
                Response::text(200, std::string(http::kDefaultMaxResponseBytes + 1, 'z')));
  server_.route("GET", "/large",
                Response::text(200, std::string(2 * 1024 * 1024, 'z')).as_chunked());
  EXPECT_EQ(run({{"url", server_.url("/huge")}}).error.code, ErrorCode::resource_exhausted);
  auto large = run({{"url", server_.url("/large")}});
  ASSERT_EQ(large.kind, StepOutcome::Kind::done) << large.error.message;
  EXPECT_EQ(large.output["body"].get<std::string>().size(), 2u * 1024 * 1024);
}

TEST_F(HttpStepTest, InvalidInputsNameTheField) {
  std::string url = server_.url("/x");
  struct Case {
    Json with;
    std::string mentions;
  };
  std::vector<Case> cases = {
      {Json::object(), "url is required"},
      {"just a string", "with:"},
      {{{"url", 42}}, "url must be"},
      {{{"url", ""}}, "url must be"},
      {{{"url", "ftp://example.com/file"}}, "scheme 'ftp'"},
      {{{"url", "example.com/path"}}, "url"},
      {{{"url", "http://user:pw@example.com/"}}, "credentials"},
      {{{"url", url}, {"method", "TRACE"}}, "method 'TRACE'"},
      {{{"url", url}, {"method", 1}}, "method must be"},
      {{{"url", url}, {"json", {{"a", 1}}}, {"body", "b"}}, "json and body"},
      {{{"url", url}, {"body", {{"a", 1}}}}, "body must be a string"},
      {{{"url", url}, {"headers", "X-A: b"}}, "headers must be"},
      {{{"url", url}, {"headers", {{"X-A", {1, 2}}}}}, "headers.X-A"},
      {{{"url", url}, {"headers", {{"Bad Name", "v"}}}}, "header name"},
      {{{"url", url}, {"headers", {{"X-A", "a\r\nX-Injected: 1"}}}}, "line breaks"},
      {{{"url", url}, {"query", {1, 2}}}, "query must be"},
      {{{"url", url}, {"query", {{"q", {{"nested", 1}}}}}}, "query.q"},
      {{{"url", url}, {"timeout", 10}}, "timeout must be"},
      {{{"url", url}, {"timeout", "10 parsecs"}}, "timeout"},
      {{{"url", url}, {"timeout", "0s"}}, "timeout"},
      {{{"url", url}, {"idempotency", "yes"}}, "idempotency"},
      {{{"url", url}, {"expect", "ok"}}, "expect"},
      {{{"url", url}, {"expect", {200, 999}}}, "expect"},
      {{{"url", url}, {"max_response_bytes", 0}}, "max_response_bytes"},
      {{{"url", url}, {"follow_redirects", 1}}, "follow_redirects"},
      {{{"url", url}, {"header", {{"X-A", "b"}}}}, "unknown field 'header'"},
  };
  for (const Case& c : cases) {
    auto outcome = run(c.with);
    ASSERT_EQ(outcome.kind, StepOutcome::Kind::failed) << c.with.dump();
    EXPECT_EQ(outcome.error.code, ErrorCode::invalid_argument) << c.with.dump();
    EXPECT_FALSE(outcome.error.retryable) << c.with.dump();
    EXPECT_NE(outcome.error.message.find(c.mentions), std::string::npos)
        << c.with.dump() << " -> " << outcome.error.message;
  }
  EXPECT_EQ(server_.request_count(), 0u);
}

TEST_F(HttpStepTest, HttpsIsEitherSupportedOrAClearError) {
  auto outcome = run({{"url", "https://127.0.0.1:" + std::to_string(closed_port()) + "/"}});
  ASSERT_EQ(outcome.kind, StepOutcome::Kind::failed);
#if defined(HERALD_HAVE_NETSSL)
  EXPECT_EQ(outcome.error.code, ErrorCode::unavailable) << outcome.error.message;
#else
  EXPECT_EQ(outcome.error.code, ErrorCode::failed_precondition);
  EXPECT_NE(outcome.error.message.find("NetSSL"), std::string::npos) << outcome.error.message;
#endif
}

TEST_F(HttpStepTest, ManyConcurrentCalls) {
  server_.route("POST", "/echo", [](const RecordedRequest& request) {
    return Response::json(
        200, {{"key", request.header("Idempotency-Key")}, {"body", Json::parse(request.body)}});
  });
  constexpr int kThreads = 8;
  constexpr int kCallsPerThread = 25;
  std::atomic<int> succeeded{0};
  std::atomic<int> mismatched{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        StepContext context;
        context.idempotency_key = "run/" + std::to_string(t) + "/" + std::to_string(i);
        Json with = {{"method", "POST"},
                     {"url", server_.url("/echo")},
                     {"idempotency", true},
                     {"json", {{"t", t}, {"i", i}}}};
        auto outcome = step_.step->run(with, context);
        if (outcome.kind != StepOutcome::Kind::done) continue;
        ++succeeded;
        const Json& body = outcome.output["body"];
        if (body["key"] != context.idempotency_key || body["body"]["t"] != t ||
            body["body"]["i"] != i) {
          ++mismatched;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(succeeded, kThreads * kCallsPerThread);
  EXPECT_EQ(mismatched, 0);
  EXPECT_EQ(server_.request_count(), static_cast<size_t>(kThreads * kCallsPerThread));
}

// The rules without a server.

TEST(HttpRules, RetryAfter) {
  auto now = Clock::now();
  EXPECT_EQ(http::parse_retry_after("0", now), 0ms);
  EXPECT_EQ(http::parse_retry_after(" 30 ", now), 30s);
  EXPECT_EQ(http::parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), 0ms);  // past
  EXPECT_FALSE(http::parse_retry_after("", now).has_value());
  EXPECT_FALSE(http::parse_retry_after("soon", now).has_value());
  EXPECT_FALSE(http::parse_retry_after("-5", now).has_value());
  auto epoch = Clock::time_point(std::chrono::seconds(1445412000));  // 07:20:00 GMT that day
  EXPECT_EQ(http::parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", epoch), 480s);
  EXPECT_EQ(http::parse_retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", epoch), 480s);
  EXPECT_EQ(http::parse_retry_after("Wed Oct 21 07:28:00 2015", epoch), 480s);
}

TEST(HttpRules, DecodeBody) {
  EXPECT_EQ(http::decode_body("{\"a\":1}", "application/json; charset=utf-8"), Json({{"a", 1}}));
  EXPECT_EQ(http::decode_body("[1]", "application/vnd.api+json"), Json::array({1}));
  EXPECT_EQ(http::decode_body("[1]", "text/plain"), "[1]");
  EXPECT_EQ(http::decode_body("", "application/json"), "");
}

TEST(HttpRules, Utf8Repair) {
  EXPECT_EQ(http::to_valid_utf8("plain é ✓ 😀"), "plain é ✓ 😀");
  EXPECT_EQ(http::to_valid_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
  EXPECT_EQ(http::to_valid_utf8("\xED\xA0\x80"),
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");                         // surrogate
  EXPECT_EQ(http::to_valid_utf8("a\xE2\x9C"), "a\xEF\xBF\xBD\xEF\xBF\xBD");  // cut short
}

TEST(HttpRules, PercentEncode) {
  EXPECT_EQ(http::percent_encode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(http::percent_encode("a b/?&=+#%é"), "a%20b%2F%3F%26%3D%2B%23%25%C3%A9");
}

TEST(HttpRules, SplitUrl) {
  auto parts = http::split_url("HTTP://Example.com:8080/a%2Fb?x=1#frag");
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ(parts->scheme, "http");
  EXPECT_EQ(parts->host, "example.com");
  EXPECT_EQ(parts->port, 8080);
  EXPECT_EQ(parts->target, "/a%2Fb?x=1");
  auto bare = http::split_url("https://example.com?q=1");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->port, 443);
  EXPECT_EQ(bare->target, "/?q=1");
  EXPECT_FALSE(http::split_url("mailto:someone@example.com").ok());
}

TEST(HttpRules, StatusErrorDetails) {
  http::ResponseFacts facts;
  facts.method = "GET";
  facts.url = "http://x/y";
  facts.status = 503;
  facts.reason = "Service Unavailable";
  facts.headers = {{"retry-after", "3"}};
  facts.body = "down\n  for   maintenance";
  Error error = http::status_error(facts, Clock::now());
  EXPECT_EQ(error.code, ErrorCode::unavailable);
  EXPECT_TRUE(error.retryable);
  EXPECT_EQ(error.retry_after, 3s);
  EXPECT_EQ(error.message,
            "http: GET http://x/y answered 503 Service Unavailable: down for maintenance");
  EXPECT_EQ(error.details["url"], "http://x/y");
  facts.status = 400;  // not retryable: Retry-After is not an invitation then
  EXPECT_FALSE(http::status_error(facts, Clock::now()).retry_after.has_value());
}

}  // namespace
}  // namespace herald::steps
