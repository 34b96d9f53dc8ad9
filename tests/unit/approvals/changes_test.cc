// Edits and requests for changes: approve-with-edit flows to the next levels and into the diff;
// request_changes restarts the chain (a new round) or returns to the workflow.
#include <gtest/gtest.h>

#include "tests/unit/approvals/approvals_test_util.h"

namespace herald::approvals {
namespace {

using namespace std::chrono_literals;
using testing::ask;
using testing::at;
using testing::chain_of;
using testing::Harness;
using testing::notified;

const std::string kThreeLevels =
    "  - { name: editor, approvers: [user:alice] }\n"
    "  - { name: legal, approvers: [user:erin], deadline: 4h }\n"
    "  - { name: final, approvers: [user:gina] }\n";

TEST(ChangesTest, ApproveWithEditChangesTheTextForTheNextLevelsAndTheDiff) {
  Harness h;
  h.start(chain_of(kThreeLevels), testing::post("Spring menu: oat latte is back, 4 EUR"));
  DecideOutcome edited =
      h.decide("user:alice", Verdict::approve, at(1h),
               ask().comment("tightened").edited_text("Spring menu: the oat latte is back!"));
  ASSERT_EQ(edited.status, DecideStatus::recorded);
  EXPECT_EQ(edited.decision->edited_text, "Spring menu: the oat latte is back!");
  EXPECT_EQ(edited.decision->text_revision, 0);  // it saw the submitted text
  EXPECT_EQ(h.state().subject.text, "Spring menu: the oat latte is back!");
  EXPECT_EQ(h.state().original_text, "Spring menu: oat latte is back, 4 EUR");
  EXPECT_EQ(h.state().text_revision, 1);
  // legal is asked about the edited text.
  ASSERT_EQ(h.events_of("approval.requested").size(), 1u);
  EXPECT_EQ(h.events_of("approval.requested")[0].data["subject"]["text"],
            "Spring menu: the oat latte is back!");
  // The edit is in the audit trail with before and after.
  const HistoryEntry* edit = nullptr;
  for (const auto& entry : h.state().history) {
    if (entry.kind == "edited") edit = &entry;
  }
  ASSERT_NE(edit, nullptr);
  EXPECT_EQ(edit->actor, "user:alice");
  EXPECT_EQ(edit->details["before"], "Spring menu: oat latte is back, 4 EUR");
  EXPECT_EQ(edit->details["after"], "Spring menu: the oat latte is back!");

  DecideOutcome legal = h.decide("user:erin", Verdict::approve, at(2h));
  EXPECT_EQ(legal.decision->text_revision, 1);
  h.decide("user:gina", Verdict::approve, at(3h),
           ask().edited_text("Spring menu: the oat latte is back! #coffee"));
  ASSERT_EQ(h.state().status, ApprovalStatus::approved);

  Result<ApprovalResult> result = approvals::result(h.state());
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->text, "Spring menu: the oat latte is back! #coffee");
  EXPECT_EQ(result->original_text, "Spring menu: oat latte is back, 4 EUR");
  EXPECT_TRUE(result->diff.changed());
  EXPECT_EQ(result->diff.inline_markup(),
            "Spring menu: {+the +}oat latte is back[-, 4 EUR-]{+! #coffee+}");
  Json output = result->to_json();
  EXPECT_EQ(output["decision"], "approved");
  EXPECT_EQ(output["text"], "Spring menu: the oat latte is back! #coffee");
  EXPECT_EQ(output["diff"]["ops"][1], (Json{{"op", "insert"}, {"text", "the "}}));
  EXPECT_EQ(output["decided_by"].size(), 3u);
  EXPECT_EQ(output["decided_by"][0]["decisions"][0]["edited_text"],
            "Spring menu: the oat latte is back!");
  EXPECT_EQ(output["rounds"], 1);
}

TEST(ChangesTest, AnEditThatChangesNothingIsNotAnEdit) {
  Harness h;
  h.start(chain_of("  - { name: editor, approvers: [user:alice] }\n"), testing::post("Same"));
  DecideOutcome same = h.decide("user:alice", Verdict::approve, at(1h), ask().edited_text("Same"));
  EXPECT_FALSE(same.decision->edited_text.has_value());
  EXPECT_EQ(h.state().text_revision, 0);
  Result<ApprovalResult> result = approvals::result(h.state());
  ASSERT_TRUE(result.ok());
  EXPECT_FALSE(result->diff.changed());
  EXPECT_EQ(result->diff.unified, "");
}

TEST(ChangesTest, RequestChangesWithRestartSendsTheEditedSubjectBackToTheFirstLevel) {
  Harness h;
  h.start(chain_of(kThreeLevels), testing::post("Oat latte, now only 4 EUR!"));
  h.decide("user:alice", Verdict::approve, at(1h));
  ASSERT_EQ(h.level("legal"), LevelStatus::open);
  DecideOutcome changes =
      h.decide("user:erin", Verdict::request_changes, at(2h),
               ask().comment("no price claims without a source").edited_text("Oat latte is back on the menu!"));
  ASSERT_EQ(changes.status, DecideStatus::recorded);
  EXPECT_EQ(h.state().status, ApprovalStatus::pending);
  EXPECT_EQ(h.state().round, 1);
  EXPECT_EQ(h.state().subject.text, "Oat latte is back on the menu!");
  // Reopened fresh: the first level is open again, the others pending, deadlines reset.
  EXPECT_EQ(h.level("editor"), LevelStatus::open);
  EXPECT_EQ(h.level("legal"), LevelStatus::pending);
  EXPECT_FALSE(due_at(h.state()).has_value());
  ASSERT_EQ(h.events_of("approval.requested").size(), 1u);
  Event requested = h.events_of("approval.requested")[0];
  EXPECT_EQ(requested.data["level"], "editor");
  EXPECT_EQ(requested.data["round"], 1);
  EXPECT_EQ(requested.data["changes_requested"]["comment"], "no price claims without a source");
  EXPECT_EQ(requested.data["changes_requested"]["by"], "user:erin");
  EXPECT_EQ(requested.data["subject"]["text"], "Oat latte is back on the menu!");
  EXPECT_EQ(notified(requested), (std::vector<std::string>{"user:alice"}));

  // alice's approval of round 0 does not carry over: she decides again.
  EXPECT_EQ(h.decide("user:alice", Verdict::approve, at(3h)).status, DecideStatus::recorded);
  EXPECT_EQ(h.level("legal"), LevelStatus::open);
  EXPECT_EQ(due_at(h.state()), at(3h + 4h));
  h.decide("user:erin", Verdict::approve, at(4h));
  h.decide("user:gina", Verdict::approve, at(5h));
  ASSERT_EQ(h.state().status, ApprovalStatus::approved);

  Result<ApprovalResult> result = approvals::result(h.state());
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->rounds, 2);
  EXPECT_EQ(result->text, "Oat latte is back on the menu!");
  // decided_by shows the final round; comments keep every round's.
  EXPECT_EQ(result->decided_by[1].decisions.size(), 1u);
  EXPECT_EQ(result->decided_by[1].decisions[0].verdict, Verdict::approve);
  ASSERT_EQ(result->comments.size(), 1u);
  EXPECT_EQ(result->comments[0].round, 0);
  std::vector<std::string> kinds = h.history_kinds();
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "restarted"), kinds.end());
}

