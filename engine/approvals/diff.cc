#include "engine/approvals/diff.h"

#include <algorithm>
#include <cctype>

namespace herald::approvals {
namespace {

// Myers keeps one frontier per edit distance; beyond this many edits (D^2 frontier cells) the
// diff falls back to a single replacement of the differing middle.
constexpr int kMaxEdits = 2000;
constexpr int kContextLines = 3;

enum class Class { space, word, other };

Class class_of(unsigned char c) {
  if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') return Class::space;
  if (std::isalnum(c) || c == '_' || c >= 0x80) return Class::word;
  return Class::other;
}

std::vector<std::string_view> word_tokens(std::string_view text) {
  std::vector<std::string_view> tokens;
  size_t i = 0;
  while (i < text.size()) {
    Class kind = class_of(static_cast<unsigned char>(text[i]));
    size_t end = i + 1;
    if (kind != Class::other) {
      while (end < text.size() && class_of(static_cast<unsigned char>(text[end])) == kind) ++end;
    }
    tokens.push_back(text.substr(i, end - i));
    i = end;
  }
  return tokens;
}

// Each line with its '\n' (the last one may lack it).
std::vector<std::string_view> line_tokens(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    end = end == std::string_view::npos ? text.size() : end + 1;
    lines.push_back(text.substr(start, end - start));
    start = end;
  }
  return lines;
}

struct Edit {
  DiffOp::Kind kind;
  size_t a = 0;  // index in the original (equal, remove)
  size_t b = 0;  // index in the final text (equal, insert)
};

// The shortest edit script between a and b (Myers 1986, "An O(ND) Difference Algorithm"),
// after trimming the common prefix and suffix, which is all most edits of a post need.
std::vector<Edit> edit_script(const std::vector<std::string_view>& a,
                              const std::vector<std::string_view>& b) {
  std::vector<Edit> edits;
  size_t prefix = 0;
  while (prefix < a.size() && prefix < b.size() && a[prefix] == b[prefix]) ++prefix;
  size_t suffix = 0;
  while (suffix < a.size() - prefix && suffix < b.size() - prefix &&
         a[a.size() - 1 - suffix] == b[b.size() - 1 - suffix]) {
    ++suffix;
  }
  for (size_t i = 0; i < prefix; ++i) edits.push_back({DiffOp::Kind::equal, i, i});
  const int n = static_cast<int>(a.size() - prefix - suffix);
  const int m = static_cast<int>(b.size() - prefix - suffix);
  auto A = [&](int i) { return a[prefix + static_cast<size_t>(i)]; };
  auto B = [&](int j) { return b[prefix + static_cast<size_t>(j)]; };

  std::vector<Edit> middle;
  auto replace_all = [&] {
    middle.clear();
    for (int i = 0; i < n; ++i) middle.push_back({DiffOp::Kind::remove, size_t(i), 0});
    for (int j = 0; j < m; ++j) middle.push_back({DiffOp::Kind::insert, 0, size_t(j)});
  };
  if (n == 0 || m == 0) {
    replace_all();
  } else {
    const int max = std::min(n + m, kMaxEdits);
    // trace[d] is the frontier before step d, for diagonals k in [-(d+1), d+1].
    std::vector<std::vector<int>> trace;
    std::vector<int> v(2 * static_cast<size_t>(max) + 3, 0);
    const int offset = max + 1;
    int found = -1;
    for (int d = 0; d <= max && found < 0; ++d) {
      trace.emplace_back(v.begin() + (offset - d - 1), v.begin() + (offset + d + 2));
      for (int k = -d; k <= d; k += 2) {
        int x = (k == -d || (k != d && v[offset + k - 1] < v[offset + k + 1]))
                    ? v[offset + k + 1]
                    : v[offset + k - 1] + 1;
        int y = x - k;
        while (x < n && y < m && A(x) == B(y)) ++x, ++y;
        v[offset + k] = x;
        if (x >= n && y >= m) {
          found = d;
          break;
        }
      }
    }
    if (found < 0) {
      replace_all();
    } else {
      int x = n;
      int y = m;
      for (int d = found; d >= 0; --d) {
        const std::vector<int>& frontier = trace[static_cast<size_t>(d)];
        auto at = [&](int k) { return frontier[static_cast<size_t>(k + d + 1)]; };
        int k = x - y;
        int prev_k, prev_x, prev_y;
        if (d == 0) {
          prev_x = 0;
          prev_y = 0;
        } else {
          prev_k = (k == -d || (k != d && at(k - 1) < at(k + 1))) ? k + 1 : k - 1;
          prev_x = at(prev_k);
          prev_y = prev_x - prev_k;
        }
        while (x > prev_x && y > prev_y) {
          --x, --y;
          middle.push_back({DiffOp::Kind::equal, size_t(x), size_t(y)});
        }
        if (d > 0) {
          if (x == prev_x) {
            middle.push_back({DiffOp::Kind::insert, 0, size_t(prev_y)});
          } else {
            middle.push_back({DiffOp::Kind::remove, size_t(prev_x), 0});
          }
        }
        x = prev_x;
        y = prev_y;
      }
      std::reverse(middle.begin(), middle.end());
    }
  }
  for (Edit edit : middle) {
    edit.a += prefix;
    edit.b += prefix;
    edits.push_back(edit);
  }
  for (size_t i = 0; i < suffix; ++i) {
    edits.push_back({DiffOp::Kind::equal, a.size() - suffix + i, b.size() - suffix + i});
  }
  return edits;
}

bool is_blank(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return class_of(static_cast<unsigned char>(c)) == Class::space;
  });
}

