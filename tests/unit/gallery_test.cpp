#include "frs/gallery/gallery.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>

#include "error_code.h"
#include "frs/core/error.h"
#include "frs/core/text_fields.h"
#include "synthetic.h"
#include "test_postgres.h"
#include "testdata.h"

namespace frs {
namespace {

using testing::axis;
using testing::code_of;

StoredFace face_at(std::size_t dim, float value = 1.0f) {
  StoredFace f;
  f.descriptor = axis(dim, value);
  f.image_sha256 = "sha-" + std::to_string(dim) + "-" + std::to_string(value);
  f.quality = 1.0f;
  return f;
}

using testing::Backend;

// Every gallery test runs on both databases.
class GalleryTest : public ::testing::TestWithParam<Backend> {
 protected:
  // Nearest-face scoring unless told otherwise: most tests here are about the index.
  std::unique_ptr<Gallery> open(const std::string& factory = "Flat",
                                IdentityScore score = IdentityScore::kNearestFace) {
    GalleryOptions o;
    o.snapshot_dir = snapshot_dir();
    o.index.factory = factory;
    o.identity_score = score;
    return std::make_unique<Gallery>(open_gallery_store(stores_->at("gallery.db")), o);
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

  std::filesystem::path snapshot_dir() const { return stores_->dir() / "index"; }
  // Empty stores again, in place of the test's.
  void start_afresh() { stores_ = std::make_unique<testing::TestStores>(GetParam()); }

  std::unique_ptr<testing::TestStores> stores_ = std::make_unique<testing::TestStores>(GetParam());
};
INSTANTIATE_TEST_SUITE_P(Backends, GalleryTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         testing::backend_name);

TEST_P(GalleryTest, SearchNamesEachIdentityOnceNearestFirst) {
  auto g = open();
  enroll_abc(*g);
  // 0.1 from A's first face, 0.1 + sqrt(2)-ish from everything else.
  const auto results =
      g->search(std::vector<Embedding>{axis(0, 0.9f)}, kDlibDescriptorId, {}, 3, 2.0f);
  ASSERT_EQ(results.size(), 1u);
  ASSERT_EQ(results[0].size(), 3u);
  EXPECT_EQ(results[0][0].external_id, "A");
  EXPECT_EQ(results[0][0].watchlist, "wanted");
  EXPECT_NEAR(results[0][0].distance, 0.1f, 1e-4f);
  EXPECT_NE(results[0][1].external_id, "A");  // A's second face does not count again
  EXPECT_NE(results[0][2].external_id, "A");
}

TEST_P(GalleryTest, CentroidScoringUsesTheMeanOfAnIdentitysFacesAndFollowsChanges) {
  auto g = open("Flat", IdentityScore::kCentroid);
  enroll_abc(*g);  // A's faces on axes 0 and 1: its centroid is (0.5, 0.5)
  Embedding between(testing::kSyntheticDimension, 0.0f);
  between[0] = 0.55f;
  between[1] = 0.45f;
  // Its faces are 0.636 and 0.778 away (over 0.5), its centroid 0.071.
  auto found = g->search(std::vector<Embedding>{between}, kDlibDescriptorId, {}, 3, 0.5f)[0];
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].external_id, "A");
  EXPECT_NEAR(found[0].distance, std::sqrt(0.05f * 0.05f * 2), 1e-4f);
  // Near one face but 0.640 from the centroid: no match at 0.5, a match at 0.640 at 2.0.
  EXPECT_TRUE(
      g->search(std::vector<Embedding>{axis(0, 0.9f)}, kDlibDescriptorId, {}, 3, 0.5f)[0].empty());
  found = g->search(std::vector<Embedding>{axis(0, 0.9f)}, kDlibDescriptorId, {}, 3, 2.0f)[0];
  ASSERT_FALSE(found.empty());
  EXPECT_NEAR(found[0].distance, std::sqrt(0.4f * 0.4f + 0.5f * 0.5f), 1e-4f);
  // A third face moves the centroid to (1/3, 1/3, 0, 0, 0, 1/3).
  g->add_faces(found[0].identity_id, {face_at(5)});
  found = g->search(std::vector<Embedding>{between}, kDlibDescriptorId, {}, 3, 0.5f)[0];
  ASSERT_EQ(found.size(), 1u);
  const float third = 1.0f / 3;
  EXPECT_NEAR(found[0].distance,
              std::sqrt((0.55f - third) * (0.55f - third) + (0.45f - third) * (0.45f - third) +
                        third * third),
              1e-4f);
}

TEST_P(GalleryTest, WatchlistThresholdAppliesUnlessTheCallerIsStricter) {
  auto g = open();
  enroll_abc(*g);
  // 0.6 from B: over the watchlist's 0.5.
  EXPECT_TRUE(g->search(std::vector<Embedding>{axis(2, 0.4f)}, kDlibDescriptorId, {"wanted"}, 5,
                        std::nullopt)[0]
                  .empty());
  EXPECT_EQ(g->search(std::vector<Embedding>{axis(2, 0.6f)}, kDlibDescriptorId, {"wanted"}, 5,
                      std::nullopt)[0]
                .size(),
            1u);
  EXPECT_TRUE(
      g->search(std::vector<Embedding>{axis(2, 0.6f)}, kDlibDescriptorId, {"wanted"}, 5, 0.3f)[0]
          .empty());
}

TEST_P(GalleryTest, RemovedIdentitiesAreNotFound) {
  auto g = open();
  enroll_abc(*g);
  const auto b = g->store().find_identity(g->store().find_watchlist("wanted")->id, "B");
  g->remove_identity(b->id);
  EXPECT_TRUE(
      g->search(std::vector<Embedding>{axis(2)}, kDlibDescriptorId, {}, 5, 0.5f)[0].empty());
  EXPECT_EQ(g->indexed_faces(b->watchlist_id), 3u);
}

TEST_P(GalleryTest, RestartLoadsTheSnapshotAndReplaysNewerChanges) {
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
  EXPECT_EQ(g->search(std::vector<Embedding>{axis(4)}, kDlibDescriptorId, {}, 1, 0.5f)[0]
                .at(0)
                .external_id,
            "D");
  EXPECT_EQ(g->search(std::vector<Embedding>{axis(3)}, kDlibDescriptorId, {}, 1, 0.5f)[0]
                .at(0)
                .external_id,
            "C");
}

TEST_P(GalleryTest, RebuildsFromTheStoreWhenTheSnapshotIsDamagedOrOfAnotherType) {
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
  const auto file = snapshot_dir() / ("watchlist-" + std::to_string(watchlist_id) + ".index");
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(40);
  f.put('\x00');
  f.put('\x13');
  f.close();
  auto g = open();
  EXPECT_NE(g->load_report().at(watchlist_id).find("rebuilt"), std::string::npos);
  EXPECT_EQ(g->search(std::vector<Embedding>{axis(2)}, kDlibDescriptorId, {}, 1, 0.5f)[0]
                .at(0)
                .external_id,
            "B");
}

TEST_P(GalleryTest, AWatchlistTooSmallToTrainSearchesExactlyUntilItGrows) {
  // IVF4,Flat needs 39 faces per list to train: 156.
  auto g = open("IVF4,Flat");
  enroll_abc(*g);
  const std::int64_t watchlist_id = g->store().find_watchlist("wanted")->id;
  EXPECT_EQ(g->search(std::vector<Embedding>{axis(3)}, kDlibDescriptorId, {}, 1, 0.5f)[0]
                .at(0)
                .external_id,
            "C");
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
  EXPECT_EQ(g->search(std::vector<Embedding>{axis(3)}, kDlibDescriptorId, {}, 1, 0.5f)[0]
                .at(0)
                .external_id,
            "C");
  EXPECT_EQ(g->search(std::vector<Embedding>{axis(10)}, kDlibDescriptorId, {}, 1, 0.5f)[0]
                .at(0)
                .external_id,
            "crowd");
}

TEST_P(GalleryTest, BadSearchesAndDeletedWatchlists) {
  auto g = open();
  enroll_abc(*g);
  const std::vector<Embedding> q = {axis(0)};
  EXPECT_THROW(g->search(q, kDlibDescriptorId, {"nope"}, 1, std::nullopt), Error);
  EXPECT_THROW(g->search(q, kDlibDescriptorId, {}, 0, std::nullopt), Error);
  EXPECT_THROW(g->search(q, kDlibDescriptorId, {}, 1, 0.0f), Error);
  g->delete_watchlist("wanted");
  EXPECT_TRUE(g->search(q, kDlibDescriptorId, {}, 1, 4.0f)[0].empty());
  EXPECT_THROW(g->delete_watchlist("wanted"), Error);
}

// A NaN among a query's values made every distance NaN, and NaN passed the threshold tests
// (HNSW32 returned every identity). Non-finite descriptors are refused wherever they enter.
TEST_P(GalleryTest, NonFiniteDescriptorsAreRefusedEverywhereTheyEnter) {
  for (const std::string factory : {"Flat", "HNSW32"}) {
    start_afresh();
    auto g = open(factory);
    enroll_abc(*g);
    for (const float bad : {std::nanf(""), INFINITY, -INFINITY}) {
      Embedding q = axis(0);
      q[5] = bad;
      try {
        g->search(std::vector<Embedding>{q}, kDlibDescriptorId, {}, 3, 4.0f);
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
    EXPECT_EQ(g->search(std::vector<Embedding>{axis(0)}, kDlibDescriptorId, {}, 3, 0.5f)[0].size(),
              1u);
  }
}

TEST_P(GalleryTest, AWatchlistNamedTwiceIsSearchedOnceAndNamesAreBounded) {
  auto g = open();
  enroll_abc(*g);
  const std::vector<Embedding> q = {axis(0, 0.9f)};
  const auto once = g->search(q, kDlibDescriptorId, {"wanted"}, 3, 4.0f)[0];
  const auto twice = g->search(q, kDlibDescriptorId, {"wanted", "wanted", "wanted"}, 3, 4.0f)[0];
  ASSERT_EQ(once.size(), 3u);
  ASSERT_EQ(twice.size(), 3u);
  for (std::size_t i = 0; i < once.size(); ++i) {
    EXPECT_EQ(twice[i].identity_id, once[i].identity_id);
  }
  const std::vector<std::string> many(fields::kMaxNamesPerList + 1, "wanted");
  EXPECT_THROW(g->search(q, kDlibDescriptorId, many, 3, 4.0f), Error);
  // A missing name is reported, not fatal, when the caller asks for that (cameras).
  std::vector<std::string> missing;
  EXPECT_EQ(g->search(q, kDlibDescriptorId, {"wanted", "gone"}, 3, 4.0f, &missing)[0].size(), 3u);
  EXPECT_EQ(missing, std::vector<std::string>{"gone"});
}

}  // namespace
}  // namespace frs

namespace frs {
namespace {

// A rejected face is not that identity any more, while everyone else still matches it;
// by rule: a face about as near a rejected face as the identity is not the identity, even
// far from the rejected face, and a face nearer the identity's own still is.
TEST_P(GalleryTest, ASuppressionHidesOnlyThatIdentityNearThatFace) {
  auto g = open();
  enroll_abc(*g);
  const auto b = g->store().find_identity(g->store().find_watchlist("wanted")->id, "B");
  // A query between B (axis 2) and C (axis 3), a little nearer B.
  Embedding query = axis(2, 0.75f);
  query[3] = 0.6f;
  const Embedding queries[] = {query};
  auto found = g->search(queries, kDlibDescriptorId, {}, 2, 1.5f)[0];
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].external_id, "B");

