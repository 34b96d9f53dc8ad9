// The approvals desk: the approval state machine (approval.h) over the store. Every change of an
// approval — opened by its step, decided through the API, the CLI or a signed link, moved on by a
// deadline — is read, computed and written back here with a compare-and-set on the record's
// revision, together with the events, audit entries and the wake-up of the run that it causes.
// The approval step, the REST API and the CLI all go through it, so they apply the same rules.
//
// An approval's record holds an envelope {"state": ApprovalState, "outbox": [Event...]}: the
// outbox keeps the notifications that changes made elsewhere (a decision through the API) still
// owe; the approval step sends them when it next runs and empties it.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/approvals/approval.h"
#include "engine/approvals/chain.h"
#include "engine/approvals/links.h"
#include "engine/common/result.h"
#include "engine/store/store.h"

namespace herald::approvals {

struct DeskOptions {
  // Signs one-click links; empty: no links are made and link decisions are refused.
  std::string link_key;
  // Links point at "<public_url>/approvals/link/<token>"; empty: notifications carry no links.
  std::string public_url;
  std::chrono::seconds link_ttl{std::chrono::hours(72)};
  // Whether anything listens to an event in a workspace (unset: every event is stored).
  std::function<bool(const std::string& workspace_id, const std::string& name)> wants_event;
};

// Who acts, for the audit log.
struct Origin {
  std::string actor;  // "user:alice", "cli", "link:email:ann@example.com", "run:<id>"
  std::string address;
  std::string request_id;
};

// The record's envelope, parsed.
struct Envelope {
  ApprovalState state;
  std::vector<Event> outbox;
};
Result<Envelope> read_envelope(const store::ApprovalRecord& record);

// A Directory over a workspace's members (roles), groups and delegations in the store. Workspace
// "" (runs of `herald run`) has no members: any user id exists there, roles and groups are empty.
class StoreDirectory : public Directory {
 public:
  StoreDirectory(store::Store& store, std::string workspace_id)
      : store_(store), workspace_id_(std::move(workspace_id)) {}
  Result<bool> user_exists(std::string_view user_id) const override;
  Result<std::vector<std::string>> users_with_role(std::string_view role) const override;
  Result<std::optional<std::vector<std::string>>> group_members(
      std::string_view group) const override;
  Result<std::optional<std::string>> delegate_of(std::string_view user_id,
                                                 TimePoint at) const override;

 private:
  store::Store& store_;
  std::string workspace_id_;
};

// The Lua side of a chain: `when:` and `deadline: { at: }` over `subject`, in the sandbox.
Context lua_context(const Directory& directory);

class Desk {
 public:
  explicit Desk(store::Store& store, DeskOptions options = {});
  const DeskOptions& options() const { return options_; }
  // Set once the server knows its address, before it takes requests.
  void set_public_url(std::string url) { options_.public_url = std::move(url); }
  store::Store& store() { return store_; }

  // ---- policies ----
  struct SavedPolicy {
    store::ApprovalPolicyRecord record;
    Policy policy;
    bool new_version = false;
  };
  // Parses the policy file (every problem: invalid_argument with details.errors, each
  // {file, line, column, path, message}); the file's `name` must be `name`.
  Result<SavedPolicy> put_policy(std::string_view workspace_id, std::string_view name,
                                 std::string_view source, std::string_view file_name,
                                 const Origin& origin);
  // The newest version, or `version`; with its parsed chain.
  Result<SavedPolicy> get_policy(std::string_view workspace_id, std::string_view name,
                                 std::optional<int> version = {});

  // ---- the approval step ----
  struct OpenRequest {
    std::string workspace_id;
    std::string run_id;
    std::string step_id;
    int item = -1;
    Subject subject;
    std::string submitter;  // a principal
    std::optional<Chain> chain;  // inline; otherwise policy_name
    std::string policy_name;
  };
  // The step's approval: the stored one when the step opened it before (a rerun, a restart),
  // otherwise a new one started now (the policy's newest version).
  Result<store::ApprovalRecord> open(const OpenRequest& request, TimePoint now);
  // Runs the deadlines that are due at `now`; the record as it is afterwards.
  Result<store::ApprovalRecord> run_deadlines(const store::ApprovalRecord& record, TimePoint now);
  // Empties the outbox of `record` (the step sent it); aborted when the record changed since.
  Result<store::ApprovalRecord> clear_outbox(const store::ApprovalRecord& record, TimePoint now);

  // ---- decisions ----
  struct Decided {
    DecideOutcome outcome;
    store::ApprovalRecord record;  // as stored after the decision (or as it was, when refused)
  };
  // Records a decision (retrying the compare-and-set when another decision got there first) and
  // wakes the approval's step. A refusal (not eligible, closed level, ...) is an outcome, not an
  // Error; not_found for another workspace's approval.
  Result<Decided> decide(std::string_view workspace_id, std::string_view approval_id,
                         const Actor& actor, const DecisionRequest& request, TimePoint now,
                         const Origin& origin);

  // ---- signed links ----
  // "<public_url>/approvals/link/<token>"; failed_precondition without a key or a public URL.
  Result<std::string> link_url(const ApprovalState& state, std::string_view level,
                               std::string_view principal, LinkAction action, TimePoint now) const;
  struct LinkView {
    LinkClaims claims;
    store::ApprovalRecord record;
    ApprovalState state;
    // Why the link can no longer decide ("this level was closed ...", "this link was used ...");
    // empty while it can.
    std::string closed;
  };
  // Verifies a link's token (unauthenticated with details.check: malformed, tampered, expired).
  Result<LinkView> open_link(std::string_view token, TimePoint now);
  // The decision a link stands for; a second use answers `duplicate` with the first result.
  Result<Decided> decide_by_link(std::string_view token, std::string comment,
                                 std::optional<std::string> edited_text, TimePoint now,
                                 const Origin& origin);

  // ---- reading ----
  Result<store::ApprovalRecord> get(std::string_view workspace_id, std::string_view id);
  // What `user_id` may decide now (as themselves, or for someone who delegated to them).
  Result<std::vector<store::ApprovalRecord>> pending_for(std::string_view workspace_id,
                                                         std::string_view user_id,
                                                         std::optional<std::string> before_id,
                                                         int limit, TimePoint now);
  Result<std::vector<store::ApprovalRecord>> list(const store::ApprovalFilter& filter);

 private:
  // Writes `next` over `record` (expected revision = record.revision), with its events.
  Result<store::ApprovalRecord> write(const store::ApprovalRecord* record,
                                      store::ApprovalRecord next, const ApprovalState& state,
                                      std::vector<Event> events, std::vector<Event> outbox,
                                      std::vector<store::AuditRecord> audit, bool wake,
                                      TimePoint now);

  store::Store& store_;
  DeskOptions options_;
};

// The JSON an approver sees: id, status, subject, the chain's levels with who may decide and who
// decided, deadlines, decisions and (with `history`) the audit trail; `result` once finished.
Json approval_json(const store::ApprovalRecord& record, const ApprovalState& state, bool history);

}  // namespace herald::approvals
