// Deadlines with an explicit clock: expire (the default), approve, reject, reminders and what
// follows the last one, escalation (adding, replacing, changing the mode), `deadline: { at }`,
// and a timer that fires late.
#include <gtest/gtest.h>

#include "tests/unit/approvals/approvals_test_util.h"

namespace herald::approvals {
namespace {

using namespace std::chrono_literals;
using testing::at;
using testing::chain_of;
using testing::Harness;
using testing::kT0;
using testing::notified;

TEST(DeadlinesTest, ADeadlineWithoutAnActionExpiresTheApproval) {
  Harness h;
  h.start(chain_of("  - { name: editors, approvers: [user:alice], deadline: 4h }\n"
                   "  - { name: final, approvers: [user:gina] }\n"));
  EXPECT_EQ(due_at(h.state()), at(4h));
  // Not yet: nothing changes and there is nothing to commit.
  DeadlineOutcome early = h.tick(at(4h) - 1ms);
  EXPECT_FALSE(early.state.has_value());
  EXPECT_TRUE(early.events.empty());
  EXPECT_EQ(h.level("editors"), LevelStatus::open);

  DeadlineOutcome due = h.tick(at(4h));
  ASSERT_TRUE(due.state.has_value());
  EXPECT_EQ(h.level("editors"), LevelStatus::expired);
  EXPECT_EQ(h.level_state("editors").closed_by, "system:deadline");
  EXPECT_EQ(h.level("final"), LevelStatus::pending);
  EXPECT_EQ(h.state().status, ApprovalStatus::expired);
  ASSERT_EQ(h.events_of("approval.expired").size(), 1u);
  EXPECT_EQ(h.events_of("approval.expired")[0].data["result"]["decision"], "expired");
  EXPECT_FALSE(due_at(h.state()).has_value());
  Result<ApprovalResult> result = approvals::result(h.state());
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->decision, ApprovalStatus::expired);

  // A timer that fires again (at-least-once delivery) finds nothing to do.
  EXPECT_FALSE(h.tick(at(5h)).state.has_value());
  // And a decision after expiry is refused as closed.
  EXPECT_EQ(h.decide("user:alice", Verdict::approve, at(5h)).status, DecideStatus::level_closed);
}

TEST(DeadlinesTest, ApproveAtTheDeadlineMovesOnAndTheNextLevelCountsFromThen) {
  Harness h;
  h.start(chain_of("  - { name: optional, approvers: [user:alice], deadline: 2h,"
                   " on_deadline: approve }\n"
                   "  - { name: final, approvers: [user:gina], deadline: 1d }\n"));
  h.tick(at(2h));
  EXPECT_EQ(h.level("optional"), LevelStatus::approved);
  EXPECT_EQ(h.level_state("optional").closed_by, "system:deadline");
  EXPECT_EQ(h.level("final"), LevelStatus::open);
  EXPECT_EQ(due_at(h.state()), at(2h + 24h));
  ASSERT_EQ(h.events_of("approval.requested").size(), 1u);
  EXPECT_EQ(h.events_of("approval.level_decided")[0].data["closed_by"], "system:deadline");
  h.decide("user:gina", Verdict::approve, at(3h));
  EXPECT_EQ(h.state().status, ApprovalStatus::approved);
  Result<ApprovalResult> result = approvals::result(h.state());
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->decided_by[0].decisions.empty());  // nobody decided; the deadline did
  EXPECT_EQ(result->decided_by[0].closed_by, "system:deadline");
}

TEST(DeadlinesTest, RejectAtTheDeadline) {
  Harness h;
  h.start(chain_of("  - { name: editors, approvers: [user:alice], deadline: 30m,"
                   " on_deadline: reject }\n"));
  h.tick(at(30min));
  EXPECT_EQ(h.level("editors"), LevelStatus::rejected);
  EXPECT_EQ(h.state().status, ApprovalStatus::rejected);
  ASSERT_EQ(h.events_of("approval.decided").size(), 1u);
  EXPECT_EQ(h.events_of("approval.decided")[0].data["decision"], "rejected");
}

