// The Evaluator: Scope -> sandbox globals, expressions and scripts run on the thread's sandbox,
// templates parsed once (cached by text) and rendered part by part.
#include "engine/expr/evaluator.h"

#include <array>
#include <exception>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "engine/expr/template.h"
#include "engine/lua/sandbox.h"

namespace herald::expr {

namespace {

constexpr size_t kMaxCachedTemplates = 4096;

// The Scope as sandbox globals, built on the stack for each call (no allocation). Names whose
// pointer is null are left out, so they read as nil, or as the library function of that name:
// `error` is the Lua function except in on_error steps, where it is the run's error.
class ScopeGlobals {
 public:
  explicit ScopeGlobals(const Scope& scope) {
    add("inputs", scope.inputs);
    add("vars", scope.vars);
    add("trigger", scope.trigger);
    add("steps", scope.steps);
    add("run", scope.run);
    add("env", scope.env);
    add("secrets", scope.secrets);
    add("error", scope.error);
    add("item", scope.item);
    if (scope.index) globals_[count_++] = lua::Global::of_integer("index", *scope.index);
    const auto since_epoch =
        std::chrono::duration_cast<std::chrono::microseconds>(scope.now.time_since_epoch());
    globals_[count_++] =
        lua::Global::of_number("now", static_cast<double>(since_epoch.count()) / 1e6);
  }

  std::span<const lua::Global> span() const { return {globals_.data(), count_}; }

 private:
  void add(std::string_view name, const Json* value) {
    if (value != nullptr) globals_[count_++] = lua::Global::of_json(name, *value);
  }

  std::array<lua::Global, 11> globals_{};
  size_t count_ = 0;
};

lua::Limits to_lua(const Limits& limits) {
  return {limits.instructions, limits.memory_bytes, limits.wall};
}

// How a value reads inside interpolated text: strings as they are, nil as nothing, everything
// else as compact JSON (numbers keep their JSON spelling: 3, 2.5, 1e+20).
void append_text(std::string& out, const Json& value) {
  if (value.is_string()) {
    out += value.get_ref<const std::string&>();
  } else if (!value.is_null()) {
    out += value.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
}

Error at_path(Error error, const std::string& path) {
  if (!path.empty()) error.message = path + ": " + error.message;
  return error;
}

Error internal_error(const std::exception& e) {
  return make_error(ErrorCode::internal, std::string("expression evaluator: ") + e.what());
}

struct TransparentHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};

}  // namespace

struct Evaluator::Impl {
  lua::Sandbox sandbox;
  std::unordered_map<std::string, Template, TransparentHash, std::equal_to<>> templates;
  // The redactor of the scope of the call in progress, for `print`.
  const Redactor* redactor = nullptr;

  Impl() {
    sandbox.set_print([this](std::string_view text) {
      spdlog::debug("lua print: {}",
                    redactor != nullptr ? redactor->redact_text(text) : std::string(text));
    });
  }

  // Lends the scope's redactor to `print` for one call.
  class LentRedactor {
   public:
    LentRedactor(Impl& impl, const Scope& scope) : impl_(impl) { impl_.redactor = scope.redactor; }
    ~LentRedactor() { impl_.redactor = nullptr; }
    LentRedactor(const LentRedactor&) = delete;
    LentRedactor& operator=(const LentRedactor&) = delete;

   private:
    Impl& impl_;
  };

