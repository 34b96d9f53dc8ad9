// What an approver's edits changed: a word-level diff of the submitted text and the final text,
// for the approval's output (JSON ops a web admin can render), and a readable form for logs,
// notifications and the CLI (a line-based unified diff, plus inline [-removed-]{+added+} marks).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/common/result.h"

namespace herald::approvals {

struct DiffOp {
  enum class Kind { equal, remove, insert };
  Kind kind = Kind::equal;
  std::string text;
  bool operator==(const DiffOp&) const = default;
};

std::string_view to_string(DiffOp::Kind kind);  // "equal", "delete", "insert"

struct TextDiff {
  // Concatenating the equal and remove texts gives the original; equal and insert, the final.
  // Within a change, the removed text comes before the inserted text.
  std::vector<DiffOp> ops;
  // "--- original\n+++ final\n@@ -1,2 +1,2 @@\n ..." with 3 lines of context; empty when the
  // texts are equal.
  std::string unified;

  bool changed() const;
  // The whole final text with changes marked like `git diff --word-diff=plain`:
  // "Spring [-sale-]{+launch+} today".
  std::string inline_markup() const;
  // {"changed": bool, "ops": [{"op": "equal"|"delete"|"insert", "text": "..."}],
  //  "unified": "...", "inline": "..."}
  Json to_json() const;
  static Result<TextDiff> from_json(const Json& json);
};

// Words (runs of letters, digits, '_' and non-ASCII characters), single punctuation marks and
// whitespace runs are the units compared, so "price!" -> "prices!" shows one changed word and
// the punctuation as kept. Very different long texts (more than a few thousand changed units)
// are reported as one replacement rather than spending unbounded time and memory.
TextDiff diff_text(std::string_view original, std::string_view final_text);

}  // namespace herald::approvals
