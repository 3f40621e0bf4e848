#include "frs/alerts/alert_store.h"

#include <gtest/gtest.h>

#include "frs/alerts/alert_feed.h"
#include "frs/core/error.h"
#include "test_postgres.h"
#include "testdata.h"

namespace frs {
namespace {

Alert alert_of(const std::string& camera, const std::string& watchlist, float distance) {
  Alert a;
  a.camera = camera;
  a.watchlist = watchlist;
  a.distance = distance;
  a.captured_at_ms = 1000;
  a.detected_at_ms = 1200;
  a.track_id = 7;
  a.track_path = {{900, {10, 20, 30, 40}}, {1000, {12, 20, 30, 40}}};
  a.identity_id = 3;
  a.external_id = "B-1";
  a.display_name = "Jane Doe";
  a.face_id = 11;
  a.face_jpeg = {0xff, 0xd8, 0xff};
  return a;
}

using testing::Backend;

// Every test of the alert log runs on both databases.
class AlertStoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  StoreLocation where() const { return stores_.at("alerts.db"); }
  testing::TestStores stores_{GetParam()};
};
INSTANTIATE_TEST_SUITE_P(Backends, AlertStoreTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         testing::backend_name);

TEST_P(AlertStoreTest, IdsGrowAndFiltersSelect) {
  std::int64_t first = 0;
  {
    AlertStore store(where());
    EXPECT_EQ(store.last_id(), 0);
    Alert a = alert_of("door", "wanted", 0.41f);
    a.runner_up_distance = 0.55f;
    first = store.append(a).id;
    EXPECT_GT(store.append(alert_of("hall", "wanted", 0.45f)).id, first);
    EXPECT_GT(store.append(alert_of("door", "missing", 0.30f)).id, first + 1);
  }
  AlertStore store(where());  // reopened: nothing lost
  EXPECT_EQ(store.last_id(), first + 2);

  AlertFilter all;
  const auto everything = store.list(all);
  ASSERT_EQ(everything.size(), 3u);
  EXPECT_EQ(everything[0].id, first);
  EXPECT_TRUE(everything[0].face_jpeg.empty());  // images only when asked
  ASSERT_TRUE(everything[0].runner_up_distance.has_value());
  EXPECT_FLOAT_EQ(*everything[0].runner_up_distance, 0.55f);
  EXPECT_FALSE(everything[1].runner_up_distance.has_value());
  ASSERT_EQ(everything[0].track_path.size(), 2u);
  EXPECT_EQ(everything[0].track_path[1].at_ms, 1000);
  EXPECT_FLOAT_EQ(everything[0].track_path[1].box.x, 12.0f);

  AlertFilter door;
  door.cameras = {"door"};
  EXPECT_EQ(store.list(door).size(), 2u);
  door.watchlists = {"missing"};
  EXPECT_EQ(store.list(door).size(), 1u);
  AlertFilter close;
  close.max_distance = 0.42f;
  EXPECT_EQ(store.list(close).size(), 2u);
  AlertFilter resume;
  resume.after_id = first;
  resume.limit = 1;
  resume.with_images = true;
  const auto next = store.list(resume);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].id, first + 1);
  EXPECT_EQ(next[0].face_jpeg.size(), 3u);
  resume.limit = 0;
  EXPECT_THROW(store.list(resume), Error);
}

