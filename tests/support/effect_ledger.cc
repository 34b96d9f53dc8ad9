#include "tests/support/effect_ledger.h"

namespace herald::testing {

EffectLedger::Answer EffectLedger::apply(std::string_view key, std::string_view method,
                                         std::string_view path, std::string_view body) {
  std::lock_guard lock(mutex_);
  ++requests_;
  if (key.empty()) {
    ++without_key_;
    return {400, {{"error", "missing Idempotency-Key header"}}, false};
  }
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    Entry entry{std::string(method), std::string(path), std::string(body), {}, {1, 1, 0}};
    Json parsed = Json::parse(body, nullptr, /*allow_exceptions=*/false);
    entry.answer.status = 200;
    entry.answer.body = {{"effect", static_cast<int>(order_.size()) + 1},
                         {"key", key},
                         {"method", method},
                         {"path", path},
                         {"body", parsed.is_discarded() ? Json(body) : parsed}};
    order_.emplace_back(key);
    Answer answer = entry.answer;
    entries_.emplace(std::string(key), std::move(entry));
    return answer;
  }
  Entry& entry = it->second;
  ++entry.count.requests;
  if (entry.method != method || entry.path != path || entry.body != body) {
    ++entry.count.mismatches;
    return {422,
            {{"error",
              "Keys for idempotent requests can only be used with the same parameters "
              "they were first used with"},
             {"key", key}},
            false};
  }
  Answer answer = entry.answer;
  answer.replayed = true;
  return answer;
}

std::map<std::string, EffectLedger::KeyCount> EffectLedger::counts() const {
  std::lock_guard lock(mutex_);
  std::map<std::string, KeyCount> counts;
  for (const auto& [key, entry] : entries_) counts.emplace(key, entry.count);
  return counts;
}

EffectLedger::KeyCount EffectLedger::count(std::string_view key) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  return it == entries_.end() ? KeyCount{} : it->second.count;
}

int EffectLedger::effect_count() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(order_.size());
}

int EffectLedger::request_count() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

int EffectLedger::without_key() const {
  std::lock_guard lock(mutex_);
  return without_key_;
}

std::vector<std::string> EffectLedger::order() const {
  std::lock_guard lock(mutex_);
  return order_;
}

Json EffectLedger::stats() const {
  std::lock_guard lock(mutex_);
  Json keys = Json::object();
  int mismatches = 0;
  for (const auto& [key, entry] : entries_) {
    keys[key] = {{"requests", entry.count.requests},
                 {"effects", entry.count.effects},
                 {"mismatches", entry.count.mismatches}};
    mismatches += entry.count.mismatches;
  }
  return {{"effects", order_.size()}, {"requests", requests_},   {"without_key", without_key_},
          {"mismatches", mismatches}, {"keys", std::move(keys)}, {"order", order_}};
}

void EffectLedger::clear() {
  std::lock_guard lock(mutex_);
  entries_.clear();
  order_.clear();
  requests_ = 0;
  without_key_ = 0;
}

}  // namespace herald::testing
