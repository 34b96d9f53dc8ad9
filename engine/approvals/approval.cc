#include "engine/approvals/approval.h"

#include <algorithm>
#include <map>
#include <set>

#include "engine/common/duration.h"

namespace herald::approvals {
namespace {

constexpr std::string_view kDeadlineActor = "system:deadline";
constexpr size_t kMaxCommentBytes = 10'000;
constexpr size_t kMaxTextBytes = 1024 * 1024;

TimePoint to_ms(TimePoint time) {
  // Stored times are whole milliseconds (what ISO-8601 in the JSON keeps), so a state read back
  // from the store is the state that was written.
  return std::chrono::time_point_cast<std::chrono::milliseconds>(time);
}

bool is_blank(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
  });
}

std::string join_text(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += separator;
    out += parts[i];
  }
  return out;
}

std::string in_quotes(std::string_view name) {
  return "'" + std::string(name) + "'";
}

Json string_list(const std::vector<std::string>& items) {
  Json out = Json::array();
  for (const auto& item : items) out.push_back(item);
  return out;
}

// The chain's levels in the order of ApprovalState::levels.
std::vector<const Level*> flatten(const Chain& chain) {
  std::vector<const Level*> out;
  for (const auto& stage : chain.stages) {
    for (const auto& level : stage.levels) out.push_back(&level);
  }
  return out;
}

size_t people_needed(const Mode& mode) {
  return mode.kind == Mode::Kind::quorum ? static_cast<size_t>(mode.quorum) : 1;
}

bool contains(const std::vector<std::string>& sorted, std::string_view item) {
  return std::binary_search(sorted.begin(), sorted.end(), item, std::less<>());
}

// Moves one approval on. Works on the caller's copy of the state; an Error returned from any
// step means the copy is thrown away, so a failed directory lookup never half-applies.
class Machine {
 public:
  Machine(ApprovalState& state, TimePoint now, const Context& context, std::vector<Event>& events)
      : state_(state), now_(now), context_(context), events_(events),
        chain_levels_(flatten(state.chain)) {}

  const Level& chain_level(size_t index) const { return *chain_levels_.at(index); }
  const Level& chain_level(const LevelState& level) const {
    return chain_level(static_cast<size_t>(&level - state_.levels.data()));
  }

  void note(std::string kind, std::string level, std::string actor, Json details = Json::object()) {
    state_.history.push_back(
        HistoryEntry{now_, std::move(kind), std::move(level), std::move(actor), std::move(details)});
  }

  void emit(std::string type, Json data) {
    data["approval_id"] = state_.id;
    events_.push_back(Event{std::move(type), std::move(data)});
  }

  // A new round: every level pending again, `when:` asked afresh for the current subject.
  Status begin_round(Json changes) {
    changes_ = std::move(changes);
    for (size_t i = 0; i < state_.levels.size(); ++i) {
      LevelState& level = state_.levels[i];
      const Level& definition = chain_level(i);
      level.status = LevelStatus::pending;
      level.mode = definition.mode;
      level.approvers.clear();
      for (const auto& approver : definition.approvers) level.approvers.push_back(approver.to_string());
      level.eligible.clear();
      level.notes.clear();
      level.opened_at.reset();
      level.closed_at.reset();
      level.deadline.reset();
      level.deadline_step = 0;
      level.reminders_sent = 0;
      level.escalations = 0;
      level.closed_by.clear();
    }
    for (size_t i = 0; i < state_.levels.size(); ++i) {
      const Level& definition = chain_level(i);
      if (definition.when.empty()) continue;
      if (!context_.evaluate_when) {
        return make_error(ErrorCode::failed_precondition,
                          "level " + in_quotes(definition.name) +
                              " has a when: condition but no evaluator was given");
      }
      Result<bool> applies = context_.evaluate_when(definition, state_.subject);
      if (!applies.ok()) {
        fail(expression_error(definition.when, "when", applies.error()));
        return ok_status();
      }
      if (!*applies) {
        state_.levels[i].status = LevelStatus::skipped;
        note("skipped", definition.name, "", Json{{"when", definition.when.source}});
      }
    }
    return open_stage_from(0);
  }

  // A Lua error in a policy is not transient: the approval fails, pointing at the expression.
  Error expression_error(const Expression& expression, std::string_view what, const Error& cause) {
    std::string place = state_.chain.file;
    if (expression.location.line > 0) {
      place += (place.empty() ? "" : ":") + std::to_string(expression.location.line) + ":" +
               std::to_string(expression.location.column);
    }
    std::string message = (place.empty() ? "" : place + ": ") + expression.path + ": the " +
                          std::string(what) + " expression failed: " + cause.message;
    Error error = make_error(ErrorCode::invalid_argument, std::move(message));
    error.details = Json{{"path", expression.path},
                         {"line", expression.location.line},
                         {"column", expression.location.column}};
    return error;
  }

