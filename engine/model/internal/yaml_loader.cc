#include "engine/model/internal/yaml_loader.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

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

// Builds JSON straight from yaml-cpp's parse events, in one pass: no yaml-cpp Node tree, and full
// control over what anchors and aliases may expand to. It records each value's location as it
// goes and ignores every document after the first (only their start is noted).
class JsonBuilder : public YAML::EventHandler {
 public:
  JsonBuilder(const LineIndex& lines, SourceMap& map, DiagnosticList& diagnostics, size_t budget)
      : lines_(lines), map_(map), diagnostics_(diagnostics), budget_(budget) {}

  const std::vector<YAML::Mark>& document_starts() const { return document_starts_; }
  // The first document, or nullopt when building it stopped (too large or too deep).
  std::optional<Json> take_root() {
    if (stopped_ || document_starts_.empty()) return std::nullopt;
    return std::move(root_);
  }

  void OnDocumentStart(const YAML::Mark& mark) override { document_starts_.push_back(mark); }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (ignoring()) return;
    if (expecting_key()) return set_key("", where(mark));
    place(nullptr, where(mark), anchor, /*is_null=*/true);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    if (ignoring()) return;
    if (expecting_key()) return set_key(value, where(mark));
    Location location = where(mark);
    place(resolve_scalar(tag, value, next_path(), location), location, anchor, false);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (ignoring()) return;
    if (expecting_key()) return bad_key(where(mark));
    auto found = anchors_.find(anchor);
    if (found == anchors_.end()) return place(nullptr, where(mark), 0, true);
    const Anchored& anchored = found->second;
    values_ += anchored.count;  // an alias costs what it expands to
    if (!within_budget(where(mark))) return;
    if (!stack_.empty() && !stack_.back().discard && !stack_.back().skip_value) {
      std::string path = next_path();
      for (const auto& [suffix, location] : anchored.locations) {
        record(join_suffix(path, suffix), location);
      }
    }
    place(anchored.value, where(mark), 0, false);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, anchor, Json::array());
  }
  void OnSequenceEnd() override { close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, anchor, Json::object());
  }
  void OnMapEnd() override { close(); }

 private:
  struct Frame {
    Json value;  // the array or object being filled
    std::string path;
    Location location;
    YAML::anchor_t anchor = 0;
    size_t first_logged = 0;  // where this container's locations start in log_
    size_t first_count = 0;   // values_ when it opened
    bool discard = false;     // a list or mapping used as a key: read, then dropped
    // Mappings alternate key and value.
    bool has_key = false;
    std::string key;
    Location key_location;
    bool skip_value = false;  // the key was a duplicate or not text
  };
  struct Anchored {
    Json value;
    std::vector<std::pair<std::string, Location>> locations;  // below the anchored value
    size_t count = 1;
  };

  bool ignoring() const { return stopped_ || document_starts_.size() != 1; }

  bool expecting_key() const {
    return !stack_.empty() && stack_.back().value.is_object() && !stack_.back().has_key;
  }

  Location where(const YAML::Mark& mark) const {
    if (mark.pos < 0) return Location{};
    return lines_.location_of(static_cast<size_t>(mark.pos));
  }

  std::string next_path() const {
    if (stack_.empty()) return "";
    const Frame& top = stack_.back();
    if (top.value.is_object()) return child_path(top.path, top.key);
    return index_path(top.path, top.value.size());
  }

  static std::string join_suffix(const std::string& path, const std::string& suffix) {
    if (path.empty() && !suffix.empty() && suffix[0] == '.') return suffix.substr(1);
    return path + suffix;
  }

  bool within_budget(Location location) {
    if (values_ <= budget_) return true;
    stopped_ = true;
    diagnostics_.add(location, "",
                     "the document holds more than " + std::to_string(budget_) +
                         " values (aliases expanding too far?); expected a workflow of ordinary "
                         "size");
    return false;
  }

  void set_key(const std::string& key, Location location) {
    Frame& top = stack_.back();
    top.has_key = true;
    top.key = key;
    top.key_location = location;
    top.skip_value = false;
    if (top.discard) return;
    std::string path = child_path(top.path, key);
    if (top.value.contains(key)) {
      diagnostics_.add(location, path,
                       "duplicate key " + quote(key) + " (first given at line " +
                           std::to_string(map_.keys[path].line) + "); expected each key once");
      top.skip_value = true;
      return;
    }
    map_.keys[path] = location;
  }

  // A list, mapping or alias where a mapping key should be.
  void bad_key(Location location) {
    Frame& top = stack_.back();
    if (!top.discard) {
      // Almost always an unquoted `{{ template }}`, which YAML reads as a mapping in a mapping.
      diagnostics_.add(location, top.path,
                       "a mapping key must be plain text, not a list or a mapping; a value that "
                       "starts with {{ must be in quotes: \"{{ ... }}\"");
    }
    top.has_key = true;
    top.key.clear();
    top.skip_value = true;
  }

  void record(const std::string& path, Location location) {
    map_.values[path] = location;
    if (anchored_open_ > 0) log_.emplace_back(path, location);
  }

  void remember_anchor(YAML::anchor_t anchor, const Json& value, const std::string& path,
                       size_t first_logged, size_t count) {
    if (anchor == 0) return;
    Anchored anchored{value, {}, count};
    for (size_t i = first_logged; i < log_.size(); ++i) {
      if (log_[i].first.size() > path.size() && log_[i].first.rfind(path, 0) == 0) {
        std::string suffix = log_[i].first.substr(path.size());
        if (path.empty() && suffix[0] != '[') suffix = "." + suffix;
        anchored.locations.emplace_back(std::move(suffix), log_[i].second);
      }
    }
    anchors_[anchor] = std::move(anchored);
  }

  // Puts a finished value (scalar, null or alias) into the container being filled.
  void place(Json value, Location location, YAML::anchor_t anchor, bool is_null) {
    ++values_;
    if (!within_budget(location)) return;
    std::string path = next_path();
    if (stack_.empty()) {
      if (!is_null) record(path, location);
      root_ = std::move(value);
      return;
    }
    Frame& top = stack_.back();
    if (top.value.is_object()) {
      // yaml-cpp places an empty value (`with:` then nothing) at the next token, which may be
      // lines further down; the key is where the reader will look.
      if (is_null && (location.line == 0 || location.line > top.key_location.line)) {
        location = top.key_location;
      }
    } else if (location.line == 0) {
      location = top.location;
    }
    if (!top.discard && !top.skip_value) {
      record(path, location);
      remember_anchor(anchor, value, path, log_.size(), 1);
    }
    insert(top, std::move(value));
  }

  void insert(Frame& top, Json value) {
    if (top.value.is_object()) {
      if (!top.discard && !top.skip_value) top.value[top.key] = std::move(value);
      top.has_key = false;
    } else {
      top.value.push_back(std::move(value));
    }
  }

  void open(const YAML::Mark& mark, YAML::anchor_t anchor, Json empty) {
    if (ignoring()) return;
    Location location = where(mark);
    bool discard = false;
    if (expecting_key()) {
      bad_key(location);
      stack_.back().has_key = false;  // the key is this container; its value follows
      discard = true;
    } else if (!stack_.empty() && (stack_.back().discard || stack_.back().skip_value)) {
      discard = true;
    }
    if (stack_.size() >= static_cast<size_t>(kMaxDepth)) {
      stopped_ = true;
      diagnostics_.add(location, next_path(),
                       "nested more than " + std::to_string(kMaxDepth) +
                           " levels deep; expected a shallower document");
      return;
    }
    ++values_;
    if (!within_budget(location)) return;
    std::string path = next_path();
    if (!stack_.empty() && stack_.back().value.is_object() && location.line == 0) {
      location = stack_.back().key_location;
    }
    if (!discard) record(path, location);
    if (anchor != 0) ++anchored_open_;
    Frame frame;
    frame.value = std::move(empty);
    frame.path = std::move(path);
    frame.location = location;
    frame.anchor = anchor;
    frame.first_logged = log_.size();
    frame.first_count = values_;
    frame.discard = discard;
    stack_.push_back(std::move(frame));
  }

  void close() {
    if (ignoring() || stack_.empty()) return;
    Frame frame = std::move(stack_.back());
    stack_.pop_back();
    if (frame.anchor != 0) {
      --anchored_open_;
      if (!frame.discard) {
        remember_anchor(frame.anchor, frame.value, frame.path, frame.first_logged,
                        values_ - frame.first_count + 1);
      }
    }
    if (anchored_open_ == 0) log_.clear();
    if (stack_.empty()) {
      root_ = std::move(frame.value);
      return;
    }
    Frame& top = stack_.back();
    if (frame.discard && top.value.is_object() && !top.has_key && !top.discard) {
      // This container was a key: its value comes next and is dropped with it.
      top.has_key = true;
      top.skip_value = true;
      return;
    }
    insert(top, std::move(frame.value));
  }

  Json resolve_scalar(const std::string& tag, const std::string& text, const std::string& path,
                      Location location) {
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
        diagnostics_.add(location, path, quote(text) + " is not a valid !!" + name + " value");
        return text;
      }
    }
    diagnostics_.add(location, path,
                     "unsupported YAML tag " + quote(tag) +
                         "; expected plain values (or the tags !!str, !!int, !!float, !!bool, "
                         "!!null)");
    return text;
  }

  const LineIndex& lines_;
  SourceMap& map_;
  DiagnosticList& diagnostics_;
  size_t budget_;
  size_t values_ = 0;
  bool stopped_ = false;
  std::vector<YAML::Mark> document_starts_;
  std::vector<Frame> stack_;
  Json root_;
  std::map<YAML::anchor_t, Anchored> anchors_;
  size_t anchored_open_ = 0;
  std::vector<std::pair<std::string, Location>> log_;  // locations inside open anchors
};

}  // namespace

