#include "engine/approvals/chain.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "engine/common/duration.h"
#include "engine/expr/evaluator.h"
#include "engine/model/internal/source_map.h"
#include "engine/model/internal/text.h"
#include "engine/model/internal/yaml_loader.h"

namespace herald::approvals {
namespace {

using model::internal::child_path;
using model::internal::closest_name;
using model::internal::describe_value;
using model::internal::DiagnosticList;
using model::internal::index_path;
using model::internal::join;
using model::internal::quote;
using model::internal::SourceMap;

// Far above any policy someone writes by hand; keeps a state (which embeds its chain) small.
constexpr size_t kMaxLevels = 100;
constexpr size_t kMaxApproversPerLevel = 200;
constexpr int kMaxReminders = 100;
constexpr size_t kMaxNameLength = 64;
// Same bound as workflow files: a wrong file (a log, a video) is refused before it is parsed.
constexpr size_t kMaxPolicyBytes = 16u * 1024 * 1024;

const std::vector<std::string> kApproverKinds = {"user", "role", "group", "email"};

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

// Level and group names appear in links, API paths and decisions, so they stay plain.
std::optional<std::string> check_level_name(std::string_view name) {
  if (name.empty()) return "a name must not be empty";
  if (name.size() > kMaxNameLength) return "a name has at most 64 characters";
  if (!std::isalnum(static_cast<unsigned char>(name[0])) ||
      !std::all_of(name.begin(), name.end(), is_name_char)) {
    return quote(name) +
           " is not a valid level name; expected letters, digits, '-' and '_', starting with a "
           "letter or digit";
  }
  return std::nullopt;
}

// Policy names go into URLs (PUT /api/v1/approval-policies/{name}) and CLI arguments.
std::optional<std::string> check_policy_name(std::string_view name) {
  bool valid = !name.empty() && name.size() <= kMaxNameLength &&
               (std::islower(static_cast<unsigned char>(name[0])) ||
                std::isdigit(static_cast<unsigned char>(name[0])));
  for (char c : name) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '_')) {
      valid = false;
    }
  }
  if (valid) return std::nullopt;
  return quote(name) +
         " is not a valid policy name; expected at most 64 lower-case letters, digits, '-' and "
         "'_', starting with a letter or digit";
}

bool is_plain_text(std::string_view text) {
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F) return false;
  }
  return !text.empty();
}

bool looks_like_email(std::string_view address) {
  size_t at = address.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= address.size()) return false;
  if (address.find('@', at + 1) != std::string_view::npos) return false;
  std::string_view domain = address.substr(at + 1);
  size_t dot = domain.find('.');
  if (dot == std::string_view::npos || dot == 0 || domain.back() == '.') return false;
  return is_plain_text(address);
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The parser proper: walks the JSON document alongside the source map and fills the model,
// reporting each problem at its field and carrying on so one pass finds them all.
class ChainBuilder {
 public:
  ChainBuilder(DiagnosticList& diagnostics, const SourceMap& map)
      : diagnostics_(diagnostics), map_(map) {}

  // Reads `chain`, `on_changes` and `allow_self_approval` from `owner` (a policy document or a
  // step's `with:`).
  Chain build_chain(const Json& owner, const std::string& base) {
    Chain chain;
    std::string chain_path = child_path(base, "chain");
    if (!owner.contains("chain")) {
      diagnostics_.at_value(base, "missing field 'chain'; expected a list of levels");
    } else {
      const Json& list = owner["chain"];
      if (!list.is_array()) {
        diagnostics_.at_value(chain_path,
                              "expected a list of levels, got " + describe_value(list));
      } else if (list.empty()) {
        diagnostics_.at_value(chain_path, "the chain is empty; expected at least one level");
      } else {
        for (size_t i = 0; i < list.size(); ++i) {
          if (auto stage = build_stage(list[i], index_path(chain_path, i), i)) {
            chain.stages.push_back(std::move(*stage));
          }
        }
      }
    }
    if (owner.contains("on_changes")) {
      const Json& value = owner["on_changes"];
      std::string path = child_path(base, "on_changes");
      if (value == "restart") {
        chain.on_changes = OnChanges::restart;
      } else if (value == "return") {
        chain.on_changes = OnChanges::return_to_caller;
      } else {
        diagnostics_.at_value(path, "expected restart or return, got " + describe_value(value));
      }
    }
    if (owner.contains("allow_self_approval")) {
      const Json& value = owner["allow_self_approval"];
      if (value.is_boolean()) {
        chain.allow_self_approval = value.get<bool>();
      } else {
        diagnostics_.at_value(child_path(base, "allow_self_approval"),
                              "expected true or false, got " + describe_value(value));
      }
    }
    check_names(chain);
    if (level_total_ > kMaxLevels) {
      diagnostics_.at_value(chain_path, "the chain has " + std::to_string(level_total_) +
                                            " levels; expected at most " +
                                            std::to_string(kMaxLevels));
    }
    return chain;
  }

