#include "engine/model/internal/yaml_loader.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <string>

namespace herald::model::internal {
namespace {

// Nesting beyond this is not a workflow anyone writes by hand; stopping here keeps recursion
// (ours and nlohmann's) shallow.
constexpr int kMaxDepth = 100;
// Aliases let a few lines expand into billions of values ("billion laughs"). A real file has
// well under one value per byte, so this bound never bites an honest file.
constexpr size_t kBaseValueBudget = 100'000;

bool all_digits(std::string_view s, bool (*is_digit)(char)) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_digit(c)) return false;
  }
  return true;
}
bool is_decimal(char c) {
  return c >= '0' && c <= '9';
}
bool is_octal(char c) {
  return c >= '0' && c <= '7';
}
bool is_hex(char c) {
  return is_decimal(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

std::optional<Json> parse_integer(std::string_view text) {
  std::string_view digits = text;
  bool negative = false;
  if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) {
    negative = digits[0] == '-';
    digits.remove_prefix(1);
  }
  int base = 10;
  if (digits.size() > 2 && digits[0] == '0' && digits[1] == 'o' && text == digits) {
    base = 8;
    digits.remove_prefix(2);
    if (!all_digits(digits, is_octal)) return std::nullopt;
  } else if (digits.size() > 2 && digits[0] == '0' && digits[1] == 'x' && text == digits) {
    base = 16;
    digits.remove_prefix(2);
    if (!all_digits(digits, is_hex)) return std::nullopt;
  } else if (!all_digits(digits, is_decimal)) {
    return std::nullopt;
  }
  uint64_t magnitude = 0;
  auto [end, error] =
      std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, base);
  if (error == std::errc() && end == digits.data() + digits.size()) {
    if (!negative) {
      if (magnitude <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Json(static_cast<int64_t>(magnitude));
      }
      return Json(magnitude);
    }
    if (magnitude <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1) {
      return Json(static_cast<int64_t>(0 - magnitude));
    }
  }
  // Too large for 64 bits: keep it as a (rounded) number rather than failing.
  double value = 0;
  std::from_chars(digits.data(), digits.data() + digits.size(), value);
  return Json(negative ? -value : value);
}

std::optional<Json> parse_float(std::string_view text) {
  std::string_view body = text;
  bool negative = false;
  if (!body.empty() && (body[0] == '-' || body[0] == '+')) {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body == ".inf" || body == ".Inf" || body == ".INF") {
    return Json(negative ? -std::numeric_limits<double>::infinity()
                         : std::numeric_limits<double>::infinity());
  }
  if (text == ".nan" || text == ".NaN" || text == ".NAN") {
    return Json(std::numeric_limits<double>::quiet_NaN());
  }
  // [0-9]* ( . [0-9]* )? ( [eE] [-+]? [0-9]+ )? with at least one mantissa digit.
  size_t i = 0;
  size_t mantissa_digits = 0;
  while (i < body.size() && is_decimal(body[i])) ++i, ++mantissa_digits;
  if (i < body.size() && body[i] == '.') {
    ++i;
    while (i < body.size() && is_decimal(body[i])) ++i, ++mantissa_digits;
  }
  if (mantissa_digits == 0) return std::nullopt;
  if (i < body.size() && (body[i] == 'e' || body[i] == 'E')) {
    ++i;
    if (i < body.size() && (body[i] == '-' || body[i] == '+')) ++i;
    size_t exponent_start = i;
    while (i < body.size() && is_decimal(body[i])) ++i;
    if (i == exponent_start) return std::nullopt;
  }
  if (i != body.size()) return std::nullopt;
  double value = 0;
  std::from_chars(body.data(), body.data() + body.size(), value);
  return Json(negative ? -value : value);
}

std::optional<Json> parse_bool(std::string_view text) {
  if (text == "true" || text == "True" || text == "TRUE") return Json(true);
  if (text == "false" || text == "False" || text == "FALSE") return Json(false);
  return std::nullopt;
}

bool is_null_text(std::string_view text) {
  return text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL";
}

