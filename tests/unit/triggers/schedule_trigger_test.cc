// parse_schedule_trigger and next_fire: the `schedule:` mapping of a workflow as JSON, its
// defaults, one-shot `at:` times (with an offset, or local in the trigger's zone), and one error
// per kind of mistake, each starting with the key it is about.
#include "engine/triggers/schedule_trigger.h"

#include <gtest/gtest.h>

#include "tests/unit/triggers/helpers.h"

namespace herald::triggers {
namespace {

using namespace std::chrono_literals;
using testing::instant;

TEST(ScheduleTrigger, CronWithDefaults) {
  auto trigger = parse_schedule_trigger({{"cron", "0 9 * * MON-FRI"}});
  ASSERT_TRUE(trigger.ok()) << trigger.error().message;
  ASSERT_TRUE(trigger->cron.has_value());
  EXPECT_FALSE(trigger->at.has_value());
  EXPECT_TRUE(trigger->zone.is_utc());
  EXPECT_EQ(trigger->catch_up, CatchUp::last);
  EXPECT_EQ(trigger->window, kDefaultCatchUpWindow);
  EXPECT_EQ(format_iso8601(*next_fire(*trigger, instant("2026-01-03T00:00:00Z"))),
            "2026-01-05T09:00:00.000Z");
}

TEST(ScheduleTrigger, CronInAZoneWithPolicy) {
  auto trigger = parse_schedule_trigger({{"cron", "30 2 * * *"},
                                         {"timezone", "Europe/Paris"},
                                         {"catch_up", "last"},
                                         {"window", "90m"}});
  ASSERT_TRUE(trigger.ok()) << trigger.error().message;
  EXPECT_EQ(trigger->zone.name(), "Europe/Paris");
  EXPECT_EQ(trigger->window, 90min);
  EXPECT_EQ(format_local(*next_fire(*trigger, instant("2026-03-28T12:00:00Z")), trigger->zone),
            "2026-03-29T03:30:00+02:00");

  EXPECT_EQ(parse_schedule_trigger({{"cron", "@daily"}, {"catch_up", "all"}})->catch_up,
            CatchUp::all);
  EXPECT_EQ(parse_schedule_trigger({{"cron", "@daily"}, {"catch_up", "none"}})->catch_up,
            CatchUp::none);
  // The workflow schema once described catch_up as a boolean; true and false still read.
  EXPECT_EQ(parse_schedule_trigger({{"cron", "@daily"}, {"catch_up", true}})->catch_up,
            CatchUp::last);
  EXPECT_EQ(parse_schedule_trigger({{"cron", "@daily"}, {"catch_up", false}})->catch_up,
            CatchUp::none);
}

TEST(ScheduleTrigger, OneShotTimes) {
  struct Case {
    const char* at;
    const char* timezone;  // nullptr: none given
    const char* expected;  // UTC
  };
  const Case cases[] = {
      {"2026-12-01T09:00:00+01:00", nullptr, "2026-12-01T08:00:00.000Z"},
      {"2026-12-01T09:00:00Z", "Europe/Paris", "2026-12-01T09:00:00.000Z"},  // offset wins
      // Local readings are read in `timezone`, the RFC 5545 way.
      {"2026-12-01T09:00", "Europe/Paris", "2026-12-01T08:00:00.000Z"},
      {"2026-12-01 09:00:30", "America/New_York", "2026-12-01T14:00:30.000Z"},
      {"2026-03-29T02:30:00", "Europe/Paris", "2026-03-29T01:30:00.000Z"},  // in the gap
      {"2026-10-25T02:30", "Europe/Paris", "2026-10-25T00:30:00.000Z"},     // repeated
      {"2026-12-01T09:00", nullptr, "2026-12-01T09:00:00.000Z"},            // UTC by default
      // A date alone is the zone's midnight.
      {"2026-12-01", "Europe/Paris", "2026-11-30T23:00:00.000Z"},
      {"2026-12-01", nullptr, "2026-12-01T00:00:00.000Z"},
  };
  for (const auto& c : cases) {
    Json config = {{"at", c.at}};
    if (c.timezone != nullptr) config["timezone"] = c.timezone;
    auto trigger = parse_schedule_trigger(config);
    ASSERT_TRUE(trigger.ok()) << c.at << ": " << trigger.error().message;
    ASSERT_TRUE(trigger->at.has_value());
    EXPECT_FALSE(trigger->cron.has_value());
    EXPECT_EQ(format_iso8601(*trigger->at), c.expected) << c.at;
  }

  auto trigger = parse_schedule_trigger({{"at", "2026-12-01T09:00:00+01:00"}});
  ASSERT_TRUE(trigger.ok());
  EXPECT_EQ(next_fire(*trigger, instant("2026-11-01T00:00:00Z")), trigger->at);
  EXPECT_FALSE(next_fire(*trigger, *trigger->at).has_value());  // strictly after
  EXPECT_FALSE(next_fire(*trigger, instant("2027-01-01T00:00:00Z")).has_value());
}

struct ErrorCase {
  const char* why;
  Json config;
  const char* message;
  const char* key;
};

void PrintTo(const ErrorCase& c, std::ostream* os) {
  *os << c.why;
}

class ScheduleTriggerErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ScheduleTriggerErrorTest, SaysWhichKeyAndWhatIsExpected) {
  const ErrorCase& c = GetParam();
  auto trigger = parse_schedule_trigger(c.config);
  ASSERT_FALSE(trigger.ok()) << c.why;
  EXPECT_EQ(trigger.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(trigger.error().message, c.message) << c.why;
  EXPECT_EQ(trigger.error().details.value("key", ""), c.key) << c.why;
}

const ErrorCase kErrors[] = {
    {"not a mapping", "0 9 * * *", "schedule: expected a mapping with `cron` or `at`, got string",
     "schedule"},
    {"neither cron nor at", Json::object(),
     "schedule: a schedule needs `cron` (e.g. \"0 9 * * MON-FRI\") or `at` (e.g. "
     "\"2026-12-01T09:00:00+01:00\")",
     "schedule"},
    {"both",
     {{"cron", "@daily"}, {"at", "2026-12-01T09:00:00Z"}},
     "schedule: give either `cron` or `at`, not both",
     "schedule"},
    {"unknown key",
     {{"cron", "@daily"}, {"timezon", "Europe/Paris"}},
     "timezon: unknown schedule setting; expected cron, at, timezone, catch_up or window",
     "timezon"},
    {"cron not a string",
     {{"cron", 5}},
     "cron: expected a cron expression such as \"0 9 * * MON-FRI\", got number",
     "cron"},
    {"cron does not parse",
     {{"cron", "0 9 * * FUNDAY"}},
     "cron: day-of-week: 'FUNDAY' is not a day name; expected 0-7 or SUN-SAT (at column 9)",
     "cron"},
    {"cron never fires",
     {{"cron", "0 0 30 2 *"}},
     "cron: '0 0 30 2 *' never fires: day-of-month '30' never occurs in month '2'",
     "cron"},
    {"cron never fires, April has 30 days",
     {{"cron", "0 0 31 APR *"}},
     "cron: '0 0 31 APR *' never fires: day-of-month '31' never occurs in month 'APR'",
     "cron"},
    {"unknown zone",
     {{"cron", "@daily"}, {"timezone", "Europe/Pariss"}},
     "timezone: unknown time zone 'Europe/Pariss'; expected an IANA name such as Europe/Paris, "
     "America/New_York or UTC (did you mean 'Europe/Paris'?)",
     "timezone"},
    {"zone not a string",
     {{"cron", "@daily"}, {"timezone", 1}},
     "timezone: expected an IANA time zone name such as Europe/Paris, got number",
     "timezone"},
    {"at not a time",
     {{"at", "next tuesday"}},
     "at: 'next tuesday' is not a time; expected ISO-8601 with an offset such as "
     "2026-12-01T09:00:00+01:00, or a local 2026-12-01T09:00 read in `timezone`",
     "at"},
    {"at with an impossible date",
     {{"at", "2026-02-30T09:00"}},
     "at: '2026-02-30T09:00' is not a time; expected ISO-8601 with an offset such as "
     "2026-12-01T09:00:00+01:00, or a local 2026-12-01T09:00 read in `timezone`",
     "at"},
    {"at not a string",
     {{"at", 1764576000}},
     "at: expected an ISO-8601 time such as 2026-12-01T09:00:00+01:00, got number",
     "at"},
    {"unknown policy",
     {{"cron", "@daily"}, {"catch_up", "sometimes"}},
     "catch_up: 'sometimes' is not a catch-up policy; expected none, last or all",
     "catch_up"},
    {"policy of the wrong type",
     {{"cron", "@daily"}, {"catch_up", 2}},
     "catch_up: expected none, last or all, got number",
     "catch_up"},
    {"window not a duration",
     {{"cron", "@daily"}, {"window", "an hour"}},
     "window: bad duration 'an hour'; expected <number><unit> parts with unit ms, s, m, h or d",
     "window"},
    {"window of zero",
     {{"cron", "@daily"}, {"window", "0s"}},
     "window: must be longer than zero",
     "window"},
    {"window as a number",
     {{"cron", "@daily"}, {"window", 3600}},
     "window: expected a duration such as \"30m\" or \"2h\", got number",
     "window"},
    {"window without last",
     {{"cron", "@daily"}, {"catch_up", "all"}, {"window", "1h"}},
     "window: only applies with catch_up: last (here it is all)",
     "window"},
};
INSTANTIATE_TEST_SUITE_P(Errors, ScheduleTriggerErrorTest, ::testing::ValuesIn(kErrors));

}  // namespace
}  // namespace herald::triggers
