// ISO-8601 timestamps as the API, the CLI and workflow files write them.
#include "engine/common/time.h"

#include <gtest/gtest.h>

#include <string>

namespace herald {
namespace {

TEST(ParseIso8601, ReadsUtcOffsetsAndDates) {
  auto utc = parse_iso8601("2026-06-01T07:00:00Z");
  ASSERT_TRUE(utc.ok());
  EXPECT_EQ(to_epoch_ms(*utc), 1780297200000);
  auto paris = parse_iso8601("2026-06-01T09:00:00+02:00");
  ASSERT_TRUE(paris.ok());
  EXPECT_EQ(*paris, *utc);
  auto compact = parse_iso8601("2026-06-01T09:00:00+0200");
  ASSERT_TRUE(compact.ok());
  EXPECT_EQ(*compact, *utc);
  auto millis = parse_iso8601("2026-06-01T07:00:00.250Z");
  ASSERT_TRUE(millis.ok());
  EXPECT_EQ(to_epoch_ms(*millis), 1780297200250);
  auto day = parse_iso8601("2026-06-01");
  ASSERT_TRUE(day.ok());
  EXPECT_EQ(to_epoch_ms(*day), 1780272000000);
}

// Text without seconds or without a zone is refused, never read as a guess. Without seconds
// the date library used to read an uninitialised value, which the UBSan build caught now and
// then (signed overflow in chrono); the shape check keeps such text away from it.
TEST(ParseIso8601, RefusesTextWithoutSecondsOrZone) {
  for (std::string text : {"2026-06-01T09:00", "2026-06-01T09:00Z", "2026-06-01T09:00+02:00",
                           "2026-06-01T09", "2026-06-01T09:00:00", "09:00:00Z", "", "Z",
                           "2026-13-01T09:00:00Z", "2026-06-01T09:00:00+02:00 trailing"}) {
    for (int repeat = 0; repeat < 50; ++repeat) {
      auto parsed = parse_iso8601(text);
      ASSERT_FALSE(parsed.ok()) << text;
      EXPECT_NE(parsed.error().message.find("expected ISO-8601"), std::string::npos);
    }
  }
}

TEST(ParseIso8601, FormatsWhatItReads) {
  auto time = parse_iso8601("2026-03-29T01:30:00Z");
  ASSERT_TRUE(time.ok());
  EXPECT_EQ(*parse_iso8601(format_iso8601(*time)), *time);
}

}  // namespace
}  // namespace herald
