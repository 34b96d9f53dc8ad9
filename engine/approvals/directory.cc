#include "engine/approvals/directory.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace herald::approvals {
namespace {

constexpr std::string_view kUserPrefix = "user:";
constexpr std::string_view kEmailPrefix = "email:";

}  // namespace

std::string user_principal(std::string_view user_id) {
  return std::string(kUserPrefix) + std::string(user_id);
}

std::string email_principal(std::string_view address) {
  std::string out(kEmailPrefix);
  for (char c : address) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_user_principal(std::string_view principal) {
  return principal.size() > kUserPrefix.size() && principal.substr(0, kUserPrefix.size()) == kUserPrefix;
}

bool is_email_principal(std::string_view principal) {
  return principal.size() > kEmailPrefix.size() &&
         principal.substr(0, kEmailPrefix.size()) == kEmailPrefix;
}

std::string_view user_id_of(std::string_view principal) {
  if (!is_user_principal(principal)) return {};
  return principal.substr(kUserPrefix.size());
}

Result<Resolution> resolve_approvers(const std::vector<ApproverRef>& approvers,
                                     const Directory& directory, std::string_view submitter,
                                     bool allow_self_approval) {
  std::set<std::string> eligible;
  Resolution resolution;
  bool submitter_matched = false;
  auto add = [&](std::string principal) {
    if (!allow_self_approval && principal == submitter) {
      submitter_matched = true;
      return;
    }
    eligible.insert(std::move(principal));
  };
  for (const auto& approver : approvers) {
    switch (approver.kind) {
      case ApproverRef::Kind::user: {
        Result<bool> exists = directory.user_exists(approver.name);
        if (!exists.ok()) return std::move(exists).error();
        if (!*exists) {
          resolution.notes.push_back(approver.to_string() + " does not exist");
          break;
        }
        add(user_principal(approver.name));
        break;
      }
      case ApproverRef::Kind::role: {
        Result<std::vector<std::string>> users = directory.users_with_role(approver.name);
        if (!users.ok()) return std::move(users).error();
        if (users->empty()) resolution.notes.push_back(approver.to_string() + " has no members");
        for (const auto& user : *users) add(user_principal(user));
        break;
      }
      case ApproverRef::Kind::group: {
        Result<std::optional<std::vector<std::string>>> members =
            directory.group_members(approver.name);
        if (!members.ok()) return std::move(members).error();
        if (!members->has_value()) {
          resolution.notes.push_back(approver.to_string() + " does not exist");
        } else if ((*members)->empty()) {
          resolution.notes.push_back(approver.to_string() + " has no members");
        } else {
          for (const auto& user : **members) add(user_principal(user));
        }
        break;
      }
      case ApproverRef::Kind::email:
        add(email_principal(approver.name));
        break;
    }
  }
  if (submitter_matched) {
    resolution.notes.push_back(std::string(submitter) +
                               " submitted this and may not approve it (allow_self_approval is "
                               "false)");
  }
  resolution.eligible.assign(eligible.begin(), eligible.end());
  return resolution;
}

}  // namespace herald::approvals
