// Shared helpers for the workflow model tests: parse options with a fake expression checker (so
// these tests do not depend on the Lua library), and an assertion that a diagnostic with an exact
// place, path and message fragment was reported.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>

#include "engine/model/workflow.h"

namespace herald::model::testing {

// Knows the built-in steps of the issue; rejects any source containing "SYNTAX_ERROR".
inline ParseOptions test_options() {
  ParseOptions options;
  options.known_steps = {"http", "log", "script", "set", "wait"};
  options.check_expression = [](std::string_view source,
                                ExpressionKind kind) -> std::optional<std::string> {
    if (source.find("SYNTAX_ERROR") == std::string_view::npos) return std::nullopt;
    switch (kind) {
      case ExpressionKind::expression:
        return "fake: bad expression";
      case ExpressionKind::template_text:
        return "fake: bad template";
      case ExpressionKind::script:
        return "fake: bad script";
    }
    return std::nullopt;
  };
  return options;
}

inline ParseOutcome parse(std::string_view text, const ParseOptions& options = test_options()) {
  return parse_workflow(text, "wf.yaml", options);
}

inline std::string all_diagnostics(const ParseOutcome& outcome) {
  std::string out;
  for (const auto& d : outcome.diagnostics) out += "  " + d.to_string() + "\n";
  return out.empty() ? "  (no diagnostics)\n" : out;
}

// Passes when some diagnostic sits exactly at line:column with this path and its message
// contains `fragment`.
inline ::testing::AssertionResult HasDiagnostic(const ParseOutcome& outcome, int line, int column,
                                                std::string_view path, std::string_view fragment) {
  for (const auto& d : outcome.diagnostics) {
    if (d.location.line == line && d.location.column == column && d.path == path &&
        d.message.find(fragment) != std::string::npos) {
      return ::testing::AssertionSuccess();
    }
  }
  return ::testing::AssertionFailure() << "no diagnostic at " << line << ":" << column << " "
                                       << path << " containing '" << fragment << "'; got:\n"
                                       << all_diagnostics(outcome);
}

// Passes when the only diagnostic is the one described.
inline ::testing::AssertionResult HasOnlyDiagnostic(const ParseOutcome& outcome, int line,
                                                    int column, std::string_view path,
                                                    std::string_view fragment) {
  if (outcome.diagnostics.size() != 1) {
    return ::testing::AssertionFailure() << "expected exactly one diagnostic; got:\n"
                                         << all_diagnostics(outcome);
  }
  return HasDiagnostic(outcome, line, column, path, fragment);
}

}  // namespace herald::model::testing
