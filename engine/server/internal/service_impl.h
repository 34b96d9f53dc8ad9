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

  std::mutex secrets_mu;
  std::map<std::string, std::shared_ptr<const runtime::WorkspaceSecrets>> secrets;

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
  std::shared_ptr<const TriggerIndex> current_index();
  std::shared_ptr<const runtime::WorkspaceSecrets> secrets_of(const std::string& workspace_id);
  void forget_secrets(const std::string& workspace_id);
  void wake_dispatcher();
  void dispatch_loop();
  size_t dispatch_pending();
  Response handle_webhook(Request& request);
  void add_public_routes();

  // api.cc
  Result<Actor> authenticate(const Request& request);
  void forget_token(const std::string& token_id);
  void add_api_routes();
};

// The JSON views the API returns (api.cc).
Json run_json(const store::RunRecord& run);
Json deployed_json(const store::DeployedWorkflow& workflow);

}  // namespace herald::server