  // Fields other than the known ones are errors, with a "did you mean" when one is close.
  void check_fields(const Json& object, const std::string& path,
                    const std::vector<std::string>& allowed, std::string_view what) {
    for (const auto& [key, value] : object.items()) {
      if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
      std::string message = "unknown field " + quote(key) + " in " + std::string(what) + ";";
      if (auto close = closest_name(key, allowed)) message += " did you mean '" + *close + "'?";
      message += " allowed fields: " + join(allowed, ", ");
      diagnostics_.at_key(child_path(path, key), message);
    }
  }

  std::optional<std::string> read_string(const Json& object, const std::string& path,
                                         std::string_view key) {
    if (!object.contains(key)) return std::nullopt;
    const Json& value = object[std::string(key)];
    if (value.is_string()) return value.get<std::string>();
    diagnostics_.at_value(child_path(path, key), "expected a string, got " + describe_value(value));
    return std::nullopt;
  }

 private:
  std::optional<Stage> build_stage(const Json& item, const std::string& path, size_t index) {
    if (!item.is_object()) {
      diagnostics_.at_value(path, "expected a level (a mapping with approvers) or a parallel "
                                  "group (a mapping with parallel:), got " +
                                      describe_value(item));
      return std::nullopt;
    }
    Stage stage;
    stage.path = path;
    if (!item.contains("parallel")) {
      auto level = build_level(item, path, "level-" + std::to_string(index + 1));
      if (!level) return std::nullopt;
      stage.name = level->name;
      stage.levels.push_back(std::move(*level));
      return stage;
    }
    stage.parallel = true;
    check_fields(item, path, {"description", "name", "parallel"}, "parallel group");
    stage.name = read_string(item, path, "name").value_or("group-" + std::to_string(index + 1));
    stage.description = read_string(item, path, "description").value_or("");
    std::string list_path = child_path(path, "parallel");
    const Json& list = item["parallel"];
    if (!list.is_array() || list.empty()) {
      diagnostics_.at_value(list_path, "expected a non-empty list of levels, got " +
                                           describe_value(list));
      return stage;
    }
    for (size_t j = 0; j < list.size(); ++j) {
      std::string level_path = index_path(list_path, j);
      if (list[j].is_object() && list[j].contains("parallel")) {
        diagnostics_.at_key(child_path(level_path, "parallel"),
                            "a parallel group cannot hold another parallel group; expected "
                            "levels");
        continue;
      }
      if (!list[j].is_object()) {
        diagnostics_.at_value(level_path,
                              "expected a level (a mapping with approvers), got " +
                                  describe_value(list[j]));
        continue;
      }
      if (auto level = build_level(list[j], level_path, stage.name + "-" + std::to_string(j + 1))) {
        stage.levels.push_back(std::move(*level));
      }
    }
    return stage;
  }

