#pragma once
// The two Database implementations, opened by open_database().

#include <memory>
#include <span>
#include <string>

#include "frs/storage/database.h"

typedef struct pg_conn PGconn;

namespace frs {

std::unique_ptr<Database> open_sqlite_database(const std::filesystem::path& file,
                                               const std::string& what,
                                               std::span<const char* const> migrations,
                                               OpenMode mode);

std::unique_ptr<Database> open_postgres_database(const std::string& url, const std::string& store,
                                                 const std::string& what,
                                                 std::span<const char* const> migrations,
                                                 OpenMode mode);

// A new libpq connection to `url` (check PQstatus; never null). The URL's own settings win
// over frs's: a 5 s connect timeout, and TCP keepalives that notice a silent peer (a
// network cut) in about 15 s instead of the OS's two hours.
PGconn* connect_to_postgres(const std::string& url);

}  // namespace frs
