#pragma once
// The audit log: one row for every call that reads personal data or changes state, and
// for every camera matching session, written before the call's answer is sent. Rows are
// hash-chained: each stores SHA-256 over its own canonical content, which includes the
// previous row's hash, so an edited, deleted, inserted or reordered row breaks the chain
// at that row. The chain proves the rows up to a head someone kept elsewhere (the server
// logs its head at start, every hour and at stop; `frs audit verify` prints it): whoever can
// write the file could rewrite every hash after an edit, but not a head already kept.
// An interface, so that the cluster work can give it a PostgreSQL implementation.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "frs/storage/database.h"

namespace frs {

struct AuditEntry {
  std::int64_t time_ms = 0;     // Unix ms, when the row was written
  std::string token;            // the caller's token name; "frs-server" for the server's own
  std::string role;             // that token's role ("" for the server)
  std::string peer;             // the caller's address as gRPC gives it ("ipv4:127.0.0.1:5501")
  std::string method;           // "/frs.v1.Search/Search", or an event: "camera.matching_started"
  std::string purpose;          // the call's purpose ("" when none was given)
  int outcome = 0;              // gRPC status code of the answer (0 = OK), or kAuditOutcomeStarted
  std::string outcome_message;  // its message when not OK
  // What it was about, a JSON object: {"watchlists": [3], "identities": [17, 18], ...}.
  std::string targets_json = "{}";
  // What else an auditor needs, a JSON object: the SHA-256 of each image searched, the
  // candidates returned, a review's decision...; never an image or a descriptor.
  std::string details_json = "{}";
};

struct AuditRecord : AuditEntry {
  std::int64_t seq = 0;       // 1, 2, 3, ... without gaps
  std::string previous_hash;  // the row before's hash; 64 zeros for row 1
  std::string hash;           // SHA-256 (hex) of canonical_audit_content(*this)
};

// What a row's hash covers, in a form that cannot be read two ways: a JSON array of the
// format version (1), seq, time_ms, token, role, peer, method, purpose, outcome,
// outcome_message, targets_json, details_json and previous_hash, in that order.
std::string canonical_audit_content(const AuditRecord& record);
std::string audit_row_hash(const AuditRecord& record);
inline const std::string kAuditGenesisHash(64, '0');

struct AuditHead {
  std::int64_t seq = 0;  // 0: the log is empty
  std::string hash;      // the last row's hash (kAuditGenesisHash when empty)
};

struct AuditQuery {
  std::int64_t after_seq = 0;  // rows with a larger seq
  std::int64_t since_ms = 0;   // time_ms >= this (0 = no bound)
  std::int64_t until_ms = 0;   // time_ms <= this (0 = no bound)
  std::string token;           // only this token's rows ("" = all)
  std::string method;          // only this method ("" = all; a bare name such as
                               // "Search" matches "/frs.v1.Search/Search")
  int limit = 1000;            // 1..10000
};

// The outcome of an intent row: a call that changes state (Effect::kChanges) writes one
// before it changes anything, and its outcome row after, whose details carry "intent_seq".
// An intent row without an outcome row is a change that may have been made but whose
// answer was never recorded (the server stopped, or the log failed in between).
inline constexpr int kAuditOutcomeStarted = -1;

// The event a purge writes (retention): its details carry "purged_through_seq" and
// "purged_through_hash", the last purged row, which anchors the first surviving one.
inline constexpr const char* kAuditPurgedEvent = "audit.purged";

// The event that begins a new log over stores that hold history (--new-audit-log): its
// details carry "reason" and what the stores held ("history": {"tokens": 3, ...}).
inline constexpr const char* kAuditNewLogEvent = "audit.new_log";

struct AuditVerification {
  bool intact = true;
  std::int64_t rows_checked = 0;
  // Rows 1..purged_through were purged (retention) and a purge record in the chain says
  // so, with the hash of row purged_through; 0 = none purged.
  std::int64_t purged_through = 0;
  std::int64_t first_broken_seq = 0;  // when not intact
  std::string problem;                // how it is broken, in a sentence
  AuditHead head;                     // the last row (when intact: the chain's head)
  std::int64_t begins_ms = 0;         // the first row's time (0: the log is empty)
  // When the first row is row 1 and a kAuditNewLogEvent: the reason it records.
  std::optional<std::string> new_log_reason;
};

// Whether the log covers the stores' history. `history_begins_ms`: when the oldest record
// made through a call (and so audited) was made: a token not made at start-up, a watchlist
// (0: none; -1: the stores were not looked at). Returns "" when the log begins before it
// (less a minute for clocks) or retention purged its start; else a sentence saying what is
// missing. A loss row 1 records (a new log begun with --new-audit-log) is always told, and
// sets `recorded`; otherwise nothing in the log explains the gap.
std::string audit_history_gap(const AuditVerification& verification, std::int64_t history_begins_ms,
                              bool& recorded);

// Feeds rows in seq order and says at which one the chain first breaks. Shared by every
// store and by offline checks.
class AuditChainChecker {
 public:
  // `expected`: a head kept earlier; the chain must hold that row with that hash.
  explicit AuditChainChecker(std::optional<AuditHead> expected = std::nullopt)
      : expected_(std::move(expected)) {
    result_.head = {0, kAuditGenesisHash};
  }
  // Returns false (and records why) at the first broken row; later rows are not looked at.
  bool add(const AuditRecord& row);
  // After the last row: checks the kept head, and returns the verdict.
  AuditVerification finish();

