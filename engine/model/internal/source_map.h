// Field paths (`steps[2].with.url`) and where each one stood in the source, plus the list the
// parser's stages add diagnostics to. Shared by the YAML loader, the schema check and the
// semantic checks so that every stage reports a problem at the same path and position.
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "engine/model/workflow.h"

namespace herald::model::internal {

// The path of `key` inside the mapping at `parent`: `parent.key`, or `parent["a b"]` when the key
// is not made of letters, digits, '_' and '-' (so a dot in a key cannot be read as nesting).
std::string child_path(std::string_view parent, std::string_view key);
// The path of item `index` of the list at `parent`: `parent[index]`.
std::string index_path(std::string_view parent, size_t index);
// The path one level up: `steps[2].with` for `steps[2].with.url`; empty for a top-level field.
std::string parent_path(std::string_view path);

struct SourceMap {
  std::map<std::string, Location> values;  // where the value at each path starts
  std::map<std::string, Location> keys;    // where the key naming a mapping entry starts

  // The location of the value at `path`, or of the nearest parent that has one.
  Location value(std::string_view path) const;
  // The location of the key at `path`; the value's location when there is no key (list items).
  Location key(std::string_view path) const;
};

// Collects diagnostics from every stage, then hands them over sorted in file order.
class DiagnosticList {
 public:
  DiagnosticList(std::string file, const SourceMap* map) : file_(std::move(file)), map_(map) {}

  void add(Location location, std::string path, std::string message);
  // At the value of `path` (e.g. a wrong type).
  void at_value(const std::string& path, std::string message);
  // At the key of `path` (e.g. an unknown or duplicate field).
  void at_key(const std::string& path, std::string message);

  bool empty() const { return diagnostics_.empty(); }
  // True when a diagnostic was already given for `path`, so a later stage can stay quiet about
  // the same field instead of repeating the problem in other words.
  bool has_path(std::string_view path) const;
  void set_map(const SourceMap* map) { map_ = map; }

  // Sorted by line then column (stable, so one position keeps the order found); duplicates of
  // the same text at the same place are dropped.
  std::vector<Diagnostic> take_sorted();

 private:
  std::string file_;
  const SourceMap* map_;
  std::vector<Diagnostic> diagnostics_;
  std::set<std::string, std::less<>> paths_;  // for has_path on files with many errors
};

}  // namespace herald::model::internal
