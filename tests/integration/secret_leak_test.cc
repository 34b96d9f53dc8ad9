// The planted-secret test of issue 3: two distinctive secret values are planted in a workspace
// (one with `herald secret set`, one with PUT /api/v1/secrets/{name}), workflows use them in
// every way a user might (an `http` step that gets them echoed back, answered with a 500 that
// quotes them, refused, timed out; a `script` that prints, returns and raises them; `set`, `log`
// and `emit` steps; concatenated and transformed forms), they run through the API, a webhook,
// `herald trigger` and an event, and then every place Herald writes to is searched for them:
// the server's logs at the lowest level, every API answer the test received, the CLI's output,
// and the SQLite files' bytes. A failure prints where the value was found, with its context.
//
// What Herald promises (docs/server.md, Secrets): the exact value of each of the workspace's
// secrets is replaced by "[redacted]" wherever Herald writes it; a value cut short by Herald
// itself counts as a leak too, so the search also looks for the first half of each value.
// Forms a workflow computes from a secret (upper-cased, hex, base64, ...) are not recognised:
// the test pins that down as well, so the documentation cannot promise more than this does.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <regex>
#include <set>
#include <thread>

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <gtest/gtest.h>

#include "engine/security/hmac.h"
#include "engine/security/secret_box.h"
#include "engine/server/admin.h"
#include "engine/store/store.h"
#include "tests/support/herald_command.h"
#include "tests/support/http_client.h"
#include "tests/support/local_http_server.h"
#include "tests/support/temp_dir.h"

namespace herald::testing {
namespace {

using namespace std::chrono_literals;

const std::string kCliSecret = "s3cr3t-PLANTED-9f1c2e";  // herald secret set CLI_TOKEN
const std::string kApiSecret = "s3cr3t-VIA-API-4b7d0a";  // PUT /api/v1/secrets/API_TOKEN
const std::string kMask = "[redacted]";

// What counts as a leak: a whole value, or its first half (a value cut short is still a leak).
std::vector<std::string> leak_needles() {
  return {kCliSecret, kApiSecret, kCliSecret.substr(0, kCliSecret.size() / 2),
          kApiSecret.substr(0, kApiSecret.size() / 2)};
}

std::string upper(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return text;
}

std::string hex(const std::string& text) {
  std::string out;
  char buffer[3];
  for (unsigned char c : text) {
    std::snprintf(buffer, sizeof buffer, "%02x", c);
    out += buffer;
  }
  return out;
}

// Bytes as a test log can show them: control and non-ASCII bytes as \xNN.
std::string printable(std::string_view text) {
  std::string out;
  char buffer[5];
  for (unsigned char c : text) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      std::snprintf(buffer, sizeof buffer, "\\x%02x", c);
      out += buffer;
    }
  }
  return out;
}

// Every occurrence of a planted value in `text`, each with 80 bytes of context on either side;
// empty when there is none.
std::string find_leaks(const std::string& place, const std::string& text) {
  std::string report;
  for (const auto& needle : leak_needles()) {
    int shown = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
      if (++shown > 3) {
        report += "  (more of '" + needle + "' in " + place + ")\n";
        break;
      }
      size_t from = at < 80 ? 0 : at - 80;
      report += "  '" + needle + "' in " + place + " at byte " + std::to_string(at) + ": ..." +
                printable(text.substr(from, at - from)) + ">>>" +
                printable(text.substr(at, needle.size())) + "<<<" +
                printable(text.substr(at + needle.size(), 80)) + "...\n";
    }
  }
  return report;
}

