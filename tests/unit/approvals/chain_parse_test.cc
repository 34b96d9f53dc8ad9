// Policy files and inline chains: the typed model, and every problem reported at once with
// file:line:column and field path.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "engine/approvals/chain.h"
#include "tests/unit/approvals/approvals_test_util.h"

namespace herald::approvals {
namespace {

using namespace std::chrono_literals;
using testing::all_diagnostics;

constexpr std::string_view kRegulatedPosts = R"(name: regulated-posts
description: Posts to regulated accounts or with prices go through legal.
on_changes: return
allow_self_approval: false
chain:
  - name: editor
    approvers: [role:editor, user:alice]
    mode: any
    deadline: 4h
    on_deadline:
      - remind: { every: 1h, times: 2 }
      - escalate: [role:manager]
        replace: true
        mode: all
        deadline: 2h
      - reject
  - name: reviews
    parallel:
      - name: legal
        approvers: [role:legal, Counsel@Example.COM]
        mode: { quorum: 2 }
        when: 'string.find(subject.text, "EUR") ~= nil'
        deadline: { at: "subject.extra.publish_at - 2 * 3600" }
        on_deadline: approve
      - name: brand
        approvers: group:brand-team
        mode: all
  - approvers: [user:gina]
)";

TEST(ChainParseTest, ReadsEveryFieldOfAPolicy) {
  PolicyOutcome outcome = parse_policy(kRegulatedPosts, "regulated.yaml");
  ASSERT_TRUE(outcome.ok()) << all_diagnostics(outcome.diagnostics);
  const Policy& policy = *outcome.policy;
  EXPECT_EQ(policy.name, "regulated-posts");
  EXPECT_EQ(policy.description, "Posts to regulated accounts or with prices go through legal.");
  const Chain& chain = policy.chain;
  EXPECT_EQ(chain.file, "regulated.yaml");
  EXPECT_EQ(chain.on_changes, OnChanges::return_to_caller);
  EXPECT_FALSE(chain.allow_self_approval);
  ASSERT_EQ(chain.stages.size(), 3u);
  EXPECT_EQ(chain.level_count(), 4u);

  const Level& editor = chain.stages[0].levels.at(0);
  EXPECT_FALSE(chain.stages[0].parallel);
  EXPECT_EQ(editor.name, "editor");
  ASSERT_EQ(editor.approvers.size(), 2u);
  EXPECT_EQ(editor.approvers[0].to_string(), "role:editor");
  EXPECT_EQ(editor.approvers[1].to_string(), "user:alice");
  EXPECT_EQ(editor.mode.kind, Mode::Kind::any);
  EXPECT_EQ(editor.deadline.kind, Deadline::Kind::after);
  EXPECT_EQ(editor.deadline.after, 4h);
  ASSERT_EQ(editor.on_deadline.size(), 3u);
  EXPECT_EQ(editor.on_deadline[0].kind, DeadlineStep::Kind::remind);
  EXPECT_EQ(editor.on_deadline[0].every, 1h);
  EXPECT_EQ(editor.on_deadline[0].times, 2);
  EXPECT_EQ(editor.on_deadline[1].kind, DeadlineStep::Kind::escalate);
  EXPECT_EQ(editor.on_deadline[1].approvers.at(0).to_string(), "role:manager");
  EXPECT_TRUE(editor.on_deadline[1].replace);
  EXPECT_EQ(editor.on_deadline[1].mode, (Mode{Mode::Kind::all, 0}));
  EXPECT_EQ(editor.on_deadline[1].deadline, std::optional<std::chrono::milliseconds>(2h));
  EXPECT_EQ(editor.on_deadline[2].kind, DeadlineStep::Kind::reject);

  const Stage& reviews = chain.stages[1];
  EXPECT_TRUE(reviews.parallel);
  EXPECT_EQ(reviews.name, "reviews");
  ASSERT_EQ(reviews.levels.size(), 2u);
  const Level& legal = reviews.levels[0];
  EXPECT_EQ(legal.path, "chain[1].parallel[0]");
  EXPECT_EQ(legal.approvers[1].kind, ApproverRef::Kind::email);
  EXPECT_EQ(legal.approvers[1].name, "counsel@example.com");  // addresses are lower-cased
  EXPECT_EQ(legal.mode, (Mode{Mode::Kind::quorum, 2}));
  EXPECT_EQ(legal.when.source, R"(string.find(subject.text, "EUR") ~= nil)");
  EXPECT_EQ(legal.when.path, "chain[1].parallel[0].when");
  EXPECT_EQ(legal.when.location.line, 22);
  EXPECT_EQ(legal.when.location.column, 15);
  EXPECT_EQ(legal.deadline.kind, Deadline::Kind::at);
  EXPECT_EQ(legal.deadline.at.source, "subject.extra.publish_at - 2 * 3600");
  EXPECT_EQ(legal.deadline.at.location.line, 23);
  ASSERT_EQ(legal.on_deadline.size(), 1u);
  EXPECT_EQ(legal.on_deadline[0].kind, DeadlineStep::Kind::approve);
  const Level& brand = reviews.levels[1];
  ASSERT_EQ(brand.approvers.size(), 1u);  // a single approver may be written without a list
  EXPECT_EQ(brand.approvers[0].to_string(), "group:brand-team");
  EXPECT_EQ(brand.mode.kind, Mode::Kind::all);

  // A level without a name is named by its position.
  EXPECT_EQ(chain.stages[2].levels[0].name, "level-3");
  EXPECT_NE(chain.find_level("brand"), nullptr);
  EXPECT_EQ(chain.find_level("nobody"), nullptr);
}

TEST(ChainParseTest, DefaultsAreAnyRestartAndNoSelfApproval) {
  PolicyOutcome outcome = parse_policy("name: simple\nchain:\n  - approvers: [user:alice]\n", "p");
  ASSERT_TRUE(outcome.ok()) << all_diagnostics(outcome.diagnostics);
  const Chain& chain = outcome.policy->chain;
  EXPECT_EQ(chain.on_changes, OnChanges::restart);
  EXPECT_FALSE(chain.allow_self_approval);
  EXPECT_EQ(chain.stages[0].levels[0].mode.kind, Mode::Kind::any);
  EXPECT_EQ(chain.stages[0].levels[0].deadline.kind, Deadline::Kind::none);
}

TEST(ChainParseTest, JsonPolicyFilesAreRead) {
  PolicyOutcome outcome = parse_policy(
      R"({"name": "json-policy", "chain": [{"name": "one", "approvers": ["user:alice"],
          "mode": {"quorum": 1}, "deadline": "1d"}]})",
      "p.json");
  ASSERT_TRUE(outcome.ok()) << all_diagnostics(outcome.diagnostics);
  EXPECT_EQ(outcome.policy->chain.stages[0].levels[0].deadline.after, 24h);
}

