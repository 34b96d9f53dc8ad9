#include "engine/server/service.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

#include "engine/approvals/approval_step.h"
#include "engine/common/duration.h"
#include "engine/common/time.h"
#include "engine/expr/evaluator.h"
#include "engine/runtime/engine.h"
#include "engine/server/internal/service_impl.h"
#include "engine/steps/builtins.h"
#include "engine/triggers/schedule_trigger.h"

namespace herald::server {

using Clock = std::chrono::system_clock;

namespace {

constexpr size_t kDispatchBatch = 100;
constexpr std::chrono::milliseconds kDispatchPoll{250};
constexpr std::chrono::milliseconds kMaxRespondTimeout{300000};

bool is_webhook_path(const std::string& path) {
  if (path.empty() || path.size() > 200) return false;
  for (char c : path) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  }
  return true;
}

bool event_name_matches(const std::string& pattern, const std::string& name) {
  if (pattern == "*") return true;
  if (!pattern.empty() && pattern.back() == '*') {
    return name.compare(0, pattern.size() - 1, pattern, 0, pattern.size() - 1) == 0;
  }
  return pattern == name;
}

model::Diagnostic diagnostic(const model::Workflow& workflow, const model::TriggerDef& trigger,
                             size_t index, const std::string& field, const std::string& message) {
  model::Diagnostic d;
  d.file = workflow.file;
  d.location = trigger.location;
  d.path = "triggers[" + std::to_string(index) + "]." + trigger.type + (field.empty() ? "" : "." + field);
  d.message = message;
  return d;
}

constexpr std::chrono::seconds kIndexCheck{2};
constexpr std::chrono::seconds kSecretsTtl{5};
constexpr std::chrono::milliseconds kRespondPoll{20};

// What the trigger index depends on: which version of which workflow is deployed and enabled.
std::string deployments_signature(const std::vector<store::DeployedWorkflow>& deployed) {
  std::string signature;
  for (const auto& d : deployed) {
    signature += d.workspace_id + "/" + d.workflow_id + "@" + std::to_string(d.version_id) + ";";
  }
  return signature;
}

bool truthy(const Json& value) { return !(value.is_null() || (value.is_boolean() && !value.get<bool>())); }

}  // namespace

Service::Impl::Impl(ServiceOptions o)
    : options(std::move(o)),
      registry(options.steps ? std::move(*options.steps) : steps::StepRegistry::with_builtins()),
      parse_options() {
  // Approvals need the store, which every service has: a registry made without them (tests, an
  // embedding program) gets the step, telling approvers through `notify` when there is one.
  if (registry.find("approval") == nullptr) {
    const steps::StepInfo* notify = registry.find("notify");
    (void)registry.add(approvals::make_approval_step(notify ? notify->step : nullptr));
  }
  parse_options = runtime::workflow_parse_options(registry);
  metrics.declare_counter("herald_runs_started_total", "Runs started, by workspace and workflow.",
                          {"workspace", "workflow"});
  metrics.declare_counter("herald_runs_retried_total",
                          "Failed runs retried from their failed steps, by workspace and workflow "
                          "(not counted as started again).",
                          {"workspace", "workflow"});
  metrics.declare_counter("herald_runs_finished_total",
                          "Runs finished, by workspace, workflow and outcome.",
                          {"workspace", "workflow", "outcome"});
  metrics.declare_histogram("herald_step_duration_seconds", "Step execution time, by step type.",
                            {"step_type", "outcome"},
                            {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                             5, 10, 30, 60});
  metrics.declare_counter("herald_events_total", "Events dispatched to event triggers.",
                          {"workspace"});
  metrics.declare_gauge("herald_ready_queue_depth", "Step executions waiting for a worker thread.", {});
  metrics.declare_gauge("herald_running_steps", "Step executions in progress.", {});
  metrics.declare_gauge("herald_waiting_runs", "Runs waiting for a timer (wait, retry backoff).", {});
}

// ---- lifecycle -------------------------------------------------------------------------------

