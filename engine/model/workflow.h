// The typed model of a workflow file, and the parser and validator that build it. Used by the
// CLI (`herald validate`, `herald run`), the runtime (which re-reads the stored source of the
// version a run started on) and later the REST API's deploy route.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/common/result.h"

namespace herald::model {

// 1-based line and column in the source file; 0 when unknown.
struct Location {
  int line = 0;
  int column = 0;
};

// One problem found in a workflow file. to_string() gives
// "file:line:column: field.path: what is wrong, what is expected" ("file: message" when the
// place is unknown, e.g. a file that cannot be read).
struct Diagnostic {
  std::string file;
  Location location;
  std::string path;  // e.g. "steps[2].retry.attempts"; empty for the document itself
  std::string message;
  std::string to_string() const;
  Json to_json() const;
};

struct RetryPolicy {
  int attempts = 1;  // total attempts including the first; 1..100
  enum class Backoff { fixed, exponential } backoff = Backoff::exponential;
  std::chrono::milliseconds initial{1000};
  std::chrono::milliseconds max{30000};
  double jitter = 0.2;  // +/- fraction applied to each delay; 0..1
};

struct InputDef {
  std::string name;
  // string | number | integer | boolean | object | array
  std::string type = "string";
  std::optional<Json> default_value;
  bool required = false;
  std::string description;
};

struct TriggerDef {
  std::string type;  // schedule | webhook | event | poll | manual
  Json config;       // the trigger's own fields
  Location location;
};

struct StepDef {
  std::string id;
  std::string uses;    // a built-in step (`http`, `set`, ...) or later a plugin capability
  Json with = Json::object();  // raw; templates are rendered per run
  std::string when;     // a Lua expression; empty when absent
  std::string foreach;  // a Lua expression giving a list; empty when absent
  int concurrency = 1;  // with foreach: how many elements run at once
  // Steps this one waits for. Without `needs:` a step waits for the one before it in the file;
  // `needs: []` waits for nothing.
  std::vector<std::string> needs;
  bool has_needs = false;
  RetryPolicy retry;
  std::optional<std::chrono::milliseconds> timeout;
  Location location;
};

struct Workflow {
  std::string id;
  std::string name;
  std::string description;
  std::vector<TriggerDef> triggers;
  std::vector<InputDef> inputs;
  Json vars = Json::object();  // raw; templates are rendered when a run starts
  std::vector<StepDef> steps;
  std::vector<StepDef> on_error;  // run, in order, when the run fails
  std::string file;               // the name errors are reported under

  // Where each field path stood in the source, for errors found after parsing
  // (e.g. a Lua error at run time in "steps[1].with.url").
  std::map<std::string, Location> locations;

  const StepDef* find_step(std::string_view id) const;
  // For every step (by index), the indices of the steps it waits for.
  std::vector<std::vector<size_t>> dependencies() const;
};

// What kind of Lua source an expression field holds, for syntax checks.
enum class ExpressionKind {
  expression,  // `when:`, `foreach:`: a single Lua expression
  template_text,  // a string that may hold `{{ expr }}` parts
  script,      // `script` step's `code`: a Lua chunk
};

struct ParseOptions {
  // Whether `uses:` names a step Herald knows. Unset: every name is accepted.
  std::function<bool(std::string_view uses)> is_known_step;
  // Checks one expression, template or script; returns the Lua error text, or nullopt when it
  // compiles. Unset: expressions are not checked.
  std::function<std::optional<std::string>(std::string_view source, ExpressionKind kind)>
      check_expression;
  // Fields of a step's `with:` that are not templates (e.g. `script`'s `code`), by `uses`.
  std::function<std::vector<std::string>(std::string_view uses)> raw_fields;
  // The step types Herald knows, named in the message about an unknown `uses` (with a "did you
  // mean"). When is_known_step is unset and this is not empty, it also decides what is known.
  std::vector<std::string> known_steps;
  // The JSON Schema a step type declares for its `with:` (plugin capabilities do), or null.
  // `with:` is checked against it (see InputSchema: templates stand for any value); a schema
  // that does not compile is not used. Unset: no step declares one.
  std::function<const Json*(std::string_view uses)> input_schema;
};

struct ParseOutcome {
  std::optional<Workflow> workflow;       // set when there are no diagnostics
  std::vector<Diagnostic> diagnostics;    // every problem found, in file order
  bool ok() const { return workflow.has_value() && diagnostics.empty(); }
};

// Parses YAML or JSON text (JSON is YAML), validates it against the schema, then checks the
// semantics: unique step ids, unknown `needs`/`steps.X`/`inputs.X` references, cycles, unknown
// `uses`, bad durations, retry policies out of range, expressions that do not compile.
ParseOutcome parse_workflow(std::string_view text, std::string_view file_name,
                            const ParseOptions& options);

// Reads the file and parses it; a file that cannot be read is one diagnostic.
ParseOutcome load_workflow_file(const std::string& path, const ParseOptions& options);

// The JSON Schema (draft 7) of the workflow format, as `herald schema` prints it.
const std::string& workflow_schema_text();

}  // namespace herald::model
