// One way to open a Poco HTTP client session for an http:// or https:// server: plain TCP, or
// TLS through Poco NetSSL with the system's CA store (one TLS context shared by the process).
// Used by the `http` step and by `herald trigger`. Only a forward declaration of Poco's session
// here, so including this header stays cheap; callers that use the session include
// <Poco/Net/HTTPClientSession.h> themselves.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "engine/common/result.h"

namespace Poco::Net {
class HTTPClientSession;
}  // namespace Poco::Net

namespace herald::steps::http {

// A session to `host`:`port`, not yet connected (Poco connects on the first request). `scheme`
// is "http" or "https" in any letter case; https gives an HTTPSClientSession that verifies the
// server's certificate against the system's CAs. invalid_argument for another scheme or an empty
// host; failed_precondition for https in a build without Poco NetSSL.
Result<std::unique_ptr<Poco::Net::HTTPClientSession>> open_client_session(std::string_view scheme,
                                                                          const std::string& host,
                                                                          uint16_t port);

}  // namespace herald::steps::http
