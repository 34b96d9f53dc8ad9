// Who the approvers of a level are. The chain names people indirectly (role:legal,
// group:brand-team); the Directory, implemented by the caller over its users, roles, groups and
// delegations, says who that is at the moment a level opens. Resolution turns a level's entries
// into the set of people who may decide, each once.
//
// People are written as principals: "user:<id>" for Herald users and "email:<address>" for
// external approvers, who act through signed links only.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/approvals/chain.h"
#include "engine/common/result.h"
#include "engine/common/time.h"

namespace herald::approvals {

std::string user_principal(std::string_view user_id);  // "user:<id>"
std::string email_principal(std::string_view address);  // "email:<address, lower-cased>"
bool is_user_principal(std::string_view principal);
bool is_email_principal(std::string_view principal);
// The user id of a "user:" principal; empty for any other.
std::string_view user_id_of(std::string_view principal);

// Implemented by the caller (the store-backed workspace directory; a fixed one in tests). An
// Error (a store that cannot be read) makes the approval function that asked return that Error
// without changing anything, so the caller can retry; "nobody" is an answer, not an error.
class Directory {
 public:
  virtual ~Directory() = default;
  virtual Result<bool> user_exists(std::string_view user_id) const = 0;
  // The ids of the users holding `role`; empty when nobody does or the role is unknown.
  virtual Result<std::vector<std::string>> users_with_role(std::string_view role) const = 0;
  // The user ids in `group`; nullopt when there is no such group.
  virtual Result<std::optional<std::vector<std::string>>> group_members(
      std::string_view group) const = 0;
  // The user `user_id` has delegated their approvals to at `at` (an absence, a holiday), if any.
  virtual Result<std::optional<std::string>> delegate_of(std::string_view user_id,
                                                         TimePoint at) const = 0;
};

struct Resolution {
  std::vector<std::string> eligible;  // principals, sorted, each once
  // Why entries contributed nobody ("role:legal has no members", "user:ann does not exist",
  // "user:sam submitted this and may not approve it"), for the requested event and for the
  // error when the level cannot be decided.
  std::vector<std::string> notes;
};

// Resolves `approvers` for a submission by `submitter` (a principal). The submitter is left out
// unless `allow_self_approval`.
Result<Resolution> resolve_approvers(const std::vector<ApproverRef>& approvers,
                                     const Directory& directory, std::string_view submitter,
                                     bool allow_self_approval);

}  // namespace herald::approvals
