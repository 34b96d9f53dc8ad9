// The state behind server::Service, shared by service.cc (lifecycle, triggers, events, webhooks)
// and api.cc (the REST routes). Not installed; included by those two files only.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "engine/approvals/desk.h"
#include "engine/model/workflow.h"
#include "engine/security/hmac.h"
#include "engine/security/roles.h"
#include "engine/security/secret_box.h"
#include "engine/server/admin.h"
#include "engine/server/metrics.h"
#include "engine/server/scheduler.h"
#include "engine/server/service.h"
#include "engine/steps/step.h"
#include "engine/store/store.h"

namespace herald::server {

struct WebhookTrigger {
  std::string workspace_id;
  std::string workflow_id;
  int64_t version_id = 0;
  int index = 0;
  std::string secret;  // a template such as "{{ secrets.LAUNCH_HOOK }}"; empty: unsigned
  std::string respond_step;  // empty: reply 202 at once
  std::chrono::milliseconds respond_timeout{0};
};

struct EventSubscription {
  std::string workspace_id;
  std::string workflow_id;
  int64_t version_id = 0;
  int index = 0;
  std::string name;    // exact, or a prefix ending in '*' ("post.*"), or "*"
  std::string filter;  // Lua expression over `trigger`; empty: every matching event
};

// Which deployed workflows each trigger starts; rebuilt (and swapped whole) after every change
// to the deployments.
struct TriggerIndex {
  std::map<std::pair<std::string, std::string>, WebhookTrigger> webhooks;  // (workspace, path)
  std::map<std::string, std::vector<EventSubscription>> events;           // by workspace
  std::vector<ScheduledWorkflow> schedules;
};

// What a webhook with `respond:` waits for.
struct StepWaiter {
  std::string step_id;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  bool succeeded = false;
  Json output = nullptr;
  std::string state;  // the step's or the run's final state
  Json error = nullptr;
};

struct Service::Impl {
  ServiceOptions options;
  std::unique_ptr<store::Store> store;
  steps::StepRegistry registry;
  model::ParseOptions parse_options;
  Metrics metrics;
  Router router;
  std::unique_ptr<approvals::Desk> desk;  // before the engine, which borrows it
  std::unique_ptr<runtime::Engine> engine;
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<HttpServer> http;
  std::optional<security::SecretBox> box;
  std::string box_error;  // why there is no master key
  security::InMemoryReplayCache replay_cache;
  std::atomic<bool> ready{false};
  bool stopped = false;

  // Serializes the routes that change deployments (deploy, enable, disable, delete), each with
  // its rebuild of the trigger index, so that a deploy's webhook path check and its write do not
  // interleave with another's and the rebuilt indexes are swapped in in the order of the changes.
  // Per service: two services in one process (tests) do not wait for each other.
  std::mutex deployments_mu;

  std::mutex index_mu;
  std::shared_ptr<const TriggerIndex> index = std::make_shared<TriggerIndex>();

  std::mutex parsed_mu;
  std::map<int64_t, std::shared_ptr<const model::Workflow>> parsed;  // by version id

  // Secrets per workspace, read again after kSecretsTtl: another process (the API of a
  // deployment with several) may have changed them.
  struct CachedSecrets {
    std::shared_ptr<const runtime::WorkspaceSecrets> secrets;
    std::chrono::steady_clock::time_point fetched;
  };
  std::mutex secrets_mu;
  std::map<std::string, CachedSecrets> secrets;

  // The deployments the trigger index was built from, to notice another process's deploys.
  std::string index_signature;
  std::chrono::steady_clock::time_point next_index_check{};

  struct CachedToken {
    store::TokenRecord record;
    std::chrono::steady_clock::time_point fetched;
  };
  std::mutex auth_mu;
  std::unordered_map<std::string, CachedToken> tokens;

  struct Bucket {
    double level = 0;
    std::chrono::steady_clock::time_point at;
  };
  std::mutex rate_mu;
  std::unordered_map<std::string, Bucket> buckets;

  // Runs whose retry (POST /api/v1/runs/{id}/retry) is in progress: the engine announces a retried
  // run as "queued" again, which on_progress counts as a retry, not as a new run.
  std::mutex retrying_mu;
  std::set<std::string> retrying;

  std::mutex waiters_mu;
  std::unordered_map<std::string, std::shared_ptr<StepWaiter>> waiters;  // by run id
  std::atomic<size_t> waiter_count{0};

  std::thread dispatcher;
  std::mutex dispatch_mu;
  std::condition_variable dispatch_cv;
  bool dispatch_wake = false;
  bool dispatch_stopping = false;

  explicit Impl(ServiceOptions o);

  // service.cc
  Status start();
  bool stop();
  void on_progress(const runtime::ProgressEvent& event);
  Result<std::shared_ptr<const model::Workflow>> workflow_of(int64_t version_id);
  Result<std::shared_ptr<const model::Workflow>> parse(const std::string& source,
                                                       const std::string& file_name);
  std::vector<model::Diagnostic> check_triggers(const model::Workflow& workflow) const;
  Status rebuild_index();
  // Rebuilds the index when the deployments changed under another process.
  void refresh_index_if_changed();
  // For a webhook's `respond` when another process runs the step: its outcome from the store.
  void poll_step_outcome(const std::string& run_id, StepWaiter& waiter);
  std::shared_ptr<const TriggerIndex> current_index();
  std::shared_ptr<const runtime::WorkspaceSecrets> secrets_of(const std::string& workspace_id);
  void forget_secrets(const std::string& workspace_id);
  void wake_dispatcher();
  void dispatch_loop();
  size_t dispatch_pending();
  Response handle_webhook(Request& request);
  void add_public_routes();

  // api.cc
  using RouteBody = std::function<Result<Response>(Request&, const Actor&)>;
  // Authenticates the bearer token, applies the token's rate limit, checks `permission` for its
  // role, then runs `body`; any Error becomes its JSON response.
  Handler guarded(security::Permission permission, RouteBody body);
  void add_route(const std::string& method, const std::string& pattern, const std::string& summary,
                 security::Permission permission, RouteBody body);
  Result<Actor> authenticate(const Request& request);
  void forget_token(const std::string& token_id);
  void add_api_routes();

  // approvals_api.cc
  void add_approval_routes();
};

// Request helpers of the route files (api.cc).
Json optional_time(const std::optional<store::TimePoint>& at);
// `limit`: 50 when absent; 1..1000 or invalid_argument.
Result<int> limit_of(const Request& request);
// A query parameter that is present and not empty.
std::optional<std::string> query_value(const Request& request, const std::string& name);
// The body as a JSON object (415 for another Content-Type); an empty body is {} when `empty_ok`.
Result<Json> json_body(const Request& request, bool empty_ok = false);
Result<std::string> string_field(const Json& body, const std::string& name, bool required);
// {"items": [...], "next_cursor": ...}
Response page(Json items, const std::optional<std::string>& next_cursor);
// One page of a short list the store gives whole, by `limit` and `cursor` (the `key` field of
// the last item of the previous page); `descending`: ordered by a number, highest first.
Result<Response> page_of(Json items, const Request& request, const std::string& key,
                         bool descending);

// The JSON views the API returns (api.cc).
Json run_json(const store::RunRecord& run);
Json deployed_json(const store::DeployedWorkflow& workflow);

}  // namespace herald::server