class Converter {
 public:
  Converter(const LineIndex& lines, SourceMap& map, DiagnosticList& diagnostics, size_t budget)
      : lines_(lines), map_(map), diagnostics_(diagnostics), budget_(budget) {}

  Location where(const YAML::Node& node) const {
    YAML::Mark mark = node.Mark();
    if (mark.pos < 0) return Location{};
    return lines_.location_of(static_cast<size_t>(mark.pos));
  }

  // True when conversion gave up (too large or too deep); the result is then incomplete.
  bool stopped() const { return stopped_; }

  Json convert(const YAML::Node& node, const std::string& path, int depth) {
    if (stopped_) return nullptr;
    if (++values_ > budget_) {
      stopped_ = true;
      diagnostics_.add(where(node), "",
                       "the document holds more than " + std::to_string(budget_) +
                           " values (aliases expanding too far?); expected a workflow of "
                           "ordinary size");
      return nullptr;
    }
    if (depth > kMaxDepth) {
      stopped_ = true;
      diagnostics_.add(where(node), path,
                       "nested more than " + std::to_string(kMaxDepth) +
                           " levels deep; expected a shallower document");
      return nullptr;
    }
    switch (node.Type()) {
      case YAML::NodeType::Scalar:
        return convert_scalar(node, path);
      case YAML::NodeType::Sequence:
        return convert_sequence(node, path, depth);
      case YAML::NodeType::Map:
        return convert_map(node, path, depth);
      default:
        return nullptr;
    }
  }

 private:
  Json convert_scalar(const YAML::Node& node, const std::string& path) {
    const std::string& tag = node.Tag();
    const std::string& text = node.Scalar();
    // "!" marks a quoted or block scalar: always a string.
    if (tag == "!") return text;
    if (tag == "?" || tag.empty()) {
      if (is_null_text(text)) return nullptr;
      if (auto value = parse_bool(text)) return *value;
      if (auto value = parse_integer(text)) return *value;
      if (auto value = parse_float(text)) return *value;
      return text;
    }
    static const std::string kCore = "tag:yaml.org,2002:";
    if (tag.rfind(kCore, 0) == 0) {
      std::string name = tag.substr(kCore.size());
      std::optional<Json> value;
      if (name == "str") return text;
      if (name == "null" && is_null_text(text)) return nullptr;
      if (name == "bool") value = parse_bool(text);
      if (name == "int") value = parse_integer(text);
      if (name == "float") value = parse_float(text);
      if (!value && name == "float") value = parse_integer(text);
      if (value) {
        if (name == "float" && value->is_number_integer()) return value->get<double>();
        return *value;
      }
      if (name == "null" || name == "bool" || name == "int" || name == "float") {
        diagnostics_.add(where(node), path, quote(text) + " is not a valid !!" + name + " value");
        return text;
      }
    }
    diagnostics_.add(where(node), path,
                     "unsupported YAML tag " + quote(tag) +
                         "; expected plain values (or the tags !!str, !!int, !!float, !!bool, "
                         "!!null)");
    return text;
  }

  Json convert_sequence(const YAML::Node& node, const std::string& path, int depth) {
    Json out = Json::array();
    size_t index = 0;
    for (const YAML::Node& item : node) {
      std::string child = index_path(path, index++);
      Location location = where(item);
      map_.values[child] = location.line > 0 ? location : where(node);
      out.push_back(convert(item, child, depth + 1));
    }
    return out;
  }

