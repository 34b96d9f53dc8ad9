#include "engine/steps/builtins.h"

#include <cstdlib>

namespace herald::steps {

StepRegistry builtin_steps_without_notify() {
  StepRegistry registry;
  for (auto make : {make_set_step, make_log_step, make_script_step, make_wait_step, make_emit_step,
                    make_http_step}) {
    if (!registry.add(make()).ok()) std::abort();  // built-in names are distinct by construction
  }
  return registry;
}

StepRegistry StepRegistry::with_builtins() {
  StepRegistry registry = builtin_steps_without_notify();
  // With no configured channels there is nothing to resolve, so this cannot fail.
  auto notify = make_notify_step(registry, Json::object());
  if (!notify.ok() || !registry.add(std::move(notify).value()).ok()) std::abort();
  return registry;
}

}  // namespace herald::steps
