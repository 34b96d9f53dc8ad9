// The layer between the PostgreSQL store and libpqxx, private to engine/store/postgres (this is
// the only header that includes pqxx, and only the store's .cc files include it): a pool of
// connections, statement parameters, SQLSTATEs turned into our ErrorCodes, and the transaction
// runner that retries what PostgreSQL asks to be retried. See
// docs/decisions/0007-postgres-store.md.
#pragma once

#include <pqxx/pqxx>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/common/result.h"
#include "engine/store/store.h"

namespace herald::store::postgres {

// Times are BIGINT epoch milliseconds, as in the SQLite store (floor, so times before 1970 round
// the same way as times after).
int64_t to_millis(TimePoint time);
TimePoint from_millis(int64_t millis);

// The URL without its password ("postgres://herald@db:5432/herald"), for messages.
std::string redact_url(std::string_view url);

// Turns a libpqxx exception into our Error: unique violations are already_exists, foreign keys
// failed_precondition, other constraints and bad values invalid_argument, serialization failures
// and deadlocks retryable `aborted`, a lost connection or a server shutting down retryable
// `unavailable`. `what` names the operation for the message.
Error make_pg_error(const std::exception& e, std::string_view what);

// The parameters of one statement, $1, $2, ... in the order they are added. JSON null and
// nullopt times are SQL NULL, as in the SQLite store.
class Params {
 public:
  Params& text(std::string_view value);
  Params& integer(int64_t value);
  Params& boolean(bool value);
  Params& time(TimePoint value) { return integer(to_millis(value)); }
  Params& time(const std::optional<TimePoint>& value);
  Params& json(const Json& value);
  Params& null();

  // libpq passes text parameters as C strings, so a NUL byte would silently cut the value short:
  // such a value is refused (invalid_argument) before anything is sent.
  const std::optional<std::string>& refused() const { return refused_; }
  std::vector<const char*> pointers() const;

 private:
  std::vector<std::optional<std::string>> values_;
  std::optional<std::string> refused_;
};

// One pooled connection and the statements prepared on it (keyed by the address of their SQL
// text, which always lives as long as the program, like the SQLite store's statement cache).
class Connection {
 public:
  explicit Connection(const std::string& url);
  pqxx::connection& raw() { return connection_; }
  // The name of the prepared statement for `sql`, preparing it on first use.
  const std::string& prepared(const char* sql);

 private:
  pqxx::connection connection_;
  std::unordered_map<const char*, std::string> names_;
};

// Runs prepared statements in one transaction (or none, for reads). Statement errors come back as
// Errors; serialization failures, deadlocks and lost connections are thrown on, so the runner can
// retry the whole transaction or give up on the connection.
class Tx {
 public:
  Tx(Connection& connection, pqxx::transaction_base& tx) : connection_(connection), tx_(tx) {}

  Result<pqxx::result> exec(const char* sql, const Params& params, std::string_view what);
  // Statements that run once (migrations, checks): not prepared.
  Result<pqxx::result> exec_text(const std::string& sql, std::string_view what);

 private:
  Connection& connection_;
  pqxx::transaction_base& tx_;
};

// A fixed number of connections, opened when first needed and reopened after they break. Callers
// wait for a free one (up to `wait`), so the store never has more than `size` sessions open.
class Pool {
 public:
  Pool(std::string url, int size, std::chrono::milliseconds wait);

  Result<std::unique_ptr<Connection>> acquire();
  // `healthy` false drops the connection (it broke, or is in an unknown state); a new one is
  // opened for the next caller.
  void release(std::unique_ptr<Connection> connection, bool healthy);

  const std::string& display_url() const { return display_url_; }
  int size() const { return size_; }

 private:
  const std::string url_;
  const std::string display_url_;
  const int size_;
  const std::chrono::milliseconds wait_;
  std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<Connection>> idle_;
  int open_ = 0;  // connections handed out or idle
};

// How many times a transaction that PostgreSQL aborted as a serialization failure or a deadlock
// (SQLSTATE 40001, 40P01) is run again before its caller gets `aborted`.
inline constexpr int kSerializationAttempts = 5;

// Runs `body` in a READ COMMITTED transaction on a pooled connection and commits when it returns
// ok; any Error, or exception, rolls back. Retries the whole transaction on a serialization
// failure or deadlock, and on a connection found broken before anything was sent (a connection
// that idled in the pool while the server restarted). A connection lost after that is
// `unavailable`: nothing was committed, unless it broke during COMMIT itself, when the outcome is
// unknown (the message says so).
Status run_write(Pool& pool, std::string_view what, const std::function<Status(Tx&)>& body);

// Runs `body` outside a transaction (each statement sees its own snapshot, as an SQLite reader
// does); a read on a broken connection is run again on a fresh one.
Status run_read(Pool& pool, std::string_view what, const std::function<Status(Tx&)>& body);

}  // namespace herald::store::postgres
