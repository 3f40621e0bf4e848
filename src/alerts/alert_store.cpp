#include "frs/alerts/alert_store.h"

#include <cstring>
#include <iterator>
#include <nlohmann/json.hpp>

#include "frs/core/clock.h"
#include "frs/core/error.h"
#include "frs/core/text_fields.h"
#include "frs/core/time_text.h"

namespace frs {
namespace {

const char* const kAlertSqliteMigrations[] = {
    R"sql(
CREATE TABLE alerts (
  id                 INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused
  camera             TEXT NOT NULL,
  captured_at_ms     INTEGER NOT NULL,
  detected_at_ms     INTEGER NOT NULL,
  track_id           INTEGER NOT NULL,
  track_path         TEXT NOT NULL,      -- JSON [[at_ms, x, y, width, height], ...]
  identity_id        INTEGER NOT NULL,
  external_id        TEXT NOT NULL,
  display_name       TEXT NOT NULL,
  watchlist          TEXT NOT NULL,
  face_id            INTEGER NOT NULL,
  distance           REAL NOT NULL,
  runner_up_distance REAL,               -- NULL: no other identity was near
  face_jpeg          BLOB NOT NULL,
  review             TEXT NOT NULL DEFAULT 'pending'
                     CHECK (review IN ('pending', 'confirmed', 'rejected')),
  review_note        TEXT NOT NULL DEFAULT '',
  reviewed_by        TEXT NOT NULL DEFAULT '',
  reviewed_at_ms     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX alerts_by_camera ON alerts(camera, id);
)sql",
    // 2: several reviews per alert (two-person confirmation), and the matched descriptors.
    R"sql(
CREATE TABLE alert_reviews (
  alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
  reviewer TEXT NOT NULL,
  decision TEXT NOT NULL CHECK (decision IN ('confirmed', 'rejected')),
  note     TEXT NOT NULL,
  at_ms    INTEGER NOT NULL,
  PRIMARY KEY (alert_id, reviewer)
);
INSERT INTO alert_reviews(alert_id, reviewer, decision, note, at_ms)
  SELECT id, reviewed_by, review, review_note, reviewed_at_ms FROM alerts
  WHERE review != 'pending';
ALTER TABLE alerts ADD COLUMN face_descriptor BLOB;   -- NULL: from before they were kept
ALTER TABLE alerts ADD COLUMN track_descriptor BLOB;
CREATE INDEX alerts_by_detection_time ON alerts(detected_at_ms);
)sql",
};

const char* const kAlertPostgresMigrations[] = {
    R"sql(
CREATE TABLE alerts (
  id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- taken under the write lock
  camera             TEXT NOT NULL,
  captured_at_ms     BIGINT NOT NULL,
  detected_at_ms     BIGINT NOT NULL,
  track_id           BIGINT NOT NULL,
  track_path         TEXT NOT NULL,
  identity_id        BIGINT NOT NULL,
  external_id        TEXT NOT NULL,
  display_name       TEXT NOT NULL,
  watchlist          TEXT NOT NULL,
  face_id            BIGINT NOT NULL,
  distance           DOUBLE PRECISION NOT NULL,
  runner_up_distance DOUBLE PRECISION,
  face_jpeg          BYTEA NOT NULL,
  review             TEXT NOT NULL DEFAULT 'pending'
                     CHECK (review IN ('pending', 'confirmed', 'rejected')),
  review_note        TEXT NOT NULL DEFAULT '',
  reviewed_by        TEXT NOT NULL DEFAULT '',
  reviewed_at_ms     BIGINT NOT NULL DEFAULT 0,
  face_descriptor    BYTEA,
  track_descriptor   BYTEA
);
CREATE INDEX alerts_by_camera ON alerts(camera, id);
CREATE INDEX alerts_by_detection_time ON alerts(detected_at_ms);
CREATE TABLE alert_reviews (
  alert_id BIGINT NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
  reviewer TEXT NOT NULL,
  decision TEXT NOT NULL CHECK (decision IN ('confirmed', 'rejected')),
  note     TEXT NOT NULL,
  at_ms    BIGINT NOT NULL,
  PRIMARY KEY (alert_id, reviewer)
);
)sql",
};

// Held from an alert's id to its commit, on every node.
constexpr const char* kAlertWriteLock = kAlertChannel;
constexpr const char* kReviewWriteLock = "frs_alert_reviews";