void expect_no_secret(const std::string& place, const std::string& text) {
  std::string leaks = find_leaks(place, text);
  EXPECT_TRUE(leaks.empty()) << "a planted secret leaked:\n" << leaks;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Workflows that use the secrets in their step inputs. ECHO, UPSTREAM and CLOSED are replaced by
// the test servers' URLs.
const char* const kWorkflows[] = {
    // (a) an upstream that answers 200 with the request it got, headers and body.
    R"(id: http-echo
triggers:
  - manual:
  - webhook: { path: echo }
steps:
  - id: call
    uses: http
    with:
      method: POST
      url: "ECHO/echo?token={{ secrets.CLI_TOKEN }}"
      headers:
        Authorization: "Bearer {{ secrets.CLI_TOKEN }}"
        X-Api-Key: "{{ secrets.API_TOKEN }}"
      json:
        token: "{{ secrets.CLI_TOKEN }}"
        nested: { key: "{{ secrets.API_TOKEN }}" }
)",
    // (b) an upstream that answers 500 quoting the token, across the 200th character of its body
    // (where the step's error message cuts the body); an on_error step logs the error.
    R"(id: http-error
steps:
  - id: call
    uses: http
    with:
      method: POST
      url: "UPSTREAM/fail"
      headers: { X-Token: "{{ secrets.CLI_TOKEN }}" }
      json: { token: "{{ secrets.API_TOKEN }}" }
    retry: { attempts: 2, initial: 10ms, max: 10ms }
on_error:
  - id: report
    uses: log
    with: { message: "failed: {{ error.message }} {{ json.encode(error.details) }}", level: warn }
)",
    // (c) an upstream nobody listens on, and one that does not answer in time.
    R"(id: http-refused
steps:
  - id: call
    uses: http
    with:
      url: "CLOSED/x?token={{ secrets.CLI_TOKEN }}"
      headers: { Authorization: "Bearer {{ secrets.API_TOKEN }}" }
)",
    R"(id: http-timeout
steps:
  - id: call
    uses: http
    with:
      method: POST
      url: "UPSTREAM/slow?token={{ secrets.API_TOKEN }}"
      timeout: 300ms
      json: { token: "{{ secrets.CLI_TOKEN }}" }
)",
    // A script that prints, returns (as values, as a key, inside text, JSON-encoded) and
    // transforms the secrets.
    R"(id: script-return
steps:
  - id: run
    uses: script
    with:
      code: |
        print("cli token " .. secrets.CLI_TOKEN, secrets.API_TOKEN)
        return {
          token = secrets.CLI_TOKEN,
          [secrets.API_TOKEN] = "as a key",
          bearer = "Bearer " .. secrets.CLI_TOKEN,
          encoded = json.encode({ t = secrets.API_TOKEN }),
          list = { secrets.CLI_TOKEN, { deep = secrets.API_TOKEN } },
          upper = string.upper(secrets.CLI_TOKEN),
          hex = (secrets.CLI_TOKEN:gsub(".", function(c) return string.format("%02x", c:byte()) end)),
        }
)",
    R"(id: script-error
triggers:
  - manual:
  - webhook: { path: script-error, respond: { step: run, timeout: 10s } }
steps:
  - id: run
    uses: script
    with:
      code: |
        error("the upstream refused " .. secrets.CLI_TOKEN)
)",
    R"(id: script-error-table
steps:
  - id: run
    uses: script
    with:
      code: |
        error({ code = "denied", token = secrets.API_TOKEN, [secrets.CLI_TOKEN] = true })
)",
    // A template that fails with the secret in its message.
    R"(id: template-error
steps:
  - id: values
    uses: set
    with:
      token: "{{ error('cannot use ' .. secrets.CLI_TOKEN) }}"
)",
    // set, log (info and debug), emit, print from a template, and an output read by a later step.
    R"(id: set-log-emit
triggers:
  - manual:
  - webhook: { path: values, respond: { step: values, timeout: 10s } }
