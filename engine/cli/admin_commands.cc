// herald init, workspace, user, token, secret, audit: administration of the local store, as the
// operator (the "cli" actor), through engine/server/admin.h so the CLI and the REST API change
// things the same way and write the same audit entries. herald trigger: starts a deployed
// workflow on a running server through its REST API.
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <istream>
#include <memory>
#include <sstream>
#include <thread>

#include "engine/cli/api_client.h"
#include "engine/cli/command.h"
#include "engine/common/duration.h"
#include "engine/common/time.h"
#include "engine/security/roles.h"
#include "engine/security/secret_box.h"
#include "engine/server/admin.h"

namespace herald::cli {

namespace {

const FlagSpec kWorkspaceFlag = {"workspace", true, false, "the workspace (HERALD_WORKSPACE)", "ID"};
const FlagSpec kJsonFlag = {"json", false, false, "print JSON", ""};

int missing_workspace(Io& io, const std::string& command) {
  return usage_error(io, command + " needs --workspace ID (or HERALD_WORKSPACE)");
}

std::string time_or_dash(const std::optional<store::TimePoint>& time) {
  return time ? format_iso8601(*time) : "-";
}

std::string or_dash(const std::string& text) { return text.empty() ? "-" : text; }

Result<security::Role> role_flag(const ParsedArgs& args) {
  auto text = args.value("role");
  if (!text) return make_error(ErrorCode::invalid_argument, "--role is required");
  return security::parse_role(*text);
}

// ---- herald init ---------------------------------------------------------------------------

int cmd_init_impl(const std::vector<std::string>& argv, Io& io) {
  auto specs = with_store_flags({
      {"workspace", true, false, "the workspace to create (HERALD_WORKSPACE, default \"default\")", "ID"},
      {"user", true, false, "its admin user (default \"admin\")", "ID"},
      {"quiet", false, false, "print only the token", ""},
  });
  auto args = parse_args(argv, specs, "herald init");
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help")) {
    io.out << "Usage: herald init [--workspace ID] [--user ID] [--quiet]\n\n"
              "Creates the first workspace, its admin user and an admin API token (shown once), and "
              "the master key file <data-dir>/master.key (mode 0600) that encrypts secrets, unless "
              "HERALD_MASTER_KEY is set or the file exists.\n\n"
           << flags_help(specs);
    return kExitOk;
  }
  if (!args->positional.empty()) return usage_error(io, "herald init takes no arguments");
  std::string workspace_id = workspace_of(*args).value_or("default");
  std::string user_id = args->value("user").value_or("admin");
  // A malformed HERALD_MASTER_KEY is refused now, not when the first secret is set.
  if (env_value(std::string(security::kMasterKeyEnv).c_str())) {
    if (auto key = security::load_master_key(); !key.ok()) return report(io, key.error());
  }
  auto opened = open_from(*args);
  if (!opened.ok()) return report(io, opened.error());
  auto& store = *opened->store;
  // Checked before anything is written, so a second init (or a bad id) changes nothing.
  if (auto check = server::check_init(store, workspace_id, user_id); !check.ok()) {
    if (check.error().code == ErrorCode::already_exists) {
      io.err << "error: workspace '" << workspace_id
             << "' already exists; nothing was changed. `herald token create --workspace "
             << workspace_id << "` makes a new token, `herald init --workspace OTHER` another "
             << "workspace.\n";
      return kExitFailed;
    }
    return report(io, check.error());
  }
  const std::string& data_dir = opened->config.data_dir;
  auto result = server::init_workspace(store, data_dir, workspace_id, user_id);
  if (!result.ok()) return report(io, result.error());
  const std::string& token = result->token.token;
  if (args->has("quiet")) {
    io.out << token << "\n";
    return kExitOk;
  }
  std::string key_line;
  if (result->key_created) {
    key_line = "created " + result->key_file.string() +
               " (mode 0600); back it up: without it the stored secrets cannot be read";
  } else if (env_value(std::string(security::kMasterKeyEnv).c_str())) {
    key_line = "HERALD_MASTER_KEY (from the environment; no key file written)";
  } else {
    key_line = "existing " + result->key_file.string();
  }
  io.out << "Initialized Herald in " << data_dir << "\n"
         << "  workspace   " << result->workspace.id << "\n"
         << "  admin user  " << result->user.id << "\n"
         << "  master key  " << key_line << "\n"
         << "  token id    " << result->token.record.id << " (role admin)\n\n"
         << "The admin token is shown only once; store it now:\n\n"
         << "  " << token << "\n\n"
         << "Send it as `Authorization: Bearer <token>`, or export HERALD_TOKEN for "
            "`herald trigger`.\n";
  return kExitOk;
}

// ---- herald workspace ----------------------------------------------------------------------

int cmd_workspace_create(const std::vector<std::string>& argv, Io& io) {
  auto specs = with_store_flags({{"name", true, false, "display name (default: the id)", "TEXT"}});
  auto args = parse_args(argv, specs, "herald workspace create");
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help")) {
    io.out << "Usage: herald workspace create ID [--name DISPLAY]\n\nCreates an empty workspace; "
              "add members with `herald user add`.\n\n"
           << flags_help(specs);
    return kExitOk;
  }
  if (args->positional.size() != 1) return usage_error(io, "herald workspace create takes one ID");
  const std::string& id = args->positional[0];
  auto opened = open_from(*args);
  if (!opened.ok()) return report(io, opened.error());
  auto workspace = server::create_workspace(*opened->store, id, args->value("name").value_or(""),
                                            server::Actor::cli(id));
  if (!workspace.ok()) return report(io, workspace.error());
  io.out << "created workspace " << workspace->id << " (" << workspace->name
         << "); add a member: herald user add USER --workspace " << workspace->id
         << " --role admin\n";
  return kExitOk;
}

