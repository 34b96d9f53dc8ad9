#include "tests/support/http_client.h"

#include <algorithm>
#include <cctype>

#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>

namespace herald::testing {

HttpReply http_call(const std::string& method, const std::string& url,
                    const std::map<std::string, std::string>& headers, const std::string& body,
                    std::chrono::milliseconds timeout) {
  HttpReply reply;
  try {
    Poco::URI uri(url);
    Poco::Net::HTTPClientSession session(uri.getHost(), uri.getPort());
    Poco::Timespan span(std::max<int64_t>(timeout.count(), 1) * 1000);
    session.setTimeout(span, span, span);
    std::string target = uri.getPathAndQuery();
    Poco::Net::HTTPRequest request(method, target.empty() ? "/" : target,
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    for (const auto& [name, value] : headers) request.set(name, value);
    if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
      request.setContentLength64(static_cast<Poco::Int64>(body.size()));
    }
    session.sendRequest(request) << body;
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    reply.status = static_cast<int>(response.getStatus());
    for (const auto& [name, value] : response) {
      std::string key = name;
      std::transform(key.begin(), key.end(), key.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      reply.headers[key] = value;
    }
    Poco::StreamCopier::copyToString(in, reply.body);
  } catch (const Poco::Exception& e) {
    reply.status = 0;
    reply.error = e.displayText();
  } catch (const std::exception& e) {
    reply.status = 0;
    reply.error = e.what();
  }
  return reply;
}

struct HttpConnection::Session {
  Poco::Net::HTTPClientSession session;
  Session(const std::string& host, uint16_t port) : session(host, port) {}
};

HttpConnection::HttpConnection(std::string host, uint16_t port, std::chrono::milliseconds timeout)
    : session_(std::make_unique<Session>(host, port)) {
  Poco::Timespan span(std::max<int64_t>(timeout.count(), 1) * 1000);
  session_->session.setTimeout(span, span, span);
  session_->session.setKeepAlive(true);
}

HttpConnection::~HttpConnection() = default;

HttpReply HttpConnection::call(const std::string& method, const std::string& target,
                               const std::map<std::string, std::string>& headers,
                               const std::string& body, bool chunked) {
  HttpReply reply;
  Poco::Net::HTTPClientSession& session = session_->session;
  try {
    Poco::Net::HTTPRequest request(method, target.empty() ? "/" : target,
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    for (const auto& [name, value] : headers) request.set(name, value);
    if (chunked) {
      request.setChunkedTransferEncoding(true);
    } else if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
      request.setContentLength64(static_cast<Poco::Int64>(body.size()));
    }
    std::ostream& out = session.sendRequest(request);
    local_ports_.insert(session.socket().address().port());
    out << body;
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    // Again: Poco reconnects by itself when a write finds the connection closed.
    local_ports_.insert(session.socket().address().port());
    reply.status = static_cast<int>(response.getStatus());
    for (const auto& [name, value] : response) {
      std::string key = name;
      std::transform(key.begin(), key.end(), key.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      reply.headers[key] = value;
    }
    Poco::StreamCopier::copyToString(in, reply.body);
  } catch (const Poco::Exception& e) {
    reply.status = 0;
    reply.error = e.displayText();
    session.reset();
  } catch (const std::exception& e) {
    reply.status = 0;
    reply.error = e.what();
    session.reset();
  }
  return reply;
}

}  // namespace herald::testing
