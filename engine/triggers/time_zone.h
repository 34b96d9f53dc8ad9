// Time zones for schedule triggers: an IANA zone from the system's tzdata (Howard Hinnant's
// date/tz underneath), the UTC offset in force at an instant, and local wall-clock times turned
// into instants the way RFC 5545 does it, so a cron expression and a one-shot `at:` time mean the
// same thing on every server whatever its own TZ is. The heavy <date/tz.h> stays in the .cc files.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "engine/common/result.h"
#include "engine/common/time.h"

namespace herald::triggers {

// A wall-clock reading with no zone attached. Fields are taken as given (no validation): callers
// build it from parsed, range-checked text.
struct LocalDateTime {
  int year = 1970;
  unsigned month = 1;   // 1-12
  unsigned day = 1;     // 1-31
  unsigned hour = 0;    // 0-23
  unsigned minute = 0;  // 0-59
  unsigned second = 0;  // 0-59
  bool operator==(const LocalDateTime&) const = default;
};

class TimeZone {
 public:
  // UTC. Cheap, and needs no tzdata at all.
  TimeZone();

  // An IANA name such as "Europe/Paris" or "America/New_York" ("UTC" works too). An unknown name
  // is an invalid_argument error that names it, with a suggestion when one is close.
  static Result<TimeZone> locate(std::string_view name);

  const std::string& name() const;
  // The default zone (also what locate("UTC") gives).
  bool is_utc() const;

  // The offset from UTC in force at `time` (+02:00 in Paris in summer is 7200 s).
  std::chrono::seconds utc_offset(TimePoint time) const;

  // The wall-clock reading at `time` (seconds truncated toward the past).
  LocalDateTime to_local(TimePoint time) const;

  // The instant a local reading denotes, as RFC 5545 reads DATE-TIME with a TZID: a time that
  // happens twice (fall-back) is its first occurrence; a time skipped by spring-forward is read
  // with the offset in force before the gap (02:30 in Paris on 2026-03-29 is 01:30Z, which the
  // clocks show as 03:30).
  TimePoint resolve(const LocalDateTime& local) const;

  // Opaque zone state, defined in time_zone.cc; shared by copies.
  struct Data;
  const Data* data() const { return data_.get(); }

 private:
  explicit TimeZone(std::shared_ptr<const Data> data);
  std::shared_ptr<const Data> data_;  // null for UTC
};

// "2026-03-29T03:30:00+02:00": the local time at `time` in `zone` with its UTC offset; what
// `herald cron next` prints, one per line.
std::string format_local(TimePoint time, const TimeZone& zone);

}  // namespace herald::triggers
