#include "engine/store/postgres/connection.h"

#include <random>
#include <thread>
#include <utility>

namespace herald::store::postgres {

namespace {

const std::string* sqlstate_of(const std::exception& e) {
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) return &sql->sqlstate();
  return nullptr;
}

bool is_retryable_conflict(const std::exception& e) {
  const std::string* state = sqlstate_of(e);
  if (state != nullptr) return *state == "40001" || *state == "40P01";
  // libpqxx names these two by class as well (when the server sent no SQLSTATE it knows).
  return dynamic_cast<const pqxx::serialization_failure*>(&e) != nullptr ||
         dynamic_cast<const pqxx::deadlock_detected*>(&e) != nullptr;
}

// The session is gone: the socket broke, or the server is ending it (pg_terminate_backend, a
// shutdown, a crash of another backend).
bool is_lost_connection(const std::exception& e) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) return true;
  const std::string* state = sqlstate_of(e);
  if (state == nullptr) return false;
  return state->starts_with("08") || *state == "57P01" || *state == "57P02" || *state == "57P03";
}

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\t')) {
    text.pop_back();
  }
  return text;
}

ErrorCode code_for_sqlstate(const std::string& state, bool& retryable) {
  retryable = false;
  if (state == "23505") return ErrorCode::already_exists;
  if (state == "23503") return ErrorCode::failed_precondition;
  if (state.starts_with("23") || state.starts_with("22")) return ErrorCode::invalid_argument;
  // A trigger's RAISE (the append-only audit log), as SQLite's RAISE(ABORT) is a constraint.
  if (state == "P0001") return ErrorCode::invalid_argument;
  if (state == "40001" || state == "40P01") {
    retryable = true;
    return ErrorCode::aborted;
  }
  if (state.starts_with("08") || state == "57P01" || state == "57P02" || state == "57P03" ||
      state == "53300" || state == "55P03") {
    retryable = true;
    return ErrorCode::unavailable;
  }
  if (state == "57014") {  // query_canceled: statement_timeout or a cancel request
    retryable = true;
    return ErrorCode::deadline_exceeded;
  }
  if (state.starts_with("53")) return ErrorCode::resource_exhausted;
  if (state == "42501" || state == "25006") return ErrorCode::permission_denied;
  if (state.starts_with("28")) return ErrorCode::unauthenticated;
  if (state == "3D000") return ErrorCode::failed_precondition;  // no such database
  return ErrorCode::internal;
}

void pause_before_retry(int attempt) {
  // 1, 2, 4, 8 ms and some jitter, so two transactions that deadlocked do not meet again.
  thread_local std::minstd_rand random(std::random_device{}());
  const int base_us = 1000 << std::min(attempt - 1, 4);
  std::this_thread::sleep_for(std::chrono::microseconds(base_us + random() % base_us));
}

}  // namespace

int64_t to_millis(TimePoint time) {
  return std::chrono::floor<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

TimePoint from_millis(int64_t millis) {
  return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::milliseconds(millis)));
}

std::string redact_url(std::string_view url) {
  // scheme://user:password@host... -> scheme://user@host...
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::string(url);
  const size_t start = scheme_end + 3;
  const size_t at = url.find('@', start);
  const size_t slash = url.find('/', start);
  if (at == std::string_view::npos || (slash != std::string_view::npos && slash < at)) {
    return std::string(url.substr(0, url.find('?')));
  }
  const size_t colon = url.find(':', start);
  std::string result(url.substr(0, colon != std::string_view::npos && colon < at ? colon : at));
  std::string_view rest = url.substr(at);
  result += rest.substr(0, rest.find('?'));  // query parameters may hold a password too
  return result;
}

