// LocalHttpServer: a real HTTP server on 127.0.0.1 (a free port by default) for tests of the
// `http` step, the runtime's retries and the crash test. Each route answers from a queue of
// scripted responses first, then from its handler; every request is recorded with the time it
// arrived, and an "effects" route counts requests per Idempotency-Key the way a payment API
// would, so a test can check that each effect happened exactly once per key.
// Thread-safe: handlers run on the server's threads while the test reads the records.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/common/result.h"
#include "tests/support/effect_ledger.h"

namespace herald::testing {

struct RecordedRequest {
  std::string method;
  std::string path;                            // as sent, without the query
  std::string query;                           // raw, without '?'
  std::map<std::string, std::string> headers;  // lower-cased names; repeats joined with ", "
  std::string body;
  std::chrono::steady_clock::time_point received_at;

  // "" when absent; `name` in any case.
  std::string header(std::string_view name) const;
  // The query decoded; a repeated name keeps its last value.
  std::map<std::string, std::string> query_params() const;
};

struct Response {
  int status = 200;
  std::map<std::string, std::string> headers;
  std::string body;
  // Waited before answering; cut short when the server stops so tests never hang on it.
  std::chrono::milliseconds delay{0};
  // Sends the body with chunked transfer encoding (no Content-Length).
  bool chunked = false;

  static Response text(int status, std::string body);
  static Response json(int status, const Json& body);
  Response& with_header(std::string name, std::string value);
  Response& after(std::chrono::milliseconds wait);
  Response& as_chunked();
};

using Handler = std::function<Response(const RecordedRequest&)>;

class LocalHttpServer {
 public:
  // Binds 127.0.0.1 on a free port.
  LocalHttpServer();
  // Binds `host`:`port` (0: a free port). Throws std::runtime_error when it cannot bind.
  LocalHttpServer(std::string host, uint16_t port);
  ~LocalHttpServer();
  LocalHttpServer(const LocalHttpServer&) = delete;
  LocalHttpServer& operator=(const LocalHttpServer&) = delete;

  uint16_t port() const;
  // "http://127.0.0.1:<port>" + path_and_query.
  std::string url(std::string_view path_and_query = "") const;

  // Routes match `method` ("*" for any) and `path` exactly, or every path under a prefix when
  // `path` ends in "/*" ("/api/*" matches "/api" and "/api/x/y"). An exact path wins over a
  // prefix, a longer prefix over a shorter, a named method over "*". Unmatched requests get 404.
  // Registering the same method and path again replaces the handler and keeps the queue.
  void route(std::string method, std::string path, Handler handler);
  void route(std::string method, std::string path, Response response);
  // Queues responses for the route, answered one per request in order, before its handler.
  // With no handler the last queued response repeats once the queue is empty.
  // E.g. script("GET", "/flaky", {Response::text(503, ""), Response::text(503, ""),
  //                               Response::json(200, {{"ok", true}})}).
  void script(std::string method, std::string path, std::vector<Response> responses);
  // Serves `path` and everything under it with the effects ledger (any method): each request
  // needs an Idempotency-Key; the first one with a key performs the effect and answers 200 with
  // {"effect": n, "key", "method", "path", "body"}; a repeat answers the same response with
  // `Idempotent-Replayed: true` and performs nothing. A repeat whose method, path or body differ
  // answers 422 (as Stripe does). No key: 400. `delay` (or ?delay_ms=N) holds the answer after
  // the effect is recorded, so a client killed meanwhile leaves an effect without a response.
  void add_effects_route(std::string path = "/effects",
                         std::chrono::milliseconds delay = std::chrono::milliseconds(0));

  std::vector<RecordedRequest> requests() const;
  std::vector<RecordedRequest> requests(std::string_view method, std::string_view path) const;
  size_t request_count() const;
  size_t request_count(std::string_view method, std::string_view path) const;
  // True once at least `count` requests were received in all, false on timeout.
  bool wait_for_requests(size_t count, std::chrono::milliseconds timeout) const;
  void clear_requests();

  const EffectLedger& effects() const;
  EffectLedger& effects();

  // Stops accepting, cuts delays short and aborts open connections. Idempotent; the destructor
  // calls it.
  void stop();

  struct State;  // defined in the .cc; public only so its Poco handlers can name it

 private:
  std::unique_ptr<State> state_;  // keeps Poco out of this header
};

}  // namespace herald::testing