TEST(DeadlinesTest, RemindersExtendThenTheNextEntryRuns) {
  Harness h;
  h.start(chain_of("  - name: brand\n"
                   "    approvers: [group:brand-team]\n"
                   "    mode: all\n"
                   "    deadline: 4h\n"
                   "    on_deadline:\n"
                   "      - remind: { every: 1h, times: 2 }\n"
                   "      - reject\n"));
  h.decide("user:alice", Verdict::approve, at(1h));

  h.tick(at(4h));
  ASSERT_EQ(h.events_of("approval.reminded").size(), 1u);
  Event first = h.events_of("approval.reminded")[0];
  EXPECT_EQ(first.data["reminder"], 1);
  EXPECT_EQ(first.data["of"], 2);
  // Only those who have not decided are reminded.
  EXPECT_EQ(notified(first), (std::vector<std::string>{"user:bob", "user:carol"}));
  EXPECT_EQ(due_at(h.state()), at(5h));
  EXPECT_EQ(h.level_state("brand").reminders_sent, 1);

  h.tick(at(5h));
  ASSERT_EQ(h.events_of("approval.reminded").size(), 1u);
  EXPECT_EQ(h.events_of("approval.reminded")[0].data["reminder"], 2);
  EXPECT_EQ(due_at(h.state()), at(6h));
  EXPECT_EQ(h.level("brand"), LevelStatus::open);

  h.tick(at(6h));
  EXPECT_TRUE(h.events_of("approval.reminded").empty());
  EXPECT_EQ(h.level("brand"), LevelStatus::rejected);
  EXPECT_EQ(h.state().status, ApprovalStatus::rejected);
  std::vector<std::string> kinds = h.history_kinds();
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "reminded"), 2);
}

TEST(DeadlinesTest, AfterTheLastReminderWithNothingElseTheLevelExpires) {
  Harness h;
  h.start(chain_of("  - { name: editors, approvers: [user:alice], deadline: 2h,"
                   " on_deadline: { remind: { every: 30m } } }\n"));
  h.tick(at(2h));
  EXPECT_EQ(h.events_of("approval.reminded").size(), 1u);  // times defaults to 1
  EXPECT_EQ(due_at(h.state()), at(2h + 30min));
  h.tick(at(2h + 30min));
  EXPECT_EQ(h.level("editors"), LevelStatus::expired);
  EXPECT_EQ(h.state().status, ApprovalStatus::expired);
}

TEST(DeadlinesTest, EscalationAddsApproversAndNotifiesThem) {
  Harness h;
  h.start(chain_of("  - name: legal\n"
                   "    approvers: [user:erin]\n"
                   "    deadline: 1d\n"
                   "    on_deadline:\n"
                   "      - escalate: [role:manager]\n"
                   "      - expire\n"));
  h.tick(at(24h));
  EXPECT_EQ(h.level("legal"), LevelStatus::open);
  EXPECT_EQ(h.level_state("legal").eligible,
            (std::vector<std::string>{"user:erin", "user:gina", "user:hugo"}));
  EXPECT_EQ(h.level_state("legal").escalations, 1);
  ASSERT_EQ(h.events_of("approval.escalated").size(), 1u);
  Event escalated = h.events_of("approval.escalated")[0];
  EXPECT_EQ(escalated.data["added"], (Json{"user:gina", "user:hugo"}));
  EXPECT_EQ(escalated.data["removed"], Json::array());
  // The new people first, then whoever was already waiting.
  EXPECT_EQ(notified(escalated),
            (std::vector<std::string>{"user:gina", "user:hugo", "user:erin"}));
  // Without its own deadline the escalation gets the level's duration again.
  EXPECT_EQ(due_at(h.state()), at(48h));
  h.decide("user:hugo", Verdict::approve, at(30h));
  EXPECT_EQ(h.state().status, ApprovalStatus::approved);
}

