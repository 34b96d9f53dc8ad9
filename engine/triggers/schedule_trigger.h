// The `schedule` trigger of a workflow, read from its JSON config (the `schedule:` mapping of a
// workflow file), ready for the server's scheduler: when it fires next and what to run after a
// downtime. One of
//   { "cron": "0 9 * * MON-FRI", "timezone": "Europe/Paris", "catch_up": "last", "window": "2h" }
//   { "at": "2026-12-01T09:00:00+01:00" }   (or a local "2026-12-01T09:00" read in `timezone`)
// Bad configs are invalid_argument errors whose message starts with the offending key, so the
// workflow validator can put them at the right line.
#pragma once

#include <chrono>
#include <optional>

#include "engine/common/result.h"
#include "engine/common/time.h"
#include "engine/triggers/catch_up.h"
#include "engine/triggers/cron.h"
#include "engine/triggers/time_zone.h"

namespace herald::triggers {

struct ScheduleTrigger {
  std::optional<CronSchedule> cron;  // exactly one of cron and at is set
  std::optional<TimePoint> at;       // a one-shot time
  TimeZone zone;                     // `timezone`; UTC when absent
  CatchUp catch_up = CatchUp::last;
  std::chrono::milliseconds window = kDefaultCatchUpWindow;  // for catch_up: last
};

// Keys: cron | at (one of them), timezone, catch_up (none | last | all; true and false are read
// as last and none), window (a duration such as "30m", only with catch_up: last). A cron that
// can never fire ("0 0 30 2 *") is refused here, though CronSchedule::parse accepts it.
Result<ScheduleTrigger> parse_schedule_trigger(const Json& config);

// The first fire time strictly after `after`; nullopt once a one-shot time has passed or when a
// cron finds nothing within its search horizon.
std::optional<TimePoint> next_fire(const ScheduleTrigger& trigger, TimePoint after);

// missed_fires() for the trigger's own schedule, zone, policy and window; a one-shot time counts
// as missed when last_fire < at <= now.
MissedFires missed_fires(const ScheduleTrigger& trigger, TimePoint last_fire, TimePoint now,
                         std::size_t limit = kDefaultCatchUpLimit);

}  // namespace herald::triggers
