// The built-in `http` step: one request (plus up to five redirects for GET and HEAD) with Poco's
// client, bounded by the smaller of `timeout:` and the step's deadline, answering with the
// response or with an Error the runtime's retry policy can act on. See docs/steps/http.md.
#include <algorithm>
#include <cctype>
#include <memory>

#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Timespan.h>
#include <Poco/URI.h>
#if defined(HERALD_HAVE_NETSSL)
#include <Poco/Net/SSLException.h>
#endif

#include "engine/steps/builtins.h"
#include "engine/steps/http/client_session.h"
#include "engine/steps/http/http_input.h"
#include "engine/steps/http/http_response.h"

namespace herald::steps {
namespace http {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Small reads so the receive timeout can be re-armed with what is left of the budget between
// them; Poco's own buffer is 4 KiB, so most reads are a single recv().
constexpr size_t kReadChunk = 8192;

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The time one call may take: `timeout:`, cut short by the step's deadline when that is sooner.
struct Budget {
  SteadyClock::time_point start;
  SteadyClock::time_point deadline;
  milliseconds length;
  bool step_deadline = false;  // the step's deadline, not `timeout:`, set the length

  milliseconds left() const {
    return std::max(milliseconds(0),
                    std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now()));
  }
  milliseconds elapsed() const {
    return std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start);
  }
};

Budget make_budget(const RequestSpec& spec, const StepContext& context) {
  Budget budget;
  budget.start = SteadyClock::now();
  milliseconds remaining = context.remaining(spec.timeout);
  budget.step_deadline = remaining < spec.timeout;
  budget.length = std::min(spec.timeout, remaining);
  budget.deadline = budget.start + budget.length;
  return budget;
}

// Poco reads a zero timeout as "wait forever", so never hand it one.
Poco::Timespan to_timespan(milliseconds duration) {
  return Poco::Timespan(std::max<int64_t>(duration.count(), 1) * 1000);
}

Error timeout_error(const RequestSpec& spec, const std::string& url, const Budget& budget) {
  std::string what = budget.step_deadline
                         ? "the step's deadline"
                         : "timeout " + std::to_string(spec.timeout.count()) + "ms";
  Error error = make_error(ErrorCode::deadline_exceeded,
                           "http: " + spec.method + " " + url + " got no complete answer within " +
                               std::to_string(budget.length.count()) + "ms (" + what + ")",
                           /*retryable=*/true);
  error.details = {{"url", url}, {"timeout_ms", budget.length.count()}};
  return error;
}

// Connection-level failures: the request may or may not have reached the server, so they are
// retryable; an idempotency key is what makes the retry safe.
Error network_error(const RequestSpec& spec, const std::string& url, const Poco::Exception& e,
                    const Budget& budget) {
  if (dynamic_cast<const Poco::TimeoutException*>(&e) != nullptr) {
    return timeout_error(spec, url, budget);
  }
  std::string prefix = "http: " + spec.method + " " + url + ": ";
  ErrorCode code = ErrorCode::unavailable;
  bool retryable = true;
  std::string what;
#if defined(HERALD_HAVE_NETSSL)
  if (dynamic_cast<const Poco::Net::SSLException*>(&e) != nullptr) {
    // A certificate that does not verify will not start verifying on the next attempt.
    what = "TLS failed: " + e.displayText();
    retryable =
        dynamic_cast<const Poco::Net::SSLConnectionUnexpectedlyClosedException*>(&e) != nullptr;
  } else
#endif
      if (dynamic_cast<const Poco::Net::ConnectionRefusedException*>(&e) != nullptr) {
    what = "connection refused";
  } else if (dynamic_cast<const Poco::Net::DNSException*>(&e) != nullptr) {
    what = "cannot resolve the host (" + e.displayText() + ")";
  } else if (dynamic_cast<const Poco::Net::ConnectionResetException*>(&e) != nullptr ||
             dynamic_cast<const Poco::Net::ConnectionAbortedException*>(&e) != nullptr) {
    what = "connection reset by the server";
  } else if (dynamic_cast<const Poco::Net::NoMessageException*>(&e) != nullptr) {
    what = "the server closed the connection without answering";
  } else if (dynamic_cast<const Poco::Net::MessageException*>(&e) != nullptr) {
    what = "malformed response (" + e.displayText() + ")";
  } else if (dynamic_cast<const Poco::IOException*>(&e) != nullptr) {
    what = e.displayText();
  } else {
    code = ErrorCode::internal;
    retryable = false;
    what = e.displayText();
  }
  Error error = make_error(code, prefix + what, retryable);
  error.details = {{"url", url}};
  return error;
}

Result<std::unique_ptr<Poco::Net::HTTPClientSession>> open_session(const UrlParts& url) {
  auto session = open_client_session(url.scheme, url.host, url.port);
  if (!session) {
    Error error = std::move(session).error();
    error.message = "http: " + error.message;
    return error;
  }
  return session;
}

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

