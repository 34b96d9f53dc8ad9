// The store conformance suite, leases part (see store_conformance.h): claiming runs, fencing
// tokens, renewal and release, through the Store interface only, so every implementation runs
// them. These are what lets several engines share one store without two of them driving a run.
#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/store/store_conformance.h"

namespace herald::store::testing {

namespace {

constexpr int64_t kLease = 30'000;

ClaimRequest claim_by(const std::string& owner, int64_t now, int limit = 100) {
  ClaimRequest request;
  request.owner = owner;
  request.now = at(now);
  request.lease_until = at(now + kLease);
  request.limit = limit;
  return request;
}

std::map<std::string, int64_t> by_run(const std::vector<RunLease>& leases) {
  std::map<std::string, int64_t> tokens;
  for (const auto& lease : leases) tokens[lease.run_id] = lease.token;
  return tokens;
}

StepRecord step_of(const std::string& run_id, const std::string& step_id) {
  StepRecord step;
  step.run_id = run_id;
  step.step_id = step_id;
  step.state = StepState::succeeded;
  step.attempt = 1;
  step.idempotency_key = run_id + "/" + step_id;
  return step;
}

TimerRecord timer_of(const std::string& run_id, int64_t due) {
  TimerRecord timer;
  timer.run_id = run_id;
  timer.step_id = "pause";
  timer.kind = "wait";
  timer.due_at = at(due);
  return timer;
}

}  // namespace

TEST_P(StoreConformance, ClaimsTakeUnleasedUnfinishedRunsOnceWithGrowingTokens) {
  insert_run("run-1");
  insert_run("run-2", "wf", RunState::running);
  insert_run("run-3");
  insert_run("done", "wf", RunState::succeeded);
  insert_run("asleep", "wf", RunState::waiting);  // no timer: nothing to do

  auto first = value_of(store().claim_runs(claim_by("engine-a", kT0)));
  EXPECT_EQ(by_run(first),
            (std::map<std::string, int64_t>{{"run-1", 1}, {"run-2", 1}, {"run-3", 1}}));

  // Live leases are nobody else's to take, and not the owner's either: it holds them already.
  EXPECT_TRUE(value_of(store().claim_runs(claim_by("engine-b", kT0 + 10))).empty());
  EXPECT_TRUE(value_of(store().claim_runs(claim_by("engine-a", kT0 + 10))).empty());
  EXPECT_TRUE(value_of(store().claim_runs(claim_by("engine-b", kT0 + kLease - 1))).empty());

  // Once they end, another engine takes them over with larger tokens.
  auto second = value_of(store().claim_runs(claim_by("engine-b", kT0 + kLease)));
  EXPECT_EQ(by_run(second),
            (std::map<std::string, int64_t>{{"run-1", 2}, {"run-2", 2}, {"run-3", 2}}));
}

TEST_P(StoreConformance, ClaimsHonourTheirLimit) {
  for (int i = 0; i < 5; ++i) insert_run("run-" + std::to_string(i));
  EXPECT_TRUE(value_of(store().claim_runs(claim_by("engine-a", kT0, 0))).empty());
  EXPECT_EQ(value_of(store().claim_runs(claim_by("engine-a", kT0, 2))).size(), 2u);
  EXPECT_EQ(value_of(store().claim_runs(claim_by("engine-b", kT0, 2))).size(), 2u);
  EXPECT_EQ(value_of(store().claim_runs(claim_by("engine-c", kT0, 2))).size(), 1u);
}

TEST_P(StoreConformance, AWaitingRunIsClaimedOnceOneOfItsTimersIsDue) {
  insert_run("sleeper", "wf", RunState::waiting);
  Commit timer;
  timer.add_timers = {timer_of("sleeper", kT0 + 100), timer_of("sleeper", kT0 + 200)};
  ASSERT_OK(store().commit(timer));

  EXPECT_TRUE(value_of(store().claim_runs(claim_by("engine-a", kT0 + 99))).empty());
  auto claimed = value_of(store().claim_runs(claim_by("engine-a", kT0 + 200)));
  EXPECT_EQ(by_run(claimed), (std::map<std::string, int64_t>{{"sleeper", 1}}));  // once
  EXPECT_TRUE(value_of(store().claim_runs(claim_by("engine-b", kT0 + 200))).empty());
}

TEST_P(StoreConformance, ACommitUnderALostLeaseIsAbortedAndWritesNothing) {
  insert_run("run-1");
  auto a = value_of(store().claim_runs(claim_by("engine-a", kT0)));
  ASSERT_EQ(a.size(), 1u);
  // engine-a stalls past its lease; engine-b takes the run over.
  auto b = value_of(store().claim_runs(claim_by("engine-b", kT0 + kLease)));
  ASSERT_EQ(b.size(), 1u);
  EXPECT_GT(b[0].token, a[0].token);

  Commit stale;
  stale.fence = a[0];
  stale.steps = {step_of("run-1", "late")};
  stale.add_timers = {timer_of("run-1", kT0)};
  auto refused = store().commit(stale);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::aborted);
  EXPECT_NE(refused.error().message.find("run-1"), std::string::npos) << refused.error().message;
  EXPECT_TRUE(value_of(store().get_steps("run-1")).empty());
  EXPECT_TRUE(value_of(store().timers_of_run("run-1")).empty());