Status Service::Impl::start() {
  auto opened = store::open_store(options.store_url);
  if (!opened.ok()) return opened.error();
  store = std::move(opened).value();

  auto key = security::load_master_key(master_key_path(options.data_dir));
  approvals::DeskOptions desk_options;
  if (key.ok()) {
    desk_options.link_key = key->derive("herald approval links v1");
    box.emplace(std::move(key).value());
  } else {
    box_error = key.error().message;
    spdlog::warn("secrets are unavailable: {}", box_error);
  }

  runtime::EngineOptions engine_options = options.engine;
  engine_options.drive_runs = options.workers;
  engine_options.secrets = Json::object();
  engine_options.on_progress = [this](const runtime::ProgressEvent& event) { on_progress(event); };
  engine_options.secrets_for = [this](const std::string& workspace_id) { return secrets_of(workspace_id); };
  engine_options.wants_event = [this](const std::string& workspace_id, const std::string& name) {
    auto idx = current_index();
    auto it = idx->events.find(workspace_id);
    if (it == idx->events.end()) return false;
    return std::any_of(it->second.begin(), it->second.end(),
                       [&](const EventSubscription& sub) { return event_name_matches(sub.name, name); });
  };
  desk_options.public_url = options.public_url;
  desk_options.link_ttl = options.approval_link_ttl;
  desk_options.wants_event = engine_options.wants_event;
  desk = std::make_unique<approvals::Desk>(*store, std::move(desk_options));
  engine_options.approvals = desk.get();
  engine = std::make_unique<runtime::Engine>(*store, registry, std::move(engine_options));

  metrics.gauge_callback("herald_ready_queue_depth",
                         [this] { return static_cast<double>(engine->stats().queued_units); });
  metrics.gauge_callback("herald_running_steps",
                         [this] { return static_cast<double>(engine->stats().running_units); });
  metrics.gauge_callback("herald_waiting_runs", [this] {
    store::RunFilter filter;
    filter.state = store::RunState::waiting;
    auto count = store->count_runs(filter);
    return count.ok() ? static_cast<double>(*count) : 0.0;
  });

  if (options.workers) {
    if (auto status = engine->resume_all(); !status.ok()) return status;
    scheduler = std::make_unique<Scheduler>(*store, *engine);
  }
  if (auto status = rebuild_index(); !status.ok()) return status;
  if (scheduler) {
    if (auto status = scheduler->start(); !status.ok()) return status;
  }
  dispatcher = std::thread([this] { dispatch_loop(); });

  add_public_routes();
  if (options.api) {
    add_api_routes();
    add_approval_routes();
  }
  http = std::make_unique<HttpServer>(router, options.http, &metrics);
  if (auto status = http->start(); !status.ok()) return status;
  if (options.public_url.empty()) {
    // Links in notifications point at this server unless a public address is configured.
    std::string host = options.http.host == "0.0.0.0" || options.http.host.empty() ? "127.0.0.1" : options.http.host;
    desk->set_public_url("http://" + host + ":" + std::to_string(http->port()));
  }
  ready = true;
  spdlog::info("herald serve: listening on {}:{}", options.http.host, http->port());
  return {};
}

bool Service::Impl::stop() {
  if (stopped) return true;
  stopped = true;
  ready = false;
  // Webhooks still waiting for their `respond` step get an answer.
  auto answer_waiters = [this] {
    std::lock_guard lock(waiters_mu);
    for (auto& [run_id, waiter] : waiters) {
      std::lock_guard waiter_lock(waiter->mu);
      if (waiter->done) continue;
      waiter->done = true;
      waiter->state = "shutting_down";
      waiter->cv.notify_all();
    }
  };
  if (http) {
    // A webhook waiting for its step is a request in flight: it gets the grace period like any
    // other, then its answer, since http->stop() waits for every handler to return and the
    // webhook's own respond timeout may be minutes longer.
    std::mutex grace_mu;
    std::condition_variable grace_cv;
    bool http_stopped = false;
    std::thread end_of_grace([&] {
      std::unique_lock lock(grace_mu);
      if (!grace_cv.wait_for(lock, options.drain_grace, [&] { return http_stopped; })) {
        lock.unlock();
        answer_waiters();
      }
    });
    http->stop(options.drain_grace);
    {
      std::lock_guard lock(grace_mu);
      http_stopped = true;
    }
    grace_cv.notify_all();
    end_of_grace.join();
  }
  if (scheduler) scheduler->stop();
  {
    std::lock_guard lock(dispatch_mu);
    dispatch_stopping = true;
  }
  dispatch_cv.notify_all();
  if (dispatcher.joinable()) dispatcher.join();
  bool drained = engine ? engine->shutdown(options.drain_grace) : true;
  answer_waiters();
  return drained;
}

