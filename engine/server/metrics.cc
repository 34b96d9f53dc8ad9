#include "engine/server/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <shared_mutex>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include <spdlog/spdlog.h>

namespace herald::server {

namespace {

enum class Kind { counter, gauge, histogram };

std::string_view kind_name(Kind kind) {
  switch (kind) {
    case Kind::counter:
      return "counter";
    case Kind::gauge:
      return "gauge";
    case Kind::histogram:
      return "histogram";
  }
  return "untyped";
}

struct Series {
  double value = 0;               // counter, gauge
  std::vector<uint64_t> buckets;  // histogram: observations per bucket (not cumulative)
  double sum = 0;
  uint64_t count = 0;
};

struct Family {
  Kind kind = Kind::counter;
  std::string name;
  std::string help;
  std::vector<std::string> label_names;
  std::vector<double> bounds;  // histogram upper bounds, ascending, finite (+Inf is implied)

  mutable std::mutex mutex;
  std::map<std::vector<std::string>, Series> series;  // by label values
  std::function<double()> callback;                   // unlabelled gauges only
  bool warned = false;  // about label values that do not fit the declaration

  Series make_series() const {
    Series s;
    if (kind == Kind::histogram) s.buckets.assign(bounds.size(), 0);
    return s;
  }

  // Under `mutex`. nullptr when the label values do not fit the declared names.
  Series* series_for(const std::vector<std::string>& values) {
    if (values.size() != label_names.size()) {
      if (!warned) {
        warned = true;
        spdlog::warn("metrics: {} takes {} label values, got {}; update ignored", name,
                     label_names.size(), values.size());
      }
      return nullptr;
    }
    auto it = series.find(values);
    if (it == series.end()) it = series.emplace(values, make_series()).first;
    return &it->second;
  }
};

bool valid_metric_name(const std::string& name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool valid_label_name(const std::string& name) {
  if (name.empty() || name.rfind("__", 0) == 0) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// Integers without a fraction or exponent ("3"), other values in the shortest form that reads
// back exactly ("0.25", "1e-07"), and NaN / +Inf / -Inf as Prometheus spells them.
std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<int64_t>(v));  // also turns -0 into "0"
  }
  char buffer[64];
  double magnitude = std::fabs(v);
  std::to_chars_result result =
      (magnitude >= 1e-4 && magnitude < 1e15)
          ? std::to_chars(buffer, buffer + sizeof buffer, v, std::chars_format::fixed)
          : std::to_chars(buffer, buffer + sizeof buffer, v);
  return std::string(buffer, result.ptr);
}

void append_escaped_label_value(std::string& out, const std::string& value) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

void append_escaped_help(std::string& out, const std::string& help) {
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

// `{a="x",b="y"}`, with `extra` (the histogram's le) last; nothing when there are no labels.
void append_labels(std::string& out, const std::vector<std::string>& names,
                   const std::vector<std::string>& values, const std::string* le = nullptr) {
  if (names.empty() && le == nullptr) return;
  out += '{';
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    append_escaped_label_value(out, values[i]);
    out += '"';
  }
  if (le != nullptr) {
    if (!names.empty()) out += ',';
    out += "le=\"";
    out += *le;
    out += '"';
  }
  out += '}';
}

void append_sample(std::string& out, const std::string& name, std::string_view suffix,
                   const std::vector<std::string>& names, const std::vector<std::string>& values,
                   double value, const std::string* le = nullptr) {
  out += name;
  out += suffix;
  append_labels(out, names, values, le);
  out += ' ';
  out += format_value(value);
  out += '\n';
}

}  // namespace

struct Metrics::Impl {
  mutable std::shared_mutex mutex;                // guards the list of families, not their series
  std::vector<std::unique_ptr<Family>> families;  // in declaration order
  std::unordered_map<std::string, Family*> by_name;

  Family* find(const std::string& name) const {
    std::shared_lock lock(mutex);
    auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : it->second;
  }

  void declare(Kind kind, const std::string& name, const std::string& help,
               std::vector<std::string> label_names, std::vector<double> bounds) {
    if (!valid_metric_name(name)) {
      throw std::invalid_argument("metrics: invalid metric name '" + name + "'");
    }
    for (size_t i = 0; i < label_names.size(); ++i) {
      const std::string& label = label_names[i];
      if (!valid_label_name(label) || (kind == Kind::histogram && label == "le")) {
        throw std::invalid_argument("metrics: invalid label name '" + label + "' for " + name);
      }
      if (std::find(label_names.begin(), label_names.begin() + static_cast<std::ptrdiff_t>(i),
                    label) != label_names.begin() + static_cast<std::ptrdiff_t>(i)) {
        throw std::invalid_argument("metrics: label '" + label + "' repeated for " + name);
      }
    }
    std::unique_lock lock(mutex);
    if (auto it = by_name.find(name); it != by_name.end()) {
      const Family& existing = *it->second;
      if (existing.kind != kind || existing.label_names != label_names) {
        throw std::invalid_argument("metrics: " + name + " declared again as another " +
                                    "type or with other labels");
      }
      return;
    }
    auto family = std::make_unique<Family>();
    family->kind = kind;
    family->name = name;
    family->help = help;
    family->label_names = std::move(label_names);
    if (kind == Kind::histogram) {
      bounds.erase(
          std::remove_if(bounds.begin(), bounds.end(), [](double b) { return !std::isfinite(b); }),
          bounds.end());
      std::sort(bounds.begin(), bounds.end());
      bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
      family->bounds = std::move(bounds);
    }
    // An unlabelled family has its one series from the start, so it renders as 0.
    if (family->label_names.empty())
      family->series.emplace(std::vector<std::string>{}, family->make_series());
    by_name.emplace(family->name, family.get());
    families.push_back(std::move(family));
  }
};

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {}
Metrics::~Metrics() = default;

