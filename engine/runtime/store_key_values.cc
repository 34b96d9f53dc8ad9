#include "engine/runtime/store_key_values.h"

namespace herald::runtime {

Result<std::optional<Json>> StoreKeyValues::get(std::string_view workspace_id,
                                                std::string_view plugin, std::string_view key) {
  auto entry = store_.kv_get(workspace_id, plugin, key, store::Clock::now());
  if (!entry.ok()) return std::move(entry).error();
  if (!entry->has_value()) return std::optional<Json>();
  return std::optional<Json>(std::move((*entry)->value));
}

Status StoreKeyValues::put(std::string_view workspace_id, std::string_view plugin,
                           std::string_view key, const Json& value,
                           std::optional<std::chrono::seconds> ttl) {
  store::KvEntry entry;
  entry.workspace_id = std::string(workspace_id);
  entry.plugin = std::string(plugin);
  entry.key = std::string(key);
  entry.value = value;
  entry.updated_at = store::Clock::now();
  if (ttl) entry.expires_at = entry.updated_at + *ttl;
  return store_.kv_put(entry, kMaxEntries);
}

Result<bool> StoreKeyValues::remove(std::string_view workspace_id, std::string_view plugin,
                                    std::string_view key) {
  return store_.kv_delete(workspace_id, plugin, key);
}

}  // namespace herald::runtime
