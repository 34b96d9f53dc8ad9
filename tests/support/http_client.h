// A blocking HTTP call for tests that need to poke a server directly (herald-test-server's
// /__stats, later `herald serve`'s API) without going through the `http` step under test.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

namespace herald::testing {

struct HttpReply {
  int status = 0;                              // 0 when no answer came (see error)
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
  std::string error;  // why there was no answer: refused, timeout, ...
};

// Never throws; a connection failure is reported in HttpReply::error.
HttpReply http_call(const std::string& method, const std::string& url,
                    const std::map<std::string, std::string>& headers = {},
                    const std::string& body = "",
                    std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Several calls over one HTTP/1.1 connection kept alive between them (Poco reconnects when the
// server closed it), for tests of keep-alive and of chunked request bodies. Not thread-safe.
class HttpConnection {
 public:
  HttpConnection(std::string host, uint16_t port,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Like http_call, with `target` the path and query ("/x?y=1"). `chunked` sends the body with
  // chunked transfer encoding instead of a Content-Length. Never throws.
  HttpReply call(const std::string& method, const std::string& target,
                 const std::map<std::string, std::string>& headers = {},
                 const std::string& body = "", bool chunked = false);
  // How many TCP connections the calls so far used (told apart by their local port): 1 when
  // every call went over the first one.
  size_t connections_used() const { return local_ports_.size(); }

 private:
  struct Session;
  std::unique_ptr<Session> session_;
  std::set<uint16_t> local_ports_;
};

}  // namespace herald::testing
