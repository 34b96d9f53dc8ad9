// A blocking HTTP call for tests that need to poke a server directly (herald-test-server's
// /__stats, later `herald serve`'s API) without going through the `http` step under test.
#pragma once

#include <chrono>
#include <map>
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

}  // namespace herald::testing