Json header_object(const Poco::Net::HTTPResponse& response) {
  Json headers = Json::object();
  for (const auto& [name, value] : response) {
    std::string key = lower(name);
    std::string text = to_valid_utf8(value);
    if (headers.contains(key)) {
      headers[key] = headers[key].get<std::string>() + ", " + text;
    } else {
      headers[key] = std::move(text);
    }
  }
  return headers;
}

// What one exchange ended with, once redirects are followed.
struct Answer {
  std::string url;
  int status = 0;
  std::string reason;
  Json headers;
  std::string content_type;
  std::string body;
};

class Call {
 public:
  Call(const RequestSpec& spec, StepContext& context)
      : spec_(spec), context_(context), budget_(make_budget(spec, context)) {}

  StepOutcome run();

 private:
  Result<Answer> exchange();
  // Sets `location` instead of reading the body when the answer is a redirect to follow.
  Result<Answer> exchange_once(const std::string& url, const UrlParts& parts, bool follow,
                               std::string& location);
  Error too_large(const std::string& url, const Answer& answer) const;

  const RequestSpec& spec_;
  StepContext& context_;
  Budget budget_;
  std::vector<std::pair<std::string, std::string>> headers_;
};

StepOutcome Call::run() {
  if (budget_.length.count() <= 0) {
    return StepOutcome::failed(timeout_error(spec_, spec_.url, budget_));
  }
  headers_ = spec_.headers;
  bool has_user_agent = std::any_of(headers_.begin(), headers_.end(), [](const auto& header) {
    return lower(header.first) == "user-agent";
  });
  if (!has_user_agent) headers_.emplace_back("User-Agent", "herald/" HERALD_VERSION);
  if (spec_.idempotency) {
    if (context_.idempotency_key.empty()) {
      return StepOutcome::failed(make_error(
          ErrorCode::internal, "http: idempotency is on but the runtime gave no idempotency key"));
    }
    std::erase_if(headers_,
                  [](const auto& header) { return lower(header.first) == "idempotency-key"; });
    headers_.emplace_back("Idempotency-Key", context_.idempotency_key);
  }

  auto answer = exchange();
  if (!answer) return StepOutcome::failed(std::move(answer).error());
  auto duration = budget_.elapsed();
  if (context_.log) {
    context_.log("debug", spec_.method + " " + answer->url + " -> " +
                              std::to_string(answer->status) + " (" +
                              std::to_string(duration.count()) + " ms)");
  }
  if (!spec_.is_expected(answer->status)) {
    // The error message keeps the start of the body: secrets are masked before it is cut.
    std::string body = context_.redact ? context_.redact(answer->body) : std::move(answer->body);
    ResponseFacts facts{spec_.method,    answer->url,     answer->status,      answer->reason,
                        answer->headers, std::move(body), answer->content_type};
    return StepOutcome::failed(status_error(facts, Clock::now()));
  }
  return StepOutcome::done({{"status", answer->status},
                            {"headers", std::move(answer->headers)},
                            {"body", decode_body(answer->body, answer->content_type)},
                            {"duration_ms", duration.count()},
                            {"url", answer->url}});
}

Result<Answer> Call::exchange() {
  bool may_redirect = spec_.follow_redirects && (spec_.method == "GET" || spec_.method == "HEAD");
  std::string url = spec_.url;
  for (int redirects = 0;; ++redirects) {
    auto parts = split_url(url);
    if (!parts) {
      return make_error(ErrorCode::failed_precondition,
                        "http: redirected to an unusable URL: " + parts.error().message);
    }
    std::string location;
    Result<Answer> answer = make_error(ErrorCode::internal, "http: no answer");
    try {
      answer = exchange_once(url, *parts, may_redirect, location);
    } catch (const Poco::Exception& e) {
      return network_error(spec_, url, e, budget_);
    } catch (const std::exception& e) {
      return make_error(ErrorCode::internal, "http: " + spec_.method + " " + url + ": " + e.what());
    }
    if (!answer || location.empty()) return answer;
    if (redirects == kMaxRedirects) {
      return make_error(ErrorCode::failed_precondition,
                        "http: " + spec_.method + " " + spec_.url + ": more than " +
                            std::to_string(kMaxRedirects) + " redirects (last to " + location +
                            ")");
    }
    Poco::URI next;
    try {
      next = Poco::URI(url);
      next.resolve(location);
    } catch (const Poco::Exception& e) {
      return make_error(ErrorCode::failed_precondition,
                        "http: " + spec_.method + " " + url + " redirected to '" + location +
                            "', which is not a valid URL: " + e.message());
    }
    auto next_parts = split_url(next.toString());
    // Credentials meant for one server must not follow a redirect to another (as curl does).
    if (!next_parts || next_parts->host != parts->host || next_parts->port != parts->port ||
        next_parts->scheme != parts->scheme) {
      std::erase_if(headers_, [](const auto& header) {
        std::string name = lower(header.first);
        return name == "authorization" || name == "cookie";
      });
    }
    if (context_.log) context_.log("debug", "redirected to " + next.toString());
    url = next.toString();
  }
}

