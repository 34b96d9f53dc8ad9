// Shared by the trigger tests: readable instants and zones, so a table row reads like the
// schedule it checks ("2026-03-29T03:30:00+02:00") rather than epoch numbers.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "engine/common/time.h"
#include "engine/triggers/cron.h"
#include "engine/triggers/time_zone.h"

namespace herald::triggers::testing {

// An ISO-8601 instant with Z or an offset; a typo in a test table fails loudly.
inline TimePoint instant(std::string_view text) {
  auto parsed = parse_iso8601(text);
  EXPECT_TRUE(parsed.ok()) << "bad instant in test: " << text;
  return parsed.ok() ? *parsed : TimePoint{};
}

inline TimeZone zone(std::string_view name) {
  auto located = TimeZone::locate(name);
  EXPECT_TRUE(located.ok()) << (located.ok() ? "" : located.error().message);
  return located.ok() ? *located : TimeZone{};
}

inline CronSchedule cron(std::string_view text) {
  auto parsed = CronSchedule::parse(text);
  if (!parsed.ok()) {
    ADD_FAILURE() << "'" << text << "': " << parsed.error().message;
    return *CronSchedule::parse("* * * * *");
  }
  return *parsed;
}

// The next `count` fire times after `after`, as the CLI prints them.
inline std::vector<std::string> next_local(const CronSchedule& schedule, const TimeZone& tz,
                                           TimePoint after, std::size_t count) {
  std::vector<std::string> result;
  for (const auto& fire : schedule.fires_between(after, TimePoint::max(), tz, count)) {
    result.push_back(format_local(fire, tz));
  }
  return result;
}

inline std::vector<std::string> local_strings(const std::vector<TimePoint>& fires,
                                              const TimeZone& tz) {
  std::vector<std::string> result;
  for (const auto& fire : fires) result.push_back(format_local(fire, tz));
  return result;
}

}  // namespace herald::triggers::testing
