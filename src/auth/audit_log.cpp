#include "frs/auth/audit_log.h"

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>

#include "frs/core/clock.h"
#include "frs/core/digest.h"
#include "frs/core/error.h"
#include "frs/core/text.h"
#include "frs/core/time_text.h"
#include "frs/core/url.h"
#include "frs/storage/database.h"

namespace frs {
namespace {

const char* const kAuditSqliteMigrations[] = {
    R"sql(
CREATE TABLE audit (
  seq             INTEGER PRIMARY KEY,   -- 1, 2, 3, ... (checked by the chain, not by SQLite)
  time_ms         INTEGER NOT NULL,
  token           TEXT NOT NULL,
  role            TEXT NOT NULL,
  peer            TEXT NOT NULL,
  method          TEXT NOT NULL,
  purpose         TEXT NOT NULL,
  outcome         INTEGER NOT NULL,      -- gRPC status code
  outcome_message TEXT NOT NULL,
  targets         TEXT NOT NULL,         -- JSON object
  details         TEXT NOT NULL,         -- JSON object
  previous_hash   TEXT NOT NULL,
  hash            TEXT NOT NULL
);
CREATE INDEX audit_time ON audit(time_ms);
CREATE INDEX audit_token ON audit(token, seq);
)sql",
};

const char* const kAuditPostgresMigrations[] = {
    R"sql(
CREATE TABLE audit (
  seq             BIGINT PRIMARY KEY,   -- 1, 2, 3, ...: the chain's, taken under the write lock
  time_ms         BIGINT NOT NULL,
  token           TEXT NOT NULL,
  role            TEXT NOT NULL,
  peer            TEXT NOT NULL,
  method          TEXT NOT NULL,
  purpose         TEXT NOT NULL,
  outcome         BIGINT NOT NULL,
  outcome_message TEXT NOT NULL,
  targets         TEXT NOT NULL,
  details         TEXT NOT NULL,
  previous_hash   TEXT NOT NULL,
  hash            TEXT NOT NULL
);
CREATE INDEX audit_time ON audit(time_ms);
CREATE INDEX audit_token ON audit(token, seq);
)sql",
};

// Row 1's reason when the log began with the stores (no --new-audit-log).
constexpr const char* kFirstStartReason = "first start: the stores hold no history";

// Held from reading the chain's head to committing the row after it, on every node.
constexpr const char* kAuditWriteLock = "frs_audit";

constexpr const char* kAuditColumns =
    "seq, time_ms, token, role, peer, method, purpose, outcome, outcome_message, targets, "
    "details, previous_hash, hash";

AuditRecord read_row(const Statement& s) {
  AuditRecord r;
  r.seq = s.integer(0);
  r.time_ms = s.integer(1);
  r.token = s.text(2);
  r.role = s.text(3);
  r.peer = s.text(4);
  r.method = s.text(5);
  r.purpose = s.text(6);
  r.outcome = static_cast<int>(s.integer(7));
  r.outcome_message = s.text(8);
  r.targets_json = s.text(9);
  r.details_json = s.text(10);
  r.previous_hash = s.text(11);
  r.hash = s.text(12);
  return r;
}

// What a database that is not an audit log is, from its tables, for the message that
// refuses it.
std::string what_database_is(const std::vector<std::string>& tables) {
  const auto has = [&](const char* table) {
    return std::find(tables.begin(), tables.end(), table) != tables.end();
  };
  if (tables.empty()) return "it is empty (no tables)";
  if (has("watchlists")) return "it is frs's gallery store (gallery.db)";
  if (has("tokens")) return "it is frs's token store (tokens.db)";
  if (has("alerts")) return "it is frs's alert log (alerts.db)";
  if (has("cameras")) return "it is frs's camera store (cameras.db)";
  std::string names;
  for (const std::string& t : tables) names += (names.empty() ? "" : ", ") + t;
  return "it holds the tables " + names;
}

class SqlAuditLog final : public AuditLog {
 public:
  SqlAuditLog(const StoreLocation& where, OpenMode mode)
      : db_(open_database(where, "audit", "the audit log",
                          {kAuditSqliteMigrations, kAuditPostgresMigrations}, mode)) {
    if (mode == OpenMode::kReadOnly) {
      const auto tables = db_->tables();
      if (std::find(tables.begin(), tables.end(), "audit") == tables.end()) {
        throw Error(ErrorCode::kFailedPrecondition,
                    (where.is_postgres() ? redact_url(where.postgres_url)
                                         : "'" + where.sqlite_file.string() + "'") +
                        " is not an audit log: " + what_database_is(tables) +
                        "; an audit log is DATA_DIR/audit.db or a cluster's database");
      }
    }
    seen_ = read_head();
  }

