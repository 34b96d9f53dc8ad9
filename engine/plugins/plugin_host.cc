// Process isolation: a native plugin loaded in a `herald plugin-host` child, and the engine's side
// that talks to it.
//
// Protocol, over a UNIX stream socket (socketpair; the child's end is its fd 3): each message is
// a 4-byte little-endian length then that many bytes of JSON, an object whose "t" says what it is.
//   child  -> engine  {"t":"described","plugin":{PluginInfo::to_json with schemas}}
//                     or {"t":"described","error":{Error}}           once, after loading
//   engine -> child   {"t":"call","capability":NAME,"input":TEXT}    one call at a time
//   child  -> engine  host callbacks during the call, each run by the engine through the call's
//                     Invocation (the same code as an in-process call):
//                     {"t":"log","level","message"}                  (no reply)
//                     {"t":"http","request":TEXT} {"t":"secret","name"}
//                     {"t":"emit","name","payload":TEXT} {"t":"idempotency_key"}
//                     {"t":"cancelled"} {"t":"context"}
//                     {"t":"kv_get","key"} {"t":"kv_set","key","value":TEXT,"ttl":N}
//                     {"t":"kv_delete","key"}
//   engine -> child   {"t":"reply","ok":BOOL,"value":TEXT or BOOL}   to each callback but log
//   child  -> engine  {"t":"result","status":N,"answers":[{"output":TEXT} |
//   {"error":{Error}|null}]}
// The engine replays the answers into the Invocation and finishes it, so contract breaches
// (no answer, two answers, invalid JSON) read the same as in-process. EOF, a malformed frame, a
// silence past the timeout or a cancelled run ends the child (SIGKILL, reaped) and fails the call
// retryable; the next call starts a new child.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>

#include "engine/plugins/internal/native.h"
#include "engine/plugins/invocation.h"
#include "engine/plugins/plugin.h"

extern char** environ;

namespace herald::plugins {

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr uint32_t kMaxFrame = 64u * 1024 * 1024;
constexpr int kChildFd = 3;
// How long a child that hung up may take to exit before it is killed (so its status is known).
constexpr std::chrono::milliseconds kExitGrace{2000};

// This process's resident memory, from /proc/self/statm (0 when unreadable).
size_t resident_bytes() {
  FILE* statm = std::fopen("/proc/self/statm", "r");
  if (statm == nullptr) return 0;
  unsigned long long size = 0;
  unsigned long long resident = 0;
  const int read = std::fscanf(statm, "%llu %llu", &size, &resident);
  std::fclose(statm);
  return read == 2 ? static_cast<size_t>(resident) * static_cast<size_t>(::sysconf(_SC_PAGESIZE))
                   : 0;
}

std::string dump(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// --- frames ----------------------------------------------------------------------------------

bool write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool write_frame(int fd, const Json& message) {
  std::string text = dump(message);
  const uint32_t size = static_cast<uint32_t>(text.size());
  const unsigned char header[4] = {
      static_cast<unsigned char>(size), static_cast<unsigned char>(size >> 8),
      static_cast<unsigned char>(size >> 16), static_cast<unsigned char>(size >> 24)};
  text.insert(0, reinterpret_cast<const char*>(header), 4);
  return write_all(fd, text.data(), text.size());
}

enum class ReadStatus { ok, closed, timed_out, cancelled, malformed };

struct Frame {
  ReadStatus status = ReadStatus::ok;
  Json message;
  std::string problem;  // for malformed
};

// Waits for `fd` to be readable until `deadline` (none when max), checking `context`'s
// cancellation between short polls.
ReadStatus wait_readable(int fd, SteadyClock::time_point deadline,
                         const steps::StepContext* context) {
  for (;;) {
    if (context != nullptr && context->is_cancelled()) return ReadStatus::cancelled;
    int wait_ms = 100;
    if (deadline != SteadyClock::time_point::max()) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now())
              .count();
      if (left <= 0) return ReadStatus::timed_out;
      wait_ms = static_cast<int>(std::min<int64_t>(left, wait_ms));
    }
    if (context == nullptr && deadline == SteadyClock::time_point::max()) wait_ms = -1;
    pollfd entry{fd, POLLIN, 0};
    int n = ::poll(&entry, 1, wait_ms);
    if (n < 0 && errno != EINTR) return ReadStatus::closed;
    if (n > 0) return ReadStatus::ok;  // readable, hung up or in error: read() tells
  }
}

