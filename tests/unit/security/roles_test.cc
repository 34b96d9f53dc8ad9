// The role model: the full role × permission matrix against expectations written out here
// independently of kPermissionTable, so a change to the policy has to be made twice, on purpose.
#include "engine/security/roles.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

namespace herald::security {
namespace {

// Issue 3: viewer reads; editor writes workflows and starts runs; admin manages users, tokens,
// secrets, approval chains; approver decides approvals; influencer sees only their own offers.
// Every role reads who it is (GET /api/v1/me).
const std::map<std::string, std::set<std::string>>& expected_matrix() {
  static const std::map<std::string, std::set<std::string>> matrix = {
      {"workflows.read", {"admin", "editor", "approver", "viewer"}},
      {"workflows.write", {"admin", "editor"}},
      {"runs.read", {"admin", "editor", "approver", "viewer"}},
      {"runs.start", {"admin", "editor"}},
      {"runs.cancel", {"admin", "editor"}},
      {"events.emit", {"admin", "editor"}},
      {"approvals.read", {"admin", "editor", "approver", "viewer"}},
      {"approvals.decide", {"admin", "editor", "approver"}},
      {"approval_chains.read", {"admin", "editor", "approver", "viewer"}},
      {"approval_chains.write", {"admin"}},
      {"secrets.read", {"admin", "editor"}},
      {"secrets.write", {"admin"}},
      {"accounts.read", {"admin", "editor", "approver", "viewer"}},
      {"accounts.write", {"admin"}},
      {"users.read", {"admin"}},
      {"users.manage", {"admin"}},
      {"tokens.manage", {"admin"}},
      {"audit.read", {"admin"}},
      {"offers.read", {"admin", "editor", "approver", "viewer"}},
      {"offers.write", {"admin", "editor"}},
      {"offers.read_own", {"influencer"}},
      {"offers.respond_own", {"influencer"}},
      {"me.read", {"admin", "editor", "approver", "viewer", "influencer"}},
  };
  return matrix;
}

TEST(RolesTest, EveryRoleTimesEveryPermission) {
  ASSERT_EQ(kPermissionTable.size(), expected_matrix().size());
  int checked = 0;
  for (const auto& rule : kPermissionTable) {
    auto expected = expected_matrix().find(std::string(rule.name));
    ASSERT_NE(expected, expected_matrix().end()) << "no expectation for " << rule.name;
    for (Role role : kAllRoles) {
      bool should = expected->second.count(std::string(to_string(role))) > 0;
      EXPECT_EQ(allows(role, rule.permission), should) << to_string(role) << " × " << rule.name;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 5 * 23);
}

TEST(RolesTest, RoleNamesRoundTrip) {
  std::set<std::string_view> names;
  for (Role role : kAllRoles) {
    names.insert(to_string(role));
    auto parsed = parse_role(to_string(role));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, role);
  }
  EXPECT_EQ(names,
            (std::set<std::string_view>{"admin", "editor", "approver", "viewer", "influencer"}));
  EXPECT_EQ(*parse_role("Admin"), Role::admin);
  EXPECT_EQ(*parse_role("VIEWER"), Role::viewer);
}

TEST(RolesTest, UnknownRolesListTheValidOnes) {
  for (std::string bad : {std::string(""), std::string("superuser"), std::string("admin "),
                          std::string(" admin"), std::string("admins"), std::string(10'000, 'x')}) {
    auto parsed = parse_role(bad);
    ASSERT_FALSE(parsed.ok()) << bad.substr(0, 40);
    EXPECT_EQ(parsed.error().code, ErrorCode::invalid_argument);
    EXPECT_NE(parsed.error().message.find("admin, editor, approver, viewer, influencer"),
              std::string::npos);
    EXPECT_LT(parsed.error().message.size(), 200u);  // a huge input is not echoed whole
  }
}

TEST(RolesTest, PermissionNamesAreUniqueAndRoundTrip) {
  std::set<std::string_view> names;
  for (const auto& rule : kPermissionTable) {
    EXPECT_TRUE(names.insert(rule.name).second) << "duplicate " << rule.name;
    EXPECT_EQ(to_string(rule.permission), rule.name);
    auto parsed = parse_permission(rule.name);
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, rule.permission);
  }
  for (std::string_view bad : {"", "workflows", "workflows.READ", "workflows_read", "*"}) {
    auto parsed = parse_permission(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.error().code, ErrorCode::invalid_argument);
  }
}

TEST(RolesTest, StructuralProperties) {
  for (const auto& rule : kPermissionTable) {
    std::string_view name = rule.name;
    bool own = name.ends_with("_own");
    bool read = name.ends_with(".read");
    // Influencers reach nothing but their own offers, and who they are.
    EXPECT_EQ(allows(Role::influencer, rule.permission), own || name == "me.read") << name;
    // Viewers read and never change anything.
    if (allows(Role::viewer, rule.permission)) {
      EXPECT_TRUE(read) << name;
    }
    // Every role but the influencer can do what a viewer can; admin can do what an editor or an
    // approver can, except acting as an influencer on their own offers.
    if (allows(Role::viewer, rule.permission)) {
      EXPECT_TRUE(allows(Role::editor, rule.permission)) << name;
      EXPECT_TRUE(allows(Role::approver, rule.permission)) << name;
    }
    if (!own) {
      EXPECT_TRUE(allows(Role::admin, rule.permission)) << name;
    }
    // Every permission is granted to someone.
    EXPECT_NE(rule.roles, 0) << name;
  }
}

TEST(RolesTest, AllowsIsUsableAtCompileTime) {
  static_assert(allows(Role::admin, Permission::tokens_manage));
  static_assert(!allows(Role::editor, Permission::secrets_write));
  static_assert(allows(Role::approver, Permission::approvals_decide));
  static_assert(!allows(Role::viewer, Permission::runs_start));
  SUCCEED();
}

}  // namespace
}  // namespace herald::security
