// The JSON form of an approval: what the store keeps, the API returns and from_json reads back.
// Reading is strict (every field checked, errors name the field) because a state comes back from
// a database row that may have been written by another Herald version or edited by hand.
#include <stdexcept>

#include "engine/approvals/approval.h"

namespace herald::approvals {
namespace {

// The version of the state's JSON layout; from_json refuses others.
constexpr int kStateFormat = 1;

// Thrown inside the readers and turned into one invalid_argument Error at the top.
struct BadField : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void bad(const std::string& path, const std::string& expected) {
  throw BadField(path + ": expected " + expected);
}

std::string at(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

// Read helpers over one object, naming fields by path.
class Fields {
 public:
  Fields(const Json& json, std::string path) : json_(json), path_(std::move(path)) {
    if (!json_.is_object()) bad(path_.empty() ? "(document)" : path_, "an object");
  }
  bool has(std::string_view key) const {
    return json_.contains(key) && !json_[std::string(key)].is_null();
  }
  const Json& raw(std::string_view key) const {
    if (!json_.contains(key)) bad(at(path_, key), "a value (missing)");
    return json_[std::string(key)];
  }
  std::string path(std::string_view key) const { return at(path_, key); }
  std::string string(std::string_view key) const {
    const Json& value = raw(key);
    if (!value.is_string()) bad(path(key), "a string");
    return value.get<std::string>();
  }
  std::string string_or(std::string_view key, std::string fallback) const {
    return has(key) ? string(key) : fallback;
  }
  int64_t integer(std::string_view key) const {
    const Json& value = raw(key);
    if (!value.is_number_integer()) bad(path(key), "an integer");
    return value.get<int64_t>();
  }
  bool boolean(std::string_view key) const {
    const Json& value = raw(key);
    if (!value.is_boolean()) bad(path(key), "true or false");
    return value.get<bool>();
  }
  TimePoint time(std::string_view key) const {
    Result<TimePoint> parsed = parse_iso8601(string(key));
    if (!parsed.ok()) bad(path(key), "an ISO-8601 time (" + parsed.error().message + ")");
    return *parsed;
  }
  std::optional<TimePoint> optional_time(std::string_view key) const {
    if (!has(key)) return std::nullopt;
    return time(key);
  }
  std::vector<std::string> strings(std::string_view key) const {
    const Json& value = raw(key);
    if (!value.is_array()) bad(path(key), "a list of strings");
    std::vector<std::string> out;
    for (size_t i = 0; i < value.size(); ++i) {
      if (!value[i].is_string()) bad(path(key) + "[" + std::to_string(i) + "]", "a string");
      out.push_back(value[i].get<std::string>());
    }
    return out;
  }
  const Json& array(std::string_view key) const {
    const Json& value = raw(key);
    if (!value.is_array()) bad(path(key), "a list");
    return value;
  }

 private:
  const Json& json_;
  std::string path_;
};

template <typename T, typename Read>
Result<T> read_json(Read read) {
  try {
    return read();
  } catch (const BadField& e) {
    return make_error(ErrorCode::invalid_argument, e.what());
  } catch (const Json::exception& e) {
    return make_error(ErrorCode::invalid_argument, std::string("malformed approval JSON: ") + e.what());
  }
}

Json optional_time_json(const std::optional<TimePoint>& time) {
  return time ? Json(format_iso8601(*time)) : Json(nullptr);
}

template <typename Enum, size_t N>
Enum parse_enum(const std::string& text, const std::string& path, const Enum (&values)[N],
                std::string_view expected) {
  for (Enum value : values) {
    if (to_string(value) == text) return value;
  }
  bad(path, std::string(expected) + ", got '" + text + "'");
}

constexpr LevelStatus kLevelStatuses[] = {
    LevelStatus::pending,  LevelStatus::open,    LevelStatus::approved,
    LevelStatus::rejected, LevelStatus::changes_requested, LevelStatus::expired,
    LevelStatus::skipped,  LevelStatus::cancelled};
constexpr ApprovalStatus kApprovalStatuses[] = {
    ApprovalStatus::pending, ApprovalStatus::approved, ApprovalStatus::rejected,
    ApprovalStatus::changes_requested, ApprovalStatus::expired, ApprovalStatus::failed};
constexpr Verdict kVerdicts[] = {Verdict::approve, Verdict::reject, Verdict::request_changes};
constexpr Channel kChannels[] = {Channel::app, Channel::link};

Mode read_mode(const Json& json, const std::string& path) {
  if (json == "any") return Mode{Mode::Kind::any, 0};
  if (json == "all") return Mode{Mode::Kind::all, 0};
  if (json.is_object() && json.contains("quorum") && json["quorum"].is_number_integer() &&
      json["quorum"].get<int64_t>() >= 1) {
    return Mode{Mode::Kind::quorum, static_cast<int>(json["quorum"].get<int64_t>())};
  }
  bad(path, "any, all or {\"quorum\": N}");
}

Subject read_subject(const Json& json, const std::string& path) {
  Fields fields(json, path);
  Subject subject;
  subject.text = fields.string("text");
  subject.title = fields.string_or("title", "");
  if (fields.has("media")) {
    subject.media = fields.array("media");
  }
  if (fields.has("accounts")) subject.accounts = fields.strings("accounts");
  if (fields.has("extra")) {
    if (!json["extra"].is_object()) bad(fields.path("extra"), "an object");
    subject.extra = json["extra"];
  }
  return subject;
}

DecisionRecord read_decision(const Json& json, const std::string& path) {
  Fields fields(json, path);
  DecisionRecord decision;
  decision.level = fields.string("level");
  decision.round = static_cast<int>(fields.integer("round"));
  decision.actor = fields.string("actor");
  decision.on_behalf_of = fields.string("on_behalf_of");
  decision.verdict = parse_enum(fields.string("verdict"), fields.path("verdict"), kVerdicts,
                                "approve, reject or request_changes");
  decision.comment = fields.string_or("comment", "");
  if (fields.has("edited_text")) decision.edited_text = fields.string("edited_text");
  decision.text_revision = static_cast<int>(fields.integer("text_revision"));
  decision.idempotency_key = fields.string_or("idempotency_key", "");
  decision.channel =
      parse_enum(fields.string("channel"), fields.path("channel"), kChannels, "app or link");
  decision.at = fields.time("at");
  return decision;
}

HistoryEntry read_history(const Json& json, const std::string& path) {
  Fields fields(json, path);
  HistoryEntry entry;
  entry.at = fields.time("at");
  entry.kind = fields.string("kind");
  entry.level = fields.string_or("level", "");
  entry.actor = fields.string_or("actor", "");
  if (fields.has("details")) entry.details = json["details"];
  return entry;
}

LevelState read_level(const Json& json, const std::string& path) {
  Fields fields(json, path);
  LevelState level;
  level.name = fields.string("name");
  level.group = fields.string_or("group", "");
  int64_t stage = fields.integer("stage");
  if (stage < 0) bad(fields.path("stage"), "a stage index of 0 or more");
  level.stage = static_cast<size_t>(stage);
  level.status = parse_enum(fields.string("status"), fields.path("status"), kLevelStatuses,
                            "a level status");
  level.mode = read_mode(fields.raw("mode"), fields.path("mode"));
  level.approvers = fields.strings("approvers");
  level.eligible = fields.strings("eligible");
  std::sort(level.eligible.begin(), level.eligible.end());
  level.notes = fields.strings("notes");
  level.opened_at = fields.optional_time("opened_at");
  level.closed_at = fields.optional_time("closed_at");
  level.deadline = fields.optional_time("deadline");
  int64_t step = fields.integer("deadline_step");
  if (step < 0) bad(fields.path("deadline_step"), "0 or more");
  level.deadline_step = static_cast<size_t>(step);
  level.reminders_sent = static_cast<int>(fields.integer("reminders_sent"));
  level.escalations = static_cast<int>(fields.integer("escalations"));
  level.closed_by = fields.string_or("closed_by", "");
  return level;
}

// Expressions keep their path and place in the policy file across the store, so a Lua error in
// a `when:` evaluated days later still points at its line.
Json expression_places(const Chain& chain) {
  Json out = Json::array();
  for (const auto& stage : chain.stages) {
    for (const auto& level : stage.levels) {
      for (const auto& [field, expression] :
           {std::pair<const char*, const Expression*>{"when", &level.when},
            {"deadline.at", &level.deadline.at}}) {
        if (expression->empty()) continue;
        out.push_back(Json{{"level", level.name},
                           {"field", field},
                           {"path", expression->path},
                           {"line", expression->location.line},
                           {"column", expression->location.column}});
      }
    }
  }
  return out;
}

void restore_expression_places(Chain& chain, const Json& places) {
  if (!places.is_array()) bad("expressions", "a list");
  for (size_t i = 0; i < places.size(); ++i) {
    Fields fields(places[i], "expressions[" + std::to_string(i) + "]");
    std::string name = fields.string("level");
    std::string field = fields.string("field");
    for (auto& stage : chain.stages) {
      for (auto& level : stage.levels) {
        if (level.name != name) continue;
        Expression& expression = field == "when" ? level.when : level.deadline.at;
        expression.path = fields.string("path");
        expression.location = Location{static_cast<int>(fields.integer("line")),
                                       static_cast<int>(fields.integer("column"))};
      }
    }
  }
}

}  // namespace

std::string_view to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::approve:
      return "approve";
    case Verdict::reject:
      return "reject";
    case Verdict::request_changes:
      return "request_changes";
  }
  return "approve";
}

