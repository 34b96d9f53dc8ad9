#include "engine/steps/http/client_session.h"

#include <algorithm>
#include <cctype>
#include <mutex>

#include <Poco/Net/HTTPClientSession.h>
#if defined(HERALD_HAVE_NETSSL)
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/SSLManager.h>
#endif

namespace herald::steps::http {
namespace {

#if defined(HERALD_HAVE_NETSSL)
// One TLS context for every session: it holds the system's CA store, which is costly to load and
// safe to share between threads.
Poco::Net::Context::Ptr tls_context() {
  static std::once_flag once;
  static Poco::Net::Context::Ptr context;
  std::call_once(once, [] {
    Poco::Net::initializeSSL();
    context = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", "",
                                     Poco::Net::Context::VERIFY_RELAXED, 9,
                                     /*loadDefaultCAs=*/true);
  });
  return context;
}
#endif

}  // namespace

Result<std::unique_ptr<Poco::Net::HTTPClientSession>> open_client_session(std::string_view scheme,
                                                                          const std::string& host,
                                                                          uint16_t port) {
  std::string lower(scheme);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (host.empty()) return make_error(ErrorCode::invalid_argument, "the URL has no host");
  if (lower == "http") return std::make_unique<Poco::Net::HTTPClientSession>(host, port);
  if (lower != "https") {
    return make_error(ErrorCode::invalid_argument,
                      "unsupported URL scheme '" + std::string(scheme) + "' (http or https)");
  }
#if defined(HERALD_HAVE_NETSSL)
  return std::unique_ptr<Poco::Net::HTTPClientSession>(
      std::make_unique<Poco::Net::HTTPSClientSession>(host, port, tls_context()));
#else
  return make_error(ErrorCode::failed_precondition,
                    "https:// needs Herald built with Poco NetSSL (libpoco-dev's PocoNetSSL); "
                    "this build only speaks plain http://");
#endif
}

}  // namespace herald::steps::http