  Suppression x;
  x.identity_id = b->id;
  x.descriptor = query;
  x.alert_id = 41;
  x.alert_detected_at_ms = 1000;
  x.created_by = "ana";
  x.note = "not him";
  const auto stored = g->add_suppressions({x});
  ASSERT_EQ(stored.size(), 1u);
  found = g->search(queries, kDlibDescriptorId, {}, 2, 1.5f)[0];
  ASSERT_GE(found.size(), 1u);
  EXPECT_EQ(found[0].external_id, "C") << "B is suppressed; C still matches";
  for (const Candidate& c : found) EXPECT_NE(c.external_id, "B");

  // B's own face, far (1.0) from the suppressed one, is still B.
  const Embedding own[] = {axis(2)};
  EXPECT_EQ(g->search(own, kDlibDescriptorId, {}, 1, 0.5f)[0].at(0).external_id, "B");
  // Another chip of the rejected person: 0.4 from the rejected face (no near-copy of it)
  // and 0.76 from B: not B.
  Embedding again = query;
  again[4] = 0.4f;
  const Embedding again_queries[] = {again};
  const auto again_found = g->search(again_queries, kDlibDescriptorId, {}, 3, 1.5f);
  for (const Candidate& c : again_found[0]) {
    EXPECT_NE(c.external_id, "B") << "a rejection holds beyond near-copies of the face";
  }
  // Another photo of B: 0.32 from B, 0.69 from the rejected face: still B.
  Embedding b_again = axis(2, 0.9f);
  b_again[5] = 0.3f;
  const Embedding b_queries[] = {b_again};
  EXPECT_EQ(g->search(b_queries, kDlibDescriptorId, {}, 1, 0.5f)[0].at(0).external_id, "B");

