#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "error_code.h"
#include "frs/core/error.h"
#include "frs/gallery/store.h"
#include "test_postgres.h"
#include "testdata.h"

namespace frs {
namespace {

using testing::Backend;
using testing::code_of;

class StoreFixture : public ::testing::Test {
 protected:
  explicit StoreFixture(Backend backend) : stores_(backend) {}
  void SetUp() override { store_ = open_gallery_store(location()); }
  void TearDown() override { store_.reset(); }
  StoreLocation location() const { return stores_.at("gallery.db"); }
  std::filesystem::path file() const { return stores_.dir() / "gallery.db"; }  // SQLite's

  static StoredFace face(float value, const std::string& sha = "") {
    StoredFace f;
    f.descriptor.assign(128, 0.0f);
    f.descriptor[0] = value;
    f.descriptor[127] = -value;
    f.image_sha256 = sha.empty() ? "sha-" + std::to_string(value) : sha;
    f.thumbnail = {0xFF, 0xD8, 0xFF};
    f.quality = 0.75f;
    return f;
  }

  Watchlist make_watchlist(const std::string& name) {
    Watchlist w;
    w.name = name;
    w.description = "test";
    w.max_distance = 0.45f;
    w.created_by = "tester";
    return store_->create_watchlist(w);
  }

  testing::TestStores stores_;
  std::unique_ptr<GalleryStore> store_;
};

// Every test of the store's behaviour runs on both databases.
class GalleryStoreTest : public StoreFixture, public ::testing::WithParamInterface<Backend> {
 protected:
  GalleryStoreTest() : StoreFixture(GetParam()) {}
};
INSTANTIATE_TEST_SUITE_P(Backends, GalleryStoreTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         testing::backend_name);

// SQLite's own history: files written by earlier versions of frs.
class SqliteGalleryStoreTest : public StoreFixture {
 protected:
  SqliteGalleryStoreTest() : StoreFixture(Backend::kSqlite) {}
};

TEST_P(GalleryStoreTest, CreatesListsUpdatesAndDeletesWatchlists) {
  const Watchlist a = make_watchlist("wanted");
  make_watchlist("missing-persons");
  EXPECT_GT(a.id, 0);
  EXPECT_GT(a.created_at_ms, 0);
  const auto all = store_->list_watchlists();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "missing-persons");  // ordered by name
  EXPECT_EQ(store_->find_watchlist("wanted")->max_distance, 0.45f);
  EXPECT_EQ(store_->find_watchlist("wanted")->created_by, "tester");

  store_->set_max_distance("wanted", 0.4f, R"({"method":"manual"})");
  EXPECT_FLOAT_EQ(store_->get_watchlist(a.id)->max_distance, 0.4f);
  EXPECT_EQ(store_->get_watchlist(a.id)->threshold_basis, R"({"method":"manual"})");

