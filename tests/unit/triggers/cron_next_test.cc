// CronSchedule::next over expressions x time zones x dates, against fire times worked out by hand
// (each row says how), with the DST transitions of 2026:
//   Europe/Paris      CET +01:00 / CEST +02:00. Mar 29 at 01:00Z clocks jump 02:00 -> 03:00;
//                     Oct 25 at 01:00Z they fall 03:00 -> 02:00, so 02:00-02:59 is shown twice.
//   America/New_York  EST -05:00 / EDT -04:00. Mar 8 at 07:00Z 02:00 -> 03:00; Nov 1 at 06:00Z
//                     02:00 -> 01:00, so 01:00-01:59 is shown twice.
//   Australia/Lord_Howe  +10:30 / +11:00, a 30-minute DST. Apr 5 at 15:00Z (Apr 4) 02:00 ->
//                     01:30, so 01:30-01:59 twice; Oct 4 at 15:30Z (Oct 3) 02:00 -> 02:30.
//   Asia/Kolkata      +05:30 all year. UTC.
// RFC 5545 rules: a skipped local time fires with the offset before the gap; a repeated one
// fires once, at its first (summer-time) occurrence.
#include <gtest/gtest.h>

#include <chrono>
#include <set>

#include <date/tz.h>

#include "tests/unit/triggers/helpers.h"

