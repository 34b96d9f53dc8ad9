// The PostgreSQL store: what several Herald processes share (issue 6). The same operations, with
// the same meaning and error codes, as the SQLite store (the conformance suite runs against
// both); times and JSON are kept in the same representation. Each operation runs in its own
// READ COMMITTED transaction on a pooled connection; a serialization failure or deadlock runs it
// again, a lost connection is `unavailable`. Safe to call from any number of threads. Open it
// through open_store("postgres://..."); this header is for tests and tools that need it by name,
// and includes nothing of libpqxx (docs/decisions/0007-postgres-store.md).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "engine/store/store.h"

namespace herald::store {

namespace postgres {
class Pool;
}

struct PostgresOptions {
  // Connections opened at most; callers beyond that wait for one to be free.
  int pool_size = 8;
  // How long a caller waits for a free connection before `unavailable`.
  std::chrono::milliseconds pool_wait{30'000};
};

class PostgresStore final : public Store {
 public:
  // Connects to `url` (a libpq URI: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?...]) and
  // migrates the database. The query may carry pool_size=N, which is ours (taken out before the
  // rest goes to libpq) and overrides options.pool_size. Errors never echo the password.
  static Result<std::unique_ptr<PostgresStore>> open(const std::string& url,
                                                     PostgresOptions options = {});
  ~PostgresStore() override;

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
  // The pool's size, as configured (for tests and /readyz).
  int pool_size() const;

 private:
  explicit PostgresStore(std::unique_ptr<postgres::Pool> pool);

  std::unique_ptr<postgres::Pool> pool_;
};

}  // namespace herald::store