  store_->delete_watchlist("wanted");
  EXPECT_FALSE(store_->find_watchlist("wanted"));
  EXPECT_EQ(code_of([&] { store_->delete_watchlist("wanted"); }), ErrorCode::kNotFound);
}

TEST_P(GalleryStoreTest, RejectsBadWatchlistsWithoutChangingTheStore) {
  make_watchlist("wanted");
  EXPECT_EQ(code_of([&] { make_watchlist("wanted"); }), ErrorCode::kAlreadyExists);
  EXPECT_EQ(code_of([&] { make_watchlist(""); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of([&] { store_->set_max_distance("wanted", 0.0f, ""); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of([&] { store_->set_max_distance("nope", 0.3f, ""); }), ErrorCode::kNotFound);
  EXPECT_EQ(store_->list_watchlists().size(), 1u);
  EXPECT_FLOAT_EQ(store_->find_watchlist("wanted")->max_distance, 0.45f);
}

TEST_P(GalleryStoreTest, EnrollsAnIdentityWithAllItsFacesAndLogsTheChanges) {
  const Watchlist w = make_watchlist("wanted");
  Identity person;
  person.watchlist_id = w.id;
  person.external_id = "B-1001";
  person.display_name = "Jane Doe";
  StoredFace overridden = face(3);
  overridden.gate_override = "blurred: sharpness 4.1, need 6.0; overridden: only photo on file";
  const Identity stored = store_->enroll(person, {face(1), face(2), overridden});
  EXPECT_EQ(stored.face_count, 3);

  const auto faces = store_->faces_of_identity(stored.id);
  ASSERT_EQ(faces.size(), 3u);
  EXPECT_EQ(faces[1].descriptor[0], 2.0f);
  EXPECT_EQ(faces[1].descriptor[127], -2.0f);
  EXPECT_EQ(faces[1].thumbnail, (std::vector<std::uint8_t>{0xFF, 0xD8, 0xFF}));
  EXPECT_EQ(faces[1].gate_override, "");
  EXPECT_EQ(faces[2].gate_override, overridden.gate_override);
  EXPECT_TRUE(store_->has_photo(stored.id, "sha-2.000000"));
  EXPECT_FALSE(store_->has_photo(stored.id, "other"));

  const auto changes = store_->changes_after(0);
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_TRUE(changes[2].added);
  EXPECT_EQ(changes[2].face_id, faces[2].id);
  EXPECT_EQ(changes[2].descriptor[0], 3.0f);
  EXPECT_EQ(store_->last_change(), changes[2].sequence);
  EXPECT_EQ(store_->face_count(w.id), 3);
  EXPECT_EQ(store_->identity_count(w.id), 1);
  EXPECT_EQ(store_->find_identity(w.id, "B-1001")->display_name, "Jane Doe");
}

TEST_P(GalleryStoreTest, AFailedEnrollmentLeavesNothingBehind) {
  const Watchlist w = make_watchlist("wanted");
  Identity person;
  person.watchlist_id = w.id;
  person.external_id = "B-1";
  store_->enroll(person, {face(1)});
  const auto before = store_->last_change();

  EXPECT_EQ(code_of([&] {
              store_->enroll(person, {face(2), face(3)});
            }),
            ErrorCode::kAlreadyExists);
  person.external_id = "";
  EXPECT_EQ(code_of([&] { store_->enroll(person, {face(4)}); }), ErrorCode::kInvalidArgument);
  person.external_id = "B-2";
  person.watchlist_id = 999;
  EXPECT_EQ(code_of([&] { store_->enroll(person, {face(5)}); }), ErrorCode::kNotFound);

  EXPECT_EQ(store_->face_count(w.id), 1);
  EXPECT_EQ(store_->last_change(), before);
  EXPECT_EQ(store_->list_identities(w.id, 0, 100).size(), 1u);
}

TEST_P(GalleryStoreTest, RemovingAnIdentityRemovesItsFacesAndLogsRemovals) {
  const Watchlist w = make_watchlist("wanted");
  Identity person;
  person.watchlist_id = w.id;
  person.external_id = "B-1";
  const Identity stored = store_->enroll(person, {face(1), face(2)});
  const auto after_enroll = store_->last_change();
  store_->remove_identity(stored.id);
  EXPECT_FALSE(store_->get_identity(stored.id));
  EXPECT_EQ(store_->face_count(w.id), 0);
  const auto changes = store_->changes_after(after_enroll);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_FALSE(changes[0].added);
  // Replaying from the start: the additions of faces that are gone are left out.
  for (const FaceChange& c : store_->changes_after(0)) EXPECT_FALSE(c.added);
  EXPECT_EQ(code_of([&] { store_->remove_identity(stored.id); }), ErrorCode::kNotFound);
}

TEST_P(GalleryStoreTest, ListsIdentitiesInPages) {
  const Watchlist w = make_watchlist("wanted");
  for (int i = 0; i < 5; ++i) {
    Identity person;
    person.watchlist_id = w.id;
    person.external_id = "B-" + std::to_string(i);
    store_->enroll(person, {face(static_cast<float>(i))});
  }
  const auto first = store_->list_identities(w.id, 0, 2);
  ASSERT_EQ(first.size(), 2u);
  const auto second = store_->list_identities(w.id, first.back().id, 2);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_GT(second.front().id, first.back().id);
  EXPECT_EQ(store_->list_identities(w.id, second.back().id, 2).size(), 1u);
  EXPECT_EQ(first[0].face_count, 1);
}

TEST_P(GalleryStoreTest, SurvivesReopening) {
  const Watchlist w = make_watchlist("wanted");
  Identity person;
  person.watchlist_id = w.id;
  person.external_id = "B-1";
  store_->enroll(person, {face(1), face(2)});
  store_.reset();
  store_ = open_gallery_store(location());
  EXPECT_EQ(store_->face_count(store_->find_watchlist("wanted")->id), 2);
  EXPECT_EQ(store_->last_change(), 2u);
}

TEST_P(GalleryStoreTest, RefusesAStoreFromANewerVersion) {
  store_.reset();
  if (GetParam() == Backend::kSqlite) {
    sqlite3* db = nullptr;
    sqlite3_open(file().c_str(), &db);
    sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  } else {
    testing::run_psql(location().postgres_url,
                      "UPDATE frs_schema SET version = 99 WHERE store = 'gallery'");
  }
  try {
    open_gallery_store(location());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(std::string(e.what()).find("upgrade frs"), std::string::npos);
  }
}

TEST_F(SqliteGalleryStoreTest, AVersion1StoreIsMigratedAndKeepsItsWatchlistsAndFaces) {
  store_.reset();
  std::filesystem::remove(file());
  sqlite3* db = nullptr;
  sqlite3_open(file().c_str(), &db);
  // The version 1 watchlists table, with one watchlist in it.
  sqlite3_exec(db,
               "CREATE TABLE watchlists (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
               "description TEXT NOT NULL DEFAULT '', max_distance REAL NOT NULL, created_by "
               "TEXT NOT NULL DEFAULT '', created_at_ms INTEGER NOT NULL);"
               "INSERT INTO watchlists(name, max_distance, created_at_ms) VALUES ('old', 0.55, 1);"
               "CREATE TABLE faces (id INTEGER PRIMARY KEY AUTOINCREMENT, identity_id INTEGER "
               "NOT NULL, watchlist_id INTEGER NOT NULL, descriptor BLOB NOT NULL, image_sha256 "
               "TEXT NOT NULL, thumbnail BLOB, quality REAL NOT NULL, enrolled_at_ms INTEGER NOT "
               "NULL);"
               "INSERT INTO faces(identity_id, watchlist_id, descriptor, image_sha256, quality, "
               "enrolled_at_ms) VALUES (1, 1, zeroblob(512), 'sha', 0.5, 1);"
               "CREATE TABLE identities (id INTEGER PRIMARY KEY AUTOINCREMENT, watchlist_id "
               "INTEGER NOT NULL REFERENCES watchlists(id) ON DELETE CASCADE, external_id TEXT "
               "NOT NULL, display_name TEXT NOT NULL DEFAULT '', notes TEXT NOT NULL DEFAULT '', "
               "created_at_ms INTEGER NOT NULL, UNIQUE (watchlist_id, external_id));"
               "INSERT INTO identities(watchlist_id, external_id, created_at_ms) "
               "VALUES (1, 'x', 1);"
               "CREATE TABLE face_changes (sequence INTEGER PRIMARY KEY AUTOINCREMENT, "
               "watchlist_id INTEGER NOT NULL, face_id INTEGER NOT NULL, added INTEGER NOT NULL);"
               // Watchlist 7 was deleted back then: only the change log remembers it.
               "INSERT INTO face_changes(watchlist_id, face_id, added) VALUES (7, 9, 0);"
               "PRAGMA user_version = 1;",
               nullptr, nullptr, nullptr);
  sqlite3_close(db);
  store_ = open_gallery_store(location());
  const auto old = store_->find_watchlist("old");
  ASSERT_TRUE(old.has_value());
  EXPECT_FLOAT_EQ(old->max_distance, 0.55f);
  EXPECT_EQ(old->threshold_basis, "");  // not recorded back then
  EXPECT_EQ(store_->face_count(old->id), 1);
  store_->set_max_distance("old", 0.5f, R"({"method":"manual"})");
  EXPECT_EQ(store_->find_watchlist("old")->threshold_basis, R"({"method":"manual"})");
  // The rebuilt watchlists table kept its identities (no cascade) and never reuses an id
  // the store still mentions.
  EXPECT_EQ(store_->identity_count(old->id), 1);
  EXPECT_GT(make_watchlist("new").id, 7);
  // Schema 7: everything from before is dlib-resnet-v1's, with no source region kept.
  EXPECT_EQ(old->descriptor_model, "dlib-resnet-v1");
  const auto faces = store_->faces_of_watchlist(old->id);
  ASSERT_EQ(faces.size(), 1u);
  EXPECT_EQ(faces[0].descriptor_model, "dlib-resnet-v1");
  EXPECT_TRUE(faces[0].source_region.empty());
  EXPECT_TRUE(faces[0].source_landmarks.empty());
  EXPECT_EQ(store_->reembed_progress(old->id).target_model, "");
}

TEST_P(GalleryStoreTest, KeepsEachFacesModelSourceRegionAndLandmarks) {
  const Watchlist w = make_watchlist("wanted");
  Identity person;
  person.watchlist_id = w.id;
  person.external_id = "B-1";
  StoredFace kept = face(1);
  kept.source_region = {0xFF, 0xD8, 0x01, 0x02};
  for (int i = 0; i < 136; ++i) kept.source_landmarks.push_back(0.5f * static_cast<float>(i));
  store_->enroll(person, {kept});
  store_.reset();
  store_ = open_gallery_store(location());
  const auto faces = store_->faces_of_watchlist(w.id);
  ASSERT_EQ(faces.size(), 1u);
  EXPECT_EQ(faces[0].source_region, kept.source_region);
  EXPECT_EQ(faces[0].source_landmarks, kept.source_landmarks);
  EXPECT_EQ(faces[0].descriptor_model, "dlib-resnet-v1");
  // Landmarks are all 68 points or none; a model is a known one.
  StoredFace torn = face(2);
  torn.source_landmarks = {1.0f, 2.0f, 3.0f};
  EXPECT_EQ(code_of([&] { store_->add_faces(faces[0].identity_id, {torn}); }),
            ErrorCode::kInvalidArgument);
  Watchlist unknown;
  unknown.name = "unknown-model";
  unknown.descriptor_model = "dlib-resnet-v9";
  EXPECT_EQ(code_of([&] { store_->create_watchlist(unknown); }), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(store_->find_watchlist("unknown-model"));
  EXPECT_EQ(store_->face_count(w.id), 1);
}

TEST_P(GalleryStoreTest, IdsAreNeverReusedAndAWriteToADeletedWatchlistFails) {
  const Watchlist victim = make_watchlist("victim");
  Identity first;
  first.watchlist_id = victim.id;
  first.external_id = "a";
  const Identity a = store_->enroll(first, {face(0.1f)});
  const std::int64_t face_id = store_->faces_of_identity(a.id).at(0).id;
  store_->delete_watchlist("victim");
  // Before schema 4 the next watchlist took the deleted one's id, and an enrollment that
  // had resolved "victim" landed in it.
  const Watchlist other = make_watchlist("other");
  EXPECT_NE(other.id, victim.id);
  Identity late;
  late.watchlist_id = victim.id;
  late.external_id = "b";
  EXPECT_EQ(code_of([&] { store_->enroll(late, {face(0.2f)}); }), ErrorCode::kNotFound);
  EXPECT_EQ(store_->identity_count(other.id), 0);
  // Identities and faces do not reuse ids either, even across a reopen.
  store_.reset();
  store_ = open_gallery_store(location());
  Identity again;
  again.watchlist_id = other.id;
  again.external_id = "a";
  const Identity b = store_->enroll(again, {face(0.1f)});
  EXPECT_GT(b.id, a.id);
  EXPECT_GT(store_->faces_of_identity(b.id).at(0).id, face_id);
  store_->delete_watchlist("other");
  store_.reset();
  store_ = open_gallery_store(location());
  EXPECT_GT(make_watchlist("third").id, other.id);
}

TEST_P(GalleryStoreTest, KillNineDuringEnrollmentsLeavesWholeEnrollmentsOnly) {
  const Watchlist w = make_watchlist("wanted");
  store_.reset();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Enroll identities of exactly 5 faces each, as fast as possible, until killed.
    auto store = open_gallery_store(location());
    for (int i = 0;; ++i) {
      Identity person;
      person.watchlist_id = w.id;
      person.external_id = "B-" + std::to_string(i);
      store->enroll(person, {face(1), face(2), face(3), face(4), face(5)});
    }
  }
  // Killed mid-run once a few enrollments are in, however long the child took to start.
  {
    auto watcher = open_gallery_store(location());
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (watcher->face_count(w.id) < 50 && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);

  store_ = open_gallery_store(location());
  const auto identities = store_->list_identities(w.id, 0, 1000000);
  ASSERT_GT(identities.size(), 0u) << "the child enrolled nothing before it was killed";
  for (const Identity& i : identities) EXPECT_EQ(i.face_count, 5) << i.external_id;
  EXPECT_EQ(store_->face_count(w.id), static_cast<std::int64_t>(5 * identities.size()));
  EXPECT_EQ(store_->changes_after(0).size(), 5 * identities.size());
}

// Exigent authorisations: at most the cap in any 7 days, overlaps counted once, and the
// window starts again when a warrant or court order is recorded.
TEST(ExigentCover, CountsAWatchlistsExigentTimeOverTheLastSevenDaysOnce) {
  constexpr std::int64_t kHour = 3'600'000;
  constexpr std::int64_t kNow = 1'900'000'000'000;
  const auto authorization = [](const char* basis, std::int64_t from, std::int64_t until) {
    Authorization a;
    a.basis = basis;
    a.valid_from_ms = from;
    a.valid_until_ms = until;
    a.recorded_at_ms = from;
    return a;
  };
  EXPECT_EQ(exigent_cover_ms({}, kNow), 0);
  // 47 h recorded two days ago, and a new 47 h from now: 94 h in the window.
  std::vector<Authorization> a = {authorization("exigent", kNow - 48 * kHour, kNow - kHour)};
  EXPECT_EQ(exigent_cover_ms(a, kNow), 47 * kHour);
  a.push_back(authorization("exigent", kNow, kNow + 47 * kHour));
  EXPECT_EQ(exigent_cover_ms(a, kNow), 94 * kHour);
  // Overlapping ones count once.
  a.push_back(authorization("exigent", kNow, kNow + 24 * kHour));
  EXPECT_EQ(exigent_cover_ms(a, kNow), 94 * kHour);
  // Eight days ago is outside the window; one that began before it counts from its start.
  EXPECT_EQ(exigent_cover_ms(
                {authorization("exigent", kNow - 9 * 24 * kHour, kNow - 8 * 24 * kHour)}, kNow),
            0);
  EXPECT_EQ(exigent_cover_ms({authorization("exigent", kNow - 7 * 24 * kHour - 5 * kHour,
                                            kNow - 7 * 24 * kHour + 5 * kHour)},
                             kNow),
            5 * kHour);
  // A warrant recorded an hour ago: only what exigent time lies after it counts.
  a.push_back(authorization("warrant", kNow - kHour, kNow + 90 * 24 * kHour));
  EXPECT_EQ(exigent_cover_ms(a, kNow), 47 * kHour);
  // Other bases never count.
  EXPECT_EQ(exigent_cover_ms({authorization("policy", kNow - kHour, kNow + kHour),
                              authorization("consent", kNow, kNow + kHour)},
                             kNow),
            0);
}

}  // namespace
}  // namespace frs