// Adjacent ops of one kind become one; within a run of changes, removals come first. A blank
// equal op between two changes is folded into the change, so "a b" -> "c d" reads as one
// replacement instead of "[-a-]{+c+} [-b-]{+d+}".
std::vector<DiffOp> tidy(const std::vector<DiffOp>& raw) {
  std::vector<DiffOp> ops;
  std::string removed;
  std::string inserted;
  bool in_change = false;
  auto flush = [&] {
    if (!removed.empty()) ops.push_back({DiffOp::Kind::remove, std::move(removed)});
    if (!inserted.empty()) ops.push_back({DiffOp::Kind::insert, std::move(inserted)});
    removed.clear();
    inserted.clear();
    in_change = false;
  };
  for (size_t i = 0; i < raw.size(); ++i) {
    const DiffOp& op = raw[i];
    if (op.kind == DiffOp::Kind::equal) {
      bool change_follows = i + 1 < raw.size() && raw[i + 1].kind != DiffOp::Kind::equal;
      if (in_change && change_follows && is_blank(op.text)) {
        removed += op.text;
        inserted += op.text;
        continue;
      }
      flush();
      if (!ops.empty() && ops.back().kind == DiffOp::Kind::equal) {
        ops.back().text += op.text;
      } else {
        ops.push_back(op);
      }
      continue;
    }
    in_change = true;
    (op.kind == DiffOp::Kind::remove ? removed : inserted) += op.text;
  }
  flush();
  return ops;
}

std::string range(size_t start, size_t count) {
  // Unified format: a hunk that holds no line of a side names the line before it.
  size_t first = count == 0 ? start : start + 1;
  return std::to_string(first) + (count == 1 ? "" : "," + std::to_string(count));
}

std::string unified_diff(std::string_view original, std::string_view final_text) {
  std::vector<std::string_view> a = line_tokens(original);
  std::vector<std::string_view> b = line_tokens(final_text);
  std::vector<Edit> edits = edit_script(a, b);
  std::string out;
  auto line_text = [](DiffOp::Kind kind, std::string_view line) {
    char mark = kind == DiffOp::Kind::equal ? ' ' : kind == DiffOp::Kind::remove ? '-' : '+';
    std::string text(1, mark);
    if (!line.empty() && line.back() == '\n') {
      text.append(line.substr(0, line.size() - 1));
      text += '\n';
    } else {
      text.append(line);
      text += "\n\\ No newline at end of file\n";
    }
    return text;
  };
  size_t i = 0;
  while (i < edits.size()) {
    while (i < edits.size() && edits[i].kind == DiffOp::Kind::equal) ++i;
    if (i == edits.size()) break;
    // A hunk: context before, then changes until kContextLines * 2 equal lines in a row.
    size_t start = i >= static_cast<size_t>(kContextLines) ? i - kContextLines : 0;
    size_t end = i;
    size_t equal_run = 0;
    while (end < edits.size()) {
      if (edits[end].kind == DiffOp::Kind::equal) {
        if (++equal_run > static_cast<size_t>(kContextLines) * 2) break;
      } else {
        equal_run = 0;
      }
      ++end;
    }
    // Trailing context: at most kContextLines equal lines after the last change.
    size_t last_change = end;
    while (last_change > start && edits[last_change - 1].kind == DiffOp::Kind::equal) --last_change;
    end = std::min(edits.size(), last_change + kContextLines);
    size_t a_start = 0, b_start = 0, a_count = 0, b_count = 0;
    bool a_set = false, b_set = false;
    // The position of a side with no lines in the hunk: where its lines would be.
    size_t a_before = 0, b_before = 0;
    for (size_t k = 0; k < start; ++k) {
      if (edits[k].kind != DiffOp::Kind::insert) ++a_before;
      if (edits[k].kind != DiffOp::Kind::remove) ++b_before;
    }
    std::string body;
    for (size_t k = start; k < end; ++k) {
      const Edit& edit = edits[k];
      if (edit.kind != DiffOp::Kind::insert) {
        if (!a_set) a_start = edit.a, a_set = true;
        ++a_count;
      }
      if (edit.kind != DiffOp::Kind::remove) {
        if (!b_set) b_start = edit.b, b_set = true;
        ++b_count;
      }
      std::string_view line = edit.kind == DiffOp::Kind::insert ? b[edit.b] : a[edit.a];
      body += line_text(edit.kind, line);
    }
    if (!a_set) a_start = a_before;
    if (!b_set) b_start = b_before;
    out += "@@ -" + range(a_start, a_count) + " +" + range(b_start, b_count) + " @@\n" + body;
    i = end;
  }
  if (out.empty()) return out;
  return "--- original\n+++ final\n" + out;
}

}  // namespace

