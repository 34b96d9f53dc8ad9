// Shared-library plugins through the real C ABI: the test plugins under tests/plugins/, each
// built as its own .so by CMake.
#include <gtest/gtest.h>

#include <stdexcept>

#include <herald/plugin.h>

#include "engine/plugins/plugin.h"
#include "tests/unit/plugins/plugin_test_support.h"

namespace herald::plugins {
namespace {

using testing::CallContext;
using testing::test_plugin;

Capability& capability(const LoadedPlugin& plugin, const std::string& name) {
  for (const auto& c : plugin.capabilities) {
    if (c->info().name == name) return *c;
  }
  throw std::runtime_error("no capability " + name);
}

std::string load_error(const std::string& name) {
  auto plugin = load_native_plugin(test_plugin(name));
  EXPECT_FALSE(plugin.ok()) << name << " loaded";
  if (plugin.ok()) return "";
  EXPECT_EQ(plugin.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(plugin.error().message.find(test_plugin(name)), std::string::npos)
      << "the message names the file: " << plugin.error().message;
  return plugin.error().message;
}

TEST(NativePlugin, LoadsDescriptorAndCapabilities) {
  auto plugin = load_native_plugin(test_plugin("test_good"));
  ASSERT_TRUE(plugin.ok()) << plugin.error().message;
  EXPECT_EQ(plugin->info.name, "testgood");
  EXPECT_EQ(plugin->info.version, "1.2.3");
  EXPECT_EQ(plugin->info.type, "native");
  EXPECT_EQ(plugin->info.isolation, "in-process");
  ASSERT_EQ(plugin->capabilities.size(), 8u);
  const CapabilityInfo& echo = plugin->capabilities[0]->info();
  EXPECT_EQ(echo.name, "testgood.echo");
  EXPECT_EQ(echo.kind, CapabilityKind::step);
  EXPECT_EQ(echo.input_schema["required"], Json::array({"text"}));
  // A schema with properties and no additionalProperties is closed by the host.
  EXPECT_EQ(echo.input_schema["additionalProperties"], false);
  EXPECT_EQ(plugin->capabilities.back()->info().name, "testgood.provide");
  EXPECT_EQ(plugin->capabilities.back()->info().kind, CapabilityKind::provider);
}

TEST(NativePlugin, EachLoadFailureHasItsOwnMessage) {
  EXPECT_NE(load_error("test_no_entry").find("missing entry point herald_plugin_entry"),
            std::string::npos);
  EXPECT_NE(load_error("test_null_descriptor").find("returned no descriptor"), std::string::npos);
  std::string major = load_error("test_abi_major");
  EXPECT_NE(major.find("incompatible ABI: built for 2.0.0"), std::string::npos) << major;
  EXPECT_NE(major.find("major version must match"), std::string::npos) << major;
  std::string minor = load_error("test_abi_minor");
  const std::string newer = std::to_string(HERALD_ABI_VERSION_MAJOR) + "." +
                            std::to_string(HERALD_ABI_VERSION_MINOR + 1) + ".0";
  EXPECT_NE(minor.find("incompatible ABI: built for " + newer + ", newer than"), std::string::npos)
      << minor;
  std::string init = load_error("test_init_fails");
  EXPECT_NE(init.find("init failed: TESTCASE_API_KEY is not set"), std::string::npos) << init;
  std::string schema = load_error("test_bad_schema");
  EXPECT_NE(schema.find("schema invalid: capability 'testcase.run'"), std::string::npos) << schema;
  std::string not_json = load_error("test_schema_not_json");
  EXPECT_NE(not_json.find("schema invalid: capability 'testcase.run': input_schema is not JSON"),
            std::string::npos)
      << not_json;
  EXPECT_NE(load_error("test_missing_file").find("cannot load"), std::string::npos);
}

TEST(NativePlugin, PatchVersionIsIgnored) {
  // The "no output" case is built with a patch version the host does not have; it loads.
  auto plugin = load_native_plugin(test_plugin("test_no_output"));
  ASSERT_TRUE(plugin.ok()) << plugin.error().message;
}

TEST(NativePlugin, DuplicateCapabilityNameIsRefused) {
  LoadOptions options;
  options.paths = {test_plugin("test_good"), test_plugin("test_dup_capability")};
  PluginSet set = PluginSet::load(options);
  ASSERT_EQ(set.plugins().size(), 1u);
  ASSERT_EQ(set.errors().size(), 1u);
  const std::string& message = set.errors()[0].message;
  EXPECT_NE(message.find(test_plugin("test_dup_capability") +
                         ": duplicate capability name "
                         "'testgood.echo': already provided by " +
                         test_plugin("test_good")),
            std::string::npos)
      << message;
}

Capability& find(const LoadedPlugin& plugin, const std::string& name) {
  for (const auto& c : plugin.capabilities) {
    if (c->info().name == name) return *c;
  }
  throw std::runtime_error("no capability " + name);
}

TEST(NativePlugin, KvEntriesLastBetweenCallsPerWorkspace) {
  auto plugin = load_native_plugin(test_plugin("test_good"));
  ASSERT_TRUE(plugin.ok()) << plugin.error().message;
  Capability& count = find(*plugin, "testgood.count");
  CallContext first;
  auto one = count.invoke(Json::object(), first.context);
  ASSERT_EQ(one.kind, steps::StepOutcome::Kind::done) << one.error.message;
  EXPECT_EQ(one.output, (Json{{"count", 1}, {"before", nullptr}}));
  CallContext second(first.store);
  auto two = count.invoke(Json::object(), second.context);
  ASSERT_EQ(two.kind, steps::StepOutcome::Kind::done) << two.error.message;
  EXPECT_EQ(two.output, (Json{{"count", 2}, {"before", {{"n", 1}}}}));
  // Another workspace on the same store has entries of its own.
  CallContext other(first.store);
  other.run["workspace"] = "globex";
  EXPECT_EQ(count.invoke(Json::object(), other.context).output["count"], 1);
  // Deleting, then counting again, starts over.
  CallContext third(first.store);
  ASSERT_EQ(count.invoke({{"delete", true}}, third.context).kind, steps::StepOutcome::Kind::done);
  EXPECT_EQ(count.invoke(Json::object(), third.context).output["count"], 1);
}

TEST(NativePlugin, KvRefusesBadKeysAndCallsWithoutAStore) {
  auto plugin = load_native_plugin(test_plugin("test_good"));
  ASSERT_TRUE(plugin.ok()) << plugin.error().message;
  Capability& count = find(*plugin, "testgood.count");
  CallContext call;
  auto empty_key = count.invoke({{"key", ""}}, call.context);
  ASSERT_EQ(empty_key.kind, steps::StepOutcome::Kind::failed);
  EXPECT_EQ(empty_key.error.code, ErrorCode::invalid_argument);
  EXPECT_NE(empty_key.error.message.find("1 to 256 bytes"), std::string::npos)
      << empty_key.error.message;
  auto long_key = count.invoke({{"key", std::string(257, 'k')}}, call.context);
  EXPECT_EQ(long_key.error.code, ErrorCode::invalid_argument);
  auto negative_ttl = count.invoke({{"ttl", -5}}, call.context);
  EXPECT_EQ(negative_ttl.error.code, ErrorCode::invalid_argument);
  call.context.kv = nullptr;
  auto no_store = count.invoke(Json::object(), call.context);
  ASSERT_EQ(no_store.kind, steps::StepOutcome::Kind::failed);
  EXPECT_EQ(no_store.error.code, ErrorCode::failed_precondition);
}

TEST(NativePlugin, CallsGoThroughTheHostApi) {
  auto plugin = load_native_plugin(test_plugin("test_good"));
  ASSERT_TRUE(plugin.ok()) << plugin.error().message;
  CallContext call;
  auto outcome = plugin->capabilities[0]->invoke({{"text", "ab"}, {"count", 3}}, call.context);
  ASSERT_EQ(outcome.kind, steps::StepOutcome::Kind::done) << outcome.error.message;
  EXPECT_EQ(outcome.output["text"], "ababab");
  EXPECT_EQ(outcome.output["idempotency_key"], "run-1/post");
  EXPECT_EQ(outcome.output["cancelled"], false);
  const Json& context = outcome.output["context"];
  EXPECT_EQ(context["run_id"], "run-1");
  EXPECT_EQ(context["step_id"], "post");
  EXPECT_EQ(context["attempt"], 2);
  EXPECT_EQ(context["workspace_id"], "acme");
  EXPECT_EQ(context["plugin"], "testgood");
  ASSERT_EQ(call.logs.size(), 1u);
  EXPECT_EQ(call.logs[0], "info: echoing ab");
}

TEST(NativePlugin, AThrowingCapabilityBecomesAStructuredError) {
  auto plugin = load_native_plugin(test_plugin("test_good"));
  ASSERT_TRUE(plugin.ok()) << plugin.error().message;
  CallContext call;
  auto thrown = capability(*plugin, "testgood.throws").invoke(Json::object(), call.context);
  ASSERT_EQ(thrown.kind, steps::StepOutcome::Kind::failed);
  EXPECT_EQ(thrown.error.code, ErrorCode::internal);
  EXPECT_EQ(thrown.error.message, "testgood.throws: unexpected exception: kaboom");
  EXPECT_FALSE(thrown.error.retryable);

  auto failed = capability(*plugin, "testgood.fail").invoke(Json::object(), call.context);
  ASSERT_EQ(failed.kind, steps::StepOutcome::Kind::failed);
  EXPECT_EQ(failed.error.code, ErrorCode::unavailable);
  EXPECT_EQ(failed.error.message, "the service is busy");
  EXPECT_TRUE(failed.error.retryable);
  ASSERT_TRUE(failed.error.retry_after.has_value());
  EXPECT_EQ(failed.error.retry_after->count(), 1500);
}

TEST(NativePlugin, InvalidJsonAndMissingOutputBreakTheContract) {
  auto bad = load_native_plugin(test_plugin("test_bad_json"));
  ASSERT_TRUE(bad.ok()) << bad.error().message;
  CallContext call;
  auto outcome = bad->capabilities[0]->invoke(Json::object(), call.context);
  ASSERT_EQ(outcome.kind, steps::StepOutcome::Kind::failed);
  EXPECT_EQ(outcome.error.code, ErrorCode::internal);
  EXPECT_NE(outcome.error.message.find("plugin testcase: testcase.run returned invalid JSON"),
            std::string::npos)
      << outcome.error.message;

  auto silent = load_native_plugin(test_plugin("test_no_output"));
  ASSERT_TRUE(silent.ok()) << silent.error().message;
  auto none = silent->capabilities[0]->invoke(Json::object(), call.context);
  ASSERT_EQ(none.kind, steps::StepOutcome::Kind::failed);
  EXPECT_NE(none.error.message.find("without an output"), std::string::npos) << none.error.message;
}

TEST(NativePlugin, SecretsAndEvents) {
  auto plugin = load_native_plugin(test_plugin("test_good"));
  ASSERT_TRUE(plugin.ok()) << plugin.error().message;
  CallContext call;
  call.secrets["TOKEN"] = "s3cr3t-value";
  auto found = capability(*plugin, "testgood.secret").invoke({{"name", "TOKEN"}}, call.context);
  ASSERT_EQ(found.kind, steps::StepOutcome::Kind::done) << found.error.message;
  EXPECT_EQ(found.output["length"], 12);
  auto missing = capability(*plugin, "testgood.secret").invoke({{"name", "NOPE"}}, call.context);
  ASSERT_EQ(missing.kind, steps::StepOutcome::Kind::failed);
  EXPECT_EQ(missing.error.code, ErrorCode::not_found);
  EXPECT_EQ(missing.error.message, "secret 'NOPE' is not set for this workspace");

  auto emitted = capability(*plugin, "testgood.emit")
                     .invoke({{"event", "post.published"}, {"payload", {{"id", 7}}}}, call.context);
  ASSERT_EQ(emitted.kind, steps::StepOutcome::Kind::done) << emitted.error.message;
  ASSERT_EQ(emitted.events.size(), 1u);
  EXPECT_EQ(emitted.events[0].name, "post.published");
  EXPECT_EQ(emitted.events[0].payload["id"], 7);
  auto refused = capability(*plugin, "testgood.emit").invoke({{"event", "run.fake"}}, call.context);
  ASSERT_EQ(refused.kind, steps::StepOutcome::Kind::failed);
  EXPECT_EQ(refused.error.code, ErrorCode::invalid_argument);
  EXPECT_TRUE(refused.events.empty());
}

TEST(NativePlugin, TheStepChecksTheRenderedInputAgainstTheSchema) {
  auto plugin = load_native_plugin(test_plugin("test_good"));
  ASSERT_TRUE(plugin.ok()) << plugin.error().message;
  steps::StepInfo info = make_step_info(plugin->capabilities[0]);
  EXPECT_EQ(info.name, "testgood.echo");
  EXPECT_FALSE(info.input_schema.is_null());
  CallContext call;
  auto outcome = info.step->run({{"text", 5}, {"extra", true}}, call.context);
  ASSERT_EQ(outcome.kind, steps::StepOutcome::Kind::failed);
  EXPECT_EQ(outcome.error.code, ErrorCode::invalid_argument);
  EXPECT_NE(outcome.error.message.find("unknown field 'extra'"), std::string::npos)
      << outcome.error.message;
  EXPECT_NE(outcome.error.message.find("text: expected a string, got an integer (5)"),
            std::string::npos)
      << outcome.error.message;
  EXPECT_TRUE(call.logs.empty()) << "the plugin must not run on a bad input";
}

}  // namespace
}  // namespace herald::plugins
