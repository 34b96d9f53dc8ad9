#include <algorithm>
#include <cmath>

#include "engine/common/duration.h"
#include "engine/model/internal/build.h"
#include "engine/model/internal/text.h"

namespace herald::model::internal {
namespace {

using std::chrono::milliseconds;

const Json* field(const Json& object, const char* name) {
  if (!object.is_object()) return nullptr;
  auto found = object.find(name);
  return found == object.end() ? nullptr : &*found;
}

std::string string_field(const Json& object, const char* name) {
  const Json* value = field(object, name);
  return value && value->is_string() ? value->get<std::string>() : std::string();
}

bool is_lua_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// A duration field: parsed with the engine's one duration parser, or reported.
std::optional<milliseconds> duration_field(const Json& object, const char* name,
                                           const std::string& path, DiagnosticList& diagnostics) {
  const Json* value = field(object, name);
  if (!value || !value->is_string()) return std::nullopt;  // absent, or the schema reported it
  std::string child = child_path(path, name);
  auto parsed = parse_duration(value->get<std::string>());
  if (!parsed) {
    diagnostics.at_value(child, parsed.error().message);
    return std::nullopt;
  }
  return *parsed;
}

bool has_type(const Json& value, std::string_view type) {
  if (type == "string") return value.is_string();
  if (type == "number") return value.is_number();
  if (type == "integer") {
    if (value.is_number_integer()) return true;
    if (!value.is_number_float()) return false;
    double number = value.get<double>();
    return std::isfinite(number) && number == std::floor(number);
  }
  if (type == "boolean") return value.is_boolean();
  if (type == "object") return value.is_object();
  if (type == "array") return value.is_array();
  return true;
}

RetryPolicy build_retry(const Json& retry, const std::string& path, DiagnosticList& diagnostics) {
  RetryPolicy policy;
  if (!retry.is_object()) return policy;
  if (const Json* attempts = field(retry, "attempts"); attempts && attempts->is_number_integer()) {
    policy.attempts = static_cast<int>(std::clamp<int64_t>(attempts->get<int64_t>(), 1, 100));
  }
  std::string backoff = string_field(retry, "backoff");
  if (backoff == "fixed") policy.backoff = RetryPolicy::Backoff::fixed;
  if (const Json* jitter = field(retry, "jitter"); jitter && jitter->is_number()) {
    policy.jitter = std::clamp(jitter->get<double>(), 0.0, 1.0);
  }
  auto initial = duration_field(retry, "initial", path, diagnostics);
  auto max = duration_field(retry, "max", path, diagnostics);
  if (initial && max && *initial > *max) {
    diagnostics.at_value(child_path(path, "max"), "retry.max (" + format_duration(*max) +
                                                      ") is shorter than retry.initial (" +
                                                      format_duration(*initial) +
                                                      "); expected max >= initial");
  }
  // When only one bound is written, the other follows it instead of contradicting it with its
  // default: `initial: 1m` alone means delays of at least a minute, not an error about max 30s.
  if (initial) {
    policy.initial = *initial;
    if (!max) policy.max = std::max(policy.max, *initial);
  }
  if (max) {
    policy.max = *max;
    if (!initial) policy.initial = std::min(policy.initial, *max);
  }
  return policy;
}

StepDef build_step(const Json& json, const std::string& path, bool on_error, size_t index,
                   const SourceMap& map, DiagnosticList& diagnostics) {
  StepDef step;
  step.location = map.value(path);
  if (!json.is_object()) return step;
  step.id = string_field(json, "id");
  if (on_error && !field(json, "id")) step.id = "on_error_" + std::to_string(index);
  step.uses = string_field(json, "uses");
  if (const Json* with = field(json, "with"); with && with->is_object()) step.with = *with;
  step.when = string_field(json, "when");
  step.foreach = string_field(json, "foreach");
  const Json* concurrency = field(json, "concurrency");
  if (concurrency && concurrency->is_number_integer()) {
    step.concurrency = static_cast<int>(std::clamp<int64_t>(concurrency->get<int64_t>(), 1, 1000));
  }
  if (concurrency && !field(json, "foreach") &&
      !diagnostics.has_path(child_path(path, "concurrency"))) {
    diagnostics.at_value(child_path(path, "concurrency"),
                         "concurrency only applies to a step with foreach; add foreach or remove "
                         "concurrency");
  }
  // on_error steps always run in file order; the schema rejects `needs` there.
  if (const Json* needs = field(json, "needs"); needs && !on_error) {
    step.has_needs = true;
    if (needs->is_string()) step.needs.push_back(needs->get<std::string>());
    if (needs->is_array()) {
      for (const auto& name : *needs) {
        if (name.is_string()) step.needs.push_back(name.get<std::string>());
      }
    }
  }
  if (const Json* retry = field(json, "retry")) {
    step.retry = build_retry(*retry, child_path(path, "retry"), diagnostics);
  }
  step.timeout = duration_field(json, "timeout", path, diagnostics);
  if (step.timeout && step.timeout->count() == 0) {
    diagnostics.at_value(child_path(path, "timeout"),
                         "a timeout of 0 would fail every attempt; expected a positive duration "
                         "such as 30s");
    step.timeout.reset();
  }
  return step;
}

std::vector<StepDef> build_steps(const Json& document, const char* name, const SourceMap& map,
                                 DiagnosticList& diagnostics) {
  std::vector<StepDef> steps;
  const Json* list = field(document, name);
  if (!list || !list->is_array()) return steps;
  bool on_error = std::string_view(name) == "on_error";
  for (size_t i = 0; i < list->size(); ++i) {
    steps.push_back(build_step((*list)[i], index_path(name, i), on_error, i, map, diagnostics));
  }
  return steps;
}

std::vector<TriggerDef> build_triggers(const Json& document, const SourceMap& map,
                                       DiagnosticList& diagnostics) {
  std::vector<TriggerDef> triggers;
  const Json* list = field(document, "triggers");
  if (!list || !list->is_array()) return triggers;
  for (size_t i = 0; i < list->size(); ++i) {
    const Json& item = (*list)[i];
    std::string path = index_path("triggers", i);
    if (!item.is_object() || item.size() != 1) continue;  // the schema reported it
    TriggerDef trigger;
    trigger.type = item.begin().key();
    trigger.config = item.begin().value().is_object() ? item.begin().value() : Json::object();
    trigger.location = map.value(path);
    std::string config_path = child_path(path, trigger.type);
    if (trigger.type == "schedule" && item.begin().value().is_object()) {
      bool cron = trigger.config.contains("cron");
      bool at = trigger.config.contains("at");
      if (!cron && !at) {
        diagnostics.at_value(config_path,
                             "a schedule needs a time; expected cron (e.g. \"0 9 * * MON-FRI\") "
                             "or at (an ISO-8601 time)");
      } else if (cron && at) {
        diagnostics.at_value(child_path(config_path, "at"),
                             "a schedule has either cron or at, not both");
      }
    }
    if (trigger.type == "schedule") {
      duration_field(trigger.config, "window", config_path, diagnostics);
    }
    if (trigger.type == "poll") duration_field(trigger.config, "every", config_path, diagnostics);
    triggers.push_back(std::move(trigger));
  }
  return triggers;
}

std::vector<InputDef> build_inputs(const Json& document, const SourceMap& map,
                                   DiagnosticList& diagnostics) {
  std::vector<InputDef> inputs;
  const Json* object = field(document, "inputs");
  if (!object || !object->is_object()) return inputs;
  for (const auto& [name, spec] : object->items()) {
    std::string path = child_path("inputs", name);
    if (!is_lua_name(name)) {
      diagnostics.at_key(path, quote(name) +
                                   " is not a valid input name; expected letters, digits and "
                                   "'_', not starting with a digit, so inputs.<name> works in Lua");
    }
    InputDef input;
    input.name = name;
    if (!spec.is_object()) {
      inputs.push_back(std::move(input));
      continue;
    }
    static const std::vector<std::string> kTypes = {"string",  "number", "integer",
                                                    "boolean", "object", "array"};
    std::string type = string_field(spec, "type");
    bool type_known = std::find(kTypes.begin(), kTypes.end(), type) != kTypes.end();
    if (type_known) input.type = type;
    input.description = string_field(spec, "description");
    if (const Json* required = field(spec, "required"); required && required->is_boolean()) {
      input.required = required->get<bool>();
    }
    if (const Json* value = field(spec, "default")) {
      input.default_value = *value;
      if ((type_known || type.empty()) && !has_type(*value, input.type)) {
        diagnostics.at_value(child_path(path, "default"),
                             "the default is " + describe_value(*value) +
                                 " but the input's type is " + input.type + "; expected " +
                                 describe_type(input.type));
      }
      if (input.required) {
        diagnostics.at_value(child_path(path, "required"),
                             "an input with a default is never missing; expected either "
                             "required: true or a default, not both");
      }
    }
    inputs.push_back(std::move(input));
  }
  // nlohmann sorts keys; the file's order is what a person expects to see.
  std::stable_sort(inputs.begin(), inputs.end(), [&](const InputDef& a, const InputDef& b) {
    Location la = map.key(child_path("inputs", a.name));
    Location lb = map.key(child_path("inputs", b.name));
    return std::pair(la.line, la.column) < std::pair(lb.line, lb.column);
  });
  return inputs;
}

}  // namespace

Workflow build_workflow(const Json& document, const SourceMap& map, DiagnosticList& diagnostics) {
  Workflow workflow;
  if (!document.is_object()) return workflow;
  workflow.id = string_field(document, "id");
  workflow.name = string_field(document, "name");
  workflow.description = string_field(document, "description");
  workflow.triggers = build_triggers(document, map, diagnostics);
  workflow.inputs = build_inputs(document, map, diagnostics);
  if (const Json* vars = field(document, "vars"); vars && vars->is_object()) workflow.vars = *vars;
  workflow.steps = build_steps(document, "steps", map, diagnostics);
  workflow.on_error = build_steps(document, "on_error", map, diagnostics);
  return workflow;
}

}  // namespace herald::model::internal
