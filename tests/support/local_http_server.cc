#include "tests/support/local_http_server.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/ThreadPool.h>
#include <Poco/URI.h>

namespace herald::testing {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

struct Route {
  std::string method;  // upper case, or "*"
  std::string path;    // exact, or a prefix when it ends in "/*"
  Handler handler;
  std::deque<Response> queue;
  std::optional<Response> last_scripted;

  bool is_prefix() const { return path.ends_with("/*"); }
  std::string_view prefix() const { return std::string_view(path).substr(0, path.size() - 2); }

  // 0 when the route does not match; higher is a better match.
  size_t score(std::string_view request_method, std::string_view request_path) const {
    if (method != "*" && method != request_method) return 0;
    size_t method_bonus = method == "*" ? 0 : 1;
    if (!is_prefix()) return path == request_path ? 1'000'000 + method_bonus : 0;
    std::string_view base = prefix();
    bool under = request_path == base ||
                 (request_path.starts_with(base) && request_path.size() > base.size() &&
                  request_path[base.size()] == '/') ||
                 base.empty();
    return under ? 2 + base.size() * 2 + method_bonus : 0;
  }
};

}  // namespace

struct LocalHttpServer::State {
  std::string host;
  uint16_t port = 0;
  mutable std::mutex mutex;
  mutable std::condition_variable changed;  // a request arrived, or the server is stopping
  std::vector<Route> routes;
  std::vector<RecordedRequest> requests;
  EffectLedger ledger;
  bool stopping = false;
  bool stopped = false;
  Poco::ThreadPool pool{2, 64};
  std::unique_ptr<Poco::Net::HTTPServer> server;

  Route& route_for(std::string method, std::string path) {
    std::transform(method.begin(), method.end(), method.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    for (Route& route : routes) {
      if (route.method == method && route.path == path) return route;
    }
    routes.push_back(Route{method, path, nullptr, {}, std::nullopt});
    return routes.back();
  }

  // Picks the answer under the lock; the handler itself runs outside it.
  Response answer(const RecordedRequest& request) {
    Handler handler;
    {
      std::lock_guard lock(mutex);
      Route* best = nullptr;
      size_t best_score = 0;
      for (Route& route : routes) {
        size_t score = route.score(request.method, request.path);
        if (score > best_score) {
          best = &route;
          best_score = score;
        }
      }
      if (best == nullptr) {
        return Response::text(404, "no route for " + request.method + " " + request.path);
      }
      if (!best->queue.empty()) {
        Response next = std::move(best->queue.front());
        best->queue.pop_front();
        return next;
      }
      if (!best->handler) {
        if (best->last_scripted) return *best->last_scripted;
        return Response::text(404, "route " + best->path + " has no handler and an empty script");
      }
      handler = best->handler;
    }
    try {
      return handler(request);
    } catch (const std::exception& e) {
      return Response::text(500, std::string("test handler threw: ") + e.what());
    }
  }

  // Returns false when the server began stopping during the wait.
  bool wait(std::chrono::milliseconds delay) {
    if (delay.count() <= 0) return true;
    std::unique_lock lock(mutex);
    return !changed.wait_for(lock, delay, [this] { return stopping; });
  }
};

namespace {

class RequestHandler final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit RequestHandler(LocalHttpServer::State& state) : state_(state) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    RecordedRequest record;
    record.received_at = std::chrono::steady_clock::now();
    record.method = request.getMethod();
    const std::string& uri = request.getURI();
    size_t question = uri.find('?');
    record.path = uri.substr(0, question);
    if (question != std::string::npos) record.query = uri.substr(question + 1);
    for (const auto& [name, value] : request) {
      std::string key = lower(name);
      auto [it, inserted] = record.headers.emplace(key, value);
      if (!inserted) it->second += ", " + value;
    }
    Poco::StreamCopier::copyToString(request.stream(), record.body);
    {
      std::lock_guard lock(state_.mutex);
      state_.requests.push_back(record);
    }
    state_.changed.notify_all();

