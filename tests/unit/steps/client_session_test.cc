// open_client_session: the one place the `http` step and `herald trigger` get a Poco session
// from, plain or TLS by the URL's scheme.
#include <gtest/gtest.h>

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#if defined(HERALD_HAVE_NETSSL)
#include <Poco/Net/HTTPSClientSession.h>
#endif

#include "engine/steps/http/client_session.h"
#include "tests/support/local_http_server.h"

namespace herald::steps::http {
namespace {

TEST(ClientSessionTest, HttpIsAPlainSessionThatTalksToTheServer) {
  testing::LocalHttpServer server;
  server.route("GET", "/ping", testing::Response::text(200, "pong"));
  auto session = open_client_session("http", "127.0.0.1", server.port());
  ASSERT_TRUE(session.ok()) << session.error().message;
  EXPECT_EQ((*session)->getHost(), "127.0.0.1");
  EXPECT_EQ((*session)->getPort(), server.port());
#if defined(HERALD_HAVE_NETSSL)
  EXPECT_EQ(dynamic_cast<Poco::Net::HTTPSClientSession*>(session->get()), nullptr);
#endif
  Poco::Net::HTTPRequest request("GET", "/ping", Poco::Net::HTTPMessage::HTTP_1_1);
  (*session)->sendRequest(request);
  Poco::Net::HTTPResponse response;
  std::string body;
  Poco::StreamCopier::copyToString((*session)->receiveResponse(response), body);
  EXPECT_EQ(response.getStatus(), Poco::Net::HTTPResponse::HTTP_OK);
  EXPECT_EQ(body, "pong");
}

TEST(ClientSessionTest, HttpsIsATlsSessionOrAClearError) {
  auto session = open_client_session("HTTPS", "example.com", 8443);
#if defined(HERALD_HAVE_NETSSL)
  ASSERT_TRUE(session.ok()) << session.error().message;
  EXPECT_NE(dynamic_cast<Poco::Net::HTTPSClientSession*>(session->get()), nullptr);
  EXPECT_EQ((*session)->getHost(), "example.com");
  EXPECT_EQ((*session)->getPort(), 8443);
#else
  ASSERT_FALSE(session.ok());
  EXPECT_EQ(session.error().code, ErrorCode::failed_precondition);
  EXPECT_NE(session.error().message.find("NetSSL"), std::string::npos);
#endif
}

TEST(ClientSessionTest, OtherSchemesAndEmptyHostsAreRefused) {
  auto ftp = open_client_session("ftp", "example.com", 21);
  ASSERT_FALSE(ftp.ok());
  EXPECT_EQ(ftp.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(ftp.error().message.find("ftp"), std::string::npos) << ftp.error().message;
  auto no_host = open_client_session("http", "", 80);
  ASSERT_FALSE(no_host.ok());
  EXPECT_EQ(no_host.error().code, ErrorCode::invalid_argument);
}

}  // namespace
}  // namespace herald::steps::http
