#include "tests/support/child_process.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace herald::testing {
namespace {

std::runtime_error failure(const std::string& what, int error) {
  return std::runtime_error("ChildProcess: " + what + ": " + std::strerror(error));
}

std::string find_program(const std::string& name, const std::string& path_variable) {
  if (name.find('/') != std::string::npos) return name;
  std::stringstream folders(path_variable);
  std::string folder;
  while (std::getline(folders, folder, ':')) {
    std::string candidate = (folder.empty() ? std::string(".") : folder) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return name;  // execve fails with ENOENT, reported by the constructor
}

std::vector<std::string> build_environment(const ChildOptions& options) {
  std::map<std::string, std::string> variables;
  if (!options.clear_env) {
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
      std::string_view text(*entry);
      size_t equals = text.find('=');
      if (equals == std::string_view::npos) continue;
      variables[std::string(text.substr(0, equals))] = std::string(text.substr(equals + 1));
    }
  }
  for (const std::string& name : options.unset_env) variables.erase(name);
  for (const auto& [name, value] : options.env) variables[name] = value;
  std::vector<std::string> entries;
  for (const auto& [name, value] : variables) entries.push_back(name + "=" + value);
  return entries;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> result;
  for (std::string& text : strings) result.push_back(text.data());
  result.push_back(nullptr);
  return result;
}

int open_or_throw(const std::filesystem::path& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) throw failure("cannot open " + path.string(), errno);
  return fd;
}

ExitStatus decode(int raw) {
  ExitStatus status;
  if (WIFEXITED(raw)) {
    status.exited = true;
    status.code = WEXITSTATUS(raw);
  } else if (WIFSIGNALED(raw)) {
    status.signal = WTERMSIG(raw);
  }
  return status;
}

}  // namespace

std::string ExitStatus::describe() const {
  if (exited) return "exit " + std::to_string(code);
  if (signal != 0) return "signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
  return "unknown";
}

ChildProcess::ChildProcess(ChildOptions options) {
  start(options);
}

ChildProcess::ChildProcess(std::vector<std::string> args) {
  ChildOptions options;
  options.args = std::move(args);
  start(options);
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    reap_if_ended(/*block=*/true);
  }
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_),
      status_(std::move(other.status_)),
      owned_output_(std::move(other.owned_output_)),
      stdout_path_(std::move(other.stdout_path_)),
      stderr_path_(std::move(other.stderr_path_)) {
  other.pid_ = -1;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && !status_) {
      ::kill(pid_, SIGKILL);
      reap_if_ended(true);
    }
    pid_ = other.pid_;
    status_ = std::move(other.status_);
    owned_output_ = std::move(other.owned_output_);
    stdout_path_ = std::move(other.stdout_path_);
    stderr_path_ = std::move(other.stderr_path_);
    other.pid_ = -1;
  }
  return *this;
}

