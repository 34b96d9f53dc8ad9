// The approval routes: policies (named, versioned), groups and delegations that chains refer to,
// approvals with "pending for me", decisions, and the signed one-click links of notifications.
// Every change goes through approvals::Desk, as the approval step's and the CLI's do.
#include <spdlog/spdlog.h>

#include "engine/approvals/desk.h"
#include "engine/common/time.h"
#include "engine/server/internal/service_impl.h"

namespace herald::server {

using Clock = std::chrono::system_clock;
using security::Permission;

namespace {

approvals::Origin origin_of(const Actor& actor) {
  return approvals::Origin{actor.name(), actor.address, actor.request_id};
}

// The validator's problems as a 422, like a workflow that does not validate.
Error policy_error(Error error) {
  if (error.code == ErrorCode::invalid_argument && error.details.is_object() &&
      error.details.contains("errors")) {
    return http_error(ErrorCode::invalid_argument, 422, error.message,
                      Json{{"errors", error.details["errors"]}});
  }
  return error;
}

Json policy_json(const store::ApprovalPolicyRecord& record, bool with_source) {
  Json out = {{"name", record.name},
              {"version", record.version},
              {"description", record.description},
              {"source_hash", record.source_hash},
              {"created_by", record.created_by},
              {"created_at", format_iso8601(record.created_at)}};
  if (with_source) out["source"] = record.source;
  return out;
}

Json group_json(const store::GroupRecord& group) {
  return {{"name", group.name},
          {"description", group.description},
          {"members", group.members},
          {"updated_by", group.updated_by},
          {"created_at", format_iso8601(group.created_at)},
          {"updated_at", format_iso8601(group.updated_at)}};
}

Json delegation_json(const store::DelegationRecord& d) {
  return {{"user", d.user_id},
          {"delegate", d.delegate_id},
          {"from", optional_time(d.starts_at)},
          {"until", optional_time(d.ends_at)},
          {"created_by", d.created_by},
          {"created_at", format_iso8601(d.created_at)}};
}

Result<std::optional<store::TimePoint>> time_field(const Json& body, const std::string& name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<store::TimePoint>();
  if (!it->is_string()) {
    return make_error(ErrorCode::invalid_argument, "`" + name + "` must be an ISO-8601 time");
  }
  auto parsed = parse_iso8601(it->get<std::string>());
  if (!parsed.ok()) {
    return make_error(ErrorCode::invalid_argument, "`" + name + "`: " + parsed.error().message);
  }
  return std::optional<store::TimePoint>(*parsed);
}

// An approval as the list and the detail show it.
Result<Json> approval_view(const store::ApprovalRecord& record, bool history) {
  auto envelope = approvals::read_envelope(record);
  if (!envelope.ok()) return envelope.error();
  return approvals::approval_json(record, envelope->state, history);
}

// The decision's answer: 201 recorded, 200 the same decision again; refusals as errors with the
// library's status (400, 403, 409).
Response decided_response(const approvals::Desk::Decided& decided, const std::string& request_id) {
  const auto& outcome = decided.outcome;
  int status = approvals::http_status(outcome.status);
  if (outcome.status == approvals::DecideStatus::recorded ||
      outcome.status == approvals::DecideStatus::duplicate) {
    Json body = {{"status", std::string(approvals::to_string(outcome.status))},
                 {"decision", outcome.decision ? outcome.decision->to_json() : Json(nullptr)}};
    auto view = approval_view(decided.record, false);
    body["approval"] = view.ok() ? *view : Json(nullptr);
    return json_response(status, body);
  }
  ErrorCode code = ErrorCode::failed_precondition;
  if (status == 400) code = ErrorCode::invalid_argument;
  if (status == 403) code = ErrorCode::permission_denied;
  Json details = {{"reason", std::string(approvals::to_string(outcome.status))}};
  if (outcome.decision) details["decision"] = outcome.decision->to_json();
  return error_response(http_error(code, status, outcome.message, details), request_id);
}

std::string html_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// application/x-www-form-urlencoded, as a link's page posts it.
std::map<std::string, std::string> form_fields(const std::string& body) {
  std::map<std::string, std::string> fields;
  auto decode = [](std::string_view text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '+') {
        out += ' ';
      } else if (text[i] == '%' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
                 std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
        out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
        i += 2;
      } else {
        out += text[i];
      }
    }
    return out;
  };
  size_t start = 0;
  while (start <= body.size()) {
    size_t end = body.find('&', start);
    if (end == std::string::npos) end = body.size();
    std::string_view pair(body.data() + start, end - start);
    size_t eq = pair.find('=');
    if (!pair.empty()) {
      fields[decode(pair.substr(0, eq))] = eq == std::string_view::npos ? "" : decode(pair.substr(eq + 1));
    }
    start = end + 1;
  }
  return fields;
}

