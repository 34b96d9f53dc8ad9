// Prometheus text rendering: exact output for each kind, number formatting, label escaping,
// declaration and label order, histograms' cumulative buckets, gauge callbacks, and that
// concurrent updates are all counted. The rendered text is also parsed line by line, so each
// sample is checked by its name and labels.
#include "engine/server/metrics.h"

#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace herald::server {
namespace {

// The exposition format, parsed: HELP and TYPE per family, samples keyed by "name{labels}" as
// rendered. Fails the test on any line that is not one of the three forms.
struct Parsed {
  std::map<std::string, std::string> help;
  std::map<std::string, std::string> type;
  std::map<std::string, std::string> samples;
  std::vector<std::string> family_order;  // from the TYPE lines
  std::vector<std::string> sample_order;
};

Parsed parse(const std::string& text) {
  Parsed parsed;
  EXPECT_TRUE(text.empty() || text.back() == '\n') << "the text must end with a newline";
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      std::string rest = line.substr(7);
      size_t space = rest.find(' ');
      std::string name = rest.substr(0, space);
      EXPECT_EQ(parsed.help.count(name), 0u) << "HELP twice for " << name;
      parsed.help[name] = space == std::string::npos ? "" : rest.substr(space + 1);
    } else if (line.rfind("# TYPE ", 0) == 0) {
      std::string rest = line.substr(7);
      size_t space = rest.find(' ');
      std::string name = rest.substr(0, space);
      EXPECT_EQ(parsed.type.count(name), 0u) << "TYPE twice for " << name;
      parsed.type[name] = rest.substr(space + 1);
      parsed.family_order.push_back(name);
    } else {
      // name{labels} value — the value is after the last space (label values may hold spaces).
      size_t space = line.rfind(' ');
      if (space == std::string::npos || line.empty() || line[0] == '#') {
        ADD_FAILURE() << "unexpected line: " << line;
        continue;
      }
      std::string key = line.substr(0, space);
      EXPECT_EQ(parsed.samples.count(key), 0u) << "sample twice: " << key;
      parsed.samples[key] = line.substr(space + 1);
      parsed.sample_order.push_back(key);
    }
  }
  return parsed;
}

TEST(MetricsTest, CounterExactText) {
  Metrics metrics;
  metrics.declare_counter("herald_runs_started_total", "Runs started.", {"workflow"});
  metrics.increment("herald_runs_started_total", {"welcome"});
  metrics.increment("herald_runs_started_total", {"welcome"}, 2);
  metrics.increment("herald_runs_started_total", {"digest"});
  EXPECT_EQ(metrics.render(),
            "# HELP herald_runs_started_total Runs started.\n"
            "# TYPE herald_runs_started_total counter\n"
            "herald_runs_started_total{workflow=\"digest\"} 1\n"
            "herald_runs_started_total{workflow=\"welcome\"} 3\n");
}

TEST(MetricsTest, UnlabelledFamiliesStartAtZero) {
  Metrics metrics;
  metrics.declare_counter("a_total", "A.", {});
  metrics.declare_gauge("b", "B.", {});
  metrics.declare_counter("c_total", "C, labelled.", {"x"});
  EXPECT_EQ(metrics.render(),
            "# HELP a_total A.\n"
            "# TYPE a_total counter\n"
            "a_total 0\n"
            "# HELP b B.\n"
            "# TYPE b gauge\n"
            "b 0\n"
            "# HELP c_total C, labelled.\n"
            "# TYPE c_total counter\n");
}

TEST(MetricsTest, GaugeSetAndIncrement) {
  Metrics metrics;
  metrics.declare_gauge("herald_runs_waiting", "Runs waiting.", {"reason"});
  metrics.set("herald_runs_waiting", {"timer"}, 5);
  metrics.set("herald_runs_waiting", {"timer"}, 2);
  metrics.increment("herald_runs_waiting", {"event"}, -3);  // gauges may go down
  metrics.set("herald_runs_waiting", {"approval"}, 0.5);
  Parsed parsed = parse(metrics.render());
  EXPECT_EQ(parsed.type["herald_runs_waiting"], "gauge");
  EXPECT_EQ(parsed.samples["herald_runs_waiting{reason=\"timer\"}"], "2");
  EXPECT_EQ(parsed.samples["herald_runs_waiting{reason=\"event\"}"], "-3");
  EXPECT_EQ(parsed.samples["herald_runs_waiting{reason=\"approval\"}"], "0.5");
  // Series in label order.
  EXPECT_EQ(parsed.sample_order,
            (std::vector<std::string>{"herald_runs_waiting{reason=\"approval\"}",
                                      "herald_runs_waiting{reason=\"event\"}",
                                      "herald_runs_waiting{reason=\"timer\"}"}));
}

