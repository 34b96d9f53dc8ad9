// Cron expressions for `schedule` triggers: the parser (5 fields, or 6 with seconds first; names,
// ranges, steps, lists, `L`, `?`, @daily-style macros) and the search for fire times in an IANA
// time zone. The fields are read as local wall-clock time in that zone, and daylight-saving
// transitions follow RFC 5545: a local time skipped by spring-forward fires with the offset in
// force before the gap (02:30 in Paris on 2026-03-29 fires at 03:30 summer time), a local time
// repeated by fall-back fires once, at its first (summer-time) occurrence.
// docs/triggers/schedule.md is the author-facing description; the server's scheduler and `herald
// cron next` use this class.
#pragma once

#include <bitset>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/common/result.h"
#include "engine/common/time.h"
#include "engine/triggers/time_zone.h"

namespace herald::triggers {

// How far ahead next() looks before deciding a schedule never fires. Eight years covers any
// real date, Feb 29 included even across 2100 (not a leap year); the margin is for time zones.
inline constexpr std::chrono::hours kCronSearchHorizon{24 * (8 * 366 + 7)};

class CronSchedule {
 public:
  // Parses "minute hour day-of-month month day-of-week", the same with a seconds field first,
  // or a macro (@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly). Errors are
  // invalid_argument and start with the field, e.g. "day-of-week: 'FUNDAY' is not a day name;
  // expected 0-7 or SUN-SAT (at column 9)"; details hold {expression, field, column} with a
  // 1-based column into `text`.
  static Result<CronSchedule> parse(std::string_view text);

  // The expression as written (trimmed).
  const std::string& text() const { return text_; }
  bool has_seconds() const { return has_seconds_; }

  // The first fire time strictly after `after`, or nullopt when there is none within
  // kCronSearchHorizon (e.g. "0 0 30 2 *"). Skips by field, so even a never-firing expression
  // costs a few thousand steps, not a scan minute by minute.
  std::optional<TimePoint> next(TimePoint after, const TimeZone& zone = {}) const;

  // The last fire time at or before `at_or_before`, or nullopt when there is none within
  // kCronSearchHorizon before it. Used by catch-up to find the most recent missed fire.
  std::optional<TimePoint> previous(TimePoint at_or_before, const TimeZone& zone = {}) const;

  // Fire times in (from, to], oldest first, at most `limit` of them.
  std::vector<TimePoint> fires_between(TimePoint from, TimePoint to, const TimeZone& zone,
                                       std::size_t limit) const;

  // Whether the fields match a local wall-clock reading (no DST reasoning: see next()).
  bool matches(const LocalDateTime& local) const;

  // Why no date can ever match (e.g. "day-of-month 30 never occurs in FEB"), or nullopt when
  // some date does. The parser accepts such expressions, as cron does; a trigger refuses them.
  std::optional<std::string> never_fires_reason() const;

  // The first matching local reading (as seconds on the local wall clock since 1970-01-01) in
  // [from, limit), or nullopt. Exposed for the zone-aware search and its tests.
  std::optional<std::int64_t> next_local_match(std::int64_t from, std::int64_t limit) const;

 private:
  CronSchedule() = default;
  bool day_matches(int year, unsigned month, unsigned day) const;

  std::string text_;
  bool has_seconds_ = false;
  std::bitset<60> seconds_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_of_month_;   // 1-31
  bool last_day_of_month_ = false;  // `L`
  std::bitset<13> months_;          // 1-12
  std::bitset<7> days_of_week_;     // 0 = Sunday
  // Vixie cron's rule: when either day field starts with `*` (or `?`), a day must match both;
  // when both are restricted, either one is enough ("0 0 13 * FRI" = every 13th and every Friday).
  bool day_of_month_star_ = false;
  bool day_of_week_star_ = false;
  std::string day_of_month_text_, month_text_;  // as written, for never_fires_reason()
};

// The next `count` fire times of `expression` after `after` in the zone named `zone`: what
// `herald cron next EXPR --tz ZONE [--from T] -n COUNT` prints, via format_local. Fewer than
// `count` when the schedule stops firing within the search horizon.
Result<std::vector<TimePoint>> next_fire_times(std::string_view expression, std::string_view zone,
                                               TimePoint after, std::size_t count);

}  // namespace herald::triggers
