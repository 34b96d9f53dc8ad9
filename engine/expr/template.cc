#include "engine/expr/template.h"

#include <optional>

namespace herald::expr {

namespace {

std::string_view trim(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const size_t last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

// At text[i] == '[': the length of a long-bracket opener `[[`, `[=[`, ... or 0.
size_t long_bracket_level(std::string_view text, size_t i, size_t& opener_length) {
  size_t j = i + 1;
  while (j < text.size() && text[j] == '=') ++j;
  if (j < text.size() && text[j] == '[') {
    opener_length = j - i + 1;
    return j - i - 1 + 1;  // level + 1, so that `[[` (level 0) is not 0
  }
  return 0;
}

// The index of the `}}` that closes the expression starting at `start`, or nullopt.
std::optional<size_t> find_close(std::string_view text, size_t start) {
  int depth = 0;
  size_t i = start;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '"' || c == '\'') {
      ++i;
      while (i < text.size() && text[i] != c) i += text[i] == '\\' ? 2 : 1;
      ++i;
      continue;
    }
    if (c == '[') {
      size_t opener = 0;
      if (const size_t level = long_bracket_level(text, i, opener); level > 0) {
        const std::string closer = "]" + std::string(level - 1, '=') + "]";
        const size_t end = text.find(closer, i + opener);
        if (end == std::string_view::npos) return std::nullopt;
        i = end + closer.size();
        continue;
      }
    }
    if (c == '{') {
      ++depth;
    } else if (c == '}') {
      if (depth == 0 && i + 1 < text.size() && text[i + 1] == '}') return i;
      if (depth > 0) --depth;
    }
    ++i;
  }
  return std::nullopt;
}

}  // namespace

Result<Template> parse_template(std::string_view text) {
  Template result;
  size_t i = 0;
  while (i < text.size()) {
    const size_t open = text.find("{{", i);
    if (open == std::string_view::npos) break;
    if (open > i) {
      result.parts.push_back(
          {TemplatePart::Kind::text, std::string(text.substr(i, open - i)), i + 1});
    }
    const std::optional<size_t> close = find_close(text, open + 2);
    if (!close) {
      return make_error(ErrorCode::invalid_argument,
                        "`{{` at position " + std::to_string(open + 1) + " has no closing `}}`");
    }
    const std::string_view expression = trim(text.substr(open + 2, *close - open - 2));
    if (expression.empty()) {
      return make_error(ErrorCode::invalid_argument,
                        "empty expression in `{{ }}` at position " + std::to_string(open + 1));
    }
    result.parts.push_back({TemplatePart::Kind::expression, std::string(expression), open + 1});
    if (open == 0 && *close + 2 == text.size()) result.single_expression = true;
    i = *close + 2;
  }
  if (i < text.size()) {
    result.parts.push_back({TemplatePart::Kind::text, std::string(text.substr(i)), i + 1});
  }
  return result;
}

}  // namespace herald::expr