  AuditRecord append(const AuditEntry& entry) override {
    std::lock_guard lock(mutex_);
    try {
      Transaction tx(*db_, kAuditWriteLock);
      AuditRecord row = insert_locked(entry);
      tx.commit();
      seen_ = {row.seq, row.hash};
      return row;
    } catch (const std::exception& e) {
      throw unwritable(e);
    }
  }

  std::optional<AuditRecord> purge(std::int64_t before_ms, AuditEntry record) override {
    std::lock_guard lock(mutex_);
    try {
      Transaction tx(*db_, kAuditWriteLock);
      const AuditHead head = read_head();
      // Only a prefix of the chain goes, so what is left is still one unbroken chain.
      Statement first_kept(*db_, "SELECT MIN(seq) FROM audit WHERE time_ms >= ?");
      first_kept.bind(1, before_ms).step();
      const std::int64_t through = first_kept.is_null(0) ? head.seq : first_kept.integer(0) - 1;
      Statement last(*db_, "SELECT seq, hash FROM audit WHERE seq <= ? ORDER BY seq DESC LIMIT 1");
      last.bind(1, through);
      if (!last.step()) return std::nullopt;
      const std::int64_t last_seq = last.integer(0);
      const std::string last_hash = last.text(1);
      Statement count(*db_, "SELECT COUNT(*) FROM audit WHERE seq <= ?");
      count.bind(1, last_seq).step();
      const std::int64_t rows = count.integer(0);
      Statement(*db_, "DELETE FROM audit WHERE seq <= ?").bind(1, last_seq).step();
      nlohmann::json details = nlohmann::json::parse(record.details_json);
      details["purged_through_seq"] = last_seq;
      details["purged_through_hash"] = last_hash;
      details["rows"] = rows;
      details["before_ms"] = before_ms;
      record.method = kAuditPurgedEvent;
      record.details_json = details.dump();
      AuditRecord row = insert_locked(record);
      tx.commit();
      seen_ = {row.seq, row.hash};
      return row;
    } catch (const nlohmann::json::exception& e) {
      throw Error(ErrorCode::kInvalidArgument,
                  std::string("a purge record's details must be a JSON object: ") + e.what());
    } catch (const std::exception& e) {
      throw unwritable(e);
    }
  }

  std::vector<AuditRecord> list(const AuditQuery& q) override {
    if (q.limit < 1 || q.limit > 10000) {
      throw Error(ErrorCode::kInvalidArgument, "an audit page holds 1..10000 rows");
    }
    std::string sql = std::string("SELECT ") + kAuditColumns + " FROM audit WHERE seq > ?";
    if (q.since_ms > 0) sql += " AND time_ms >= ?";
    if (q.until_ms > 0) sql += " AND time_ms <= ?";
    if (!q.token.empty()) sql += " AND token = ?";
    const bool bare_method = !q.method.empty() && q.method.find('/') == std::string::npos;
    if (!q.method.empty()) {
      // A bare name: the event of that name, or the method of that name in any service.
      sql += bare_method ? " AND (method = ? OR method LIKE ? ESCAPE '\\')" : " AND method = ?";
    }
    sql += " ORDER BY seq LIMIT ?";
    std::lock_guard lock(mutex_);
    Statement s(*db_, sql);
    int at = 1;
    s.bind(at++, q.after_seq);
    if (q.since_ms > 0) s.bind(at++, q.since_ms);
    if (q.until_ms > 0) s.bind(at++, q.until_ms);
    if (!q.token.empty()) s.bind(at++, q.token);
    if (!q.method.empty()) {
      if (bare_method) {
        std::string escaped;
        for (const char c : q.method) {
          if (c == '%' || c == '_' || c == '\\') escaped += '\\';
          escaped += c;
        }
        s.bind(at++, q.method);
        s.bind(at++, "%/" + escaped);
      } else {
        s.bind(at++, q.method);
      }
    }
    s.bind(at++, static_cast<std::int64_t>(q.limit));
    std::vector<AuditRecord> out;
    while (s.step()) out.push_back(read_row(s));
    return out;
  }

