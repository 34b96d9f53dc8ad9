// The Store: where every workflow version, run, step, attempt and timer lives. One interface,
// implementations under sqlite/ (embedded, the default) and postgres/ (libpqxx). The runtime commits
// each state change through commit() before it takes the next action, so a crash at any moment
// loses nothing that was already decided. No implementation-specific SQL leaks past this header.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/common/result.h"

namespace herald::store {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;  // stored with millisecond precision

enum class RunState { queued, running, waiting, succeeded, failed, cancelled };
enum class StepState { pending, ready, running, waiting, succeeded, failed, skipped, cancelled };

std::string_view to_string(RunState state);
std::string_view to_string(StepState state);
std::optional<RunState> parse_run_state(std::string_view text);
std::optional<StepState> parse_step_state(std::string_view text);
bool is_final(RunState state);
bool is_final(StepState state);

// One deployed (or run-from-file) version of a workflow. Runs keep the version they started on.
struct WorkflowVersion {
  int64_t id = 0;
  std::string workspace_id;  // "" for workflows run from a file by `herald run`
  std::string workflow_id;
  int version = 0;           // 1, 2, ... per (workspace_id, workflow_id)
  std::string source;        // the file as written
  std::string file_name;     // for error messages
  std::string source_hash;   // hex SHA-256 of source
  TimePoint created_at;
};

struct RunRecord {
  std::string id;  // time-ordered, so ordering by id is ordering by creation
  std::string workspace_id;  // "" for runs of `herald run`
  std::string workflow_id;
  int64_t workflow_version_id = 0;
  RunState state = RunState::queued;
  Json inputs = Json::object();
  Json trigger = Json::object();
  // The workflow's `vars`, rendered once when the run was created, so a resumed run sees the
  // same values; null when the run has none stored.
  Json vars = nullptr;
  Json error = nullptr;  // Error::to_json() of what failed the run
  TimePoint created_at;
  std::optional<TimePoint> started_at;
  std::optional<TimePoint> finished_at;
  TimePoint updated_at;
};

// A step of a run. `item` is -1 for the step as a whole and 0..n-1 for the elements of a
// `foreach` step; on_error steps are stored under their own ids with `on_error` set.
struct StepRecord {
  std::string run_id;
  std::string step_id;
  int item = -1;
  bool on_error = false;
  StepState state = StepState::pending;
  int attempt = 0;   // attempts started so far
  Json input = nullptr;   // the rendered `with:` of the latest attempt (secrets redacted)
  Json output = nullptr;
  Json error = nullptr;
  std::string idempotency_key;  // stable across retries and restarts
  std::optional<TimePoint> started_at;
  std::optional<TimePoint> finished_at;
};

// The timeline: one row per attempt of a step (or element).
struct AttemptRecord {
  std::string run_id;
  std::string step_id;
  int item = -1;
  int attempt = 1;
  StepState state = StepState::running;  // running, succeeded, failed, waiting
  Json input = nullptr;
  Json output = nullptr;
  Json error = nullptr;
  // What the step logged during the attempt (its own lines, a plugin's herald.log and host HTTP
  // calls), secrets redacted: [{"at", "level", "message"}], or null when it logged nothing.
  Json logs = nullptr;
  TimePoint started_at;
  std::optional<TimePoint> finished_at;
};

// Something a run waits for in time: a `wait` step, or the backoff before a retry.
struct TimerRecord {
  int64_t id = 0;  // assigned by the store
  std::string run_id;
  std::string step_id;
  int item = -1;
  // "wait" (the step ends when it fires), "retry" (the step runs again after a backoff) or
  // "rerun" (the step runs again to look at what changed: an approval's decision or deadline)
  std::string kind;
  TimePoint due_at;
};

// Something that happened in a workspace: `run.succeeded`, `run.failed`, or any name a step or
// the API emits. Event triggers start runs from these.
struct EventRecord {
  int64_t id = 0;  // assigned by the store, increasing
  std::string workspace_id;
  std::string name;
  Json payload = Json::object();
  std::string source;  // "run:<id>", "api:<token id>", "cli"
  TimePoint created_at;
  std::optional<TimePoint> consumed_at;
};

// The last time a schedule trigger fired: what catch-up after a restart counts from.
struct ScheduleMark {
  std::string workspace_id;
  std::string workflow_id;
  int trigger_index = 0;  // position in the workflow's `triggers`
  TimePoint last_fire;
};

// ---- leases: which engine drives a run -------------------------------------------------------
// One engine at a time drives a run: the one holding its lease. Every claim of a run gives a
// larger fencing token; a Commit made under a lease (Commit::fence) is refused with `aborted` once
// the run was claimed again since, so an engine whose lease expired while it was stalled (a long
// GC-like pause, a partition from the database) cannot write over the new owner's work.

struct RunLease {
  std::string run_id;
  int64_t token = 0;
};

// Inserted runs leased at once to the engine that starts them: it drives them without a claim.
struct LeaseGrant {
  std::string owner;
  TimePoint until;
};

struct ClaimRequest {
  std::string owner;      // the claiming engine, e.g. "host:pid:random"
  TimePoint now;          // leases that end at or before this are over
  TimePoint lease_until;  // when the claimed leases end unless renewed
  int limit = 64;         // none when <= 0
  // Empty: any claimable run, oldest lease first: queued or running with no live lease, or
  // waiting with a timer due by `now` and no live lease. Otherwise only these runs, in any state
  // (a failed run is claimed to be retried), unless another owner's lease on them is live; a run
  // already leased to `owner` keeps its token and gets the new end.
  std::vector<std::string> run_ids;
  // Also take runs that other owners' live leases hold (`herald resume` after a crash).
  bool take_over = false;
};

// Everything one state change writes, committed in one transaction. Steps and attempts are
// upserted by their keys ((run_id, step_id, item) and (run_id, step_id, item, attempt)).
// Applied in field order, except that timer deletions come before add_timers (so one Commit can
// replace a run's timers). All or nothing: inserting a run with an existing id fails with
// already_exists, update_run of a missing run with not_found, a step, attempt or timer of a run
// that is not stored (nor inserted by this Commit) with failed_precondition, and then nothing of
// the Commit is written.
struct Commit {
  std::vector<RunRecord> insert_runs;
  // Updates of an existing run: state, error, started_at, finished_at, updated_at.
  std::optional<RunRecord> update_run;
  std::vector<StepRecord> steps;
  std::vector<AttemptRecord> attempts;
  std::vector<TimerRecord> add_timers;
  std::vector<int64_t> delete_timers;
  // Timers to remove by owner, when the id is not known (e.g. the run was cancelled).
  std::vector<std::string> delete_timers_of_runs;
  // Events caused by this change (a run finished, a step emitted one): written with it, so none
  // is lost and none is written for a change that did not happen. Ids are assigned by the store.
  std::vector<EventRecord> add_events;
  // Events whose triggers have been handled (the runs they start are in insert_runs). An id that
  // is already consumed (another dispatcher got there first), or not stored, fails the Commit
  // with failed_precondition, so an event starts its runs exactly once.
  std::vector<int64_t> consume_events;
  // Schedule fires being recorded (with the runs they start): upserted by their key. A mark only
  // moves forward: one at or before the stored mark fails the Commit with failed_precondition
  // (another scheduler recorded that fire first), so a fire starts its runs once, however many
  // schedulers there are.
  std::vector<ScheduleMark> schedule_marks;
  // With insert_runs: the runs are inserted leased to this owner (token 1); unset, they are free
  // for any engine to claim.
  std::optional<LeaseGrant> lease_inserted;
  // The lease this change is made under: unless the run's stored token is still this one, the
  // Commit fails with `aborted` and writes nothing.
  std::optional<RunLease> fence;
  // With fence: the lease ends in the same transaction (the run finished, or waits for a timer).
  bool release = false;
  // True when the Commit writes nothing.
  bool empty() const;
  // Adds the writes of a Commit that comes after this one: committing the result writes what
  // committing both in order would (rows written twice keep the later values), provided this
  // one adds no timer that `later` deletes (apply deletes timers before it adds them).
  void append(Commit&& later);
};

struct RunFilter {
  // Runs of this workspace only ("" : the runs of `herald run`); nullopt: every workspace.
  std::optional<std::string> workspace_id;
  std::optional<std::string> workflow_id;
  std::optional<RunState> state;
  std::optional<std::string> before_id;  // cursor: runs with a smaller id
  int limit = 50;
};

// ---- tenancy -------------------------------------------------------------------------------
// Ids of workspaces and users are slugs: 1 to 63 of [a-z0-9-_.], starting with a letter or digit
// (the store checks: invalid_argument otherwise). Roles are stored by name (security::Role).

struct Workspace {
  std::string id;
  std::string name;  // display name
  TimePoint created_at;
};

struct User {
  std::string id;
  std::string name;   // display name
  std::string email;  // may be empty
  TimePoint created_at;
};

struct Membership {
  std::string workspace_id;
  std::string user_id;
  std::string role;  // admin | editor | approver | viewer | influencer
  TimePoint created_at;
};

// An API token. Only its hash is stored (security/tokens.h); it acts as `user_id` with `role`
// in `workspace_id`.
struct TokenRecord {
  std::string id;  // the token's public id part
  std::string workspace_id;
  std::string user_id;
  std::string role;
  std::string name;  // what it is for, e.g. "ci deploys"
  std::string hash;
  TimePoint created_at;
  std::optional<TimePoint> expires_at;
  std::optional<TimePoint> revoked_at;
  std::optional<TimePoint> last_used_at;
};

// A secret, encrypted by security::SecretBox; the store never sees the value.
struct SecretRecord {
  std::string workspace_id;
  std::string name;
  std::string ciphertext;  // base64 of the sealed box
  std::string updated_by;
  TimePoint created_at;
  TimePoint updated_at;
};

// One entry of the append-only audit log.
struct AuditRecord {
  int64_t id = 0;  // assigned by the store, increasing
  std::string workspace_id;
  std::string actor;        // "user:alice", "token:<id>", "cli", "system"
  std::string action;       // "workflow.deploy", "run.cancel", "secret.set", ...
  std::string object_type;  // "workflow", "run", "secret", "token", "user", ...
  std::string object_id;
  std::string address;      // the caller's IP address, "" for the CLI
  std::string request_id;
  Json details = Json::object();  // never secret values
  TimePoint at;
};

struct AuditFilter {
  std::string workspace_id;
  std::optional<std::string> action;
  std::optional<std::string> actor;
  std::optional<std::string> object_id;
  std::optional<int64_t> before_id;  // cursor: entries with a smaller id
  int limit = 50;                    // clamped to 1..1000
};

// A workflow deployed in a workspace: which version is current, whether triggers may fire.
struct DeployedWorkflow {
  std::string workspace_id;
  std::string workflow_id;
  int64_t version_id = 0;  // the current version
  int version = 0;
  bool enabled = true;
  std::string updated_by;
  TimePoint created_at;
  TimePoint updated_at;
};

struct DeployResult {
  DeployedWorkflow workflow;
  WorkflowVersion version;
  // True when the deployment's current version changed (a new version, or an older version
  // made current again); false when the same source was already the current version.
  bool new_version = false;
};

// A value a plugin keeps between calls (a cursor, a cached token), scoped to a workspace and a
// plugin (herald_host_api.kv_*, herald.kv in Lua). Small by contract: the host checks sizes.
struct KvEntry {
  std::string workspace_id;
  std::string plugin;
  std::string key;
  Json value;
  std::optional<TimePoint> expires_at;  // nullopt: kept until deleted or replaced
  TimePoint updated_at;
};

struct WorkflowFilter {
  std::string workspace_id;
  std::optional<bool> enabled;
  std::optional<std::string> after_id;  // cursor: workflow ids sorting after this one
  int limit = 50;                       // clamped to 1..1000
};


// ---- approvals -------------------------------------------------------------------------------
// The store keeps an approval's whole state as JSON (approvals::ApprovalState, which the store
// does not interpret) with a revision for compare-and-set writes, plus the columns lists filter
// on and one row per person who may decide now ("pending for me" is an index lookup).

struct ApprovalRecord {
  std::string id;            // time-ordered (new_run_id() layout, "ap_" prefix)
  std::string workspace_id;  // "" for approvals of `herald run` runs
  // The approval step that asked (unique: a step's rerun finds its approval again).
  std::string run_id;
  std::string step_id;
  int item = -1;
  std::string status;     // pending, approved, rejected, changes_requested, expired, failed
  std::string title;      // the subject's title, for lists
  std::string submitter;  // a principal ("user:alice")
  std::string policy_name;  // empty for an inline chain
  int policy_version = 0;
  Json state = Json::object();  // approvals::ApprovalState::to_json()
  int64_t revision = 0;         // the state's revision
  std::optional<TimePoint> due_at;  // the next deadline; nullopt when nothing waits on time
  TimePoint created_at;
  TimePoint updated_at;
};

// Someone who may decide on an open level now.
struct ApprovalAssignment {
  std::string principal;  // "user:alice", "email:ann@example.com"
  std::string level;
};

// One change of an approval, written in one transaction with what it causes.
struct ApprovalWrite {
  ApprovalRecord approval;
  // nullopt: a new approval (already_exists when the id, or an approval of the same run step
  // and item, is stored). Otherwise the stored revision must equal it, else `aborted` (another
  // decision got there first: re-read and decide again) and nothing is written.
  std::optional<int64_t> expected_revision;
  // Replaces the approval's assignments: who may decide now (empty once it is finished).
  std::vector<ApprovalAssignment> awaiting;
  std::vector<EventRecord> events;  // approval.requested, approval.decided, ...
  std::vector<AuditRecord> audit;
  // A timer due now for the approval's step, so the run sees the change (a decision made through
  // the API); the step re-reads the state when it fires.
  std::optional<TimerRecord> wake;
};

struct ApprovalFilter {
  std::string workspace_id;
  std::optional<std::string> status;
  // Non-empty: only approvals one of these principals may decide on now (the caller, and those
  // who delegated to the caller).
  std::vector<std::string> awaiting;
  std::optional<std::string> run_id;
  std::optional<std::string> before_id;  // cursor: approvals with a smaller id
  int limit = 50;                        // clamped to 1..1000
};

// A named approval policy; every change is a new version, and approvals keep the version they
// started with.
struct ApprovalPolicyRecord {
  std::string workspace_id;
  std::string name;
  int version = 0;  // 1, 2, ... per (workspace, name); assigned by the store
  std::string description;
  std::string source;     // the policy file as written
  std::string file_name;  // for error messages
  std::string source_hash;  // hex SHA-256 of source; assigned by the store
  std::string created_by;
  TimePoint created_at;
};

// A named set of users that approval chains name as group:NAME.
struct GroupRecord {
  std::string workspace_id;
  std::string name;
  std::string description;
  std::vector<std::string> members;  // user ids, sorted, each once
  std::string updated_by;
  TimePoint created_at;
  TimePoint updated_at;
};

// A user's approvals go to `delegate_id` between starts_at and ends_at (either open-ended).
struct DelegationRecord {
  std::string workspace_id;
  std::string user_id;
  std::string delegate_id;
  std::optional<TimePoint> starts_at;
  std::optional<TimePoint> ends_at;
  std::string created_by;
  TimePoint created_at;
};

class Store {
 public:
  virtual ~Store() = default;

