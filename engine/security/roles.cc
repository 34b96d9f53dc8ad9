#include "engine/security/roles.h"

#include <cctype>
#include <string>

namespace herald::security {

namespace {

constexpr std::array<std::string_view, kAllRoles.size()> kRoleNames = {
    "admin", "editor", "approver", "viewer", "influencer"};

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string_view to_string(Role role) {
  auto index = static_cast<size_t>(role);
  return index < kRoleNames.size() ? kRoleNames[index] : "unknown";
}

Result<Role> parse_role(std::string_view text) {
  for (Role role : kAllRoles) {
    if (equals_ignoring_case(text, to_string(role))) return role;
  }
  std::string valid;
  for (Role role : kAllRoles) {
    if (!valid.empty()) valid += ", ";
    valid += to_string(role);
  }
  // The input is echoed (bounded) because a role name is not a secret and seeing it helps.
  std::string shown(text.substr(0, 40));
  return make_error(ErrorCode::invalid_argument,
                    "unknown role \"" + shown + "\"; expected one of: " + valid);
}

std::string_view to_string(Permission permission) {
  auto index = static_cast<size_t>(permission);
  return index < kPermissionTable.size() ? kPermissionTable[index].name : "unknown";
}

Result<Permission> parse_permission(std::string_view text) {
  for (const auto& rule : kPermissionTable) {
    if (rule.name == text) return rule.permission;
  }
  std::string shown(text.substr(0, 60));
  return make_error(ErrorCode::invalid_argument, "unknown permission \"" + shown + "\"");
}

}  // namespace herald::security
