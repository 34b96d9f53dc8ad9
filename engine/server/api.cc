// The REST API under /api/v1: workflows, runs, events, secrets, tokens, users, audit. Every
// route authenticates the bearer token, applies the per-token rate limit, checks one Permission
// for the token's role, and only ever reads or writes objects of the token's workspace (another
// workspace's objects are 404, exactly like missing ones).
#include <charconv>
#include <mutex>
#include <set>

#include <spdlog/spdlog.h>

#include "engine/common/duration.h"
#include "engine/common/time.h"
#include "engine/server/internal/service_impl.h"
#include "engine/server/openapi.h"
#include "engine/security/tokens.h"

namespace herald::server {

using Clock = std::chrono::system_clock;
using security::Permission;

Json optional_time(const std::optional<store::TimePoint>& at) {
  return at ? Json(format_iso8601(*at)) : Json(nullptr);
}

Result<int> limit_of(const Request& request) {
  auto it = request.query.find("limit");
  if (it == request.query.end()) return 50;
  int value = 0;
  auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), value);
  if (ec != std::errc() || end != it->second.data() + it->second.size() || value < 1 || value > 1000) {
    return make_error(ErrorCode::invalid_argument, "limit must be a number from 1 to 1000");
  }
  return value;
}

std::optional<std::string> query_value(const Request& request, const std::string& name) {
  auto it = request.query.find(name);
  if (it == request.query.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

// The body as a JSON object; an empty body is an empty object when `empty_ok`.
Result<Json> json_body(const Request& request, bool empty_ok) {
  if (request.body.empty() && empty_ok) return Json::object();
  std::string type = request.content_type();
  if (type != "application/json") {
    return http_error(ErrorCode::invalid_argument, 415,
                      "expected Content-Type: application/json" + (type.empty() ? std::string() : ", got " + type));
  }
  try {
    Json body = Json::parse(request.body);
    if (!body.is_object()) return make_error(ErrorCode::invalid_argument, "the body must be a JSON object");
    return body;
  } catch (const Json::parse_error& e) {
    // The parser's message ends with the text it last read ("; last read: '...'"), which may be a
    // secret's value (PUT /api/v1/secrets/{name}): the position is enough to find the mistake.
    std::string message = e.what();
    message = message.substr(0, message.find("; last read:"));
    return make_error(ErrorCode::invalid_argument, "malformed JSON: " + message);
  }
}

Result<std::string> string_field(const Json& body, const std::string& name, bool required) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) {
    if (required) return make_error(ErrorCode::invalid_argument, "`" + name + "` is required");
    return std::string();
  }
  if (!it->is_string()) return make_error(ErrorCode::invalid_argument, "`" + name + "` must be a string");
  return it->get<std::string>();
}

Response page(Json items, const std::optional<std::string>& next_cursor) {
  return json_response(200, {{"items", std::move(items)},
                             {"next_cursor", next_cursor ? Json(*next_cursor) : Json(nullptr)}});
}

// One page of a list the store gives whole because it stays short (a workflow's versions, the
// members, tokens and secrets of a workspace), in the list's order: `limit` items after the one
// whose `key` field the cursor names. `descending`: the list is ordered by a number, highest
// first (versions); otherwise by text, lowest first.
Result<Response> page_of(Json items, const Request& request, const std::string& key,
                         bool descending) {
  auto limit = limit_of(request);
  if (!limit.ok()) return limit.error();
  size_t start = 0;
  if (auto cursor = query_value(request, "cursor")) {
    Json after = *cursor;
    if (descending) {
      int64_t number = 0;
      auto [end, ec] = std::from_chars(cursor->data(), cursor->data() + cursor->size(), number);
      if (ec != std::errc() || end != cursor->data() + cursor->size()) {
        return make_error(ErrorCode::invalid_argument, "cursor must be a number here");
      }
      after = number;
    }
    while (start < items.size() &&
           (descending ? items[start][key] >= after : items[start][key] <= after)) {
      ++start;
    }
  }
  Json out = Json::array();
  for (size_t k = start; k < items.size() && out.size() < static_cast<size_t>(*limit); ++k) {
    out.push_back(std::move(items[k]));
  }
  std::optional<std::string> next;
  if (start + out.size() < items.size()) {
    const Json& last = out.back()[key];
    next = last.is_string() ? last.get<std::string>() : last.dump();
  }
  return page(std::move(out), next);
}

