#include "engine/triggers/cron.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>

#include <date/date.h>

#include "engine/triggers/internal/zone_intervals.h"

namespace herald::triggers {

namespace {

using internal::kFarPast;

enum class Names { none, months, days };

struct FieldSpec {
  const char* name;
  int min;
  int max;
  Names names;
  const char* expected;  // what the error messages say is allowed
};

constexpr FieldSpec kSecondField{"second", 0, 59, Names::none, "0-59"};
constexpr FieldSpec kMinuteField{"minute", 0, 59, Names::none, "0-59"};
constexpr FieldSpec kHourField{"hour", 0, 23, Names::none, "0-23"};
constexpr FieldSpec kDayOfMonthField{"day-of-month", 1, 31, Names::none, "1-31 or L"};
constexpr FieldSpec kMonthField{"month", 1, 12, Names::months, "1-12 or JAN-DEC"};
constexpr FieldSpec kDayOfWeekField{"day-of-week", 0, 7, Names::days, "0-7 or SUN-SAT"};

constexpr std::array<const char*, 12> kMonthNames = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                     "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<const char*, 7> kDayNames = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

struct Macro {
  const char* name;
  const char* expansion;
};
constexpr std::array<Macro, 7> kMacros = {{
    {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
}};

std::string upper(std::string_view text) {
  std::string result(text);
  for (char& c : result) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return result;
}

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

bool all_letters(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalpha(static_cast<unsigned char>(c));
  });
}

Error parse_error(std::string_view expression, std::string_view field, std::size_t column,
                  const std::string& what) {
  Error error =
      make_error(ErrorCode::invalid_argument,
                 std::string(field) + ": " + what + " (at column " + std::to_string(column) + ")");
  error.details = {
      {"expression", std::string(expression)}, {"field", std::string(field)}, {"column", column}};
  return error;
}

struct ParsedField {
  std::bitset<64> bits;
  bool last = false;  // `L` in day-of-month
  bool star = false;  // starts with `*` or `?` (Vixie's rule for combining the day fields)
};

// Parses one field. `column` is the 1-based column of the field's first character in the whole
// expression, so errors point at the offending item, not just the field.
class FieldParser {
 public:
  FieldParser(std::string_view expression, const FieldSpec& spec, std::string_view text,
              std::size_t column)
      : expression_(expression), spec_(spec), text_(text), column_(column) {}

