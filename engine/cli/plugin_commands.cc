// herald plugins list | inspect NAME | call CAPABILITY, and the step registry every command that
// runs or validates workflows builds: the built-in steps plus the loaded plugins' capabilities.
#include <iomanip>
#include <iostream>
#include <mutex>
#include <sstream>

#include "engine/approvals/approval_step.h"
#include "engine/cli/command.h"
#include "engine/common/duration.h"
#include "engine/common/redactor.h"
#include "engine/expr/evaluator.h"
#include "engine/model/input_schema.h"
#include "engine/plugins/plugin.h"
#include "engine/runtime/store_key_values.h"
#include "engine/security/random.h"
#include "engine/steps/builtins.h"

namespace herald::cli {

namespace {

plugins::LoadOptions load_options(const Config& config) {
  plugins::LoadOptions options;
  options.paths = plugins::plugin_paths(config.plugin_paths);
  options.isolate = config.plugin_isolate;
  options.isolation.call_timeout = config.plugin_call_timeout;
  options.isolation.memory_limit_bytes = config.plugin_memory_limit_mb * 1024 * 1024;
  return options;
}

Error load_failure(const std::vector<Error>& errors) {
  std::string message = errors.size() == 1
                            ? "a plugin failed to load: "
                            : std::to_string(errors.size()) + " plugins failed to load:";
  for (const auto& error : errors) message += (errors.size() == 1 ? "" : "\n  ") + error.message;
  return make_error(ErrorCode::invalid_argument, message);
}

const std::vector<FlagSpec> kConfigFlag = {
    {"config", true, false, "configuration file (default ./herald.yaml when present)", "FILE"},
    {"help", false, false, "show this help", ""}};

std::vector<FlagSpec> with_config(std::vector<FlagSpec> specs) {
  specs.insert(specs.end(), kConfigFlag.begin(), kConfigFlag.end());
  return specs;
}

Result<plugins::PluginSet> load_for(const ParsedArgs& args) {
  auto config = load_config(args.value("config").value_or(""));
  if (!config.ok()) return config.error();
  return plugins::PluginSet::load(load_options(*config));
}

void print_errors(Io& io, const plugins::PluginSet& set) {
  for (const auto& error : set.errors()) io.err << "error: " << error.message << "\n";
}

// ---- herald plugins list ----------------------------------------------------------------------

int cmd_plugins_list(const std::vector<std::string>& argv, Io& io) {
  auto specs = with_config({{"json", false, false, "print the plugins as JSON", ""}});
  auto args = parse_args(argv, specs, "herald plugins list");
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help")) {
    io.out << "Usage: herald plugins list [--json]\n\nLists the loaded plugins (name, version, "
              "type, isolation, file) and their capabilities; reports plugins that failed to "
              "load (exit code 1).\n\n"
           << flags_help(specs);
    return kExitOk;
  }
  if (!args->positional.empty()) return usage_error(io, "herald plugins list takes no arguments");
  auto set = load_for(*args);
  if (!set.ok()) return report(io, set.error());
  if (args->has("json")) {
    Json list = Json::array();
    for (const auto& plugin : set->plugins()) list.push_back(plugin.info.to_json(false));
    Json errors = Json::array();
    for (const auto& error : set->errors()) errors.push_back(error.message);
    io.out << Json{{"plugins", list}, {"errors", errors}}.dump(2) << "\n";
  } else if (set->plugins().empty()) {
    io.out << "no plugins loaded (folders searched: ";
    auto paths = load_options(load_config(args->value("config").value_or("")).value()).paths;
    for (size_t i = 0; i < paths.size(); ++i) io.out << (i ? ", " : "") << paths[i];
    io.out << (paths.empty() ? "none" : "") << ")\n";
  } else {
    for (const auto& plugin : set->plugins()) {
      const auto& info = plugin.info;
      io.out << info.name << " " << info.version << "  (" << info.type << ", " << info.isolation
             << ")  " << info.file << "\n";
      if (!info.description.empty()) io.out << "  " << info.description << "\n";
      for (const auto& capability : info.capabilities) {
        std::string line = "    " + capability.name;
        if (line.size() < 34) line.resize(34, ' ');
        line += " " + std::string(plugins::to_string(capability.kind));
        if (line.size() < 50) line.resize(50, ' ');
        io.out << line << " " << capability.description << "\n";
      }
    }
  }
  print_errors(io, *set);
  return set->errors().empty() ? kExitOk : kExitFailed;
}

// ---- herald plugins inspect -------------------------------------------------------------------

int cmd_plugins_inspect(const std::vector<std::string>& argv, Io& io) {
  auto specs = with_config({});
  auto args = parse_args(argv, specs, "herald plugins inspect");
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help")) {
    io.out << "Usage: herald plugins inspect NAME\n\nPrints a plugin (or the plugin of a "
              "capability) as JSON, with each capability's input schema.\n\n"
           << flags_help(specs);
    return kExitOk;
  }
  if (args->positional.size() != 1) {
    return usage_error(io, "herald plugins inspect takes one plugin or capability NAME");
  }
  auto set = load_for(*args);
  if (!set.ok()) return report(io, set.error());
  const std::string& name = args->positional[0];
  const plugins::LoadedPlugin* plugin = set->find_plugin(name);
  if (plugin == nullptr) {
    for (const auto& candidate : set->plugins()) {
      for (const auto& capability : candidate.info.capabilities) {
        if (capability.name == name) plugin = &candidate;
      }
    }
  }
  if (plugin == nullptr) {
    print_errors(io, *set);
    io.err << "error: no plugin or capability named '" << name << "' is loaded\n";
    return kExitFailed;
  }
  io.out << plugin->info.to_json(true).dump(2) << "\n";
  return kExitOk;
}

