// Approvals through a real `herald serve` (in process) over HTTP: policies and their versions, the
// approval step waiting for decisions, "pending for me", eligibility, idempotent and concurrent
// decisions, edits, changes, deadlines across a restart, delegation, unresolvable approvers,
// signed links, and workspace isolation.
#include <gtest/gtest.h>

#include <regex>
#include <thread>

#include "engine/approvals/links.h"
#include "engine/security/secret_box.h"
#include "tests/support/api_fixture.h"

namespace herald::testing {
namespace {

using security::Role;

const std::string kReviewPolicy = R"(name: review
description: An editor's check, then an admin's.
chain:
  - name: editor
    approvers: [role:approver]
  - name: final
    approvers: [role:admin]
)";

std::string approval_workflow(const std::string& id, const std::string& with_chain) {
  return "id: " + id + "\n"
         "inputs:\n"
         "  text: { type: string, default: \"Spring sale starts today\" }\n"
         "  author: { type: string, default: acme-editor }\n"
         "steps:\n"
         "  - id: review\n"
         "    uses: approval\n"
         "    with:\n"
         "      subject: { title: Spring post, text: \"{{ inputs.text }}\" }\n"
         "      submitter: \"{{ inputs.author }}\"\n" +
         with_chain +
         "  - id: after\n"
         "    uses: set\n"
         "    needs: [review]\n"
         "    with: { decision: \"{{ steps.review.output.decision }}\" }\n";
}

class ApiApprovalsTest : public ApiTest {
 protected:
  std::string user(Role role) { return user_of(kAcme, role); }

  void put_policy(const std::string& name, const std::string& yaml) {
    auto reply = call("PUT", "/api/v1/approval-policies/" + name, admin(), yaml, "application/yaml");
    ASSERT_TRUE(reply.status == 201 || reply.status == 200) << reply;
  }

  // The run's approval once its step has opened it.
  Json wait_approval(const std::string& run_id, std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      auto reply = get("/api/v1/approvals?run=" + run_id, admin());
      if (reply.status == 200 && !reply.json["items"].empty()) return reply.json["items"][0];
      if (std::chrono::steady_clock::now() >= deadline) {
        ADD_FAILURE() << "no approval for run " << run_id << ": " << reply;
        return nullptr;
      }
      std::this_thread::sleep_for(20ms);
    }
  }

  ApiReply decide(const std::string& id, Role role, const Json& body) {
    return post_json("/api/v1/approvals/" + id + "/decisions", token(role), body);
  }

  Json output_of(const Json& run, const std::string& step) { return step_of(run, step)["output"]; }
};

TEST_F(ApiApprovalsTest, PoliciesAreValidatedAndVersioned) {
  auto first = call("PUT", "/api/v1/approval-policies/review", admin(), kReviewPolicy, "application/yaml");
  ASSERT_EQ(first.status, 201) << first;
  EXPECT_EQ(first.json["version"], 1);
  auto same = call("PUT", "/api/v1/approval-policies/review", admin(), kReviewPolicy, "application/yaml");
  EXPECT_EQ(same.status, 200) << same;
  EXPECT_EQ(same.json["version"], 1);
  std::string changed = kReviewPolicy + "on_changes: return\n";
  auto second = call("PUT", "/api/v1/approval-policies/review", admin(), changed, "application/yaml");
  ASSERT_EQ(second.status, 201) << second;
  EXPECT_EQ(second.json["version"], 2);

  auto broken = call("PUT", "/api/v1/approval-policies/review", admin(),
                     "name: review\nchain:\n  - name: x\n    approvers: [user:a]\n    mode: { quorum: 0 }\n",
                     "application/yaml");
  ASSERT_TRUE(is_error(broken, 422, "invalid_argument")) << broken;
  ASSERT_FALSE(broken.json["error"]["details"]["errors"].empty()) << broken;
  EXPECT_EQ(broken.json["error"]["details"]["errors"][0]["line"], 5) << broken;
  auto wrong_name = call("PUT", "/api/v1/approval-policies/other", admin(), kReviewPolicy, "application/yaml");
  EXPECT_TRUE(is_error(wrong_name, 400)) << wrong_name;

  auto v1 = get("/api/v1/approval-policies/review?version=1", token(Role::viewer));
  ASSERT_EQ(v1.status, 200) << v1;
  EXPECT_EQ(v1.json["source"], kReviewPolicy);
  auto versions = get("/api/v1/approval-policies/review/versions", admin());
  ASSERT_EQ(versions.status, 200) << versions;
  ASSERT_EQ(versions.json["items"].size(), 2u);
  EXPECT_EQ(versions.json["items"][0]["version"], 2);
  EXPECT_TRUE(is_error(call("PUT", "/api/v1/approval-policies/review", token(Role::editor), kReviewPolicy,
                            "application/yaml"),
                       403, "permission_denied"));
  EXPECT_TRUE(is_error(get("/api/v1/approval-policies/review", token(Role::admin, kGlobex)), 404));
}

