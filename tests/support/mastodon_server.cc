#include "tests/support/mastodon_server.h"

#include <algorithm>

namespace herald::testing {

namespace {

Response error(int status, const std::string& message) {
  return Response::json(status, {{"error", message}});
}

size_t code_points(const std::string& text) {
  return static_cast<size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

}  // namespace

MastodonServer::MastodonServer(std::string token) : token_(std::move(token)) {
  http_.route("GET", "/api/v2/instance", [this](const RecordedRequest&) {
    std::lock_guard lock(mu_);
    return Response::json(
        200,
        {{"domain", "mastodon.test"},
         {"title", "Herald test instance"},
         {"configuration",
          {{"statuses", {{"max_characters", max_characters_}, {"max_media_attachments", 4}}}}}});
  });
  http_.route("POST", "/api/v1/statuses",
              [this](const RecordedRequest& request) { return post_status(request); });
  http_.route("GET", "/api/v1/statuses/*",
              [this](const RecordedRequest& request) { return get_or_delete_status(request); });
  http_.route("DELETE", "/api/v1/statuses/*",
              [this](const RecordedRequest& request) { return get_or_delete_status(request); });
  http_.route("GET", "/api/v1/notifications",
              [this](const RecordedRequest& request) { return notifications(request); });
}

void MastodonServer::set_max_characters(int max_characters) {
  std::lock_guard lock(mu_);
  max_characters_ = max_characters;
}

void MastodonServer::set_rate_limit(int remaining, std::string reset) {
  std::lock_guard lock(mu_);
  remaining_ = remaining;
  reset_ = std::move(reset);
}

Json MastodonServer::make_status(const std::string& id, const std::string& text) const {
  return {{"id", id},
          {"uri", url() + "/users/herald/statuses/" + id},
          {"url", url() + "/@herald/" + id},
          {"created_at", "2026-11-22T07:00:00.000Z"},
          {"content", "<p>" + text + "</p>"},
          {"text", text},
          {"visibility", "public"},
          {"in_reply_to_id", nullptr},
          {"favourites_count", 0},
          {"reblogs_count", 0},
          {"replies_count", 0},
          {"account", {{"id", "1"}, {"acct", "herald"}}}};
}

std::string MastodonServer::add_status(const std::string& text, int favourites, int reblogs,
                                       int replies) {
  std::lock_guard lock(mu_);
  std::string id = std::to_string(next_id_++);
  Json status = make_status(id, text);
  status["favourites_count"] = favourites;
  status["reblogs_count"] = reblogs;
  status["replies_count"] = replies;
  statuses_[id] = status;
  return id;
}

std::string MastodonServer::add_mention(const std::string& account, const std::string& text) {
  std::lock_guard lock(mu_);
  std::string id = std::to_string(next_id_++);
  Json status = make_status(std::to_string(next_id_++), "@herald " + text);
  status["account"] = {{"id", "2"}, {"acct", account}};
  notifications_.push_back({{"id", id},
                            {"type", "mention"},
                            {"created_at", "2026-11-22T07:00:00.000Z"},
                            {"account", {{"id", "2"}, {"acct", account}}},
                            {"status", status}});
  // A favourite in between: types[]=mention must leave it out.
  notifications_.push_back({{"id", std::to_string(next_id_++)},
                            {"type", "favourite"},
                            {"account", {{"id", "3"}, {"acct", "fan"}}}});
  return id;
}

std::optional<Json> MastodonServer::status(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto found = statuses_.find(id);
  if (found == statuses_.end()) return std::nullopt;
  return found->second;
}

size_t MastodonServer::status_count() const {
  std::lock_guard lock(mu_);
  return statuses_.size();
}

// Called with mu_ held: the rate-limit headers on an authorised answer.
Response MastodonServer::answer(const RecordedRequest&, Response response) {
  response.with_header("X-RateLimit-Limit", "300");
  response.with_header("X-RateLimit-Remaining", std::to_string(remaining_.value_or(299)));
  response.with_header("X-RateLimit-Reset", reset_);
  return response;
}

// Called with mu_ held: a 401 or 429 answer, or an empty body (status 0) to go on.
Response MastodonServer::unauthorized_or_limited(const RecordedRequest& request) {
  if (request.header("Authorization") != "Bearer " + token_) {
    return error(401, "The access token is invalid");
  }
  if (remaining_) {
    if (*remaining_ <= 0) return answer(request, error(429, "Too many requests"));
    --*remaining_;
  }
  Response go_on;
  go_on.status = 0;
  return go_on;
}

Response MastodonServer::post_status(const RecordedRequest& request) {
  std::lock_guard lock(mu_);
  if (Response refused = unauthorized_or_limited(request); refused.status != 0) return refused;
  Json body = Json::parse(request.body, nullptr, false);
  if (!body.is_object()) return answer(request, error(400, "Invalid JSON body"));
  std::string key = request.header("Idempotency-Key");
  if (!key.empty()) {
    auto seen = by_key_.find(key);
    if (seen != by_key_.end()) return answer(request, Response::json(200, statuses_[seen->second]));
  }
  std::string text = body.value("status", std::string());
  bool has_media = body.contains("media_ids") && !body["media_ids"].empty();
  if (text.empty() && !has_media) {
    return answer(request, error(422, "Validation failed: Text can't be blank"));
  }
  if (code_points(text) > static_cast<size_t>(max_characters_)) {
    return answer(request, error(422, "Validation failed: Text character limit of " +
                                          std::to_string(max_characters_) + " exceeded"));
  }
  Json in_reply_to = nullptr;
  if (body.contains("in_reply_to_id") && !body["in_reply_to_id"].is_null()) {
    std::string parent = body["in_reply_to_id"].is_string()
                             ? body["in_reply_to_id"].get<std::string>()
                             : body["in_reply_to_id"].dump();
    auto found = statuses_.find(parent);
    if (found == statuses_.end()) return answer(request, error(404, "Record not found"));
    found->second["replies_count"] = found->second["replies_count"].get<int>() + 1;
    in_reply_to = parent;
  }
  std::string id = std::to_string(next_id_++);
  Json status = make_status(id, text);
  status["in_reply_to_id"] = in_reply_to;
  if (body.contains("visibility")) status["visibility"] = body["visibility"];
  statuses_[id] = status;
  if (!key.empty()) by_key_[key] = id;
  return answer(request, Response::json(200, status));
}

Response MastodonServer::get_or_delete_status(const RecordedRequest& request) {
  std::lock_guard lock(mu_);
  if (Response refused = unauthorized_or_limited(request); refused.status != 0) return refused;
  const std::string prefix = "/api/v1/statuses/";
  std::string id = request.path.size() > prefix.size() ? request.path.substr(prefix.size()) : "";
  auto found = statuses_.find(id);
  if (found == statuses_.end()) return answer(request, error(404, "Record not found"));
  Json status = found->second;
  if (request.method == "DELETE") statuses_.erase(found);
  return answer(request, Response::json(200, status));
}

Response MastodonServer::notifications(const RecordedRequest& request) {
  std::lock_guard lock(mu_);
  if (Response refused = unauthorized_or_limited(request); refused.status != 0) return refused;
  auto params = request.query_params();
  auto number = [&](const std::string& name, long fallback) {
    auto found = params.find(name);
    return found == params.end() || found->second.empty() ? fallback : std::stol(found->second);
  };
  long max_id = number("max_id", -1);
  long since_id = number("since_id", number("min_id", -1));
  long limit = std::min(number("limit", 40), 80L);
  std::string type = params.count("types[]") ? params["types[]"] : "";
  Json page = Json::array();
  for (auto it = notifications_.rbegin(); it != notifications_.rend(); ++it) {
    long id = std::stol((*it)["id"].get<std::string>());
    if (max_id >= 0 && id >= max_id) continue;
    if (since_id >= 0 && id <= since_id) continue;
    if (!type.empty() && (*it)["type"] != type) continue;
    if (static_cast<long>(page.size()) >= limit) break;
    page.push_back(*it);
  }
  Response response = Response::json(200, page);
  if (!page.empty()) {
    std::string base =
        url() + "/api/v1/notifications?types[]=mention&limit=" + std::to_string(limit);
    response.with_header("Link", "<" + base + "&max_id=" + page.back()["id"].get<std::string>() +
                                     ">; rel=\"next\", <" + base + "&since_id=" +
                                     page.front()["id"].get<std::string>() + ">; rel=\"prev\"");
  }
  return answer(request, response);
}

}  // namespace herald::testing