  Result<const Template*> parsed(std::string_view text);
  Result<Json> render_string(std::string_view text, std::span<const lua::Global> globals,
                             const lua::Limits& limits);
  Result<Json> render_value(const Json& value, std::span<const lua::Global> globals,
                            const lua::Limits& limits, std::string& failed_at);
};

Result<const Template*> Evaluator::Impl::parsed(std::string_view text) {
  if (auto found = templates.find(text); found != templates.end()) return &found->second;
  Result<Template> parsed = parse_template(text);
  if (!parsed.ok()) return std::move(parsed).error();
  if (templates.size() >= kMaxCachedTemplates) templates.clear();
  return &templates.emplace(std::string(text), std::move(parsed).value()).first->second;
}

Result<Json> Evaluator::Impl::render_string(std::string_view text,
                                            std::span<const lua::Global> globals,
                                            const lua::Limits& limits) {
  Result<const Template*> parsed_template = parsed(text);
  if (!parsed_template.ok()) return std::move(parsed_template).error();
  const Template& parts = **parsed_template;
  if (parts.single_expression) {
    return sandbox.run(lua::ChunkKind::expression, parts.parts[0].text, globals, limits);
  }
  std::string out;
  for (const TemplatePart& part : parts.parts) {
    if (part.kind == TemplatePart::Kind::text) {
      out += part.text;
      continue;
    }
    Result<Json> value = sandbox.run(lua::ChunkKind::expression, part.text, globals, limits);
    if (!value.ok()) return std::move(value).error();
    append_text(out, *value);
  }
  return Json(std::move(out));
}

// On failure `failed_at` holds where, e.g. `headers.Authorization` or `items[2]`.
Result<Json> Evaluator::Impl::render_value(const Json& value, std::span<const lua::Global> globals,
                                           const lua::Limits& limits, std::string& failed_at) {
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (!has_template(text)) return value;
    return render_string(text, globals, limits);
  }
  if (value.is_object()) {
    Json out = Json::object();
    for (const auto& [key, item] : value.items()) {
      Result<Json> rendered = render_value(item, globals, limits, failed_at);
      if (!rendered.ok()) {
        failed_at =
            failed_at.empty() || failed_at[0] == '[' ? key + failed_at : key + "." + failed_at;
        return std::move(rendered).error();
      }
      out[key] = std::move(rendered).value();
    }
    return out;
  }
  if (value.is_array()) {
    Json out = Json::array();
    for (size_t i = 0; i < value.size(); ++i) {
      Result<Json> rendered = render_value(value[i], globals, limits, failed_at);
      if (!rendered.ok()) {
        const std::string index = "[" + std::to_string(i) + "]";
        failed_at =
            failed_at.empty() || failed_at[0] == '[' ? index + failed_at : index + "." + failed_at;
        return std::move(rendered).error();
      }
      out.push_back(std::move(rendered).value());
    }
    return out;
  }
  return value;
}

Evaluator::Evaluator() : impl_(std::make_unique<Impl>()) {}
Evaluator::~Evaluator() = default;

Evaluator& Evaluator::for_this_thread() {
  thread_local Evaluator evaluator;
  return evaluator;
}

Result<Json> Evaluator::evaluate(std::string_view expression, const Scope& scope,
                                 const Limits& limits) {
  try {
    const ScopeGlobals globals(scope);
    const Impl::LentRedactor lent(*impl_, scope);
    return impl_->sandbox.run(lua::ChunkKind::expression, expression, globals.span(),
                              to_lua(limits));
  } catch (const std::exception& e) {
    return internal_error(e);
  }
}

Result<Json> Evaluator::render(const Json& value, const Scope& scope, const Limits& limits) {
  try {
    const ScopeGlobals globals(scope);
    const Impl::LentRedactor lent(*impl_, scope);
    std::string failed_at;
    Result<Json> rendered = impl_->render_value(value, globals.span(), to_lua(limits), failed_at);
    if (!rendered.ok()) return at_path(std::move(rendered).error(), failed_at);
    return rendered;
  } catch (const std::exception& e) {
    return internal_error(e);
  }
}

Result<Json> Evaluator::run_script(std::string_view code, const Scope& scope,
                                   const Limits& limits) {
  try {
    const ScopeGlobals globals(scope);
    const Impl::LentRedactor lent(*impl_, scope);
    return impl_->sandbox.run(lua::ChunkKind::script, code, globals.span(), to_lua(limits));
  } catch (const std::exception& e) {
    return internal_error(e);
  }
}

std::optional<std::string> check_expression(std::string_view expression) {
  return lua::check_syntax(lua::ChunkKind::expression, expression);
}

std::optional<std::string> check_template(std::string_view text) {
  Result<Template> parsed = parse_template(text);
  if (!parsed.ok()) return parsed.error().message;
  for (const TemplatePart& part : parsed->parts) {
    if (part.kind != TemplatePart::Kind::expression) continue;
    if (auto message = lua::check_syntax(lua::ChunkKind::expression, part.text)) {
      return "in `{{ }}` at position " + std::to_string(part.position) + ": " + *message;
    }
  }
  return std::nullopt;
}

std::optional<std::string> check_script(std::string_view code) {
  return lua::check_syntax(lua::ChunkKind::script, code);
}

bool has_template(std::string_view text) {
  return text.find("{{") != std::string_view::npos;
}

}  // namespace herald::expr