namespace {

constexpr std::chrono::seconds kTokenCacheTtl{5};

Json step_json(const store::StepRecord& step) {
  Json out = {{"step", step.step_id},
              {"state", std::string(store::to_string(step.state))},
              {"attempts", step.attempt},
              {"input", step.input},
              {"output", step.output},
              {"error", step.error},
              {"started_at", optional_time(step.started_at)},
              {"finished_at", optional_time(step.finished_at)}};
  if (step.item >= 0) out["item"] = step.item;
  if (step.on_error) out["on_error"] = true;
  return out;
}

Json attempt_json(const store::AttemptRecord& attempt) {
  Json out = {{"step", attempt.step_id},
              {"attempt", attempt.attempt},
              {"state", std::string(store::to_string(attempt.state))},
              {"input", attempt.input},
              {"output", attempt.output},
              {"error", attempt.error},
              {"started_at", format_iso8601(attempt.started_at)},
              {"finished_at", optional_time(attempt.finished_at)}};
  if (attempt.item >= 0) out["item"] = attempt.item;
  if (!attempt.logs.is_null()) out["logs"] = attempt.logs;
  return out;
}

Json version_json(const store::WorkflowVersion& version, bool with_source) {
  Json out = {{"id", version.id},
              {"version", version.version},
              {"source_hash", version.source_hash},
              {"created_at", format_iso8601(version.created_at)}};
  if (with_source) out["source"] = version.source;
  return out;
}

Json audit_json(const store::AuditRecord& record) {
  return {{"id", record.id},
          {"at", format_iso8601(record.at)},
          {"actor", record.actor},
          {"action", record.action},
          {"object_type", record.object_type},
          {"object_id", record.object_id},
          {"address", record.address},
          {"request_id", record.request_id},
          {"details", record.details}};
}

// Users are global, but a workspace sees only its own members. Through the API, an admin adds a
// new user or changes a member's role; a user who exists and is not a member could be another
// workspace's, whose name and email the listing would then show here. Only a user this workspace
// has had before (its audit log says so) may come back; an operator adds anyone with
// `herald user add`. The refusal says only that the id is taken, as creating it would.
Status check_user_may_join(store::Store& store, const std::string& workspace_id,
                           const std::string& user_id) {
  auto user = store.get_user(user_id);
  if (!user.ok()) return user.error().code == ErrorCode::not_found ? Status() : Status(user.error());
  auto member = store.get_membership(workspace_id, user_id);
  if (member.ok()) return {};
  if (member.error().code != ErrorCode::not_found) return member.error();
  store::AuditFilter had;
  had.workspace_id = workspace_id;
  had.action = "user.put";
  had.object_id = user_id;
  had.limit = 1;
  auto entries = store.list_audit(had);
  if (!entries.ok()) return entries.error();
  if (!entries->empty()) return {};
  return make_error(ErrorCode::already_exists,
                    "the user id '" + user_id +
                        "' is taken; choose another (an operator can add an existing user to this "
                        "workspace with `herald user add`)");
}

}  // namespace

Json run_json(const store::RunRecord& run) {
  return {{"id", run.id},
          {"workflow", run.workflow_id},
          {"workflow_version_id", run.workflow_version_id},
          {"state", std::string(store::to_string(run.state))},
          {"inputs", run.inputs},
          {"trigger", run.trigger},
          {"error", run.error},
          {"created_at", format_iso8601(run.created_at)},
          {"started_at", optional_time(run.started_at)},
          {"finished_at", optional_time(run.finished_at)},
          {"updated_at", format_iso8601(run.updated_at)}};
}

Json deployed_json(const store::DeployedWorkflow& workflow) {
  return {{"id", workflow.workflow_id},
          {"version", workflow.version},
          {"version_id", workflow.version_id},
          {"enabled", workflow.enabled},
          {"updated_by", workflow.updated_by},
          {"created_at", format_iso8601(workflow.created_at)},
          {"updated_at", format_iso8601(workflow.updated_at)}};
}

// ---- authentication ---------------------------------------------------------------------------

