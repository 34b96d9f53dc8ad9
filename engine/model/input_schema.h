// InputSchema: the JSON Schema (draft 7) a step declares for its `with:` (plugin capabilities do;
// built-in steps check their input in code). Checked against the draft-7 meta-schema and compiled
// once. Used by the workflow validator, so that a typo in `with:` fails `herald validate` and a
// deploy with file:line:column, and by plugin steps, which check the rendered input before each
// call. Thread-safe once built.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/common/result.h"

namespace herald::model {

class InputSchema {
 public:
  // Refuses (invalid_argument, naming the keyword's path in the schema) what is not a draft-7
  // schema, and `$ref`s outside the document (nothing is fetched). A schema that declares
  // `properties` without `additionalProperties` or `patternProperties` at its top level is
  // closed: unknown fields are errors (as a host should refuse settings it does not know).
  static Result<std::shared_ptr<const InputSchema>> compile(const Json& schema);

  // The compiled schema for `schema`, shared and compiled on first use; null when it does not
  // compile.
  static std::shared_ptr<const InputSchema> cached(const Json& schema);

  struct Problem {
    std::string path;  // inside the checked value: "" (itself), "text", "media[0].url"
    std::string message;
    bool at_key = false;  // an unknown field: point at its key rather than its value
  };

  // Every problem with `value`, in a stable order. With `templates`, a string holding `{{ }}`
  // stands for a value of unknown type (it is rendered at run time): nothing that depends on
  // such a value is reported, but unknown and missing fields still are.
  std::vector<Problem> check(const Json& value, bool templates) const;

  // The schema as used (closed as described above).
  const Json& json() const;

  ~InputSchema();
  InputSchema(const InputSchema&) = delete;
  InputSchema& operator=(const InputSchema&) = delete;

 private:
  InputSchema();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::model
