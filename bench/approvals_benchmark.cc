// Approvals over HTTP with a full desk: `herald serve`'s service in this process, on a SQLite
// file holding HERALD_BENCH_APPROVALS (default 100,000) pending approvals, each opened by a real
// run of a workflow whose `approval` step asks ann and bob. Every approval waits on ann, so her
// "pending for me" page is cut from all of them: the worst case. Measured over one kept-alive
// connection: GET /api/v1/approvals?mine=true (a page of 50), GET /api/v1/approvals/{id}, and
// POST /api/v1/approvals/{id}/decisions (each on another approval; it closes the level and wakes
// the run), back to back and paced. Targets (issue 5): p99 under 20 ms for the list, under 10 ms
// for a decision.
//
//   approvals_benchmark --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/common/result.h"
#include "engine/security/secret_box.h"
#include "engine/server/admin.h"
#include "engine/server/service.h"
#include "engine/store/store.h"
#include "tests/support/http_client.h"

namespace herald {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kWorkflow = R"(id: bench-review
triggers:
  - manual: {}
inputs:
  n: { type: integer }
steps:
  - id: review
    uses: approval
    with:
      subject:
        title: "Post {{ inputs.n }}"
        text: "Spring sale number {{ inputs.n }}"
      submitter: ed
      chain:
        - name: editor
          approvers: [user:ann, user:bob]
)";

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "approvals_benchmark: %s\n", what.c_str());
  std::exit(1);
}

int approvals_wanted() {
  const char* text = std::getenv("HERALD_BENCH_APPROVALS");
  return text != nullptr && std::atoi(text) > 0 ? std::atoi(text) : 100'000;
}