int cmd_workspace_list(const std::vector<std::string>& argv, Io& io) {
  auto specs = with_store_flags({kJsonFlag});
  auto args = parse_args(argv, specs, "herald workspace list");
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help")) {
    io.out << "Usage: herald workspace list [--json]\n\nEvery workspace, by id.\n\n" << flags_help(specs);
    return kExitOk;
  }
  if (!args->positional.empty()) return usage_error(io, "herald workspace list takes no arguments");
  auto opened = open_from(*args);
  if (!opened.ok()) return report(io, opened.error());
  auto workspaces = opened->store->list_workspaces();
  if (!workspaces.ok()) return report(io, workspaces.error());
  if (args->has("json")) {
    Json list = Json::array();
    for (const auto& w : *workspaces) {
      list.push_back({{"id", w.id}, {"name", w.name}, {"created_at", format_iso8601(w.created_at)}});
    }
    io.out << list.dump(2) << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {{"ID", "NAME", "CREATED"}};
  for (const auto& w : *workspaces) rows.push_back({w.id, w.name, format_iso8601(w.created_at)});
  print_table(io.out, rows);
  return kExitOk;
}

// ---- herald user ---------------------------------------------------------------------------

int cmd_user_add(const std::vector<std::string>& argv, Io& io) {
  auto specs = with_store_flags({
      kWorkspaceFlag,
      {"role", true, false, "admin, editor, approver, viewer or influencer", "ROLE"},
      {"name", true, false, "display name of a new user (default: the id)", "TEXT"},
      {"email", true, false, "email of a new user", "ADDRESS"},
  });
  auto args = parse_args(argv, specs, "herald user add");
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help")) {
    io.out << "Usage: herald user add USER --workspace ID --role ROLE [--name TEXT] [--email ADDRESS]\n\n"
              "Adds the user to the workspace with the role (creating the user when new), or "
              "changes the role of a member.\n\n"
           << flags_help(specs);
    return kExitOk;
  }
  if (args->positional.size() != 1) return usage_error(io, "herald user add takes one USER id");
  const std::string& user_id = args->positional[0];
  auto workspace_id = workspace_of(*args);
  if (!workspace_id) return missing_workspace(io, "herald user add");
  auto role = role_flag(*args);
  if (!role.ok()) return usage_error(io, role.error().message);
  auto opened = open_from(*args);
  if (!opened.ok()) return report(io, opened.error());
  auto& store = *opened->store;
  if (auto status = require_workspace(store, *workspace_id); !status.ok()) return report(io, status.error());
  auto before = store.get_membership(*workspace_id, user_id);
  auto member = server::put_member(store, *workspace_id, user_id, *role, args->value("name").value_or(""),
                                   args->value("email").value_or(""), server::Actor::cli(*workspace_id));
  if (!member.ok()) return report(io, member.error());
  if (before.ok()) {
    io.out << "user " << user_id << " in " << *workspace_id << ": role " << before->role << " -> "
           << member->role << "\n";
  } else {
    io.out << "added user " << user_id << " to " << *workspace_id << " as " << member->role << "\n";
  }
  return kExitOk;
}