  // Applies the numbered migrations that are not applied yet.
  virtual Status migrate() = 0;

  // Stores a version unless one with the same workspace, workflow id and source hash exists;
  // returns the stored (or existing) version.
  virtual Result<WorkflowVersion> put_workflow_version(std::string_view workspace_id,
                                                       std::string_view workflow_id,
                                                       std::string_view source,
                                                       std::string_view file_name) = 0;
  virtual Result<WorkflowVersion> get_workflow_version(int64_t id) = 0;

  virtual Status commit(const Commit& commit) = 0;

  virtual Result<RunRecord> get_run(std::string_view run_id) = 0;
  // Newest first (by id); `limit` is clamped to 1..1000.
  virtual Result<std::vector<RunRecord>> list_runs(const RunFilter& filter) = 0;
  // How many runs match the filter's workspace, workflow and state (cursor and limit ignored).
  virtual Result<int64_t> count_runs(const RunFilter& filter) = 0;
  // Runs that are queued or running: what a restart must pick up at once. Waiting runs come back
  // through their timers.
  virtual Result<std::vector<std::string>> unfinished_run_ids() = 0;

  // Ordered by step_id, then item. A run with no steps (or no such run) gives an empty list.
  virtual Result<std::vector<StepRecord>> get_steps(std::string_view run_id) = 0;
  // In timeline order: started_at, then step_id, item, attempt.
  virtual Result<std::vector<AttemptRecord>> get_attempts(std::string_view run_id) = 0;