    Response answer = state_.answer(record);
    if (!state_.wait(answer.delay)) {
      response.setKeepAlive(false);  // stopping: close the connection unanswered
      return;
    }

    response.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(answer.status));
    for (const auto& [name, value] : answer.headers) response.set(name, value);
    if (answer.chunked) {
      response.setChunkedTransferEncoding(true);
    } else {
      response.setContentLength64(static_cast<Poco::Int64>(answer.body.size()));
    }
    std::ostream& out = response.send();
    if (record.method != "HEAD")
      out.write(answer.body.data(), static_cast<std::streamsize>(answer.body.size()));
  }

 private:
  LocalHttpServer::State& state_;
};

class HandlerFactory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit HandlerFactory(LocalHttpServer::State& state) : state_(state) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new RequestHandler(state_);
  }

 private:
  LocalHttpServer::State& state_;
};

}  // namespace

std::string RecordedRequest::header(std::string_view name) const {
  auto it = headers.find(lower(name));
  return it == headers.end() ? "" : it->second;
}

std::map<std::string, std::string> RecordedRequest::query_params() const {
  std::map<std::string, std::string> params;
  size_t start = 0;
  while (start <= query.size() && !query.empty()) {
    size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    std::string pair = query.substr(start, end - start);
    if (!pair.empty()) {
      size_t equals = pair.find('=');
      // Poco's decode turns '+' into a space only after a '?', so forms' '+' is done here.
      std::replace(pair.begin(), pair.end(), '+', ' ');
      std::string name, value;
      Poco::URI::decode(pair.substr(0, equals), name);
      if (equals != std::string::npos) Poco::URI::decode(pair.substr(equals + 1), value);
      params[name] = value;
    }
    start = end + 1;
  }
  return params;
}

Response Response::text(int status, std::string body) {
  Response response;
  response.status = status;
  response.body = std::move(body);
  response.headers["Content-Type"] = "text/plain; charset=utf-8";
  return response;
}

Response Response::json(int status, const Json& body) {
  Response response;
  response.status = status;
  response.body = body.dump();
  response.headers["Content-Type"] = "application/json";
  return response;
}

Response& Response::with_header(std::string name, std::string value) {
  headers[std::move(name)] = std::move(value);
  return *this;
}

Response& Response::after(std::chrono::milliseconds wait) {
  delay = wait;
  return *this;
}

Response& Response::as_chunked() {
  chunked = true;
  return *this;
}

LocalHttpServer::LocalHttpServer() : LocalHttpServer("127.0.0.1", 0) {}

