#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>

#include "frs/core/clock.h"
#include "frs/core/error.h"
#include "frs/core/text_fields.h"
#include "frs/gallery/store.h"
#include "frs/storage/database.h"
#include "frs/vision/descriptor_model.h"

namespace frs {
namespace {

// Forward migrations; entry i takes the schema from version i to i + 1.
const char* const kGallerySqliteMigrations[] = {
    R"sql(
CREATE TABLE watchlists (
  id            INTEGER PRIMARY KEY,
  name          TEXT NOT NULL UNIQUE,
  description   TEXT NOT NULL DEFAULT '',
  max_distance  REAL NOT NULL,
  created_by    TEXT NOT NULL DEFAULT '',
  created_at_ms INTEGER NOT NULL
);
CREATE TABLE identities (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  watchlist_id  INTEGER NOT NULL REFERENCES watchlists(id) ON DELETE CASCADE,
  external_id   TEXT NOT NULL,
  display_name  TEXT NOT NULL DEFAULT '',
  notes         TEXT NOT NULL DEFAULT '',
  created_at_ms INTEGER NOT NULL,
  UNIQUE (watchlist_id, external_id)
);
CREATE TABLE faces (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  identity_id    INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  watchlist_id   INTEGER NOT NULL,
  descriptor     BLOB NOT NULL,
  image_sha256   TEXT NOT NULL,
  thumbnail      BLOB,
  quality        REAL NOT NULL,
  enrolled_at_ms INTEGER NOT NULL
);
CREATE INDEX faces_by_identity ON faces(identity_id);
CREATE INDEX faces_by_watchlist ON faces(watchlist_id);
CREATE TABLE face_changes (
  sequence     INTEGER PRIMARY KEY AUTOINCREMENT,
  watchlist_id INTEGER NOT NULL,
  face_id      INTEGER NOT NULL,
  added        INTEGER NOT NULL
);
)sql",
    // 2: how each watchlist's threshold was chosen.
    "ALTER TABLE watchlists ADD COLUMN threshold_basis TEXT NOT NULL DEFAULT '';",
    // 3: enrollment gate refusals an operator overrode, and why.
    "ALTER TABLE faces ADD COLUMN gate_override TEXT NOT NULL DEFAULT '';",
    // 4: watchlist ids are never reused (AUTOINCREMENT). Before, deleting the newest watchlist
    // freed its id for the next one, so a write that resolved the deleted watchlist landed in
    // the new one. SQLite cannot add AUTOINCREMENT to a table: it is rebuilt (the migrations
    // run with foreign keys off, so the drop does not cascade). The sequence starts above
    // every id a watchlist ever had that the store still mentions.
    R"sql(
CREATE TABLE watchlists_v4 (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  name            TEXT NOT NULL UNIQUE,
  description     TEXT NOT NULL DEFAULT '',
  max_distance    REAL NOT NULL,
  created_by      TEXT NOT NULL DEFAULT '',
  created_at_ms   INTEGER NOT NULL,
  threshold_basis TEXT NOT NULL DEFAULT ''
);
INSERT INTO watchlists_v4(id, name, description, max_distance, created_by, created_at_ms,
                          threshold_basis)
  SELECT id, name, description, max_distance, created_by, created_at_ms, threshold_basis
  FROM watchlists;
DROP TABLE watchlists;
ALTER TABLE watchlists_v4 RENAME TO watchlists;
DELETE FROM sqlite_sequence WHERE name = 'watchlists';
INSERT INTO sqlite_sequence(name, seq) SELECT 'watchlists', MAX(m) FROM (
  SELECT COALESCE(MAX(id), 0) AS m FROM watchlists
  UNION ALL SELECT COALESCE(MAX(watchlist_id), 0) FROM identities
  UNION ALL SELECT COALESCE(MAX(watchlist_id), 0) FROM faces
  UNION ALL SELECT COALESCE(MAX(watchlist_id), 0) FROM face_changes);
)sql",
    // 5: who enrolled each identity (the enrolling token's name).
    "ALTER TABLE identities ADD COLUMN created_by TEXT NOT NULL DEFAULT '';",
    // 6: oversight: live-only watchlists, authorisations, suppressions (known non-matches).
    R"sql(
ALTER TABLE watchlists ADD COLUMN live_only INTEGER NOT NULL DEFAULT 0;
CREATE TABLE authorizations (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  watchlist_id   INTEGER NOT NULL REFERENCES watchlists(id) ON DELETE CASCADE,
  basis          TEXT NOT NULL
                 CHECK (basis IN ('warrant', 'court-order', 'exigent', 'consent', 'policy')),
  reference      TEXT NOT NULL,
  issued_by      TEXT NOT NULL,
  valid_from_ms  INTEGER NOT NULL,
  valid_until_ms INTEGER NOT NULL CHECK (valid_until_ms > valid_from_ms),
  recorded_by    TEXT NOT NULL,
  recorded_at_ms INTEGER NOT NULL
);
CREATE INDEX authorizations_by_watchlist ON authorizations(watchlist_id);
CREATE TABLE suppressions (
  id                   INTEGER PRIMARY KEY AUTOINCREMENT,
  identity_id          INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  descriptor           BLOB NOT NULL,
  alert_id             INTEGER NOT NULL,
  alert_detected_at_ms INTEGER NOT NULL,
  created_by           TEXT NOT NULL,
  created_at_ms        INTEGER NOT NULL,
  note                 TEXT NOT NULL
);
CREATE INDEX suppressions_by_identity ON suppressions(identity_id);
CREATE INDEX suppressions_by_alert_time ON suppressions(alert_detected_at_ms);
)sql",
    // 7: descriptor models: each watchlist's and each face's (all dlib's before), what a
    // later model needs to describe a face again, and re-embeddings in progress.
    R"sql(