  Status open_stage_from(size_t first) {
    for (size_t stage = first; stage < state_.chain.stages.size(); ++stage) {
      std::vector<size_t> to_open;
      for (size_t i = 0; i < state_.levels.size(); ++i) {
        if (state_.levels[i].stage == stage && state_.levels[i].status != LevelStatus::skipped) {
          to_open.push_back(i);
        }
      }
      if (to_open.empty()) continue;
      state_.stage = stage;
      for (size_t i : to_open) {
        Status opened = open_level(state_.levels[i]);
        if (!opened.ok()) return opened;
        if (state_.status != ApprovalStatus::pending) return ok_status();
      }
      // A deadline already in the past (deadline.at) is not run here: due_at() returns it and
      // the caller's timer fires at once, so every deadline action goes through on_deadline.
      return ok_status();
    }
    state_.stage = state_.chain.stages.size();
    finish(ApprovalStatus::approved);
    return ok_status();
  }

  // The people to tell about a level: each principal, and the delegate of each user who has one.
  Result<Json> notify_list(const std::vector<std::string>& principals) {
    Json notify = Json::array();
    for (const auto& principal : principals) {
      notify.push_back(Json{{"principal", principal}});
      if (!is_user_principal(principal)) continue;
      Result<std::optional<std::string>> delegate =
          context_.directory->delegate_of(user_id_of(principal), now_);
      if (!delegate.ok()) return std::move(delegate).error();
      if (delegate->has_value() && user_principal(**delegate) != principal) {
        notify.push_back(Json{{"principal", user_principal(**delegate)}, {"for", principal}});
      }
    }
    return notify;
  }

  std::string shortfall(const LevelState& level, const std::string& when) {
    std::string message = "level " + in_quotes(level.name) + " cannot be decided" + when + ": ";
    if (level.eligible.empty()) {
      message += "nobody can approve it";
    } else {
      message += "it needs " + std::to_string(people_needed(level.mode)) + " approvals but only " +
                 std::to_string(level.eligible.size()) + " people can approve (" +
                 join_text(level.eligible, ", ") + ")";
    }
    if (!level.notes.empty()) message += "; " + join_text(level.notes, "; ");
    return message + " (approvers: " + join_text(level.approvers, ", ") + ")";
  }

  Status open_level(LevelState& level) {
    const Level& definition = chain_level(level);
    Result<Resolution> resolved =
        resolve_approvers(definition.approvers, *context_.directory, state_.submitter,
                          state_.chain.allow_self_approval);
    if (!resolved.ok()) return std::move(resolved).error();
    level.eligible = std::move(resolved->eligible);
    level.notes = std::move(resolved->notes);
    level.status = LevelStatus::open;
    level.opened_at = now_;
    if (level.eligible.size() < people_needed(level.mode)) {
      fail(make_error(ErrorCode::failed_precondition, shortfall(level, "")));
      return ok_status();
    }
    if (definition.deadline.kind == Deadline::Kind::after) {
      level.deadline = now_ + definition.deadline.after;
    } else if (definition.deadline.kind == Deadline::Kind::at) {
      if (!context_.evaluate_deadline_at) {
        return make_error(ErrorCode::failed_precondition,
                          "level " + in_quotes(definition.name) +
                              " has deadline: { at: ... } but no evaluator was given");
      }
      Result<TimePoint> at = context_.evaluate_deadline_at(definition, state_.subject);
      if (!at.ok()) {
        fail(expression_error(definition.deadline.at, "deadline", at.error()));
        return ok_status();
      }
      level.deadline = to_ms(*at);
    }
    Result<Json> notify = notify_list(level.eligible);
    if (!notify.ok()) return std::move(notify).error();
    Json details{{"approvers", string_list(level.approvers)},
                 {"eligible", string_list(level.eligible)},
                 {"mode", level.mode.to_json()},
                 {"notes", string_list(level.notes)},
                 {"round", state_.round}};
    if (level.deadline) details["deadline"] = format_iso8601(*level.deadline);
    note("requested", level.name, "", details);
    Json data = details;
    data["level"] = level.name;
    data["group"] = level.group;
    data["notify"] = *notify;
    data["subject"] = state_.subject.to_json();
    data["submitter"] = state_.submitter;
    if (!changes_.is_null()) data["changes_requested"] = changes_;
    emit("approval.requested", std::move(data));
    return ok_status();
  }

  // The decisions that count on `level` in this round: by people still eligible.
  std::vector<const DecisionRecord*> counted(const LevelState& level) const {
    std::vector<const DecisionRecord*> out;
    for (const auto& decision : state_.decisions) {
      if (decision.round == state_.round && decision.level == level.name &&
          contains(level.eligible, decision.on_behalf_of)) {
        out.push_back(&decision);
      }
    }
    return out;
  }

