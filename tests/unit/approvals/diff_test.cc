// The word diff of the original and final text: exact ops, the readable forms, and minimality
// against a plain LCS on random texts.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "engine/approvals/diff.h"

namespace herald::approvals {
namespace {

std::string side(const TextDiff& diff, DiffOp::Kind skipped) {
  std::string out;
  for (const auto& op : diff.ops) {
    if (op.kind != skipped) out += op.text;
  }
  return out;
}

TEST(DiffTest, EqualTextsHaveNoChanges) {
  TextDiff diff = diff_text("same text", "same text");
  EXPECT_FALSE(diff.changed());
  ASSERT_EQ(diff.ops.size(), 1u);
  EXPECT_EQ(diff.ops[0], (DiffOp{DiffOp::Kind::equal, "same text"}));
  EXPECT_EQ(diff.unified, "");
  EXPECT_EQ(diff.inline_markup(), "same text");
  EXPECT_TRUE(diff_text("", "").ops.empty());
}

TEST(DiffTest, AChangedWordIsOneReplacement) {
  TextDiff diff = diff_text("Spring sale today", "Spring launch today");
  EXPECT_EQ(diff.ops, (std::vector<DiffOp>{{DiffOp::Kind::equal, "Spring "},
                                           {DiffOp::Kind::remove, "sale"},
                                           {DiffOp::Kind::insert, "launch"},
                                           {DiffOp::Kind::equal, " today"}}));
  EXPECT_EQ(diff.inline_markup(), "Spring [-sale-]{+launch+} today");
}

TEST(DiffTest, PunctuationIsItsOwnUnit) {
  TextDiff diff = diff_text("Only 4 EUR!", "Only 4 EUR.");
  EXPECT_EQ(diff.inline_markup(), "Only 4 EUR[-!-]{+.+}");
  EXPECT_EQ(diff_text("#launch day", "#spring day").inline_markup(), "#[-launch-]{+spring+} day");
}

TEST(DiffTest, NeighbouringChangesAreOneReplacement) {
  // The space between "a" and "b" is not worth showing as kept.
  EXPECT_EQ(diff_text("x a b y", "x c d y").inline_markup(), "x [-a b-]{+c d+} y");
}

TEST(DiffTest, InsertionsAndDeletionsAtTheEnds) {
  EXPECT_EQ(diff_text("", "new text").inline_markup(), "{+new text+}");
  EXPECT_EQ(diff_text("old text", "").inline_markup(), "[-old text-]");
  EXPECT_EQ(diff_text("middle", "start middle end").inline_markup(), "{+start +}middle{+ end+}");
}

TEST(DiffTest, NonAsciiWordsStayWhole) {
  EXPECT_EQ(diff_text("Café au lait", "Café crème").inline_markup(), "Café [-au lait-]{+crème+}");
}

TEST(DiffTest, UnifiedFormIsLineBasedWithContext) {
  auto numbered = [](int count, std::map<int, std::string> changed) {
    std::string out;
    for (int i = 1; i <= count; ++i) {
      out += changed.count(i) ? changed[i] : std::to_string(i);
      out += "\n";
    }
    return out;
  };
  // Changes 15 lines apart: two hunks, each with 3 lines of context.
  EXPECT_EQ(diff_text(numbered(20, {}), numbered(20, {{3, "THREE"}, {18, "EIGHTEEN"}})).unified,
            "--- original\n+++ final\n"
            "@@ -1,6 +1,6 @@\n 1\n 2\n-3\n+THREE\n 4\n 5\n 6\n"
            "@@ -15,6 +15,6 @@\n 15\n 16\n 17\n-18\n+EIGHTEEN\n 19\n 20\n");
  // Changes with 6 or fewer lines between them share a hunk, as in diff -u.
  EXPECT_EQ(diff_text(numbered(12, {}), numbered(12, {{3, "x"}, {10, "y"}})).unified,
            "--- original\n+++ final\n"
            "@@ -1,12 +1,12 @@\n 1\n 2\n-3\n+x\n 4\n 5\n 6\n 7\n 8\n 9\n-10\n+y\n 11\n 12\n");
  // A line added at the end.
  EXPECT_EQ(diff_text("a\nb\n", "a\nb\nc\n").unified,
            "--- original\n+++ final\n@@ -1,2 +1,3 @@\n a\n b\n+c\n");
}

TEST(DiffTest, UnifiedFormOfAOneLinePostAndMissingNewlines) {
  EXPECT_EQ(diff_text("Hello", "Hello world").unified,
            "--- original\n+++ final\n@@ -1 +1 @@\n-Hello\n\\ No newline at end of file\n"
            "+Hello world\n\\ No newline at end of file\n");
  EXPECT_EQ(diff_text("", "a\n").unified, "--- original\n+++ final\n@@ -0,0 +1 @@\n+a\n");
}

TEST(DiffTest, JsonRoundTrip) {
  TextDiff diff = diff_text("a b c", "a x c");
  Json json = diff.to_json();
  EXPECT_EQ(json["changed"], true);
  EXPECT_EQ(json["ops"][1], (Json{{"op", "delete"}, {"text", "b"}}));
  EXPECT_EQ(json["inline"], "a [-b-]{+x+} c");
  Result<TextDiff> read = TextDiff::from_json(json);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->ops, diff.ops);
  EXPECT_EQ(read->unified, diff.unified);
  EXPECT_FALSE(TextDiff::from_json(Json{{"ops", {{{"op", "move"}, {"text", "x"}}}}}).ok());
}

// On random texts the word diff rebuilds both sides, and the edit script under it (shown
// untidied by the line diff) changes exactly as many lines as a textbook LCS says it must.
TEST(DiffTest, RebuildsBothSidesAndIsMinimalOnRandomTexts) {
  std::mt19937 random(42);
  const std::vector<std::string> units = {"a", "b", "c", "dd", " ", "  ", ",", "\n"};
  auto text = [&](size_t length) {
    std::string out;
    for (size_t i = 0; i < length; ++i) out += units[random() % units.size()];
    return out;
  };
  for (int round = 0; round < 300; ++round) {
    std::string a = text(random() % 40);
    std::string b = text(random() % 40);
    TextDiff diff = diff_text(a, b);
    ASSERT_EQ(side(diff, DiffOp::Kind::insert), a) << a << " | " << b;
    ASSERT_EQ(side(diff, DiffOp::Kind::remove), b) << a << " | " << b;
  }
  const std::vector<std::string> lines = {"a\n", "b\n", "c\n", "d\n"};
  for (int round = 0; round < 300; ++round) {
    std::vector<std::string> x, y;
    for (size_t i = random() % 25; i > 0; --i) x.push_back(lines[random() % lines.size()]);
    for (size_t i = random() % 25; i > 0; --i) y.push_back(lines[random() % lines.size()]);
    std::vector<std::vector<size_t>> lcs(x.size() + 1, std::vector<size_t>(y.size() + 1, 0));
    for (size_t i = x.size(); i-- > 0;) {
      for (size_t j = y.size(); j-- > 0;) {
        lcs[i][j] = x[i] == y[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
      }
    }
    std::string a, b;
    for (const auto& line : x) a += line;
    for (const auto& line : y) b += line;
    std::string unified = diff_text(a, b).unified;
    size_t changed = 0;
    size_t start = 0;
    int line_number = 0;
    while (start < unified.size()) {
      size_t end = unified.find('\n', start);
      std::string line = unified.substr(start, end - start);
      if (++line_number > 2 && !line.empty() && (line[0] == '-' || line[0] == '+')) ++changed;
      start = end + 1;
    }
    ASSERT_EQ(changed, x.size() + y.size() - 2 * lcs[0][0]) << a << " | " << b;
  }
}

TEST(DiffTest, VeryDifferentLongTextsFallBackToOneReplacement) {
  std::string a, b;
  for (int i = 0; i < 3000; ++i) {
    a += "w" + std::to_string(i) + " ";
    b += "v" + std::to_string(i) + " ";
  }
  TextDiff diff = diff_text(a, b);
  EXPECT_EQ(side(diff, DiffOp::Kind::insert), a);
  EXPECT_EQ(side(diff, DiffOp::Kind::remove), b);
  EXPECT_TRUE(diff.changed());
}

}  // namespace
}  // namespace herald::approvals
