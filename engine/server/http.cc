#include "engine/server/http.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <thread>

#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/ThreadPool.h>
#include <Poco/Timespan.h>
#include <Poco/URI.h>
#include <spdlog/spdlog.h>

#include "engine/security/random.h"
#include "engine/server/metrics.h"

namespace herald::server {

namespace {

constexpr const char* kRequestsTotal = "herald_http_requests_total";
constexpr const char* kRequestDuration = "herald_http_request_duration_seconds";

// How long one of Poco's connection threads waits in its queue for a connection before it may
// end. It also bounds stop(): Poco 1.11's TCPServer::stop() wakes only one thread waiting in the
// queue (it enqueues a single StopNotification); the others notice the stop when their wait
// times out, and stop() joins them. A burst of short connections leaves several waiting, so with
// Poco's default (10 s) stop() took 10 s after a burst. Poco's ThreadPool keeps the threads
// themselves, so ending and restarting a connection thread costs little.
constexpr long kThreadIdleMicroseconds = 100'000;

std::string lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// "/a/b/" → {"a", "b"}; "/" and "" → {}. Inner empty segments ("/a//b") are kept, so they
// match nothing.
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> segments;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (path.empty()) return segments;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      segments.push_back(path.substr(start));
      break;
    }
    segments.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return segments;
}

bool is_param(const std::string& segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

bool matches(const std::vector<std::string>& pattern, const std::vector<std::string_view>& path) {
  if (pattern.size() != path.size()) return false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (is_param(pattern[i])) {
      if (path[i].empty()) return false;
    } else if (pattern[i] != path[i]) {
      return false;
    }
  }
  return true;
}

// True when `a` is more specific than `b` (both match the same path): at the leftmost position
// where one has a literal and the other a param, the literal wins.
bool more_specific(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    bool a_param = is_param(a[i]);
    bool b_param = is_param(b[i]);
    if (a_param != b_param) return !a_param;
  }
  return false;
}

std::string generic_internal_message(const std::string& request_id) {
  return "internal error; see the server log for request " + request_id;
}

Response internal_error_response(const std::string& request_id) {
  Json error = {{"code", "internal"},
                {"message", generic_internal_message(request_id)},
                {"request_id", request_id}};
  return json_response(500, {{"error", std::move(error)}});
}

bool sane_request_id(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '_' || c == '-';
  });
}

// Cardinality guard for the metrics' method label.
std::string method_label(const std::string& method) {
  static const char* const kKnown[] = {"GET",    "HEAD",    "POST",  "PUT",
                                       "DELETE", "OPTIONS", "PATCH", "TRACE"};
  for (const char* known : kKnown) {
    if (method == known) return method;
  }
  return "OTHER";
}

std::string format_host_port(const std::string& host, uint16_t port) {
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  out += ':';
  out += std::to_string(port);
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Request, Response, errors

const std::string* Request::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return &value;
  }
  return nullptr;
}

std::string Request::content_type() const {
  const std::string* value = header("content-type");
  if (value == nullptr) return "";
  std::string_view text = *value;
  if (size_t semicolon = text.find(';'); semicolon != std::string_view::npos) {
    text = text.substr(0, semicolon);
  }
  return lowercase(trim(text));
}

Response json_response(int status, const Json& body) {
  Response response;
  response.status = status;
  // Invalid UTF-8 (a client's path echoed in a message) is replaced rather than thrown on.
  response.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  return response;
}

int http_status_for(const Error& error) {
  if (error.details.is_object()) {
    auto it = error.details.find("http_status");
    if (it != error.details.end() && it->is_number_integer()) {
      int64_t status = it->get<int64_t>();
      if (status >= 100 && status <= 599) return static_cast<int>(status);
    }
  }
  switch (error.code) {
    case ErrorCode::invalid_argument:
      return 400;
    case ErrorCode::unauthenticated:
      return 401;
    case ErrorCode::permission_denied:
      return 403;
    case ErrorCode::not_found:
      return 404;
    case ErrorCode::already_exists:
    case ErrorCode::failed_precondition:
    case ErrorCode::aborted:
      return 409;
    case ErrorCode::resource_exhausted:
      return 429;
    case ErrorCode::cancelled:
      return 499;
    case ErrorCode::unavailable:
      return 503;
    case ErrorCode::deadline_exceeded:
      return 504;
    case ErrorCode::internal:
      return 500;
  }
  return 500;
}

