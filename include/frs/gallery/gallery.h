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
#include "frs/vision/descriptor_model.h"

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
  // The loosest threshold anyone may give a watchlist or a search, by descriptor model id
  // (frs-server --max-distance-ceiling); a model not listed has none (4). Range (0, 4]. A
  // stored watchlist above its model's ceiling is matched at the ceiling.
  std::map<std::string, float, std::less<>> max_distance_ceilings;
  // A rejection holds by rule: a query is not an identity when one of its suppressions
  // (faces reviewers rejected as it) lies at most (1 + suppression_margin) times as far from
  // the query as the identity itself (its nearest enrolled face, or its centroid): the
  // query looks at least about as much like the rejected face as like the person. Scale-free,
  // so one value serves every descriptor model. Default 0.1, range 0..1.
  float suppression_margin = 0.1f;
};

struct Candidate {
  std::int64_t identity_id = 0;
  std::string external_id;
  std::string display_name;
  std::string watchlist;
  std::int64_t face_id = 0;      // the enrolled face nearest the query
  float distance = 0;            // Euclidean; lower = more alike
  float threshold = 0;           // the threshold it passed (distance <= threshold)
  std::string descriptor_model;  // its watchlist's, which `distance` is of
};

// Orders candidates best first and keeps top_k: by distance when all are of one descriptor
// model, else by distance / threshold (distances of two models are on different scales;
// the share of its own threshold is what each means).
void rank_candidates(std::vector<Candidate>& candidates, int top_k);

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
  // than the ceiling of descriptor model `model`. Every threshold a user gives passes
  // through here.
  void check_max_distance(float max_distance, std::string_view model,
                          const std::string& what) const;
  float max_distance_ceiling(std::string_view model) const;
  float suppression_margin() const { return options_.suppression_margin; }
  // The threshold matching applies for a watchlist: its own, at most its model's ceiling.
  float threshold_of(const Watchlist& watchlist) const;
  // The descriptor model each watchlist is searched with now: named watchlists (every one
  // when empty), grouped by model id. Unknown names go to `missing` when given, else
  // kNotFound.
  std::map<std::string, std::vector<std::string>> watchlists_by_model(
      const std::vector<std::string>& watchlists, std::vector<std::string>* missing = nullptr);

  // Authorisations (store.h): recorded in the store, and kept in memory so the live path
  // can ask for every frame.
  Authorization authorize(const Authorization& authorization);
  std::vector<Authorization> authorizations(std::int64_t watchlist_id) const;
  // The authorisation in force at `at_ms` that runs longest; nullopt when none is.
  std::optional<Authorization> authorization_in_force(std::int64_t watchlist_id,
                                                      std::int64_t at_ms) const;

  // Suppressions (store.h): a query as near one as its identity (GalleryOptions::
  // suppression_margin) is not returned as that identity by search().
  std::vector<Suppression> add_suppressions(const std::vector<Suppression>& add);
  std::optional<Suppression> lift_suppression(std::int64_t id);
  std::int64_t purge_suppressions(std::int64_t before_ms);
  std::vector<Suppression> suppressions_of(std::int64_t identity_id) const;
  void delete_watchlist(const std::string& name);
  Identity enroll(const Identity& identity, const std::vector<StoredFace>& faces);
  std::vector<StoredFace> add_faces(std::int64_t identity_id, const std::vector<StoredFace>& faces);
  void remove_identity(std::int64_t identity_id);

  // For each query (descriptors of model `model`), up to top_k identities nearest first
  // (an identity counts once, scored as options.identity_score says), from the named
  // watchlists (empty: all of that model), each within
  // threshold_of(its watchlist), or within `max_distance` when given (not checked against
  // the ceiling here: callers check what users give with check_max_distance). An identity
  // with a suppression about as near the query as the identity itself (suppressed()) is
  // left out for that query. kNotFound for an
  // unknown watchlist. With kCentroid, identities are those with a face within the
  // threshold plus kCentroidSlack: one whose every face lies farther is not considered.
  // Watchlist names are a set (a name given twice is searched once), at most
  // fields::kMaxNamesPerList. With `missing`, unknown names are listed there and the others
  // searched (a camera whose watchlist was deleted goes on with the rest).
  // kInvalidArgument for a descriptor with NaN or infinite values; kFailedPrecondition for
  // a named watchlist of another model, or a query not of `model`'s length.
  std::vector<std::vector<Candidate>> search(std::span<const Embedding> queries,
                                             std::string_view model,
                                             const std::vector<std::string>& watchlists, int top_k,
                                             std::optional<float> max_distance,
                                             std::vector<std::string>* missing = nullptr);

  // kInvalidArgument when a search names more than fields::kMaxNamesPerList watchlists.
  static void check_search_names(const std::vector<std::string>& watchlists);

  // Re-embedding's switch (GalleryStore::finish_reembed): the new index is built from the
  // target descriptors while searches go on with the old one, then the store switches and
  // the index is swapped in at once.
  Watchlist finish_reembed(std::int64_t watchlist_id, const std::string& model, float max_distance,
                           const std::string& threshold_basis);

  // Descriptors in the index of a watchlist (equals the store's count when in step).
  std::size_t indexed_faces(std::int64_t watchlist_id) const;
  // How each watchlist's index was obtained: "snapshot", "rebuilt: <why>" at start, or
  // "rebuilt as <type>: grown to training size" once an exact-search fallback grew.
  std::map<std::int64_t, std::string> load_report() const;
  // Writes every index's snapshot (at shutdown, or periodically).
  void save_snapshots();

  // Several nodes on one store (cluster mode): takes in what other nodes changed since the
  // last call: watchlists created or deleted, faces enrolled or removed (the change log),
  // authorisations and suppressions. Called by the node's ChangeListener; cheap when
  // nothing changed. Returns whether the set of watchlists changed.
  bool sync_with_store();
  // The store change number every index reflects (the smallest over the watchlists; the
  // store's last change when there are none).
  std::uint64_t applied_change() const;

 private:
  struct WatchlistIndex {
    std::unique_ptr<FaceIndex> index;
    std::uint64_t applied = 0;  // store change number the index reflects
    std::string model;          // the descriptor model of its descriptors
  };
  FaceIndexOptions index_options(const std::string& model) const;
  // From the store's faces, or from `descriptors` (face id, descriptor) when given.
  std::unique_ptr<FaceIndex> build_index(
      std::int64_t watchlist_id, const std::string& model,
      const std::vector<std::pair<std::int64_t, Embedding>>* descriptors = nullptr);
  // Replays the store's change log into the indexes, then gives watchlists that have grown
  // past the configured type's training size that type. Caller holds write_.
  void catch_up();
  // Returns how many changes it applied.
  std::size_t apply_changes();

  std::unique_ptr<GalleryStore> store_;
  GalleryOptions options_;
  std::size_t training_size_;  // faces the configured index type needs to be trained
  // The centroid of an identity's descriptors of `model` (unit length for cosine models),
  // computed on first use and cached; empty when it has none of that model.
  Embedding centroid_of(std::int64_t identity_id, std::string_view model);

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
  // Whether a suppression of the identity lies at most (1 + suppression_margin) x
  // `identity_distance` (the query's score against the identity) from the query.
  bool suppressed(std::int64_t identity_id, const Embedding& query, std::string_view model,
                  float identity_distance) const;
  mutable std::shared_mutex oversight_mutex_;
  std::map<std::int64_t, std::vector<Authorization>> authorizations_;
  std::unordered_map<std::int64_t, std::vector<Suppression>> suppressions_;
};

}  // namespace frs
