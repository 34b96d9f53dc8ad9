// The scheduler against a real SQLite store and a real engine, on a clock the tests move by hand:
// fire times in a zone across daylight-saving changes, no double fire, catch-up after a restart
// under each policy, one-shot times, schedules replaced, a fire whose run cannot start, and the
// thread that start() runs.
#include "engine/server/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/common/time.h"
#include "engine/steps/builtins.h"
#include "engine/triggers/schedule_trigger.h"
#include "tests/support/temp_dir.h"

namespace herald::server {
namespace {

using namespace std::chrono_literals;
using store::TimePoint;

const std::string kWorkspace = "acme";

TimePoint at(std::string_view text) {
  auto time = parse_iso8601(text);
  EXPECT_TRUE(time.ok()) << text;
  return time.ok() ? *time : TimePoint{};
}

// What Scheduler reads as now: set and moved by the test, read from any thread.
class FakeClock {
 public:
  TimePoint now() const { return TimePoint(TimePoint::duration(ticks_.load())); }
  void set(TimePoint time) { ticks_.store(time.time_since_epoch().count()); }
  void advance(TimePoint::duration by) { set(now() + by); }

 private:
  std::atomic<TimePoint::duration::rep> ticks_{0};
};

// A workflow with a schedule trigger (after a manual one when `index` is 1) and one quick step
// that shows it sees the trigger. `extra` goes before the steps (inputs, ...).
std::string workflow_source(const std::string& id, const Json& schedule, int index = 0,
                            const std::string& extra = "", const std::string& note = "fired") {
  std::string source = "id: " + id + "\ntriggers:\n";
  if (index == 1) source += "  - manual: {}\n";
  source += "  - schedule: " + schedule.dump() + "\n";
  source += extra;
  source += "steps:\n"
            "  - id: note\n"
            "    uses: set\n"
            "    with: { " + note + ": \"{{ trigger.scheduled_at }}\" }\n";
  return source;
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = store::open_store("sqlite:" + (dir_ / "herald.db").string());
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    store_ = std::move(opened).value();
    start_engine();
  }

  void TearDown() override {
    scheduler_.reset();
    if (engine_) idle();
    engine_.reset();
    store_.reset();
  }

  void start_engine() {
    runtime::EngineOptions options;
    options.worker_threads = 2;
    options.random_seed = 7;
    engine_ = std::make_unique<runtime::Engine>(*store_, registry_, options);
  }

  Scheduler& scheduler() {
    if (!scheduler_) {
      scheduler_ = std::make_unique<Scheduler>(*store_, *engine_, [this] { return clock_.now(); });
    }
    return *scheduler_;
  }

  // What a restart of `herald serve` does to the scheduler: everything in memory is gone, the
  // store stays.
  void restart() {
    scheduler_.reset();
    idle();
    engine_.reset();
    start_engine();
  }

  void idle() {
    auto status = engine_->wait_until_idle(10s);
    ASSERT_TRUE(status.ok()) << status.error().message;
  }

  int64_t deploy(const std::string& id, const std::string& source) {
    auto deployed = store_->deploy_workflow(kWorkspace, id, source, id + ".yaml", "test");
    EXPECT_TRUE(deployed.ok()) << (deployed.ok() ? "" : deployed.error().message);
    return deployed.ok() ? deployed->version.id : 0;
  }

  ScheduledWorkflow schedule(const std::string& id, int64_t version, const Json& config,
                             TimePoint counting_from, int index = 0) {
    auto trigger = triggers::parse_schedule_trigger(config);
    EXPECT_TRUE(trigger.ok()) << (trigger.ok() ? "" : trigger.error().message);
    ScheduledWorkflow scheduled;
    scheduled.workspace_id = kWorkspace;
    scheduled.workflow_id = id;
    scheduled.version_id = version;
    scheduled.trigger_index = index;
    if (trigger.ok()) scheduled.trigger = *trigger;
    scheduled.config = config;
    scheduled.counting_from = counting_from;
    return scheduled;
  }

  // Deploys `id` with the schedule and returns it as the scheduler is given it, counting from
  // the clock's now.
  ScheduledWorkflow deploy_scheduled(const std::string& id, const Json& config, int index = 0) {
    int64_t version = deploy(id, workflow_source(id, config, index));
    return schedule(id, version, config, clock_.now(), index);
  }