Response error_response(const Error& error, const std::string& request_id) {
  int status = http_status_for(error);
  Response response;
  if (error.code == ErrorCode::internal) {
    spdlog::error("request {}: internal error: {}{}", request_id, error.message,
                  error.details.is_null()
                      ? std::string()
                      : " " + error.details.dump(-1, ' ', false, Json::error_handler_t::replace));
    response = internal_error_response(request_id);
    response.status = status;
  } else {
    Json body = {{"code", std::string(to_string(error.code))},
                 {"message", error.message},
                 {"request_id", request_id}};
    Json details = error.details;
    if (details.is_object()) details.erase("http_status");
    if (!details.is_null() && !(details.is_object() && details.empty())) {
      body["details"] = std::move(details);
    }
    response = json_response(status, {{"error", std::move(body)}});
  }
  if (error.retry_after && error.retry_after->count() > 0) {
    // Whole seconds, rounded up: a client that waits that long is not early.
    int64_t seconds = (error.retry_after->count() + 999) / 1000;
    response.headers.emplace_back("Retry-After", std::to_string(seconds));
  }
  return response;
}

Error http_error(ErrorCode code, int http_status, std::string message, Json details) {
  Error error = make_error(code, std::move(message));
  if (details.is_null()) {
    details = Json::object();
  } else if (!details.is_object()) {
    details = Json{{"value", std::move(details)}};
  }
  details["http_status"] = http_status;
  error.details = std::move(details);
  return error;
}

// ---------------------------------------------------------------------------------------------
// Router

void Router::add(std::string method, std::string pattern, std::string summary, Handler handler) {
  std::transform(method.begin(), method.end(), method.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (method.empty()) throw std::invalid_argument("route " + pattern + ": empty method");
  if (pattern.empty() || pattern.front() != '/') {
    throw std::invalid_argument("route pattern '" + pattern + "' must start with '/'");
  }
  std::vector<std::string> segments;
  std::vector<std::string> param_names;
  for (std::string_view part : split_path(pattern)) {
    std::string segment(part);
    if (segment.empty()) {
      throw std::invalid_argument("route pattern '" + pattern + "' has an empty segment");
    }
    bool has_brace = segment.find_first_of("{}") != std::string::npos;
    if (is_param(segment)) {
      std::string name = segment.substr(1, segment.size() - 2);
      bool valid = !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '_';
      });
      if (!valid) {
        throw std::invalid_argument("route pattern '" + pattern + "': bad parameter " + segment);
      }
      if (std::find(param_names.begin(), param_names.end(), name) != param_names.end()) {
        throw std::invalid_argument("route pattern '" + pattern + "' repeats {" + name + "}");
      }
      param_names.push_back(name);
    } else if (has_brace) {
      throw std::invalid_argument("route pattern '" + pattern +
                                  "': a {param} must be a whole segment");
    }
    segments.push_back(std::move(segment));
  }
  for (size_t i = 0; i < routes_.size(); ++i) {
    if (routes_[i].method != method || segments_[i].size() != segments.size()) continue;
    bool same = true;
    for (size_t k = 0; k < segments.size() && same; ++k) {
      bool a = is_param(segments[k]);
      bool b = is_param(segments_[i][k]);
      same = a == b && (a || segments[k] == segments_[i][k]);
    }
    if (same) {
      throw std::invalid_argument("route " + method + " " + pattern + " duplicates " +
                                  routes_[i].pattern);
    }
  }
  routes_.push_back(
      Route{std::move(method), std::move(pattern), std::move(summary), std::move(handler)});
  segments_.push_back(std::move(segments));
}