  std::optional<Level> build_level(const Json& item, const std::string& path,
                                   std::string default_name) {
    ++level_total_;
    check_fields(item, path,
                 {"approvers", "deadline", "description", "mode", "name", "on_deadline", "when"},
                 "level");
    Level level;
    level.path = path;
    level.name = read_string(item, path, "name").value_or(std::move(default_name));
    level.description = read_string(item, path, "description").value_or("");
    std::string approvers_path = child_path(path, "approvers");
    if (!item.contains("approvers")) {
      diagnostics_.at_value(path, "missing field 'approvers'; expected a list such as "
                                  "[user:alice, role:legal, group:brand-team, ann@example.com]");
    } else {
      level.approvers = build_approvers(item["approvers"], approvers_path);
    }
    if (item.contains("mode")) {
      if (auto mode = build_mode(item["mode"], child_path(path, "mode"))) {
        level.mode = *mode;
        check_quorum_size(level.mode, level.approvers, child_path(path, "mode"));
      }
    }
    if (auto when = read_string(item, path, "when")) {
      level.when = expression(*when, child_path(path, "when"));
    }
    if (item.contains("deadline")) {
      level.deadline = build_deadline(item["deadline"], child_path(path, "deadline"));
    }
    if (item.contains("on_deadline")) {
      std::string on_path = child_path(path, "on_deadline");
      level.on_deadline = build_on_deadline(item["on_deadline"], on_path, level);
      if (!item.contains("deadline")) {
        diagnostics_.at_key(on_path, "on_deadline needs a deadline; add deadline: 24h (a "
                                     "duration) or deadline: { at: \"<Lua expression>\" }");
      }
    }
    return level;
  }

  std::vector<ApproverRef> build_approvers(const Json& value, const std::string& path) {
    std::vector<ApproverRef> approvers;
    auto add = [&](const Json& entry, const std::string& entry_path) {
      // In a [flow list] YAML reads `role:` or `user: alice` as a one-entry mapping; speak
      // about what was typed rather than about a mapping nobody meant to write.
      if (entry.is_object() && entry.size() == 1) {
        const std::string& kind = entry.begin().key();
        const Json& name = entry.begin().value();
        if (name.is_null()) {
          diagnostics_.at_value(entry_path,
                                "approver " + quote(kind + ":") + " names nobody; expected "
                                "user:NAME, role:NAME, group:NAME or an e-mail address");
          return;
        }
        if (name.is_string()) {
          diagnostics_.at_value(entry_path, "write " + quote(kind + ":" + name.get<std::string>()) +
                                                " without a space after the colon (YAML reads "
                                                "'" + kind + ": ...' as a mapping)");
          return;
        }
      }
      if (!entry.is_string()) {
        diagnostics_.at_value(entry_path, "expected an approver such as user:alice, role:legal, "
                                          "group:brand-team or ann@example.com, got " +
                                              describe_value(entry));
        return;
      }
      Result<ApproverRef> parsed = ApproverRef::parse(entry.get_ref<const std::string&>());
      if (!parsed.ok()) {
        diagnostics_.at_value(entry_path, parsed.error().message);
        return;
      }
      approvers.push_back(std::move(*parsed));
    };
    if (value.is_string()) {
      add(value, path);  // a single approver written without a list
    } else if (!value.is_array()) {
      diagnostics_.at_value(path, "expected a list of approvers, got " + describe_value(value));
    } else if (value.empty()) {
      diagnostics_.at_value(path, "the list of approvers is empty; expected at least one");
    } else if (value.size() > kMaxApproversPerLevel) {
      diagnostics_.at_value(path, "expected at most " + std::to_string(kMaxApproversPerLevel) +
                                      " approver entries; use a role or a group");
    } else {
      for (size_t i = 0; i < value.size(); ++i) add(value[i], index_path(path, i));
    }
    return approvers;
  }