// ---- progress: metrics, webhook replies, event wake-ups ---------------------------------------

void Service::Impl::on_progress(const runtime::ProgressEvent& event) {
  if (event.step_id.empty()) {
    if (event.state == "queued") {
      bool retried;
      {
        std::lock_guard lock(retrying_mu);
        retried = retrying.erase(event.run_id) > 0;
      }
      metrics.increment(retried ? "herald_runs_retried_total" : "herald_runs_started_total",
                        {event.workspace_id, event.workflow_id});
    } else if (event.state == "succeeded" || event.state == "failed" || event.state == "cancelled") {
      metrics.increment("herald_runs_finished_total", {event.workspace_id, event.workflow_id, event.state});
      if (event.state == "failed") {
        spdlog::warn(Json{{"msg", "run failed"},
                          {"run_id", event.run_id},
                          {"workspace", event.workspace_id},
                          {"workflow", event.workflow_id},
                          {"error", event.error ? event.error->message : ""}}
                         .dump());
      } else {
        spdlog::debug(Json{{"msg", "run " + event.state},
                           {"run_id", event.run_id},
                           {"workspace", event.workspace_id},
                           {"workflow", event.workflow_id}}
                          .dump());
      }
      if (!event.workspace_id.empty()) wake_dispatcher();
    }
  } else if (event.state == "succeeded" || event.state == "failed") {
    if (event.duration) {
      metrics.observe("herald_step_duration_seconds", {event.uses, event.state},
                      static_cast<double>(event.duration->count()) / 1000.0);
    }
    if (event.state == "failed") {
      spdlog::info(Json{{"msg", "step failed"},
                        {"run_id", event.run_id},
                        {"step_id", event.step_id},
                        {"workspace", event.workspace_id},
                        {"error", event.error ? event.error->message : ""}}
                       .dump());
    }
  } else if (event.state == "log") {
    spdlog::info(Json{{"msg", event.message},
                      {"run_id", event.run_id},
                      {"step_id", event.step_id},
                      {"workspace", event.workspace_id}}
                     .dump());
  }
  if (waiter_count.load() == 0) return;
  std::shared_ptr<StepWaiter> waiter;
  {
    std::lock_guard lock(waiters_mu);
    auto it = waiters.find(event.run_id);
    if (it == waiters.end()) return;
    waiter = it->second;
  }
  bool run_final = event.step_id.empty() &&
                   (event.state == "succeeded" || event.state == "failed" || event.state == "cancelled");
  bool step_final = event.step_id == waiter->step_id && event.item < 0 &&
                    (event.state == "succeeded" || event.state == "failed" || event.state == "skipped" ||
                     event.state == "cancelled");
  if (!run_final && !step_final) return;
  std::lock_guard lock(waiter->mu);
  if (waiter->done) return;
  waiter->done = true;
  waiter->succeeded = step_final && event.state == "succeeded";
  waiter->output = event.output;
  waiter->state = event.state;
  if (event.error) waiter->error = event.error->to_json();
  waiter->cv.notify_all();
}

// ---- workflows and triggers -------------------------------------------------------------------

Result<std::shared_ptr<const model::Workflow>> Service::Impl::parse(const std::string& source,
                                                                    const std::string& file_name) {
  auto outcome = model::parse_workflow(source, file_name, parse_options);
  std::vector<model::Diagnostic> diagnostics = outcome.diagnostics;
  if (outcome.ok()) {
    auto more = check_triggers(*outcome.workflow);
    diagnostics.insert(diagnostics.end(), more.begin(), more.end());
  }
  if (diagnostics.empty()) return std::make_shared<const model::Workflow>(std::move(*outcome.workflow));
  Json errors = Json::array();
  std::string message;
  for (const auto& d : diagnostics) {
    errors.push_back(d.to_json());
    message += (message.empty() ? "" : "\n") + d.to_string();
  }
  return http_error(ErrorCode::invalid_argument, 422,
                    "the workflow is not valid (" + std::to_string(diagnostics.size()) +
                        (diagnostics.size() == 1 ? " error)" : " errors)") + ":\n" + message,
                    Json{{"errors", errors}});
}

