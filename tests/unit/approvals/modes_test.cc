// Modes (any, all, quorum), sequential levels and parallel groups, and the answers decide()
// gives: recorded, duplicate, invalid, not_eligible, level_closed, already_decided.
#include <gtest/gtest.h>

#include "tests/unit/approvals/approvals_test_util.h"

namespace herald::approvals {
namespace {

using namespace std::chrono_literals;
using testing::ask;
using testing::at;
using testing::chain_of;
using testing::Harness;
using testing::kT0;
using testing::notified;

TEST(ModesTest, AnyClosesOnTheFirstApproval) {
  Harness h;
  h.start(chain_of("  - { name: editors, approvers: [user:alice, user:bob, user:carol] }\n"));
  ASSERT_EQ(h.level("editors"), LevelStatus::open);
  ASSERT_EQ(h.events_of("approval.requested").size(), 1u);
  EXPECT_EQ(notified(h.events_of("approval.requested")[0]),
            (std::vector<std::string>{"user:alice", "user:bob", "user:carol"}));
  EXPECT_FALSE(finished(h.state()));

  DecideOutcome first = h.decide("user:bob", Verdict::approve, at(1h));
  EXPECT_EQ(first.status, DecideStatus::recorded);
  EXPECT_EQ(http_status(first.status), 201);
  EXPECT_EQ(h.level("editors"), LevelStatus::approved);
  EXPECT_EQ(h.state().status, ApprovalStatus::approved);
  ASSERT_EQ(h.events_of("approval.decided").size(), 1u);
  EXPECT_EQ(h.events_of("approval.decided")[0].data["decision"], "approved");
  EXPECT_EQ(h.events_of("approval.decided")[0].data["approval_id"], "ap-1");

  Result<ApprovalResult> result = approvals::result(h.state());
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->decision, ApprovalStatus::approved);
  ASSERT_EQ(result->decided_by.size(), 1u);
  ASSERT_EQ(result->decided_by[0].decisions.size(), 1u);
  EXPECT_EQ(result->decided_by[0].decisions[0].actor, "user:bob");
  EXPECT_EQ(result->decided_by[0].closed_by, "user:bob");
  EXPECT_EQ(result->started_at, kT0);
  EXPECT_EQ(result->finished_at, at(1h));
}

// Rule: in mode any, one person decides for the level, whatever they decide.
TEST(ModesTest, AnyIsRejectedByTheFirstRejection) {
  Harness h;
  h.start(chain_of("  - { name: editors, approvers: [user:alice, user:bob] }\n"));
  DecideOutcome rejected = h.decide("user:alice", Verdict::reject, at(1h),
                                    ask().comment("off-brand"));
  EXPECT_EQ(rejected.status, DecideStatus::recorded);
  EXPECT_EQ(h.level("editors"), LevelStatus::rejected);
  EXPECT_EQ(h.state().status, ApprovalStatus::rejected);
  Result<ApprovalResult> result = approvals::result(h.state());
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->decision, ApprovalStatus::rejected);
  ASSERT_EQ(result->comments.size(), 1u);
  EXPECT_EQ(result->comments[0].text, "off-brand");
  EXPECT_EQ(result->comments[0].by, "user:alice");
}

TEST(ModesTest, AllNeedsEveryoneAndOneRejectionRejects) {
  Harness h;
  Chain chain = chain_of("  - { name: brand, approvers: [group:brand-team], mode: all }\n");
  h.start(chain);
  EXPECT_EQ(h.decide("user:alice", Verdict::approve, at(1h)).status, DecideStatus::recorded);
  EXPECT_EQ(h.level("brand"), LevelStatus::open);
  EXPECT_EQ(h.decide("user:bob", Verdict::approve, at(2h)).status, DecideStatus::recorded);
  EXPECT_EQ(h.level("brand"), LevelStatus::open);
  EXPECT_EQ(h.decide("user:carol", Verdict::approve, at(3h)).status, DecideStatus::recorded);
  EXPECT_EQ(h.state().status, ApprovalStatus::approved);

  Harness r;
  r.start(chain);
  r.decide("user:alice", Verdict::approve, at(1h));
  EXPECT_EQ(r.decide("user:bob", Verdict::reject, at(2h), ask().comment("no")).status,
            DecideStatus::recorded);
  EXPECT_EQ(r.level("brand"), LevelStatus::rejected);
  EXPECT_EQ(r.state().status, ApprovalStatus::rejected);
}

