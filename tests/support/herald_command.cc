#include "tests/support/herald_command.h"

#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <thread>

#include "tests/support/temp_dir.h"

namespace herald::testing {

std::string herald_binary() { return HERALD_BINARY; }

ChildProcess start_herald(const std::vector<std::string>& args,
                          const std::map<std::string, std::string>& env) {
  ChildOptions options;
  options.args.push_back(herald_binary());
  options.args.insert(options.args.end(), args.begin(), args.end());
  options.env = env;
  return ChildProcess(options);
}

namespace {
CommandResult wait_for(ChildProcess& child, std::chrono::milliseconds timeout) {
  CommandResult result;
  auto status = child.wait(timeout);
  result.status = status ? *status : child.stop(SIGKILL);
  result.out = child.stdout_text();
  result.err = child.stderr_text();
  return result;
}
}  // namespace

CommandResult run_herald_with_stdin(const std::vector<std::string>& args, const std::string& stdin_text,
                                    const std::map<std::string, std::string>& env,
                                    std::chrono::milliseconds timeout) {
  ChildOptions options;
  options.args.push_back(herald_binary());
  options.args.insert(options.args.end(), args.begin(), args.end());
  options.env = env;
  options.stdin_text = stdin_text;
  ChildProcess child(options);
  return wait_for(child, timeout);
}

CommandResult run_herald(const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env,
                         std::chrono::milliseconds timeout) {
  ChildProcess child = start_herald(args, env);
  CommandResult result;
  auto status = child.wait(timeout);
  result.status = status ? *status : child.stop(SIGKILL);
  result.out = child.stdout_text();
  result.err = child.stderr_text();
  return result;
}

std::vector<Json> json_lines(const std::string& text) {
  std::vector<Json> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    Json parsed = Json::parse(line, nullptr, false);
    if (!parsed.is_discarded() && parsed.is_object()) lines.push_back(std::move(parsed));
  }
  return lines;
}

std::string wait_for_listening(ChildProcess& server) {
  std::regex listening("listening on (http://127\\.0\\.0\\.1:[0-9]+)");
  for (int i = 0; i < 300; ++i) {
    std::smatch match;
    std::string out = read_file(server.stdout_path());
    if (std::regex_search(out, match, listening)) return match[1];
    if (!server.running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "herald serve did not start: " << read_file(server.stderr_path());
  return "";
}

}  // namespace herald::testing
