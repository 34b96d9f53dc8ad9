// The steps that need nothing outside the engine: set, log, script, wait.
#include "engine/common/duration.h"
#include "engine/common/time.h"
#include "engine/expr/evaluator.h"
#include "engine/steps/builtins.h"

namespace herald::steps {

namespace {

Error input_error(std::string message) {
  return make_error(ErrorCode::invalid_argument, std::move(message));
}

// `set`: the output is its `with:` map, already rendered by the runtime.
class SetStep final : public Step {
 public:
  StepOutcome run(const Json& input, StepContext&) override {
    if (!input.is_object()) return StepOutcome::failed(input_error("with: must be a map of names to values"));
    return StepOutcome::done(input);
  }
};

// `log`: writes `message` to the run's log at `level` (info by default).
class LogStep final : public Step {
 public:
  StepOutcome run(const Json& input, StepContext& context) override {
    auto message = input.find("message");
    if (!input.is_object() || message == input.end()) {
      return StepOutcome::failed(input_error("with.message is required"));
    }
    std::string text = message->is_string() ? message->get<std::string>() : message->dump();
    std::string level = input.value("level", std::string("info"));
    if (level != "debug" && level != "info" && level != "warn" && level != "error") {
      return StepOutcome::failed(
          input_error("with.level '" + level + "' is not one of debug, info, warn, error"));
    }
    if (context.log) context.log(level, text);
    return StepOutcome::done({{"message", text}, {"level", level}});
  }
};

// `script`: runs `code` (Lua) in the sandbox with the run's context; its return value is the
// output. A step `timeout:` bounds it by wall clock as well as the instruction limit.
class ScriptStep final : public Step {
 public:
  StepOutcome run(const Json& input, StepContext& context) override {
    auto code = input.find("code");
    if (!input.is_object() || code == input.end() || !code->is_string()) {
      return StepOutcome::failed(input_error("with.code is required and must be Lua source text"));
    }
    if (context.evaluator == nullptr || context.scope == nullptr) {
      return StepOutcome::failed(make_error(ErrorCode::internal, "script step run without an evaluator"));
    }
    expr::Limits limits;
    if (context.deadline != Clock::time_point::max()) {
      limits.wall = std::max(context.remaining(std::chrono::milliseconds(0)), std::chrono::milliseconds(1));
    }
    auto result = context.evaluator->run_script(code->get_ref<const std::string&>(), *context.scope, limits);
    if (!result.ok()) return StepOutcome::failed(result.error());
    return StepOutcome::done(std::move(result).value());
  }
};

// `wait`: suspends the run for a duration (`for: 30s`) or until a time (`until: ISO-8601`).
// The runtime turns this into a timer row; no thread sleeps.
class WaitStep final : public Step {
 public:
  StepOutcome run(const Json& input, StepContext&) override {
    if (!input.is_object()) return StepOutcome::failed(input_error("with: must give `for` or `until`"));
    auto for_it = input.find("for");
    auto until_it = input.find("until");
    if ((for_it == input.end()) == (until_it == input.end())) {
      return StepOutcome::failed(input_error("with: give exactly one of `for` (a duration) or `until` (a time)"));
    }
    Clock::time_point at;
    if (for_it != input.end()) {
      if (!for_it->is_string()) return StepOutcome::failed(input_error("with.for must be a duration such as 30s"));
      auto duration = parse_duration(for_it->get<std::string>());
      if (!duration.ok()) return StepOutcome::failed(input_error("with.for: " + duration.error().message));
      at = Clock::now() + *duration;
    } else {
      if (!until_it->is_string()) return StepOutcome::failed(input_error("with.until must be an ISO-8601 time"));
      auto time = parse_iso8601(until_it->get<std::string>());
      if (!time.ok()) return StepOutcome::failed(input_error("with.until: " + time.error().message));
      at = *time;
    }
    return StepOutcome::suspend_until(at, {{"waited_until", format_iso8601(at)}});
  }
};

// `emit`: emits an event in the run's workspace (`event: name`, `payload: {...}`); event triggers
// of other workflows may start on it. The event is stored with this step's result, so it is
// emitted exactly once even if the process dies around it.
class EmitStep final : public Step {
 public:
  StepOutcome run(const Json& input, StepContext&) override {
    if (!input.is_object()) return StepOutcome::failed(input_error("with: must give `event`"));
    auto name = input.find("event");
    if (name == input.end() || !name->is_string() || name->get<std::string>().empty()) {
      return StepOutcome::failed(input_error("with.event must be the event's name, e.g. post.published"));
    }
    const std::string& text = name->get_ref<const std::string&>();
    if (text.size() > 200 || text.rfind("run.", 0) == 0) {
      return StepOutcome::failed(input_error(
          "with.event: '" + text + "' is not allowed (at most 200 characters; run.* names are Herald's own)"));
    }
    Json payload = input.value("payload", Json::object());
    StepOutcome outcome = StepOutcome::done({{"event", text}, {"payload", payload}});
    outcome.events.push_back({text, std::move(payload)});
    return outcome;
  }
};

}  // namespace

StepInfo make_emit_step() {
  return {"emit", "Emits an event in the workspace; event triggers may start workflows on it.", {},
          std::make_shared<EmitStep>(), true};
}

StepInfo make_set_step() {
  return {"set", "Sets named values; the output is the evaluated map.", {}, std::make_shared<SetStep>(), true};
}

StepInfo make_log_step() {
  return {"log", "Writes a message to the run's log.", {}, std::make_shared<LogStep>(), true};
}

StepInfo make_script_step() {
  return {"script", "Runs inline Lua in the sandbox; its return value is the output.", {"code"},
          std::make_shared<ScriptStep>(), true};
}

StepInfo make_wait_step() {
  return {"wait", "Waits for a duration or until a time, durably.", {}, std::make_shared<WaitStep>(), false};
}

}  // namespace herald::steps
