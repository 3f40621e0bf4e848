#pragma once
// The two Database implementations, opened by open_database().

#include <memory>
#include <span>
#include <string>

#include "frs/storage/database.h"

namespace frs {

std::unique_ptr<Database> open_sqlite_database(const std::filesystem::path& file,
                                               const std::string& what,
                                               std::span<const char* const> migrations);

std::unique_ptr<Database> open_postgres_database(const std::string& url, const std::string& store,
                                                 const std::string& what,
                                                 std::span<const char* const> migrations);

}  // namespace frs
