// TimeZone and format_local: looking zones up (and the error for a wrong name), offsets and
// local readings checked against the date library's table and against DST rules after 2037,
// RFC 5545 resolution of local readings, and the ISO-8601-with-offset text the CLI prints.
#include <gtest/gtest.h>

#include <date/tz.h>

#include "tests/unit/triggers/helpers.h"

namespace herald::triggers {
namespace {

using testing::instant;
using testing::zone;

TEST(TimeZone, DefaultIsUtc) {
  TimeZone utc;
  EXPECT_TRUE(utc.is_utc());
  EXPECT_EQ(utc.name(), "UTC");
  EXPECT_EQ(utc.utc_offset(instant("2026-07-01T00:00:00Z")).count(), 0);
  EXPECT_EQ(format_local(instant("2026-07-01T12:34:56Z"), utc), "2026-07-01T12:34:56+00:00");
  EXPECT_TRUE(zone("UTC").is_utc());
  auto etc_utc = zone("Etc/UTC");
  EXPECT_EQ(etc_utc.name(), "Etc/UTC");
  EXPECT_EQ(format_local(instant("2026-07-01T12:34:56Z"), etc_utc), "2026-07-01T12:34:56+00:00");
}

TEST(TimeZone, UnknownNamesAreErrorsThatNameThem) {
  auto typo = TimeZone::locate("Europe/Pariss");
  ASSERT_FALSE(typo.ok());
  EXPECT_EQ(typo.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(typo.error().message,
            "unknown time zone 'Europe/Pariss'; expected an IANA name such as Europe/Paris, "
            "America/New_York or UTC (did you mean 'Europe/Paris'?)");
  EXPECT_EQ(typo.error().details["timezone"], "Europe/Pariss");

  auto wrong_case = TimeZone::locate("europe/paris");
  ASSERT_FALSE(wrong_case.ok());
  EXPECT_NE(wrong_case.error().message.find("did you mean 'Europe/Paris'?"), std::string::npos);

  auto nonsense = TimeZone::locate("Mars/Olympus_Mons");
  ASSERT_FALSE(nonsense.ok());
  EXPECT_EQ(nonsense.error().message,
            "unknown time zone 'Mars/Olympus_Mons'; expected an IANA name such as Europe/Paris, "
            "America/New_York or UTC");

  EXPECT_FALSE(TimeZone::locate("").ok());
  EXPECT_FALSE(TimeZone::locate("../../etc/passwd").ok());
}

TEST(TimeZone, FormatsLocalTimesWithTheirOffset) {
  struct Case {
    const char* zone;
    const char* instant;
    const char* expected;
  };
  const Case cases[] = {
      {"Europe/Paris", "2026-01-15T08:00:00Z", "2026-01-15T09:00:00+01:00"},
      {"Europe/Paris", "2026-07-15T08:00:00Z", "2026-07-15T10:00:00+02:00"},
      {"America/New_York", "2026-01-15T14:00:00Z", "2026-01-15T09:00:00-05:00"},
      {"America/New_York", "2026-07-15T13:00:00Z", "2026-07-15T09:00:00-04:00"},
      {"Asia/Kolkata", "2026-01-15T03:30:00Z", "2026-01-15T09:00:00+05:30"},
      {"America/St_Johns", "2026-01-01T15:30:00Z", "2026-01-01T12:00:00-03:30"},
      {"Australia/Lord_Howe", "2026-07-01T00:00:00Z", "2026-07-01T10:30:00+10:30"},
      {"Australia/Lord_Howe", "2026-01-01T00:00:00Z", "2026-01-01T11:00:00+11:00"},
      {"UTC", "2026-03-29T01:30:00Z", "2026-03-29T01:30:00+00:00"},
      // Milliseconds only when there are some.
      {"Europe/Paris", "2026-01-15T08:00:00.250Z", "2026-01-15T09:00:00.250+01:00"},
      // The instant the Paris clocks jump: 01:00Z is already 03:00 CEST.
      {"Europe/Paris", "2026-03-29T00:59:59Z", "2026-03-29T01:59:59+01:00"},
      {"Europe/Paris", "2026-03-29T01:00:00Z", "2026-03-29T03:00:00+02:00"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(format_local(instant(c.instant), zone(c.zone)), c.expected) << c.zone;
    // parse_iso8601 reads the text back to the same instant.
    EXPECT_EQ(instant(c.expected), instant(c.instant)) << c.expected;
  }
  // An offset with seconds (local mean time before 1911 in Paris: +00:09:21).
  EXPECT_EQ(format_iso8601_offset(instant("1900-01-01T00:00:00Z"), std::chrono::seconds(561)),
            "1900-01-01T00:09:21+00:09:21");
  EXPECT_EQ(format_local(instant("1900-01-01T00:00:00Z"), zone("Europe/Paris")),
            "1900-01-01T00:09:21+00:09:21");
}

TEST(TimeZone, ResolvesLocalReadingsTheRfc5545Way) {
  struct Case {
    const char* zone;
    LocalDateTime local;
    const char* expected;  // UTC
  };
  const Case cases[] = {
      // Ordinary times.
      {"Europe/Paris", {2026, 6, 1, 9, 0, 0}, "2026-06-01T07:00:00.000Z"},
      // Skipped by spring-forward: the offset before the gap (+01:00).
      {"Europe/Paris", {2026, 3, 29, 2, 30, 0}, "2026-03-29T01:30:00.000Z"},
      {"America/New_York", {2026, 3, 8, 2, 0, 0}, "2026-03-08T07:00:00.000Z"},
      {"Australia/Lord_Howe", {2026, 10, 4, 2, 15, 0}, "2026-10-03T15:45:00.000Z"},
      // Repeated by fall-back: the first (summer-time) occurrence.
      {"Europe/Paris", {2026, 10, 25, 2, 30, 0}, "2026-10-25T00:30:00.000Z"},
      {"America/New_York", {2026, 11, 1, 1, 30, 0}, "2026-11-01T05:30:00.000Z"},
      {"Australia/Lord_Howe", {2026, 4, 5, 1, 45, 0}, "2026-04-04T14:45:00.000Z"},
      // The reading just after each transition.
      {"Europe/Paris", {2026, 3, 29, 3, 0, 0}, "2026-03-29T01:00:00.000Z"},
      {"Europe/Paris", {2026, 10, 25, 3, 0, 0}, "2026-10-25T02:00:00.000Z"},
      {"UTC", {2028, 2, 29, 12, 0, 0}, "2028-02-29T12:00:00.000Z"},
  };
  for (const auto& c : cases) {
    auto tz = zone(c.zone);
    EXPECT_EQ(format_iso8601(tz.resolve(c.local)), c.expected) << c.zone;
  }
  auto paris = zone("Europe/Paris");
  EXPECT_EQ(paris.to_local(instant("2026-10-25T01:30:00Z")),
            (LocalDateTime{2026, 10, 25, 2, 30, 0}));
}

// Offsets and RFC 5545 resolution against the date library itself, every 50 minutes (which over
// five days lands on every 10-minute slot of the day, gaps and repeats included) over the years
// its table covers. The two are computed differently (intervals walked here; local_info there).
TEST(TimeZone, AgreesWithTheDateLibraryThrough2037) {
  using namespace std::chrono;
  for (const char* name : {"Europe/Paris", "America/New_York", "Australia/Lord_Howe",
                           "Asia/Kolkata", "America/Sao_Paulo", "Pacific/Apia"}) {
    const date::time_zone* reference = date::locate_zone(name);
    auto tz = zone(name);
    auto begin = date::sys_days(date::year(2011) / 1 / 1);
    auto end = date::sys_days(date::year(2037) / 12 / 1);
    int mismatches = 0;
    for (date::sys_seconds t{begin}; t < end; t += minutes(50)) {
      TimePoint time{t};
      if (tz.utc_offset(time) != reference->get_info(t).offset) ++mismatches;
      // The same numbers read as a local reading.
      auto local = date::local_seconds(t.time_since_epoch());
      auto day = std::chrono::floor<date::days>(local);
      date::year_month_day ymd(day);
      date::hh_mm_ss hms(local - day);
      LocalDateTime reading{static_cast<int>(ymd.year()),
                            static_cast<unsigned>(ymd.month()),
                            static_cast<unsigned>(ymd.day()),
                            static_cast<unsigned>(hms.hours().count()),
                            static_cast<unsigned>(hms.minutes().count()),
                            0};
      auto expected = local.time_since_epoch() - reference->get_info(local).first.offset;
      if (tz.resolve(reading).time_since_epoch() != expected) ++mismatches;
    }
    EXPECT_EQ(mismatches, 0) << name;
  }
}

// Debian's zone files list transitions up to 2037 and end with a rule for the years after; the
// date library stops at the table, so Herald reads the rule. Transition instants are from the
// tz rules (EU: last Sunday of March/October 01:00Z; US: second Sunday of March, first of
// November, 02:00 local; Lord Howe: first Sunday of October 02:00 -> 02:30, first Sunday of
// April 02:00 -> 01:30).
TEST(TimeZone, KeepsDaylightSavingAfter2037) {
  struct Case {
    const char* zone;
    const char* instant;
    const char* expected;
  };
  const Case cases[] = {
      {"Europe/Paris", "2040-03-25T00:59:59Z", "2040-03-25T01:59:59+01:00"},
      {"Europe/Paris", "2040-03-25T01:00:00Z", "2040-03-25T03:00:00+02:00"},
      {"Europe/Paris", "2040-10-28T00:59:59Z", "2040-10-28T02:59:59+02:00"},
      {"Europe/Paris", "2040-10-28T01:00:00Z", "2040-10-28T02:00:00+01:00"},
      {"Europe/Paris", "2050-07-01T00:00:00Z", "2050-07-01T02:00:00+02:00"},
      {"America/New_York", "2038-03-14T07:00:00Z", "2038-03-14T03:00:00-04:00"},
      {"America/New_York", "2045-11-05T05:59:59Z", "2045-11-05T01:59:59-04:00"},
      {"America/New_York", "2045-11-05T06:00:00Z", "2045-11-05T01:00:00-05:00"},
      {"Australia/Lord_Howe", "2040-03-31T14:59:59Z", "2040-04-01T01:59:59+11:00"},
      {"Australia/Lord_Howe", "2040-03-31T15:00:00Z", "2040-04-01T01:30:00+10:30"},
      {"Australia/Lord_Howe", "2040-10-06T15:30:00Z", "2040-10-07T02:30:00+11:00"},
      {"Asia/Kolkata", "2050-07-01T00:00:00Z", "2050-07-01T05:30:00+05:30"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(format_local(instant(c.instant), zone(c.zone)), c.expected) << c.zone;
  }
  EXPECT_EQ(format_iso8601(zone("Europe/Paris").resolve({2040, 3, 25, 2, 30, 0})),
            "2040-03-25T01:30:00.000Z");
}

}  // namespace
}  // namespace herald::triggers
