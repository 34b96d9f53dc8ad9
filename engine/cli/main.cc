#include <unistd.h>

#include <iostream>

#include "engine/cli/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return herald::cli::run_cli(args, std::cout, std::cerr, isatty(STDOUT_FILENO) != 0);
}
