// Roles and permissions: what a workspace member may do. Every REST route and CLI command that
// acts in a workspace names one Permission, and `allows(role, permission)` decides. The matrix
// lives in one table, kPermissionTable below, so that reading it is reading the policy, and a
// test can walk every role × permission pair.
//
// The policy: viewers read; editors also write workflows, start and cancel runs, emit events,
// send offers and decide the approvals they are approvers of; approvers read and decide
// approvals; admins do everything a workspace allows, including users, tokens, secrets, platform
// accounts, approval chains and the audit log; influencers see and answer only their own offers. Every role reads who it is
// (GET /api/v1/me).
//
// Two checks stay with the caller: `*_own` permissions grant access only to objects that belong
// to the caller (the route must compare the owner), and approvals.decide lets a role reach the
// decision route, while the approval chain's level still decides whether this user is one of
// its approvers. Workspace isolation (404 for another workspace's objects) is also separate.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "engine/common/result.h"

namespace herald::security {

enum class Role : uint8_t { admin, editor, approver, viewer, influencer };

inline constexpr std::array<Role, 5> kAllRoles = {Role::admin, Role::editor, Role::approver,
                                                  Role::viewer, Role::influencer};

std::string_view to_string(Role role);
// Accepts the names above in any letter case ("Admin", "VIEWER"); anything else is
// invalid_argument with the list of valid roles.
Result<Role> parse_role(std::string_view text);

enum class Permission : uint8_t {
  workflows_read,         // workflows.read: list and get workflows and their versions
  workflows_write,        // workflows.write: validate, deploy, enable, disable, delete
  runs_read,              // runs.read: list runs, get a run with its timeline
  runs_start,             // runs.start: start a run (manual trigger), retry from a failed step
  runs_cancel,            // runs.cancel
  events_emit,            // events.emit: emit an event (which may start workflows)
  approvals_read,         // approvals.read: pending and past approvals with their decisions
  approvals_decide,       // approvals.decide: approve, reject, request changes
  approval_chains_read,   // approval_chains.read
  approval_chains_write,  // approval_chains.write: define who approves what, deadlines
  secrets_read,           // secrets.read: secret names and metadata, never values
  secrets_write,          // secrets.write: set, replace, delete secrets
  accounts_read,          // accounts.read: connected platform accounts (no tokens)
  accounts_write,         // accounts.write: connect and remove platform accounts
  users_read,             // users.read: members of the workspace and their roles
  users_manage,           // users.manage: add, remove, change roles
  tokens_manage,          // tokens.manage: create, list, revoke API tokens
  audit_read,             // audit.read: the audit log
  offers_read,            // offers.read: every influencer offer in the workspace
  offers_write,           // offers.write: create and send offers
  offers_read_own,        // offers.read_own: offers addressed to the caller
  offers_respond_own,     // offers.respond_own: accept or decline an offer addressed to the caller
  me_read,                // me.read: the caller's own workspace, user, role and permissions
};

// One bit per Role, in enum order.
constexpr uint8_t role_bit(Role role) {
  return static_cast<uint8_t>(1u << static_cast<int>(role));
}

struct PermissionRule {
  Permission permission;
  std::string_view name;  // "workflows.read"
  uint8_t roles;          // the roles allowed, as role_bit()s
};

namespace role_bits {
inline constexpr uint8_t admin = role_bit(Role::admin);
inline constexpr uint8_t editor = role_bit(Role::editor);
inline constexpr uint8_t approver = role_bit(Role::approver);
inline constexpr uint8_t viewer = role_bit(Role::viewer);
inline constexpr uint8_t influencer = role_bit(Role::influencer);
// Everyone who may read the workspace's operations (everyone but influencers).
inline constexpr uint8_t readers = admin | editor | approver | viewer;
// Every role.
inline constexpr uint8_t everyone = readers | influencer;
}  // namespace role_bits

// THE policy. One row per Permission, in enum order (a static_assert below keeps it so).
inline constexpr std::array<PermissionRule, 23> kPermissionTable = {{
    {Permission::workflows_read, "workflows.read", role_bits::readers},
    {Permission::workflows_write, "workflows.write", role_bits::admin | role_bits::editor},
    {Permission::runs_read, "runs.read", role_bits::readers},
    {Permission::runs_start, "runs.start", role_bits::admin | role_bits::editor},
    {Permission::runs_cancel, "runs.cancel", role_bits::admin | role_bits::editor},
    {Permission::events_emit, "events.emit", role_bits::admin | role_bits::editor},
    {Permission::approvals_read, "approvals.read", role_bits::readers},
    // Admins and editors decide too: a chain may name them (role:editor, user:ed) as a level's
    // approvers, and its levels decide who of them may decide on what.
    {Permission::approvals_decide, "approvals.decide",
     role_bits::admin | role_bits::editor | role_bits::approver},
    {Permission::approval_chains_read, "approval_chains.read", role_bits::readers},
    {Permission::approval_chains_write, "approval_chains.write", role_bits::admin},
    // Editors see secret names because workflows refer to them as {{ secrets.NAME }}.
    {Permission::secrets_read, "secrets.read", role_bits::admin | role_bits::editor},
    {Permission::secrets_write, "secrets.write", role_bits::admin},
    {Permission::accounts_read, "accounts.read", role_bits::readers},
    // Connecting an account stores its platform token, a secret: admin only, like secrets.
    {Permission::accounts_write, "accounts.write", role_bits::admin},
    {Permission::users_read, "users.read", role_bits::admin},
    {Permission::users_manage, "users.manage", role_bits::admin},
    {Permission::tokens_manage, "tokens.manage", role_bits::admin},
    {Permission::audit_read, "audit.read", role_bits::admin},
    {Permission::offers_read, "offers.read", role_bits::readers},
    {Permission::offers_write, "offers.write", role_bits::admin | role_bits::editor},
    // The only grants influencers have; others read offers through offers.read instead.
    {Permission::offers_read_own, "offers.read_own", role_bits::influencer},
    {Permission::offers_respond_own, "offers.respond_own", role_bits::influencer},
    // Who the caller is: every member, whatever their role, may ask.
    {Permission::me_read, "me.read", role_bits::everyone},
}};

constexpr bool permission_table_is_in_enum_order() {
  for (size_t i = 0; i < kPermissionTable.size(); ++i) {
    if (static_cast<size_t>(kPermissionTable[i].permission) != i) return false;
  }
  return true;
}
static_assert(permission_table_is_in_enum_order(),
              "kPermissionTable must list every Permission once, in enum order");
static_assert(static_cast<size_t>(Permission::me_read) + 1 == kPermissionTable.size(),
              "a Permission was added without a row in kPermissionTable");

constexpr bool allows(Role role, Permission permission) {
  auto index = static_cast<size_t>(permission);
  return index < kPermissionTable.size() && (kPermissionTable[index].roles & role_bit(role)) != 0;
}

// "workflows.read" etc.
std::string_view to_string(Permission permission);
// The dotted names exactly as in the table; anything else is invalid_argument.
Result<Permission> parse_permission(std::string_view text);

}  // namespace herald::security
