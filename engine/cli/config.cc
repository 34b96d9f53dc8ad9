#include "engine/cli/config.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include <yaml-cpp/yaml.h>

#include "engine/common/duration.h"

extern char** environ;

namespace herald::cli {

namespace {

Error config_error(const std::string& file, const YAML::Mark& mark, const std::string& message) {
  return make_error(ErrorCode::invalid_argument, file + ":" + std::to_string(mark.line + 1) + ":" +
                                                     std::to_string(mark.column + 1) + ": " + message);
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

// A YAML value as JSON, with plain scalars read as the workflow loader reads them (the YAML 1.2
// core schema: `yes` and `on` stay text) and quoted ones always as strings, so that a channel's
// `with:` in herald.yaml means what the same text means in a workflow's `with:`.
Json yaml_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return nullptr;
    case YAML::NodeType::Sequence: {
      Json list = Json::array();
      for (const auto& item : node) list.push_back(yaml_to_json(item));
      return list;
    }
    case YAML::NodeType::Map: {
      Json map = Json::object();
      for (const auto& entry : node)
        map[entry.first.as<std::string>()] = yaml_to_json(entry.second);
      return map;
    }
    case YAML::NodeType::Scalar:
      break;
  }
  const std::string& text = node.Scalar();
  if (node.Tag() == "!") return text;  // quoted or block scalar
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
    return nullptr;
  }
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  const char* begin = text.data() + (text[0] == '+' ? 1 : 0);
  const char* end = text.data() + text.size();
  int64_t integer = 0;
  if (auto [at, error] = std::from_chars(begin, end, integer); error == std::errc() && at == end) {
    return integer;
  }
  // Only decimal numbers: "inf" and "nan" are text in YAML (its own are .inf and .nan).
  bool numeric = std::isdigit(static_cast<unsigned char>(*begin)) || *begin == '-' || *begin == '.';
  double real = 0;
  if (auto [at, error] = std::from_chars(begin, end, real);
      numeric && error == std::errc() && at == end && std::isfinite(real)) {
    return real;
  }
  return text;
}

// notify.channels: {name: {uses: STEP, with: {...}}}. Whether STEP is loaded is checked when the
// step registry is built (the plugins are not loaded yet here).
Status read_notify(const std::string& path, const YAML::Node& notify, Config& config) {
  if (!notify.IsMap()) {
    return config_error(path, notify.Mark(), "notify: expected a map with `channels`");
  }
  for (const auto& entry : notify) {
    if (entry.first.as<std::string>() != "channels") {
      return config_error(
          path, entry.first.Mark(),
          "unknown setting 'notify." + entry.first.as<std::string>() + "'; known: notify.channels");
    }
  }
  YAML::Node channels = notify["channels"];
  if (!channels || channels.IsNull()) return {};
  if (!channels.IsMap()) {
    return config_error(path, channels.Mark(),
                        "notify.channels: expected a map of channel names to {uses, with}");
  }
  for (const auto& entry : channels) {
    const std::string name = entry.first.as<std::string>();
    const std::string field = "notify.channels." + name;
    auto fail = [&](const YAML::Mark& mark, const std::string& problem) {
      return config_error(path, mark, field + ": " + problem);
    };
    if (name == "log") {
      return fail(entry.first.Mark(),
                  "'log' is the run's log, which is always there; choose another name");
    }
    bool valid_name = !name.empty() && name.size() <= 64 &&
                      std::isalpha(static_cast<unsigned char>(name[0])) &&
                      std::all_of(name.begin(), name.end(), [](char c) {
                        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
                      });
    if (!valid_name) {
      return fail(entry.first.Mark(),
                  "a channel name is letters, digits, '_' and '-', starting with a letter (at "
                  "most 64)");
    }
    const YAML::Node& spec = entry.second;
    if (!spec.IsMap()) {
      return fail(spec.Mark(),
                  "expected {uses: STEP, with: {...}}, e.g. { uses: slack.post, with: { "
                  "url_secret: SLACK_OPS_URL } }");
    }
    for (const auto& setting : spec) {
      const std::string key = setting.first.as<std::string>();
      if (key != "uses" && key != "with") {
        return config_error(path, setting.first.Mark(),
                            "unknown setting '" + field + "." + key + "'; known: uses, with");
      }
    }
    YAML::Node uses = spec["uses"];
    if (!uses || !uses.IsScalar() || uses.Scalar().empty()) {
      return config_error(path, uses ? uses.Mark() : spec.Mark(),
                          field + ".uses: expected the step type that sends, e.g. slack.post");
    }
    YAML::Node with = spec["with"];
    if (with && !with.IsNull() && !with.IsMap()) {
      return config_error(path, with.Mark(),
                          field + ".with: expected a map of the step's settings");
    }
    config.notify_channels[name] = {
        {"uses", uses.Scalar()},
        {"with", with && with.IsMap() ? yaml_to_json(with) : Json::object()}};
  }
  return {};
}