  Json convert_map(const YAML::Node& node, const std::string& path, int depth) {
    Json out = Json::object();
    for (auto entry : node) {
      const YAML::Node& key_node = entry.first;
      const YAML::Node& value_node = entry.second;
      Location key_location = where(key_node);
      if (!key_node.IsScalar() && !key_node.IsNull()) {
        // Almost always an unquoted `{{ template }}`, which YAML reads as a mapping in a mapping.
        diagnostics_.add(key_location, path,
                         "a mapping key must be plain text, not a list or a mapping; a value "
                         "that starts with {{ must be in quotes: \"{{ ... }}\"");
        continue;
      }
      std::string key = key_node.IsScalar() ? key_node.Scalar() : "";
      std::string child = child_path(path, key);
      if (out.contains(key)) {
        Location first = map_.keys[child];
        diagnostics_.add(key_location, child,
                         "duplicate key " + quote(key) + " (first given at line " +
                             std::to_string(first.line) + "); expected each key once");
        continue;
      }
      map_.keys[child] = key_location;
      // yaml-cpp places an empty value (`with:` then nothing) at the next token, which may be
      // lines further down; the key is where the reader will look.
      Location value_location = where(value_node);
      if (value_node.IsNull() &&
          (value_location.line == 0 || value_location.line > key_location.line)) {
        value_location = key_location;
      }
      map_.values[child] = value_location;
      out[key] = convert(value_node, child, depth + 1);
    }
    return out;
  }

  const LineIndex& lines_;
  SourceMap& map_;
  DiagnosticList& diagnostics_;
  size_t budget_;
  size_t values_ = 0;
  bool stopped_ = false;
};

// yaml-cpp names what its parser missed; add what the author most likely has to change.
std::string syntax_message(const std::string& what) {
  static const std::pair<const char*, const char*> kHints[] = {
      {YAML::ErrorMsg::END_OF_MAP,
       "check the indentation and that each entry is written key: value"},
      {YAML::ErrorMsg::END_OF_SEQ, "check the indentation of the '- ' items"},
      {YAML::ErrorMsg::END_OF_MAP_FLOW,
       "a { mapping } is not closed; expected '}' (and quote values holding {{ templates }})"},
      {YAML::ErrorMsg::END_OF_SEQ_FLOW, "a [ list ] is not closed; expected ']'"},
      {YAML::ErrorMsg::MAP_VALUE, "a ': ' appears where no key can start; quote text holding ': '"},
      {YAML::ErrorMsg::MAP_KEY, "a key appears where none can start; check the indentation"},
      {YAML::ErrorMsg::BLOCK_ENTRY,
       "a '- ' item appears where no list can start; check the "
       "indentation"},
      {YAML::ErrorMsg::TAB_IN_INDENTATION, "YAML indents with spaces, not tabs"},
      {YAML::ErrorMsg::EOF_IN_SCALAR, "a quoted string is not closed; expected its closing quote"},
      {YAML::ErrorMsg::UNKNOWN_ANCHOR, "an *alias names no &anchor defined before it"},
  };
  for (const auto& [message, hint] : kHints) {
    if (what == message) return "invalid YAML: " + what + "; " + hint;
  }
  return "invalid YAML: " + what;
}

Location mark_location(const YAML::Mark& mark, const LineIndex& lines) {
  if (mark.pos >= 0) return lines.location_of(static_cast<size_t>(mark.pos));
  if (mark.line >= 0) return Location{mark.line + 1, mark.column + 1};
  return Location{1, 1};
}

}  // namespace

std::optional<Json> load_yaml(std::string_view text, const LineIndex& lines, SourceMap& map,
                              DiagnosticList& diagnostics) {
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    diagnostics.add(mark_location(e.mark, lines), "", syntax_message(e.msg));
    return std::nullopt;
  }
  if (documents.empty()) {
    diagnostics.add(Location{1, 1}, "",
                    "the file is empty; expected a workflow: a mapping with at least id and "
                    "steps");
    return std::nullopt;
  }
  if (documents.size() > 1) {
    Location second = mark_location(documents[1].Mark(), lines);
    diagnostics.add(second, "",
                    "a second YAML document starts here; expected one workflow per file");
  }
  Converter converter(lines, map, diagnostics, kBaseValueBudget + text.size());
  const YAML::Node& root = documents[0];
  Location root_location = converter.where(root);
  map.values[""] = root_location.line > 0 ? root_location : Location{1, 1};
  try {
    Json json = converter.convert(root, "", 0);
    if (converter.stopped()) return std::nullopt;
    return json;
  } catch (const YAML::Exception& e) {
    diagnostics.add(mark_location(e.mark, lines), "", syntax_message(e.msg));
    return std::nullopt;
  }
}

}  // namespace herald::model::internal