TEST(MetricsTest, CountersIgnoreNegativeIncrementsAndSet) {
  Metrics metrics;
  metrics.declare_counter("c_total", "C.", {});
  metrics.increment("c_total", {}, 4);
  metrics.increment("c_total", {}, -1);
  metrics.set("c_total", {}, 100);
  metrics.observe("c_total", {}, 1);
  EXPECT_EQ(parse(metrics.render()).samples["c_total"], "4");
}

TEST(MetricsTest, HistogramExactText) {
  Metrics metrics;
  metrics.declare_histogram("herald_step_seconds", "Step durations.", {"step"},
                            {1, 0.125, 0.5});  // unsorted on purpose
  metrics.observe("herald_step_seconds", {"http"}, 0.0625);
  metrics.observe("herald_step_seconds", {"http"}, 0.125);  // le is inclusive
  metrics.observe("herald_step_seconds", {"http"}, 0.75);
  metrics.observe("herald_step_seconds", {"http"}, 3);
  EXPECT_EQ(metrics.render(),
            "# HELP herald_step_seconds Step durations.\n"
            "# TYPE herald_step_seconds histogram\n"
            "herald_step_seconds_bucket{step=\"http\",le=\"0.125\"} 2\n"
            "herald_step_seconds_bucket{step=\"http\",le=\"0.5\"} 2\n"
            "herald_step_seconds_bucket{step=\"http\",le=\"1\"} 3\n"
            "herald_step_seconds_bucket{step=\"http\",le=\"+Inf\"} 4\n"
            "herald_step_seconds_sum{step=\"http\"} 3.9375\n"
            "herald_step_seconds_count{step=\"http\"} 4\n");
}

TEST(MetricsTest, UnlabelledHistogramStartsEmpty) {
  Metrics metrics;
  metrics.declare_histogram("h_seconds", "H.", {}, {0.0005, 2.5});
  EXPECT_EQ(metrics.render(),
            "# HELP h_seconds H.\n"
            "# TYPE h_seconds histogram\n"
            "h_seconds_bucket{le=\"0.0005\"} 0\n"
            "h_seconds_bucket{le=\"2.5\"} 0\n"
            "h_seconds_bucket{le=\"+Inf\"} 0\n"
            "h_seconds_sum 0\n"
            "h_seconds_count 0\n");
  metrics.observe("h_seconds", {}, 0.0001);
  Parsed parsed = parse(metrics.render());
  EXPECT_EQ(parsed.samples["h_seconds_bucket{le=\"0.0005\"}"], "1");
  EXPECT_EQ(parsed.samples["h_seconds_sum"], "0.0001");
  EXPECT_EQ(parsed.samples["h_seconds_count"], "1");
}

TEST(MetricsTest, HistogramDefaultBuckets) {
  Metrics metrics;
  metrics.declare_histogram("d_seconds", "D.", {}, {});
  Parsed parsed = parse(metrics.render());
  EXPECT_EQ(parsed.samples.count("d_seconds_bucket{le=\"0.005\"}"), 1u);
  EXPECT_EQ(parsed.samples.count("d_seconds_bucket{le=\"10\"}"), 1u);
  EXPECT_EQ(parsed.samples.count("d_seconds_bucket{le=\"+Inf\"}"), 1u);
}