  // ---- leases (see RunLease) ----------------------------------------------------------------

  // Leases the runs the request selects (at most `limit`) to its owner; returns them with their
  // tokens. Engines claiming at the same time never get the same run.
  virtual Result<std::vector<RunLease>> claim_runs(const ClaimRequest& request) = 0;
  // Moves the end of these leases to `until`; returns the ids of the runs whose lease is lost (the
  // token is no longer theirs, or the run is gone). A lease that ended but was not claimed by
  // anyone since is renewed.
  virtual Result<std::vector<std::string>> renew_leases(const std::vector<RunLease>& leases,
                                                        TimePoint until) = 0;
  // Ends these leases now (an engine shutting down), so other engines take the runs over at once;
  // a lease that is no longer held is left alone.
  virtual Status release_leases(const std::vector<RunLease>& leases) = 0;

  // Timers due at or before `now`, oldest first (ties by id); none when limit <= 0.
  virtual Result<std::vector<TimerRecord>> due_timers(TimePoint now, int limit) = 0;
  virtual Result<std::optional<TimePoint>> next_timer_due() = 0;
  // Ordered by due_at, then id.
  virtual Result<std::vector<TimerRecord>> timers_of_run(std::string_view run_id) = 0;

  // ---- events and schedules ----------------------------------------------------------------