  std::vector<std::string> undecided(const LevelState& level) const {
    std::set<std::string> decided;
    for (const auto* decision : counted(level)) decided.insert(decision->on_behalf_of);
    std::vector<std::string> out;
    for (const auto& principal : level.eligible) {
      if (!decided.count(principal)) out.push_back(principal);
    }
    return out;
  }

  // The level's outcome by its mode, or nullopt while it waits for more decisions.
  std::optional<LevelStatus> tally(const LevelState& level) const {
    std::vector<const DecisionRecord*> decisions = counted(level);
    size_t approvals = 0, rejects = 0, changes = 0;
    for (const auto* decision : decisions) {
      if (decision->verdict == Verdict::approve) ++approvals;
      if (decision->verdict == Verdict::reject) ++rejects;
      if (decision->verdict == Verdict::request_changes) ++changes;
    }
    if (changes > 0) return LevelStatus::changes_requested;
    size_t remaining = level.eligible.size() - decisions.size();
    switch (level.mode.kind) {
      case Mode::Kind::any:
        if (approvals > 0) return LevelStatus::approved;
        if (rejects > 0) return LevelStatus::rejected;
        return std::nullopt;
      case Mode::Kind::all:
        if (rejects > 0) return LevelStatus::rejected;
        if (approvals == level.eligible.size()) return LevelStatus::approved;
        return std::nullopt;
      case Mode::Kind::quorum: {
        size_t needed = static_cast<size_t>(level.mode.quorum);
        if (approvals >= needed) return LevelStatus::approved;
        if (approvals + remaining < needed) return LevelStatus::rejected;
        return std::nullopt;
      }
    }
    return std::nullopt;
  }

  void close_level(LevelState& level, LevelStatus status, std::string by) {
    level.status = status;
    level.closed_at = now_;
    level.closed_by = std::move(by);
    level.deadline.reset();
    Json decided_by = Json::array();
    for (const auto* decision : counted(level)) decided_by.push_back(decision->to_json());
    note("level_closed", level.name, level.closed_by,
         Json{{"status", to_string(status)}, {"round", state_.round}});
    emit("approval.level_decided", Json{{"level", level.name},
                                        {"group", level.group},
                                        {"status", to_string(status)},
                                        {"closed_by", level.closed_by},
                                        {"round", state_.round},
                                        {"decisions", std::move(decided_by)}});
  }

  void cancel_open_levels() {
    for (auto& level : state_.levels) {
      if (level.status != LevelStatus::open) continue;
      level.status = LevelStatus::cancelled;
      level.closed_at = now_;
      level.deadline.reset();
      note("cancelled", level.name, "", Json{{"round", state_.round}});
    }
  }

  void finish(ApprovalStatus status) {
    cancel_open_levels();
    state_.status = status;
    state_.finished_at = now_;
    note("finished", "", "", Json{{"decision", to_string(status)}});
    Result<ApprovalResult> outcome = result(state_);
    Json data{{"decision", to_string(status)}, {"submitter", state_.submitter}};
    if (outcome.ok()) data["result"] = outcome->to_json();
    emit(status == ApprovalStatus::expired ? "approval.expired" : "approval.decided",
         std::move(data));
  }

  void fail(Error error) {
    cancel_open_levels();
    state_.status = ApprovalStatus::failed;
    state_.finished_at = now_;
    note("failed", "", "", Json{{"error", error.to_json()}});
    emit("approval.failed", Json{{"error", error.to_json()}, {"submitter", state_.submitter}});
    state_.failure = std::move(error);
  }

  // After a level of the current stage closed: end, restart, move on, or keep waiting.
  Status settle(const DecisionRecord* trigger) {
    bool all_passed = true;
    std::optional<LevelStatus> ending;
    for (const auto& level : state_.levels) {
      if (level.stage != state_.stage || level.status == LevelStatus::skipped) continue;
      if (level.status == LevelStatus::rejected || level.status == LevelStatus::expired ||
          level.status == LevelStatus::changes_requested) {
        ending = level.status;
      }
      if (level.status != LevelStatus::approved) all_passed = false;
    }
    if (ending == LevelStatus::rejected) {
      finish(ApprovalStatus::rejected);
    } else if (ending == LevelStatus::expired) {
      finish(ApprovalStatus::expired);
    } else if (ending == LevelStatus::changes_requested) {
      if (state_.chain.on_changes == OnChanges::return_to_caller) {
        finish(ApprovalStatus::changes_requested);
        return ok_status();
      }
      cancel_open_levels();
      Json changes = Json::object();
      if (trigger) {
        changes = Json{{"level", trigger->level},
                       {"by", trigger->actor},
                       {"on_behalf_of", trigger->on_behalf_of},
                       {"comment", trigger->comment},
                       {"edited", trigger->edited_text.has_value()}};
      }
      ++state_.round;
      note("restarted", "", trigger ? trigger->actor : "", Json{{"round", state_.round},
                                                               {"changes", changes}});
      return begin_round(std::move(changes));
    } else if (all_passed) {
      return open_stage_from(state_.stage + 1);
    }
    return ok_status();
  }

