// The SQLite store's schema as numbered migrations, applied in order at open and recorded in
// schema_migrations. A migration is never edited once released: schema changes are a new number
// at the end. The PostgreSQL store keeps a sibling list with the same numbers and tables, so the
// SQL here sticks to portable types: TEXT, INTEGER, times as INTEGER epoch milliseconds, JSON as
// TEXT (NULL for JSON null).
#pragma once

#include <span>

namespace herald::store::sqlite {

struct Migration {
  int version;       // 1, 2, ... without gaps
  const char* name;  // recorded next to the number, for people reading schema_migrations
  const char* sql;   // one or more statements, run inside the migration transaction
};

std::span<const Migration> migrations();

}  // namespace herald::store::sqlite
