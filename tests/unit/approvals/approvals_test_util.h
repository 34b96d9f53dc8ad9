// Shared pieces of the approval tests: a directory of people held in memory, a fixed clock,
// chains written as YAML, and shorthands for starting and deciding.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/approvals/approval.h"
#include "engine/approvals/chain.h"
#include "engine/approvals/directory.h"

namespace herald::approvals::testing {

using namespace std::chrono_literals;

// 2026-03-02T09:00:00Z, a Monday. Every test states its times relative to it.
inline const TimePoint kT0 = from_epoch_ms(1772442000000);

inline TimePoint at(std::chrono::milliseconds offset) {
  return kT0 + offset;
}

class FakeDirectory : public Directory {
 public:
  FakeDirectory& user(const std::string& id, std::vector<std::string> roles = {}) {
    users_.insert(id);
    for (auto& role : roles) roles_[role].push_back(id);
    return *this;
  }
  FakeDirectory& group(const std::string& name, std::vector<std::string> members) {
    groups_[name] = std::move(members);
    return *this;
  }
  FakeDirectory& delegation(const std::string& from, const std::string& to, TimePoint begin,
                            TimePoint end) {
    delegations_.push_back({from, to, begin, end});
    return *this;
  }
  // Every lookup fails with `error` from now on (a store that cannot be read).
  void fail_with(Error error) { failure_ = std::move(error); }
  void recover() { failure_.reset(); }
  int lookups() const { return lookups_; }

  Result<bool> user_exists(std::string_view user_id) const override {
    ++lookups_;
    if (failure_) return *failure_;
    return users_.count(std::string(user_id)) > 0;
  }
  Result<std::vector<std::string>> users_with_role(std::string_view role) const override {
    ++lookups_;
    if (failure_) return *failure_;
    auto found = roles_.find(std::string(role));
    if (found == roles_.end()) return std::vector<std::string>{};
    return found->second;
  }
  Result<std::optional<std::vector<std::string>>> group_members(
      std::string_view group) const override {
    ++lookups_;
    if (failure_) return *failure_;
    auto found = groups_.find(std::string(group));
    if (found == groups_.end()) return std::optional<std::vector<std::string>>{};
    return std::optional<std::vector<std::string>>(found->second);
  }
  Result<std::optional<std::string>> delegate_of(std::string_view user_id,
                                                 TimePoint when) const override {
    ++lookups_;
    if (failure_) return *failure_;
    for (const auto& d : delegations_) {
      if (d.from == user_id && when >= d.begin && when < d.end) return std::optional(d.to);
    }
    return std::optional<std::string>{};
  }

 private:
  struct Delegation {
    std::string from, to;
    TimePoint begin, end;
  };
  std::set<std::string> users_;
  std::map<std::string, std::vector<std::string>> roles_;
  std::map<std::string, std::vector<std::string>> groups_;
  std::vector<Delegation> delegations_;
  std::optional<Error> failure_;
  mutable int lookups_ = 0;
};

// The people most tests use: alice, bob, carol and dan are editors; erin and frank do legal;
// sam submits; gina and hugo manage.
inline FakeDirectory standard_directory() {
  FakeDirectory directory;
  directory.user("alice", {"editor"})
      .user("bob", {"editor"})
      .user("carol", {"editor"})
      .user("dan", {"editor"})
      .user("erin", {"legal"})
      .user("frank", {"legal"})
      .user("sam", {"editor"})
      .user("gina", {"manager"})
      .user("hugo", {"manager"});
  directory.group("brand-team", {"alice", "bob", "carol"});
  return directory;
}

inline std::string all_diagnostics(const std::vector<Diagnostic>& diagnostics) {
  std::string out;
  for (const auto& d : diagnostics) out += d.to_string() + "\n";
  return out;
}

// `chain_yaml` is the text after "chain:" in a policy file (indented list items).
inline Chain chain_of(const std::string& chain_yaml, const std::string& options = "") {
  std::string text = "name: test\n" + options + "chain:\n" + chain_yaml;
  PolicyOutcome outcome = parse_policy(text, "test.yaml");
  EXPECT_TRUE(outcome.ok()) << all_diagnostics(outcome.diagnostics) << text;
  if (!outcome.ok()) return Chain{};
  return outcome.policy->chain;
}

inline Subject post(std::string text = "Spring menu: oat latte is back, 4 EUR") {
  Subject subject;
  subject.title = "Spring menu";
  subject.text = std::move(text);
  subject.accounts = {"mastodon:@acme"};
  subject.media = Json::array({"media/latte.jpg"});
  return subject;
}

// Builds a DecisionRequest field by field: ask().comment("why").level("legal").
class Ask {
 public:
  Ask& verdict(Verdict value) { request_.verdict = value; return *this; }
  Ask& comment(std::string value) { request_.comment = std::move(value); return *this; }
  Ask& edited_text(std::string value) { request_.edited_text = std::move(value); return *this; }
  Ask& idempotency_key(std::string value) {
    request_.idempotency_key = std::move(value);
    return *this;
  }
  Ask& level(std::string value) { request_.level = std::move(value); return *this; }
  Ask& round(int value) { request_.round = value; return *this; }
  Ask& on_behalf_of(std::string value) { request_.on_behalf_of = std::move(value); return *this; }
  operator DecisionRequest() const { return request_; }