TEST(ChainParseTest, ToJsonReadsBackToTheSameChain) {
  PolicyOutcome outcome = parse_policy(kRegulatedPosts, "regulated.yaml");
  ASSERT_TRUE(outcome.ok()) << all_diagnostics(outcome.diagnostics);
  Json written = outcome.policy->chain.to_json();
  ChainOutcome again = parse_chain_json(written);
  ASSERT_TRUE(again.ok()) << all_diagnostics(again.diagnostics);
  EXPECT_EQ(again.chain->to_json(), written);
  EXPECT_EQ(written["on_changes"], "return");
  EXPECT_EQ(written["chain"][0]["on_deadline"][1],
            (Json{{"escalate", {"role:manager"}}, {"replace", true}, {"mode", "all"},
                  {"deadline", "2h"}}));
  Json policy = outcome.policy->to_json();
  EXPECT_EQ(policy["name"], "regulated-posts");
  EXPECT_EQ(policy["chain"], written["chain"]);
}

// Every problem of the file at once, in file order, each at its line and column.
TEST(ChainParseTest, ReportsEveryProblemWithLineAndColumn) {
  constexpr std::string_view kBroken = R"(name: Bad Name
chain:
  - name: editor
    approvers: [usr:alice, role:, "not an address", bob@example]
    mode: { quorum: 0 }
    deadline: 4x
    on_deadline: [reject, approve]
    whn: "x"
  - name: editor
    approvers: [user:bob]
    when: "subject.text =="
    on_deadline: expire
  - parallel:
      - approvers: [user:carol]
        mode: most
  - name: small
    approvers: [user:a, user:b]
    mode: { quorum: 3 }
    deadline: { at: "x" }
    on_deadline:
      - escalate: [user:c]
      - reject
      - remind: { every: 0s }
)";
  PolicyOutcome outcome = parse_policy(kBroken, "bad.yaml");
  EXPECT_FALSE(outcome.ok());
  std::string all = all_diagnostics(outcome.diagnostics);
  auto expect_line = [&](const std::string& line) {
    EXPECT_NE(all.find(line), std::string::npos) << "missing: " << line << "\nin:\n" << all;
  };
  expect_line("bad.yaml:1:7: name: 'Bad Name' is not a valid policy name");
  expect_line("bad.yaml:4:17: chain[0].approvers[0]: unknown approver kind 'usr'; did you mean "
              "'user:alice'?");
  // In a [flow list], YAML reads `role:` as a mapping; the message still talks about the text.
  expect_line("bad.yaml:4:28: chain[0].approvers[1]: approver 'role:' names nobody");
  expect_line("bad.yaml:4:35: chain[0].approvers[2]: approver 'not an address' has no kind");
  expect_line("bad.yaml:4:53: chain[0].approvers[3]: 'bob@example' is not a valid e-mail address");
  expect_line("bad.yaml:5:21: chain[0].mode.quorum: expected a whole number of approvals from 1 "
              "to 1000, got an integer (0)");
  expect_line("bad.yaml:6:15: chain[0].deadline: bad duration '4x': unit 'x' unknown");
  expect_line("bad.yaml:7:27: chain[0].on_deadline[1]: this never runs: 'reject' before it ends "
              "the level; put it last");
  expect_line("bad.yaml:8:5: chain[0].whn: unknown field 'whn' in level; did you mean 'when'? "
              "allowed fields: approvers, deadline, description, mode, name, on_deadline, when");
  expect_line("bad.yaml:9:11: chain[1].name: the name 'editor' is already used by chain[0]");
  expect_line("bad.yaml:11:11: chain[1].when: invalid Lua expression:");
  expect_line("bad.yaml:12:5: chain[1].on_deadline: on_deadline needs a deadline");
  expect_line("bad.yaml:15:15: chain[2].parallel[0].mode: expected any, all or { quorum: N }, got "
              "a string ('most')");
  expect_line("bad.yaml:18:11: chain[3].mode: quorum 3 can never be reached: only 2 distinct "
              "approvers are listed");
  expect_line("bad.yaml:21:9: chain[3].on_deadline[0]: the entries after this escalation never "
              "run");
  expect_line("bad.yaml:23:26: chain[3].on_deadline[2].remind.every: expected a duration of more "
              "than zero");
  // In file order.
  for (size_t i = 1; i < outcome.diagnostics.size(); ++i) {
    EXPECT_LE(outcome.diagnostics[i - 1].location.line, outcome.diagnostics[i].location.line);
  }
}