const std::string kAlertColumns =
    "id, camera, captured_at_ms, detected_at_ms, track_id, track_path, identity_id, "
    "external_id, display_name, watchlist, face_id, distance, runner_up_distance, review, "
    "review_note, reviewed_by, reviewed_at_ms";

ReviewState review_from(const std::string& text) {
  if (text == "confirmed") return ReviewState::kConfirmed;
  if (text == "rejected") return ReviewState::kRejected;
  return ReviewState::kPending;
}

std::string path_json(const std::vector<TrackPoint>& path) {
  nlohmann::json points = nlohmann::json::array();
  for (const TrackPoint& p : path) {
    points.push_back({p.at_ms, p.box.x, p.box.y, p.box.width, p.box.height});
  }
  return points.dump();
}

std::vector<TrackPoint> path_from(const std::string& text) {
  std::vector<TrackPoint> path;
  for (const auto& p : nlohmann::json::parse(text)) {
    path.push_back({p[0].get<std::int64_t>(), cv::Rect2f(p[1].get<float>(), p[2].get<float>(),
                                                         p[3].get<float>(), p[4].get<float>())});
  }
  return path;
}

Alert read_alert(const Statement& s) {
  Alert a;
  a.id = s.integer(0);
  a.camera = s.text(1);
  a.captured_at_ms = s.integer(2);
  a.detected_at_ms = s.integer(3);
  a.track_id = static_cast<std::uint64_t>(s.integer(4));
  a.track_path = path_from(s.text(5));
  a.identity_id = s.integer(6);
  a.external_id = s.text(7);
  a.display_name = s.text(8);
  a.watchlist = s.text(9);
  a.face_id = s.integer(10);
  a.distance = static_cast<float>(s.real(11));
  if (!s.is_null(12)) a.runner_up_distance = static_cast<float>(s.real(12));
  a.review = review_from(s.text(13));
  a.review_note = s.text(14);
  a.reviewed_by = s.text(15);
  a.reviewed_at_ms = s.integer(16);
  return a;
}

std::optional<Embedding> descriptor_from(const Statement& s, int column) {
  if (s.is_null(column)) return std::nullopt;
  const std::vector<std::uint8_t> bytes = s.blob(column);
  if (bytes.empty()) return std::nullopt;
  return embedding_from_bytes(bytes, "an alert's stored descriptor");
}

void bind_descriptor(Statement& s, int at, const std::optional<Embedding>& e) {
  if (e) {
    s.bind_blob(at, e->data(), e->size() * sizeof(float));
  } else {
    s.bind_null(at);
  }
}

// "?, ?, ?": n SQL parameters to bind.
std::string sql_parameters(std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += i ? ", ?" : "?";
  return out;
}

}  // namespace

const char* to_string(ReviewState state) {
  switch (state) {
    case ReviewState::kPending:
      return "pending";
    case ReviewState::kConfirmed:
      return "confirmed";
    case ReviewState::kRejected:
      return "rejected";
  }
  return "pending";
}

AlertStore::AlertStore(const StoreLocation& where)
    : db_(open_database(where, "alerts", "the alert log",
                        {kAlertSqliteMigrations, kAlertPostgresMigrations})) {
  // A purged face crop must not stay readable in the file's free pages. (PostgreSQL's
  // are reclaimed by VACUUM but not overwritten: docs/operations.md.)
  if (db_->dialect() == SqlDialect::kSqlite) db_->exec("PRAGMA secure_delete=ON");
}

Alert AlertStore::append(Alert alert) {
  std::lock_guard lock(mutex_);
  Transaction t(*db_, kAlertWriteLock);
  Statement s(*db_,
              "INSERT INTO alerts(camera, captured_at_ms, detected_at_ms, track_id, "
              "track_path, identity_id, external_id, display_name, watchlist, face_id, "
              "distance, runner_up_distance, face_jpeg, face_descriptor, track_descriptor) "
              "VALUES (" +
                  sql_parameters(15) + ") RETURNING id");
  s.bind(1, alert.camera).bind(2, alert.captured_at_ms).bind(3, alert.detected_at_ms);
  s.bind(4, static_cast<std::int64_t>(alert.track_id)).bind(5, path_json(alert.track_path));
  s.bind(6, alert.identity_id).bind(7, alert.external_id).bind(8, alert.display_name);
  s.bind(9, alert.watchlist).bind(10, alert.face_id);
  s.bind(11, static_cast<double>(alert.distance));
  if (alert.runner_up_distance) {
    s.bind(12, static_cast<double>(*alert.runner_up_distance));
  } else {
    s.bind_null(12);
  }
  s.bind_blob(13, alert.face_jpeg.data(), alert.face_jpeg.size());
  bind_descriptor(s, 14, alert.face_descriptor);
  bind_descriptor(s, 15, alert.track_descriptor);
  s.step();
  alert.id = s.integer(0);
  t.commit();
  alert.review = ReviewState::kPending;
  return alert;
}