Status read_file(const std::string& path, Config& config) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::ParserException& e) {
    return config_error(path, e.mark, e.msg);
  } catch (const YAML::Exception& e) {
    return make_error(ErrorCode::invalid_argument, path + ": " + e.what());
  }
  if (root.IsNull()) return {};
  if (!root.IsMap()) return config_error(path, root.Mark(), "expected a map of settings");
  static const std::vector<std::string> known = {
      "data_dir", "store",     "workers",        "env_allow", "lua",
      "listen",   "log_level", "max_body_bytes", "plugins",   "notify",
      "public_url", "approvals", "engine"};
  for (const auto& entry : root) {
    auto key = entry.first.as<std::string>();
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return config_error(
          path, entry.first.Mark(),
          "unknown setting '" + key +
              "'; known: data_dir, store, workers, env_allow, lua, listen, log_level, "
              "max_body_bytes, plugins, notify, public_url, approvals, engine");
    }
  }
  try {
    if (root["data_dir"]) config.data_dir = root["data_dir"].as<std::string>();
    if (root["store"]) config.store_url = root["store"].as<std::string>();
    if (root["workers"]) config.workers = root["workers"].as<int>();
    if (root["listen"]) config.listen = root["listen"].as<std::string>();
    if (root["log_level"]) config.log_level = root["log_level"].as<std::string>();
    if (root["max_body_bytes"]) config.max_body_bytes = root["max_body_bytes"].as<size_t>();
    if (auto url = root["public_url"]) {
      config.public_url = url.as<std::string>();
      if (config.public_url.rfind("http://", 0) != 0 && config.public_url.rfind("https://", 0) != 0) {
        return config_error(path, url.Mark(),
                            "public_url: expected the address people reach Herald at, like "
                            "https://herald.example.com");
      }
    }
    if (auto engine = root["engine"]) {
      if (!engine.IsMap()) {
        return config_error(path, engine.Mark(), "engine: expected a map with `lease` and `poll`");
      }
      for (const auto& entry : engine) {
        const auto key = entry.first.as<std::string>();
        if (key != "lease" && key != "poll") {
          return config_error(path, entry.first.Mark(),
                              "unknown setting 'engine." + key + "'; known: engine.lease, engine.poll");
        }
        auto parsed = parse_duration(entry.second.as<std::string>());
        const auto least = key == "lease" ? std::chrono::milliseconds(1000) : std::chrono::milliseconds(10);
        if (!parsed.ok() || *parsed < least) {
          return config_error(path, entry.second.Mark(),
                              "engine." + key + ": expected a duration of at least " +
                                  (key == "lease" ? "1s, like 30s" : "10ms, like 1s"));
        }
        (key == "lease" ? config.lease : config.poll) =
            std::chrono::duration_cast<std::chrono::milliseconds>(*parsed);
      }
    }
    if (auto approvals = root["approvals"]) {
      if (!approvals.IsMap()) {
        return config_error(path, approvals.Mark(), "approvals: expected a map with `link_ttl`");
      }
      for (const auto& entry : approvals) {
        if (entry.first.as<std::string>() != "link_ttl") {
          return config_error(path, entry.first.Mark(),
                              "unknown setting 'approvals." + entry.first.as<std::string>() +
                                  "'; known: approvals.link_ttl");
        }
      }
      if (auto ttl = approvals["link_ttl"]) {
        auto parsed = parse_duration(ttl.as<std::string>());
        if (!parsed.ok() || *parsed < std::chrono::seconds(1)) {
          return config_error(path, ttl.Mark(),
                              "approvals.link_ttl: expected a duration of at least 1s, like 72h");
        }
        config.approval_link_ttl = std::chrono::duration_cast<std::chrono::seconds>(*parsed);
      }
    }
    if (auto list = root["env_allow"]) {
      if (!list.IsSequence()) return config_error(path, list.Mark(), "env_allow: expected a list of names");
      for (const auto& name : list) config.env_allow.push_back(name.as<std::string>());
    }
    if (auto plugins = root["plugins"]) {
      if (!plugins.IsMap()) {
        return config_error(path, plugins.Mark(), "plugins: expected a map with `paths`");
      }
      for (const auto& entry : plugins) {
        const auto key = entry.first.as<std::string>();
        if (key != "paths" && key != "isolate" && key != "call_timeout" &&
            key != "memory_limit_mb") {
          return config_error(path, entry.first.Mark(),
                              "unknown setting 'plugins." + entry.first.as<std::string>() +
                                  "'; known: plugins.paths, plugins.isolate, "
                                  "plugins.call_timeout, plugins.memory_limit_mb");
        }
      }
      if (auto list = plugins["paths"]) {
        if (!list.IsSequence()) {
          return config_error(path, list.Mark(), "plugins.paths: expected a list of folders");
        }
        for (const auto& folder : list) {
          std::string text = folder.as<std::string>();
          // Relative folders are relative to the configuration file, not to where Herald runs.
          std::filesystem::path where(text);
          if (where.is_relative()) where = std::filesystem::path(path).parent_path() / where;
          config.plugin_paths.push_back(where.lexically_normal().string());
        }
      }
      if (auto list = plugins["isolate"]) {
        if (!list.IsSequence()) {
          return config_error(path, list.Mark(),
                              "plugins.isolate: expected a list of plugin names");
        }
        for (const auto& name : list) config.plugin_isolate.push_back(name.as<std::string>());
      }
      if (auto timeout = plugins["call_timeout"]) {
        auto parsed = parse_duration(timeout.as<std::string>());
        if (!parsed.ok() || parsed->count() <= 0) {
          return config_error(path, timeout.Mark(),
                              "plugins.call_timeout: expected a duration like 30s");
        }
        config.plugin_call_timeout = *parsed;
      }
      if (auto memory = plugins["memory_limit_mb"]) {
        long long megabytes = -1;
        try {
          megabytes = memory.as<long long>();
        } catch (const YAML::Exception&) {
        }
        if (megabytes < 0 || megabytes > (1LL << 30)) {
          return config_error(path, memory.Mark(),
                              "plugins.memory_limit_mb: expected a number of megabytes (0: no "
                              "limit)");
        }
        config.plugin_memory_limit_mb = static_cast<size_t>(megabytes);
      }
    }
    if (auto notify = root["notify"]) {
      if (auto status = read_notify(path, notify, config); !status.ok()) return status;
    }
    if (auto lua = root["lua"]) {
      if (lua["instructions"]) config.limits.instructions = lua["instructions"].as<uint64_t>();
      if (lua["memory_mb"]) config.limits.memory_bytes = lua["memory_mb"].as<size_t>() * 1024 * 1024;
    }
  } catch (const YAML::TypedBadConversion<int>& e) {
    return config_error(path, e.mark, "expected a whole number");
  } catch (const YAML::Exception& e) {
    return config_error(path, e.mark, e.msg);
  }
  return {};
}

}  // namespace