TEST(ChainParseTest, DocumentLevelProblemsSpeakOfAPolicy) {
  PolicyOutcome empty = parse_policy("# nothing yet\n", "empty.yaml");
  ASSERT_EQ(empty.diagnostics.size(), 1u);
  EXPECT_EQ(empty.diagnostics[0].to_string(),
            "empty.yaml:1:1: the file is empty; expected an approval policy: a mapping with name "
            "and chain");

  PolicyOutcome list = parse_policy("- a\n- b\n", "list.yaml");
  ASSERT_EQ(list.diagnostics.size(), 1u);
  EXPECT_NE(list.diagnostics[0].message.find("expected a policy: a mapping with name and chain"),
            std::string::npos);

  PolicyOutcome two = parse_policy("name: a\nchain: [{approvers: [user:x]}]\n---\nname: b\n", "t");
  ASSERT_FALSE(two.diagnostics.empty());
  EXPECT_EQ(two.diagnostics.back().to_string(),
            "t:3:1: a second YAML document starts here; expected one policy per file");

  PolicyOutcome syntax = parse_policy("name: a\nchain: [\n", "s.yaml");
  ASSERT_FALSE(syntax.diagnostics.empty());
  EXPECT_NE(syntax.diagnostics[0].message.find("invalid YAML"), std::string::npos);
  EXPECT_GT(syntax.diagnostics[0].location.line, 0);

  PolicyOutcome binary = parse_policy(std::string("name: a\x01\n", 9), "b.yaml");
  ASSERT_EQ(binary.diagnostics.size(), 1u);
  EXPECT_NE(binary.diagnostics[0].message.find("a policy file is UTF-8 text"), std::string::npos);
}

