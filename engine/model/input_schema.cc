#include "engine/model/input_schema.h"

// See schema_check.cc: a false -Wmaybe-uninitialized inside valijson's std::regex under ASan.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include <charconv>
#include <map>
#include <mutex>

#include "engine/model/internal/source_map.h"
#include "engine/model/internal/text.h"

namespace herald::model {

namespace {

using internal::child_path;
using internal::closest_name;
using internal::describe_type;
using internal::describe_value;
using internal::index_path;
using internal::join;
using internal::quote;

// The draft-07 meta-schema (json-schema.org/draft-07/schema), without its $id so that nothing
// is resolved by URL.
constexpr const char* kDraft7MetaSchema = R"({
  "definitions": {
    "schemaArray": {"type": "array", "minItems": 1, "items": {"$ref": "#"}},
    "nonNegativeInteger": {"type": "integer", "minimum": 0},
    "nonNegativeIntegerDefault0": {"allOf": [{"$ref": "#/definitions/nonNegativeInteger"}, {"default": 0}]},
    "simpleTypes": {"enum": ["array", "boolean", "integer", "null", "number", "object", "string"]},
    "stringArray": {"type": "array", "items": {"type": "string"}, "uniqueItems": true, "default": []}
  },
  "type": ["object", "boolean"],
  "properties": {
    "$id": {"type": "string"},
    "$schema": {"type": "string"},
    "$ref": {"type": "string"},
    "$comment": {"type": "string"},
    "title": {"type": "string"},
    "description": {"type": "string"},
    "default": true,
    "readOnly": {"type": "boolean", "default": false},
    "writeOnly": {"type": "boolean", "default": false},
    "examples": {"type": "array", "items": true},
    "multipleOf": {"type": "number", "exclusiveMinimum": 0},
    "maximum": {"type": "number"},
    "exclusiveMaximum": {"type": "number"},
    "minimum": {"type": "number"},
    "exclusiveMinimum": {"type": "number"},
    "maxLength": {"$ref": "#/definitions/nonNegativeInteger"},
    "minLength": {"$ref": "#/definitions/nonNegativeIntegerDefault0"},
    "pattern": {"type": "string"},
    "additionalItems": {"$ref": "#"},
    "items": {"anyOf": [{"$ref": "#"}, {"$ref": "#/definitions/schemaArray"}], "default": true},
    "maxItems": {"$ref": "#/definitions/nonNegativeInteger"},
    "minItems": {"$ref": "#/definitions/nonNegativeIntegerDefault0"},
    "uniqueItems": {"type": "boolean", "default": false},
    "contains": {"$ref": "#"},
    "maxProperties": {"$ref": "#/definitions/nonNegativeInteger"},
    "minProperties": {"$ref": "#/definitions/nonNegativeIntegerDefault0"},
    "required": {"$ref": "#/definitions/stringArray"},
    "additionalProperties": {"$ref": "#"},
    "definitions": {"type": "object", "additionalProperties": {"$ref": "#"}, "default": {}},
    "properties": {"type": "object", "additionalProperties": {"$ref": "#"}, "default": {}},
    "patternProperties": {"type": "object", "additionalProperties": {"$ref": "#"}, "default": {}},
    "dependencies": {"type": "object", "additionalProperties": {"anyOf": [{"$ref": "#"}, {"$ref": "#/definitions/stringArray"}]}},
    "propertyNames": {"$ref": "#"},
    "const": true,
    "enum": {"type": "array", "items": true},
    "type": {"anyOf": [{"$ref": "#/definitions/simpleTypes"},
                       {"type": "array", "items": {"$ref": "#/definitions/simpleTypes"}, "minItems": 1, "uniqueItems": true}]},
    "format": {"type": "string"},
    "contentMediaType": {"type": "string"},
    "contentEncoding": {"type": "string"},
    "if": {"$ref": "#"},
    "then": {"$ref": "#"},
    "else": {"$ref": "#"},
    "allOf": {"$ref": "#/definitions/schemaArray"},
    "anyOf": {"$ref": "#/definitions/schemaArray"},
    "oneOf": {"$ref": "#/definitions/schemaArray"},
    "not": {"$ref": "#"}
  },
  "default": true
})";

struct MetaSchema {
  Json json = Json::parse(kDraft7MetaSchema);
  valijson::Schema schema;
  MetaSchema() {
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::NlohmannJsonAdapter adapter(json);
    parser.populateSchema(adapter, schema);
  }
};

