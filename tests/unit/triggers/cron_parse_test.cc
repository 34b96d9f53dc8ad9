// CronSchedule::parse: what it accepts, and for every kind of mistake, the message (which names
// the field) and the 1-based column it points at.
#include <gtest/gtest.h>

#include "tests/unit/triggers/helpers.h"

namespace herald::triggers {
namespace {

TEST(CronParse, AcceptsTheSupportedSyntax) {
  struct Case {
    const char* expression;
    bool has_seconds;
  };
  const Case cases[] = {
      {"* * * * *", false},
      {"0 9 * * MON-FRI", false},
      {"*/15 0-6,22-23 1,15,L JAN-MAR,dec sun", false},
      {"5/10 * ? * *", false},
      {"0 0 * * 0-7", false},
      {"0 0 L 2 ?", false},
      {"0 0 1-31/2 1-12/3 1-5/2", false},
      {"30 0 9 * * *", true},
      {"*/5 * * * * *", true},
      {"@yearly", false},
      {"@Annually", false},
      {"@monthly", false},
      {"@weekly", false},
      {"@daily", false},
      {"@midnight", false},
      {"@hourly", false},
      {" \t0 9 * * *\n", false},
  };
  for (const auto& c : cases) {
    auto parsed = CronSchedule::parse(c.expression);
    ASSERT_TRUE(parsed.ok()) << "'" << c.expression << "': " << parsed.error().message;
    EXPECT_EQ(parsed->has_seconds(), c.has_seconds) << c.expression;
  }
  EXPECT_EQ(CronSchedule::parse(" \t0 9 * * *\n")->text(), "0 9 * * *");
}

TEST(CronParse, MatchesLocalReadings) {
  auto schedule = testing::cron("*/15 9-17 * * MON-FRI");
  // 2026-01-05 is a Monday, 2026-01-03 a Saturday.
  EXPECT_TRUE(schedule.matches({2026, 1, 5, 9, 45, 0}));
  EXPECT_FALSE(schedule.matches({2026, 1, 5, 9, 46, 0}));
  EXPECT_FALSE(schedule.matches({2026, 1, 5, 18, 0, 0}));
  EXPECT_FALSE(schedule.matches({2026, 1, 3, 9, 45, 0}));
  EXPECT_FALSE(schedule.matches({2026, 1, 5, 9, 45, 1}));  // 5 fields fire at second 0
}

struct ErrorCase {
  const char* expression;
  const char* message;  // the whole message, field first, column last
  const char* field;
  int column;
};

void PrintTo(const ErrorCase& c, std::ostream* os) {
  *os << "'" << c.expression << "'";
}

class CronParseErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(CronParseErrorTest, NamesTheFieldAndColumn) {
  const ErrorCase& c = GetParam();
  auto parsed = CronSchedule::parse(c.expression);
  ASSERT_FALSE(parsed.ok()) << "'" << c.expression << "' should not parse";
  const Error& error = parsed.error();
  EXPECT_EQ(error.code, ErrorCode::invalid_argument);
  EXPECT_EQ(error.message, c.message) << "'" << c.expression << "'";
  EXPECT_EQ(error.details.value("field", ""), c.field);
  EXPECT_EQ(error.details.value("column", 0), c.column);
  EXPECT_EQ(error.details.value("expression", ""), c.expression);
}

const ErrorCase kErrors[] = {
    // The expression as a whole.
    {"",
     "expression: the cron expression is empty; expected 5 fields (minute hour day-of-month "
     "month day-of-week), 6 with seconds first, or a macro such as @daily (at column 1)",
     "expression", 1},
    {"   ",
     "expression: the cron expression is empty; expected 5 fields (minute hour "
     "day-of-month month day-of-week), 6 with seconds first, or a macro such as @daily "
     "(at column 1)",
     "expression", 1},
    {"* * * *",
     "expression: found 4 fields; expected 5 (minute hour day-of-month month "
     "day-of-week) or 6 (second minute hour day-of-month month day-of-week) (at "
     "column 8)",
     "expression", 8},
    {"0 0 0 1 1 * 2030",
     "expression: found 7 fields; expected 5 (minute hour day-of-month "
     "month day-of-week) or 6 (second minute hour day-of-month month "
     "day-of-week); a year field is not supported (at column 13)",
     "expression", 13},
    {"@fortnightly",
     "expression: '@fortnightly' is not a cron macro; expected @yearly, "
     "@annually, @monthly, @weekly, @daily, @midnight or @hourly (at column 1)",
     "expression", 1},
    {"@daily 9",
     "expression: '@daily 9' is not a cron macro; expected @yearly, @annually, "
     "@monthly, @weekly, @daily, @midnight or @hourly (at column 1)",
     "expression", 1},
    {"@reboot",
     "expression: '@reboot' is not supported: Herald has no boot event for "
     "workflows; use a manual or event trigger (at column 1)",
     "expression", 1},
    // Names.
    {"0 9 * * FUNDAY",
     "day-of-week: 'FUNDAY' is not a day name; expected 0-7 or SUN-SAT (at column 9)",
     "day-of-week", 9},
    {"0 9 * * MON-FUNDAY",
     "day-of-week: 'FUNDAY' is not a day name; expected 0-7 or SUN-SAT (at column 13)",
     "day-of-week", 13},
    {"0 9 * JANUARY *",
     "month: 'JANUARY' is not a month name; expected 1-12 or JAN-DEC (at column 7)", "month", 7},
    {"0 MON * * *", "hour: 'MON' is not a number; expected 0-23 (at column 3)", "hour", 3},
    {"0 9 * * M0N",
     "day-of-week: 'M0N' is not a number or a name; expected 0-7 or SUN-SAT (at "
     "column 9)",
     "day-of-week", 9},
    {"1.5 * * * *", "minute: '1.5' is not a number; expected 0-59 (at column 1)", "minute", 1},
    // Ranges of values.
    {"60 * * * *", "minute: 60 is out of range; expected 0-59 (at column 1)", "minute", 1},
    {"0 24 * * *", "hour: 24 is out of range; expected 0-23 (at column 3)", "hour", 3},
    {"0 0 0 * *", "day-of-month: 0 is out of range; expected 1-31 or L (at column 5)",
     "day-of-month", 5},
    {"0 0 32 * *", "day-of-month: 32 is out of range; expected 1-31 or L (at column 5)",
     "day-of-month", 5},
    {"0 0 * 13 *", "month: 13 is out of range; expected 1-12 or JAN-DEC (at column 7)", "month", 7},
    {"0 0 * 0 *", "month: 0 is out of range; expected 1-12 or JAN-DEC (at column 7)", "month", 7},
    {"0 0 * * 8", "day-of-week: 8 is out of range; expected 0-7 or SUN-SAT (at column 9)",
     "day-of-week", 9},
    {"60 0 0 * * *", "second: 60 is out of range; expected 0-59 (at column 1)", "second", 1},
    {"0 0,99999999999 * * *", "hour: 99999999999 is out of range; expected 0-23 (at column 5)",
     "hour", 5},
    // Ranges a-b.
    {"0 20-5 * * *",
     "hour: range 20-5 runs backwards; expected a-b with a <= b (split a range "
     "that wraps around, e.g. 22-23,0-2) (at column 3)",
     "hour", 3},
    {"0 0 * NOV-FEB *",
     "month: range NOV-FEB runs backwards; expected a-b with a <= b (split "
     "a range that wraps around, e.g. 22-23,0-2) (at column 7)",
     "month", 7},
    {"0 0 * * 1-", "day-of-week: a value is missing; expected 0-7 or SUN-SAT (at column 11)",
     "day-of-week", 11},
    {"0 0 -1 * *", "day-of-month: a value is missing; expected 1-31 or L (at column 5)",
     "day-of-month", 5},
    {"0 0 1-5-7 * *", "day-of-month: '1-5-7' is not a range; expected a-b (at column 5)",
     "day-of-month", 5},
    // Steps.
    {"*/0 * * * *", "minute: step 0 is out of range; expected 1-59 (at column 3)", "minute", 3},
    {"*/60 * * * *", "minute: step 60 is out of range; expected 1-59 (at column 3)", "minute", 3},
    {"0 */x * * *", "hour: step 'x' is not a number; expected 1-23 (at column 5)", "hour", 5},
    {"*/ * * * *",
     "minute: '*/' has no step after '/'; expected e.g. */15 or 0-30/5 (at column "
     "3)",
     "minute", 3},
    {"/5 * * * *",
     "minute: '/5' has no range before '/'; expected e.g. */15 or 0-30/5 (at "
     "column 1)",
     "minute", 1},
    {"*/5/2 * * * *", "minute: step '5/2' is not a number; expected 1-59 (at column 3)", "minute",
     3},
    // Lists.
    {"1,,2 * * * *",
     "minute: empty list item (two commas in a row, or a comma at an end); "
     "expected a list such as 1,15,30 (at column 3)",
     "minute", 3},
    {"0 0 1, * *",
     "day-of-month: empty list item (two commas in a row, or a comma at an end); "
     "expected a list such as 1,15,30 (at column 7)",
     "day-of-month", 7},
    // L, ?, and syntax from other cron dialects.
    {"0 0 L * L",
     "day-of-week: 'L' (last day of the month) is only allowed in day-of-month (at "
     "column 9)",
     "day-of-week", 9},
    {"0 L * * *",
     "hour: 'L' (last day of the month) is only allowed in day-of-month (at column "
     "3)",
     "hour", 3},
    {"0 0 L-2 * *",
     "day-of-month: 'L-2' is not supported; day-of-month takes L alone for the "
     "last day of the month (at column 5)",
     "day-of-month", 5},
    {"0 0 LW * *",
     "day-of-month: 'LW' is not supported; day-of-month takes L alone for the "
     "last day of the month (at column 5)",
     "day-of-month", 5},
    {"0 0 1-L * *",
     "day-of-month: 'L' (last day of the month) is only allowed alone in "
     "day-of-month (at column 7)",
     "day-of-month", 7},
    {"0 0 15W * *",
     "day-of-month: '15W' (nearest weekday) is not supported; expected 1-31 or L "
     "(at column 5)",
     "day-of-month", 5},
    {"0 0 * * 5#2",
     "day-of-week: '5#2' (nth weekday of the month) is not supported; expected "
     "0-7 or SUN-SAT (at column 9)",
     "day-of-week", 9},
    {"0 ? * * *",
     "hour: '?' is only allowed in day-of-month and day-of-week; write * here (at "
     "column 3)",
     "hour", 3},
    // Columns count from the start of the text as written, leading blanks included.
    {"  0 9 * * FUNDAY",
     "day-of-week: 'FUNDAY' is not a day name; expected 0-7 or SUN-SAT (at column 11)",
     "day-of-week", 11},
    {"0 0 12 * * 8", "day-of-week: 8 is out of range; expected 0-7 or SUN-SAT (at column 12)",
     "day-of-week", 12},
};
INSTANTIATE_TEST_SUITE_P(Errors, CronParseErrorTest, ::testing::ValuesIn(kErrors));

}  // namespace
}  // namespace herald::triggers