  std::optional<Mode> build_mode(const Json& value, const std::string& path) {
    if (value == "any") return Mode{Mode::Kind::any, 0};
    if (value == "all") return Mode{Mode::Kind::all, 0};
    if (value.is_object() && value.size() == 1 && value.contains("quorum")) {
      const Json& n = value["quorum"];
      std::string n_path = child_path(path, "quorum");
      if (!n.is_number_integer() || n.get<int64_t>() < 1 || n.get<int64_t>() > 1000) {
        diagnostics_.at_value(n_path, "expected a whole number of approvals from 1 to 1000, got " +
                                          describe_value(n));
        return std::nullopt;
      }
      return Mode{Mode::Kind::quorum, static_cast<int>(n.get<int64_t>())};
    }
    if (value.is_string() && value.get_ref<const std::string&>().rfind("quorum", 0) == 0) {
      diagnostics_.at_value(path, "write a quorum as a mapping: mode: { quorum: 2 }");
      return std::nullopt;
    }
    diagnostics_.at_value(path, "expected any, all or { quorum: N }, got " + describe_value(value));
    return std::nullopt;
  }

  // A quorum larger than a list of named people can never be reached; with roles and groups the
  // count is only known when the level opens (and checked then).
  void check_quorum_size(const Mode& mode, const std::vector<ApproverRef>& approvers,
                         const std::string& path) {
    if (mode.kind != Mode::Kind::quorum || approvers.empty()) return;
    std::set<std::string> people;
    for (const auto& approver : approvers) {
      if (approver.kind == ApproverRef::Kind::role || approver.kind == ApproverRef::Kind::group) {
        return;
      }
      people.insert(approver.to_string());
    }
    if (people.size() < static_cast<size_t>(mode.quorum)) {
      diagnostics_.at_value(path, "quorum " + std::to_string(mode.quorum) + " can never be "
                                  "reached: only " + std::to_string(people.size()) +
                                  " distinct approvers are listed");
    }
  }

  Expression expression(std::string source, const std::string& path) {
    Expression out{std::move(source), path, map_.value(path)};
    if (out.source.empty()) {
      diagnostics_.at_value(path, "the expression is empty; expected Lua, e.g. "
                                  "subject.accounts[1] == \"legal-watch\"");
    } else if (auto error = expr::check_expression(out.source)) {
      diagnostics_.at_value(path, "invalid Lua expression: " + *error);
    }
    return out;
  }

  std::optional<std::chrono::milliseconds> duration(const Json& value, const std::string& path) {
    if (!value.is_string()) {
      diagnostics_.at_value(path, "expected a duration such as 4h or 1d12h, got " +
                                      describe_value(value));
      return std::nullopt;
    }
    Result<std::chrono::milliseconds> parsed = parse_duration(value.get<std::string>());
    if (!parsed.ok()) {
      diagnostics_.at_value(path, parsed.error().message);
      return std::nullopt;
    }
    if (parsed->count() <= 0) {
      diagnostics_.at_value(path, "expected a duration of more than zero");
      return std::nullopt;
    }
    return *parsed;
  }

  Deadline build_deadline(const Json& value, const std::string& path) {
    Deadline deadline;
    if (value.is_string()) {
      if (auto after = duration(value, path)) {
        deadline.kind = Deadline::Kind::after;
        deadline.after = *after;
      }
      return deadline;
    }
    if (value.is_object()) {
      check_fields(value, path, {"at"}, "deadline");
      if (!value.contains("at")) {
        diagnostics_.at_value(path, "missing field 'at'; expected deadline: { at: \"<Lua "
                                    "expression giving a time>\" } or a duration such as 24h");
        return deadline;
      }
      if (auto at = read_string(value, path, "at")) {
        deadline.kind = Deadline::Kind::at;
        deadline.at = expression(*at, child_path(path, "at"));
      }
      return deadline;
    }
    diagnostics_.at_value(path, "expected a duration such as 24h or { at: \"<Lua expression>\" }, "
                                "got " + describe_value(value));
    return deadline;
  }

