// ChildProcess: runs a program (the `herald` binary, herald-test-server) for an integration or
// crash test, with its stdout and stderr captured to files that the test can read while the
// child runs and after it is killed. Waits take a timeout so a hung child fails the test
// instead of hanging it; a child still running when its ChildProcess is destroyed gets SIGKILL.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/temp_dir.h"

namespace herald::testing {

struct ExitStatus {
  bool exited = false;  // ended through exit(); otherwise a signal ended it
  int code = -1;        // exit code when `exited`
  int signal = 0;       // the signal that ended it otherwise

  bool success() const { return exited && code == 0; }
  // "exit 0", "exit 2", "signal 9 (Killed)".
  std::string describe() const;
};

struct ChildOptions {
  // args[0] is the program: a path, or a name looked up in PATH.
  std::vector<std::string> args;
  // Set on top of the parent's environment (or of an empty one with clear_env).
  std::map<std::string, std::string> env;
  std::vector<std::string> unset_env;
  bool clear_env = false;
  std::filesystem::path cwd;  // empty: the parent's
  // stdout and stderr go to <output_dir>/stdout and <output_dir>/stderr; empty: a TempDir the
  // ChildProcess owns (gone once it is destroyed).
  std::filesystem::path output_dir;
  std::string output_prefix;  // "herald-1." gives herald-1.stdout, so several children share a dir
  // The child gets SIGKILL if the thread that started it ends (Linux PR_SET_PDEATHSIG), so a
  // crashed test leaves no server behind. Start children from the test's main thread.
  bool kill_with_parent = true;
  // What the child reads on stdin (written to <output_dir>/<output_prefix>stdin first); nullopt:
  // /dev/null.
  std::optional<std::string> stdin_text;
};

class ChildProcess {
 public:
  // Starts the child; stdin is options.stdin_text, else /dev/null. Throws std::runtime_error
  // when the program cannot be started (not found, not executable), with the reason.
  explicit ChildProcess(ChildOptions options);
  explicit ChildProcess(std::vector<std::string> args);
  ~ChildProcess();
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Reaps the child when it has ended.
  bool running();
  // The exit status once the child ends, nullopt if it is still running after `timeout`.
  std::optional<ExitStatus> wait(std::chrono::milliseconds timeout);
  // Sends `signal` unless the child was already reaped (its pid may belong to another process).
  void kill(int signal = SIGKILL);
  // kill(signal), then wait up to `timeout` (and SIGKILL if it did not end).
  ExitStatus stop(int signal = SIGTERM,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  // The status if it has been reaped.
  const std::optional<ExitStatus>& status() const { return status_; }

  const std::filesystem::path& stdout_path() const { return stdout_path_; }
  const std::filesystem::path& stderr_path() const { return stderr_path_; }
  std::string stdout_text() const;
  std::string stderr_text() const;
  // True once stdout contains `text`; false when the child ends without it or time runs out.
  bool wait_for_stdout(std::string_view text, std::chrono::milliseconds timeout);

 private:
  void start(const ChildOptions& options);
  void reap_if_ended(bool block);

  pid_t pid_ = -1;
  std::optional<ExitStatus> status_;
  std::unique_ptr<TempDir> owned_output_;
  std::filesystem::path stdout_path_;
  std::filesystem::path stderr_path_;
};

}  // namespace herald::testing
