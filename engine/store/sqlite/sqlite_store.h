// The embedded store: one SQLite file in WAL mode, the default for `herald run` and a single
// `herald serve`. Writes go through one connection behind a mutex (SQLite allows one writer at
// a time anyway), and commits arriving together are written in one transaction; reads use a
// small pool of separate connections, which WAL lets run alongside the writer; a thread of its
// own checkpoints the WAL. Safe to call from any number of threads. Open it through
// open_store("sqlite:PATH"); this header is for tests and tools that need it by name.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "engine/store/store.h"

struct sqlite3;

namespace herald::store {

namespace sqlite {
class Connection;
}

class SqliteStore final : public Store {
 public:
  // Opens (creating when missing) the database file at `path` and migrates it; ":memory:" opens
  // a private in-memory database that lives as long as the store. The parent folder must exist.
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path);
  ~SqliteStore() override;

  Status migrate() override;
  Result<WorkflowVersion> put_workflow_version(std::string_view workspace_id,
                                               std::string_view workflow_id,
                                               std::string_view source,
                                               std::string_view file_name) override;
  Result<WorkflowVersion> get_workflow_version(int64_t id) override;
  Status commit(const Commit& commit) override;
  Result<RunRecord> get_run(std::string_view run_id) override;
  Result<std::vector<RunRecord>> list_runs(const RunFilter& filter) override;
  Result<int64_t> count_runs(const RunFilter& filter) override;
  Result<std::vector<std::string>> unfinished_run_ids() override;
  Result<std::vector<StepRecord>> get_steps(std::string_view run_id) override;
  Result<std::vector<AttemptRecord>> get_attempts(std::string_view run_id) override;
  Result<std::vector<RunLease>> claim_runs(const ClaimRequest& request) override;
  Result<std::vector<std::string>> renew_leases(const std::vector<RunLease>& leases,
                                                TimePoint until) override;
  Status release_leases(const std::vector<RunLease>& leases) override;
  Result<std::vector<TimerRecord>> due_timers(TimePoint now, int limit) override;
  Result<std::optional<TimePoint>> next_timer_due() override;
  Result<std::vector<TimerRecord>> timers_of_run(std::string_view run_id) override;

  Result<std::vector<EventRecord>> pending_events(int limit) override;
  Result<std::vector<ScheduleMark>> schedule_marks() override;

  Result<DeployResult> deploy_workflow(std::string_view workspace_id, std::string_view workflow_id,
                                       std::string_view source, std::string_view file_name,
                                       std::string_view actor) override;
  Result<DeployedWorkflow> get_deployed(std::string_view workspace_id,
                                        std::string_view workflow_id) override;
  Result<std::vector<DeployedWorkflow>> list_deployed(const WorkflowFilter& filter) override;
  Result<std::vector<DeployedWorkflow>> all_enabled_deployed() override;
  Status set_workflow_enabled(std::string_view workspace_id, std::string_view workflow_id,
                              bool enabled, std::string_view actor) override;
  Status delete_deployed(std::string_view workspace_id, std::string_view workflow_id) override;
  Result<std::vector<WorkflowVersion>> list_workflow_versions(
      std::string_view workspace_id, std::string_view workflow_id) override;

  Status create_workspace(const Workspace& workspace) override;
  Result<Workspace> get_workspace(std::string_view id) override;
  Result<std::vector<Workspace>> list_workspaces() override;
  Status create_user(const User& user) override;
  Result<User> get_user(std::string_view id) override;
  Status put_membership(const Membership& membership) override;
  Result<Membership> get_membership(std::string_view workspace_id,
                                    std::string_view user_id) override;
  Result<std::vector<Membership>> list_memberships(std::string_view workspace_id) override;
  Status delete_membership(std::string_view workspace_id, std::string_view user_id) override;
  Status create_token(const TokenRecord& token) override;
  Result<TokenRecord> get_token(std::string_view id) override;
  Result<std::vector<TokenRecord>> list_tokens(std::string_view workspace_id) override;
  Status revoke_token(std::string_view workspace_id, std::string_view id) override;
  Status touch_token(std::string_view id, TimePoint used_at) override;

  Status put_secret(const SecretRecord& secret) override;
  Result<SecretRecord> get_secret(std::string_view workspace_id, std::string_view name) override;
  Result<std::vector<SecretRecord>> list_secrets(std::string_view workspace_id) override;
  Status delete_secret(std::string_view workspace_id, std::string_view name) override;
  Status kv_put(const KvEntry& entry, int64_t max_entries) override;
  Result<std::optional<KvEntry>> kv_get(std::string_view workspace_id, std::string_view plugin,
                                        std::string_view key, TimePoint now) override;
  Result<bool> kv_delete(std::string_view workspace_id, std::string_view plugin,
                         std::string_view key) override;

