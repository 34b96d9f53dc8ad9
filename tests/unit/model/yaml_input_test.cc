// Reading the text itself: YAML syntax errors, duplicate keys, and input that is not a workflow
// at all (empty, a list, binary garbage, very large or very deep documents).
#include <gtest/gtest.h>

#include <random>

#include "engine/model/workflow.h"
#include "tests/unit/model/model_test_util.h"

namespace herald::model {
namespace {

using testing::all_diagnostics;
using testing::HasDiagnostic;
using testing::HasOnlyDiagnostic;
using testing::parse;

TEST(YamlInput, SyntaxErrorIsOneDiagnosticAtItsLineAndColumn) {
  ParseOutcome outcome = parse("id: broken\nsteps:\n  - id: a\n    uses: log\n    with: {a: [1\n");
  EXPECT_FALSE(outcome.ok());
  EXPECT_FALSE(outcome.workflow.has_value());
  EXPECT_TRUE(HasOnlyDiagnostic(outcome, 6, 1, "", "invalid YAML: end of sequence flow not found"));
}

TEST(YamlInput, SyntaxErrorHintsAtTheLikelyFix) {
  EXPECT_TRUE(HasOnlyDiagnostic(parse("id: x\nsteps:\n  - id: a\n\tuses: log\n"), 4, 1, "",
                                "YAML indents with spaces, not tabs"));
  EXPECT_TRUE(HasOnlyDiagnostic(parse("id: x\nname: a: b\nsteps: []\n"), 2, 8, "",
                                "quote text holding ': '"));
  EXPECT_TRUE(
      HasOnlyDiagnostic(parse("id: x\nname: \"open"), 2, 12, "", "a quoted string is not closed"));
}

TEST(YamlInput, ColumnsCountCharactersNotBytes) {
  // "é" is two bytes in UTF-8; the editor shows the ':' in column 8, not 9.
  EXPECT_TRUE(
      HasOnlyDiagnostic(parse("id: x\nname: é: b\nsteps: []\n"), 2, 8, "", "illegal map value"));
}

TEST(YamlInput, UnquotedTemplateIsExplained) {
  ParseOutcome outcome = parse(R"(id: x
steps:
  - id: a
    uses: log
    with:
      message: {{ steps.a.output }}
)");
  EXPECT_TRUE(HasOnlyDiagnostic(outcome, 6, 17, "steps[0].with.message",
                                "must be in quotes: \"{{ ... }}\""));
}

TEST(YamlInput, DuplicateKeysAreErrorsAtTheSecondKey) {
  ParseOutcome outcome = parse(R"(id: dup
steps:
  - id: a
    uses: log
    with: { message: one, message: two }
    uses: set
id: again
)");
  EXPECT_EQ(outcome.diagnostics.size(), 3u) << all_diagnostics(outcome);
  EXPECT_TRUE(HasDiagnostic(outcome, 5, 27, "steps[0].with.message",
                            "duplicate key 'message' (first given at line 5)"));
  EXPECT_TRUE(
      HasDiagnostic(outcome, 6, 5, "steps[0].uses",
                    "duplicate key 'uses' (first given at line 4); expected each key once"));
  EXPECT_TRUE(HasDiagnostic(outcome, 7, 1, "id", "duplicate key 'id' (first given at line 1)"));
}

TEST(YamlInput, EmptyFile) {
  EXPECT_TRUE(HasOnlyDiagnostic(parse(""), 1, 1, "", "the file is empty; expected a workflow"));
  EXPECT_TRUE(HasOnlyDiagnostic(parse("# just a comment\n\n"), 1, 1, "", "the file is empty"));
  EXPECT_TRUE(HasOnlyDiagnostic(parse("---\n"), 1, 1, "", "the file holds no workflow"));
}

TEST(YamlInput, TopLevelMustBeAMapping) {
  EXPECT_TRUE(HasOnlyDiagnostic(parse("- id: a\n- id: b\n"), 1, 1, "",
                                "expected a workflow: a mapping with at least id and steps; got "
                                "a list"));
  EXPECT_TRUE(
      HasOnlyDiagnostic(parse("just some text\n"), 1, 1, "", "got a string ('just some text')"));
  EXPECT_TRUE(HasOnlyDiagnostic(parse("42"), 1, 1, "", "got an integer (42)"));
}

TEST(YamlInput, OneDocumentPerFile) {
  ParseOutcome outcome = parse("id: a\nsteps:\n  - { id: x, uses: log }\n---\nid: b\n");
  EXPECT_TRUE(HasOnlyDiagnostic(outcome, 4, 1, "", "a second YAML document starts here"));
}

TEST(YamlInput, BinaryGarbageIsOneDiagnostic) {
  std::string garbage;
  std::mt19937 random(12345);
  for (int i = 0; i < 4096; ++i) garbage.push_back(static_cast<char>(random() & 0xFF));
  ParseOutcome outcome = parse(garbage);
  ASSERT_EQ(outcome.diagnostics.size(), 1u) << all_diagnostics(outcome);
  EXPECT_FALSE(outcome.ok());
  // Whatever the first bad byte is, the message says what a workflow file must be, and is
  // printable JSON (no raw garbage copied into it).
  EXPECT_NE(outcome.diagnostics[0].message.find("a workflow file"), std::string::npos);
  EXPECT_NO_THROW(outcome.diagnostics[0].to_json().dump());
}

TEST(YamlInput, InvalidUtf8AndControlCharactersAreReportedWhereTheyAre) {
  EXPECT_TRUE(HasOnlyDiagnostic(parse("id: x\nname: ab\xFF\nsteps: []\n"), 2, 9, "",
                                "invalid UTF-8 (byte 0xFF); a workflow file must be UTF-8 text"));
  EXPECT_TRUE(HasOnlyDiagnostic(parse(std::string("id: x\nname: \xC3\xA9\0z\n", 15)), 2, 8, "",
                                "control character 0x00 is not allowed"));
  // UTF-16 (what some Windows editors save) starts with a BOM that is not UTF-8.
  EXPECT_TRUE(
      HasOnlyDiagnostic(parse(std::string("\xFF\xFEi\0d\0", 6)), 1, 1, "", "invalid UTF-8"));
}

TEST(YamlInput, PrintableGarbageDoesNotCrash) {
  std::mt19937 random(7);
  const std::string alphabet = "{}[]:,-?&*!|>'\"%@` \n\tabc123#";
  for (int round = 0; round < 300; ++round) {
    std::string text;
    for (int i = 0; i < 200; ++i) text.push_back(alphabet[random() % alphabet.size()]);
    ParseOutcome outcome = parse(text);
    EXPECT_FALSE(outcome.ok());
    for (const auto& d : outcome.diagnostics) EXPECT_NO_THROW(d.to_json().dump());
  }
}

// Timing is left to benchmarks: on a loaded machine or under sanitizers any bound is flaky. These
// check that large input is read completely and linearly enough to finish.
TEST(YamlInput, AOneMegabyteWorkflowParses) {
  std::string text = "id: big\nsteps:\n";
  size_t steps = 0;
  while (text.size() < 1024 * 1024) {
    std::string id = "s" + std::to_string(steps++);
    text += "  - id: " + id +
            "\n    uses: set\n    with: { value: \"{{ inputs.x }}\", n: " + std::to_string(steps) +
            " }\n";
  }
  text = "inputs:\n  x: { default: a }\n" + text;
  ParseOutcome outcome = parse(text);
  ASSERT_TRUE(outcome.ok()) << all_diagnostics(outcome).substr(0, 2000);
  EXPECT_EQ(outcome.workflow->steps.size(), steps);
  EXPECT_EQ(outcome.workflow->dependencies().back(), std::vector<size_t>{steps - 2});
}

TEST(YamlInput, AOneMegabyteWorkflowFullOfErrorsReportsThemAll) {
  std::string text = "id: big\nsteps:\n";
  size_t steps = 0;
  while (text.size() < 1024 * 1024) {
    text += "  - id: s" + std::to_string(steps++) + "\n    uses: nope\n";
  }
  ParseOutcome outcome = parse(text);
  ASSERT_EQ(outcome.diagnostics.size(), steps);
  EXPECT_EQ(outcome.diagnostics.back().location.line, static_cast<int>(2 + 2 * steps));
}

TEST(YamlInput, AOneMegabyteLineOfGarbage) {
  std::string text = "id: x\nname: " + std::string(1024 * 1024, 'x') + ": y\nsteps: []\n";
  ParseOutcome outcome = parse(text);
  ASSERT_EQ(outcome.diagnostics.size(), 1u);
  EXPECT_EQ(outcome.diagnostics[0].location.line, 2);
}

TEST(YamlInput, MoreThanSixteenMegabytesIsRefusedBeforeParsing) {
  std::string text = "id: x\nname: \"" + std::string(16 * 1024 * 1024, 'x') + "\"\nsteps: []\n";
  EXPECT_TRUE(HasOnlyDiagnostic(parse(text), 1, 1, "", "expected a workflow of at most 16 MiB"));
}

TEST(YamlInput, AliasBombIsStopped) {
  std::string text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char previous = 'a';
  for (char name = 'b'; name <= 'j'; ++name, ++previous) {
    text += std::string(1, name) + ": &" + name + " [";
    for (int i = 0; i < 10; ++i) text += std::string(i ? ", *" : "*") + previous;
    text += "]\n";
  }
  // Expanded, this is 10^10 values: without the bound the test would run out of memory.
  ParseOutcome outcome = parse(text);
  ASSERT_EQ(outcome.diagnostics.size(), 1u) << all_diagnostics(outcome);
  EXPECT_NE(outcome.diagnostics[0].message.find("aliases expanding too far"), std::string::npos);
}

TEST(YamlInput, DeepNestingIsStopped) {
  std::string text = "id: deep\nvars:\n  v: " + std::string(150, '[') + std::string(150, ']') +
                     "\nsteps:\n  - { id: a, uses: log }\n";
  ParseOutcome outcome = parse(text);
  ASSERT_EQ(outcome.diagnostics.size(), 1u) << all_diagnostics(outcome);
  EXPECT_NE(outcome.diagnostics[0].message.find("nested more than 100 levels"), std::string::npos);
}

TEST(YamlInput, UnsupportedTagsAndBadTaggedValues) {
  ParseOutcome outcome = parse(R"(id: tags
vars:
  a: !custom thing
  b: !!int twelve
steps:
  - { id: a, uses: log }
)");
  EXPECT_EQ(outcome.diagnostics.size(), 2u) << all_diagnostics(outcome);
  EXPECT_TRUE(HasDiagnostic(outcome, 3, 6, "vars.a", "unsupported YAML tag '!custom'"));
  EXPECT_TRUE(HasDiagnostic(outcome, 4, 6, "vars.b", "'twelve' is not a valid !!int value"));
}

TEST(YamlInput, FilesThatCannotBeRead) {
  ParseOutcome missing = load_workflow_file("/nonexistent/herald/wf.yaml", ParseOptions{});
  ASSERT_EQ(missing.diagnostics.size(), 1u);
  EXPECT_EQ(missing.diagnostics[0].to_string(),
            "/nonexistent/herald/wf.yaml: cannot read file: No such file or directory");
  EXPECT_EQ(missing.diagnostics[0].location.line, 0);

  ParseOutcome directory = load_workflow_file("/tmp", ParseOptions{});
  ASSERT_EQ(directory.diagnostics.size(), 1u);
  EXPECT_EQ(directory.diagnostics[0].message, "cannot read file: it is a directory");
}

}  // namespace
}  // namespace herald::model