Response html_page(int status, const std::string& title, const std::string& body_html) {
  Response response;
  response.status = status;
  response.content_type = "text/html; charset=utf-8";
  response.headers.push_back({"Cache-Control", "no-store"});
  response.headers.push_back({"Referrer-Policy", "no-referrer"});
  response.headers.push_back({"Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"});
  response.body = "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
                  "content=\"width=device-width\"><title>" + html_escape(title) +
                  "</title><style>body{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em}"
                  "pre{white-space:pre-wrap;background:#f4f4f4;padding:1em}</style></head><body><h1>" +
                  html_escape(title) + "</h1>" + body_html + "</body></html>";
  return response;
}

Response no_content() {
  Response response;
  response.status = 204;
  return response;
}

bool wants_json(const Request& request) {
  const std::string* accept = request.header("accept");
  return accept != nullptr && accept->find("application/json") != std::string::npos;
}

}  // namespace

void Service::Impl::add_approval_routes() {
  auto add = [this](const std::string& method, const std::string& pattern, const std::string& summary,
                    Permission permission, RouteBody body) {
    add_route(method, pattern, summary, permission, std::move(body));
  };

  // ---- policies ----
  add("PUT", "/api/v1/approval-policies/{name}", "Create or change an approval policy (a new version)",
      Permission::approval_chains_write, [this](Request& request, const Actor& actor) -> Result<Response> {
        std::string type = request.content_type();
        if (type != "application/yaml" && type != "application/x-yaml" && type != "text/yaml" &&
            type != "application/json") {
          return http_error(ErrorCode::invalid_argument, 415,
                            "send the policy file with Content-Type: application/yaml or application/json");
        }
        if (request.body.empty()) return make_error(ErrorCode::invalid_argument, "the body is empty; send the policy file");
        const std::string& name = request.params["name"];
        auto saved = desk->put_policy(actor.workspace_id, name, request.body, name + ".yaml", origin_of(actor));
        if (!saved.ok()) return policy_error(saved.error());
        Json body = policy_json(saved->record, false);
        body["new_version"] = saved->new_version;
        body["levels"] = saved->policy.chain.level_count();
        return json_response(saved->new_version ? 201 : 200, body);
      });
  add("GET", "/api/v1/approval-policies", "List approval policies (newest version of each)",
      Permission::approval_chains_read, [this](Request& request, const Actor& actor) -> Result<Response> {
        auto policies = store->list_approval_policies(actor.workspace_id);
        if (!policies.ok()) return policies.error();
        Json items = Json::array();
        for (const auto& policy : *policies) items.push_back(policy_json(policy, false));
        return page_of(std::move(items), request, "name", false);
      });
  add("GET", "/api/v1/approval-policies/{name}", "Get an approval policy (newest, or ?version=N)",
      Permission::approval_chains_read, [this](Request& request, const Actor& actor) -> Result<Response> {
        std::optional<int> version;
        if (auto text = query_value(request, "version")) {
          try {
            version = std::stoi(*text);
          } catch (...) {
            return make_error(ErrorCode::invalid_argument, "version must be a number");
          }
        }
        auto policy = desk->get_policy(actor.workspace_id, request.params["name"], version);
        if (!policy.ok()) return policy.error();
        Json body = policy_json(policy->record, true);
        body["policy"] = policy->policy.to_json();
        return json_response(200, body);
      });
  add("GET", "/api/v1/approval-policies/{name}/versions", "An approval policy's history, newest first",
      Permission::approval_chains_read, [this](Request& request, const Actor& actor) -> Result<Response> {
        auto versions = store->list_approval_policy_versions(actor.workspace_id, request.params["name"]);
        if (!versions.ok()) return versions.error();
        if (versions->empty()) {
          return make_error(ErrorCode::not_found, "there is no approval policy '" + request.params["name"] + "' in this workspace");
        }
        Json items = Json::array();
        for (const auto& v : *versions) items.push_back(policy_json(v, false));
        return json_response(200, {{"items", items}, {"next_cursor", nullptr}});
      });

  // ---- groups ----
  add("PUT", "/api/v1/groups/{name}", "Create or replace a group of approvers",
      Permission::users_manage, [this](Request& request, const Actor& actor) -> Result<Response> {
        auto body = json_body(request);
        if (!body.ok()) return body.error();
        const std::string& name = request.params["name"];
        if (!approvals::ApproverRef::parse("group:" + name).ok()) {
          return make_error(ErrorCode::invalid_argument, "'" + name + "' is not a valid group name");
        }
        store::GroupRecord group;
        group.workspace_id = actor.workspace_id;
        group.name = name;
        auto description = string_field(*body, "description", false);
        if (!description.ok()) return description.error();
        group.description = *description;
        auto members = body->find("members");
        if (members == body->end() || !members->is_array()) {
          return make_error(ErrorCode::invalid_argument, "`members` must be a list of user ids");
        }
        for (const auto& member : *members) {
          if (!member.is_string()) return make_error(ErrorCode::invalid_argument, "`members` must be a list of user ids");
          std::string user = member.get<std::string>();
          if (user.rfind("user:", 0) == 0) user = user.substr(5);
          auto membership = store->get_membership(actor.workspace_id, user);
          if (!membership.ok()) {
            if (membership.error().code == ErrorCode::not_found) {
              return make_error(ErrorCode::invalid_argument, "'" + user + "' is not a member of this workspace");
            }
            return membership.error();
          }
          group.members.push_back(user);
        }
        group.updated_by = actor.name();
        group.created_at = group.updated_at = Clock::now();
        if (auto status = store->put_group(group); !status.ok()) return status.error();
        audit(*store, actor, "group.put", "group", name, {{"members", group.members}});
        auto stored = store->get_group(actor.workspace_id, name);
        if (!stored.ok()) return stored.error();
        return json_response(200, group_json(*stored));
      });
  add("GET", "/api/v1/groups", "List groups", Permission::approval_chains_read,
      [this](Request& request, const Actor& actor) -> Result<Response> {
        auto groups = store->list_groups(actor.workspace_id);
        if (!groups.ok()) return groups.error();
        Json items = Json::array();
        for (const auto& g : *groups) items.push_back(group_json(g));
        return page_of(std::move(items), request, "name", false);
      });
  add("GET", "/api/v1/groups/{name}", "Get a group", Permission::approval_chains_read,
      [this](Request& request, const Actor& actor) -> Result<Response> {
        auto group = store->get_group(actor.workspace_id, request.params["name"]);
        if (!group.ok()) return group.error();
        return json_response(200, group_json(*group));
      });
  add("DELETE", "/api/v1/groups/{name}", "Delete a group", Permission::users_manage,
      [this](Request& request, const Actor& actor) -> Result<Response> {
        if (auto status = store->delete_group(actor.workspace_id, request.params["name"]); !status.ok()) {
          return status.error();
        }
        audit(*store, actor, "group.delete", "group", request.params["name"]);
        return no_content();
      });

  // ---- delegations: a user's own, or anyone's for an admin ----
  // Another workspace's users are as absent as unknown ones (404), before any check of who asks.
  auto may_delegate_for = [this](const Actor& actor, const std::string& user) -> Status {
    auto membership = store->get_membership(actor.workspace_id, user);
    if (!membership.ok()) {
      if (membership.error().code != ErrorCode::not_found) return membership.error();
      return make_error(ErrorCode::not_found, "'" + user + "' is not a member of this workspace");
    }
    if (actor.user_id == user || security::allows(actor.role, Permission::users_manage)) return {};
    return make_error(ErrorCode::permission_denied, "only an admin may set another user's delegate");
  };
  add("PUT", "/api/v1/delegations/{user}", "Hand a user's approvals to a delegate for a period",
      Permission::approvals_decide, [this, may_delegate_for](Request& request, const Actor& actor) -> Result<Response> {
        const std::string& user = request.params["user"];
        if (auto allowed = may_delegate_for(actor, user); !allowed.ok()) return allowed.error();
        auto body = json_body(request);
        if (!body.ok()) return body.error();
        auto delegate = string_field(*body, "delegate", true);
        if (!delegate.ok()) return delegate.error();
        if (*delegate == user) return make_error(ErrorCode::invalid_argument, "a user cannot delegate to themselves");
        for (const auto& who : {user, *delegate}) {
          auto membership = store->get_membership(actor.workspace_id, who);
          if (!membership.ok()) {
            if (membership.error().code == ErrorCode::not_found) {
              return make_error(ErrorCode::invalid_argument, "'" + who + "' is not a member of this workspace");
            }
            return membership.error();
          }
        }
        auto from = time_field(*body, "from");
        if (!from.ok()) return from.error();
        auto until = time_field(*body, "until");
        if (!until.ok()) return until.error();
        if (*from && *until && **until <= **from) {
          return make_error(ErrorCode::invalid_argument, "`until` must be after `from`");
        }
        store::DelegationRecord d;
        d.workspace_id = actor.workspace_id;
        d.user_id = user;
        d.delegate_id = *delegate;
        d.starts_at = *from;
        d.ends_at = *until;
        d.created_by = actor.name();
        d.created_at = Clock::now();
        if (auto status = store->put_delegation(d); !status.ok()) return status.error();
        audit(*store, actor, "delegation.put", "user", user, delegation_json(d));
        return json_response(200, delegation_json(d));
      });
  add("GET", "/api/v1/delegations/{user}", "A user's delegate", Permission::approvals_read,
      [this](Request& request, const Actor& actor) -> Result<Response> {
        auto d = store->get_delegation(actor.workspace_id, request.params["user"]);
        if (!d.ok()) return d.error();
        if (!d->has_value()) return make_error(ErrorCode::not_found, "'" + request.params["user"] + "' has no delegate");
        return json_response(200, delegation_json(**d));
      });
  add("DELETE", "/api/v1/delegations/{user}", "End a user's delegation", Permission::approvals_decide,
      [this, may_delegate_for](Request& request, const Actor& actor) -> Result<Response> {
        const std::string& user = request.params["user"];
        if (auto allowed = may_delegate_for(actor, user); !allowed.ok()) return allowed.error();
        if (auto status = store->delete_delegation(actor.workspace_id, user); !status.ok()) return status.error();
        audit(*store, actor, "delegation.delete", "user", user);
        return no_content();
      });

  // ---- approvals ----
  add("GET", "/api/v1/approvals", "List approvals (?mine=true: pending for the caller)",
      Permission::approvals_read, [this](Request& request, const Actor& actor) -> Result<Response> {
        auto limit = limit_of(request);
        if (!limit.ok()) return limit.error();
        auto mine = query_value(request, "mine");
        Result<std::vector<store::ApprovalRecord>> records = std::vector<store::ApprovalRecord>();
        if (mine && *mine != "false") {
          if (actor.user_id.empty()) return make_error(ErrorCode::invalid_argument, "mine=true needs a user's token");
          records = desk->pending_for(actor.workspace_id, actor.user_id, query_value(request, "cursor"), *limit,
                                      Clock::now());
        } else {
          store::ApprovalFilter filter;
          filter.workspace_id = actor.workspace_id;
          filter.status = query_value(request, "status");
          filter.run_id = query_value(request, "run");
          filter.before_id = query_value(request, "cursor");
          filter.limit = *limit;
          records = desk->list(filter);
        }
        if (!records.ok()) return records.error();
        Json items = Json::array();
        for (const auto& record : *records) {
          auto view = approval_view(record, false);
          if (!view.ok()) return view.error();
          items.push_back(std::move(view).value());
        }
        std::optional<std::string> next;
        if (records->size() == static_cast<size_t>(*limit)) next = records->back().id;
        return page(std::move(items), next);
      });
  add("GET", "/api/v1/approvals/{id}", "Get an approval with its decisions and history",
      Permission::approvals_read, [this](Request& request, const Actor& actor) -> Result<Response> {
        auto record = desk->get(actor.workspace_id, request.params["id"]);
        if (!record.ok()) return record.error();
        auto envelope = approvals::read_envelope(*record);
        if (!envelope.ok()) return envelope.error();
        Json body = approvals::approval_json(*record, envelope->state, true);
        // What the caller may decide now, so a client knows which buttons to show.
        Json choices = Json::array();
        if (!actor.user_id.empty()) {
          approvals::StoreDirectory directory(*store, actor.workspace_id);
          auto mine = approvals::choices_for(envelope->state,
                                             approvals::Actor(approvals::user_principal(actor.user_id)),
                                             Clock::now(), directory);
          if (mine.ok()) {
            for (const auto& choice : *mine) {
              choices.push_back(Json{{"level", choice.level}, {"for", choice.on_behalf_of}});
            }
          }
        }
        body["my_choices"] = std::move(choices);
        return json_response(200, body);
      });
  add("POST", "/api/v1/approvals/{id}/decisions", "Decide: approve, reject (with a reason) or request changes",
      Permission::approvals_decide, [this](Request& request, const Actor& actor) -> Result<Response> {
        auto body = json_body(request);
        if (!body.ok()) return body.error();
        if (actor.user_id.empty()) return make_error(ErrorCode::invalid_argument, "deciding needs a user's token");
        auto verdict_text = string_field(*body, "decision", true);
        if (!verdict_text.ok()) return verdict_text.error();
        auto verdict = approvals::parse_verdict(*verdict_text);
        if (!verdict) {
          return make_error(ErrorCode::invalid_argument,
                            "`decision` must be approve, reject or request_changes (changes), not '" + *verdict_text + "'");
        }
        approvals::DecisionRequest decision;
        decision.verdict = *verdict;
        auto comment = string_field(*body, "comment", false);
        if (!comment.ok()) return comment.error();
        decision.comment = *comment;
        if (body->contains("text") && !(*body)["text"].is_null()) {
          if (!(*body)["text"].is_string()) return make_error(ErrorCode::invalid_argument, "`text` must be a string");
          decision.edited_text = (*body)["text"].get<std::string>();
        }
        auto level = string_field(*body, "level", false);
        if (!level.ok()) return level.error();
        decision.level = *level;
        auto on_behalf = string_field(*body, "on_behalf_of", false);
        if (!on_behalf.ok()) return on_behalf.error();
        if (!on_behalf->empty()) {
          decision.on_behalf_of = on_behalf->find(':') == std::string::npos ? approvals::user_principal(*on_behalf)
                                                                            : *on_behalf;
        }
        if (const std::string* key = request.header("idempotency-key")) decision.idempotency_key = *key;
        auto key = string_field(*body, "idempotency_key", false);
        if (!key.ok()) return key.error();
        if (!key->empty()) decision.idempotency_key = *key;
        auto decided = desk->decide(actor.workspace_id, request.params["id"],
                                    approvals::Actor(approvals::user_principal(actor.user_id)), decision,
                                    Clock::now(), origin_of(actor));
        if (!decided.ok()) return decided.error();
        if (decided->outcome.status == approvals::DecideStatus::recorded) engine->wake();
        return decided_response(*decided, request.request_id);
      });

  // ---- signed links: no token, the link is the credential ----
  auto link_page = [this](Request& request) -> Response {
    auto view = desk->open_link(request.params["token"], Clock::now());
    if (!view.ok()) {
      if (wants_json(request)) return error_response(view.error(), request.request_id);
      int status = http_status_for(view.error());
      return html_page(status, "This link cannot be used", "<p>" + html_escape(view.error().message) + "</p>");
    }
    if (wants_json(request)) {
      Json body = approvals::approval_json(view->record, view->state, false);
      body["link"] = Json{{"level", view->claims.level},
                      {"approver", view->claims.approver},
                      {"action", std::string(approvals::to_string(view->claims.action))},
                      {"expires_at", format_iso8601(view->claims.expires_at)},
                      {"closed", view->closed.empty() ? Json(nullptr) : Json(view->closed)}};
      return json_response(200, body);
    }
    const auto& subject = view->state.subject;
    std::string html = "<p>" + html_escape(view->claims.approver) + ", level <b>" + html_escape(view->claims.level) +
                       "</b></p><pre>" + html_escape(subject.text) + "</pre>";
    if (!view->closed.empty()) {
      html += "<p><b>" + html_escape(view->closed) + ".</b></p>";
      return html_page(409, subject.title.empty() ? "Approval" : subject.title, html);
    }
    // A GET never decides: mail scanners open links. The button posts the decision.
    auto action = view->claims.action;
    if (action != approvals::LinkAction::open) {
      html += "<form method=\"post\">";
      if (action != approvals::LinkAction::approve) {
        html += "<p><label>Reason<br><textarea name=\"comment\" rows=\"4\" cols=\"60\" required></textarea></label></p>";
      } else {
        html += "<p><label>Comment (optional)<br><textarea name=\"comment\" rows=\"2\" cols=\"60\"></textarea></label></p>";
      }
      html += "<button type=\"submit\">" + html_escape(std::string(approvals::to_string(action))) + "</button></form>";
    }
    return html_page(200, subject.title.empty() ? "Approval" : subject.title, html);
  };
  router.add("GET", "/approvals/link/{token}", "A signed approval link's page", link_page);
  router.add("POST", "/approvals/link/{token}", "Decide through a signed approval link", [this](Request& request) -> Response {
    std::string comment;
    std::optional<std::string> text;
    if (request.content_type() == "application/json") {
      auto body = json_body(request, true);
      if (!body.ok()) return error_response(body.error(), request.request_id);
      comment = body->value("comment", std::string());
      if (body->contains("text") && (*body)["text"].is_string()) text = (*body)["text"].get<std::string>();
    } else {
      auto fields = form_fields(request.body);
      comment = fields["comment"];
      if (fields.count("text") && !fields["text"].empty()) text = fields["text"];
    }
    auto decided = desk->decide_by_link(request.params["token"], comment, text, Clock::now(),
                                        approvals::Origin{"", request.remote_address, request.request_id});
    if (!decided.ok()) {
      if (wants_json(request)) return error_response(decided.error(), request.request_id);
      return html_page(http_status_for(decided.error()), "This link cannot be used",
                       "<p>" + html_escape(decided.error().message) + "</p>");
    }
    if (decided->outcome.status == approvals::DecideStatus::recorded) engine->wake();
    if (wants_json(request)) return decided_response(*decided, request.request_id);
    int status = approvals::http_status(decided->outcome.status);
    bool recorded = decided->outcome.status == approvals::DecideStatus::recorded;
    std::string message = recorded ? "Your decision was recorded. Thank you."
                                   : decided->outcome.status == approvals::DecideStatus::duplicate
                                         ? "This link was already used; your first decision stands."
                                         : decided->outcome.message;
    return html_page(status, recorded ? "Recorded" : "Not recorded", "<p>" + html_escape(message) + "</p>");
  });
}

}  // namespace herald::server
