#include "frs/gallery/face_index.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <thread>

#include "frs/core/error.h"
#include "synthetic.h"
#include "testdata.h"

namespace frs {
namespace {

using testing::axis;

FaceIndex make(const std::string& factory) {
  FaceIndexOptions o;
  o.factory = factory;
  o.ivf_nprobe = 4;
  return FaceIndex(o);
}

void add_five(FaceIndex& index) {
  const std::vector<std::int64_t> ids = {10, 11, 12, 13, 14};
  const std::vector<Embedding> e = {axis(0), axis(1), axis(2), axis(3), axis(4)};
  index.add(ids, e);
}

// Trains `index` on 400 samples around the first `axes` axes, with Gaussian noise.
void train_on_axes(FaceIndex& index, std::size_t axes, float spread, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.0f, spread);
  std::vector<Embedding> samples(400);
  for (std::size_t i = 0; i < samples.size(); ++i) {
    samples[i] = axis(i % axes);
    for (float& v : samples[i]) v += noise(rng);
  }
  index.train(samples);
}

class FaceIndexTypes : public ::testing::TestWithParam<std::string> {};

TEST_P(FaceIndexTypes, FindsTheNearestIdsWithExactDistances) {
  FaceIndex index = make(GetParam());
  if (index.needs_training()) train_on_axes(index, 5, 0.3f, 7);
  add_five(index);
  EXPECT_EQ(index.size(), 5u);

  Embedding query = axis(3, 0.9f);  // 0.1 from id 13, sqrt(0.81 + 1) from the others
  const auto results = index.search(std::vector<Embedding>{query}, 2, 10.0f);
  ASSERT_EQ(results.size(), 1u);
  ASSERT_EQ(results[0].size(), 2u);
  EXPECT_EQ(results[0][0].id, 13);
  EXPECT_NEAR(results[0][0].distance, 0.1f, 1e-4f);
  EXPECT_NEAR(results[0][1].distance, std::sqrt(1.81f), 1e-4f);

  // max_distance cuts the list; top_k caps it.
  EXPECT_EQ(index.search(std::vector<Embedding>{query}, 5, 0.5f)[0].size(), 1u);
  EXPECT_EQ(index.search(std::vector<Embedding>{query}, 5, 10.0f)[0].size(), 5u);

  // A removed face is never returned again.
  const std::int64_t gone[] = {13, 99};
  EXPECT_EQ(index.remove(gone), 1u);
  EXPECT_EQ(index.size(), 4u);
  const auto after = index.search(std::vector<Embedding>{query}, 5, 10.0f);
  for (const Neighbor& n : after[0]) EXPECT_NE(n.id, 13);
  EXPECT_EQ(index.search(std::vector<Embedding>{query}, 5, 10.0f)[0].size(), 4u);
}

INSTANTIATE_TEST_SUITE_P(Flat, FaceIndexTypes, ::testing::Values("Flat"));
INSTANTIATE_TEST_SUITE_P(Hnsw, FaceIndexTypes, ::testing::Values("HNSW32"));
INSTANTIATE_TEST_SUITE_P(Ivf, FaceIndexTypes, ::testing::Values("IVF4,Flat"));
INSTANTIATE_TEST_SUITE_P(RefinedAndTransformed, FaceIndexTypes,
                         ::testing::Values("PCA16,IVF4,Flat,RFlat"));

// Four tight clusters on four axes train IVF4 into several lists: with one list probed a
// query on axis 3 sees only the faces of its own list, with four it sees all.
TEST(FaceIndex, SearchOptionsReachTheIvfInsideWrappers) {
  for (const std::string factory : {"IVF4,Flat", "PCA16,IVF4,Flat,RFlat"}) {
    SCOPED_TRACE(factory);
    FaceIndex index = make(factory);
    train_on_axes(index, 4, 0.01f, 3);
    const std::vector<std::int64_t> ids = {0, 1, 2, 3};
    index.add(ids, std::vector<Embedding>{axis(0), axis(1), axis(2), axis(3)});
    const std::vector<Embedding> query = {axis(3)};
    FaceIndexOptions one_list = index.options();
    one_list.ivf_nprobe = 1;
    index.set_search_options(one_list);
    EXPECT_LT(index.search(query, 4, 10.0f)[0].size(), 4u);
    FaceIndexOptions all_lists = index.options();
    all_lists.ivf_nprobe = 4;
    index.set_search_options(all_lists);
    EXPECT_EQ(index.search(query, 4, 10.0f)[0].size(), 4u);
    FaceIndexOptions bad = index.options();
    bad.refine_k_factor = 0;
    EXPECT_THROW(index.set_search_options(bad), Error);
    EXPECT_EQ(index.options().refine_k_factor, 8);  // unchanged
  }
}

TEST(FaceIndex, HnswHidesRemovedFacesWithTombstones) {
  FaceIndex index = make("HNSW32");
  add_five(index);
  const std::int64_t gone[] = {11};
  index.remove(gone);
  EXPECT_EQ(index.tombstones(), 1u);
  // A tombstoned id cannot come back: the old vector is still stored under it.
  const std::int64_t again[] = {11};
  EXPECT_THROW(index.add(again, std::vector<Embedding>{axis(1)}), Error);
}

TEST(FaceIndex, FlatDeletesForReal) {
  FaceIndex index = make("Flat");
  add_five(index);
  const std::int64_t gone[] = {11};
  index.remove(gone);
  EXPECT_EQ(index.tombstones(), 0u);
}

TEST(FaceIndex, RejectsBadInput) {
  try {
    make("NotAnIndex");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("NotAnIndex"), std::string::npos);
  }
  EXPECT_THROW(make("IDMap,Flat"), Error);