  // The runs of a workflow, oldest first.
  std::vector<store::RunRecord> runs(const std::string& workflow) {
    store::RunFilter filter;
    filter.workspace_id = kWorkspace;
    filter.workflow_id = workflow;
    filter.limit = 1000;
    auto listed = store_->list_runs(filter);
    EXPECT_TRUE(listed.ok()) << (listed.ok() ? "" : listed.error().message);
    if (!listed.ok()) return {};
    std::vector<store::RunRecord> result = std::move(listed).value();
    std::reverse(result.begin(), result.end());
    return result;
  }

  // trigger.scheduled_at of each run of the workflow, oldest first.
  std::vector<std::string> scheduled_at(const std::string& workflow) {
    std::vector<std::string> times;
    for (const auto& run : runs(workflow)) {
      times.push_back(run.trigger.value("scheduled_at", std::string("(none)")));
    }
    return times;
  }

  std::optional<TimePoint> mark_of(const std::string& workflow, int index = 0) {
    auto marks = store_->schedule_marks();
    EXPECT_TRUE(marks.ok()) << (marks.ok() ? "" : marks.error().message);
    if (!marks.ok()) return std::nullopt;
    for (const auto& mark : *marks) {
      if (mark.workspace_id == kWorkspace && mark.workflow_id == workflow &&
          mark.trigger_index == index) {
        return mark.last_fire;
      }
    }
    return std::nullopt;
  }

  // Fires hourly at :00 UTC under `catch_up`: the first tick after 09:30 (the deployment) fires
  // 10:00, which becomes the mark; Herald stops at 10:20 and is back three hours later, at
  // 13:20, so 11:00, 12:00 and 13:00 were missed. Returns the runs started by the catch-up.
  std::vector<store::RunRecord> runs_after_downtime(const Json& config) {
    clock_.set(at("2026-05-04T09:30:00Z"));
    auto scheduled = deploy_scheduled("digest", config);
    scheduler().set_schedules({scheduled});
    EXPECT_EQ(scheduler().tick(), 0u);
    clock_.set(at("2026-05-04T10:00:00Z"));
    EXPECT_EQ(scheduler().tick(), 1u);
    clock_.set(at("2026-05-04T10:20:00Z"));
    restart();
    clock_.advance(3h);
    scheduler().set_schedules({scheduled});
    size_t started = scheduler().tick();
    idle();
    auto all = runs("digest");
    EXPECT_EQ(all.size(), started + 1);
    EXPECT_EQ(scheduler().next_fire_time(), at("2026-05-04T14:00:00Z"));
    if (all.empty()) return {};
    EXPECT_EQ(all.front().trigger["scheduled_at"], "2026-05-04T10:00:00+00:00");
    return {all.begin() + 1, all.end()};
  }

