#include "engine/common/duration.h"

#include <cctype>
#include <limits>

namespace herald {

Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text.empty()) {
    return make_error(ErrorCode::invalid_argument,
                      "empty duration; expected e.g. 500ms, 30s, 5m, 1h30m or 2d");
  }
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) {
      return make_error(ErrorCode::invalid_argument,
                        "bad duration '" + std::string(text) +
                            "'; expected <number><unit> parts with unit ms, s, m, h or d");
    }
    int64_t number = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      number = number * 10 + (text[i] - '0');
      if (number > std::numeric_limits<int32_t>::max()) {
        return make_error(ErrorCode::invalid_argument,
                          "duration '" + std::string(text) + "' is too large");
      }
      ++i;
    }
    size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    int64_t factor = 0;
    if (unit == "ms") factor = 1;
    else if (unit == "s") factor = 1000;
    else if (unit == "m") factor = 60'000;
    else if (unit == "h") factor = 3'600'000;
    else if (unit == "d") factor = 86'400'000;
    else {
      return make_error(ErrorCode::invalid_argument,
                        "bad duration '" + std::string(text) + "': unit " +
                            (unit.empty() ? std::string("missing") : "'" + std::string(unit) + "' unknown") +
                            "; expected ms, s, m, h or d");
    }
    total += number * factor;
  }
  return std::chrono::milliseconds(total);
}

std::string format_duration(std::chrono::milliseconds duration) {
  int64_t ms = duration.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  struct Unit {
    int64_t size;
    const char* name;
  };
  for (Unit unit : {Unit{86'400'000, "d"}, Unit{3'600'000, "h"}, Unit{60'000, "m"},
                    Unit{1000, "s"}, Unit{1, "ms"}}) {
    if (ms >= unit.size) {
      out += std::to_string(ms / unit.size) + unit.name;
      ms %= unit.size;
    }
  }
  return out;
}

}  // namespace herald
