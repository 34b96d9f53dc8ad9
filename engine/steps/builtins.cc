#include "engine/steps/builtins.h"

#include <cstdlib>

namespace herald::steps {

StepRegistry StepRegistry::with_builtins() {
  StepRegistry registry;
  for (auto make : {make_set_step, make_log_step, make_script_step, make_wait_step, make_emit_step,
                    make_http_step}) {
    if (!registry.add(make()).ok()) std::abort();  // built-in names are distinct by construction
  }
  return registry;
}

}  // namespace herald::steps