  herald::testing::TempDir dir_{"herald-scheduler-test"};
  std::unique_ptr<store::Store> store_;
  steps::StepRegistry registry_ = steps::StepRegistry::with_builtins();
  std::unique_ptr<runtime::Engine> engine_;
  FakeClock clock_;
  std::unique_ptr<Scheduler> scheduler_;
};

TEST_F(SchedulerTest, FiresACronInParisAcrossTheSpringForwardChange) {
  clock_.set(at("2026-03-27T12:00:00Z"));
  Json config = {{"cron", "30 2 * * *"}, {"timezone", "Europe/Paris"}};
  auto scheduled = deploy_scheduled("report", config, /*index=*/1);
  scheduler().set_schedules({scheduled});
  EXPECT_EQ(scheduler().tick(), 0u);  // catch-up: nothing missed since the deployment

  const std::vector<std::string> expected = {"2026-03-28T02:30:00+01:00",
                                             "2026-03-29T03:30:00+02:00",  // 02:30 does not exist
                                             "2026-03-30T02:30:00+02:00"};
  for (size_t i = 0; i < expected.size(); ++i) {
    auto next = scheduler().next_fire_time();
    ASSERT_TRUE(next.has_value());
    EXPECT_EQ(triggers::format_local(*next, scheduled.trigger.zone), expected[i]);
    clock_.set(*next - 1s);
    EXPECT_EQ(scheduler().tick(), 0u) << "a second early";
    clock_.set(*next);
    EXPECT_EQ(scheduler().tick(), 1u) << expected[i];
  }
  idle();
  EXPECT_EQ(scheduled_at("report"), expected);
  auto all = runs("report");
  ASSERT_EQ(all.size(), 3u);
  const auto& last = all.back();
  EXPECT_EQ(last.state, store::RunState::succeeded) << last.error.dump();
  EXPECT_EQ(last.workflow_version_id, scheduled.version_id);
  EXPECT_EQ(last.trigger["type"], "schedule");
  EXPECT_EQ(last.trigger["fired_at"], "2026-03-30T00:30:00.000Z");
  EXPECT_EQ(last.trigger["late"], false);
  EXPECT_EQ(last.trigger["index"], 1);
  EXPECT_EQ(last.trigger["schedule"], config);
  EXPECT_EQ(mark_of("report", 1), at("2026-03-30T00:30:00Z"));
  // The step saw the trigger.
  auto steps = store_->get_steps(last.id);
  ASSERT_TRUE(steps.ok());
  ASSERT_EQ(steps->size(), 1u);
  EXPECT_EQ((*steps)[0].output["fired"], expected[2]) << (*steps)[0].output.dump();
}

TEST_F(SchedulerTest, HourlyInParisFiresTheRepeatedHourOnceWhenClocksFallBack) {
  clock_.set(at("2026-10-24T23:30:00Z"));  // 01:30 summer time
  Json config = {{"cron", "0 * * * *"}, {"timezone", "Europe/Paris"}};
  scheduler().set_schedules({deploy_scheduled("hourly", config)});
  EXPECT_EQ(scheduler().tick(), 0u);
  for (int i = 0; i < 3; ++i) {
    auto next = scheduler().next_fire_time();
    ASSERT_TRUE(next.has_value());
    clock_.set(*next);
    EXPECT_EQ(scheduler().tick(), 1u);
  }
  idle();
  EXPECT_EQ(scheduled_at("hourly"),
            (std::vector<std::string>{"2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+01:00",
                                      "2026-10-25T04:00:00+01:00"}));
}

TEST_F(SchedulerTest, TickingTwiceAtTheSameTimeFiresOnce) {
  clock_.set(at("2026-05-04T09:30:00Z"));
  scheduler().set_schedules({deploy_scheduled("digest", {{"cron", "0 * * * *"}})});
  EXPECT_EQ(scheduler().tick(), 0u);
  clock_.set(at("2026-05-04T10:00:00Z"));
  EXPECT_EQ(scheduler().tick(), 1u);
  EXPECT_EQ(scheduler().tick(), 0u);
  clock_.set(at("2026-05-04T10:00:30Z"));
  EXPECT_EQ(scheduler().tick(), 0u);

  // Two threads ticking at the same moment start one run between them.
  clock_.set(at("2026-05-04T11:00:00Z"));
  std::atomic<size_t> started{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&] { started += scheduler().tick(); });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(started.load(), 1u);
  idle();
  EXPECT_EQ(scheduled_at("digest"), (std::vector<std::string>{"2026-05-04T10:00:00+00:00",
                                                              "2026-05-04T11:00:00+00:00"}));
}

TEST_F(SchedulerTest, CatchUpNoneDropsTheMissedFires) {
  auto caught_up = runs_after_downtime({{"cron", "0 * * * *"}, {"catch_up", "none"}});
  EXPECT_TRUE(caught_up.empty());
  EXPECT_EQ(mark_of("digest"), at("2026-05-04T10:00:00Z"));
  // The schedule carries on as usual.
  clock_.set(at("2026-05-04T14:00:00Z"));
  EXPECT_EQ(scheduler().tick(), 1u);
}

TEST_F(SchedulerTest, CatchUpLastRunsTheNewestMissedFireWithinItsWindow) {
  auto caught_up = runs_after_downtime({{"cron", "0 * * * *"}, {"catch_up", "last"}});
  ASSERT_EQ(caught_up.size(), 1u);
  EXPECT_EQ(caught_up[0].trigger["scheduled_at"], "2026-05-04T13:00:00+00:00");
  EXPECT_EQ(caught_up[0].trigger["late"], true);
  EXPECT_EQ(caught_up[0].trigger["fired_at"], "2026-05-04T13:20:00.000Z");
  EXPECT_EQ(caught_up[0].state, store::RunState::succeeded) << caught_up[0].error.dump();
  EXPECT_EQ(mark_of("digest"), at("2026-05-04T13:00:00Z"));
}