int cmd_user_list(const std::vector<std::string>& argv, Io& io) {
  auto specs = with_store_flags({kWorkspaceFlag, kJsonFlag});
  auto args = parse_args(argv, specs, "herald user list");
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help")) {
    io.out << "Usage: herald user list --workspace ID [--json]\n\nThe workspace's members and their "
              "roles.\n\n"
           << flags_help(specs);
    return kExitOk;
  }
  if (!args->positional.empty()) return usage_error(io, "herald user list takes no arguments");
  auto workspace_id = workspace_of(*args);
  if (!workspace_id) return missing_workspace(io, "herald user list");
  auto opened = open_from(*args);
  if (!opened.ok()) return report(io, opened.error());
  auto& store = *opened->store;
  if (auto status = require_workspace(store, *workspace_id); !status.ok()) return report(io, status.error());
  auto members = store.list_memberships(*workspace_id);
  if (!members.ok()) return report(io, members.error());
  Json list = Json::array();
  std::vector<std::vector<std::string>> rows = {{"USER", "ROLE", "NAME", "EMAIL", "MEMBER SINCE"}};
  for (const auto& m : *members) {
    auto user = store.get_user(m.user_id);
    std::string name = user.ok() ? user->name : "";
    std::string email = user.ok() ? user->email : "";
    list.push_back({{"user", m.user_id},
                    {"role", m.role},
                    {"name", name},
                    {"email", email},
                    {"created_at", format_iso8601(m.created_at)}});
    rows.push_back({m.user_id, m.role, or_dash(name), or_dash(email), format_iso8601(m.created_at)});
  }
  if (args->has("json")) {
    io.out << list.dump(2) << "\n";
  } else {
    print_table(io.out, rows);
  }
  return kExitOk;
}

int cmd_user_remove(const std::vector<std::string>& argv, Io& io) {
  auto specs = with_store_flags({kWorkspaceFlag});
  auto args = parse_args(argv, specs, "herald user remove");
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help")) {
    io.out << "Usage: herald user remove USER --workspace ID\n\nRemoves the member from the "
              "workspace and revokes their tokens in it.\n\n"
           << flags_help(specs);
    return kExitOk;
  }
  if (args->positional.size() != 1) return usage_error(io, "herald user remove takes one USER id");
  const std::string& user_id = args->positional[0];
  auto workspace_id = workspace_of(*args);
  if (!workspace_id) return missing_workspace(io, "herald user remove");
  auto opened = open_from(*args);
  if (!opened.ok()) return report(io, opened.error());
  auto& store = *opened->store;
  if (auto status = require_workspace(store, *workspace_id); !status.ok()) return report(io, status.error());
  if (auto status = server::remove_member(store, *workspace_id, user_id, server::Actor::cli(*workspace_id));
      !status.ok()) {
    return report(io, status.error());
  }
  io.out << "removed user " << user_id << " from " << *workspace_id << "; their tokens in it are revoked\n";
  return kExitOk;
}

// ---- herald token --------------------------------------------------------------------------

// --user, else the workspace's only admin.
Result<std::string> token_user(store::Store& store, const std::string& workspace_id,
                               const ParsedArgs& args) {
  if (auto user = args.value("user")) return *user;
  auto members = store.list_memberships(workspace_id);
  if (!members.ok()) return members.error();
  std::vector<std::string> admins;
  for (const auto& m : *members) {
    if (m.role == security::to_string(security::Role::admin)) admins.push_back(m.user_id);
  }
  if (admins.size() == 1) return admins[0];
  std::string which;
  for (const auto& admin : admins) which += (which.empty() ? "" : ", ") + admin;
  return make_error(ErrorCode::invalid_argument,
                    "herald token create needs --user: workspace '" + workspace_id + "' has " +
                        (admins.empty() ? std::string("no admin")
                                        : std::to_string(admins.size()) + " admins (" + which + ")"));
}

