// Parsing of `{{ expr }}` templates into literal text and Lua expressions, for the Evaluator
// (which caches the parse per template text) and for `herald validate` (check_template).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/common/result.h"

namespace herald::expr {

struct TemplatePart {
  enum class Kind { text, expression };
  Kind kind = Kind::text;
  std::string text;     // the literal text, or the expression without braces and outer spaces
  size_t position = 0;  // 1-based byte offset of the part (of its `{{` for an expression)
};

struct Template {
  std::vector<TemplatePart> parts;
  // The whole string is one `{{ expr }}` (spaces allowed inside the braces only): rendering
  // keeps the expression's type instead of making text.
  bool single_expression = false;
};

// Splits `text` at each `{{ ... }}`. The closing `}}` is found like Lua reads: braces of table
// constructors nest, and `}}` inside a quoted or long-bracket string does not close. There is no
// escape for a literal `{{`; write `{{ "{{" }}`. Errors (invalid_argument) name the position:
// "`{{` at position 7 has no closing `}}`", "empty expression in `{{ }}` at position 1".
Result<Template> parse_template(std::string_view text);

}  // namespace herald::expr