TEST(MetricsTest, NumbersPrintWithoutNeedlessDigits) {
  Metrics metrics;
  metrics.declare_gauge("g", "G.", {"v"});
  metrics.set("g", {"int"}, 3);
  metrics.set("g", {"big"}, 123456789012);
  metrics.set("g", {"neg"}, -7);
  metrics.set("g", {"frac"}, 0.125);
  metrics.set("g", {"third"}, 1.0 / 3);
  metrics.set("g", {"tiny"}, 1e-9);
  metrics.set("g", {"huge"}, 1e20);
  metrics.set("g", {"inf"}, std::numeric_limits<double>::infinity());
  metrics.set("g", {"ninf"}, -std::numeric_limits<double>::infinity());
  metrics.set("g", {"nan"}, std::numeric_limits<double>::quiet_NaN());
  metrics.set("g", {"negzero"}, -0.0);
  Parsed parsed = parse(metrics.render());
  EXPECT_EQ(parsed.samples["g{v=\"int\"}"], "3");
  EXPECT_EQ(parsed.samples["g{v=\"big\"}"], "123456789012");
  EXPECT_EQ(parsed.samples["g{v=\"neg\"}"], "-7");
  EXPECT_EQ(parsed.samples["g{v=\"frac\"}"], "0.125");
  EXPECT_EQ(std::stod(parsed.samples["g{v=\"third\"}"]), 1.0 / 3);  // round-trips
  EXPECT_EQ(std::stod(parsed.samples["g{v=\"tiny\"}"]), 1e-9);
  EXPECT_EQ(std::stod(parsed.samples["g{v=\"huge\"}"]), 1e20);
  EXPECT_EQ(parsed.samples["g{v=\"inf\"}"], "+Inf");
  EXPECT_EQ(parsed.samples["g{v=\"ninf\"}"], "-Inf");
  EXPECT_EQ(parsed.samples["g{v=\"nan\"}"], "NaN");
  EXPECT_EQ(parsed.samples["g{v=\"negzero\"}"], "0");
  for (const auto& [key, value] : parsed.samples) {
    EXPECT_EQ(value.find("000000"), std::string::npos) << key << " " << value;
  }
}

TEST(MetricsTest, LabelValuesAndHelpAreEscaped) {
  Metrics metrics;
  metrics.declare_counter("e_total", "Line one\nback\\slash \"quoted\".", {"a", "b"});
  metrics.increment("e_total", {"x\"y", "back\\slash\nnewline"});
  EXPECT_EQ(metrics.render(),
            "# HELP e_total Line one\\nback\\\\slash \"quoted\".\n"
            "# TYPE e_total counter\n"
            "e_total{a=\"x\\\"y\",b=\"back\\\\slash\\nnewline\"} 1\n");
}

TEST(MetricsTest, FamiliesInDeclarationOrderAndLabelsInDeclaredOrder) {
  Metrics metrics;
  metrics.declare_counter("zzz_total", "Z.", {"z", "a"});
  metrics.declare_counter("aaa_total", "A.", {});
  metrics.declare_histogram("mmm_seconds", "M.", {"k"}, {1});
  metrics.increment("zzz_total", {"1", "2"});
  metrics.observe("mmm_seconds", {"v"}, 0.5);
  Parsed parsed = parse(metrics.render());
  EXPECT_EQ(parsed.family_order,
            (std::vector<std::string>{"zzz_total", "aaa_total", "mmm_seconds"}));
  EXPECT_EQ(parsed.samples["zzz_total{z=\"1\",a=\"2\"}"], "1");
  EXPECT_EQ(parsed.help["mmm_seconds"], "M.");
  EXPECT_EQ(parsed.type["mmm_seconds"], "histogram");
}

TEST(MetricsTest, RepeatedDeclarationKeepsTheFamily) {
  Metrics metrics;
  metrics.declare_counter("r_total", "First help.", {"x"});
  metrics.increment("r_total", {"a"});
  metrics.declare_counter("r_total", "Second help.", {"x"});
  metrics.increment("r_total", {"a"});
  std::string text = metrics.render();
  Parsed parsed = parse(text);
  EXPECT_EQ(parsed.help["r_total"], "First help.");
  EXPECT_EQ(parsed.samples["r_total{x=\"a\"}"], "2");
  // Another type or other labels under the same name is a programming error.
  EXPECT_THROW(metrics.declare_gauge("r_total", "G.", {"x"}), std::invalid_argument);
  EXPECT_THROW(metrics.declare_counter("r_total", "C.", {"y"}), std::invalid_argument);
}