std::optional<Verdict> parse_verdict(std::string_view text) {
  if (text == "approve") return Verdict::approve;
  if (text == "reject") return Verdict::reject;
  // `herald approvals decide ID changes` is the CLI's short form.
  if (text == "request_changes" || text == "changes") return Verdict::request_changes;
  return std::nullopt;
}

std::string_view to_string(Channel channel) {
  return channel == Channel::link ? "link" : "app";
}

std::string_view to_string(LevelStatus status) {
  switch (status) {
    case LevelStatus::pending:
      return "pending";
    case LevelStatus::open:
      return "open";
    case LevelStatus::approved:
      return "approved";
    case LevelStatus::rejected:
      return "rejected";
    case LevelStatus::changes_requested:
      return "changes_requested";
    case LevelStatus::expired:
      return "expired";
    case LevelStatus::skipped:
      return "skipped";
    case LevelStatus::cancelled:
      return "cancelled";
  }
  return "pending";
}

std::string_view to_string(ApprovalStatus status) {
  switch (status) {
    case ApprovalStatus::pending:
      return "pending";
    case ApprovalStatus::approved:
      return "approved";
    case ApprovalStatus::rejected:
      return "rejected";
    case ApprovalStatus::changes_requested:
      return "changes_requested";
    case ApprovalStatus::expired:
      return "expired";
    case ApprovalStatus::failed:
      return "failed";
  }
  return "pending";
}