// The service and its seeded store, made once for every benchmark of the program.
class Desk {
 public:
  Desk() {
    std::string pattern = (std::filesystem::temp_directory_path() / "herald-bench-approvals-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) die("cannot make a temporary folder");
    dir_ = pattern;
    ::setenv(std::string(security::kMasterKeyEnv).c_str(), security::MasterKey::generate().to_hex().c_str(), 1);
    seed_members();
    server::ServiceOptions options;
    options.store_url = "sqlite:" + (dir_ / "herald.db").string();
    options.data_dir = dir_.string();
    options.http.port = 0;
    options.api_rate_per_second = 0;
    service_ = std::make_unique<server::Service>(std::move(options));
    if (auto started = service_->start(); !started.ok()) die(started.error().message);
    spdlog::set_level(spdlog::level::warn);  // one notification line per approval otherwise
    start_runs();
  }
  ~Desk() {
    service_->stop();
    service_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  uint16_t port() const { return service_->port(); }
  const std::string& token(const std::string& user) { return user == "ann" ? ann_ : admin_; }

  // The next approval nobody decided yet, from ann's pending list (fetched a page at a time).
  std::string next_undecided(testing::HttpConnection& connection) {
    if (undecided_.empty()) {
      auto reply = connection.call("GET", "/api/v1/approvals?mine=true&limit=200",
                                   {{"Authorization", "Bearer " + ann_}});
      Json body = Json::parse(reply.body, nullptr, false);
      if (reply.status != 200 || body.is_discarded()) die("pending list: " + reply.body);
      for (const auto& item : body["items"]) {
        std::string id = item.value("id", "");
        if (!decided_.count(id)) undecided_.push_back(id);
      }
      if (undecided_.empty()) die("no undecided approvals left; raise HERALD_BENCH_APPROVALS");
    }
    std::string id = undecided_.back();
    undecided_.pop_back();
    decided_.insert(id);
    return id;
  }

 private:
  void seed_members() {
    auto opened = store::open_store("sqlite:" + (dir_ / "herald.db").string());
    if (!opened.ok()) die(opened.error().message);
    auto store = std::move(opened).value();
    auto actor = server::Actor::cli("bench");
    if (auto made = server::create_workspace(*store, "bench", "bench", actor); !made.ok()) die(made.error().message);
    for (const auto& [user, role] : {std::pair{"admin", security::Role::admin}, std::pair{"ann", security::Role::approver},
                                     std::pair{"bob", security::Role::approver}, std::pair{"ed", security::Role::editor}}) {
      if (auto member = server::put_member(*store, "bench", user, role, user, std::string(user) + "@example.com", actor);
          !member.ok()) {
        die(member.error().message);
      }
    }
    auto admin = server::create_token(*store, "bench", "admin", security::Role::admin, "bench", std::nullopt, actor);
    auto ann = server::create_token(*store, "bench", "ann", security::Role::approver, "bench", std::nullopt, actor);
    if (!admin.ok() || !ann.ok()) die("cannot make tokens");
    admin_ = admin->token;
    ann_ = ann->token;
  }

  // Starts the runs from two connections, then waits until every approval is pending.
  void start_runs() {
    testing::HttpConnection connection("127.0.0.1", port());
    auto deployed = connection.call("POST", "/api/v1/workflows",
                                    {{"Authorization", "Bearer " + admin_}, {"Content-Type", "application/yaml"}}, kWorkflow);
    if (deployed.status != 201) die("deploy: " + deployed.body);
    const int wanted = approvals_wanted();
    auto started_at = Clock::now();
    std::atomic<int> next{0};
    std::vector<std::thread> starters;
    for (int t = 0; t < 2; ++t) {
      starters.emplace_back([&] {
        testing::HttpConnection mine("127.0.0.1", port(), 30s);
        for (int n = next++; n < wanted; n = next++) {
          auto reply = mine.call("POST", "/api/v1/workflows/bench-review/runs",
                                 {{"Authorization", "Bearer " + admin_}, {"Content-Type", "application/json"}},
                                 "{\"inputs\": {\"n\": " + std::to_string(n) + "}}");
          if (reply.status != 201 && reply.status != 202) die("start a run: " + std::to_string(reply.status) + " " + reply.body);
        }
      });
    }
    for (auto& starter : starters) starter.join();
    // Every run parks in its approval step; /metrics counts the waiting runs.
    for (;;) {
      auto metrics = connection.call("GET", "/metrics");
      auto at = metrics.body.find("\nherald_waiting_runs ");
      int waiting = at == std::string::npos ? 0 : std::atoi(metrics.body.c_str() + at + 21);
      if (waiting >= wanted) break;
      std::this_thread::sleep_for(200ms);
    }
    std::fprintf(stderr, "approvals_benchmark: %d pending approvals seeded through runs in %.1f s\n", wanted,
                 std::chrono::duration<double>(Clock::now() - started_at).count());
  }

  std::filesystem::path dir_;
  std::unique_ptr<server::Service> service_;
  std::string admin_;
  std::string ann_;
  std::vector<std::string> undecided_;
  std::set<std::string> decided_;
};

Desk& desk() {
  static Desk instance;
  return instance;
}

// p50 and p99 of the iterations' latencies, as counters beside Google Benchmark's mean.
void report(benchmark::State& state, std::vector<double>& millis) {
  if (millis.empty()) return;
  std::sort(millis.begin(), millis.end());
  auto at = [&](double q) { return millis[std::min(millis.size() - 1, static_cast<size_t>(q * millis.size()))]; };
  state.counters["p50_ms"] = at(0.50);
  state.counters["p99_ms"] = at(0.99);
  state.counters["max_ms"] = millis.back();
}

template <typename Call>
void timed(benchmark::State& state, Call&& call) {
  std::vector<double> millis;
  millis.reserve(static_cast<size_t>(state.max_iterations));
  for (auto _ : state) {
    auto start = Clock::now();
    call();
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    state.SetIterationTime(seconds);
    millis.push_back(seconds * 1000.0);
  }
  report(state, millis);
}

void BM_PendingForMe(benchmark::State& state) {
  auto& d = desk();
  testing::HttpConnection connection("127.0.0.1", d.port());
  std::map<std::string, std::string> auth = {{"Authorization", "Bearer " + d.token("ann")}};
  timed(state, [&] {
    auto reply = connection.call("GET", "/api/v1/approvals?mine=true&limit=50", auth);
    if (reply.status != 200) die("pending for me: " + reply.body);
    benchmark::DoNotOptimize(reply.body.size());
  });
}
BENCHMARK(BM_PendingForMe)->UseManualTime()->Iterations(2000)->Unit(benchmark::kMillisecond);

void BM_GetApproval(benchmark::State& state) {
  auto& d = desk();
  testing::HttpConnection connection("127.0.0.1", d.port());
  std::map<std::string, std::string> auth = {{"Authorization", "Bearer " + d.token("ann")}};
  auto listed = connection.call("GET", "/api/v1/approvals?mine=true&limit=100", auth);
  Json items = Json::parse(listed.body, nullptr, false)["items"];
  size_t i = 0;
  timed(state, [&] {
    auto reply = connection.call("GET", "/api/v1/approvals/" + items[i++ % items.size()].value("id", ""), auth);
    if (reply.status != 200) die("get an approval: " + reply.body);
  });
}
BENCHMARK(BM_GetApproval)->UseManualTime()->Iterations(2000)->Unit(benchmark::kMillisecond);

// Each decision closes its level and wakes its run, which then runs its approval step and
// finishes, competing for the store's writer with the next decision. Back to back (range 0),
// decisions arrive faster than the runs they wake can finish (~1,000/s on 2 cores), so the
// queue behind the writer shows in the tail; paced at one every `range` ms, each finds the store
// idle, as decisions made by people do.
void BM_Decide(benchmark::State& state) {
  auto& d = desk();
  testing::HttpConnection connection("127.0.0.1", d.port());
  std::map<std::string, std::string> headers = {{"Authorization", "Bearer " + d.token("ann")},
                                                {"Content-Type", "application/json"}};
  const auto pause = std::chrono::milliseconds(state.range(0));
  std::vector<double> millis;
  for (auto _ : state) {
    std::string id = d.next_undecided(connection);  // not timed: manual time covers the POST only
    if (pause.count() > 0) std::this_thread::sleep_for(pause);
    auto start = Clock::now();
    auto reply = connection.call("POST", "/api/v1/approvals/" + id + "/decisions", headers,
                                 R"({"decision": "approve", "comment": "fine"})");
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (reply.status != 201) die("decide: " + std::to_string(reply.status) + " " + reply.body);
    state.SetIterationTime(seconds);
    millis.push_back(seconds * 1000.0);
  }
  report(state, millis);
}
BENCHMARK(BM_Decide)->Arg(0)->Arg(20)->UseManualTime()->Iterations(2000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace herald

BENCHMARK_MAIN();
