// A thin RAII layer over the SQLite C API, private to the SQLite store: a Connection owns one
// sqlite3 handle and caches every statement it prepares (keyed by the address of the SQL text,
// which is always a string that lives as long as the program), and a Statement is one use of a
// cached statement that resets it when it goes out of scope. A Connection is used by one thread
// at a time; the store's locks see to that.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "engine/common/result.h"
#include "engine/store/store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace herald::store::sqlite {

// Turns an SQLite result code into our Error: busy/locked are retryable `unavailable`, unique
// and primary-key violations `already_exists`, a missing referenced row `failed_precondition`.
Error make_sqlite_error(int code, std::string_view what, std::string_view sqlite_message);

int64_t to_millis(TimePoint time);
TimePoint from_millis(int64_t millis);

class Statement {
 public:
  Statement(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  ~Statement();

  // Binding indexes start at 1, as in SQL. Text is bound without a copy: the caller keeps it
  // alive until the statement is stepped to its end or destroyed.
  void bind(int index, int64_t value);
  void bind(int index, std::string_view text);
  void bind(int index, TimePoint time) { bind(index, to_millis(time)); }
  void bind(int index, const std::optional<TimePoint>& time);
  void bind_null(int index);
  // JSON null is stored as SQL NULL; anything else as its compact text (copied by SQLite).
  void bind_json(int index, const Json& json);

  // Steps once: true when a row is ready, false when done, an Error otherwise. `what` names the
  // operation for the error message.
  Result<bool> step(std::string_view what);
  // Steps a statement that returns no rows.
  Status run(std::string_view what);

  bool is_null(int column) const;
  int64_t column_int64(int column) const;
  std::string_view column_text(int column) const;
  std::optional<TimePoint> column_optional_time(int column) const;
  TimePoint column_time(int column) const { return from_millis(column_int64(column)); }
  // SQL NULL reads back as JSON null; text that does not parse is an error (a damaged row).
  Result<Json> column_json(int column) const;

 private:
  sqlite3_stmt* stmt_;
  sqlite3* db_;
};

class Connection {
 public:
  // Opens `path` with sqlite3_open_v2 `flags` (SQLITE_OPEN_NOMUTEX is always added: the store
  // never shares a connection between threads at once).
  static Result<std::unique_ptr<Connection>> open(const std::string& path, int flags);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  sqlite3* handle() const { return db_; }

  // Runs SQL text once without caching (pragmas, migrations). May hold several statements.
  Status exec(const std::string& sql, std::string_view what);
  // The cached statement for `sql`, prepared on first use. `sql` must outlive the connection.
  Result<Statement> prepare(const char* sql);

  // Runs a statement returning one integer (or text) value, uncached; for pragmas and checks.
  Result<std::optional<std::string>> query_text(const std::string& sql, std::string_view what);

  Status begin_immediate();
  Status commit();
  // Rolls back when a transaction is open (some errors already rolled it back); never fails.
  void rollback();

  Error last_error(std::string_view what) const;

 private:
  explicit Connection(sqlite3* db) : db_(db) {}

  sqlite3* db_;
  std::unordered_map<const char*, sqlite3_stmt*> cache_;
};

}  // namespace herald::store::sqlite
