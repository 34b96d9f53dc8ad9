#include "engine/approvals/desk.h"

#include <algorithm>
#include <set>

#include "engine/common/time.h"
#include "engine/expr/evaluator.h"
#include "engine/security/roles.h"

namespace herald::approvals {

namespace {

using Clock = std::chrono::system_clock;

// How often a decision re-reads and tries again when other decisions keep getting there first.
constexpr int kWriteAttempts = 8;

Json envelope_json(const ApprovalState& state, const std::vector<Event>& outbox) {
  Json events = Json::array();
  for (const auto& event : outbox) events.push_back(event.to_json());
  return Json{{"state", state.to_json()}, {"outbox", std::move(events)}};
}

// One audit entry of `origin`'s, on one object of the workspace.
store::AuditRecord audit_entry(const std::string& workspace_id, const Origin& origin,
                               std::string action, std::string object_type, std::string object_id,
                               Json details, TimePoint at) {
  store::AuditRecord entry;
  entry.workspace_id = workspace_id;
  entry.actor = origin.actor;
  entry.action = std::move(action);
  entry.object_type = std::move(object_type);
  entry.object_id = std::move(object_id);
  entry.address = origin.address;
  entry.request_id = origin.request_id;
  entry.details = std::move(details);
  entry.at = at;
  return entry;
}

// The audit entries a change's events stand for.
std::vector<store::AuditRecord> audit_for(const store::ApprovalRecord& record,
                                          const std::vector<Event>& events, const Origin& origin,
                                          TimePoint now) {
  std::vector<store::AuditRecord> out;
  for (const auto& event : events) {
    Json details = Json::object();
    for (const char* key :
         {"level", "group", "status", "decision", "closed_by", "round", "eligible", "notes",
          "deadline", "reminder", "of", "late", "pending", "approvers", "mode", "error"}) {
      if (event.data.contains(key)) details[key] = event.data[key];
    }
    out.push_back(audit_entry(record.workspace_id, origin, event.type, "approval", record.id,
                              std::move(details), now));
  }
  return out;
}

// Times a `deadline: { at: }` expression may give: Unix seconds, or ISO-8601 text.
Result<TimePoint> time_of(const Json& value, const Expression& expression) {
  if (value.is_number()) {
    double seconds = value.get<double>();
    return TimePoint(std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
  }
  if (value.is_string()) {
    auto parsed = parse_iso8601(value.get<std::string>());
    if (parsed.ok()) return parsed;
  }
  return make_error(ErrorCode::invalid_argument,
                    expression.path + ": `" + expression.source +
                        "` must give a time (Unix seconds or ISO-8601 text), got " + value.dump());
}

// Evaluates an expression of the chain over `subject` in the sandbox of this thread.
Result<Json> evaluate_over_subject(const Expression& expression, const Subject& subject) {
  Json vars = Json{{"subject", subject.to_json()}};
  expr::Scope scope;
  scope.vars = &vars;
  // `subject` is a local of the chunk, so the expression reads like the docs write it.
  std::string chunk = "local subject = vars.subject\nreturn (" + expression.source + "\n)";
  auto value = expr::Evaluator::for_this_thread().run_script(chunk, scope);
  if (!value.ok()) {
    Error error = value.error();
    std::string where = expression.location.line > 0
                            ? std::to_string(expression.location.line) + ":" +
                                  std::to_string(expression.location.column) + ": "
                            : std::string();
    error.message = where + expression.path + ": " + error.message;
    return error;
  }
  return value;
}

bool finished_status(const std::string& status) {
  return status != "pending";
}

}  // namespace

Result<Envelope> read_envelope(const store::ApprovalRecord& record) {
  if (!record.state.is_object() || !record.state.contains("state")) {
    return make_error(ErrorCode::internal, "approval " + record.id + " has no stored state");
  }
  auto state = ApprovalState::from_json(record.state["state"]);
  if (!state.ok()) {
    Error error = state.error();
    error.message = "approval " + record.id + ": " + error.message;
    return error;
  }
  Envelope envelope{std::move(state).value(), {}};
  if (auto it = record.state.find("outbox"); it != record.state.end() && it->is_array()) {
    for (const auto& event : *it) {
      envelope.outbox.push_back(
          Event{event.value("type", std::string()), event.value("data", Json::object())});
    }
  }
  return envelope;
}

// ---- directory ------------------------------------------------------------------------------

Result<bool> StoreDirectory::user_exists(std::string_view user_id) const {
  if (workspace_id_.empty()) return true;
  auto member = store_.get_membership(workspace_id_, user_id);
  if (member.ok()) return true;
  if (member.error().code == ErrorCode::not_found) return false;
  return member.error();
}

Result<std::vector<std::string>> StoreDirectory::users_with_role(std::string_view role) const {
  std::vector<std::string> users;
  if (workspace_id_.empty()) return users;
  // Herald's own roles come from the memberships; any other name (legal, manager) is the group
  // of that name, so an agency can give people functional roles without new workspace roles.
  if (security::parse_role(role).ok()) {
    auto members = store_.list_memberships(workspace_id_);
    if (!members.ok()) return members.error();
    for (const auto& member : *members) {
      if (member.role == role) users.push_back(member.user_id);
    }
    return users;
  }
  auto group = group_members(role);
  if (!group.ok()) return group.error();
  if (group->has_value()) users = **group;
  return users;
}

Result<std::optional<std::vector<std::string>>> StoreDirectory::group_members(
    std::string_view group) const {
  if (workspace_id_.empty()) return std::optional<std::vector<std::string>>();
  auto record = store_.get_group(workspace_id_, group);
  if (!record.ok()) {
    if (record.error().code == ErrorCode::not_found)
      return std::optional<std::vector<std::string>>();
    return record.error();
  }
  // Only current members count: someone who left the workspace stays in a group until an admin
  // edits it, but can no longer approve.
  std::vector<std::string> members;
  for (const auto& user : record->members) {
    auto exists = user_exists(user);
    if (!exists.ok()) return exists.error();
    if (*exists) members.push_back(user);
  }
  return std::optional<std::vector<std::string>>(std::move(members));
}

Result<std::optional<std::string>> StoreDirectory::delegate_of(std::string_view user_id,
                                                               TimePoint at) const {
  auto delegation = store_.get_delegation(workspace_id_, user_id);
  if (!delegation.ok()) return delegation.error();
  if (!delegation->has_value()) return std::optional<std::string>();
  const auto& d = **delegation;
  if ((d.starts_at && *d.starts_at > at) || (d.ends_at && *d.ends_at <= at)) {
    return std::optional<std::string>();
  }
  return std::optional<std::string>(d.delegate_id);
}

Context lua_context(const Directory& directory) {
  Context context;
  context.directory = &directory;
  context.evaluate_when = [](const Level& level, const Subject& subject) -> Result<bool> {
    auto value = evaluate_over_subject(level.when, subject);
    if (!value.ok()) return value.error();
    return !(value->is_null() || (value->is_boolean() && !value->get<bool>()));
  };
  context.evaluate_deadline_at = [](const Level& level,
                                    const Subject& subject) -> Result<TimePoint> {
    auto value = evaluate_over_subject(level.deadline.at, subject);
    if (!value.ok()) return value.error();
    return time_of(*value, level.deadline.at);
  };
  return context;
}

// ---- desk -----------------------------------------------------------------------------------

Desk::Desk(store::Store& store, DeskOptions options)
    : store_(store), options_(std::move(options)) {}

Result<Desk::SavedPolicy> Desk::put_policy(std::string_view workspace_id, std::string_view name,
                                           std::string_view source, std::string_view file_name,
                                           const Origin& origin) {
  PolicyOutcome parsed = parse_policy(source, file_name);
  if (!parsed.ok()) {
    Json diagnostics = Json::array();
    for (const auto& d : parsed.diagnostics) diagnostics.push_back(d.to_json());
    std::string message = parsed.diagnostics.empty() ? "the policy is not valid"
                                                     : parsed.diagnostics.front().to_string();
    if (parsed.diagnostics.size() > 1) {
      message += " (and " + std::to_string(parsed.diagnostics.size() - 1) + " more)";
    }
    Error error = make_error(ErrorCode::invalid_argument, message);
    error.details = Json{{"errors", std::move(diagnostics)}};
    return error;
  }
  if (parsed.policy->name != name) {
    return make_error(ErrorCode::invalid_argument,
                      std::string(file_name) + ": the file names the policy '" +
                          parsed.policy->name + "', not '" + std::string(name) + "'");
  }
  auto previous = store_.get_approval_policy(workspace_id, name);
  if (!previous.ok() && previous.error().code != ErrorCode::not_found) return previous.error();
  store::ApprovalPolicyRecord record;
  record.workspace_id = std::string(workspace_id);
  record.name = std::string(name);
  record.description = parsed.policy->description;
  record.source = std::string(source);
  record.file_name = std::string(file_name);
  record.created_by = origin.actor;
  record.created_at = std::chrono::time_point_cast<std::chrono::milliseconds>(Clock::now());
  auto stored = store_.put_approval_policy(record);
  if (!stored.ok()) return stored.error();
  bool is_new = !previous.ok() || previous->version != stored->version;
  if (is_new) {
    (void)store_.append_audit(audit_entry(
        record.workspace_id, origin, "approval_policy.put", "approval_policy", record.name,
        Json{{"version", stored->version}, {"source_hash", stored->source_hash}},
        record.created_at));
  }
  return SavedPolicy{*stored, std::move(*parsed.policy), is_new};
}

Result<Desk::SavedPolicy> Desk::get_policy(std::string_view workspace_id, std::string_view name,
                                           std::optional<int> version) {
  auto record = store_.get_approval_policy(workspace_id, name, version);
  if (!record.ok()) {
    if (record.error().code == ErrorCode::not_found) {
      return make_error(ErrorCode::not_found,
                        "there is no approval policy '" + std::string(name) + "'" +
                            (version ? " version " + std::to_string(*version) : std::string()) +
                            " in this workspace");
    }
    return record.error();
  }
  PolicyOutcome parsed = parse_policy(record->source, record->file_name);
  if (!parsed.ok()) {
    return make_error(ErrorCode::internal,
                      "the stored policy '" + std::string(name) +
                          "' no longer parses: " + parsed.diagnostics.front().to_string());
  }
  return SavedPolicy{*record, std::move(*parsed.policy), false};
}

Result<store::ApprovalRecord> Desk::write(const store::ApprovalRecord* record,
                                          store::ApprovalRecord next, const ApprovalState& state,
                                          std::vector<Event> events, std::vector<Event> outbox,
                                          std::vector<store::AuditRecord> audit, bool wake,
                                          TimePoint now) {
  store::ApprovalWrite change;
  next.status = std::string(to_string(state.status));
  next.title = state.subject.title;
  next.submitter = state.submitter;
  next.policy_name = state.policy_name;
  next.policy_version = state.policy_version;
  next.due_at = due_at(state);
  next.updated_at = now;
  for (const auto& event : events) outbox.push_back(event);
  next.state = envelope_json(state, outbox);
  next.revision = record ? record->revision + 1 : 1;
  if (record) change.expected_revision = record->revision;
  for (const auto& waiting : awaiting(state)) {
    change.awaiting.push_back({waiting.principal, waiting.level});
  }
  for (const auto& event : events) {
    if (options_.wants_event && !options_.wants_event(next.workspace_id, event.type)) continue;
    if (next.workspace_id.empty()) continue;  // events belong to workspaces
    store::EventRecord stored;
    stored.workspace_id = next.workspace_id;
    stored.name = event.type;
    stored.payload = event.data;
    stored.source = "approval:" + next.id;
    stored.created_at = now;
    change.events.push_back(std::move(stored));
  }
  change.audit = std::move(audit);
  if (wake) {
    change.wake = store::TimerRecord{0, next.run_id, next.step_id, next.item, "rerun", now};
  }
  change.approval = next;
  auto status = store_.write_approval(change);
  if (!status.ok()) return status.error();
  return next;
}

Result<store::ApprovalRecord> Desk::open(const OpenRequest& request, TimePoint now) {
  auto existing = store_.find_step_approval(request.run_id, request.step_id, request.item);
  if (!existing.ok()) return existing.error();
  if (existing->has_value()) return **existing;

  StartRequest start_request;
  start_request.id = "ap_" + store::new_run_id();
  start_request.subject = request.subject;
  start_request.submitter = request.submitter;
  if (request.chain) {
    start_request.chain = *request.chain;
  } else {
    auto policy = get_policy(request.workspace_id, request.policy_name);
    if (!policy.ok()) return policy.error();
    start_request.chain = policy->policy.chain;
    start_request.policy_name = policy->record.name;
    start_request.policy_version = policy->record.version;
  }
  StoreDirectory directory(store_, request.workspace_id);
  Context context = lua_context(directory);
  auto started = start(start_request, now, context);
  if (!started.ok()) return started.error();

  store::ApprovalRecord record;
  record.id = start_request.id;
  record.workspace_id = request.workspace_id;
  record.run_id = request.run_id;
  record.step_id = request.step_id;
  record.item = request.item;
  record.created_at = now;
  Origin origin{"run:" + request.run_id, "", ""};
  auto audit = audit_for(record, started->events, origin, now);
  auto written = write(nullptr, record, started->state, std::move(started->events), {},
                       std::move(audit), false, now);
  if (!written.ok() && written.error().code == ErrorCode::already_exists) {
    // Opened by another attempt of the same step in the meantime: that one counts.
    auto again = store_.find_step_approval(request.run_id, request.step_id, request.item);
    if (again.ok() && again->has_value()) return **again;
  }
  return written;
}

Result<store::ApprovalRecord> Desk::run_deadlines(const store::ApprovalRecord& given,
                                                  TimePoint now) {
  store::ApprovalRecord record = given;
  for (int attempt = 0; attempt < kWriteAttempts; ++attempt) {
    auto envelope = read_envelope(record);
    if (!envelope.ok()) return envelope.error();
    StoreDirectory directory(store_, record.workspace_id);
    Context context = lua_context(directory);
    auto outcome = on_deadline(envelope->state, now, context);
    if (!outcome.ok()) return outcome.error();
    if (!outcome->state) return record;
    Origin origin{"system:deadline", "", ""};
    auto audit = audit_for(record, outcome->events, origin, now);
    auto written = write(&record, record, *outcome->state, std::move(outcome->events),
                         std::move(envelope->outbox), std::move(audit), false, now);
    if (written.ok() || written.error().code != ErrorCode::aborted) return written;
    auto fresh = store_.get_approval(record.workspace_id, record.id);
    if (!fresh.ok()) return fresh.error();
    record = std::move(fresh).value();
  }
  return make_error(ErrorCode::aborted, "approval " + given.id + " keeps changing; try again",
                    true);
}

Result<store::ApprovalRecord> Desk::clear_outbox(const store::ApprovalRecord& record,
                                                 TimePoint now) {
  auto envelope = read_envelope(record);
  if (!envelope.ok()) return envelope.error();
  if (envelope->outbox.empty()) return record;
  return write(&record, record, envelope->state, {}, {}, {}, false, now);
}

Result<Desk::Decided> Desk::decide(std::string_view workspace_id, std::string_view approval_id,
                                   const Actor& actor, const DecisionRequest& request,
                                   TimePoint now, const Origin& origin) {
  auto loaded = store_.get_approval(workspace_id, approval_id);
  if (!loaded.ok()) {
    if (loaded.error().code == ErrorCode::not_found) {
      return make_error(ErrorCode::not_found, "there is no approval '" + std::string(approval_id) +
                                                  "' in this workspace");
    }
    return loaded.error();
  }
  store::ApprovalRecord record = std::move(loaded).value();
  for (int attempt = 0; attempt < kWriteAttempts; ++attempt) {
    auto envelope = read_envelope(record);
    if (!envelope.ok()) return envelope.error();
    StoreDirectory directory(store_, record.workspace_id);
    Context context = lua_context(directory);
    auto outcome = approvals::decide(envelope->state, actor, request, now, context);
    if (!outcome.ok()) return outcome.error();
    if (outcome->status != DecideStatus::recorded || !outcome->state) {
      return Decided{std::move(outcome).value(), record};
    }
    std::vector<store::AuditRecord> audit;
    {
      // The decision itself, with its comment and any edit: the events say only what it caused.
      const DecisionRecord& d = *outcome->decision;
      Json details = Json{{"level", d.level},
                          {"round", d.round},
                          {"verdict", to_string(d.verdict)},
                          {"by", d.actor},
                          {"for", d.on_behalf_of},
                          {"channel", to_string(d.channel)},
                          {"comment", d.comment},
                          {"edited", d.edited_text.has_value()}};
      audit.push_back(audit_entry(record.workspace_id, origin, "approval.decision", "approval",
                                  record.id, std::move(details), now));
    }
    auto caused = audit_for(record, outcome->events, origin, now);
    audit.insert(audit.end(), caused.begin(), caused.end());
    auto written = write(&record, record, *outcome->state, outcome->events,
                         std::move(envelope->outbox), std::move(audit), true, now);
    if (written.ok()) return Decided{std::move(outcome).value(), std::move(written).value()};
    if (written.error().code != ErrorCode::aborted) return written.error();
    // Another decision (or a deadline) changed the approval first: decide again on what it left.
    auto fresh = store_.get_approval(workspace_id, approval_id);
    if (!fresh.ok()) return fresh.error();
    record = std::move(fresh).value();
  }
  return make_error(ErrorCode::aborted,
                    "approval " + std::string(approval_id) + " keeps changing; try again", true);
}

Result<std::string> Desk::link_url(const ApprovalState& state, std::string_view level,
                                   std::string_view principal, LinkAction action,
                                   TimePoint now) const {
  if (options_.link_key.empty() || options_.public_url.empty()) {
    return make_error(ErrorCode::failed_precondition,
                      "approval links need a public URL and a link key (server.public_url)");
  }
  LinkClaims claims;
  claims.approval_id = state.id;
  claims.level = std::string(level);
  claims.round = state.round;
  claims.approver = std::string(principal);
  claims.action = action;
  claims.expires_at = now + options_.link_ttl;
  claims.nonce = new_link_nonce();
  auto token = make_link_token(options_.link_key, claims);
  if (!token.ok()) return token.error();
  std::string base = options_.public_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/approvals/link/" + *token;
}

Result<Desk::LinkView> Desk::open_link(std::string_view token, TimePoint now) {
  if (options_.link_key.empty()) {
    return make_error(ErrorCode::failed_precondition, "this server makes no approval links");
  }
  auto claims = verify_link_token(options_.link_key, token, now);
  if (!claims.ok()) return claims.error();
  // The token names no workspace: the approval id is unique across them.
  auto record = store_.get_approval_by_id(claims->approval_id);
  if (!record.ok()) return record.error();
  auto envelope = read_envelope(*record);
  if (!envelope.ok()) return envelope.error();
  LinkView view{*claims, *record, envelope->state, ""};
  auto link = link_decision(*claims);
  const LevelState* level = envelope->state.find_level(claims->level);
  if (claims->action != LinkAction::open && link.ok()) {
    for (const auto& decision : envelope->state.decisions) {
      if (decision.idempotency_key == link->request.idempotency_key) {
        view.closed = "this link was used on " + format_iso8601(decision.at);
      }
    }
  }
  if (view.closed.empty() && finished_status(record->status)) {
    view.closed = "this approval is closed: " + record->status;
  } else if (view.closed.empty() && claims->round != envelope->state.round) {
    view.closed = "this link is from before the submission was changed; a newer request was sent";
  } else if (view.closed.empty() && (level == nullptr || level->status != LevelStatus::open)) {
    view.closed = "the level '" + claims->level + "' is closed" +
                  (level ? ": " + std::string(to_string(level->status)) : std::string());
  }
  return view;
}

Result<Desk::Decided> Desk::decide_by_link(std::string_view token, std::string comment,
                                           std::optional<std::string> edited_text, TimePoint now,
                                           const Origin& origin) {
  auto view = open_link(token, now);
  if (!view.ok()) return view.error();
  auto link = link_decision(view->claims, std::move(comment), std::move(edited_text));
  if (!link.ok()) return link.error();
  Origin as{"link:" + view->claims.approver, origin.address, origin.request_id};
  return decide(view->record.workspace_id, view->record.id, link->actor, link->request, now, as);
}

Result<store::ApprovalRecord> Desk::get(std::string_view workspace_id, std::string_view id) {
  auto record = store_.get_approval(workspace_id, id);
  if (!record.ok() && record.error().code == ErrorCode::not_found) {
    return make_error(ErrorCode::not_found,
                      "there is no approval '" + std::string(id) + "' in this workspace");
  }
  return record;
}

Result<std::vector<store::ApprovalRecord>> Desk::pending_for(std::string_view workspace_id,
                                                             std::string_view user_id,
                                                             std::optional<std::string> before_id,
                                                             int limit, TimePoint now) {
  store::ApprovalFilter filter;
  filter.workspace_id = std::string(workspace_id);
  filter.status = "pending";
  filter.before_id = std::move(before_id);
  filter.limit = limit;
  filter.awaiting.push_back(user_principal(user_id));
  auto delegated = store_.delegations_to(workspace_id, user_id, now);
  if (!delegated.ok()) return delegated.error();
  for (const auto& d : *delegated) filter.awaiting.push_back(user_principal(d.user_id));
  return store_.list_approvals(filter);
}

Result<std::vector<store::ApprovalRecord>> Desk::list(const store::ApprovalFilter& filter) {
  return store_.list_approvals(filter);
}

// ---- JSON -----------------------------------------------------------------------------------

Json approval_json(const store::ApprovalRecord& record, const ApprovalState& state, bool history) {
  Json levels = Json::array();
  std::map<std::string, Json> waiting_by_level;
  for (const auto& waiting : awaiting(state)) {
    waiting_by_level[waiting.level].push_back(waiting.principal);
  }
  for (const auto& level : state.levels) {
    Json decisions = Json::array();
    for (const auto& decision : state.decisions) {
      if (decision.level == level.name && decision.round == state.round) {
        decisions.push_back(decision.to_json());
      }
    }
    Json out = level.to_json();
    out["decisions"] = std::move(decisions);
    out["awaiting"] =
        waiting_by_level.count(level.name) ? waiting_by_level[level.name] : Json::array();
    levels.push_back(std::move(out));
  }
  Json out = {
      {"id", record.id},
      {"status", record.status},
      {"subject", state.subject.to_json()},
      {"original_text", state.original_text},
      {"submitter", state.submitter},
      {"policy", record.policy_name.empty() ? Json(nullptr) : Json(record.policy_name)},
      {"policy_version", record.policy_name.empty() ? Json(nullptr) : Json(record.policy_version)},
      {"run_id", record.run_id},
      {"step", record.step_id},
      {"round", state.round},
      {"levels", std::move(levels)},
      {"due_at", record.due_at ? Json(format_iso8601(*record.due_at)) : Json(nullptr)},
      {"created_at", format_iso8601(record.created_at)},
      {"updated_at", format_iso8601(record.updated_at)}};
  if (record.item >= 0) out["item"] = record.item;
  if (history) {
    Json decisions = Json::array();
    for (const auto& decision : state.decisions) decisions.push_back(decision.to_json());
    Json entries = Json::array();
    for (const auto& entry : state.history) entries.push_back(entry.to_json());
    out["decisions"] = std::move(decisions);
    out["history"] = std::move(entries);
    out["chain"] = state.chain.to_json();
  }
  if (finished(state)) {
    auto result = approvals::result(state);
    out["result"] = result.ok() ? result->to_json() : Json(nullptr);
    if (state.failure) out["error"] = state.failure->to_json();
  }
  return out;
}

}  // namespace herald::approvals