TEST(ModesTest, QuorumApprovesAtNAndRejectsWhenNIsOutOfReach) {
  Chain chain = chain_of(
      "  - name: board\n"
      "    approvers: [user:alice, user:bob, user:carol, user:dan]\n"
      "    mode: { quorum: 3 }\n");
  Harness h;
  h.start(chain);
  h.decide("user:alice", Verdict::approve, at(1h));
  h.decide("user:bob", Verdict::reject, at(2h), ask().comment("no"));
  EXPECT_EQ(h.level("board"), LevelStatus::open);  // 1 + 2 undecided can still make 3
  h.decide("user:carol", Verdict::approve, at(3h));
  EXPECT_EQ(h.level("board"), LevelStatus::open);
  h.decide("user:dan", Verdict::approve, at(4h));
  EXPECT_EQ(h.level("board"), LevelStatus::approved);
  EXPECT_EQ(h.state().status, ApprovalStatus::approved);

  Harness r;
  r.start(chain);
  r.decide("user:alice", Verdict::reject, at(1h), ask().comment("no"));
  EXPECT_EQ(r.level("board"), LevelStatus::open);  // 3 undecided can still make 3
  r.decide("user:bob", Verdict::reject, at(2h), ask().comment("no"));
  EXPECT_EQ(r.level("board"), LevelStatus::rejected);  // 2 left cannot make 3
  EXPECT_EQ(r.state().status, ApprovalStatus::rejected);
}

TEST(ModesTest, SequentialLevelsOpenOneAfterTheOther) {
  Harness h;
  h.start(chain_of("  - { name: editor, approvers: [role:editor] }\n"
                   "  - { name: legal, approvers: [role:legal], mode: all }\n"
                   "  - { name: final, approvers: [user:gina] }\n"));
  EXPECT_EQ(h.level("editor"), LevelStatus::open);
  EXPECT_EQ(h.level("legal"), LevelStatus::pending);
  // sam submitted and is an editor: left out of his own approval.
  EXPECT_EQ(h.level_state("editor").eligible,
            (std::vector<std::string>{"user:alice", "user:bob", "user:carol", "user:dan"}));

  // Not open yet: erin cannot decide on legal before the editors have.
  DecideOutcome early = h.decide("user:erin", Verdict::approve, at(1h), ask().level("legal"));
  EXPECT_EQ(early.status, DecideStatus::level_closed);
  EXPECT_NE(early.message.find("not open yet"), std::string::npos);
  EXPECT_EQ(h.decide("user:erin", Verdict::approve, at(1h)).status, DecideStatus::not_eligible);

  h.decide("user:dan", Verdict::approve, at(1h));
  EXPECT_EQ(h.level("editor"), LevelStatus::approved);
  EXPECT_EQ(h.level("legal"), LevelStatus::open);
  ASSERT_EQ(h.events_of("approval.level_decided").size(), 1u);
  ASSERT_EQ(h.events_of("approval.requested").size(), 1u);
  EXPECT_EQ(h.events_of("approval.requested")[0].data["level"], "legal");
  EXPECT_EQ(notified(h.events_of("approval.requested")[0]),
            (std::vector<std::string>{"user:erin", "user:frank"}));

  h.decide("user:erin", Verdict::approve, at(2h));
  h.decide("user:frank", Verdict::approve, at(3h));
  EXPECT_EQ(h.level("final"), LevelStatus::open);
  h.decide("user:gina", Verdict::approve, at(4h));
  EXPECT_EQ(h.state().status, ApprovalStatus::approved);
  Result<ApprovalResult> result = approvals::result(h.state());
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result->decided_by.size(), 3u);
  EXPECT_EQ(result->decided_by[1].decisions.size(), 2u);
  EXPECT_EQ(*result->decided_by[2].opened_at, at(3h));
  EXPECT_EQ(*result->decided_by[2].closed_at, at(4h));
}

