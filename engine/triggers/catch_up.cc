#include "engine/triggers/catch_up.h"

namespace herald::triggers {

namespace {

// How many fires lie in (from, to], stopping at `cap`.
std::size_t count_fires(const CronSchedule& schedule, const TimeZone& zone, TimePoint from,
                        TimePoint to, std::size_t cap) {
  std::size_t count = 0;
  TimePoint cursor = from;
  while (count < cap) {
    auto fire = schedule.next(cursor, zone);
    if (!fire || *fire > to) break;
    ++count;
    cursor = *fire;
  }
  return count;
}

}  // namespace

std::string_view to_string(CatchUp policy) {
  switch (policy) {
    case CatchUp::none:
      return "none";
    case CatchUp::last:
      return "last";
    case CatchUp::all:
      return "all";
  }
  return "last";
}

Result<CatchUp> parse_catch_up(std::string_view text) {
  if (text == "none") return CatchUp::none;
  if (text == "last") return CatchUp::last;
  if (text == "all") return CatchUp::all;
  return make_error(
      ErrorCode::invalid_argument,
      "catch_up: '" + std::string(text) + "' is not a catch-up policy; expected none, last or all");
}

MissedFires missed_fires(const CronSchedule& schedule, const TimeZone& zone, TimePoint last_fire,
                         TimePoint now, CatchUp policy, std::chrono::milliseconds window,
                         std::size_t limit) {
  MissedFires result;
  if (now <= last_fire) return result;
  switch (policy) {
    case CatchUp::none: {
      result.skipped = count_fires(schedule, zone, last_fire, now, kMissedCountCap);
      result.skipped_is_lower_bound = result.skipped >= kMissedCountCap;
      break;
    }
    case CatchUp::last: {
      std::size_t missed = count_fires(schedule, zone, last_fire, now, kMissedCountCap);
      result.skipped = missed;
      result.skipped_is_lower_bound = missed >= kMissedCountCap;
      if (missed == 0) break;
      // previous() rather than walking forward: the newest of a million missed fires is found in
      // a few dozen searches.
      auto newest = schedule.previous(now, zone);
      if (newest && *newest > last_fire && now - *newest <= window) {
        result.fires.push_back(*newest);
        --result.skipped;
      }
      break;
    }
    case CatchUp::all: {
      result.fires = schedule.fires_between(last_fire, now, zone, limit);
      if (result.fires.size() == limit) {
        TimePoint counted_up_to = result.fires.empty() ? last_fire : result.fires.back();
        result.skipped = count_fires(schedule, zone, counted_up_to, now, kMissedCountCap);
        result.skipped_is_lower_bound = result.skipped >= kMissedCountCap;
      }
      break;
    }
  }
  return result;
}

}  // namespace herald::triggers
