#include "tests/support/postgres_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

namespace herald::testing {

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string bin(const char* program) {
  // Appended in place: GCC 12 warns (wrongly) about bounds on the temporaries of a + chain here.
  std::string path = PostgresServer::kBinDir;
  path += '/';
  path += program;
  return path;
}

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// Runs a client program to its end; its exit status and output.
struct Finished {
  ExitStatus status;
  std::string out;
  std::string err;
};

Finished run(std::vector<std::string> args, milliseconds timeout,
             const std::filesystem::path& cwd = {}) {
  ChildOptions options;
  options.args = std::move(args);
  options.cwd = cwd;
  // A developer's PG* variables (PGDATABASE, PGPASSWORD, PGSERVICE ...) must not redirect the
  // tests' clients to another server.
  for (const char* name : {"PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD",
                           "PGPASSFILE", "PGSERVICE", "PGSERVICEFILE", "PGOPTIONS"}) {
    options.unset_env.push_back(name);
  }
  options.env["PGCONNECT_TIMEOUT"] = "10";
  ChildProcess child(std::move(options));
  Finished finished;
  if (auto status = child.wait(timeout)) {
    finished.status = *status;
  } else {
    finished.status = child.stop(SIGKILL, seconds(5));
    finished.err = "(killed after " + std::to_string(timeout.count()) + " ms) ";
  }
  finished.out = child.stdout_text();
  finished.err += child.stderr_text();
  return finished;
}

}  // namespace

uint16_t free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    int error = errno;
    ::close(fd);
    throw std::runtime_error(std::string("cannot pick a free port: ") + std::strerror(error));
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

PostgresServer::PostgresServer() : dir_("herald-pg") {
  namespace fs = std::filesystem;
  fs::create_directories(dir_ / "socket");
  fs::create_directories(dir_ / "log");
  if (geteuid() == 0) {
    // initdb and postgres refuse root; the folder must belong to whoever runs them.
    os_user_ = "postgres";
    const passwd* owner = getpwnam(os_user_.c_str());
    if (owner == nullptr) {
      throw std::runtime_error(
          "PostgresServer: the tests run as root and there is no user 'postgres' to run "
          "PostgreSQL as (scripts/install-deps installs postgresql, which creates it)");
    }
    for (const fs::path& path : {dir_.path(), dir_ / "socket"}) {
      if (::chown(path.c_str(), owner->pw_uid, owner->pw_gid) != 0) {
        throw std::runtime_error("PostgresServer: cannot give " + path.string() + " to " +
                                 os_user_ + ": " + std::strerror(errno));
      }
    }
  }
  // --no-sync: the cluster is thrown away, so initdb need not fsync its files either.
  run_as_owner({bin("initdb"), "--pgdata", (dir_ / "data").string(), "--username", user_, "--auth",
                "trust", "--encoding", "UTF8", "--locale", "C", "--no-sync", "--no-instructions"},
               "initdb");
  // The port is free when picked but may be taken before postgres binds it: then try another.
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (start_on(free_loopback_port())) return;
  }
  throw std::runtime_error("PostgresServer: no free port after 5 tries; last log:\n" + log());
}

PostgresServer::~PostgresServer() {
  stop();
}

PostgresServer& PostgresServer::shared() {
  static PostgresServer* server = [] {
    if (gettid() != getpid()) {
      throw std::logic_error(
          "PostgresServer::shared() must first be called from the main thread: the server "
          "is stopped when the thread that started it ends");
    }
    // Destroyed at exit, like any function-local static: after every test is done.
    static PostgresServer instance;
    return &instance;
  }();
  return *server;
}

std::string PostgresServer::url(std::string_view database) const {
  return "postgres://" + user_ + "@127.0.0.1:" + std::to_string(port_) + "/" +
         std::string(database);
}

std::string PostgresServer::create_database(std::string_view prefix) {
  const std::string name = std::string(prefix) + "_" + std::to_string(getpid()) + "_" +
                           std::to_string(++databases_made_);
  // template0 and an explicit C collation: the same bytewise text order as SQLite's, whatever
  // template1 was given.
  psql("CREATE DATABASE \"" + name +
       "\" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'");
  return name;
}

