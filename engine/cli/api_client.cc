#include "engine/cli/api_client.h"

#include <istream>
#include <memory>
#include <ostream>

#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Timespan.h>

#include "engine/steps/http/client_session.h"

namespace herald::cli {

namespace {
constexpr size_t kMaxApiBody = 16 * 1024 * 1024;
}  // namespace

Result<Poco::URI> parse_server_url(const std::string& text) {
  Poco::URI uri;
  try {
    uri = Poco::URI(text);
  } catch (const Poco::Exception& e) {
    return make_error(ErrorCode::invalid_argument, "--url '" + text + "' is not a URL: " + e.displayText());
  }
  if ((uri.getScheme() != "http" && uri.getScheme() != "https") || uri.getHost().empty()) {
    return make_error(ErrorCode::invalid_argument,
                      "--url '" + text + "' must be http://HOST[:PORT] or https://HOST[:PORT]");
  }
  return uri;
}

std::string encode_segment(const std::string& segment) {
  std::string encoded;
  Poco::URI::encode(segment, "/?#[]@!$&'()*+,;=%", encoded);
  return encoded;
}

Result<ApiAnswer> call_api(const Poco::URI& server, const std::string& method, const std::string& path,
                           const std::string& token, const std::optional<std::string>& body,
                           const std::string& content_type) {
  std::string where = server.getScheme() + "://" + server.getAuthority();
  try {
    auto opened =
        steps::http::open_client_session(server.getScheme(), server.getHost(), server.getPort());
    if (!opened.ok()) return opened.error();
    std::unique_ptr<Poco::Net::HTTPClientSession> session = std::move(opened).value();
    session->setTimeout(Poco::Timespan(30, 0));
    std::string prefix = server.getPath();
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    Poco::Net::HTTPRequest request(method, prefix + path, Poco::Net::HTTPMessage::HTTP_1_1);
    request.setKeepAlive(false);
    request.set("Authorization", "Bearer " + token);
    request.set("Accept", "application/json");
    request.set("User-Agent", "herald-cli/" HERALD_VERSION);
    if (body) {
      request.setContentType(content_type);
      request.setContentLength64(static_cast<Poco::Int64>(body->size()));
    }
    std::ostream& out = session->sendRequest(request);
    if (body) out << *body;
    if (!out) throw Poco::IOException("sending the request failed");
    Poco::Net::HTTPResponse response;
    std::istream& in = session->receiveResponse(response);
    ApiAnswer answer;
    answer.status = static_cast<int>(response.getStatus());
    answer.reason = response.getReason();
    char buffer[8192];
    while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
      answer.body.append(buffer, static_cast<size_t>(in.gcount()));
      if (answer.body.size() > kMaxApiBody) {
        return make_error(ErrorCode::unavailable, "the answer of " + where + " is over 16 MiB");
      }
    }
    return answer;
  } catch (const Poco::Net::ConnectionRefusedException&) {
    return make_error(ErrorCode::unavailable,
                      "cannot reach the Herald server at " + where +
                          ": connection refused; is `herald serve` running there? (--url or HERALD_URL)",
                      true);
  } catch (const Poco::TimeoutException&) {
    return make_error(ErrorCode::unavailable, "the Herald server at " + where + " did not answer in 30s", true);
  } catch (const Poco::Net::HostNotFoundException&) {
    return make_error(ErrorCode::unavailable, "cannot reach the Herald server at " + where +
                                                  ": host " + server.getHost() + " not found (--url or HERALD_URL)");
  } catch (const Poco::Exception& e) {
    return make_error(ErrorCode::unavailable,
                      "cannot reach the Herald server at " + where + ": " + e.displayText(), true);
  }
}

int api_error(Io& io, const ApiAnswer& answer) {
  Json body = Json::parse(answer.body, nullptr, false);
  std::string message;
  Json details = nullptr;
  if (!body.is_discarded() && body.is_object() && body.contains("error") && body["error"].is_object()) {
    const Json& error = body["error"];
    if (error.contains("message") && error["message"].is_string()) message = error["message"].get<std::string>();
    if (error.contains("details")) details = error["details"];
  }
  if (message.empty()) {
    message = "the server answered " + std::to_string(answer.status) + " " + answer.reason;
    if (!answer.body.empty()) message += ": " + answer.body.substr(0, 200);
  }
  io.err << "error: " << message << " (HTTP " << answer.status << ")\n";
  if (!details.is_null() && !(details.is_object() && details.empty())) io.err << "details: " << details.dump() << "\n";
  return answer.status == 400 || answer.status == 422 ? kExitInvalid : kExitFailed;
}

}  // namespace herald::cli