  // Events not consumed yet, oldest first (by id); none when limit <= 0.
  virtual Result<std::vector<EventRecord>> pending_events(int limit) = 0;
  // Every schedule mark (a few per deployed workflow), by workspace, workflow, trigger index.
  virtual Result<std::vector<ScheduleMark>> schedule_marks() = 0;

  // ---- workflows deployed in workspaces ----------------------------------------------------

  // Stores the source as a version (put_workflow_version) and makes it the current version of
  // the deployment, creating the deployment (enabled) when missing; one transaction. A source
  // that an existing version of this workflow already has is not stored again: that version
  // becomes current (new_version false if it already was, and then nothing is written). Versions
  // are never deleted, so a deleted workflow deployed again with a new source gets version
  // max+1, never reusing a number, and runs keep the version they started on. An existing
  // deployment keeps its enabled flag.
  virtual Result<DeployResult> deploy_workflow(std::string_view workspace_id,
                                               std::string_view workflow_id,
                                               std::string_view source, std::string_view file_name,
                                               std::string_view actor) = 0;
  // not_found when not deployed (get, set_workflow_enabled and delete_deployed alike).
  virtual Result<DeployedWorkflow> get_deployed(std::string_view workspace_id,
                                                std::string_view workflow_id) = 0;
  // Ordered by workflow id.
  virtual Result<std::vector<DeployedWorkflow>> list_deployed(const WorkflowFilter& filter) = 0;
  // Every enabled deployment of every workspace: what the trigger index is built from.
  virtual Result<std::vector<DeployedWorkflow>> all_enabled_deployed() = 0;
  virtual Status set_workflow_enabled(std::string_view workspace_id, std::string_view workflow_id,
                                      bool enabled, std::string_view actor) = 0;
  // Removes the deployment (its triggers stop) and its schedule marks (deployed again, it starts
  // afresh); versions stay, for the runs that used them. not_found when not deployed.
  virtual Status delete_deployed(std::string_view workspace_id, std::string_view workflow_id) = 0;
  // Newest first.
  virtual Result<std::vector<WorkflowVersion>> list_workflow_versions(
      std::string_view workspace_id, std::string_view workflow_id) = 0;

