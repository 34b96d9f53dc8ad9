// The Slack plugin: slack.post sends a message (text and/or Block Kit blocks) to a Slack incoming
// webhook, through Herald's HTTP client. Slack answers 200 "ok", or a status with one of its
// documented error strings as a text body; each becomes an error that says what to fix, and a
// 429 (or 5xx) is retryable after its Retry-After. See docs/plugins/slack.md.
#include <herald/plugin.hpp>

#include <map>
#include <optional>
#include <string>

namespace {

using herald::sdk::Call;
using herald::sdk::Failure;
using json = nlohmann::json;

struct Known {
  const char* code;
  const char* meaning;
};

// Slack's documented incoming-webhook errors (api.slack.com/messaging/webhooks#handling_errors).
const std::map<std::string, Known>& known_errors() {
  static const std::map<std::string, Known> errors = {
      {"invalid_payload",
       {"invalid_argument", "the message is not valid JSON, or has fields Slack does not accept"}},
      {"no_text", {"invalid_argument", "the message has no text (set `text`, or `blocks`)"}},
      {"invalid_blocks", {"invalid_argument", "a block in `blocks` is not valid Block Kit"}},
      {"invalid_blocks_format",
       {"invalid_argument", "`blocks` is not an array of Block Kit objects"}},
      {"too_many_attachments", {"invalid_argument", "the message has more than 100 attachments"}},
      {"user_not_found", {"not_found", "the user the webhook posts to does not exist"}},
      {"channel_not_found",
       {"not_found", "the webhook's channel does not exist or the app is not in it"}},
      {"channel_is_archived", {"failed_precondition", "the webhook's channel is archived"}},
      {"action_prohibited",
       {"permission_denied", "a workspace admin has restricted posting to this channel"}},
      {"posting_to_general_channel_denied",
       {"permission_denied", "only admins may post to the workspace's #general channel"}},
      {"no_service",
       {"not_found", "the webhook is disabled, removed or invalid (create a new one)"}},
      {"no_service_id", {"not_found", "the webhook URL is incomplete (no service id)"}},
      {"no_team", {"not_found", "the webhook URL names no Slack workspace, or a removed one"}},
      {"team_disabled", {"permission_denied", "the Slack workspace is disabled"}},
      {"invalid_token", {"unauthenticated", "the webhook's token is no longer valid"}},
      {"token_revoked", {"unauthenticated", "the webhook's token was revoked"}},
  };
  return errors;
}

std::string body_text(const json& response) {
  if (!response.contains("body")) return "";
  const json& body = response["body"];
  if (body.is_string()) return body.get<std::string>();
  if (body.is_object() && body.contains("error") && body["error"].is_string()) {
    return body["error"].get<std::string>();
  }
  return body.is_null() ? "" : body.dump();
}

std::optional<int64_t> retry_after_ms(const json& headers) {
  if (!headers.is_object() || !headers.contains("retry-after")) return std::nullopt;
  const std::string value = headers["retry-after"].get<std::string>();
  if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return std::stoll(value) * 1000;
}

std::string webhook_url(const json& input, Call& call) {
  if (input.contains("url")) return input["url"].get<std::string>();
  std::string name = input.value("url_secret", std::string("SLACK_WEBHOOK_URL"));
  auto url = call.find_secret(name);
  if (!url || url->empty()) {
    throw Failure("failed_precondition", "slack: the webhook URL secret '" + name +
                                             "' is not set for this workspace (herald secret set " +
                                             name + "), and no `url` was given");
  }
  return *url;
}

json post(const json& input, Call& call) {
  json message = json::object();
  for (const char* field : {"text", "blocks", "attachments", "thread_ts", "mrkdwn", "unfurl_links",
                            "unfurl_media", "username", "icon_emoji", "icon_url", "channel"}) {
    if (input.contains(field)) message[field] = input[field];
  }
  if (!message.contains("text") && !message.contains("blocks")) {
    throw Failure("invalid_argument", "slack.post: give `text`, `blocks`, or both");
  }
  json response = call.http({{"method", "POST"},
                             {"url", webhook_url(input, call)},
                             {"json", message},
                             {"expect", {"1xx", "2xx", "3xx", "4xx", "5xx"}}});
  int status = response.value("status", 0);
  std::string said = body_text(response);
  if (status >= 200 && status < 300) return {{"ok", true}, {"status", status}};

  herald::sdk::Error error;
  error.details = {{"status", status}, {"error", said.substr(0, 200)}};
  std::string prefix = "slack: the webhook answered " + std::to_string(status);
  if (status == 429) {
    error.code = "resource_exhausted";
    error.message = prefix + " (rate limited: Slack allows about one message per second)";
    error.retryable = true;
    error.retry_after_ms = retry_after_ms(response["headers"]);
  } else if (auto known = known_errors().find(said); known != known_errors().end()) {
    error.code = known->second.code;
    error.message = prefix + " " + said + ": " + known->second.meaning;
  } else if (status >= 500) {
    error.code = "unavailable";
    error.message = prefix + (said.empty() ? "" : ": " + said.substr(0, 200));
    error.retryable = true;
    error.retry_after_ms = retry_after_ms(response["headers"]);
  } else {
    error.code = status == 401   ? "unauthenticated"
                 : status == 403 ? "permission_denied"
                 : status == 404 ? "not_found"
                                 : "invalid_argument";
    error.message = prefix + (said.empty() ? "" : ": " + said.substr(0, 200));
  }
  throw Failure(std::move(error));
}

herald::sdk::Plugin make() {
  herald::sdk::Plugin plugin("slack", "1.0.0", "Posts messages to Slack incoming webhooks");
  plugin.step("slack.post",
              "Posts a message (text and/or Block Kit blocks) to a Slack incoming webhook",
              R"j({"type": "object", "properties": {
    "text": {"type": "string"},
    "blocks": {"type": "array", "items": {"type": "object"}, "maxItems": 50},
    "attachments": {"type": "array", "items": {"type": "object"}},
    "thread_ts": {"type": "string"},
    "mrkdwn": {"type": "boolean"},
    "unfurl_links": {"type": "boolean"},
    "unfurl_media": {"type": "boolean"},
    "username": {"type": "string"},
    "icon_emoji": {"type": "string"},
    "icon_url": {"type": "string"},
    "channel": {"type": "string"},
    "url": {"type": "string", "description": "The webhook URL (default: the secret named by url_secret)"},
    "url_secret": {"type": "string", "description": "Secret holding the webhook URL (default SLACK_WEBHOOK_URL)"}
  }})j",
              post);
  return plugin;
}

}  // namespace

HERALD_PLUGIN(make)