TEST(MetricsTest, InvalidNamesAreRefused) {
  Metrics metrics;
  EXPECT_THROW(metrics.declare_counter("", "x", {}), std::invalid_argument);
  EXPECT_THROW(metrics.declare_counter("1abc", "x", {}), std::invalid_argument);
  EXPECT_THROW(metrics.declare_counter("a-b", "x", {}), std::invalid_argument);
  EXPECT_THROW(metrics.declare_counter("ok_total", "x", {"bad-label"}), std::invalid_argument);
  EXPECT_THROW(metrics.declare_counter("ok_total", "x", {"__reserved"}), std::invalid_argument);
  EXPECT_THROW(metrics.declare_counter("ok_total", "x", {"a", "a"}), std::invalid_argument);
  EXPECT_THROW(metrics.declare_histogram("h", "x", {"le"}, {1}), std::invalid_argument);
  EXPECT_EQ(metrics.render(), "");
}

TEST(MetricsTest, UnknownNamesAndWrongLabelCountsAreIgnored) {
  Metrics metrics;
  metrics.declare_counter("k_total", "K.", {"a", "b"});
  metrics.increment("unknown_total", {});
  metrics.set("unknown", {}, 1);
  metrics.observe("unknown", {}, 1);
  metrics.gauge_callback("unknown", [] { return 1.0; });
  metrics.increment("k_total", {"only-one"});
  metrics.increment("k_total", {"1", "2", "3"});
  EXPECT_EQ(metrics.render(), "# HELP k_total K.\n# TYPE k_total counter\n");
}

TEST(MetricsTest, GaugeCallbackIsReadAtRenderTime) {
  Metrics metrics;
  metrics.declare_gauge("herald_ready_queue_depth", "Steps ready to run.", {});
  int depth = 3;
  metrics.gauge_callback("herald_ready_queue_depth", [&] { return static_cast<double>(depth); });
  EXPECT_EQ(parse(metrics.render()).samples["herald_ready_queue_depth"], "3");
  depth = 11;
  EXPECT_EQ(parse(metrics.render()).samples["herald_ready_queue_depth"], "11");

  // A callback may update other metrics while being read.
  metrics.declare_gauge("self", "Self.", {});
  metrics.declare_counter("reads_total", "Reads.", {});  // rendered after self's callback ran
  metrics.gauge_callback("self", [&] {
    metrics.increment("reads_total", {});
    return 1.0;
  });
  Parsed parsed = parse(metrics.render());
  EXPECT_EQ(parsed.samples["self"], "1");
  EXPECT_EQ(parsed.samples["reads_total"], "1");

  // A throwing callback renders NaN instead of failing the scrape.
  metrics.declare_gauge("broken", "Broken.", {});
  metrics.gauge_callback("broken", []() -> double { throw std::runtime_error("nope"); });
  EXPECT_EQ(parse(metrics.render()).samples["broken"], "NaN");
}

TEST(MetricsTest, ConcurrentUpdatesAreAllCounted) {
  Metrics metrics;
  metrics.declare_counter("hits_total", "Hits.", {"t"});
  metrics.declare_histogram("lat_seconds", "Latency.", {"t"}, {0.5});
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        metrics.increment("hits_total", {std::to_string(t % 2)});
        metrics.observe("lat_seconds", {"x"}, i % 2 == 0 ? 0.25 : 1.0);
        if (i % 500 == 0) (void)metrics.render();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  Parsed parsed = parse(metrics.render());
  EXPECT_EQ(parsed.samples["hits_total{t=\"0\"}"], std::to_string(kThreads / 2 * kPerThread));
  EXPECT_EQ(parsed.samples["hits_total{t=\"1\"}"], std::to_string(kThreads / 2 * kPerThread));
  EXPECT_EQ(parsed.samples["lat_seconds_count{t=\"x\"}"], std::to_string(kThreads * kPerThread));
  EXPECT_EQ(parsed.samples["lat_seconds_bucket{t=\"x\",le=\"0.5\"}"],
            std::to_string(kThreads * kPerThread / 2));
  EXPECT_EQ(parsed.samples["lat_seconds_sum{t=\"x\"}"],
            std::to_string(kThreads * kPerThread / 2 * 5 / 4));  // 0.25 + 1.0 per pair
}

}  // namespace
}  // namespace herald::server