int cmd_token_create(const std::vector<std::string>& argv, Io& io) {
  auto specs = with_store_flags({
      kWorkspaceFlag,
      {"role", true, false, "the token's role: the user's own (the default), or any if the user is admin", "ROLE"},
      {"user", true, false, "the member it acts as (default: the workspace's admin, when there is one)", "ID"},
      {"name", true, false, "what it is for, e.g. \"ci deploys\"", "TEXT"},
      {"expires", true, false, "lifetime, e.g. 30d or 12h (default: never expires)", "DURATION"},
      {"quiet", false, false, "print only the token", ""},
  });
  auto args = parse_args(argv, specs, "herald token create");
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help")) {
    io.out << "Usage: herald token create --workspace ID [--role ROLE] [--user ID] [--name TEXT] "
              "[--expires DURATION] [--quiet]\n\n"
              "Creates an API token acting as a member of the workspace. The token is printed once; "
              "only its hash is stored. A token never has more rights than its user.\n\n"
           << flags_help(specs);
    return kExitOk;
  }
  if (!args->positional.empty()) return usage_error(io, "herald token create takes no arguments");
  auto workspace_id = workspace_of(*args);
  if (!workspace_id) return missing_workspace(io, "herald token create");
  std::optional<security::Role> role;
  if (args->has("role")) {
    auto parsed = role_flag(*args);
    if (!parsed.ok()) return usage_error(io, parsed.error().message);
    role = *parsed;
  }
  std::optional<store::TimePoint> expires_at;
  if (auto text = args->value("expires")) {
    auto lifetime = parse_duration(*text);
    if (!lifetime.ok()) return usage_error(io, "--expires: " + lifetime.error().message);
    if (lifetime->count() <= 0) return usage_error(io, "--expires must be longer than 0");
    expires_at = store::Clock::now() + *lifetime;
  }
  auto opened = open_from(*args);
  if (!opened.ok()) return report(io, opened.error());
  auto& store = *opened->store;
  if (auto status = require_workspace(store, *workspace_id); !status.ok()) return report(io, status.error());
  auto user = token_user(store, *workspace_id, *args);
  if (!user.ok()) return report(io, user.error());
  auto created = server::create_token(store, *workspace_id, *user, role, args->value("name").value_or(""),
                                      expires_at, server::Actor::cli(*workspace_id));
  if (!created.ok()) return report(io, created.error());
  if (args->has("quiet")) {
    io.out << created->token << "\n";
    return kExitOk;
  }
  io.out << "created token " << created->record.id << " for user " << created->record.user_id
         << " (role " << created->record.role << ") in " << *workspace_id << ", "
         << (expires_at ? "expires " + format_iso8601(*expires_at) : std::string("never expires"))
         << "\n\nThe token is shown only once; store it now:\n\n  " << created->token << "\n";
  return kExitOk;
}

int cmd_token_list(const std::vector<std::string>& argv, Io& io) {
  auto specs = with_store_flags({kWorkspaceFlag, kJsonFlag});
  auto args = parse_args(argv, specs, "herald token list");
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help")) {
    io.out << "Usage: herald token list --workspace ID [--json]\n\nThe workspace's API tokens (never "
              "the tokens themselves: only their ids).\n\n"
           << flags_help(specs);
    return kExitOk;
  }
  if (!args->positional.empty()) return usage_error(io, "herald token list takes no arguments");
  auto workspace_id = workspace_of(*args);
  if (!workspace_id) return missing_workspace(io, "herald token list");
  auto opened = open_from(*args);
  if (!opened.ok()) return report(io, opened.error());
  auto& store = *opened->store;
  if (auto status = require_workspace(store, *workspace_id); !status.ok()) return report(io, status.error());
  auto tokens = store.list_tokens(*workspace_id);
  if (!tokens.ok()) return report(io, tokens.error());
  if (args->has("json")) {
    Json list = Json::array();
    for (const auto& token : *tokens) list.push_back(server::token_json(token));
    io.out << list.dump(2) << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"ID", "USER", "ROLE", "NAME", "CREATED", "LAST USED", "EXPIRES", "REVOKED"}};
  for (const auto& t : *tokens) {
    rows.push_back({t.id, t.user_id, t.role, or_dash(t.name), format_iso8601(t.created_at),
                    time_or_dash(t.last_used_at), time_or_dash(t.expires_at), time_or_dash(t.revoked_at)});
  }
  print_table(io.out, rows);
  return kExitOk;
}