void Metrics::declare_counter(const std::string& name, const std::string& help,
                              std::vector<std::string> label_names) {
  impl_->declare(Kind::counter, name, help, std::move(label_names), {});
}

void Metrics::declare_gauge(const std::string& name, const std::string& help,
                            std::vector<std::string> label_names) {
  impl_->declare(Kind::gauge, name, help, std::move(label_names), {});
}

void Metrics::declare_histogram(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names, std::vector<double> buckets) {
  if (buckets.empty()) buckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  impl_->declare(Kind::histogram, name, help, std::move(label_names), std::move(buckets));
}

void Metrics::increment(const std::string& name, const std::vector<std::string>& label_values,
                        double by) {
  Family* family = impl_->find(name);
  if (family == nullptr || family->kind == Kind::histogram || std::isnan(by)) return;
  if (family->kind == Kind::counter && by < 0) return;  // counters only go up
  std::lock_guard lock(family->mutex);
  if (Series* series = family->series_for(label_values)) series->value += by;
}

void Metrics::set(const std::string& name, const std::vector<std::string>& label_values,
                  double value) {
  Family* family = impl_->find(name);
  if (family == nullptr || family->kind != Kind::gauge) return;
  std::lock_guard lock(family->mutex);
  if (Series* series = family->series_for(label_values)) series->value = value;
}

void Metrics::observe(const std::string& name, const std::vector<std::string>& label_values,
                      double value) {
  Family* family = impl_->find(name);
  if (family == nullptr || family->kind != Kind::histogram || std::isnan(value)) return;
  // The first bucket whose upper bound is >= value; past the end only +Inf holds it.
  size_t bucket =
      static_cast<size_t>(std::lower_bound(family->bounds.begin(), family->bounds.end(), value) -
                          family->bounds.begin());
  std::lock_guard lock(family->mutex);
  Series* series = family->series_for(label_values);
  if (series == nullptr) return;
  if (bucket < series->buckets.size()) ++series->buckets[bucket];
  series->sum += value;
  ++series->count;
}

void Metrics::gauge_callback(const std::string& name, std::function<double()> read) {
  Family* family = impl_->find(name);
  if (family == nullptr || family->kind != Kind::gauge || !family->label_names.empty()) return;
  std::lock_guard lock(family->mutex);
  family->callback = std::move(read);
}

std::string Metrics::render() const {
  std::vector<Family*> families;
  {
    std::shared_lock lock(impl_->mutex);
    families.reserve(impl_->families.size());
    for (const auto& family : impl_->families) families.push_back(family.get());
  }
  std::string out;
  out.reserve(families.size() * 256);
  for (Family* family : families) {
    // The callback runs without the family's lock: it may well update other metrics.
    std::function<double()> callback;
    {
      std::lock_guard lock(family->mutex);
      callback = family->callback;
    }
    if (callback) {
      double value;
      try {
        value = callback();
      } catch (const std::exception& e) {
        spdlog::warn("metrics: reading {} failed: {}", family->name, e.what());
        value = std::nan("");
      }
      std::lock_guard lock(family->mutex);
      family->series[{}].value = value;
    }

    out += "# HELP ";
    out += family->name;
    out += ' ';
    append_escaped_help(out, family->help);
    out += "\n# TYPE ";
    out += family->name;
    out += ' ';
    out += kind_name(family->kind);
    out += '\n';

    std::lock_guard lock(family->mutex);
    for (const auto& [values, series] : family->series) {
      if (family->kind != Kind::histogram) {
        append_sample(out, family->name, "", family->label_names, values, series.value);
        continue;
      }
      uint64_t cumulative = 0;
      for (size_t i = 0; i < family->bounds.size(); ++i) {
        cumulative += series.buckets[i];
        std::string le = format_value(family->bounds[i]);
        append_sample(out, family->name, "_bucket", family->label_names, values,
                      static_cast<double>(cumulative), &le);
      }
      static const std::string kInf = "+Inf";
      append_sample(out, family->name, "_bucket", family->label_names, values,
                    static_cast<double>(series.count), &kInf);
      append_sample(out, family->name, "_sum", family->label_names, values, series.sum);
      append_sample(out, family->name, "_count", family->label_names, values,
                    static_cast<double>(series.count));
    }
  }
  return out;
}

}  // namespace herald::server