TEST(ModesTest, ParallelGroupOpensTogetherAndNeedsEveryLevel) {
  Harness h;
  h.start(chain_of("  - name: reviews\n"
                   "    parallel:\n"
                   "      - { name: legal, approvers: [role:legal], mode: { quorum: 2 } }\n"
                   "      - { name: brand, approvers: [group:brand-team] }\n"
                   "  - { name: final, approvers: [user:gina] }\n"));
  EXPECT_EQ(h.level("legal"), LevelStatus::open);
  EXPECT_EQ(h.level("brand"), LevelStatus::open);
  EXPECT_EQ(h.level_state("legal").group, "reviews");
  EXPECT_EQ(h.events_of("approval.requested").size(), 2u);

  h.decide("user:alice", Verdict::approve, at(1h));
  EXPECT_EQ(h.level("brand"), LevelStatus::approved);
  EXPECT_EQ(h.level("final"), LevelStatus::pending);  // legal still open
  h.decide("user:erin", Verdict::approve, at(2h));
  EXPECT_EQ(h.level("legal"), LevelStatus::open);
  h.decide("user:frank", Verdict::approve, at(3h));
  EXPECT_EQ(h.level("legal"), LevelStatus::approved);
  EXPECT_EQ(h.level("final"), LevelStatus::open);
  h.decide("user:gina", Verdict::approve, at(4h));
  EXPECT_EQ(h.state().status, ApprovalStatus::approved);
}

TEST(ModesTest, ARejectionInAParallelGroupCancelsItsSiblings) {
  Harness h;
  h.start(chain_of("  - parallel:\n"
                   "      - { name: legal, approvers: [role:legal], mode: all }\n"
                   "      - { name: brand, approvers: [group:brand-team] }\n"
                   "  - { name: final, approvers: [user:gina] }\n"));
  h.decide("user:erin", Verdict::reject, at(1h), ask().comment("claims need a source"));
  EXPECT_EQ(h.level("legal"), LevelStatus::rejected);
  EXPECT_EQ(h.level("brand"), LevelStatus::cancelled);
  EXPECT_EQ(h.level("final"), LevelStatus::pending);  // never reached
  EXPECT_EQ(h.state().status, ApprovalStatus::rejected);
  EXPECT_TRUE(awaiting(h.state()).empty());
  EXPECT_FALSE(due_at(h.state()).has_value());
}

// Two approvers press the button at the same instant. The caller serialises them with the
// state's revision (compare-and-set); the second is recomputed on the first one's state.
TEST(ModesTest, SameInstantInAnyClosesOnceAndTheSecondGetsLevelClosed) {
  Harness h;
  h.start(chain_of("  - { name: editors, approvers: [user:alice, user:bob] }\n"));
  ApprovalState before = h.state();
  Result<DecideOutcome> alice =
      decide(before, Actor{"user:alice"}, ask().verdict(Verdict::approve), at(1h), h.context());
  Result<DecideOutcome> bob =
      decide(before, Actor{"user:bob"}, ask().verdict(Verdict::approve), at(1h), h.context());
  ASSERT_TRUE(alice.ok() && bob.ok());
  // Both were computed from the same revision: a compare-and-set store accepts only one.
  EXPECT_EQ(alice->state->revision, before.revision + 1);
  EXPECT_EQ(bob->state->revision, before.revision + 1);
  // Alice's write wins; bob's is retried on her state.
  Result<DecideOutcome> retried =
      decide(*alice->state, Actor{"user:bob"}, ask().verdict(Verdict::approve), at(1h), h.context());
  ASSERT_TRUE(retried.ok());
  EXPECT_EQ(retried->status, DecideStatus::level_closed);
  EXPECT_EQ(http_status(retried->status), 409);
  EXPECT_FALSE(retried->state.has_value());
  EXPECT_TRUE(retried->events.empty());
  // The level closed once: one level_decided event, one decision.
  size_t closed = 0;
  for (const auto& event : alice->events) closed += event.type == "approval.level_decided";
  EXPECT_EQ(closed, 1u);
  EXPECT_EQ(alice->state->decisions.size(), 1u);
}

TEST(ModesTest, SameInstantInAllBothCount) {
  Harness h;
  h.start(chain_of("  - { name: pair, approvers: [user:alice, user:bob], mode: all }\n"));
  h.decide("user:alice", Verdict::approve, at(1h));
  DecideOutcome bob = h.decide("user:bob", Verdict::approve, at(1h));
  EXPECT_EQ(bob.status, DecideStatus::recorded);
  EXPECT_EQ(h.state().decisions.size(), 2u);
  EXPECT_EQ(h.level("pair"), LevelStatus::approved);
  Result<ApprovalResult> result = approvals::result(h.state());
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->decided_by[0].decisions.size(), 2u);
}

