// The last two stages of parsing: building the typed Workflow from the JSON document, and the
// checks a JSON Schema cannot express. Both run even when the schema check failed, so that one
// pass reports every problem: fields of the wrong type are simply skipped here (the schema check
// has already reported them).
#pragma once

#include "engine/common/result.h"
#include "engine/model/internal/source_map.h"
#include "engine/model/workflow.h"

namespace herald::model::internal {

// Fills the model and reports problems local to one field: bad durations, retry delays out of
// order, input defaults of the wrong type, `required` with a default, input names Lua cannot
// read, schedule triggers without a time, `concurrency` without `foreach`.
Workflow build_workflow(const Json& document, const SourceMap& map, DiagnosticList& diagnostics);

// Checks across fields: unique step ids, `needs` naming unknown steps, cycles, unknown `uses`,
// `steps.X` / `inputs.X` references to names that do not exist, expressions that do not compile.
void check_semantics(const Workflow& workflow, const SourceMap& map, const ParseOptions& options,
                     DiagnosticList& diagnostics);

// The names `root.name` or `root["name"]` refers to in Lua source (`root` is "steps" or
// "inputs"); a textual scan, good enough to catch typos in step and input names.
std::vector<std::string> find_references(std::string_view code, std::string_view root);

// The Lua inside each `{{ ... }}` of a template string.
std::vector<std::string_view> template_parts(std::string_view text);

}  // namespace herald::model::internal