std::vector<Alert> AlertStore::list(const AlertFilter& filter) {
  if (filter.limit < 1 || filter.limit > 1000) {
    throw Error(ErrorCode::kInvalidArgument,
                "limit must be in 1..1000, got " + std::to_string(filter.limit));
  }
  std::string sql = "SELECT " + kAlertColumns + (filter.with_images ? ", face_jpeg" : "") +
                    " FROM alerts WHERE id > ?";
  if (!filter.cameras.empty())
    sql += " AND camera IN (" + sql_parameters(filter.cameras.size()) + ")";
  if (!filter.watchlists.empty()) {
    sql += " AND watchlist IN (" + sql_parameters(filter.watchlists.size()) + ")";
  }
  if (filter.max_distance) sql += " AND distance <= ?";
  if (filter.review) sql += " AND review = ?";
  if (filter.detected_from_ms > 0) sql += " AND detected_at_ms >= ?";
  if (filter.detected_until_ms > 0) sql += " AND detected_at_ms <= ?";
  sql += " ORDER BY id LIMIT ?";

  std::lock_guard lock(mutex_);
  Statement s(*db_, sql);
  int at = 1;
  s.bind(at++, filter.after_id);
  for (const auto& c : filter.cameras) s.bind(at++, c);
  for (const auto& w : filter.watchlists) s.bind(at++, w);
  if (filter.max_distance) s.bind(at++, static_cast<double>(*filter.max_distance));
  if (filter.review) s.bind(at++, std::string(to_string(*filter.review)));
  if (filter.detected_from_ms > 0) s.bind(at++, filter.detected_from_ms);
  if (filter.detected_until_ms > 0) s.bind(at++, filter.detected_until_ms);
  s.bind(at, static_cast<std::int64_t>(filter.limit));
  std::vector<Alert> out;
  while (s.step()) {
    out.push_back(read_alert(s));
    if (filter.with_images) out.back().face_jpeg = s.blob(17);
  }
  for (Alert& a : out) a.reviews = reviews_of(a.id);
  return out;
}

std::optional<Alert> AlertStore::get(std::int64_t id, bool with_images) {
  std::lock_guard lock(mutex_);
  Statement s(*db_, "SELECT " + kAlertColumns +
                        ", face_jpeg, face_descriptor, track_descriptor FROM alerts WHERE id = ?");
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  Alert a = read_alert(s);
  if (with_images) a.face_jpeg = s.blob(17);
  a.face_descriptor = descriptor_from(s, 18);
  a.track_descriptor = descriptor_from(s, 19);
  a.reviews = reviews_of(id);
  return a;
}

std::vector<AlertReview> AlertStore::reviews_of(std::int64_t id) {
  Statement s(*db_,
              "SELECT reviewer, decision, note, at_ms FROM alert_reviews WHERE alert_id = ? "
              "ORDER BY at_ms, reviewer");
  s.bind(1, id);
  std::vector<AlertReview> out;
  while (s.step()) out.push_back({s.text(0), review_from(s.text(1)), s.text(2), s.integer(3)});
  return out;
}