Result<std::shared_ptr<const model::Workflow>> Service::Impl::workflow_of(int64_t version_id) {
  {
    std::lock_guard lock(parsed_mu);
    if (auto it = parsed.find(version_id); it != parsed.end()) return it->second;
  }
  auto version = store->get_workflow_version(version_id);
  if (!version.ok()) return version.error();
  auto outcome = model::parse_workflow(version->source, version->file_name, parse_options);
  if (!outcome.ok()) {
    return make_error(ErrorCode::failed_precondition,
                      "stored version " + std::to_string(version_id) + " no longer parses: " +
                          (outcome.diagnostics.empty() ? std::string("?") : outcome.diagnostics[0].to_string()));
  }
  auto workflow = std::make_shared<const model::Workflow>(std::move(*outcome.workflow));
  std::lock_guard lock(parsed_mu);
  parsed.emplace(version_id, workflow);
  return workflow;
}

std::vector<model::Diagnostic> Service::Impl::check_triggers(const model::Workflow& workflow) const {
  std::vector<model::Diagnostic> out;
  auto step_exists = [&](const std::string& id) {
    return std::any_of(workflow.steps.begin(), workflow.steps.end(),
                       [&](const model::StepDef& step) { return step.id == id; });
  };
  for (size_t i = 0; i < workflow.triggers.size(); ++i) {
    const auto& trigger = workflow.triggers[i];
    const Json& config = trigger.config;
    auto bad = [&](const std::string& field, const std::string& message) {
      out.push_back(diagnostic(workflow, trigger, i, field, message));
    };
    auto only_keys = [&](std::initializer_list<const char*> keys) {
      if (!config.is_object()) return;
      for (const auto& [key, value] : config.items()) {
        if (std::none_of(keys.begin(), keys.end(), [&](const char* k) { return key == k; })) {
          std::string allowed;
          for (const char* k : keys) allowed += (allowed.empty() ? "" : ", ") + std::string(k);
          bad(key, "unknown field; expected one of: " + allowed);
        }
      }
    };
    if (trigger.type == "schedule") {
      auto parsed_trigger = triggers::parse_schedule_trigger(config);
      if (!parsed_trigger.ok()) bad("", parsed_trigger.error().message);
    } else if (trigger.type == "webhook") {
      if (!config.is_object()) {
        bad("", "expected a map with `path`");
        continue;
      }
      only_keys({"path", "secret", "respond"});
      auto path = config.find("path");
      if (path == config.end() || !path->is_string() || !is_webhook_path(path->get<std::string>())) {
        bad("path", "expected a path of letters, digits, '-', '_' or '.' (at most 200), e.g. launch");
      }
      if (auto secret = config.find("secret"); secret != config.end()) {
        if (!secret->is_string() || secret->get<std::string>().empty()) {
          bad("secret", "expected the signing secret, e.g. \"{{ secrets.LAUNCH_HOOK }}\"");
        } else if (auto error = expr::check_template(secret->get<std::string>())) {
          bad("secret", *error);
        }
      }
      if (auto respond = config.find("respond"); respond != config.end()) {
        if (!respond->is_object() || !respond->contains("step") || !(*respond)["step"].is_string()) {
          bad("respond", "expected { step: STEP_ID, timeout: 30s }");
        } else {
          std::string step = (*respond)["step"].get<std::string>();
          if (!step_exists(step)) bad("respond.step", "no step '" + step + "' in this workflow");
          if (respond->contains("timeout")) {
            const Json& timeout = (*respond)["timeout"];
            auto parsed_timeout = timeout.is_string() ? parse_duration(timeout.get<std::string>())
                                                      : Result<std::chrono::milliseconds>(make_error(
                                                            ErrorCode::invalid_argument, "expected a duration"));
            if (!parsed_timeout.ok() || *parsed_timeout <= std::chrono::milliseconds(0) ||
                *parsed_timeout > kMaxRespondTimeout) {
              bad("respond.timeout", "expected a duration from 1ms to 5m, e.g. 10s");
            }
          }
          for (const auto& [key, value] : respond->items()) {
            if (key != "step" && key != "timeout") bad("respond." + key, "unknown field; expected step or timeout");
          }
        }
      }
    } else if (trigger.type == "event") {
      if (!config.is_object()) {
        bad("", "expected a map with `name`");
        continue;
      }
      only_keys({"name", "filter"});
      auto name = config.find("name");
      if (name == config.end() || !name->is_string() || name->get<std::string>().empty() ||
          name->get<std::string>().size() > 200) {
        bad("name", "expected the event's name, e.g. run.failed or post.* (at most 200 characters)");
      }
      if (auto filter = config.find("filter"); filter != config.end()) {
        if (!filter->is_string()) {
          bad("filter", "expected a Lua expression, e.g. trigger.payload.workflow == \"launch\"");
        } else if (auto error = expr::check_expression(filter->get<std::string>())) {
          bad("filter", *error);
        }
      }
    } else if (trigger.type == "poll") {
      bad("", "poll triggers need a trigger source from a plugin; none is installed");
    }
  }
  return out;
}