const Route* Router::find(Request& request, std::vector<std::string>* allowed) const {
  request.params.clear();
  request.route.clear();
  std::vector<std::string_view> path = split_path(request.path);
  const bool head = request.method == "HEAD";
  size_t best = routes_.size();
  size_t best_get = routes_.size();  // for HEAD without a HEAD route
  for (size_t i = 0; i < routes_.size(); ++i) {
    if (!matches(segments_[i], path)) continue;
    const std::string& method = routes_[i].method;
    if (method == request.method) {
      if (best == routes_.size() || more_specific(segments_[i], segments_[best])) best = i;
    } else if (head && method == "GET") {
      if (best_get == routes_.size() || more_specific(segments_[i], segments_[best_get])) {
        best_get = i;
      }
    } else if (allowed != nullptr) {
      if (std::find(allowed->begin(), allowed->end(), method) == allowed->end()) {
        allowed->push_back(method);
      }
    }
  }
  if (best == routes_.size()) best = best_get;
  if (best == routes_.size()) {
    if (allowed != nullptr) std::sort(allowed->begin(), allowed->end());
    return nullptr;
  }
  const std::vector<std::string>& segments = segments_[best];
  for (size_t k = 0; k < segments.size(); ++k) {
    if (is_param(segments[k])) {
      request.params[segments[k].substr(1, segments[k].size() - 2)] = std::string(path[k]);
    }
  }
  request.route = routes_[best].pattern;
  return &routes_[best];
}

const Route* Router::match(Request& request) const {
  return find(request, nullptr);
}

Response Router::dispatch(Request& request) const {
  std::vector<std::string> allowed;
  const Route* route = find(request, &allowed);
  if (route == nullptr) {
    if (allowed.empty()) {
      return error_response(
          make_error(ErrorCode::not_found, "no route for " + request.method + " " + request.path),
          request.request_id);
    }
    std::string allow;
    for (const std::string& method : allowed) {
      if (!allow.empty()) allow += ", ";
      allow += method;
    }
    Response response =
        error_response(http_error(ErrorCode::invalid_argument, 405,
                                  "method " + request.method + " is not allowed for " +
                                      request.path + " (allowed: " + allow + ")",
                                  Json{{"allowed", allowed}}),
                       request.request_id);
    response.headers.emplace_back("Allow", allow);
    return response;
  }
  try {
    return route->handler(request);
  } catch (const std::exception& e) {
    spdlog::error("request {}: {} {} ({}) failed: {}", request.request_id, request.method,
                  request.path, route->pattern, e.what());
  } catch (...) {
    spdlog::error("request {}: {} {} ({}) failed with an unknown exception", request.request_id,
                  request.method, request.path, route->pattern);
  }
  return internal_error_response(request.request_id);
}

// ---------------------------------------------------------------------------------------------
// HttpServer

namespace http_internal {

// One run of the server (start() to stop()), shared with the Poco handler factory, so that a
// handler still running after stop() gave up on it finds this state alive.
struct Core {
  const Router& router;
  const ServerOptions options;

  // The caller's Metrics; stop() clears it (under the unique lock) when it returns before every
  // handler has, so a late handler never touches a Metrics its owner may have destroyed.
  std::shared_mutex metrics_mutex;
  Metrics* metrics;

  std::atomic<bool> stopping{false};
  std::mutex in_flight_mutex;
  std::condition_variable in_flight_done;
  int in_flight = 0;

  Core(const Router& r, ServerOptions o, Metrics* m)
      : router(r), options(std::move(o)), metrics(m) {}

  void handle(Poco::Net::HTTPServerRequest& in, Poco::Net::HTTPServerResponse& out);
  void begin_request() {
    std::lock_guard lock(in_flight_mutex);
    ++in_flight;
  }
  void end_request() {
    std::lock_guard lock(in_flight_mutex);
    if (--in_flight == 0) in_flight_done.notify_all();
  }
};

namespace {

class PocoHandler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit PocoHandler(Core& impl) : impl_(impl) {}
  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    impl_.handle(request, response);
  }