Json Subject::to_json() const {
  return Json{{"title", title},
              {"text", text},
              {"media", media},
              {"accounts", accounts},
              {"extra", extra}};
}

Result<Subject> Subject::from_json(const Json& json) {
  return read_json<Subject>([&] { return read_subject(json, "subject"); });
}

Json DecisionRecord::to_json() const {
  Json out{{"level", level},
           {"round", round},
           {"actor", actor},
           {"on_behalf_of", on_behalf_of},
           {"verdict", approvals::to_string(verdict)},
           {"comment", comment},
           {"text_revision", text_revision},
           {"idempotency_key", idempotency_key},
           {"channel", approvals::to_string(channel)},
           {"at", format_iso8601(at)}};
  out["edited_text"] = edited_text ? Json(*edited_text) : Json(nullptr);
  return out;
}

Result<DecisionRecord> DecisionRecord::from_json(const Json& json) {
  return read_json<DecisionRecord>([&] { return read_decision(json, "decision"); });
}

Json HistoryEntry::to_json() const {
  return Json{{"at", format_iso8601(at)},
              {"kind", kind},
              {"level", level},
              {"actor", actor},
              {"details", details}};
}

Result<HistoryEntry> HistoryEntry::from_json(const Json& json) {
  return read_json<HistoryEntry>([&] { return read_history(json, "history"); });
}

Json LevelState::to_json() const {
  return Json{{"name", name},
              {"group", group},
              {"stage", stage},
              {"status", approvals::to_string(status)},
              {"mode", mode.to_json()},
              {"approvers", approvers},
              {"eligible", eligible},
              {"notes", notes},
              {"opened_at", optional_time_json(opened_at)},
              {"closed_at", optional_time_json(closed_at)},
              {"deadline", optional_time_json(deadline)},
              {"deadline_step", deadline_step},
              {"reminders_sent", reminders_sent},
              {"escalations", escalations},
              {"closed_by", closed_by}};
}

Result<LevelState> LevelState::from_json(const Json& json) {
  return read_json<LevelState>([&] { return read_level(json, "level"); });
}

const LevelState* ApprovalState::find_level(std::string_view name) const {
  for (const auto& level : levels) {
    if (level.name == name) return &level;
  }
  return nullptr;
}

Json ApprovalState::to_json() const {
  Json levels_json = Json::array();
  for (const auto& level : levels) levels_json.push_back(level.to_json());
  Json decisions_json = Json::array();
  for (const auto& decision : decisions) decisions_json.push_back(decision.to_json());
  Json history_json = Json::array();
  for (const auto& entry : history) history_json.push_back(entry.to_json());
  return Json{{"format", kStateFormat},
              {"id", id},
              {"policy_name", policy_name},
              {"policy_version", policy_version},
              {"chain", chain.to_json()},
              {"chain_file", chain.file},
              {"expressions", expression_places(chain)},
              {"subject", subject.to_json()},
              {"original_text", original_text},
              {"text_revision", text_revision},
              {"submitter", submitter},
              {"status", approvals::to_string(status)},
              {"round", round},
              {"stage", stage},
              {"levels", std::move(levels_json)},
              {"decisions", std::move(decisions_json)},
              {"history", std::move(history_json)},
              {"created_at", format_iso8601(created_at)},
              {"finished_at", optional_time_json(finished_at)},
              {"failure", failure ? failure->to_json() : Json(nullptr)},
              {"revision", revision}};
}