Status Service::Impl::rebuild_index() {
  auto deployed = store->all_enabled_deployed();
  if (!deployed.ok()) return deployed.error();
  auto fresh = std::make_shared<TriggerIndex>();
  for (const auto& d : *deployed) {
    auto workflow = workflow_of(d.version_id);
    if (!workflow.ok()) {
      spdlog::error("workflow {} of workspace {}: {}", d.workflow_id, d.workspace_id, workflow.error().message);
      continue;
    }
    const auto& triggers = (*workflow)->triggers;
    for (size_t i = 0; i < triggers.size(); ++i) {
      const auto& trigger = triggers[i];
      const Json& config = trigger.config;
      if (trigger.type == "webhook") {
        WebhookTrigger hook;
        hook.workspace_id = d.workspace_id;
        hook.workflow_id = d.workflow_id;
        hook.version_id = d.version_id;
        hook.index = static_cast<int>(i);
        hook.secret = config.value("secret", "");
        hook.respond_timeout = options.respond_timeout;
        if (config.contains("respond")) {
          hook.respond_step = config["respond"].value("step", "");
          if (config["respond"].contains("timeout")) {
            auto timeout = parse_duration(config["respond"]["timeout"].get<std::string>());
            if (timeout.ok()) hook.respond_timeout = *timeout;
          }
        }
        // Two workflows on one path: the first (by workflow id) keeps it; deploy refuses this.
        fresh->webhooks.emplace(std::make_pair(d.workspace_id, config.value("path", "")), hook);
      } else if (trigger.type == "event") {
        EventSubscription sub;
        sub.workspace_id = d.workspace_id;
        sub.workflow_id = d.workflow_id;
        sub.version_id = d.version_id;
        sub.index = static_cast<int>(i);
        sub.name = config.value("name", "");
        sub.filter = config.value("filter", "");
        fresh->events[d.workspace_id].push_back(std::move(sub));
      } else if (trigger.type == "schedule") {
        auto parsed_trigger = triggers::parse_schedule_trigger(config);
        if (!parsed_trigger.ok()) continue;
        ScheduledWorkflow scheduled;
        scheduled.workspace_id = d.workspace_id;
        scheduled.workflow_id = d.workflow_id;
        scheduled.version_id = d.version_id;
        scheduled.trigger_index = static_cast<int>(i);
        scheduled.trigger = std::move(parsed_trigger).value();
        scheduled.config = config;
        scheduled.counting_from = d.updated_at;
        fresh->schedules.push_back(std::move(scheduled));
      }
    }
  }
  if (scheduler) scheduler->set_schedules(fresh->schedules);
  std::lock_guard lock(index_mu);
  index = std::move(fresh);
  index_signature = deployments_signature(*deployed);
  return {};
}

// Each process keeps its own trigger index; a deploy through another process's API shows up here
// within kIndexCheck.
void Service::Impl::refresh_index_if_changed() {
  auto now = std::chrono::steady_clock::now();
  if (now < next_index_check) return;
  next_index_check = now + kIndexCheck;
  auto deployed = store->all_enabled_deployed();
  if (!deployed.ok()) return;
  std::string signature = deployments_signature(*deployed);
  {
    std::lock_guard lock(index_mu);
    if (signature == index_signature) return;
  }
  std::lock_guard deployments(deployments_mu);
  if (auto status = rebuild_index(); !status.ok()) {
    spdlog::error("rebuilding the trigger index failed: {}", status.error().message);
  }
}

std::shared_ptr<const TriggerIndex> Service::Impl::current_index() {
  std::lock_guard lock(index_mu);
  return index;
}

// ---- secrets ----------------------------------------------------------------------------------

