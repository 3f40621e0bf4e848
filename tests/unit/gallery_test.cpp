#include "frs/gallery/gallery.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "frs/core/error.h"
#include "frs/core/text_fields.h"
#include "synthetic.h"
#include "testdata.h"

namespace frs {
namespace {

using testing::axis;

StoredFace face_at(std::size_t dim, float value = 1.0f) {
  StoredFace f;
  f.descriptor = axis(dim, value);
  f.image_sha256 = "sha-" + std::to_string(dim) + "-" + std::to_string(value);
  f.quality = 1.0f;
  return f;
}

class GalleryTest : public ::testing::Test {
 protected:
  // Nearest-face scoring unless told otherwise: most tests here are about the index.
  std::unique_ptr<Gallery> open(const std::string& factory = "Flat",
                                IdentityScore score = IdentityScore::kNearestFace) {
    GalleryOptions o;
    o.snapshot_dir = dir_ / "index";
    o.index.factory = factory;
    o.identity_score = score;
    return std::make_unique<Gallery>(open_sqlite_store(dir_ / "gallery.db"), o);
  }

  // "wanted": A (faces on axes 0 and 1), B (axis 2), C (axis 3); threshold 0.5.
  static void enroll_abc(Gallery& g) {
    Watchlist w;
    w.name = "wanted";
    w.max_distance = 0.5f;
    const Watchlist created = g.create_watchlist(w);
    auto person = [&](const std::string& id, std::vector<StoredFace> faces) {
      Identity i;
      i.watchlist_id = created.id;
      i.external_id = id;
      i.display_name = "Person " + id;
      return g.enroll(i, faces);
    };
    person("A", {face_at(0), face_at(1)});
    person("B", {face_at(2)});
    person("C", {face_at(3)});
  }

  testing::ScopedTempDir dir_{"gallery"};
};

TEST_F(GalleryTest, SearchNamesEachIdentityOnceNearestFirst) {
  auto g = open();
  enroll_abc(*g);
  // 0.1 from A's first face, 0.1 + sqrt(2)-ish from everything else.
  const auto results = g->search(std::vector<Embedding>{axis(0, 0.9f)}, {}, 3, 2.0f);
  ASSERT_EQ(results.size(), 1u);
  ASSERT_EQ(results[0].size(), 3u);
  EXPECT_EQ(results[0][0].external_id, "A");
  EXPECT_EQ(results[0][0].watchlist, "wanted");
  EXPECT_NEAR(results[0][0].distance, 0.1f, 1e-4f);
  EXPECT_NE(results[0][1].external_id, "A");  // A's second face does not count again
  EXPECT_NE(results[0][2].external_id, "A");
}

TEST_F(GalleryTest, CentroidScoringUsesTheMeanOfAnIdentitysFacesAndFollowsChanges) {
  auto g = open("Flat", IdentityScore::kCentroid);
  enroll_abc(*g);  // A's faces on axes 0 and 1: its centroid is (0.5, 0.5)
  Embedding between{};
  between[0] = 0.55f;
  between[1] = 0.45f;
  // Its faces are 0.636 and 0.778 away (over 0.5), its centroid 0.071.
  auto found = g->search(std::vector<Embedding>{between}, {}, 3, 0.5f)[0];
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].external_id, "A");
  EXPECT_NEAR(found[0].distance, std::sqrt(0.05f * 0.05f * 2), 1e-4f);
  // Near one face but 0.640 from the centroid: no match at 0.5, a match at 0.640 at 2.0.
  EXPECT_TRUE(g->search(std::vector<Embedding>{axis(0, 0.9f)}, {}, 3, 0.5f)[0].empty());
  found = g->search(std::vector<Embedding>{axis(0, 0.9f)}, {}, 3, 2.0f)[0];
  ASSERT_FALSE(found.empty());
  EXPECT_NEAR(found[0].distance, std::sqrt(0.4f * 0.4f + 0.5f * 0.5f), 1e-4f);
  // A third face moves the centroid to (1/3, 1/3, 0, 0, 0, 1/3).
  g->add_faces(found[0].identity_id, {face_at(5)});
  found = g->search(std::vector<Embedding>{between}, {}, 3, 0.5f)[0];
  ASSERT_EQ(found.size(), 1u);
  const float third = 1.0f / 3;
  EXPECT_NEAR(found[0].distance,
              std::sqrt((0.55f - third) * (0.55f - third) + (0.45f - third) * (0.45f - third) +
                        third * third),
              1e-4f);
}

