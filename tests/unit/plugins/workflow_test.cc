// Plugin capabilities inside workflows, end to end: `with:` checked against the input schema
// when a workflow is validated (so a deploy fails with file:line:column), and runs through the
// engine that call a native and a Lua capability.
#include <gtest/gtest.h>

#include "engine/model/workflow.h"
#include "engine/plugins/plugin.h"
#include "engine/runtime/engine.h"
#include "engine/store/store.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/plugins/plugin_test_support.h"

namespace herald::plugins {
namespace {

using namespace std::chrono_literals;

constexpr const char* kLuaPlugin = R"(
return {
  name = "shout",
  version = "1.0.0",
  capabilities = {
    upper = {
      input = { type = "object", required = { "text" }, properties = { text = { type = "string" } } },
      run = function(input) return { text = string.upper(input.text) } end,
    },
  },
}
)";

class PluginWorkflowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.write("plugins/shout.lua", kLuaPlugin);
    LoadOptions options;
    options.paths = {testing::test_plugin("test_good"), (dir_ / "plugins").string()};
    set_ = PluginSet::load(options);
    ASSERT_TRUE(set_.errors().empty()) << set_.errors()[0].message;
    ASSERT_EQ(set_.plugins().size(), 2u);
    registry_ = steps::StepRegistry::with_builtins();
    ASSERT_TRUE(set_.register_steps(registry_).ok());
  }

  herald::testing::TempDir dir_{"herald-plugin-workflow"};
  PluginSet set_;
  steps::StepRegistry registry_;
};

TEST_F(PluginWorkflowTest, CapabilitiesAreSteps) {
  EXPECT_NE(registry_.find("testgood.echo"), nullptr);
  EXPECT_NE(registry_.find("shout.upper"), nullptr);
  EXPECT_EQ(registry_.find("testgood.provide"), nullptr) << "a provider is not a step";
  EXPECT_FALSE(registry_.find("shout.upper")->input_schema.is_null());
}

TEST_F(PluginWorkflowTest, WithIsCheckedAgainstTheSchemaWithLineAndColumn) {
  auto outcome = model::parse_workflow(R"(id: post
steps:
  - id: say
    uses: testgood.echo
    with:
      txt: hello
      count: "{{ 1 + 1 }}"
      mode: shout
  - id: loud
    uses: shout.upper
    with: { text: 42 }
)",
                                       "post.yaml", runtime::workflow_parse_options(registry_));
  ASSERT_FALSE(outcome.ok());
  std::vector<std::string> lines;
  for (const auto& d : outcome.diagnostics) lines.push_back(d.to_string());
  ASSERT_EQ(lines.size(), 4u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0],
            "post.yaml:6:7: steps[0].with: missing required field 'text' (input of "
            "'testgood.echo')");
  EXPECT_EQ(lines[1],
            "post.yaml:6:7: steps[0].with.txt: unknown field 'txt'; did you mean 'text'? allowed "
            "fields: count, mode, text (input of 'testgood.echo')");
  EXPECT_EQ(lines[2],
            "post.yaml:8:13: steps[0].with.mode: expected one of plain, loud; got a "
            "string ('shout') (input of 'testgood.echo')");
  EXPECT_EQ(lines[3],
            "post.yaml:11:19: steps[1].with.text: expected a string, got an integer (42) "
            "(input of 'shout.upper')");
}

TEST_F(PluginWorkflowTest, TemplatesAreNotTypeCheckedButKeysAre) {
  auto options = runtime::workflow_parse_options(registry_);
  auto ok = model::parse_workflow(R"(id: post
inputs:
  n: { type: integer, default: 2 }
steps:
  - id: say
    uses: testgood.echo
    with: { text: "{{ inputs.n }}", count: "{{ inputs.n }}" }
)",
                                  "post.yaml", options);
  EXPECT_TRUE(ok.ok()) << (ok.diagnostics.empty() ? "" : ok.diagnostics[0].to_string());
  auto missing = model::parse_workflow(R"(id: post
steps:
  - id: say
    uses: testgood.echo
    with: { count: "{{ 3 }}" }
)",
                                       "post.yaml", options);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.diagnostics[0].message.find("missing required field 'text'"),
            std::string::npos);
}

TEST_F(PluginWorkflowTest, ARunCallsNativeAndLuaCapabilities) {
  auto store = store::open_store("sqlite:" + (dir_ / "herald.db").string());
  ASSERT_TRUE(store.ok()) << store.error().message;
  runtime::EngineOptions options;
  options.worker_threads = 2;
  runtime::Engine engine(**store, registry_, options);
  auto id = engine.start_run(R"(id: greet
inputs:
  who: { type: string, default: world }
steps:
  - id: say
    uses: testgood.echo
    with: { text: "hi {{ inputs.who }} ", count: 2 }
  - id: loud
    uses: shout.upper
    with: { text: "{{ steps.say.output.text }}" }
)",
                             "greet.yaml", Json::object());
  ASSERT_TRUE(id.ok()) << id.error().message;
  auto run = engine.wait_for_run(*id, 30s);
  ASSERT_TRUE(run.ok()) << run.error().message;
  ASSERT_EQ(run->state, store::RunState::succeeded) << run->error.dump();
  auto steps = (*store)->get_steps(*id);
  ASSERT_TRUE(steps.ok());
  std::map<std::string, Json> outputs;
  for (const auto& step : *steps) outputs[step.step_id] = step.output;
  EXPECT_EQ(outputs["say"]["text"], "hi world hi world ");
  EXPECT_FALSE(outputs["say"]["idempotency_key"].get<std::string>().empty());
  EXPECT_EQ(outputs["say"]["context"]["step_id"], "say");
  EXPECT_EQ(outputs["loud"]["text"], "HI WORLD HI WORLD ");
  engine.shutdown();
}

TEST_F(PluginWorkflowTest, ABadRenderedInputFailsTheStepBeforeThePluginRuns) {
  auto store = store::open_store("sqlite:" + (dir_ / "herald.db").string());
  ASSERT_TRUE(store.ok()) << store.error().message;
  runtime::Engine engine(**store, registry_, {});
  auto id = engine.start_run(R"(id: bad
steps:
  - id: say
    uses: testgood.echo
    with: { text: "{{ 42 }}" }
)",
                             "bad.yaml", Json::object());
  ASSERT_TRUE(id.ok()) << id.error().message;
  auto run = engine.wait_for_run(*id, 30s);
  ASSERT_TRUE(run.ok()) << run.error().message;
  ASSERT_EQ(run->state, store::RunState::failed);
  EXPECT_NE(run->error.dump().find("testgood.echo: invalid input: text: expected a string, got an "
                                   "integer (42)"),
            std::string::npos)
      << run->error.dump();
  engine.shutdown();
}

}  // namespace
}  // namespace herald::plugins
