// Shared-library plugins: dlopen (RTLD_NOW | RTLD_LOCAL, never dlclose), the descriptor's size
// and version checks, each capability's name and schema, the plugin's init, and calls through
// the C ABI of sdk/include/herald/plugin.h.
#include <dlfcn.h>

#include <cstring>

#include "engine/model/input_schema.h"
#include "engine/plugins/internal/checks.h"
#include "engine/plugins/internal/native.h"
#include "engine/plugins/invocation.h"
#include "engine/plugins/plugin.h"

namespace herald::plugins {

namespace {

Error load_error(const std::string& path, const std::string& message) {
  return make_error(ErrorCode::invalid_argument, path + ": " + message);
}

class NativeCapability final : public Capability {
 public:
  NativeCapability(std::string plugin, CapabilityInfo info, herald_invoke_fn invoke,
                   void* user_data)
      : plugin_(std::move(plugin)),
        info_(std::move(info)),
        invoke_(invoke),
        user_data_(user_data) {}

  const CapabilityInfo& info() const override { return info_; }

  steps::StepOutcome invoke(const Json& input, steps::StepContext& context) override {
    try {
      Invocation call(plugin_, info_.name, context);
      const std::string text = input.dump(-1, ' ', false, Json::error_handler_t::replace);
      const int32_t status =
          invoke_(user_data_, host_api(), call.handle(), text.c_str(), text.size());
      return call.finish(status);
    } catch (const std::exception& e) {
      return steps::StepOutcome::failed(make_error(
          ErrorCode::internal, "plugin " + plugin_ + ": " + info_.name + ": " + e.what()));
    }
  }

 private:
  std::string plugin_;
  CapabilityInfo info_;
  herald_invoke_fn invoke_;
  void* user_data_;
};

// The end of the fields a 1.0 struct must have, for size checks.
constexpr size_t kDescriptorVersionEnd =
    offsetof(herald_plugin_descriptor, abi_patch) + sizeof(uint16_t);
constexpr size_t kDescriptorMinimum =
    offsetof(herald_plugin_descriptor, on_init) + sizeof(herald_init_fn);
constexpr size_t kCapabilityMinimum = offsetof(herald_capability, user_data) + sizeof(void*);

std::string text_or_empty(const char* text) {
  return text == nullptr ? std::string() : std::string(text);
}

}  // namespace

Result<LoadedPlugin> internal::load_native_entries(const std::string& path,
                                                   std::vector<NativeEntry>* out) {
  // Never closed: capability code and static data may be referenced for the life of the process.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    return load_error(path, std::string("cannot load: ") + (why ? why : "unknown dlopen error"));
  }
  dlerror();
  void* symbol = dlsym(handle, HERALD_PLUGIN_ENTRY_SYMBOL);
  if (symbol == nullptr) {
    return load_error(path, "missing entry point " HERALD_PLUGIN_ENTRY_SYMBOL
                            " (is it a Herald plugin? declare it with HERALD_PLUGIN_ENTRY or "
                            "HERALD_PLUGIN from <herald/plugin.hpp>)");
  }
  auto entry = reinterpret_cast<herald_plugin_entry_fn>(symbol);
  const herald_plugin_descriptor* given = entry();
  if (given == nullptr) {
    return load_error(path, "entry point " HERALD_PLUGIN_ENTRY_SYMBOL " returned no descriptor");
  }
  if (given->size < kDescriptorVersionEnd) {
    return load_error(path, "incompatible ABI: the descriptor is " + std::to_string(given->size) +
                                " bytes, too small to hold an ABI version");
  }
  const std::string built_for = std::to_string(given->abi_major) + "." +
                                std::to_string(given->abi_minor) + "." +
                                std::to_string(given->abi_patch);
  const std::string host_version =
      std::to_string(HERALD_ABI_VERSION_MAJOR) + "." + std::to_string(HERALD_ABI_VERSION_MINOR);
  if (given->abi_major != HERALD_ABI_VERSION_MAJOR) {
    return load_error(path, "incompatible ABI: built for " + built_for + ", this Herald speaks " +
                                host_version +
                                " (the major version must match; rebuild the "
                                "plugin against this Herald's SDK)");
  }
  if (given->abi_minor > HERALD_ABI_VERSION_MINOR) {
    return load_error(path, "incompatible ABI: built for " + built_for +
                                ", newer than this "
                                "Herald's " +
                                host_version +
                                " (upgrade Herald, or build the "
                                "plugin against an older SDK)");
  }
  if (given->size < kDescriptorMinimum) {
    return load_error(path, "incompatible ABI: the descriptor is " + std::to_string(given->size) +
                                " bytes; ABI " + built_for + " needs at least " +
                                std::to_string(kDescriptorMinimum));
  }
  herald_plugin_descriptor descriptor{};
  std::memcpy(&descriptor, given, std::min(given->size, sizeof descriptor));

