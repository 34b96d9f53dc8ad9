// RedisServer: a throwaway redis-server for tests, on 127.0.0.1 and a free port, keeping nothing
// on disk (no RDB snapshots, no append-only file; its working folder is a temporary one). Cheap
// to start (a few milliseconds), so each test that needs Redis starts its own. restart() brings
// it back on the same port, empty, as a real Redis restart without persistence would; stop()
// leaves it down, for tests of what Herald does while Redis is away. Stopped when the object
// goes; a test process that crashes takes it along.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "tests/support/child_process.h"
#include "tests/support/temp_dir.h"

namespace herald::testing {

class RedisServer {
 public:
  // Starts redis-server and waits until it accepts connections. Throws std::runtime_error, with
  // what it printed, when it cannot.
  RedisServer();
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  uint16_t port() const { return port_; }
  // redis://127.0.0.1:PORT
  std::string url() const;
  bool running() const;

  // Stops it (SIGTERM, then SIGKILL after 5 s); nothing listens on the port afterwards.
  void stop() noexcept;
  // Stops it if running, then starts it again on the same port. Throws like the constructor.
  void restart();

  // What the server printed so far (every start), for failure messages.
  std::string log() const;

 private:
  // False when the port was taken meanwhile (the caller picks another); throws otherwise.
  bool start_on(uint16_t port);

  TempDir dir_;
  uint16_t port_ = 0;
  int starts_ = 0;
  std::unique_ptr<ChildProcess> server_;
};

}  // namespace herald::testing
