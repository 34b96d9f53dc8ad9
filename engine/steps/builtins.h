// The built-in steps. Each folder under engine/steps/ provides one make_*_step().
#pragma once

#include "engine/steps/step.h"

namespace herald::steps {

StepInfo make_set_step();     // engine/steps/basic.cc
StepInfo make_log_step();     // engine/steps/basic.cc
StepInfo make_script_step();  // engine/steps/basic.cc
StepInfo make_wait_step();    // engine/steps/basic.cc
StepInfo make_emit_step();    // engine/steps/basic.cc
StepInfo make_http_step();    // engine/steps/http/http_step.cc

}  // namespace herald::steps
