// Internal to engine/triggers (not a public API): a zone's timeline seen as intervals of constant
// UTC offset, and plain local-seconds arithmetic. The cron search walks these intervals, because
// within one of them local time and UTC differ by a constant and cron fields can be matched on
// the local calendar directly; the DST rules only matter at the interval boundaries.
#pragma once

#include <cstdint>

#include "engine/triggers/time_zone.h"

namespace herald::triggers::internal {

// Bounds for "no transition before/after": far enough to never matter (about a million years),
// small enough that adding an offset or a horizon cannot overflow.
inline constexpr std::int64_t kFarPast = -(std::int64_t{1} << 45);
inline constexpr std::int64_t kFarFuture = std::int64_t{1} << 45;

struct OffsetInterval {
  std::int64_t begin = kFarPast;  // UTC seconds since the epoch, inclusive
  std::int64_t end = kFarFuture;  // exclusive
  std::int64_t offset = 0;        // local seconds = UTC seconds + offset
};

// The interval that contains the instant `utc` (seconds since the epoch).
OffsetInterval interval_at(const TimeZone& zone, std::int64_t utc);

// Local wall-clock readings as seconds since 1970-01-01T00:00:00 on the same wall clock.
std::int64_t to_local_seconds(const LocalDateTime& local);
LocalDateTime from_local_seconds(std::int64_t local);

}  // namespace herald::triggers::internal
