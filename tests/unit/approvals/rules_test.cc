// Who may decide: resolution of approver entries, one person counted once, no self-approval
// unless allowed, delegation ("bob for alice"), external approvers through links only, levels
// that resolve to nobody, and levels skipped by `when:`.
#include <gtest/gtest.h>

#include "tests/unit/approvals/approvals_test_util.h"

namespace herald::approvals {
namespace {

using namespace std::chrono_literals;
using testing::ask;
using testing::at;
using testing::chain_of;
using testing::FakeDirectory;
using testing::Harness;
using testing::kT0;
using testing::notified;
using testing::standard_directory;

std::vector<ApproverRef> refs(std::vector<std::string> texts) {
  std::vector<ApproverRef> out;
  for (const auto& text : texts) out.push_back(*ApproverRef::parse(text));
  return out;
}

TEST(ResolutionTest, EachPersonCountsOnceWhateverMatchedThem) {
  FakeDirectory directory = standard_directory();
  Result<Resolution> resolved = resolve_approvers(
      refs({"user:alice", "role:editor", "group:brand-team", "user:alice", "Ann@Example.com",
            "email:ann@example.com"}),
      directory, "user:nobody", false);
  ASSERT_TRUE(resolved.ok());
  EXPECT_EQ(resolved->eligible,
            (std::vector<std::string>{"email:ann@example.com", "user:alice", "user:bob",
                                      "user:carol", "user:dan", "user:sam"}));
  EXPECT_TRUE(resolved->notes.empty());
}

TEST(ResolutionTest, TheSubmitterIsLeftOutUnlessSelfApprovalIsAllowed) {
  FakeDirectory directory = standard_directory();
  Result<Resolution> refused = resolve_approvers(refs({"role:editor"}), directory, "user:sam", false);
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(std::count(refused->eligible.begin(), refused->eligible.end(), "user:sam"), 0);
  ASSERT_EQ(refused->notes.size(), 1u);
  EXPECT_EQ(refused->notes[0],
            "user:sam submitted this and may not approve it (allow_self_approval is false)");
  Result<Resolution> allowed = resolve_approvers(refs({"role:editor"}), directory, "user:sam", true);
  ASSERT_TRUE(allowed.ok());
  EXPECT_EQ(std::count(allowed->eligible.begin(), allowed->eligible.end(), "user:sam"), 1);
}

TEST(ResolutionTest, EntriesThatMatchNobodyAreNoted) {
  FakeDirectory directory = standard_directory();
  directory.group("empty", {});
  Result<Resolution> resolved = resolve_approvers(
      refs({"user:ghost", "role:astronaut", "group:missing", "group:empty", "user:alice"}),
      directory, "user:sam", false);
  ASSERT_TRUE(resolved.ok());
  EXPECT_EQ(resolved->eligible, (std::vector<std::string>{"user:alice"}));
  EXPECT_EQ(resolved->notes,
            (std::vector<std::string>{"user:ghost does not exist", "role:astronaut has no members",
                                      "group:missing does not exist", "group:empty has no members"}));
}

TEST(ResolutionTest, DirectoryErrorsAreReturned) {
  FakeDirectory directory = standard_directory();
  directory.fail_with(make_error(ErrorCode::unavailable, "database is locked", true));
  Result<Resolution> resolved = resolve_approvers(refs({"role:editor"}), directory, "user:sam", false);
  ASSERT_FALSE(resolved.ok());
  EXPECT_EQ(resolved.error().message, "database is locked");
}

TEST(RulesTest, DuplicateEntriesCountOnceInModeAll) {
  Harness h;
  // alice is listed by name, by role and by group: she is still one of the people who must
  // approve, and her one approval is enough for her.
  h.start(chain_of("  - name: brand\n"
                   "    approvers: [user:alice, role:editor, group:brand-team, user:alice]\n"
                   "    mode: all\n"));
  EXPECT_EQ(h.level_state("brand").eligible,
            (std::vector<std::string>{"user:alice", "user:bob", "user:carol", "user:dan"}));
  EXPECT_EQ(notified(h.events_of("approval.requested")[0]).size(), 4u);
  for (std::string who : {"user:alice", "user:bob", "user:carol"}) {
    EXPECT_EQ(h.decide(who, Verdict::approve, at(1h)).status, DecideStatus::recorded);
  }
  EXPECT_EQ(h.level("brand"), LevelStatus::open);
  EXPECT_EQ(h.decide("user:alice", Verdict::approve, at(2h)).status, DecideStatus::duplicate);
  EXPECT_EQ(h.decide("user:dan", Verdict::approve, at(2h)).status, DecideStatus::recorded);
  EXPECT_EQ(h.state().status, ApprovalStatus::approved);
}

TEST(RulesTest, SelfApprovalIsRefusedByDefault) {
  Harness h;
  h.start(chain_of("  - { name: editors, approvers: [role:editor, user:sam] }\n"));
  DecideOutcome own = h.decide("user:sam", Verdict::approve, at(1h));
  EXPECT_EQ(own.status, DecideStatus::not_eligible);
  EXPECT_NE(own.message.find("user:sam submitted this and may not approve it"), std::string::npos)
      << own.message;
  EXPECT_EQ(h.level("editors"), LevelStatus::open);
}

TEST(RulesTest, SelfApprovalWhenThePolicyAllowsIt) {
  Harness h;
  h.start(chain_of("  - { name: editors, approvers: [user:sam] }\n", "allow_self_approval: true\n"));
  EXPECT_EQ(h.decide("user:sam", Verdict::approve, at(1h)).status, DecideStatus::recorded);
  EXPECT_EQ(h.state().status, ApprovalStatus::approved);
}

TEST(RulesTest, OnlyTheSubmitterAsApproverFailsAtOnceWithAClearError) {
  Harness h;
  h.start(chain_of("  - { name: editors, approvers: [user:sam] }\n"));
  EXPECT_EQ(h.state().status, ApprovalStatus::failed);
  EXPECT_EQ(h.state().failure->code, ErrorCode::failed_precondition);
  EXPECT_EQ(h.state().failure->message,
            "level 'editors' cannot be decided: nobody can approve it; user:sam submitted this "
            "and may not approve it (allow_self_approval is false) (approvers: user:sam)");
  ASSERT_EQ(h.events_of("approval.failed").size(), 1u);
  EXPECT_EQ(h.level("editors"), LevelStatus::cancelled);
}

TEST(RulesTest, UnresolvableApproversFailTheApprovalInsteadOfWaitingForever) {
  Harness h;
  h.start(chain_of("  - { name: first, approvers: [user:alice] }\n"
                   "  - { name: legal, approvers: [role:compliance, user:ghost] }\n"));
  h.decide("user:alice", Verdict::approve, at(1h));
  EXPECT_EQ(h.state().status, ApprovalStatus::failed);
  EXPECT_EQ(h.state().failure->message,
            "level 'legal' cannot be decided: nobody can approve it; role:compliance has no "
            "members; user:ghost does not exist (approvers: role:compliance, user:ghost)");
  Result<ApprovalResult> result = approvals::result(h.state());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message, h.state().failure->message);
}

TEST(RulesTest, AQuorumLargerThanTheResolvedPeopleFails) {
  Harness h;
  h.start(chain_of("  - { name: legal, approvers: [role:legal], mode: { quorum: 3 } }\n"));
  EXPECT_EQ(h.state().status, ApprovalStatus::failed);
  EXPECT_EQ(h.state().failure->message,
            "level 'legal' cannot be decided: it needs 3 approvals but only 2 people can approve "
            "(user:erin, user:frank) (approvers: role:legal)");
}

TEST(RulesTest, ADelegateDecidesForThePersonWhoDelegated) {
  FakeDirectory directory = standard_directory();
  // erin is away on the first day and has handed her approvals to bob.
  directory.delegation("erin", "bob", kT0 - 1h, kT0 + 24h);
  Harness h(directory);
  h.start(chain_of("  - { name: legal, approvers: [user:erin, user:frank], mode: all }\n"));
  // The delegate is told, with whom he stands in for.
  EXPECT_EQ(notified(h.events_of("approval.requested")[0]),
            (std::vector<std::string>{"user:erin", "user:bob for user:erin", "user:frank"}));
  DecideOutcome bob = h.decide("user:bob", Verdict::approve, at(2h), ask().comment("for Erin"));
  ASSERT_EQ(bob.status, DecideStatus::recorded) << bob.message;
  EXPECT_EQ(bob.decision->actor, "user:bob");
  EXPECT_EQ(bob.decision->on_behalf_of, "user:erin");
  EXPECT_TRUE(bob.decision->delegated());
  EXPECT_EQ(h.state().history.back().details["on_behalf_of"], "user:erin");
  // erin's vote is cast: she cannot vote again, nor can bob.
  DecideOutcome erin = h.decide("user:erin", Verdict::reject, at(3h), ask().comment("no"));
  EXPECT_EQ(erin.status, DecideStatus::already_decided);
  EXPECT_EQ(erin.message,
            "user:bob for user:erin already decided approve on level 'legal'; a decision cannot "
            "be changed");
  EXPECT_EQ(h.decide("user:bob", Verdict::approve, at(3h)).status, DecideStatus::duplicate);
  h.decide("user:frank", Verdict::approve, at(4h));
  Result<ApprovalResult> result = approvals::result(h.state());
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->comments[0].by, "user:bob");
  EXPECT_EQ(result->comments[0].on_behalf_of, "user:erin");
}