TEST_F(ApiApprovalsTest, TwoLevelsDecidedThroughTheApiFinishTheRun) {
  put_policy("review", kReviewPolicy);
  must_deploy(approval_workflow("post", "      policy: review\n"));
  std::string run = start_run("post");
  Json approval = wait_approval(run);
  ASSERT_TRUE(approval.is_object());
  std::string id = approval["id"];
  EXPECT_EQ(approval["status"], "pending");
  EXPECT_EQ(approval["policy_version"], 1);
  EXPECT_EQ(approval["submitter"], "user:acme-editor");

  // Pending for the approver, not yet for the admin (the final level has not opened).
  auto mine = get("/api/v1/approvals?mine=true", token(Role::approver));
  ASSERT_EQ(mine.status, 200) << mine;
  ASSERT_EQ(mine.json["items"].size(), 1u) << mine;
  EXPECT_EQ(mine.json["items"][0]["id"], id);
  EXPECT_EQ(get("/api/v1/approvals?mine=true", admin()).json["items"].size(), 0u);

  // A viewer may not decide at all; the admin is not an approver of the open level.
  EXPECT_TRUE(is_error(decide(id, Role::viewer, {{"decision", "approve"}}), 403, "permission_denied"));
  EXPECT_TRUE(is_error(decide(id, Role::admin, {{"decision", "approve"}}), 403));
  // A reject needs a reason.
  EXPECT_TRUE(is_error(decide(id, Role::approver, {{"decision", "reject"}}), 400));

  auto approved = decide(id, Role::approver, {{"decision", "approve"}, {"comment", "fine"}});
  ASSERT_EQ(approved.status, 201) << approved;
  auto again = decide(id, Role::approver, {{"decision", "approve"}, {"comment", "fine"}});
  EXPECT_EQ(again.status, 200) << again;
  EXPECT_EQ(again.json["status"], "duplicate");

  auto for_admin = get("/api/v1/approvals?mine=true", admin());
  ASSERT_EQ(for_admin.json["items"].size(), 1u) << for_admin;
  ASSERT_EQ(decide(id, Role::admin, {{"decision", "approve"}}).status, 201);
  // The level is closed now: deciding again otherwise is a conflict.
  EXPECT_TRUE(is_error(decide(id, Role::approver, {{"decision", "reject"}, {"comment", "late"}}), 409));

  Json done = wait_final(run);
  ASSERT_EQ(done["state"], "succeeded") << done;
  Json output = output_of(done, "review");
  EXPECT_EQ(output["decision"], "approved");
  EXPECT_EQ(output["approval_id"], id);
  ASSERT_EQ(output["decided_by"].size(), 2u) << output;
  EXPECT_EQ(output_of(done, "after")["decision"], "approved");

  auto detail = get("/api/v1/approvals/" + id, token(Role::viewer));
  ASSERT_EQ(detail.status, 200) << detail;
  EXPECT_EQ(detail.json["status"], "approved");
  EXPECT_FALSE(detail.json["history"].empty());
  // Another workspace does not see it.
  EXPECT_TRUE(is_error(get("/api/v1/approvals/" + id, token(Role::admin, kGlobex)), 404));
  EXPECT_TRUE(is_error(post_json("/api/v1/approvals/" + id + "/decisions", token(Role::admin, kGlobex),
                                 {{"decision", "approve"}}),
                       404));

  // The audit log has the request and both decisions.
  auto audit = get("/api/v1/audit?object=" + id, admin());
  ASSERT_EQ(audit.status, 200) << audit;
  int decisions = 0;
  for (const auto& entry : audit.json["items"]) decisions += entry["action"] == "approval.decision";
  EXPECT_EQ(decisions, 2) << audit;
}

