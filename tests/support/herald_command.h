// Runs the real `herald` binary for integration tests and returns what it printed.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "engine/common/result.h"
#include "tests/support/child_process.h"

namespace herald::testing {

struct CommandResult {
  ExitStatus status;
  std::string out;
  std::string err;
  int code() const { return status.exited ? status.code : -status.signal; }
};

// The path of the herald binary under test.
std::string herald_binary();

// Runs `herald ARGS...` with `env` on top of the test's environment and waits for it (killing it
// after `timeout`, which then fails the calling test's expectations on the exit code).
CommandResult run_herald(const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env = {},
                         std::chrono::milliseconds timeout = std::chrono::seconds(60));

// run_herald with `stdin_text` on the child's stdin.
CommandResult run_herald_with_stdin(const std::vector<std::string>& args, const std::string& stdin_text,
                                    const std::map<std::string, std::string>& env = {},
                                    std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Starts `herald ARGS...` without waiting.
ChildProcess start_herald(const std::vector<std::string>& args,
                          const std::map<std::string, std::string>& env = {});

// Waits for a started `herald serve` to print its "listening on http://127.0.0.1:PORT" line and
// returns that URL; "" (and a failed expectation with the server's stderr) when it did not start.
std::string wait_for_listening(ChildProcess& server);

// The JSON objects printed one per line (lines that are not JSON are skipped).
std::vector<Json> json_lines(const std::string& text);

}  // namespace herald::testing