Result<Actor> Service::Impl::authenticate(const Request& request) {
  const std::string* header = request.header("authorization");
  if (header == nullptr || header->size() < 8 || !(header->compare(0, 7, "Bearer ") == 0 || header->compare(0, 7, "bearer ") == 0)) {
    return make_error(ErrorCode::unauthenticated, "send an API token as 'Authorization: Bearer TOKEN'");
  }
  std::string presented = header->substr(7);
  auto parts = security::parse_token(presented);
  if (!parts.ok()) return parts.error();
  std::string token_id(parts->token_id);
  auto now = std::chrono::steady_clock::now();
  std::optional<store::TokenRecord> record;
  {
    std::lock_guard lock(auth_mu);
    if (auto it = tokens.find(token_id); it != tokens.end() && now - it->second.fetched < kTokenCacheTtl) {
      record = it->second.record;
    }
  }
  if (!record) {
    auto fetched = store->get_token(token_id);
    if (!fetched.ok()) {
      if (fetched.error().code == ErrorCode::not_found) {
        return make_error(ErrorCode::unauthenticated, "the API token is not valid");
      }
      return fetched.error();
    }
    record = *fetched;
    std::lock_guard lock(auth_mu);
    if (tokens.size() > 10000) tokens.clear();
    tokens[token_id] = {*record, now};
    // Last use is kept to the minute-ish: a write per cache refresh, not per request.
    (void)store->touch_token(token_id, Clock::now());
  }
  if (!security::verify_token(presented, record->hash)) {
    return make_error(ErrorCode::unauthenticated, "the API token is not valid");
  }
  if (record->revoked_at) return make_error(ErrorCode::unauthenticated, "the API token was revoked");
  if (record->expires_at && *record->expires_at <= Clock::now()) {
    return make_error(ErrorCode::unauthenticated, "the API token expired");
  }
  auto role = security::parse_role(record->role);
  if (!role.ok()) return make_error(ErrorCode::internal, "token " + token_id + " has an unknown role");
  Actor actor;
  actor.workspace_id = record->workspace_id;
  actor.user_id = record->user_id;
  actor.role = *role;
  actor.token_id = token_id;
  actor.address = request.remote_address;
  actor.request_id = request.request_id;
  return actor;
}

void Service::Impl::forget_token(const std::string& token_id) {
  std::lock_guard lock(auth_mu);
  tokens.erase(token_id);
}

// ---- routes -----------------------------------------------------------------------------------

Handler Service::Impl::guarded(Permission permission, RouteBody body) {
  return [this, permission, body = std::move(body)](Request& request) -> Response {
    auto actor = authenticate(request);
    if (!actor.ok()) return error_response(actor.error(), request.request_id);
    if (options.api_rate_per_second > 0) {
      auto now = std::chrono::steady_clock::now();
      std::lock_guard lock(rate_mu);
      Bucket& bucket = buckets[actor->token_id];
      if (bucket.at == std::chrono::steady_clock::time_point{}) bucket = {options.api_burst, now};
      double elapsed = std::chrono::duration<double>(now - bucket.at).count();
      bucket.level = std::min(options.api_burst, bucket.level + elapsed * options.api_rate_per_second);
      bucket.at = now;
      if (bucket.level < 1.0) {
        double wait = (1.0 - bucket.level) / options.api_rate_per_second;
        Error error = make_error(ErrorCode::resource_exhausted, "too many requests for this token; slow down");
        // error_response sends it as Retry-After (whole seconds, rounded up).
        error.retry_after = std::chrono::milliseconds(static_cast<int64_t>(wait * 1000) + 1);
        return error_response(error, request.request_id);
      }
      bucket.level -= 1.0;
    }
    if (!security::allows(actor->role, permission)) {
      return error_response(make_error(ErrorCode::permission_denied,
                                       "the role " + std::string(security::to_string(actor->role)) +
                                           " may not do this (needs " +
                                           std::string(security::to_string(permission)) + ")"),
                            request.request_id);
    }
    auto result = body(request, *actor);
    if (!result.ok()) return error_response(result.error(), request.request_id);
    return std::move(result).value();
  };
}

void Service::Impl::add_route(const std::string& method, const std::string& pattern,
                              const std::string& summary, Permission permission, RouteBody body) {
  router.add(method, pattern, summary, guarded(permission, std::move(body)));
}