  Commit current;
  current.fence = b[0];
  current.steps = {step_of("run-1", "fresh")};
  ASSERT_OK(store().commit(current));
  EXPECT_EQ(value_of(store().get_steps("run-1")).size(), 1u);

  Commit unknown;
  unknown.fence = RunLease{"no-such-run", 1};
  EXPECT_CODE(store().commit(unknown), ErrorCode::not_found);
}

TEST_P(StoreConformance, ReleasingInACommitFreesTheRunAtOnce) {
  insert_run("run-1");
  auto a = value_of(store().claim_runs(claim_by("engine-a", kT0)));
  ASSERT_EQ(a.size(), 1u);

  Commit release;
  release.fence = a[0];
  release.release = true;
  RunRecord run = value_of(store().get_run("run-1"));
  run.state = RunState::running;
  release.update_run = run;
  ASSERT_OK(store().commit(release));

  // Free before its end: another engine claims it now, and the old token no longer fences.
  auto b = value_of(store().claim_runs(claim_by("engine-b", kT0 + 1)));
  ASSERT_EQ(b.size(), 1u);
  EXPECT_GT(b[0].token, a[0].token);
  Commit stale;
  stale.fence = a[0];
  stale.steps = {step_of("run-1", "late")};
  EXPECT_CODE(store().commit(stale), ErrorCode::aborted);

  Commit no_fence;
  no_fence.release = true;
  EXPECT_CODE(store().commit(no_fence), ErrorCode::invalid_argument);
}

TEST_P(StoreConformance, RunsInsertedUnderALeaseBelongToTheirStarter) {
  const int64_t version = version_id();
  RunRecord run;
  run.id = "started";
  run.workflow_id = "wf";
  run.workflow_version_id = version;
  run.created_at = run.updated_at = at(kT0);
  Commit start;
  start.insert_runs = {run};
  start.lease_inserted = LeaseGrant{"engine-a", at(kT0 + kLease)};
  ASSERT_OK(store().commit(start));

  EXPECT_TRUE(value_of(store().claim_runs(claim_by("engine-b", kT0 + 1))).empty());
  Commit step;
  step.fence = RunLease{"started", 1};
  step.steps = {step_of("started", "first")};
  ASSERT_OK(store().commit(step));

  Commit bad;
  bad.lease_inserted = LeaseGrant{"", at(kT0)};
  run.id = "other";
  bad.insert_runs = {run};
  EXPECT_CODE(store().commit(bad), ErrorCode::invalid_argument);
  EXPECT_CODE(store().get_run("other"), ErrorCode::not_found);
}

TEST_P(StoreConformance, RenewingKeepsLeasesAndReportsTheLostOnes) {
  insert_run("kept");
  insert_run("lost");
  auto a = by_run(value_of(store().claim_runs(claim_by("engine-a", kT0))));
  ASSERT_EQ(a.size(), 2u);

  // "lost" is taken over after its end; "kept" ended too, but nobody claimed it: it is renewed.
  ClaimRequest only_lost = claim_by("engine-b", kT0 + kLease);
  only_lost.run_ids = {"lost"};
  ASSERT_EQ(value_of(store().claim_runs(only_lost)).size(), 1u);

  auto gone = value_of(store().renew_leases(
      {{"kept", a["kept"]}, {"lost", a["lost"]}, {"no-such-run", 1}}, at(kT0 + 3 * kLease)));
  std::sort(gone.begin(), gone.end());
  EXPECT_EQ(gone, (std::vector<std::string>{"lost", "no-such-run"}));
  // Renewed to its new end: once engine-b's lease on "lost" ends, only "lost" can be claimed.
  EXPECT_TRUE(value_of(store().claim_runs(claim_by("engine-c", kT0 + 2 * kLease - 1))).empty());
  auto later = value_of(store().claim_runs(claim_by("engine-c", kT0 + 3 * kLease - 1)));
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].run_id, "lost");
  EXPECT_TRUE(value_of(store().renew_leases({}, at(kT0))).empty());
}