TEST(ModesTest, TheSameDecisionTwiceReturnsTheFirstResult) {
  Harness h;
  h.start(chain_of("  - { name: pair, approvers: [user:alice, user:bob], mode: all }\n"));
  DecideOutcome first = h.decide("user:alice", Verdict::approve, at(1h),
                                 ask().comment("lovely").idempotency_key("k-1"));
  ASSERT_EQ(first.status, DecideStatus::recorded);
  uint64_t revision = h.state().revision;

  // The same request again (a retry after a lost response), with and without its key.
  DecideOutcome again = h.decide("user:alice", Verdict::approve, at(2h),
                                 ask().comment("lovely").idempotency_key("k-1"));
  EXPECT_EQ(again.status, DecideStatus::duplicate);
  EXPECT_EQ(http_status(again.status), 200);
  ASSERT_TRUE(again.decision.has_value());
  EXPECT_EQ(again.decision->at, at(1h));  // the first one's
  EXPECT_FALSE(again.state.has_value());
  DecideOutcome keyless = h.decide("user:alice", Verdict::approve, at(2h));
  EXPECT_EQ(keyless.status, DecideStatus::duplicate);
  EXPECT_EQ(keyless.decision->comment, "lovely");
  EXPECT_EQ(h.state().revision, revision);
  EXPECT_EQ(h.state().decisions.size(), 1u);

  // A different decision from the same person on the same level is refused, not a duplicate.
  DecideOutcome change = h.decide("user:alice", Verdict::reject, at(2h), ask().comment("hm"));
  EXPECT_EQ(change.status, DecideStatus::already_decided);
  EXPECT_EQ(http_status(change.status), 409);
  // The key names the first decision; reusing it for another one is a client bug.
  DecideOutcome reused = h.decide("user:alice", Verdict::reject, at(2h),
                                  ask().comment("hm").idempotency_key("k-1"));
  EXPECT_EQ(reused.status, DecideStatus::invalid);

  // After the level closed, the retry still gets the first result.
  h.decide("user:bob", Verdict::approve, at(3h));
  ASSERT_EQ(h.state().status, ApprovalStatus::approved);
  DecideOutcome late = h.decide("user:alice", Verdict::approve, at(4h),
                                ask().comment("lovely").idempotency_key("k-1"));
  EXPECT_EQ(late.status, DecideStatus::duplicate);
}

TEST(ModesTest, DecidingOnAClosedLevelIsLevelClosed) {
  Harness h;
  h.start(chain_of("  - { name: editors, approvers: [user:alice, user:bob] }\n"
                   "  - { name: final, approvers: [user:gina] }\n"));
  h.decide("user:alice", Verdict::approve, at(1h));
  DecideOutcome bob = h.decide("user:bob", Verdict::approve, at(2h));
  EXPECT_EQ(bob.status, DecideStatus::level_closed);
  EXPECT_NE(bob.message.find("level 'editors' is closed (approved)"), std::string::npos)
      << bob.message;
  DecideOutcome named = h.decide("user:bob", Verdict::reject, at(2h),
                                 ask().comment("too late").level("editors"));
  EXPECT_EQ(named.status, DecideStatus::level_closed);
  // Someone who was never an approver gets 403, not 409.
  DecideOutcome stranger = h.decide("user:hugo", Verdict::approve, at(2h), ask().level("editors"));
  EXPECT_EQ(stranger.status, DecideStatus::not_eligible);
  EXPECT_EQ(http_status(stranger.status), 403);

  h.decide("user:gina", Verdict::approve, at(3h));
  DecideOutcome after = h.decide("user:gina", Verdict::reject, at(4h), ask().comment("x"));
  EXPECT_EQ(after.status, DecideStatus::level_closed);
  EXPECT_NE(after.message.find("the approval is finished (approved)"), std::string::npos)
      << after.message;
}