void Service::Impl::add_api_routes() {
  auto add = [this](const std::string& method, const std::string& pattern, const std::string& summary,
                    Permission permission, RouteBody body) {
    add_route(method, pattern, summary, permission, std::move(body));
  };

  router.add("GET", "/api/v1/openapi.json", "This API's OpenAPI 3 document", [](Request&) {
    Response response;
    response.body = openapi_document();
    return response;
  });

  add("GET", "/api/v1/me", "The caller: workspace, user, role and permissions", Permission::me_read,
      [](Request&, const Actor& actor) -> Result<Response> {
        Json permissions = Json::array();
        for (const auto& rule : security::kPermissionTable) {
          if (security::allows(actor.role, rule.permission)) permissions.push_back(std::string(rule.name));
        }
        return json_response(200, {{"workspace", actor.workspace_id},
                                   {"user", actor.user_id},
                                   {"role", std::string(security::to_string(actor.role))},
                                   {"token", actor.token_id},
                                   {"permissions", permissions}});
      });

  // ---- workflows ----
  auto read_source = [](const Request& request) -> Result<std::string> {
    std::string type = request.content_type();
    if (type != "application/yaml" && type != "application/x-yaml" && type != "text/yaml" &&
        type != "application/json") {
      return http_error(ErrorCode::invalid_argument, 415,
                        "send the workflow file with Content-Type: application/yaml or application/json" +
                            (type.empty() ? std::string() : " (got " + type + ")"));
    }
    if (request.body.empty()) return make_error(ErrorCode::invalid_argument, "the body is empty; send the workflow file");
    return request.body;
  };

  add("POST", "/api/v1/workflows/validate", "Validate a workflow file without deploying it",
      Permission::workflows_read, [this, read_source](Request& request, const Actor&) -> Result<Response> {
        auto source = read_source(request);
        if (!source.ok()) return source.error();
        auto parsed = parse(*source, "workflow");
        if (parsed.ok()) return json_response(200, {{"valid", true}, {"id", (*parsed)->id}, {"errors", Json::array()}});
        if (parsed.error().details.is_object() && parsed.error().details.contains("errors")) {
          return json_response(200, {{"valid", false}, {"errors", parsed.error().details["errors"]}});
        }
        return parsed.error();
      });

  add("POST", "/api/v1/workflows", "Deploy a workflow: each changed file is a new version",
      Permission::workflows_write, [this, read_source](Request& request, const Actor& actor) -> Result<Response> {
        auto source = read_source(request);
        if (!source.ok()) return source.error();
        auto parsed = parse(*source, "workflow");
        if (!parsed.ok()) return parsed.error();
        const auto& workflow = **parsed;
        // One deployment change at a time: the path check below and the write must not
        // interleave with another deploy's (two workflows could take one path), and the index
        // rebuilds must be swapped in the order of the changes they read.
        std::lock_guard deployments_lock(deployments_mu);
        // A webhook path belongs to one workflow of the workspace, enabled or not: a disabled
        // workflow gets its path back when it is enabled again.
        std::set<std::string> paths;
        for (const auto& trigger : workflow.triggers) {
          if (trigger.type == "webhook") paths.insert(trigger.config.value("path", ""));
        }
        if (!paths.empty()) {
          store::WorkflowFilter filter;
          filter.workspace_id = actor.workspace_id;
          filter.limit = 1000;
          while (true) {
            auto page = store->list_deployed(filter);
            if (!page.ok()) return page.error();
            for (const auto& other : *page) {
              if (other.workflow_id == workflow.id) continue;
              auto other_workflow = workflow_of(other.version_id);
              if (!other_workflow.ok()) continue;  // logged when the index was built
              for (const auto& trigger : (*other_workflow)->triggers) {
                if (trigger.type != "webhook") continue;
                std::string path = trigger.config.value("path", "");
                if (paths.count(path)) {
                  return make_error(ErrorCode::already_exists, "the webhook path '" + path +
                                                                   "' is already used by workflow '" +
                                                                   other.workflow_id + "'");
                }
              }
            }
            if (static_cast<int>(page->size()) < filter.limit) break;
            filter.after_id = page->back().workflow_id;
          }
        }
        auto deployed = store->deploy_workflow(actor.workspace_id, workflow.id, *source,
                                               actor.workspace_id + "/" + workflow.id + ".yaml", actor.name());
        if (!deployed.ok()) return deployed.error();
        audit(*store, actor, "workflow.deploy", "workflow", workflow.id,
              {{"version", deployed->version.version}, {"new_version", deployed->new_version}});
        if (auto status = rebuild_index(); !status.ok()) return status.error();
        Json body = deployed_json(deployed->workflow);
        body["new_version"] = deployed->new_version;
        body["name"] = workflow.name;
        return json_response(deployed->new_version ? 201 : 200, body);
      });

  add("GET", "/api/v1/workflows", "List deployed workflows (enabled, limit, cursor)", Permission::workflows_read,
      [this](Request& request, const Actor& actor) -> Result<Response> {
        store::WorkflowFilter filter;
        filter.workspace_id = actor.workspace_id;
        auto limit = limit_of(request);
        if (!limit.ok()) return limit.error();
        filter.limit = *limit;
        filter.after_id = query_value(request, "cursor");
        if (auto enabled = query_value(request, "enabled")) {
          if (*enabled != "true" && *enabled != "false") {
            return make_error(ErrorCode::invalid_argument, "enabled must be true or false");
          }
          filter.enabled = *enabled == "true";
        }
        auto list = store->list_deployed(filter);
        if (!list.ok()) return list.error();
        Json items = Json::array();
        for (const auto& item : *list) items.push_back(deployed_json(item));
        std::optional<std::string> next;
        if (static_cast<int>(list->size()) == filter.limit) next = list->back().workflow_id;
        return page(std::move(items), next);
      });

  add("GET", "/api/v1/workflows/{id}", "A deployed workflow with its current source", Permission::workflows_read,
      [this](Request& request, const Actor& actor) -> Result<Response> {
        auto deployed = store->get_deployed(actor.workspace_id, request.params["id"]);
        if (!deployed.ok()) return deployed.error();
        auto version = store->get_workflow_version(deployed->version_id);
        if (!version.ok()) return version.error();
        Json body = deployed_json(*deployed);
        body["source"] = version->source;
        if (auto workflow = workflow_of(deployed->version_id); workflow.ok()) {
          body["name"] = (*workflow)->name;
          body["description"] = (*workflow)->description;
          Json triggers = Json::array();
          for (const auto& trigger : (*workflow)->triggers) {
            triggers.push_back({{"type", trigger.type}, {"config", trigger.config}});
          }
          body["triggers"] = triggers;
        }
        return json_response(200, body);
      });

  add("GET", "/api/v1/workflows/{id}/versions", "Every version of a workflow, newest first",
      Permission::workflows_read, [this](Request& request, const Actor& actor) -> Result<Response> {
        auto versions = store->list_workflow_versions(actor.workspace_id, request.params["id"]);
        if (!versions.ok()) return versions.error();
        if (versions->empty()) return make_error(ErrorCode::not_found, "no workflow '" + request.params["id"] + "'");
        Json items = Json::array();
        for (const auto& version : *versions) items.push_back(version_json(version, false));
        return page_of(std::move(items), request, "version", /*descending=*/true);
      });

  auto set_enabled = [this](bool enabled) {
    return [this, enabled](Request& request, const Actor& actor) -> Result<Response> {
      const std::string& id = request.params["id"];
      std::lock_guard deployments_lock(deployments_mu);
      if (auto status = store->set_workflow_enabled(actor.workspace_id, id, enabled, actor.name()); !status.ok()) {
        return status.error();
      }
      audit(*store, actor, enabled ? "workflow.enable" : "workflow.disable", "workflow", id);
      if (auto status = rebuild_index(); !status.ok()) return status.error();
      auto deployed = store->get_deployed(actor.workspace_id, id);
      if (!deployed.ok()) return deployed.error();
      return json_response(200, deployed_json(*deployed));
    };
  };
  add("POST", "/api/v1/workflows/{id}/enable", "Enable a workflow's triggers", Permission::workflows_write,
      set_enabled(true));
  add("POST", "/api/v1/workflows/{id}/disable", "Disable a workflow's triggers", Permission::workflows_write,
      set_enabled(false));

  add("DELETE", "/api/v1/workflows/{id}", "Delete a workflow (its runs and versions stay)",
      Permission::workflows_write, [this](Request& request, const Actor& actor) -> Result<Response> {
        const std::string& id = request.params["id"];
        std::lock_guard deployments_lock(deployments_mu);
        if (auto status = store->delete_deployed(actor.workspace_id, id); !status.ok()) return status.error();
        audit(*store, actor, "workflow.delete", "workflow", id);
        if (auto status = rebuild_index(); !status.ok()) return status.error();
        Response response;
        response.status = 204;
        return response;
      });

  add("POST", "/api/v1/workflows/{id}/runs", "Start a run (manual trigger) with inputs", Permission::runs_start,
      [this](Request& request, const Actor& actor) -> Result<Response> {
        auto body = json_body(request, true);
        if (!body.ok()) return body.error();
        Json inputs = body->value("inputs", Json::object());
        if (!inputs.is_object()) return make_error(ErrorCode::invalid_argument, "`inputs` must be an object");
        auto deployed = store->get_deployed(actor.workspace_id, request.params["id"]);
        if (!deployed.ok()) return deployed.error();
        if (!deployed->enabled) {
          return make_error(ErrorCode::failed_precondition, "workflow '" + deployed->workflow_id + "' is disabled");
        }
        runtime::RunRequest run_request;
        run_request.workspace_id = actor.workspace_id;
        run_request.version_id = deployed->version_id;
        run_request.inputs = std::move(inputs);
        run_request.trigger = {{"type", "manual"}, {"by", actor.name()}};
        auto run_id = engine->start_version(std::move(run_request));
        if (!run_id.ok()) return run_id.error();
        audit(*store, actor, "run.start", "run", *run_id, {{"workflow", deployed->workflow_id}});
        auto run = store->get_run(*run_id);
        if (!run.ok()) return run.error();
        return json_response(201, run_json(*run));
      });

  // ---- runs ----
  add("GET", "/api/v1/runs", "List runs (workflow, state, limit, cursor), newest first", Permission::runs_read,
      [this](Request& request, const Actor& actor) -> Result<Response> {
        store::RunFilter filter;
        filter.workspace_id = actor.workspace_id;
        auto limit = limit_of(request);
        if (!limit.ok()) return limit.error();
        filter.limit = *limit;
        filter.workflow_id = query_value(request, "workflow");
        filter.before_id = query_value(request, "cursor");
        if (auto state = query_value(request, "state")) {
          auto parsed_state = store::parse_run_state(*state);
          if (!parsed_state) {
            return make_error(ErrorCode::invalid_argument,
                              "state must be queued, running, waiting, succeeded, failed or cancelled");
          }
          filter.state = parsed_state;
        }
        auto runs = store->list_runs(filter);
        if (!runs.ok()) return runs.error();
        Json items = Json::array();
        for (const auto& run : *runs) items.push_back(run_json(run));
        std::optional<std::string> next;
        if (static_cast<int>(runs->size()) == filter.limit) next = runs->back().id;
        return page(std::move(items), next);
      });

  auto run_of = [this](const Actor& actor, const std::string& id) -> Result<store::RunRecord> {
    auto run = store->get_run(id);
    if (!run.ok() || run->workspace_id != actor.workspace_id) {
      if (!run.ok() && run.error().code != ErrorCode::not_found) return run.error();
      return make_error(ErrorCode::not_found, "no run '" + id + "'");
    }
    return run;
  };

  add("GET", "/api/v1/runs/{id}", "A run with its steps and timeline", Permission::runs_read,
      [this, run_of](Request& request, const Actor& actor) -> Result<Response> {
        auto run = run_of(actor, request.params["id"]);
        if (!run.ok()) return run.error();
        auto steps = store->get_steps(run->id);
        if (!steps.ok()) return steps.error();
        auto attempts = store->get_attempts(run->id);
        if (!attempts.ok()) return attempts.error();
        Json body = run_json(*run);
        body["steps"] = Json::array();
        for (const auto& step : *steps) body["steps"].push_back(step_json(step));
        body["timeline"] = Json::array();
        for (const auto& attempt : *attempts) body["timeline"].push_back(attempt_json(attempt));
        return json_response(200, body);
      });

  add("POST", "/api/v1/runs/{id}/cancel", "Cancel a run", Permission::runs_cancel,
      [this, run_of](Request& request, const Actor& actor) -> Result<Response> {
        auto run = run_of(actor, request.params["id"]);
        if (!run.ok()) return run.error();
        if (auto status = engine->cancel_run(run->id); !status.ok()) return status.error();
        audit(*store, actor, "run.cancel", "run", run->id);
        auto now = store->get_run(run->id);
        if (!now.ok()) return now.error();
        return json_response(202, run_json(*now));
      });

  add("POST", "/api/v1/runs/{id}/retry", "Retry a failed run from its failed step", Permission::runs_start,
      [this, run_of](Request& request, const Actor& actor) -> Result<Response> {
        auto run = run_of(actor, request.params["id"]);
        if (!run.ok()) return run.error();
        {
          std::lock_guard lock(retrying_mu);
          retrying.insert(run->id);
        }
        // The engine announces the retried run as queued from within retry_run (on_progress
        // takes the id out of `retrying` then); a refused retry announces nothing.
        Status status = engine->retry_run(run->id);
        {
          std::lock_guard lock(retrying_mu);
          retrying.erase(run->id);
        }
        if (!status.ok()) return status.error();
        audit(*store, actor, "run.retry", "run", run->id);
        auto now = store->get_run(run->id);
        if (!now.ok()) return now.error();
        return json_response(202, run_json(*now));
      });

  // ---- events ----
  add("POST", "/api/v1/events", "Emit an event; event triggers may start workflows", Permission::events_emit,
      [this](Request& request, const Actor& actor) -> Result<Response> {
        auto body = json_body(request);
        if (!body.ok()) return body.error();
        auto name = string_field(*body, "name", true);
        if (!name.ok()) return name.error();
        if (name->empty() || name->size() > 200 || name->rfind("run.", 0) == 0) {
          return make_error(ErrorCode::invalid_argument,
                            "`name` must be 1 to 200 characters and not start with run. (Herald's own events)");
        }
        Json payload = body->value("payload", Json::object());
        store::Commit commit;
        store::EventRecord event;
        event.workspace_id = actor.workspace_id;
        event.name = *name;
        event.payload = payload;
        event.source = "api:" + actor.token_id;
        event.created_at = Clock::now();
        commit.add_events.push_back(event);
        if (auto status = store->commit(commit); !status.ok()) return status.error();
        audit(*store, actor, "event.emit", "event", *name);
        wake_dispatcher();
        return json_response(202, {{"name", *name}, {"accepted", true}});
      });

  // ---- secrets ----
  add("GET", "/api/v1/secrets", "Secret names (never values; limit, cursor)",
      Permission::secrets_read, [this](Request& request, const Actor& actor) -> Result<Response> {
        auto list = store->list_secrets(actor.workspace_id);
        if (!list.ok()) return list.error();
        Json items = Json::array();
        for (const auto& secret : *list) {
          items.push_back({{"name", secret.name},
                           {"updated_by", secret.updated_by},
                           {"created_at", format_iso8601(secret.created_at)},
                           {"updated_at", format_iso8601(secret.updated_at)}});
        }
        return page_of(std::move(items), request, "name", /*descending=*/false);
      });

  add("PUT", "/api/v1/secrets/{name}", "Set a secret (body: {\"value\": ...})", Permission::secrets_write,
      [this](Request& request, const Actor& actor) -> Result<Response> {
        if (!box) return make_error(ErrorCode::failed_precondition, "secrets are unavailable: " + box_error);
        auto body = json_body(request);
        if (!body.ok()) return body.error();
        auto value = string_field(*body, "value", true);
        if (!value.ok()) return value.error();
        const std::string& name = request.params["name"];
        if (auto status = set_secret(*store, *box, actor.workspace_id, name, *value, actor); !status.ok()) {
          return status.error();
        }
        forget_secrets(actor.workspace_id);
        Response response;
        response.status = 204;
        return response;
      });

  add("DELETE", "/api/v1/secrets/{name}", "Delete a secret", Permission::secrets_write,
      [this](Request& request, const Actor& actor) -> Result<Response> {
        if (auto status = delete_secret(*store, actor.workspace_id, request.params["name"], actor); !status.ok()) {
          return status.error();
        }
        forget_secrets(actor.workspace_id);
        Response response;
        response.status = 204;
        return response;
      });

  // ---- tokens ----
  add("GET", "/api/v1/tokens",
      "API tokens of the workspace (never the tokens themselves; limit, cursor)",
      Permission::tokens_manage, [this](Request& request, const Actor& actor) -> Result<Response> {
        auto list = store->list_tokens(actor.workspace_id);
        if (!list.ok()) return list.error();
        Json items = Json::array();
        for (const auto& token : *list) items.push_back(token_json(token));
        return page_of(std::move(items), request, "id", /*descending=*/false);
      });

  add("POST", "/api/v1/tokens", "Create a token (shown once)", Permission::tokens_manage,
      [this](Request& request, const Actor& actor) -> Result<Response> {
        auto body = json_body(request);
        if (!body.ok()) return body.error();
        auto user = string_field(*body, "user", true);
        if (!user.ok()) return user.error();
        auto role_text = string_field(*body, "role", false);
        if (!role_text.ok()) return role_text.error();
        std::optional<security::Role> role;
        if (!role_text->empty()) {
          auto parsed_role = security::parse_role(*role_text);
          if (!parsed_role.ok()) return parsed_role.error();
          role = *parsed_role;
        }
        auto name = string_field(*body, "name", false);
        if (!name.ok()) return name.error();
        std::optional<store::TimePoint> expires;
        auto expires_in = string_field(*body, "expires_in", false);
        if (!expires_in.ok()) return expires_in.error();
        if (!expires_in->empty()) {
          auto duration = parse_duration(*expires_in);
          if (!duration.ok()) return make_error(ErrorCode::invalid_argument, "expires_in: " + duration.error().message);
          expires = Clock::now() + *duration;
        }
        auto created = create_token(*store, actor.workspace_id, *user, role, *name, expires, actor);
        if (!created.ok()) return created.error();
        Json out = token_json(created->record);
        out["token"] = created->token;
        return json_response(201, out);
      });

  add("DELETE", "/api/v1/tokens/{id}", "Revoke a token", Permission::tokens_manage,
      [this](Request& request, const Actor& actor) -> Result<Response> {
        const std::string& id = request.params["id"];
        if (auto status = revoke_token(*store, actor.workspace_id, id, actor); !status.ok()) return status.error();
        forget_token(id);
        Response response;
        response.status = 204;
        return response;
      });

  // ---- users ----
  add("GET", "/api/v1/users", "Members of the workspace and their roles (limit, cursor)",
      Permission::users_read, [this](Request& request, const Actor& actor) -> Result<Response> {
        auto list = store->list_memberships(actor.workspace_id);
        if (!list.ok()) return list.error();
        Json items = Json::array();
        for (const auto& member : *list) {
          Json item = {{"user", member.user_id}, {"role", member.role}, {"since", format_iso8601(member.created_at)}};
          if (auto user = store->get_user(member.user_id); user.ok()) {
            item["name"] = user->name;
            item["email"] = user->email;
          }
          items.push_back(std::move(item));
        }
        return page_of(std::move(items), request, "user", /*descending=*/false);
      });

  add("PUT", "/api/v1/users/{id}", "Add a member or change their role (body: role, name, email)",
      Permission::users_manage, [this](Request& request, const Actor& actor) -> Result<Response> {
        auto body = json_body(request);
        if (!body.ok()) return body.error();
        auto role_text = string_field(*body, "role", true);
        if (!role_text.ok()) return role_text.error();
        auto role = security::parse_role(*role_text);
        if (!role.ok()) return role.error();
        auto name = string_field(*body, "name", false);
        if (!name.ok()) return name.error();
        auto email = string_field(*body, "email", false);
        if (!email.ok()) return email.error();
        if (auto status = check_user_may_join(*store, actor.workspace_id, request.params["id"]); !status.ok()) {
          return status.error();
        }
        auto member = put_member(*store, actor.workspace_id, request.params["id"], *role, *name, *email, actor);
        if (!member.ok()) return member.error();
        {
          std::lock_guard lock(auth_mu);
          tokens.clear();  // a demotion revoked the member's tokens above their new role
        }
        return json_response(200, {{"user", member->user_id}, {"role", member->role}});
      });

  add("DELETE", "/api/v1/users/{id}", "Remove a member (and revoke their tokens)", Permission::users_manage,
      [this](Request& request, const Actor& actor) -> Result<Response> {
        const std::string& id = request.params["id"];
        if (id == actor.user_id) {
          return make_error(ErrorCode::failed_precondition, "you cannot remove yourself from the workspace");
        }
        if (auto status = remove_member(*store, actor.workspace_id, id, actor); !status.ok()) return status.error();
        {
          std::lock_guard lock(auth_mu);
          tokens.clear();  // the member's tokens were revoked
        }
        Response response;
        response.status = 204;
        return response;
      });

  // ---- audit ----
  add("GET", "/api/v1/audit", "The audit log, newest first (action, actor, object, limit, cursor)",
      Permission::audit_read, [this](Request& request, const Actor& actor) -> Result<Response> {
        store::AuditFilter filter;
        filter.workspace_id = actor.workspace_id;
        auto limit = limit_of(request);
        if (!limit.ok()) return limit.error();
        filter.limit = *limit;
        filter.action = query_value(request, "action");
        filter.actor = query_value(request, "actor");
        filter.object_id = query_value(request, "object");
        if (auto cursor = query_value(request, "cursor")) {
          int64_t id = 0;
          auto [end, ec] = std::from_chars(cursor->data(), cursor->data() + cursor->size(), id);
          if (ec != std::errc() || end != cursor->data() + cursor->size()) {
            return make_error(ErrorCode::invalid_argument, "cursor must be an audit entry id");
          }
          filter.before_id = id;
        }
        auto list = store->list_audit(filter);
        if (!list.ok()) return list.error();
        Json items = Json::array();
        for (const auto& record : *list) items.push_back(audit_json(record));
        std::optional<std::string> next;
        if (static_cast<int>(list->size()) == filter.limit) next = std::to_string(list->back().id);
        return page(std::move(items), next);
      });
}

}  // namespace herald::server
