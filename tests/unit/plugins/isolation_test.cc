// Process isolation: native plugins in a `herald plugin-host` child (the real herald binary),
// compared with the same plugins in-process, and the child misbehaving in every way the engine
// must survive (tests/plugins/isolation.c).
#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>
#include <thread>

#include "engine/plugins/plugin.h"
#include "tests/support/local_http_server.h"
#include "tests/unit/plugins/plugin_test_support.h"

namespace herald::plugins {
namespace {

using testing::CallContext;
using testing::test_plugin;

IsolationOptions options(std::chrono::milliseconds timeout = std::chrono::seconds(30),
                         size_t memory_limit_bytes = IsolationOptions{}.memory_limit_bytes) {
  IsolationOptions options;
  options.host_binary = HERALD_BINARY;
  options.call_timeout = timeout;
  options.memory_limit_bytes = memory_limit_bytes;
  return options;
}

Capability& capability(const LoadedPlugin& plugin, const std::string& name) {
  for (const auto& c : plugin.capabilities) {
    if (c->info().name == name) return *c;
  }
  throw std::runtime_error("no capability " + name);
}

LoadedPlugin isolated(const std::string& name,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30),
                      size_t memory_limit_bytes = IsolationOptions{}.memory_limit_bytes) {
  auto plugin = load_isolated_plugin(test_plugin(name), options(timeout, memory_limit_bytes));
  if (!plugin.ok()) throw std::runtime_error(plugin.error().message);
  return std::move(plugin).value();
}

// Everything an outcome says, for comparing the two ways of running a capability.
Json outcome_json(const steps::StepOutcome& outcome) {
  Json events = Json::array();
  for (const auto& event : outcome.events) events.push_back({event.name, event.payload});
  return {{"done", outcome.kind == steps::StepOutcome::Kind::done},
          {"output", outcome.output},
          {"error", outcome.kind == steps::StepOutcome::Kind::done ? Json(nullptr)
                                                                   : outcome.error.to_json()},
          {"events", events}};
}

void expect_recovers(Capability& echo) {
  CallContext call;
  auto outcome = echo.invoke(Json{{"again", true}}, call.context);
  ASSERT_EQ(outcome.kind, steps::StepOutcome::Kind::done) << outcome.error.message;
  EXPECT_EQ(outcome.output, (Json{{"again", true}}));
}

TEST(Isolation, DescribesThePluginLikeInProcess) {
  auto local = load_native_plugin(test_plugin("test_good"));
  ASSERT_TRUE(local.ok()) << local.error().message;
  LoadedPlugin remote = isolated("test_good");
  EXPECT_EQ(remote.info.isolation, "process");
  EXPECT_EQ(local->info.isolation, "in-process");
  Json a = local->info.to_json(true);
  Json b = remote.info.to_json(true);
  a.erase("isolation");
  b.erase("isolation");
  EXPECT_EQ(a, b);
}

TEST(Isolation, SameCapabilitySameResultsEitherWay) {
  herald::testing::LocalHttpServer server;
  server.route("GET", "/hello", herald::testing::Response::json(200, {{"hello", "world"}}));
  auto local = load_native_plugin(test_plugin("test_good"));
  ASSERT_TRUE(local.ok()) << local.error().message;
  LoadedPlugin remote = isolated("test_good");
  const std::vector<std::pair<std::string, Json>> cases = {
      {"testgood.echo", {{"text", "hi"}, {"count", 2}}},
      {"testgood.secret", {{"name", "TOKEN"}}},
      {"testgood.secret", {{"name", "MISSING"}}},
      {"testgood.emit", {{"event", "thing.done"}, {"payload", {{"n", 1}}}}},
      {"testgood.emit", {{"event", "run.forbidden"}}},
      {"testgood.fail", Json::object()},
      {"testgood.throws", Json::object()},
      {"testgood.http", {{"url", server.url("/hello")}}},
      {"testgood.count", {{"ttl", 60}}},
      {"testgood.count", {{"key", ""}}},
  };
  for (const auto& [name, input] : cases) {
    CallContext here;
    CallContext there;
    here.secrets["TOKEN"] = "s3cr3t-value";
    there.secrets["TOKEN"] = "s3cr3t-value";
    auto expected = capability(*local, name).invoke(input, here.context);
    auto actual = capability(remote, name).invoke(input, there.context);
    EXPECT_EQ(outcome_json(expected), outcome_json(actual)) << name << " " << input.dump();
    if (name != "testgood.http") {  // http logs carry the request's duration
      EXPECT_EQ(here.logs, there.logs) << name;
    } else {
      EXPECT_EQ(here.logs.size(), there.logs.size());
    }
  }
}

TEST(Isolation, KvEntriesAreTheEnginesNotTheChilds) {
  LoadedPlugin remote = isolated("test_good");
  CallContext first;
  auto one = capability(remote, "testgood.count").invoke(Json::object(), first.context);
  ASSERT_EQ(one.kind, steps::StepOutcome::Kind::done) << one.error.message;
  CallContext second(first.store);
  auto two = capability(remote, "testgood.count").invoke(Json::object(), second.context);
  ASSERT_EQ(two.kind, steps::StepOutcome::Kind::done) << two.error.message;
  EXPECT_EQ(two.output, (Json{{"count", 2}, {"before", {{"n", 1}}}}));
  // The entry is in the engine's store: an in-process call of the same plugin sees it.
  auto local = load_native_plugin(test_plugin("test_good"));
  ASSERT_TRUE(local.ok()) << local.error().message;
  CallContext third(first.store);
  EXPECT_EQ(capability(*local, "testgood.count").invoke(Json::object(), third.context).output["count"], 3);
}

TEST(Isolation, ContractBreachesReadTheSame) {
  for (const std::string name : {"test_bad_json", "test_no_output"}) {
    auto local = load_native_plugin(test_plugin(name));
    ASSERT_TRUE(local.ok()) << local.error().message;
    LoadedPlugin remote = isolated(name);
    ASSERT_EQ(remote.capabilities.size(), local->capabilities.size());
    for (size_t i = 0; i < remote.capabilities.size(); ++i) {
      CallContext here;
      CallContext there;
      auto expected = local->capabilities[i]->invoke(Json::object(), here.context);
      auto actual = remote.capabilities[i]->invoke(Json::object(), there.context);
      EXPECT_EQ(outcome_json(expected), outcome_json(actual)) << name;
    }
  }
}

TEST(Isolation, LoadErrorsReadTheSame) {
  for (const std::string name : {"test_init_fails", "test_abi_major", "test_no_entry"}) {
    auto local = load_native_plugin(test_plugin(name));
    auto remote = load_isolated_plugin(test_plugin(name), options());
    ASSERT_FALSE(local.ok());
    ASSERT_FALSE(remote.ok()) << name;
    EXPECT_EQ(remote.error().message, local.error().message);
    EXPECT_EQ(remote.error().code, ErrorCode::invalid_argument);
  }
}

TEST(Isolation, SegfaultFailsTheCallRetryableAndTheHostRestarts) {
  LoadedPlugin plugin = isolated("test_isolation");
  CallContext call;
  auto outcome = capability(plugin, "testiso.crash").invoke(Json::object(), call.context);
  ASSERT_EQ(outcome.kind, steps::StepOutcome::Kind::failed);
  EXPECT_TRUE(outcome.error.retryable);
  EXPECT_EQ(outcome.error.code, ErrorCode::unavailable);
  EXPECT_NE(outcome.error.message.find("the plugin host died"), std::string::npos)
      << outcome.error.message;
  EXPECT_NE(outcome.error.message.find("testiso.crash"), std::string::npos);
  expect_recovers(capability(plugin, "testiso.echo"));
}

TEST(Isolation, ExitFailsTheCallAndSaysTheStatus) {
  LoadedPlugin plugin = isolated("test_isolation");
  CallContext call;
  auto outcome = capability(plugin, "testiso.exit").invoke(Json::object(), call.context);
  ASSERT_EQ(outcome.kind, steps::StepOutcome::Kind::failed);
  EXPECT_TRUE(outcome.error.retryable);
  EXPECT_NE(outcome.error.message.find("exited with status 7"), std::string::npos)
      << outcome.error.message;
  expect_recovers(capability(plugin, "testiso.echo"));
}

TEST(Isolation, HangIsKilledAfterTheCallTimeout) {
  LoadedPlugin plugin = isolated("test_isolation", std::chrono::milliseconds(300));
  CallContext call;
  auto outcome = capability(plugin, "testiso.hang").invoke(Json::object(), call.context);
  ASSERT_EQ(outcome.kind, steps::StepOutcome::Kind::failed);
  EXPECT_EQ(outcome.error.code, ErrorCode::deadline_exceeded);
  EXPECT_TRUE(outcome.error.retryable);
  EXPECT_NE(outcome.error.message.find("plugins.call_timeout"), std::string::npos)
      << outcome.error.message;
  expect_recovers(capability(plugin, "testiso.echo"));
}

TEST(Isolation, ALeakFailsTheCallRetryableAndTheHostRestarts) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer builds do not cap the host's address space";
#endif
  LoadedPlugin plugin = isolated("test_isolation", std::chrono::seconds(30), size_t{256} << 20);
  CallContext call;
  auto outcome = capability(plugin, "testiso.leak").invoke(Json::object(), call.context);
  ASSERT_EQ(outcome.kind, steps::StepOutcome::Kind::failed) << outcome.output.dump();
  EXPECT_EQ(outcome.error.code, ErrorCode::resource_exhausted);
  EXPECT_TRUE(outcome.error.retryable);
  EXPECT_NE(outcome.error.message.find("of its 256 MB (plugins.memory_limit_mb)"),
            std::string::npos)
      << outcome.error.message;
  // The next call gets a fresh host: it answers at once instead of failing on the dead one.
  expect_recovers(capability(plugin, "testiso.echo"));
}

