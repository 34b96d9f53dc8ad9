#include "engine/steps/step.h"

namespace herald::steps {

std::chrono::milliseconds StepContext::remaining(std::chrono::milliseconds fallback) const {
  if (deadline == Clock::time_point::max()) return fallback;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? left : std::chrono::milliseconds(0);
}

StepOutcome StepOutcome::done(Json output) {
  StepOutcome outcome;
  outcome.kind = Kind::done;
  outcome.output = std::move(output);
  return outcome;
}

StepOutcome StepOutcome::failed(Error error) {
  StepOutcome outcome;
  outcome.kind = Kind::failed;
  outcome.error = std::move(error);
  return outcome;
}

StepOutcome StepOutcome::suspend_until(Clock::time_point at, Json output_when_resumed) {
  StepOutcome outcome;
  outcome.kind = Kind::suspend;
  outcome.resume_at = at;
  outcome.output = std::move(output_when_resumed);
  return outcome;
}

StepOutcome StepOutcome::rerun_at(Clock::time_point at) {
  StepOutcome outcome;
  outcome.kind = Kind::suspend;
  outcome.resume_at = at;
  outcome.rerun = true;
  return outcome;
}

Status StepRegistry::add(StepInfo info) {
  if (steps_.count(info.name) != 0) {
    return make_error(ErrorCode::already_exists, "a step named '" + info.name + "' already exists");
  }
  std::string name = info.name;
  steps_.emplace(std::move(name), std::move(info));
  return {};
}

const StepInfo* StepRegistry::find(std::string_view name) const {
  auto it = steps_.find(name);
  return it == steps_.end() ? nullptr : &it->second;
}

std::vector<std::string> StepRegistry::names() const {
  std::vector<std::string> names;
  for (const auto& [name, info] : steps_) names.push_back(name);
  return names;
}

}  // namespace herald::steps
