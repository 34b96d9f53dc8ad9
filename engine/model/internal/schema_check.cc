#include "engine/model/internal/schema_check.h"

// GCC 12 with -fsanitize=address reports a false -Wmaybe-uninitialized deep inside the
// std::regex that valijson instantiates for `pattern`; nothing of ours is involved.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include <charconv>
#include <string>
#include <vector>

#include "engine/model/internal/text.h"

namespace herald::model::internal {
namespace {

struct CompiledSchema {
  Json json;
  valijson::Schema schema;
  CompiledSchema() : json(Json::parse(workflow_schema_text())) {
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::NlohmannJsonAdapter adapter(json);
    parser.populateSchema(adapter, schema);
  }
};

const CompiledSchema& compiled() {
  // Parsed once; valijson only reads it afterwards, so sharing it between threads is safe.
  static const CompiledSchema schema;
  return schema;
}

// Follows local "$ref": "#/definitions/x" links (the only kind the schema uses).
const Json* resolve(const Json* schema) {
  const Json& root = compiled().json;
  for (int hops = 0; schema && schema->is_object() && schema->contains("$ref") && hops < 8;
       ++hops) {
    const std::string& ref = (*schema)["$ref"].get_ref<const std::string&>();
    if (ref.rfind("#", 0) != 0) return nullptr;
    Json::json_pointer pointer(ref.substr(1));
    schema = root.contains(pointer) ? &root[pointer] : nullptr;
  }
  return schema;
}

const Json* property_schema(const Json* schema, const std::string& key) {
  if (!schema || !schema->is_object()) return nullptr;
  auto properties = schema->find("properties");
  if (properties != schema->end() && properties->contains(key)) {
    return resolve(&(*properties)[key]);
  }
  auto additional = schema->find("additionalProperties");
  if (additional != schema->end() && additional->is_object()) return resolve(&*additional);
  return nullptr;
}

const Json* items_schema(const Json* schema) {
  if (!schema || !schema->is_object()) return nullptr;
  auto items = schema->find("items");
  return items != schema->end() ? resolve(&*items) : nullptr;
}

// Where a valijson error points: the field path, the value there and its schema.
struct Target {
  std::string path;
  const Json* value = nullptr;
  const Json* schema = nullptr;
};

Target walk(const Json& document, const std::vector<std::string>& context) {
  Target target{"", &document, resolve(&compiled().json)};
  for (size_t i = 1; i < context.size(); ++i) {
    std::string part = context[i];
    if (part.size() >= 2 && part.front() == '[' && part.back() == ']') {
      part = part.substr(1, part.size() - 2);
    }
    const Json* value = target.value;
    if (value && value->is_array()) {
      size_t index = 0;
      std::from_chars(part.data(), part.data() + part.size(), index);
      target.path = index_path(target.path, index);
      target.value = index < value->size() ? &(*value)[index] : nullptr;
      target.schema = items_schema(target.schema);
    } else {
      target.path = child_path(target.path, part);
      target.value =
          value && value->is_object() && value->contains(part) ? &(*value)[part] : nullptr;
      target.schema = property_schema(target.schema, part);
    }
  }
  return target;
}

std::string between_quotes(const std::string& text, const std::string& prefix) {
  // valijson writes names as "...: 'name'." or "... 'name'."; take what the quotes hold.
  std::string rest = text.substr(prefix.size());
  size_t end = rest.rfind('\'');
  return end == std::string::npos ? rest : rest.substr(0, end);
}

bool starts_with(const std::string& text, std::string_view prefix) {
  return text.rfind(prefix, 0) == 0;
}

std::vector<std::string> property_names(const Json* schema) {
  std::vector<std::string> names;
  if (schema && schema->contains("properties")) {
    for (const auto& [name, unused] : (*schema)["properties"].items()) names.push_back(name);
  }
  return names;
}

std::string schema_title(const Json* schema, std::string_view fallback) {
  if (schema && schema->contains("title") && (*schema)["title"].is_string()) {
    return (*schema)["title"].get<std::string>();
  }
  return std::string(fallback);
}

std::string list_with_or(const std::vector<std::string>& names) {
  if (names.size() <= 1) return join(names, "");
  std::vector<std::string> head(names.begin(), names.end() - 1);
  return join(head, ", ") + " or " + names.back();
}

std::string expected_types(const Json* schema) {
  if (!schema || !schema->contains("type")) return "another type";
  const Json& type = (*schema)["type"];
  std::vector<std::string> names;
  if (type.is_string()) names.push_back(describe_type(type.get<std::string>()));
  if (type.is_array()) {
    for (const auto& t : type) {
      if (t.is_string()) names.push_back(describe_type(t.get<std::string>()));
    }
  }
  return list_with_or(names);
}

// "id" for "steps[2].id": what the field is called, for messages.
std::string last_name(const std::string& path) {
  size_t dot = path.find_last_of('.');
  std::string name = dot == std::string::npos ? path : path.substr(dot + 1);
  return name.empty() ? "value" : name;
}

std::string pattern_hint(const std::string& pattern, const std::string& path) {
  if (pattern == "^[a-z0-9][a-z0-9_-]*$") {
    return "expected lower-case letters, digits, '-' and '_', starting with a letter or digit";
  }
  if (pattern == "^[A-Za-z_][A-Za-z0-9_]*$") {
    std::string use =
        path.rfind("steps", 0) == 0 || path.rfind("on_error", 0) == 0 ? "steps.<id>" : "the name";
    return "expected letters, digits and '_', not starting with a digit, so " + use +
           " works in Lua";
  }
  return "expected text matching " + pattern;
}

std::string range_text(const Json* schema) {
  bool has_min = schema && schema->contains("minimum");
  bool has_max = schema && schema->contains("maximum");
  auto number = [&](const char* key) { return format_number((*schema)[key].get<double>()); };
  if (has_min && has_max) return "from " + number("minimum") + " to " + number("maximum");
  if (has_min) return "of at least " + number("minimum");
  if (has_max) return "of at most " + number("maximum");
  return "in range";
}

// Turns one valijson error into our message, or returns false for the summary errors valijson
// adds on every enclosing level ("Failed to validate item #2 in array."), which only repeat the
// real error found deeper down.
void report(const Json& document, const valijson::ValidationResults::Error& error,
            DiagnosticList& diagnostics) {
  const std::string& text = error.description;
  if (starts_with(text, "Failed to validate")) return;
  Target target = walk(document, error.context);
  const Json* schema = target.schema;
  const Json* value = target.value;
  std::string got = value ? describe_value(*value) : "nothing";

  static const std::string kUnknown =
      "Object contains a property that could not be validated using 'properties' or "
      "'additionalProperties' constraints: '";
  static const std::string kRequired = "Missing required property '";

  if (starts_with(text, kUnknown)) {
    std::string name = between_quotes(text, kUnknown);
    std::vector<std::string> allowed = property_names(schema);
    std::string path = child_path(target.path, name);
    if (schema && schema->value("maxProperties", 0) == 1) {
      diagnostics.at_key(path, "unknown " + schema_title(schema, "entry") + " type " + quote(name) +
                                   "; expected " + list_with_or(allowed));
      return;
    }
    std::string message = "unknown field " + quote(name);
    if (!target.path.empty()) message += " in " + schema_title(schema, "this mapping");
    message += "; ";
    if (auto close = closest_name(name, allowed)) message += "did you mean " + quote(*close) + "? ";
    message += "allowed fields: " + join(allowed, ", ");
    diagnostics.at_key(path, message);
  } else if (starts_with(text, kRequired)) {
    std::string name = between_quotes(text, kRequired);
    std::vector<std::string> required;
    if (schema && schema->contains("required")) {
      for (const auto& r : (*schema)["required"]) required.push_back(r.get<std::string>());
    }
    std::string what = target.path.empty() ? "a workflow" : "a " + schema_title(schema, "mapping");
    std::string message = "missing required field " + quote(name);
    if (!required.empty()) message += "; " + what + " needs " + join(required, " and ");
    diagnostics.at_value(target.path, message);
  } else if (starts_with(text, "Value type not permitted")) {
    std::string message;
    if (target.path.empty()) {
      message = value && value->is_null()
                    ? "the file holds no workflow; expected a mapping with at least id and steps"
                    : "expected a workflow: a mapping with at least id and steps; got " + got;
    } else {
      message = "expected " + expected_types(schema) + ", got " + got;
      if (value && (value->is_boolean() || value->is_number()) &&
          expected_types(schema) == "a string") {
        message += "; put it in quotes to make it text";
      }
    }
    diagnostics.at_value(target.path, message);
  } else if (starts_with(text, "Failed to match regex")) {
    std::string pattern = schema ? schema->value("pattern", std::string()) : std::string();
    std::string shown = value && value->is_string() ? quote(value->get<std::string>()) : got;
    diagnostics.at_value(target.path, shown + " is not a valid " + last_name(target.path) + "; " +
                                          pattern_hint(pattern, target.path));
  } else if (starts_with(text, "Failed to match against any enum values")) {
    std::vector<std::string> options;
    if (schema && schema->contains("enum")) {
      for (const auto& option : (*schema)["enum"]) {
        options.push_back(option.is_string() ? option.get<std::string>() : option.dump());
      }
    }
    diagnostics.at_value(target.path, "expected one of " + join(options, ", ") + "; got " + got);
  } else if (starts_with(text, "Expected number")) {
    bool integer = schema && schema->value("type", std::string()) == "integer";
    diagnostics.at_value(target.path,
                         std::string(integer ? "expected an integer " : "expected a number ") +
                             range_text(schema) + ", got " + (value ? value->dump() : "nothing"));
  } else if (starts_with(text, "Array should contain no fewer than")) {
    std::string item = schema_title(items_schema(schema), "item");
    diagnostics.at_value(target.path, "expected at least one " + item + ", got an empty list");
  } else if (starts_with(text, "String should be no fewer than")) {
    diagnostics.at_value(target.path, "must not be empty");
  } else if (starts_with(text, "Object should have no")) {
    std::vector<std::string> keys;
    if (value && value->is_object()) {
      for (const auto& [key, unused] : value->items()) keys.push_back(key);
    }
    std::string title = schema_title(schema, "entry");
    diagnostics.at_value(target.path, "a " + title + " names exactly one " + title + " type (" +
                                          list_with_or(property_names(schema)) + "); got " +
                                          (keys.empty() ? "an empty mapping" : join(keys, ", ")));
  } else {
    diagnostics.at_value(target.path, text);  // a constraint we do not use today
  }
}

}  // namespace

const Json& workflow_schema_json() {
  return compiled().json;
}

void check_schema(const Json& document, DiagnosticList& diagnostics) {
  // The validator caches compiled patterns; one per thread keeps std::regex compilation (most
  // of the cost of checking a small file) out of every call.
  thread_local valijson::Validator validator(valijson::Validator::kStrongTypes);
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter target(document);
  if (validator.validate(compiled().schema, target, &results)) return;
  for (const auto& error : results) report(document, error, diagnostics);
}

}  // namespace herald::model::internal