  FaceIndex index = make("Flat");
  add_five(index);
  const std::int64_t dup[] = {12};
  try {
    index.add(dup, std::vector<Embedding>{axis(9)});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kAlreadyExists);
  }
  const std::int64_t two[] = {20, 21};
  EXPECT_THROW(index.add(two, std::vector<Embedding>{axis(9)}), Error);
  EXPECT_THROW(index.search(std::vector<Embedding>{axis(0)}, 0, 1.0f), Error);
  EXPECT_EQ(index.size(), 5u);  // nothing changed

  FaceIndex untrained = make("IVF4,Flat");
  EXPECT_TRUE(untrained.needs_training());
  EXPECT_GE(untrained.min_training_size(), 4u * 39u);
  try {
    untrained.add(two, std::vector<Embedding>{axis(1), axis(2)});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
  }
}

class FaceIndexSnapshot : public ::testing::Test {
 protected:
  testing::ScopedTempDir dir_{"index"};
  const std::filesystem::path path_ = dir_ / "snapshot.index";
};

TEST_F(FaceIndexSnapshot, RoundTripKeepsIdsTombstonesAndChangeNumber) {
  FaceIndex index = make("HNSW32");
  add_five(index);
  const std::int64_t gone[] = {14};
  index.remove(gone);
  index.save(path_, 42);

  std::string why;
  auto snapshot = FaceIndex::load(path_, index.options(), why);
  ASSERT_TRUE(snapshot) << why;
  EXPECT_EQ(snapshot->change_number, 42u);
  EXPECT_EQ(snapshot->index->size(), 4u);
  EXPECT_EQ(snapshot->index->tombstones(), 1u);
  const auto results = snapshot->index->search(std::vector<Embedding>{axis(4)}, 5, 10.0f);
  for (const Neighbor& n : results[0]) EXPECT_NE(n.id, 14);
  EXPECT_EQ(snapshot->index->search(std::vector<Embedding>{axis(2)}, 1, 10.0f)[0][0].id, 12);
}