steps:
  - id: values
    uses: set
    with:
      token: "{{ secrets.CLI_TOKEN }}"
      header: "Bearer {{ secrets.API_TOKEN }}"
      both: "{{ secrets.CLI_TOKEN }}:{{ secrets.API_TOKEN }}"
      upper: "{{ string.upper(secrets.CLI_TOKEN) }}"
      printed: "{{ print('template print ' .. secrets.API_TOKEN) }}"
  - id: say
    uses: log
    with: { message: "the token is {{ secrets.CLI_TOKEN }}" }
  - id: whisper
    uses: log
    with: { message: "debug line {{ secrets.API_TOKEN }}", level: debug }
  - id: announce
    uses: emit
    with:
      event: leak.planted
      payload: { token: "{{ secrets.CLI_TOKEN }}", list: ["{{ secrets.API_TOKEN }}"] }
  - id: reuse
    uses: set
    with: { from_output: "{{ steps.values.output.token }}" }
)",
    // Started by the emit step above: sees the event's payload.
    R"(id: listener
triggers:
  - event: { name: leak.planted }
steps:
  - id: got
    uses: set
    with: { payload: "{{ trigger.payload }}" }
)",
    // Started by every failed run: sees its error in the run.failed event.
    R"(id: failures
triggers:
  - event: { name: run.failed }
steps:
  - id: got
    uses: set
    with: { error: "{{ trigger.payload.error }}" }
)",
    // A webhook signed with a workspace secret.
    R"(id: signed
triggers:
  - webhook: { path: signed, secret: "{{ secrets.CLI_TOKEN }}" }
steps:
  - id: ok
    uses: set
    with: { body: "{{ trigger.body }}" }
)",
};

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// A URL nothing listens on: a port bound, then closed.
std::string closed_url() {
  Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
  return "http://127.0.0.1:" + std::to_string(socket.address().port());
}

class SecretLeakTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = {{"HERALD_DATA_DIR", data().string()},
            {"HERALD_MASTER_KEY", ""},
            {"HERALD_WORKSPACE", ""},
            {"HERALD_TOKEN", ""},
            {"HERALD_URL", ""},
            {"HERALD_LOG_LEVEL", "trace"}};
    auto init = cli({"init", "--workspace", "acme", "--quiet"});
    ASSERT_EQ(init.code(), 0) << init.err;
    token_ = init.out.substr(0, init.out.find('\n'));
    ASSERT_EQ(token_.rfind("hld_", 0), 0u) << init.out;

    echo_.route("POST", "/echo", [](const RecordedRequest& request) {
      Json headers = Json::object();
      for (const auto& [name, value] : request.headers) headers[name] = value;
      Response response = Response::json(
          200, {{"query", request.query}, {"headers", headers}, {"body", request.body}});
      response.with_header("X-Echo-Authorization", request.header("authorization"));
      return response;
    });
    upstream_.route("POST", "/fail", [](const RecordedRequest& request) {
      // 181 dots and " token ": the value starts at byte 188 and the message keeps 200 bytes.
      return Response::text(500, std::string(181, '.') + " token " + request.header("x-token") +
                                     " refused; body was " + request.body);
    });
    upstream_.route("POST", "/slow", Response::text(200, "too late").after(5s));
  }

  std::filesystem::path data() const { return dir_ / "data"; }

  CommandResult cli(const std::vector<std::string>& args) {
    auto result = run_herald(args, env_);
    cli_outputs_.emplace_back("herald " + join(args), result.out + result.err);
    return result;
  }

  static std::string join(const std::vector<std::string>& args) {
    std::string out;
    for (const auto& arg : args) out += (out.empty() ? "" : " ") + arg;
    return out;
  }

  // Every answer is kept, to be searched at the end.
  HttpReply call(const std::string& method, const std::string& path, const std::string& body = "",
                 std::map<std::string, std::string> headers = {}) {
    headers.emplace("Authorization", "Bearer " + token_);
    if (!body.empty()) headers.emplace("Content-Type", "application/json");
    auto reply = http_call(method, base_ + path, headers, body);
    std::string headers_text;
    for (const auto& [name, value] : reply.headers) headers_text += name + ": " + value + "\n";
    answers_.emplace_back(method + " " + path + " (HTTP " + std::to_string(reply.status) + ")",
                          headers_text + reply.body);
    return reply;
  }

  Json get(const std::string& path) {
    auto reply = call("GET", path);
    EXPECT_EQ(reply.status, 200) << path << ": " << reply.body;
    Json parsed = Json::parse(reply.body, nullptr, false);
    return parsed.is_discarded() ? Json() : parsed;
  }

  void start_server() {
    server_.emplace(start_herald({"serve", "--listen", "127.0.0.1:0"}, env_));
    ASSERT_TRUE(server_->wait_for_stdout("listening on", 15s)) << server_->stderr_text();
    std::smatch match;
    std::string out = server_->stdout_text();
    ASSERT_TRUE(std::regex_search(out, match, std::regex("(http://127\\.0\\.0\\.1:[0-9]+)")));
    base_ = match[1];
  }

  // The run once it is final.
  Json wait_for_run(const std::string& id) {
    Json run;
    for (int i = 0; i < 300; ++i) {
      run = get("/api/v1/runs/" + id);
      std::string state = run.value("state", "");
      if (state == "succeeded" || state == "failed" || state == "cancelled") return run;
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "run " << id << " did not finish: " << run.dump();
    return run;
  }

  std::string start_run(const std::string& workflow) {
    auto reply = call("POST", "/api/v1/workflows/" + workflow + "/runs", "{}");
    EXPECT_EQ(reply.status, 201) << workflow << ": " << reply.body;
    Json run = Json::parse(reply.body, nullptr, false);
    return run.is_object() ? run.value("id", "") : "";
  }

  // The step's output in a run as GET /api/v1/runs/{id} gives it.
  static Json step_of(const Json& run, const std::string& step) {
    for (const auto& s : run.value("steps", Json::array())) {
      if (s.value("step", "") == step) return s;
    }
    return nullptr;
  }

  TempDir dir_{"herald-secret-leak"};
  std::map<std::string, std::string> env_;
  std::string token_;
  LocalHttpServer echo_;
  LocalHttpServer upstream_;
  std::optional<ChildProcess> server_;
  std::string base_;
  std::vector<std::pair<std::string, std::string>> answers_;      // every API answer received
  std::vector<std::pair<std::string, std::string>> cli_outputs_;  // every CLI command's output
};