TEST_F(SchedulerTest, CatchUpLastRunsNothingOutsideItsWindow) {
  // 13:00 is 20 minutes late at 13:20, beyond a 15-minute window.
  auto caught_up =
      runs_after_downtime({{"cron", "0 * * * *"}, {"catch_up", "last"}, {"window", "15m"}});
  EXPECT_TRUE(caught_up.empty());
  EXPECT_EQ(mark_of("digest"), at("2026-05-04T10:00:00Z"));
}

TEST_F(SchedulerTest, CatchUpAllRunsEveryMissedFireOldestFirst) {
  auto caught_up = runs_after_downtime({{"cron", "0 * * * *"}, {"catch_up", "all"}});
  ASSERT_EQ(caught_up.size(), 3u);
  const std::vector<std::string> expected = {"2026-05-04T11:00:00+00:00",
                                             "2026-05-04T12:00:00+00:00",
                                             "2026-05-04T13:00:00+00:00"};
  for (size_t i = 0; i < caught_up.size(); ++i) {
    EXPECT_EQ(caught_up[i].trigger["scheduled_at"], expected[i]);
    EXPECT_EQ(caught_up[i].trigger["late"], true);
    // Started by one tick, in one commit with the mark.
    EXPECT_EQ(caught_up[i].trigger["fired_at"], "2026-05-04T13:20:00.000Z");
    EXPECT_EQ(caught_up[i].state, store::RunState::succeeded) << caught_up[i].error.dump();
  }
  EXPECT_EQ(mark_of("digest"), at("2026-05-04T13:00:00Z"));
}

TEST_F(SchedulerTest, CatchUpWithoutAMarkCountsFromTheDeployment) {
  Json config = {{"cron", "0 * * * *"}, {"catch_up", "all"}};
  clock_.set(at("2026-05-04T09:30:00Z"));
  auto scheduled = deploy_scheduled("digest", config);
  // Herald was down from the deployment until 12:20: it never fired.
  clock_.set(at("2026-05-04T12:20:00Z"));
  scheduler().set_schedules({scheduled});
  EXPECT_EQ(scheduler().tick(), 3u);
  idle();
  EXPECT_EQ(scheduled_at("digest"),
            (std::vector<std::string>{"2026-05-04T10:00:00+00:00", "2026-05-04T11:00:00+00:00",
                                      "2026-05-04T12:00:00+00:00"}));
}

TEST_F(SchedulerTest, AScheduleAddedLaterCatchesUpOnItsOwn) {
  clock_.set(at("2026-05-04T09:30:00Z"));
  auto yearly = deploy_scheduled("yearly", {{"cron", "0 0 1 1 *"}});
  scheduler().set_schedules({yearly});
  EXPECT_EQ(scheduler().tick(), 0u);

  // Deployed at 09:30 but handed to the scheduler only at 11:10.
  auto digest = deploy_scheduled("digest", {{"cron", "0 * * * *"}, {"catch_up", "all"}});
  clock_.set(at("2026-05-04T11:10:00Z"));
  scheduler().set_schedules({yearly, digest});
  EXPECT_EQ(scheduler().tick(), 2u);
  EXPECT_EQ(scheduler().next_fire_time(), at("2026-05-04T12:00:00Z"));
  idle();
  EXPECT_EQ(scheduled_at("digest"), (std::vector<std::string>{"2026-05-04T10:00:00+00:00",
                                                              "2026-05-04T11:00:00+00:00"}));
  EXPECT_TRUE(runs("yearly").empty());
}

