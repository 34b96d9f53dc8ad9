#include <algorithm>
#include <map>
#include <set>

#include "engine/model/input_schema.h"
#include "engine/model/internal/build.h"
#include "engine/model/internal/text.h"

namespace herald::model::internal {
namespace {

// Long lists of names help nobody; a workflow with hundreds of steps gets the first few.
constexpr size_t kMaxListedNames = 20;

std::string name_list(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  if (names.size() > kMaxListedNames) {
    size_t more = names.size() - kMaxListedNames;
    names.resize(kMaxListedNames);
    names.push_back("... (" + std::to_string(more) + " more)");
  }
  return join(names, ", ");
}

std::string join_and(const std::vector<std::string>& names) {
  if (names.size() <= 1) return join(names, "");
  return join(std::vector<std::string>(names.begin(), names.end() - 1), ", ") + " and " +
         names.back();
}

bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9');
}

struct StepRef {
  const StepDef* step;
  std::string path;  // "steps[2]" or "on_error[0]"
};

std::vector<StepRef> all_steps(const Workflow& workflow) {
  std::vector<StepRef> refs;
  for (size_t i = 0; i < workflow.steps.size(); ++i) {
    refs.push_back({&workflow.steps[i], index_path("steps", i)});
  }
  for (size_t i = 0; i < workflow.on_error.size(); ++i) {
    refs.push_back({&workflow.on_error[i], index_path("on_error", i)});
  }
  return refs;
}

class SemanticChecker {
 public:
  SemanticChecker(const Workflow& workflow, const SourceMap& map, const ParseOptions& options,
                  DiagnosticList& diagnostics)
      : workflow_(workflow), map_(map), options_(options), diagnostics_(diagnostics) {
    for (const auto& input : workflow.inputs) input_names_.insert(input.name);
    for (const auto& step : workflow.steps) {
      if (!step.id.empty()) main_ids_.insert(step.id);
    }
    for (const auto& ref : all_steps(workflow)) {
      if (!ref.step->id.empty()) all_ids_.insert(ref.step->id);
    }
  }

  void run() {
    check_unique_ids();
    check_needs();
    check_cycles();
    for (const auto& ref : all_steps(workflow_)) {
      check_uses(ref);
      check_step_sources(ref);
    }
    check_json_sources(workflow_.vars, "vars", {});
  }

 private:
  void check_unique_ids() {
    std::map<std::string, std::string> first_path;
    for (const auto& ref : all_steps(workflow_)) {
      const std::string& id = ref.step->id;
      if (id.empty()) continue;
      auto [found, inserted] = first_path.emplace(id, ref.path);
      if (inserted) continue;
      // A generated on_error id has no `id:` field to point at; point at the step itself.
      std::string id_path = child_path(ref.path, "id");
      std::string where = map_.values.count(id_path) ? id_path : ref.path;
      Location first = map_.value(child_path(found->second, "id"));
      diagnostics_.at_value(where, "duplicate step id " + quote(id) + " (already used by " +
                                       found->second + " at line " + std::to_string(first.line) +
                                       "); expected each step id once");
    }
  }

  void check_needs() {
    for (size_t i = 0; i < workflow_.steps.size(); ++i) {
      const StepDef& step = workflow_.steps[i];
      if (!step.has_needs) continue;
      std::string needs_path = child_path(index_path("steps", i), "needs");
      // `needs: a` (one name) has no list to index into.
      bool single = step.needs.size() == 1 && !has_list_at(needs_path);
      for (size_t j = 0; j < step.needs.size(); ++j) {
        const std::string& name = step.needs[j];
        std::string path = single ? needs_path : index_path(needs_path, j);
        if (name == step.id) {
          diagnostics_.at_value(path,
                                "a step cannot need itself; expected the ids of steps "
                                "that must finish first");
        } else if (!main_ids_.count(name)) {
          if (all_ids_.count(name)) {
            diagnostics_.at_value(path, quote(name) +
                                            " is an on_error step; needs can only name steps "
                                            "under steps");
          } else {
            diagnostics_.at_value(path, "unknown step " + quote(name) + " in needs; " +
                                            known_steps_text(name, main_ids_));
          }
        }
      }
    }
  }

  std::string known_steps_text(const std::string& name, const std::set<std::string>& ids) {
    std::vector<std::string> names(ids.begin(), ids.end());
    std::string text;
    if (auto close = closest_name(name, names)) text = "did you mean " + quote(*close) + "? ";
    return text + "known steps: " + (names.empty() ? "none" : name_list(names));
  }

  bool has_list_at(const std::string& path) { return map_.values.count(index_path(path, 0)) > 0; }