TEST_F(ApiApprovalsTest, RejectionAndEditsAreTheStepsOutput) {
  must_deploy(approval_workflow("edit", "      chain:\n        - { name: check, approvers: [role:approver] }\n"));
  std::string run = start_run("edit");
  Json approval = wait_approval(run);
  ASSERT_TRUE(approval.is_object());
  auto edited = decide(approval["id"], Role::approver,
                       {{"decision", "approve"}, {"text", "Spring sale starts tomorrow"}});
  ASSERT_EQ(edited.status, 201) << edited;
  Json done = wait_final(run);
  Json output = output_of(done, "review");
  EXPECT_EQ(output["decision"], "approved");
  EXPECT_EQ(output["text"], "Spring sale starts tomorrow");
  EXPECT_EQ(output["original_text"], "Spring sale starts today");
  EXPECT_TRUE(output["diff"]["changed"].get<bool>()) << output;

  std::string second = start_run("edit");
  Json other = wait_approval(second);
  ASSERT_EQ(decide(other["id"], Role::approver, {{"decision", "reject"}, {"comment", "off-brand"}}).status, 201);
  Json rejected = wait_final(second);
  EXPECT_EQ(rejected["state"], "succeeded");
  EXPECT_EQ(output_of(rejected, "review")["decision"], "rejected");
  EXPECT_EQ(output_of(rejected, "review")["comments"][0]["text"], "off-brand");
}

TEST_F(ApiApprovalsTest, ChangesRequestedReturnToTheWorkflow) {
  must_deploy(approval_workflow("changes", "      on_changes: return\n"
                                           "      chain:\n        - { name: check, approvers: [role:approver] }\n"));
  std::string run = start_run("changes");
  Json approval = wait_approval(run);
  ASSERT_EQ(decide(approval["id"], Role::approver, {{"decision", "changes"}, {"comment", "add a link"}}).status, 201);
  Json done = wait_final(run);
  EXPECT_EQ(output_of(done, "review")["decision"], "changes_requested") << done;
}

TEST_F(ApiApprovalsTest, SimultaneousDecisionsAreBothRecordedCorrectly) {
  // Mode all: the admin and the approver decide at the same instant; both count.
  must_deploy(approval_workflow("both", "      chain:\n        - name: pair\n"
                                        "          approvers: [role:approver, role:admin]\n"
                                        "          mode: all\n"));
  // Mode any: the same race closes the level once.
  must_deploy(approval_workflow("first", "      chain:\n        - name: one\n"
                                         "          approvers: [role:approver, role:admin]\n"));
  for (const std::string workflow : {"both", "first"}) {
    SCOPED_TRACE(workflow);
    std::string run = start_run(workflow);
    Json approval = wait_approval(run);
    ASSERT_TRUE(approval.is_object());
    std::string id = approval["id"];
    ApiReply a, b;
    std::thread one([&] { a = decide(id, Role::approver, {{"decision", "approve"}}); });
    std::thread two([&] { b = decide(id, Role::admin, {{"decision", "approve"}}); });
    one.join();
    two.join();
    Json done = wait_final(run);
    ASSERT_EQ(done["state"], "succeeded") << done;
    auto detail = get("/api/v1/approvals/" + id, admin());
    if (workflow == "both") {
      EXPECT_EQ(a.status, 201) << a;
      EXPECT_EQ(b.status, 201) << b;
      EXPECT_EQ(detail.json["decisions"].size(), 2u) << detail;
    } else {
      EXPECT_EQ((a.status == 201) + (b.status == 201), 1) << a << "\n" << b;
      EXPECT_EQ((a.status == 409) + (b.status == 409), 1) << a << "\n" << b;
      EXPECT_EQ(detail.json["decisions"].size(), 1u) << detail;
    }
    EXPECT_EQ(detail.json["status"], "approved");
  }
}

