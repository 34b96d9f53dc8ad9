// herald-test-server: see tests/support/test_server.h. This file is .cpp, not .cc, so the glob
// that builds herald_test_support leaves this main() out of the library.
#include "tests/support/test_server.h"

int main(int argc, char** argv) {
  return herald::testing::run_test_server(argc, argv);
}