const MetaSchema& meta_schema() {
  static const MetaSchema meta;
  return meta;
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

bool is_template(const Json& value) {
  if (!value.is_string()) return false;
  const std::string& text = value.get_ref<const std::string&>();
  size_t open = text.find("{{");
  return open != std::string::npos && text.find("}}", open + 2) != std::string::npos;
}

bool has_template(const Json& value) {
  if (is_template(value)) return true;
  if (value.is_structured()) {
    for (const auto& child : value) {
      if (has_template(child)) return true;
    }
  }
  return false;
}

// Every `$ref` must point inside the document ("#..."): nothing is fetched.
std::optional<std::string> remote_ref(const Json& schema, const std::string& path) {
  if (schema.is_object()) {
    for (const auto& [key, child] : schema.items()) {
      std::string here = path + "/" + key;
      if (key == "$ref" && child.is_string() && !starts_with(child.get<std::string>(), "#")) {
        return here;
      }
      if (auto found = remote_ref(child, here)) return found;
    }
  } else if (schema.is_array()) {
    for (size_t i = 0; i < schema.size(); ++i) {
      if (auto found = remote_ref(schema[i], path + "/" + std::to_string(i))) return found;
    }
  }
  return std::nullopt;
}

// valijson's context entries, cut down to the part names.
std::vector<std::string> context_parts(const std::vector<std::string>& context) {
  std::vector<std::string> parts;
  for (size_t i = 1; i < context.size(); ++i) {
    std::string part = context[i];
    if (part.size() >= 2 && part.front() == '[' && part.back() == ']') {
      part = part.substr(1, part.size() - 2);
    }
    parts.push_back(std::move(part));
  }
  return parts;
}

}  // namespace

struct InputSchema::Impl {
  Json json;
  valijson::Schema schema;

  const Json* resolve(const Json* node) const {
    for (int hops = 0; node && node->is_object() && node->contains("$ref") && hops < 8; ++hops) {
      const Json& ref = (*node)["$ref"];
      if (!ref.is_string() || !starts_with(ref.get<std::string>(), "#")) return nullptr;
      Json::json_pointer pointer(ref.get<std::string>().substr(1));
      node = json.contains(pointer) ? &json[pointer] : nullptr;
    }
    return node;
  }

  // The schema and value an error's context points at, and the field path.
  struct Target {
    std::string path;
    const Json* value = nullptr;
    const Json* schema = nullptr;
  };

  Target walk(const Json& document, const std::vector<std::string>& context) const {
    Target target{"", &document, resolve(&json)};
    for (const std::string& part : context_parts(context)) {
      const Json* value = target.value;
      const Json* schema = target.schema;
      if (value && value->is_array()) {
        size_t index = 0;
        std::from_chars(part.data(), part.data() + part.size(), index);
        target.path = index_path(target.path, index);
        target.value = index < value->size() ? &(*value)[index] : nullptr;
        target.schema = schema && schema->is_object() && schema->contains("items")
                            ? resolve(&(*schema)["items"])
                            : nullptr;
      } else {
        target.path = child_path(target.path, part);
        target.value =
            value && value->is_object() && value->contains(part) ? &(*value)[part] : nullptr;
        const Json* next = nullptr;
        if (schema && schema->is_object()) {
          auto properties = schema->find("properties");
          if (properties != schema->end() && properties->contains(part)) {
            next = resolve(&(*properties)[part]);
          } else if (auto extra = schema->find("additionalProperties");
                     extra != schema->end() && extra->is_object()) {
            next = resolve(&*extra);
          }
        }
        target.schema = next;
      }
    }
    return target;
  }
};

InputSchema::InputSchema() : impl_(std::make_unique<Impl>()) {}
InputSchema::~InputSchema() = default;

const Json& InputSchema::json() const {
  return impl_->json;
}

Result<std::shared_ptr<const InputSchema>> InputSchema::compile(const Json& schema) {
  {
    thread_local valijson::Validator validator(valijson::Validator::kStrongTypes);
    valijson::ValidationResults results;
    valijson::adapters::NlohmannJsonAdapter target(schema);
    if (!validator.validate(meta_schema().schema, target, &results)) {
      std::vector<std::string> problems;
      valijson::ValidationResults::Error error;
      while (results.popError(error)) {
        if (starts_with(error.description, "Failed to validate")) continue;
        std::string where = "/";
        for (const auto& part : context_parts(error.context)) where += part + "/";
        if (where.size() > 1) where.pop_back();
        problems.push_back("at " + where + ": " + error.description);
      }
      if (problems.empty()) problems.push_back("not a JSON Schema (draft 7)");
      return make_error(ErrorCode::invalid_argument,
                        "not a valid JSON Schema (draft 7): " + join(problems, "; "));
    }
  }
  if (auto where = remote_ref(schema, "")) {
    return make_error(ErrorCode::invalid_argument,
                      "not a usable JSON Schema: the $ref at " + *where +
                          " points outside the schema; only local references (\"#/...\") are "
                          "supported");
  }
  std::shared_ptr<InputSchema> compiled(new InputSchema());
  compiled->impl_->json = schema;
  Json& root = compiled->impl_->json;
  if (root.is_object() && root.contains("properties") && !root.contains("additionalProperties") &&
      !root.contains("patternProperties")) {
    root["additionalProperties"] = false;
  }
  try {
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::NlohmannJsonAdapter adapter(compiled->impl_->json);
    parser.populateSchema(adapter, compiled->impl_->schema);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::invalid_argument,
                      std::string("not a usable JSON Schema: ") + e.what());
  }
  return std::shared_ptr<const InputSchema>(std::move(compiled));
}

