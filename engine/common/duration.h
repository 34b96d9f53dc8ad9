// Durations as workflow authors write them: "250ms", "30s", "5m", "1h30m", "2d".
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "engine/common/result.h"

namespace herald {

// Parses a sequence of <integer><unit> parts, unit one of ms, s, m, h, d. A bare integer is
// rejected: a unit is always required so "30" cannot mean seconds to one reader and ms to another.
Result<std::chrono::milliseconds> parse_duration(std::string_view text);

// The shortest text parse_duration reads back to the same value: 90000ms -> "1m30s".
std::string format_duration(std::chrono::milliseconds duration);

}  // namespace herald
