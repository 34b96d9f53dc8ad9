#include "engine/store/sqlite/connection.h"

#include <sqlite3.h>

#include <mutex>
#include <string>

namespace herald::store::sqlite {

Error make_sqlite_error(int code, std::string_view what, std::string_view sqlite_message) {
  ErrorCode error_code = ErrorCode::internal;
  bool retryable = false;
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      error_code = ErrorCode::unavailable;
      retryable = true;
      break;
    case SQLITE_CONSTRAINT:
      if (code == SQLITE_CONSTRAINT_PRIMARYKEY || code == SQLITE_CONSTRAINT_UNIQUE) {
        error_code = ErrorCode::already_exists;
      } else if (code == SQLITE_CONSTRAINT_FOREIGNKEY) {
        error_code = ErrorCode::failed_precondition;
      } else {
        error_code = ErrorCode::invalid_argument;
      }
      break;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      error_code = ErrorCode::resource_exhausted;
      break;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      error_code = ErrorCode::permission_denied;
      break;
    case SQLITE_CANTOPEN:
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      error_code = ErrorCode::failed_precondition;
      break;
    case SQLITE_IOERR:
      error_code = ErrorCode::unavailable;
      break;
    default:
      break;
  }
  std::string message(sqlite_message);
  if (!what.empty()) message = std::string(what) + ": " + message;
  Error error = make_error(error_code, std::move(message), retryable);
  error.details = {{"sqlite_code", code}};
  return error;
}

int64_t to_millis(TimePoint time) {
  // floor, not truncation, so times before 1970 round the same way as times after.
  return std::chrono::floor<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

TimePoint from_millis(int64_t millis) {
  return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::milliseconds(millis)));
}

// --- Statement ---

Statement::Statement(Statement&& other) noexcept : stmt_(other.stmt_), db_(other.db_) {
  other.stmt_ = nullptr;
}

Statement::~Statement() {
  if (stmt_ == nullptr) return;
  // Resetting ends the statement's implicit read transaction, so a cached statement never pins
  // an old snapshot of the WAL.
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

void Statement::bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
}

void Statement::bind(int index, std::string_view text) {
  sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8);
}

void Statement::bind(int index, const std::optional<TimePoint>& time) {
  if (time) {
    bind(index, *time);
  } else {
    bind_null(index);
  }
}

void Statement::bind_null(int index) {
  sqlite3_bind_null(stmt_, index);
}

void Statement::bind_json(int index, const Json& json) {
  if (json.is_null()) {
    bind_null(index);
    return;
  }
  // Invalid UTF-8 (a binary HTTP body, say) is replaced rather than thrown on: a commit must not
  // fail because a step returned odd bytes.
  std::string text = json.dump(-1, ' ', false, Json::error_handler_t::replace);
  sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

Result<bool> Statement::step(std::string_view what) {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return make_sqlite_error(sqlite3_extended_errcode(db_), what, sqlite3_errmsg(db_));
}

Status Statement::run(std::string_view what) {
  auto stepped = step(what);
  if (!stepped) return std::move(stepped).error();
  return ok_status();
}

bool Statement::is_null(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

int64_t Statement::column_int64(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

std::string_view Statement::column_text(int column) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  if (text == nullptr) return {};
  return {text, static_cast<size_t>(sqlite3_column_bytes(stmt_, column))};
}

std::optional<TimePoint> Statement::column_optional_time(int column) const {
  if (is_null(column)) return std::nullopt;
  return column_time(column);
}

Result<Json> Statement::column_json(int column) const {
  if (is_null(column)) return Json(nullptr);
  std::string_view text = column_text(column);
  Json json = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return make_error(ErrorCode::internal, std::string("stored JSON in column ") +
                                               sqlite3_column_name(stmt_, column) +
                                               " does not parse");
  }
  return json;
}

// --- Connection ---

Result<std::unique_ptr<Connection>> Connection::open(const std::string& path, int flags) {
  // Memory statistics take a global mutex on every SQLite allocation; nothing here reads them.
  // Only possible before SQLite initialises; if someone else initialised it first, no harm.
  static std::once_flag configured;
  std::call_once(configured, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Error error = make_sqlite_error(rc, "cannot open the store database " + path,
                                    db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return error;
  }
  sqlite3_extended_result_codes(db, 1);
  return std::unique_ptr<Connection>(new Connection(db));
}

Connection::~Connection() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

Status Connection::exec(const std::string& sql, std::string_view what) {
  char* message = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
  if (rc == SQLITE_OK) return ok_status();
  Error error = make_sqlite_error(sqlite3_extended_errcode(db_), what,
                                  message != nullptr ? message : sqlite3_errstr(rc));
  sqlite3_free(message);
  return error;
}

Result<Statement> Connection::prepare(const char* sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return Statement(it->second, db_);
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return make_sqlite_error(sqlite3_extended_errcode(db_),
                             std::string("cannot prepare \"") + sql + "\"", sqlite3_errmsg(db_));
  }
  cache_.emplace(sql, stmt);
  return Statement(stmt, db_);
}

Result<std::optional<std::string>> Connection::query_text(const std::string& sql,
                                                          std::string_view what) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return last_error(what);
  std::optional<std::string> value;
  rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL) {
    value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    Error error = last_error(what);
    sqlite3_finalize(stmt);
    return error;
  }
  sqlite3_finalize(stmt);
  return value;
}

Status Connection::begin_immediate() {
  static constexpr const char* kBegin = "BEGIN IMMEDIATE";
  auto stmt = prepare(kBegin);
  if (!stmt) return std::move(stmt).error();
  return stmt->run("starting a transaction");
}

Status Connection::commit() {
  static constexpr const char* kCommit = "COMMIT";
  auto stmt = prepare(kCommit);
  if (!stmt) return std::move(stmt).error();
  return stmt->run("committing");
}

void Connection::rollback() {
  // An I/O error or a full disk may have rolled the transaction back already.
  if (sqlite3_get_autocommit(db_) != 0) return;
  static constexpr const char* kRollback = "ROLLBACK";
  auto stmt = prepare(kRollback);
  if (stmt) (void)stmt->run("rolling back");
}

Error Connection::last_error(std::string_view what) const {
  return make_sqlite_error(sqlite3_extended_errcode(db_), what, sqlite3_errmsg(db_));
}

}  // namespace herald::store::sqlite