ReadStatus read_exact(int fd, char* data, size_t size, SteadyClock::time_point deadline,
                      const steps::StepContext* context) {
  while (size > 0) {
    ssize_t n = ::recv(fd, data, size, MSG_DONTWAIT);
    if (n > 0) {
      data += n;
      size -= static_cast<size_t>(n);
      continue;
    }
    if (n == 0) return ReadStatus::closed;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return ReadStatus::closed;
    if (ReadStatus status = wait_readable(fd, deadline, context); status != ReadStatus::ok)
      return status;
  }
  return ReadStatus::ok;
}

Frame read_frame(int fd, SteadyClock::time_point deadline = SteadyClock::time_point::max(),
                 const steps::StepContext* context = nullptr) {
  Frame frame;
  unsigned char header[4];
  frame.status = read_exact(fd, reinterpret_cast<char*>(header), 4, deadline, context);
  if (frame.status != ReadStatus::ok) return frame;
  const uint32_t size =
      header[0] | (header[1] << 8) | (header[2] << 16) | (static_cast<uint32_t>(header[3]) << 24);
  if (size > kMaxFrame) {
    frame.status = ReadStatus::malformed;
    frame.problem =
        "a frame of " + std::to_string(size) + " bytes (at most " + std::to_string(kMaxFrame) + ")";
    return frame;
  }
  std::string text(size, '\0');
  frame.status = read_exact(fd, text.data(), size, deadline, context);
  if (frame.status != ReadStatus::ok) return frame;
  frame.message = Json::parse(text, nullptr, false);
  if (frame.message.is_discarded() || !frame.message.is_object() || !frame.message.contains("t") ||
      !frame.message["t"].is_string()) {
    frame.status = ReadStatus::malformed;
    frame.problem = "a message that is not a JSON object with \"t\"";
  }
  return frame;
}

// --- the child ---------------------------------------------------------------------------------

// One call in the child: the host table forwards to the engine; answers are collected and sent
// with the result.
struct RemoteCall {
  int fd;
  std::deque<std::string> kept;
  Json answers = Json::array();

  herald_call* handle() { return reinterpret_cast<herald_call*>(this); }
  static RemoteCall& from(herald_call* call) { return *reinterpret_cast<RemoteCall*>(call); }

  herald_str keep(std::string text) {
    kept.push_back(std::move(text));
    return {kept.back().c_str(), kept.back().size()};
  }

  // Sends a callback and waits for its reply; the engine's reply, or exits when the engine is
  // gone or speaks nonsense (there is nobody left to answer).
  Json ask(Json message) {
    if (!write_frame(fd, message)) std::_Exit(3);
    Frame frame = read_frame(fd);
    if (frame.status != ReadStatus::ok || frame.message["t"] != "reply") std::_Exit(3);
    return std::move(frame.message);
  }
};

std::string_view view(const char* data, size_t size) {
  return data == nullptr ? std::string_view() : std::string_view(data, size);
}

const char* level_name(int32_t level) {
  switch (level) {
    case HERALD_LOG_DEBUG:
      return "debug";
    case HERALD_LOG_WARN:
      return "warn";
    case HERALD_LOG_ERROR:
      return "error";
    default:
      return "info";
  }
}

// A reply's value into *out, and its status.
int32_t answer(RemoteCall& self, const Json& reply, herald_str* out) {
  if (out != nullptr) {
    const Json value = reply.value("value", Json(""));
    *out = self.keep(value.is_string() ? value.get<std::string>() : dump(value));
  }
  return reply.value("ok", false) ? HERALD_OK : HERALD_FAILED;
}

