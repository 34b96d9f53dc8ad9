#include "engine/triggers/time_zone.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include <date/date.h>
#include <date/tz.h>

#include "engine/triggers/internal/zone_intervals.h"

namespace herald::triggers {

namespace {

using internal::kFarFuture;
using internal::kFarPast;
using internal::OffsetInterval;

// One transition date of a POSIX TZ rule ("M3.5.0/3", "J60", "59").
struct PosixDate {
  enum class Kind { julian_no_leap, zero_based, month_week_day } kind = Kind::month_week_day;
  int day = 0;                           // Jn: 1-365; n: 0-365
  int month = 0, week = 0, weekday = 0;  // Mm.w.d
  std::int64_t time = 7200;  // seconds after local midnight; may be negative or past 24h
};

// The rule a TZif file ends with, e.g. "CET-1CEST,M3.5.0,M10.5.0/3". Needed because the
// date library (3.0.1, reading the system's TZif files) stops at the last transition listed in
// the file, 2037 for Debian's tzdata, and would keep standard time forever after that; the
// footer says how DST continues.
struct PosixTz {
  std::int64_t std_offset = 0;  // local = UTC + offset (POSIX writes the sign the other way)
  bool has_dst = false;
  std::int64_t dst_offset = 0;
  PosixDate start, end;  // DST starts (read in standard time) and ends (read in DST)
};

class PosixParser {
 public:
  explicit PosixParser(std::string_view text) : s_(text) {}

  std::optional<PosixTz> parse() {
    PosixTz tz;
    std::int64_t offset = 0;
    if (!name() || !signed_hms(offset)) return std::nullopt;
    tz.std_offset = -offset;
    if (done()) return tz;
    if (!name()) return std::nullopt;
    tz.has_dst = true;
    tz.dst_offset = tz.std_offset + 3600;
    if (!done() && s_[i_] != ',') {
      if (!signed_hms(offset)) return std::nullopt;
      tz.dst_offset = -offset;
    }
    if (done()) {
      // POSIX leaves the default rule to the implementation; glibc uses the US rule.
      tz.start = {PosixDate::Kind::month_week_day, 0, 3, 2, 0, 7200};
      tz.end = {PosixDate::Kind::month_week_day, 0, 11, 1, 0, 7200};
      return tz;
    }
    if (!eat(',') || !date(tz.start) || !eat(',') || !date(tz.end) || !done()) {
      return std::nullopt;
    }
    return tz;
  }

