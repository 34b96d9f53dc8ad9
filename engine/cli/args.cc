#include "engine/cli/args.h"

namespace herald::cli {

std::optional<std::string> ParsedArgs::value(const std::string& name) const {
  auto it = flags.find(name);
  if (it == flags.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> ParsedArgs::values(const std::string& name) const {
  auto it = flags.find(name);
  return it == flags.end() ? std::vector<std::string>{} : it->second;
}

Result<ParsedArgs> parse_args(const std::vector<std::string>& args, const std::vector<FlagSpec>& specs,
                              const std::string& command) {
  ParsedArgs parsed;
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_done || arg.size() < 2 || arg[0] != '-') {
      parsed.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    std::string name = arg.substr(arg[1] == '-' ? 2 : 1);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (name == "h") name = "help";
    const FlagSpec* spec = nullptr;
    for (const auto& s : specs) {
      if (s.name == name) spec = &s;
    }
    if (spec == nullptr) {
      return make_error(ErrorCode::invalid_argument,
                        command + ": unknown flag '" + arg + "'; see '" + command + " --help'");
    }
    std::string value;
    if (spec->takes_value) {
      if (inline_value) {
        value = *inline_value;
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return make_error(ErrorCode::invalid_argument,
                          command + ": flag --" + name + " needs a value (" + spec->value_name + ")");
      }
    } else if (inline_value) {
      return make_error(ErrorCode::invalid_argument, command + ": flag --" + name + " takes no value");
    }
    auto& values = parsed.flags[name];
    if (!values.empty() && !spec->repeatable) {
      return make_error(ErrorCode::invalid_argument, command + ": flag --" + name + " given twice");
    }
    values.push_back(value);
  }
  return parsed;
}

std::string flags_help(const std::vector<FlagSpec>& specs) {
  std::string out;
  for (const auto& spec : specs) {
    std::string left = "  --" + spec.name + (spec.takes_value ? " " + spec.value_name : "");
    if (left.size() < 26) left.resize(26, ' ');
    else left += "  ";
    out += left + spec.help + (spec.repeatable ? " (repeatable)" : "") + "\n";
  }
  return out;
}

}  // namespace herald::cli
