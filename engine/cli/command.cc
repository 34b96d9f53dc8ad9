#include "engine/cli/command.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace herald::cli {

namespace {
const std::vector<FlagSpec> kStoreFlags = {
    {"config", true, false, "configuration file (default ./herald.yaml when present)", "FILE"},
    {"data-dir", true, false, "where Herald keeps its data (HERALD_DATA_DIR, default ./.herald)", "DIR"},
    {"store", true, false, "store URL, e.g. sqlite:PATH (HERALD_STORE)", "URL"},
};
}  // namespace

std::optional<std::string> workspace_of(const ParsedArgs& args) {
  if (auto flag = args.value("workspace")) return flag;
  const char* value = std::getenv("HERALD_WORKSPACE");
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

Status require_workspace(store::Store& store, const std::string& id) {
  auto workspace = store.get_workspace(id);
  if (workspace.ok()) return {};
  if (workspace.error().code != ErrorCode::not_found) return workspace.error();
  return make_error(ErrorCode::not_found, "workspace '" + id +
                                              "' does not exist; `herald workspace list` shows "
                                              "the workspaces, `herald workspace create " +
                                              id + "` creates it");
}

std::vector<FlagSpec> with_store_flags(std::vector<FlagSpec> specs) {
  specs.insert(specs.end(), kStoreFlags.begin(), kStoreFlags.end());
  specs.push_back({"help", false, false, "show this help", ""});
  return specs;
}

int usage_error(Io& io, const std::string& message) {
  io.err << "error: " << message << "\n";
  return kExitInvalid;
}

Result<Opened> open_from(const ParsedArgs& args) {
  auto config = load_config(args.value("config").value_or(""));
  if (!config.ok()) return config.error();
  if (auto dir = args.value("data-dir")) config->data_dir = *dir;
  if (auto url = args.value("store")) config->store_url = *url;
  auto store = store::open_store(config->effective_store_url());
  if (!store.ok()) return store.error();
  return Opened{std::move(config).value(), std::move(store).value()};
}

int report(Io& io, const Error& error) {
  io.err << "error: " << error.message << "\n";
  return error.code == ErrorCode::invalid_argument ? kExitInvalid : kExitFailed;
}

std::string read_text_file(const std::string& path, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot read " + path + ": " + std::strerror(errno);
    return {};
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::optional<std::string> env_value(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

void print_table(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  }
}

int dispatch(const std::vector<std::string>& argv, Io& io, const std::string& group,
             const std::string& help, const std::vector<std::pair<std::string, SubCommand>>& subs) {
  if (argv.empty() || argv[0] == "--help" || argv[0] == "-h" || argv[0] == "help") {
    (argv.empty() ? io.err : io.out) << help;
    return argv.empty() ? kExitInvalid : kExitOk;
  }
  std::vector<std::string> rest(argv.begin() + 1, argv.end());
  std::string names;
  for (const auto& [name, command] : subs) {
    if (argv[0] == name) return command(rest, io);
    names += (names.empty() ? "" : ", ") + name;
  }
  return usage_error(io, "unknown command 'herald " + group + " " + argv[0] + "'; expected " +
                             names);
}

runtime::EngineOptions engine_options(const Config& config) {
  runtime::EngineOptions options;
  options.worker_threads = config.workers;
  options.limits = config.limits;
  options.env = config.env_json();
  options.secrets = config.secrets_json();
  options.lease_duration = config.lease;
  options.poll_interval = config.poll;
  return options;
}

Result<Json> parse_input_flags(const ParsedArgs& args) {
  Json inputs = Json::object();
  if (auto json = args.value("inputs")) {
    inputs = Json::parse(*json, nullptr, false);
    if (inputs.is_discarded() || !inputs.is_object()) {
      return make_error(ErrorCode::invalid_argument, "--inputs must be a JSON object");
    }
  }
  for (const auto& pair : args.values("input")) {
    auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      return make_error(ErrorCode::invalid_argument, "--input '" + pair + "' must look like name=value");
    }
    inputs[pair.substr(0, eq)] = pair.substr(eq + 1);
  }
  return inputs;
}

}  // namespace herald::cli
