// One approval as it runs: the state of a subject going through a chain, and the pure functions
// that move it on. Nothing here reads a clock, a store or the network: the caller passes the
// time, a Directory of people and the values of Lua expressions, gets back the new state and
// the events to emit, and commits both together (the state carries a revision for an optimistic,
// compare-and-set write, which is also how two decisions "at the same instant" are serialised:
// the second is recomputed on the state the first produced).
//
// Rules (docs/approvals.md explains them for admins):
//   - Levels run stage by stage; a parallel group's levels open together and must all pass.
//   - Approvers are resolved when their level opens; each person counts once per level; the
//     submitter is left out unless allow_self_approval. A level that resolves to fewer people
//     than it needs (nobody; fewer than a quorum) fails the approval with an error naming why.
//   - any: the first decision closes the level, whatever it is (approve, reject or changes).
//     all: every eligible person approves; one reject rejects. quorum N: N approvals approve;
//     the level is rejected as soon as N can no longer be reached.
//   - request_changes closes its level in every mode: the text is going to change, so votes on
//     the current one are moot. on_changes: restart sends the (edited) subject back to the first
//     stage, reopened fresh (a new round); return ends the approval with changes_requested.
//   - A rejected level rejects the approval; open levels of the same group are cancelled.
//   - A delegate (Directory::delegate_of at the time of the decision) decides for the person
//     who delegated; the decision records both. A delegate never decides on their own
//     submission unless self-approval is allowed.
//   - External (email:) approvers decide through signed links only (Channel::link).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/approvals/chain.h"
#include "engine/approvals/diff.h"
#include "engine/approvals/directory.h"
#include "engine/common/result.h"
#include "engine/common/time.h"

namespace herald::approvals {

// What is being approved, as shown to approvers. `text` is what approvers may edit.
struct Subject {
  std::string title;
  std::string text;
  Json media = Json::array();     // references (URLs, ids, objects), as the step received them
  std::vector<std::string> accounts;  // target accounts
  Json extra = Json::object();    // anything else the workflow wants shown or tested in `when:`

  Json to_json() const;  // {"title", "text", "media", "accounts", "extra"}
  // Reads the same; "text" is required; fields of the wrong type are an error naming the field.
  static Result<Subject> from_json(const Json& json);
};

enum class Verdict { approve, reject, request_changes };
std::string_view to_string(Verdict verdict);  // "approve", "reject", "request_changes"
std::optional<Verdict> parse_verdict(std::string_view text);  // also accepts "changes"

// How the decision reached Herald: signed in (web admin, API, CLI), or through a signed link.
enum class Channel { app, link };
std::string_view to_string(Channel channel);

enum class LevelStatus { pending, open, approved, rejected, changes_requested, expired, skipped,
                         cancelled };
std::string_view to_string(LevelStatus status);

enum class ApprovalStatus { pending, approved, rejected, changes_requested, expired, failed };
std::string_view to_string(ApprovalStatus status);

struct DecisionRecord {
  std::string level;
  int round = 0;
  std::string actor;         // who decided (a principal, or "system:deadline")
  std::string on_behalf_of;  // whose vote it is: the actor, or the person they stand in for
  Verdict verdict = Verdict::approve;
  std::string comment;
  std::optional<std::string> edited_text;  // set when the decision changed the text
  int text_revision = 0;     // edits applied before this decision: which text it saw
  std::string idempotency_key;
  Channel channel = Channel::app;
  TimePoint at;