  // Every cycle through `needs` (and the implicit "wait for the step before" edges), each once.
  void check_cycles() {
    auto dependencies = workflow_.dependencies();
    size_t count = dependencies.size();
    // Kahn's algorithm leaves exactly the steps that are on a cycle or wait for one.
    std::vector<std::vector<size_t>> dependents(count);
    std::vector<size_t> waiting(count, 0);
    for (size_t i = 0; i < count; ++i) {
      waiting[i] = dependencies[i].size();
      for (size_t d : dependencies[i]) dependents[d].push_back(i);
    }
    std::vector<size_t> ready;
    for (size_t i = 0; i < count; ++i) {
      if (waiting[i] == 0) ready.push_back(i);
    }
    std::vector<bool> done(count, false);
    while (!ready.empty()) {
      size_t i = ready.back();
      ready.pop_back();
      done[i] = true;
      for (size_t next : dependents[i]) {
        if (--waiting[next] == 0) ready.push_back(next);
      }
    }
    // Walk from each left-over step along left-over dependencies until a step repeats; that
    // loop is a cycle. Steps already reported stop the walk, so each cycle is named once.
    std::vector<bool> reported(count, false);
    for (size_t start = 0; start < count; ++start) {
      if (done[start] || reported[start]) continue;
      std::vector<size_t> walk;
      std::map<size_t, size_t> position;
      size_t current = start;
      while (!reported[current] && !position.count(current)) {
        position[current] = walk.size();
        walk.push_back(current);
        size_t next = current;
        for (size_t d : dependencies[current]) {
          if (!done[d]) {
            next = d;
            break;
          }
        }
        current = next;
      }
      if (reported[current]) {
        for (size_t i : walk) reported[i] = true;
        continue;
      }
      std::vector<size_t> cycle(walk.begin() + static_cast<long>(position[current]), walk.end());
      for (size_t i : walk) reported[i] = true;
      report_cycle(cycle);
    }
  }

  void report_cycle(std::vector<size_t> cycle) {
    // Start at the step that comes first in the file; its edge is always a written `needs`.
    auto first = std::min_element(cycle.begin(), cycle.end());
    std::rotate(cycle.begin(), first, cycle.end());
    std::vector<std::string> names;
    std::vector<std::string> implicit;
    for (size_t i : cycle) {
      names.push_back(workflow_.steps[i].id);
      if (!workflow_.steps[i].has_needs) implicit.push_back(workflow_.steps[i].id);
    }
    names.push_back(workflow_.steps[cycle.front()].id);
    std::string message = "needs form a cycle: " + join(names, " -> ");
    if (!implicit.empty()) {
      message += " (" + join_and(implicit) + (implicit.size() == 1 ? " has" : " have") +
                 " no needs:, so each waits for the step before it)";
    }
    message += "; expected steps that can run one after another, remove one of these links";
    std::string path = index_path("steps", cycle.front());
    diagnostics_.at_value(
        workflow_.steps[cycle.front()].has_needs ? child_path(path, "needs") : path, message);
  }

  void check_uses(const StepRef& ref) {
    const std::string& uses = ref.step->uses;
    if (uses.empty()) return;  // missing or not a string: the schema reported it
    const auto& known = options_.known_steps;
    bool ok = true;
    if (options_.is_known_step) {
      ok = options_.is_known_step(uses);
    } else if (!known.empty()) {
      ok = std::find(known.begin(), known.end(), uses) != known.end();
    }
    if (ok) return;
    std::string message = "unknown step type " + quote(uses);
    if (!known.empty()) {
      message += "; ";
      if (auto close = closest_name(uses, known)) message += "did you mean " + quote(*close) + "? ";
      message += "known step types: " + name_list(known);
    } else {
      message += "; expected a built-in step or an installed plugin capability";
    }
    diagnostics_.at_value(child_path(ref.path, "uses"), message);
  }

  void check_step_sources(const StepRef& ref) {
    const StepDef& step = *ref.step;
    if (!step.when.empty()) {
      check_source(step.when, child_path(ref.path, "when"), ExpressionKind::expression);
    }
    if (!step.foreach.empty()) {
      check_source(step.foreach, child_path(ref.path, "foreach"), ExpressionKind::expression);
    }
    std::vector<std::string> raw;
    if (options_.raw_fields) {
      raw = options_.raw_fields(step.uses);
    } else if (step.uses == "script") {
      raw = {"code"};  // the contract: `script` takes Lua in `code`, not a template
    }
    check_json_sources(step.with, child_path(ref.path, "with"), raw, step.uses);
    check_input_schema(ref);
  }

  // `with:` against the step type's input schema, when it declares one.
  void check_input_schema(const StepRef& ref) {
    const StepDef& step = *ref.step;
    if (!options_.input_schema || step.uses.empty()) return;
    const Json* schema_json = options_.input_schema(step.uses);
    if (schema_json == nullptr || schema_json->is_null()) return;
    auto schema = InputSchema::cached(*schema_json);
    if (!schema) return;
    const std::string with_path = child_path(ref.path, "with");
    for (const auto& problem : schema->check(step.with, /*templates=*/true)) {
      std::string path = problem.path.empty()          ? with_path
                         : problem.path.front() == '[' ? with_path + problem.path
                                                       : with_path + "." + problem.path;
      std::string message = problem.message + " (input of " + quote(step.uses) + ")";
      if (problem.at_key) {
        diagnostics_.at_key(path, message);
      } else {
        diagnostics_.at_value(path, message);
      }
    }
  }

