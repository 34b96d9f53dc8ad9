// SlackServer: Slack incoming webhooks on LocalHttpServer for the slack plugin's tests, with the
// documented answers (api.slack.com/messaging/webhooks): 200 "ok" as text; 400 invalid_payload
// (not JSON), no_text (neither text nor blocks), invalid_blocks (a block without a "type");
// 404 no_service for an unknown webhook path, channel_not_found for a channel override that
// does not exist; 410 channel_is_archived; 403 action_prohibited. Bodies are text/plain, as
// Slack sends them. 429s with Retry-After are scripted by the test (http().script).
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "tests/support/local_http_server.h"

namespace herald::testing {

class SlackServer {
 public:
  // The webhook path that exists, e.g. "/services/T000/B000/XXXX".
  static constexpr const char* kPath = "/services/T000/B000/XXXX";

  SlackServer();

  std::string webhook_url() const { return http_.url(kPath); }
  LocalHttpServer& http() { return http_; }
  // The messages accepted, in order.
  std::vector<Json> messages() const;
  // Posts to `channel` answer 410 channel_is_archived / 403 action_prohibited.
  void archive(std::string channel);
  void restrict(std::string channel);

 private:
  Response receive(const RecordedRequest& request);

  LocalHttpServer http_;
  mutable std::mutex mu_;
  std::vector<Json> messages_;
  std::vector<std::string> archived_;
  std::vector<std::string> restricted_;
};

}  // namespace herald::testing