void remote_log(herald_call* call, int32_t level, const char* message, size_t size) noexcept {
  try {
    RemoteCall& self = RemoteCall::from(call);
    if (!write_frame(self.fd, {{"t", "log"},
                               {"level", level_name(level)},
                               {"message", std::string(view(message, size))}}))
      std::_Exit(3);
  } catch (...) {
  }
}

int32_t remote_http(herald_call* call, const char* request, size_t size,
                    herald_str* response) noexcept {
  try {
    RemoteCall& self = RemoteCall::from(call);
    return answer(self, self.ask({{"t", "http"}, {"request", std::string(view(request, size))}}),
                  response);
  } catch (...) {
    return HERALD_FAILED;
  }
}

int32_t remote_secret(herald_call* call, const char* name, size_t size,
                      herald_str* value) noexcept {
  try {
    RemoteCall& self = RemoteCall::from(call);
    return answer(self, self.ask({{"t", "secret"}, {"name", std::string(view(name, size))}}),
                  value);
  } catch (...) {
    return HERALD_FAILED;
  }
}

int32_t remote_emit(herald_call* call, const char* name, size_t name_size, const char* payload,
                    size_t payload_size, herald_str* error) noexcept {
  try {
    RemoteCall& self = RemoteCall::from(call);
    Json reply = self.ask({{"t", "emit"},
                           {"name", std::string(view(name, name_size))},
                           {"payload", std::string(view(payload, payload_size))}});
    return answer(self, reply, error);
  } catch (...) {
    return HERALD_FAILED;
  }
}

herald_str remote_idempotency_key(herald_call* call) noexcept {
  try {
    RemoteCall& self = RemoteCall::from(call);
    herald_str key{};
    answer(self, self.ask({{"t", "idempotency_key"}}), &key);
    return key;
  } catch (...) {
    return {"", 0};
  }
}

int32_t remote_cancelled(herald_call* call) noexcept {
  try {
    RemoteCall& self = RemoteCall::from(call);
    return self.ask({{"t", "cancelled"}}).value("value", true) ? 1 : 0;
  } catch (...) {
    return 1;
  }
}

herald_str remote_context(herald_call* call) noexcept {
  try {
    RemoteCall& self = RemoteCall::from(call);
    herald_str context{};
    answer(self, self.ask({{"t", "context"}}), &context);
    return context;
  } catch (...) {
    return {"{}", 2};
  }
}

int32_t remote_kv_get(herald_call* call, const char* key, size_t key_size,
                      herald_str* value) noexcept {
  try {
    RemoteCall& self = RemoteCall::from(call);
    return answer(self, self.ask({{"t", "kv_get"}, {"key", std::string(view(key, key_size))}}),
                  value);
  } catch (...) {
    return HERALD_FAILED;
  }
}

int32_t remote_kv_set(herald_call* call, const char* key, size_t key_size, const char* value,
                      size_t value_size, int64_t ttl_seconds, herald_str* error) noexcept {
  try {
    RemoteCall& self = RemoteCall::from(call);
    return answer(self,
                  self.ask({{"t", "kv_set"},
                            {"key", std::string(view(key, key_size))},
                            {"value", std::string(view(value, value_size))},
                            {"ttl", ttl_seconds}}),
                  error);
  } catch (...) {
    return HERALD_FAILED;
  }
}

int32_t remote_kv_delete(herald_call* call, const char* key, size_t key_size,
                         herald_str* error) noexcept {
  try {
    RemoteCall& self = RemoteCall::from(call);
    return answer(self, self.ask({{"t", "kv_delete"}, {"key", std::string(view(key, key_size))}}),
                  error);
  } catch (...) {
    return HERALD_FAILED;
  }
}

void remote_set_output(herald_call* call, const char* output, size_t size) noexcept {
  try {
    RemoteCall::from(call).answers.push_back({{"output", std::string(view(output, size))}});
  } catch (...) {
  }
}

void remote_set_error(herald_call* call, const herald_error* error) noexcept {
  try {
    RemoteCall::from(call).answers.push_back(
        {{"error", error == nullptr ? Json(nullptr) : error_from_abi(*error).to_json()}});
  } catch (...) {
  }
}