  std::vector<DeadlineStep> build_on_deadline(const Json& value, const std::string& path,
                                              const Level& level) {
    std::vector<DeadlineStep> steps;
    std::vector<std::string> paths;
    if (value.is_array()) {
      if (value.empty()) {
        diagnostics_.at_value(path, "the list is empty; expected at least one action");
      }
      for (size_t i = 0; i < value.size(); ++i) {
        std::string item_path = index_path(path, i);
        if (auto step = build_deadline_step(value[i], item_path)) steps.push_back(std::move(*step));
      }
    } else if (auto step = build_deadline_step(value, path)) {
      steps.push_back(std::move(*step));
    }
    for (size_t i = 0; i + 1 < steps.size(); ++i) {
      const DeadlineStep& step = steps[i];
      const DeadlineStep& next = steps[i + 1];
      if (step.kind == DeadlineStep::Kind::approve || step.kind == DeadlineStep::Kind::reject ||
          step.kind == DeadlineStep::Kind::expire) {
        diagnostics_.at_value(next.path, "this never runs: '" + std::string(to_string(step.kind)) +
                                             "' before it ends the level; put it last");
        break;
      }
      if (step.kind == DeadlineStep::Kind::escalate && !step.deadline &&
          level.deadline.kind != Deadline::Kind::after) {
        diagnostics_.at_value(step.path,
                              "the entries after this escalation never run: with a deadline "
                              "that is a time (deadline.at) the escalated approvers need their "
                              "own window; add deadline: <duration> here");
      }
    }
    return steps;
  }

  std::optional<DeadlineStep> build_deadline_step(const Json& value, const std::string& path) {
    DeadlineStep step;
    step.path = path;
    static const std::vector<std::string> kActions = {"approve", "escalate", "expire", "reject",
                                                      "remind"};
    if (value.is_string()) {
      const std::string& name = value.get_ref<const std::string&>();
      if (name == "approve") step.kind = DeadlineStep::Kind::approve;
      else if (name == "reject") step.kind = DeadlineStep::Kind::reject;
      else if (name == "expire") step.kind = DeadlineStep::Kind::expire;
      else if (name == "remind" || name == "escalate") {
        diagnostics_.at_value(path, "'" + name + "' needs settings: " +
                                        (name == "remind"
                                             ? "remind: { every: 4h, times: 2 }"
                                             : "escalate: [role:manager]"));
        return std::nullopt;
      } else {
        std::string message = "unknown action " + quote(name);
        if (auto close = closest_name(name, kActions)) message += "; did you mean '" + *close + "'?";
        diagnostics_.at_value(path, message + " expected approve, reject, expire, "
                                              "remind: {...} or escalate: [...]");
        return std::nullopt;
      }
      return step;
    }
    if (!value.is_object()) {
      diagnostics_.at_value(path, "expected an action (approve, reject, expire, remind: {...}, "
                                  "escalate: [...]), got " + describe_value(value));
      return std::nullopt;
    }
    if (value.contains("remind")) {
      step.kind = DeadlineStep::Kind::remind;
      check_fields(value, path, {"remind"}, "remind action");
      std::string remind_path = child_path(path, "remind");
      const Json& remind = value["remind"];
      if (!remind.is_object()) {
        diagnostics_.at_value(remind_path, "expected { every: 4h, times: 2 }, got " +
                                               describe_value(remind));
        return std::nullopt;
      }
      check_fields(remind, remind_path, {"every", "times"}, "remind");
      bool complete = true;
      if (!remind.contains("every")) {
        diagnostics_.at_value(remind_path, "missing field 'every'; expected how long each "
                                           "reminder extends the deadline, e.g. every: 4h");
        complete = false;
      } else if (auto every = duration(remind["every"], child_path(remind_path, "every"))) {
        step.every = *every;
      } else {
        complete = false;
      }
      step.times = 1;
      if (remind.contains("times")) {
        const Json& times = remind["times"];
        if (!times.is_number_integer() || times.get<int64_t>() < 1 ||
            times.get<int64_t>() > kMaxReminders) {
          diagnostics_.at_value(child_path(remind_path, "times"),
                                "expected a whole number of reminders from 1 to " +
                                    std::to_string(kMaxReminders) + ", got " +
                                    describe_value(times));
          complete = false;
        } else {
          step.times = static_cast<int>(times.get<int64_t>());
        }
      }
      if (!complete) return std::nullopt;
      return step;
    }
    if (value.contains("escalate")) {
      step.kind = DeadlineStep::Kind::escalate;
      check_fields(value, path, {"deadline", "escalate", "mode", "replace"}, "escalate action");
      step.approvers = build_approvers(value["escalate"], child_path(path, "escalate"));
      if (value.contains("replace")) {
        const Json& replace = value["replace"];
        if (replace.is_boolean()) {
          step.replace = replace.get<bool>();
        } else {
          diagnostics_.at_value(child_path(path, "replace"),
                                "expected true or false, got " + describe_value(replace));
        }
      }
      if (value.contains("mode")) {
        step.mode = build_mode(value["mode"], child_path(path, "mode"));
        if (step.mode && step.replace) {
          check_quorum_size(*step.mode, step.approvers, child_path(path, "mode"));
        }
      }
      if (value.contains("deadline")) {
        step.deadline = duration(value["deadline"], child_path(path, "deadline"));
      }
      return step;
    }
    std::string message = "expected an action: approve, reject, expire, remind: {...} or "
                          "escalate: [...]";
    for (const auto& [key, unused] : value.items()) {
      if (auto close = closest_name(key, kActions)) {
        message = "unknown action " + quote(key) + "; did you mean '" + *close + "'? " + message;
        diagnostics_.at_key(child_path(path, key), message);
        return std::nullopt;
      }
    }
    diagnostics_.at_value(path, message);
    return std::nullopt;
  }

