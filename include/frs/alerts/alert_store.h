#pragma once
// The durable alert log: every alert is written here, with an id that only grows and is
// never reused, before anyone is told about it; subscribers resume from the last id they
// saw. Alerts copy the names they show (identity, watchlist, camera) so an alert stays
// readable after the identity is removed. SQLite (WAL, synchronous=FULL) in the data dir, or
// the cluster's PostgreSQL database, where ids are taken under a write lock held until
// commit: whichever node writes them, alerts commit in id order, so a subscriber resuming
// after id N misses none.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "frs/core/embedding.h"
#include "frs/storage/database.h"
#include "frs/video/tracker.h"

namespace frs {

enum class ReviewState { kPending, kConfirmed, kRejected };
const char* to_string(ReviewState state);

// One person's decision on an alert. Each reviewer decides once.
struct AlertReview {
  std::string reviewer;  // the token's name
  ReviewState decision = ReviewState::kConfirmed;
  std::string note;
  std::int64_t at_ms = 0;  // Unix ms
};

struct Alert {
  std::int64_t id = 0;  // assigned by append(); increasing
  std::string camera;
  std::int64_t captured_at_ms = 0;  // capture time of the frame that decided it (Unix ms)
  std::int64_t detected_at_ms = 0;  // when frs decided (Unix ms)
  std::uint64_t track_id = 0;
  std::vector<TrackPoint> track_path;  // the track up to the decision
  std::int64_t identity_id = 0;
  std::string external_id;
  std::string display_name;
  std::string watchlist;
  std::int64_t face_id = 0;                 // the enrolled face nearest the live face
  float distance = 0;                       // Euclidean, lower = more alike
  std::optional<float> runner_up_distance;  // nearest other identity, when there was one
  std::vector<std::uint8_t> face_jpeg;      // the live face crop; empty when not loaded
  // The descriptors that matched, kept so that a rejection can teach frs this face is not
  // that identity (suppressions): the best sighting's own, and the track's fused one that
  // was searched. Only loaded by get(); absent in alerts from before they were kept.
  std::optional<Embedding> face_descriptor;
  std::optional<Embedding> track_descriptor;
  // The outcome: pending until enough people confirmed it, or anyone rejected it. The
  // note, reviewer and time are those of the review that decided it.
  ReviewState review = ReviewState::kPending;
  std::string review_note;
  std::string reviewed_by;
  std::int64_t reviewed_at_ms = 0;
  std::vector<AlertReview> reviews;  // every review so far, oldest first
};

struct AlertFilter {
  std::int64_t after_id = 0;            // only alerts with a larger id
  std::vector<std::string> cameras;     // empty = all
  std::vector<std::string> watchlists;  // empty = all
  std::optional<float> max_distance;    // only alerts at most this far
  std::optional<ReviewState> review;    // only alerts in this state
  std::int64_t detected_from_ms = 0;    // detected at or after this (0 = no bound)
  std::int64_t detected_until_ms = 0;   // detected at or before this (0 = no bound)
  int limit = 100;                      // 1..1000
  bool with_images = false;             // load face_jpeg
};

// What one retention purge removed.
struct AlertPurge {
  std::int64_t alerts = 0;                 // all removed, confirmed ones included
  std::int64_t confirmed = 0;              // of those, confirmed
  std::int64_t first_id = 0, last_id = 0;  // range of the removed ids (0 when none)
};

// The channel on which PostgreSQL announces each alert committed, on any node
// (ChangeListener): the write lock the alert's id is taken under.
inline constexpr const char* kAlertChannel = "frs_alerts";

class AlertStore {
 public:
  explicit AlertStore(const StoreLocation& where);

  // Stores the alert (id and nothing else is assigned) and returns it with its id. The
  // alert is on disk when this returns.
  Alert append(Alert alert);
  // Alerts passing the filter, ascending id.
  std::vector<Alert> list(const AlertFilter& filter);
  std::optional<Alert> get(std::int64_t id, bool with_images = true);
  // Records one person's decision. A rejection decides the alert (rejected); a
  // confirmation decides it (confirmed) when it is the `confirmations_needed`-th from a
  // different reviewer (1..3). kNotFound for an unknown id, kInvalidArgument for
  // ReviewState::kPending or confirmations_needed out of range, kFailedPrecondition when the
  // alert is decided already or this reviewer reviewed it before.
  Alert review(std::int64_t id, ReviewState decision, const std::string& note,
               const std::string& reviewer, int confirmations_needed);
  std::int64_t last_id();
  // Retention: removes alerts detected before `before_ms`, and confirmed ones only when
  // detected before `confirmed_before_ms`, with their face crops, descriptors and reviews.
  // Deleted content is overwritten on disk (secure_delete), not left in free pages.
  AlertPurge purge(std::int64_t before_ms, std::int64_t confirmed_before_ms);

 private:
  std::vector<AlertReview> reviews_of(std::int64_t id);  // caller holds mutex_

  std::unique_ptr<Database> db_;
  std::mutex mutex_;
};

}  // namespace frs
