// A small command-line parser for the `herald` subcommands: each command declares its flags,
// anything else is a clear error naming the flag and the command.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/common/result.h"

namespace herald::cli {

struct FlagSpec {
  std::string name;        // without dashes: "store"
  bool takes_value = false;
  bool repeatable = false;
  std::string help;
  std::string value_name;  // for --help: "PATH"
};

struct ParsedArgs {
  std::map<std::string, std::vector<std::string>> flags;  // name -> values ("" for switches)
  std::vector<std::string> positional;

  bool has(const std::string& name) const { return flags.count(name) != 0; }
  std::optional<std::string> value(const std::string& name) const;
  std::vector<std::string> values(const std::string& name) const;
};

// Parses `--name value`, `--name=value`, and switches; `--` ends the flags. `command` names the
// command in error messages ("herald run").
Result<ParsedArgs> parse_args(const std::vector<std::string>& args, const std::vector<FlagSpec>& specs,
                              const std::string& command);

std::string flags_help(const std::vector<FlagSpec>& specs);

}  // namespace herald::cli