  // ---- workspaces, users, memberships, tokens ------------------------------------------------

  virtual Status create_workspace(const Workspace& workspace) = 0;  // already_exists
  virtual Result<Workspace> get_workspace(std::string_view id) = 0;
  virtual Result<std::vector<Workspace>> list_workspaces() = 0;  // by id

  virtual Status create_user(const User& user) = 0;  // already_exists
  virtual Result<User> get_user(std::string_view id) = 0;
  // Adds the user to the workspace with a role, or changes the role (keeping created_at).
  // not_found when the workspace or the user does not exist.
  virtual Status put_membership(const Membership& membership) = 0;
  virtual Result<Membership> get_membership(std::string_view workspace_id,
                                            std::string_view user_id) = 0;
  // By user id.
  virtual Result<std::vector<Membership>> list_memberships(std::string_view workspace_id) = 0;
  // Also revokes the user's tokens in that workspace, in the same transaction; not_found when
  // the user is not a member.
  virtual Status delete_membership(std::string_view workspace_id, std::string_view user_id) = 0;

  // already_exists; not_found when the workspace or the user does not exist.
  virtual Status create_token(const TokenRecord& token) = 0;
  virtual Result<TokenRecord> get_token(std::string_view id) = 0;  // any workspace
  // By token id.
  virtual Result<std::vector<TokenRecord>> list_tokens(std::string_view workspace_id) = 0;
  // Sets revoked_at (not_found for another workspace's token; revoking twice is fine).
  virtual Status revoke_token(std::string_view workspace_id, std::string_view id) = 0;
  virtual Status touch_token(std::string_view id, TimePoint used_at) = 0;  // sets last_used_at