  // Applies what a level's passing deadline calls for; the caller loops while more is due.
  Status run_deadline(LevelState& level) {
    const Level& definition = chain_level(level);
    TimePoint passed = *level.deadline;
    if (level.deadline_step >= definition.on_deadline.size()) {
      close_level(level, LevelStatus::expired, std::string(kDeadlineActor));
      return settle(nullptr);
    }
    const DeadlineStep& step = definition.on_deadline[level.deadline_step];
    switch (step.kind) {
      case DeadlineStep::Kind::remind: {
        if (level.reminders_sent >= step.times) {
          // Reminders used up: the next entry runs now, at the same passed deadline.
          ++level.deadline_step;
          level.reminders_sent = 0;
          return ok_status();
        }
        ++level.reminders_sent;
        level.deadline = passed + step.every;
        bool late = *level.deadline <= now_;
        std::vector<std::string> pending = undecided(level);
        Json details{{"reminder", level.reminders_sent},
                     {"of", step.times},
                     {"deadline", format_iso8601(*level.deadline)},
                     {"pending", string_list(pending)},
                     {"late", late}};
        note("reminded", level.name, std::string(kDeadlineActor), details);
        if (!late) {
          Result<Json> notify = notify_list(pending);
          if (!notify.ok()) return std::move(notify).error();
          details["level"] = level.name;
          details["notify"] = *notify;
          details["subject"] = state_.subject.to_json();
          emit("approval.reminded", std::move(details));
        }
        return ok_status();
      }
      case DeadlineStep::Kind::escalate:
        return escalate(level, definition, step, passed);
      case DeadlineStep::Kind::approve:
        close_level(level, LevelStatus::approved, std::string(kDeadlineActor));
        return settle(nullptr);
      case DeadlineStep::Kind::reject:
        close_level(level, LevelStatus::rejected, std::string(kDeadlineActor));
        return settle(nullptr);
      case DeadlineStep::Kind::expire:
        close_level(level, LevelStatus::expired, std::string(kDeadlineActor));
        return settle(nullptr);
    }
    return ok_status();
  }

  Status escalate(LevelState& level, const Level& definition, const DeadlineStep& step,
                  TimePoint passed) {
    Result<Resolution> resolved = resolve_approvers(step.approvers, *context_.directory,
                                                    state_.submitter,
                                                    state_.chain.allow_self_approval);
    if (!resolved.ok()) return std::move(resolved).error();
    std::vector<std::string> before = level.eligible;
    std::vector<std::string> entries;
    for (const auto& approver : step.approvers) entries.push_back(approver.to_string());
    if (step.replace) {
      level.eligible = resolved->eligible;
      level.approvers = entries;
      level.notes = resolved->notes;
    } else {
      std::set<std::string> merged(level.eligible.begin(), level.eligible.end());
      merged.insert(resolved->eligible.begin(), resolved->eligible.end());
      level.eligible.assign(merged.begin(), merged.end());
      level.approvers.insert(level.approvers.end(), entries.begin(), entries.end());
      level.notes.insert(level.notes.end(), resolved->notes.begin(), resolved->notes.end());
    }
    if (step.mode) level.mode = *step.mode;
    ++level.escalations;
    ++level.deadline_step;
    level.reminders_sent = 0;
    std::optional<std::chrono::milliseconds> window = step.deadline;
    if (!window && definition.deadline.kind == Deadline::Kind::after) {
      window = definition.deadline.after;
    }
    if (window) {
      level.deadline = passed + *window;
    } else {
      level.deadline.reset();
    }
    std::vector<std::string> added, removed;
    std::set_difference(level.eligible.begin(), level.eligible.end(), before.begin(), before.end(),
                        std::back_inserter(added));
    std::set_difference(before.begin(), before.end(), level.eligible.begin(), level.eligible.end(),
                        std::back_inserter(removed));
    Json details{{"approvers", string_list(entries)},
                 {"replace", step.replace},
                 {"added", string_list(added)},
                 {"removed", string_list(removed)},
                 {"mode", level.mode.to_json()},
                 {"notes", string_list(resolved->notes)}};
    if (level.deadline) details["deadline"] = format_iso8601(*level.deadline);
    note("escalated", level.name, std::string(kDeadlineActor), details);
    // The people who now have to act: everyone eligible who has not decided, the new first.
    std::vector<std::string> to_notify = added;
    for (const auto& principal : undecided(level)) {
      if (std::find(added.begin(), added.end(), principal) == added.end()) {
        to_notify.push_back(principal);
      }
    }
    Result<Json> notify = notify_list(to_notify);
    if (!notify.ok()) return std::move(notify).error();
    details["level"] = level.name;
    details["notify"] = *notify;
    details["subject"] = state_.subject.to_json();
    emit("approval.escalated", std::move(details));
    if (level.eligible.size() < people_needed(level.mode)) {
      fail(make_error(ErrorCode::failed_precondition, shortfall(level, " after its escalation")));
      return ok_status();
    }
    // Replacing approvers can settle a level: the remaining votes may already decide it.
    if (auto status = tally(level)) {
      close_level(level, *status, std::string(kDeadlineActor));
      return settle(nullptr);
    }
    return ok_status();
  }

