// The raw entry points of a native plugin's capabilities, for the `herald plugin-host` child,
// which calls them with its own host table (one that forwards every host function to the engine).
#pragma once

#include <string>
#include <vector>

#include <herald/plugin.h>

#include "engine/plugins/plugin.h"

namespace herald::plugins::internal {

struct NativeEntry {
  herald_invoke_fn invoke = nullptr;
  void* user_data = nullptr;
};

// load_native_plugin, also giving each capability's entry point, in the order of
// info.capabilities (when `entries` is not null).
Result<LoadedPlugin> load_native_entries(const std::string& path,
                                         std::vector<NativeEntry>* entries);

}  // namespace herald::plugins::internal