std::shared_ptr<const runtime::WorkspaceSecrets> Service::Impl::secrets_of(const std::string& workspace_id) {
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(secrets_mu);
    if (auto it = secrets.find(workspace_id);
        it != secrets.end() && now - it->second.fetched < kSecretsTtl) {
      return it->second.secrets;
    }
  }
  auto fresh = std::make_shared<runtime::WorkspaceSecrets>();
  if (box) {
    auto values = decrypt_secrets(*store, *box, workspace_id);
    if (values.ok()) {
      fresh->values = std::move(values).value();
      for (const auto& [name, value] : fresh->values.items()) fresh->redactor.add(value.get<std::string>());
    } else {
      spdlog::error("secrets of workspace {}: {}", workspace_id, values.error().message);
    }
  }
  std::lock_guard lock(secrets_mu);
  secrets[workspace_id] = CachedSecrets{fresh, now};
  return fresh;
}

void Service::Impl::forget_secrets(const std::string& workspace_id) {
  std::lock_guard lock(secrets_mu);
  secrets.erase(workspace_id);
}

// ---- events -----------------------------------------------------------------------------------

void Service::Impl::wake_dispatcher() {
  {
    std::lock_guard lock(dispatch_mu);
    dispatch_wake = true;
  }
  dispatch_cv.notify_one();
}

void Service::Impl::dispatch_loop() {
  while (true) {
    {
      std::unique_lock lock(dispatch_mu);
      dispatch_cv.wait_for(lock, kDispatchPoll, [this] { return dispatch_stopping || dispatch_wake; });
      if (dispatch_stopping) return;
      dispatch_wake = false;
    }
    refresh_index_if_changed();
    if (!options.workers) continue;  // the processes with workers start the events' runs
    while (dispatch_pending() == kDispatchBatch) {
      std::lock_guard lock(dispatch_mu);
      if (dispatch_stopping) return;
    }
  }
}

// Starts the runs of one batch of pending events; each event's runs are committed together with
// the event's consumption, so an event starts its workflows exactly once.
size_t Service::Impl::dispatch_pending() {
  auto events = store->pending_events(static_cast<int>(kDispatchBatch));
  if (!events.ok()) {
    spdlog::error("reading pending events failed: {}", events.error().message);
    return 0;
  }
  auto idx = current_index();
  auto& evaluator = expr::Evaluator::for_this_thread();
  store::Commit unmatched;  // events that start nothing are consumed together
  for (const auto& event : *events) {
    Json trigger = {{"type", "event"},
                    {"event", {{"id", event.id},
                               {"name", event.name},
                               {"payload", event.payload},
                               {"source", event.source},
                               {"created_at", format_iso8601(event.created_at)}}}};
    // What the filter and the run both see as `trigger`.
    trigger["name"] = event.name;
    trigger["payload"] = event.payload;
    std::vector<runtime::PreparedRun> runs;
    if (auto it = idx->events.find(event.workspace_id); it != idx->events.end()) {
      for (const auto& sub : it->second) {
        if (!event_name_matches(sub.name, event.name)) continue;
        // A workflow never starts on its own run events: that would loop forever.
        if (event.name.rfind("run.", 0) == 0 && event.payload.value("workflow", "") == sub.workflow_id) continue;
        if (!sub.filter.empty()) {
          expr::Scope scope;
          scope.trigger = &trigger;
          auto passed = evaluator.evaluate(sub.filter, scope, options.engine.limits);
          if (!passed.ok()) {
            spdlog::warn("event {} ({}): filter of workflow {} failed: {}", event.id, event.name,
                         sub.workflow_id, passed.error().message);
            continue;
          }
          if (!truthy(*passed)) continue;
        }
        runtime::RunRequest request;
        request.workspace_id = event.workspace_id;
        request.version_id = sub.version_id;
        request.trigger = trigger;
        auto prepared = engine->prepare_run(std::move(request));
        if (!prepared.ok()) {
          spdlog::warn("event {} ({}): cannot start workflow {}: {}", event.id, event.name, sub.workflow_id,
                       prepared.error().message);
          continue;
        }
        runs.push_back(std::move(prepared).value());
      }
    }
    if (runs.empty()) {
      unmatched.consume_events.push_back(event.id);
      continue;
    }
    store::Commit consume;
    consume.consume_events.push_back(event.id);
    auto status = engine->start_prepared(std::move(runs), std::move(consume));
    if (!status.ok()) {
      // Another dispatcher consumed it, or the store is down: it stays pending if not consumed.
      spdlog::warn("event {} ({}): {}", event.id, event.name, status.error().message);
      continue;
    }
    metrics.increment("herald_events_total", {event.workspace_id});
  }
  if (!unmatched.consume_events.empty()) {
    if (auto status = store->commit(unmatched); !status.ok()) {
      spdlog::warn("consuming {} events failed: {}", unmatched.consume_events.size(), status.error().message);
    }
  }
  return events->size();
}