namespace herald::model {
namespace {

TEST(YamlInput, AliasesKeepTheLocationsOfTheirAnchor) {
  ParseOutcome outcome = testing::parse(R"(id: aliases
steps:
  - id: a
    uses: http
    retry: &patient
      attempts: 4
  - id: b
    uses: http
    retry: *patient
)");
  ASSERT_TRUE(outcome.ok()) << testing::all_diagnostics(outcome);
  const auto& at = outcome.workflow->locations;
  EXPECT_EQ(at.at("steps[1].retry").line, 9);  // the alias itself
  EXPECT_EQ(at.at("steps[1].retry").column, 12);
  EXPECT_EQ(at.at("steps[1].retry.attempts").line, 6);  // inside: where it was written
  EXPECT_EQ(at.at("steps[1].retry.attempts").column, 17);
}

TEST(YamlInput, ComplexKeysAreErrorsAndTheRestIsStillRead) {
  ParseOutcome outcome = testing::parse(R"(id: keys
vars:
  ? [a, b]
  : { deep: [1, 2] }
  ok: 1
  ok: { dropped: true }
steps:
  - { id: a, uses: nope }
)");
  EXPECT_EQ(outcome.diagnostics.size(), 3u) << testing::all_diagnostics(outcome);
  EXPECT_TRUE(testing::HasDiagnostic(outcome, 3, 5, "vars", "a mapping key must be plain text"));
  EXPECT_TRUE(testing::HasDiagnostic(outcome, 6, 3, "vars.ok", "duplicate key 'ok'"));
  EXPECT_TRUE(testing::HasDiagnostic(outcome, 8, 20, "steps[0].uses", "unknown step type"));
}

}  // namespace
}  // namespace herald::model
