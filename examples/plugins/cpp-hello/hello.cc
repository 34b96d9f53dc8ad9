// hello: the smallest useful Herald plugin, built against the installed SDK (README.md).
//   hello.greet     {name, [greeting]} -> {greeting}; logs through the host
//   hello.announce  {url, name} -> {status, greeting}; POSTs the greeting through Herald's HTTP
//                   client, with the run's idempotency key so a retried step announces once
#include <herald/plugin.hpp>

#include <string>

using herald::sdk::Call;
using herald::sdk::Failure;
using herald::sdk::json;

namespace {

std::string greeting_for(const json& input) {
  return input.value("greeting", std::string("Hello")) + ", " + input["name"].get<std::string>() +
         "!";
}

json greet(const json& input, Call& call) {
  std::string greeting = greeting_for(input);
  call.info("greeting " + input["name"].get<std::string>());
  return json{{"greeting", greeting}};
}

json announce(const json& input, Call& call) {
  std::string greeting = greeting_for(input);
  // call.http throws Failure with Herald's error (unavailable and retryable for a 503 or a
  // refused connection, ...): letting it propagate gives the step that error.
  json response = call.http({{"method", "POST"},
                             {"url", input["url"]},
                             {"json", {{"text", greeting}}},
                             {"idempotency", true}});
  // 4xx and 5xx already failed in call.http; a redirect that was not followed lands here.
  int status = response.value("status", 0);
  if (status < 200 || status > 299) {
    throw Failure("failed_precondition",
                  "hello: the server answered " + std::to_string(status) + ", not 2xx");
  }
  return json{{"status", status}, {"greeting", greeting}};
}

// Closed schemas (properties without additionalProperties): Herald reports a misspelt field in
// `with:` at validate time instead of ignoring it.
constexpr const char* kGreetSchema = R"({
  "type": "object",
  "required": ["name"],
  "properties": {
    "name": {"type": "string", "minLength": 1, "description": "Who to greet"},
    "greeting": {"type": "string", "minLength": 1, "description": "Instead of Hello"}
  }
})";

constexpr const char* kAnnounceSchema = R"({
  "type": "object",
  "required": ["url", "name"],
  "properties": {
    "url": {"type": "string", "description": "Where to POST {\"text\": greeting}"},
    "name": {"type": "string", "minLength": 1},
    "greeting": {"type": "string", "minLength": 1}
  }
})";

herald::sdk::Plugin make() {
  herald::sdk::Plugin plugin("hello", "1.0.0", "Greets people (the SDK example)");
  plugin.step("hello.greet", "Says hello to someone", kGreetSchema, greet);
  plugin.step("hello.announce", "POSTs a greeting to a URL", kAnnounceSchema, announce);
  return plugin;
}

}  // namespace

HERALD_PLUGIN(make)
