#include "engine/approvals/approval_step.h"

#include "engine/approvals/desk.h"
#include "engine/common/time.h"
#include "engine/expr/evaluator.h"
#include "engine/security/hmac.h"

namespace herald::approvals {

namespace {

using Clock = std::chrono::system_clock;

Error input_error(std::string message) {
  return make_error(ErrorCode::invalid_argument, "approval: " + std::move(message));
}

// "alice" -> "user:alice"; principals and e-mail addresses as they are.
std::string principal_from(std::string text) {
  if (text.rfind("user:", 0) == 0 || text.rfind("email:", 0) == 0 ||
      text.rfind("system:", 0) == 0) {
    return text;
  }
  if (text.find('@') != std::string::npos) return email_principal(text);
  return user_principal(text);
}

struct Request {
  Subject subject;
  std::optional<Chain> chain;
  std::string policy;
  std::string submitter;
  Json notify = Json::array({"log"});
};

Result<Request> read_request(const Json& input, const steps::StepContext& context) {
  Request request;
  if (!input.is_object()) return input_error("`with` must be an object");
  auto subject = input.find("subject");
  if (subject == input.end()) return input_error("`subject` is required (at least its `text`)");
  Json subject_json = subject->is_string() ? Json{{"text", *subject}} : *subject;
  auto parsed = Subject::from_json(subject_json);
  if (!parsed.ok()) return input_error("subject: " + parsed.error().message);
  request.subject = std::move(parsed).value();

  bool has_chain = input.contains("chain");
  bool has_policy = input.contains("policy");
  if (has_chain == has_policy) {
    return input_error("give either `policy: NAME` (a policy of the workspace) or an inline `chain`");
  }
  if (has_policy) {
    if (!input["policy"].is_string() || input["policy"].get<std::string>().empty()) {
      return input_error("`policy` must be a policy's name");
    }
    request.policy = input["policy"].get<std::string>();
  } else {
    ChainOutcome chain = parse_chain_json(input, "with");
    if (!chain.ok()) {
      std::string message;
      for (const auto& d : chain.diagnostics) {
        if (!message.empty()) message += "; ";
        message += d.path + ": " + d.message;
      }
      Error error = input_error("the chain is not valid: " + message);
      Json diagnostics = Json::array();
      for (const auto& d : chain.diagnostics) diagnostics.push_back(d.to_json());
      error.details = Json{{"errors", std::move(diagnostics)}};
      return error;
    }
    request.chain = std::move(chain.chain);
  }

  if (auto it = input.find("submitter"); it != input.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>().empty()) {
      return input_error("`submitter` must be a user id, a principal or an e-mail address");
    }
    request.submitter = principal_from(it->get<std::string>());
  } else if (context.scope != nullptr && context.scope->trigger != nullptr &&
             context.scope->trigger->is_object() &&
             context.scope->trigger->value("by", std::string()).rfind("user:", 0) == 0) {
    request.submitter = context.scope->trigger->value("by", std::string());  // a manual run
  } else {
    request.submitter = "system:workflow";
  }
  if (auto it = input.find("notify"); it != input.end() && !it->is_null()) {
    request.notify = it->is_array() ? *it : Json::array({*it});
  }
  return request;
}

std::string workspace_of(const steps::StepContext& context) {
  if (context.scope == nullptr || context.scope->run == nullptr) return "";
  return context.scope->run->value("workspace", std::string());
}

std::string title_of(const ApprovalState& state) {
  if (!state.subject.title.empty()) return state.subject.title;
  std::string text = state.subject.text.substr(0, 60);
  return state.subject.text.size() > 60 ? text + "..." : text;
}

std::string people(const Json& notify) {
  std::string out;
  for (const auto& person : notify) {
    if (!out.empty()) out += ", ";
    out += person.value("principal", std::string());
    if (person.contains("for")) out += " (for " + person.value("for", std::string()) + ")";
  }
  return out;
}

// The message one event of the approval owes, or nullopt for events nobody is told about.
struct Message {
  std::string title;
  std::string text;
  std::string level = "info";
  Json data;
};

std::optional<Message> message_for(const Event& event, const ApprovalState& state,
                                   const Desk& desk, TimePoint now) {
  const Json& data = event.data;
  std::string what = title_of(state);
  Message message;
  message.data = Json{{"event", event.type}, {"approval_id", state.id}};
  auto ask = [&](const std::string& heading) {
    message.title = heading + ": " + what;
    std::string level = data.value("level", std::string());
    message.text = state.subject.text + "\n\nLevel '" + level + "' asks " +
                   people(data.value("notify", Json::array())) + ".";
    if (data.contains("deadline")) {
      message.text += " Deadline: " + data["deadline"].get<std::string>() + ".";
    }
    message.text += "\nDecide: herald approvals decide " + state.id + " approve|reject|changes";
    Json links = Json::array();
    for (const auto& person : data.value("notify", Json::array())) {
      std::string principal = person.value("principal", std::string());
      Json entry{{"principal", principal}};
      bool any = false;
      for (auto action : {LinkAction::approve, LinkAction::reject, LinkAction::open}) {
        auto url = desk.link_url(state, level, principal, action, now);
        if (!url.ok()) continue;
        entry[std::string(to_string(action))] = *url;
        any = true;
      }
      if (any) {
        message.text += "\n" + principal + ": approve " + entry.value("approve", "") +
                        " | reject " + entry.value("reject", "") + " | open " +
                        entry.value("open", "");
        links.push_back(std::move(entry));
      }
    }
    message.data["level"] = level;
    message.data["notify"] = data.value("notify", Json::array());
    if (!links.empty()) message.data["links"] = std::move(links);
  };
  if (event.type == "approval.requested") {
    ask("Approval needed");
  } else if (event.type == "approval.reminded") {
    ask("Reminder, approval needed");
  } else if (event.type == "approval.escalated") {
    ask("Escalated, approval needed");
    message.level = "warn";
  } else if (event.type == "approval.decided" || event.type == "approval.expired" ||
             event.type == "approval.failed") {
    std::string decision = event.type == "approval.failed" ? "failed"
                                                           : data.value("decision", std::string());
    message.title = "Your submission '" + what + "': " + decision;
    message.text = "The approval of '" + what + "' ended: " + decision + ".";
    if (event.type == "approval.failed" && data.contains("error")) {
      message.text += " " + data["error"].value("message", std::string());
      message.level = "error";
    }
    for (auto it = state.decisions.rbegin(); it != state.decisions.rend(); ++it) {
      if (!it->comment.empty()) {
        message.text += " Last comment, by " + it->actor + ": " + it->comment;
        break;
      }
    }
    message.data["decision"] = decision;
    message.data["submitter"] = state.submitter;
  } else {
    return std::nullopt;
  }
  return message;
}

class ApprovalStep : public steps::Step {
 public:
  explicit ApprovalStep(std::shared_ptr<steps::Step> notify) : notify_(std::move(notify)) {}

