// Approval chains: the typed model of who must approve what, in which order, with which deadline
// and what happens when it passes; and the parsers that build it from a policy file (YAML or
// JSON text, errors with line and column) or from the JSON of an `approval` step's `with:`.
// Parsing checks everything that can be known without a directory of users: field types,
// approver syntax, durations, Lua syntax of `when:` and `deadline.at`, unique level names,
// quorums larger than a fixed list of people, and on_deadline entries that could never run.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/common/result.h"
#include "engine/model/workflow.h"  // Location, Diagnostic

namespace herald::approvals {

using model::Diagnostic;
using model::Location;

// One entry of a level's `approvers:` list.
struct ApproverRef {
  enum class Kind { user, role, group, email };
  Kind kind = Kind::user;
  std::string name;  // the user id, role, group, or the e-mail address (lower-cased)

  // "user:alice", "role:legal", "group:brand-team", "email:ann@example.com".
  std::string to_string() const;
  // Reads the forms above and a bare e-mail address; the error says what was expected.
  static Result<ApproverRef> parse(std::string_view text);
  bool operator==(const ApproverRef&) const = default;
};

std::string_view to_string(ApproverRef::Kind kind);

// How many of a level's approvers must approve.
struct Mode {
  enum class Kind { any, all, quorum };
  Kind kind = Kind::any;
  int quorum = 0;  // with Kind::quorum: approvals needed, >= 1

  Json to_json() const;  // "any", "all" or {"quorum": N}
  std::string to_string() const;  // "any", "all", "quorum 2"
  bool operator==(const Mode&) const = default;
};

// A Lua expression kept for the caller to evaluate, with where it was written so a run-time
// error can point at it (file:line:column and field path).
struct Expression {
  std::string source;
  std::string path;   // e.g. "chain[1].when"
  Location location;  // 0:0 when the chain came from JSON without locations
  bool empty() const { return source.empty(); }
};

struct Deadline {
  enum class Kind { none, after, at };
  Kind kind = Kind::none;
  std::chrono::milliseconds after{0};  // Kind::after: counted from when the level opens
  Expression at;                       // Kind::at: a Lua expression giving a time
};

// One entry of `on_deadline:`. The entries run in order, one each time the level's deadline
// passes; when the list is used up and the deadline passes again, the level expires.
struct DeadlineStep {
  enum class Kind {
    remind,    // notify the people still to decide and extend by `every`, `times` times
    escalate,  // add (or, with replace, swap in) approvers; a new deadline if `deadline` is set
    approve,   // the level is approved by the deadline
    reject,    // the level is rejected by the deadline
    expire,    // the approval ends with decision `expired`
  };
  Kind kind = Kind::expire;
  // remind
  std::chrono::milliseconds every{0};
  int times = 0;
  // escalate
  std::vector<ApproverRef> approvers;
  bool replace = false;
  std::optional<Mode> mode;  // the level's mode from the escalation on; unset keeps it
  // How long the escalated approvers get before the next entry runs. Unset: the level's own
  // `deadline` duration when it has one, otherwise no further deadline.
  std::optional<std::chrono::milliseconds> deadline;
  std::string path;
};

std::string_view to_string(DeadlineStep::Kind kind);

struct Level {
  std::string name;  // unique in the chain
  std::string description;
  std::vector<ApproverRef> approvers;
  Mode mode;
  Expression when;  // empty: the level always applies
  Deadline deadline;
  std::vector<DeadlineStep> on_deadline;
  std::string path;  // "chain[2]" or "chain[1].parallel[0]"
};

// One position in the chain: a single level, or a parallel group whose levels open together
// and must all pass.
struct Stage {
  bool parallel = false;
  std::string name;  // the level's name, or the group's (given or "group-<n>")
  std::string description;
  std::vector<Level> levels;  // exactly one unless parallel
  std::string path;
};

enum class OnChanges { restart, return_to_caller };
std::string_view to_string(OnChanges on_changes);  // "restart", "return"

struct Chain {
  std::vector<Stage> stages;
  OnChanges on_changes = OnChanges::restart;
  bool allow_self_approval = false;
  std::string file;  // the name its diagnostics used; empty for inline chains

  const Level* find_level(std::string_view name) const;
  size_t level_count() const;

  // {"chain": [...], "on_changes": ..., "allow_self_approval": ...}: the policy format's own
  // JSON, which parse_chain_json reads back to the same chain (expression locations aside).
  Json to_json() const;
};

// A named policy as an admin writes it. The store numbers versions; a file carries none.
struct Policy {
  std::string name;  // ^[a-z0-9][a-z0-9_-]*$, at most 64 characters
  std::string description;
  Chain chain;
  Json to_json() const;  // {"name", "description", "chain", "on_changes", "allow_self_approval"}
};

struct PolicyOutcome {
  std::optional<Policy> policy;  // set when there are no diagnostics
  std::vector<Diagnostic> diagnostics;  // every problem, in file order
  bool ok() const { return policy.has_value() && diagnostics.empty(); }
};

struct ChainOutcome {
  std::optional<Chain> chain;
  std::vector<Diagnostic> diagnostics;
  bool ok() const { return chain.has_value() && diagnostics.empty(); }
};

// A policy file, YAML or JSON. Every problem is reported at once as
// "file:line:column: field.path: message".
PolicyOutcome parse_policy(std::string_view text, std::string_view file_name);

// The chain of an `approval` step: `with` is the step's input object, of which `chain` (required),
// `on_changes` and `allow_self_approval` are read; its other fields belong to the step. Paths in
// diagnostics start with `base_path` (e.g. "steps[3].with"). When `locations` is given (a
// Workflow's `locations`, keyed by full field path), diagnostics carry line and column in `file`.
ChainOutcome parse_chain_json(const Json& with, std::string_view base_path = "",
                              std::string_view file = "",
                              const std::map<std::string, Location>* locations = nullptr);

}  // namespace herald::approvals
