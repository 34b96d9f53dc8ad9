// PostgresServer: a throwaway PostgreSQL cluster for tests. initdb in a temporary folder, then
// `postgres` listening on 127.0.0.1 only, on a free port, with its unix socket inside that
// folder and durability off (fsync, synchronous_commit, full_page_writes: a test's data need not
// survive a power cut, and this makes CREATE DATABASE and commits fast). Stopped, and its folder
// removed, when the object goes; a test process that crashes takes it along (the server gets
// SIGKILL when the thread that started it ends).
//
// Starting a cluster takes a second or so, so a test process shares one (shared()) and gives each
// test a fresh database of its own (create_database()), which keeps tests fast and independent.
//
// PostgreSQL refuses to run as root: when the tests run as root, the cluster runs as the system
// user `postgres` (from Debian's postgresql-common) and its folder belongs to that user.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "tests/support/child_process.h"
#include "tests/support/temp_dir.h"

namespace herald::testing {

// A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's pick for port 0). Another
// process may take it before the caller binds it, so servers started on it retry on a new port when
// their bind fails. Shared by PostgresServer and RedisServer.
uint16_t free_loopback_port();

class PostgresServer {
 public:
  // The folder of initdb and postgres (Debian's PostgreSQL 15).
  static constexpr const char* kBinDir = "/usr/lib/postgresql/15/bin";

  // Starts a new cluster and waits until it accepts connections. Throws std::runtime_error, with
  // what initdb or postgres printed, when it cannot.
  PostgresServer();
  // Fast shutdown (SIGINT: open sessions are ended), then the folder goes.
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // The cluster of this test process, started on first use and stopped at exit. The first call
  // must come from the main thread (the server is tied to the thread that starts it).
  static PostgresServer& shared();

  uint16_t port() const { return port_; }
  // The database superuser the URLs name; it needs no password (trust on 127.0.0.1).
  const std::string& user() const { return user_; }
  // postgres://USER@127.0.0.1:PORT/DATABASE
  std::string url(std::string_view database = "postgres") const;

  // Creates an empty database with a name no other call of this process gets
  // (<prefix>_<pid>_<n>) and returns the name. Throws std::runtime_error when it cannot.
  std::string create_database(std::string_view prefix = "herald_test");
  // Drops it, ending its open sessions first; errors are ignored (for destructors).
  void drop_database(const std::string& name) noexcept;

  // Runs SQL with psql as the superuser on `database` and returns what it printed (unaligned,
  // tuples only: one line per row, columns split by '|'). Throws std::runtime_error, with psql's
  // error, when a statement fails.
  std::string psql(const std::string& sql, std::string_view database = "postgres") const;

  // What the server printed so far (its log), for failure messages.
  std::string log() const;

 private:
  // Runs a PostgreSQL program as the cluster's owner and waits for it; throws on failure.
  void run_as_owner(std::vector<std::string> args, std::string_view what) const;
  std::vector<std::string> as_owner(std::vector<std::string> args) const;
  bool start_on(uint16_t port);
  void stop() noexcept;

  TempDir dir_;
  std::string os_user_;  // empty: the current user
  std::string user_ = "herald";
  uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> server_;
  int databases_made_ = 0;
};

}  // namespace herald::testing