std::shared_ptr<const InputSchema> InputSchema::cached(const Json& schema) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const InputSchema>, std::less<>> cache;
  std::string key = schema.dump();
  std::lock_guard lock(mu);
  auto found = cache.find(key);
  if (found != cache.end()) return found->second;
  auto compiled = compile(schema);
  std::shared_ptr<const InputSchema> value = compiled.ok() ? *compiled : nullptr;
  cache.emplace(std::move(key), value);
  return value;
}

std::vector<InputSchema::Problem> InputSchema::check(const Json& value, bool templates) const {
  thread_local valijson::Validator validator(valijson::Validator::kStrongTypes);
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter target(value);
  std::vector<Problem> problems;
  if (validator.validate(impl_->schema, target, &results)) return problems;

  static const std::string kUnknown =
      "Object contains a property that could not be validated using 'properties' or "
      "'additionalProperties' constraints: '";
  static const std::string kRequired = "Missing required property '";

  valijson::ValidationResults::Error error;
  while (results.popError(error)) {
    const std::string& text = error.description;
    Impl::Target at = impl_->walk(value, error.context);
    const Json* schema = at.schema;
    const bool unknown = starts_with(text, kUnknown);
    const bool required = starts_with(text, kRequired);
    if (!unknown && !required) {
      // Summaries repeat an error reported deeper down.
      if (starts_with(text, "Failed to validate item #") ||
          starts_with(text, "Failed to validate against schema associated with")) {
        continue;
      }
      if (templates && at.value) {
        const bool type_error = starts_with(text, "Value type not permitted");
        if (type_error ? is_template(*at.value) : has_template(*at.value)) continue;
      }
    }
    std::vector<std::string> allowed;
    if (schema && schema->is_object() && schema->contains("properties")) {
      for (const auto& [name, unused] : (*schema)["properties"].items()) allowed.push_back(name);
    }
    std::string got = at.value ? describe_value(*at.value) : "nothing";
    if (unknown) {
      std::string name = text.substr(kUnknown.size());
      if (!name.empty() && name.back() == '.') name.pop_back();
      if (!name.empty() && name.back() == '\'') name.pop_back();
      std::string message = "unknown field " + quote(name) + "; ";
      if (auto close = closest_name(name, allowed))
        message += "did you mean " + quote(*close) + "? ";
      message +=
          allowed.empty() ? "no fields are allowed here" : "allowed fields: " + join(allowed, ", ");
      problems.push_back({child_path(at.path, name), message, true});
    } else if (required) {
      std::string name = text.substr(kRequired.size());
      if (name.size() >= 2) name.resize(name.size() - 2);  // "'."
      std::vector<std::string> all;
      if (schema && schema->contains("required")) {
        for (const auto& r : (*schema)["required"]) {
          if (r.is_string()) all.push_back(r.get<std::string>());
        }
      }
      std::string message = "missing required field " + quote(name);
      if (all.size() > 1) message += "; required: " + join(all, ", ");
      problems.push_back({at.path, message, false});
    } else if (starts_with(text, "Value type not permitted")) {
      std::vector<std::string> types;
      if (schema && schema->contains("type")) {
        const Json& type = (*schema)["type"];
        if (type.is_string()) types.push_back(describe_type(type.get<std::string>()));
        if (type.is_array()) {
          for (const auto& t : type) {
            if (t.is_string()) types.push_back(describe_type(t.get<std::string>()));
          }
        }
      }
      std::string expected = types.empty() ? "another type" : join(types, " or ");
      problems.push_back({at.path, "expected " + expected + ", got " + got, false});
    } else if (starts_with(text, "Failed to match against any enum values")) {
      std::vector<std::string> options;
      if (schema && schema->contains("enum")) {
        for (const auto& option : (*schema)["enum"]) {
          options.push_back(option.is_string() ? option.get<std::string>() : option.dump());
        }
      }
      problems.push_back(
          {at.path, "expected one of " + join(options, ", ") + "; got " + got, false});
    } else if (starts_with(text, "Failed to match regex")) {
      std::string pattern = schema ? schema->value("pattern", std::string()) : std::string();
      problems.push_back({at.path, got + " does not match the pattern " + pattern, false});
    } else {
      problems.push_back({at.path, text + " (got " + got + ")", false});
    }
  }
  // valijson reports inner errors after the outer ones; keep the order of the document instead.
  std::stable_sort(problems.begin(), problems.end(),
                   [](const Problem& a, const Problem& b) { return a.path < b.path; });
  problems.erase(std::unique(problems.begin(), problems.end(),
                             [](const Problem& a, const Problem& b) {
                               return a.path == b.path && a.message == b.message;
                             }),
                 problems.end());
  return problems;
}

}  // namespace herald::model
