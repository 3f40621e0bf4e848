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
  // The loosest threshold anyone may give a watchlist or a search (frs-server
  // --max-distance-ceiling). Default 4 = none; range (0, 4]. A stored watchlist above it
  // is matched at the ceiling.
  float max_distance_ceiling = 4.0f;
  // A query within this Euclidean distance of one of an identity's suppressions (known
  // non-matches, from rejected alerts) is not that identity. Default 0.3, range 0..2; 0 =
  // suppressions are kept but not applied.
  float suppression_distance = 0.3f;
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

  // kInvalidArgument when the watchlist's max_distance is looser than the ceiling.
  Watchlist create_watchlist(const Watchlist& watchlist);
  void set_max_distance(const std::string& name, float max_distance,
                        const std::string& threshold_basis);
  // Throws kInvalidArgument, naming `what` and the ceiling, when `max_distance` is looser
  // than options.max_distance_ceiling. Every threshold a user gives passes through here.
  void check_max_distance(float max_distance, const std::string& what) const;
  float max_distance_ceiling() const { return options_.max_distance_ceiling; }
  float suppression_distance() const { return options_.suppression_distance; }
  // The threshold matching applies for a watchlist: its own, at most the ceiling.
  float threshold_of(const Watchlist& watchlist) const;

  // Authorisations (store.h): recorded in the store, and kept in memory so the live path
  // can ask for every frame.
  Authorization authorize(const Authorization& authorization);
  std::vector<Authorization> authorizations(std::int64_t watchlist_id) const;
  // The authorisation in force at `at_ms` that runs longest; nullopt when none is.
  std::optional<Authorization> authorization_in_force(std::int64_t watchlist_id,
                                                      std::int64_t at_ms) const;

  // Suppressions (store.h): a query within suppression_distance of one is not returned as
  // its identity by search().
  std::vector<Suppression> add_suppressions(const std::vector<Suppression>& add);
  std::optional<Suppression> lift_suppression(std::int64_t id);
  std::int64_t purge_suppressions(std::int64_t before_ms);
  std::vector<Suppression> suppressions_of(std::int64_t identity_id) const;
  void delete_watchlist(const std::string& name);
  Identity enroll(const Identity& identity, const std::vector<StoredFace>& faces);
  std::vector<StoredFace> add_faces(std::int64_t identity_id, const std::vector<StoredFace>& faces);
  void remove_identity(std::int64_t identity_id);

  // For each query, up to top_k identities nearest first (an identity counts once, scored
  // as options.identity_score says), from the named watchlists (empty: all), each within
  // threshold_of(its watchlist), or within `max_distance` when given (not checked against
  // the ceiling here: callers check what users give with check_max_distance). An identity
  // with a suppression within suppression_distance of the query is left out for that
  // query. kNotFound for an
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

  // Copies of the store's authorisations (by watchlist id) and suppressions (by identity
  // id), reloaded after every change to them or to what they belong to.
  void reload_oversight();
  bool suppressed(std::int64_t identity_id, const Embedding& query) const;
  mutable std::shared_mutex oversight_mutex_;
  std::map<std::int64_t, std::vector<Authorization>> authorizations_;
  std::unordered_map<std::int64_t, std::vector<Suppression>> suppressions_;
};

}  // namespace frs