TEST_F(ApiApprovalsTest, ALevelWithNobodyToAskFailsTheStepClearly) {
  must_deploy(approval_workflow("nobody", "      chain:\n        - { name: legal, approvers: [group:compliance] }\n"));
  std::string run = start_run("nobody");
  Json done = wait_final(run);
  ASSERT_EQ(done["state"], "failed") << done;
  std::string message = step_of(done, "review")["error"]["message"];
  EXPECT_NE(message.find("level 'legal' cannot be decided"), std::string::npos) << message;
  EXPECT_NE(message.find("group:compliance"), std::string::npos) << message;
}

TEST_F(ApiApprovalsTest, GroupsAndFunctionalRolesResolveWhenTheLevelOpens) {
  auto group = put_json("/api/v1/groups/legal", admin(), {{"members", {user(Role::viewer), user(Role::approver)}}});
  ASSERT_EQ(group.status, 200) << group;
  EXPECT_TRUE(is_error(put_json("/api/v1/groups/legal", admin(), {{"members", {"nobody-here"}}}), 400));
  // role:legal is the group "legal": only members with approvals.decide can act on it.
  must_deploy(approval_workflow("legal", "      chain:\n        - { name: legal, approvers: [role:legal] }\n"));
  std::string run = start_run("legal");
  Json approval = wait_approval(run);
  ASSERT_TRUE(approval.is_object());
  EXPECT_EQ(approval["levels"][0]["eligible"], (Json{"user:acme-approver", "user:acme-viewer"})) << approval;
  ASSERT_EQ(decide(approval["id"], Role::approver, {{"decision", "approve"}}).status, 201);
  EXPECT_EQ(wait_final(run)["state"], "succeeded");
}

TEST_F(ApiApprovalsTest, ADelegateDecidesForTheAbsentApprover) {
  // The approver is away; the editor stands in.
  auto set = put_json("/api/v1/delegations/" + user(Role::approver), token(Role::approver),
                      {{"delegate", user(Role::editor)}});
  ASSERT_EQ(set.status, 200) << set;
  // Someone else's delegation is an admin's business.
  EXPECT_TRUE(is_error(put_json("/api/v1/delegations/" + user(Role::admin), token(Role::approver),
                                {{"delegate", user(Role::editor)}}),
                       403));
  must_deploy(approval_workflow("away", "      chain:\n        - { name: check, approvers: [user:acme-approver] }\n"));
  std::string run = start_run("away", {{"author", "acme-viewer"}});
  Json approval = wait_approval(run);
  ASSERT_TRUE(approval.is_object());
  auto mine = get("/api/v1/approvals?mine=true", token(Role::editor));
  ASSERT_EQ(mine.json["items"].size(), 1u) << mine;
  auto decided = decide(approval["id"], Role::editor, {{"decision", "approve"}});
  ASSERT_EQ(decided.status, 201) << decided;
  EXPECT_EQ(decided.json["decision"]["actor"], "user:acme-editor");
  EXPECT_EQ(decided.json["decision"]["on_behalf_of"], "user:acme-approver");
  EXPECT_EQ(wait_final(run)["state"], "succeeded");
}

TEST_F(ApiApprovalsTest, ADeadlineFiresOnceEvenAcrossARestart) {
  must_deploy(approval_workflow("timed", "      chain:\n        - name: check\n"
                                         "          approvers: [role:approver]\n"
                                         "          deadline: 2s\n"
                                         "          on_deadline: approve\n"));
  std::string run = start_run("timed");
  Json approval = wait_approval(run);
  ASSERT_TRUE(approval.is_object());
  EXPECT_FALSE(approval["due_at"].is_null()) << approval;
  // Herald stops while the approval waits and comes back after its deadline.
  stop_service();
  std::this_thread::sleep_for(2500ms);
  start_service(options());
  Json done = wait_final(run, 15s);
  ASSERT_EQ(done["state"], "succeeded") << done;
  EXPECT_EQ(output_of(done, "review")["decision"], "approved");
  auto detail = get("/api/v1/approvals/" + approval["id"].get<std::string>(), admin());
  int closings = 0;
  for (const auto& entry : detail.json["history"]) {
    closings += entry["kind"] == "level_closed" && entry["actor"] == "system:deadline";
  }
  EXPECT_EQ(closings, 1) << detail;
}