  AuditVerification verify(const std::optional<AuditHead>& expected) override {
    AuditChainChecker checker(expected);
    // In pages, so that appends are not held up for the whole check.
    for (std::int64_t after = 0;;) {
      std::vector<AuditRecord> page;
      {
        std::lock_guard lock(mutex_);
        Statement s(*db_, std::string("SELECT ") + kAuditColumns +
                              " FROM audit WHERE seq > ? ORDER BY seq LIMIT 5000");
        s.bind(1, after);
        while (s.step()) page.push_back(read_row(s));
      }
      if (page.empty()) break;
      after = page.back().seq;
      for (const AuditRecord& row : page) {
        if (!checker.add(row)) return checker.finish();
      }
    }
    return checker.finish();
  }

  AuditHead head() override {
    std::lock_guard lock(mutex_);
    return read_head();
  }

 private:
  // Writes a row after the head; the caller holds mutex_ and a transaction with the audit
  // write lock, so that no other writer, on any node, moves the head before it commits.
  AuditRecord insert_locked(const AuditEntry& entry) {
    const AuditHead head = read_head();
    check_still_ours(head);
    AuditRecord row;
    static_cast<AuditEntry&>(row) = entry;
    row.seq = head.seq + 1;
    row.previous_hash = head.hash;
    row.hash = audit_row_hash(row);
    Statement s(*db_, std::string("INSERT INTO audit(") + kAuditColumns +
                          ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    s.bind(1, row.seq)
        .bind(2, row.time_ms)
        .bind(3, row.token)
        .bind(4, row.role)
        .bind(5, row.peer)
        .bind(6, row.method)
        .bind(7, row.purpose)
        .bind(8, static_cast<std::int64_t>(row.outcome))
        .bind(9, row.outcome_message)
        .bind(10, row.targets_json)
        .bind(11, row.details_json)
        .bind(12, row.previous_hash)
        .bind(13, row.hash);
    s.step();
    return row;
  }

  static Error unwritable(const std::exception& e) {
    return Error(ErrorCode::kUnavailable,
                 std::string("the audit log cannot be written (") + e.what() + ")");
  }

  // The log may grow past the head this process last wrote or read (other nodes append to
  // it), never lose it: a head behind it, or that row changed, means rows were removed
  // under the server (the file truncated, deleted or replaced; the table truncated). Once
  // seen, every later append is refused too, until the log is restored and the server
  // restarted: a new chain begun silently would hide the loss. (Each refused call logs it.)
  void check_still_ours(const AuditHead& head) {
    if (lost_.empty()) {
      std::string why = db_->storage_problem();
      if (why.empty() && seen_.seq > 0) {
        // The row seen is the head unless other nodes appended since: no second look-up then.
        const std::optional<std::string> hash =
            head.seq == seen_.seq ? std::optional<std::string>(head.hash) : hash_of(seen_.seq);
        if (head.seq < seen_.seq) {
          why = "it ends at row " + std::to_string(head.seq) + ", but this server has seen row " +
                std::to_string(seen_.seq) + ": rows were removed";
        } else if (hash != seen_.hash) {
          // Gone is fine when another node's retention purged it (and recorded that).
          Statement purged(*db_, "SELECT COUNT(*) FROM audit WHERE method = ? AND seq > ?");
          purged.bind(1, std::string(kAuditPurgedEvent)).bind(2, seen_.seq).step();
          if (hash || purged.integer(0) == 0) {
            why = "row " + std::to_string(seen_.seq) +
                  " is no longer the row this server wrote: the log was replaced";
          }
        }
      }
      if (why.empty()) return;
      lost_ = "it is no longer the log this server has been writing: " + why +
              ". Every call that must be recorded is refused until it is restored: stop "
              "frs-server, restore the audit log from a backup, check it with frs audit verify "
              "and start again (docs/operations.md, \"When the audit log is lost or damaged\")";
    }
    throw Error(ErrorCode::kUnavailable, lost_);
  }

  std::optional<std::string> hash_of(std::int64_t seq) {
    Statement s(*db_, "SELECT hash FROM audit WHERE seq = ?");
    s.bind(1, seq);
    if (!s.step()) return std::nullopt;
    return s.text(0);
  }

  AuditHead read_head() {
    Statement s(*db_, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
    if (!s.step()) return {0, kAuditGenesisHash};
    return {s.integer(0), s.text(1)};
  }

  std::mutex mutex_;
  std::unique_ptr<Database> db_;
  AuditHead seen_;    // the head as this process last wrote or read it
  std::string lost_;  // why the log is no longer the one it was ("": it still is)
};

}  // namespace

std::string canonical_audit_content(const AuditRecord& r) {
  const nlohmann::json content = {1,
                                  r.seq,
                                  r.time_ms,
                                  r.token,
                                  r.role,
                                  r.peer,
                                  r.method,
                                  r.purpose,
                                  r.outcome,
                                  r.outcome_message,
                                  r.targets_json,
                                  r.details_json,
                                  r.previous_hash};
  // Invalid UTF-8 cannot reach a row (requests are checked), but a row edited outside frs
  // may hold it: it then hashes as replaced characters and the row shows as broken.
  return content.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string audit_row_hash(const AuditRecord& record) {
  return sha256_hex(canonical_audit_content(record));
}

bool AuditChainChecker::add(const AuditRecord& row) {
  if (!result_.intact) return false;
  if (result_.rows_checked == 0 && row.seq > 1 && !purged_) {
    // The log starts after row 1: rows were purged. The first row follows the last purged
    // one, which a purge record later in the chain must name (checked in finish()).
    purged_ = AuditHead{row.seq - 1, row.previous_hash};
    result_.head = *purged_;
    previous_hash_ = row.previous_hash;
  }
  const std::int64_t expected_seq = result_.head.seq + 1;
  auto broken = [&](std::int64_t seq, std::string problem) {
    result_.intact = false;
    result_.first_broken_seq = seq;
    result_.problem = std::move(problem);
    return false;
  };
  if (row.seq != expected_seq) {
    if (row.seq > expected_seq) {
      return broken(expected_seq,
                    "row " + std::to_string(expected_seq) +
                        (row.seq == expected_seq + 1
                             ? " is missing (deleted)"
                             : " to " + std::to_string(row.seq - 1) + " are missing (deleted)"));
    }
    return broken(row.seq, "row " + std::to_string(row.seq) + " is out of order");
  }
  if (row.previous_hash != previous_hash_) {
    return broken(row.seq, "row " + std::to_string(row.seq) +
                               " does not follow the row before it (its previous_hash is not that "
                               "row's hash: a row was inserted, removed or reordered here)");
  }
  if (audit_row_hash(row) != row.hash) {
    return broken(row.seq, "row " + std::to_string(row.seq) +
                               " was changed after it was written (its content does not match "
                               "its hash)");
  }
  previous_hash_ = row.hash;
  result_.head = {row.seq, row.hash};
  ++result_.rows_checked;
  if (first_) {
    first_ = false;
    result_.begins_ms = row.time_ms;
    if (row.seq == 1 && row.method == kAuditNewLogEvent) {
      const auto details = nlohmann::json::parse(row.details_json, nullptr, false);
      result_.new_log_reason =
          details.is_object() && details.contains("reason") && details["reason"].is_string()
              ? details["reason"].get<std::string>()
              : "";
    }
  }
  if (purged_ && row.method == kAuditPurgedEvent) {
    // A row edited outside frs may hold anything: only the expected types count.
    const auto details = nlohmann::json::parse(row.details_json, nullptr, false);
    if (details.is_object() && details.contains("purged_through_seq") &&
        details["purged_through_seq"].is_number_integer() &&
        details["purged_through_seq"].get<std::int64_t>() == purged_->seq &&
        details.contains("purged_through_hash") && details["purged_through_hash"].is_string() &&
        details["purged_through_hash"].get<std::string>() == purged_->hash) {
      purge_recorded_ = true;
    }
  }
  if (expected_ && row.seq == expected_->seq) {
    expected_seen_ = true;
    if (row.hash != expected_->hash) {
      return broken(row.seq, "row " + std::to_string(row.seq) +
                                 " is not the row that was kept as the head (its hash differs: "
                                 "the log was rewritten up to here)");
    }
  }
  return true;
}

AuditVerification AuditChainChecker::finish() {
  if (result_.intact && purged_) {
    if (!purge_recorded_) {
      result_.intact = false;
      result_.first_broken_seq = 1;
      result_.problem = "rows 1 to " + std::to_string(purged_->seq) +
                        " are missing and no purge record names them (deleted, not purged)";
      return result_;
    }
    result_.purged_through = purged_->seq;
    if (expected_ && expected_->seq <= purged_->seq) {
      // A kept head that retention purged since: only the last purged row's hash is known.
      expected_seen_ = true;
      if (expected_->seq == purged_->seq && expected_->hash != purged_->hash) {
        result_.intact = false;
        result_.first_broken_seq = expected_->seq;
        result_.problem = "row " + std::to_string(expected_->seq) +
                          " (purged) is not the row that was kept as the head: its hash in the "
                          "purge record differs";
        return result_;
      }
    }
  }
  if (result_.intact && expected_ && expected_->seq > 0 && !expected_seen_) {
    result_.intact = false;
    result_.first_broken_seq = result_.head.seq + 1;
    result_.problem = "the log ends at row " + std::to_string(result_.head.seq) +
                      ", before the kept head (row " + std::to_string(expected_->seq) +
                      "): rows were removed from its end";
  }
  return result_;
}

std::string audit_history_gap(const AuditVerification& v, std::int64_t history_begins_ms,
                              bool& recorded) {
  recorded =
      v.new_log_reason && !v.new_log_reason->empty() && *v.new_log_reason != kFirstStartReason;
  const std::string begun =
      "a new log was begun then over stores that held history "
      "(--new-audit-log: " +
      (recorded ? *v.new_log_reason : "") + "), and what happened before it is not in this log";
  // A loss row 1 records is told however long ago the history began.
  if (recorded) return "the log begins " + format_utc_time(v.begins_ms) + ": " + begun;
  if (history_begins_ms < 0) return "";  // the stores were not looked at
  constexpr std::int64_t kClockSlackMs = 60'000;
  if (history_begins_ms == 0 || v.purged_through > 0) return "";
  if (v.begins_ms != 0 && v.begins_ms <= history_begins_ms + kClockSlackMs) return "";
  const std::string history = "the stores' history goes back to " +
                              format_utc_time(history_begins_ms) +
                              " (the oldest token or watchlist made through a call)";
  if (v.begins_ms == 0) return "the log is empty, but " + history + ": its rows are missing";
  return "the log begins " + format_utc_time(v.begins_ms) + ", but " + history +
         ": rows are missing from its start, and nothing in it says why";
}

void begin_audit_log(AuditLog& log, const std::string& new_log_reason,
                     const std::map<std::string, std::int64_t>& history) {
  const AuditHead head = log.head();
  std::string held;
  for (const auto& [store, count] : history) {
    if (count > 0) held += (held.empty() ? "" : ", ") + std::to_string(count) + " " + store;
  }
  if (!new_log_reason.empty()) {
    check_text(new_log_reason, "--new-audit-log", TextRule{200, true, true});
    if (head.seq != 0) {
      throw Error(ErrorCode::kFailedPrecondition,
                  "--new-audit-log is for an empty audit log only, and this one holds rows up to " +
                      std::to_string(head.seq) + ": start without it");
    }
  }
  if (head.seq != 0) return;
  if (!held.empty() && new_log_reason.empty()) {
    throw Error(ErrorCode::kFailedPrecondition,
                "the audit log is empty, but the other stores hold history (" + held +
                    "): the log that recorded it was lost (deleted, truncated or replaced). "
                    "Restore it from a backup (docs/operations.md, \"When the audit log is lost "
                    "or damaged\"); only if it cannot be restored, start once with "
                    "--new-audit-log \"REASON\" to begin a new log that records the loss");
  }
  // Row 1 says how the log began, so that a log beginning later than the stores' history
  // is either explained by it or seen as lost.
  AuditEntry row;
  row.time_ms = now_unix_ms();
  row.token = "frs-server";
  row.method = kAuditNewLogEvent;
  row.details_json = nlohmann::json{
      {"reason", new_log_reason.empty() ? std::string(kFirstStartReason) : new_log_reason},
      {"history",
       history}}.dump();
  log.append(row);
}

std::unique_ptr<AuditLog> open_audit_log(const StoreLocation& where, OpenMode mode) {
  return std::make_unique<SqlAuditLog>(where, mode);
}

}  // namespace frs
