#include "engine/model/internal/text.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace herald::model::internal {
namespace {

constexpr size_t kMaxQuoted = 60;

// Length of the valid UTF-8 sequence starting at text[i], or 0 when it is not valid.
size_t utf8_sequence_length(std::string_view text, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char first = byte(i);
  if (first < 0x80) return 1;
  size_t length = 0;
  uint32_t code_point = 0;
  if ((first & 0xE0) == 0xC0) {
    length = 2;
    code_point = first & 0x1F;
  } else if ((first & 0xF0) == 0xE0) {
    length = 3;
    code_point = first & 0x0F;
  } else if ((first & 0xF8) == 0xF0) {
    length = 4;
    code_point = first & 0x07;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    code_point = (code_point << 6) | (byte(i + k) & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
  static constexpr uint32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code_point < kMinimum[length] || code_point > 0x10FFFF ||
      (code_point >= 0xD800 && code_point <= 0xDFFF)) {
    return 0;
  }
  return length;
}

std::string hex_byte(unsigned char byte) {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "0x%02X", byte);
  return buffer;
}

}  // namespace

std::string quote(std::string_view text) {
  std::string out = "'";
  size_t shown = 0;
  for (size_t i = 0; i < text.size();) {
    if (shown == kMaxQuoted) {
      out += "...";
      break;
    }
    size_t length = utf8_sequence_length(text, i);
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (length == 0) {
      out += "\\x" + hex_byte(c).substr(2);
      length = 1;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\x" + hex_byte(c).substr(2);
    } else {
      out.append(text.substr(i, length));
    }
    i += length;
    ++shown;
  }
  out += "'";
  return out;
}

std::string describe_value(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
      return "nothing";
    case Json::value_t::boolean:
      return value.get<bool>() ? "true" : "false";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return (value.is_number_integer() ? "an integer (" : "a number (") + value.dump() + ")";
    case Json::value_t::number_float:
      return "a number (" + format_number(value.get<double>()) + ")";
    case Json::value_t::string:
      return "a string (" + quote(value.get_ref<const std::string&>()) + ")";
    case Json::value_t::array:
      return "a list";
    case Json::value_t::object:
      return "a mapping";
    default:
      return "an unsupported value";
  }
}

std::string describe_type(std::string_view schema_type) {
  if (schema_type == "string") return "a string";
  if (schema_type == "integer") return "an integer";
  if (schema_type == "number") return "a number";
  if (schema_type == "boolean") return "true or false";
  if (schema_type == "object") return "a mapping";
  if (schema_type == "array") return "a list";
  if (schema_type == "null") return "nothing";
  return std::string(schema_type);
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += separator;
    out += parts[i];
  }
  return out;
}

std::optional<std::string> closest_name(std::string_view name,
                                        const std::vector<std::string>& candidates) {
  // Plain Levenshtein distance; names are short, so O(n*m) per candidate is nothing.
  auto distance = [](std::string_view a, std::string_view b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      size_t diagonal = row[0];
      row[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        size_t above = row[j];
        size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + cost});
        diagonal = above;
      }
    }
    return row[b.size()];
  };
  std::optional<std::string> best;
  size_t best_distance = std::max<size_t>(1, name.size() / 3) + 1;
  for (const auto& candidate : candidates) {
    size_t d = distance(name, candidate);
    if (d > 0 && d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  if (best) return best;
  // A shared stem catches inflections the distance is too strict for ("retries" -> "retry").
  for (const auto& candidate : candidates) {
    size_t common = 0;
    while (common < name.size() && common < candidate.size() && name[common] == candidate[common]) {
      ++common;
    }
    if (common >= 4 && candidate != name) return candidate;
  }
  return std::nullopt;
}

std::string format_number(double value) {
  if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 1e15) {
    return std::to_string(static_cast<long long>(value));
  }
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", value);
  return buffer;
}

LineIndex::LineIndex(std::string_view text) : text_(text) {
  line_starts_.push_back(0);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') line_starts_.push_back(i + 1);
  }
}

Location LineIndex::location_of(size_t offset) const {
  offset = std::min(offset, text_.size());
  auto next = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
  size_t line = static_cast<size_t>(next - line_starts_.begin());  // 1-based
  size_t start = line_starts_[line - 1];
  int column = 1;
  for (size_t i = start; i < offset; ++i) {
    // Count code points: every byte except UTF-8 continuation bytes starts one.
    if ((static_cast<unsigned char>(text_[i]) & 0xC0) != 0x80) ++column;
  }
  return Location{static_cast<int>(line), column};
}

std::optional<BadByte> find_bad_byte(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) {
      return BadByte{
          i, "control character " + hex_byte(c) + " is not allowed; a workflow file is UTF-8 text"};
    }
    size_t length = utf8_sequence_length(text, i);
    if (length == 0) {
      return BadByte{
          i, "invalid UTF-8 (byte " + hex_byte(c) + "); a workflow file must be UTF-8 text"};
    }
    i += length;
  }
  return std::nullopt;
}

}  // namespace herald::model::internal