TEST_F(GalleryTest, WatchlistThresholdAppliesUnlessTheCallerIsStricter) {
  auto g = open();
  enroll_abc(*g);
  // 0.6 from B: over the watchlist's 0.5.
  EXPECT_TRUE(
      g->search(std::vector<Embedding>{axis(2, 0.4f)}, {"wanted"}, 5, std::nullopt)[0].empty());
  EXPECT_EQ(g->search(std::vector<Embedding>{axis(2, 0.6f)}, {"wanted"}, 5, std::nullopt)[0].size(),
            1u);
  EXPECT_TRUE(g->search(std::vector<Embedding>{axis(2, 0.6f)}, {"wanted"}, 5, 0.3f)[0].empty());
}

TEST_F(GalleryTest, RemovedIdentitiesAreNotFound) {
  auto g = open();
  enroll_abc(*g);
  const auto b = g->store().find_identity(g->store().find_watchlist("wanted")->id, "B");
  g->remove_identity(b->id);
  EXPECT_TRUE(g->search(std::vector<Embedding>{axis(2)}, {}, 5, 0.5f)[0].empty());
  EXPECT_EQ(g->indexed_faces(b->watchlist_id), 3u);
}

TEST_F(GalleryTest, RestartLoadsTheSnapshotAndReplaysNewerChanges) {
  std::int64_t watchlist_id = 0;
  {
    auto g = open();
    enroll_abc(*g);
    g->save_snapshots();
    watchlist_id = g->store().find_watchlist("wanted")->id;
    Identity d;
    d.watchlist_id = watchlist_id;
    d.external_id = "D";
    g->enroll(d, {face_at(4)});  // after the snapshot
  }
  auto g = open();
  EXPECT_EQ(g->load_report().at(watchlist_id), "snapshot");
  EXPECT_EQ(g->indexed_faces(watchlist_id),
            static_cast<std::size_t>(g->store().face_count(watchlist_id)));
  EXPECT_EQ(g->search(std::vector<Embedding>{axis(4)}, {}, 1, 0.5f)[0].at(0).external_id, "D");
  EXPECT_EQ(g->search(std::vector<Embedding>{axis(3)}, {}, 1, 0.5f)[0].at(0).external_id, "C");
}

TEST_F(GalleryTest, RebuildsFromTheStoreWhenTheSnapshotIsDamagedOrOfAnotherType) {
  std::int64_t watchlist_id = 0;
  {
    auto g = open();
    enroll_abc(*g);
    g->save_snapshots();
    watchlist_id = g->store().find_watchlist("wanted")->id;
  }
  {
    auto g = open("HNSW32");
    EXPECT_NE(g->load_report().at(watchlist_id).find("'Flat'"), std::string::npos)
        << g->load_report().at(watchlist_id);
    EXPECT_EQ(g->indexed_faces(watchlist_id), 4u);
  }
  const auto file = dir_ / "index" / ("watchlist-" + std::to_string(watchlist_id) + ".index");
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(40);
  f.put('\x00');
  f.put('\x13');
  f.close();
  auto g = open();
  EXPECT_NE(g->load_report().at(watchlist_id).find("rebuilt"), std::string::npos);
  EXPECT_EQ(g->search(std::vector<Embedding>{axis(2)}, {}, 1, 0.5f)[0].at(0).external_id, "B");
}