  // Kept across a restart, listed, then lifted.
  g.reset();
  g = open();
  ASSERT_EQ(g->suppressions_of(b->id).size(), 1u);
  EXPECT_EQ(g->suppressions_of(b->id)[0].note, "not him");
  EXPECT_EQ(g->search(queries, kDlibDescriptorId, {}, 1, 1.5f)[0].at(0).external_id, "C");
  ASSERT_TRUE(g->lift_suppression(stored[0].id).has_value());
  EXPECT_FALSE(g->lift_suppression(stored[0].id).has_value());
  EXPECT_EQ(g->search(queries, kDlibDescriptorId, {}, 1, 1.5f)[0].at(0).external_id, "B");

  // Purged with their alert's retention: only those from alerts before the cutoff.
  x.alert_detected_at_ms = 1000;
  g->add_suppressions({x});
  x.alert_detected_at_ms = 5000;
  g->add_suppressions({x});
  EXPECT_EQ(g->purge_suppressions(2000), 1);
  EXPECT_EQ(g->suppressions_of(b->id).size(), 1u);
  // Removing the identity removes its suppressions.
  g->remove_identity(b->id);
  EXPECT_TRUE(g->store().list_suppressions(std::nullopt).empty());
  x.identity_id = b->id;
  EXPECT_THROW(g->add_suppressions({x}), Error);
}

TEST_P(GalleryTest, NoThresholdLooserThanTheCeiling) {
  GalleryOptions o;
  o.index.factory = "Flat";
  o.max_distance_ceilings = {{std::string(kDlibDescriptorId), 0.55f},
                             {std::string(kFusedDescriptorId), 0.7f}};
  Gallery g(open_gallery_store(stores_->at("ceiling.db")), o);
  Watchlist w;
  w.name = "loose";
  w.max_distance = 0.6f;
  try {
    g.create_watchlist(w);
    FAIL() << "a watchlist looser than the ceiling was created";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("ceiling 0.55"), std::string::npos) << e.what();
  }
  w.max_distance = 0.55f;
  const Watchlist created = g.create_watchlist(w);
  EXPECT_THROW(g.set_max_distance("loose", 0.56f, "{}"), Error);
  g.set_max_distance("loose", 0.4f, "{}");
  EXPECT_FLOAT_EQ(g.store().find_watchlist("loose")->max_distance, 0.4f);
  EXPECT_THROW(g.check_max_distance(0.9f, kDlibDescriptorId, "max_distance"), Error);
  // Each model's ceiling is on its own scale.
  EXPECT_THROW(g.check_max_distance(0.71f, kFusedDescriptorId, "max_distance"), Error);
  g.check_max_distance(0.69f, kFusedDescriptorId, "max_distance");
  g.check_max_distance(3.9f, kFacepluginDescriptorId, "max_distance");  // none given
  // A watchlist stored looser (before the ceiling was set) is matched at the ceiling.
  g.store().set_max_distance("loose", 0.9f, "{}");
  EXPECT_FLOAT_EQ(g.threshold_of(*g.store().find_watchlist("loose")), 0.55f);
  StoredFace f = face_at(0);
  Identity i;
  i.watchlist_id = created.id;
  i.external_id = "A";
  g.enroll(i, {f});
  Embedding query = axis(0, 0.7f);  // 0.3 short of A's face on axis 0...
  query[1] = 0.5f;                  // ... and off to the side: distance 0.58
  const Embedding queries[] = {query};
  EXPECT_TRUE(g.search(queries, kDlibDescriptorId, {"loose"}, 1, std::nullopt)[0].empty())
      << "0.58 is within the stored 0.9 but not within the ceiling";
}