  Status write_approval(const ApprovalWrite& write) override;
  Result<ApprovalRecord> get_approval(std::string_view workspace_id, std::string_view id) override;
  Result<ApprovalRecord> get_approval_by_id(std::string_view id) override;
  Result<std::optional<ApprovalRecord>> find_step_approval(std::string_view run_id,
                                                           std::string_view step_id,
                                                           int item) override;
  Result<std::vector<ApprovalRecord>> list_approvals(const ApprovalFilter& filter) override;
  Result<std::vector<ApprovalRecord>> due_approvals(TimePoint now, int limit) override;
  Result<ApprovalPolicyRecord> put_approval_policy(const ApprovalPolicyRecord& policy) override;
  Result<ApprovalPolicyRecord> get_approval_policy(std::string_view workspace_id,
                                                   std::string_view name,
                                                   std::optional<int> version = {}) override;
  Result<std::vector<ApprovalPolicyRecord>> list_approval_policies(
      std::string_view workspace_id) override;
  Result<std::vector<ApprovalPolicyRecord>> list_approval_policy_versions(
      std::string_view workspace_id, std::string_view name) override;
  Status put_group(const GroupRecord& group) override;
  Result<GroupRecord> get_group(std::string_view workspace_id, std::string_view name) override;
  Result<std::vector<GroupRecord>> list_groups(std::string_view workspace_id) override;
  Status delete_group(std::string_view workspace_id, std::string_view name) override;
  Status put_delegation(const DelegationRecord& delegation) override;
  Result<std::optional<DelegationRecord>> get_delegation(std::string_view workspace_id,
                                                         std::string_view user_id) override;
  Status delete_delegation(std::string_view workspace_id, std::string_view user_id) override;
  Result<std::vector<DelegationRecord>> delegations_to(std::string_view workspace_id,
                                                       std::string_view delegate_id,
                                                       TimePoint at) override;

  Result<int64_t> append_audit(const AuditRecord& record) override;
  Result<std::vector<AuditRecord>> list_audit(const AuditFilter& filter) override;

  // The highest migration this build knows; a database with a higher one is refused.
  static int latest_schema_version();

 private:
  struct PendingCommit;
  // How many Commits may share one transaction; bounds the leader's own wait.
  static constexpr size_t kMaxBatch = 64;

  SqliteStore(std::string path, std::unique_ptr<sqlite::Connection> writer);

  void write_batch(std::span<PendingCommit*> batch);

  // Checkpoints (copying the WAL back into the database file, with its fsyncs) run on a thread
  // of their own, so a slow disk never stalls commits; see start_checkpointer().
  Status start_checkpointer();
  void run_checkpointer(std::unique_ptr<sqlite::Connection> connection);
  static int on_wal_commit(void* store, sqlite3* db, const char* schema, int frames);

  // Runs `body(writer)` in one write transaction (BEGIN IMMEDIATE ... COMMIT) under the writer
  // lock: the writes outside commit() (versions, deployments, tenancy, secrets, audit).
  template <typename T, typename F>
  Result<T> with_writer(F&& body);

  // Runs `read` on a reader connection (or on the writer, under its lock, for :memory:).
  template <typename F>
  auto with_reader(F&& read) -> decltype(read(std::declval<sqlite::Connection&>()));
  Result<std::unique_ptr<sqlite::Connection>> acquire_reader();
  void release_reader(std::unique_ptr<sqlite::Connection> connection);

  const std::string path_;
  const bool in_memory_;

  // Guards the writer connection: the commit leader, with_writer and migrate take it.
  std::mutex write_mutex_;
  std::unique_ptr<sqlite::Connection> writer_;

  // Callers of commit() waiting for a leader to write their Commit (see commit()).
  std::mutex queue_mutex_;
  std::deque<PendingCommit*> queue_;

  std::mutex readers_mutex_;
  std::vector<std::unique_ptr<sqlite::Connection>> idle_readers_;

  int wal_frames_ = 0;             // as the WAL hook last saw it (writer only)
  int next_checkpoint_at_ = 1000;  // WAL frames at which to wake the checkpointer (writer only)
  std::mutex checkpoint_mutex_;
  std::condition_variable checkpoint_wake_;
  bool checkpoint_requested_ = false;
  bool stopping_ = false;
  std::thread checkpointer_;
};

}  // namespace herald::store
