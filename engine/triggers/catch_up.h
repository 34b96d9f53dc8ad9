// What a schedule does about the fire times it missed while Herald was down: the `catch_up`
// policy of a `schedule` trigger and the function the scheduler calls on start-up (or after any
// pause) to learn which missed fires to run now. The clock is passed in, so tests simulate a
// downtime without sleeping and the scheduler decides what "now" is.
#pragma once

#include <chrono>
#include <cstddef>
#include <string_view>
#include <vector>

#include "engine/common/result.h"
#include "engine/common/time.h"
#include "engine/triggers/cron.h"
#include "engine/triggers/time_zone.h"

namespace herald::triggers {

enum class CatchUp {
  none,  // missed fires are dropped; the schedule resumes with its next fire time
  last,  // the most recent missed fire runs, if it is at most `window` old (the default)
  all,   // every missed fire runs, oldest first, up to a limit
};

std::string_view to_string(CatchUp policy);
// "none", "last" or "all"; anything else is an invalid_argument error saying so.
Result<CatchUp> parse_catch_up(std::string_view text);

// For `last`: a run one hour late is usually still wanted (a report, a digest); a "good morning"
// post six hours late is not. An hour is the default; a trigger's `window` changes it.
inline constexpr std::chrono::milliseconds kDefaultCatchUpWindow = std::chrono::hours(1);
// For `all`: at most this many runs are started at once, so a per-minute schedule after a week
// offline does not flood the queue with 10,080 runs.
inline constexpr std::size_t kDefaultCatchUpLimit = 1000;
// Missed fires are counted (for the log line) up to this many; beyond it the count is a floor.
inline constexpr std::size_t kMissedCountCap = 100000;

struct MissedFires {
  std::vector<TimePoint> fires;         // to run now, oldest first; their scheduled times
  std::size_t skipped = 0;              // missed fires not in `fires`
  bool skipped_is_lower_bound = false;  // counting stopped at kMissedCountCap
};

// The fires due in (last_fire, now] and what `policy` makes of them. `last_fire` is the scheduled
// time of the last fire Herald handled (or when the trigger was deployed, if it never fired); a
// fire exactly at `now` counts as missed, so the scheduler then waits for next(now).
// - none: nothing to run; `skipped` says how many were missed.
// - last: the most recent missed fire, if now - fire <= window; the others are skipped.
// - all: the oldest `limit` missed fires; the rest are skipped (run them by calling again with
//   last_fire = the last one returned, if that is what the caller wants).
MissedFires missed_fires(const CronSchedule& schedule, const TimeZone& zone, TimePoint last_fire,
                         TimePoint now, CatchUp policy,
                         std::chrono::milliseconds window = kDefaultCatchUpWindow,
                         std::size_t limit = kDefaultCatchUpLimit);

}  // namespace herald::triggers