TEST(ChangesTest, ADecisionFromBeforeTheRestartIsRefused) {
  Harness h;
  h.start(chain_of(kThreeLevels));
  h.decide("user:alice", Verdict::request_changes, at(1h), ask().comment("shorter please"));
  ASSERT_EQ(h.state().round, 1);
  // A link issued in round 0 for the editor level: the text has changed since.
  DecideOutcome stale =
      h.decide("user:alice", Verdict::approve, at(2h), ask().level("editor").round(0));
  EXPECT_EQ(stale.status, DecideStatus::level_closed);
  EXPECT_NE(stale.message.find("issued for round 0"), std::string::npos) << stale.message;
  EXPECT_EQ(h.decide("user:alice", Verdict::approve, at(2h), ask().level("editor").round(1)).status,
            DecideStatus::recorded);
}

TEST(ChangesTest, RequestChangesWithReturnEndsTheApproval) {
  Harness h;
  h.start(chain_of(kThreeLevels, "on_changes: return\n"));
  h.decide("user:alice", Verdict::approve, at(1h));
  h.decide("user:erin", Verdict::request_changes, at(2h),
           ask().comment("needs the allergen note").edited_text("Oat latte (contains oats)"));
  EXPECT_EQ(h.state().status, ApprovalStatus::changes_requested);
  EXPECT_EQ(h.level("legal"), LevelStatus::changes_requested);
  EXPECT_EQ(h.level("final"), LevelStatus::pending);
  ASSERT_EQ(h.events_of("approval.decided").size(), 1u);
  EXPECT_EQ(h.events_of("approval.decided")[0].data["decision"], "changes_requested");
  Result<ApprovalResult> result = approvals::result(h.state());
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->decision, ApprovalStatus::changes_requested);
  EXPECT_EQ(result->text, "Oat latte (contains oats)");
  ASSERT_EQ(result->comments.size(), 1u);
  EXPECT_EQ(result->comments[0].text, "needs the allergen note");
}

// A request for changes is never outvoted: it closes its level in every mode.
TEST(ChangesTest, RequestChangesClosesTheLevelEvenInAQuorum) {
  Harness h;
  h.start(chain_of("  - name: board\n"
                   "    approvers: [user:alice, user:bob, user:carol]\n"
                   "    mode: { quorum: 2 }\n",
                   "on_changes: return\n"));
  h.decide("user:alice", Verdict::approve, at(1h));
  h.decide("user:bob", Verdict::request_changes, at(2h), ask().comment("wrong photo"));
  EXPECT_EQ(h.level("board"), LevelStatus::changes_requested);
  EXPECT_EQ(h.state().status, ApprovalStatus::changes_requested);
}

TEST(ChangesTest, RestartReasksWhenForTheEditedSubject) {
  Harness h;
  h.context().evaluate_when = [](const Level&, const Subject& subject) {
    return Result<bool>(subject.text.find("EUR") != std::string::npos);
  };
  h.start(chain_of("  - { name: editor, approvers: [user:alice] }\n"
                   "  - { name: legal, approvers: [user:erin], when: 'has_price' }\n"),
          testing::post("Oat latte is back"));
  EXPECT_EQ(h.level("legal"), LevelStatus::skipped);
  // The editor adds a price while asking for another look: legal now applies.
  h.decide("user:alice", Verdict::request_changes, at(1h),
           ask().comment("added the price").edited_text("Oat latte is back, 4 EUR"));
  EXPECT_EQ(h.level("legal"), LevelStatus::pending);
  h.decide("user:alice", Verdict::approve, at(2h));
  EXPECT_EQ(h.level("legal"), LevelStatus::open);
}

}  // namespace
}  // namespace herald::approvals