Result<Answer> Call::exchange_once(const std::string& url, const UrlParts& parts, bool follow,
                                   std::string& location) {
  if (context_.is_cancelled()) return make_error(ErrorCode::cancelled, "http: cancelled");
  auto session = open_session(parts);
  if (!session) return session.error();
  milliseconds left = budget_.left();
  if (left.count() <= 0) return timeout_error(spec_, url, budget_);
  (*session)->setTimeout(to_timespan(left), to_timespan(left), to_timespan(left));

  Poco::Net::HTTPRequest request(spec_.method, parts.target, Poco::Net::HTTPMessage::HTTP_1_1);
  request.setKeepAlive(false);  // one session per call; nothing would reuse the connection
  for (const auto& [name, value] : headers_) request.set(name, value);
  if (spec_.body) {
    if (!spec_.content_type.empty()) request.setContentType(spec_.content_type);
    request.setContentLength64(static_cast<Poco::Int64>(spec_.body->size()));
  } else if (spec_.method == "POST" || spec_.method == "PUT" || spec_.method == "PATCH") {
    request.setContentLength(0);  // some servers answer 411 to a body-less POST without it
  }
  std::ostream& out = (*session)->sendRequest(request);
  // Rethrow Poco's network exception instead of leaving a silently bad stream.
  out.exceptions(std::ios::badbit);
  if (spec_.body) out.write(spec_.body->data(), static_cast<std::streamsize>(spec_.body->size()));

  Poco::Net::HTTPResponse response;
  std::istream& in = (*session)->receiveResponse(response);
  in.exceptions(std::ios::badbit);

  Answer answer;
  answer.url = url;
  answer.status = static_cast<int>(response.getStatus());
  answer.reason = response.getReason();
  answer.headers = header_object(response);
  answer.content_type = response.getContentType();
  if (follow && is_redirect(answer.status) && !response.get("Location", "").empty()) {
    location = response.get("Location");
    return answer;  // its body is only a note for browsers
  }
  // HEAD, 1xx, 204 and 304 answers have no body whatever their Content-Length says.
  bool expects_body = spec_.method != "HEAD" && answer.status >= 200 && answer.status != 204 &&
                      answer.status != 304;
  if (expects_body && response.hasContentLength() &&
      response.getContentLength64() > static_cast<Poco::Int64>(spec_.max_response_bytes)) {
    return too_large(url, answer);
  }
  char buffer[kReadChunk];
  while (true) {
    if (context_.is_cancelled()) return make_error(ErrorCode::cancelled, "http: cancelled");
    left = budget_.left();
    if (left.count() <= 0) return timeout_error(spec_, url, budget_);
    (*session)->socket().setReceiveTimeout(to_timespan(left));
    in.read(buffer, sizeof buffer);
    auto count = static_cast<size_t>(in.gcount());
    if (answer.body.size() + count > spec_.max_response_bytes) return too_large(url, answer);
    answer.body.append(buffer, count);
    if (in.eof() || count == 0) break;
  }
  // Poco ends a fixed-length body quietly when the peer hangs up early; a cut body must not
  // pass for the whole answer.
  if (expects_body && response.hasContentLength() &&
      static_cast<Poco::Int64>(answer.body.size()) < response.getContentLength64()) {
    Error error = make_error(ErrorCode::unavailable,
                             "http: " + spec_.method + " " + url +
                                 ": the connection closed before the whole body arrived (" +
                                 std::to_string(answer.body.size()) + " of " +
                                 std::to_string(response.getContentLength64()) + " bytes)",
                             /*retryable=*/true);
    error.details = {{"status", answer.status}, {"url", url}};
    return error;
  }
  return answer;
}

Error Call::too_large(const std::string& url, const Answer& answer) const {
  Error error =
      make_error(ErrorCode::resource_exhausted,
                 "http: " + spec_.method + " " + url + ": the response body is larger than " +
                     "max_response_bytes (" + std::to_string(spec_.max_response_bytes) + " bytes)");
  error.details = {{"status", answer.status}, {"headers", answer.headers}, {"url", url}};
  return error;
}

class HttpStep final : public Step {
 public:
  StepOutcome run(const Json& input, StepContext& context) override {
    // Nothing may escape into the runtime's worker: an exception here is a bug in this step, so
    // it becomes an internal error on the run instead of taking the process down.
    try {
      auto spec = parse_request(input);
      if (!spec) return StepOutcome::failed(std::move(spec).error());
      return Call(*spec, context).run();
    } catch (const std::exception& e) {
      return StepOutcome::failed(
          make_error(ErrorCode::internal, std::string("http: unexpected failure: ") + e.what()));
    }
  }
};

}  // namespace
}  // namespace http

StepInfo make_http_step() {
  StepInfo info;
  info.name = "http";
  info.description =
      "Sends one HTTP request (method, url, headers, query, json or body, timeout, idempotency) "
      "and outputs status, headers and body (parsed when JSON).";
  info.step = std::make_shared<http::HttpStep>();
  return info;
}

}  // namespace herald::steps