  // Names identify levels in decisions, links and the API, so they must be valid and unique.
  void check_names(const Chain& chain) {
    std::map<std::string, std::string> seen;  // name -> path of its first use
    auto check = [&](const std::string& name, const std::string& path) {
      std::string name_path = child_path(path, "name");
      if (auto problem = check_level_name(name)) {
        diagnostics_.at_value(name_path, *problem);
        return;
      }
      auto [it, inserted] = seen.emplace(name, path);
      if (!inserted) {
        diagnostics_.at_value(name_path, "the name " + quote(name) + " is already used by " +
                                             it->second + "; expected each level and group "
                                                          "to have its own name");
      }
    };
    for (const auto& stage : chain.stages) {
      if (stage.parallel) check(stage.name, stage.path);
      for (const auto& level : stage.levels) check(level.name, level.path);
    }
  }

  DiagnosticList& diagnostics_;
  const SourceMap& map_;
  size_t level_total_ = 0;
};

// The YAML reader is engine/model's, so its few messages about the whole document speak of a
// workflow; an admin loading a policy should read about a policy.
std::string policy_wording(std::string message) {
  if (message.rfind("the file is empty", 0) == 0) {
    return "the file is empty; expected an approval policy: a mapping with name and chain";
  }
  if (message.rfind("a second YAML document", 0) == 0) {
    return "a second YAML document starts here; expected one policy per file";
  }
  for (const auto& [from, to] : {std::pair<std::string_view, std::string_view>{
                                     "a workflow of ordinary size", "a policy of ordinary size"},
                                 {"a workflow file", "a policy file"}}) {
    if (auto at = message.find(from); at != std::string::npos) {
      message.replace(at, from.size(), to);
    }
  }
  return message;
}

Json approver_list_json(const std::vector<ApproverRef>& approvers) {
  Json out = Json::array();
  for (const auto& approver : approvers) out.push_back(approver.to_string());
  return out;
}

Json level_json(const Level& level) {
  Json out = Json::object();
  out["name"] = level.name;
  if (!level.description.empty()) out["description"] = level.description;
  out["approvers"] = approver_list_json(level.approvers);
  out["mode"] = level.mode.to_json();
  if (!level.when.empty()) out["when"] = level.when.source;
  if (level.deadline.kind == Deadline::Kind::after) {
    out["deadline"] = format_duration(level.deadline.after);
  } else if (level.deadline.kind == Deadline::Kind::at) {
    out["deadline"] = Json{{"at", level.deadline.at.source}};
  }
  if (!level.on_deadline.empty()) {
    Json steps = Json::array();
    for (const auto& step : level.on_deadline) {
      switch (step.kind) {
        case DeadlineStep::Kind::remind:
          steps.push_back(
              Json{{"remind", {{"every", format_duration(step.every)}, {"times", step.times}}}});
          break;
        case DeadlineStep::Kind::escalate: {
          Json escalate{{"escalate", approver_list_json(step.approvers)},
                        {"replace", step.replace}};
          if (step.mode) escalate["mode"] = step.mode->to_json();
          if (step.deadline) escalate["deadline"] = format_duration(*step.deadline);
          steps.push_back(std::move(escalate));
          break;
        }
        default:
          steps.push_back(std::string(to_string(step.kind)));
      }
    }
    out["on_deadline"] = std::move(steps);
  }
  return out;
}

}  // namespace

