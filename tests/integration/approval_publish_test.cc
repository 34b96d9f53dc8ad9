// The example approval workflow end to end through the real binary: `herald serve` with the
// content-review policy (examples/approval-policies/) and content-approval-publish
// (examples/workflows/), a draft posted to its webhook, the editor level approved with an edit
// through the API, the legal level (the draft mentions a discount) approved with the CLI, the
// edited text published on the local Mastodon server, and the submitter told.
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "tests/support/herald_command.h"
#include "tests/support/http_client.h"
#include "tests/support/mastodon_server.h"
#include "tests/support/temp_dir.h"

namespace herald::testing {
namespace {

using namespace std::chrono_literals;

class ApprovalPublishTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = {{"HERALD_DATA_DIR", (dir_ / "data").string()}, {"HERALD_MASTER_KEY", ""}};
    auto init = run_herald({"init", "--workspace", "acme", "--user", "admin", "--quiet"}, env_);
    ASSERT_EQ(init.code(), 0) << init.err;
    admin_ = init.out.substr(0, init.out.find('\n'));
    for (const auto& [user, role] : {std::pair{"ann", "approver"}, std::pair{"ed", "editor"}}) {
      auto added = run_herald({"user", "add", user, "--workspace", "acme", "--role", role}, env_);
      ASSERT_EQ(added.code(), 0) << added.err;
    }
    auto token = run_herald({"token", "create", "--workspace", "acme", "--user", "ann", "--quiet"}, env_);
    ASSERT_EQ(token.code(), 0) << token.err;
    ann_ = token.out.substr(0, token.out.find('\n'));
    for (const auto& [name, value] : {std::pair<std::string, std::string>{"MASTODON_INSTANCE", mastodon_.url()},
                                      {"MASTODON_ACCESS_TOKEN", mastodon_.token()}}) {
      auto set = run_herald_with_stdin({"secret", "set", name, "--workspace", "acme"}, value, env_);
      ASSERT_EQ(set.code(), 0) << set.err;
    }
  }

  HttpReply api(const std::string& method, const std::string& path, const std::string& token,
                const std::string& body = "", const std::string& type = "application/json") {
    std::map<std::string, std::string> headers = {{"Authorization", "Bearer " + token}};
    if (!body.empty()) headers["Content-Type"] = type;
    return http_call(method, base_ + path, headers, body, 10s);
  }

  Json pending_for_ann() {
    for (int i = 0; i < 300; ++i) {
      auto reply = api("GET", "/api/v1/approvals?mine=true", ann_);
      Json body = Json::parse(reply.body, nullptr, false);
      if (reply.status == 200 && !body["items"].empty()) return body["items"][0];
      std::this_thread::sleep_for(30ms);
    }
    ADD_FAILURE() << "nothing became pending for ann";
    return nullptr;
  }

  TempDir dir_{"herald-approval-publish"};
  MastodonServer mastodon_;
  std::map<std::string, std::string> env_;
  std::string admin_;
  std::string ann_;
  std::string base_;
};

TEST_F(ApprovalPublishTest, ADraftIsApprovedWithAnEditAndPublished) {
  // herald.yaml's public_url is where the signed links of the messages point.
  auto config = dir_.write("herald.yaml",
                           "listen: 127.0.0.1:0\npublic_url: https://herald.example.test\n"
                           "approvals:\n  link_ttl: 48h\n");
  auto server = start_herald({"serve", "--config", config.string()}, env_);
  base_ = wait_for_listening(server);
  ASSERT_FALSE(base_.empty());

  std::string source_dir = HERALD_SOURCE_DIR;
  for (const auto& group : {"legal", "brand-team"}) {
    auto put = api("PUT", std::string("/api/v1/groups/") + group, admin_, R"({"members": ["ann"]})");
    ASSERT_EQ(put.status, 200) << put.body;
  }
  auto policy = run_herald({"approvals", "policy", "set", "content-review",
                            source_dir + "/examples/approval-policies/content-review.yaml", "--url", base_,
                            "--token", admin_},
                           env_);
  ASSERT_EQ(policy.code(), 0) << policy.out << policy.err;
  auto deployed = api("POST", "/api/v1/workflows", admin_,
                      read_file(source_dir + "/examples/workflows/content-approval-publish.yaml"),
                      "application/yaml");
  ASSERT_EQ(deployed.status, 201) << deployed.body;

  auto hook = http_call("POST", base_ + "/hooks/acme/drafts", {{"Content-Type", "application/json"}},
                        R"({"author": "ed", "title": "Spring", "text": "Spring sale: 20% off today"})", 10s);
  ASSERT_EQ(hook.status, 202) << hook.body;
  std::string run_id = Json::parse(hook.body).value("run_id", "");
  ASSERT_FALSE(run_id.empty()) << hook.body;

  // The editor level: ann approves with an edit.
  Json approval = pending_for_ann();
  ASSERT_TRUE(approval.is_object());
  std::string id = approval["id"];
  auto edited = api("POST", "/api/v1/approvals/" + id + "/decisions", ann_,
                    R"({"decision": "approve", "text": "Spring sale: 20% off, today only"})");
  ASSERT_EQ(edited.status, 201) << edited.body;

  // The legal level opens (the text mentions a discount); ann decides with the CLI.
  bool legal_open = false;
  for (int i = 0; i < 300 && !legal_open; ++i) {
    Json view = Json::parse(api("GET", "/api/v1/approvals/" + id, ann_).body, nullptr, false);
    for (const auto& level : view["levels"]) {
      legal_open = legal_open || (level["name"] == "legal" && level["status"] == "open");
    }
    if (!legal_open) std::this_thread::sleep_for(30ms);
  }
  ASSERT_TRUE(legal_open);
  auto cli = run_herald({"approvals", "decide", id, "approve", "--comment", "fine by legal", "--url", base_,
                         "--token", ann_},
                        env_);
  ASSERT_EQ(cli.code(), 0) << cli.out << cli.err;

  std::string state;
  Json run;
  for (int i = 0; i < 400 && state != "succeeded" && state != "failed"; ++i) {
    run = Json::parse(api("GET", "/api/v1/runs/" + run_id, admin_).body, nullptr, false);
    state = run.value("state", "");
    if (state != "succeeded" && state != "failed") std::this_thread::sleep_for(30ms);
  }
  ASSERT_EQ(state, "succeeded") << run.dump(2);
  ASSERT_EQ(mastodon_.status_count(), 1u);
  auto posts = mastodon_.http().requests("POST", "/api/v1/statuses");
  ASSERT_EQ(posts.size(), 1u);
  EXPECT_NE(posts[0].body.find("Spring sale: 20% off, today only"), std::string::npos) << posts[0].body;
  std::string timeline = run.dump();
  EXPECT_NE(timeline.find("Your post: approved"), std::string::npos) << timeline.substr(0, 3000);
  EXPECT_NE(timeline.find("Approval needed: Spring"), std::string::npos) << timeline.substr(0, 3000);
  EXPECT_NE(timeline.find("https://herald.example.test/approvals/link/"), std::string::npos)
      << timeline.substr(0, 3000);

  // The audit log has the request, both decisions and the policy.
  Json audit = Json::parse(api("GET", "/api/v1/audit?object=" + id, admin_).body, nullptr, false);
  int decisions = 0;
  for (const auto& entry : audit["items"]) decisions += entry["action"] == "approval.decision";
  EXPECT_EQ(decisions, 2) << audit.dump(2);
  EXPECT_EQ(server.stop(SIGTERM, 10s).code, 0);
}

}  // namespace
}  // namespace herald::testing