  steps::StepOutcome run(const Json& input, steps::StepContext& context) override {
    if (context.approvals == nullptr) {
      return steps::StepOutcome::failed(make_error(
          ErrorCode::failed_precondition,
          "approval: this step needs Herald's store (herald run, herald serve), not a bare call"));
    }
    Desk& desk = *context.approvals;
    auto request = read_request(input, context);
    if (!request.ok()) return steps::StepOutcome::failed(request.error());
    TimePoint now = std::chrono::time_point_cast<std::chrono::milliseconds>(Clock::now());

    Desk::OpenRequest open;
    open.workspace_id = workspace_of(context);
    open.run_id = context.run_id;
    open.step_id = context.step_id;
    open.item = context.item;
    open.subject = request->subject;
    open.submitter = request->submitter;
    open.chain = request->chain;
    open.policy_name = request->policy;
    auto record = desk.open(open, now);
    if (!record.ok()) return steps::StepOutcome::failed(prefixed(record.error()));
    if (record->due_at && *record->due_at <= now) {
      record = desk.run_deadlines(*record, now);
      if (!record.ok()) return steps::StepOutcome::failed(prefixed(record.error()));
    }
    if (auto sent = send_outbox(desk, *record, *request, context, now); !sent.ok()) {
      return steps::StepOutcome::failed(prefixed(sent.error()));
    } else {
      record = std::move(sent).value();
    }

    auto envelope = read_envelope(*record);
    if (!envelope.ok()) return steps::StepOutcome::failed(envelope.error());
    const ApprovalState& state = envelope->state;
    if (!finished(state)) {
      if (context.log) {
        std::string open_levels;
        for (const auto& waiting : awaiting(state)) {
          if (open_levels.find("'" + waiting.level + "'") == std::string::npos) {
            open_levels += (open_levels.empty() ? "'" : ", '") + waiting.level + "'";
          }
        }
        context.log("info", "approval " + state.id + " waits for " +
                                (open_levels.empty() ? std::string("nobody") : open_levels));
      }
      auto due = due_at(state);
      return steps::StepOutcome::rerun_at(due ? *due : Clock::time_point::max());
    }
    auto result = approvals::result(state);
    if (!result.ok()) return steps::StepOutcome::failed(prefixed(result.error()));
    Json output = result->to_json();
    output["approval_id"] = state.id;
    output["policy"] = state.policy_name.empty() ? Json(nullptr) : Json(state.policy_name);
    output["policy_version"] = state.policy_name.empty() ? Json(nullptr) : Json(state.policy_version);
    output["submitter"] = state.submitter;
    return steps::StepOutcome::done(std::move(output));
  }