  bool delegated() const { return actor != on_behalf_of; }
  Json to_json() const;
  static Result<DecisionRecord> from_json(const Json& json);
};

// The audit trail: every request, decision, edit, reminder, escalation and ending, with time.
// kind: started, skipped, requested, decided, edited, reminded, escalated, level_closed,
// cancelled, restarted, finished, failed.
struct HistoryEntry {
  TimePoint at;
  std::string kind;
  std::string level;  // empty for the approval as a whole
  std::string actor;  // a principal, "system:deadline", or empty
  Json details = Json::object();
  Json to_json() const;
  static Result<HistoryEntry> from_json(const Json& json);
};

struct LevelState {
  std::string name;
  std::string group;  // the parallel group's name; empty for a level of its own
  size_t stage = 0;
  LevelStatus status = LevelStatus::pending;
  Mode mode;                            // the chain's, until an escalation sets another
  std::vector<std::string> approvers;   // entries as written, plus escalations
  std::vector<std::string> eligible;    // resolved principals, sorted
  std::vector<std::string> notes;       // entries that resolved to nobody, and why
  std::optional<TimePoint> opened_at;
  std::optional<TimePoint> closed_at;
  std::optional<TimePoint> deadline;    // when on_deadline runs next; unset: no timer
  size_t deadline_step = 0;   // the on_deadline entry the next passing deadline runs
  int reminders_sent = 0;     // within the current remind entry
  int escalations = 0;
  std::string closed_by;      // a principal, or "system:deadline"

  Json to_json() const;
  static Result<LevelState> from_json(const Json& json);
};

struct ApprovalState {
  std::string id;
  std::string policy_name;  // empty for an inline chain
  int policy_version = 0;
  Chain chain;              // the chain as it was when the approval started
  Subject subject;          // current: carries every edit so far
  std::string original_text;
  int text_revision = 0;    // number of edits applied
  std::string submitter;    // a principal
  ApprovalStatus status = ApprovalStatus::pending;
  int round = 0;            // restarts after request_changes
  size_t stage = 0;         // the stage being decided
  std::vector<LevelState> levels;  // one per level, in chain order (stages flattened)
  std::vector<DecisionRecord> decisions;  // every round's
  std::vector<HistoryEntry> history;
  TimePoint created_at;
  std::optional<TimePoint> finished_at;
  std::optional<Error> failure;  // with status failed
  uint64_t revision = 0;    // incremented by every change, for the caller's compare-and-set

