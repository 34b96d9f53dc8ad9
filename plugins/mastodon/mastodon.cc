// The Mastodon plugin: validate, publish, reply, delete, metrics and mentions against a
// Mastodon (or compatible) instance's REST API, through Herald's HTTP client.
//
// Native rather than Lua because of what the protocol asks for: X-RateLimit-Reset is an ISO 8601
// time to compare with the clock, the mentions cursor lives in a Link header, status length is
// counted in code points with links as 23 characters, and the rate-limit state is shared by the
// calls of one process (a mutex-guarded map), none of which the Lua sandbox offers.
// See docs/plugins/mastodon.md.
#include <herald/plugin.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <string>

namespace {

using herald::sdk::Call;
using herald::sdk::Failure;
using json = nlohmann::json;

constexpr int kDefaultMaxCharacters = 500;
constexpr int kDefaultMaxMedia = 4;
constexpr int kUrlLength = 23;  // Mastodon counts every link as 23 characters

// --- connection ---------------------------------------------------------------------------------

struct Account {
  std::string base;   // "https://mastodon.social", no trailing slash
  std::string token;  // may be empty for validate
};

std::string trim_slash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

// The instance comes from `instance` in the input or the MASTODON_INSTANCE secret; the token from
// the secret named by `token_secret` (MASTODON_ACCESS_TOKEN by default).
Account account(const json& input, Call& call, bool need_token) {
  Account out;
  if (input.contains("instance") && input["instance"].is_string()) {
    out.base = input["instance"].get<std::string>();
  } else if (auto secret = call.find_secret("MASTODON_INSTANCE")) {
    out.base = *secret;
  }
  out.base = trim_slash(out.base);
  if (out.base.empty() && need_token) {
    throw Failure("invalid_argument",
                  "mastodon: no instance: set `instance` (e.g. https://mastodon.social) or the "
                  "MASTODON_INSTANCE secret");
  }
  std::string secret_name = input.value("token_secret", std::string("MASTODON_ACCESS_TOKEN"));
  if (need_token) {
    auto token = call.find_secret(secret_name);
    if (!token || token->empty()) {
      throw Failure("failed_precondition",
                    "mastodon: the access token secret '" + secret_name +
                        "' is not set for this workspace (herald secret set " + secret_name + ")");
    }
    out.token = *token;
  }
  return out;
}

// --- rate limits, shared by the calls of this process -------------------------------------------

// Seconds since the epoch for "2026-11-22T08:00:00.000Z" (or with an offset); nullopt otherwise.
std::optional<int64_t> parse_iso8601(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &s) != 6) {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  int64_t seconds = static_cast<int64_t>(timegm(&tm));
  // A trailing offset (+01:00 / -0500) after the seconds and optional fraction.
  size_t pos = text.find_first_of("+-", 19);
  if (pos != std::string::npos && pos + 3 <= text.size()) {
    int oh = 0, om = 0;
    if (std::sscanf(text.c_str() + pos + 1, "%2d:%2d", &oh, &om) >= 1 ||
        std::sscanf(text.c_str() + pos + 1, "%2d%2d", &oh, &om) >= 1) {
      int64_t offset = oh * 3600 + om * 60;
      seconds += text[pos] == '+' ? -offset : offset;
    }
  }
  return seconds;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class RateLimits {
 public:
  // Refuses, without sending anything, while the last answer said no request is left.
  void check(const std::string& key) {
    std::lock_guard lock(mu_);
    auto found = exhausted_until_ms_.find(key);
    if (found == exhausted_until_ms_.end()) return;
    int64_t wait = found->second - now_ms();
    if (wait <= 0) {
      exhausted_until_ms_.erase(found);
      return;
    }
    throw Failure("resource_exhausted",
                  "mastodon: the rate limit is used up (X-RateLimit-Remaining: 0) until the reset",
                  true, wait);
  }
  void record(const std::string& key, const json& headers) {
    if (!headers.is_object() || !headers.contains("x-ratelimit-remaining")) return;
    std::string remaining = headers["x-ratelimit-remaining"].get<std::string>();
    std::optional<int64_t> reset;
    if (headers.contains("x-ratelimit-reset")) {
      reset = parse_iso8601(headers["x-ratelimit-reset"].get<std::string>());
    }
    std::lock_guard lock(mu_);
    if (remaining == "0" && reset) {
      exhausted_until_ms_[key] = *reset * 1000;
    } else {
      exhausted_until_ms_.erase(key);
    }
  }

 private:
  std::mutex mu_;
  std::map<std::string, int64_t> exhausted_until_ms_;
};

RateLimits& rate_limits() {
  static RateLimits limits;
  return limits;
}

// --- requests -----------------------------------------------------------------------------------

std::string error_text(const json& body) {
  if (body.is_object() && body.contains("error") && body["error"].is_string()) {
    std::string text = body["error"].get<std::string>();
    if (body.contains("error_description") && body["error_description"].is_string()) {
      text += ": " + body["error_description"].get<std::string>();
    }
    return text;
  }
  if (body.is_string()) return body.get<std::string>().substr(0, 200);
  return body.is_null() ? std::string() : body.dump().substr(0, 200);
}

std::optional<int64_t> retry_after_ms(const json& headers) {
  if (headers.contains("retry-after")) {
    const std::string value = headers["retry-after"].get<std::string>();
    if (!value.empty() && value.find_first_not_of("0123456789") == std::string::npos) {
      return std::stoll(value) * 1000;
    }
  }
  if (headers.contains("x-ratelimit-reset")) {
    if (auto reset = parse_iso8601(headers["x-ratelimit-reset"].get<std::string>())) {
      int64_t wait = *reset * 1000 - now_ms();
      return wait > 0 ? wait : 0;
    }
  }
  return std::nullopt;
}

// Turns a status of 400 or more into the error a workflow author can act on.
[[noreturn]] void fail_for_status(const std::string& what, int status, const json& response) {
  const json& headers = response["headers"];
  std::string detail = error_text(response.contains("body") ? response["body"] : json());
  std::string said = detail.empty() ? "" : ": " + detail;
  std::string prefix = "mastodon: " + what + " answered " + std::to_string(status);
  herald::sdk::Error error;
  error.details = {{"status", status}, {"error", detail}};
  if (status == 401) {
    error.code = "unauthenticated";
    error.message = prefix + said + " (check the access token)";
  } else if (status == 403) {
    error.code = "permission_denied";
    error.message = prefix + said + " (the token lacks the scope, or the account may not do this)";
  } else if (status == 404) {
    error.code = "not_found";
    error.message = prefix + said;
  } else if (status == 422 || status == 400) {
    error.code = "invalid_argument";
    error.message = prefix + said;
  } else if (status == 429) {
    error.code = "resource_exhausted";
    error.message = prefix + said + " (rate limited)";
    error.retryable = true;
    error.retry_after_ms = retry_after_ms(headers);
  } else if (status >= 500) {
    error.code = "unavailable";
    error.message = prefix + said;
    error.retryable = true;
    error.retry_after_ms = retry_after_ms(headers);
  } else {
    error.code = "failed_precondition";
    error.message = prefix + said;
  }
  throw Failure(std::move(error));
}

// One request; every status comes back to be mapped here rather than by the http client.
json request(Call& call, const Account& account, const std::string& what, std::string method,
             const std::string& path, const json& body = nullptr,
             const std::string& idempotency_key = "") {
  const std::string limit_key =
      account.base + "\n" + std::to_string(std::hash<std::string>{}(account.token));
  rate_limits().check(limit_key);
  json req = {{"method", std::move(method)},
              {"url", account.base + path},
              {"headers", json::object()},
              {"expect", {"1xx", "2xx", "3xx", "4xx", "5xx"}}};
  if (!account.token.empty()) req["headers"]["Authorization"] = "Bearer " + account.token;
  if (!idempotency_key.empty()) req["headers"]["Idempotency-Key"] = idempotency_key;
  if (!body.is_null()) req["json"] = body;
  json response = call.http(req);
  rate_limits().record(limit_key, response["headers"]);
  int status = response.value("status", 0);
  if (status >= 400) fail_for_status(what, status, response);
  if (status >= 300) {
    throw Failure("failed_precondition",
                  "mastodon: " + what + " answered " + std::to_string(status) + ", not a success");
  }
  return response;
}

std::string url_encode(const std::string& text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string status_id(const json& input) {
  const json& id = input.at("id");
  std::string text = id.is_string() ? id.get<std::string>() : id.dump();
  if (text.empty() || text.find_first_of("/?#") != std::string::npos) {
    throw Failure("invalid_argument", "mastodon: '" + text + "' is not a status id");
  }
  return text;
}

// --- validate -----------------------------------------------------------------------------------

// The length Mastodon counts: code points, every http(s) link as 23, "@user@domain" as "@user".
int64_t status_length(const std::string& text) {
  static const std::regex links(R"(https?://[^\s]+)");
  static const std::regex remote_mentions(R"((@[A-Za-z0-9_]+)@[A-Za-z0-9.\-]+[A-Za-z0-9])");
  int64_t link_count = 0;
  std::string rest;
  auto begin = std::sregex_iterator(text.begin(), text.end(), links);
  size_t last = 0;
  for (auto it = begin; it != std::sregex_iterator(); ++it) {
    rest += text.substr(last, static_cast<size_t>(it->position()) - last);
    last = static_cast<size_t>(it->position() + it->length());
    ++link_count;
  }
  rest += text.substr(last);
  rest = std::regex_replace(rest, remote_mentions, "$1");
  int64_t points = 0;
  for (unsigned char c : rest) {
    if ((c & 0xC0) != 0x80) ++points;
  }
  return points + link_count * kUrlLength;
}

json validate(const json& input, Call& call) {
  Account acct = account(input, call, false);
  int64_t max_characters = kDefaultMaxCharacters;
  int64_t max_media = kDefaultMaxMedia;
  std::string limits_from = "default";
  if (!acct.base.empty() && input.value("use_instance_limits", true)) {
    json response = request(call, acct, "GET /api/v2/instance", "GET", "/api/v2/instance");
    const json& body = response["body"];
    json statuses =
        body.is_object()
            ? body.value("configuration", json::object()).value("statuses", json::object())
            : json::object();
    if (statuses.contains("max_characters") && statuses["max_characters"].is_number_integer()) {
      max_characters = statuses["max_characters"].get<int64_t>();
      limits_from = "instance";
    }
    if (statuses.contains("max_media_attachments") &&
        statuses["max_media_attachments"].is_number_integer()) {
      max_media = statuses["max_media_attachments"].get<int64_t>();
    }
  }
  std::string text = input.value("text", std::string());
  int64_t media = input.contains("media") ? static_cast<int64_t>(input["media"].size()) : 0;
  int64_t length = status_length(text);
  json problems = json::array();
  if (text.empty() && media == 0) problems.push_back("a status needs text or media");
  if (length > max_characters) {
    problems.push_back("the text is " + std::to_string(length) + " characters; the limit is " +
                       std::to_string(max_characters));
  }
  if (media > max_media) {
    problems.push_back(std::to_string(media) + " media attachments; the limit is " +
                       std::to_string(max_media));
  }
  return {{"valid", problems.empty()}, {"length", length}, {"max_characters", max_characters},
          {"max_media", max_media},    {"media", media},   {"limits_from", limits_from},
          {"problems", problems}};
}

// --- publish, reply, delete, metrics ------------------------------------------------------------

json status_summary(const json& status) {
  return {
      {"id", status.value("id", std::string())},
      {"url", status.value("url", status.value("uri", std::string()))},
      {"created_at", status.value("created_at", std::string())},
      {"visibility", status.value("visibility", std::string())},
      {"in_reply_to_id", status.contains("in_reply_to_id") ? status["in_reply_to_id"] : json()}};
}

json post_status(const json& input, Call& call, const std::string& in_reply_to) {
  Account acct = account(input, call, true);
  json body = {{"status", input.value("text", std::string())}};
  if (!in_reply_to.empty()) body["in_reply_to_id"] = in_reply_to;
  for (const char* field : {"visibility", "spoiler_text", "language", "sensitive", "media_ids"}) {
    if (input.contains(field)) body[field] = input[field];
  }
  // One key per run and step: a retried publish is the same status, which Mastodon answers
  // again instead of posting twice.
  std::string key = input.value("idempotency_key", call.idempotency_key());
  json response =
      request(call, acct, "POST /api/v1/statuses", "POST", "/api/v1/statuses", body, key);
  json out = status_summary(response["body"]);
  out["idempotency_key"] = key;
  return out;
}

json publish(const json& input, Call& call) {
  return post_status(input, call, "");
}

json reply(const json& input, Call& call) {
  const json& to = input.at("in_reply_to_id");
  return post_status(input, call, to.is_string() ? to.get<std::string>() : to.dump());
}

json remove(const json& input, Call& call) {
  Account acct = account(input, call, true);
  std::string id = status_id(input);
  json response =
      request(call, acct, "DELETE /api/v1/statuses/" + id, "DELETE", "/api/v1/statuses/" + id);
  return {{"id", id}, {"deleted", true}};
}

json metrics(const json& input, Call& call) {
  Account acct = account(input, call, true);
  std::string id = status_id(input);
  json response =
      request(call, acct, "GET /api/v1/statuses/" + id, "GET", "/api/v1/statuses/" + id);
  const json& s = response["body"];
  if (!s.is_object()) {
    throw Failure("unavailable", "mastodon: GET /api/v1/statuses/" + id + " did not answer JSON",
                  true);
  }
  return {{"id", id},
          {"favourites", s.value("favourites_count", 0)},
          {"reblogs", s.value("reblogs_count", 0)},
          {"replies", s.value("replies_count", 0)},
          {"url", s.value("url", std::string())}};
}

// --- mentions -----------------------------------------------------------------------------------

// The value of `param` in the URL of the Link header entry with rel="rel".
std::string link_param(const std::string& link, const std::string& rel, const std::string& param) {
  static const std::regex entry(R"re(<([^>]*)>\s*;\s*rel="([^"]*)")re");
  for (auto it = std::sregex_iterator(link.begin(), link.end(), entry);
       it != std::sregex_iterator(); ++it) {
    if ((*it)[2].str() != rel) continue;
    std::string url = (*it)[1].str();
    std::regex value("[?&]" + param + "=([^&]*)");
    std::smatch match;
    if (std::regex_search(url, match, value)) return match[1].str();
  }
  return "";
}

json mentions(const json& input, Call& call) {
  Account acct = account(input, call, true);
  std::string path = "/api/v1/notifications?types[]=mention";
  for (const char* field : {"max_id", "since_id", "min_id"}) {
    if (input.contains(field) && input[field].is_string() &&
        !input[field].get<std::string>().empty()) {
      path += std::string("&") + field + "=" + url_encode(input[field].get<std::string>());
    }
  }
  if (input.contains("limit")) path += "&limit=" + std::to_string(input["limit"].get<int64_t>());
  json response = request(call, acct, "GET /api/v1/notifications", "GET", path);
  const json& body = response["body"];
  if (!body.is_array()) {
    throw Failure("unavailable", "mastodon: GET /api/v1/notifications did not answer a list", true);
  }
  json list = json::array();
  for (const auto& n : body) {
    if (n.value("type", std::string()) != "mention") continue;
    json status = n.value("status", json::object());
    json acct_json = n.value("account", json::object());
    list.push_back({{"id", n.value("id", std::string())},
                    {"created_at", n.value("created_at", std::string())},
                    {"account", acct_json.value("acct", std::string())},
                    {"status_id", status.value("id", std::string())},
                    {"content", status.value("content", std::string())},
                    {"url", status.value("url", std::string())},
                    {"visibility", status.value("visibility", std::string())}});
  }
  std::string link = response["headers"].value("link", std::string());
  // next: older mentions (pass as max_id); prev: newer ones (pass as since_id next time).
  std::string next = link_param(link, "next", "max_id");
  std::string prev = link_param(link, "prev", "since_id");
  if (prev.empty()) prev = link_param(link, "prev", "min_id");
  return {{"mentions", list},
          {"count", list.size()},
          {"next_max_id", next.empty() ? json() : json(next)},
          {"since_id", prev.empty() ? json() : json(prev)}};
}

// --- schemas
// --------------------------------------------------------------------------------------

const char* kAccountProps = R"j(
  "instance": {"type": "string", "description": "Base URL, e.g. https://mastodon.social (default: the MASTODON_INSTANCE secret)"},
  "token_secret": {"type": "string", "description": "Name of the secret holding the access token (default MASTODON_ACCESS_TOKEN)"})j";

std::string schema(const std::string& props, const std::string& required) {
  std::string out = R"({"type": "object", )";
  if (!required.empty()) out += R"("required": [)" + required + "], ";
  return out + R"("properties": {)" + props + "," + kAccountProps + "}}";
}

const char* kPostProps = R"(
  "text": {"type": "string", "minLength": 1},
  "visibility": {"type": "string", "enum": ["public", "unlisted", "private", "direct"]},
  "spoiler_text": {"type": "string"},
  "language": {"type": "string"},
  "sensitive": {"type": "boolean"},
  "media_ids": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
  "idempotency_key": {"type": "string"})";

herald::sdk::Plugin make() {
  herald::sdk::Plugin plugin("mastodon", "1.0.0",
                             "Posts, replies, deletes and reads statuses and mentions on Mastodon");
  plugin.step("mastodon.validate",
              "Checks a status against the instance's limits (characters, media) without posting",
              schema(R"(
  "text": {"type": "string"},
  "media": {"type": "array"},
  "use_instance_limits": {"type": "boolean"})",
                     ""),
              validate);
  plugin.step("mastodon.publish", "Posts a status (POST /api/v1/statuses, Idempotency-Key)",
              schema(kPostProps, R"("text")"), publish);
  plugin.step(
      "mastodon.reply", "Posts a reply to a status (in_reply_to_id)",
      schema(std::string(kPostProps) + R"(, "in_reply_to_id": {"type": ["string", "integer"]})",
             R"("text", "in_reply_to_id")"),
      reply);
  plugin.step("mastodon.delete", "Deletes a status (DELETE /api/v1/statuses/:id)",
              schema(R"("id": {"type": ["string", "integer"]})", R"("id")"), remove);
  plugin.step("mastodon.metrics", "Favourites, reblogs and replies of a status",
              schema(R"("id": {"type": ["string", "integer"]})", R"("id")"), metrics);
  plugin.step("mastodon.mentions",
              "Mentions of the account, newest first, with cursors (max_id for older, since_id "
              "for newer)",
              schema(R"(
  "max_id": {"type": "string"},
  "since_id": {"type": "string"},
  "min_id": {"type": "string"},
  "limit": {"type": "integer", "minimum": 1, "maximum": 80})",
                     ""),
              mentions);
  return plugin;
}

}  // namespace

HERALD_PLUGIN(make)