LocalHttpServer::LocalHttpServer(std::string host, uint16_t port)
    : state_(std::make_unique<State>()) {
  state_->host = std::move(host);
  try {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress(state_->host, port));
    state_->port = socket.address().port();
    Poco::Net::HTTPServerParams::Ptr params(new Poco::Net::HTTPServerParams);
    params->setMaxThreads(60);
    params->setMaxQueued(512);
    params->setKeepAlive(true);
    params->setKeepAliveTimeout(Poco::Timespan(2, 0));
    // A dispatcher thread that starts while the server stops waits this long for work before it
    // sees the stop (Poco's default is 10 s, which a test would spend in the destructor).
    params->setThreadIdleTime(Poco::Timespan(0, 100'000));
    state_->server = std::make_unique<Poco::Net::HTTPServer>(
        Poco::Net::HTTPRequestHandlerFactory::Ptr(new HandlerFactory(*state_)), state_->pool,
        socket, params);
    state_->server->start();
  } catch (const Poco::Exception& e) {
    throw std::runtime_error("LocalHttpServer: cannot listen on " + state_->host + ":" +
                             std::to_string(port) + ": " + e.displayText());
  }
}

LocalHttpServer::~LocalHttpServer() {
  stop();
}

void LocalHttpServer::stop() {
  {
    std::lock_guard lock(state_->mutex);
    if (state_->stopped) return;
    state_->stopping = true;
    state_->stopped = true;
  }
  state_->changed.notify_all();
  // Poco's acceptor polls its socket in 250 ms slices and only sees the stop flag between them;
  // a few throwaway connections wake it at once, which keeps a test that starts a server cheap.
  std::atomic<bool> stopped{false};
  std::thread waker([this, &stopped] {
    std::string host = state_->host == "0.0.0.0" ? "127.0.0.1" : state_->host;
    while (!stopped.load()) {
      try {
        Poco::Net::StreamSocket socket;
        socket.connect(Poco::Net::SocketAddress(host, state_->port), Poco::Timespan(0, 100'000));
      } catch (const Poco::Exception&) {
        // Refused once the socket is closed: the acceptor has stopped, which is the point.
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  state_->server->stopAll(/*abortCurrent=*/true);
  stopped = true;
  waker.join();
  state_->pool.joinAll();
}

uint16_t LocalHttpServer::port() const {
  return state_->port;
}

std::string LocalHttpServer::url(std::string_view path_and_query) const {
  return "http://" + state_->host + ":" + std::to_string(state_->port) +
         std::string(path_and_query);
}

void LocalHttpServer::route(std::string method, std::string path, Handler handler) {
  std::lock_guard lock(state_->mutex);
  state_->route_for(std::move(method), std::move(path)).handler = std::move(handler);
}

void LocalHttpServer::route(std::string method, std::string path, Response response) {
  route(std::move(method), std::move(path),
        [response = std::move(response)](const RecordedRequest&) { return response; });
}

void LocalHttpServer::script(std::string method, std::string path,
                             std::vector<Response> responses) {
  std::lock_guard lock(state_->mutex);
  Route& route = state_->route_for(std::move(method), std::move(path));
  if (!responses.empty()) route.last_scripted = responses.back();
  for (Response& response : responses) route.queue.push_back(std::move(response));
}

void LocalHttpServer::add_effects_route(std::string path, std::chrono::milliseconds delay) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  State* state = state_.get();
  route("*", path == "/" ? "/*" : path + "/*", [state, delay](const RecordedRequest& request) {
    EffectLedger::Answer answer = state->ledger.apply(request.header("Idempotency-Key"),
                                                      request.method, request.path, request.body);
    Response response = Response::json(answer.status, answer.body);
    if (answer.replayed) response.with_header("Idempotent-Replayed", "true");
    response.delay = delay;
    auto params = request.query_params();
    if (auto it = params.find("delay_ms"); it != params.end()) {
      response.delay = std::chrono::milliseconds(std::atoll(it->second.c_str()));
    }
    return response;
  });
}

std::vector<RecordedRequest> LocalHttpServer::requests() const {
  std::lock_guard lock(state_->mutex);
  return state_->requests;
}

std::vector<RecordedRequest> LocalHttpServer::requests(std::string_view method,
                                                       std::string_view path) const {
  std::lock_guard lock(state_->mutex);
  std::vector<RecordedRequest> matching;
  for (const RecordedRequest& request : state_->requests) {
    if ((method == "*" || request.method == method) && request.path == path)
      matching.push_back(request);
  }
  return matching;
}

size_t LocalHttpServer::request_count() const {
  std::lock_guard lock(state_->mutex);
  return state_->requests.size();
}

size_t LocalHttpServer::request_count(std::string_view method, std::string_view path) const {
  return requests(method, path).size();
}

bool LocalHttpServer::wait_for_requests(size_t count, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(state_->mutex);
  return state_->changed.wait_for(lock, timeout, [&] { return state_->requests.size() >= count; });
}

void LocalHttpServer::clear_requests() {
  std::lock_guard lock(state_->mutex);
  state_->requests.clear();
}

const EffectLedger& LocalHttpServer::effects() const {
  return state_->ledger;
}
EffectLedger& LocalHttpServer::effects() {
  return state_->ledger;
}

}  // namespace herald::testing