TEST(ChainParseTest, MissingAndMistypedTopLevelFields) {
  PolicyOutcome outcome = parse_policy("description: 3\nchains: []\non_changes: redo\n", "m.yaml");
  std::string all = all_diagnostics(outcome.diagnostics);
  EXPECT_NE(all.find("m.yaml:1:1: missing field 'name'"), std::string::npos) << all;
  EXPECT_NE(all.find("m.yaml:1:1: missing field 'chain'"), std::string::npos) << all;
  EXPECT_NE(all.find("m.yaml:1:14: description: expected a string"), std::string::npos) << all;
  EXPECT_NE(all.find("m.yaml:2:1: chains: unknown field 'chains' in policy; did you mean 'chain'?"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("m.yaml:3:13: on_changes: expected restart or return, got a string ('redo')"),
            std::string::npos)
      << all;
}

TEST(ChainParseTest, OnDeadlineEntriesAreChecked) {
  PolicyOutcome outcome = parse_policy(R"(name: d
chain:
  - approvers: [user:a]
    deadline: 1h
    on_deadline:
      - remind
      - rejct
      - { escalte: [user:b] }
      - { remind: { every: 1h, times: 101 } }
      - { escalate: [], replace: maybe }
)", "d.yaml");
  std::string all = all_diagnostics(outcome.diagnostics);
  EXPECT_NE(all.find("d.yaml:6:9: chain[0].on_deadline[0]: 'remind' needs settings: remind: "
                     "{ every: 4h, times: 2 }"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("d.yaml:7:9: chain[0].on_deadline[1]: unknown action 'rejct'; did you mean "
                     "'reject'?"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("chain[0].on_deadline[2].escalte: unknown action 'escalte'; did you mean "
                     "'escalate'?"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("chain[0].on_deadline[3].remind.times: expected a whole number of reminders "
                     "from 1 to 100"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("chain[0].on_deadline[4].escalate: the list of approvers is empty"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("chain[0].on_deadline[4].replace: expected true or false"), std::string::npos)
      << all;
}

TEST(ChainParseTest, ParallelGroupsHoldLevelsOnly) {
  PolicyOutcome outcome = parse_policy(R"(name: p
chain:
  - parallel: []
  - parallel:
      - parallel: [{approvers: [user:a]}]
      - 7
    approvers: [user:x]
)", "p.yaml");
  std::string all = all_diagnostics(outcome.diagnostics);
  EXPECT_NE(all.find("p.yaml:3:15: chain[0].parallel: expected a non-empty list of levels"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("p.yaml:5:9: chain[1].parallel[0].parallel: a parallel group cannot hold "
                     "another parallel group"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("p.yaml:6:9: chain[1].parallel[1]: expected a level"), std::string::npos)
      << all;
  EXPECT_NE(all.find("p.yaml:7:5: chain[1].approvers: unknown field 'approvers' in parallel group"),
            std::string::npos)
      << all;
}

TEST(ChainParseTest, ApproverReferences) {
  struct Case {
    std::string text;
    std::string canonical;
  };
  for (const Case& c : std::vector<Case>{{"user:alice", "user:alice"},
                                         {"role:legal", "role:legal"},
                                         {"group:brand-team", "group:brand-team"},
                                         {"email:Ann@Example.com", "email:ann@example.com"},
                                         {"ann@example.com", "email:ann@example.com"}}) {
    Result<ApproverRef> parsed = ApproverRef::parse(c.text);
    ASSERT_TRUE(parsed.ok()) << c.text << ": " << parsed.error().message;
    EXPECT_EQ(parsed->to_string(), c.canonical);
  }
  for (std::string bad : {"alice", "", "user:", "team:x", "email:nope", "a@b", "user:al ice",
                          "x@@y.z"}) {
    EXPECT_FALSE(ApproverRef::parse(bad).ok()) << bad;
  }
}

TEST(ChainParseTest, ApproversYamlReadsAsMappingsAreExplained) {
  PolicyOutcome outcome =
      parse_policy("name: m\nchain:\n  - approvers: [user: alice, {role: 3}]\n", "m.yaml");
  std::string all = all_diagnostics(outcome.diagnostics);
  EXPECT_NE(all.find("m.yaml:3:17: chain[0].approvers[0]: write 'user:alice' without a space after "
                     "the colon (YAML reads 'user: ...' as a mapping)"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("chain[0].approvers[1]: expected an approver such as user:alice"),
            std::string::npos)
      << all;
}

// The policy at the top of docs/approvals.md is what admins copy: it must stay valid.
TEST(ChainParseTest, TheDocumentedPolicyIsValid) {
  std::ifstream file(std::string(HERALD_SOURCE_DIR) + "/docs/approvals.md");
  ASSERT_TRUE(file) << "docs/approvals.md";
  std::stringstream content;
  content << file.rdbuf();
  std::string text = content.str();
  size_t start = text.find("```yaml\n");
  ASSERT_NE(start, std::string::npos);
  start += 8;
  size_t end = text.find("```", start);
  PolicyOutcome outcome = parse_policy(text.substr(start, end - start), "docs/approvals.md");
  ASSERT_TRUE(outcome.ok()) << all_diagnostics(outcome.diagnostics);
  EXPECT_EQ(outcome.policy->name, "regulated-posts");
  EXPECT_EQ(outcome.policy->chain.level_count(), 4u);
}

// The `approval` step's inline chain arrives as JSON from a workflow whose locations the model
// recorded: errors carry the workflow's file, line, column and the full path.
TEST(ChainParseTest, InlineChainsFromAStepsWith) {
  Json with = Json::parse(R"({
    "subject": {"text": "hello"},
    "chain": [{"name": "one", "approvers": ["user:alice"], "mode": "every"}],
    "allow_self_approval": "yes"
  })");
  std::map<std::string, Location> locations = {
      {"steps[2].with", {10, 5}},
      {"steps[2].with.chain[0].mode", {13, 15}},
      {"steps[2].with.allow_self_approval", {14, 28}}};
  ChainOutcome outcome = parse_chain_json(with, "steps[2].with", "flow.yaml", &locations);
  ASSERT_EQ(outcome.diagnostics.size(), 2u) << all_diagnostics(outcome.diagnostics);
  EXPECT_EQ(outcome.diagnostics[0].to_string(),
            "flow.yaml:13:15: steps[2].with.chain[0].mode: expected any, all or { quorum: N }, got "
            "a string ('every')");
  EXPECT_EQ(outcome.diagnostics[1].to_string(),
            "flow.yaml:14:28: steps[2].with.allow_self_approval: expected true or false, got a "
            "string ('yes')");

  // Without locations: paths only.
  ChainOutcome missing = parse_chain_json(Json{{"subject", "x"}}, "with");
  ASSERT_EQ(missing.diagnostics.size(), 1u);
  EXPECT_EQ(missing.diagnostics[0].path, "with");
  EXPECT_EQ(missing.diagnostics[0].location.line, 0);
  EXPECT_EQ(missing.diagnostics[0].message, "missing field 'chain'; expected a list of levels");

  ChainOutcome good = parse_chain_json(
      Json::parse(R"({"policy": null, "chain": [{"approvers": ["role:legal"]}],
                      "on_changes": "return"})"),
      "with");
  ASSERT_TRUE(good.ok()) << all_diagnostics(good.diagnostics);
  EXPECT_EQ(good.chain->on_changes, OnChanges::return_to_caller);
  EXPECT_EQ(good.chain->stages[0].levels[0].path, "with.chain[0]");
}

}  // namespace
}  // namespace herald::approvals
