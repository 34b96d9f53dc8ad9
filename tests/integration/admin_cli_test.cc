// The administration commands of the `herald` binary on a local store: init, workspace, user,
// token, secret, audit, and trigger against a server that is not there. Each test has its own
// data folder; HERALD_MASTER_KEY and the other HERALD_* defaults are cleared so the test runner's
// environment cannot leak in.
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <regex>
#include <set>

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <gtest/gtest.h>

#include "engine/security/secret_box.h"
#include "engine/security/tokens.h"
#include "engine/server/admin.h"
#include "engine/store/store.h"
#include "tests/support/herald_command.h"
#include "tests/support/local_http_server.h"
#include "tests/support/temp_dir.h"

namespace herald::testing {
namespace {

const std::regex kTokenPattern("hld_([0-9A-Za-z]{16})_[0-9A-Za-z]{43}");

// The token in `text`, and its id; empty when there is none.
std::pair<std::string, std::string> find_token(const std::string& text) {
  std::smatch match;
  if (!std::regex_search(text, match, kTokenPattern)) return {};
  return {match[0].str(), match[1].str()};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class AdminCliTest : public ::testing::Test {
 protected:
  std::filesystem::path data() const { return dir_ / "data"; }
  std::map<std::string, std::string> env() const {
    return {{"HERALD_DATA_DIR", data().string()},
            {"HERALD_MASTER_KEY", ""},
            {"HERALD_WORKSPACE", ""},
            {"HERALD_TOKEN", ""},
            {"HERALD_URL", ""}};
  }
  CommandResult herald(const std::vector<std::string>& args,
                       const std::map<std::string, std::string>& extra = {}) {
    auto variables = env();
    for (const auto& [name, value] : extra) variables[name] = value;
    return run_herald(args, variables);
  }
  CommandResult herald_stdin(const std::vector<std::string>& args, const std::string& input) {
    return run_herald_with_stdin(args, input, env());
  }
  // `herald init` that must work; returns the token.
  std::string init() {
    auto result = herald({"init", "--quiet"});
    EXPECT_EQ(result.code(), 0) << result.err;
    auto [token, id] = find_token(result.out);
    EXPECT_FALSE(token.empty()) << result.out;
    return token;
  }
  Json json_of(const std::vector<std::string>& args) {
    auto result = herald(args);
    EXPECT_EQ(result.code(), 0) << result.err;
    Json parsed = Json::parse(result.out, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << result.out;
    return parsed.is_discarded() ? Json::array() : parsed;
  }
  Json tokens(const std::string& workspace = "default") {
    return json_of({"token", "list", "--workspace", workspace, "--json"});
  }
  Json token_by_id(const std::string& id, const std::string& workspace = "default") {
    for (const auto& token : tokens(workspace)) {
      if (token.value("id", "") == id) return token;
    }
    return nullptr;
  }
  // Every byte SQLite may have written: the database and its write-ahead log.
  std::string database_bytes() const {
    return read_file(data() / "herald.db") + read_file(data() / "herald.db-wal");
  }
  TempDir dir_{"herald-admin-cli-test"};
};

TEST_F(AdminCliTest, EveryCommandHasHelp) {
  std::vector<std::vector<std::string>> commands = {
      {"init"},          {"workspace", "create"}, {"workspace", "list"}, {"user", "add"},
      {"user", "list"},  {"user", "remove"},      {"token", "create"},   {"token", "list"},
      {"token", "revoke"}, {"secret", "set"},     {"secret", "list"},    {"secret", "delete"},
      {"audit"},         {"trigger"}};
  for (auto command : commands) {
    command.push_back("--help");
    auto result = herald(command);
    EXPECT_EQ(result.code(), 0) << command[0];
    EXPECT_TRUE(contains(result.out, "Usage: herald " + command[0])) << command[0] << ": " << result.out;
  }
  for (auto group : {"workspace", "user", "token", "secret"}) {
    EXPECT_EQ(herald({group}).code(), 2) << group;
    auto unknown = herald({group, "frobnicate"});
    EXPECT_EQ(unknown.code(), 2) << group;
    EXPECT_TRUE(contains(unknown.err, "unknown command")) << unknown.err;
  }
}

TEST_F(AdminCliTest, InitPrintsATokenShownOnceWhoseHashIsStored) {
  auto result = herald({"init"});
  ASSERT_EQ(result.code(), 0) << result.err;
  EXPECT_TRUE(contains(result.out, "shown only once")) << result.out;
  EXPECT_TRUE(contains(result.out, "default")) << result.out;
  EXPECT_TRUE(contains(result.out, "admin")) << result.out;
  auto key_file = data() / "master.key";
  EXPECT_TRUE(contains(result.out, "created " + key_file.string())) << result.out;
  auto [token, id] = find_token(result.out);
  ASSERT_FALSE(token.empty()) << result.out;

  // The key file exists, for the owner only.
  struct stat info {};
  ASSERT_EQ(::stat(key_file.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);

  // The token is listed by its id, as the admin's, without any hash.
  Json listed = token_by_id(id);
  ASSERT_TRUE(listed.is_object()) << tokens().dump();
  EXPECT_EQ(listed.value("user", ""), "admin");
  EXPECT_EQ(listed.value("role", ""), "admin");
  EXPECT_EQ(listed.value("revoked", true), false);
  EXPECT_FALSE(listed.contains("hash"));
  auto text_list = herald({"token", "list", "--workspace", "default"});
  EXPECT_TRUE(contains(text_list.out, id)) << text_list.out;
  EXPECT_FALSE(contains(text_list.out, token)) << text_list.out;

  // The database holds the token's hash, never the token.
  std::string bytes = database_bytes();
  ASSERT_FALSE(bytes.empty());
  EXPECT_TRUE(contains(bytes, security::hash_token(token)));
  EXPECT_FALSE(contains(bytes, token));
  EXPECT_TRUE(security::verify_token(token, security::hash_token(token)));
}

TEST_F(AdminCliTest, InitQuietPrintsOnlyTheToken) {
  auto result = herald({"init", "--quiet", "--workspace", "acme", "--user", "ops"});
  ASSERT_EQ(result.code(), 0) << result.err;
  EXPECT_TRUE(std::regex_match(result.out, std::regex("hld_[0-9A-Za-z]{16}_[0-9A-Za-z]{43}\n")))
      << "[" << result.out << "]";
  auto id = find_token(result.out).second;
  Json listed = token_by_id(id, "acme");
  ASSERT_TRUE(listed.is_object());
  EXPECT_EQ(listed.value("user", ""), "ops");
}

TEST_F(AdminCliTest, InitTwiceFailsAndChangesNothing) {
  init();
  std::string key = read_file(data() / "master.key");
  ASSERT_FALSE(key.empty());
  Json tokens_before = tokens();
  Json audit_before = json_of({"audit", "--workspace", "default", "--json"});

  auto again = herald({"init"});
  EXPECT_EQ(again.code(), 1);
  EXPECT_TRUE(contains(again.err, "already exists")) << again.err;
  EXPECT_TRUE(find_token(again.out).first.empty()) << again.out;
  EXPECT_EQ(read_file(data() / "master.key"), key);
  EXPECT_EQ(tokens(), tokens_before);
  EXPECT_EQ(json_of({"audit", "--workspace", "default", "--json"}), audit_before);

  // A bad id is refused before anything is written: the workspace is not left without its admin.
  auto bad_user = herald({"init", "--workspace", "other", "--user", "Not A Slug"});
  EXPECT_EQ(bad_user.code(), 2) << bad_user.err;
  auto workspaces = json_of({"workspace", "list", "--json"});
  EXPECT_EQ(workspaces.size(), 1u) << workspaces.dump();
}

TEST_F(AdminCliTest, InitWithTheMasterKeyInTheEnvironmentWritesNoKeyFile) {
  std::string key(64, 'a');
  auto result = herald({"init"}, {{"HERALD_MASTER_KEY", key}});
  ASSERT_EQ(result.code(), 0) << result.err;
  EXPECT_TRUE(contains(result.out, "HERALD_MASTER_KEY")) << result.out;
  EXPECT_FALSE(std::filesystem::exists(data() / "master.key"));

  auto malformed = herald({"init", "--workspace", "other"}, {{"HERALD_MASTER_KEY", "short"}});
  EXPECT_EQ(malformed.code(), 2) << malformed.err;
  EXPECT_TRUE(contains(malformed.err, "HERALD_MASTER_KEY")) << malformed.err;
  EXPECT_FALSE(contains(malformed.err, "short")) << malformed.err;
}

TEST_F(AdminCliTest, WorkspaceCreateAndList) {
  auto created = herald({"workspace", "create", "acme", "--name", "Acme Coffee"});
  ASSERT_EQ(created.code(), 0) << created.err;
  ASSERT_EQ(herald({"workspace", "create", "blue"}).code(), 0);
  auto list = herald({"workspace", "list"});
  ASSERT_EQ(list.code(), 0) << list.err;
  EXPECT_TRUE(contains(list.out, "acme")) << list.out;
  EXPECT_TRUE(contains(list.out, "Acme Coffee")) << list.out;
  Json json = json_of({"workspace", "list", "--json"});
  ASSERT_EQ(json.size(), 2u) << json.dump();
  EXPECT_EQ(json[0].value("id", ""), "acme");
  EXPECT_EQ(json[0].value("name", ""), "Acme Coffee");
  EXPECT_EQ(json[1].value("name", ""), "blue");

  auto twice = herald({"workspace", "create", "acme"});
  EXPECT_EQ(twice.code(), 1);
  auto bad = herald({"workspace", "create", "Not A Slug"});
  EXPECT_EQ(bad.code(), 2);
  EXPECT_TRUE(contains(bad.err, "workspace id")) << bad.err;
  EXPECT_EQ(herald({"workspace", "create"}).code(), 2);
  EXPECT_EQ(json_of({"workspace", "list", "--json"}).size(), 2u);
}

TEST_F(AdminCliTest, UserAddListChangeRoleAndRemove) {
  init();
  auto added = herald({"user", "add", "bob", "--workspace", "default", "--role", "viewer", "--name",
                       "Bob B", "--email", "bob@example.com"});
  ASSERT_EQ(added.code(), 0) << added.err;
  auto list = herald({"user", "list", "--workspace", "default"});
  ASSERT_EQ(list.code(), 0) << list.err;
  EXPECT_TRUE(std::regex_search(list.out, std::regex("bob +viewer +Bob B +bob@example.com"))) << list.out;

  ASSERT_EQ(herald({"user", "add", "bob", "--workspace", "default", "--role", "Editor"}).code(), 0);
  Json members = json_of({"user", "list", "--workspace", "default", "--json"});
  ASSERT_EQ(members.size(), 2u) << members.dump();
  EXPECT_EQ(members[1].value("user", ""), "bob");
  EXPECT_EQ(members[1].value("role", ""), "editor");
  EXPECT_EQ(members[1].value("email", ""), "bob@example.com");

  auto bad_role = herald({"user", "add", "carol", "--workspace", "default", "--role", "superuser"});
  EXPECT_EQ(bad_role.code(), 2);
  EXPECT_TRUE(contains(bad_role.err, "admin, editor, approver, viewer, influencer")) << bad_role.err;
  auto no_role = herald({"user", "add", "carol", "--workspace", "default"});
  EXPECT_EQ(no_role.code(), 2);
  auto no_workspace = herald({"user", "add", "carol", "--role", "viewer"});
  EXPECT_EQ(no_workspace.code(), 2);
  EXPECT_TRUE(contains(no_workspace.err, "--workspace")) << no_workspace.err;
  auto unknown_workspace = herald({"user", "list", "--workspace", "nowhere"});
  EXPECT_EQ(unknown_workspace.code(), 1);
  EXPECT_TRUE(contains(unknown_workspace.err, "nowhere")) << unknown_workspace.err;
  EXPECT_EQ(json_of({"user", "list", "--workspace", "default", "--json"}).size(), 2u);

  auto removed = herald({"user", "remove", "bob", "--workspace", "default"});
  ASSERT_EQ(removed.code(), 0) << removed.err;
  members = json_of({"user", "list", "--workspace", "default", "--json"});
  ASSERT_EQ(members.size(), 1u) << members.dump();
  EXPECT_EQ(members[0].value("user", ""), "admin");
  EXPECT_EQ(herald({"user", "remove", "bob", "--workspace", "default"}).code(), 1);
}

TEST_F(AdminCliTest, WorkspaceComesFromHeraldWorkspace) {
  init();
  auto list = herald({"user", "list", "--json"}, {{"HERALD_WORKSPACE", "default"}});
  ASSERT_EQ(list.code(), 0) << list.err;
  EXPECT_TRUE(contains(list.out, "\"admin\"")) << list.out;
  auto flag_wins = herald({"user", "list", "--workspace", "nowhere"}, {{"HERALD_WORKSPACE", "default"}});
  EXPECT_EQ(flag_wins.code(), 1);
}

TEST_F(AdminCliTest, TokenForAViewer) {
  init();
  ASSERT_EQ(herald({"user", "add", "vic", "--workspace", "default", "--role", "viewer"}).code(), 0);
  auto created = herald({"token", "create", "--workspace", "default", "--user", "vic", "--role",
                         "viewer", "--name", "dashboards", "--expires", "30d"});
  ASSERT_EQ(created.code(), 0) << created.err;
  EXPECT_TRUE(contains(created.out, "shown only once")) << created.out;
  auto [token, id] = find_token(created.out);
  ASSERT_FALSE(token.empty()) << created.out;
  Json listed = token_by_id(id);
  ASSERT_TRUE(listed.is_object()) << tokens().dump();
  EXPECT_EQ(listed.value("user", ""), "vic");
  EXPECT_EQ(listed.value("role", ""), "viewer");
  EXPECT_EQ(listed.value("name", ""), "dashboards");
  EXPECT_TRUE(listed.contains("expires_at"));
  EXPECT_TRUE(contains(database_bytes(), security::hash_token(token)));

  // Without --role: the user's own; --quiet: the token alone.
  auto quiet = herald({"token", "create", "--workspace", "default", "--user", "vic", "--quiet"});
  ASSERT_EQ(quiet.code(), 0) << quiet.err;
  auto [quiet_token, quiet_id] = find_token(quiet.out);
  EXPECT_EQ(quiet.out, quiet_token + "\n");
  EXPECT_EQ(token_by_id(quiet_id).value("role", ""), "viewer");

  EXPECT_EQ(herald({"token", "create", "--workspace", "default", "--user", "vic", "--expires", "30"}).code(), 2);
  EXPECT_EQ(herald({"token", "create", "--workspace", "default", "--user", "nobody"}).code(), 1);
  EXPECT_EQ(tokens().size(), 3u);
}

TEST_F(AdminCliTest, TokenWithARoleAboveTheUsersIsRefused) {
  init();
  ASSERT_EQ(herald({"user", "add", "vic", "--workspace", "default", "--role", "viewer"}).code(), 0);
  auto refused = herald({"token", "create", "--workspace", "default", "--user", "vic", "--role", "admin"});
  EXPECT_EQ(refused.code(), 1);
  EXPECT_TRUE(contains(refused.err, "viewer")) << refused.err;
  EXPECT_TRUE(find_token(refused.out).first.empty()) << refused.out;
  EXPECT_EQ(tokens().size(), 1u);  // only init's
}

TEST_F(AdminCliTest, TokenUserDefaultsToTheOnlyAdmin) {
  init();
  auto created = herald({"token", "create", "--workspace", "default", "--quiet"});
  ASSERT_EQ(created.code(), 0) << created.err;
  EXPECT_EQ(token_by_id(find_token(created.out).second).value("user", ""), "admin");

  ASSERT_EQ(herald({"user", "add", "root2", "--workspace", "default", "--role", "admin"}).code(), 0);
  auto ambiguous = herald({"token", "create", "--workspace", "default"});
  EXPECT_EQ(ambiguous.code(), 2);
  EXPECT_TRUE(contains(ambiguous.err, "--user")) << ambiguous.err;
  EXPECT_TRUE(contains(ambiguous.err, "root2")) << ambiguous.err;
}

TEST_F(AdminCliTest, RevokeAToken) {
  init();
  ASSERT_EQ(herald({"user", "add", "vic", "--workspace", "default", "--role", "viewer"}).code(), 0);
  auto one = find_token(herald({"token", "create", "--workspace", "default", "--user", "vic", "--quiet"}).out).second;
  auto two = find_token(herald({"token", "create", "--workspace", "default", "--user", "vic", "--quiet"}).out).second;
  ASSERT_FALSE(one.empty());
  ASSERT_FALSE(two.empty());

  auto revoked = herald({"token", "revoke", one, "--workspace", "default"});
  ASSERT_EQ(revoked.code(), 0) << revoked.err;
  EXPECT_EQ(token_by_id(one).value("revoked", false), true);
  EXPECT_EQ(token_by_id(two).value("revoked", true), false);
  EXPECT_EQ(herald({"token", "revoke", "NoSuchTokenId000", "--workspace", "default"}).code(), 1);
  ASSERT_EQ(herald({"workspace", "create", "other"}).code(), 0);
  EXPECT_EQ(herald({"token", "revoke", two, "--workspace", "other"}).code(), 1);
  EXPECT_EQ(token_by_id(two).value("revoked", true), false);

  // Removing the member revokes the rest.
  ASSERT_EQ(herald({"user", "remove", "vic", "--workspace", "default"}).code(), 0);
  EXPECT_EQ(token_by_id(two).value("revoked", false), true);
}

TEST_F(AdminCliTest, SecretFromStdinIsEncryptedAndNeverShown) {
  init();
  const std::string value = "xoxb-2431-very-secret-value";
  auto set = herald_stdin({"secret", "set", "SLACK_TOKEN", "--workspace", "default"}, value + "\n");
  ASSERT_EQ(set.code(), 0) << set.err;
  EXPECT_FALSE(contains(set.out + set.err, value));

  auto list = herald({"secret", "list", "--workspace", "default"});
  ASSERT_EQ(list.code(), 0) << list.err;
  EXPECT_TRUE(std::regex_search(list.out, std::regex("SLACK_TOKEN +\\S+ +cli"))) << list.out;
  EXPECT_FALSE(contains(list.out, value));
  auto json = herald({"secret", "list", "--workspace", "default", "--json"});
  ASSERT_EQ(json.code(), 0);
  EXPECT_FALSE(contains(json.out, value));
  Json secrets = Json::parse(json.out);
  ASSERT_EQ(secrets.size(), 1u);
  EXPECT_EQ(secrets[0].value("name", ""), "SLACK_TOKEN");
  EXPECT_EQ(secrets[0].value("updated_by", ""), "cli");

  std::string bytes = database_bytes();
  ASSERT_FALSE(bytes.empty());
  EXPECT_FALSE(contains(bytes, value));
  EXPECT_FALSE(contains(bytes, "very-secret"));

  // It decrypts, with the master key, to the value without its trailing newline.
  auto store = store::open_store("sqlite:" + (data() / "herald.db").string());
  ASSERT_TRUE(store.ok()) << store.error().message;
  auto key = security::load_master_key_file(data() / "master.key");
  ASSERT_TRUE(key.ok()) << key.error().message;
  security::SecretBox box(*key);
  auto values = server::decrypt_secrets(**store, box, "default");
  ASSERT_TRUE(values.ok()) << values.error().message;
  EXPECT_EQ(values->value("SLACK_TOKEN", ""), value);
}

TEST_F(AdminCliTest, SecretValueAndNameAreChecked) {
  init();
  auto empty = herald_stdin({"secret", "set", "EMPTY", "--workspace", "default"}, "\n");
  EXPECT_EQ(empty.code(), 2);
  EXPECT_TRUE(contains(empty.err, "empty")) << empty.err;
  auto bad_name = herald_stdin({"secret", "set", "9lives", "--workspace", "default"}, "x");
  EXPECT_EQ(bad_name.code(), 2);
  EXPECT_TRUE(contains(bad_name.err, "not valid")) << bad_name.err;
  EXPECT_EQ(json_of({"secret", "list", "--workspace", "default", "--json"}).size(), 0u);

  ASSERT_EQ(herald_stdin({"secret", "set", "API_KEY", "--workspace", "default"}, "v1").code(), 0);
  auto deleted = herald({"secret", "delete", "API_KEY", "--workspace", "default"});
  ASSERT_EQ(deleted.code(), 0) << deleted.err;
  EXPECT_EQ(json_of({"secret", "list", "--workspace", "default", "--json"}).size(), 0u);
  EXPECT_EQ(herald({"secret", "delete", "API_KEY", "--workspace", "default"}).code(), 1);
}

TEST_F(AdminCliTest, SecretWithoutAMasterKeyIsAClearError) {
  ASSERT_EQ(herald({"workspace", "create", "acme"}).code(), 0);
  auto set = herald_stdin({"secret", "set", "API_KEY", "--workspace", "acme"}, "value-123");
  EXPECT_EQ(set.code(), 1);
  EXPECT_TRUE(contains(set.err, "herald init")) << set.err;
  EXPECT_TRUE(contains(set.err, "HERALD_MASTER_KEY")) << set.err;
  EXPECT_FALSE(contains(set.out + set.err, "value-123"));
  EXPECT_EQ(json_of({"secret", "list", "--workspace", "acme", "--json"}).size(), 0u);
}

TEST_F(AdminCliTest, AuditListsTheCliActionsNewestFirst) {
  init();
  ASSERT_EQ(herald({"user", "add", "vic", "--workspace", "default", "--role", "viewer"}).code(), 0);
  auto id = find_token(herald({"token", "create", "--workspace", "default", "--user", "vic", "--quiet"}).out).second;
  ASSERT_EQ(herald({"token", "revoke", id, "--workspace", "default"}).code(), 0);
  ASSERT_EQ(herald_stdin({"secret", "set", "API_KEY", "--workspace", "default"}, "v").code(), 0);
  ASSERT_EQ(herald({"secret", "delete", "API_KEY", "--workspace", "default"}).code(), 0);
  ASSERT_EQ(herald({"user", "remove", "vic", "--workspace", "default"}).code(), 0);

  Json entries = json_of({"audit", "--workspace", "default", "--json"});
  std::vector<std::string> actions;
  int64_t previous = INT64_MAX;
  for (const auto& entry : entries) {
    actions.push_back(entry.value("action", ""));
    EXPECT_EQ(entry.value("actor", ""), "cli") << entry.dump();
    EXPECT_LT(entry.value("id", INT64_MAX), previous) << "not newest first";
    previous = entry.value("id", INT64_MAX);
  }
  std::vector<std::string> expected = {"user.remove", "secret.delete", "secret.set", "token.revoke",
                                       "token.create", "user.put", "token.create", "user.put",
                                       "workspace.create"};
  EXPECT_EQ(actions, expected) << entries.dump(2);
  EXPECT_FALSE(contains(entries.dump(), "\"v\""));

  auto text = herald({"audit", "--workspace", "default"});
  ASSERT_EQ(text.code(), 0) << text.err;
  EXPECT_TRUE(std::regex_search(text.out, std::regex("\\S+Z +cli +secret\\.set +secret:API_KEY +-"))) << text.out;

  Json only = json_of({"audit", "--workspace", "default", "--action", "token.create", "--json"});
  EXPECT_EQ(only.size(), 2u) << only.dump();
  EXPECT_EQ(json_of({"audit", "--workspace", "default", "--actor", "user:nobody", "--json"}).size(), 0u);

  auto page = herald({"audit", "--workspace", "default", "--limit", "4"});
  ASSERT_EQ(page.code(), 0);
  std::smatch more;
  ASSERT_TRUE(std::regex_search(page.out, more, std::regex("--cursor (\\d+)"))) << page.out;
  Json rest = json_of({"audit", "--workspace", "default", "--cursor", more[1].str(), "--json"});
  EXPECT_EQ(rest.size(), entries.size() - 4);
  EXPECT_EQ(herald({"audit", "--workspace", "default", "--limit", "0"}).code(), 2);
  EXPECT_EQ(herald({"audit"}).code(), 2);
}

TEST_F(AdminCliTest, RunsListFiltersByWorkspaceAndShowsIt) {
  init();  // workspace "default"
  ASSERT_EQ(herald({"workspace", "create", "globex"}).code(), 0);
  {
    // One run in each workspace, and one of `herald run` (no workspace).
    auto opened = store::open_store("sqlite:" + (data() / "herald.db").string());
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    auto& store = **opened;
    store::Commit commit;
    for (const auto& [workspace, workflow] : std::vector<std::pair<std::string, std::string>>{
             {"default", "acme-news"}, {"globex", "globex-news"}, {"", "local-news"}}) {
      auto version = store.put_workflow_version(workspace, workflow, "id: " + workflow, workflow + ".yaml");
      ASSERT_TRUE(version.ok()) << version.error().message;
      store::RunRecord run;
      run.id = store::new_run_id();
      run.workspace_id = workspace;
      run.workflow_id = workflow;
      run.workflow_version_id = version->id;
      run.created_at = run.updated_at = std::chrono::system_clock::now();
      commit.insert_runs.push_back(run);
    }
    ASSERT_TRUE(store.commit(commit).ok());
  }
  auto workflows_of = [](const Json& runs) {
    std::set<std::string> out;
    for (const auto& run : runs) out.insert(run.value("workspace", "?") + "/" + run.value("workflow", "?"));
    return out;
  };
  EXPECT_EQ(workflows_of(json_of({"runs", "list", "--json"})),
            (std::set<std::string>{"default/acme-news", "globex/globex-news", "/local-news"}));
  EXPECT_EQ(workflows_of(json_of({"runs", "list", "--workspace", "globex", "--json"})),
            (std::set<std::string>{"globex/globex-news"}));
  auto from_env = herald({"runs", "list", "--json"}, {{"HERALD_WORKSPACE", "default"}});
  ASSERT_EQ(from_env.code(), 0) << from_env.err;
  EXPECT_EQ(workflows_of(Json::parse(from_env.out)), (std::set<std::string>{"default/acme-news"}));
  // The flag wins over the environment.
  auto both = herald({"runs", "list", "--workspace", "globex", "--json"}, {{"HERALD_WORKSPACE", "default"}});
  EXPECT_EQ(workflows_of(Json::parse(both.out)), (std::set<std::string>{"globex/globex-news"}));

  // The table shows the workspace ("-" for `herald run`'s runs).
  auto table = herald({"runs", "list"});
  ASSERT_EQ(table.code(), 0) << table.err;
  EXPECT_TRUE(contains(table.out, "WORKSPACE")) << table.out;
  std::regex globex_row("\\n\\S+\\s+globex\\s+globex-news\\s");
  std::regex local_row("\\n\\S+\\s+-\\s+local-news\\s");
  EXPECT_TRUE(std::regex_search(table.out, globex_row)) << table.out;
  EXPECT_TRUE(std::regex_search(table.out, local_row)) << table.out;

  auto missing = herald({"runs", "list", "--workspace", "initech"});
  EXPECT_NE(missing.code(), 0);
  EXPECT_TRUE(contains(missing.err, "workspace 'initech' does not exist")) << missing.err;
}

TEST_F(AdminCliTest, TriggerWithNoServerIsAClearError) {
  int port = 0;
  {
    // A port nothing listens on: bound, then closed.
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    port = socket.address().port();
  }
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  auto result = herald({"trigger", "welcome", "--url", url, "--token", "hld_x", "--input", "a=1"});
  EXPECT_EQ(result.code(), 1);
  EXPECT_TRUE(contains(result.err, "cannot reach")) << result.err;
  EXPECT_TRUE(contains(result.err, url)) << result.err;
  EXPECT_TRUE(contains(result.err, "herald serve")) << result.err;

  auto from_env = herald({"trigger", "welcome"}, {{"HERALD_URL", url}, {"HERALD_TOKEN", "hld_x"}});
  EXPECT_EQ(from_env.code(), 1);
  EXPECT_TRUE(contains(from_env.err, url)) << from_env.err;

  auto no_token = herald({"trigger", "welcome", "--url", url});
  EXPECT_EQ(no_token.code(), 2);
  EXPECT_TRUE(contains(no_token.err, "HERALD_TOKEN")) << no_token.err;
  EXPECT_EQ(herald({"trigger", "welcome", "--url", "ftp://example.com", "--token", "t"}).code(), 2);
  EXPECT_EQ(herald({"trigger", "welcome", "--url", url, "--token", "t", "--input", "novalue"}).code(), 2);
  EXPECT_EQ(herald({"trigger", "--url", url, "--token", "t"}).code(), 2);
}

TEST_F(AdminCliTest, TriggerPostsTheRunToTheServer) {
  LocalHttpServer server;
  server.route("POST", "/api/v1/workflows/welcome/runs",
               Response::json(201, {{"id", "run-42"}, {"workflow", "welcome"}, {"state", "queued"}}));
  auto result = herald({"trigger", "welcome", "--url", server.url(), "--token", "hld_x", "--input", "a=1"});
  EXPECT_EQ(result.code(), 0) << result.err;
  EXPECT_EQ(result.out, "run-42\n");
  auto requests = server.requests("POST", "/api/v1/workflows/welcome/runs");
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].header("Authorization"), "Bearer hld_x");
  EXPECT_EQ(Json::parse(requests[0].body), (Json{{"inputs", {{"a", "1"}}}})) << requests[0].body;
}

}  // namespace
}  // namespace herald::testing