namespace herald::triggers {
namespace {

using testing::cron;
using testing::instant;
using testing::next_local;
using testing::zone;

struct NextCase {
  const char* why;
  const char* expression;
  const char* zone;
  const char* after;
  std::vector<std::string> expected;  // the next fire times, as format_local prints them
};

void PrintTo(const NextCase& c, std::ostream* os) {
  *os << "'" << c.expression << "' in " << c.zone << " after " << c.after;
}

class CronNextTest : public ::testing::TestWithParam<NextCase> {};

TEST_P(CronNextTest, FiresAtTheExpectedLocalTimes) {
  const NextCase& c = GetParam();
  auto tz = zone(c.zone);
  auto schedule = cron(c.expression);
  EXPECT_EQ(next_local(schedule, tz, instant(c.after), c.expected.size()), c.expected)
      << c.why << "\n  '" << c.expression << "' in " << c.zone << " after " << c.after;
}

const NextCase kParisSpring[] = {
    {"02:30 does not exist on Mar 29; read with the offset before the gap (+01:00) it is "
     "01:30Z, which the clocks show as 03:30 CEST. The next day is ordinary summer time.",
     "30 2 * * *",
     "Europe/Paris",
     "2026-03-28T12:00:00+01:00",
     {"2026-03-29T03:30:00+02:00", "2026-03-30T02:30:00+02:00"}},
    {"02:00 is the first skipped minute: 02:00+01:00 = 01:00Z = 03:00 CEST",
     "0 2 * * *",
     "Europe/Paris",
     "2026-03-28T12:00:00+01:00",
     {"2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"}},
    {"03:00 CEST exists and is the same instant (01:00Z) as the skipped 02:00",
     "0 3 * * *",
     "Europe/Paris",
     "2026-03-28T12:00:00+01:00",
     {"2026-03-29T03:00:00+02:00", "2026-03-30T03:00:00+02:00"}},
    {"hourly across the gap: 01:00 CET (00:00Z); the skipped 02:00 and the real 03:00 are both "
     "01:00Z, so one fire; then 04:00 (02:00Z) - still one fire per UTC hour",
     "0 * * * *",
     "Europe/Paris",
     "2026-03-29T00:30:00+01:00",
     {"2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"}},
    {"every 15 minutes across the gap: 02:00, 02:15, 02:30, 02:45 map to 01:00Z-01:45Z (shown "
     "03:00-03:45) and coincide with the real 03:00-03:45; each instant fires once",
     "*/15 * * * *",
     "Europe/Paris",
     "2026-03-29T01:50:00+01:00",
     {"2026-03-29T03:00:00+02:00", "2026-03-29T03:15:00+02:00", "2026-03-29T03:30:00+02:00",
      "2026-03-29T03:45:00+02:00", "2026-03-29T04:00:00+02:00"}},
    {"the day before and after the change at 09:00 (weekdays): 08:00Z, then 07:00Z",
     "0 9 * * MON-FRI",
     "Europe/Paris",
     "2026-03-26T10:00:00+01:00",
     {"2026-03-27T09:00:00+01:00", "2026-03-30T09:00:00+02:00"}},
};
INSTANTIATE_TEST_SUITE_P(ParisSpringForward, CronNextTest, ::testing::ValuesIn(kParisSpring));

const NextCase kParisFall[] = {
    {"02:30 happens twice on Oct 25 (00:30Z in CEST, 01:30Z in CET): first occurrence only; "
     "the next day is winter time",
     "30 2 * * *",
     "Europe/Paris",
     "2026-10-24T12:00:00+02:00",
     {"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
    {"hourly across the repeat: 01:00 CEST, 02:00 CEST (00:00Z); 02:00 CET (01:00Z) is the "
     "same local time again and does not fire; 03:00 CET (02:00Z). Two UTC hours apart.",
     "0 * * * *",
     "Europe/Paris",
     "2026-10-25T00:30:00+02:00",
     {"2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+01:00",
      "2026-10-25T04:00:00+01:00"}},
    {"every 15 minutes: 02:00-02:45 fire in CEST only; the repeated 02:00-02:45 CET do not, so "
     "there is no fire from 00:45Z to 02:00Z",
     "*/15 * * * *",
     "Europe/Paris",
     "2026-10-25T01:50:00+02:00",
     {"2026-10-25T02:00:00+02:00", "2026-10-25T02:15:00+02:00", "2026-10-25T02:30:00+02:00",
      "2026-10-25T02:45:00+02:00", "2026-10-25T03:00:00+01:00"}},
    {"asked during the second showing of 02:00-02:59 (02:10 CET = 01:10Z): 02:15 CET is a "
     "repeat, so the next fire is 03:00 CET",
     "*/15 * * * *",
     "Europe/Paris",
     "2026-10-25T02:10:00+01:00",
     {"2026-10-25T03:00:00+01:00", "2026-10-25T03:15:00+01:00"}},
    {"asked between the two 02:30s: the first has fired, the second must not",
     "30 2 * * *",
     "Europe/Paris",
     "2026-10-25T02:40:00+02:00",
     {"2026-10-26T02:30:00+01:00"}},
};
INSTANTIATE_TEST_SUITE_P(ParisFallBack, CronNextTest, ::testing::ValuesIn(kParisFall));

const NextCase kNewYork[] = {
    {"spring: 02:30 does not exist on Mar 8; 02:30-05:00 = 07:30Z = 03:30 EDT",
     "30 2 * * *",
     "America/New_York",
     "2026-03-07T12:00:00-05:00",
     {"2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00"}},
    {"spring, hourly: 01:00 EST (06:00Z), then the skipped 02:00 and real 03:00 EDT are both "
     "07:00Z (one fire), then 04:00 EDT",
     "0 * * * *",
     "America/New_York",
     "2026-03-08T00:30:00-05:00",
     {"2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"}},
    {"weekdays 09:00 across the change: Fri 14:00Z, Mon 13:00Z",
     "0 9 * * MON-FRI",
     "America/New_York",
     "2026-03-06T10:00:00-05:00",
     {"2026-03-09T09:00:00-04:00", "2026-03-10T09:00:00-04:00"}},
    {"fall: 01:30 happens at 05:30Z (EDT) and 06:30Z (EST); the first only",
     "30 1 * * *",
     "America/New_York",
     "2026-10-31T12:00:00-04:00",
     {"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
    {"fall, hourly: 01:00 EDT (05:00Z); 01:00 EST (06:00Z) is a repeat; 02:00 EST (07:00Z)",
     "0 * * * *",
     "America/New_York",
     "2026-11-01T00:30:00-04:00",
     {"2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00", "2026-11-01T03:00:00-05:00"}},
    {"fall, every 15 minutes: 01:00-01:45 EDT, then nothing until 02:00 EST",
     "*/15 * * * *",
     "America/New_York",
     "2026-11-01T00:50:00-04:00",
     {"2026-11-01T01:00:00-04:00", "2026-11-01T01:15:00-04:00", "2026-11-01T01:30:00-04:00",
      "2026-11-01T01:45:00-04:00", "2026-11-01T02:00:00-05:00"}},
    {"fall: 02:00 is shown once, in EST (07:00Z)",
     "0 2 * * *",
     "America/New_York",
     "2026-10-31T12:00:00-04:00",
     {"2026-11-01T02:00:00-05:00", "2026-11-02T02:00:00-05:00"}},
};
INSTANTIATE_TEST_SUITE_P(NewYork, CronNextTest, ::testing::ValuesIn(kNewYork));

const NextCase kOtherZones[] = {
    {"Lord Howe springs forward 30 minutes (02:00 -> 02:30) on Oct 4: 02:00+10:30 = 15:30Z "
     "Oct 3 = 02:30+11:00",
     "0 2 * * *",
     "Australia/Lord_Howe",
     "2026-10-03T12:00:00+10:30",
     {"2026-10-04T02:30:00+11:00", "2026-10-05T02:00:00+11:00"}},
    {"Lord Howe: 02:15 is in the 30-minute gap: 02:15+10:30 = 15:45Z = 02:45+11:00",
     "15 2 * * *",
     "Australia/Lord_Howe",
     "2026-10-03T12:00:00+10:30",
     {"2026-10-04T02:45:00+11:00"}},
    {"Lord Howe falls back (02:00 -> 01:30) on Apr 5: 01:45 is shown at 14:45Z (+11:00) and "
     "15:15Z (+10:30); first only",
     "45 1 * * *",
     "Australia/Lord_Howe",
     "2026-04-04T12:00:00+11:00",
     {"2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"}},
    {"Lord Howe, every 30 minutes over the repeated half hour: 01:30+11:00 (14:30Z); 01:30 "
     "again at 15:00Z is a repeat; 02:00+10:30 (15:30Z)",
     "*/30 * * * *",
     "Australia/Lord_Howe",
     "2026-04-05T01:00:00+11:00",
     {"2026-04-05T01:30:00+11:00", "2026-04-05T02:00:00+10:30", "2026-04-05T02:30:00+10:30"}},
    {"Kolkata is +05:30 all year: 09:00 local is 03:30Z",
     "0 9 * * *",
     "Asia/Kolkata",
     "2026-03-01T00:00:00Z",
     {"2026-03-01T09:00:00+05:30", "2026-03-02T09:00:00+05:30"}},
    {"Kolkata, last day of the month at 23:30 (Feb 2026 has 28 days)",
     "30 23 L * *",
     "Asia/Kolkata",
     "2026-02-01T00:00:00+05:30",
     {"2026-02-28T23:30:00+05:30", "2026-03-31T23:30:00+05:30", "2026-04-30T23:30:00+05:30"}},
    {"a midnight schedule in Kolkata is 18:30Z the day before",
     "@daily",
     "Asia/Kolkata",
     "2026-01-01T18:00:00Z",
     {"2026-01-02T00:00:00+05:30"}},
    {"UTC never shifts",
     "30 2 * * *",
     "UTC",
     "2026-03-28T12:00:00Z",
     {"2026-03-29T02:30:00+00:00", "2026-03-30T02:30:00+00:00"}},
    {"a Paris daily midnight on both sides of the spring change",
     "@daily",
     "Europe/Paris",
     "2026-03-28T12:00:00+01:00",
     {"2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"}},
};
INSTANTIATE_TEST_SUITE_P(OtherZones, CronNextTest, ::testing::ValuesIn(kOtherZones));

const NextCase kCalendar[] = {
    {"Feb 29 exists only in leap years: 2028, then 2032",
     "0 0 29 2 *",
     "UTC",
     "2026-01-01T00:00:00Z",
     {"2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"}},
    {"L is the last day of each month: 31, 29 (2028 is a leap year), 31, 30",
     "0 0 L * *",
     "UTC",
     "2028-01-15T00:00:00Z",
     {"2028-01-31T00:00:00+00:00", "2028-02-29T00:00:00+00:00", "2028-03-31T00:00:00+00:00",
      "2028-04-30T00:00:00+00:00"}},
    {"L in Feb, Apr and Dec: 28 in 2026 and 2027, 29 in 2028",
     "0 0 L 2,4,12 *",
     "UTC",
     "2026-01-01T00:00:00Z",
     {"2026-02-28T00:00:00+00:00", "2026-04-30T00:00:00+00:00", "2026-12-31T00:00:00+00:00",
      "2027-02-28T00:00:00+00:00", "2027-04-30T00:00:00+00:00", "2027-12-31T00:00:00+00:00",
      "2028-02-29T00:00:00+00:00"}},
    {"L with other days: the 15th and the last",
     "0 12 15,L * *",
     "UTC",
     "2026-02-01T00:00:00Z",
     {"2026-02-15T12:00:00+00:00", "2026-02-28T12:00:00+00:00", "2026-03-15T12:00:00+00:00"}},
    {"the 31st skips months without one",
     "0 0 31 * *",
     "UTC",
     "2026-01-31T00:00:00Z",
     {"2026-03-31T00:00:00+00:00", "2026-05-31T00:00:00+00:00", "2026-07-31T00:00:00+00:00"}},
    {"both day fields restricted: the 13th OR any Friday. Jan 2026: Fridays 2, 9, 16; the 13th "
     "is a Tuesday",
     "0 0 13 * FRI",
     "UTC",
     "2026-01-01T00:00:00Z",
     {"2026-01-02T00:00:00+00:00", "2026-01-09T00:00:00+00:00", "2026-01-13T00:00:00+00:00",
      "2026-01-16T00:00:00+00:00"}},
    {"a day field starting with * makes Vixie cron require both: days 1, 11, 21, 31 that are "
     "Mondays (May 11, Jun 1, Aug 31 2026)",
     "0 0 */10 * MON",
     "UTC",
     "2026-01-01T00:00:00Z",
     {"2026-05-11T00:00:00+00:00", "2026-06-01T00:00:00+00:00", "2026-08-31T00:00:00+00:00"}},
    {"? counts as * : Mondays only (Jan 5 and 12, 2026)",
     "0 0 ? * MON",
     "UTC",
     "2026-01-01T00:00:00Z",
     {"2026-01-05T00:00:00+00:00", "2026-01-12T00:00:00+00:00"}},
    {"7 is Sunday (Jan 1 2026 is a Thursday)",
     "0 0 * * 7",
     "UTC",
     "2026-01-01T00:00:00Z",
     {"2026-01-04T00:00:00+00:00", "2026-01-11T00:00:00+00:00"}},
    {"0 is Sunday too",
     "0 0 * * 0",
     "UTC",
     "2026-01-01T00:00:00Z",
     {"2026-01-04T00:00:00+00:00", "2026-01-11T00:00:00+00:00"}},
    {"SAT-SUN is Saturday and Sunday",
     "0 0 * * SAT-SUN",
     "UTC",
     "2026-01-01T00:00:00Z",
     {"2026-01-03T00:00:00+00:00", "2026-01-04T00:00:00+00:00", "2026-01-10T00:00:00+00:00"}},
    {"5-7 is Friday to Sunday",
     "0 0 * * 5-7",
     "UTC",
     "2026-01-01T00:00:00Z",
     {"2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00", "2026-01-04T00:00:00+00:00",
      "2026-01-09T00:00:00+00:00"}},
    {"strictly after: a fire at exactly `after` is not returned",
     "0 9 * * *",
     "UTC",
     "2026-01-01T09:00:00Z",
     {"2026-01-02T09:00:00+00:00"}},
    {"a millisecond before is enough",
     "0 9 * * *",
     "UTC",
     "2026-01-01T08:59:59.999Z",
     {"2026-01-01T09:00:00+00:00"}},
    {"lists",
     "0 0 1,15,30 * *",
     "UTC",
     "2026-02-01T00:00:00Z",
     {"2026-02-15T00:00:00+00:00", "2026-03-01T00:00:00+00:00", "2026-03-15T00:00:00+00:00",
      "2026-03-30T00:00:00+00:00"}},
    {"year rollover",
     "0 0 1 1 *",
     "UTC",
     "2026-06-01T00:00:00Z",
     {"2027-01-01T00:00:00+00:00", "2028-01-01T00:00:00+00:00"}},
};
INSTANTIATE_TEST_SUITE_P(Calendar, CronNextTest, ::testing::ValuesIn(kCalendar));

const NextCase kSyntax[] = {
    {"a/n: from 5 every 15 minutes",
     "5/15 * * * *",
     "UTC",
     "2026-01-01T00:00:00Z",
     {"2026-01-01T00:05:00+00:00", "2026-01-01T00:20:00+00:00", "2026-01-01T00:35:00+00:00",
      "2026-01-01T00:50:00+00:00", "2026-01-01T01:05:00+00:00"}},
    {"a-b/n",
     "10-30/10 9 * * *",
     "UTC",
     "2026-01-01T00:00:00Z",
     {"2026-01-01T09:10:00+00:00", "2026-01-01T09:20:00+00:00", "2026-01-01T09:30:00+00:00",
      "2026-01-02T09:10:00+00:00"}},
    {"*/6 hours",
     "0 */6 * * *",
     "UTC",
     "2026-01-01T00:00:00Z",
     {"2026-01-01T06:00:00+00:00", "2026-01-01T12:00:00+00:00", "2026-01-01T18:00:00+00:00",
      "2026-01-02T00:00:00+00:00"}},
    {"month names, any case",
     "0 12 1 jan,Jul *",
     "UTC",
     "2026-02-01T00:00:00Z",
     {"2026-07-01T12:00:00+00:00", "2027-01-01T12:00:00+00:00"}},
    {"day names, any case (Jan 3 2026 is a Saturday)",
     "0 8 * * mon-fri",
     "UTC",
     "2026-01-03T00:00:00Z",
     {"2026-01-05T08:00:00+00:00", "2026-01-06T08:00:00+00:00"}},
    {"a name range with a step: JAN, MAR",
     "0 0 1 JAN-MAR/2 *",
     "UTC",
     "2026-01-01T00:00:00Z",
     {"2026-03-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00"}},
    {"6 fields: every 20 seconds",
     "*/20 * * * * *",
     "UTC",
     "2026-01-01T00:00:00Z",
     {"2026-01-01T00:00:20+00:00", "2026-01-01T00:00:40+00:00", "2026-01-01T00:01:00+00:00"}},
    {"6 fields: 12:00:30 every day",
     "30 0 12 * * *",
     "UTC",
     "2026-01-01T00:00:00Z",
     {"2026-01-01T12:00:30+00:00", "2026-01-02T12:00:30+00:00"}},
    {"6 fields in the Paris gap: 02:00:00 and 02:00:30 are read with +01:00",
     "*/30 * 2 29 3 *",
     "Europe/Paris",
     "2026-03-29T00:00:00+01:00",
     {"2026-03-29T03:00:00+02:00", "2026-03-29T03:00:30+02:00", "2026-03-29T03:01:00+02:00"}},
    {"@yearly", "@yearly", "UTC", "2026-06-01T00:00:00Z", {"2027-01-01T00:00:00+00:00"}},
    {"@annually", "@annually", "UTC", "2026-06-01T00:00:00Z", {"2027-01-01T00:00:00+00:00"}},
    {"@monthly",
     "@monthly",
     "UTC",
     "2026-01-15T00:00:00Z",
     {"2026-02-01T00:00:00+00:00", "2026-03-01T00:00:00+00:00"}},
    {"@weekly is Sunday midnight",
     "@weekly",
     "UTC",
     "2026-01-01T00:00:00Z",
     {"2026-01-04T00:00:00+00:00"}},
    {"@daily", "@daily", "UTC", "2026-01-01T10:00:00Z", {"2026-01-02T00:00:00+00:00"}},
    {"@midnight", "@MIDNIGHT", "UTC", "2026-01-01T10:00:00Z", {"2026-01-02T00:00:00+00:00"}},
    {"@hourly",
     "@hourly",
     "UTC",
     "2026-01-01T10:30:00Z",
     {"2026-01-01T11:00:00+00:00", "2026-01-01T12:00:00+00:00"}},
    {"whitespace around and between fields",
     "  0\t9  *  * 1 ",
     "UTC",
     "2026-01-01T00:00:00Z",
     {"2026-01-05T09:00:00+00:00"}},
};
INSTANTIATE_TEST_SUITE_P(Syntax, CronNextTest, ::testing::ValuesIn(kSyntax));

const NextCase kAfter2037[] = {
    {"the tzdata table stops in 2037; the zone file's rule carries DST on: Paris springs "
     "forward on Mar 25 2040, so 02:30 is read as 01:30Z = 03:30 CEST",
     "30 2 * * *",
     "Europe/Paris",
     "2040-03-24T12:00:00+01:00",
     {"2040-03-25T03:30:00+02:00", "2040-03-26T02:30:00+02:00"}},
    {"New York falls back on Nov 4 2040",
     "30 1 * * *",
     "America/New_York",
     "2040-11-03T12:00:00-04:00",
     {"2040-11-04T01:30:00-04:00", "2040-11-05T01:30:00-05:00"}},
};
INSTANTIATE_TEST_SUITE_P(After2037, CronNextTest, ::testing::ValuesIn(kAfter2037));

TEST(CronNext, NeverFiringExpressionsStopAtTheHorizonQuickly) {
  for (const char* expression : {"0 0 30 2 *", "0 0 31 4,6,9,11 *", "* * 30,31 2 *"}) {
    for (const char* zone_name : {"UTC", "Europe/Paris"}) {
      auto schedule = cron(expression);
      auto tz = zone(zone_name);
      auto started = std::chrono::steady_clock::now();
      EXPECT_FALSE(schedule.next(instant("2026-01-01T00:00:00Z"), tz).has_value()) << expression;
      EXPECT_FALSE(schedule.previous(instant("2026-01-01T00:00:00Z"), tz).has_value());
      auto elapsed = std::chrono::steady_clock::now() - started;
      EXPECT_LT(elapsed, std::chrono::milliseconds(500)) << expression << " in " << zone_name;
      ASSERT_TRUE(schedule.never_fires_reason().has_value()) << expression;
    }
  }
  EXPECT_EQ(*cron("0 0 30 2 *").never_fires_reason(),
            "day-of-month '30' never occurs in month '2'");
}

TEST(CronNext, RareButPossibleDatesAreFoundAcross2100) {
  // 2100 is not a leap year, so after Feb 29 2096 the next one is Feb 29 2104: eight years,
  // which the search horizon covers.
  auto schedule = cron("0 0 29 2 *");
  auto fire = schedule.next(instant("2096-03-01T00:00:00Z"));
  ASSERT_TRUE(fire.has_value());
  EXPECT_EQ(format_iso8601(*fire), "2104-02-29T00:00:00.000Z");
  EXPECT_FALSE(schedule.never_fires_reason().has_value());
}

TEST(CronNext, EverySecondIsCheapOverLongRanges) {
  // The search skips by field, so a yearly schedule asked right after its fire, and a
  // per-second one asked for many values, both stay fast.
  auto started = std::chrono::steady_clock::now();
  auto yearly = cron("0 0 1 1 *");
  TimePoint cursor = instant("2026-01-01T00:00:00Z");
  for (int i = 0; i < 200; ++i) cursor = *yearly.next(cursor, zone("Europe/Paris"));
  EXPECT_EQ(format_local(cursor, zone("Europe/Paris")), "2226-01-01T00:00:00+01:00");
  auto every_second = cron("* * * * * *");
  auto fires =
      every_second.fires_between(instant("2026-03-29T00:59:00Z"), instant("2026-03-29T01:01:00Z"),
                                 zone("Europe/Paris"), 10000);
  EXPECT_EQ(fires.size(), 120u);  // one per second through the gap, no doubles, no holes
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1));
}

TEST(CronPrevious, FindsTheLastFireAtOrBefore) {
  auto hourly = cron("0 * * * *");
  EXPECT_EQ(format_iso8601(*hourly.previous(instant("2026-05-01T10:30:00Z"))),
            "2026-05-01T10:00:00.000Z");
  EXPECT_EQ(format_iso8601(*hourly.previous(instant("2026-05-01T10:00:00Z"))),
            "2026-05-01T10:00:00.000Z");
  // After the Paris fall-back, the last 02:30 that fired is the CEST one, not the repeat.
  auto paris = zone("Europe/Paris");
  EXPECT_EQ(format_local(*cron("30 2 * * *").previous(instant("2026-10-25T02:45:00+01:00"), paris),
                         paris),
            "2026-10-25T02:30:00+02:00");
  // A yearly schedule looks back most of a year.
  EXPECT_EQ(format_iso8601(*cron("@yearly").previous(instant("2026-12-31T23:00:00Z"))),
            "2026-01-01T00:00:00.000Z");
  // Every second: the answer is the instant itself, found by bisection, not by walking.
  EXPECT_EQ(format_iso8601(*cron("* * * * * *").previous(instant("2026-05-01T10:30:07.500Z"))),
            "2026-05-01T10:30:07.000Z");
}

TEST(CronNext, NextFireTimesForTheCli) {
  auto fires = next_fire_times("30 2 * * *", "Europe/Paris", instant("2026-03-28T00:00:00Z"), 3);
  ASSERT_TRUE(fires.ok()) << fires.error().message;
  EXPECT_EQ(testing::local_strings(*fires, zone("Europe/Paris")),
            (std::vector<std::string>{"2026-03-28T02:30:00+01:00", "2026-03-29T03:30:00+02:00",
                                      "2026-03-30T02:30:00+02:00"}));
  auto bad_zone = next_fire_times("30 2 * * *", "Mars/Olympus", instant("2026-03-28T00:00:00Z"), 3);
  ASSERT_FALSE(bad_zone.ok());
  EXPECT_NE(bad_zone.error().message.find("unknown time zone 'Mars/Olympus'"), std::string::npos);
  auto bad_cron = next_fire_times("30 2 * *", "UTC", instant("2026-03-28T00:00:00Z"), 3);
  ASSERT_FALSE(bad_cron.ok());
  auto never = next_fire_times("0 0 30 2 *", "UTC", instant("2026-03-28T00:00:00Z"), 3);
  ASSERT_TRUE(never.ok());
  EXPECT_TRUE(never->empty());
}

// An independent reference: walk every local minute (or second) of a window, keep those the
// fields match, map each to an instant with the date library's own local_info (first.offset is
// the offset before a gap and the first of a repeat, which is exactly RFC 5545), and compare
// the set with what next() enumerates. Covers every 2026 transition of the zones above.
TEST(CronNext, AgreesWithABruteForceReferenceAroundEveryTransition) {
  const char* expressions[] = {"0 * * * *",  "*/15 * * * *", "30 2 * * *",      "0,30 1-3 * * *",
                               "45 1 * * *", "0 2 * * SUN",  "15,45 * * * *",   "*/7 0-4 * * *",
                               "59 * * * *", "0 0 * * *",    "*/10 * 29,30 * *"};
  struct Window {
    const char* zone;
    const char* from;
    const char* to;
  };
  const Window windows[] = {
      {"Europe/Paris", "2026-03-27T00:00:00Z", "2026-03-31T00:00:00Z"},
      {"Europe/Paris", "2026-10-23T00:00:00Z", "2026-10-27T00:00:00Z"},
      {"America/New_York", "2026-03-06T00:00:00Z", "2026-03-10T00:00:00Z"},
      {"America/New_York", "2026-10-30T00:00:00Z", "2026-11-03T00:00:00Z"},
      {"Australia/Lord_Howe", "2026-04-02T00:00:00Z", "2026-04-06T00:00:00Z"},
      {"Australia/Lord_Howe", "2026-10-01T00:00:00Z", "2026-10-05T00:00:00Z"},
      {"Asia/Kolkata", "2026-03-27T00:00:00Z", "2026-03-31T00:00:00Z"},
      {"UTC", "2026-03-27T00:00:00Z", "2026-03-31T00:00:00Z"},
  };
  using namespace std::chrono;
  for (const auto& window : windows) {
    const date::time_zone* reference_zone = date::locate_zone(window.zone);
    auto tz = zone(window.zone);
    TimePoint from = instant(window.from);
    TimePoint to = instant(window.to);
    for (const char* expression : expressions) {
      auto schedule = cron(expression);
      std::set<std::int64_t> expected;
      auto first_local = std::chrono::floor<minutes>(from) - hours(30);
      auto last_local = std::chrono::floor<minutes>(to) + hours(30);
      for (auto t = first_local; t <= last_local; t += minutes(1)) {
        auto local = date::local_seconds(std::chrono::floor<seconds>(t).time_since_epoch());
        auto day = std::chrono::floor<date::days>(local);
        date::year_month_day ymd(day);
        date::hh_mm_ss hms(local - day);
        LocalDateTime reading{static_cast<int>(ymd.year()),
                              static_cast<unsigned>(ymd.month()),
                              static_cast<unsigned>(ymd.day()),
                              static_cast<unsigned>(hms.hours().count()),
                              static_cast<unsigned>(hms.minutes().count()),
                              0};
        if (!schedule.matches(reading)) continue;
        auto info = reference_zone->get_info(local);
        std::int64_t fire = (local.time_since_epoch() - info.first.offset).count();
        if (fire > std::chrono::floor<seconds>(from).time_since_epoch().count() &&
            fire <= std::chrono::floor<seconds>(to).time_since_epoch().count()) {
          expected.insert(fire);
        }
      }
      std::set<std::int64_t> actual;
      for (const auto& fire : schedule.fires_between(from, to, tz, 100000)) {
        actual.insert(std::chrono::floor<seconds>(fire).time_since_epoch().count());
      }
      EXPECT_EQ(actual, expected) << "'" << expression << "' in " << window.zone << " "
                                  << window.from;
    }
  }
}

}  // namespace
}  // namespace herald::triggers
