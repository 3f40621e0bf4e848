#pragma once
// The gallery: the store (source of truth) plus one FAISS index per watchlist, kept in step
// by replaying the store's change log. At start each index is loaded from its snapshot and
// only newer changes are replayed; it is rebuilt from the store only when the snapshot is
// missing, damaged or of another index type.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "frs/gallery/face_index.h"
#include "frs/gallery/store.h"

namespace frs {

// How an identity with several enrolled faces is scored against a query.
enum class IdentityScore {
  kNearestFace,  // the distance to its nearest face
  // The distance to the mean of its faces' descriptors: fewer misses at the same false-alert
  // rate (docs/accuracy.md: crops, 3 photos each, FNIR at FPIR 0.01 0.048 -> 0.036). With
  // one face it is the same as kNearestFace.
  kCentroid,
};

struct GalleryOptions {
  // Where index snapshots are kept (<dir>/watchlist-<id>.index). Empty: never snapshot.
  std::filesystem::path snapshot_dir;
  FaceIndexOptions index;  // the index type of every watchlist
  IdentityScore identity_score = IdentityScore::kCentroid;
};

struct Candidate {
  std::int64_t identity_id = 0;
  std::string external_id;
  std::string display_name;
  std::string watchlist;
  std::int64_t face_id = 0;  // the enrolled face nearest the query
  float distance = 0;        // Euclidean; lower = more alike
};

class Gallery {
 public:
  // How much farther than the threshold a face may lie for its identity to be scored by
  // centroid (the centroid of faces spread around a query can be nearer than all of them).
  static constexpr float kCentroidSlack = 0.2f;

  Gallery(std::unique_ptr<GalleryStore> store, const GalleryOptions& options);
  ~Gallery();

  GalleryStore& store() { return *store_; }

  Watchlist create_watchlist(const Watchlist& watchlist);
  void delete_watchlist(const std::string& name);
  Identity enroll(const Identity& identity, const std::vector<StoredFace>& faces);
  std::vector<StoredFace> add_faces(std::int64_t identity_id, const std::vector<StoredFace>& faces);
  void remove_identity(std::int64_t identity_id);

  // For each query, up to top_k identities nearest first (an identity counts once, scored
  // as options.identity_score says), from the named watchlists (empty: all), each within
  // its watchlist's max_distance, or within `max_distance` when given. kNotFound for an
  // unknown watchlist. With kCentroid, identities are those with a face within the
  // threshold plus kCentroidSlack: one whose every face lies farther is not considered.
  // Watchlist names are a set (a name given twice is searched once), at most
  // fields::kMaxNamesPerList. With `missing`, unknown names are listed there and the others
  // searched (a camera whose watchlist was deleted goes on with the rest).
  // kInvalidArgument for a descriptor with NaN or infinite values.
  std::vector<std::vector<Candidate>> search(std::span<const Embedding> queries,
                                             const std::vector<std::string>& watchlists, int top_k,
                                             std::optional<float> max_distance,
                                             std::vector<std::string>* missing = nullptr);

  // Descriptors in the index of a watchlist (equals the store's count when in step).
  std::size_t indexed_faces(std::int64_t watchlist_id) const;
  // How each watchlist's index was obtained: "snapshot", "rebuilt: <why>" at start, or
  // "rebuilt as <type>: grown to training size" once an exact-search fallback grew.
  std::map<std::int64_t, std::string> load_report() const;
  // Writes every index's snapshot (at shutdown, or periodically).
  void save_snapshots();

 private:
  struct WatchlistIndex {
    std::unique_ptr<FaceIndex> index;
    std::uint64_t applied = 0;  // store change number the index reflects
  };
  std::unique_ptr<FaceIndex> build_index(std::int64_t watchlist_id);
  // Replays the store's change log into the indexes, then gives watchlists that have grown
  // past the configured type's training size that type. Caller holds write_.
  void catch_up();
  void apply_changes();

  std::unique_ptr<GalleryStore> store_;
  GalleryOptions options_;
  std::size_t training_size_;  // faces the configured index type needs to be trained
  // The centroid of an identity's descriptors, computed on first use and cached.
  Embedding centroid_of(std::int64_t identity_id);

  std::mutex write_;  // orders writes: store commit, then index update
  mutable std::shared_mutex indexes_mutex_;
  std::map<std::int64_t, WatchlistIndex> indexes_;
  // Identity id -> centroid. Entries are dropped under indexes_mutex_ held exclusively, so
  // no search in flight can put back a centroid from before a change.
  std::mutex centroids_mutex_;
  std::unordered_map<std::int64_t, Embedding> centroids_;
  std::map<std::int64_t, std::string> load_report_;
};

}  // namespace frs
