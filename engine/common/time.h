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

// "2026-03-29T03:30:00+02:00": the wall-clock time `utc_offset` away from UTC, followed by that
// offset, so a reader sees both the local time and the instant (the CLI prints schedule fire
// times this way). parse_iso8601 reads it back. Milliseconds appear only when not zero; an offset
// with seconds (historical local mean time, e.g. +00:09:21) keeps them rather than misstate the
// instant.
std::string format_iso8601_offset(TimePoint time, std::chrono::seconds utc_offset);

int64_t to_epoch_ms(TimePoint time);
TimePoint from_epoch_ms(int64_t ms);

}  // namespace herald
