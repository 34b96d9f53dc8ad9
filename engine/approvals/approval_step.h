// The `approval` step: submits a subject to an approval chain (a policy by name, or inline) and
// waits, holding no thread, until the chain decides. It runs again each time something changes —
// a decision through the API, the CLI or a signed link wakes it; a deadline is a timer — sends
// the notifications the change owes through the `notify` step's channels, and ends with the
// decision, the final text and its diff. See docs/steps/approval.md.
#pragma once

#include <memory>

#include "engine/steps/step.h"

namespace herald::approvals {

// `notify`: the notify step (make_notify_step), which sends to the channels the approval's
// `notify:` names; null sends nothing but log lines.
steps::StepInfo make_approval_step(std::shared_ptr<steps::Step> notify);

}  // namespace herald::approvals
