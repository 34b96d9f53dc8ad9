// EffectLedger: what an idempotent API (Stripe's Idempotency-Key contract) remembers, so the
// crash test can count effects. The first request with a key performs the effect; a repeat gets
// the first answer back and performs nothing. Herald is correct when, after any number of
// kill -9 and restarts, `effect_count()` equals the number of effects the workflows meant to
// cause (a key that changed across a restart would show up as an extra effect) and no key has
// mismatches (a retry that sent different content under the same key).
// Shared by LocalHttpServer and the standalone herald-test-server; thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "engine/common/result.h"

namespace herald::testing {

class EffectLedger {
 public:
  struct Answer {
    int status = 200;
    Json body;
    bool replayed = false;  // a repeat of a key already seen
  };
  struct KeyCount {
    int requests = 0;    // every request that carried the key
    int effects = 0;     // 1 once the key performed its effect
    int mismatches = 0;  // repeats whose method, path or body differed from the first
  };

  // Records one request and says how to answer it. An empty key answers 400 and is counted in
  // without_key().
  Answer apply(std::string_view key, std::string_view method, std::string_view path,
               std::string_view body);

  std::map<std::string, KeyCount> counts() const;
  KeyCount count(std::string_view key) const;  // zeros for an unseen key
  int effect_count() const;                    // distinct effects performed
  int request_count() const;                   // every request, with or without a key
  int without_key() const;
  // Keys in the order their effects happened.
  std::vector<std::string> order() const;
  // {"effects": n, "requests": n, "without_key": n, "mismatches": n,
  //  "keys": {"<key>": {"requests": n, "effects": 1, "mismatches": n}, ...}, "order": [keys]}
  Json stats() const;
  void clear();

 private:
  struct Entry {
    std::string method, path, body;
    Answer answer;
    KeyCount count;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Entry, std::less<>> entries_;
  std::vector<std::string> order_;
  int requests_ = 0;
  int without_key_ = 0;
};

}  // namespace herald::testing