int cmd_token_revoke(const std::vector<std::string>& argv, Io& io) {
  auto specs = with_store_flags({kWorkspaceFlag});
  auto args = parse_args(argv, specs, "herald token revoke");
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help")) {
    io.out << "Usage: herald token revoke TOKEN_ID --workspace ID\n\nRevokes a token at once (its id "
              "is in `herald token list`).\n\n"
           << flags_help(specs);
    return kExitOk;
  }
  if (args->positional.size() != 1) return usage_error(io, "herald token revoke takes one TOKEN_ID");
  auto workspace_id = workspace_of(*args);
  if (!workspace_id) return missing_workspace(io, "herald token revoke");
  auto opened = open_from(*args);
  if (!opened.ok()) return report(io, opened.error());
  auto& store = *opened->store;
  if (auto status = require_workspace(store, *workspace_id); !status.ok()) return report(io, status.error());
  if (auto status = server::revoke_token(store, *workspace_id, args->positional[0],
                                         server::Actor::cli(*workspace_id));
      !status.ok()) {
    return report(io, status.error());
  }
  io.out << "revoked token " << args->positional[0] << "\n";
  return kExitOk;
}

// ---- herald secret -------------------------------------------------------------------------

constexpr size_t kMaxSecretInput = 1024 * 1024;  // set_secret refuses far less; stop reading here

// The value from stdin: hidden when typed at a terminal (one line), else all of stdin with one
// trailing newline removed.
Result<std::string> read_secret_value(Io& io, const std::string& name) {
  std::string value;
  if (isatty(STDIN_FILENO) != 0) {
    io.err << "Value of " << name << " (not shown), then Enter: " << std::flush;
    termios saved{};
    bool hidden = tcgetattr(STDIN_FILENO, &saved) == 0;
    if (hidden) {
      termios quiet = saved;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      hidden = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
    }
    std::getline(std::cin, value);
    if (hidden) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    io.err << "\n";
  } else {
    char buffer[8192];
    while (std::cin.read(buffer, sizeof buffer) || std::cin.gcount() > 0) {
      value.append(buffer, static_cast<size_t>(std::cin.gcount()));
      if (value.size() > kMaxSecretInput) {
        return make_error(ErrorCode::invalid_argument, "secret " + name + ": the value on stdin is over 1 MiB");
      }
    }
    if (!value.empty() && value.back() == '\n') {
      value.pop_back();
      if (!value.empty() && value.back() == '\r') value.pop_back();
    }
  }
  if (value.empty()) {
    return make_error(ErrorCode::invalid_argument,
                      "secret " + name + ": the value read from stdin is empty; pipe it in, e.g. "
                      "`printf %s \"$VALUE\" | herald secret set " + name + " --workspace ID`");
  }
  return value;
}

int cmd_secret_set(const std::vector<std::string>& argv, Io& io) {
  auto specs = with_store_flags({kWorkspaceFlag});
  auto args = parse_args(argv, specs, "herald secret set");
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help")) {
    io.out << "Usage: herald secret set NAME --workspace ID < value\n\n"
              "Sets (or replaces) a secret that workflows read as {{ secrets.NAME }}. The value is "
              "read from stdin (one trailing newline removed; typed hidden at a terminal), "
              "encrypted with the master key (HERALD_MASTER_KEY or <data-dir>/master.key) and "
              "never printed.\n\n"
           << flags_help(specs);
    return kExitOk;
  }
  if (args->positional.size() != 1) return usage_error(io, "herald secret set takes one NAME (the value comes from stdin)");
  const std::string& name = args->positional[0];
  if (auto status = server::check_secret_name(name); !status.ok()) return report(io, status.error());
  auto workspace_id = workspace_of(*args);
  if (!workspace_id) return missing_workspace(io, "herald secret set");
  auto opened = open_from(*args);
  if (!opened.ok()) return report(io, opened.error());
  auto& store = *opened->store;
  if (auto status = require_workspace(store, *workspace_id); !status.ok()) return report(io, status.error());
  auto key_file = server::master_key_path(opened->config.data_dir);
  auto key = security::load_master_key(key_file);
  if (!key.ok()) {
    if (key.error().code == ErrorCode::not_found) {
      io.err << "error: no master key to encrypt secrets with: " << key_file.string()
             << " does not exist and HERALD_MASTER_KEY is not set; run `herald init` (it creates "
                "the key file) or set HERALD_MASTER_KEY to 64 hex characters\n";
      return kExitFailed;
    }
    return report(io, key.error());
  }
  auto value = read_secret_value(io, name);
  if (!value.ok()) return report(io, value.error());
  security::SecretBox box(std::move(key).value());
  if (auto status = server::set_secret(store, box, *workspace_id, name, *value,
                                       server::Actor::cli(*workspace_id));
      !status.ok()) {
    return report(io, status.error());
  }
  io.out << "secret " << name << " set in " << *workspace_id << "\n";
  return kExitOk;
}