  // Every string in a `with:` or `vars:` value is a template, except the top-level raw fields.
  void check_json_sources(const Json& value, const std::string& path,
                          const std::vector<std::string>& raw, const std::string& uses = "") {
    if (!value.is_object()) return;
    for (const auto& [key, child] : value.items()) {
      std::string child_path_text = child_path(path, key);
      if (std::find(raw.begin(), raw.end(), key) != raw.end()) {
        if (uses == "script" && key == "code" && child.is_string()) {
          check_source(child.get_ref<const std::string&>(), child_path_text,
                       ExpressionKind::script);
        }
        continue;
      }
      check_templates(child, child_path_text);
    }
  }

  void check_templates(const Json& value, const std::string& path) {
    if (value.is_string()) {
      check_source(value.get_ref<const std::string&>(), path, ExpressionKind::template_text);
    } else if (value.is_object()) {
      for (const auto& [key, child] : value.items()) check_templates(child, child_path(path, key));
    } else if (value.is_array()) {
      for (size_t i = 0; i < value.size(); ++i) check_templates(value[i], index_path(path, i));
    }
  }

  void check_source(const std::string& source, const std::string& path, ExpressionKind kind) {
    check_references(source, path, kind);
    if (!options_.check_expression) return;
    std::optional<std::string> error;
    try {
      error = options_.check_expression(source, kind);
    } catch (const std::exception& e) {
      error = std::string("the check failed: ") + e.what();
    }
    if (!error) return;
    const char* what = kind == ExpressionKind::expression      ? "invalid Lua expression: "
                       : kind == ExpressionKind::template_text ? "invalid template: "
                                                               : "invalid Lua script: ";
    diagnostics_.at_value(path, what + *error);
  }

  void check_references(const std::string& source, const std::string& path, ExpressionKind kind) {
    std::vector<std::string_view> parts;
    if (kind == ExpressionKind::template_text) {
      parts = template_parts(source);
    } else {
      parts.push_back(source);
    }
    std::set<std::string> reported;
    for (std::string_view part : parts) {
      for (const auto& name : find_references(part, "steps")) {
        if (all_ids_.count(name) || !reported.insert("steps." + name).second) continue;
        diagnostics_.at_value(path, "steps." + name + " refers to an unknown step " + quote(name) +
                                        "; " + known_steps_text(name, all_ids_));
      }
      for (const auto& name : find_references(part, "inputs")) {
        if (input_names_.count(name) || !reported.insert("inputs." + name).second) continue;
        std::vector<std::string> inputs(input_names_.begin(), input_names_.end());
        std::string message = "inputs." + name + " refers to an undeclared input " + quote(name);
        if (inputs.empty()) {
          message += "; the workflow declares no inputs (add it under inputs:)";
        } else {
          if (auto close = closest_name(name, inputs)) {
            message += "; did you mean " + quote(*close) + "? declared";
          } else {
            message += "; declared";
          }
          message += " inputs: " + name_list(inputs);
        }
        diagnostics_.at_value(path, message);
      }
    }
  }

 private:
  const Workflow& workflow_;
  const SourceMap& map_;
  const ParseOptions& options_;
  DiagnosticList& diagnostics_;
  std::set<std::string> input_names_;
  std::set<std::string> main_ids_;
  std::set<std::string> all_ids_;
};

}  // namespace

void check_semantics(const Workflow& workflow, const SourceMap& map, const ParseOptions& options,
                     DiagnosticList& diagnostics) {
  SemanticChecker(workflow, map, options, diagnostics).run();
}

std::vector<std::string> find_references(std::string_view code, std::string_view root) {
  std::vector<std::string> names;
  for (size_t at = code.find(root); at != std::string_view::npos; at = code.find(root, at + 1)) {
    // Only the global `root`, not `mysteps.x` or `x.steps.y`.
    if (at > 0 && (is_name_char(code[at - 1]) || code[at - 1] == '.')) continue;
    size_t i = at + root.size();
    if (i >= code.size()) break;
    if (code[i] == '.') {
      size_t start = ++i;
      if (i >= code.size() || !is_name_start(code[i])) continue;
      while (i < code.size() && is_name_char(code[i])) ++i;
      names.emplace_back(code.substr(start, i - start));
    } else if (code[i] == '[') {
      ++i;
      while (i < code.size() && code[i] == ' ') ++i;
      if (i >= code.size() || (code[i] != '"' && code[i] != '\'')) continue;
      char quote_char = code[i++];
      size_t end = code.find(quote_char, i);
      if (end == std::string_view::npos) continue;
      names.emplace_back(code.substr(i, end - i));
    }
  }
  return names;
}

std::vector<std::string_view> template_parts(std::string_view text) {
  std::vector<std::string_view> parts;
  size_t at = 0;
  while ((at = text.find("{{", at)) != std::string_view::npos) {
    size_t end = text.find("}}", at + 2);
    if (end == std::string_view::npos) break;
    parts.push_back(text.substr(at + 2, end - at - 2));
    at = end + 2;
  }
  return parts;
}

}  // namespace herald::model::internal
