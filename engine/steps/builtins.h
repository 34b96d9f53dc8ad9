// The built-in steps. Each folder under engine/steps/ provides one make_*_step().
#pragma once

#include "engine/steps/notify/notify_step.h"
#include "engine/steps/step.h"

namespace herald::steps {

StepInfo make_set_step();     // engine/steps/basic.cc
StepInfo make_log_step();     // engine/steps/basic.cc
StepInfo make_script_step();  // engine/steps/basic.cc
StepInfo make_wait_step();    // engine/steps/basic.cc
StepInfo make_emit_step();    // engine/steps/basic.cc
StepInfo make_http_step();    // engine/steps/http/http_step.cc
// make_notify_step(registry, channels, check): engine/steps/notify/notify_step.h

// Every built-in step except `notify`, which must come last: it resolves its channels among the
// steps already registered (the plugins' capabilities included). with_builtins() adds a notify
// with only the `log` channel; the CLI adds the plugins, then a notify with herald.yaml's
// channels.
StepRegistry builtin_steps_without_notify();

}  // namespace herald::steps
