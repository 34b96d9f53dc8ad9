#include "engine/steps/http/http_input.h"

#include <algorithm>
#include <cctype>
#include <set>

#include <Poco/Exception.h>
#include <Poco/URI.h>

#include "engine/common/duration.h"

namespace herald::steps::http {
namespace {

const std::set<std::string, std::less<>> kMethods = {"GET",   "POST",   "PUT",
                                                     "PATCH", "DELETE", "HEAD"};
const std::set<std::string, std::less<>> kFields = {"method",
                                                    "url",
                                                    "headers",
                                                    "query",
                                                    "json",
                                                    "body",
                                                    "timeout",
                                                    "idempotency",
                                                    "expect",
                                                    "max_response_bytes",
                                                    "follow_redirects"};

Error bad(std::string message) {
  return make_error(ErrorCode::invalid_argument, "http: " + std::move(message));
}

std::string upper(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool is_token_char(unsigned char c) {
  return std::isalnum(c) ||
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

// Scalars become text the way a workflow author expects: 3 -> "3", true -> "true".
std::optional<std::string> scalar_text(const Json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  if (value.is_number()) return value.dump();
  return std::nullopt;
}

Status parse_method(const Json& input, RequestSpec& spec) {
  if (!input.contains("method")) return {};
  const Json& method = input["method"];
  if (!method.is_string())
    return bad("method must be a string, one of GET POST PUT PATCH DELETE HEAD");
  spec.method = upper(method.get<std::string>());
  if (kMethods.count(spec.method) == 0) {
    return bad("method '" + method.get<std::string>() +
               "' is not supported; expected GET, POST, PUT, PATCH, DELETE or HEAD");
  }
  return {};
}

// Escapes what may not appear raw in a request line (spaces, quotes, control and non-ASCII
// bytes) and leaves everything else, including existing %XX escapes, exactly as written.
std::string escape_unsafe(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (c <= 0x20 || c >= 0x7F ||
        std::string_view("\"<>\\^`{|}").find(static_cast<char>(c)) != std::string_view::npos) {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0x0F];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// The URL without its fragment (never sent), cut into "scheme://authority/path" and the raw query.
struct RawUrl {
  std::string base;
  std::string query;
};

Result<RawUrl> parse_url(const Json& input) {
  if (!input.contains("url")) return bad("url is required");
  const Json& url = input["url"];
  if (!url.is_string() || url.get<std::string>().empty()) {
    return bad("url must be a non-empty string like https://api.example.com/path");
  }
  const std::string& text = url.get_ref<const std::string&>();
  Poco::URI uri;
  try {
    uri = Poco::URI(text);
  } catch (const Poco::Exception& e) {
    return bad("url '" + text + "' is not a valid URL: " + e.message());
  }
  std::string scheme = lower(uri.getScheme());
  if (scheme != "http" && scheme != "https") {
    return bad("url '" + text + "' has scheme '" + uri.getScheme() +
               "'; expected http:// or https://");
  }
  if (uri.getHost().empty()) return bad("url '" + text + "' has no host");
  // Credentials in a URL end up in outputs and logs; a header is where they belong.
  if (!uri.getUserInfo().empty()) {
    return bad("url must not carry credentials (user:password@); use headers.Authorization");
  }
  std::string_view rest(text);
  rest = rest.substr(0, rest.find('#'));
  size_t authority_end = rest.find_first_of("/?", rest.find("://") + 3);
  size_t query_start =
      rest.find('?', authority_end == std::string_view::npos ? rest.size() : authority_end);
  RawUrl raw;
  raw.base = escape_unsafe(rest.substr(0, query_start));
  if (query_start != std::string_view::npos)
    raw.query = escape_unsafe(rest.substr(query_start + 1));
  return raw;
}

Status append_query(const Json& input, std::string& raw) {
  if (!input.contains("query")) return {};
  const Json& query = input["query"];
  if (query.is_null()) return {};
  if (!query.is_object()) return bad("query must be an object of names to values");
  auto add = [&raw](const std::string& name, const std::string& value) {
    if (!raw.empty()) raw += '&';
    raw += percent_encode(name) + "=" + percent_encode(value);
  };
  for (const auto& [name, value] : query.items()) {
    if (value.is_null()) continue;  // an absent optional parameter, not "null"
    if (value.is_array()) {
      for (const Json& element : value) {
        auto text = scalar_text(element);
        if (!text) return bad("query." + name + " must hold strings, numbers or booleans");
        add(name, *text);
      }
      continue;
    }
    auto text = scalar_text(value);
    if (!text) return bad("query." + name + " must be a string, number, boolean or a list of them");
    add(name, *text);
  }
  return {};
}

Status parse_headers(const Json& input, RequestSpec& spec) {
  if (!input.contains("headers") || input["headers"].is_null()) return {};
  const Json& headers = input["headers"];
  if (!headers.is_object()) return bad("headers must be an object of header names to strings");
  for (const auto& [name, value] : headers.items()) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
          return is_token_char(static_cast<unsigned char>(c));
        })) {
      return bad("headers: '" + name + "' is not a valid header name");
    }
    auto text = scalar_text(value);
    if (!text) return bad("headers." + name + " must be a string");
    // A CR or LF would let a rendered template inject headers or a whole second request.
    if (text->find_first_of("\r\n") != std::string::npos) {
      return bad("headers." + name + " must not contain line breaks");
    }
    spec.headers.emplace_back(name, *text);
  }
  return {};
}

bool has_header(const RequestSpec& spec, std::string_view name) {
  return std::any_of(spec.headers.begin(), spec.headers.end(),
                     [&](const auto& header) { return lower(header.first) == lower(name); });
}

Status parse_body(const Json& input, RequestSpec& spec) {
  bool has_json = input.contains("json");
  bool has_body = input.contains("body");
  if (has_json && has_body) return bad("json and body are exclusive; give one of them");
  if (has_json) {
    spec.body = input["json"].dump();
    spec.content_type = "application/json";
  } else if (has_body) {
    const Json& body = input["body"];
    if (!body.is_string()) {
      return bad("body must be a string; use json: to send a JSON value");
    }
    spec.body = body.get<std::string>();
    spec.content_type = "text/plain; charset=utf-8";
  }
  if (has_header(spec, "Content-Type")) spec.content_type.clear();
  return {};
}

Status parse_timeout(const Json& input, RequestSpec& spec) {
  if (!input.contains("timeout") || input["timeout"].is_null()) return {};
  const Json& timeout = input["timeout"];
  if (!timeout.is_string()) return bad("timeout must be a duration string like \"10s\"");
  auto parsed = parse_duration(timeout.get<std::string>());
  if (!parsed) return bad("timeout: " + parsed.error().message);
  if (parsed->count() <= 0) return bad("timeout must be longer than 0");
  spec.timeout = *parsed;
  return {};
}

Result<StatusRange> parse_status_range(const Json& value) {
  if (value.is_number_integer()) {
    int status = value.get<int>();
    if (status < 100 || status > 599) {
      return bad("expect: " + value.dump() + " is not an HTTP status (100-599)");
    }
    return StatusRange{status, status};
  }
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    if (text.size() == 3 && text[0] >= '1' && text[0] <= '5' && lower(text.substr(1)) == "xx") {
      int hundreds = (text[0] - '0') * 100;
      return StatusRange{hundreds, hundreds + 99};
    }
  }
  return bad("expect: " + value.dump() + " is neither a status like 404 nor a class like \"2xx\"");
}