Alert AlertStore::review(std::int64_t id, ReviewState decision, const std::string& note,
                         const std::string& reviewer, int confirmations_needed) {
  if (decision == ReviewState::kPending) {
    throw Error(ErrorCode::kInvalidArgument, "a review confirms or rejects an alert");
  }
  if (confirmations_needed < 1 || confirmations_needed > 3) {
    throw Error(ErrorCode::kInvalidArgument, "confirmations needed must be in 1..3, got " +
                                                 std::to_string(confirmations_needed));
  }
  check_text(note, "note", fields::kReviewNote);
  check_text(reviewer, "reviewer", fields::kReviewer);
  if (reviewer.empty()) throw Error(ErrorCode::kInvalidArgument, "a review needs a reviewer");
  {
    std::lock_guard lock(mutex_);
    // Two reviewers on two nodes must not both find the alert pending.
    Transaction t(*db_, kReviewWriteLock);
    Statement existing(*db_, "SELECT review, reviewed_by, reviewed_at_ms FROM alerts WHERE id = ?");
    existing.bind(1, id);
    if (!existing.step()) {
      throw Error(ErrorCode::kNotFound, "alert " + std::to_string(id) + " does not exist");
    }
    if (existing.text(0) != "pending") {
      // An outcome is final: not overwritten, not even by the people who decided it.
      throw Error(ErrorCode::kFailedPrecondition,
                  "alert " + std::to_string(id) + " was already " + existing.text(0) +
                      " (decided by '" + existing.text(1) + "' at " +
                      format_utc_time(existing.integer(2)) + "): an outcome is final");
    }
    for (const AlertReview& r : reviews_of(id)) {
      // Two-person confirmation means two people: one token cannot count twice, nor two
      // names that differ only in case (names from before they had to differ so).
      if (!same_name_ignoring_case(r.reviewer, reviewer)) continue;
      throw Error(ErrorCode::kFailedPrecondition,
                  "'" + reviewer + "' already reviewed alert " + std::to_string(id) + " (" +
                      to_string(r.decision) + " at " + format_utc_time(r.at_ms) +
                      "): it needs a confirmation from someone else");
    }
    const std::int64_t at = now_unix_ms();
    Statement insert(*db_,
                     "INSERT INTO alert_reviews(alert_id, reviewer, decision, note, at_ms) "
                     "VALUES (?, ?, ?, ?, ?)");
    insert.bind(1, id).bind(2, reviewer).bind(3, std::string(to_string(decision)));
    insert.bind(4, note).bind(5, at).step();
    Statement confirmations(
        *db_, "SELECT COUNT(*) FROM alert_reviews WHERE alert_id = ? AND decision = 'confirmed'");
    confirmations.bind(1, id).step();
    const bool decided =
        decision == ReviewState::kRejected || confirmations.integer(0) >= confirmations_needed;
    if (decided) {
      Statement s(*db_,
                  "UPDATE alerts SET review = ?, review_note = ?, reviewed_by = ?, "
                  "reviewed_at_ms = ? WHERE id = ?");
      s.bind(1, std::string(to_string(decision))).bind(2, note).bind(3, reviewer);
      s.bind(4, at).bind(5, id).step();
    }
    t.commit();
  }
  return *get(id, false);
}

std::int64_t AlertStore::last_id() {
  std::lock_guard lock(mutex_);
  Statement s(*db_, "SELECT COALESCE(MAX(id), 0) FROM alerts");
  s.step();
  return s.integer(0);
}

}  // namespace frs

namespace frs {

AlertPurge AlertStore::purge(std::int64_t before_ms, std::int64_t confirmed_before_ms) {
  const std::string which =
      " FROM alerts WHERE (review != 'confirmed' AND detected_at_ms < ?) OR "
      "(review = 'confirmed' AND detected_at_ms < ?)";
  std::lock_guard lock(mutex_);
  Transaction t(*db_);
  Statement counted(
      *db_,
      "SELECT COUNT(*), COALESCE(SUM(CASE WHEN review = 'confirmed' THEN 1 ELSE 0 END), 0), "
      "COALESCE(MIN(id), 0), COALESCE(MAX(id), 0)" +
          which);
  counted.bind(1, before_ms).bind(2, confirmed_before_ms).step();
  AlertPurge out{counted.integer(0), counted.integer(1), counted.integer(2), counted.integer(3)};
  if (out.alerts == 0) return out;
  Statement reviews(*db_, "DELETE FROM alert_reviews WHERE alert_id IN (SELECT id" + which + ")");
  reviews.bind(1, before_ms).bind(2, confirmed_before_ms).step();
  Statement alerts(*db_, "DELETE" + which);
  alerts.bind(1, before_ms).bind(2, confirmed_before_ms).step();
  t.commit();
  return out;
}

}  // namespace frs