const herald_host_api kRemoteApi = {
    sizeof(herald_host_api),
    HERALD_ABI_VERSION_MAJOR,
    HERALD_ABI_VERSION_MINOR,
    HERALD_ABI_VERSION_PATCH,
    remote_log,
    remote_http,
    remote_secret,
    remote_emit,
    remote_idempotency_key,
    remote_cancelled,
    remote_context,
    remote_set_output,
    remote_set_error,
    remote_kv_get,
    remote_kv_set,
    remote_kv_delete,
};

// --- the engine's side -------------------------------------------------------------------------

std::string signal_text(int signal) {
  const char* name = sigabbrev_np(signal);
  const char* what = sigdescr_np(signal);
  return "signal " + std::to_string(signal) + (name ? std::string(" (SIG") + name : " (") +
         (what ? std::string(name ? ", " : "") + what : "") + ")";
}

// One plugin's child: started on demand, killed and reaped on any trouble.
class PluginHost {
 public:
  PluginHost(std::string path, IsolationOptions options)
      : path_(std::move(path)), options_(std::move(options)) {}
  ~PluginHost() { stop(); }
  PluginHost(const PluginHost&) = delete;
  PluginHost& operator=(const PluginHost&) = delete;

  // Starts the child and reads its description.
  Result<Json> start() {
    std::lock_guard lock(mu_);
    return start_locked();
  }

  steps::StepOutcome call(const std::string& plugin, const std::string& capability,
                          const Json& input, steps::StepContext& context) {
    std::lock_guard lock(mu_);
    const std::string who = "plugin " + plugin + ": " + capability + ": ";
    if (pid_ < 0) {
      auto started = start_locked();
      if (!started.ok()) {
        return steps::StepOutcome::failed(
            make_error(ErrorCode::unavailable,
                       who + "cannot restart the plugin host: " + started.error().message,
                       /*retryable=*/true));
      }
    }
    auto timeout = options_.call_timeout;
    auto deadline = SteadyClock::now() + timeout;
    bool step_deadline = false;
    if (context.deadline != steps::Clock::time_point::max()) {
      auto left = context.remaining(timeout);
      if (left < timeout) {
        timeout = std::max(left, std::chrono::milliseconds(0));
        deadline = SteadyClock::now() + timeout;
        step_deadline = true;
      }
    }
    Invocation invocation(plugin, capability, context);
    if (!write_frame(fd_, {{"t", "call"}, {"capability", capability}, {"input", dump(input)}})) {
      return lost(who, "the plugin host died: " + stop(kExitGrace));
    }
    for (;;) {
      Frame frame = read_frame(fd_, deadline, &context);
      switch (frame.status) {
        case ReadStatus::ok:
          break;
        case ReadStatus::closed:
          return lost(who, "the plugin host died: " + stop(kExitGrace));
        case ReadStatus::timed_out:
          stop();
          return steps::StepOutcome::failed(
              make_error(ErrorCode::deadline_exceeded,
                         who + "no answer within " + std::to_string(timeout.count()) + " ms (" +
                             (step_deadline ? "the step's timeout" : "plugins.call_timeout") +
                             "); the plugin host was killed and restarts for the next call",
                         /*retryable=*/true));
        case ReadStatus::cancelled:
          stop();
          return steps::StepOutcome::failed(
              make_error(ErrorCode::cancelled, who + "cancelled; the plugin host was killed"));
        case ReadStatus::malformed:
          stop();
          return lost(who, "the plugin host sent " + frame.problem + "; it was killed");
      }
      const Json& message = frame.message;
      const std::string type = message["t"].get<std::string>();
      try {
        if (type == "result") {
          if (message.value("restart", false)) stop(kExitGrace);  // the host ends itself
          return finish(invocation, message);
        }
        if (type == "log") {
          invocation.log(message.value("level", "info"), message.value("message", ""));
          continue;
        }
        Json response = callback(invocation, type, message);
        if (response.is_null()) {
          stop();
          return lost(who, "the plugin host sent an unknown message '" + type + "'; it was killed");
        }
        if (!write_frame(fd_, response)) {
          return lost(who, "the plugin host died: " + stop(kExitGrace));
        }
      } catch (const std::exception& e) {
        stop();
        return lost(who, std::string("the plugin host sent a malformed '") + type + "' message (" +
                             e.what() + "); it was killed");
      }
    }
  }