// fused-v1's length: its descriptors are unit vectors of 640 values.
constexpr std::size_t kFused = 640;

TEST(DescriptorModels, EachHasItsOwnLength) {
  // Alerts keep descriptors without their model; a rejection tells them by length
  // (live_service.cpp), which works only while no two models share one.
  std::set<std::size_t> lengths;
  for (const DescriptorModel& m : descriptor_models()) {
    EXPECT_TRUE(lengths.insert(m.dimension).second) << m.id;
  }
  EXPECT_EQ(code_of([] {
              require_descriptor_of(descriptor_model(kDlibDescriptorId), Embedding(512, 0.0f),
                                    "probe");
            }),
            ErrorCode::kFailedPrecondition);
  EXPECT_EQ(code_of([] {
              require_descriptor_of(descriptor_model(kDlibDescriptorId), Embedding(129, 0.0f),
                                    "probe");
            }),
            ErrorCode::kInvalidArgument);
  require_descriptor_of(descriptor_model(kFusedDescriptorId), Embedding(640, 0.0f), "probe");
}

TEST_P(GalleryTest, EachWatchlistIsSearchedOnlyWithDescriptorsOfItsOwnModel) {
  auto g = open();
  enroll_abc(*g);  // dlib-resnet-v1
  Watchlist w;
  w.name = "fused";
  w.max_distance = 0.7f;
  w.descriptor_model = std::string(kFusedDescriptorId);
  const Watchlist fused = g->create_watchlist(w);
  EXPECT_EQ(g->store().find_watchlist("fused")->descriptor_model, kFusedDescriptorId);
  Identity f;
  f.watchlist_id = fused.id;
  f.external_id = "F";
  // A dlib face in a fused watchlist, or a "fused" face of dlib's length: refused whole.
  EXPECT_EQ(code_of([&] { g->enroll(f, {face_at(5)}); }), ErrorCode::kFailedPrecondition);
  StoredFace wrong_length = face_at(5);
  wrong_length.descriptor_model = std::string(kFusedDescriptorId);
  EXPECT_EQ(code_of([&] { g->enroll(f, {wrong_length}); }), ErrorCode::kFailedPrecondition);
  EXPECT_FALSE(g->store().find_identity(fused.id, "F"));
  StoredFace right = face_at(5);
  right.descriptor = axis(5, 1.0f, kFused);
  right.descriptor_model = std::string(kFusedDescriptorId);
  g->enroll(f, {right});
  EXPECT_EQ(g->indexed_faces(fused.id), 1u);

  // Each model's search sees only its own watchlists; naming another's is refused.
  const auto by_fused =
      g->search(std::vector<Embedding>{axis(5, 0.9f, kFused)}, kFusedDescriptorId, {}, 5, 0.5f)[0];
  ASSERT_EQ(by_fused.size(), 1u);
  EXPECT_EQ(by_fused[0].external_id, "F");
  EXPECT_EQ(by_fused[0].descriptor_model, kFusedDescriptorId);
  EXPECT_FLOAT_EQ(by_fused[0].threshold, 0.5f);
  const auto by_dlib =
      g->search(std::vector<Embedding>{axis(2, 0.9f)}, kDlibDescriptorId, {}, 5, 0.5f)[0];
  ASSERT_EQ(by_dlib.size(), 1u);
  EXPECT_EQ(by_dlib[0].external_id, "B");
  EXPECT_EQ(code_of([&] {
              g->search(std::vector<Embedding>{axis(5, 1.0f, kFused)}, kFusedDescriptorId,
                        {"wanted"}, 5, std::nullopt);
            }),
            ErrorCode::kFailedPrecondition);
  // A query of another model's length, or of no model's.
  EXPECT_EQ(code_of([&] {
              g->search(std::vector<Embedding>{axis(5, 1.0f, kFused)}, kDlibDescriptorId, {}, 5,
                        std::nullopt);
            }),
            ErrorCode::kFailedPrecondition);
  EXPECT_EQ(code_of([&] {
              g->search(std::vector<Embedding>{axis(5, 1.0f, 100)}, kDlibDescriptorId, {}, 5,
                        std::nullopt);
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of([&] {
              g->search(std::vector<Embedding>{axis(2)}, "dlib-resnet-v9", {}, 5, std::nullopt);
            }),
            ErrorCode::kInvalidArgument);

  std::vector<std::string> missing;
  const auto groups = g->watchlists_by_model({"fused", "wanted", "gone"}, &missing);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups.at(std::string(kFusedDescriptorId)), std::vector<std::string>{"fused"});
  EXPECT_EQ(groups.at(std::string(kDlibDescriptorId)), std::vector<std::string>{"wanted"});
  EXPECT_EQ(missing, std::vector<std::string>{"gone"});
  // Searched with the same descriptors after a restart: the index is of the model's length.
  g->save_snapshots();
  g = open();
  EXPECT_EQ(g->indexed_faces(fused.id), 1u);
  EXPECT_EQ(
      g->search(std::vector<Embedding>{axis(5, 0.9f, kFused)}, kFusedDescriptorId, {}, 5, 0.5f)[0]
          .size(),
      1u);
}

TEST_P(GalleryTest, CandidatesOfTwoModelsAreRankedByTheShareOfTheirThreshold) {
  std::vector<Candidate> mixed = {
      {1, "a", "", "dlib", 1, 0.45f, 0.5f, std::string(kDlibDescriptorId)},    // 0.90
      {2, "b", "", "fused", 2, 0.60f, 0.7f, std::string(kFusedDescriptorId)},  // 0.857
      {3, "c", "", "dlib", 3, 0.20f, 0.5f, std::string(kDlibDescriptorId)},    // 0.40
  };
  rank_candidates(mixed, 2);
  ASSERT_EQ(mixed.size(), 2u);
  EXPECT_EQ(mixed[0].external_id, "c");
  EXPECT_EQ(mixed[1].external_id, "b");  // farther in distance than a, nearer its threshold
  std::vector<Candidate> one_model = {
      {1, "a", "", "w1", 1, 0.45f, 0.9f, std::string(kDlibDescriptorId)},
      {2, "b", "", "w2", 2, 0.30f, 0.3f, std::string(kDlibDescriptorId)},
  };
  rank_candidates(one_model, 5);
  EXPECT_EQ(one_model[0].external_id, "b");  // one model: by distance, as always
}

TEST_P(GalleryTest, ReembeddingBuildsBesideTheLiveIndexAndSwitchesAtOnce) {
  auto g = open("Flat", IdentityScore::kCentroid);
  enroll_abc(*g);
  GalleryStore& store = g->store();
  const std::int64_t id = store.find_watchlist("wanted")->id;
  const std::string fused(kFusedDescriptorId);
  EXPECT_EQ(code_of([&] { store.begin_reembed(id, std::string(kDlibDescriptorId), "ann"); }),
            ErrorCode::kFailedPrecondition);  // it is of that model already
  EXPECT_EQ(code_of([&] { store.put_reembedded(id, fused, {}); }),
            ErrorCode::kFailedPrecondition);  // none begun
  ReembedProgress p = store.begin_reembed(id, fused, "ann");
  EXPECT_EQ(p.target_model, fused);
  EXPECT_EQ(p.done, 0);
  EXPECT_EQ(p.total, 4);
  EXPECT_EQ(p.started_by, "ann");
  const std::vector<StoredFace> todo = store.faces_to_reembed(id, 0, 100);
  ASSERT_EQ(todo.size(), 4u);
  // A face's new descriptor: its own axis in 640 values (A's two faces on axes 0 and 1).
  auto made_for = [&](const StoredFace& face) {
    std::size_t dim = 0;
    while (face.descriptor[dim] == 0) ++dim;
    return std::pair{face.id, axis(dim, 1.0f, kFused)};
  };
  EXPECT_EQ(code_of([&] {
              store.put_reembedded(id, fused, {{todo[0].id, axis(0)}});
            }),
            ErrorCode::kFailedPrecondition);  // not the target's length
  store.put_reembedded(id, fused, {made_for(todo[0]), made_for(todo[1])});
  EXPECT_EQ(store.reembed_progress(id).done, 2);
  EXPECT_EQ(store.faces_to_reembed(id, 0, 100).size(), 2u);
  EXPECT_EQ(store.faces_to_reembed(id, todo[2].id, 100).size(), 1u);
  // Resuming the same target keeps what was made; the old model still serves searches.
  EXPECT_EQ(store.begin_reembed(id, fused, "ben").done, 2);
  EXPECT_EQ(
      g->search(std::vector<Embedding>{axis(2, 0.9f)}, kDlibDescriptorId, {}, 1, 0.5f)[0].size(),
      1u);
  EXPECT_EQ(code_of([&] { g->finish_reembed(id, fused, 0.6f, "{}"); }),
            ErrorCode::kFailedPrecondition);  // two faces still without one
  store.put_reembedded(id, fused, {made_for(todo[2]), made_for(todo[3])});
  // An identity enrolled meanwhile (with the live model) must be re-embedded too.
  Identity d;
  d.watchlist_id = id;
  d.external_id = "D";
  g->enroll(d, {face_at(4)});
  EXPECT_EQ(code_of([&] { g->finish_reembed(id, fused, 0.6f, "{}"); }),
            ErrorCode::kFailedPrecondition);
  const auto late = store.faces_to_reembed(id, 0, 100);
  ASSERT_EQ(late.size(), 1u);
  store.put_reembedded(id, fused, {made_for(late[0])});
  // A second process on the same store, opened before the switch.
  auto other = open("Flat", IdentityScore::kCentroid);
  const Watchlist switched = g->finish_reembed(id, fused, 0.6f, R"({"method":"calibrated"})");
  EXPECT_EQ(switched.descriptor_model, fused);
  EXPECT_FLOAT_EQ(switched.max_distance, 0.6f);
  EXPECT_EQ(store.reembed_progress(id).target_model, "");
  EXPECT_EQ(g->indexed_faces(id), 5u);
  for (const StoredFace& f : store.faces_of_watchlist(id)) {
    EXPECT_EQ(f.descriptor_model, fused);
    EXPECT_EQ(f.descriptor.size(), kFused);
  }
  // A's centroid is the normalised mean of its two new descriptors (cosine model).
  Embedding a_centroid = axis(0, 1.0f, kFused);
  a_centroid[1] = 1.0f;
  normalize(a_centroid);
  const auto found =
      g->search(std::vector<Embedding>{a_centroid}, kFusedDescriptorId, {}, 1, std::nullopt)[0];
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].external_id, "A");
  EXPECT_NEAR(found[0].distance, 0.0f, 1e-5f);
  EXPECT_EQ(code_of([&] {
              g->search(std::vector<Embedding>{axis(2)}, kDlibDescriptorId, {"wanted"}, 1,
                        std::nullopt);
            }),
            ErrorCode::kFailedPrecondition);
  // The other process replays the switch from the change log at its next change.
  Identity e;
  e.watchlist_id = id;
  e.external_id = "E";
  StoredFace e_face = face_at(6);
  e_face.descriptor = axis(6, 1.0f, kFused);
  e_face.descriptor_model = fused;
  other->enroll(e, {e_face});
  EXPECT_EQ(other->indexed_faces(id), 6u);
  EXPECT_EQ(other->load_report().at(id), "rebuilt: re-embedded with " + fused);
  for (const auto& probe : {std::pair{4, "D"}, std::pair{6, "E"}}) {
    EXPECT_EQ(other
                  ->search(std::vector<Embedding>{axis(probe.first, 0.95f, kFused)},
                           kFusedDescriptorId, {}, 1, std::nullopt)[0]
                  .at(0)
                  .external_id,
              probe.second);
  }
  // And a restart builds the index of the new model.
  other.reset();
  g = open("Flat", IdentityScore::kCentroid);
  EXPECT_EQ(g->indexed_faces(id), 6u);
}

