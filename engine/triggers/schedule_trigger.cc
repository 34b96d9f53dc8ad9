#include "engine/triggers/schedule_trigger.h"

#include <algorithm>
#include <array>

#include <date/date.h>

#include "engine/common/duration.h"

namespace herald::triggers {

namespace {

constexpr std::array<const char*, 5> kKeys = {"cron", "at", "timezone", "catch_up", "window"};

Error config_error(const std::string& key, const std::string& what, Json details = nullptr) {
  Error error = make_error(ErrorCode::invalid_argument, key + ": " + what);
  error.details = details.is_object() ? std::move(details) : Json::object();
  error.details["key"] = key;
  return error;
}

std::string type_name(const Json& value) {
  return value.type_name();
}

// A wall-clock reading without a zone: "2026-12-01T09:00[:00]" (or with a space), or a date
// alone, which means its local midnight.
std::optional<LocalDateTime> parse_local(const std::string& text) {
  auto digits = [&text](std::size_t at, std::size_t count, unsigned& out) {
    if (at + count > text.size()) return false;
    out = 0;
    for (std::size_t i = at; i < at + count; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      out = out * 10 + static_cast<unsigned>(text[i] - '0');
    }
    return true;
  };
  unsigned year = 0;
  LocalDateTime local;
  if (!digits(0, 4, year) || text.size() < 10 || text[4] != '-' || !digits(5, 2, local.month) ||
      text[7] != '-' || !digits(8, 2, local.day)) {
    return std::nullopt;
  }
  local.year = static_cast<int>(year);
  if (text.size() > 10) {
    if ((text[10] != 'T' && text[10] != ' ') || !digits(11, 2, local.hour) || text.size() < 16 ||
        text[13] != ':' || !digits(14, 2, local.minute)) {
      return std::nullopt;
    }
    if (text.size() > 16 &&
        (text.size() != 19 || text[16] != ':' || !digits(17, 2, local.second))) {
      return std::nullopt;
    }
  }
  date::year_month_day ymd{date::year(local.year), date::month(local.month), date::day(local.day)};
  if (!ymd.ok() || local.hour > 23 || local.minute > 59 || local.second > 59) return std::nullopt;
  return local;
}

Result<TimePoint> parse_at(const std::string& text, const TimeZone& zone) {
  // A date alone goes to the zone's midnight, not UTC's as parse_iso8601 would read it: with
  // `timezone: Europe/Paris`, "2026-12-01" means the Paris day.
  if (text.size() != 10) {
    if (auto instant = parse_iso8601(text)) return *instant;
  }
  if (auto local = parse_local(text)) return zone.resolve(*local);
  return config_error("at", "'" + text +
                                "' is not a time; expected ISO-8601 with an offset such as "
                                "2026-12-01T09:00:00+01:00, or a local 2026-12-01T09:00 read "
                                "in `timezone`");
}

}  // namespace

Result<ScheduleTrigger> parse_schedule_trigger(const Json& config) {
  if (!config.is_object()) {
    return config_error("schedule",
                        "expected a mapping with `cron` or `at`, got " + type_name(config));
  }
  for (const auto& [key, value] : config.items()) {
    if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end()) {
      return config_error(key,
                          "unknown schedule setting; expected cron, at, timezone, "
                          "catch_up or window");
    }
  }
  bool has_cron = config.contains("cron");
  bool has_at = config.contains("at");
  if (has_cron == has_at) {
    return config_error("schedule",
                        has_cron ? "give either `cron` or `at`, not both"
                                 : "a schedule needs `cron` (e.g. \"0 9 * * MON-FRI\") or `at` "
                                   "(e.g. \"2026-12-01T09:00:00+01:00\")");
  }

  ScheduleTrigger trigger;
  if (config.contains("timezone")) {
    const Json& value = config["timezone"];
    if (!value.is_string()) {
      return config_error("timezone", "expected an IANA time zone name such as Europe/Paris, got " +
                                          type_name(value));
    }
    auto zone = TimeZone::locate(value.get<std::string>());
    if (!zone) {
      return config_error("timezone", zone.error().message, zone.error().details);
    }
    trigger.zone = *zone;
  }

  if (has_cron) {
    const Json& value = config["cron"];
    if (!value.is_string()) {
      return config_error("cron", "expected a cron expression such as \"0 9 * * MON-FRI\", got " +
                                      type_name(value));
    }
    auto schedule = CronSchedule::parse(value.get<std::string>());
    if (!schedule) return config_error("cron", schedule.error().message, schedule.error().details);
    if (auto reason = schedule->never_fires_reason()) {
      return config_error("cron", "'" + schedule->text() + "' never fires: " + *reason,
                          {{"expression", schedule->text()}});
    }
    trigger.cron = std::move(*schedule);
  } else {
    const Json& value = config["at"];
    if (!value.is_string()) {
      return config_error(
          "at",
          "expected an ISO-8601 time such as 2026-12-01T09:00:00+01:00, got " + type_name(value));
    }
    auto at = parse_at(value.get<std::string>(), trigger.zone);
    if (!at) return std::move(at).error();
    trigger.at = *at;
  }

  if (config.contains("catch_up")) {
    const Json& value = config["catch_up"];
    if (value.is_boolean()) {
      trigger.catch_up = value.get<bool>() ? CatchUp::last : CatchUp::none;
    } else if (value.is_string()) {
      auto policy = parse_catch_up(value.get<std::string>());
      if (!policy) {
        return config_error("catch_up",
                            "'" + value.get<std::string>() +
                                "' is not a catch-up policy; expected none, last or all");
      }
      trigger.catch_up = *policy;
    } else {
      return config_error("catch_up", "expected none, last or all, got " + type_name(value));
    }
  }

  if (config.contains("window")) {
    const Json& value = config["window"];
    if (!value.is_string()) {
      return config_error("window",
                          "expected a duration such as \"30m\" or \"2h\", got " + type_name(value));
    }
    auto window = parse_duration(value.get<std::string>());
    if (!window) return config_error("window", window.error().message);
    if (window->count() <= 0) return config_error("window", "must be longer than zero");
    if (trigger.catch_up != CatchUp::last) {
      return config_error("window", std::string("only applies with catch_up: last (here it is ") +
                                        std::string(to_string(trigger.catch_up)) + ")");
    }
    trigger.window = *window;
  }
  return trigger;
}

std::optional<TimePoint> next_fire(const ScheduleTrigger& trigger, TimePoint after) {
  if (trigger.cron) return trigger.cron->next(after, trigger.zone);
  if (trigger.at && *trigger.at > after) return trigger.at;
  return std::nullopt;
}

MissedFires missed_fires(const ScheduleTrigger& trigger, TimePoint last_fire, TimePoint now,
                         std::size_t limit) {
  if (trigger.cron) {
    return missed_fires(*trigger.cron, trigger.zone, last_fire, now, trigger.catch_up,
                        trigger.window, limit);
  }
  MissedFires result;
  if (!trigger.at || *trigger.at <= last_fire || *trigger.at > now) return result;
  bool run = trigger.catch_up == CatchUp::all ||
             (trigger.catch_up == CatchUp::last && now - *trigger.at <= trigger.window);
  if (run && limit > 0) {
    result.fires.push_back(*trigger.at);
  } else {
    result.skipped = 1;
  }
  return result;
}

}  // namespace herald::triggers
