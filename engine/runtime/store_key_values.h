// The plugins' key-value entries (steps::KeyValueStore) kept in the store, for the runtime and
// `herald plugins call`.
#pragma once

#include "engine/steps/step.h"
#include "engine/store/store.h"

namespace herald::runtime {

class StoreKeyValues final : public steps::KeyValueStore {
 public:
  // At most this many live entries per (workspace, plugin): the store is for cursors and cached
  // tokens, not for a plugin's data.
  static constexpr int64_t kMaxEntries = 10'000;

  explicit StoreKeyValues(store::Store& store) : store_(store) {}

  Result<std::optional<Json>> get(std::string_view workspace_id, std::string_view plugin,
                                  std::string_view key) override;
  Status put(std::string_view workspace_id, std::string_view plugin, std::string_view key,
             const Json& value, std::optional<std::chrono::seconds> ttl) override;
  Result<bool> remove(std::string_view workspace_id, std::string_view plugin,
                      std::string_view key) override;

 private:
  store::Store& store_;
};

}  // namespace herald::runtime