// ---- public routes and webhooks ----------------------------------------------------------------

Response Service::Impl::handle_webhook(Request& request) {
  auto idx = current_index();
  auto it = idx->webhooks.find({request.params["workspace"], request.params["path"]});
  if (it == idx->webhooks.end()) {
    return error_response(make_error(ErrorCode::not_found, "no webhook at " + request.path), request.request_id);
  }
  const WebhookTrigger& hook = it->second;
  if (!hook.secret.empty()) {
    auto secrets_view = secrets_of(hook.workspace_id);
    expr::Scope scope;
    scope.secrets = &secrets_view->values;
    scope.redactor = &secrets_view->redactor;
    auto secret = expr::Evaluator::for_this_thread().render(Json(hook.secret), scope, options.engine.limits);
    if (!secret.ok() || !secret->is_string() || secret->get<std::string>().empty()) {
      spdlog::error("webhook {}: the signing secret does not resolve: {}", request.path,
                    secret.ok() ? "empty" : secret.error().message);
      return error_response(make_error(ErrorCode::failed_precondition,
                                       "this webhook's signing secret is not set in the workspace"),
                            request.request_id);
    }
    const std::string* timestamp = request.header("x-herald-timestamp");
    const std::string* signature = request.header("x-herald-signature");
    security::WebhookVerifyOptions verify;
    verify.replay_cache = &replay_cache;
    auto verified = security::verify_webhook(secret->get<std::string>(), request.body,
                                             timestamp ? *timestamp : "", signature ? *signature : "",
                                             verify);
    if (!verified.ok()) return error_response(verified.error(), request.request_id);
  }

  Json body;
  std::string type = request.content_type();
  if (type == "application/json" || (type.size() > 5 && type.compare(type.size() - 5, 5, "+json") == 0)) {
    body = Json::parse(request.body, nullptr, false);
    if (body.is_discarded()) {
      return error_response(make_error(ErrorCode::invalid_argument, "the body is not valid JSON"), request.request_id);
    }
  } else if (request.body.empty()) {
    body = nullptr;
  } else {
    body = request.body;
  }
  Json headers = Json::object();
  for (const auto& [name, value] : request.headers) {
    if (name == "authorization" || name == "cookie" || name == "x-herald-signature") continue;
    headers[name] = value;
  }
  Json query = Json::object();
  for (const auto& [name, value] : request.query) query[name] = value;
  runtime::RunRequest run_request;
  run_request.workspace_id = hook.workspace_id;
  run_request.version_id = hook.version_id;
  run_request.trigger = {{"type", "webhook"},
                         {"path", request.params["path"]},
                         {"body", std::move(body)},
                         {"headers", std::move(headers)},
                         {"query", std::move(query)},
                         {"request_id", request.request_id},
                         {"received_at", format_iso8601(Clock::now())}};
  auto prepared = engine->prepare_run(std::move(run_request));
  if (!prepared.ok()) return error_response(prepared.error(), request.request_id);
  std::string run_id = prepared->record.id;

  std::shared_ptr<StepWaiter> waiter;
  if (!hook.respond_step.empty()) {
    waiter = std::make_shared<StepWaiter>();
    waiter->step_id = hook.respond_step;
    std::lock_guard lock(waiters_mu);
    waiters.emplace(run_id, waiter);
    waiter_count.fetch_add(1);
  }
  auto forget_waiter = [&] {
    if (!waiter) return;
    std::lock_guard lock(waiters_mu);
    waiters.erase(run_id);
    waiter_count.fetch_sub(1);
  };
  std::vector<runtime::PreparedRun> runs;
  runs.push_back(std::move(prepared).value());
  if (auto status = engine->start_prepared(std::move(runs)); !status.ok()) {
    forget_waiter();
    return error_response(status.error(), request.request_id);
  }
  if (!waiter) return json_response(202, {{"run_id", run_id}, {"workflow", hook.workflow_id}});

  std::unique_lock lock(waiter->mu);
  bool done;
  if (options.workers) {
    done = waiter->cv.wait_for(lock, hook.respond_timeout, [&] { return waiter->done; });
  } else {
    // Another process runs the step: its outcome comes through the store.
    auto deadline = std::chrono::steady_clock::now() + hook.respond_timeout;
    while (!(done = waiter->done) && std::chrono::steady_clock::now() < deadline) {
      lock.unlock();
      poll_step_outcome(run_id, *waiter);
      lock.lock();
      if (waiter->done) continue;
      waiter->cv.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() + kRespondPoll));
    }
    done = waiter->done;
  }
  Json output = waiter->output;
  bool succeeded = waiter->succeeded;
  std::string state = waiter->state;
  Json error = waiter->error;
  lock.unlock();
  forget_waiter();
  if (!done) {
    return error_response(http_error(ErrorCode::deadline_exceeded, 504,
                                     "step '" + hook.respond_step + "' did not finish within " +
                                         format_duration(hook.respond_timeout) + "; the run continues",
                                     {{"run_id", run_id}}),
                          request.request_id);
  }
  if (state == "shutting_down") {
    return error_response(http_error(ErrorCode::unavailable, 503,
                                     "Herald is shutting down; the run continues when it starts again",
                                     {{"run_id", run_id}}),
                          request.request_id);
  }
  if (!succeeded) {
    Json details = {{"run_id", run_id}, {"step", hook.respond_step}, {"state", state}};
    if (!error.is_null()) details["error"] = error;
    return error_response(http_error(ErrorCode::failed_precondition, 502,
                                     "step '" + hook.respond_step + "' did not succeed (" + state + ")", details),
                          request.request_id);
  }
  Response response = json_response(200, output);
  response.headers.emplace_back("X-Herald-Run-Id", run_id);
  return response;
}