 private:
  Core& impl_;
};

class PocoHandlerFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit PocoHandlerFactory(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest& request) override {
    // A body that will be refused: a status other than 200 here keeps Poco from sending
    // "100 Continue", so a client that waits for it never sends the body.
    if (request.hasContentLength() &&
        static_cast<uint64_t>(request.getContentLength64()) > core_->options.max_body_bytes) {
      request.response().setStatus(Poco::Net::HTTPResponse::HTTP_REQUEST_ENTITY_TOO_LARGE);
    }
    return new PocoHandler(*core_);
  }

 private:
  std::shared_ptr<Core> core_;
};

// After refusing a body: the response is out, so stop sending and read (and drop) a bounded
// amount of what the client still sends before the connection closes. Closing a socket with
// unread data sends a reset, which can make the client lose the response it has not read yet.
void linger_after_refusal(Poco::Net::HTTPServerRequest& request) {
  auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&request);
  if (impl == nullptr) return;
  try {
    Poco::Net::StreamSocket& socket = impl->socket();
    socket.shutdownSend();
    socket.setReceiveTimeout(Poco::Timespan(0, 200 * 1000));
    constexpr size_t kMaxDrain = 1 << 20;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    char buffer[16384];
    size_t drained = 0;
    while (drained < kMaxDrain && std::chrono::steady_clock::now() < deadline) {
      int n = socket.receiveBytes(buffer, sizeof buffer);
      if (n <= 0) break;
      drained += static_cast<size_t>(n);
    }
  } catch (const Poco::Exception&) {
    // A timeout or a reset: the connection closes either way.
  }
}

bool status_has_body(int status) {
  return status >= 200 && status != 204 && status != 304;
}

}  // namespace

