// The overhead of one plugin capability call with a small JSON input and output, the capability
// itself doing nothing but answer its input: native in-process (the C ABI), Lua (the sandbox) and
// isolated native (a `herald plugin-host` child over a UNIX socket). Targets (issue 4): native
// under 5 µs, Lua under 20 µs, isolated under 100 µs.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "engine/plugins/plugin.h"

namespace {

using herald::Json;
using herald::Result;
using namespace herald::plugins;

const char* kLuaEcho = R"(
return {
  name = "benchlua",
  version = "1.0.0",
  description = "Answers its input",
  capabilities = { echo = { run = function(input) return input end } },
}
)";

// The test plugin's path (a constant: GCC 12 flags `std::string(A) + B` inlined here with a false
// -Warray-bounds).
const char* const kTestPlugin = HERALD_TEST_PLUGIN_DIR "/test_isolation.so";

const Json kInput = {{"text", "hello"}, {"n", 1}, {"flag", true}};

void run_calls(benchmark::State& state, Capability& capability) {
  herald::steps::StepContext context;
  for (auto _ : state) {
    auto outcome = capability.invoke(kInput, context);
    if (outcome.kind != herald::steps::StepOutcome::Kind::done) {
      state.SkipWithError(outcome.error.message.c_str());
      break;
    }
    benchmark::DoNotOptimize(outcome.output);
  }
}

std::shared_ptr<Capability> find(Result<LoadedPlugin>& plugin, const std::string& name,
                                 benchmark::State& state) {
  if (!plugin.ok()) {
    state.SkipWithError(plugin.error().message.c_str());
    return nullptr;
  }
  for (const auto& capability : plugin->capabilities) {
    if (capability->info().name == name) return capability;
  }
  state.SkipWithError(("no capability " + name).c_str());
  return nullptr;
}

void BM_NativeInProcessCall(benchmark::State& state) {
  auto plugin = load_native_plugin(kTestPlugin);
  if (auto capability = find(plugin, "testiso.echo", state)) run_calls(state, *capability);
}
BENCHMARK(BM_NativeInProcessCall);

void BM_LuaCall(benchmark::State& state) {
  auto file = std::filesystem::temp_directory_path() /
              ("herald-bench-" + std::to_string(::getpid()) + "-benchlua.lua");
  std::ofstream(file) << kLuaEcho;
  auto plugin = load_lua_plugin(file.string());
  std::filesystem::remove(file);
  if (auto capability = find(plugin, "benchlua.echo", state)) run_calls(state, *capability);
}
BENCHMARK(BM_LuaCall);

void BM_IsolatedNativeCall(benchmark::State& state) {
  IsolationOptions options;
  options.host_binary = HERALD_BINARY;
  auto plugin = load_isolated_plugin(kTestPlugin, options);
  if (auto capability = find(plugin, "testiso.echo", state)) run_calls(state, *capability);
}
BENCHMARK(BM_IsolatedNativeCall)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