int cmd_secret_list(const std::vector<std::string>& argv, Io& io) {
  auto specs = with_store_flags({kWorkspaceFlag, kJsonFlag});
  auto args = parse_args(argv, specs, "herald secret list");
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help")) {
    io.out << "Usage: herald secret list --workspace ID [--json]\n\nThe workspace's secret names, "
              "when and by whom each was last set; never the values.\n\n"
           << flags_help(specs);
    return kExitOk;
  }
  if (!args->positional.empty()) return usage_error(io, "herald secret list takes no arguments");
  auto workspace_id = workspace_of(*args);
  if (!workspace_id) return missing_workspace(io, "herald secret list");
  auto opened = open_from(*args);
  if (!opened.ok()) return report(io, opened.error());
  auto& store = *opened->store;
  if (auto status = require_workspace(store, *workspace_id); !status.ok()) return report(io, status.error());
  auto secrets = store.list_secrets(*workspace_id);
  if (!secrets.ok()) return report(io, secrets.error());
  if (args->has("json")) {
    Json list = Json::array();
    for (const auto& s : *secrets) {
      list.push_back({{"name", s.name},
                      {"created_at", format_iso8601(s.created_at)},
                      {"updated_at", format_iso8601(s.updated_at)},
                      {"updated_by", s.updated_by}});
    }
    io.out << list.dump(2) << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {{"NAME", "UPDATED", "BY"}};
  for (const auto& s : *secrets) rows.push_back({s.name, format_iso8601(s.updated_at), or_dash(s.updated_by)});
  print_table(io.out, rows);
  return kExitOk;
}

int cmd_secret_delete(const std::vector<std::string>& argv, Io& io) {
  auto specs = with_store_flags({kWorkspaceFlag});
  auto args = parse_args(argv, specs, "herald secret delete");
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help")) {
    io.out << "Usage: herald secret delete NAME --workspace ID\n\n" << flags_help(specs);
    return kExitOk;
  }
  if (args->positional.size() != 1) return usage_error(io, "herald secret delete takes one NAME");
  auto workspace_id = workspace_of(*args);
  if (!workspace_id) return missing_workspace(io, "herald secret delete");
  auto opened = open_from(*args);
  if (!opened.ok()) return report(io, opened.error());
  auto& store = *opened->store;
  if (auto status = require_workspace(store, *workspace_id); !status.ok()) return report(io, status.error());
  if (auto status = server::delete_secret(store, *workspace_id, args->positional[0],
                                          server::Actor::cli(*workspace_id));
      !status.ok()) {
    return report(io, status.error());
  }
  io.out << "secret " << args->positional[0] << " deleted from " << *workspace_id << "\n";
  return kExitOk;
}

// ---- herald audit --------------------------------------------------------------------------

Json audit_json(const store::AuditRecord& r) {
  return {{"id", r.id},
          {"at", format_iso8601(r.at)},
          {"workspace", r.workspace_id},
          {"actor", r.actor},
          {"action", r.action},
          {"object_type", r.object_type},
          {"object_id", r.object_id},
          {"address", r.address},
          {"request_id", r.request_id},
          {"details", r.details}};
}

