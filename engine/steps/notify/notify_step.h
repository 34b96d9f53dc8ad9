// `notify`: sends one message to one or more channels — the run's log, a channel configured under
// `notify.channels` in herald.yaml (a step such as slack.post or webhook.send with its settings),
// or a channel given inline in the step. See docs/steps/notify.md.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "engine/common/result.h"
#include "engine/steps/step.h"

namespace herald::steps {

// Checks the input a configured channel would send (its `with:` plus a sample message) against
// the input schema its step declares: the problems as one line, or nullopt when it is accepted.
// The CLI passes one built on model::InputSchema, which engine/steps does not link.
using ChannelInputCheck =
    std::function<std::optional<std::string>(const StepInfo& step, const Json& input)>;

// The `notify` step. `channels` is herald.yaml's `notify.channels`, {name: {uses, with?}}; null
// or {} leaves only `log`. Each channel's step is looked up in `registry` now and kept, and so is
// every other step of the registry for inline channels (`to: {uses, with}`): the registry itself
// is moved elsewhere after this, so it is not referenced. Fails with invalid_argument naming the
// channel (`notify.channels.ops: ...`) for a malformed entry, the reserved name `log`, a `uses`
// the registry does not have, or — given `check` — settings the channel's step refuses.
Result<StepInfo> make_notify_step(const StepRegistry& registry, const Json& channels,
                                  const ChannelInputCheck& check = {});

}  // namespace herald::steps
