// Rules shared by the native and Lua loaders: what a plugin's name, version and capability names
// may look like, and capability kinds. Private to engine/plugins.
#pragma once

#include <optional>
#include <string>

#include "engine/plugins/plugin.h"

namespace herald::plugins::internal {

// nullopt, or what is wrong with the plugin's name (lower-case [a-z0-9_-], 1-64 characters) or
// version (a semantic version, MAJOR.MINOR.PATCH with optional -pre/+build).
std::optional<std::string> check_plugin_identity(const PluginInfo& info);

// nullopt, or what is wrong with a capability's name: "<plugin>.<name>", lower-case
// [a-z0-9_-] parts.
std::optional<std::string> check_capability_name(const std::string& plugin,
                                                 const std::string& name);

std::optional<CapabilityKind> kind_from_abi(int32_t kind);
std::optional<CapabilityKind> kind_from_name(std::string_view name);

}  // namespace herald::plugins::internal
