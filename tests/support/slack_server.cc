#include "tests/support/slack_server.h"

#include <algorithm>

namespace herald::testing {

SlackServer::SlackServer() {
  http_.route("POST", "/services/*",
              [this](const RecordedRequest& request) { return receive(request); });
}

std::vector<Json> SlackServer::messages() const {
  std::lock_guard lock(mu_);
  return messages_;
}

void SlackServer::archive(std::string channel) {
  std::lock_guard lock(mu_);
  archived_.push_back(std::move(channel));
}

void SlackServer::restrict(std::string channel) {
  std::lock_guard lock(mu_);
  restricted_.push_back(std::move(channel));
}

Response SlackServer::receive(const RecordedRequest& request) {
  auto answer = [](int status, const std::string& text) {
    return Response::text(status, text);  // text/plain, as Slack answers
  };
  if (request.path != kPath) return answer(404, "no_service");
  Json message = Json::parse(request.body, nullptr, false);
  if (!message.is_object()) return answer(400, "invalid_payload");
  bool has_text = message.contains("text") && message["text"].is_string() &&
                  !message["text"].get<std::string>().empty();
  bool has_blocks = message.contains("blocks") && !message["blocks"].empty();
  if (!has_text && !has_blocks) return answer(400, "no_text");
  if (message.contains("blocks")) {
    if (!message["blocks"].is_array()) return answer(400, "invalid_blocks_format");
    for (const auto& block : message["blocks"]) {
      if (!block.is_object() || !block.contains("type")) return answer(400, "invalid_blocks");
    }
  }
  std::lock_guard lock(mu_);
  std::string channel = message.value("channel", std::string());
  if (!channel.empty()) {
    if (channel == "#missing") return answer(404, "channel_not_found");
    if (std::find(archived_.begin(), archived_.end(), channel) != archived_.end()) {
      return answer(410, "channel_is_archived");
    }
    if (std::find(restricted_.begin(), restricted_.end(), channel) != restricted_.end()) {
      return answer(403, "action_prohibited");
    }
  }
  messages_.push_back(message);
  return answer(200, "ok");
}

}  // namespace herald::testing
