// Reads YAML (and so JSON, which is YAML) into JSON while remembering where every field path
// stood in the source. yaml-cpp stays behind this header so the public model header does not
// pull it in.
#pragma once

#include <optional>
#include <string_view>

#include "engine/common/result.h"
#include "engine/model/internal/source_map.h"
#include "engine/model/internal/text.h"

namespace herald::model::internal {

// Converts `text` (already checked to be UTF-8) to JSON. Scalars follow the YAML 1.2 core
// schema (`yes`/`on` stay strings). Problems (syntax errors, duplicate keys, unsupported tags,
// too deep or too large documents, an empty file, several documents) go to `diagnostics`;
// returns nullopt when nothing usable could be read.
std::optional<Json> load_yaml(std::string_view text, const LineIndex& lines, SourceMap& map,
                              DiagnosticList& diagnostics);

}  // namespace herald::model::internal