  // ---- secrets -------------------------------------------------------------------------------

  virtual Status put_secret(const SecretRecord& secret) = 0;  // insert or replace (keeps created_at)
  virtual Result<SecretRecord> get_secret(std::string_view workspace_id, std::string_view name) = 0;
  virtual Result<std::vector<SecretRecord>> list_secrets(std::string_view workspace_id) = 0;  // by name
  // not_found when there is no such secret.
  virtual Status delete_secret(std::string_view workspace_id, std::string_view name) = 0;

  // ---- plugin key-value entries --------------------------------------------------------------

  // Inserts or replaces the entry, and drops the (workspace, plugin)'s entries that expired by
  // entry.updated_at. resource_exhausted when the (workspace, plugin) already holds `max_entries`
  // other live entries.
  virtual Status kv_put(const KvEntry& entry, int64_t max_entries) = 0;
  // nullopt when there is no entry, or it expired at or before `now`.
  virtual Result<std::optional<KvEntry>> kv_get(std::string_view workspace_id,
                                                std::string_view plugin, std::string_view key,
                                                TimePoint now) = 0;
  // True when an entry was removed.
  virtual Result<bool> kv_delete(std::string_view workspace_id, std::string_view plugin,
                                 std::string_view key) = 0;


  // ---- approvals -----------------------------------------------------------------------------

