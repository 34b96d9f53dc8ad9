#include "engine/common/time.h"

#include <sstream>

#include <date/date.h>

namespace herald {

std::string format_iso8601(TimePoint time) {
  return date::format("%FT%TZ", std::chrono::floor<std::chrono::milliseconds>(time));
}

std::string format_iso8601_offset(TimePoint time, std::chrono::seconds utc_offset) {
  auto local = std::chrono::floor<std::chrono::milliseconds>(time) + utc_offset;
  bool whole_seconds =
      local.time_since_epoch() % std::chrono::seconds(1) == std::chrono::milliseconds(0);
  std::string text = whole_seconds
                         ? date::format("%FT%T", std::chrono::floor<std::chrono::seconds>(local))
                         : date::format("%FT%T", local);
  long long total = utc_offset.count();
  text += total < 0 ? '-' : '+';
  if (total < 0) total = -total;
  auto two_digits = [&text](long long value) {
    if (value < 10) text += '0';
    text += std::to_string(value);
  };
  two_digits(total / 3600);
  text += ':';
  two_digits(total / 60 % 60);
  if (total % 60 != 0) {
    text += ':';
    two_digits(total % 60);
  }
  return text;
}

Result<TimePoint> parse_iso8601(std::string_view text) {
  std::string input(text);
  auto invalid = [&] {
    return make_error(ErrorCode::invalid_argument,
                      "bad timestamp '" + input +
                          "'; expected ISO-8601 with a zone, e.g. 2026-11-22T09:30:00Z or "
                          "2026-11-22T10:30:00+01:00");
  };
  if (input.size() == 10) {
    std::istringstream in(input);
    date::sys_days day;
    in >> date::parse("%F", day);
    if (in.fail() || in.peek() != std::char_traits<char>::eof()) return invalid();
    return TimePoint(day);
  }
  // %Ez reads "+01:00"; %z reads "+0100"; a trailing 'Z' means UTC.
  bool utc = !input.empty() && (input.back() == 'Z' || input.back() == 'z');
  std::string body = utc ? input.substr(0, input.size() - 1) : input;
  // date's %T leaves its seconds uninitialised when they are missing ("09:00"), so only a
  // full HH:MM:SS reaches it.
  if (body.size() < 19 || body[13] != ':' || body[16] != ':') return invalid();
  for (const char* format : {"%FT%T%Ez", "%FT%T%z", "%F %T%Ez", "%FT%T"}) {
    bool needs_z = std::string_view(format) == "%FT%T";
    if (needs_z != utc) continue;
    std::istringstream in(body);
    date::sys_time<std::chrono::milliseconds> time;
    in >> date::parse(format, time);
    if (!in.fail() && in.peek() == std::char_traits<char>::eof()) return TimePoint(time);
  }
  return invalid();
}

int64_t to_epoch_ms(TimePoint time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

TimePoint from_epoch_ms(int64_t ms) { return TimePoint(std::chrono::milliseconds(ms)); }

}  // namespace herald