TEST(RulesTest, DelegationCountsOnlyDuringItsPeriod) {
  FakeDirectory directory = standard_directory();
  directory.delegation("erin", "bob", kT0, kT0 + 2h);
  Harness h(directory);
  h.start(chain_of("  - { name: legal, approvers: [user:erin] }\n"));
  DecideOutcome late = h.decide("user:bob", Verdict::approve, at(3h));
  EXPECT_EQ(late.status, DecideStatus::not_eligible);
  EXPECT_EQ(late.message, "user:bob is not an approver of level 'legal'");
  EXPECT_EQ(h.decide("user:bob", Verdict::approve, at(1h)).status, DecideStatus::recorded);
}

TEST(RulesTest, AnApproverWhoIsAlsoADelegateSaysForWhom) {
  FakeDirectory directory = standard_directory();
  directory.delegation("carol", "alice", kT0, kT0 + 48h);
  Harness h(directory);
  h.start(chain_of("  - { name: brand, approvers: [group:brand-team], mode: all }\n"));
  Result<std::vector<Choice>> choices =
      choices_for(h.state(), Actor("user:alice"), at(1h), h.directory());
  ASSERT_TRUE(choices.ok());
  ASSERT_EQ(choices->size(), 2u);
  EXPECT_EQ((*choices)[0].on_behalf_of, "user:alice");
  EXPECT_EQ((*choices)[1].on_behalf_of, "user:carol");
  // Without on_behalf_of she decides for herself...
  EXPECT_EQ(h.decide("user:alice", Verdict::approve, at(1h)).decision->on_behalf_of, "user:alice");
  // ... a second approve is her own again, a duplicate, not a vote for carol ...
  EXPECT_EQ(h.decide("user:alice", Verdict::approve, at(1h)).status, DecideStatus::duplicate);
  // ... and for carol she says so.
  DecideOutcome for_carol =
      h.decide("user:alice", Verdict::approve, at(1h), ask().on_behalf_of("user:carol"));
  ASSERT_EQ(for_carol.status, DecideStatus::recorded) << for_carol.message;
  EXPECT_EQ(for_carol.decision->on_behalf_of, "user:carol");
  // carol delegated to alice, not to bob.
  EXPECT_EQ(h.decide("user:bob", Verdict::approve, at(1h), ask().on_behalf_of("user:carol")).status,
            DecideStatus::not_eligible);
  DecideOutcome not_delegated =
      h.decide("user:dan", Verdict::approve, at(1h), ask().on_behalf_of("user:bob"));
  EXPECT_EQ(not_delegated.status, DecideStatus::not_eligible);
  EXPECT_EQ(not_delegated.message, "user:bob has not delegated to user:dan at this time");
}

