// Expressions and templates: `when:` / `foreach:` Lua expressions, `{{ expr }}` in strings, and
// the `script` step's Lua chunks, all evaluated in the sandbox of engine/lua over a read-only,
// lazily exposed run context. Used by the runtime for every step of every run.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "engine/common/redactor.h"
#include "engine/common/result.h"

namespace herald::expr {

// Resource limits for one evaluation. Exceeding one is an Error with code resource_exhausted
// (or deadline_exceeded for `wall`) that no Lua `pcall` can catch.
struct Limits {
  uint64_t instructions = 10'000'000;
  size_t memory_bytes = 32u * 1024 * 1024;
  std::chrono::milliseconds wall{0};  // 0: no wall-clock limit
};

// What an expression can see. Every pointer is borrowed for the duration of one call and may be
// null (the name is then nil in Lua). The JSON is exposed through proxies that read it on access,
// never copied into Lua wholesale. Lua sees arrays 1-based.
struct Scope {
  const Json* inputs = nullptr;
  const Json* vars = nullptr;
  const Json* trigger = nullptr;
  const Json* steps = nullptr;    // object: step id -> {output, state, error, attempts}
  const Json* run = nullptr;      // {id, workflow, started_at, ...}
  const Json* env = nullptr;      // only the variables the configuration allows
  const Json* secrets = nullptr;  // only given when rendering step inputs
  // Masks the values of `secrets` in what `print` writes to the log; given with `secrets`.
  const Redactor* redactor = nullptr;
  const Json* error = nullptr;    // in on_error steps: the error that failed the run
  const Json* item = nullptr;     // in a foreach element
  std::optional<int64_t> index;   // in a foreach element: 0-based position
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
};

// Syntax checks without running anything, for `herald validate`. Each returns the Lua error
// message (with the position inside the expression) or nullopt.
std::optional<std::string> check_expression(std::string_view expression);
std::optional<std::string> check_template(std::string_view text);
std::optional<std::string> check_script(std::string_view code);

// True when the string holds at least one `{{ ... }}`.
bool has_template(std::string_view text);

// Evaluates on a sandboxed Lua state owned by the calling thread; compiled chunks are cached by
// source. Not thread-safe: use for_this_thread() on each worker thread.
class Evaluator {
 public:
  Evaluator();
  ~Evaluator();
  Evaluator(const Evaluator&) = delete;
  Evaluator& operator=(const Evaluator&) = delete;

  static Evaluator& for_this_thread();

  // A Lua expression -> its value as JSON (nil -> null, tables -> object or array).
  Result<Json> evaluate(std::string_view expression, const Scope& scope, const Limits& limits = {});

  // Renders templates in every string of `value`, recursively through objects and arrays. A
  // string that is exactly one `{{ expr }}` keeps the expression's type; otherwise parts are
  // converted to text and interpolated.
  Result<Json> render(const Json& value, const Scope& scope, const Limits& limits = {});

  // Runs a Lua chunk; its return value is the result.
  Result<Json> run_script(std::string_view code, const Scope& scope, const Limits& limits = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::expr