Error make_pg_error(const std::exception& e, std::string_view what) {
  ErrorCode code = ErrorCode::internal;
  bool retryable = false;
  Json details = nullptr;
  std::string message = trimmed(e.what());
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
    code = ErrorCode::unavailable;
    message =
        "the connection was lost while committing, so whether the change was stored is "
        "unknown: " +
        message;
  } else if (const std::string* state = sqlstate_of(e); state != nullptr && !state->empty()) {
    code = code_for_sqlstate(*state, retryable);
    details = {{"sqlstate", *state}};
  } else if (is_lost_connection(e)) {
    code = ErrorCode::unavailable;
    retryable = true;
  } else if (is_retryable_conflict(e)) {
    code = ErrorCode::aborted;
    retryable = true;
  }
  if (!what.empty()) message = std::string(what) + ": " + message;
  Error error = make_error(code, std::move(message), retryable);
  error.details = std::move(details);
  return error;
}

// --- Params ---

Params& Params::text(std::string_view value) {
  if (value.find('\0') != std::string_view::npos && !refused_) {
    refused_ = "a text value holds a NUL byte, which PostgreSQL cannot store";
  }
  values_.emplace_back(std::string(value));
  return *this;
}

Params& Params::integer(int64_t value) {
  values_.emplace_back(std::to_string(value));
  return *this;
}

Params& Params::boolean(bool value) {
  values_.emplace_back(value ? "true" : "false");
  return *this;
}

Params& Params::time(const std::optional<TimePoint>& value) {
  if (!value) return null();
  return time(*value);
}

Params& Params::json(const Json& value) {
  if (value.is_null()) return null();
  // Invalid UTF-8 (a binary HTTP body, say) is replaced rather than thrown on, as the SQLite
  // store does: a commit must not fail because a step returned odd bytes. The text never holds
  // a NUL byte: JSON escapes it.
  values_.emplace_back(value.dump(-1, ' ', false, Json::error_handler_t::replace));
  return *this;
}

Params& Params::null() {
  values_.emplace_back(std::nullopt);
  return *this;
}

std::vector<const char*> Params::pointers() const {
  std::vector<const char*> pointers;
  pointers.reserve(values_.size());
  for (const auto& value : values_) pointers.push_back(value ? value->c_str() : nullptr);
  return pointers;
}

// --- Connection ---

Connection::Connection(const std::string& url) : connection_(url) {
  // Text goes in and out as UTF-8 whatever the server's or the environment's default.
  connection_.set_client_encoding("UTF8");
}

const std::string& Connection::prepared(const char* sql) {
  auto found = names_.find(sql);
  if (found != names_.end()) return found->second;
  std::string name = "herald_" + std::to_string(names_.size() + 1);
  connection_.prepare(name, sql);
  return names_.emplace(sql, std::move(name)).first->second;
}

// --- Tx ---

Result<pqxx::result> Tx::exec(const char* sql, const Params& params, std::string_view what) {
  if (params.refused()) {
    return make_error(ErrorCode::invalid_argument, std::string(what) + ": " + *params.refused());
  }
  const std::vector<const char*> pointers = params.pointers();
  try {
    const std::string& name = connection_.prepared(sql);
    return tx_.exec_prepared(name, pqxx::prepare::make_dynamic_params(pointers));
  } catch (const std::exception& e) {
    // The runner decides about these: run the transaction again, or drop the connection.
    if (is_retryable_conflict(e) || is_lost_connection(e)) throw;
    return make_pg_error(e, what);
  }
}

Result<pqxx::result> Tx::exec_text(const std::string& sql, std::string_view what) {
  try {
    return tx_.exec(sql);
  } catch (const std::exception& e) {
    if (is_retryable_conflict(e) || is_lost_connection(e)) throw;
    return make_pg_error(e, what);
  }
}

// --- Pool ---

Pool::Pool(std::string url, int size, std::chrono::milliseconds wait)
    : url_(std::move(url)), display_url_(redact_url(url_)), size_(size), wait_(wait) {}