void Core::handle(Poco::Net::HTTPServerRequest& in, Poco::Net::HTTPServerResponse& out) {
  const auto started = std::chrono::steady_clock::now();
  begin_request();
  struct EndRequest {
    Core* impl;
    ~EndRequest() { impl->end_request(); }
  } end_request_guard{this};

  Request request;
  Response response;
  bool keep_alive = !stopping.load();
  bool refused_body = false;
  try {
    request.method = in.getMethod();
    std::string incoming_id = in.get("X-Request-Id", "");
    request.request_id = sane_request_id(incoming_id) ? incoming_id : security::random_base62(16);
    request.headers.reserve(in.size());
    for (const auto& [name, value] : in) request.headers.emplace_back(lowercase(name), value);
    request.remote_address = in.clientAddress().host().toString();

    std::optional<Error> bad_target;
    try {
      Poco::URI uri(in.getURI());
      request.path = uri.getPath();
      if (request.path.empty()) request.path = "/";
      for (auto& [name, value] : uri.getQueryParameters()) {
        request.query[std::move(name)] = std::move(value);
      }
    } catch (const Poco::Exception& e) {
      bad_target = make_error(ErrorCode::invalid_argument,
                              "malformed request target '" + in.getURI() + "': " + e.message());
    }

    // The body, up to the limit. Without Content-Length or chunked encoding there is none
    // (RFC 9112 6.3), whatever the method.
    const size_t limit = options.max_body_bytes;
    auto too_large = [&]() {
      refused_body = true;
      keep_alive = false;
      return http_error(
          ErrorCode::resource_exhausted, 413,
          "request body is larger than the limit of " + std::to_string(limit) + " bytes",
          Json{{"limit_bytes", limit}});
    };
    std::optional<Error> body_error;
    if (in.getChunkedTransferEncoding()) {
      std::istream& stream = in.stream();
      char buffer[16384];
      while (request.body.size() <= limit) {
        size_t want = std::min(sizeof buffer, limit + 1 - request.body.size());
        stream.read(buffer, static_cast<std::streamsize>(want));
        std::streamsize got = stream.gcount();
        if (got <= 0) break;
        request.body.append(buffer, static_cast<size_t>(got));
      }
      if (request.body.size() > limit) {
        body_error = too_large();
      } else if (stream.bad()) {
        keep_alive = false;
        body_error = make_error(ErrorCode::invalid_argument, "malformed chunked request body");
      }
    } else if (in.hasContentLength()) {
      Poco::Int64 length = in.getContentLength64();
      if (length < 0) {
        keep_alive = false;
        body_error = make_error(ErrorCode::invalid_argument, "invalid Content-Length");
      } else if (static_cast<uint64_t>(length) > limit) {
        body_error = too_large();
      } else if (length > 0) {
        request.body.resize(static_cast<size_t>(length));
        std::istream& stream = in.stream();
        stream.read(request.body.data(), length);
        if (stream.gcount() != length) {
          keep_alive = false;
          request.body.resize(static_cast<size_t>(std::max<std::streamsize>(stream.gcount(), 0)));
          body_error = make_error(ErrorCode::invalid_argument,
                                  "request body ended before its Content-Length");
        }
      }
    }

    if (bad_target) {
      response = error_response(*bad_target, request.request_id);
    } else if (body_error) {
      router.match(request);  // for the route label
      response = error_response(*body_error, request.request_id);
    } else {
      response = router.dispatch(request);
    }
  } catch (const std::exception& e) {
    spdlog::error("request {}: {} {} failed: {}", request.request_id, request.method, request.path,
                  e.what());
    response = internal_error_response(request.request_id);
    keep_alive = false;
  }

  // Counted before the response goes out, so a client that has its answer sees it counted. The
  // time is up to the start of sending (the write of a small response costs microseconds).
  double seconds = 0;
  bool recorded = false;
  auto record = [&]() {
    if (recorded) return;
    recorded = true;
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::shared_lock lock(metrics_mutex);
    if (metrics == nullptr) return;
    const std::string route = request.route.empty() ? "unmatched" : request.route;
    metrics->increment(kRequestsTotal,
                       {route, method_label(request.method), std::to_string(response.status)});
    metrics->observe(kRequestDuration, {route}, seconds);
  };

  try {
    if (response.status < 100 || response.status > 599) {
      spdlog::error("request {}: handler for {} answered with status {}", request.request_id,
                    request.route, response.status);
      response = internal_error_response(request.request_id);
    }
    auto status = static_cast<Poco::Net::HTTPResponse::HTTPStatus>(response.status);
    std::string reason = Poco::Net::HTTPResponse::getReasonForStatus(status);
    if (response.status == 499) reason = "Client Closed Request";
    if (reason == Poco::Net::HTTPResponse::HTTP_REASON_UNKNOWN) reason = "Unknown";
    out.setStatusAndReason(status, reason);
    for (const auto& [name, value] : response.headers) {
      std::string key = lowercase(name);
      // The server owns the framing headers.
      if (key == "content-length" || key == "transfer-encoding" || key == "connection") continue;
      if (key == "content-type") {
        out.setContentType(value);
      } else {
        out.add(name, value);
      }
    }
    if (!response.content_type.empty() && status_has_body(response.status)) {
      out.setContentType(response.content_type);
    }
    out.set("X-Request-Id", request.request_id);
    if (!keep_alive || stopping.load()) out.setKeepAlive(false);
    record();
    if (status_has_body(response.status)) {
      out.setContentLength64(static_cast<Poco::Int64>(response.body.size()));
      std::ostream& body = out.send();
      if (request.method != "HEAD") {
        body.write(response.body.data(), static_cast<std::streamsize>(response.body.size()));
      }
      body.flush();
    } else {
      out.send().flush();
    }
    if (refused_body) linger_after_refusal(in);
  } catch (const std::exception& e) {
    // Mostly a client that went away; nothing more can be sent.
    spdlog::debug("request {}: sending the response failed: {}", request.request_id, e.what());
  }
  record();  // when sending failed before it was

  spdlog::debug("request {}: {} {} -> {} in {:.1f} ms", request.request_id, request.method,
                request.path, response.status, seconds * 1000);
}

}  // namespace http_internal