  // See ApprovalWrite; failed_precondition when the wake timer's run is not stored.
  virtual Status write_approval(const ApprovalWrite& write) = 0;
  // not_found for a missing id and for another workspace's approval.
  virtual Result<ApprovalRecord> get_approval(std::string_view workspace_id,
                                              std::string_view id) = 0;
  // Any workspace's approval: for signed links, which name no workspace (their ids are unique).
  virtual Result<ApprovalRecord> get_approval_by_id(std::string_view id) = 0;
  // The approval a run's step started, if any (any workspace).
  virtual Result<std::optional<ApprovalRecord>> find_step_approval(std::string_view run_id,
                                                                   std::string_view step_id,
                                                                   int item) = 0;
  // Newest first (by id).
  virtual Result<std::vector<ApprovalRecord>> list_approvals(const ApprovalFilter& filter) = 0;
  // Pending approvals whose due_at is at or before `now`, soonest first; none when limit <= 0.
  virtual Result<std::vector<ApprovalRecord>> due_approvals(TimePoint now, int limit) = 0;

  // Stores a new version (version and source_hash assigned), unless the newest version has the
  // same source and description: then that one is returned and nothing is written.
  virtual Result<ApprovalPolicyRecord> put_approval_policy(const ApprovalPolicyRecord& policy) = 0;
  // The newest version, or `version`; not_found when there is none.
  virtual Result<ApprovalPolicyRecord> get_approval_policy(std::string_view workspace_id,
                                                           std::string_view name,
                                                           std::optional<int> version = {}) = 0;
  // The newest version of each policy, by name.
  virtual Result<std::vector<ApprovalPolicyRecord>> list_approval_policies(
      std::string_view workspace_id) = 0;
  // Newest first; empty when there is no such policy.
  virtual Result<std::vector<ApprovalPolicyRecord>> list_approval_policy_versions(
      std::string_view workspace_id, std::string_view name) = 0;

  // Inserts or replaces (keeping created_at); members are stored sorted, each once.
  virtual Status put_group(const GroupRecord& group) = 0;
  virtual Result<GroupRecord> get_group(std::string_view workspace_id, std::string_view name) = 0;
  virtual Result<std::vector<GroupRecord>> list_groups(std::string_view workspace_id) = 0;  // by name
  virtual Status delete_group(std::string_view workspace_id, std::string_view name) = 0;  // not_found

  // One delegation per user: inserts or replaces.
  virtual Status put_delegation(const DelegationRecord& delegation) = 0;
  virtual Result<std::optional<DelegationRecord>> get_delegation(std::string_view workspace_id,
                                                                 std::string_view user_id) = 0;
  virtual Status delete_delegation(std::string_view workspace_id, std::string_view user_id) = 0;  // not_found
  // The delegations to `delegate_id` in force at `at`, by user id.
  virtual Result<std::vector<DelegationRecord>> delegations_to(std::string_view workspace_id,
                                                               std::string_view delegate_id,
                                                               TimePoint at) = 0;

  // ---- audit ---------------------------------------------------------------------------------

  // Appends and returns the id it was given (record.id is ignored). There is no update or delete.
  virtual Result<int64_t> append_audit(const AuditRecord& record) = 0;
  // Newest first (by id).
  virtual Result<std::vector<AuditRecord>> list_audit(const AuditFilter& filter) = 0;
};

// Opens a store from its URL: "sqlite:PATH" (or a plain path; "sqlite:///abs/path" also works,
// and "sqlite::memory:" gives a private in-memory store for tests), or
// "postgres://USER:PASSWORD@HOST:PORT/DB" ("postgresql://" too; "?pool_size=N", 8 by default).
// Creates the file and its folder when missing and applies migrations. Refuses, with the path in
// the message and the file untouched: a file that is not a database, another program's database,
// and a store whose schema is newer than this build. An unknown scheme is invalid_argument; an
// unreachable server is unavailable, its password never in the message.
Result<std::unique_ptr<Store>> open_store(const std::string& url);

// A new run id: 26 characters, Crockford base32, time-ordered (ULID layout: 48-bit milliseconds,
// 80 random bits). Strictly increasing within one process, even within one millisecond.
std::string new_run_id();

}  // namespace herald::store