Result<ApprovalState> ApprovalState::from_json(const Json& json) {
  return read_json<ApprovalState>([&] {
    Fields fields(json, "");
    if (fields.integer("format") != kStateFormat) {
      bad("format", "format " + std::to_string(kStateFormat));
    }
    ApprovalState state;
    state.id = fields.string("id");
    state.policy_name = fields.string_or("policy_name", "");
    state.policy_version = static_cast<int>(fields.integer("policy_version"));
    ChainOutcome chain = parse_chain_json(fields.raw("chain"));
    if (!chain.ok()) {
      bad(chain.diagnostics.empty() ? "chain" : "chain." + chain.diagnostics.front().path,
          "a valid chain (" +
              (chain.diagnostics.empty() ? std::string("unreadable")
                                         : chain.diagnostics.front().message) +
              ")");
    }
    state.chain = std::move(*chain.chain);
    state.chain.file = fields.string_or("chain_file", "");
    if (fields.has("expressions")) restore_expression_places(state.chain, json["expressions"]);
    state.subject = read_subject(fields.raw("subject"), "subject");
    state.original_text = fields.string("original_text");
    state.text_revision = static_cast<int>(fields.integer("text_revision"));
    state.submitter = fields.string("submitter");
    state.status = parse_enum(fields.string("status"), "status", kApprovalStatuses,
                              "an approval status");
    state.round = static_cast<int>(fields.integer("round"));
    int64_t stage = fields.integer("stage");
    if (stage < 0) bad("stage", "0 or more");
    state.stage = static_cast<size_t>(stage);
    const Json& levels = fields.array("levels");
    for (size_t i = 0; i < levels.size(); ++i) {
      state.levels.push_back(read_level(levels[i], "levels[" + std::to_string(i) + "]"));
    }
    // The levels must be the chain's, in its order: the state machine pairs them by position.
    size_t index = 0;
    for (size_t s = 0; s < state.chain.stages.size(); ++s) {
      for (const auto& level : state.chain.stages[s].levels) {
        std::string path = "levels[" + std::to_string(index) + "]";
        if (index >= state.levels.size()) bad("levels", "one entry per level of the chain");
        if (state.levels[index].name != level.name || state.levels[index].stage != s) {
          bad(path, "level '" + level.name + "' of stage " + std::to_string(s));
        }
        ++index;
      }
    }
    if (index != state.levels.size()) bad("levels", "one entry per level of the chain");
    const Json& decisions = fields.array("decisions");
    for (size_t i = 0; i < decisions.size(); ++i) {
      state.decisions.push_back(read_decision(decisions[i], "decisions[" + std::to_string(i) + "]"));
    }
    const Json& history = fields.array("history");
    for (size_t i = 0; i < history.size(); ++i) {
      state.history.push_back(read_history(history[i], "history[" + std::to_string(i) + "]"));
    }
    state.created_at = fields.time("created_at");
    state.finished_at = fields.optional_time("finished_at");
    if (fields.has("failure")) state.failure = Error::from_json(json["failure"]);
    int64_t revision = fields.integer("revision");
    if (revision < 0) bad("revision", "0 or more");
    state.revision = static_cast<uint64_t>(revision);
    return state;
  });
}

Json ApprovalResult::to_json() const {
  Json levels = Json::array();
  for (const auto& level : decided_by) {
    Json decisions = Json::array();
    for (const auto& decision : level.decisions) decisions.push_back(decision.to_json());
    levels.push_back(Json{{"level", level.name},
                          {"group", level.group},
                          {"status", approvals::to_string(level.status)},
                          {"decisions", std::move(decisions)},
                          {"opened_at", optional_time_json(level.opened_at)},
                          {"closed_at", optional_time_json(level.closed_at)},
                          {"closed_by", level.closed_by}});
  }
  Json comments_json = Json::array();
  for (const auto& comment : comments) {
    comments_json.push_back(Json{{"level", comment.level},
                                 {"round", comment.round},
                                 {"by", comment.by},
                                 {"on_behalf_of", comment.on_behalf_of},
                                 {"text", comment.text},
                                 {"at", format_iso8601(comment.at)}});
  }
  return Json{{"decision", approvals::to_string(decision)},
              {"text", text},
              {"original_text", original_text},
              {"diff", diff.to_json()},
              {"decided_by", std::move(levels)},
              {"comments", std::move(comments_json)},
              {"rounds", rounds},
              {"started_at", format_iso8601(started_at)},
              {"finished_at", format_iso8601(finished_at)}};
}

}  // namespace herald::approvals