std::string_view to_string(ApproverRef::Kind kind) {
  switch (kind) {
    case ApproverRef::Kind::user:
      return "user";
    case ApproverRef::Kind::role:
      return "role";
    case ApproverRef::Kind::group:
      return "group";
    case ApproverRef::Kind::email:
      return "email";
  }
  return "user";
}

std::string ApproverRef::to_string() const {
  return std::string(approvals::to_string(kind)) + ":" + name;
}

Result<ApproverRef> ApproverRef::parse(std::string_view text) {
  auto invalid = [](std::string message) {
    return make_error(ErrorCode::invalid_argument, std::move(message));
  };
  const std::string expected =
      "expected user:NAME, role:NAME, group:NAME, email:ADDRESS or an e-mail address";
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    if (text.find('@') != std::string_view::npos) {
      if (!looks_like_email(text)) return invalid(quote(text) + " is not a valid e-mail address");
      return ApproverRef{Kind::email, lower(text)};
    }
    return invalid("approver " + quote(text) + " has no kind; " + expected);
  }
  std::string kind_text(text.substr(0, colon));
  std::string_view name = text.substr(colon + 1);
  ApproverRef ref;
  if (kind_text == "user") ref.kind = Kind::user;
  else if (kind_text == "role") ref.kind = Kind::role;
  else if (kind_text == "group") ref.kind = Kind::group;
  else if (kind_text == "email") ref.kind = Kind::email;
  else {
    std::string message = "unknown approver kind " + quote(kind_text);
    if (auto close = closest_name(kind_text, kApproverKinds)) {
      message += "; did you mean '" + *close + ":" + std::string(name) + "'?";
    }
    return invalid(message + " " + expected);
  }
  if (name.empty()) return invalid("approver " + quote(text) + " names nobody; " + expected);
  if (ref.kind == Kind::email) {
    if (!looks_like_email(name)) return invalid(quote(name) + " is not a valid e-mail address");
    ref.name = lower(name);
    return ref;
  }
  if (!is_plain_text(name)) {
    return invalid("approver " + quote(text) + " holds spaces or control characters; " +
                   expected);
  }
  ref.name = std::string(name);
  return ref;
}

Json Mode::to_json() const {
  switch (kind) {
    case Kind::any:
      return "any";
    case Kind::all:
      return "all";
    case Kind::quorum:
      return Json{{"quorum", quorum}};
  }
  return "any";
}

std::string Mode::to_string() const {
  if (kind == Kind::quorum) return "quorum " + std::to_string(quorum);
  return kind == Kind::all ? "all" : "any";
}

std::string_view to_string(DeadlineStep::Kind kind) {
  switch (kind) {
    case DeadlineStep::Kind::remind:
      return "remind";
    case DeadlineStep::Kind::escalate:
      return "escalate";
    case DeadlineStep::Kind::approve:
      return "approve";
    case DeadlineStep::Kind::reject:
      return "reject";
    case DeadlineStep::Kind::expire:
      return "expire";
  }
  return "expire";
}

std::string_view to_string(OnChanges on_changes) {
  return on_changes == OnChanges::restart ? "restart" : "return";
}

const Level* Chain::find_level(std::string_view name) const {
  for (const auto& stage : stages) {
    for (const auto& level : stage.levels) {
      if (level.name == name) return &level;
    }
  }
  return nullptr;
}

size_t Chain::level_count() const {
  size_t count = 0;
  for (const auto& stage : stages) count += stage.levels.size();
  return count;
}