 private:
  bool done() const { return i_ >= s_.size(); }
  bool eat(char c) {
    if (done() || s_[i_] != c) return false;
    ++i_;
    return true;
  }
  bool name() {
    if (eat('<')) {
      auto close = s_.find('>', i_);
      if (close == std::string_view::npos) return false;
      i_ = close + 1;
      return true;
    }
    std::size_t start = i_;
    while (!done() && std::isalpha(static_cast<unsigned char>(s_[i_]))) ++i_;
    return i_ - start >= 3;
  }
  bool number(int& out, int max_digits) {
    std::size_t start = i_;
    out = 0;
    while (!done() && std::isdigit(static_cast<unsigned char>(s_[i_])) &&
           i_ - start < static_cast<std::size_t>(max_digits)) {
      out = out * 10 + (s_[i_++] - '0');
    }
    return i_ > start;
  }
  // [+-]hh[:mm[:ss]], hours up to 167 (RFC 8536 allows that in transition times).
  bool signed_hms(std::int64_t& out) {
    int sign = 1;
    if (eat('-')) {
      sign = -1;
    } else {
      eat('+');
    }
    int hours = 0, minutes = 0, seconds = 0;
    if (!number(hours, 3) || hours > 167) return false;
    if (eat(':')) {
      if (!number(minutes, 2) || minutes > 59) return false;
      if (eat(':') && (!number(seconds, 2) || seconds > 59)) return false;
    }
    out = sign * (hours * 3600LL + minutes * 60LL + seconds);
    return true;
  }
  bool date(PosixDate& d) {
    if (eat('M')) {
      d.kind = PosixDate::Kind::month_week_day;
      if (!number(d.month, 2) || !eat('.') || !number(d.week, 1) || !eat('.') ||
          !number(d.weekday, 1)) {
        return false;
      }
      if (d.month < 1 || d.month > 12 || d.week < 1 || d.week > 5 || d.weekday > 6) return false;
    } else if (eat('J')) {
      d.kind = PosixDate::Kind::julian_no_leap;
      if (!number(d.day, 3) || d.day < 1 || d.day > 365) return false;
    } else {
      d.kind = PosixDate::Kind::zero_based;
      if (!number(d.day, 3) || d.day > 365) return false;
    }
    d.time = 7200;
    if (eat('/') && !signed_hms(d.time)) return false;
    return true;
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

// Days since the epoch of a rule's date in year `y`.
std::int64_t posix_day(const PosixDate& d, int y) {
  using namespace date;
  auto jan1 = sys_days(year(y) / January / 1).time_since_epoch().count();
  switch (d.kind) {
    case PosixDate::Kind::julian_no_leap:
      return jan1 + d.day - 1 + (year(y).is_leap() && d.day >= 60 ? 1 : 0);
    case PosixDate::Kind::zero_based:
      return jan1 + d.day;
    case PosixDate::Kind::month_week_day: {
      auto first = sys_days(year(y) / month(d.month) / 1);
      unsigned first_weekday = weekday(first).c_encoding();
      int day = 1 + (d.weekday - static_cast<int>(first_weekday) + 7) % 7 + (d.week - 1) * 7;
      int last = static_cast<int>(static_cast<unsigned>(
          year_month_day_last(year(y), month_day_last(month(d.month))).day()));
      while (day > last) day -= 7;
      return first.time_since_epoch().count() + day - 1;
    }
  }
  return jan1;
}

OffsetInterval posix_interval_at(const PosixTz& tz, std::int64_t utc) {
  using namespace date;
  auto day = std::chrono::floor<days>(sys_seconds(std::chrono::seconds(utc + tz.std_offset)));
  int y = static_cast<int>(year_month_day(day).year());
  // Transitions of the year around `utc`, with the offset each one switches to.
  std::array<std::pair<std::int64_t, std::int64_t>, 6> transitions;
  std::size_t n = 0;
  for (int yy = y - 1; yy <= y + 1; ++yy) {
    transitions[n++] = {posix_day(tz.start, yy) * 86400 + tz.start.time - tz.std_offset,
                        tz.dst_offset};
    transitions[n++] = {posix_day(tz.end, yy) * 86400 + tz.end.time - tz.dst_offset, tz.std_offset};
  }
  std::sort(transitions.begin(), transitions.end());
  OffsetInterval result{kFarPast, kFarFuture, tz.std_offset};
  for (const auto& [at, offset] : transitions) {
    if (at <= utc) {
      result.begin = at;
      result.offset = offset;
    } else {
      result.end = at;
      break;
    }
  }
  return result;
}

// Where the date library reads the zone files from on Debian (it looks there first).
constexpr std::string_view kZoneinfoDir = "/usr/share/zoneinfo/";

// The footer rule of a TZif (version 2+) file: the text between the last two newlines.
std::optional<PosixTz> read_footer(const std::string& zone_name) {
  std::string path(kZoneinfoDir);
  path.append(zone_name);
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 6 || bytes.compare(0, 4, "TZif") != 0 || bytes[4] < '2') return std::nullopt;
  if (bytes.back() != '\n') return std::nullopt;
  auto start = bytes.rfind('\n', bytes.size() - 2);
  if (start == std::string::npos) return std::nullopt;
  auto footer = std::string_view(bytes).substr(start + 1, bytes.size() - start - 2);
  if (footer.empty()) return std::nullopt;
  return PosixParser(footer).parse();
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                  std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string suggestion_for(std::string_view name) {
  try {
    std::string best;
    std::size_t best_distance = 3;  // farther than 2 edits is a guess, not a typo
    for (const auto& zone : date::get_tzdb().zones) {
      std::size_t distance = edit_distance(name, zone.name());
      if (distance < best_distance) {
        best_distance = distance;
        best = zone.name();
      }
    }
    return best;
  } catch (const std::exception&) {
    return {};
  }
}

}  // namespace

struct TimeZone::Data {
  std::string name;
  const date::time_zone* zone = nullptr;
  std::optional<PosixTz> footer;  // only kept when it has DST; otherwise the table suffices
};

TimeZone::TimeZone() = default;
TimeZone::TimeZone(std::shared_ptr<const Data> data) : data_(std::move(data)) {}

Result<TimeZone> TimeZone::locate(std::string_view name) {
  // Zones are immutable once loaded and a scheduler asks for the same few again and again.
  if (name == "UTC") return TimeZone();  // the fast path, no table lookups
  static std::mutex mutex;
  static std::unordered_map<std::string, std::shared_ptr<const Data>> cache;
  std::string key(name);
  {
    std::lock_guard lock(mutex);
    auto found = cache.find(key);
    if (found != cache.end()) return TimeZone(found->second);
  }
  if (name.empty()) {
    return make_error(ErrorCode::invalid_argument,
                      "time zone is empty; expected an IANA name such as Europe/Paris, "
                      "America/New_York or UTC");
  }
  auto data = std::make_shared<Data>();
  try {
    data->zone = date::locate_zone(name);
  } catch (const std::exception&) {
    std::string message = "unknown time zone '" + key +
                          "'; expected an IANA name such as Europe/Paris, America/New_York or UTC";
    std::string suggestion = suggestion_for(name);
    if (!suggestion.empty()) message += " (did you mean '" + suggestion + "'?)";
    Error error = make_error(ErrorCode::invalid_argument, message);
    error.details = {{"timezone", key}};
    if (!suggestion.empty()) error.details["suggestion"] = suggestion;
    return error;
  }
  data->name = key;
  auto footer = read_footer(std::string(data->zone->name()));
  if (footer && footer->has_dst) data->footer = footer;
  std::lock_guard lock(mutex);
  auto [it, inserted] = cache.emplace(key, std::move(data));
  return TimeZone(it->second);
}

const std::string& TimeZone::name() const {
  static const std::string utc = "UTC";
  return data_ ? data_->name : utc;
}

bool TimeZone::is_utc() const {
  return data_ == nullptr;
}

std::chrono::seconds TimeZone::utc_offset(TimePoint time) const {
  auto utc = std::chrono::floor<std::chrono::seconds>(time).time_since_epoch().count();
  return std::chrono::seconds(internal::interval_at(*this, utc).offset);
}

LocalDateTime TimeZone::to_local(TimePoint time) const {
  auto utc = std::chrono::floor<std::chrono::seconds>(time).time_since_epoch().count();
  return internal::from_local_seconds(utc + internal::interval_at(*this, utc).offset);
}

TimePoint TimeZone::resolve(const LocalDateTime& local) const {
  std::int64_t wall = internal::to_local_seconds(local);
  // Start two days early: no zone is that far from UTC, so the first interval's local range
  // begins before `wall`, and walking forward meets the earliest interval that shows it.
  auto interval = internal::interval_at(*this, wall - 2 * 86400);
  std::int64_t previous_offset = interval.offset;
  for (;;) {
    if (wall < interval.begin + interval.offset) {
      // Skipped by a forward jump: read with the offset before the gap (RFC 5545).
      return TimePoint(std::chrono::seconds(wall - previous_offset));
    }
    if (wall < interval.end + interval.offset) {
      return TimePoint(std::chrono::seconds(wall - interval.offset));
    }
    previous_offset = interval.offset;
    interval = internal::interval_at(*this, interval.end);
  }
}

std::string format_local(TimePoint time, const TimeZone& zone) {
  return format_iso8601_offset(time, zone.utc_offset(time));
}

namespace internal {

OffsetInterval interval_at(const TimeZone& zone, std::int64_t utc) {
  const TimeZone::Data* data = zone.data();
  if (data == nullptr) return {};
  using std::chrono::seconds;
  auto info = data->zone->get_info(date::sys_seconds(seconds(utc)));
  auto clamp = [](date::sys_seconds t) {
    return std::clamp<std::int64_t>(t.time_since_epoch().count(), kFarPast, kFarFuture);
  };
  OffsetInterval interval{clamp(info.begin), clamp(info.end), info.offset.count()};
  // The table ends (at 2037 in Debian's files) with an interval "until the end of time"; past
  // that the footer rule carries on the DST pattern.
  static const auto open_ended = date::sys_days(date::year(9999) / 1 / 1);
  if (data->footer && info.end >= open_ended) {
    auto rule = posix_interval_at(*data->footer, utc);
    interval.begin = std::max(interval.begin, rule.begin);
    interval.end = rule.end;
    interval.offset = rule.offset;
  }
  return interval;
}

std::int64_t to_local_seconds(const LocalDateTime& local) {
  using namespace date;
  auto midnight = sys_days(year(local.year) / month(local.month) / date::day(local.day));
  return midnight.time_since_epoch().count() * std::int64_t{86400} + local.hour * 3600 +
         local.minute * 60 + local.second;
}

LocalDateTime from_local_seconds(std::int64_t local) {
  using namespace date;
  std::int64_t days_since = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
  std::int64_t second_of_day = local - days_since * 86400;
  year_month_day ymd{sys_days(days(days_since))};
  LocalDateTime result;
  result.year = static_cast<int>(ymd.year());
  result.month = static_cast<unsigned>(ymd.month());
  result.day = static_cast<unsigned>(ymd.day());
  result.hour = static_cast<unsigned>(second_of_day / 3600);
  result.minute = static_cast<unsigned>(second_of_day / 60 % 60);
  result.second = static_cast<unsigned>(second_of_day % 60);
  return result;
}

}  // namespace internal

}  // namespace herald::triggers