ALTER TABLE watchlists ADD COLUMN descriptor_model TEXT NOT NULL DEFAULT 'dlib-resnet-v1';
ALTER TABLE watchlists ADD COLUMN reembed_target TEXT NOT NULL DEFAULT '';
ALTER TABLE watchlists ADD COLUMN reembed_started_at_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE watchlists ADD COLUMN reembed_started_by TEXT NOT NULL DEFAULT '';
ALTER TABLE faces ADD COLUMN descriptor_model TEXT NOT NULL DEFAULT 'dlib-resnet-v1';
ALTER TABLE faces ADD COLUMN source_region BLOB;
ALTER TABLE faces ADD COLUMN source_landmarks BLOB;
ALTER TABLE suppressions ADD COLUMN descriptor_model TEXT NOT NULL DEFAULT 'dlib-resnet-v1';
CREATE TABLE reembedded (
  face_id          INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
  watchlist_id     INTEGER NOT NULL REFERENCES watchlists(id) ON DELETE CASCADE,
  descriptor_model TEXT NOT NULL,
  descriptor       BLOB NOT NULL
);
CREATE INDEX reembedded_by_watchlist ON reembedded(watchlist_id);
)sql",
};
static_assert(std::size(kGallerySqliteMigrations) == kStoreSchemaVersion);

// PostgreSQL's history starts at SQLite's version 7. face_changes.sequence is taken under
// the gallery's write lock, so the change log commits in sequence order on every node.
const char* const kGalleryPostgresMigrations[] = {
    R"sql(
CREATE TABLE watchlists (
  id                    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name                  TEXT NOT NULL UNIQUE,
  description           TEXT NOT NULL DEFAULT '',
  max_distance          DOUBLE PRECISION NOT NULL,
  created_by            TEXT NOT NULL DEFAULT '',
  created_at_ms         BIGINT NOT NULL,
  threshold_basis       TEXT NOT NULL DEFAULT '',
  live_only             BIGINT NOT NULL DEFAULT 0,
  descriptor_model      TEXT NOT NULL DEFAULT 'dlib-resnet-v1',
  reembed_target        TEXT NOT NULL DEFAULT '',
  reembed_started_at_ms BIGINT NOT NULL DEFAULT 0,
  reembed_started_by    TEXT NOT NULL DEFAULT ''
);
CREATE TABLE identities (
  id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  watchlist_id  BIGINT NOT NULL REFERENCES watchlists(id) ON DELETE CASCADE,
  external_id   TEXT NOT NULL,
  display_name  TEXT NOT NULL DEFAULT '',
  notes         TEXT NOT NULL DEFAULT '',
  created_at_ms BIGINT NOT NULL,
  created_by    TEXT NOT NULL DEFAULT '',
  UNIQUE (watchlist_id, external_id)
);
CREATE TABLE faces (
  id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  identity_id      BIGINT NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  watchlist_id     BIGINT NOT NULL,
  descriptor       BYTEA NOT NULL,
  image_sha256     TEXT NOT NULL,
  thumbnail        BYTEA,
  quality          DOUBLE PRECISION NOT NULL,
  enrolled_at_ms   BIGINT NOT NULL,
  gate_override    TEXT NOT NULL DEFAULT '',
  descriptor_model TEXT NOT NULL DEFAULT 'dlib-resnet-v1',
  source_region    BYTEA,
  source_landmarks BYTEA
);
CREATE INDEX faces_by_identity ON faces(identity_id);
CREATE INDEX faces_by_watchlist ON faces(watchlist_id);
CREATE TABLE face_changes (
  sequence     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  watchlist_id BIGINT NOT NULL,
  face_id      BIGINT NOT NULL,
  added        BIGINT NOT NULL
);
CREATE TABLE authorizations (
  id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  watchlist_id   BIGINT NOT NULL REFERENCES watchlists(id) ON DELETE CASCADE,
  basis          TEXT NOT NULL
                 CHECK (basis IN ('warrant', 'court-order', 'exigent', 'consent', 'policy')),
  reference      TEXT NOT NULL,
  issued_by      TEXT NOT NULL,
  valid_from_ms  BIGINT NOT NULL,
  valid_until_ms BIGINT NOT NULL CHECK (valid_until_ms > valid_from_ms),
  recorded_by    TEXT NOT NULL,
  recorded_at_ms BIGINT NOT NULL
);
CREATE INDEX authorizations_by_watchlist ON authorizations(watchlist_id);
CREATE TABLE suppressions (
  id                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  identity_id          BIGINT NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  descriptor           BYTEA NOT NULL,
  alert_id             BIGINT NOT NULL,
  alert_detected_at_ms BIGINT NOT NULL,
  created_by           TEXT NOT NULL,
  created_at_ms        BIGINT NOT NULL,
  note                 TEXT NOT NULL,
  descriptor_model     TEXT NOT NULL DEFAULT 'dlib-resnet-v1'
);
CREATE INDEX suppressions_by_identity ON suppressions(identity_id);
CREATE INDEX suppressions_by_alert_time ON suppressions(alert_detected_at_ms);
CREATE TABLE reembedded (
  face_id          BIGINT PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
  watchlist_id     BIGINT NOT NULL REFERENCES watchlists(id) ON DELETE CASCADE,
  descriptor_model TEXT NOT NULL,
  descriptor       BYTEA NOT NULL
);
CREATE INDEX reembedded_by_watchlist ON reembedded(watchlist_id);
)sql",
};