TEST(RulesTest, ADelegateMayNotApproveTheirOwnSubmission) {
  FakeDirectory directory = standard_directory();
  directory.delegation("erin", "sam", kT0, kT0 + 48h);
  Harness h(directory);
  h.start(chain_of("  - { name: legal, approvers: [user:erin] }\n"));  // submitted by sam
  DecideOutcome own = h.decide("user:sam", Verdict::approve, at(1h));
  EXPECT_EQ(own.status, DecideStatus::not_eligible);
  DecideOutcome explicit_for = h.decide("user:sam", Verdict::approve, at(1h),
                                        ask().on_behalf_of("user:erin"));
  EXPECT_EQ(explicit_for.status, DecideStatus::not_eligible);
  EXPECT_EQ(explicit_for.message,
            "user:sam submitted this and may not approve it, also not for user:erin");
}

TEST(RulesTest, ExternalApproversDecideThroughLinksOnly) {
  Harness h;
  h.start(chain_of("  - { name: client, approvers: [client@example.com] }\n"));
  EXPECT_EQ(h.level_state("client").eligible,
            (std::vector<std::string>{"email:client@example.com"}));
  DecideOutcome app = h.decide("email:client@example.com", Verdict::approve, at(1h));
  EXPECT_EQ(app.status, DecideStatus::not_eligible);
  EXPECT_EQ(app.message,
            "external approvers (email:client@example.com) decide through their signed link");
  DecideOutcome link = h.decide("email:client@example.com", Verdict::approve, at(1h),
                                ask().level("client"), Channel::link);
  EXPECT_EQ(link.status, DecideStatus::recorded);
  EXPECT_EQ(link.decision->channel, Channel::link);
}

