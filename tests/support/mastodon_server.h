// MastodonServer: a small Mastodon instance on LocalHttpServer for the mastodon plugin's tests.
// It speaks the documented REST API closely enough to exercise a client:
//   GET    /api/v2/instance            configuration.statuses.max_characters /
//   max_media_attachments POST   /api/v1/statuses            JSON {status, in_reply_to_id,
//   visibility, media_ids...};
//                                      the Idempotency-Key header answers a repeat with the same
//                                      status; 422 {"error": "Validation failed: ..."} on blank or
//                                      too long text, 404 for an unknown in_reply_to_id
//   GET    /api/v1/statuses/:id        the status with favourites/reblogs/replies counts
//   DELETE /api/v1/statuses/:id        the deleted status; 404 {"error": "Record not found"}
//   GET    /api/v1/notifications       types[]=mention, max_id/since_id/min_id/limit, newest first,
//                                      a Link header with rel="next" (max_id) and rel="prev"
//                                      (since_id) as Mastodon sends it
// Every route but the instance needs `Authorization: Bearer <token>` (401 {"error": "The access
// token is invalid"} otherwise). Every authorised answer carries X-RateLimit-Limit, -Remaining
// and -Reset; once the remaining count is used up the server answers 429 {"error": "Too many
// requests"} until the test sets a new budget. Scripted answers (http().script) go first.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/local_http_server.h"

namespace herald::testing {

class MastodonServer {
 public:
  explicit MastodonServer(std::string token = "mastodon-token");

  std::string url() const { return http_.url(); }
  LocalHttpServer& http() { return http_; }
  const std::string& token() const { return token_; }

  void set_max_characters(int max_characters);
  // From now on every answer counts one request off `remaining`; at 0 the next ones are 429.
  // `reset` is the X-RateLimit-Reset value (ISO 8601).
  void set_rate_limit(int remaining, std::string reset);
  // A status of the account, with counts; returns its id.
  std::string add_status(const std::string& text, int favourites = 0, int reblogs = 0,
                         int replies = 0);
  // A mention notification (ids grow with each call: the last added is the newest).
  std::string add_mention(const std::string& account, const std::string& text);

  std::optional<Json> status(const std::string& id) const;
  size_t status_count() const;

 private:
  Response answer(const RecordedRequest& request, Response response);
  Response unauthorized_or_limited(const RecordedRequest& request);
  Response post_status(const RecordedRequest& request);
  Response get_or_delete_status(const RecordedRequest& request);
  Response notifications(const RecordedRequest& request);
  Json make_status(const std::string& id, const std::string& text) const;

  LocalHttpServer http_;
  std::string token_;
  mutable std::mutex mu_;
  int max_characters_ = 500;
  std::optional<int> remaining_;
  std::string reset_ = "2030-01-01T00:00:00.000Z";
  long next_id_ = 100;
  std::map<std::string, Json> statuses_;       // id -> status
  std::map<std::string, std::string> by_key_;  // Idempotency-Key -> status id
  std::vector<Json> notifications_;            // oldest first
};

}  // namespace herald::testing