void ChildProcess::start(const ChildOptions& options) {
  if (options.args.empty()) throw std::runtime_error("ChildProcess: no program given");
  std::filesystem::path output_dir = options.output_dir;
  if (output_dir.empty()) {
    owned_output_ = std::make_unique<TempDir>("herald-child");
    output_dir = owned_output_->path();
  }
  stdout_path_ = output_dir / (options.output_prefix + "stdout");
  stderr_path_ = output_dir / (options.output_prefix + "stderr");

  // Everything the child needs is prepared here: between fork and exec in a process with
  // threads (servers, thread pools) only async-signal-safe calls are allowed, so no allocation.
  std::vector<std::string> environment = build_environment(options);
  std::string path_variable = "/usr/local/bin:/usr/bin:/bin";
  for (const std::string& entry : environment) {
    if (entry.starts_with("PATH=")) path_variable = entry.substr(5);
  }
  std::string program = find_program(options.args[0], path_variable);
  std::vector<std::string> args = options.args;
  std::vector<char*> argv = pointers(args);
  std::vector<char*> envp = pointers(environment);
  std::string cwd = options.cwd.string();

  int out = open_or_throw(stdout_path_, O_WRONLY | O_CREAT | O_TRUNC);
  int err = open_or_throw(stderr_path_, O_WRONLY | O_CREAT | O_TRUNC);
  std::filesystem::path stdin_path = "/dev/null";
  if (options.stdin_text) {
    stdin_path = output_dir / (options.output_prefix + "stdin");
    int fd = open_or_throw(stdin_path, O_WRONLY | O_CREAT | O_TRUNC);
    const std::string& text = *options.stdin_text;
    size_t done = 0;
    while (done < text.size()) {
      ssize_t wrote = ::write(fd, text.data() + done, text.size() - done);
      if (wrote < 0 && errno == EINTR) continue;
      if (wrote < 0) {
        int error = errno;
        ::close(fd);
        throw failure("cannot write " + stdin_path.string(), error);
      }
      done += static_cast<size_t>(wrote);
    }
    ::close(fd);
  }
  int in = open_or_throw(stdin_path, O_RDONLY);
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) throw failure("pipe2", errno);
  pid_t parent = getpid();

  pid_t pid = fork();
  if (pid < 0) {
    int error = errno;
    for (int fd : {out, err, in, report[0], report[1]}) ::close(fd);
    throw failure("fork", error);
  }
  if (pid == 0) {
    dup2(in, STDIN_FILENO);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    if (options.kill_with_parent) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);  // the parent died before prctl took effect
    }
    // A blocked or ignored signal survives exec; the child must start with the defaults so
    // SIGTERM from the test does what it would in production.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int signal_number : {SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGCHLD})
      signal(signal_number, SIG_DFL);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) {
      int error = errno;
      [[maybe_unused]] auto written = write(report[1], &error, sizeof error);
      _exit(127);
    }
    execve(program.c_str(), argv.data(), envp.data());
    int error = errno;
    [[maybe_unused]] auto written = write(report[1], &error, sizeof error);
    _exit(127);
  }
  for (int fd : {out, err, in, report[1]}) ::close(fd);
  pid_ = pid;
  int error = 0;
  ssize_t got;
  do {
    got = read(report[0], &error, sizeof error);
  } while (got < 0 && errno == EINTR);
  ::close(report[0]);
  if (got == static_cast<ssize_t>(sizeof error)) {
    reap_if_ended(/*block=*/true);
    pid_ = -1;
    throw failure("cannot start " + program + (cwd.empty() ? "" : " in " + cwd), error);
  }
}

void ChildProcess::reap_if_ended(bool block) {
  if (pid_ <= 0 || status_) return;
  int raw = 0;
  pid_t result;
  do {
    result = waitpid(pid_, &raw, block ? 0 : WNOHANG);
  } while (result < 0 && errno == EINTR);
  if (result == pid_) {
    status_ = decode(raw);
  } else if (result < 0) {
    status_ = ExitStatus{};  // ECHILD: someone else reaped it; it has ended all the same
  }
}

bool ChildProcess::running() {
  reap_if_ended(/*block=*/false);
  return pid_ > 0 && !status_;
}

std::optional<ExitStatus> ChildProcess::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    reap_if_ended(/*block=*/false);
    if (status_ || pid_ <= 0) return status_;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
}

void ChildProcess::kill(int signal) {
  reap_if_ended(/*block=*/false);
  if (pid_ > 0 && !status_) ::kill(pid_, signal);
}

ExitStatus ChildProcess::stop(int signal, std::chrono::milliseconds timeout) {
  kill(signal);
  if (auto status = wait(timeout)) return *status;
  kill(SIGKILL);
  reap_if_ended(/*block=*/true);
  return status_.value_or(ExitStatus{});
}

std::string ChildProcess::stdout_text() const {
  return read_file(stdout_path_);
}
std::string ChildProcess::stderr_text() const {
  return read_file(stderr_path_);
}

bool ChildProcess::wait_for_stdout(std::string_view text, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (stdout_text().find(text) != std::string::npos) return true;
    if (!running()) return stdout_text().find(text) != std::string::npos;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace herald::testing