Json Chain::to_json() const {
  Json list = Json::array();
  for (const auto& stage : stages) {
    if (!stage.parallel) {
      list.push_back(level_json(stage.levels.front()));
      continue;
    }
    Json group{{"name", stage.name}};
    if (!stage.description.empty()) group["description"] = stage.description;
    Json levels = Json::array();
    for (const auto& level : stage.levels) levels.push_back(level_json(level));
    group["parallel"] = std::move(levels);
    list.push_back(std::move(group));
  }
  return Json{{"chain", std::move(list)},
              {"on_changes", std::string(approvals::to_string(on_changes))},
              {"allow_self_approval", allow_self_approval}};
}

Json Policy::to_json() const {
  Json out = chain.to_json();
  out["name"] = name;
  out["description"] = description;
  return out;
}

PolicyOutcome parse_policy(std::string_view text, std::string_view file_name) {
  SourceMap map;
  DiagnosticList diagnostics(std::string(file_name), &map);
  PolicyOutcome outcome;
  try {
    if (text.size() > kMaxPolicyBytes) {
      diagnostics.add(Location{1, 1}, "",
                      "the file is " + std::to_string(text.size()) +
                          " bytes; expected a policy of at most 16 MiB");
      outcome.diagnostics = diagnostics.take_sorted();
      return outcome;
    }
    // A byte order mark is invisible in editors; skip it rather than report it.
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
    model::internal::LineIndex lines(text);
    if (auto bad = model::internal::find_bad_byte(text)) {
      diagnostics.add(lines.location_of(bad->offset), "", policy_wording(bad->message));
      outcome.diagnostics = diagnostics.take_sorted();
      return outcome;
    }
    DiagnosticList load_diagnostics(std::string(file_name), &map);
    std::optional<Json> document = model::internal::load_yaml(text, lines, map, load_diagnostics);
    for (auto& d : load_diagnostics.take_sorted()) {
      diagnostics.add(d.location, d.path, policy_wording(std::move(d.message)));
    }
    if (document && !document->is_object()) {
      diagnostics.at_value("", "expected a policy: a mapping with name and chain, got " +
                                   describe_value(*document));
    } else if (document) {
      ChainBuilder builder(diagnostics, map);
      builder.check_fields(*document, "",
                           {"allow_self_approval", "chain", "description", "name", "on_changes"},
                           "policy");
      Policy policy;
      if (!document->contains("name")) {
        diagnostics.at_value("", "missing field 'name'; expected the policy's name, e.g. "
                                 "name: regulated-posts");
      } else if (auto name = builder.read_string(*document, "", "name")) {
        if (auto problem = check_policy_name(*name)) diagnostics.at_value("name", *problem);
        policy.name = *name;
      }
      policy.description = builder.read_string(*document, "", "description").value_or("");
      policy.chain = builder.build_chain(*document, "");
      policy.chain.file = std::string(file_name);
      if (diagnostics.empty()) outcome.policy = std::move(policy);
    }
  } catch (const std::exception& e) {
    // A bug in a check must not take the server down with a policy upload; say so instead.
    diagnostics.add(Location{}, "", std::string("internal error while checking the policy: ") +
                                        e.what());
    outcome.policy.reset();
  }
  outcome.diagnostics = diagnostics.take_sorted();
  return outcome;
}

ChainOutcome parse_chain_json(const Json& with, std::string_view base_path, std::string_view file,
                              const std::map<std::string, Location>* locations) {
  SourceMap map;
  if (locations) map.values = *locations;
  DiagnosticList diagnostics(std::string(file), &map);
  ChainOutcome outcome;
  std::string base(base_path);
  if (!with.is_object()) {
    diagnostics.at_value(base, "expected a mapping with chain, got " + describe_value(with));
  } else {
    ChainBuilder builder(diagnostics, map);
    Chain chain = builder.build_chain(with, base);
    chain.file = std::string(file);
    if (diagnostics.empty()) outcome.chain = std::move(chain);
  }
  outcome.diagnostics = diagnostics.take_sorted();
  return outcome;
}

}  // namespace herald::approvals