struct HttpServer::Impl {
  const Router& router;
  ServerOptions options;
  Metrics* metrics;

  std::mutex lifecycle;                       // start() and stop()
  std::shared_ptr<http_internal::Core> core;  // while running
  std::unique_ptr<Poco::ThreadPool> pool;
  std::unique_ptr<Poco::Net::HTTPServer> server;
  Poco::Net::ServerSocket socket;
  std::atomic<uint16_t> bound_port{0};

  Impl(const Router& r, ServerOptions o, Metrics* m)
      : router(r), options(std::move(o)), metrics(m) {}
};

HttpServer::HttpServer(const Router& router, ServerOptions options, Metrics* metrics)
    : impl_(std::make_unique<Impl>(router, std::move(options), metrics)) {
  if (metrics != nullptr) {
    metrics->declare_counter(kRequestsTotal,
                             "HTTP requests answered, by route pattern, method and status.",
                             {"route", "method", "status"});
    metrics->declare_histogram(
        kRequestDuration,
        "Time from a request's headers to its response being sent, by route pattern.", {"route"},
        {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
  }
}

HttpServer::~HttpServer() {
  try {
    stop();
  } catch (const std::exception& e) {
    spdlog::error("http server: stopping failed: {}", e.what());
  }
}

Status HttpServer::start() {
  Impl& impl = *impl_;
  std::lock_guard lock(impl.lifecycle);
  const std::string where = format_host_port(impl.options.host, impl.options.port);
  if (impl.server) {
    return make_error(ErrorCode::failed_precondition,
                      "http server on " + where + " is already running");
  }
  try {
    Poco::Net::SocketAddress address(impl.options.host, impl.options.port);
    Poco::Net::ServerSocket socket;
    // Reuse the address (a restart right after a stop binds despite TIME_WAIT) but not the
    // port: SO_REUSEPORT would let a second server share the port instead of failing.
    if (address.family() == Poco::Net::SocketAddress::IPv6) {
      socket.bind6(address, true, false, false);
    } else {
      socket.bind(address, true, false);
    }
    socket.listen(std::max(64, impl.options.max_queued));

    auto params = Poco::AutoPtr<Poco::Net::HTTPServerParams>(new Poco::Net::HTTPServerParams);
    const int threads = std::max(1, impl.options.max_threads);
    params->setMaxThreads(threads);
    params->setMaxQueued(std::max(1, impl.options.max_queued));
    params->setKeepAlive(true);
    params->setKeepAliveTimeout(
        Poco::Timespan(static_cast<long>(impl.options.keep_alive_timeout.count()), 0));
    params->setMaxKeepAliveRequests(0);  // unlimited
    params->setThreadIdleTime(Poco::Timespan(0, kThreadIdleMicroseconds));

    auto core = std::make_shared<http_internal::Core>(impl.router, impl.options, impl.metrics);
    auto pool = std::make_unique<Poco::ThreadPool>(std::min(2, threads), threads);
    auto server = std::make_unique<Poco::Net::HTTPServer>(
        new http_internal::PocoHandlerFactory(core), *pool, socket, params);
    server->start();
    impl.bound_port = socket.address().port();
    impl.socket = socket;
    impl.core = std::move(core);
    impl.pool = std::move(pool);
    impl.server = std::move(server);
    spdlog::info("http server listening on {}",
                 format_host_port(socket.address().host().toString(), impl.bound_port));
    return ok_status();
  } catch (const Poco::Exception& e) {
    return make_error(ErrorCode::unavailable, "cannot listen on " + where + ": " + e.displayText());
  } catch (const std::exception& e) {
    return make_error(ErrorCode::unavailable, "cannot listen on " + where + ": " + e.what());
  }
}

uint16_t HttpServer::port() const {
  return impl_->bound_port.load();
}

void HttpServer::stop(std::chrono::milliseconds grace) {
  Impl& impl = *impl_;
  std::lock_guard lock(impl.lifecycle);
  if (!impl.server) return;
  http_internal::Core& core = *impl.core;
  core.stopping = true;

  // 1. No new connections: the accepting thread ends (it polls every 250 ms), then the socket
  //    closes so that connection attempts are refused rather than left in the backlog.
  impl.server->stop();
  try {
    impl.socket.close();
  } catch (const Poco::Exception&) {
  }

  // 2. Requests in progress get up to `grace` to finish.
  bool drained;
  {
    std::unique_lock wait(core.in_flight_mutex);
    drained = core.in_flight_done.wait_for(wait, grace, [&] { return core.in_flight == 0; });
  }

  // 3. Close the connections. Poco's stopAll(false) waits for each connection's request in
  //    progress (without a time limit) before shutting its socket down; stopAll(true) shuts them
  //    all down at once. Idle keep-alive connections close either way.
  if (!drained) {
    spdlog::warn("http server: requests still running after {} ms; closing their connections",
                 grace.count());
  }
  impl.server->stopAll(!drained);

  // 4. The connection threads end once their handler has returned, which for the aborted ones
  //    is usually at once (their writes fail). Wait a little for that.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (impl.server->currentConnections() > 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const int still_running = impl.server->currentConnections();
  impl.server.reset();  // what running connections use of it is reference-counted
  if (still_running == 0) {
    // Connection threads still waiting in Poco's queue end within kThreadIdleMicroseconds.
    impl.pool->joinAll();
    impl.pool.reset();
  } else {
    // Handlers blocked on something else. They keep the run's state (Core) alive and no longer
    // update the caller's metrics; their pool is joined and freed by a thread of its own once
    // they return (it cannot be from one of its own threads).
    spdlog::warn("http server: {} request(s) still running after stop; they finish on their own",
                 still_running);
    {
      std::unique_lock metrics_lock(core.metrics_mutex);
      core.metrics = nullptr;
    }
    std::thread([pool = std::move(impl.pool)]() { pool->joinAll(); }).detach();
  }
  impl.core.reset();
  spdlog::info("http server on port {} stopped", impl.bound_port.load());
}

// ---------------------------------------------------------------------------------------------
// parse_listen_address

Result<std::pair<std::string, uint16_t>> parse_listen_address(std::string_view text) {
  auto invalid = [&](std::string_view why) {
    std::string message = "invalid listen address '";
    message += text;
    message += "': ";
    message += why;
    message += " (expected HOST:PORT, [IPV6]:PORT, :PORT or PORT)";
    return make_error(ErrorCode::invalid_argument, std::move(message));
  };
  if (text.empty()) return invalid("it is empty");
  std::string host;
  std::string_view port_text;
  if (text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return invalid("'[' without ']'");
    host = std::string(text.substr(1, close - 1));
    if (host.empty()) return invalid("empty address in brackets");
    std::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ':') return invalid("no ':PORT' after ']'");
    port_text = rest.substr(1);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      host = "127.0.0.1";
      port_text = text;
    } else {
      if (text.find(':') != colon) {
        return invalid("an IPv6 address needs brackets, as in [::1]:8080");
      }
      host = std::string(text.substr(0, colon));
      if (host.empty()) host = "0.0.0.0";
      port_text = text.substr(colon + 1);
    }
  }
  for (char c : host) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == '/' || c == '[' || c == ']') {
      return invalid("bad character in the host");
    }
  }
  if (port_text.empty()) return invalid("the port is missing");
  if (port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(),
                                           [](char c) { return c >= '0' && c <= '9'; })) {
    return invalid("the port must be a number from 0 to 65535");
  }
  unsigned long port = std::stoul(std::string(port_text));
  if (port > 65535) return invalid("the port must be a number from 0 to 65535");
  return std::make_pair(std::move(host), static_cast<uint16_t>(port));
}

}  // namespace herald::server