  const LevelState* find_level(std::string_view name) const;
  Json to_json() const;
  static Result<ApprovalState> from_json(const Json& json);
};

// Something the caller should emit (and notify about) when it commits the state it came with.
// type: approval.requested (a level opened: data.notify lists who to tell, with `for` when they
// stand in for someone), approval.reminded, approval.escalated, approval.level_decided,
// approval.decided (final: approved, rejected or changes_requested; data.result is result()),
// approval.expired (final), approval.failed (final; data.error).
struct Event {
  std::string type;
  Json data;
  Json to_json() const { return Json{{"type", type}, {"data", data}}; }
};

// What the functions below need from the caller besides the state.
struct Context {
  const Directory* directory = nullptr;  // required
  // The value of a level's `when:` for the subject; asked when a round starts, for every level
  // with one. Unset while a level has `when:` is an error.
  std::function<Result<bool>(const Level& level, const Subject& subject)> evaluate_when;
  // The time a level's `deadline: { at: ... }` gives; asked when that level opens.
  std::function<Result<TimePoint>(const Level& level, const Subject& subject)> evaluate_deadline_at;
};

struct Transition {
  ApprovalState state;
  std::vector<Event> events;
};

struct StartRequest {
  std::string id;  // the caller's id for the approval (goes into events and links)
  Subject subject;
  std::string submitter;  // a principal
  Chain chain;
  std::string policy_name;
  int policy_version = 0;
};

// Opens the first stage whose levels apply. An Error (a directory or expression that failed)
// means nothing started; a chain that cannot be decided starts as failed, with its event.
Result<Transition> start(const StartRequest& request, TimePoint now, const Context& context);

struct Actor {
  Actor() = default;
  explicit Actor(std::string principal, Channel channel = Channel::app)
      : principal(std::move(principal)), channel(channel) {}
  std::string principal;  // "user:<id>" or "email:<address>"
  Channel channel = Channel::app;
};

struct DecisionRequest {
  Verdict verdict = Verdict::approve;
  std::string comment;  // required to reject and to request changes
  std::optional<std::string> edited_text;  // with approve or request_changes
  // Retries with the same key by the same actor get the first result, even after the level
  // closed. A link's nonce makes a good key.
  std::string idempotency_key;
  std::string level;  // needed when the actor may decide on several open levels; links set it
  std::optional<int> round;  // links set it: a link issued before a restart is refused
  std::string on_behalf_of;  // a principal, when a delegate must say for whom
};

enum class DecideStatus {
  recorded,        // 201
  duplicate,       // 200: the same decision was made before; `decision` is that first one
  invalid,         // 400: reject without a reason, changes without a comment, ...
  not_eligible,    // 403: not an approver of the level (or not through this channel)
  level_closed,    // 409: the level or the approval is no longer (or not yet) open
  already_decided, // 409: this person decided otherwise on this level
};
std::string_view to_string(DecideStatus status);
int http_status(DecideStatus status);

struct DecideOutcome {
  DecideStatus status = DecideStatus::invalid;
  std::string message;  // why, when not recorded
  std::optional<DecisionRecord> decision;  // recorded, or the first for a duplicate
  std::optional<ApprovalState> state;      // the new state, only when recorded
  std::vector<Event> events;
};

// Records a decision. An Error (the directory failed) means nothing was decided.
Result<DecideOutcome> decide(const ApprovalState& state, const Actor& actor,
                             const DecisionRequest& request, TimePoint now,
                             const Context& context);

// Runs the on_deadline entry of every open level whose deadline is at or before `now`, as many
// as are due (after downtime, reminders whose window has already passed are recorded but not
// announced). Times count from the deadline that passed, not from `now`, so a late timer keeps
// the schedule the policy promised. `state` is unset when nothing was due.
struct DeadlineOutcome {
  std::optional<ApprovalState> state;
  std::vector<Event> events;
};
Result<DeadlineOutcome> on_deadline(const ApprovalState& state, TimePoint now,
                                    const Context& context);

// The next time on_deadline has something to do; unset when nothing waits on time.
std::optional<TimePoint> due_at(const ApprovalState& state);
bool finished(const ApprovalState& state);

// Who may decide now: for each open level, the eligible people who have not decided yet. (A
// store indexes these for "pending for me"; delegates are found through the delegations.)
struct Awaiting {
  std::string level;
  std::string principal;
};
std::vector<Awaiting> awaiting(const ApprovalState& state);

// The levels `actor` may decide on right now, and for whom (themselves, or as a delegate).
struct Choice {
  std::string level;
  std::string on_behalf_of;
};
Result<std::vector<Choice>> choices_for(const ApprovalState& state, const Actor& actor,
                                        TimePoint now, const Directory& directory);

struct LevelResult {
  std::string name;
  std::string group;
  LevelStatus status = LevelStatus::pending;
  std::vector<DecisionRecord> decisions;  // of the final round
  std::optional<TimePoint> opened_at;
  std::optional<TimePoint> closed_at;
  std::string closed_by;
};

struct Comment {
  std::string level;
  int round = 0;
  std::string by;
  std::string on_behalf_of;
  std::string text;
  TimePoint at;
};

// The approval's output once finished (the `approval` step's output).
struct ApprovalResult {
  ApprovalStatus decision = ApprovalStatus::approved;  // approved|rejected|changes_requested|expired
  std::string text;           // final
  std::string original_text;
  TextDiff diff;              // original -> final
  std::vector<LevelResult> decided_by;
  std::vector<Comment> comments;  // every round's, in order
  int rounds = 1;
  TimePoint started_at;
  TimePoint finished_at;
  // {"decision", "text", "original_text", "diff", "decided_by": [...], "comments": [...],
  //  "rounds", "started_at", "finished_at"}
  Json to_json() const;
};

// failed_precondition while pending; the approval's own Error when it failed.
Result<ApprovalResult> result(const ApprovalState& state);

}  // namespace herald::approvals