TEST_F(SchedulerTest, OneShotTimeFiresOnce) {
  clock_.set(at("2026-05-31T12:00:00Z"));
  Json config = {{"at", "2026-06-01T09:00"}, {"timezone", "Europe/Paris"}};
  scheduler().set_schedules({deploy_scheduled("launch", config)});
  EXPECT_EQ(scheduler().tick(), 0u);
  EXPECT_EQ(scheduler().next_fire_time(), at("2026-06-01T07:00:00Z"));
  clock_.set(at("2026-06-01T07:00:00Z"));
  EXPECT_EQ(scheduler().tick(), 1u);
  EXPECT_EQ(scheduler().next_fire_time(), std::nullopt);
  clock_.advance(24h);
  EXPECT_EQ(scheduler().tick(), 0u);

  // Nor again after a restart: the mark says it fired.
  restart();
  scheduler().set_schedules({schedule("launch", runs("launch").at(0).workflow_version_id, config,
                                      at("2026-05-31T12:00:00Z"))});
  EXPECT_EQ(scheduler().tick(), 0u);
  EXPECT_EQ(scheduler().next_fire_time(), std::nullopt);
  idle();
  EXPECT_EQ(scheduled_at("launch"), (std::vector<std::string>{"2026-06-01T09:00:00+02:00"}));
}

TEST_F(SchedulerTest, RemovedSchedulesStopFiring) {
  clock_.set(at("2026-05-04T09:30:00Z"));
  auto digest = deploy_scheduled("digest", {{"cron", "0 * * * *"}});
  auto other = deploy_scheduled("other", {{"cron", "0 * * * *"}});
  scheduler().set_schedules({digest, other});
  EXPECT_EQ(scheduler().tick(), 0u);
  clock_.set(at("2026-05-04T10:00:00Z"));
  EXPECT_EQ(scheduler().tick(), 2u);

  scheduler().set_schedules({digest});
  clock_.set(at("2026-05-04T11:00:00Z"));
  EXPECT_EQ(scheduler().tick(), 1u);
  idle();
  EXPECT_EQ(runs("digest").size(), 2u);
  EXPECT_EQ(runs("other").size(), 1u);

  scheduler().set_schedules({});
  EXPECT_EQ(scheduler().next_fire_time(), std::nullopt);
  clock_.set(at("2026-05-04T12:00:00Z"));
  EXPECT_EQ(scheduler().tick(), 0u);
}

TEST_F(SchedulerTest, UnchangedSchedulesKeepTheirPlaceAndANewVersionKeepsTheMark) {
  clock_.set(at("2026-05-04T09:30:00Z"));
  Json hourly = {{"cron", "0 * * * *"}, {"catch_up", "all"}};
  auto v1 = deploy_scheduled("digest", hourly);
  scheduler().set_schedules({v1});
  EXPECT_EQ(scheduler().tick(), 0u);
  clock_.set(at("2026-05-04T10:00:00Z"));
  EXPECT_EQ(scheduler().tick(), 1u);

  // Given again unchanged (another workflow added): still waits for 11:00.
  clock_.set(at("2026-05-04T10:10:00Z"));
  auto yearly = deploy_scheduled("yearly", {{"cron", "0 0 1 1 *"}});
  scheduler().set_schedules({v1, yearly});
  EXPECT_EQ(scheduler().tick(), 0u);
  EXPECT_EQ(scheduler().next_fire_time(), at("2026-05-04T11:00:00Z"));

  // Version 2 fires at half past: its next fire is 10:30, on the new version.
  Json half_past = {{"cron", "30 * * * *"}, {"catch_up", "all"}};
  auto v2 = schedule("digest",
                     deploy("digest", workflow_source("digest", half_past, 0, "", "second")),
                     half_past, clock_.now());
  ASSERT_NE(v2.version_id, v1.version_id);
  scheduler().set_schedules({v2, yearly});
  EXPECT_EQ(scheduler().next_fire_time(), at("2026-05-04T10:30:00Z"));
  EXPECT_EQ(scheduler().tick(), 0u);
  clock_.set(at("2026-05-04T10:30:00Z"));
  EXPECT_EQ(scheduler().tick(), 1u);
  idle();
  auto all = runs("digest");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].workflow_version_id, v1.version_id);
  EXPECT_EQ(all[1].workflow_version_id, v2.version_id);
  EXPECT_EQ(all[1].trigger["schedule"], half_past);

  // After a restart, catch-up counts from the mark (10:30), not from counting_from (12:00).
  restart();
  clock_.set(at("2026-05-04T12:45:00Z"));
  v2.counting_from = at("2026-05-04T12:00:00Z");
  scheduler().set_schedules({v2});
  EXPECT_EQ(scheduler().tick(), 2u);
  idle();
  EXPECT_EQ(scheduled_at("digest"),
            (std::vector<std::string>{"2026-05-04T10:00:00+00:00", "2026-05-04T10:30:00+00:00",
                                      "2026-05-04T11:30:00+00:00", "2026-05-04T12:30:00+00:00"}));
}

