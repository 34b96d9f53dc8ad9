// ApiTest: a real server::Service (`herald serve` in-process) on a free port against a SQLite
// store in a TempDir, with two workspaces ("acme" and "globex") that each have one member and one
// API token per role, and helpers that talk to it over real HTTP. Shared by the API tests
// (tests/unit/server/api_*_test.cc); header-only because it needs herald_server, which the
// support library does not link.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "engine/security/roles.h"
#include "engine/security/secret_box.h"
#include "engine/server/admin.h"
#include "engine/server/metrics.h"
#include "engine/server/openapi.h"
#include "engine/server/service.h"
#include "engine/store/store.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"

namespace herald::testing {

using namespace std::chrono_literals;

inline const std::string kAcme = "acme";
inline const std::string kGlobex = "globex";

// One answer of the server, its body parsed when it is JSON.
struct ApiReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
  Json json;  // null when the body is not JSON
  std::string error;  // why no answer came

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
  std::string describe() const {
    return "HTTP " + std::to_string(status) + (error.empty() ? "" : " (" + error + ")") + ": " +
           body.substr(0, 2000);
  }
};

inline std::ostream& operator<<(std::ostream& out, const ApiReply& reply) { return out << reply.describe(); }

// Checks the error shape every failed request has: the status, and a body
// {"error": {"code", "message", "request_id"}} whose request id is the X-Request-Id header's.
inline ::testing::AssertionResult is_error(const ApiReply& reply, int status, const std::string& code = "") {
  if (reply.status != status) {
    return ::testing::AssertionFailure() << "expected " << status << ", got " << reply.describe();
  }
  if (!reply.json.is_object() || !reply.json.contains("error") || !reply.json["error"].is_object()) {
    return ::testing::AssertionFailure() << "no error object: " << reply.describe();
  }
  const Json& error = reply.json["error"];
  for (const char* field : {"code", "message", "request_id"}) {
    if (!error.contains(field) || !error[field].is_string() || error[field].get<std::string>().empty()) {
      return ::testing::AssertionFailure() << "error." << field << " missing or empty: " << reply.describe();
    }
  }
  if (!code.empty() && error["code"] != code) {
    return ::testing::AssertionFailure() << "expected code " << code << ": " << reply.describe();
  }
  if (error["request_id"] != reply.header("x-request-id")) {
    return ::testing::AssertionFailure() << "error.request_id differs from X-Request-Id "
                                         << reply.header("x-request-id") << ": " << reply.describe();
  }
  return ::testing::AssertionSuccess();
}