 private:
  ApprovalState& state_;
  TimePoint now_;
  const Context& context_;
  std::vector<Event>& events_;
  std::vector<const Level*> chain_levels_;
  Json changes_;  // why this round started, for the requested events
};

// --- Deciding ---------------------------------------------------------------------------------

std::optional<std::string> check_request(const Actor& actor, const DecisionRequest& request) {
  if (!is_user_principal(actor.principal) && !is_email_principal(actor.principal)) {
    return "the actor must be a principal: user:<id> or email:<address>";
  }
  if (!request.on_behalf_of.empty() && !is_user_principal(request.on_behalf_of) &&
      !is_email_principal(request.on_behalf_of)) {
    return "on_behalf_of must be a principal: user:<id> or email:<address>";
  }
  if (request.comment.size() > kMaxCommentBytes) return "the comment is longer than 10000 bytes";
  if (request.verdict == Verdict::reject && is_blank(request.comment)) {
    return "a rejection needs a reason: give a comment";
  }
  if (request.verdict == Verdict::request_changes && is_blank(request.comment)) {
    return "a request for changes needs a comment saying what to change";
  }
  if (request.edited_text) {
    if (request.verdict == Verdict::reject) {
      return "a rejection cannot carry an edited text; approve with the edit or request changes";
    }
    if (is_blank(*request.edited_text)) return "the edited text is empty";
    if (request.edited_text->size() > kMaxTextBytes) return "the edited text is larger than 1 MiB";
  }
  return std::nullopt;
}

// Whom `actor` may vote for on `level`: themselves when eligible, or (as a delegate) the
// person they stand in for. `why` says why the list is empty.
Result<std::vector<std::string>> voters(const ApprovalState& state, const LevelState& level,
                                        const Actor& actor, const std::string& on_behalf_of,
                                        TimePoint now, const Directory& directory,
                                        std::string& why) {
  const std::string& me = actor.principal;
  bool self_refused = !state.chain.allow_self_approval && me == state.submitter;
  auto channel_ok = [&](const std::string& principal) {
    if (is_email_principal(principal) && actor.channel != Channel::link) {
      why = "external approvers (" + principal + ") decide through their signed link";
      return false;
    }
    return true;
  };
  auto delegates_to_me = [&](const std::string& principal) -> Result<bool> {
    if (!is_user_principal(principal) || !is_user_principal(me)) return false;
    Result<std::optional<std::string>> delegate =
        directory.delegate_of(user_id_of(principal), now);
    if (!delegate.ok()) return std::move(delegate).error();
    return delegate->has_value() && user_principal(**delegate) == me;
  };
  std::vector<std::string> out;
  if (!on_behalf_of.empty()) {
    if (!contains(level.eligible, on_behalf_of)) {
      why = on_behalf_of + " is not an approver of level " + in_quotes(level.name);
      return out;
    }
    if (on_behalf_of == me) {
      if (channel_ok(me)) out.push_back(me);
      return out;
    }
    Result<bool> delegated = delegates_to_me(on_behalf_of);
    if (!delegated.ok()) return std::move(delegated).error();
    if (!*delegated) {
      why = on_behalf_of + " has not delegated to " + me + " at this time";
    } else if (self_refused) {
      why = me + " submitted this and may not approve it, also not for " + on_behalf_of;
    } else {
      out.push_back(on_behalf_of);
    }
    return out;
  }
  if (contains(level.eligible, me)) {
    if (channel_ok(me)) out.push_back(me);
    return out;
  }
  if (self_refused) {
    why = me + " submitted this and may not approve it (allow_self_approval is false)";
    return out;
  }
  for (const auto& principal : level.eligible) {
    Result<bool> delegated = delegates_to_me(principal);
    if (!delegated.ok()) return std::move(delegated).error();
    if (*delegated) out.push_back(principal);
  }
  if (out.empty()) why = me + " is not an approver of level " + in_quotes(level.name);
  return out;
}

