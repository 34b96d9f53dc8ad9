// What the `herald` subcommands share: output streams, flag sets, opening the configured store,
// and reporting errors with the right exit code. Each group of subcommands lives in its own file
// (cli.cc: run, validate, runs, cron; admin_commands.cc: init, workspace, user, token, secret,
// audit, trigger; approval_commands.cc: approvals; serve.cc: serve; plugin_commands.cc: plugins)
// and is dispatched from run_cli. The commands that talk to a running server share
// api_client.h.
#pragma once

#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/cli/args.h"
#include "engine/cli/cli.h"
#include "engine/cli/config.h"
#include "engine/common/result.h"
#include "engine/runtime/engine.h"
#include "engine/store/store.h"

namespace herald::cli {

struct Io {
  std::ostream& out;
  std::ostream& err;
  bool interactive;
};

// --config, --data-dir, --store (and --help) added to a command's own flags.
std::vector<FlagSpec> with_store_flags(std::vector<FlagSpec> specs);

// Prints "error: MESSAGE" and returns kExitInvalid.
int usage_error(Io& io, const std::string& message);

// The configuration and store a command's flags name.
struct Opened {
  Config config;
  std::unique_ptr<store::Store> store;
};
Result<Opened> open_from(const ParsedArgs& args);

// Prints the error; invalid input (a bad flag, config or URL) exits 2, anything else 1.
int report(Io& io, const Error& error);

// The workspace a command names: --workspace, else HERALD_WORKSPACE (unset when empty).
std::optional<std::string> workspace_of(const ParsedArgs& args);

// The workspace a command acts in must exist: a clear not_found (naming `herald workspace list`
// and `create`) instead of an empty listing.
Status require_workspace(store::Store& store, const std::string& id);

std::string read_text_file(const std::string& path, std::string* error);

// An environment variable that is set and not empty.
std::optional<std::string> env_value(const char* name);

// Aligned columns, two spaces apart; the last column is not padded.
void print_table(std::ostream& out, const std::vector<std::vector<std::string>>& rows);

// `herald GROUP SUB ...`: GROUP --help (or the help on stderr and kExitInvalid without SUB), or
// SUB's own parser with the arguments after SUB.
using SubCommand = int (*)(const std::vector<std::string>&, Io&);
int dispatch(const std::vector<std::string>& argv, Io& io, const std::string& group,
             const std::string& help, const std::vector<std::pair<std::string, SubCommand>>& subs);

runtime::EngineOptions engine_options(const Config& config);

// --inputs JSON and --input name=value pairs, merged into one object.
Result<Json> parse_input_flags(const ParsedArgs& args);

// Subcommands in other files.
int cmd_serve(const std::vector<std::string>& argv, Io& io);
int cmd_worker(const std::vector<std::string>& argv, Io& io);
int cmd_init(const std::vector<std::string>& argv, Io& io);
int cmd_workspace(const std::vector<std::string>& argv, Io& io);
int cmd_user(const std::vector<std::string>& argv, Io& io);
int cmd_token(const std::vector<std::string>& argv, Io& io);
int cmd_secret(const std::vector<std::string>& argv, Io& io);
int cmd_audit(const std::vector<std::string>& argv, Io& io);
int cmd_trigger(const std::vector<std::string>& argv, Io& io);
int cmd_approvals(const std::vector<std::string>& argv, Io& io);  // approval_commands.cc
int cmd_plugins(const std::vector<std::string>& argv, Io& io);  // plugin_commands.cc
// herald plugin-host --fd FD FILE: the child an isolated plugin runs in (not in --help).
int cmd_plugin_host(const std::vector<std::string>& argv, Io& io);  // plugin_commands.cc

// The built-in steps plus the capabilities of every plugin the configuration names
// (plugin_commands.cc). A plugin that fails to load is an error (invalid_argument) listing each
// failure, so a broken plugin is noticed at start rather than when a workflow needs it.
Result<steps::StepRegistry> step_registry(const Config& config);

}  // namespace herald::cli