TEST(ModesTest, InvalidRequestsAreRefusedBeforeAnythingElse) {
  Harness h;
  h.start(chain_of("  - { name: editors, approvers: [user:alice] }\n"));
  auto try_decide = [&](DecisionRequest request, std::string actor = "user:alice") {
    Result<DecideOutcome> outcome = decide(h.state(), Actor{actor}, request, at(1h), h.context());
    EXPECT_TRUE(outcome.ok());
    return *outcome;
  };
  DecideOutcome no_reason = try_decide(ask().verdict(Verdict::reject));
  EXPECT_EQ(no_reason.status, DecideStatus::invalid);
  EXPECT_EQ(http_status(no_reason.status), 400);
  EXPECT_EQ(no_reason.message, "a rejection needs a reason: give a comment");
  EXPECT_EQ(try_decide(ask().verdict(Verdict::reject).comment("  \n")).status, DecideStatus::invalid);
  EXPECT_EQ(try_decide(ask().verdict(Verdict::request_changes)).message,
            "a request for changes needs a comment saying what to change");
  EXPECT_EQ(try_decide(ask().verdict(Verdict::reject).comment("no").edited_text("x")).status,
            DecideStatus::invalid);
  EXPECT_EQ(try_decide(ask().verdict(Verdict::approve).edited_text("")).message,
            "the edited text is empty");
  EXPECT_EQ(try_decide(ask().verdict(Verdict::approve), "alice").status, DecideStatus::invalid);
  EXPECT_EQ(try_decide(ask().verdict(Verdict::approve).level("nope")).status, DecideStatus::invalid);
  EXPECT_EQ(try_decide(ask().verdict(Verdict::approve).comment(std::string(10'001, 'x'))).status,
            DecideStatus::invalid);
  EXPECT_EQ(h.state().decisions.size(), 0u);
}

// One person on two open levels of a group must say which one a decision is for.
TEST(ModesTest, AnApproverOnTwoOpenLevelsMustNameOne) {
  Harness h;
  h.start(chain_of("  - parallel:\n"
                   "      - { name: copy, approvers: [user:alice] }\n"
                   "      - { name: visuals, approvers: [user:alice, user:bob], mode: all }\n"));
  DecideOutcome vague = h.decide("user:alice", Verdict::approve, at(1h));
  EXPECT_EQ(vague.status, DecideStatus::invalid);
  EXPECT_NE(vague.message.find("level 'copy' for user:alice, level 'visuals' for user:alice"),
            std::string::npos)
      << vague.message;
  EXPECT_EQ(h.decide("user:alice", Verdict::approve, at(1h), ask().level("copy")).status,
            DecideStatus::recorded);
  EXPECT_EQ(h.level("copy"), LevelStatus::approved);
  // Now only visuals is left for her, so the level may be left out.
  EXPECT_EQ(h.decide("user:alice", Verdict::approve, at(2h)).status, DecideStatus::recorded);
  EXPECT_EQ(h.decide("user:bob", Verdict::approve, at(3h)).status, DecideStatus::recorded);
  EXPECT_EQ(h.state().status, ApprovalStatus::approved);
}

TEST(ModesTest, AwaitingAndChoicesListWhoMayDecide) {
  Harness h;
  h.start(chain_of("  - { name: pair, approvers: [user:alice, user:bob], mode: all }\n"));
  std::vector<Awaiting> waiting = awaiting(h.state());
  ASSERT_EQ(waiting.size(), 2u);
  EXPECT_EQ(waiting[0].principal, "user:alice");
  h.decide("user:alice", Verdict::approve, at(1h));
  waiting = awaiting(h.state());
  ASSERT_EQ(waiting.size(), 1u);
  EXPECT_EQ(waiting[0].level, "pair");
  EXPECT_EQ(waiting[0].principal, "user:bob");

  Result<std::vector<Choice>> bob = choices_for(h.state(), Actor{"user:bob"}, at(1h), h.directory());
  ASSERT_TRUE(bob.ok());
  ASSERT_EQ(bob->size(), 1u);
  EXPECT_EQ((*bob)[0].on_behalf_of, "user:bob");
  Result<std::vector<Choice>> alice =
      choices_for(h.state(), Actor{"user:alice"}, at(1h), h.directory());
  ASSERT_TRUE(alice.ok());
  EXPECT_TRUE(alice->empty());
}

TEST(ModesTest, HistoryRecordsTheWholeStory) {
  Harness h;
  h.start(chain_of("  - { name: editors, approvers: [user:alice] }\n"));
  h.decide("user:alice", Verdict::approve, at(1h), ask().comment("ship it"));
  EXPECT_EQ(h.history_kinds(), (std::vector<std::string>{"started", "requested", "decided",
                                                         "level_closed", "finished"}));
  const HistoryEntry& decided = h.state().history[2];
  EXPECT_EQ(decided.at, at(1h));
  EXPECT_EQ(decided.actor, "user:alice");
  EXPECT_EQ(decided.level, "editors");
  EXPECT_EQ(decided.details["comment"], "ship it");
  EXPECT_EQ(decided.details["verdict"], "approve");
}

TEST(ModesTest, ResultIsAnErrorWhilePending) {
  Harness h;
  h.start(chain_of("  - { name: editors, approvers: [user:alice] }\n"));
  Result<ApprovalResult> pending = approvals::result(h.state());
  ASSERT_FALSE(pending.ok());
  EXPECT_EQ(pending.error().code, ErrorCode::failed_precondition);
}

}  // namespace
}  // namespace herald::approvals