std::string Config::effective_store_url() const {
  if (!store_url.empty()) return store_url;
  return "sqlite:" + (std::filesystem::path(data_dir) / "herald.db").string();
}

Json Config::env_json() const {
  Json env = Json::object();
  for (const auto& name : env_allow) {
    if (const char* value = std::getenv(name.c_str())) env[name] = value;
  }
  return env;
}

Json Config::secrets_json() const {
  Json secrets = Json::object();
  constexpr std::string_view prefix = "HERALD_SECRET_";
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    if (text.rfind(prefix, 0) != 0) continue;
    auto eq = text.find('=');
    if (eq == std::string_view::npos) continue;
    secrets[std::string(text.substr(prefix.size(), eq - prefix.size()))] = std::string(text.substr(eq + 1));
  }
  return secrets;
}

Result<Config> load_config(const std::string& path) {
  Config config;
  std::string file = path;
  if (file.empty() && std::filesystem::exists("herald.yaml")) file = "herald.yaml";
  if (!file.empty()) {
    if (!std::filesystem::exists(file)) {
      return make_error(ErrorCode::not_found, "config file " + file + " does not exist");
    }
    if (auto status = read_file(file, config); !status.ok()) return status.error();
    config.config_file = file;
  }
  if (const char* v = std::getenv("HERALD_DATA_DIR")) config.data_dir = v;
  if (const char* v = std::getenv("HERALD_STORE")) config.store_url = v;
  if (const char* v = std::getenv("HERALD_WORKERS")) {
    char* end = nullptr;
    long n = std::strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < 0 || n > 1024) {
      return make_error(ErrorCode::invalid_argument,
                        std::string("HERALD_WORKERS='") + v + "' is not a number of threads (0-1024)");
    }
    config.workers = static_cast<int>(n);
  }
  if (const char* v = std::getenv("HERALD_ENV_ALLOW")) config.env_allow = split_list(v);
  if (const char* v = std::getenv("HERALD_LISTEN"); v && *v) config.listen = v;
  if (const char* v = std::getenv("HERALD_LOG_LEVEL"); v && *v) config.log_level = v;
  if (const char* v = std::getenv("HERALD_PUBLIC_URL"); v && *v) config.public_url = v;
  if (config.workers == 0) config.workers = static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
  return config;
}

}  // namespace herald::cli
