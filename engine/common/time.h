// ISO-8601 timestamps as Herald reads and writes them (run timelines, `wait: until`, the CLI).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "engine/common/result.h"

namespace herald {

using TimePoint = std::chrono::system_clock::time_point;

// "2026-11-22T09:30:00.123Z" (UTC, milliseconds).
std::string format_iso8601(TimePoint time);

// Accepts "2026-11-22T09:30:00Z", with fractional seconds, with an offset ("+01:00", "+0100"),
// or a date alone ("2026-11-22", midnight UTC). A time without Z or offset is refused: a
// workflow must not depend on the server's time zone.
Result<TimePoint> parse_iso8601(std::string_view text);

int64_t to_epoch_ms(TimePoint time);
TimePoint from_epoch_ms(int64_t ms);

}  // namespace herald