std::string_view to_string(DiffOp::Kind kind) {
  switch (kind) {
    case DiffOp::Kind::equal:
      return "equal";
    case DiffOp::Kind::remove:
      return "delete";
    case DiffOp::Kind::insert:
      return "insert";
  }
  return "equal";
}

bool TextDiff::changed() const {
  return std::any_of(ops.begin(), ops.end(),
                     [](const DiffOp& op) { return op.kind != DiffOp::Kind::equal; });
}

std::string TextDiff::inline_markup() const {
  std::string out;
  for (const auto& op : ops) {
    switch (op.kind) {
      case DiffOp::Kind::equal:
        out += op.text;
        break;
      case DiffOp::Kind::remove:
        out += "[-" + op.text + "-]";
        break;
      case DiffOp::Kind::insert:
        out += "{+" + op.text + "+}";
        break;
    }
  }
  return out;
}

Json TextDiff::to_json() const {
  Json list = Json::array();
  for (const auto& op : ops) list.push_back(Json{{"op", to_string(op.kind)}, {"text", op.text}});
  return Json{{"changed", changed()},
              {"ops", std::move(list)},
              {"unified", unified},
              {"inline", inline_markup()}};
}

Result<TextDiff> TextDiff::from_json(const Json& json) {
  auto invalid = [](std::string message) {
    return make_error(ErrorCode::invalid_argument, "diff: " + std::move(message));
  };
  if (!json.is_object() || !json.contains("ops") || !json["ops"].is_array()) {
    return invalid("expected an object with ops");
  }
  TextDiff diff;
  for (const auto& item : json["ops"]) {
    if (!item.is_object() || !item.contains("op") || !item.contains("text") ||
        !item["text"].is_string()) {
      return invalid("each op needs op and text");
    }
    DiffOp op;
    if (item["op"] == "equal") op.kind = DiffOp::Kind::equal;
    else if (item["op"] == "delete") op.kind = DiffOp::Kind::remove;
    else if (item["op"] == "insert") op.kind = DiffOp::Kind::insert;
    else return invalid("unknown op " + item["op"].dump());
    op.text = item["text"].get<std::string>();
    diff.ops.push_back(std::move(op));
  }
  if (json.contains("unified") && json["unified"].is_string()) {
    diff.unified = json["unified"].get<std::string>();
  }
  return diff;
}

TextDiff diff_text(std::string_view original, std::string_view final_text) {
  std::vector<std::string_view> a = word_tokens(original);
  std::vector<std::string_view> b = word_tokens(final_text);
  std::vector<DiffOp> raw;
  for (const Edit& edit : edit_script(a, b)) {
    std::string_view text = edit.kind == DiffOp::Kind::insert ? b[edit.b] : a[edit.a];
    raw.push_back({edit.kind, std::string(text)});
  }
  TextDiff diff;
  diff.ops = tidy(raw);
  diff.unified = unified_diff(original, final_text);
  return diff;
}

}  // namespace herald::approvals
