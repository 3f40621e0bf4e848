#include "frs/storage/database.h"

#include "dialects.h"
#include "frs/core/error.h"

namespace frs {

bool is_postgres_url(std::string_view text) {
  return text.starts_with("postgres://") || text.starts_with("postgresql://");
}

StoreLocation StoreLocation::parse(const std::string& url_or_file) {
  if (is_postgres_url(url_or_file)) return postgres(url_or_file);
  return StoreLocation(std::filesystem::path(url_or_file));
}

std::unique_ptr<Database> open_database(const StoreLocation& where, const std::string& store,
                                        const std::string& what, const Migrations& migrations,
                                        OpenMode mode) {
  if (where.is_postgres()) {
    return open_postgres_database(where.postgres_url, store, what, migrations.postgres, mode);
  }
  return open_sqlite_database(where.sqlite_file, what, migrations.sqlite, mode);
}

Statement::Statement(Database& db, const std::string& sql) : impl_(db.prepare(sql)) {}
Statement::~Statement() = default;

Statement& Statement::bind(int i, std::int64_t v) {
  impl_->bind_integer(i, v);
  return *this;
}
Statement& Statement::bind(int i, double v) {
  impl_->bind_real(i, v);
  return *this;
}
Statement& Statement::bind(int i, const std::string& v) {
  impl_->bind_text(i, v);
  return *this;
}
Statement& Statement::bind_null(int i) {
  impl_->bind_null(i);
  return *this;
}
Statement& Statement::bind_blob(int i, const void* data, std::size_t size) {
  impl_->bind_blob(i, data, size);
  return *this;
}
bool Statement::step() {
  return impl_->step();
}
std::int64_t Statement::integer(int c) const {
  return impl_->integer(c);
}
double Statement::real(int c) const {
  return impl_->real(c);
}
bool Statement::is_null(int c) const {
  return impl_->is_null(c);
}
std::string Statement::text(int c) const {
  return impl_->text(c);
}
std::vector<std::uint8_t> Statement::blob(int c) const {
  return impl_->blob(c);
}

Transaction::Transaction(Database& db, std::string_view write_lock) : db_(db) {
  db_.begin(write_lock);
}

Transaction::~Transaction() {
  if (!committed_) db_.rollback();
}

void Transaction::commit() {
  db_.commit();
  committed_ = true;
}

}  // namespace frs