TEST(Isolation, HangIsKilledAtTheStepDeadline) {
  LoadedPlugin plugin = isolated("test_isolation");
  CallContext call;
  call.context.deadline = steps::Clock::now() + std::chrono::milliseconds(300);
  auto outcome = capability(plugin, "testiso.hang").invoke(Json::object(), call.context);
  ASSERT_EQ(outcome.kind, steps::StepOutcome::Kind::failed);
  EXPECT_EQ(outcome.error.code, ErrorCode::deadline_exceeded);
  EXPECT_NE(outcome.error.message.find("the step's timeout"), std::string::npos)
      << outcome.error.message;
  expect_recovers(capability(plugin, "testiso.echo"));
}

TEST(Isolation, CancelledRunKillsTheHost) {
  LoadedPlugin plugin = isolated("test_isolation");
  CallContext call;
  call.cancelled = true;
  auto outcome = capability(plugin, "testiso.hang").invoke(Json::object(), call.context);
  ASSERT_EQ(outcome.kind, steps::StepOutcome::Kind::failed);
  EXPECT_EQ(outcome.error.code, ErrorCode::cancelled);
  expect_recovers(capability(plugin, "testiso.echo"));
}

TEST(Isolation, GarbageOnTheChannelFailsTheCall) {
  LoadedPlugin plugin = isolated("test_isolation");
  CallContext call;
  auto outcome = capability(plugin, "testiso.garbage").invoke(Json::object(), call.context);
  ASSERT_EQ(outcome.kind, steps::StepOutcome::Kind::failed);
  EXPECT_TRUE(outcome.error.retryable);
  EXPECT_NE(outcome.error.message.find("sent a frame of"), std::string::npos)
      << outcome.error.message;
  expect_recovers(capability(plugin, "testiso.echo"));
}

