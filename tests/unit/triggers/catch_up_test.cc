// Catch-up after downtime: none / last / all, with the clock passed in. A tiny simulated
// scheduler runs a trigger up to one moment, "goes down", comes back later and asks
// missed_fires() what to run, the way the server's scheduler will.
#include <gtest/gtest.h>

#include "engine/triggers/catch_up.h"
#include "engine/triggers/schedule_trigger.h"
#include "tests/unit/triggers/helpers.h"

namespace herald::triggers {
namespace {

using namespace std::chrono_literals;
using testing::cron;
using testing::instant;
using testing::zone;

std::vector<std::string> utc_strings(const std::vector<TimePoint>& fires) {
  std::vector<std::string> result;
  for (const auto& fire : fires) result.push_back(format_iso8601(fire));
  return result;
}

TEST(CatchUp, ParsesPolicies) {
  EXPECT_EQ(*parse_catch_up("none"), CatchUp::none);
  EXPECT_EQ(*parse_catch_up("last"), CatchUp::last);
  EXPECT_EQ(*parse_catch_up("all"), CatchUp::all);
  for (CatchUp policy : {CatchUp::none, CatchUp::last, CatchUp::all}) {
    EXPECT_EQ(*parse_catch_up(to_string(policy)), policy);
  }
  auto bad = parse_catch_up("sometimes");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message,
            "catch_up: 'sometimes' is not a catch-up policy; expected none, last or all");
  EXPECT_FALSE(parse_catch_up("ALL").ok());
}

// Hourly in UTC; the last fire handled was 08:00 and Herald is back at 11:20, so 09:00, 10:00
// and 11:00 were missed.
TEST(CatchUp, HourlyAfterThreeMissedHours) {
  auto hourly = cron("0 * * * *");
  TimeZone utc;
  TimePoint last = instant("2026-05-01T08:00:00Z");
  TimePoint now = instant("2026-05-01T11:20:00Z");

  auto none = missed_fires(hourly, utc, last, now, CatchUp::none);
  EXPECT_TRUE(none.fires.empty());
  EXPECT_EQ(none.skipped, 3u);

  auto last_default = missed_fires(hourly, utc, last, now, CatchUp::last);
  EXPECT_EQ(utc_strings(last_default.fires), std::vector<std::string>{"2026-05-01T11:00:00.000Z"});
  EXPECT_EQ(last_default.skipped, 2u);

  // 11:00 is 20 minutes old: outside a 10-minute window, so nothing runs.
  auto last_short = missed_fires(hourly, utc, last, now, CatchUp::last, 10min);
  EXPECT_TRUE(last_short.fires.empty());
  EXPECT_EQ(last_short.skipped, 3u);

  // The window edge is inclusive.
  auto last_edge = missed_fires(hourly, utc, last, now, CatchUp::last, 20min);
  EXPECT_EQ(last_edge.fires.size(), 1u);

  auto all = missed_fires(hourly, utc, last, now, CatchUp::all);
  EXPECT_EQ(utc_strings(all.fires),
            (std::vector<std::string>{"2026-05-01T09:00:00.000Z", "2026-05-01T10:00:00.000Z",
                                      "2026-05-01T11:00:00.000Z"}));
  EXPECT_EQ(all.skipped, 0u);

  auto all_limited = missed_fires(hourly, utc, last, now, CatchUp::all, 1h, 2);
  EXPECT_EQ(utc_strings(all_limited.fires),
            (std::vector<std::string>{"2026-05-01T09:00:00.000Z", "2026-05-01T10:00:00.000Z"}));
  EXPECT_EQ(all_limited.skipped, 1u);
  EXPECT_FALSE(all_limited.skipped_is_lower_bound);
}

TEST(CatchUp, EdgesOfTheMissedInterval) {
  auto hourly = cron("0 * * * *");
  TimeZone utc;
  // A fire exactly at `now` is due, so it counts; the fire at `last_fire` itself does not.
  auto at_now = missed_fires(hourly, utc, instant("2026-05-01T08:00:00Z"),
                             instant("2026-05-01T09:00:00Z"), CatchUp::all);
  EXPECT_EQ(utc_strings(at_now.fires), std::vector<std::string>{"2026-05-01T09:00:00.000Z"});
  // Nothing missed, or a clock that went backwards: nothing to do.
  EXPECT_TRUE(missed_fires(hourly, utc, instant("2026-05-01T08:00:00Z"),
                           instant("2026-05-01T08:59:59Z"), CatchUp::all)
                  .fires.empty());
  auto backwards = missed_fires(hourly, utc, instant("2026-05-01T08:00:00Z"),
                                instant("2026-05-01T07:00:00Z"), CatchUp::last);
  EXPECT_TRUE(backwards.fires.empty());
  EXPECT_EQ(backwards.skipped, 0u);
  // A schedule that never fires misses nothing.
  auto never = missed_fires(cron("0 0 30 2 *"), utc, instant("2026-01-01T00:00:00Z"),
                            instant("2027-01-01T00:00:00Z"), CatchUp::last);
  EXPECT_TRUE(never.fires.empty());
  EXPECT_EQ(never.skipped, 0u);
}

TEST(CatchUp, LongDowntimesStayBounded) {
  TimeZone utc;
  TimePoint last = instant("2026-05-01T00:00:00Z");
  // Every minute for 10 days: 14,400 missed; `all` runs the oldest 1000 and counts the rest.
  auto all = missed_fires(cron("* * * * *"), utc, last, last + 24h * 10, CatchUp::all);
  ASSERT_EQ(all.fires.size(), kDefaultCatchUpLimit);
  EXPECT_EQ(format_iso8601(all.fires.front()), "2026-05-01T00:01:00.000Z");
  EXPECT_EQ(format_iso8601(all.fires.back()), "2026-05-01T16:40:00.000Z");
  EXPECT_EQ(all.skipped, 14400u - 1000u);
  EXPECT_FALSE(all.skipped_is_lower_bound);

  // Every second for 30 days: 2.6 million missed. The count stops at the cap and says so; the
  // newest fire is still found at once.
  auto started = std::chrono::steady_clock::now();
  auto every_second = cron("* * * * * *");
  TimePoint now = last + 24h * 30;
  auto latest = missed_fires(every_second, utc, last, now, CatchUp::last);
  EXPECT_EQ(utc_strings(latest.fires), std::vector<std::string>{format_iso8601(now)});
  EXPECT_TRUE(latest.skipped_is_lower_bound);
  EXPECT_GE(latest.skipped, kMissedCountCap - 1);
  auto dropped = missed_fires(every_second, utc, last, now, CatchUp::none);
  EXPECT_EQ(dropped.skipped, kMissedCountCap);
  EXPECT_TRUE(dropped.skipped_is_lower_bound);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}

// A scheduler in miniature: fire whatever is due up to `now`, remember the last fire, and on a
// restart ask missed_fires() about the gap.
struct SimulatedScheduler {
  SimulatedScheduler(ScheduleTrigger trigger, TimePoint deployed)
      : trigger(std::move(trigger)), last_fire(deployed) {}