TEST_F(SchedulerTest, AFireWhoseRunCannotStartStillRecordsTheMark) {
  clock_.set(at("2026-05-04T09:30:00Z"));
  Json config = {{"cron", "0 * * * *"}};
  int64_t version = deploy(
      "needs-input",
      workflow_source("needs-input", config, 0,
                      "inputs:\n  topic: { type: string, required: true }\n"));
  auto scheduled = schedule("needs-input", version, config, clock_.now());
  scheduler().set_schedules({scheduled});
  EXPECT_EQ(scheduler().tick(), 0u);
  clock_.set(at("2026-05-04T10:00:00Z"));
  EXPECT_EQ(scheduler().tick(), 0u);
  EXPECT_TRUE(runs("needs-input").empty());
  EXPECT_EQ(mark_of("needs-input"), at("2026-05-04T10:00:00Z"));
  // Not tried again on the next ticks, nor after a restart.
  EXPECT_EQ(scheduler().next_fire_time(), at("2026-05-04T11:00:00Z"));
  clock_.set(at("2026-05-04T10:00:01Z"));
  EXPECT_EQ(scheduler().tick(), 0u);
  restart();
  scheduler().set_schedules({scheduled});
  EXPECT_EQ(scheduler().tick(), 0u);
  EXPECT_EQ(scheduler().next_fire_time(), at("2026-05-04T11:00:00Z"));
  EXPECT_EQ(mark_of("needs-input"), at("2026-05-04T10:00:00Z"));
}

TEST_F(SchedulerTest, FiresOverdueInOperationFollowTheCatchUpPolicy) {
  clock_.set(at("2026-05-04T09:30:00Z"));
  scheduler().set_schedules({deploy_scheduled("digest", {{"cron", "0 * * * *"}})});
  EXPECT_EQ(scheduler().tick(), 0u);
  clock_.set(at("2026-05-04T10:00:00Z"));
  EXPECT_EQ(scheduler().tick(), 1u);
  // The clock jumps (a suspended machine): 11:00, 12:00 and 13:00 are overdue at 13:20; with
  // catch_up: last only 13:00 runs, late.
  clock_.set(at("2026-05-04T13:20:00Z"));
  EXPECT_EQ(scheduler().tick(), 1u);
  // Thirty seconds behind is still on time.
  clock_.set(at("2026-05-04T14:00:30Z"));
  EXPECT_EQ(scheduler().tick(), 1u);
  idle();
  auto all = runs("digest");
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[1].trigger["scheduled_at"], "2026-05-04T13:00:00+00:00");
  EXPECT_EQ(all[1].trigger["late"], true);
  EXPECT_EQ(all[2].trigger["scheduled_at"], "2026-05-04T14:00:00+00:00");
  EXPECT_EQ(all[2].trigger["late"], false);
  EXPECT_EQ(all[2].trigger["fired_at"], "2026-05-04T14:00:30.000Z");
}

TEST_F(SchedulerTest, StartCatchesUpThenItsThreadFires) {
  clock_.set(at("2026-05-04T08:30:00Z"));
  auto scheduled = deploy_scheduled("digest", {{"cron", "0 * * * *"}, {"catch_up", "all"}});
  clock_.set(at("2026-05-04T10:20:00Z"));
  scheduler().set_schedules({scheduled});
  ASSERT_TRUE(scheduler().start().ok());
  // The catch-up is done when start() returns.
  EXPECT_EQ(runs("digest").size(), 2u);
  auto again = scheduler().start();
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::failed_precondition);

  // The thread fires 11:00 once the clock says so; set_schedules wakes it at once.
  clock_.set(at("2026-05-04T11:00:00Z"));
  scheduler().set_schedules({scheduled});
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (runs("digest").size() < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(2ms);
  }
  scheduler().stop();
  idle();
  EXPECT_EQ(scheduled_at("digest"),
            (std::vector<std::string>{"2026-05-04T09:00:00+00:00", "2026-05-04T10:00:00+00:00",
                                      "2026-05-04T11:00:00+00:00"}));
  EXPECT_EQ(scheduler().tick(), 0u);  // stopped, it still ticks by hand: nothing more is due
}

}  // namespace
}  // namespace herald::server
