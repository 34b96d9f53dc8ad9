// Checks a workflow document against the JSON Schema (workflow_schema_text()) with valijson and
// turns each of valijson's terse errors into a diagnostic that names the field path, its place in
// the source, what is wrong and what is expected.
#pragma once

#include "engine/common/result.h"
#include "engine/model/internal/source_map.h"

namespace herald::model::internal {

void check_schema(const Json& document, DiagnosticList& diagnostics);

// The parsed schema, for walking alongside a document.
const Json& workflow_schema_json();

}  // namespace herald::model::internal