const DecisionRecord* decision_of(const ApprovalState& state, const std::string& level,
                                  const std::string& principal) {
  for (const auto& decision : state.decisions) {
    if (decision.round == state.round && decision.level == level &&
        decision.on_behalf_of == principal) {
      return &decision;
    }
  }
  return nullptr;
}

DecideOutcome refused(DecideStatus status, std::string message,
                      const DecisionRecord* decision = nullptr) {
  DecideOutcome outcome;
  outcome.status = status;
  outcome.message = std::move(message);
  if (decision) outcome.decision = *decision;
  return outcome;
}

}  // namespace

Result<Transition> start(const StartRequest& request, TimePoint now, const Context& context) {
  if (!context.directory) {
    return make_error(ErrorCode::failed_precondition, "approvals need a directory of people");
  }
  if (request.chain.stages.empty()) {
    return make_error(ErrorCode::invalid_argument, "the chain has no levels");
  }
  if (!is_user_principal(request.submitter) && !is_email_principal(request.submitter)) {
    return make_error(ErrorCode::invalid_argument,
                      "the submitter must be a principal: user:<id> or email:<address>");
  }
  now = to_ms(now);
  Transition transition;
  ApprovalState& state = transition.state;
  state.id = request.id;
  state.policy_name = request.policy_name;
  state.policy_version = request.policy_version;
  state.chain = request.chain;
  state.subject = request.subject;
  state.original_text = request.subject.text;
  state.submitter = request.submitter;
  state.created_at = now;
  for (size_t s = 0; s < state.chain.stages.size(); ++s) {
    const Stage& stage = state.chain.stages[s];
    for (const auto& level : stage.levels) {
      LevelState level_state;
      level_state.name = level.name;
      level_state.group = stage.parallel ? stage.name : "";
      level_state.stage = s;
      level_state.mode = level.mode;
      state.levels.push_back(std::move(level_state));
    }
  }
  Machine machine(state, now, context, transition.events);
  machine.note("started", "", request.submitter,
               Json{{"title", request.subject.title},
                    {"policy", request.policy_name},
                    {"policy_version", request.policy_version}});
  Status begun = machine.begin_round(nullptr);
  if (!begun.ok()) return std::move(begun).error();
  state.revision = 1;
  return transition;
}

