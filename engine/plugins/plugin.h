// Plugins as the engine sees them: loaded from folders (shared libraries through the C ABI of
// sdk/include/herald/plugin.h, Lua files in the sandbox), each capability becoming a step in the
// StepRegistry so that `uses: mastodon.publish` works in a workflow. Used by the CLI (every
// command that runs or validates workflows, and `herald plugins ...`) and by `herald serve`.
//
// Loading happens once, at start-up, on one thread; capabilities are then called from any worker
// thread. Shared libraries are never unloaded (their code may still be referenced).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/common/result.h"
#include "engine/steps/step.h"

namespace herald::plugins {

enum class CapabilityKind { step, trigger_source, provider };
std::string_view to_string(CapabilityKind kind);

struct CapabilityInfo {
  std::string name;  // "mastodon.publish"
  CapabilityKind kind = CapabilityKind::step;
  std::string description;
  Json input_schema = nullptr;  // JSON Schema (draft 7) of its input, as used; null: any input
};

struct PluginInfo {
  std::string name;
  std::string version;
  std::string description;
  std::string file;                      // the .so or .lua it came from
  std::string type;                      // "native" or "lua"
  std::string isolation = "in-process";  // or "process" (a `herald plugin-host` child)
  std::vector<CapabilityInfo> capabilities;

  Json to_json(bool with_schemas) const;
};

// One capability of a loaded plugin. Thread-safe: called from any worker thread at once.
class Capability {
 public:
  virtual ~Capability() = default;
  virtual const CapabilityInfo& info() const = 0;
  // One call with the rendered input (already checked against the input schema by the step
  // that wraps it). Never throws.
  virtual steps::StepOutcome invoke(const Json& input, steps::StepContext& context) = 0;
};

struct LoadedPlugin {
  PluginInfo info;
  std::vector<std::shared_ptr<Capability>> capabilities;
};

// Limits for each call of a Lua plugin (the sandbox's, plus a wall clock that the step's own
// deadline can only shorten).
struct LuaLimits {
  uint64_t instructions = 100'000'000;
  size_t memory_bytes = 64u * 1024 * 1024;
  std::chrono::milliseconds wall{30'000};
};

// Loads one plugin file. Every error is invalid_argument and names the file:
//   "<file>: cannot load: <dlerror>"
//   "<file>: missing entry point herald_plugin_entry ..."
//   "<file>: incompatible ABI: built for 2.0, this Herald speaks 1.1 ..."
//   "<file>: init failed: <the plugin's message>"
//   "<file>: schema invalid: capability 'x.y': ..."
//   "<file>:<line>: syntax error ..." (Lua) and the like.
Result<LoadedPlugin> load_native_plugin(const std::string& path);
Result<LoadedPlugin> load_lua_plugin(const std::string& path, const LuaLimits& limits = {});

// How an isolated plugin's `herald plugin-host` child is run (plugin_host.h has the protocol).
struct IsolationOptions {
  // The herald binary to start as `BINARY plugin-host --fd 3 FILE`; empty: this process's own
  // executable (/proc/self/exe), which is herald itself outside the tests.
  std::string host_binary;
  // A call that has not answered by then (or by the step's deadline, if sooner) is killed with
  // its host and fails retryable; the host restarts for the next call.
  std::chrono::milliseconds call_timeout{30'000};
  // How long a starting host may take to load the plugin and describe it. Kept apart from
  // call_timeout: a short call timeout must not fail a host that is slow to start (a loaded
  // machine, a plugin with a heavy init), and a start is not a call.
  std::chrono::milliseconds start_timeout{30'000};
  // The host's memory: its address space is capped at this (RLIMIT_AS, so a leak makes the
  // plugin's allocations fail rather than the machine swap), and a host whose resident memory
  // passes three quarters of it after a call fails that call retryable and is restarted. 0: no
  // limit. Builds with AddressSanitizer skip the cap (its shadow memory needs terabytes of
  // address space) but keep the resident check.
  size_t memory_limit_bytes = size_t{1} << 30;
};

// Loads a native plugin in a `herald plugin-host` child: its info (isolation "process") and
// capabilities that call it over a UNIX socket. A crash, a hang or a garbled answer fails only
// the current call (retryable, saying what happened); the next call starts a new host. Calls to
// one plugin are serialised (one child per plugin). Load errors read like load_native_plugin's.
Result<LoadedPlugin> load_isolated_plugin(const std::string& path, const IsolationOptions& options);

// The `herald plugin-host --fd FD FILE` child: loads FILE and serves the engine on FD until it
// closes. Returns the exit code.
int run_plugin_host(int fd, const std::string& path, size_t memory_limit_bytes = 0);

// The folders and files to load plugins from, in order.
struct LoadOptions {
  std::vector<std::string> paths;
  LuaLimits lua;
  // Names of native plugins to load in a `herald plugin-host` child (plugins.isolate). When
  // not empty, each .so is first described by a child, so that no code of an isolated plugin
  // runs in the engine; a name matching no native plugin is a load error.
  std::vector<std::string> isolate;
  IsolationOptions isolation;
};

// The folder of the plugins built with Herald (searched first), or empty when there is none.
std::string builtin_plugin_dir();

// The plugin paths in effect: HERALD_PLUGINS_PATHS (colon-separated) when set, else the
// configuration's `plugins.paths`; the built-in folder always comes first.
std::vector<std::string> plugin_paths(const std::vector<std::string>& configured);

// Every loaded plugin, and what failed to load.
class PluginSet {
 public:
  // Loads every `.so` and `.lua` file of each folder (by name), or the file itself when a path
  // names one. A missing folder is skipped; the same file reached twice is loaded once. A
  // plugin whose name or one of whose capability names is already taken is refused
  // ("duplicate capability name ..."), the first one loaded stays.
  static PluginSet load(const LoadOptions& options);

  const std::vector<LoadedPlugin>& plugins() const { return plugins_; }
  const std::vector<Error>& errors() const { return errors_; }
  const LoadedPlugin* find_plugin(std::string_view name) const;
  std::shared_ptr<Capability> find_capability(std::string_view name) const;

  // Adds every step capability to `registry` as a StepInfo (with its input schema). A name the
  // registry already has is refused with an error naming the plugin's file.
  Status register_steps(steps::StepRegistry& registry) const;

  // Adds a plugin loaded by other means (tests); refused like a duplicate in load().
  Status add(LoadedPlugin plugin);

 private:
  std::vector<LoadedPlugin> plugins_;
  std::vector<Error> errors_;
};

// The StepInfo for one capability: checks the rendered input against the input schema, then
// calls the capability.
steps::StepInfo make_step_info(std::shared_ptr<Capability> capability);

}  // namespace herald::plugins