 private:
  static steps::StepOutcome lost(const std::string& who, const std::string& what) {
    return steps::StepOutcome::failed(make_error(
        ErrorCode::unavailable, who + what + "; the plugin host restarts for the next call",
        /*retryable=*/true));
  }

  static Json reply(bool ok, Json value) {
    return {{"t", "reply"}, {"ok", ok}, {"value", std::move(value)}};
  }

  // A host callback run through the invocation, as the in-process table would; null for an
  // unknown type.
  static Json callback(Invocation& invocation, const std::string& type, const Json& message) {
    if (type == "http") {
      Json request = Json::parse(message.at("request").get<std::string>(), nullptr, false);
      Result<Json> response = request.is_discarded()
                                  ? Result<Json>(make_error(ErrorCode::invalid_argument,
                                                            "http: the request is not valid JSON"))
                                  : invocation.http(request);
      return response.ok() ? reply(true, dump(*response))
                           : reply(false, dump(response.error().to_json()));
    }
    if (type == "secret") {
      auto secret = invocation.secret(message.at("name").get<std::string>());
      return secret.ok() ? reply(true, *secret) : reply(false, dump(secret.error().to_json()));
    }
    if (type == "emit") {
      const std::string text = message.at("payload").get<std::string>();
      Json payload = text.empty() ? Json::object() : Json::parse(text, nullptr, false);
      Status status =
          payload.is_discarded()
              ? Status(
                    make_error(ErrorCode::invalid_argument, "emit: the payload is not valid JSON"))
              : invocation.emit(message.at("name").get<std::string>(), std::move(payload));
      return status.ok() ? reply(true, "") : reply(false, dump(status.error().to_json()));
    }
    if (type == "idempotency_key") return reply(true, invocation.idempotency_key());
    if (type == "cancelled") return reply(true, invocation.cancelled());
    if (type == "context") return reply(true, dump(invocation.context_json()));
    if (type == "kv_get" || type == "kv_set" || type == "kv_delete") {
      // Through the in-process table, so both ways check and answer alike.
      const std::string key = message.at("key").get<std::string>();
      herald_str out{};
      int32_t status = HERALD_FAILED;
      if (type == "kv_get") {
        status = host_api()->kv_get(invocation.handle(), key.data(), key.size(), &out);
      } else if (type == "kv_set") {
        const std::string value = message.at("value").get<std::string>();
        status = host_api()->kv_set(invocation.handle(), key.data(), key.size(), value.data(),
                                    value.size(), message.at("ttl").get<int64_t>(), &out);
      } else {
        status = host_api()->kv_delete(invocation.handle(), key.data(), key.size(), &out);
      }
      return reply(status == HERALD_OK, std::string(out.data == nullptr ? "" : out.data, out.size));
    }
    return nullptr;
  }

  static steps::StepOutcome finish(Invocation& invocation, const Json& message) {
    for (const Json& given : message.at("answers")) {
      const Json error = given.value("error", Json());
      if (given.contains("output")) {
        invocation.set_output(given.at("output").get<std::string>());
      } else if (error.is_null()) {
        invocation.set_error(make_error(
            ErrorCode::internal, "plugin " + invocation.plugin() + ": " + invocation.capability() +
                                     " called set_error with no error"));
      } else {
        invocation.set_error(Error::from_json(error));
      }
    }
    return invocation.finish(message.at("status").get<int32_t>());
  }

