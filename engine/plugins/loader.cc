// Finding plugin files, refusing duplicates, and turning capabilities into steps.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>

#include "engine/model/input_schema.h"
#include "engine/plugins/plugin.h"

namespace herald::plugins {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> split_colons(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ':')) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

bool is_plugin_file(const fs::path& path) {
  return path.extension() == ".so" || path.extension() == ".lua";
}

// The files a path names: itself, or the plugin files in it (by name).
std::vector<fs::path> files_of(const std::string& path) {
  std::error_code ec;
  fs::path root(path);
  if (fs::is_regular_file(root, ec)) return {root};
  std::vector<fs::path> files;
  if (!fs::is_directory(root, ec)) return files;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (entry.is_regular_file(ec) && is_plugin_file(entry.path())) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Checks the rendered input against the capability's schema, then calls it.
class CapabilityStep final : public steps::Step {
 public:
  explicit CapabilityStep(std::shared_ptr<Capability> capability)
      : capability_(std::move(capability)) {
    const Json& schema = capability_->info().input_schema;
    if (!schema.is_null()) schema_ = model::InputSchema::cached(schema);
  }

  steps::StepOutcome run(const Json& input, steps::StepContext& context) override {
    if (schema_) {
      auto problems = schema_->check(input, /*templates=*/false);
      if (!problems.empty()) {
        std::string message = capability_->info().name + ": invalid input: ";
        for (size_t i = 0; i < problems.size(); ++i) {
          if (i > 0) message += "; ";
          message +=
              (problems[i].path.empty() ? "" : problems[i].path + ": ") + problems[i].message;
        }
        return steps::StepOutcome::failed(make_error(ErrorCode::invalid_argument, message));
      }
    }
    return capability_->invoke(input, context);
  }

 private:
  std::shared_ptr<Capability> capability_;
  std::shared_ptr<const model::InputSchema> schema_;
};

// A .so in-process, or in a plugin-host child when its name is in options.isolate (a child
// describes it first, so no code of an isolated plugin runs in the engine).
Result<LoadedPlugin> load_native(const std::string& file, const LoadOptions& options,
                                 std::set<std::string>& isolated) {
  if (options.isolate.empty()) return load_native_plugin(file);
  Result<LoadedPlugin> hosted = load_isolated_plugin(file, options.isolation);
  if (!hosted.ok()) return hosted;
  const std::string& name = hosted->info.name;
  if (std::find(options.isolate.begin(), options.isolate.end(), name) != options.isolate.end()) {
    isolated.insert(name);
    return hosted;
  }
  return load_native_plugin(file);  // the probe's child ends with `hosted`
}

}  // namespace

std::string builtin_plugin_dir() {
  // An installed herald (cmake --install) has its plugins at <prefix>/lib/herald/plugins, next
  // to <prefix>/bin/herald; that folder wins over the build's, which may be gone or newer.
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path installed = exe.parent_path().parent_path() / "lib" / "herald" / "plugins";
    if (fs::is_directory(installed, ec)) return installed.string();
  }
#ifdef HERALD_BUILTIN_PLUGIN_DIR
  return HERALD_BUILTIN_PLUGIN_DIR;
#else
  return "";
#endif
}

std::vector<std::string> plugin_paths(const std::vector<std::string>& configured) {
  std::vector<std::string> paths;
  if (std::string builtin = builtin_plugin_dir(); !builtin.empty()) paths.push_back(builtin);
  const char* env = std::getenv("HERALD_PLUGINS_PATHS");
  for (const auto& path : env != nullptr ? split_colons(env) : configured) paths.push_back(path);
  return paths;
}

PluginSet PluginSet::load(const LoadOptions& options) {
  PluginSet set;
  std::set<std::string> seen;
  std::set<std::string> isolated;
  for (const auto& path : options.paths) {
    for (const auto& file : files_of(path)) {
      std::error_code ec;
      fs::path canonical = fs::weakly_canonical(file, ec);
      if (!seen.insert(ec ? file.string() : canonical.string()).second) continue;
      Result<LoadedPlugin> plugin = file.extension() == ".so"
                                        ? load_native(file.string(), options, isolated)
                                        : load_lua_plugin(file.string(), options.lua);
      if (!plugin.ok()) {
        set.errors_.push_back(std::move(plugin).error());
        continue;
      }
      if (auto status = set.add(std::move(plugin).value()); !status.ok()) {
        set.errors_.push_back(std::move(status).error());
      }
    }
  }
  for (const auto& name : options.isolate) {
    if (isolated.count(name) == 0) {
      set.errors_.push_back(make_error(ErrorCode::invalid_argument,
                                       "plugins.isolate names '" + name +
                                           "', but no native plugin of that name was found "
                                           "(isolation applies to .so plugins; Lua plugins run "
                                           "in the sandbox)"));
    }
  }
  return set;
}

Status PluginSet::add(LoadedPlugin plugin) {
  for (const auto& other : plugins_) {
    for (const auto& mine : plugin.info.capabilities) {
      for (const auto& theirs : other.info.capabilities) {
        if (mine.name == theirs.name) {
          return make_error(ErrorCode::already_exists,
                            plugin.info.file + ": duplicate capability name '" + mine.name +
                                "': already provided by " + other.info.file);
        }
      }
    }
  }
  for (const auto& other : plugins_) {
    if (other.info.name == plugin.info.name) {
      return make_error(ErrorCode::already_exists, plugin.info.file + ": duplicate plugin name '" +
                                                       plugin.info.name +
                                                       "': already loaded from " + other.info.file);
    }
  }
  plugins_.push_back(std::move(plugin));
  return ok_status();
}

const LoadedPlugin* PluginSet::find_plugin(std::string_view name) const {
  for (const auto& plugin : plugins_) {
    if (plugin.info.name == name) return &plugin;
  }
  return nullptr;
}

std::shared_ptr<Capability> PluginSet::find_capability(std::string_view name) const {
  for (const auto& plugin : plugins_) {
    for (const auto& capability : plugin.capabilities) {
      if (capability->info().name == name) return capability;
    }
  }
  return nullptr;
}

Status PluginSet::register_steps(steps::StepRegistry& registry) const {
  for (const auto& plugin : plugins_) {
    for (const auto& capability : plugin.capabilities) {
      if (capability->info().kind != CapabilityKind::step) continue;
      if (registry.find(capability->info().name) != nullptr) {
        return make_error(ErrorCode::already_exists,
                          plugin.info.file + ": duplicate capability name '" +
                              capability->info().name + "': a step with that name exists");
      }
      if (auto status = registry.add(make_step_info(capability)); !status.ok()) return status;
    }
  }
  return ok_status();
}

steps::StepInfo make_step_info(std::shared_ptr<Capability> capability) {
  steps::StepInfo info;
  info.name = capability->info().name;
  info.description = capability->info().description;
  info.input_schema = capability->info().input_schema;
  info.pure = false;  // a plugin may have effects outside the run
  info.step = std::make_shared<CapabilityStep>(std::move(capability));
  return info;
}

}  // namespace herald::plugins
