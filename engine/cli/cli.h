// The `herald` command: run, validate, schema, runs list|show, resume, version. Exit codes:
// 0 success, 1 a run failed (or a command failed at run time), 2 invalid input (bad flags, an
// invalid workflow, unknown inputs).
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace herald::cli {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitInvalid = 2;

// `args` excludes the program name. `interactive` selects human-readable progress; otherwise
// progress is JSON lines.
int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
            bool interactive);

}  // namespace herald::cli