std::optional<Json> load_yaml(std::string_view text, const LineIndex& lines, SourceMap& map,
                              DiagnosticList& diagnostics) {
  JsonBuilder builder(lines, map, diagnostics, kBaseValueBudget + text.size());
  try {
    std::istringstream stream{std::string(text)};
    YAML::Parser parser(stream);
    // yaml-cpp 0.7 can loop forever on some invalid input (a stray ',' yields endless empty
    // documents without consuming a token: jbeder/yaml-cpp#1040, fixed upstream in #1319), so
    // documents are read with a cap, and one that starts where the previous one did is reported
    // as the syntax error it is.
    while (builder.document_starts().size() < 3 && parser.HandleNextDocument(builder)) {
      const auto& starts = builder.document_starts();
      size_t count = starts.size();
      if (count >= 2 && starts[count - 1].pos == starts[count - 2].pos) {
        size_t at = static_cast<size_t>(std::max(starts[count - 1].pos, 0));
        std::string found = at < text.size() ? quote(text.substr(at, 1)) : "the end of the file";
        diagnostics.add(mark_location(starts[count - 1], lines), "",
                        "invalid YAML: unexpected " + found + "; expected a key: value entry");
        return std::nullopt;
      }
    }
  } catch (const YAML::Exception& e) {
    diagnostics.add(mark_location(e.mark, lines), "", syntax_message(e.msg));
    return std::nullopt;
  }
  const auto& starts = builder.document_starts();
  if (starts.empty()) {
    diagnostics.add(Location{1, 1}, "",
                    "the file is empty; expected a workflow: a mapping with at least id and "
                    "steps");
    return std::nullopt;
  }
  if (starts.size() > 1) {
    diagnostics.add(mark_location(starts[1], lines), "",
                    "a second YAML document starts here; expected one workflow per file");
  }
  std::optional<Json> root = builder.take_root();
  if (!root) return std::nullopt;
  // An empty document's null sits wherever yaml-cpp stopped; the file's start is clearer.
  if (!map.values.count("") || root->is_null()) map.values[""] = Location{1, 1};
  return root;
}

}  // namespace herald::model::internal