Result<DecideOutcome> decide(const ApprovalState& state, const Actor& actor,
                             const DecisionRequest& request, TimePoint now,
                             const Context& context) {
  if (!context.directory) {
    return make_error(ErrorCode::failed_precondition, "approvals need a directory of people");
  }
  now = to_ms(now);
  if (auto problem = check_request(actor, request)) {
    return refused(DecideStatus::invalid, *problem);
  }
  // A retry with the same key gets the first answer, wherever the approval has got to since.
  if (!request.idempotency_key.empty()) {
    for (const auto& decision : state.decisions) {
      if (decision.idempotency_key != request.idempotency_key || decision.actor != actor.principal) {
        continue;
      }
      if (decision.verdict == request.verdict &&
          (request.level.empty() || request.level == decision.level)) {
        return refused(DecideStatus::duplicate, "this decision was already recorded", &decision);
      }
      return refused(DecideStatus::invalid,
                     "the idempotency key was already used for a different decision (" +
                         std::string(to_string(decision.verdict)) + " on level " +
                         in_quotes(decision.level) + ")");
    }
  }
  std::vector<const LevelState*> candidates;
  if (!request.level.empty()) {
    const LevelState* level = state.find_level(request.level);
    if (!level) return refused(DecideStatus::invalid, "there is no level " + in_quotes(request.level));
    candidates.push_back(level);
  } else {
    for (const auto& level : state.levels) candidates.push_back(&level);
  }

  struct Target {
    const LevelState* level;
    std::string principal;
  };
  std::vector<Target> targets;
  std::vector<const DecisionRecord*> earlier;  // this actor's decisions on candidate levels
  std::vector<const LevelState*> closed_but_mine;
  std::string why;
  bool stale_round = request.round && *request.round != state.round;
  for (const LevelState* level : candidates) {
    if (level->status == LevelStatus::pending || level->status == LevelStatus::skipped) continue;
    std::string level_why;
    Result<std::vector<std::string>> mine =
        voters(state, *level, actor, request.on_behalf_of, now, *context.directory, level_why);
    if (!mine.ok()) return std::move(mine).error();
    if (mine->empty() && why.empty()) why = level_why;
    for (const auto& principal : *mine) {
      if (const DecisionRecord* decision = decision_of(state, level->name, principal)) {
        earlier.push_back(decision);
      } else if (level->status == LevelStatus::open && state.status == ApprovalStatus::pending &&
                 !stale_round) {
        targets.push_back(Target{level, principal});
      } else {
        closed_but_mine.push_back(level);
      }
    }
  }
  if (targets.empty()) {
    for (const DecisionRecord* decision : earlier) {
      if (decision->actor == actor.principal && decision->verdict == request.verdict) {
        return refused(DecideStatus::duplicate, "this decision was already recorded", decision);
      }
    }
    if (stale_round) {
      return refused(DecideStatus::level_closed,
                     "this was issued for round " + std::to_string(*request.round) +
                         "; the subject has changed since and is being decided again (round " +
                         std::to_string(state.round) + ")");
    }
    if (!request.level.empty() && candidates.front()->status == LevelStatus::pending &&
        state.status == ApprovalStatus::pending) {
      return refused(DecideStatus::level_closed,
                     "level " + in_quotes(candidates.front()->name) + " is not open yet");
    }
    // Refusals for someone who could have decided here: 409s. Anyone else gets a 403 below.
    for (const DecisionRecord* decision : earlier) {
      const LevelState* level = state.find_level(decision->level);
      if (state.status == ApprovalStatus::pending && level &&
          level->status == LevelStatus::open) {
        std::string who = decision->actor == decision->on_behalf_of
                              ? decision->actor
                              : decision->actor + " for " + decision->on_behalf_of;
        return refused(DecideStatus::already_decided,
                       who + " already decided " + std::string(to_string(decision->verdict)) +
                           " on level " + in_quotes(decision->level) +
                           "; a decision cannot be changed",
                       decision);
      }
    }
    if (!closed_but_mine.empty() || !earlier.empty()) {
      if (state.status != ApprovalStatus::pending) {
        return refused(DecideStatus::level_closed, "the approval is finished (" +
                                                       std::string(to_string(state.status)) + ")");
      }
      const LevelState* level = !closed_but_mine.empty() ? closed_but_mine.front()
                                                         : state.find_level(earlier.front()->level);
      return refused(DecideStatus::level_closed,
                     "level " + in_quotes(level->name) + " is closed (" +
                         std::string(to_string(level->status)) + ")");
    }
    return refused(DecideStatus::not_eligible,
                   why.empty() ? actor.principal + " is not an approver of any open level" : why);
  }
  if (targets.size() > 1) {
    std::vector<std::string> options;
    for (const auto& target : targets) {
      options.push_back("level " + in_quotes(target.level->name) + " for " + target.principal);
    }
    return refused(DecideStatus::invalid, actor.principal + " may decide on " +
                                              join_text(options, ", ") +
                                              "; say which with level (and on_behalf_of)");
  }

  DecideOutcome outcome;
  outcome.status = DecideStatus::recorded;
  ApprovalState next = state;
  size_t level_index = static_cast<size_t>(targets.front().level - state.levels.data());
  LevelState& level = next.levels[level_index];
  DecisionRecord record;
  record.level = level.name;
  record.round = next.round;
  record.actor = actor.principal;
  record.on_behalf_of = targets.front().principal;
  record.verdict = request.verdict;
  record.comment = request.comment;
  if (request.edited_text && *request.edited_text != next.subject.text) {
    record.edited_text = request.edited_text;
  }
  record.text_revision = next.text_revision;
  record.idempotency_key = request.idempotency_key;
  record.channel = actor.channel;
  record.at = now;
  next.decisions.push_back(record);

  Machine machine(next, now, context, outcome.events);
  Json details{{"verdict", to_string(record.verdict)},
               {"on_behalf_of", record.on_behalf_of},
               {"comment", record.comment},
               {"channel", to_string(record.channel)},
               {"edited", record.edited_text.has_value()},
               {"round", record.round}};
  machine.note("decided", level.name, actor.principal, details);
  if (record.edited_text) {
    machine.note("edited", level.name, actor.principal,
                 Json{{"before", next.subject.text},
                      {"after", *record.edited_text},
                      {"text_revision", next.text_revision + 1}});
    next.subject.text = *record.edited_text;
    ++next.text_revision;
  }
  if (auto status = machine.tally(level)) {
    machine.close_level(level, *status, record.on_behalf_of);
    Status settled = machine.settle(&next.decisions.back());
    if (!settled.ok()) return std::move(settled).error();
  }
  ++next.revision;
  outcome.decision = record;
  outcome.state = std::move(next);
  return outcome;
}

Result<DeadlineOutcome> on_deadline(const ApprovalState& state, TimePoint now,
                                    const Context& context) {
  if (!context.directory) {
    return make_error(ErrorCode::failed_precondition, "approvals need a directory of people");
  }
  now = to_ms(now);
  DeadlineOutcome outcome;
  std::optional<TimePoint> due = due_at(state);
  if (!due || *due > now) return outcome;
  ApprovalState next = state;
  Machine machine(next, now, context, outcome.events);
  // Levels opened by what runs here (the next stage) come later in the list, so one pass sees
  // them too; each inner loop ends because every entry moves the deadline on or closes the level.
  for (size_t i = 0; i < next.levels.size(); ++i) {
    while (next.status == ApprovalStatus::pending && next.levels[i].status == LevelStatus::open &&
           next.levels[i].deadline && *next.levels[i].deadline <= now) {
      Status ran = machine.run_deadline(next.levels[i]);
      if (!ran.ok()) return std::move(ran).error();
    }
  }
  ++next.revision;
  outcome.state = std::move(next);
  return outcome;
}