TEST(DeadlinesTest, EscalationWithReplaceAndModeTakesTheDecisionAway) {
  Harness h;
  h.start(chain_of("  - name: brand\n"
                   "    approvers: [group:brand-team]\n"
                   "    mode: all\n"
                   "    deadline: 4h\n"
                   "    on_deadline:\n"
                   "      - escalate: [role:manager]\n"
                   "        replace: true\n"
                   "        mode: any\n"
                   "        deadline: 2h\n"
                   "      - reject\n"));
  h.decide("user:alice", Verdict::approve, at(1h));
  h.tick(at(4h));
  const LevelState& brand = h.level_state("brand");
  EXPECT_EQ(brand.eligible, (std::vector<std::string>{"user:gina", "user:hugo"}));
  EXPECT_EQ(brand.mode.kind, Mode::Kind::any);
  EXPECT_EQ(brand.approvers, (std::vector<std::string>{"role:manager"}));
  EXPECT_EQ(h.events_of("approval.escalated")[0].data["removed"],
            (Json{"user:alice", "user:bob", "user:carol"}));
  EXPECT_EQ(due_at(h.state()), at(6h));
  // The replaced approvers may no longer decide.
  EXPECT_EQ(h.decide("user:bob", Verdict::approve, at(5h)).status, DecideStatus::not_eligible);
  // Nobody decides within the escalation's window: the last entry rejects.
  h.tick(at(6h));
  EXPECT_EQ(h.state().status, ApprovalStatus::rejected);
}

TEST(DeadlinesTest, ReplacingApproversCanSettleTheLevel) {
  Harness h;
  h.start(chain_of("  - name: pair\n"
                   "    approvers: [user:alice, user:bob]\n"
                   "    mode: all\n"
                   "    deadline: 4h\n"
                   "    on_deadline:\n"
                   "      - { escalate: [user:alice], replace: true }\n"));
  h.decide("user:alice", Verdict::approve, at(1h));
  h.tick(at(4h));
  // Only alice is left, and she has approved: the level is decided by the escalation.
  EXPECT_EQ(h.level("pair"), LevelStatus::approved);
  EXPECT_EQ(h.state().status, ApprovalStatus::approved);
}

TEST(DeadlinesTest, EscalatingToNobodyFailsTheApprovalClearly) {
  Harness h;
  h.start(chain_of("  - name: legal\n"
                   "    approvers: [user:erin]\n"
                   "    deadline: 1h\n"
                   "    on_deadline: { escalate: [role:nobody-has-this], replace: true }\n"));
  h.tick(at(1h));
  EXPECT_EQ(h.state().status, ApprovalStatus::failed);
  ASSERT_TRUE(h.state().failure.has_value());
  EXPECT_EQ(h.state().failure->message,
            "level 'legal' cannot be decided after its escalation: nobody can approve it; "
            "role:nobody-has-this has no members (approvers: role:nobody-has-this)");
  ASSERT_EQ(h.events_of("approval.failed").size(), 1u);
  Result<ApprovalResult> result = approvals::result(h.state());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::failed_precondition);
}

// Herald was down through several deadlines: everything due runs in one call, on the schedule
// the policy promised; reminders whose window already passed are recorded but not sent.
TEST(DeadlinesTest, ALateTimerCatchesUpOnTheOriginalSchedule) {
  Chain chain = chain_of("  - name: editors\n"
                         "    approvers: [user:alice]\n"
                         "    deadline: 4h\n"
                         "    on_deadline:\n"
                         "      - remind: { every: 1h, times: 2 }\n"
                         "      - reject\n");
  Harness all_missed;
  all_missed.start(chain);
  all_missed.tick(at(10h));
  EXPECT_TRUE(all_missed.events_of("approval.reminded").empty());
  EXPECT_EQ(all_missed.state().status, ApprovalStatus::rejected);
  int late = 0;
  for (const auto& entry : all_missed.state().history) {
    if (entry.kind == "reminded" && entry.details["late"] == true) ++late;
  }
  EXPECT_EQ(late, 2);

  Harness some_missed;
  some_missed.start(chain);
  some_missed.tick(at(5h + 30min));
  // The first reminder's window (until 5h) is gone; the second (until 6h) is still useful.
  ASSERT_EQ(some_missed.events_of("approval.reminded").size(), 1u);
  EXPECT_EQ(some_missed.events_of("approval.reminded")[0].data["reminder"], 2);
  EXPECT_EQ(due_at(some_missed.state()), at(6h));
}

