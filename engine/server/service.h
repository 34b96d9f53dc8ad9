// `herald serve` as a library: the store, the engine's workers, the scheduler, the event
// dispatcher, webhooks and the REST API in one process. Tests start it on port 0 against a
// temporary SQLite store; the CLI starts it from the configuration.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "engine/common/result.h"
#include "engine/runtime/engine.h"
#include "engine/server/http.h"

namespace herald::server {

class Metrics;

struct ServiceOptions {
  std::string store_url;                 // "sqlite:PATH"
  std::filesystem::path data_dir;        // where master.key lives
  runtime::EngineOptions engine;         // workers, Lua limits, env (secrets come per workspace)
  ServerOptions http;
  // API requests per second and burst, per token (429 beyond). 0 turns the limit off.
  double api_rate_per_second = 100;
  double api_burst = 200;
  // How long a webhook with `respond:` waits for its step when the trigger gives no timeout.
  std::chrono::milliseconds respond_timeout{30000};
  // SIGTERM: how long steps in flight may take to finish.
  std::chrono::milliseconds drain_grace{10000};
  // Where people reach this server (approval links in notifications), e.g.
  // "https://herald.agency.example"; empty: http://<listen address>.
  std::string public_url;
  // How long a signed approval link stays valid.
  std::chrono::seconds approval_link_ttl{std::chrono::hours(72)};
  // The steps workflows may use (the built-ins plus plugin capabilities); unset: the built-ins.
  std::optional<steps::StepRegistry> steps;
  // What this process does. `api`: the REST API and webhooks. `workers`: the engine driving runs,
  // the scheduler and the event dispatcher. `herald serve` does both, `herald serve --no-workers`
  // only the API, `herald worker` only the workers (with /healthz, /readyz and /metrics). Any
  // number of each share one store; see docs/scaling.md.
  bool api = true;
  bool workers = true;
};

class Service {
 public:
  explicit Service(ServiceOptions options);
  ~Service();  // stops
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Opens the store (migrations), resumes unfinished runs, builds the trigger index, starts the
  // scheduler, the event dispatcher and the HTTP server. /readyz answers 200 after this.
  Status start();
  uint16_t port() const;

  // Drains: stops accepting requests, lets requests and steps in flight finish within the grace
  // period; what did not finish resumes on the next start. False when steps were still running
  // at the end of the grace period.
  bool stop();

  const Router& router() const;
  Metrics& metrics();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::server