TEST(RulesTest, LevelsWhoseWhenIsFalseAreSkipped) {
  Harness h;
  std::vector<std::string> asked;
  h.context().evaluate_when = [&](const Level& level, const Subject& subject) {
    asked.push_back(level.name);
    return Result<bool>(subject.text.find("EUR") != std::string::npos);
  };
  Chain chain = chain_of("  - { name: editor, approvers: [user:alice] }\n"
                         "  - name: legal\n"
                         "    approvers: [role:legal]\n"
                         "    when: 'string.find(subject.text, \"EUR\") ~= nil'\n"
                         "  - { name: final, approvers: [user:gina] }\n");
  h.start(chain, testing::post("Spring is here!"));
  EXPECT_EQ(asked, (std::vector<std::string>{"legal"}));
  EXPECT_EQ(h.level("legal"), LevelStatus::skipped);
  h.decide("user:alice", Verdict::approve, at(1h));
  EXPECT_EQ(h.level("final"), LevelStatus::open);  // legal passed over
  h.decide("user:gina", Verdict::approve, at(2h));
  EXPECT_EQ(h.state().status, ApprovalStatus::approved);

  Harness priced;
  priced.context().evaluate_when = h.context().evaluate_when;
  priced.start(chain, testing::post("Oat latte 4 EUR"));
  priced.decide("user:alice", Verdict::approve, at(1h));
  EXPECT_EQ(priced.level("legal"), LevelStatus::open);
}

TEST(RulesTest, AChainWhereNothingAppliesIsApprovedAtOnce) {
  Harness h;
  h.context().evaluate_when = [](const Level&, const Subject&) { return Result<bool>(false); };
  h.start(chain_of("  - { name: legal, approvers: [role:legal], when: 'false' }\n"));
  EXPECT_EQ(h.state().status, ApprovalStatus::approved);
  EXPECT_EQ(h.level("legal"), LevelStatus::skipped);
  ASSERT_EQ(h.events_of("approval.decided").size(), 1u);
}

TEST(RulesTest, AFailingWhenFailsTheApprovalAtItsLine) {
  Harness h;
  h.context().evaluate_when = [](const Level&, const Subject&) -> Result<bool> {
    return make_error(ErrorCode::invalid_argument, "attempt to compare nil with number");
  };
  h.start(chain_of("  - name: legal\n"
                   "    approvers: [role:legal]\n"
                   "    when: subject.extra.price > 10\n"));
  EXPECT_EQ(h.state().status, ApprovalStatus::failed);
  EXPECT_EQ(h.state().failure->message,
            "test.yaml:5:11: chain[0].when: the when expression failed: attempt to compare nil "
            "with number");
}

TEST(RulesTest, StartRefusesWhatTheCallerGotWrong) {
  Harness h;
  StartRequest request;
  request.id = "x";
  request.subject = testing::post();
  request.submitter = "sam";  // not a principal
  request.chain = chain_of("  - { approvers: [user:alice] }\n");
  Result<Transition> started = start(request, kT0, h.context());
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().code, ErrorCode::invalid_argument);

  request.submitter = "user:sam";
  h.directory().fail_with(make_error(ErrorCode::unavailable, "store busy", true));
  started = start(request, kT0, h.context());
  ASSERT_FALSE(started.ok());
  EXPECT_TRUE(started.error().retryable);
}

}  // namespace
}  // namespace herald::approvals
