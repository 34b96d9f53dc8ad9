// Workspace administration shared by the REST API and the CLI: workspaces, members, tokens and
// secrets, each change written to the audit log with who made it. The API calls these after
// checking the caller's role; the CLI (which acts on a local store, as the operator) calls them
// with a "cli" actor.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "engine/common/result.h"
#include "engine/security/roles.h"
#include "engine/security/secret_box.h"
#include "engine/store/store.h"

namespace herald::server {

// Who does something: an API token acting as a user, or the operator at the CLI.
struct Actor {
  std::string workspace_id;
  std::string user_id;     // empty for the CLI
  security::Role role = security::Role::admin;
  std::string token_id;    // empty for the CLI
  std::string address;     // the caller's IP address; empty for the CLI
  std::string request_id;

  static Actor cli(std::string workspace_id);
  // "user:alice" (via a token) or "cli".
  std::string name() const;
};

// Appends to the audit log; a failure is logged, never hides the change it records.
void audit(store::Store& store, const Actor& actor, std::string_view action,
           std::string_view object_type, std::string_view object_id, Json details = Json::object());

Result<store::Workspace> create_workspace(store::Store& store, const std::string& id,
                                          const std::string& name, const Actor& actor);

// Adds a user to the workspace with a role (creating the user when new), or changes the role.
Result<store::Membership> put_member(store::Store& store, const std::string& workspace_id,
                                     const std::string& user_id, security::Role role,
                                     const std::string& name, const std::string& email,
                                     const Actor& actor);
// Removes the member and revokes their tokens in the workspace.
Status remove_member(store::Store& store, const std::string& workspace_id,
                     const std::string& user_id, const Actor& actor);

struct CreatedToken {
  store::TokenRecord record;
  std::string token;  // shown once
};
// A token acting as `user_id` (a member of the workspace) with `role` (at most the member's own
// role: a token never grants more than its user has). Without a role: the member's role.
Result<CreatedToken> create_token(store::Store& store, const std::string& workspace_id,
                                  const std::string& user_id, std::optional<security::Role> role,
                                  const std::string& name,
                                  std::optional<store::TimePoint> expires_at, const Actor& actor);
Status revoke_token(store::Store& store, const std::string& workspace_id,
                    const std::string& token_id, const Actor& actor);

// Secret names are what `{{ secrets.NAME }}` reads: a letter or '_', then letters, digits, '_';
// at most 64 characters.
Status check_secret_name(const std::string& name);
Status set_secret(store::Store& store, const security::SecretBox& box,
                  const std::string& workspace_id, const std::string& name,
                  const std::string& value, const Actor& actor);
Status delete_secret(store::Store& store, const std::string& workspace_id, const std::string& name,
                     const Actor& actor);
// Every secret of the workspace, decrypted: {NAME: value}.
Result<Json> decrypt_secrets(store::Store& store, const security::SecretBox& box,
                             const std::string& workspace_id);

// The master key of a data folder: HERALD_MASTER_KEY, else <data_dir>/master.key.
std::filesystem::path master_key_path(const std::filesystem::path& data_dir);

struct InitResult {
  store::Workspace workspace;
  store::User user;
  CreatedToken token;
  bool key_created = false;
  std::filesystem::path key_file;
};
// What init_workspace would refuse, checked before anything is written so that a refused init
// changes nothing: an existing workspace (already_exists), ids the store refuses
// (invalid_argument).
Status check_init(store::Store& store, const std::string& workspace_id, const std::string& user_id);

// The first workspace, its admin user and an admin token; creates the master key file (mode
// 0600) unless HERALD_MASTER_KEY is set or the file exists. already_exists when the workspace
// exists.
Result<InitResult> init_workspace(store::Store& store, const std::filesystem::path& data_dir,
                                  const std::string& workspace_id, const std::string& user_id);

// Token JSON for listings (never the hash).
Json token_json(const store::TokenRecord& token);

}  // namespace herald::server