// ---- herald plugins call ----------------------------------------------------------------------

int cmd_plugins_call(const std::vector<std::string>& argv, Io& io) {
  auto specs = with_store_flags({
      {"input", true, false, "the capability's input as a JSON object (default {})", "JSON"},
      {"secret", true, true, "a secret the capability may read (repeatable)", "NAME=VALUE"},
      {"timeout", true, false, "deadline of the call, e.g. 30s (default none)", "DURATION"},
      {"workspace", true, false, "the workspace whose kv entries the call sees (default none)",
       "ID"},
  });
  auto args = parse_args(argv, specs, "herald plugins call");
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help")) {
    io.out << "Usage: herald plugins call CAPABILITY [--input JSON] [--secret NAME=VALUE]...\n\n"
              "Runs one capability once, outside any workflow, for plugin authors: the input is "
              "checked against its schema, log lines, HTTP calls and events go to stderr, the "
              "output JSON to stdout.\nSecrets also come from HERALD_SECRET_<NAME> variables.\n"
              "Exit code: 0 success, 1 the capability failed, 2 invalid arguments.\n\n"
           << flags_help(specs);
    return kExitOk;
  }
  if (args->positional.size() != 1) {
    return usage_error(io, "herald plugins call takes one CAPABILITY");
  }
  // The store holds the plugin's kv entries, so consecutive calls see what earlier ones kept.
  auto opened = open_from(*args);
  if (!opened.ok()) return report(io, opened.error());
  const Config* config = &opened->config;
  runtime::StoreKeyValues key_values(*opened->store);
  Json input = Json::object();
  if (auto text = args->value("input")) {
    input = Json::parse(*text, nullptr, false);
    if (input.is_discarded()) return usage_error(io, "--input is not valid JSON");
  }
  Json secrets = config->secrets_json();
  for (const auto& pair : args->values("secret")) {
    auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      return usage_error(io, "--secret '" + pair + "' must look like NAME=VALUE");
    }
    secrets[pair.substr(0, eq)] = pair.substr(eq + 1);
  }
  Redactor redactor;
  for (const auto& [name, value] : secrets.items()) {
    if (value.is_string()) redactor.add(value.get<std::string>());
  }

  auto set = plugins::PluginSet::load(load_options(*config));
  const std::string& name = args->positional[0];
  auto capability = set.find_capability(name);
  if (!capability) {
    print_errors(io, set);
    io.err << "error: no capability named '" << name << "' is loaded";
    std::vector<std::string> names;
    for (const auto& plugin : set.plugins()) {
      for (const auto& c : plugin.info.capabilities) names.push_back(c.name);
    }
    if (!names.empty()) {
      io.err << "; loaded:";
      for (const auto& n : names) io.err << " " << n;
    }
    io.err << "\n";
    return kExitInvalid;
  }

  expr::Scope scope;
  Json run_info = {{"id", "cli"},
                   {"workflow", "herald plugins call"},
                   {"workspace", args->value("workspace").value_or("")}};
  scope.secrets = &secrets;
  scope.run = &run_info;
  std::atomic<bool> cancelled{false};
  std::mutex out_mu;
  steps::StepContext context;
  context.run_id = "cli";
  context.step_id = name;
  context.idempotency_key = "cli-" + security::random_hex(8);
  context.cancelled = &cancelled;
  context.scope = &scope;
  context.kv = &key_values;
  if (auto timeout = args->value("timeout")) {
    auto duration = parse_duration(*timeout);
    if (!duration.ok()) return usage_error(io, "--timeout: " + duration.error().message);
    context.deadline = steps::Clock::now() + *duration;
  }
  context.log = [&](std::string_view level, std::string_view message) {
    std::lock_guard lock(out_mu);
    io.err << level << ": " << redactor.redact_text(message) << "\n";
  };
  steps::StepInfo step = plugins::make_step_info(capability);
  steps::StepOutcome outcome = step.step->run(input, context);
  if (outcome.kind != steps::StepOutcome::Kind::done) {
    Error error = redactor.redact_error(outcome.error);
    io.err << "error: " << to_string(error.code) << (error.retryable ? " (retryable)" : "") << ": "
           << error.message << "\n";
    if (error.retry_after) io.err << "retry after: " << error.retry_after->count() << " ms\n";
    if (error.details.is_object() && error.details.contains("traceback") &&
        error.details["traceback"].is_string()) {
      io.err << error.details["traceback"].get<std::string>() << "\n";
    } else if (!error.details.is_null()) {
      io.err << "details: " << error.details.dump() << "\n";
    }
    return error.code == ErrorCode::invalid_argument ? kExitInvalid : kExitFailed;
  }
  for (const auto& event : outcome.events) {
    io.err << "event: " << event.name << " " << redactor.redact_json(event.payload).dump() << "\n";
  }
  io.out << redactor.redact_json(outcome.output).dump(2) << "\n";
  return kExitOk;
}

