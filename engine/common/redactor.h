// Redactor: replaces secret values with "[redacted]" in anything Herald stores or logs (step
// inputs, outputs, errors, log lines). Built once per run from the secrets it may use.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/common/result.h"

namespace herald {

class Redactor {
 public:
  static constexpr std::string_view kMask = "[redacted]";
  // Values shorter than this are not redacted: masking "1" or "ab" everywhere would destroy
  // unrelated data while protecting nothing.
  static constexpr size_t kMinSecretLength = 4;

  Redactor() = default;
  explicit Redactor(std::vector<std::string> secrets);
  void add(std::string secret);
  bool empty() const { return secrets_.empty(); }

  std::string redact_text(std::string_view text) const;
  // Redacts every string (keys and values) inside a JSON value.
  Json redact_json(const Json& value) const;
  Error redact_error(const Error& error) const;

 private:
  std::vector<std::string> secrets_;  // longest first, so a secret containing another is masked whole
};

}  // namespace herald