std::optional<TimePoint> due_at(const ApprovalState& state) {
  if (state.status != ApprovalStatus::pending) return std::nullopt;
  std::optional<TimePoint> due;
  for (const auto& level : state.levels) {
    if (level.status == LevelStatus::open && level.deadline && (!due || *level.deadline < *due)) {
      due = level.deadline;
    }
  }
  return due;
}

bool finished(const ApprovalState& state) {
  return state.status != ApprovalStatus::pending;
}

std::vector<Awaiting> awaiting(const ApprovalState& state) {
  std::vector<Awaiting> out;
  if (state.status != ApprovalStatus::pending) return out;
  for (const auto& level : state.levels) {
    if (level.status != LevelStatus::open) continue;
    for (const auto& principal : level.eligible) {
      if (!decision_of(state, level.name, principal)) out.push_back({level.name, principal});
    }
  }
  return out;
}

Result<std::vector<Choice>> choices_for(const ApprovalState& state, const Actor& actor,
                                        TimePoint now, const Directory& directory) {
  std::vector<Choice> out;
  if (state.status != ApprovalStatus::pending) return out;
  for (const auto& level : state.levels) {
    if (level.status != LevelStatus::open) continue;
    std::string why;
    Result<std::vector<std::string>> mine = voters(state, level, actor, "", now, directory, why);
    if (!mine.ok()) return std::move(mine).error();
    for (const auto& principal : *mine) {
      if (!decision_of(state, level.name, principal)) out.push_back({level.name, principal});
    }
    // Someone eligible in their own right may also hold delegations on the same level.
    if (contains(level.eligible, actor.principal)) {
      for (const auto& principal : level.eligible) {
        if (principal == actor.principal) continue;
        std::string ignored;
        Result<std::vector<std::string>> as_delegate =
            voters(state, level, actor, principal, now, directory, ignored);
        if (!as_delegate.ok()) return std::move(as_delegate).error();
        if (!as_delegate->empty() && !decision_of(state, level.name, principal)) {
          out.push_back({level.name, principal});
        }
      }
    }
  }
  return out;
}

Result<ApprovalResult> result(const ApprovalState& state) {
  if (state.status == ApprovalStatus::pending) {
    return make_error(ErrorCode::failed_precondition, "the approval is still pending");
  }
  if (state.status == ApprovalStatus::failed) {
    if (state.failure) return *state.failure;
    return make_error(ErrorCode::internal, "the approval failed");
  }
  ApprovalResult out;
  out.decision = state.status;
  out.text = state.subject.text;
  out.original_text = state.original_text;
  out.diff = diff_text(state.original_text, state.subject.text);
  for (const auto& level : state.levels) {
    LevelResult level_result;
    level_result.name = level.name;
    level_result.group = level.group;
    level_result.status = level.status;
    level_result.opened_at = level.opened_at;
    level_result.closed_at = level.closed_at;
    level_result.closed_by = level.closed_by;
    for (const auto& decision : state.decisions) {
      if (decision.round == state.round && decision.level == level.name) {
        level_result.decisions.push_back(decision);
      }
    }
    out.decided_by.push_back(std::move(level_result));
  }
  for (const auto& decision : state.decisions) {
    if (decision.comment.empty()) continue;
    out.comments.push_back(Comment{decision.level, decision.round, decision.actor,
                                   decision.on_behalf_of, decision.comment, decision.at});
  }
  out.rounds = state.round + 1;
  out.started_at = state.created_at;
  out.finished_at = state.finished_at.value_or(state.created_at);
  return out;
}

std::string_view to_string(DecideStatus status) {
  switch (status) {
    case DecideStatus::recorded:
      return "recorded";
    case DecideStatus::duplicate:
      return "duplicate";
    case DecideStatus::invalid:
      return "invalid";
    case DecideStatus::not_eligible:
      return "not_eligible";
    case DecideStatus::level_closed:
      return "level_closed";
    case DecideStatus::already_decided:
      return "already_decided";
  }
  return "invalid";
}

int http_status(DecideStatus status) {
  switch (status) {
    case DecideStatus::recorded:
      return 201;
    case DecideStatus::duplicate:
      return 200;
    case DecideStatus::invalid:
      return 400;
    case DecideStatus::not_eligible:
      return 403;
    case DecideStatus::level_closed:
    case DecideStatus::already_decided:
      return 409;
  }
  return 400;
}

}  // namespace herald::approvals