TEST(DeadlinesTest, DeadlineAtComesFromTheCallersExpression) {
  Harness h;
  std::vector<std::string> asked;
  h.context().evaluate_deadline_at = [&](const Level& level, const Subject& subject) {
    asked.push_back(level.name + ":" + level.deadline.at.source);
    // "two hours before the scheduled publish time"
    return Result<TimePoint>(from_epoch_ms(subject.extra["publish_at_ms"].get<int64_t>()) - 2h);
  };
  Subject subject = testing::post();
  subject.extra["publish_at_ms"] = to_epoch_ms(at(10h));
  h.start(chain_of("  - name: legal\n"
                   "    approvers: [user:erin]\n"
                   "    deadline: { at: \"subject.extra.publish_at_ms - 7200000\" }\n"
                   "    on_deadline: approve\n"),
          subject);
  EXPECT_EQ(asked, (std::vector<std::string>{"legal:subject.extra.publish_at_ms - 7200000"}));
  EXPECT_EQ(due_at(h.state()), at(8h));
  EXPECT_EQ(h.events_of("approval.requested")[0].data["deadline"], format_iso8601(at(8h)));
  h.tick(at(8h));
  EXPECT_EQ(h.state().status, ApprovalStatus::approved);
}

TEST(DeadlinesTest, AFailingDeadlineExpressionFailsTheApprovalWithItsPlace) {
  Harness h;
  h.context().evaluate_deadline_at = [](const Level&, const Subject&) -> Result<TimePoint> {
    return make_error(ErrorCode::invalid_argument, "attempt to index a nil value");
  };
  h.start(chain_of("  - name: legal\n"
                   "    approvers: [user:erin]\n"
                   "    deadline: { at: \"subject.extra.when\" }\n"));
  EXPECT_EQ(h.state().status, ApprovalStatus::failed);
  EXPECT_EQ(h.state().failure->message,
            "test.yaml:5:21: chain[0].deadline.at: the deadline expression failed: attempt to "
            "index a nil value");
  EXPECT_EQ(h.state().failure->details["line"], 5);

  // Without an evaluator the caller made a mistake: start() says so and starts nothing.
  Harness none;
  StartRequest request;
  request.id = "x";
  request.subject = testing::post();
  request.submitter = "user:sam";
  request.chain = chain_of("  - { approvers: [user:erin], deadline: { at: \"1\" } }\n");
  Result<Transition> started = start(request, kT0, none.context());
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().code, ErrorCode::failed_precondition);
}

TEST(DeadlinesTest, DueAtIsTheEarliestOpenDeadline) {
  Harness h;
  h.start(chain_of("  - parallel:\n"
                   "      - { name: legal, approvers: [user:erin], deadline: 1d }\n"
                   "      - { name: brand, approvers: [user:alice], deadline: 3h }\n"
                   "      - { name: copy, approvers: [user:bob] }\n"));
  EXPECT_EQ(due_at(h.state()), at(3h));
  h.decide("user:alice", Verdict::approve, at(1h));
  EXPECT_EQ(due_at(h.state()), at(24h));
  h.decide("user:erin", Verdict::approve, at(2h));
  EXPECT_FALSE(due_at(h.state()).has_value());  // copy has no deadline
}

TEST(DeadlinesTest, ADirectoryFailureChangesNothing) {
  Harness h;
  h.start(chain_of("  - name: legal\n"
                   "    approvers: [user:erin]\n"
                   "    deadline: 1h\n"
                   "    on_deadline: { escalate: [role:manager] }\n"));
  ApprovalState before = h.state();
  h.directory().fail_with(make_error(ErrorCode::unavailable, "store busy", true));
  Result<DeadlineOutcome> failed = on_deadline(h.state(), at(1h), h.context());
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, ErrorCode::unavailable);
  EXPECT_EQ(h.state().to_json(), before.to_json());
  h.directory().recover();
  h.tick(at(1h));
  EXPECT_EQ(h.level_state("legal").escalations, 1);
}

}  // namespace
}  // namespace herald::approvals
