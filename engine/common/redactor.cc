#include "engine/common/redactor.h"

#include <algorithm>

namespace herald {

Redactor::Redactor(std::vector<std::string> secrets) {
  for (auto& secret : secrets) add(std::move(secret));
}

void Redactor::add(std::string secret) {
  if (secret.size() < kMinSecretLength) return;
  if (std::find(secrets_.begin(), secrets_.end(), secret) != secrets_.end()) return;
  secrets_.push_back(std::move(secret));
  std::sort(secrets_.begin(), secrets_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string Redactor::redact_text(std::string_view text) const {
  std::string out(text);
  for (const auto& secret : secrets_) {
    size_t pos = 0;
    while ((pos = out.find(secret, pos)) != std::string::npos) {
      out.replace(pos, secret.size(), kMask);
      pos += kMask.size();
    }
  }
  return out;
}

Json Redactor::redact_json(const Json& value) const {
  if (secrets_.empty()) return value;
  switch (value.type()) {
    case Json::value_t::string:
      return redact_text(value.get_ref<const std::string&>());
    case Json::value_t::array: {
      Json out = Json::array();
      for (const auto& element : value) out.push_back(redact_json(element));
      return out;
    }
    case Json::value_t::object: {
      Json out = Json::object();
      for (const auto& [key, element] : value.items()) out[redact_text(key)] = redact_json(element);
      return out;
    }
    default:
      return value;
  }
}

Error Redactor::redact_error(const Error& error) const {
  Error out = error;
  out.message = redact_text(error.message);
  out.details = redact_json(error.details);
  return out;
}

}  // namespace herald