int cmd_audit_impl(const std::vector<std::string>& argv, Io& io) {
  auto specs = with_store_flags({
      kWorkspaceFlag,
      {"action", true, false, "only this action, e.g. secret.set", "ACTION"},
      {"actor", true, false, "only this actor, e.g. cli or user:alice", "ACTOR"},
      {"limit", true, false, "at most this many (default 50)", "N"},
      {"cursor", true, false, "entries older than this id (for paging)", "ID"},
      kJsonFlag,
  });
  auto args = parse_args(argv, specs, "herald audit");
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help")) {
    io.out << "Usage: herald audit --workspace ID [--action ACTION] [--actor ACTOR] [--limit N] "
              "[--cursor ID] [--json]\n\nThe workspace's audit log, newest first.\n\n"
           << flags_help(specs);
    return kExitOk;
  }
  if (!args->positional.empty()) return usage_error(io, "herald audit takes no arguments");
  auto workspace_id = workspace_of(*args);
  if (!workspace_id) return missing_workspace(io, "herald audit");
  store::AuditFilter filter;
  filter.workspace_id = *workspace_id;
  filter.action = args->value("action");
  filter.actor = args->value("actor");
  if (auto limit = args->value("limit")) {
    char* end = nullptr;
    long n = std::strtol(limit->c_str(), &end, 10);
    if (limit->empty() || *end != '\0' || n < 1 || n > 1000) return usage_error(io, "--limit must be 1..1000");
    filter.limit = static_cast<int>(n);
  }
  if (auto cursor = args->value("cursor")) {
    char* end = nullptr;
    long long id = std::strtoll(cursor->c_str(), &end, 10);
    if (cursor->empty() || *end != '\0' || id < 1) return usage_error(io, "--cursor must be an audit entry id");
    filter.before_id = id;
  }
  auto opened = open_from(*args);
  if (!opened.ok()) return report(io, opened.error());
  auto& store = *opened->store;
  if (auto status = require_workspace(store, *workspace_id); !status.ok()) return report(io, status.error());
  auto entries = store.list_audit(filter);
  if (!entries.ok()) return report(io, entries.error());
  if (args->has("json")) {
    Json list = Json::array();
    for (const auto& entry : *entries) list.push_back(audit_json(entry));
    io.out << list.dump(2) << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {{"TIME", "ACTOR", "ACTION", "OBJECT", "ADDRESS"}};
  for (const auto& e : *entries) {
    std::string object = e.object_type.empty() ? e.object_id : e.object_type + ":" + e.object_id;
    rows.push_back({format_iso8601(e.at), e.actor, e.action, or_dash(object), or_dash(e.address)});
  }
  print_table(io.out, rows);
  if (!entries->empty() && entries->size() == static_cast<size_t>(filter.limit)) {
    io.out << "(more: --cursor " << entries->back().id << ")\n";
  }
  return kExitOk;
}

// ---- herald trigger ------------------------------------------------------------------------

// A run as the API returns it: the object itself, or wrapped as {"run": {...}}.
Json run_of(const Json& body) {
  if (body.is_object() && body.contains("run") && body["run"].is_object()) return body["run"];
  return body;
}

std::string string_field(const Json& object, const char* name) {
  if (object.is_object() && object.contains(name) && object[name].is_string()) return object[name].get<std::string>();
  return "";
}