TEST_P(AlertStoreTest, ReviewsAreRecordedAndFilterable) {
  AlertStore store(where());
  const auto id = store.append(alert_of("door", "wanted", 0.4f)).id;
  store.append(alert_of("door", "wanted", 0.4f));
  const Alert reviewed = store.review(id, ReviewState::kRejected, "not him: twin", "officer 12", 2);
  EXPECT_EQ(reviewed.review, ReviewState::kRejected);
  EXPECT_EQ(reviewed.review_note, "not him: twin");
  EXPECT_EQ(reviewed.reviewed_by, "officer 12");
  EXPECT_GT(reviewed.reviewed_at_ms, 0);
  AlertFilter pending;
  pending.review = ReviewState::kPending;
  EXPECT_EQ(store.list(pending).size(), 1u);
  try {
    store.review(id + 100, ReviewState::kConfirmed, "", "x", 2);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
  EXPECT_THROW(store.review(id, ReviewState::kPending, "", "x", 2), Error);
  EXPECT_EQ(store.get(id)->face_jpeg.size(), 3u);
  EXPECT_FALSE(store.get(id + 100).has_value());
}

// The code of the error a review raises; nullopt when it was recorded.
std::optional<ErrorCode> code_of_review(AlertStore& store, std::int64_t id, ReviewState decision,
                                        const std::string& reviewer, int needed) {
  try {
    store.review(id, decision, "", reviewer, needed);
    return std::nullopt;
  } catch (const Error& e) {
    return e.code();
  }
}

TEST_P(AlertStoreTest, ConfirmationNeedsThatManyDifferentPeopleAndOneRejectionDecides) {
  AlertStore store(where());
  const auto a = store.append(alert_of("door", "wanted", 0.4f)).id;
  const auto b = store.append(alert_of("door", "wanted", 0.4f)).id;
  const auto c = store.append(alert_of("door", "wanted", 0.4f)).id;

  // Two needed: the first confirmation leaves it pending, with the review visible.
  const Alert first = store.review(a, ReviewState::kConfirmed, "his scar", "ana", 2);
  EXPECT_EQ(first.review, ReviewState::kPending);
  ASSERT_EQ(first.reviews.size(), 1u);
  EXPECT_EQ(first.reviews[0].reviewer, "ana");
  EXPECT_EQ(first.reviews[0].note, "his scar");
  EXPECT_GT(first.reviews[0].at_ms, 0);
  // The same person again is refused, as a confirmation or a rejection.
  EXPECT_EQ(code_of_review(store, a, ReviewState::kConfirmed, "ana", 2),
            ErrorCode::kFailedPrecondition);
  EXPECT_EQ(code_of_review(store, a, ReviewState::kRejected, "ana", 2),
            ErrorCode::kFailedPrecondition);
  // Nor is a name that differs only in case.
  EXPECT_EQ(code_of_review(store, a, ReviewState::kConfirmed, "ANA", 2),
            ErrorCode::kFailedPrecondition);
  EXPECT_EQ(store.get(a)->review, ReviewState::kPending);
  // A second person decides it.
  const Alert confirmed = store.review(a, ReviewState::kConfirmed, "agree", "ben", 2);
  EXPECT_EQ(confirmed.review, ReviewState::kConfirmed);
  EXPECT_EQ(confirmed.reviewed_by, "ben");
  EXPECT_EQ(confirmed.reviews.size(), 2u);
  // Decided is final, for a third person too.
  EXPECT_EQ(code_of_review(store, a, ReviewState::kRejected, "cy", 2),
            ErrorCode::kFailedPrecondition);

  // One confirmation then one rejection: rejected, both reviews kept.
  store.review(b, ReviewState::kConfirmed, "", "ana", 2);
  const Alert rejected = store.review(b, ReviewState::kRejected, "not him", "ben", 2);
  EXPECT_EQ(rejected.review, ReviewState::kRejected);
  EXPECT_EQ(rejected.reviewed_by, "ben");
  EXPECT_EQ(rejected.reviews.size(), 2u);

  // Three needed: two confirmations are not enough.
  store.review(c, ReviewState::kConfirmed, "", "ana", 3);
  EXPECT_EQ(store.review(c, ReviewState::kConfirmed, "", "ben", 3).review, ReviewState::kPending);
  EXPECT_EQ(store.review(c, ReviewState::kConfirmed, "", "cy", 3).review, ReviewState::kConfirmed);
  EXPECT_EQ(code_of_review(store, c, ReviewState::kConfirmed, "", 3), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of_review(store, c, ReviewState::kConfirmed, "dee", 4),
            ErrorCode::kInvalidArgument);

  // Listing shows the reviews so far.
  AlertFilter all;
  const auto listed = store.list(all);
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed[2].reviews.size(), 3u);
}

TEST_P(AlertStoreTest, KeepsTheMatchedDescriptors) {
  AlertStore store(where());
  Alert with = alert_of("door", "wanted", 0.4f);
  with.face_descriptor = Embedding(128, 0.0f);
  with.face_descriptor->at(0) = 0.5f;
  with.track_descriptor = Embedding(128, 0.0f);
  with.track_descriptor->at(1) = 0.25f;
  const auto id = store.append(with).id;
  const auto without = store.append(alert_of("door", "wanted", 0.4f)).id;
  const auto got = store.get(id, false);
  ASSERT_TRUE(got->face_descriptor && got->track_descriptor);
  EXPECT_EQ(got->face_descriptor->at(0), 0.5f);
  EXPECT_EQ(got->track_descriptor->at(1), 0.25f);
  EXPECT_FALSE(store.get(without, false)->face_descriptor.has_value());
}

}  // namespace
}  // namespace frs

namespace frs {
namespace {

TEST(AlertFeed, DeliversInOrderAndCutsOffASubscriberThatFallsBehind) {
  AlertFeed feed;
  auto fast = feed.subscribe(4);
  auto slow = feed.subscribe(2);
  EXPECT_EQ(feed.subscribers(), 2u);
  for (std::int64_t id = 1; id <= 3; ++id) {
    Alert a;
    a.id = id;
    feed.publish(a);
    // `fast` keeps up; `slow` never reads.
    const auto got = fast->next(std::chrono::milliseconds(10));
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->id, id);
  }
  EXPECT_TRUE(slow->fell_behind());
  EXPECT_FALSE(slow->next(std::chrono::milliseconds(10)).has_value());  // at once, nothing
  EXPECT_FALSE(fast->fell_behind());
  EXPECT_FALSE(fast->next(std::chrono::milliseconds(10)).has_value());  // nothing new
  slow.reset();
  EXPECT_EQ(feed.subscribers(), 1u);
}

}  // namespace
}  // namespace frs
