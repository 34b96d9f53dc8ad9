#include "engine/model/workflow.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/model/internal/build.h"
#include "engine/model/internal/schema_check.h"
#include "engine/model/internal/source_map.h"
#include "engine/model/internal/text.h"
#include "engine/model/internal/yaml_loader.h"

namespace herald::model {
namespace {

// Far above any hand-written workflow; stops a wrong file (a log, a video) from being read
// into memory several times over by the parser stages.
constexpr size_t kMaxFileBytes = 16u * 1024 * 1024;

}  // namespace

std::string Diagnostic::to_string() const {
  std::string out = file;
  // "file: message" when the place is unknown (e.g. the file cannot be read), like compilers do.
  if (location.line > 0) {
    out += ":" + std::to_string(location.line) + ":" + std::to_string(location.column);
  }
  out += ": ";
  if (!path.empty()) out += path + ": ";
  out += message;
  return out;
}

Json Diagnostic::to_json() const {
  return Json{{"file", file},
              {"line", location.line},
              {"column", location.column},
              {"path", path},
              {"message", message}};
}

const StepDef* Workflow::find_step(std::string_view id) const {
  for (const auto* list : {&steps, &on_error}) {
    for (const auto& step : *list) {
      if (step.id == id) return &step;
    }
  }
  return nullptr;
}

std::vector<std::vector<size_t>> Workflow::dependencies() const {
  std::map<std::string_view, size_t> index;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (!steps[i].id.empty()) index.emplace(steps[i].id, i);  // the first of duplicates wins
  }
  std::vector<std::vector<size_t>> result(steps.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    if (!steps[i].has_needs) {
      if (i > 0) result[i].push_back(i - 1);
      continue;
    }
    for (const auto& name : steps[i].needs) {
      auto found = index.find(name);
      if (found != index.end() && found->second != i) result[i].push_back(found->second);
    }
    std::sort(result[i].begin(), result[i].end());
    result[i].erase(std::unique(result[i].begin(), result[i].end()), result[i].end());
  }
  return result;
}

ParseOutcome parse_workflow(std::string_view text, std::string_view file_name,
                            const ParseOptions& options) {
  internal::SourceMap map;
  internal::DiagnosticList diagnostics(std::string(file_name), &map);
  ParseOutcome outcome;
  try {
    if (text.size() > kMaxFileBytes) {
      diagnostics.add(Location{1, 1}, "",
                      "the file is " + std::to_string(text.size()) +
                          " bytes; expected a workflow of at most 16 MiB");
      outcome.diagnostics = diagnostics.take_sorted();
      return outcome;
    }
    // A UTF-8 byte order mark is invisible in editors; skip it rather than report it.
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
    internal::LineIndex lines(text);
    if (auto bad = internal::find_bad_byte(text)) {
      diagnostics.add(lines.location_of(bad->offset), "", bad->message);
      outcome.diagnostics = diagnostics.take_sorted();
      return outcome;
    }
    std::optional<Json> document = internal::load_yaml(text, lines, map, diagnostics);
    if (document) {
      internal::check_schema(*document, diagnostics);
      if (document->is_object()) {
        Workflow workflow = internal::build_workflow(*document, map, diagnostics);
        workflow.file = std::string(file_name);
        internal::check_semantics(workflow, map, options, diagnostics);
        if (diagnostics.empty()) {
          workflow.locations = std::move(map.values);
          outcome.workflow = std::move(workflow);
        }
      }
    }
  } catch (const std::exception& e) {
    // A bug in a checker must not take down `herald validate` or a worker; say so instead.
    diagnostics.add(Location{}, "",
                    std::string("internal error while checking the file: ") + e.what());
    outcome.workflow.reset();
  }
  outcome.diagnostics = diagnostics.take_sorted();
  return outcome;
}

ParseOutcome load_workflow_file(const std::string& path, const ParseOptions& options) {
  auto unreadable = [&](const std::string& reason) {
    ParseOutcome outcome;
    outcome.diagnostics.push_back(Diagnostic{path, Location{}, "", "cannot read file: " + reason});
    return outcome;
  };
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) return unreadable("it is a directory");
  auto size = std::filesystem::file_size(path, error);
  if (!error && size > kMaxFileBytes) {
    return unreadable(std::to_string(size) + " bytes is more than a workflow may hold (16 MiB)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return unreadable(std::strerror(errno));
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) return unreadable(std::strerror(errno));
  return parse_workflow(content.str(), path, options);
}

}  // namespace herald::model