Status parse_expect(const Json& input, RequestSpec& spec) {
  if (!input.contains("expect") || input["expect"].is_null()) return {};
  const Json& expect = input["expect"];
  Json list = expect.is_array() ? expect : Json::array({expect});
  if (list.empty()) return bad("expect must name at least one status");
  for (const Json& element : list) {
    auto range = parse_status_range(element);
    if (!range) return range.error();
    spec.expect.push_back(*range);
  }
  return {};
}

Status parse_flags(const Json& input, RequestSpec& spec) {
  if (input.contains("idempotency")) {
    if (!input["idempotency"].is_boolean()) return bad("idempotency must be true or false");
    spec.idempotency = input["idempotency"].get<bool>();
  }
  if (input.contains("follow_redirects")) {
    if (!input["follow_redirects"].is_boolean())
      return bad("follow_redirects must be true or false");
    spec.follow_redirects = input["follow_redirects"].get<bool>();
  }
  if (input.contains("max_response_bytes")) {
    const Json& max = input["max_response_bytes"];
    if (!max.is_number_integer() || max.get<int64_t>() <= 0) {
      return bad("max_response_bytes must be a positive integer");
    }
    spec.max_response_bytes = static_cast<size_t>(max.get<int64_t>());
  }
  return {};
}

}  // namespace

bool RequestSpec::is_expected(int status) const {
  if (expect.empty()) return status < 400;
  return std::any_of(expect.begin(), expect.end(),
                     [status](const StatusRange& range) { return range.contains(status); });
}

std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0x0F];
    }
  }
  return out;
}

Result<UrlParts> split_url(std::string_view url) {
  Poco::URI uri;
  try {
    uri = Poco::URI(std::string(url));
  } catch (const Poco::Exception& e) {
    return bad("'" + std::string(url) + "' is not a valid URL: " + e.message());
  }
  UrlParts parts;
  parts.scheme = lower(uri.getScheme());
  if (parts.scheme != "http" && parts.scheme != "https") {
    return bad("'" + std::string(url) + "' is not an http:// or https:// URL");
  }
  parts.host = uri.getHost();
  parts.port = uri.getPort();
  if (parts.host.empty()) return bad("'" + std::string(url) + "' has no host");
  std::string_view rest = url.substr(0, url.find('#'));
  size_t scheme_end = rest.find("://");
  size_t target_start =
      rest.find_first_of("/?", scheme_end == std::string_view::npos ? 0 : scheme_end + 3);
  parts.target =
      target_start == std::string_view::npos ? "/" : std::string(rest.substr(target_start));
  if (parts.target.front() == '?') parts.target.insert(0, "/");
  return parts;
}

Result<RequestSpec> parse_request(const Json& input) {
  if (!input.is_object()) return bad("with: must be an object with at least url");
  for (const auto& [name, value] : input.items()) {
    if (kFields.count(name) == 0) {
      return bad("unknown field '" + name +
                 "'; expected method, url, headers, query, json, body, timeout, idempotency, "
                 "expect, max_response_bytes or follow_redirects");
    }
  }
  RequestSpec spec;
  auto url = parse_url(input);
  if (!url) return url.error();
  for (Status status :
       {parse_method(input, spec), append_query(input, url->query), parse_headers(input, spec),
        parse_body(input, spec), parse_timeout(input, spec), parse_expect(input, spec),
        parse_flags(input, spec)}) {
    if (!status) return std::move(status).error();
  }
  spec.url = url->base + (url->query.empty() ? "" : "?" + url->query);
  return spec;
}

}  // namespace herald::steps::http
