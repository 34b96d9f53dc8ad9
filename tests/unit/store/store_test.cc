// The store helpers every implementation shares: state names, final states and run ids.
#include "engine/store/store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <thread>
#include <vector>

namespace herald::store {
namespace {

TEST(StoreStates, RunStateNamesRoundTrip) {
  for (RunState state : {RunState::queued, RunState::running, RunState::waiting,
                         RunState::succeeded, RunState::failed, RunState::cancelled}) {
    EXPECT_EQ(parse_run_state(to_string(state)), state) << to_string(state);
  }
  EXPECT_EQ(to_string(RunState::waiting), "waiting");
  EXPECT_EQ(parse_run_state("Running"), std::nullopt);
  EXPECT_EQ(parse_run_state(""), std::nullopt);
  EXPECT_EQ(parse_run_state("skipped"), std::nullopt);  // a step state, not a run state
}

TEST(StoreStates, StepStateNamesRoundTrip) {
  for (StepState state :
       {StepState::pending, StepState::ready, StepState::running, StepState::waiting,
        StepState::succeeded, StepState::failed, StepState::skipped, StepState::cancelled}) {
    EXPECT_EQ(parse_step_state(to_string(state)), state) << to_string(state);
  }
  EXPECT_EQ(to_string(StepState::skipped), "skipped");
  EXPECT_EQ(parse_step_state("queued"), std::nullopt);
}

TEST(StoreStates, FinalStates) {
  EXPECT_FALSE(is_final(RunState::queued));
  EXPECT_FALSE(is_final(RunState::running));
  EXPECT_FALSE(is_final(RunState::waiting));
  EXPECT_TRUE(is_final(RunState::succeeded));
  EXPECT_TRUE(is_final(RunState::failed));
  EXPECT_TRUE(is_final(RunState::cancelled));

  EXPECT_FALSE(is_final(StepState::pending));
  EXPECT_FALSE(is_final(StepState::ready));
  EXPECT_FALSE(is_final(StepState::running));
  EXPECT_FALSE(is_final(StepState::waiting));
  EXPECT_TRUE(is_final(StepState::succeeded));
  EXPECT_TRUE(is_final(StepState::failed));
  EXPECT_TRUE(is_final(StepState::skipped));
  EXPECT_TRUE(is_final(StepState::cancelled));
}

TEST(StoreCommit, EmptyOnlyWhenItWritesNothing) {
  EXPECT_TRUE(Commit{}.empty());
  // Each part on its own makes a Commit non-empty.
  std::vector<void (*)(Commit&)> parts = {
      [](Commit& c) { c.insert_runs.emplace_back(); },
      [](Commit& c) { c.update_run.emplace(); },
      [](Commit& c) { c.steps.emplace_back(); },
      [](Commit& c) { c.attempts.emplace_back(); },
      [](Commit& c) { c.add_timers.emplace_back(); },
      [](Commit& c) { c.delete_timers.push_back(1); },
      [](Commit& c) { c.delete_timers_of_runs.emplace_back("run"); },
      [](Commit& c) { c.add_events.emplace_back(); },
      [](Commit& c) { c.consume_events.push_back(1); },
      [](Commit& c) { c.schedule_marks.emplace_back(); },
  };
  for (size_t i = 0; i < parts.size(); ++i) {
    Commit commit;
    parts[i](commit);
    EXPECT_FALSE(commit.empty()) << "part " << i;
  }
}

TEST(StoreCommit, AppendKeepsEveryPartInOrderAndTheLaterRunUpdate) {
  std::vector<void (*)(Commit&)> parts = {
      [](Commit& c) { c.insert_runs.emplace_back(); },
      [](Commit& c) { c.steps.emplace_back(); },
      [](Commit& c) { c.attempts.emplace_back(); },
      [](Commit& c) { c.add_timers.emplace_back(); },
      [](Commit& c) { c.delete_timers.push_back(1); },
      [](Commit& c) { c.delete_timers_of_runs.emplace_back("run"); },
      [](Commit& c) { c.add_events.emplace_back(); },
      [](Commit& c) { c.consume_events.push_back(1); },
      [](Commit& c) { c.schedule_marks.emplace_back(); },
  };
  // Each part survives an append onto an empty Commit.
  for (size_t i = 0; i < parts.size(); ++i) {
    Commit later;
    parts[i](later);
    Commit merged;
    merged.append(std::move(later));
    EXPECT_FALSE(merged.empty()) << "part " << i;
  }

  Commit earlier;
  earlier.update_run.emplace();
  earlier.update_run->state = RunState::running;
  earlier.steps.emplace_back();
  earlier.steps.back().step_id = "a";
  Commit later;
  later.steps.emplace_back();
  later.steps.back().step_id = "b";
  later.add_events.emplace_back();
  earlier.append(std::move(later));
  ASSERT_EQ(earlier.steps.size(), 2u);
  EXPECT_EQ(earlier.steps[0].step_id, "a");
  EXPECT_EQ(earlier.steps[1].step_id, "b");
  EXPECT_EQ(earlier.add_events.size(), 1u);
  ASSERT_TRUE(earlier.update_run);
  EXPECT_EQ(earlier.update_run->state, RunState::running) << "kept: the later one had none";

  Commit final_state;
  final_state.update_run.emplace();
  final_state.update_run->state = RunState::succeeded;
  earlier.append(std::move(final_state));
  EXPECT_EQ(earlier.update_run->state, RunState::succeeded);
}

constexpr std::string_view kCrockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

// The 48-bit millisecond timestamp in the first 10 characters.
int64_t timestamp_of(const std::string& id) {
  int64_t millis = 0;
  for (int i = 0; i < 10; ++i) millis = millis * 32 + static_cast<int64_t>(kCrockford.find(id[i]));
  return millis;
}

TEST(NewRunId, HasTheUlidLayout) {
  auto before =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
          .count();
  std::string id = new_run_id();
  auto after =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
          .count();
  ASSERT_EQ(id.size(), 26u);
  for (char c : id) EXPECT_NE(kCrockford.find(c), std::string_view::npos) << id;
  EXPECT_LE(id[0], '7') << "the first character holds only 3 bits";
  EXPECT_GE(timestamp_of(id), before);
  EXPECT_LE(timestamp_of(id), after);
}

TEST(NewRunId, StrictlyIncreasesWithinAMillisecond) {
  std::vector<std::string> ids;
  for (int i = 0; i < 100'000; ++i) ids.push_back(new_run_id());
  for (size_t i = 1; i < ids.size(); ++i) {
    ASSERT_LT(ids[i - 1], ids[i]) << "at " << i;
  }
  // Many of them shared a millisecond, so the increment path was taken.
  EXPECT_LT(timestamp_of(ids.back()) - timestamp_of(ids.front()), 100'000);
}

TEST(NewRunId, UniqueAndOrderedAcrossThreads) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20'000;
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&ids, t] {
      ids[t].reserve(kPerThread);
      for (int i = 0; i < kPerThread; ++i) ids[t].push_back(new_run_id());
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<std::string> all;
  for (const auto& list : ids) {
    EXPECT_TRUE(std::is_sorted(list.begin(), list.end()));
    EXPECT_EQ(std::adjacent_find(list.begin(), list.end()), list.end());
    all.insert(list.begin(), list.end());
  }
  EXPECT_EQ(all.size(), size_t{kThreads * kPerThread});
}

TEST(NewRunId, LaterIdsSortAfterEarlierOnes) {
  std::string first = new_run_id();
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  std::string second = new_run_id();
  EXPECT_LT(first, second);
  EXPECT_GT(timestamp_of(second), timestamp_of(first));
}

}  // namespace
}  // namespace herald::store
