// Small text helpers for the workflow parser's messages: quoting user text safely, describing a
// JSON value in words, suggesting a close name, and turning byte offsets into the 1-based
// line:column (in code points) that editors show. Private to engine/model.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/common/result.h"
#include "engine/model/workflow.h"

namespace herald::model::internal {

// 'text' in single quotes, with control characters and invalid UTF-8 escaped and long text cut,
// so a message can always be printed and serialised as JSON.
std::string quote(std::string_view text);

// "a string ('x')", "a number (3)", "a list", "a mapping", "true", "nothing".
std::string describe_value(const Json& value);

// "a string", "an integer", "a list", ... for a JSON Schema type name.
std::string describe_type(std::string_view schema_type);

std::string join(const std::vector<std::string>& parts, std::string_view separator);

// The candidate closest to `name` by edit distance, when it is close enough to be a likely typo.
std::optional<std::string> closest_name(std::string_view name,
                                        const std::vector<std::string>& candidates);

// Shortest text for a number from a schema ("1", "0.5").
std::string format_number(double value);

// Maps byte offsets in the source to 1-based line and column; the column counts code points, not
// bytes, so it matches what an editor shows for non-ASCII text.
class LineIndex {
 public:
  explicit LineIndex(std::string_view text);
  Location location_of(size_t offset) const;

 private:
  std::string_view text_;
  std::vector<size_t> line_starts_;
};

// The first byte that makes `text` unusable as a workflow file (invalid UTF-8, or a control
// character YAML does not allow), with a message; nullopt when the text is fine.
struct BadByte {
  size_t offset = 0;
  std::string message;
};
std::optional<BadByte> find_bad_byte(std::string_view text);

}  // namespace herald::model::internal