TEST_F(SecretLeakTest, PlantedSecretsAreRedactedEverywhereHeraldWritesThem) {
  // ---- plant: one value through the CLI (stdin), one through the API -------------------------
  auto set = run_herald_with_stdin({"secret", "set", "CLI_TOKEN", "--workspace", "acme"},
                                   kCliSecret + "\n", env_);
  ASSERT_EQ(set.code(), 0) << set.err;
  cli_outputs_.emplace_back("herald secret set CLI_TOKEN", set.out + set.err);

  ASSERT_NO_FATAL_FAILURE(start_server());
  auto put = call("PUT", "/api/v1/secrets/API_TOKEN", Json{{"value", kApiSecret}}.dump());
  ASSERT_EQ(put.status, 204) << put.body;
  // A malformed body holding the value is refused without quoting it back.
  auto malformed = call("PUT", "/api/v1/secrets/API_TOKEN", "{\"value\": \"" + kApiSecret);
  EXPECT_EQ(malformed.status, 400) << malformed.body;

  // ---- deploy ------------------------------------------------------------------------------
  std::string closed = closed_url();
  for (const char* source : kWorkflows) {
    std::string text = replace_all(source, "ECHO", echo_.url());
    text = replace_all(text, "UPSTREAM", upstream_.url());
    text = replace_all(text, "CLOSED", closed);
    auto deployed = call("POST", "/api/v1/workflows", text, {{"Content-Type", "application/yaml"}});
    ASSERT_EQ(deployed.status, 201) << text << "\n" << deployed.body;
  }

  // ---- run through the API, webhooks and `herald trigger` ----------------------------------
  std::map<std::string, std::string> runs;  // label -> run id
  for (std::string workflow :
       {"http-echo", "http-error", "http-refused", "http-timeout", "script-error",
        "script-error-table", "template-error", "set-log-emit"}) {
    runs["api " + workflow] = start_run(workflow);
  }

  auto hook = call("POST", "/hooks/acme/echo", R"({"from": "a webhook"})");
  ASSERT_EQ(hook.status, 202) << hook.body;
  runs["webhook http-echo"] = Json::parse(hook.body).value("run_id", "");

  // The respond step's output is the webhook's answer.
  auto respond = call("POST", "/hooks/acme/values", R"({"from": "a webhook"})");
  ASSERT_EQ(respond.status, 200) << respond.body;
  Json answered = Json::parse(respond.body, nullptr, false);
  EXPECT_EQ(answered.value("token", ""), kMask) << respond.body;
  EXPECT_EQ(answered.value("header", ""), "Bearer " + kMask) << respond.body;
  runs["webhook set-log-emit"] = respond.headers["x-herald-run-id"];

  // A respond step that fails: the webhook's answer carries its error.
  auto failed_respond = call("POST", "/hooks/acme/script-error", "{}");
  EXPECT_EQ(failed_respond.status, 502) << failed_respond.body;
  EXPECT_TRUE(contains(failed_respond.body, "the upstream refused " + kMask))
      << failed_respond.body;
  runs["webhook script-error"] = Json::parse(failed_respond.body, nullptr, false)
                                     .value("error", Json::object())
                                     .value("details", Json::object())
                                     .value("run_id", "");

  std::string body = R"({"signed": true})";
  std::string timestamp = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());
  auto signed_hook = call("POST", "/hooks/acme/signed", body,
                          {{std::string(security::kWebhookTimestampHeader), timestamp},
                           {std::string(security::kWebhookSignatureHeader),
                            security::sign_webhook(kCliSecret, timestamp, body)}});
  ASSERT_EQ(signed_hook.status, 202) << signed_hook.body;
  runs["webhook signed"] = Json::parse(signed_hook.body).value("run_id", "");
  auto forged = call("POST", "/hooks/acme/signed", body,
                     {{std::string(security::kWebhookTimestampHeader), timestamp},
                      {std::string(security::kWebhookSignatureHeader),
                       security::sign_webhook("not-the-secret", timestamp, body)}});
  EXPECT_EQ(forged.status, 401) << forged.body;

  auto triggered =
      cli({"trigger", "script-return", "--url", base_, "--token", token_, "--wait", "--json"});
  EXPECT_EQ(triggered.code(), 0) << triggered.err;
  Json triggered_run = Json::parse(triggered.out, nullptr, false);
  ASSERT_TRUE(triggered_run.is_object()) << triggered.out;
  runs["trigger script-return"] = triggered_run.value("id", "");
  auto triggered_failing =
      cli({"trigger", "http-error", "--url", base_, "--token", token_, "--wait"});
  EXPECT_EQ(triggered_failing.code(), 1) << triggered_failing.out << triggered_failing.err;
  std::smatch id_match;
  ASSERT_TRUE(std::regex_search(triggered_failing.out, id_match, std::regex("run (\\S+) failed")))
      << triggered_failing.out;
  runs["trigger http-error"] = id_match[1];

  std::map<std::string, Json> finished;
  for (const auto& [label, id] : runs) {
    ASSERT_FALSE(id.empty()) << label;
    finished[label] = wait_for_run(id);
  }
  // Each set-log-emit run emitted one event, which started one listener run; each failed run
  // started one run of `failures`.
  size_t failed_runs = 0;
  for (const auto& [label, run] : finished)
    failed_runs += run.value("state", "") == "failed" ? 1 : 0;
  EXPECT_EQ(failed_runs, 8u);
  for (const auto& [workflow, expected] :
       std::vector<std::pair<std::string, size_t>>{{"listener", 2}, {"failures", failed_runs}}) {
    Json started;
    for (int i = 0; i < 300; ++i) {
      started = get("/api/v1/runs?state=succeeded&workflow=" + workflow);
      if (started.value("items", Json::array()).size() >= expected) break;
      std::this_thread::sleep_for(50ms);
    }
    ASSERT_EQ(started.value("items", Json::array()).size(), expected) << started.dump();
    for (const auto& item : started["items"]) {
      finished["event " + workflow + " " + item.value("id", "")] =
          wait_for_run(item.value("id", ""));
    }
  }

  // ---- the secrets reached the steps: what they sent carried the real values ----------------
  auto echoed = echo_.requests("POST", "/echo");
  ASSERT_EQ(echoed.size(), 2u);
  for (const auto& request : echoed) {
    EXPECT_EQ(request.header("authorization"), "Bearer " + kCliSecret);
    EXPECT_EQ(request.header("x-api-key"), kApiSecret);
    EXPECT_EQ(request.query_params()["token"], kCliSecret);
    EXPECT_EQ(Json::parse(request.body),
              (Json{{"token", kCliSecret}, {"nested", {{"key", kApiSecret}}}}));
  }
  auto failed_calls = upstream_.requests("POST", "/fail");
  ASSERT_EQ(failed_calls.size(), 4u);  // two runs, two attempts each
  EXPECT_EQ(failed_calls[0].header("x-token"), kCliSecret);
  EXPECT_EQ(upstream_.request_count("POST", "/slow"), 1u);

  // ---- what the runs show: the exact values masked, computed forms as they are -----------------
  for (const auto& [label, run] : finished) {
    bool should_fail =
        contains(label, "error") || contains(label, "refused") || contains(label, "timeout");
    EXPECT_EQ(run.value("state", ""), should_fail ? "failed" : "succeeded")
        << label << ": " << run.dump();
    if (should_fail) {
      std::string error = run.value("error", Json()).dump();
      EXPECT_TRUE(contains(error, kMask)) << label << ": the error should show the mask: " << error;
    }
  }
  Json echo_output = step_of(finished["api http-echo"], "call")["output"];
  EXPECT_EQ(echo_output["body"]["headers"].value("authorization", ""), "Bearer " + kMask)
      << echo_output;
  EXPECT_EQ(echo_output["body"]["headers"].value("x-api-key", ""), kMask) << echo_output;
  EXPECT_EQ(echo_output["headers"].value("x-echo-authorization", ""), "Bearer " + kMask)
      << echo_output;
  EXPECT_EQ(
      step_of(finished["api http-echo"], "call")["input"]["headers"].value("Authorization", ""),
      "Bearer " + kMask);

  Json script_output = step_of(finished["trigger script-return"], "run")["output"];
  EXPECT_EQ(script_output.value("token", ""), kMask) << script_output;
  EXPECT_EQ(script_output.value("bearer", ""), "Bearer " + kMask) << script_output;
  EXPECT_EQ(script_output.value(kMask, ""), "as a key") << script_output;
  EXPECT_EQ(script_output.value("encoded", ""), "{\"t\":\"" + kMask + "\"}") << script_output;
  EXPECT_EQ(script_output["list"], (Json{kMask, {{"deep", kMask}}})) << script_output;
  // Only exact values are recognised: a form computed from a secret is stored as it is.
  EXPECT_EQ(script_output.value("upper", ""), upper(kCliSecret)) << script_output;
  EXPECT_EQ(script_output.value("hex", ""), hex(kCliSecret)) << script_output;

  for (const char* label : {"api set-log-emit", "webhook set-log-emit"}) {
    const Json& run = finished[label];
    Json values = step_of(run, "values")["output"];
    EXPECT_EQ(values.value("token", ""), kMask) << values;
    EXPECT_EQ(values.value("both", ""), kMask + ":" + kMask) << values;
    EXPECT_EQ(values.value("upper", ""), upper(kCliSecret)) << values;
    EXPECT_EQ(step_of(run, "say")["output"].value("message", ""), "the token is " + kMask);
    EXPECT_EQ(step_of(run, "announce")["output"]["payload"].value("token", ""), kMask);
    // A later step reads the stored (masked) output: secrets do not travel through outputs.
    EXPECT_EQ(step_of(run, "reuse")["output"].value("from_output", ""), kMask);
  }
  for (const auto& [label, run] : finished) {
    Json payload = run.value("trigger", Json::object()).value("payload", Json::object());
    if (contains(label, "event listener")) {
      EXPECT_EQ(payload.value("token", ""), kMask) << run.dump();
    }
    if (contains(label, "event failures")) {
      EXPECT_TRUE(contains(payload.dump(), kMask)) << run.dump();
    }
  }

  // ---- read everything else the API offers -------------------------------------------------
  get("/api/v1/runs?limit=100");
  for (const char* state : {"succeeded", "failed"}) get(std::string("/api/v1/runs?state=") + state);
  get("/api/v1/audit?limit=1000");
  get("/api/v1/secrets");
  get("/api/v1/workflows");
  get("/api/v1/workflows/set-log-emit");
  get("/api/v1/tokens");
  get("/api/v1/me");
  get("/api/v1/openapi.json");
  auto metrics = call("GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_TRUE(contains(metrics.body, "herald_runs_finished_total")) << metrics.body;

  auto stopped = server_->stop(SIGTERM, 15s);
  EXPECT_TRUE(stopped.success()) << stopped.describe();

  // ---- the CLI, on the store the server used ------------------------------------------------
  cli({"runs", "list", "--limit", "100"});
  for (const auto& [label, run] : finished) {
    EXPECT_EQ(cli({"runs", "show", run.value("id", "")}).code(), 0) << label;
    cli({"runs", "show", run.value("id", ""), "--json"});
  }
  cli({"audit", "--workspace", "acme"});
  cli({"audit", "--workspace", "acme", "--json"});
  cli({"secret", "list", "--workspace", "acme"});
  cli({"secret", "list", "--workspace", "acme", "--json"});

  // ---- search every place ------------------------------------------------------------------
  std::string log = server_->stderr_text();
  // The logs were written at the lowest level, and the steps' lines reached them (masked).
  EXPECT_TRUE(contains(log, "lua print")) << "no print line in the debug log";
  EXPECT_TRUE(contains(log, "the token is " + kMask)) << "no log-step line";
  EXPECT_TRUE(contains(log, "debug line " + kMask)) << "no debug log-step line";
  expect_no_secret("the server's stderr (JSON log)", log);
  expect_no_secret("the server's stdout", server_->stdout_text());
  for (const auto& [what, text] : answers_) expect_no_secret("the answer to " + what, text);
  for (const auto& [what, text] : cli_outputs_) expect_no_secret("the output of " + what, text);

  // The SQLite files: the secrets only sealed, the runs only masked.
  std::string bytes;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    auto path = data() / ("herald.db" + std::string(suffix));
    std::string file = read_file(path);
    expect_no_secret(path.string(), file);
    bytes += file;
  }
  ASSERT_FALSE(bytes.empty());
  EXPECT_TRUE(contains(bytes, kMask)) << "the stored step records hold no masked value";
  auto store = store::open_store("sqlite:" + (data() / "herald.db").string());
  ASSERT_TRUE(store.ok()) << store.error().message;
  auto key = security::load_master_key_file(data() / "master.key");
  ASSERT_TRUE(key.ok()) << key.error().message;
  security::SecretBox box(*key);
  auto values = server::decrypt_secrets(**store, box, "acme");
  ASSERT_TRUE(values.ok()) << values.error().message;
  EXPECT_EQ(*values, (Json{{"API_TOKEN", kApiSecret}, {"CLI_TOKEN", kCliSecret}}));
  auto stored_steps = (*store)->get_steps(runs["trigger script-return"]);
  ASSERT_TRUE(stored_steps.ok());
  ASSERT_EQ(stored_steps->size(), 1u);
  EXPECT_EQ(stored_steps->front().output.value("token", ""), kMask);
}

}  // namespace
}  // namespace herald::testing