TEST_P(StoreConformance, ReleasedLeasesAreFreeAndCannotBeRenewed) {
  insert_run("run-1");
  insert_run("run-2");
  auto a = value_of(store().claim_runs(claim_by("engine-a", kT0)));
  ASSERT_EQ(a.size(), 2u);
  auto b_token = a[1];
  b_token.token += 1;  // a token engine-a never held: left alone
  ASSERT_OK(store().release_leases({a[0], b_token}));
  auto b = value_of(store().claim_runs(claim_by("engine-b", kT0 + 1)));
  EXPECT_EQ(by_run(b), (std::map<std::string, int64_t>{{a[0].run_id, 2}}));
  ASSERT_OK(store().release_leases({a[0]}));  // no longer held: a no-op
  EXPECT_EQ(value_of(store().renew_leases({a[0]}, at(kT0 + kLease))),
            std::vector<std::string>{a[0].run_id});

  ASSERT_OK(store().release_leases({b[0]}));
  EXPECT_EQ(value_of(store().renew_leases({b[0]}, at(kT0 + kLease))),
            std::vector<std::string>{b[0].run_id});
  ASSERT_OK(store().release_leases({}));
}

TEST_P(StoreConformance, ClaimingNamedRunsTakesThemInAnyState) {
  insert_run("mine");
  insert_run("theirs");
  insert_run("asleep", "wf", RunState::waiting);
  insert_run("done", "wf", RunState::failed);
  ClaimRequest theirs = claim_by("engine-b", kT0);
  theirs.run_ids = {"theirs"};
  ASSERT_EQ(value_of(store().claim_runs(theirs)).size(), 1u);
  ClaimRequest mine = claim_by("engine-a", kT0);
  mine.run_ids = {"mine"};
  auto first = value_of(store().claim_runs(mine));
  ASSERT_EQ(first.size(), 1u);

  ClaimRequest named = claim_by("engine-a", kT0 + 10);
  named.run_ids = {"mine", "theirs", "asleep", "done", "no-such-run"};
  auto claimed = by_run(value_of(store().claim_runs(named)));
  // Its own lease keeps the token (and gets the new end); the other engine's live lease is not
  // taken; a waiting run is, timer or not, and so is a failed one (to be retried).
  EXPECT_EQ(claimed,
            (std::map<std::string, int64_t>{{"mine", first[0].token}, {"asleep", 1}, {"done", 1}}));
  EXPECT_TRUE(value_of(store().claim_runs(claim_by("engine-c", kT0 + kLease + 5))).size() == 1u)
      << "only 'theirs' has ended by then; 'mine' was extended";
}

TEST_P(StoreConformance, ATakeOverClaimTakesLiveLeasesWithNewTokens) {
  insert_run("held");
  insert_run("asleep", "wf", RunState::waiting);
  Commit timer;
  timer.add_timers = {timer_of("asleep", kT0)};
  ASSERT_OK(store().commit(timer));
  auto dead = by_run(value_of(store().claim_runs(claim_by("crashed", kT0))));
  ASSERT_EQ(dead.size(), 2u);

  ClaimRequest resume = claim_by("resume", kT0 + 1);
  resume.take_over = true;
  auto taken = by_run(value_of(store().claim_runs(resume)));
  EXPECT_EQ(taken, (std::map<std::string, int64_t>{{"held", 2}, {"asleep", 2}}));
  Commit late;
  late.fence = RunLease{"held", dead["held"]};
  late.steps = {step_of("held", "late")};
  EXPECT_CODE(store().commit(late), ErrorCode::aborted);
}

// Engines claiming at the same moment never get the same run, and between them take every one.
TEST_P(StoreConformance, ConcurrentClaimsShareTheRunsWithoutOverlap) {
  constexpr int kRuns = 60;
  for (int i = 0; i < kRuns; ++i) insert_run("run-" + std::to_string(100 + i));
  std::mutex mu;
  std::vector<std::string> taken;
  std::vector<std::string> errors;
  std::vector<std::thread> engines;
  for (int e = 0; e < 4; ++e) {
    engines.emplace_back([&, e] {
      while (true) {
        auto claimed = store().claim_runs(claim_by("engine-" + std::to_string(e), kT0, 4));
        std::lock_guard lock(mu);
        if (!claimed.ok()) {
          errors.push_back(claimed.error().message);
          return;
        }
        if (claimed->empty()) return;
        for (const auto& lease : *claimed) taken.push_back(lease.run_id);
      }
    });
  }
  for (auto& engine : engines) engine.join();
  EXPECT_TRUE(errors.empty()) << errors.front();
  std::set<std::string> distinct(taken.begin(), taken.end());
  EXPECT_EQ(taken.size(), static_cast<size_t>(kRuns));
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kRuns));
}

}  // namespace herald::store::testing