 private:
  static Error prefixed(Error error) {
    if (error.message.rfind("approval", 0) != 0) error.message = "approval: " + error.message;
    return error;
  }

  // Sends what the record's outbox owes, then empties it. A notification that cannot be sent is
  // logged and dropped: a failing chat channel must not hold up the approval itself.
  Result<store::ApprovalRecord> send_outbox(Desk& desk, store::ApprovalRecord record,
                                            const Request& request, steps::StepContext& context,
                                            TimePoint now) {
    for (int attempt = 0; attempt < 8; ++attempt) {
      auto envelope = read_envelope(record);
      if (!envelope.ok()) return envelope.error();
      if (envelope->outbox.empty()) return record;
      for (const auto& event : envelope->outbox) {
        auto message = message_for(event, envelope->state, desk, now);
        if (!message) continue;
        send(*message, event, request, context);
      }
      auto cleared = desk.clear_outbox(record, now);
      if (cleared.ok() || cleared.error().code != ErrorCode::aborted) return cleared;
      // A decision came in meanwhile; its events join the outbox. What was sent is not sent
      // again: each message's idempotency key is its event's.
      auto fresh = desk.get(record.workspace_id, record.id);
      if (!fresh.ok()) return fresh.error();
      record = std::move(fresh).value();
    }
    return record;
  }

  void send(const Message& message, const Event& event, const Request& request,
            steps::StepContext& context) {
    if (!notify_) {
      if (context.log) context.log(message.level, message.title + ": " + message.text);
      return;
    }
    Json input{{"to", request.notify},
               {"title", message.title},
               {"text", message.text},
               {"level", message.level},
               {"data", message.data}};
    steps::StepContext notify_context = context;
    notify_context.idempotency_key =
        context.idempotency_key + ":notify:" + security::sha256_hex(event.to_json().dump()).substr(0, 24);
    steps::StepOutcome sent = notify_->run(input, notify_context);
    if (sent.kind == steps::StepOutcome::Kind::failed && context.log) {
      context.log("warn", "approval notification '" + message.title +
                              "' was not sent: " + sent.error.message);
    }
  }

  std::shared_ptr<steps::Step> notify_;
};

Json input_schema() {
  return Json::parse(R"json({
    "type": "object",
    "properties": {
      "subject": {
        "oneOf": [
          {"type": "string"},
          {"type": "object",
           "properties": {
             "title": {"type": "string"}, "text": {"type": "string"},
             "media": {"type": "array"}, "accounts": {"type": "array", "items": {"type": "string"}},
             "extra": {"type": "object"}},
           "required": ["text"], "additionalProperties": false}
        ]
      },
      "policy": {"type": "string", "minLength": 1},
      "chain": {"type": "array", "minItems": 1},
      "on_changes": {"enum": ["restart", "return"]},
      "allow_self_approval": {"type": "boolean"},
      "submitter": {"type": "string", "minLength": 1},
      "notify": {"oneOf": [{"type": "string"}, {"type": "object"}, {"type": "array"}]}
    },
    "required": ["subject"],
    "additionalProperties": false
  })json");
}

}  // namespace

steps::StepInfo make_approval_step(std::shared_ptr<steps::Step> notify) {
  steps::StepInfo info;
  info.name = "approval";
  info.description = "Submits a subject to an approval chain and waits for its decision";
  // The chain's `when:` and `deadline.at` are Lua over the subject, evaluated by the chain, not
  // templates of the run.
  info.raw_fields = {"chain"};
  info.step = std::make_shared<ApprovalStep>(std::move(notify));
  info.input_schema = input_schema();
  return info;
}

}  // namespace herald::approvals
