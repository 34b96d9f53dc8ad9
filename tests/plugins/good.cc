// A well-behaved test plugin written with herald/plugin.hpp (built as C++17): echoes its input,
// fails in each way a capability can, and uses every host function, so the loader and the host
// API are tested through the real C ABI.
#include <herald/plugin.hpp>

#include <stdexcept>

using herald::sdk::Call;
using herald::sdk::Failure;
using herald::sdk::json;

namespace {

herald::sdk::Plugin make() {
  herald::sdk::Plugin plugin("testgood", "1.2.3", "A plugin for Herald's tests");
  plugin.step("testgood.echo", "Echoes text, count times",
              R"({"type": "object", "required": ["text"],
                  "properties": {"text": {"type": "string"},
                                 "count": {"type": "integer", "minimum": 1},
                                 "mode": {"enum": ["plain", "loud"]}}})",
              [](const json& input, Call& call) {
                call.info("echoing " + input["text"].get<std::string>());
                std::string text;
                for (int i = 0; i < input.value("count", 1); ++i)
                  text += input["text"].get<std::string>();
                return json{{"text", text},
                            {"idempotency_key", call.idempotency_key()},
                            {"context", call.context()},
                            {"cancelled", call.cancelled()}};
              });
  plugin.step("testgood.throws", "Throws a std::runtime_error", "",
              [](const json&, Call&) -> json { throw std::runtime_error("kaboom"); });
  plugin.step("testgood.fail", "Fails with a structured, retryable error", "",
              [](const json&, Call&) -> json {
                throw Failure("unavailable", "the service is busy", true, 1500);
              });
  plugin.step(
      "testgood.secret", "Returns the length of a secret",
      R"({"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}})",
      [](const json& input, Call& call) {
        std::string value = call.secret(input["name"].get<std::string>());
        call.info("the secret is " + value);  // the host must redact this
        return json{{"length", value.size()}};
      });
  plugin.step("testgood.emit", "Emits an event", "", [](const json& input, Call& call) {
    call.emit(input.value("event", std::string("test.happened")),
              input.value("payload", json::object()));
    return json{{"emitted", true}};
  });
  plugin.step("testgood.http", "GETs a URL through the host", "",
              [](const json& input, Call& call) {
                json response = call.http({{"method", "GET"}, {"url", input["url"]}});
                return json{{"status", response["status"]}, {"body", response["body"]}};
              });
  // Counts its calls in the kv store: {"key", "ttl"?} -> {"count", "before"}; {"delete": true}
  // removes the entry.
  plugin.step("testgood.count", "Counts its calls in the plugin's kv entries", "",
              [](const json& input, Call& call) {
                const std::string key = input.value("key", std::string("count"));
                if (input.value("delete", false)) {
                  call.kv_delete(key);
                  return json{{"deleted", true}};
                }
                std::optional<json> before = call.kv_get(key);
                int64_t count = before ? before->value("n", int64_t{0}) + 1 : 1;
                call.kv_set(key, json{{"n", count}}, input.value("ttl", int64_t{0}));
                return json{{"count", count}, {"before", before ? *before : json(nullptr)}};
              });
  plugin.capability("testgood.provide", HERALD_KIND_PROVIDER, "A provider, not a step", "",
                    [](const json&, Call&) {
                      return json{{"provided", true}};
                    });
  return plugin;
}

}  // namespace

HERALD_PLUGIN(make)
