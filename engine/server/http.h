// The HTTP layer of `herald serve`: requests and responses as plain values, a router that matches
// "/api/v1/workflows/{id}" patterns, JSON error bodies, and the server itself (Poco Net underneath,
// kept out of this header so that including it stays cheap). Routes know nothing of Poco.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/common/result.h"

namespace herald::server {

class Metrics;

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // percent-decoded, without the query
  std::map<std::string, std::string> query;  // percent-decoded; the last value of a repeated key
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;
  std::string remote_address;  // "127.0.0.1" (no port)
  std::string request_id;      // the caller's X-Request-Id when sane, else generated
  std::map<std::string, std::string> params;  // from the route pattern's {name} parts
  std::string route;  // the matched pattern, e.g. "/api/v1/runs/{id}" (for metrics and logs)

  // The header's value, or nullptr. `name` in lowercase.
  const std::string* header(std::string_view name) const;
  // The media type of Content-Type, lowercased, without parameters ("application/json").
  std::string content_type() const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

Response json_response(int status, const Json& body);

// The HTTP status for an error code: invalid_argument 400, unauthenticated 401,
// permission_denied 403, not_found 404, already_exists / failed_precondition 409,
// resource_exhausted 429, unavailable 503, deadline_exceeded 504, cancelled 499, internal 500.
// An Error may override it with details.http_status (e.g. 413, 415, 422).
int http_status_for(const Error& error);

// {"error": {"code", "message", "details", "request_id"}} with the status above. An internal
// error's message and details are replaced by a generic text (the original goes to the log with
// the request id), so no internals leak. details.http_status is not shown; details left empty
// are omitted. An error with retry_after gets a Retry-After header (whole seconds, rounded up).
Response error_response(const Error& error, const std::string& request_id);

// An Error carrying an explicit HTTP status (e.g. 413, 415, 422) in details.http_status. Details
// that are not an object are kept under details.value.
Error http_error(ErrorCode code, int http_status, std::string message, Json details = nullptr);

using Handler = std::function<Response(Request&)>;

struct Route {
  std::string method;
  std::string pattern;  // "/api/v1/workflows/{id}/versions"; {name} matches one path segment
  std::string summary;  // one line, for the OpenAPI check and logs
  Handler handler;
};

// Matches requests to routes. Literal segments win over {params} at the same position (the
// leftmost difference decides). A trailing slash is ignored ("/api/v1/runs/" is "/api/v1/runs").
// A path that matches a pattern with another method gives 405 with an Allow header (code
// invalid_argument, details.allowed); no pattern, 404 (not_found, naming method and path). HEAD
// runs the GET route when there is no HEAD route (the server sends no body for HEAD). Matching
// is on the decoded path, so a %2F inside a segment splits it.
class Router {
 public:
  // Throws std::invalid_argument for a malformed pattern (not starting with '/', an empty
  // segment, a {param} that is not a whole segment or is repeated) or a method and pattern
  // already added (patterns that differ only in their param names are the same).
  void add(std::string method, std::string pattern, std::string summary, Handler handler);
  const std::vector<Route>& routes() const { return routes_; }
  // The route dispatch() would run, with request.params and request.route filled; nullptr (and
  // both cleared) when none matches the method and path.
  const Route* match(Request& request) const;
  // Fills request.params and request.route, runs the handler. Exceptions from a handler become a
  // 500 error_response (logged with the request id).
  Response dispatch(Request& request) const;

 private:
  const Route* find(Request& request, std::vector<std::string>* allowed) const;

  std::vector<Route> routes_;
  std::vector<std::vector<std::string>> segments_;  // routes_[i].pattern split at '/'
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0: pick a free port (see HttpServer::port())
  size_t max_body_bytes = 1 << 20;  // larger bodies get 413 without being read in full
  int max_threads = 64;             // connections served at once (keep-alive holds one each)
  int max_queued = 256;             // connections waiting for a thread
  std::chrono::seconds keep_alive_timeout{10};
};

// The server: one Poco HTTPServer on a ServerSocket. Every request gets a request id (echoed in
// X-Request-Id; the caller's when it is 1-128 of [A-Za-z0-9._-], else 16 random base62
// characters), its body read up to the limit (413, code resource_exhausted, beyond it; the
// connection then closes), and is counted in `metrics` (when given; declared by the
// constructor) as herald_http_requests_total{route,method,status} and
// herald_http_request_duration_seconds{route} (route: the matched pattern or "unmatched").
class HttpServer {
 public:
  HttpServer(const Router& router, ServerOptions options, Metrics* metrics = nullptr);
  ~HttpServer();  // stops
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts accepting; unavailable (with the address) when the port is taken or the
  // host does not resolve; failed_precondition when already started.
  Status start();
  uint16_t port() const;  // the bound port (0 before the first start)
  // Stops accepting new connections (they are refused from then on), lets requests in progress
  // finish for up to `grace`, then closes every connection (idle keep-alive ones at once).
  // Requests still running after `grace` have their connection shut down; stop() waits up to
  // one more second for their handlers to return, then returns anyway (logged). Such a handler
  // runs on, no longer counted in `metrics`: the Router and whatever its handlers use must stay
  // alive until it returns (make long waits in handlers end when the service stops). Requests
  // answered while stopping carry "Connection: close". With no request in progress it returns
  // within a few hundred milliseconds however many connections are open or were just served
  // (Poco's accept loop polls every 250 ms; its idle connection threads end within 100 ms).
  // Safe to call twice; start() again after.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "127.0.0.1:8080", "[::1]:8080" → that host and port; ":8080" → "0.0.0.0" (all interfaces);
// "8080" → "127.0.0.1" (a bare port keeps the safe default host of ServerOptions). Host names
// ("localhost:0") are kept as given and resolved by start(). invalid_argument, naming the text,
// for an empty or non-numeric port, a port over 65535, an unbracketed IPv6 address or an
// unclosed '['.
Result<std::pair<std::string, uint16_t>> parse_listen_address(std::string_view text);

}  // namespace herald::server