TEST_F(FaceIndexSnapshot, RefusesMissingDamagedAndForeignSnapshots) {
  std::string why;
  FaceIndexOptions flat;
  EXPECT_FALSE(FaceIndex::load(path_, flat, why));
  EXPECT_NE(why.find("no snapshot"), std::string::npos);

  FaceIndex index = make("Flat");
  add_five(index);
  index.save(path_, 7);
  FaceIndexOptions hnsw;
  hnsw.factory = "HNSW32";
  EXPECT_FALSE(FaceIndex::load(path_, hnsw, why));
  EXPECT_NE(why.find("'Flat'"), std::string::npos) << why;

  // Flip one byte in the middle: the checksum catches it.
  std::fstream file(path_, std::ios::in | std::ios::out | std::ios::binary);
  file.seekp(static_cast<std::streamoff>(std::filesystem::file_size(path_) / 2));
  file.put('\x5a');
  file.close();
  EXPECT_FALSE(FaceIndex::load(path_, flat, why));
  EXPECT_NE(why.find("damaged"), std::string::npos) << why;

  // Truncated (a crash mid-write would leave only the .partial file, but be safe anyway).
  std::filesystem::resize_file(path_, 20);
  EXPECT_FALSE(FaceIndex::load(path_, flat, why));
}

TEST(FaceIndex, SearchesRunWhileFacesAreAdded) {
  FaceIndex index = make("Flat");
  add_five(index);
  std::atomic<bool> done{false};
  std::atomic<int> wrong{0};
  std::vector<std::thread> searchers;
  for (int t = 0; t < 2; ++t) {
    searchers.emplace_back([&] {
      while (!done) {
        const auto r = index.search(std::vector<Embedding>{axis(2)}, 1, 10.0f);
        if (r[0].empty() || r[0][0].id != 12) ++wrong;
      }
    });
  }
  for (std::int64_t id = 100; id < 400; ++id) {
    const std::int64_t one[] = {id};
    index.add(one, std::vector<Embedding>{axis(static_cast<std::size_t>(5 + id % 100), 3.0f)});
  }
  done = true;
  for (auto& t : searchers) t.join();
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(index.size(), 305u);
}

}  // namespace
}  // namespace frs

namespace frs {
namespace {

// An index holds one descriptor model's descriptors: another length is refused, whether
// added, searched, trained on, or found in a snapshot.
TEST(FaceIndex, RefusesDescriptorsOfAnotherModelsLength) {
  FaceIndexOptions wide;
  wide.dimension = 512;
  FaceIndex index(wide);
  const std::vector<std::int64_t> ids = {1, 2};
  Embedding a(512, 0.0f), b(512, 0.0f);
  a[0] = 1.0f;
  b[511] = 1.0f;
  index.add(ids, std::vector<Embedding>{a, b});
  const auto found = index.search(std::vector<Embedding>{a}, 2, 10.0f)[0];
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].id, 1);
  EXPECT_NEAR(found[1].distance, std::sqrt(2.0f), 1e-6f);
  for (auto attempt : {+[](FaceIndex& i) { i.search(std::vector<Embedding>{axis(0)}, 1, 1.0f); },
                       +[](FaceIndex& i) {
                         const std::vector<std::int64_t> three = {3};
                         i.add(three, std::vector<Embedding>{axis(0)});
                       }}) {
    try {
      attempt(index);
      ADD_FAILURE() << "a 128-value descriptor was used with a 512-value index";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
      EXPECT_NE(std::string(e.what()).find("another model"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(index.size(), 2u);  // the refused add left nothing behind

  testing::ScopedTempDir dir("index-dimension");
  index.save(dir / "wide.index", 7);
  std::string why;
  EXPECT_FALSE(FaceIndex::load(dir / "wide.index", FaceIndexOptions{}, why).has_value());
  EXPECT_NE(why.find("512"), std::string::npos) << why;
  EXPECT_TRUE(FaceIndex::load(dir / "wide.index", wide, why).has_value()) << why;

  FaceIndexOptions zero;
  zero.dimension = 0;
  EXPECT_THROW(FaceIndex index_of_nothing(zero), Error);
}

}  // namespace
}  // namespace frs
