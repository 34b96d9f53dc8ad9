// Prometheus metrics for /metrics: counters, gauges and histograms with labels, rendered in the
// Prometheus text exposition format (version 0.0.4). Hand-written because Debian packages no
// Prometheus client for C++; it is small: families of series keyed by their label values, each
// series updated under one mutex per family (updates are a map lookup and an add).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace herald::server {

using Labels = std::vector<std::pair<std::string, std::string>>;  // in declaration order

class Metrics {
 public:
  Metrics();
  ~Metrics();

  // Families are declared once (name, help, label names); a repeated declaration of the same
  // name returns the existing family. Names follow Prometheus rules (e.g. herald_runs_started_total).
  void declare_counter(const std::string& name, const std::string& help,
                       std::vector<std::string> label_names);
  void declare_gauge(const std::string& name, const std::string& help,
                     std::vector<std::string> label_names);
  void declare_histogram(const std::string& name, const std::string& help,
                         std::vector<std::string> label_names, std::vector<double> buckets);

  // Label values in the order of the declared names. Unknown family names are ignored.
  void increment(const std::string& name, const std::vector<std::string>& label_values,
                 double by = 1.0);
  void set(const std::string& name, const std::vector<std::string>& label_values, double value);
  void observe(const std::string& name, const std::vector<std::string>& label_values,
               double value);
  // A gauge read when rendering (ready-queue depth, waiting runs).
  void gauge_callback(const std::string& name, std::function<double()> read);

  // The text exposition format; label values escaped (\\, \", \n).
  std::string render() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::server