// Everything a raw HTTP/1.1 exchange sent back, for what HttpReply's map cannot show (a header
// sent twice). `request` is the whole request text; the connection is closed after it.
inline std::string raw_exchange(uint16_t port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    size_t sent = 0;
    while (sent < request.size()) {
      ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    char buffer[4096];
    while (true) {
      ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      out.append(buffer, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

class ApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Secrets need a master key; the environment wins over <data_dir>/master.key.
    ::setenv(std::string(security::kMasterKeyEnv).c_str(), security::MasterKey::generate().to_hex().c_str(), 1);
  }

  void SetUp() override {
    seed();
    if (::testing::Test::HasFatalFailure()) return;
    start_service(options());
  }

  void TearDown() override {
    if (service_) expect_answered_statuses_documented();
    stop_service();
  }

  // Every status the service answered on a route during the test (as /metrics counts them) is one
  // openapi.json lists for that route and method, so the document keeps up with what the
  // handlers really return. HEAD is checked against GET; unmatched paths (404, 405) are not
  // routes' answers.
  void expect_answered_statuses_documented() const {
    Json doc = Json::parse(server::openapi_document(), nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << "openapi.json does not parse";
    const std::string text = service_->metrics().render();
    static const std::regex kLine(
        R"re(herald_http_requests_total\{route="([^"]*)",method="([A-Z]+)",status="(\d+)"\} )re");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), kLine); it != std::sregex_iterator(); ++it) {
      std::string route = (*it)[1].str();
      std::string method = (*it)[2].str();
      std::string status = (*it)[3].str();
      if (route == "unmatched") continue;
      if (method == "HEAD") method = "GET";
      for (auto& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const Json* responses = nullptr;
      if (doc["paths"].contains(route) && doc["paths"][route].contains(method)) {
        responses = &doc["paths"][route][method]["responses"];
      }
      EXPECT_TRUE(responses != nullptr && responses->contains(status))
          << method << " " << route << " answered " << status << ", which openapi.json does not list";
    }
  }

  // What the tests run with: a small body limit (64 KiB), no rate limit (the 429 test starts a
  // service of its own), short grace periods.
  server::ServiceOptions options() const {
    server::ServiceOptions o;
    o.store_url = "sqlite:" + (dir_ / "herald.db").string();
    o.data_dir = dir_.path();
    o.http.port = 0;
    o.http.max_body_bytes = 64 * 1024;
    o.http.keep_alive_timeout = std::chrono::seconds(1);
    o.engine.worker_threads = 2;
    o.api_rate_per_second = 0;
    o.respond_timeout = 5s;
    o.drain_grace = 2s;
    return o;
  }

  void start_service(server::ServiceOptions o) {
    service_ = std::make_unique<server::Service>(std::move(o));
    auto status = service_->start();
    ASSERT_TRUE(status.ok()) << status.error().message;
    port_ = service_->port();
    ASSERT_NE(port_, 0);
  }

  void stop_service() {
    if (service_) service_->stop();
    service_.reset();
  }

  // Two workspaces, each with a member and a token per role: user "<workspace>-<role>".
  void seed() {
    auto opened = store::open_store("sqlite:" + (dir_ / "herald.db").string());
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    auto store = std::move(opened).value();
    for (const auto& workspace : {kAcme, kGlobex}) {
      auto actor = server::Actor::cli(workspace);
      auto created = server::create_workspace(*store, workspace, workspace, actor);
      ASSERT_TRUE(created.ok()) << created.error().message;
      for (auto role : security::kAllRoles) {
        std::string user = user_of(workspace, role);
        auto member = server::put_member(*store, workspace, user, role, user, user + "@example.com", actor);
        ASSERT_TRUE(member.ok()) << member.error().message;
        auto token = server::create_token(*store, workspace, user, role, "test", std::nullopt, actor);
        ASSERT_TRUE(token.ok()) << token.error().message;
        tokens_[workspace][role] = token->token;
        token_ids_[workspace][role] = token->record.id;
      }
    }
  }

  // A second handle on the service's store, for what the API cannot do (an expired token).
  std::unique_ptr<store::Store> open_store() const {
    auto opened = store::open_store("sqlite:" + (dir_ / "herald.db").string());
    EXPECT_TRUE(opened.ok()) << opened.error().message;
    return opened.ok() ? std::move(opened).value() : nullptr;
  }

  static std::string user_of(const std::string& workspace, security::Role role) {
    return workspace + "-" + std::string(security::to_string(role));
  }
  const std::string& token(security::Role role, const std::string& workspace = kAcme) {
    return tokens_[workspace][role];
  }
  const std::string& admin() { return token(security::Role::admin); }

  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

  ApiReply call(const std::string& method, const std::string& path, const std::string& bearer = "",
                const std::string& body = "", const std::string& content_type = "",
                std::map<std::string, std::string> headers = {}) const {
    if (!bearer.empty()) headers["Authorization"] = "Bearer " + bearer;
    if (!content_type.empty()) headers["Content-Type"] = content_type;
    HttpReply raw = http_call(method, url(path), headers, body, 10s);
    ApiReply reply;
    reply.status = raw.status;
    reply.headers = std::move(raw.headers);
    reply.body = std::move(raw.body);
    reply.error = std::move(raw.error);
    reply.json = Json::parse(reply.body, nullptr, false);
    if (reply.json.is_discarded()) reply.json = nullptr;
    return reply;
  }
  ApiReply get(const std::string& path, const std::string& bearer) const { return call("GET", path, bearer); }
  ApiReply post_json(const std::string& path, const std::string& bearer, const Json& body) const {
    return call("POST", path, bearer, body.dump(), "application/json");
  }
  ApiReply put_json(const std::string& path, const std::string& bearer, const Json& body) const {
    return call("PUT", path, bearer, body.dump(), "application/json");
  }
  ApiReply deploy(const std::string& bearer, const std::string& yaml) const {
    return call("POST", "/api/v1/workflows", bearer, yaml, "application/yaml");
  }
  // Deploys with the admin token and expects a new version.
  void must_deploy(const std::string& yaml, const std::string& workspace = kAcme) {
    auto reply = deploy(token(security::Role::admin, workspace), yaml);
    ASSERT_EQ(reply.status, 201) << reply << "\n" << yaml;
  }
  // Starts a run with the admin token; returns its id ("" after a failed expectation).
  std::string start_run(const std::string& workflow, const Json& inputs = Json::object(),
                        const std::string& workspace = kAcme) {
    auto reply = post_json("/api/v1/workflows/" + workflow + "/runs", token(security::Role::admin, workspace),
                           {{"inputs", inputs}});
    EXPECT_EQ(reply.status, 201) << reply;
    return reply.status == 201 ? reply.json.value("id", "") : "";
  }
  void put_secret(const std::string& name, const std::string& value, const std::string& workspace = kAcme) {
    auto reply = put_json("/api/v1/secrets/" + name, token(security::Role::admin, workspace), {{"value", value}});
    ASSERT_EQ(reply.status, 204) << reply;
  }

  // Polls GET /api/v1/runs/{id} until `done` holds; returns the last view (and fails the test
  // when time runs out).
  Json wait_run(const std::string& run_id, const std::function<bool(const Json&)>& done,
                std::chrono::milliseconds timeout = 10s, const std::string& workspace = kAcme) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    Json last;
    while (true) {
      auto reply = get("/api/v1/runs/" + run_id, token(security::Role::admin, workspace));
      if (reply.status == 200) {
        last = reply.json;
        if (done(last)) return last;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        ADD_FAILURE() << "run " << run_id << " did not get there in time; last: " << reply;
        return last;
      }
      std::this_thread::sleep_for(15ms);
    }
  }
  Json wait_final(const std::string& run_id, std::chrono::milliseconds timeout = 10s,
                  const std::string& workspace = kAcme) {
    return wait_run(
        run_id,
        [](const Json& run) {
          std::string state = run.value("state", "");
          return state == "succeeded" || state == "failed" || state == "cancelled";
        },
        timeout, workspace);
  }
  Json wait_state(const std::string& run_id, const std::string& state, std::chrono::milliseconds timeout = 10s) {
    return wait_run(run_id, [&](const Json& run) { return run.value("state", "") == state; }, timeout);
  }

  // The runs of a workflow (newest first), polled until there are at least `count`.
  Json wait_runs_of(const std::string& workflow, size_t count, std::chrono::milliseconds timeout = 10s,
                    const std::string& workspace = kAcme) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      auto reply = get("/api/v1/runs?workflow=" + workflow, token(security::Role::admin, workspace));
      if (reply.status == 200 && reply.json["items"].size() >= count) return reply.json["items"];
      if (std::chrono::steady_clock::now() >= deadline) {
        ADD_FAILURE() << "fewer than " << count << " runs of " << workflow << ": " << reply;
        return reply.json.is_object() ? reply.json["items"] : Json::array();
      }
      std::this_thread::sleep_for(15ms);
    }
  }

  // The entry for `step` in a run view's `steps`; null when absent.
  static Json step_of(const Json& run, const std::string& step) {
    if (!run.contains("steps")) return nullptr;
    for (const auto& s : run["steps"]) {
      if (s.value("step", "") == step && !s.contains("item")) return s;
    }
    return nullptr;
  }

  TempDir dir_{"herald-api"};
  std::unique_ptr<server::Service> service_;
  uint16_t port_ = 0;
  std::map<std::string, std::map<security::Role, std::string>> tokens_;
  std::map<std::string, std::map<security::Role, std::string>> token_ids_;
};

}  // namespace herald::testing