  LoadedPlugin plugin;
  plugin.info.name = text_or_empty(descriptor.name);
  plugin.info.version = text_or_empty(descriptor.version);
  plugin.info.description = text_or_empty(descriptor.description);
  plugin.info.file = path;
  plugin.info.type = "native";
  if (auto problem = internal::check_plugin_identity(plugin.info))
    return load_error(path, *problem);
  if (descriptor.capability_count > 0 && descriptor.capabilities == nullptr) {
    return load_error(path, "the descriptor lists " + std::to_string(descriptor.capability_count) +
                                " capabilities but gives no array");
  }

  std::vector<std::pair<herald_invoke_fn, void*>> entries;
  for (size_t i = 0; i < descriptor.capability_count; ++i) {
    const herald_capability* given_capability = descriptor.capabilities[i];
    if (given_capability == nullptr || given_capability->size < kCapabilityMinimum) {
      return load_error(path, "capability #" + std::to_string(i) +
                                  " is missing or too small for ABI " + built_for);
    }
    herald_capability capability{};
    std::memcpy(&capability, given_capability, std::min(given_capability->size, sizeof capability));
    CapabilityInfo info;
    info.name = text_or_empty(capability.name);
    info.description = text_or_empty(capability.description);
    auto kind = internal::kind_from_abi(capability.kind);
    if (!kind) {
      return load_error(
          path, "capability '" + info.name + "': unknown kind " + std::to_string(capability.kind));
    }
    info.kind = *kind;
    if (auto problem = internal::check_capability_name(plugin.info.name, info.name)) {
      return load_error(path, *problem);
    }
    if (capability.on_invoke == nullptr) {
      return load_error(path, "capability '" + info.name + "' has no entry point (on_invoke)");
    }
    if (capability.input_schema != nullptr) {
      Json schema = Json::parse(capability.input_schema, nullptr, false);
      if (schema.is_discarded()) {
        return load_error(
            path, "schema invalid: capability '" + info.name + "': input_schema is not JSON");
      }
      auto compiled = model::InputSchema::compile(schema);
      if (!compiled.ok()) {
        return load_error(
            path, "schema invalid: capability '" + info.name + "': " + compiled.error().message);
      }
      info.input_schema = (*compiled)->json();
    }
    for (const auto& other : plugin.info.capabilities) {
      if (other.name == info.name) {
        return load_error(path, "duplicate capability name '" + info.name + "' in this plugin");
      }
    }
    plugin.info.capabilities.push_back(info);
    entries.emplace_back(capability.on_invoke, capability.user_data);
  }

  if (descriptor.on_init != nullptr) {
    steps::StepContext context;
    Invocation call(plugin.info.name, "init", context);
    int32_t status = HERALD_FAILED;
    try {
      status = descriptor.on_init(host_api(), call.handle());
    } catch (...) {
      // A C++ plugin that lets an exception out of init: refused like any other failed init.
      call.set_error(make_error(ErrorCode::internal, "init threw an exception"));
    }
    if (status != HERALD_OK) {
      steps::StepOutcome outcome = call.finish(HERALD_FAILED);
      return load_error(path, "init failed: " + outcome.error.message);
    }
  }

  if (out != nullptr) {
    for (const auto& [invoke, user_data] : entries) out->push_back({invoke, user_data});
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    plugin.capabilities.push_back(std::make_shared<NativeCapability>(
        plugin.info.name, plugin.info.capabilities[i], entries[i].first, entries[i].second));
  }
  return plugin;
}

Result<LoadedPlugin> load_native_plugin(const std::string& path) {
  return internal::load_native_entries(path, nullptr);
}

}  // namespace herald::plugins
