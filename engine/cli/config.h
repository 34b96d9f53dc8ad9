// Herald's configuration: herald.yaml, overridden by HERALD_* environment variables, overridden
// by command-line flags. Read once by the CLI and handed to the engine.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "engine/common/result.h"
#include "engine/expr/evaluator.h"

namespace herald::cli {

struct Config {
  std::string config_file;          // the herald.yaml that was read, if any
  std::string data_dir = ".herald"; // HERALD_DATA_DIR; holds the SQLite database
  std::string store_url;            // HERALD_STORE; empty: sqlite:<data_dir>/herald.db
  int workers = 0;                  // HERALD_WORKERS; 0: the number of cores
  std::vector<std::string> env_allow;  // HERALD_ENV_ALLOW (comma-separated): what `env` shows
  expr::Limits limits;              // lua.instructions / lua.memory_mb
  std::string listen = "127.0.0.1:8080";  // HERALD_LISTEN: where `herald serve` listens
  std::string log_level = "info";         // HERALD_LOG_LEVEL: trace, debug, info, warn, error
  size_t max_body_bytes = 1 << 20;        // request bodies over this get 413
  // HERALD_PUBLIC_URL: the address people reach this server at, used in the signed decision
  // links of approval messages; empty: http://<listen address>.
  std::string public_url;
  // approvals.link_ttl: how long a signed decision link stays valid.
  std::chrono::seconds approval_link_ttl{std::chrono::hours(72)};
  // plugins.paths: folders (or files) to load plugins from, after the plugins built with Herald.
  // HERALD_PLUGINS_PATHS (colon-separated) replaces it when set.
  std::vector<std::string> plugin_paths;
  // plugins.isolate: names of native plugins run in a `herald plugin-host` child;
  // plugins.call_timeout: how long an isolated call may take before its host is killed.
  std::vector<std::string> plugin_isolate;
  std::chrono::milliseconds plugin_call_timeout{30'000};
  // plugins.memory_limit_mb: the memory of each isolated plugin's host (0: unlimited).
  size_t plugin_memory_limit_mb = 1024;
  // notify.channels: the named channels of the `notify` step, {name: {uses, with}}, each `with`
  // as written (not templates). See docs/steps/notify.md.
  Json notify_channels = Json::object();

  // engine.lease: how long a run stays with an engine that stops renewing its lease (it died);
  // engine.poll: how often an idle engine looks for work without a wake-up.
  std::chrono::milliseconds lease{30'000};
  std::chrono::milliseconds poll{1'000};
  std::string effective_store_url() const;
  Json env_json() const;      // the allowed environment variables that are set
  Json secrets_json() const;  // HERALD_SECRET_<NAME> variables, as secrets.<NAME>
};

// Reads `path` (or ./herald.yaml when path is empty and the file exists), then the environment.
// A config file that does not parse, or a field of the wrong type, is an error naming the file,
// line and field.
Result<Config> load_config(const std::string& path);

}  // namespace herald::cli