TEST_F(ApiApprovalsTest, SignedLinksDecideOnceAndRefuseTampering) {
  must_deploy(approval_workflow("linked", "      chain:\n        - { name: check, approvers: [role:approver] }\n"));
  std::string run = start_run("linked");
  Json approval = wait_approval(run);
  ASSERT_TRUE(approval.is_object());
  // The request notification went to the run's log, with the approver's links.
  Json view = wait_run(run, [](const Json& r) { return r.dump().find("/approvals/link/") != std::string::npos; });
  std::smatch match;
  std::string text = view.dump();
  static const std::regex kApprove(R"(approve (http://[^ ]+/approvals/link/([A-Za-z0-9._-]+)))");
  ASSERT_TRUE(std::regex_search(text, match, kApprove)) << text.substr(0, 2000);
  std::string token_text = match[2].str();
  std::string path = "/approvals/link/" + token_text;

  // GET shows the page and decides nothing.
  auto page = call("GET", path);
  ASSERT_EQ(page.status, 200) << page;
  EXPECT_NE(page.body.find("<form method=\"post\">"), std::string::npos);
  EXPECT_EQ(get("/api/v1/approvals/" + approval["id"].get<std::string>(), admin()).json["status"], "pending");

  // A tampered token is refused.
  std::string tampered = token_text;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  auto refused = call("POST", "/approvals/link/" + tampered, "", "", "", {{"Accept", "application/json"}});
  EXPECT_TRUE(is_error(refused, 401, "unauthenticated")) << refused;

  // A link signed for someone who is not an approver of the level is refused (403).
  auto key = security::MasterKey::parse(std::getenv(std::string(security::kMasterKeyEnv).c_str()));
  ASSERT_TRUE(key.ok());
  approvals::LinkClaims claims;
  claims.approval_id = approval["id"];
  claims.level = "check";
  claims.round = 0;
  claims.approver = "user:acme-viewer";
  claims.action = approvals::LinkAction::approve;
  claims.expires_at = std::chrono::system_clock::now() + 1h;
  claims.nonce = approvals::new_link_nonce();
  auto forged = approvals::make_link_token(key->derive("herald approval links v1"), claims);
  ASSERT_TRUE(forged.ok());
  auto wrong = call("POST", "/approvals/link/" + *forged, "", "", "", {{"Accept", "application/json"}});
  EXPECT_TRUE(is_error(wrong, 403)) << wrong;

  // The approver's link decides, once.
  auto used = call("POST", path, "", "comment=ok", "application/x-www-form-urlencoded");
  EXPECT_EQ(used.status, 201) << used;
  auto reused = call("POST", path, "", "comment=ok", "application/x-www-form-urlencoded");
  EXPECT_EQ(reused.status, 200) << reused;
  EXPECT_NE(reused.body.find("already used"), std::string::npos) << reused.body;
  EXPECT_EQ(wait_final(run)["state"], "succeeded");
  // The level is closed now: the page says so.
  auto closed = call("GET", path);
  EXPECT_EQ(closed.status, 409) << closed;
}

TEST_F(ApiApprovalsTest, AnExpiredLinkIsRefused) {
  stop_service();
  auto o = options();
  o.approval_link_ttl = std::chrono::seconds(1);
  start_service(o);
  must_deploy(approval_workflow("short", "      chain:\n        - { name: check, approvers: [role:approver] }\n"));
  std::string run = start_run("short");
  Json view = wait_run(run, [](const Json& r) { return r.dump().find("/approvals/link/") != std::string::npos; });
  std::smatch match;
  std::string text = view.dump();
  static const std::regex kApprove(R"(approve http://[^ ]+(/approvals/link/[A-Za-z0-9._-]+))");
  ASSERT_TRUE(std::regex_search(text, match, kApprove));
  std::this_thread::sleep_for(2100ms);
  auto expired = call("POST", match[1].str(), "", "{}", "application/json", {{"Accept", "application/json"}});
  EXPECT_TRUE(is_error(expired, 401, "unauthenticated")) << expired;
  EXPECT_EQ(expired.json["error"]["details"]["check"], "expired") << expired;
}

}  // namespace
}  // namespace herald::testing