// A configured notify channel's settings against the input schema of its step, so that a typo
// in herald.yaml fails every command at start-up instead of the first notification.
std::optional<std::string> check_channel_input(const steps::StepInfo& step, const Json& input) {
  if (step.input_schema.is_null()) return std::nullopt;
  auto schema = model::InputSchema::cached(step.input_schema);
  if (schema == nullptr) return std::nullopt;  // the step reports its own schema when called
  std::string problems;
  for (const auto& problem : schema->check(input, /*templates=*/false)) {
    if (!problems.empty()) problems += "; ";
    problems += (problem.path.empty() ? "" : problem.path + ": ") + problem.message;
  }
  return problems.empty() ? std::nullopt : std::optional<std::string>(problems);
}

}  // namespace

Result<steps::StepRegistry> step_registry(const Config& config) {
  auto registry = steps::builtin_steps_without_notify();
  auto set = plugins::PluginSet::load(load_options(config));
  if (!set.errors().empty()) return load_failure(set.errors());
  if (auto status = set.register_steps(registry); !status.ok()) return std::move(status).error();
  // notify comes last: its channels are steps of this registry, plugin capabilities included.
  auto notify = steps::make_notify_step(registry, config.notify_channels, check_channel_input);
  if (!notify.ok()) {
    Error error = std::move(notify).error();
    if (!config.config_file.empty()) error.message = config.config_file + ": " + error.message;
    return error;
  }
  std::shared_ptr<steps::Step> notify_step = notify->step;
  if (auto status = registry.add(std::move(notify).value()); !status.ok()) {
    return std::move(status).error();
  }
  // approval tells approvers through notify's channels.
  if (auto status = registry.add(approvals::make_approval_step(notify_step)); !status.ok()) {
    return std::move(status).error();
  }
  return registry;
}

int cmd_plugins(const std::vector<std::string>& argv, Io& io) {
  static const char* kHelp =
      "Usage: herald plugins COMMAND\n\n"
      "  list                 the loaded plugins and their capabilities\n"
      "  inspect NAME         one plugin, with its input schemas, as JSON\n"
      "  call CAPABILITY      run one capability once (--input JSON, --secret NAME=VALUE)\n\n"
      "Plugins load from the folders in plugins.paths (herald.yaml) or HERALD_PLUGINS_PATHS\n"
      "(colon-separated), after the plugins built with Herald. See docs/plugin-guide.md.\n";
  if (argv.empty()) {
    io.err << kHelp;
    return kExitInvalid;
  }
  std::vector<std::string> rest(argv.begin() + 1, argv.end());
  if (argv[0] == "--help" || argv[0] == "-h" || argv[0] == "help") {
    io.out << kHelp;
    return kExitOk;
  }
  if (argv[0] == "list") return cmd_plugins_list(rest, io);
  if (argv[0] == "inspect") return cmd_plugins_inspect(rest, io);
  if (argv[0] == "call") return cmd_plugins_call(rest, io);
  return usage_error(
      io, "unknown command 'herald plugins " + argv[0] + "'; see 'herald plugins --help'");
}

int cmd_plugin_host(const std::vector<std::string>& argv, Io& io) {
  // herald plugin-host --fd FD [--memory-mb N] FILE (started by the engine for an isolated
  // plugin).
  const bool with_memory = argv.size() == 5 && argv[2] == "--memory-mb";
  if ((argv.size() != 3 && !with_memory) || argv[0] != "--fd") {
    return usage_error(
        io, "usage: herald plugin-host --fd FD [--memory-mb N] FILE (started by Herald itself)");
  }
  int fd = -1;
  long long memory_mb = 0;
  try {
    fd = std::stoi(argv[1]);
    if (with_memory) memory_mb = std::stoll(argv[3]);
  } catch (const std::exception&) {
  }
  if (fd < 0) return usage_error(io, "plugin-host: --fd expects a file descriptor");
  if (memory_mb < 0) return usage_error(io, "plugin-host: --memory-mb expects megabytes");
  return plugins::run_plugin_host(fd, argv.back(),
                                  static_cast<size_t>(memory_mb) * 1024 * 1024);
}

}  // namespace herald::cli