void Service::Impl::add_public_routes() {
  router.add("GET", "/healthz", "Process alive", [](Request&) { return json_response(200, {{"status", "ok"}}); });
  router.add("GET", "/readyz", "Store reachable, migrations applied, workers running", [this](Request& request) {
    if (!ready.load()) {
      return error_response(make_error(ErrorCode::unavailable, "starting or stopping"), request.request_id);
    }
    auto probe = store->next_timer_due();
    if (!probe.ok()) {
      return error_response(make_error(ErrorCode::unavailable, "store: " + probe.error().message), request.request_id);
    }
    return json_response(200, {{"status", "ready"}, {"api", options.api}, {"workers", options.workers}});
  });
  router.add("GET", "/metrics", "Prometheus metrics", [this](Request&) {
    Response response;
    response.content_type = "text/plain; version=0.0.4";
    response.body = metrics.render();
    return response;
  });
  if (!options.api) return;
  router.add("POST", "/hooks/{workspace}/{path}", "Start a workflow from a webhook",
             [this](Request& request) { return handle_webhook(request); });
}

void Service::Impl::poll_step_outcome(const std::string& run_id, StepWaiter& waiter) {
  auto steps = store->get_steps(run_id);
  auto run = store->get_run(run_id);
  if (!steps.ok() || !run.ok()) return;
  for (const auto& step : *steps) {
    if (step.step_id != waiter.step_id || step.item >= 0 || step.on_error) continue;
    if (!store::is_final(step.state)) break;
    std::lock_guard lock(waiter.mu);
    waiter.done = true;
    waiter.succeeded = step.state == store::StepState::succeeded;
    waiter.state = std::string(store::to_string(step.state));
    waiter.output = step.output;
    waiter.error = step.error;
    return;
  }
  if (store::is_final(run->state)) {
    // The run ended without the step finishing (it failed before, or was cancelled).
    std::lock_guard lock(waiter.mu);
    waiter.done = true;
    waiter.succeeded = false;
    waiter.state = std::string(store::to_string(run->state));
    waiter.error = run->error;
  }
}

// ---- Service ----------------------------------------------------------------------------------

Service::Service(ServiceOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Service::~Service() { impl_->stop(); }
Status Service::start() { return impl_->start(); }
uint16_t Service::port() const { return impl_->http ? impl_->http->port() : 0; }
bool Service::stop() { return impl_->stop(); }
const Router& Service::router() const { return impl_->router; }
Metrics& Service::metrics() { return impl_->metrics; }

}  // namespace herald::server