TEST_F(GalleryTest, AWatchlistTooSmallToTrainSearchesExactlyUntilItGrows) {
  // IVF4,Flat needs 39 faces per list to train: 156.
  auto g = open("IVF4,Flat");
  enroll_abc(*g);
  const std::int64_t watchlist_id = g->store().find_watchlist("wanted")->id;
  EXPECT_EQ(g->search(std::vector<Embedding>{axis(3)}, {}, 1, 0.5f)[0].at(0).external_id, "C");
  EXPECT_EQ(g->load_report().count(watchlist_id), 0u);  // exact fallback, not yet rebuilt
  std::vector<StoredFace> crowd;
  for (int i = 0; i < 160; ++i) {
    // Points on a circle in dimensions 10 and 11, far from A, B and C.
    const double angle = i * 0.0392;
    StoredFace f = face_at(10, static_cast<float>(std::cos(angle)));
    f.descriptor[11] = static_cast<float>(std::sin(angle));
    f.image_sha256 = "crowd-" + std::to_string(i);
    crowd.push_back(f);
  }
  Identity many;
  many.watchlist_id = watchlist_id;
  many.external_id = "crowd";
  g->enroll(many, crowd);
  EXPECT_EQ(g->load_report().at(watchlist_id), "rebuilt as IVF4,Flat: grown to training size");
  EXPECT_EQ(g->indexed_faces(watchlist_id), 164u);
  EXPECT_EQ(g->search(std::vector<Embedding>{axis(3)}, {}, 1, 0.5f)[0].at(0).external_id, "C");
  EXPECT_EQ(g->search(std::vector<Embedding>{axis(10)}, {}, 1, 0.5f)[0].at(0).external_id, "crowd");
}

TEST_F(GalleryTest, BadSearchesAndDeletedWatchlists) {
  auto g = open();
  enroll_abc(*g);
  const std::vector<Embedding> q = {axis(0)};
  EXPECT_THROW(g->search(q, {"nope"}, 1, std::nullopt), Error);
  EXPECT_THROW(g->search(q, {}, 0, std::nullopt), Error);
  EXPECT_THROW(g->search(q, {}, 1, 0.0f), Error);
  g->delete_watchlist("wanted");
  EXPECT_TRUE(g->search(q, {}, 1, 4.0f)[0].empty());
  EXPECT_THROW(g->delete_watchlist("wanted"), Error);
}

// A NaN among a query's values made every distance NaN, and NaN passed the threshold tests
// (HNSW32 returned every identity). Non-finite descriptors are refused wherever they enter.
TEST_F(GalleryTest, NonFiniteDescriptorsAreRefusedEverywhereTheyEnter) {
  for (const std::string factory : {"Flat", "HNSW32"}) {
    std::filesystem::remove_all(dir_.path());
    std::filesystem::create_directories(dir_.path());
    auto g = open(factory);
    enroll_abc(*g);
    for (const float bad : {std::nanf(""), INFINITY, -INFINITY}) {
      Embedding q = axis(0);
      q[5] = bad;
      try {
        g->search(std::vector<Embedding>{q}, {}, 3, 4.0f);
        ADD_FAILURE() << factory << ": a query with " << bad << " was searched";
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
        EXPECT_NE(std::string(e.what()).find("position 5"), std::string::npos) << e.what();
      }
      StoredFace f = face_at(4);
      f.descriptor[7] = bad;
      Identity i;
      i.watchlist_id = g->store().find_watchlist("wanted")->id;
      i.external_id = "poisoned";
      EXPECT_THROW(g->enroll(i, {f}), Error);
    }
    EXPECT_EQ(g->store().identity_count(g->store().find_watchlist("wanted")->id), 3);
    EXPECT_EQ(g->search(std::vector<Embedding>{axis(0)}, {}, 3, 0.5f)[0].size(), 1u);
  }
}

TEST_F(GalleryTest, AWatchlistNamedTwiceIsSearchedOnceAndNamesAreBounded) {
  auto g = open();
  enroll_abc(*g);
  const std::vector<Embedding> q = {axis(0, 0.9f)};
  const auto once = g->search(q, {"wanted"}, 3, 4.0f)[0];
  const auto twice = g->search(q, {"wanted", "wanted", "wanted"}, 3, 4.0f)[0];
  ASSERT_EQ(once.size(), 3u);
  ASSERT_EQ(twice.size(), 3u);
  for (std::size_t i = 0; i < once.size(); ++i) {
    EXPECT_EQ(twice[i].identity_id, once[i].identity_id);
  }
  const std::vector<std::string> many(fields::kMaxNamesPerList + 1, "wanted");
  EXPECT_THROW(g->search(q, many, 3, 4.0f), Error);
  // A missing name is reported, not fatal, when the caller asks for that (cameras).
  std::vector<std::string> missing;
  EXPECT_EQ(g->search(q, {"wanted", "gone"}, 3, 4.0f, &missing)[0].size(), 3u);
  EXPECT_EQ(missing, std::vector<std::string>{"gone"});
}

}  // namespace
}  // namespace frs