int cmd_trigger_impl(const std::vector<std::string>& argv, Io& io) {
  std::vector<FlagSpec> specs = {
      {"input", true, true, "an input value", "NAME=VALUE"},
      {"inputs", true, false, "all inputs as one JSON object", "JSON"},
      {"url", true, false, "the server (HERALD_URL, default http://127.0.0.1:8080)", "URL"},
      {"token", true, false, "an API token with runs.start (HERALD_TOKEN)", "TOKEN"},
      {"wait", false, false, "wait until the run ends; exit 0 if it succeeded, 1 otherwise", ""},
      {"json", false, false, "print the run as JSON", ""},
      {"help", false, false, "show this help", ""},
  };
  auto args = parse_args(argv, specs, "herald trigger");
  if (!args.ok()) return usage_error(io, args.error().message);
  if (args->has("help")) {
    io.out << "Usage: herald trigger WORKFLOW [--input NAME=VALUE]... [--wait]\n\n"
              "Starts a run of a workflow deployed on a running `herald serve` (POST "
              "/api/v1/workflows/WORKFLOW/runs) and prints the run id.\n"
              "Exit code: 0 started (with --wait: succeeded), 1 failed or the server could not be "
              "reached, 2 invalid inputs.\n\n"
           << flags_help(specs);
    return kExitOk;
  }
  if (args->positional.size() != 1) return usage_error(io, "herald trigger takes one WORKFLOW id");
  const std::string& workflow = args->positional[0];
  auto inputs = parse_input_flags(*args);
  if (!inputs.ok()) return usage_error(io, inputs.error().message);
  std::string url_text = args->value("url").value_or(env_value("HERALD_URL").value_or("http://127.0.0.1:8080"));
  auto server = parse_server_url(url_text);
  if (!server.ok()) return usage_error(io, server.error().message);
  auto token = args->value("token");
  if (!token) token = env_value("HERALD_TOKEN");
  if (!token) {
    return usage_error(io, "herald trigger needs an API token: --token or HERALD_TOKEN "
                           "(`herald token create` makes one)");
  }
  Json body = {{"inputs", *inputs}};
  auto started = call_api(*server, "POST", "/api/v1/workflows/" + encode_segment(workflow) + "/runs",
                          *token, body.dump());
  if (!started.ok()) return report(io, started.error());
  if (started->status < 200 || started->status > 299) return api_error(io, *started);
  Json answer = Json::parse(started->body, nullptr, false);
  Json run = answer.is_discarded() ? Json() : run_of(answer);
  std::string run_id = string_field(run, "id");
  if (run_id.empty()) run_id = string_field(answer, "run_id");
  if (run_id.empty()) {
    io.err << "error: the server answered " << started->status << " without a run id: "
           << started->body.substr(0, 200) << "\n";
    return kExitFailed;
  }
  bool json = args->has("json");
  if (!args->has("wait")) {
    io.out << (json ? answer.dump(2) : run_id) << "\n";
    return kExitOk;
  }
  if (!json) io.out << run_id << "\n" << std::flush;
  int failures = 0;
  while (true) {
    auto polled = call_api(*server, "GET", "/api/v1/runs/" + encode_segment(run_id), *token, std::nullopt);
    if (!polled.ok()) {
      // A restarting server is not the end of the run: give it a few seconds.
      if (++failures >= 25) return report(io, polled.error());
    } else {
      failures = 0;
      if (polled->status != 200) return api_error(io, *polled);
      Json parsed = Json::parse(polled->body, nullptr, false);
      Json current = parsed.is_discarded() ? Json() : run_of(parsed);
      auto state = store::parse_run_state(string_field(current, "state"));
      if (state && store::is_final(*state)) {
        if (json) {
          io.out << current.dump(2) << "\n";
        } else {
          io.out << "run " << run_id << " " << store::to_string(*state) << "\n";
          if (current.contains("error") && current["error"].is_object()) {
            std::string message = string_field(current["error"], "message");
            if (!message.empty()) io.out << "  error: " << message << "\n";
          }
        }
        return *state == store::RunState::succeeded ? kExitOk : kExitFailed;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace

int cmd_init(const std::vector<std::string>& argv, Io& io) { return cmd_init_impl(argv, io); }

int cmd_workspace(const std::vector<std::string>& argv, Io& io) {
  return dispatch(argv, io, "workspace",
                  "Usage: herald workspace create|list ...\n\n"
                  "  create ID   create a workspace\n"
                  "  list        list the workspaces\n",
                  {{"create", cmd_workspace_create}, {"list", cmd_workspace_list}});
}

int cmd_user(const std::vector<std::string>& argv, Io& io) {
  return dispatch(argv, io, "user",
                  "Usage: herald user add|list|remove ...\n\n"
                  "  add USER      add a member with a role, or change a member's role\n"
                  "  list          the members of a workspace\n"
                  "  remove USER   remove a member (and revoke their tokens)\n",
                  {{"add", cmd_user_add}, {"list", cmd_user_list}, {"remove", cmd_user_remove}});
}

int cmd_token(const std::vector<std::string>& argv, Io& io) {
  return dispatch(argv, io, "token",
                  "Usage: herald token create|list|revoke ...\n\n"
                  "  create      create an API token (shown once)\n"
                  "  list        the workspace's tokens (ids, never the tokens)\n"
                  "  revoke ID   revoke a token\n",
                  {{"create", cmd_token_create}, {"list", cmd_token_list}, {"revoke", cmd_token_revoke}});
}

int cmd_secret(const std::vector<std::string>& argv, Io& io) {
  return dispatch(argv, io, "secret",
                  "Usage: herald secret set|list|delete ...\n\n"
                  "  set NAME      set a secret; the value is read from stdin\n"
                  "  list          secret names and when they changed (never values)\n"
                  "  delete NAME   delete a secret\n",
                  {{"set", cmd_secret_set}, {"list", cmd_secret_list}, {"delete", cmd_secret_delete}});
}

int cmd_audit(const std::vector<std::string>& argv, Io& io) { return cmd_audit_impl(argv, io); }

int cmd_trigger(const std::vector<std::string>& argv, Io& io) { return cmd_trigger_impl(argv, io); }

}  // namespace herald::cli
