// Talking to a running `herald serve` through its REST API, for the commands that act on a
// server rather than on the local store (herald trigger, herald approvals).
#pragma once

#include <optional>
#include <string>

#include <Poco/URI.h>

#include "engine/cli/command.h"
#include "engine/common/result.h"

namespace herald::cli {

// An answer of the server: any HTTP status, with its body (at most 16 MiB).
struct ApiAnswer {
  int status = 0;
  std::string reason;
  std::string body;
};

// --url's value: http(s)://HOST[:PORT][/PREFIX], or invalid_argument naming the flag.
Result<Poco::URI> parse_server_url(const std::string& text);

// One path segment, percent-encoded (ids and names in API paths).
std::string encode_segment(const std::string& segment);

// One request to the server's API, with the token as a bearer token and `body` (when set) sent
// as `content_type`; a transport failure is `unavailable` with a message naming the server, an
// HTTP error status is an answer like any other.
Result<ApiAnswer> call_api(const Poco::URI& server, const std::string& method,
                           const std::string& path, const std::string& token,
                           const std::optional<std::string>& body,
                           const std::string& content_type = "application/json");

// Prints the server's {"error": {"message", "details"}} (or what the status says) with the
// status; returns kExitInvalid for 400 and 422, kExitFailed otherwise.
int api_error(Io& io, const ApiAnswer& answer);

}  // namespace herald::cli
