#include <herald/plugin.h>

#include <regex>

#include "engine/plugins/internal/checks.h"

namespace herald::plugins {

std::string_view to_string(CapabilityKind kind) {
  switch (kind) {
    case CapabilityKind::step:
      return "step";
    case CapabilityKind::trigger_source:
      return "trigger_source";
    case CapabilityKind::provider:
      return "provider";
  }
  return "step";
}

Json PluginInfo::to_json(bool with_schemas) const {
  Json capabilities_json = Json::array();
  for (const auto& capability : capabilities) {
    Json entry = {{"name", capability.name},
                  {"kind", to_string(capability.kind)},
                  {"description", capability.description}};
    if (with_schemas) entry["input_schema"] = capability.input_schema;
    capabilities_json.push_back(std::move(entry));
  }
  return {{"name", name},
          {"version", version},
          {"description", description},
          {"file", file},
          {"type", type},
          {"isolation", isolation},
          {"capabilities", std::move(capabilities_json)}};
}

namespace internal {

namespace {
bool is_name_part(std::string_view text) {
  if (text.empty() || text.size() > 64) return false;
  for (char c : text) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}
}  // namespace

std::optional<std::string> check_plugin_identity(const PluginInfo& info) {
  if (!is_name_part(info.name)) {
    return "the plugin's name '" + info.name +
           "' is not valid: expected 1 to 64 lower-case letters, digits, '_' or '-'";
  }
  static const std::regex semver(
      R"(^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$)");
  if (!std::regex_match(info.version, semver)) {
    return "plugin " + info.name + ": version '" + info.version +
           "' is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.2.0)";
  }
  return std::nullopt;
}

std::optional<std::string> check_capability_name(const std::string& plugin,
                                                 const std::string& name) {
  const std::string prefix = plugin + ".";
  if (name.rfind(prefix, 0) != 0 || !is_name_part(name.substr(prefix.size()))) {
    return "capability name '" + name + "' is not valid: expected '" + prefix +
           "<name>' with lower-case letters, digits, '_' or '-'";
  }
  return std::nullopt;
}

std::optional<CapabilityKind> kind_from_abi(int32_t kind) {
  switch (kind) {
    case HERALD_KIND_STEP:
      return CapabilityKind::step;
    case HERALD_KIND_TRIGGER_SOURCE:
      return CapabilityKind::trigger_source;
    case HERALD_KIND_PROVIDER:
      return CapabilityKind::provider;
    default:
      return std::nullopt;
  }
}

std::optional<CapabilityKind> kind_from_name(std::string_view name) {
  if (name == "step") return CapabilityKind::step;
  if (name == "trigger_source" || name == "trigger") return CapabilityKind::trigger_source;
  if (name == "provider") return CapabilityKind::provider;
  return std::nullopt;
}

}  // namespace internal
}  // namespace herald::plugins