TEST_P(GalleryTest, AnAuthorisationIsInForceOnlyInItsPeriod) {
  auto g = open();
  Watchlist w;
  w.name = "warrant";
  const Watchlist created = g->create_watchlist(w);
  EXPECT_FALSE(g->authorization_in_force(created.id, 5000));
  Authorization a;
  a.watchlist_id = created.id;
  a.basis = "warrant";
  a.reference = "W-2026-113";
  a.issued_by = "Court 3";
  a.valid_from_ms = 1000;
  a.valid_until_ms = 9000;
  a.recorded_by = "ana";
  const Authorization stored = g->authorize(a);
  EXPECT_GT(stored.id, 0);
  EXPECT_FALSE(g->authorization_in_force(created.id, 999));
  EXPECT_TRUE(g->authorization_in_force(created.id, 1000));
  EXPECT_TRUE(g->authorization_in_force(created.id, 9000));  // inclusive
  EXPECT_FALSE(g->authorization_in_force(created.id, 9001));
  // The longest-running one in force is the one named.
  a.reference = "W-2026-200";
  a.valid_until_ms = 20000;
  g->authorize(a);
  EXPECT_EQ(g->authorization_in_force(created.id, 5000)->reference, "W-2026-200");
  // Bad ones are refused.
  for (const auto& bad : std::vector<std::pair<std::string, std::string>>{
           {"hunch", "W-1"}, {"warrant", ""}, {"warrant", "line\nbreak"}}) {
    a.basis = bad.first;
    a.reference = bad.second;
    EXPECT_THROW(g->authorize(a), Error) << bad.first << " " << bad.second;
  }
  a.basis = "warrant";
  a.reference = "W-3";
  a.valid_until_ms = a.valid_from_ms;
  EXPECT_THROW(g->authorize(a), Error) << "an empty period";
  a.valid_until_ms = 30000;
  a.watchlist_id = created.id + 100;
  EXPECT_THROW(g->authorize(a), Error) << "an unknown watchlist";
  // Kept across a restart; gone with the watchlist.
  g.reset();
  g = open();
  EXPECT_EQ(g->authorizations(created.id).size(), 2u);
  g->delete_watchlist("warrant");
  EXPECT_TRUE(g->authorizations(created.id).empty());
  EXPECT_TRUE(g->store().list_authorizations(std::nullopt).empty());
}

}  // namespace
}  // namespace frs