// Every write transaction of the gallery takes it first: the change log's sequence is taken
// under it, and taking it before any row lock keeps two nodes' writes from deadlocking.
constexpr const char* kGalleryWriteLock = kGalleryChannel;

const std::string kFaceSelect =
    "SELECT f.id, f.identity_id, f.descriptor, f.image_sha256, f.thumbnail, f.quality, "
    "f.enrolled_at_ms, f.gate_override, f.descriptor_model, f.source_region, "
    "f.source_landmarks FROM faces f";
const std::string kWatchlistSelect =
    "SELECT id, name, description, max_distance, created_by, created_at_ms, threshold_basis, "
    "live_only, descriptor_model FROM watchlists";
const std::string kAuthorizationSelect =
    "SELECT id, watchlist_id, basis, reference, issued_by, valid_from_ms, valid_until_ms, "
    "recorded_by, recorded_at_ms FROM authorizations";
const std::string kSuppressionSelect =
    "SELECT id, identity_id, descriptor, alert_id, alert_detected_at_ms, created_by, "
    "created_at_ms, note, descriptor_model FROM suppressions";
const std::string kIdentitySelect =
    "SELECT i.id, i.watchlist_id, i.external_id, i.display_name, i.notes, i.created_at_ms, "
    "COUNT(f.id), i.created_by FROM identities i LEFT JOIN faces f ON f.identity_id = i.id";

// face_changes.added: 1 a face added, 0 removed, 2 the watchlist reindexed (a new model).
constexpr std::int64_t kReindexEntry = 2;

Embedding to_embedding(const std::vector<std::uint8_t>& bytes) {
  return embedding_from_bytes(bytes, "a stored descriptor");
}

void check_watchlist_fields(const std::string& name, float max_distance) {
  check_text(name, "watchlist name", fields::kWatchlistName);
  if (!(max_distance > 0.0f && max_distance <= 4.0f)) {
    throw Error(ErrorCode::kInvalidArgument,
                "max_distance must be in (0, 4] (Euclidean descriptor distance), got " +
                    std::to_string(max_distance));
  }
}

constexpr int kSourceLandmarks = 68;

// kFailedPrecondition unless `descriptor` is of `model` and `model` is the watchlist's.
void check_of_model(const Embedding& descriptor, const std::string& model,
                    const std::string& watchlist_model) {
  if (model != watchlist_model) {
    throw Error(ErrorCode::kFailedPrecondition,
                "the watchlist holds " + watchlist_model + " descriptors, this face's are " +
                    quote_for_message(model) + ": describe it with " + watchlist_model);
  }
  const std::size_t dimension = descriptor_model(model).dimension;
  if (descriptor.size() != dimension) {
    throw Error(ErrorCode::kFailedPrecondition, model + " descriptors have " +
                                                    std::to_string(dimension) + " values, got " +
                                                    std::to_string(descriptor.size()));
  }
}

class SqlGalleryStore : public GalleryStore {
 public:
  explicit SqlGalleryStore(const StoreLocation& where)
      : db_(open_database(where, "gallery", "the gallery store",
                          {kGallerySqliteMigrations, kGalleryPostgresMigrations})) {}

