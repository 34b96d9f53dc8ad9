#include "engine/server/admin.h"

#include <cctype>
#include <cstdlib>

#include <spdlog/spdlog.h>

#include "engine/common/time.h"
#include "engine/security/tokens.h"
#include "engine/store/checks.h"

namespace herald::server {

using Clock = std::chrono::system_clock;

Actor Actor::cli(std::string workspace_id) {
  Actor actor;
  actor.workspace_id = std::move(workspace_id);
  return actor;
}

std::string Actor::name() const {
  if (!user_id.empty()) return "user:" + user_id;
  if (!token_id.empty()) return "token:" + token_id;
  return "cli";
}

void audit(store::Store& store, const Actor& actor, std::string_view action,
           std::string_view object_type, std::string_view object_id, Json details) {
  store::AuditRecord record;
  record.workspace_id = actor.workspace_id;
  record.actor = actor.name();
  record.action = std::string(action);
  record.object_type = std::string(object_type);
  record.object_id = std::string(object_id);
  record.address = actor.address;
  record.request_id = actor.request_id;
  if (!actor.token_id.empty()) details["token"] = actor.token_id;
  record.details = std::move(details);
  record.at = Clock::now();
  auto appended = store.append_audit(record);
  if (!appended.ok()) {
    spdlog::error("audit log append failed for {} {} {}: {}", record.action, record.object_type,
                  record.object_id, appended.error().message);
  }
}

Result<store::Workspace> create_workspace(store::Store& store, const std::string& id,
                                          const std::string& name, const Actor& actor) {
  store::Workspace workspace{id, name.empty() ? id : name, Clock::now()};
  if (auto status = store.create_workspace(workspace); !status.ok()) return status.error();
  Actor in_workspace = actor;
  in_workspace.workspace_id = id;
  audit(store, in_workspace, "workspace.create", "workspace", id, {{"name", workspace.name}});
  return workspace;
}

namespace {
// True when `member` may do everything `token` may.
bool role_covers(security::Role member, security::Role token) {
  for (const auto& rule : security::kPermissionTable) {
    if (security::allows(token, rule.permission) && !security::allows(member, rule.permission)) return false;
  }
  return true;
}
}  // namespace

Result<store::Membership> put_member(store::Store& store, const std::string& workspace_id,
                                     const std::string& user_id, security::Role role,
                                     const std::string& name, const std::string& email,
                                     const Actor& actor) {
  if (auto workspace = store.get_workspace(workspace_id); !workspace.ok()) return workspace.error();
  auto user = store.get_user(user_id);
  if (!user.ok()) {
    if (user.error().code != ErrorCode::not_found) return user.error();
    store::User created{user_id, name.empty() ? user_id : name, email, Clock::now()};
    if (auto status = store.create_user(created); !status.ok()) return status.error();
  }
  store::Membership membership{workspace_id, user_id, std::string(security::to_string(role)),
                               Clock::now()};
  if (auto status = store.put_membership(membership); !status.ok()) return status.error();
  audit(store, actor, "user.put", "user", user_id, {{"role", membership.role}});
  // A token never grants more than its user has: after a demotion, the user's tokens that can do
  // something the new role cannot are revoked.
  auto tokens = store.list_tokens(workspace_id);
  if (!tokens.ok()) return tokens.error();
  for (const auto& token : *tokens) {
    if (token.user_id != user_id || token.revoked_at) continue;
    auto token_role = security::parse_role(token.role);
    if (token_role.ok() && role_covers(role, *token_role)) continue;
    if (auto status = store.revoke_token(workspace_id, token.id); !status.ok()) return status.error();
    audit(store, actor, "token.revoke", "token", token.id,
          {{"reason", "user " + user_id + " is now " + membership.role}});
  }
  return membership;
}

Status remove_member(store::Store& store, const std::string& workspace_id,
                     const std::string& user_id, const Actor& actor) {
  if (auto status = store.delete_membership(workspace_id, user_id); !status.ok()) return status;
  audit(store, actor, "user.remove", "user", user_id);
  return {};
}

Result<CreatedToken> create_token(store::Store& store, const std::string& workspace_id,
                                  const std::string& user_id, std::optional<security::Role> role,
                                  const std::string& name,
                                  std::optional<store::TimePoint> expires_at, const Actor& actor) {
  auto member = store.get_membership(workspace_id, user_id);
  if (!member.ok()) {
    if (member.error().code == ErrorCode::not_found) {
      return make_error(ErrorCode::not_found,
                        "user '" + user_id + "' is not a member of workspace '" + workspace_id + "'");
    }
    return member.error();
  }
  auto member_role = security::parse_role(member->role);
  if (!member_role.ok()) return member_role.error();
  security::Role granted = role.value_or(*member_role);
  // Admin covers every permission; otherwise a token may only narrow to its own role.
  if (granted != *member_role && *member_role != security::Role::admin) {
    return make_error(ErrorCode::permission_denied,
                      "user '" + user_id + "' is " + member->role + " in '" + workspace_id +
                          "'; a token cannot have the role " + std::string(security::to_string(granted)));
  }
  auto generated = security::generate_token();
  if (!generated.ok()) return generated.error();
  store::TokenRecord record;
  record.id = generated->token_id;
  record.workspace_id = workspace_id;
  record.user_id = user_id;
  record.role = std::string(security::to_string(granted));
  record.name = name;
  record.hash = generated->hash;
  record.created_at = Clock::now();
  record.expires_at = expires_at;
  if (auto status = store.create_token(record); !status.ok()) return status.error();
  audit(store, actor, "token.create", "token", record.id,
        {{"user", user_id}, {"role", record.role}, {"name", name}});
  return CreatedToken{record, generated->token};
}

Status revoke_token(store::Store& store, const std::string& workspace_id,
                    const std::string& token_id, const Actor& actor) {
  if (auto status = store.revoke_token(workspace_id, token_id); !status.ok()) return status;
  audit(store, actor, "token.revoke", "token", token_id);
  return {};
}

Status check_secret_name(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 64 &&
            (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_');
  for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
  if (!ok) {
    return make_error(ErrorCode::invalid_argument,
                      "secret name '" + name.substr(0, 80) +
                          "' is not valid: use a letter or '_', then letters, digits or '_' "
                          "(at most 64), as in {{ secrets.SLACK_TOKEN }}");
  }
  return {};
}

namespace {
// Binds a sealed secret to its workspace and name, so a ciphertext copied to another row does
// not decrypt.
std::string secret_aad(const std::string& workspace_id, const std::string& name) {
  return "herald-secret\n" + workspace_id + "\n" + name;
}
}  // namespace

Status set_secret(store::Store& store, const security::SecretBox& box,
                  const std::string& workspace_id, const std::string& name,
                  const std::string& value, const Actor& actor) {
  if (auto status = check_secret_name(name); !status.ok()) return status;
  if (value.empty()) return make_error(ErrorCode::invalid_argument, "secret " + name + ": the value is empty");
  if (value.size() > 64 * 1024) {
    return make_error(ErrorCode::invalid_argument, "secret " + name + ": the value is over 64 KiB");
  }
  auto sealed = box.encrypt_to_base64(value, secret_aad(workspace_id, name));
  if (!sealed.ok()) return sealed.error();
  store::SecretRecord record;
  record.workspace_id = workspace_id;
  record.name = name;
  record.ciphertext = std::move(sealed).value();
  record.updated_by = actor.name();
  record.created_at = record.updated_at = Clock::now();
  if (auto status = store.put_secret(record); !status.ok()) return status;
  audit(store, actor, "secret.set", "secret", name);
  return {};
}

Status delete_secret(store::Store& store, const std::string& workspace_id, const std::string& name,
                     const Actor& actor) {
  if (auto status = store.delete_secret(workspace_id, name); !status.ok()) return status;
  audit(store, actor, "secret.delete", "secret", name);
  return {};
}

Result<Json> decrypt_secrets(store::Store& store, const security::SecretBox& box,
                             const std::string& workspace_id) {
  auto records = store.list_secrets(workspace_id);
  if (!records.ok()) return records.error();
  Json values = Json::object();
  for (const auto& record : *records) {
    auto plain = box.decrypt_from_base64(record.ciphertext, secret_aad(workspace_id, record.name));
    if (!plain.ok()) {
      return make_error(ErrorCode::failed_precondition,
                        "secret " + record.name + " of workspace " + workspace_id +
                            " cannot be decrypted with this master key (fingerprint " +
                            box.key_fingerprint() + "): " + plain.error().message);
    }
    values[record.name] = std::move(plain).value();
  }
  return values;
}

std::filesystem::path master_key_path(const std::filesystem::path& data_dir) {
  return data_dir / "master.key";
}

Status check_init(store::Store& store, const std::string& workspace_id, const std::string& user_id) {
  if (auto status = store::check_slug("workspace id", workspace_id); !status.ok()) return status;
  if (auto status = store::check_slug("user id", user_id); !status.ok()) return status;
  auto existing = store.get_workspace(workspace_id);
  if (existing.ok()) {
    return make_error(ErrorCode::already_exists, "workspace '" + workspace_id + "' already exists");
  }
  if (existing.error().code != ErrorCode::not_found) return existing.error();
  return {};
}

Result<InitResult> init_workspace(store::Store& store, const std::filesystem::path& data_dir,
                                  const std::string& workspace_id, const std::string& user_id) {
  InitResult result;
  result.key_file = master_key_path(data_dir);
  const char* env_key = std::getenv(std::string(security::kMasterKeyEnv).c_str());
  bool env_set = env_key != nullptr && *env_key != '\0';
  std::error_code ec;
  if (!env_set && !std::filesystem::exists(result.key_file, ec)) {
    std::filesystem::create_directories(data_dir, ec);
    auto created = security::create_key_file(result.key_file);
    if (!created.ok()) return created.error();
    result.key_created = true;
  }
  Actor actor = Actor::cli(workspace_id);
  auto workspace = create_workspace(store, workspace_id, workspace_id, actor);
  if (!workspace.ok()) return workspace.error();
  result.workspace = *workspace;
  auto member = put_member(store, workspace_id, user_id, security::Role::admin, user_id, "", actor);
  if (!member.ok()) return member.error();
  auto user = store.get_user(user_id);
  if (!user.ok()) return user.error();
  result.user = *user;
  auto token = create_token(store, workspace_id, user_id, security::Role::admin, "herald init",
                            std::nullopt, actor);
  if (!token.ok()) return token.error();
  result.token = std::move(token).value();
  return result;
}

Json token_json(const store::TokenRecord& token) {
  Json out = {{"id", token.id},
              {"workspace", token.workspace_id},
              {"user", token.user_id},
              {"role", token.role},
              {"name", token.name},
              {"created_at", format_iso8601(token.created_at)},
              {"revoked", token.revoked_at.has_value()}};
  if (token.expires_at) out["expires_at"] = format_iso8601(*token.expires_at);
  if (token.revoked_at) out["revoked_at"] = format_iso8601(*token.revoked_at);
  if (token.last_used_at) out["last_used_at"] = format_iso8601(*token.last_used_at);
  return out;
}

}  // namespace herald::server