 private:
  DecisionRequest request_;
};
inline Ask ask() { return Ask(); }

// Runs an approval; the test's directory and expression answers are kept with it.
class Harness {
 public:
  explicit Harness(FakeDirectory directory = standard_directory())
      : directory_(std::move(directory)) {
    context_.directory = &directory_;
  }

  FakeDirectory& directory() { return directory_; }
  Context& context() { return context_; }
  ApprovalState& state() { return state_; }
  const std::vector<Event>& events() const { return events_; }

  // Starts `chain` for `subject`, submitted by user:sam at kT0.
  ApprovalState& start(const Chain& chain, Subject subject = post(),
                       std::string submitter = "user:sam", TimePoint now = kT0) {
    StartRequest request;
    request.id = "ap-1";
    request.subject = std::move(subject);
    request.submitter = std::move(submitter);
    request.chain = chain;
    request.policy_name = "test";
    request.policy_version = 3;
    Result<Transition> started = approvals::start(request, now, context_);
    EXPECT_TRUE(started.ok()) << (started.ok() ? "" : started.error().message);
    if (started.ok()) {
      state_ = std::move(started->state);
      events_ = std::move(started->events);
    }
    return state_;
  }

  // Decides and, when recorded, moves the harness on to the new state.
  DecideOutcome decide(const std::string& principal, Verdict verdict, TimePoint now,
                       DecisionRequest request = {}, Channel channel = Channel::app) {
    request.verdict = verdict;
    if (request.comment.empty() && verdict != Verdict::approve) request.comment = "see notes";
    Result<DecideOutcome> outcome =
        approvals::decide(state_, Actor{principal, channel}, request, now, context_);
    EXPECT_TRUE(outcome.ok()) << (outcome.ok() ? "" : outcome.error().message);
    if (!outcome.ok()) return DecideOutcome{};
    if (outcome->state) {
      state_ = *outcome->state;
      events_ = outcome->events;
    }
    return std::move(*outcome);
  }

  DeadlineOutcome tick(TimePoint now) {
    Result<DeadlineOutcome> outcome = approvals::on_deadline(state_, now, context_);
    EXPECT_TRUE(outcome.ok()) << (outcome.ok() ? "" : outcome.error().message);
    if (!outcome.ok()) return DeadlineOutcome{};
    if (outcome->state) {
      state_ = *outcome->state;
      events_ = outcome->events;
    }
    return std::move(*outcome);
  }

  LevelStatus level(const std::string& name) const {
    const LevelState* found = state_.find_level(name);
    EXPECT_NE(found, nullptr) << name;
    return found ? found->status : LevelStatus::pending;
  }

  const LevelState& level_state(const std::string& name) const { return *state_.find_level(name); }

  // The events of the last call with this type.
  std::vector<Event> events_of(const std::string& type) const {
    std::vector<Event> out;
    for (const auto& event : events_) {
      if (event.type == type) out.push_back(event);
    }
    return out;
  }

  std::vector<std::string> history_kinds() const {
    std::vector<std::string> out;
    for (const auto& entry : state_.history) out.push_back(entry.kind);
    return out;
  }

 private:
  FakeDirectory directory_;
  Context context_;
  ApprovalState state_;
  std::vector<Event> events_;
};

inline std::vector<std::string> notified(const Event& event) {
  std::vector<std::string> out;
  for (const auto& entry : event.data.at("notify")) {
    std::string who = entry.at("principal").get<std::string>();
    if (entry.contains("for")) who += " for " + entry.at("for").get<std::string>();
    out.push_back(who);
  }
  return out;
}

}  // namespace herald::approvals::testing
