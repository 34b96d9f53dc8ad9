#include <cerrno>
#include <cstdlib>

#include "engine/runtime/engine.h"

namespace herald::runtime {

namespace {

Error input_error(const std::string& name, const std::string& message) {
  return make_error(ErrorCode::invalid_argument, "input '" + name + "': " + message);
}

// Converts text (from the command line or a query string) to the declared type.
Result<Json> convert_text(const model::InputDef& def, const std::string& text) {
  if (def.type == "string") return Json(text);
  if (def.type == "integer") {
    errno = 0;
    char* end = nullptr;
    long long value = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno == ERANGE) {
      return input_error(def.name, "'" + text + "' is not an integer");
    }
    return Json(static_cast<int64_t>(value));
  }
  if (def.type == "number") {
    errno = 0;
    char* end = nullptr;
    double value = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || errno == ERANGE) {
      return input_error(def.name, "'" + text + "' is not a number");
    }
    return Json(value);
  }
  if (def.type == "boolean") {
    if (text == "true" || text == "yes" || text == "1") return Json(true);
    if (text == "false" || text == "no" || text == "0") return Json(false);
    return input_error(def.name, "'" + text + "' is not a boolean (true or false)");
  }
  Json parsed = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return input_error(def.name, "'" + text + "' is not valid JSON");
  if (def.type == "object" && !parsed.is_object()) return input_error(def.name, "expected a JSON object");
  if (def.type == "array" && !parsed.is_array()) return input_error(def.name, "expected a JSON array");
  return parsed;
}

bool has_type(const Json& value, const std::string& type) {
  if (type == "string") return value.is_string();
  if (type == "integer") return value.is_number_integer();
  if (type == "number") return value.is_number();
  if (type == "boolean") return value.is_boolean();
  if (type == "object") return value.is_object();
  if (type == "array") return value.is_array();
  return true;
}

}  // namespace

Result<Json> prepare_inputs(const model::Workflow& workflow, const Json& given) {
  if (!given.is_object()) {
    return make_error(ErrorCode::invalid_argument, "inputs must be a map of names to values");
  }
  Json out = Json::object();
  for (const auto& [name, value] : given.items()) {
    bool declared = false;
    for (const auto& def : workflow.inputs) declared = declared || def.name == name;
    if (!declared) {
      std::string known;
      for (const auto& def : workflow.inputs) known += (known.empty() ? "" : ", ") + def.name;
      return make_error(ErrorCode::invalid_argument,
                        "unknown input '" + name + "'; workflow '" + workflow.id + "' declares " +
                            (known.empty() ? std::string("no inputs") : known));
    }
  }
  for (const auto& def : workflow.inputs) {
    auto it = given.find(def.name);
    if (it == given.end() || it->is_null()) {
      if (def.default_value) {
        out[def.name] = *def.default_value;
      } else if (def.required) {
        return input_error(def.name, "is required (" + def.type + ")");
      }
      continue;
    }
    if (it->is_string() && def.type != "string") {
      auto converted = convert_text(def, it->get<std::string>());
      if (!converted.ok()) return converted.error();
      out[def.name] = std::move(converted).value();
    } else if (!has_type(*it, def.type)) {
      return input_error(def.name, "expected " + def.type + ", got " + it->type_name());
    } else {
      out[def.name] = *it;
    }
  }
  return out;
}

}  // namespace herald::runtime
