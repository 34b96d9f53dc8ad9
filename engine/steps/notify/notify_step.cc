// The `notify` step: one message, sent to each channel of `to:` in turn by calling the channel's
// step (a plugin capability such as slack.post) with the message mapped onto that step's fields.
// Channels that succeeded are remembered by the step's idempotency key, so the retry after a
// partial failure sends only to the channels that failed.
#include "engine/steps/notify/notify_step.h"

#include <algorithm>
#include <cctype>
#include <deque>
#include <map>
#include <mutex>

#include "engine/expr/evaluator.h"

namespace herald::steps {

namespace {

constexpr std::string_view kLogChannel = "log";

Error input_error(std::string message) {
  return make_error(ErrorCode::invalid_argument, "notify: " + std::move(message));
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += separator;
    out += parts[i];
  }
  return out;
}

std::string quote(std::string_view text) {
  return "'" + std::string(text) + "'";
}

// Channel names end up in idempotency keys, output and the validation pattern of `to`, so they
// are kept to characters that mean nothing in any of those.
bool is_channel_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || !std::isalpha(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

// What one notify sends, read from its `with:`.
struct Message {
  std::string text;
  std::string title;  // empty: none
  std::string level = "info";
  Json blocks = nullptr;
  Json data = nullptr;
};

// The title and text as one line, for destinations without a title of their own.
std::string one_line(const Message& message) {
  return message.title.empty() ? message.text : message.title + ": " + message.text;
}

// Where a message goes: the run's log (no step), or a step called with `with` and the message.
struct Channel {
  std::string name;
  std::string uses;  // empty for the log channel
  Json with = Json::object();
  std::shared_ptr<Step> step;

  bool is_log() const { return step == nullptr; }
};

Channel log_channel() {
  return Channel{std::string(kLogChannel), "", Json::object(), nullptr};
}

// The input of a channel's step: the channel's `with:`, and the message on the fields that step
// reads. The message wins over the same field in `with:` (a channel's settings are defaults).
Json channel_input(const Channel& channel, const Message& message, const StepContext& context) {
  Json input = channel.with.is_object() ? channel.with : Json::object();
  if (channel.uses == "slack.post") {
    input["text"] =
        message.title.empty() ? message.text : "*" + message.title + "*\n" + message.text;
    if (!message.blocks.is_null()) input["blocks"] = message.blocks;
  } else if (channel.uses == "webhook.send") {
    Json payload = {{"text", message.text}};
    if (!message.title.empty()) payload["title"] = message.title;
    if (!message.data.is_null()) payload["data"] = message.data;
    payload["run_id"] = context.run_id;
    payload["step_id"] = context.step_id;
    input["payload"] = std::move(payload);
    if (!input.contains("event")) input["event"] = "herald.notify";
  } else if (channel.uses == "log") {
    input["message"] = one_line(message);
    if (!input.contains("level")) input["level"] = message.level;
  } else {
    input["text"] = one_line(message);
  }
  return input;
}

// The channels already sent for a step, by the step's idempotency key (stable across its
// attempts), so that a retry sends only what failed. Kept in the run's key-value store when the
// step has one (the runtime's: durable, so a restart does not send again either), for a week;
// otherwise in memory, dropped by count and by age (a step that fails for good is never reported
// back).
class SentChannels {
 public:
  struct Sent {
    Json output;
    int attempt = 1;
    std::vector<EmittedEvent> events;
  };
  using ByChannel = std::map<std::string, Sent, std::less<>>;

  ByChannel lookup(const StepContext& context) {
    if (context.kv != nullptr) {
      auto stored = context.kv->get(workspace_of(context), kStoreNamespace,
                                    context.idempotency_key);
      ByChannel channels;
      if (!stored.ok() || !stored->has_value() || !(*stored)->is_object()) return channels;
      for (const auto& [name, value] : (*stored)->items()) channels[name] = from_json(value);
      return channels;
    }
    std::lock_guard lock(mu_);
    auto found = entries_.find(context.idempotency_key);
    return found == entries_.end() ? ByChannel{} : found->second.channels;
  }

  // A failure to keep the record only costs a resend on a retry (with the same per-channel
  // idempotency key), so it is logged, not fatal.
  void record(const StepContext& context, const ByChannel& sent_so_far) {
    if (context.kv != nullptr) {
      Json stored = Json::object();
      for (const auto& [name, sent] : sent_so_far) stored[name] = to_json(sent);
      auto status = context.kv->put(workspace_of(context), kStoreNamespace,
                                    context.idempotency_key, stored, kStoredFor);
      if (!status.ok() && context.log) {
        context.log("warn", "notify: could not record the channels sent (" +
                                status.error().message + "); a retry sends them again");
      }
      return;
    }
    std::lock_guard lock(mu_);
    auto now = Clock::now();
    auto [entry, added] = entries_.try_emplace(context.idempotency_key);
    if (added) {
      entry->second.created = now;
      order_.push_back({now, context.idempotency_key});
    }
    entry->second.channels = sent_so_far;
    while (!order_.empty() &&
           (order_.size() > kMaxEntries || order_.front().first < now - kMaxAge)) {
      auto oldest = entries_.find(order_.front().second);
      // The key may have been forgotten (and even recorded again since): drop only this entry.
      if (oldest != entries_.end() && oldest->second.created == order_.front().first) {
        entries_.erase(oldest);
      }
      order_.pop_front();
    }
  }

  void forget(const StepContext& context) {
    if (context.kv != nullptr) {
      (void)context.kv->remove(workspace_of(context), kStoreNamespace, context.idempotency_key);
      return;
    }
    std::lock_guard lock(mu_);
    entries_.erase(context.idempotency_key);
  }

 private:
  static constexpr std::string_view kStoreNamespace = "herald.notify";
  static constexpr std::chrono::seconds kStoredFor{7 * 24 * 3600};
  static constexpr size_t kMaxEntries = 4096;
  static constexpr std::chrono::hours kMaxAge{24};

  static std::string workspace_of(const StepContext& context) {
    if (context.scope != nullptr && context.scope->run != nullptr &&
        context.scope->run->is_object()) {
      return context.scope->run->value("workspace", std::string());
    }
    return "";
  }
  static Json to_json(const Sent& sent) {
    Json events = Json::array();
    for (const auto& event : sent.events) {
      events.push_back({{"name", event.name}, {"payload", event.payload}});
    }
    return {{"output", sent.output}, {"attempt", sent.attempt}, {"events", std::move(events)}};
  }
  static Sent from_json(const Json& value) {
    Sent sent;
    if (!value.is_object()) return sent;
    sent.output = value.value("output", Json());
    sent.attempt = value.value("attempt", 1);
    for (const auto& event : value.value("events", Json::array())) {
      if (event.is_object()) {
        sent.events.push_back(
            {event.value("name", std::string()), event.value("payload", Json::object())});
      }
    }
    return sent;
  }

  struct Entry {
    Clock::time_point created;
    ByChannel channels;
  };
  std::mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_;
  std::deque<std::pair<Clock::time_point, std::string>> order_;  // keys by when first recorded
};

using StepsByName = std::map<std::string, std::shared_ptr<Step>, std::less<>>;

class NotifyStep final : public Step {
 public:
  NotifyStep(std::map<std::string, Channel, std::less<>> configured, StepsByName steps)
      : configured_(std::move(configured)), steps_(std::move(steps)) {}

  StepOutcome run(const Json& input, StepContext& context) override {
    if (!input.is_object()) {
      return StepOutcome::failed(input_error("with: must be a map with `text`"));
    }
    auto message = read_message(input);
    if (!message.ok()) return StepOutcome::failed(message.error());
    auto targets = read_targets(input);
    if (!targets.ok()) return StepOutcome::failed(targets.error());

    const std::string& key = context.idempotency_key;
    SentChannels::ByChannel earlier =
        key.empty() ? SentChannels::ByChannel{} : sent_.lookup(context);
    SentChannels::ByChannel now_sent = earlier;
    Json sent = Json::array();
    Json failed = Json::array();
    std::vector<std::string> sent_names;
    std::vector<std::pair<std::string, Error>> errors;
    std::vector<EmittedEvent> events;
    for (const Channel& channel : *targets) {
      if (auto before = earlier.find(channel.name); before != earlier.end()) {
        sent.push_back(sent_entry(channel.name, before->second));
        sent_names.push_back(channel.name);
        events.insert(events.end(), before->second.events.begin(), before->second.events.end());
        continue;
      }
      StepOutcome outcome = send(channel, *message, context);
      if (outcome.kind == StepOutcome::Kind::done) {
        SentChannels::Sent record{std::move(outcome.output), context.attempt,
                                  std::move(outcome.events)};
        sent.push_back(sent_entry(channel.name, record));
        sent_names.push_back(channel.name);
        events.insert(events.end(), record.events.begin(), record.events.end());
        if (!key.empty()) {
          now_sent[channel.name] = std::move(record);
          sent_.record(context, now_sent);
        }
        continue;
      }
      Error error = outcome.kind == StepOutcome::Kind::failed
                        ? std::move(outcome.error)
                        : make_error(ErrorCode::failed_precondition,
                                     channel.uses +
                                         " asked to wait; a channel's step must finish "
                                         "when it has sent");
      failed.push_back({{"channel", channel.name}, {"error", error.to_json()}});
      errors.emplace_back(channel.name, std::move(error));
    }

    if (errors.empty()) {
      if (!key.empty()) sent_.forget(context);
      StepOutcome outcome =
          StepOutcome::done({{"sent", std::move(sent)}, {"failed", std::move(failed)}});
      outcome.events = std::move(events);
      return outcome;
    }
    return StepOutcome::failed(
        combined_error(errors, sent_names, targets->size(), std::move(sent), std::move(failed)));
  }

  std::vector<std::string> channel_names() const {
    std::vector<std::string> names = {std::string(kLogChannel)};
    for (const auto& [name, channel] : configured_) names.push_back(name);
    return names;
  }

 private:
  static Json sent_entry(const std::string& channel, const SentChannels::Sent& sent) {
    return {{"channel", channel}, {"ok", true}, {"attempt", sent.attempt}, {"output", sent.output}};
  }

  static Result<Message> read_message(const Json& input) {
    static const std::vector<std::string> kFields = {"blocks", "data",  "level",
                                                     "text",   "title", "to"};
    for (const auto& [field, value] : input.items()) {
      if (std::find(kFields.begin(), kFields.end(), field) == kFields.end()) {
        return input_error("unknown field " + quote(field) +
                           " in with:; allowed fields: " + join(kFields, ", "));
      }
    }
    Message message;
    auto text = input.find("text");
    if (text != input.end() && !text->is_null()) {
      // A template of exactly one {{ }} keeps its value's type: a count arrives as a number.
      message.text = text->is_string() ? text->get<std::string>() : text->dump();
    }
    if (message.text.empty()) return input_error("with.text is required: the message to send");
    if (auto title = input.find("title"); title != input.end() && !title->is_null()) {
      message.title = title->is_string() ? title->get<std::string>() : title->dump();
    }
    if (auto level = input.find("level"); level != input.end() && !level->is_null()) {
      message.level = level->is_string() ? level->get<std::string>() : level->dump();
      if (message.level != "debug" && message.level != "info" && message.level != "warn" &&
          message.level != "error") {
        return input_error("with.level " + quote(message.level) +
                           " is not one of debug, info, warn, error");
      }
    }
    if (auto blocks = input.find("blocks"); blocks != input.end() && !blocks->is_null()) {
      if (!blocks->is_array()) return input_error("with.blocks must be a list of Block Kit blocks");
      message.blocks = *blocks;
    }
    if (auto data = input.find("data"); data != input.end() && !data->is_null()) {
      if (!data->is_object()) {
        return input_error("with.data must be a map (sent to webhook channels)");
      }
      message.data = *data;
    }
    return message;
  }

  // The channels of `to:` in order: absent means the log; a name, an inline channel, or a list.
  Result<std::vector<Channel>> read_targets(const Json& input) const {
    auto to = input.find("to");
    if (to == input.end() || to->is_null()) return std::vector<Channel>{log_channel()};
    std::vector<Channel> targets;
    auto add = [&](const Json& item, const std::string& where) -> Status {
      Result<Channel> channel =
          item.is_string()   ? named(item.get<std::string>(), where)
          : item.is_object() ? inline_channel(item, where)
                             : Result<Channel>(input_error(where + ": expected a channel name or "
                                                                   "{uses, with}"));
      if (!channel.ok()) return std::move(channel).error();
      for (const auto& earlier : targets) {
        if (earlier.name == channel->name) {
          return input_error(where + ": channel " + quote(channel->name) +
                             " is named twice (give inline channels a `name`)");
        }
      }
      targets.push_back(std::move(channel).value());
      return {};
    };
    if (to->is_array()) {
      if (to->empty()) return input_error("with.to: give at least one channel");
      for (size_t i = 0; i < to->size(); ++i) {
        if (auto status = add((*to)[i], "with.to[" + std::to_string(i) + "]"); !status.ok()) {
          return std::move(status).error();
        }
      }
    } else if (auto status = add(*to, "with.to"); !status.ok()) {
      return std::move(status).error();
    }
    return targets;
  }

  Result<Channel> named(const std::string& name, const std::string& where) const {
    if (name == kLogChannel) return log_channel();
    auto found = configured_.find(name);
    if (found != configured_.end()) return found->second;
    return input_error(where + ": unknown channel " + quote(name) + "; " +
                       (configured_.empty()
                            ? "the only channel is log (configure more under notify.channels in "
                              "herald.yaml)"
                            : "configured channels: " + join(channel_names(), ", ") +
                                  " (notify.channels in herald.yaml)"));
  }

  Result<Channel> inline_channel(const Json& spec, const std::string& where) const {
    for (const auto& [field, value] : spec.items()) {
      if (field != "uses" && field != "with" && field != "name") {
        return input_error(where + ": unknown field " + quote(field) +
                           " in an inline channel; allowed fields: name, uses, with");
      }
    }
    auto uses = spec.find("uses");
    if (uses == spec.end() || !uses->is_string()) {
      return input_error(where +
                         ".uses: an inline channel needs the step type that sends, e.g. "
                         "slack.post");
    }
    auto step = steps_.find(uses->get<std::string>());
    if (step == steps_.end()) {
      std::vector<std::string> known;
      for (const auto& [name, unused] : steps_) known.push_back(name);
      return input_error(where + ".uses: unknown step type " + quote(uses->get<std::string>()) +
                         "; known step types: " + join(known, ", "));
    }
    Channel channel{uses->get<std::string>(), uses->get<std::string>(), Json::object(),
                    step->second};
    if (auto with = spec.find("with"); with != spec.end() && !with->is_null()) {
      if (!with->is_object()) return input_error(where + ".with: expected a map");
      channel.with = *with;
    }
    if (auto name = spec.find("name"); name != spec.end()) {
      if (!name->is_string() || !is_channel_name(name->get<std::string>()) ||
          name->get<std::string>() == kLogChannel) {
        return input_error(where +
                           ".name: expected letters, digits, '_' and '-', starting with a "
                           "letter (and not 'log')");
      }
      channel.name = name->get<std::string>();
    }
    return channel;
  }

  StepOutcome send(const Channel& channel, const Message& message, StepContext& context) const {
    if (context.is_cancelled()) {
      return StepOutcome::failed(
          make_error(ErrorCode::cancelled, "the run was cancelled before it was sent"));
    }
    if (channel.is_log()) {
      std::string line = one_line(message);
      if (context.log) context.log(message.level, line);
      return StepOutcome::done({{"message", line}, {"level", message.level}});
    }
    // The same deadline, cancellation, log and scope as the step; a key of its own, so that a
    // plugin honouring idempotency keys tells one channel's call from another's.
    StepContext call = context;
    call.idempotency_key = context.idempotency_key + ":" + channel.name;
    return channel.step->run(channel_input(channel, message, context), call);
  }

  // One error for the step: retryable when a retry can help some channel that failed, with that
  // channel's code and the longest Retry-After any of them asked for; what was sent and what
  // failed in details (the timeline shows them, since a failed step has no output).
  static Error combined_error(const std::vector<std::pair<std::string, Error>>& errors,
                              const std::vector<std::string>& sent_names, size_t channel_count,
                              Json sent, Json failed) {
    auto retryable = std::find_if(errors.begin(), errors.end(),
                                  [](const auto& entry) { return entry.second.retryable; });
    Error error = (retryable != errors.end() ? retryable : errors.begin())->second;
    for (const auto& [name, each] : errors) {
      if (each.retryable && each.retry_after &&
          (!error.retry_after || *each.retry_after > *error.retry_after)) {
        error.retry_after = each.retry_after;
      }
    }
    if (channel_count == 1) {
      error.message = "notify: channel " + quote(errors.front().first) + ": " + error.message;
    } else {
      std::vector<std::string> parts;
      for (const auto& [name, each] : errors) parts.push_back(name + ": " + each.message);
      error.message = "notify: " + std::to_string(errors.size()) + " of " +
                      std::to_string(channel_count) + " channels failed: " + join(parts, "; ");
      if (!sent_names.empty()) {
        error.message += " (sent to " + join(sent_names, ", ") +
                         (error.retryable ? ", which a retry does not send again)" : ")");
      }
    }
    error.details = {{"sent", std::move(sent)}, {"failed", std::move(failed)}};
    return error;
  }

  const std::map<std::string, Channel, std::less<>> configured_;
  const StepsByName steps_;
  SentChannels sent_;
};

// The JSON Schema of notify's `with:`, so that `herald validate` refuses an unknown channel, an
// inline channel's unknown step type and a typo in a field before anything runs. A template in
// `to` stands for any value and is checked when the step runs.
Json input_schema(const std::vector<std::string>& channel_names,
                  const std::vector<std::string>& step_names) {
  Json inline_channel = {{"type", "object"},
                         {"required", {"uses"}},
                         {"properties",
                          {{"uses", {{"type", "string"}, {"enum", step_names}}},
                           {"with", {{"type", "object"}}},
                           {"name", {{"type", "string"}}}}},
                         {"additionalProperties", false}};
  // `pattern` applies to strings only and `required`/`properties` to objects only, so one schema
  // covers "a channel name or an inline channel". Names have no regex metacharacters.
  Json channel = inline_channel;
  channel["type"] = {"string", "object"};
  channel["pattern"] = "^(" + join(channel_names, "|") + ")$";
  Json to = channel;
  to["type"] = {"string", "object", "array"};
  to["items"] = channel;
  to["minItems"] = 1;
  return {{"type", "object"},
          {"required", {"text"}},
          {"properties",
           {{"text", {{"type", "string"}, {"description", "The message"}}},
            {"title", {{"type", "string"}}},
            {"level", {{"type", "string"}, {"enum", {"debug", "info", "warn", "error"}}}},
            {"to", to},
            {"blocks", {{"type", "array"}, {"items", {{"type", "object"}}}}},
            {"data", {{"type", "object"}}}}},
          {"additionalProperties", false}};
}

}  // namespace

Result<StepInfo> make_notify_step(const StepRegistry& registry, const Json& channels,
                                  const ChannelInputCheck& check) {
  if (!channels.is_null() && !channels.is_object()) {
    return input_error("notify.channels: expected a map of channel names to {uses, with}");
  }
  StepsByName steps;
  for (const std::string& name : registry.names()) steps.emplace(name, registry.find(name)->step);

  static const Json kNoChannels = Json::object();
  std::map<std::string, Channel, std::less<>> configured;
  for (const auto& [name, spec] : (channels.is_object() ? channels : kNoChannels).items()) {
    const std::string where = "notify.channels." + name;
    auto fail = [&](const std::string& message) {
      return make_error(ErrorCode::invalid_argument, where + ": " + message);
    };
    if (name == kLogChannel) {
      return fail("'log' is the run's log, which is always there; choose another name");
    }
    if (!is_channel_name(name)) {
      return fail("a channel name is letters, digits, '_' and '-', starting with a letter");
    }
    if (!spec.is_object()) return fail("expected {uses: STEP, with: {...}}");
    for (const auto& [field, value] : spec.items()) {
      if (field != "uses" && field != "with") {
        return fail("unknown field " + quote(field) + "; allowed fields: uses, with");
      }
    }
    auto uses = spec.find("uses");
    if (uses == spec.end() || !uses->is_string() || uses->get<std::string>().empty()) {
      return fail("`uses` must name the step that sends, e.g. slack.post");
    }
    const StepInfo* info = registry.find(uses->get<std::string>());
    if (info == nullptr) {
      return fail("uses " + quote(uses->get<std::string>()) +
                  ", which is not loaded (no built-in step or loaded plugin capability has that "
                  "name); loaded step types: " +
                  join(registry.names(), ", "));
    }
    Channel channel{name, info->name, Json::object(), info->step};
    if (auto with = spec.find("with"); with != spec.end() && !with->is_null()) {
      if (!with->is_object()) return fail("`with` must be a map of the step's settings");
      channel.with = *with;
    }
    if (check) {
      Message sample;
      sample.text = "notify sample text";
      if (auto problem = check(*info, channel_input(channel, sample, StepContext{}))) {
        return fail(info->name + " refuses these settings: " + *problem);
      }
    }
    configured.emplace(name, std::move(channel));
  }

  auto step = std::make_shared<NotifyStep>(std::move(configured), steps);
  std::vector<std::string> step_names;
  for (const auto& [name, unused] : steps) step_names.push_back(name);
  StepInfo info;
  info.name = "notify";
  info.description =
      "Sends a message to channels: the run's log, or Slack, webhooks and other steps configured "
      "under notify.channels";
  info.input_schema = input_schema(step->channel_names(), step_names);
  info.step = std::move(step);
  info.pure = false;  // a channel other than the log has effects outside the run
  return info;
}

}  // namespace herald::steps
