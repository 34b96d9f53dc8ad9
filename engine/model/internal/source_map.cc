#include "engine/model/internal/source_map.h"

#include <algorithm>
#include <set>
#include <tuple>

#include "engine/common/result.h"

namespace herald::model::internal {
namespace {

bool is_plain_key(std::string_view key) {
  if (key.empty()) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

}  // namespace

std::string child_path(std::string_view parent, std::string_view key) {
  std::string out(parent);
  if (is_plain_key(key)) {
    if (!out.empty()) out += '.';
    out += key;
  } else {
    // JSON string syntax keeps any key readable and unambiguous; invalid UTF-8 is replaced
    // rather than thrown on, since paths end up in JSON output.
    out += '[';
    out += Json(std::string(key)).dump(-1, ' ', false, Json::error_handler_t::replace);
    out += ']';
  }
  return out;
}

std::string index_path(std::string_view parent, size_t index) {
  return std::string(parent) + "[" + std::to_string(index) + "]";
}

std::string parent_path(std::string_view path) {
  if (path.empty()) return "";
  if (path.back() == ']') {
    size_t open = std::string_view::npos;
    if (path.size() >= 2 && path[path.size() - 2] == '"') {
      // A quoted key: find the `["` whose quote is not escaped.
      for (size_t i = path.size() - 2; i-- > 0;) {
        if (path[i] == '[' && path[i + 1] == '"') {
          size_t backslashes = 0;
          for (size_t k = i; k > 0 && path[k - 1] == '\\'; --k) ++backslashes;
          if (backslashes % 2 == 0) {
            open = i;
            break;
          }
        }
      }
    } else {
      open = path.rfind('[');
    }
    return open == std::string_view::npos ? "" : std::string(path.substr(0, open));
  }
  size_t cut = path.find_last_of(".]");
  if (cut == std::string_view::npos) return "";
  if (path[cut] == ']') return std::string(path.substr(0, cut + 1));
  return std::string(path.substr(0, cut));
}

Location SourceMap::value(std::string_view path) const {
  std::string current(path);
  while (true) {
    auto found = values.find(current);
    if (found != values.end()) return found->second;
    if (current.empty()) return Location{};
    current = parent_path(current);
  }
}

Location SourceMap::key(std::string_view path) const {
  auto found = keys.find(std::string(path));
  if (found != keys.end()) return found->second;
  return value(path);
}

void DiagnosticList::add(Location location, std::string path, std::string message) {
  paths_.insert(path);
  diagnostics_.push_back(Diagnostic{file_, location, std::move(path), std::move(message)});
}

void DiagnosticList::at_value(const std::string& path, std::string message) {
  add(map_ ? map_->value(path) : Location{}, path, std::move(message));
}

void DiagnosticList::at_key(const std::string& path, std::string message) {
  add(map_ ? map_->key(path) : Location{}, path, std::move(message));
}

bool DiagnosticList::has_path(std::string_view path) const {
  return paths_.find(path) != paths_.end();
}

std::vector<Diagnostic> DiagnosticList::take_sorted() {
  std::stable_sort(diagnostics_.begin(), diagnostics_.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     if (a.location.line != b.location.line) {
                       return a.location.line < b.location.line;
                     }
                     return a.location.column < b.location.column;
                   });
  std::vector<Diagnostic> out;
  std::set<std::tuple<int, int, std::string, std::string>> seen;
  for (auto& d : diagnostics_) {
    if (seen.emplace(d.location.line, d.location.column, d.path, d.message).second) {
      out.push_back(std::move(d));
    }
  }
  diagnostics_.clear();
  paths_.clear();
  return out;
}

}  // namespace herald::model::internal