 private:
  AuditVerification result_;
  std::string previous_hash_ = kAuditGenesisHash;
  std::optional<AuditHead> expected_;
  bool expected_seen_ = false;
  // When the first row is not row 1: the purged rows' last seq and hash, which a purge
  // record later in the chain must name.
  std::optional<AuditHead> purged_;
  bool purge_recorded_ = false;
  bool first_ = true;
};

class AuditLog {
 public:
  virtual ~AuditLog() = default;
  // Appends a row after the chain's head; the row is on disk when this returns. Throws
  // Error(kUnavailable) when it cannot be written (the caller then fails its call).
  virtual AuditRecord append(const AuditEntry& entry) = 0;
  virtual std::vector<AuditRecord> list(const AuditQuery& query) = 0;
  // Checks every row; `expected`: a head kept earlier that the chain must still hold.
  virtual AuditVerification verify(const std::optional<AuditHead>& expected) = 0;
  virtual AuditHead head() = 0;
  // Retention: removes the rows from row 1 up to the last one before the first row written
  // at or after `before_ms`, and appends `record` (its method is set to kAuditPurgedEvent;
  // its details gain purged_through_seq, purged_through_hash and rows) in the same
  // transaction. Returns the purge record, or nullopt when no row was old enough.
  virtual std::optional<AuditRecord> purge(std::int64_t before_ms, AuditEntry record) = 0;
};

// At start, before this start adds to any store: an empty log begins with a
// kAuditNewLogEvent row ("first start" when the stores hold no history). An empty log over
// stores that hold history (`history`: what each holds, e.g. {"tokens": 3}) means the log
// was lost: Error(kFailedPrecondition) saying how to restore it, unless `new_log_reason`
// is given, which the row then records. A reason given for a log that is not empty is
// refused too (the flag is for one start only).
void begin_audit_log(AuditLog& log, const std::string& new_log_reason,
                     const std::map<std::string, std::int64_t>& history);

// DATA_DIR/audit.db (SQLite, its own file, durable writes), or the cluster's PostgreSQL
// database, where every node appends to the one chain: a row is written under a write lock
// held until commit, after the head as it is then. An append notices a log that lost rows
// under it (the file truncated, deleted or replaced; the table truncated): it and every
// later one throw Error(kUnavailable) saying so. kReadOnly (frs audit verify --db): nothing
// is created or written, and a database without the audit table is refused, saying what
// it is instead.
std::unique_ptr<AuditLog> open_audit_log(const StoreLocation& where,
                                         OpenMode mode = OpenMode::kReadWrite);

}  // namespace frs