  Watchlist create_watchlist(const Watchlist& w) override {
    check_watchlist_fields(w.name, w.max_distance);
    check_text(w.description, "description", fields::kDescription);
    descriptor_model(w.descriptor_model);  // kInvalidArgument naming the known ones
    std::lock_guard lock(mutex_);
    Watchlist out = w;
    out.created_at_ms = now_unix_ms();
    try {
      Statement s(*db_,
                  "INSERT INTO watchlists(name, description, max_distance, created_by, "
                  "created_at_ms, threshold_basis, live_only, descriptor_model) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id");
      s.bind(1, w.name).bind(2, w.description).bind(3, static_cast<double>(w.max_distance));
      s.bind(4, w.created_by).bind(5, out.created_at_ms).bind(6, w.threshold_basis);
      s.bind(7, static_cast<std::int64_t>(w.live_only ? 1 : 0)).bind(8, w.descriptor_model);
      s.step();
      out.id = s.integer(0);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kAlreadyExists) {
        throw Error(ErrorCode::kAlreadyExists,
                    "watchlist " + quote_for_message(w.name) + " already exists");
      }
      throw;
    }
    return out;
  }

  std::vector<Watchlist> list_watchlists() override {
    std::lock_guard lock(mutex_);
    Statement s(*db_, kWatchlistSelect + " ORDER BY name");
    std::vector<Watchlist> out;
    while (s.step()) out.push_back(read_watchlist(s));
    return out;
  }

  std::optional<Watchlist> find_watchlist(const std::string& name) override {
    std::lock_guard lock(mutex_);
    Statement s(*db_, kWatchlistSelect + " WHERE name = ?");
    s.bind(1, name);
    if (!s.step()) return std::nullopt;
    return read_watchlist(s);
  }

  std::optional<Watchlist> get_watchlist(std::int64_t id) override {
    std::lock_guard lock(mutex_);
    Statement s(*db_, kWatchlistSelect + " WHERE id = ?");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return read_watchlist(s);
  }

  void delete_watchlist(const std::string& name) override {
    std::lock_guard lock(mutex_);
    Transaction t(*db_, kGalleryWriteLock);
    const std::int64_t id = watchlist_id_locked(name);
    log_removals("SELECT id, watchlist_id FROM faces WHERE watchlist_id = ?", id);
    Statement(*db_, "DELETE FROM watchlists WHERE id = ?").bind(1, id).step();
    t.commit();
  }

  void set_max_distance(const std::string& name, float max_distance,
                        const std::string& threshold_basis) override {
    check_watchlist_fields(name, max_distance);
    std::lock_guard lock(mutex_);
    Transaction t(*db_, kGalleryWriteLock);  // announced to the other nodes
    Statement s(*db_, "UPDATE watchlists SET max_distance = ?, threshold_basis = ? WHERE name = ?");
    s.bind(1, static_cast<double>(max_distance)).bind(2, threshold_basis).bind(3, name).step();
    if (db_->changes() == 0) throw not_found_watchlist(name);
    t.commit();
  }

  Identity enroll(const Identity& identity, const std::vector<StoredFace>& faces) override {
    if (identity.external_id.empty()) {
      throw Error(ErrorCode::kInvalidArgument, "an identity needs an external id");
    }
    check_text(identity.external_id, "external_id", fields::kExternalId);
    check_text(identity.display_name, "display_name", fields::kDisplayName);
    check_text(identity.notes, "notes", fields::kNotes);
    std::lock_guard lock(mutex_);
    Transaction t(*db_, kGalleryWriteLock);
    {
      Statement w(*db_, "SELECT 1 FROM watchlists WHERE id = ?");
      w.bind(1, identity.watchlist_id);
      if (!w.step()) {
        throw Error(ErrorCode::kNotFound,
                    "watchlist " + std::to_string(identity.watchlist_id) + " does not exist");
      }
    }
    Identity out = identity;
    out.created_at_ms = now_unix_ms();
    try {
      Statement s(*db_,
                  "INSERT INTO identities(watchlist_id, external_id, display_name, notes, "
                  "created_at_ms, created_by) VALUES (?, ?, ?, ?, ?, ?) RETURNING id");
      s.bind(1, identity.watchlist_id).bind(2, identity.external_id);
      s.bind(3, identity.display_name).bind(4, identity.notes).bind(5, out.created_at_ms);
      s.bind(6, identity.created_by).step();
      out.id = s.integer(0);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kAlreadyExists) {
        throw Error(ErrorCode::kAlreadyExists, "external id " +
                                                   quote_for_message(identity.external_id) +
                                                   " is already enrolled in this watchlist");
      }
      throw;
    }
    insert_faces(out.id, out.watchlist_id, faces);
    t.commit();
    out.face_count = static_cast<int>(faces.size());
    return out;
  }

  std::vector<StoredFace> add_faces(std::int64_t identity_id,
                                    const std::vector<StoredFace>& faces) override {
    std::lock_guard lock(mutex_);
    Transaction t(*db_, kGalleryWriteLock);
    Statement s(*db_, "SELECT watchlist_id FROM identities WHERE id = ?");
    s.bind(1, identity_id);
    if (!s.step()) throw not_found_identity(identity_id);
    auto out = insert_faces(identity_id, s.integer(0), faces);
    t.commit();
    return out;
  }

  std::optional<Identity> get_identity(std::int64_t id) override {
    std::lock_guard lock(mutex_);
    Statement s(*db_, kIdentitySelect + " WHERE i.id = ? GROUP BY i.id");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return read_identity(s);
  }

  std::optional<Identity> find_identity(std::int64_t watchlist_id,
                                        const std::string& external_id) override {
    std::lock_guard lock(mutex_);
    Statement s(*db_,
                kIdentitySelect + " WHERE i.watchlist_id = ? AND i.external_id = ? GROUP BY i.id");
    s.bind(1, watchlist_id).bind(2, external_id);
    if (!s.step()) return std::nullopt;
    return read_identity(s);
  }

  std::vector<Identity> list_identities(std::int64_t watchlist_id, std::int64_t after_id,
                                        int limit) override {
    std::lock_guard lock(mutex_);
    Statement s(*db_,
                kIdentitySelect +
                    " WHERE i.watchlist_id = ? AND i.id > ? GROUP BY i.id ORDER BY i.id LIMIT ?");
    s.bind(1, watchlist_id).bind(2, after_id).bind(3, static_cast<std::int64_t>(limit));
    std::vector<Identity> out;
    while (s.step()) out.push_back(read_identity(s));
    return out;
  }

  std::vector<StoredFace> faces_of_identity(std::int64_t identity_id) override {
    std::lock_guard lock(mutex_);
    Statement s(*db_, kFaceSelect + " WHERE f.identity_id = ? ORDER BY f.id");
    s.bind(1, identity_id);
    return read_faces(s);
  }

  void remove_identity(std::int64_t id) override {
    std::lock_guard lock(mutex_);
    Transaction t(*db_, kGalleryWriteLock);
    log_removals("SELECT id, watchlist_id FROM faces WHERE identity_id = ?", id);
    Statement s(*db_, "DELETE FROM identities WHERE id = ?");
    s.bind(1, id).step();
    if (db_->changes() == 0) throw not_found_identity(id);
    t.commit();
  }

  bool has_photo(std::int64_t identity_id, const std::string& image_sha256) override {
    std::lock_guard lock(mutex_);
    Statement s(*db_, "SELECT 1 FROM faces WHERE identity_id = ? AND image_sha256 = ? LIMIT 1");
    s.bind(1, identity_id).bind(2, image_sha256);
    return s.step();
  }

  std::optional<Identity> identity_of_face(std::int64_t face_id) override {
    std::lock_guard lock(mutex_);
    Statement s(*db_,
                kIdentitySelect +
                    " WHERE i.id = (SELECT identity_id FROM faces WHERE id = ?) GROUP BY i.id");
    s.bind(1, face_id);
    if (!s.step()) return std::nullopt;
    return read_identity(s);
  }

  std::vector<StoredFace> faces_of_watchlist(std::int64_t watchlist_id) override {
    std::lock_guard lock(mutex_);
    Statement s(*db_, kFaceSelect + " WHERE f.watchlist_id = ? ORDER BY f.id");
    s.bind(1, watchlist_id);
    return read_faces(s);
  }

  std::vector<FaceChange> changes_after(std::uint64_t sequence) override {
    std::lock_guard lock(mutex_);
    Statement s(*db_,
                "SELECT c.sequence, c.watchlist_id, c.face_id, c.added, f.descriptor "
                "FROM face_changes c LEFT JOIN faces f ON f.id = c.face_id "
                "WHERE c.sequence > ? ORDER BY c.sequence");
    s.bind(1, static_cast<std::int64_t>(sequence));
    std::vector<FaceChange> out;
    while (s.step()) {
      FaceChange c;
      c.sequence = static_cast<std::uint64_t>(s.integer(0));
      c.watchlist_id = s.integer(1);
      c.face_id = s.integer(2);
      c.added = s.integer(3) == 1;
      c.reindex = s.integer(3) == kReindexEntry;
      if (c.reindex) {
        out.push_back(c);
        continue;
      }
      const auto blob = s.blob(4);
      // An addition whose face was removed later has no descriptor any more; the later
      // removal entry cancels it.
      if (c.added && !blob.empty()) c.descriptor = to_embedding(blob);
      if (c.added && blob.empty()) continue;
      out.push_back(c);
    }
    return out;
  }

  std::uint64_t last_change() override {
    std::lock_guard lock(mutex_);
    Statement s(*db_, "SELECT COALESCE(MAX(sequence), 0) FROM face_changes");
    s.step();
    return static_cast<std::uint64_t>(s.integer(0));
  }

  std::int64_t identity_count(std::int64_t watchlist_id) override {
    std::lock_guard lock(mutex_);
    Statement s(*db_, "SELECT COUNT(*) FROM identities WHERE watchlist_id = ?");
    s.bind(1, watchlist_id).step();
    return s.integer(0);
  }

  std::int64_t face_count(std::int64_t watchlist_id) override {
    std::lock_guard lock(mutex_);
    Statement s(*db_, "SELECT COUNT(*) FROM faces WHERE watchlist_id = ?");
    s.bind(1, watchlist_id).step();
    return s.integer(0);
  }

  void set_live_only(const std::string& name, bool live_only) override {
    std::lock_guard lock(mutex_);
    Transaction t(*db_, kGalleryWriteLock);
    Statement s(*db_, "UPDATE watchlists SET live_only = ? WHERE name = ?");
    s.bind(1, static_cast<std::int64_t>(live_only ? 1 : 0)).bind(2, name).step();
    if (db_->changes() == 0) throw not_found_watchlist(name);
    t.commit();
  }

  ReembedProgress begin_reembed(std::int64_t watchlist_id, const std::string& model,
                                const std::string& started_by) override {
    descriptor_model(model);
    std::lock_guard lock(mutex_);
    Transaction t(*db_, kGalleryWriteLock);
    Statement w(*db_, "SELECT descriptor_model, reembed_target, name FROM watchlists WHERE id = ?");
    w.bind(1, watchlist_id);
    if (!w.step()) {
      throw Error(ErrorCode::kNotFound,
                  "watchlist " + std::to_string(watchlist_id) + " does not exist");
    }
    if (w.text(0) == model) {
      throw Error(ErrorCode::kFailedPrecondition,
                  "watchlist " + quote_for_message(w.text(2)) + " is of " + model + " already");
    }
    if (w.text(1) != model) {
      Statement(*db_, "DELETE FROM reembedded WHERE watchlist_id = ?").bind(1, watchlist_id).step();
      Statement s(*db_,
                  "UPDATE watchlists SET reembed_target = ?, reembed_started_at_ms = ?, "
                  "reembed_started_by = ? WHERE id = ?");
      s.bind(1, model).bind(2, now_unix_ms()).bind(3, started_by).bind(4, watchlist_id).step();
    }
    t.commit();
    return progress_locked(watchlist_id);
  }

  ReembedProgress reembed_progress(std::int64_t watchlist_id) override {
    std::lock_guard lock(mutex_);
    return progress_locked(watchlist_id);
  }

  std::vector<StoredFace> faces_to_reembed(std::int64_t watchlist_id, std::int64_t after_face_id,
                                           int limit) override {
    std::lock_guard lock(mutex_);
    Statement s(*db_, kFaceSelect +
                          " WHERE f.watchlist_id = ? AND f.id > ? AND NOT EXISTS (SELECT 1 FROM "
                          "reembedded r WHERE r.face_id = f.id) ORDER BY f.id LIMIT ?");
    s.bind(1, watchlist_id).bind(2, after_face_id).bind(3, static_cast<std::int64_t>(limit));
    return read_faces(s);
  }

  void put_reembedded(std::int64_t watchlist_id, const std::string& model,
                      const std::vector<std::pair<std::int64_t, Embedding>>& made) override {
    std::lock_guard lock(mutex_);
    Transaction t(*db_, kGalleryWriteLock);
    require_reembed_to(watchlist_id, model);
    for (const auto& [face_id, descriptor] : made) {
      require_finite(descriptor, "a re-embedded descriptor");
      check_of_model(descriptor, model, model);
      // INSERT ... SELECT: a face removed meanwhile inserts nothing.
      Statement s(*db_,
                  "INSERT INTO reembedded(face_id, watchlist_id, descriptor_model, "
                  "descriptor) SELECT id, watchlist_id, ?, ? FROM faces "
                  "WHERE id = ? AND watchlist_id = ? ON CONFLICT (face_id) DO UPDATE SET "
                  "descriptor_model = excluded.descriptor_model, descriptor = excluded.descriptor");
      s.bind(1, model).bind_blob(2, descriptor.data(), descriptor.size() * sizeof(float));
      s.bind(3, face_id).bind(4, watchlist_id).step();
    }
    t.commit();
  }

  std::vector<std::pair<std::int64_t, Embedding>> reembedded(std::int64_t watchlist_id,
                                                             const std::string& model) override {
    std::lock_guard lock(mutex_);
    Statement s(*db_,
                "SELECT face_id, descriptor FROM reembedded WHERE watchlist_id = ? AND "
                "descriptor_model = ? ORDER BY face_id");
    s.bind(1, watchlist_id).bind(2, model);
    std::vector<std::pair<std::int64_t, Embedding>> out;
    while (s.step()) out.emplace_back(s.integer(0), to_embedding(s.blob(1)));
    return out;
  }

  Watchlist finish_reembed(std::int64_t watchlist_id, const std::string& model, float max_distance,
                           const std::string& threshold_basis) override {
    std::lock_guard lock(mutex_);
    Transaction t(*db_, kGalleryWriteLock);
    require_reembed_to(watchlist_id, model);
    Statement missing(*db_,
                      "SELECT COUNT(*) FROM faces f WHERE f.watchlist_id = ? AND NOT EXISTS "
                      "(SELECT 1 FROM reembedded r WHERE r.face_id = f.id)");
    missing.bind(1, watchlist_id).step();
    if (missing.integer(0) > 0) {
      throw Error(ErrorCode::kFailedPrecondition,
                  std::to_string(missing.integer(0)) + " faces have no " + model +
                      " descriptor yet (enrolled during the re-embedding): make them first");
    }
    Statement s(*db_,
                "UPDATE faces SET descriptor_model = ?, descriptor = (SELECT r.descriptor FROM "
                "reembedded r WHERE r.face_id = faces.id) WHERE watchlist_id = ?");
    s.bind(1, model).bind(2, watchlist_id).step();
    Statement w(*db_,
                "UPDATE watchlists SET descriptor_model = ?, max_distance = ?, "
                "threshold_basis = ?, reembed_target = '', reembed_started_at_ms = 0, "
                "reembed_started_by = '' WHERE id = ?");
    w.bind(1, model).bind(2, static_cast<double>(max_distance)).bind(3, threshold_basis);
    w.bind(4, watchlist_id).step();
    Statement(*db_, "DELETE FROM reembedded WHERE watchlist_id = ?").bind(1, watchlist_id).step();
    Statement c(*db_, "INSERT INTO face_changes(watchlist_id, face_id, added) VALUES (?, 0, ?)");
    c.bind(1, watchlist_id).bind(2, kReindexEntry).step();
    Statement read(*db_, kWatchlistSelect + " WHERE id = ?");
    read.bind(1, watchlist_id).step();
    Watchlist out = read_watchlist(read);
    t.commit();
    return out;
  }

  Authorization add_authorization(const Authorization& a) override {
    if (std::find(std::begin(kAuthorizationBases), std::end(kAuthorizationBases), a.basis) ==
        std::end(kAuthorizationBases)) {
      throw Error(ErrorCode::kInvalidArgument,
                  "basis must be warrant, court-order, exigent, consent or policy, got " +
                      quote_for_message(a.basis));
    }
    check_text(a.reference, "reference", fields::kAuthorizationReference);
    check_text(a.issued_by, "issued_by", fields::kAuthorizationIssuer);
    check_text(a.recorded_by, "recorded_by", fields::kReviewer);
    if (a.valid_until_ms <= a.valid_from_ms) {
      throw Error(ErrorCode::kInvalidArgument,
                  "an authorisation's end (until) must be after its start (from)");
    }
    std::lock_guard lock(mutex_);
    Authorization out = a;
    out.recorded_at_ms = now_unix_ms();
    Transaction t(*db_, kGalleryWriteLock);
    {
      Statement w(*db_, "SELECT 1 FROM watchlists WHERE id = ?");
      w.bind(1, a.watchlist_id);
      if (!w.step()) {
        throw Error(ErrorCode::kNotFound,
                    "watchlist " + std::to_string(a.watchlist_id) + " does not exist");
      }
    }
    Statement s(*db_,
                "INSERT INTO authorizations(watchlist_id, basis, reference, issued_by, "
                "valid_from_ms, valid_until_ms, recorded_by, recorded_at_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id");
    s.bind(1, a.watchlist_id).bind(2, a.basis).bind(3, a.reference).bind(4, a.issued_by);
    s.bind(5, a.valid_from_ms).bind(6, a.valid_until_ms).bind(7, a.recorded_by);
    s.bind(8, out.recorded_at_ms).step();
    out.id = s.integer(0);
    t.commit();
    return out;
  }

  std::vector<Authorization> list_authorizations(
      std::optional<std::int64_t> watchlist_id) override {
    std::lock_guard lock(mutex_);
    Statement s(*db_, kAuthorizationSelect + (watchlist_id ? " WHERE watchlist_id = ?" : "") +
                          " ORDER BY id");
    if (watchlist_id) s.bind(1, *watchlist_id);
    std::vector<Authorization> out;
    while (s.step()) out.push_back(read_authorization(s));
    return out;
  }

  std::vector<Suppression> add_suppressions(const std::vector<Suppression>& add) override {
    std::lock_guard lock(mutex_);
    Transaction t(*db_, kGalleryWriteLock);
    std::vector<Suppression> out;
    for (const Suppression& x : add) {
      require_finite(x.descriptor, "a suppression's descriptor");
      check_text(x.note, "note", fields::kSuppressionNote);
      Statement i(*db_, "SELECT 1 FROM identities WHERE id = ?");
      i.bind(1, x.identity_id);
      if (!i.step()) throw not_found_identity(x.identity_id);
      Suppression stored = x;
      stored.created_at_ms = now_unix_ms();
      descriptor_model(x.descriptor_model);
      Statement s(*db_,
                  "INSERT INTO suppressions(identity_id, descriptor, alert_id, "
                  "alert_detected_at_ms, created_by, created_at_ms, note, descriptor_model) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id");
      s.bind(1, x.identity_id)
          .bind_blob(2, x.descriptor.data(), x.descriptor.size() * sizeof(float));
      s.bind(3, x.alert_id).bind(4, x.alert_detected_at_ms).bind(5, x.created_by);
      s.bind(6, stored.created_at_ms).bind(7, x.note).bind(8, x.descriptor_model).step();
      stored.id = s.integer(0);
      out.push_back(stored);
    }
    t.commit();
    return out;
  }

  std::vector<Suppression> list_suppressions(std::optional<std::int64_t> identity_id) override {
    std::lock_guard lock(mutex_);
    Statement s(
        *db_, kSuppressionSelect + (identity_id ? " WHERE identity_id = ?" : "") + " ORDER BY id");
    if (identity_id) s.bind(1, *identity_id);
    std::vector<Suppression> out;
    while (s.step()) out.push_back(read_suppression(s));
    return out;
  }

  std::optional<Suppression> remove_suppression(std::int64_t id) override {
    std::lock_guard lock(mutex_);
    Transaction t(*db_, kGalleryWriteLock);
    Statement s(*db_, kSuppressionSelect + " WHERE id = ?");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    Suppression out = read_suppression(s);
    Statement(*db_, "DELETE FROM suppressions WHERE id = ?").bind(1, id).step();
    t.commit();
    return out;
  }

  std::int64_t purge_suppressions(std::int64_t before_ms) override {
    std::lock_guard lock(mutex_);
    Transaction t(*db_, kGalleryWriteLock);
    Statement(*db_, "DELETE FROM suppressions WHERE alert_detected_at_ms < ?")
        .bind(1, before_ms)
        .step();
    const std::int64_t purged = db_->changes();
    t.commit();
    return purged;
  }

 private:
  // Rolls back unless committed, so an exception anywhere leaves the store unchanged.
  static Watchlist read_watchlist(const Statement& s) {
    Watchlist w;
    w.id = s.integer(0);
    w.name = s.text(1);
    w.description = s.text(2);
    w.max_distance = static_cast<float>(s.real(3));
    w.created_by = s.text(4);
    w.created_at_ms = s.integer(5);
    w.threshold_basis = s.text(6);
    w.live_only = s.integer(7) != 0;
    w.descriptor_model = s.text(8);
    return w;
  }

  static Authorization read_authorization(const Statement& s) {
    Authorization a;
    a.id = s.integer(0);
    a.watchlist_id = s.integer(1);
    a.basis = s.text(2);
    a.reference = s.text(3);
    a.issued_by = s.text(4);
    a.valid_from_ms = s.integer(5);
    a.valid_until_ms = s.integer(6);
    a.recorded_by = s.text(7);
    a.recorded_at_ms = s.integer(8);
    return a;
  }

  static Suppression read_suppression(const Statement& s) {
    Suppression x;
    x.id = s.integer(0);
    x.identity_id = s.integer(1);
    x.descriptor = to_embedding(s.blob(2));
    x.alert_id = s.integer(3);
    x.alert_detected_at_ms = s.integer(4);
    x.created_by = s.text(5);
    x.created_at_ms = s.integer(6);
    x.note = s.text(7);
    x.descriptor_model = s.text(8);
    return x;
  }

  static Identity read_identity(const Statement& s) {
    Identity i;
    i.id = s.integer(0);
    i.watchlist_id = s.integer(1);
    i.external_id = s.text(2);
    i.display_name = s.text(3);
    i.notes = s.text(4);
    i.created_at_ms = s.integer(5);
    i.face_count = static_cast<int>(s.integer(6));
    i.created_by = s.text(7);
    return i;
  }

  static std::vector<StoredFace> read_faces(Statement& s) {
    std::vector<StoredFace> out;
    while (s.step()) {
      StoredFace f;
      f.id = s.integer(0);
      f.identity_id = s.integer(1);
      f.descriptor = to_embedding(s.blob(2));
      f.image_sha256 = s.text(3);
      f.thumbnail = s.blob(4);
      f.quality = static_cast<float>(s.real(5));
      f.enrolled_at_ms = s.integer(6);
      f.gate_override = s.text(7);
      f.descriptor_model = s.text(8);
      f.source_region = s.blob(9);
      const auto landmarks = s.blob(10);
      f.source_landmarks.resize(landmarks.size() / sizeof(float));
      if (!f.source_landmarks.empty()) {
        std::memcpy(f.source_landmarks.data(), landmarks.data(),
                    f.source_landmarks.size() * sizeof(float));
      }
      out.push_back(std::move(f));
    }
    return out;
  }

  std::vector<StoredFace> insert_faces(std::int64_t identity_id, std::int64_t watchlist_id,
                                       const std::vector<StoredFace>& faces) {
    std::string model;
    {
      Statement w(*db_, "SELECT descriptor_model FROM watchlists WHERE id = ?");
      w.bind(1, watchlist_id);
      if (!w.step()) {
        throw Error(ErrorCode::kNotFound,
                    "watchlist " + std::to_string(watchlist_id) + " does not exist");
      }
      model = w.text(0);
    }
    std::vector<StoredFace> out;
    for (const StoredFace& face : faces) {
      require_finite(face.descriptor, "a face's descriptor");
      check_of_model(face.descriptor, face.descriptor_model, model);
      if (face.source_landmarks.size() != 0 &&
          face.source_landmarks.size() != 2 * static_cast<std::size_t>(kSourceLandmarks)) {
        throw Error(ErrorCode::kInvalidArgument,
                    "a face's source landmarks must be 136 values (68 points), got " +
                        std::to_string(face.source_landmarks.size()));
      }
      StoredFace f = face;
      f.identity_id = identity_id;
      f.enrolled_at_ms = now_unix_ms();
      Statement s(*db_,
                  "INSERT INTO faces(identity_id, watchlist_id, descriptor, image_sha256, "
                  "thumbnail, quality, enrolled_at_ms, gate_override, descriptor_model, "
                  "source_region, source_landmarks) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                  "RETURNING id");
      s.bind(1, identity_id).bind(2, watchlist_id);
      s.bind_blob(3, f.descriptor.data(), f.descriptor.size() * sizeof(float));
      s.bind(4, f.image_sha256).bind_blob(5, f.thumbnail.data(), f.thumbnail.size());
      s.bind(6, static_cast<double>(f.quality)).bind(7, f.enrolled_at_ms);
      s.bind(8, f.gate_override).bind(9, f.descriptor_model);
      s.bind_blob(10, f.source_region.data(), f.source_region.size());
      s.bind_blob(11, f.source_landmarks.data(), f.source_landmarks.size() * sizeof(float));
      s.step();
      f.id = s.integer(0);
      Statement c(*db_, "INSERT INTO face_changes(watchlist_id, face_id, added) VALUES (?, ?, 1)");
      c.bind(1, watchlist_id).bind(2, f.id).step();
      out.push_back(std::move(f));
    }
    return out;
  }

  // Records a removal for every face the query (one ? parameter) selects.
  void log_removals(const char* select_faces, std::int64_t key) {
    Statement s(*db_, select_faces);
    s.bind(1, key);
    while (s.step()) {
      Statement c(*db_, "INSERT INTO face_changes(watchlist_id, face_id, added) VALUES (?, ?, 0)");
      c.bind(1, s.integer(1)).bind(2, s.integer(0)).step();
    }
  }

  ReembedProgress progress_locked(std::int64_t watchlist_id) {
    Statement w(*db_,
                "SELECT reembed_target, reembed_started_at_ms, reembed_started_by FROM watchlists "
                "WHERE id = ?");
    w.bind(1, watchlist_id);
    if (!w.step()) {
      throw Error(ErrorCode::kNotFound,
                  "watchlist " + std::to_string(watchlist_id) + " does not exist");
    }
    ReembedProgress p;
    p.target_model = w.text(0);
    p.started_at_ms = w.integer(1);
    p.started_by = w.text(2);
    Statement total(*db_, "SELECT COUNT(*) FROM faces WHERE watchlist_id = ?");
    total.bind(1, watchlist_id).step();
    p.total = total.integer(0);
    Statement done(*db_, "SELECT COUNT(*) FROM reembedded WHERE watchlist_id = ?");
    done.bind(1, watchlist_id).step();
    p.done = done.integer(0);
    return p;
  }

  void require_reembed_to(std::int64_t watchlist_id, const std::string& model) {
    Statement w(*db_, "SELECT reembed_target FROM watchlists WHERE id = ?");
    w.bind(1, watchlist_id);
    if (!w.step()) {
      throw Error(ErrorCode::kNotFound,
                  "watchlist " + std::to_string(watchlist_id) + " does not exist");
    }
    if (w.text(0) != model) {
      throw Error(ErrorCode::kFailedPrecondition,
                  "no re-embedding to " + model + " is in progress for watchlist " +
                      std::to_string(watchlist_id) +
                      (w.text(0).empty() ? "" : " (it is being re-embedded to " + w.text(0) + ")"));
    }
  }

  std::int64_t watchlist_id_locked(const std::string& name) {
    Statement s(*db_, "SELECT id FROM watchlists WHERE name = ?");
    s.bind(1, name);
    if (!s.step()) throw not_found_watchlist(name);
    return s.integer(0);
  }

  static Error not_found_watchlist(const std::string& name) {
    return Error(ErrorCode::kNotFound, "watchlist " + quote_for_message(name) + " does not exist");
  }
  static Error not_found_identity(std::int64_t id) {
    return Error(ErrorCode::kNotFound, "identity " + std::to_string(id) + " does not exist");
  }

  std::unique_ptr<Database> db_;
  std::mutex mutex_;
};

}  // namespace

std::int64_t exigent_cover_ms(const std::vector<Authorization>& authorizations,
                              std::int64_t now_ms) {
  std::int64_t window_start = now_ms - kExigentWindowMs;
  for (const Authorization& a : authorizations) {
    if (a.basis == "warrant" || a.basis == "court-order") {
      window_start = std::max(window_start, std::min(a.recorded_at_ms, now_ms));
    }
  }
  std::vector<std::pair<std::int64_t, std::int64_t>> spans;
  for (const Authorization& a : authorizations) {
    if (a.basis != "exigent" || a.valid_until_ms <= window_start) continue;
    spans.emplace_back(std::max(a.valid_from_ms, window_start), a.valid_until_ms);
  }
  std::sort(spans.begin(), spans.end());
  std::int64_t covered = 0;
  std::int64_t reached = window_start;  // the end of what is counted so far
  for (const auto& [from, until] : spans) {
    const std::int64_t start = std::max(from, reached);
    if (until > start) covered += until - start;
    reached = std::max(reached, until);
  }
  return covered;
}

std::unique_ptr<GalleryStore> open_gallery_store(const StoreLocation& where) {
  return std::make_unique<SqlGalleryStore>(where);
}

}  // namespace frs