void PostgresServer::drop_database(const std::string& name) noexcept {
  try {
    psql("DROP DATABASE IF EXISTS \"" + name + "\" WITH (FORCE)");
  } catch (const std::exception&) {
    // The cluster and everything in it go at exit anyway.
  }
}

std::string PostgresServer::psql(const std::string& sql, std::string_view database) const {
  Finished done =
      run({bin("psql"), "--no-psqlrc", "--quiet", "--no-align", "--tuples-only", "--set",
           "ON_ERROR_STOP=1", "--host", "127.0.0.1", "--port", std::to_string(port_), "--username",
           user_, "--dbname", std::string(database), "--command", sql},
          seconds(60));
  if (!done.status.success()) {
    throw std::runtime_error("psql (" + done.status.describe() + ") failed on: " + sql + "\n" +
                             done.err);
  }
  return done.out;
}

std::string PostgresServer::log() const {
  if (!server_) return "";
  return read_file(server_->stdout_path()) + read_file(server_->stderr_path());
}

std::vector<std::string> PostgresServer::as_owner(std::vector<std::string> args) const {
  if (os_user_.empty()) return args;
  // setpriv execs the program itself (runuser and su fork and wait), so the pid we hold is the
  // server's, and it sets the parent-death signal after changing user: changing credentials
  // clears the one ChildProcess set.
  std::vector<std::string> wrapped = {"setpriv",       "--reuid=" + os_user_, "--regid=" + os_user_,
                                      "--init-groups", "--pdeathsig=KILL",    "--"};
  wrapped.insert(wrapped.end(), std::make_move_iterator(args.begin()),
                 std::make_move_iterator(args.end()));
  return wrapped;
}

void PostgresServer::run_as_owner(std::vector<std::string> args, std::string_view what) const {
  // In the cluster's folder: the owner may not be allowed into the test's working directory.
  Finished done = run(as_owner(std::move(args)), seconds(120), dir_.path());
  if (!done.status.success()) {
    throw std::runtime_error("PostgresServer: " + std::string(what) + " failed (" +
                             done.status.describe() + "):\n" + done.out + done.err);
  }
}

bool PostgresServer::start_on(uint16_t port) {
  ChildOptions options;
  options.args = as_owner(
      {bin("postgres"), "-D", (dir_ / "data").string(),
       // TCP on loopback only, and a socket no other cluster uses.
       "-c", "listen_addresses=127.0.0.1", "-p", std::to_string(port), "-c",
       "unix_socket_directories=" + (dir_ / "socket").string(),
       // Durability off: nothing here must survive a crash of the machine.
       "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
       // Deadlocks that tests provoke are found in a fifth of the default.
       "-c", "deadlock_timeout=200ms", "-c", "max_connections=200", "-c", "logging_collector=off"});
  options.output_dir = dir_ / "log";
  options.cwd = dir_.path();
  options.output_prefix = "postgres-" + std::to_string(port) + ".";
  server_ = std::make_unique<ChildProcess>(std::move(options));
  port_ = port;

  const auto deadline = std::chrono::steady_clock::now() + seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!server_->running()) {
      const std::string text = log();
      if (contains(text, "could not bind") || contains(text, "Address already in use")) {
        server_.reset();
        return false;
      }
      throw std::runtime_error("PostgresServer: postgres ended (" +
                               server_->status().value_or(ExitStatus{}).describe() +
                               ") before accepting connections:\n" + text);
    }
    Finished ready = run({bin("pg_isready"), "--host", "127.0.0.1", "--port", std::to_string(port),
                          "--username", user_, "--dbname", "postgres", "--timeout", "2"},
                         seconds(10));
    if (ready.status.success()) return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  stop();
  throw std::runtime_error("PostgresServer: postgres did not accept connections within 60 s:\n" +
                           log());
}

void PostgresServer::stop() noexcept {
  if (!server_) return;
  // SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for every client to disconnect.
  server_->stop(SIGINT, seconds(15));
  server_.reset();
}

}  // namespace herald::testing