  Result<Json> start_locked() {
    auto fail = [&](const std::string& what) {
      return make_error(ErrorCode::invalid_argument, path_ + ": " + what);
    };
    std::string binary = options_.host_binary;
    if (binary.empty()) {
      char self[4096];
      ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
      if (n <= 0) return fail("cannot find the herald binary for the plugin host");
      binary.assign(self, static_cast<size_t>(n));
    }
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      return fail(std::string("cannot create the plugin host's socket: ") + std::strerror(errno));
    }
    int child_end = fds[1];
    if (child_end == kChildFd) {  // dup2 onto itself would keep close-on-exec
      child_end = ::fcntl(fds[1], F_DUPFD_CLOEXEC, kChildFd + 1);
      ::close(fds[1]);
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, child_end, kChildFd);
    posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);  // stdout is ours
    const std::string fd_text = std::to_string(kChildFd);
    const std::string memory_text = std::to_string(options_.memory_limit_bytes / (1024 * 1024));
    std::vector<char*> argv = {binary.data(),
                               const_cast<char*>("plugin-host"),
                               const_cast<char*>("--fd"),
                               const_cast<char*>(fd_text.c_str()),
                               const_cast<char*>("--memory-mb"),
                               const_cast<char*>(memory_text.c_str()),
                               path_.data(),
                               nullptr};
    pid_t pid = -1;
    int spawned = ::posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(child_end);
    if (spawned != 0) {
      ::close(fds[0]);
      return fail("cannot start the plugin host " + binary + ": " + std::strerror(spawned));
    }
    pid_ = pid;
    fd_ = fds[0];
    Frame frame = read_frame(fd_, SteadyClock::now() + options_.start_timeout);
    if (frame.status != ReadStatus::ok || frame.message["t"] != "described") {
      std::string why = frame.status == ReadStatus::timed_out
                            ? "did not describe the plugin within " +
                                  std::to_string(options_.start_timeout.count()) + " ms"
                        : frame.status == ReadStatus::malformed ? "sent " + frame.problem
                                                                : "exited";
      return fail(
          "the plugin host " + why + " while loading (" +
          stop(frame.status == ReadStatus::closed ? kExitGrace : std::chrono::milliseconds(0)) +
          ")");
    }
    if (frame.message.contains("error")) {
      stop();
      return Error::from_json(frame.message["error"]);
    }
    return frame.message.value("plugin", Json::object());
  }

  // Kills and reaps the child; says how it ended. `grace`: how long a child that closed its end
  // (it is exiting) may take to finish before it is killed, so that its signal or status is
  // the one reported.
  std::string stop(std::chrono::milliseconds grace = std::chrono::milliseconds(0)) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (pid_ < 0) return "not running";
    int status = 0;
    pid_t done = ::waitpid(pid_, &status, WNOHANG);
    for (auto until = SteadyClock::now() + grace; done == 0 && SteadyClock::now() < until;) {
      ::usleep(2000);
      done = ::waitpid(pid_, &status, WNOHANG);
    }
    std::string how;
    if (done == 0) {
      ::kill(pid_, SIGKILL);
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      how = "killed";
    } else if (done < 0) {
      how = "already reaped";
    } else if (WIFSIGNALED(status)) {
      how = "killed by " + signal_text(WTERMSIG(status));
    } else if (WIFEXITED(status)) {
      how = "exited with status " + std::to_string(WEXITSTATUS(status));
    }
    pid_ = -1;
    return how;
  }

  std::string path_;
  IsolationOptions options_;
  std::mutex mu_;
  pid_t pid_ = -1;
  int fd_ = -1;
};

class IsolatedCapability final : public Capability {
 public:
  IsolatedCapability(std::string plugin, CapabilityInfo info, std::shared_ptr<PluginHost> host)
      : plugin_(std::move(plugin)), info_(std::move(info)), host_(std::move(host)) {}

  const CapabilityInfo& info() const override { return info_; }

  steps::StepOutcome invoke(const Json& input, steps::StepContext& context) override {
    try {
      return host_->call(plugin_, info_.name, input, context);
    } catch (const std::exception& e) {
      return steps::StepOutcome::failed(make_error(
          ErrorCode::internal, "plugin " + plugin_ + ": " + info_.name + ": " + e.what()));
    }
  }

 private:
  std::string plugin_;
  CapabilityInfo info_;
  std::shared_ptr<PluginHost> host_;
};

CapabilityKind kind_named(const std::string& name) {
  if (name == "trigger_source") return CapabilityKind::trigger_source;
  if (name == "provider") return CapabilityKind::provider;
  return CapabilityKind::step;
}

}  // namespace