TEST(Isolation, ConcurrentCallsAllAnswer) {
  LoadedPlugin plugin = isolated("test_isolation");
  Capability& echo = capability(plugin, "testiso.echo");
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        CallContext call;
        Json input = {{"thread", t}, {"i", i}};
        auto outcome = echo.invoke(input, call.context);
        if (outcome.kind == steps::StepOutcome::Kind::done && outcome.output == input) ++good;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(good.load(), 100);
}

TEST(Isolation, PluginSetIsolatesByName) {
  LoadOptions load;
  load.paths = {test_plugin("test_isolation"), test_plugin("test_good")};
  load.isolate = {"testiso"};
  load.isolation = options();
  PluginSet set = PluginSet::load(load);
  ASSERT_TRUE(set.errors().empty()) << set.errors()[0].message;
  ASSERT_NE(set.find_plugin("testiso"), nullptr);
  ASSERT_NE(set.find_plugin("testgood"), nullptr);
  EXPECT_EQ(set.find_plugin("testiso")->info.isolation, "process");
  EXPECT_EQ(set.find_plugin("testgood")->info.isolation, "in-process");
  expect_recovers(*set.find_capability("testiso.echo"));

  load.isolate = {"testiso", "nosuchplugin"};
  PluginSet missing = PluginSet::load(load);
  ASSERT_EQ(missing.errors().size(), 1u);
  EXPECT_NE(missing.errors()[0].message.find("plugins.isolate names 'nosuchplugin'"),
            std::string::npos)
      << missing.errors()[0].message;
}

}  // namespace
}  // namespace herald::plugins