Result<std::unique_ptr<Connection>> Pool::acquire() {
  std::unique_lock lock(mutex_);
  if (!freed_.wait_for(lock, wait_, [&] { return !idle_.empty() || open_ < size_; })) {
    return make_error(ErrorCode::unavailable,
                      "all " + std::to_string(size_) + " connections to " + display_url_ +
                          " stayed busy for " + std::to_string(wait_.count()) + " ms",
                      true);
  }
  if (!idle_.empty()) {
    auto connection = std::move(idle_.back());
    idle_.pop_back();
    return connection;
  }
  ++open_;
  lock.unlock();
  try {
    return std::make_unique<Connection>(url_);
  } catch (const std::exception& e) {
    lock.lock();
    --open_;
    freed_.notify_one();
    Error error = make_pg_error(e, "cannot connect to PostgreSQL at " + display_url_);
    if (error.code == ErrorCode::internal) error.code = ErrorCode::unavailable;
    return error;
  }
}

void Pool::release(std::unique_ptr<Connection> connection, bool healthy) {
  {
    std::lock_guard lock(mutex_);
    if (healthy && connection->raw().is_open()) {
      idle_.push_back(std::move(connection));
    } else {
      --open_;
    }
  }
  freed_.notify_one();
  // A dropped connection closes here, outside the lock.
}

// --- Transactions ---

Status run_write(Pool& pool, std::string_view what, const std::function<Status(Tx&)>& body) {
  int stale_connections = 0;
  for (int attempt = 1;; ++attempt) {
    auto acquired = pool.acquire();
    if (!acquired) return std::move(acquired).error();
    std::unique_ptr<Connection> connection = std::move(*acquired);
    std::optional<pqxx::work> tx;
    try {
      tx.emplace(connection->raw());
    } catch (const std::exception& e) {
      pool.release(std::move(connection), false);
      // Nothing was sent but BEGIN: a pooled connection that broke while idle (the server
      // restarted, or ended idle sessions). Another one, or a new one, may be fine.
      if (is_lost_connection(e) && stale_connections++ <= pool.size()) continue;
      return make_pg_error(e, what);
    }
    bool committing = false;
    try {
      Tx runner(*connection, *tx);
      Status status = body(runner);
      if (!status) {
        try {
          tx->abort();
        } catch (const std::exception&) {
          // The rollback failed with the connection: the body's error is the one to report,
          // and the server rolls back a transaction whose session ends.
        }
        tx.reset();
        const bool open = connection->raw().is_open();
        pool.release(std::move(connection), open);
        return status;
      }
      committing = true;
      tx->commit();
      tx.reset();
      pool.release(std::move(connection), true);
      return ok_status();
    } catch (const std::exception& e) {
      tx.reset();  // rolls back, when the connection still can
      const bool open = connection->raw().is_open();
      pool.release(std::move(connection), open);
      if (!committing && is_retryable_conflict(e) && attempt < kSerializationAttempts) {
        pause_before_retry(attempt);
        continue;
      }
      Error error = make_pg_error(e, what);
      if (committing && is_lost_connection(e) && error.code == ErrorCode::unavailable) {
        error.message += " (lost while committing: whether the change was stored is unknown)";
        error.retryable = false;
      }
      return error;
    }
  }
}

Status run_read(Pool& pool, std::string_view what, const std::function<Status(Tx&)>& body) {
  for (int attempt = 0;; ++attempt) {
    auto acquired = pool.acquire();
    if (!acquired) return std::move(acquired).error();
    std::unique_ptr<Connection> connection = std::move(*acquired);
    try {
      Status status;
      {
        pqxx::nontransaction tx(connection->raw());
        Tx runner(*connection, tx);
        status = body(runner);
      }
      pool.release(std::move(connection), true);
      return status;
    } catch (const std::exception& e) {
      const bool open = connection->raw().is_open();
      pool.release(std::move(connection), open);
      // A read changes nothing, so it may run again on another connection.
      if (is_lost_connection(e) && attempt <= pool.size()) continue;
      return make_pg_error(e, what);
    }
  }
}

}  // namespace herald::store::postgres