Result<LoadedPlugin> load_isolated_plugin(const std::string& path,
                                          const IsolationOptions& options) {
  auto host = std::make_shared<PluginHost>(path, options);
  auto described = host->start();
  if (!described.ok()) return described.error();
  const Json& json = *described;
  LoadedPlugin plugin;
  try {
    plugin.info.name = json.at("name").get<std::string>();
    plugin.info.version = json.value("version", "");
    plugin.info.description = json.value("description", "");
    plugin.info.file = path;
    plugin.info.type = "native";
    plugin.info.isolation = "process";
    for (const Json& entry : json.at("capabilities")) {
      CapabilityInfo info;
      info.name = entry.at("name").get<std::string>();
      info.kind = kind_named(entry.value("kind", "step"));
      info.description = entry.value("description", "");
      info.input_schema = entry.value("input_schema", Json(nullptr));
      plugin.info.capabilities.push_back(info);
      plugin.capabilities.push_back(
          std::make_shared<IsolatedCapability>(plugin.info.name, std::move(info), host));
    }
  } catch (const std::exception& e) {
    return make_error(ErrorCode::invalid_argument,
                      path + ": the plugin host described the plugin badly: " + e.what());
  }
  return plugin;
}

int run_plugin_host(int fd, const std::string& path, size_t memory_limit_bytes) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the engine
  ::signal(SIGPIPE, SIG_IGN);
#if !defined(__SANITIZE_ADDRESS__)
  if (memory_limit_bytes > 0) {
    struct rlimit limit{memory_limit_bytes, memory_limit_bytes};
    ::setrlimit(RLIMIT_AS, &limit);
  }
#endif
  std::vector<internal::NativeEntry> entries;
  Result<LoadedPlugin> plugin = internal::load_native_entries(path, &entries);
  if (!plugin.ok()) {
    write_frame(fd, {{"t", "described"}, {"error", plugin.error().to_json()}});
    return 1;
  }
  if (!write_frame(fd, {{"t", "described"}, {"plugin", plugin->info.to_json(true)}})) return 1;
  const auto& capabilities = plugin->info.capabilities;
  for (;;) {
    Frame frame = read_frame(fd);
    if (frame.status == ReadStatus::closed) return 0;
    if (frame.status != ReadStatus::ok || frame.message["t"] != "call") return 2;
    const std::string name = frame.message.value("capability", "");
    const std::string input = frame.message.value("input", "null");
    RemoteCall call{fd, {}, Json::array()};
    int32_t status = HERALD_FAILED;
    size_t index = 0;
    while (index < capabilities.size() && capabilities[index].name != name) ++index;
    if (index == capabilities.size()) {
      call.answers.push_back(
          {{"error", make_error(ErrorCode::not_found, "no capability '" + name + "' in " + path)
                         .to_json()}});
    } else {
      status = entries[index].invoke(entries[index].user_data, &kRemoteApi, call.handle(),
                                     input.c_str(), input.size());
    }
    // A host that holds most of its memory after a call has leaked (or is about to fail
    // allocations): the call fails retryable and the host ends, so the next call gets a fresh one.
    const size_t resident = resident_bytes();
    const bool exhausted = memory_limit_bytes > 0 && resident > memory_limit_bytes / 4 * 3;
    if (exhausted) {
      status = HERALD_FAILED;
      call.answers = Json::array(
          {{{"error", make_error(ErrorCode::resource_exhausted,
                                 "plugin " + plugin->info.name + ": " + name + ": the plugin host " +
                                     "holds " + std::to_string(resident / (1024 * 1024)) +
                                     " MB after the call, over three quarters of its " +
                                     std::to_string(memory_limit_bytes / (1024 * 1024)) +
                                     " MB (plugins.memory_limit_mb); it was restarted",
                                 /*retryable=*/true)
                          .to_json()}}});
    }
    if (!write_frame(fd, {{"t", "result"},
                          {"status", status},
                          {"answers", call.answers},
                          {"restart", exhausted}})) {
      return 0;
    }
    if (exhausted) return 0;
  }
}

}  // namespace herald::plugins
