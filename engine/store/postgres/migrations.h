// The PostgreSQL store's schema: the same numbered migrations as the SQLite store's
// (engine/store/sqlite/migrations.cc), with the same tables, columns and meaning, written for
// PostgreSQL. Times are BIGINT epoch milliseconds and JSON is TEXT (NULL for JSON null), as in
// SQLite, so both stores hand back exactly what they were given (docs/decisions/0007). A
// migration is never edited once released: schema changes are a new number at the end of both
// lists.
#pragma once

#include <span>

namespace herald::store::postgres {

struct Migration {
  int version;       // 1, 2, ... without gaps; the same number means the same change as in SQLite
  const char* name;  // recorded next to the number, for people reading schema_migrations
  const char* sql;   // one or more statements, run inside the migration transaction
};

std::span<const Migration> migrations();

}  // namespace herald::store::postgres
