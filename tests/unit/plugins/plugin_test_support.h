// What the plugin tests share: where the test plugins are built, and a StepContext that records
// log lines and lends secrets, as the runtime's would.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/expr/evaluator.h"
#include "engine/runtime/store_key_values.h"
#include "engine/steps/step.h"
#include "engine/store/store.h"

namespace herald::plugins::testing {

inline std::string test_plugin(const std::string& name) {
  return std::string(HERALD_TEST_PLUGIN_DIR) + "/" + name + ".so";
}

struct CallContext {
  Json secrets = Json::object();
  Json run = {{"id", "run-1"}, {"workspace", "acme"}};
  expr::Scope scope;
  std::atomic<bool> cancelled{false};
  std::mutex mu;
  std::vector<std::string> logs;  // "level: message"
  steps::StepContext context;
  // Plugins' kv entries in a private in-memory SQLite store, or the one `kv_of` gives (to share
  // entries between calls).
  std::shared_ptr<store::Store> store;
  std::unique_ptr<runtime::StoreKeyValues> kv;

  explicit CallContext(std::shared_ptr<store::Store> kv_of = nullptr) : store(std::move(kv_of)) {
    if (!store) store = std::move(store::open_store("sqlite::memory:")).value();
    kv = std::make_unique<runtime::StoreKeyValues>(*store);
    context.kv = kv.get();
    scope.secrets = &secrets;
    scope.run = &run;
    context.run_id = "run-1";
    context.step_id = "post";
    context.attempt = 2;
    context.idempotency_key = "run-1/post";
    context.cancelled = &cancelled;
    context.scope = &scope;
    context.log = [this](std::string_view level, std::string_view message) {
      std::lock_guard lock(mu);
      logs.push_back(std::string(level) + ": " + std::string(message));
    };
  }
};

}  // namespace herald::plugins::testing