  ScheduleTrigger trigger;
  TimePoint last_fire;
  std::vector<TimePoint> ran;
  std::size_t skipped = 0;

  void run_until(TimePoint now) {
    while (auto fire = next_fire(trigger, last_fire)) {
      if (*fire > now) break;
      ran.push_back(*fire);
      last_fire = *fire;
    }
  }
  void restart_at(TimePoint now) {
    auto missed = missed_fires(trigger, last_fire, now);
    for (const auto& fire : missed.fires) ran.push_back(fire);
    skipped += missed.skipped;
    // Whatever was not run is dropped on purpose: the schedule resumes after `now`.
    last_fire = now;
  }
  std::vector<std::string> ran_local() const { return testing::local_strings(ran, trigger.zone); }
};

ScheduleTrigger weekday_nine_paris(const char* catch_up) {
  auto trigger = parse_schedule_trigger(
      {{"cron", "0 9 * * MON-FRI"}, {"timezone", "Europe/Paris"}, {"catch_up", catch_up}});
  EXPECT_TRUE(trigger.ok()) << trigger.error().message;
  return *trigger;
}

// Mon 2026-03-02 .. Mon 2026-03-09, weekdays at 09:00 Paris time. Herald is down on Wednesday
// from 08:00 to 10:30, and again from Thursday 12:00 to Monday 12:00.
TEST(CatchUp, SimulatedDowntimeWithEachPolicy) {
  struct Case {
    const char* policy;
    std::vector<std::string> ran;
    std::size_t skipped;
  };
  const Case cases[] = {
      // Wednesday 09:00 was missed and is 1h30 old at the restart: outside the 1h default
      // window. Friday and Monday 09:00 were missed; Monday's is 3h old.
      {"last",
       {"2026-03-02T09:00:00+01:00", "2026-03-03T09:00:00+01:00", "2026-03-05T09:00:00+01:00"},
       3},
      {"none",
       {"2026-03-02T09:00:00+01:00", "2026-03-03T09:00:00+01:00", "2026-03-05T09:00:00+01:00"},
       3},
      {"all",
       {"2026-03-02T09:00:00+01:00", "2026-03-03T09:00:00+01:00", "2026-03-04T09:00:00+01:00",
        "2026-03-05T09:00:00+01:00", "2026-03-06T09:00:00+01:00", "2026-03-09T09:00:00+01:00"},
       0},
  };
  for (const auto& c : cases) {
    SimulatedScheduler scheduler(weekday_nine_paris(c.policy), instant("2026-03-01T12:00:00Z"));
    scheduler.run_until(instant("2026-03-04T08:00:00+01:00"));
    scheduler.restart_at(instant("2026-03-04T10:30:00+01:00"));
    scheduler.run_until(instant("2026-03-05T12:00:00+01:00"));
    scheduler.restart_at(instant("2026-03-09T12:00:00+01:00"));
    scheduler.run_until(instant("2026-03-09T12:00:00+01:00"));
    EXPECT_EQ(scheduler.ran_local(), c.ran) << c.policy;
    EXPECT_EQ(scheduler.skipped, c.skipped) << c.policy;
  }

  // With a 2h window, Wednesday's 09:00 (1h30 late) runs at the restart; Monday's (3h) does not.
  auto trigger = parse_schedule_trigger({{"cron", "0 9 * * MON-FRI"},
                                         {"timezone", "Europe/Paris"},
                                         {"catch_up", "last"},
                                         {"window", "2h"}});
  ASSERT_TRUE(trigger.ok());
  SimulatedScheduler scheduler(*trigger, instant("2026-03-01T12:00:00Z"));
  scheduler.run_until(instant("2026-03-04T08:00:00+01:00"));
  scheduler.restart_at(instant("2026-03-04T10:30:00+01:00"));
  scheduler.run_until(instant("2026-03-05T12:00:00+01:00"));
  scheduler.restart_at(instant("2026-03-09T12:00:00+01:00"));
  EXPECT_EQ(scheduler.ran_local(),
            (std::vector<std::string>{"2026-03-02T09:00:00+01:00", "2026-03-03T09:00:00+01:00",
                                      "2026-03-04T09:00:00+01:00", "2026-03-05T09:00:00+01:00"}));
  EXPECT_EQ(scheduler.skipped, 2u);
}

// Herald is down over the Paris spring-forward night: the missed 02:30, which does not exist
// that night, is the 03:30 CEST instant, and `all` replays it once.
TEST(CatchUp, DowntimeAcrossADstChange) {
  auto trigger = parse_schedule_trigger(
      {{"cron", "30 2 * * *"}, {"timezone", "Europe/Paris"}, {"catch_up", "all"}});
  ASSERT_TRUE(trigger.ok());
  SimulatedScheduler scheduler(*trigger, instant("2026-03-27T12:00:00+01:00"));
  scheduler.run_until(instant("2026-03-28T12:00:00+01:00"));
  scheduler.restart_at(instant("2026-03-30T12:00:00+02:00"));
  EXPECT_EQ(scheduler.ran_local(),
            (std::vector<std::string>{"2026-03-28T02:30:00+01:00", "2026-03-29T03:30:00+02:00",
                                      "2026-03-30T02:30:00+02:00"}));

  // The fall-back night: the repeated 02:30 is one fire, not two.
  auto fall = missed_fires(trigger->cron.value(), trigger->zone, instant("2026-10-24T12:00:00Z"),
                           instant("2026-10-25T12:00:00Z"), CatchUp::all);
  EXPECT_EQ(testing::local_strings(fall.fires, trigger->zone),
            std::vector<std::string>{"2026-10-25T02:30:00+02:00"});
}

TEST(CatchUp, OneShotTimes) {
  auto trigger = parse_schedule_trigger({{"at", "2026-06-01T09:00:00+02:00"}});
  ASSERT_TRUE(trigger.ok());
  TimePoint at = instant("2026-06-01T07:00:00Z");
  TimePoint before = instant("2026-05-01T00:00:00Z");
  // Missed by 30 minutes: within the default hour, so it runs.
  auto soon = missed_fires(*trigger, before, at + 30min);
  EXPECT_EQ(soon.fires, std::vector<TimePoint>{at});
  // Missed by a day: dropped under `last`...
  auto late = missed_fires(*trigger, before, at + 24h);
  EXPECT_TRUE(late.fires.empty());
  EXPECT_EQ(late.skipped, 1u);
  // ...but run under `all`, and never under `none`.
  trigger->catch_up = CatchUp::all;
  EXPECT_EQ(missed_fires(*trigger, before, at + 24h).fires, std::vector<TimePoint>{at});
  trigger->catch_up = CatchUp::none;
  EXPECT_TRUE(missed_fires(*trigger, before, at + 30min).fires.empty());
  // Already handled, or not yet due: nothing.
  trigger->catch_up = CatchUp::all;
  EXPECT_TRUE(missed_fires(*trigger, at, at + 1h).fires.empty());
  EXPECT_TRUE(missed_fires(*trigger, before, at - 1s).fires.empty());
}

}  // namespace
}  // namespace herald::triggers
