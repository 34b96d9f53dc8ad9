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
  // Throws std::invalid_argument for a name or label name Prometheus refuses, or for a repeated
  // declaration with another type or other label names. An unlabelled family has its one series
  // from the start (rendered as 0); a labelled one shows only HELP and TYPE until first updated.
  // Histogram buckets are sorted and deduplicated (+Inf is implied; none given: Prometheus's
  // default 0.005 .. 10).
  void declare_counter(const std::string& name, const std::string& help,
                       std::vector<std::string> label_names);
  void declare_gauge(const std::string& name, const std::string& help,
                     std::vector<std::string> label_names);
  void declare_histogram(const std::string& name, const std::string& help,
                         std::vector<std::string> label_names, std::vector<double> buckets);

  // Label values in the order of the declared names. Unknown family names, the wrong number of
  // label values (logged once per family), an update of another type's family, a negative
  // increment of a counter and NaN observations are ignored. increment() also applies to gauges.
  void increment(const std::string& name, const std::vector<std::string>& label_values,
                 double by = 1.0);
  void set(const std::string& name, const std::vector<std::string>& label_values, double value);
  void observe(const std::string& name, const std::vector<std::string>& label_values,
               double value);
  // A gauge read when rendering (ready-queue depth, waiting runs): `name` must be declared as an
  // unlabelled gauge. Called without any lock held, so it may update other metrics; an exception
  // from it renders NaN.
  void gauge_callback(const std::string& name, std::function<double()> read);

  // The text exposition format; label values escaped (\\, \", \n).
  std::string render() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::server