  Result<ParsedField> parse() {
    ParsedField field;
    field.star = text_.front() == '*' || text_.front() == '?';
    std::size_t start = 0;
    for (;;) {
      std::size_t comma = text_.find(',', start);
      std::string_view item = text_.substr(
          start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      if (auto status = parse_item(item, start, field); !status) return std::move(status).error();
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    return field;
  }

 private:
  bool is_day_of_month() const { return spec_.min == 1 && spec_.max == 31; }
  bool is_day_field() const { return is_day_of_month() || spec_.names == Names::days; }
  bool is_day_of_week() const { return spec_.names == Names::days; }

  Error fail(std::size_t offset, const std::string& what) const {
    return parse_error(expression_, spec_.name, column_ + offset, what);
  }

  Status parse_item(std::string_view item, std::size_t offset, ParsedField& field) {
    if (item.empty()) {
      return fail(offset,
                  "empty list item (two commas in a row, or a comma at an end); expected "
                  "a list such as 1,15,30");
    }
    std::string upper_item = upper(item);
    if (item == "?") {
      if (!is_day_field()) {
        return fail(offset, "'?' is only allowed in day-of-month and day-of-week; write * here");
      }
      set_range(field, spec_.min, open_max(), 1);
      return ok_status();
    }
    if (upper_item == "L") {
      if (!is_day_of_month()) {
        return fail(offset, "'L' (last day of the month) is only allowed in day-of-month");
      }
      field.last = true;
      return ok_status();
    }
    if (is_day_of_month() && upper_item.size() > 1 && upper_item.front() == 'L') {
      return fail(offset, "'" + std::string(item) +
                              "' is not supported; day-of-month takes L alone for the last "
                              "day of the month");
    }

    std::size_t slash = item.find('/');
    std::string_view base = item.substr(0, slash);
    int step = 1;
    if (slash != std::string_view::npos) {
      std::string_view step_text = item.substr(slash + 1);
      std::size_t step_offset = offset + slash + 1;
      if (step_text.empty()) {
        return fail(step_offset, "'" + std::string(item) +
                                     "' has no step after '/'; expected e.g. */15 or 0-30/5");
      }
      int max_step = spec_.max;
      if (!all_digits(step_text)) {
        return fail(step_offset, "step '" + std::string(step_text) +
                                     "' is not a number; expected 1-" + std::to_string(max_step));
      }
      step = step_text.size() > 4 ? max_step + 1 : std::stoi(std::string(step_text));
      if (step < 1 || step > max_step) {
        return fail(step_offset, "step " + std::string(step_text) +
                                     " is out of range; expected 1-" + std::to_string(max_step));
      }
      if (base.empty()) {
        return fail(offset, "'" + std::string(item) +
                                "' has no range before '/'; expected e.g. */15 or 0-30/5");
      }
    }

    if (base == "*" || (base == "?" && slash != std::string_view::npos && is_day_field())) {
      set_range(field, spec_.min, open_max(), step);
      return ok_status();
    }
    std::size_t dash = base.find('-');
    auto low = value(base.substr(0, dash), offset);
    if (!low) return std::move(low).error();
    int high = *low;
    if (dash != std::string_view::npos) {
      std::size_t high_offset = offset + dash + 1;
      std::string_view high_text = base.substr(dash + 1);
      if (high_text.find('-') != std::string_view::npos) {
        return fail(offset, "'" + std::string(base) + "' is not a range; expected a-b");
      }
      auto parsed_high = value(high_text, high_offset);
      if (!parsed_high) return std::move(parsed_high).error();
      high = *parsed_high;
      // "FRI-SUN": Sunday is 0 by name, but as the end of a range it can only mean 7.
      if (is_day_of_week() && high == 0 && *low > 0) high = 7;
      if (high < *low) {
        return fail(offset, "range " + std::string(base) +
                                " runs backwards; expected a-b with a <= b (split a range "
                                "that wraps around, e.g. 22-23,0-2)");
      }
    } else if (slash != std::string_view::npos) {
      high = open_max();  // "a/n": from a to the end of the field
    }
    set_range(field, *low, high, step);
    return ok_status();
  }

  // The end of `*` and `a/n`: Saturday, not 7, in day-of-week, so `*/2` does not add Sunday twice.
  int open_max() const { return is_day_of_week() ? 6 : spec_.max; }

  void set_range(ParsedField& field, int low, int high, int step) {
    for (int v = low; v <= high; v += step) field.bits.set(is_day_of_week() && v == 7 ? 0 : v);
  }

  Result<int> value(std::string_view text, std::size_t offset) const {
    if (text.empty()) {
      return fail(offset, "a value is missing; expected " + std::string(spec_.expected));
    }
    if (all_digits(text)) {
      int number = text.size() > 4 ? 99999 : std::stoi(std::string(text));
      if (number < spec_.min || number > spec_.max) {
        return fail(offset, std::string(text) + " is out of range; expected " + spec_.expected);
      }
      return number;
    }
    std::string name = upper(text);
    if (spec_.names == Names::months && all_letters(text)) {
      for (std::size_t i = 0; i < kMonthNames.size(); ++i) {
        if (name == kMonthNames[i]) return static_cast<int>(i) + 1;
      }
      return fail(offset,
                  "'" + std::string(text) + "' is not a month name; expected " + spec_.expected);
    }
    if (spec_.names == Names::days && all_letters(text)) {
      for (std::size_t i = 0; i < kDayNames.size(); ++i) {
        if (name == kDayNames[i]) return static_cast<int>(i);
      }
      return fail(offset,
                  "'" + std::string(text) + "' is not a day name; expected " + spec_.expected);
    }
    if (name == "L") {
      return fail(offset, "'L' (last day of the month) is only allowed alone in day-of-month");
    }
    if (text.find('#') != std::string_view::npos) {
      return fail(offset, "'" + std::string(text) +
                              "' (nth weekday of the month) is not supported; expected " +
                              spec_.expected);
    }
    if (is_day_of_month() && name.size() > 1 && name.back() == 'W') {
      return fail(offset, "'" + std::string(text) +
                              "' (nearest weekday) is not supported; expected " + spec_.expected);
    }
    if (spec_.names != Names::none) {
      return fail(offset, "'" + std::string(text) + "' is not a number or a name; expected " +
                              spec_.expected);
    }
    return fail(offset, "'" + std::string(text) + "' is not a number; expected " + spec_.expected);
  }

  std::string_view expression_;
  const FieldSpec& spec_;
  std::string_view text_;
  std::size_t column_;
};

template <std::size_t N>
int next_bit(const std::bitset<N>& bits, int from) {
  for (int i = std::max(from, 0); i < static_cast<int>(N); ++i) {
    if (bits[static_cast<std::size_t>(i)]) return i;
  }
  return -1;
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

unsigned days_in_month(int year, unsigned month) {
  static constexpr std::array<unsigned, 13> kDays = {0,  31, 28, 31, 30, 31, 30,
                                                     31, 31, 30, 31, 30, 31};
  if (month == 2 && date::year(year).is_leap()) return 29;
  return kDays[month];
}

std::int64_t day_number(int year, unsigned month, unsigned day) {
  return date::sys_days(date::year(year) / date::month(month) / date::day(day))
      .time_since_epoch()
      .count();
}

constexpr std::int64_t kHorizonSeconds =
    std::chrono::duration_cast<std::chrono::seconds>(kCronSearchHorizon).count();

// The instants TimePoint (nanoseconds since 1970 in a 64-bit count) can hold.
constexpr std::int64_t kMaxTimePointSeconds =
    std::chrono::duration_cast<std::chrono::seconds>(TimePoint::duration::max()).count() - 1;
constexpr std::int64_t kMinTimePointSeconds = -kMaxTimePointSeconds;

std::int64_t to_seconds(TimePoint time) {
  return std::chrono::floor<std::chrono::seconds>(time).time_since_epoch().count();
}

TimePoint from_seconds(std::int64_t seconds) {
  return TimePoint(std::chrono::seconds(seconds));
}

// The first fire time at or after the UTC second `start`, searching up to `horizon` (exclusive).
//
// A zone's timeline is a run of intervals of constant UTC offset. Inside one interval a local
// reading L and an instant t are tied by L = t + offset, so the fields can be matched on the
// local calendar and mapped back. At an interval's start two things need care (RFC 5545):
//  - after a forward jump (offset grew), the readings in the gap [begin + previous, begin +
//    offset) never appear on the clock; they fire at reading - previous offset, which lands in
//    [begin, begin + jump), so they are looked for first;
//  - after a backward jump (offset shrank), the readings [begin + offset, begin + previous) were
//    already shown, and fired, in the previous interval: their second showing is skipped.
// A fire time found in an interval precedes any in a later one, so the walk stops at the first.
std::optional<std::int64_t> next_utc(const CronSchedule& schedule, const TimeZone& zone,
                                     std::int64_t start, std::int64_t horizon) {
  using internal::interval_at;
  auto interval = interval_at(zone, start);
  std::int64_t previous_offset =
      interval.begin > kFarPast ? interval_at(zone, interval.begin - 1).offset : interval.offset;
  std::int64_t from = start;
  for (;;) {
    std::int64_t end = std::min(interval.end, horizon);
    std::optional<std::int64_t> best;
    if (interval.offset > previous_offset) {
      std::int64_t low = std::max(from, interval.begin);
      std::int64_t gap_end = interval.begin + (interval.offset - previous_offset);
      if (low < gap_end) {
        auto wall =
            schedule.next_local_match(low + previous_offset, interval.begin + interval.offset);
        if (wall) best = *wall - previous_offset;
      }
    }
    std::int64_t wall_from = std::max(from + interval.offset,
                                      interval.begin + std::max(interval.offset, previous_offset));
    std::int64_t wall_to = end + interval.offset;
    if (best) wall_to = std::min(wall_to, *best + interval.offset);
    if (auto wall = schedule.next_local_match(wall_from, wall_to)) best = *wall - interval.offset;
    if (best) return best;
    if (interval.end >= horizon) return std::nullopt;
    from = interval.end;
    previous_offset = interval.offset;
    interval = interval_at(zone, interval.end);
  }
}

}  // namespace

Result<CronSchedule> CronSchedule::parse(std::string_view text) {
  std::string_view original = text;
  std::size_t leading = 0;
  while (leading < text.size() && std::isspace(static_cast<unsigned char>(text[leading]))) {
    ++leading;
  }
  std::size_t trailing = text.size();
  while (trailing > leading && std::isspace(static_cast<unsigned char>(text[trailing - 1]))) {
    --trailing;
  }
  std::string_view trimmed = text.substr(leading, trailing - leading);
  if (trimmed.empty()) {
    return parse_error(original, "expression", 1,
                       "the cron expression is empty; expected 5 fields (minute hour "
                       "day-of-month month day-of-week), 6 with seconds first, or a macro such "
                       "as @daily");
  }

  CronSchedule schedule;
  schedule.text_ = std::string(trimmed);
  std::string expanded;  // a macro's fields; the columns then refer to the macro itself
  std::string_view fields_text = text;
  if (trimmed.front() == '@') {
    std::string name = upper(trimmed);
    const Macro* macro = nullptr;
    for (const auto& candidate : kMacros) {
      if (name == upper(candidate.name)) macro = &candidate;
    }
    if (macro == nullptr) {
      std::string what = "'" + std::string(trimmed) +
                         "' is not a cron macro; expected @yearly, "
                         "@annually, @monthly, @weekly, @daily, @midnight or @hourly";
      if (name == "@REBOOT") {
        what =
            "'@reboot' is not supported: Herald has no boot event for workflows; use a "
            "manual or event trigger";
      }
      return parse_error(original, "expression", leading + 1, what);
    }
    expanded = macro->expansion;
    fields_text = expanded;
  }

  struct Token {
    std::string_view text;
    std::size_t column;  // 1-based, in `original`
  };
  std::vector<Token> tokens;
  for (std::size_t i = 0; i < fields_text.size();) {
    if (std::isspace(static_cast<unsigned char>(fields_text[i]))) {
      ++i;
      continue;
    }
    std::size_t start = i;
    while (i < fields_text.size() && !std::isspace(static_cast<unsigned char>(fields_text[i]))) ++i;
    std::size_t column = expanded.empty() ? start + 1 : leading + 1;
    tokens.push_back({fields_text.substr(start, i - start), column});
  }
  if (tokens.size() != 5 && tokens.size() != 6) {
    std::string what = "found " + std::to_string(tokens.size()) +
                       (tokens.size() == 1 ? " field" : " fields") +
                       "; expected 5 (minute hour day-of-month month day-of-week) or 6 (second "
                       "minute hour day-of-month month day-of-week)";
    if (tokens.size() == 7) what += "; a year field is not supported";
    std::size_t column = tokens.size() > 6 ? tokens[6].column : trailing + 1;
    return parse_error(original, "expression", column, what);
  }

  schedule.has_seconds_ = tokens.size() == 6;
  std::size_t index = 0;
  auto next_field = [&](const FieldSpec& spec) -> Result<ParsedField> {
    const Token& token = tokens[index++];
    return FieldParser(original, spec, token.text, token.column).parse();
  };
  auto copy_bits = [](const ParsedField& field, auto& bits) {
    for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = field.bits[i];
  };

  if (schedule.has_seconds_) {
    auto seconds = next_field(kSecondField);
    if (!seconds) return std::move(seconds).error();
    copy_bits(*seconds, schedule.seconds_);
  } else {
    schedule.seconds_.set(0);
  }
  auto minutes = next_field(kMinuteField);
  if (!minutes) return std::move(minutes).error();
  copy_bits(*minutes, schedule.minutes_);
  auto hours = next_field(kHourField);
  if (!hours) return std::move(hours).error();
  copy_bits(*hours, schedule.hours_);
  auto days_of_month = next_field(kDayOfMonthField);
  if (!days_of_month) return std::move(days_of_month).error();
  copy_bits(*days_of_month, schedule.days_of_month_);
  schedule.last_day_of_month_ = days_of_month->last;
  schedule.day_of_month_star_ = days_of_month->star;
  auto months = next_field(kMonthField);
  if (!months) return std::move(months).error();
  copy_bits(*months, schedule.months_);
  auto days_of_week = next_field(kDayOfWeekField);
  if (!days_of_week) return std::move(days_of_week).error();
  copy_bits(*days_of_week, schedule.days_of_week_);
  schedule.day_of_week_star_ = days_of_week->star;
  std::size_t day_field = schedule.has_seconds_ ? 3 : 2;
  schedule.day_of_month_text_ = std::string(tokens[day_field].text);
  schedule.month_text_ = std::string(tokens[day_field + 1].text);
  return schedule;
}

bool CronSchedule::day_matches(int year, unsigned month, unsigned day) const {
  bool day_of_month =
      days_of_month_[day] || (last_day_of_month_ && day == days_in_month(year, month));
  auto weekday = static_cast<std::size_t>(
      date::weekday(date::year(year) / date::month(month) / date::day(day)).c_encoding());
  bool day_of_week = days_of_week_[weekday];
  if (day_of_month_star_ || day_of_week_star_) return day_of_month && day_of_week;
  return day_of_month || day_of_week;
}

bool CronSchedule::matches(const LocalDateTime& local) const {
  return months_[local.month] && day_matches(local.year, local.month, local.day) &&
         hours_[local.hour] && minutes_[local.minute] && seconds_[local.second];
}

std::optional<std::int64_t> CronSchedule::next_local_match(std::int64_t from,
                                                           std::int64_t limit) const {
  std::int64_t t = from;
  while (t < limit) {
    std::int64_t day_index = floor_div(t, 86400);
    std::int64_t day_start = day_index * 86400;
    auto second_of_day = static_cast<int>(t - day_start);
    date::year_month_day ymd{date::sys_days(date::days(day_index))};
    int year = static_cast<int>(ymd.year());
    auto month = static_cast<unsigned>(ymd.month());
    auto day = static_cast<unsigned>(ymd.day());
    if (!months_[month]) {
      int next_month = next_bit(months_, static_cast<int>(month) + 1);
      if (next_month < 0) {
        ++year;
        next_month = next_bit(months_, 1);
      }
      t = day_number(year, static_cast<unsigned>(next_month), 1) * 86400;
      continue;
    }
    if (!day_matches(year, month, day)) {
      t = day_start + 86400;
      continue;
    }
    int hour = second_of_day / 3600;
    int minute = second_of_day / 60 % 60;
    int second = second_of_day % 60;
    if (!hours_[static_cast<std::size_t>(hour)]) {
      int next_hour = next_bit(hours_, hour + 1);
      t = next_hour < 0 ? day_start + 86400 : day_start + next_hour * 3600;
      continue;
    }
    std::int64_t hour_start = day_start + hour * 3600;
    if (!minutes_[static_cast<std::size_t>(minute)]) {
      int next_minute = next_bit(minutes_, minute + 1);
      t = next_minute < 0 ? hour_start + 3600 : hour_start + next_minute * 60;
      continue;
    }
    std::int64_t minute_start = hour_start + minute * 60;
    if (!seconds_[static_cast<std::size_t>(second)]) {
      int next_second = next_bit(seconds_, second + 1);
      t = next_second < 0 ? minute_start + 60 : minute_start + next_second;
      continue;
    }
    return t;
  }
  return std::nullopt;
}

std::optional<TimePoint> CronSchedule::next(TimePoint after, const TimeZone& zone) const {
  std::int64_t start = to_seconds(after) + 1;
  if (start > kMaxTimePointSeconds) return std::nullopt;
  auto found = next_utc(*this, zone, start, start + kHorizonSeconds);
  if (!found || *found > kMaxTimePointSeconds) return std::nullopt;
  return from_seconds(*found);
}

std::optional<TimePoint> CronSchedule::previous(TimePoint at_or_before,
                                                const TimeZone& zone) const {
  std::int64_t end = to_seconds(at_or_before);
  // Widen a window (end - span, end] until it holds a fire time, reusing the forward search so
  // both directions agree on DST; then narrow down to the last one by bisection, which costs
  // O(log span) searches even for a schedule that fires every second.
  std::optional<std::int64_t> some;
  for (std::int64_t span = 1; span <= 2 * kHorizonSeconds; span *= 2) {
    std::int64_t start = end - span + 1;
    if (start < kMinTimePointSeconds) break;
    auto found = next_utc(*this, zone, start, end + 1);
    if (found) {
      some = found;
      break;
    }
  }
  if (!some) return std::nullopt;
  std::int64_t low = *some;  // a fire time
  std::int64_t high = end;   // no fire time in (high, end]
  while (low < high) {
    std::int64_t middle = low + (high - low) / 2;
    auto found = next_utc(*this, zone, middle + 1, high + 1);
    if (found) {
      low = *found;
    } else {
      high = middle;
    }
  }
  return from_seconds(low);
}

std::vector<TimePoint> CronSchedule::fires_between(TimePoint from, TimePoint to,
                                                   const TimeZone& zone, std::size_t limit) const {
  std::vector<TimePoint> fires;
  TimePoint cursor = from;
  while (fires.size() < limit) {
    auto fire = next(cursor, zone);
    if (!fire || *fire > to) break;
    fires.push_back(*fire);
    cursor = *fire;
  }
  return fires;
}

std::optional<std::string> CronSchedule::never_fires_reason() const {
  // Only "both day fields must match" can make every date fail, and only through the
  // day-of-month and month fields: every weekday occurs in every month.
  bool both_must_match = day_of_month_star_ || day_of_week_star_;
  if (!both_must_match || last_day_of_month_ || days_of_week_.none()) return std::nullopt;
  for (unsigned month = 1; month <= 12; ++month) {
    if (!months_[month]) continue;
    unsigned longest = month == 2 ? 29 : days_in_month(2001, month);
    for (unsigned day = 1; day <= longest; ++day) {
      if (days_of_month_[day]) return std::nullopt;
    }
  }
  return "day-of-month '" + day_of_month_text_ + "' never occurs in month '" + month_text_ + "'";
}

Result<std::vector<TimePoint>> next_fire_times(std::string_view expression,
                                               std::string_view zone_name, TimePoint after,
                                               std::size_t count) {
  auto schedule = CronSchedule::parse(expression);
  if (!schedule) return std::move(schedule).error();
  auto zone = TimeZone::locate(zone_name);
  if (!zone) return std::move(zone).error();
  return schedule->fires_between(after, TimePoint::max(), *zone, count);
}

}  // namespace herald::triggers
