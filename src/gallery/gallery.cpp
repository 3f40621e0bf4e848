#include "frs/gallery/gallery.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <unordered_map>

#include "frs/core/blas.h"
#include "frs/core/error.h"
#include "frs/core/text_fields.h"

namespace frs {
namespace {

std::filesystem::path snapshot_path(const std::filesystem::path& dir, std::int64_t watchlist_id) {
  return dir / ("watchlist-" + std::to_string(watchlist_id) + ".index");
}

// Faces fetched per wanted identity: an identity with several enrolled faces fills several
// neighbour slots, and results name identities.
constexpr int kFacesPerIdentity = 4;

}  // namespace

Gallery::Gallery(std::unique_ptr<GalleryStore> store, const GalleryOptions& options)
    : store_(std::move(store)),
      options_(options),
      training_size_(FaceIndex(options.index).min_training_size()) {
  require_thread_safe_blas();  // FAISS trains and searches with BLAS from concurrent requests
  if (!(options_.max_distance_ceiling > 0 && options_.max_distance_ceiling <= 4)) {
    throw Error(ErrorCode::kInvalidArgument, "the max_distance ceiling must be in (0, 4]");
  }
  if (!(options_.suppression_distance >= 0 && options_.suppression_distance <= 2)) {
    throw Error(ErrorCode::kInvalidArgument, "the suppression distance must be in 0..2");
  }
  reload_oversight();
  if (!options_.snapshot_dir.empty()) std::filesystem::create_directories(options_.snapshot_dir);
  std::lock_guard write(write_);
  const std::uint64_t last = store_->last_change();
  for (const Watchlist& w : store_->list_watchlists()) {
    std::string why = "snapshots are off";
    if (!options_.snapshot_dir.empty()) {
      auto snapshot =
          FaceIndex::load(snapshot_path(options_.snapshot_dir, w.id), options_.index, why);
      if (snapshot && snapshot->change_number <= last) {
        indexes_[w.id] = {std::move(snapshot->index), snapshot->change_number};
        load_report_[w.id] = "snapshot";
        continue;
      }
      if (snapshot) why = "the snapshot is newer than the store";
    }
    indexes_[w.id] = {build_index(w.id), last};
    load_report_[w.id] = "rebuilt: " + why;
  }
  catch_up();
}

Gallery::~Gallery() = default;

std::unique_ptr<FaceIndex> Gallery::build_index(std::int64_t watchlist_id) {
  const std::vector<StoredFace> faces = store_->faces_of_watchlist(watchlist_id);
  std::vector<std::int64_t> ids;
  std::vector<Embedding> descriptors;
  for (const StoredFace& f : faces) {
    ids.push_back(f.id);
    descriptors.push_back(f.descriptor);
  }
  auto index = std::make_unique<FaceIndex>(options_.index);
  if (index->needs_training()) {
    if (descriptors.size() < index->min_training_size()) {
      // Too few faces to learn clusters from: exact search is fast at this size anyway.
      FaceIndexOptions exact = options_.index;
      exact.factory = "Flat";
      index = std::make_unique<FaceIndex>(exact);
    } else {
      index->train(descriptors);
    }
  }
  index->add(ids, descriptors);
  return index;
}

void Gallery::catch_up() {
  apply_changes();
  // A watchlist that started below the training size of the configured type got exact
  // search; once it has grown enough, build the configured type. Built outside the index
  // lock so searches go on meanwhile; write_ keeps changes out until the swap.
  std::vector<std::int64_t> grown;
  {
    std::shared_lock lock(indexes_mutex_);
    for (const auto& [id, w] : indexes_) {
      if (w.index->options().factory != options_.index.factory &&
          w.index->size() >= training_size_) {
        grown.push_back(id);
      }
    }
  }
  for (std::int64_t id : grown) {
    auto rebuilt = build_index(id);
    std::unique_lock lock(indexes_mutex_);
    indexes_[id].index = std::move(rebuilt);
    load_report_[id] = "rebuilt as " + options_.index.factory + ": grown to training size";
  }
}

void Gallery::apply_changes() {
  std::unique_lock lock(indexes_mutex_);
  if (indexes_.empty()) return;
  std::uint64_t from = UINT64_MAX;
  for (const auto& [id, w] : indexes_) from = std::min(from, w.applied);
  for (const FaceChange& c : store_->changes_after(from)) {
    auto it = indexes_.find(c.watchlist_id);
    if (it == indexes_.end() || c.sequence <= it->second.applied) continue;
    const std::int64_t one[] = {c.face_id};
    if (c.added) {
      const Embedding descriptor[] = {c.descriptor};
      it->second.index->add(one, descriptor);
    } else {
      it->second.index->remove(one);
    }
    it->second.applied = c.sequence;
  }
  const std::uint64_t last = store_->last_change();
  for (auto& [id, w] : indexes_) w.applied = std::max(w.applied, last);
}

void Gallery::check_max_distance(float max_distance, const std::string& what) const {
  if (max_distance > options_.max_distance_ceiling) {
    char text[160];
    std::snprintf(text, sizeof text,
                  "%s %.4g is looser than this server's ceiling %.4g "
                  "(frs-server --max-distance-ceiling): use a smaller distance",
                  what.c_str(), max_distance, options_.max_distance_ceiling);
    throw Error(ErrorCode::kInvalidArgument, text);
  }
}

float Gallery::threshold_of(const Watchlist& watchlist) const {
  return std::min(watchlist.max_distance, options_.max_distance_ceiling);
}

void Gallery::set_max_distance(const std::string& name, float max_distance,
                               const std::string& threshold_basis) {
  check_max_distance(max_distance, "max_distance");
  store_->set_max_distance(name, max_distance, threshold_basis);
}

void Gallery::reload_oversight() {
  std::map<std::int64_t, std::vector<Authorization>> authorizations;
  for (Authorization& a : store_->list_authorizations(std::nullopt)) {
    authorizations[a.watchlist_id].push_back(std::move(a));
  }
  std::unordered_map<std::int64_t, std::vector<Suppression>> suppressions;
  for (Suppression& x : store_->list_suppressions(std::nullopt)) {
    suppressions[x.identity_id].push_back(std::move(x));
  }
  std::unique_lock lock(oversight_mutex_);
  authorizations_.swap(authorizations);
  suppressions_.swap(suppressions);
}

Authorization Gallery::authorize(const Authorization& authorization) {
  std::lock_guard write(write_);
  const Authorization out = store_->add_authorization(authorization);
  reload_oversight();
  return out;
}

std::vector<Authorization> Gallery::authorizations(std::int64_t watchlist_id) const {
  std::shared_lock lock(oversight_mutex_);
  const auto it = authorizations_.find(watchlist_id);
  return it == authorizations_.end() ? std::vector<Authorization>{} : it->second;
}

std::optional<Authorization> Gallery::authorization_in_force(std::int64_t watchlist_id,
                                                             std::int64_t at_ms) const {
  std::shared_lock lock(oversight_mutex_);
  const auto it = authorizations_.find(watchlist_id);
  if (it == authorizations_.end()) return std::nullopt;
  std::optional<Authorization> longest;
  for (const Authorization& a : it->second) {
    if (a.in_force_at(at_ms) && (!longest || a.valid_until_ms > longest->valid_until_ms)) {
      longest = a;
    }
  }
  return longest;
}

std::vector<Suppression> Gallery::add_suppressions(const std::vector<Suppression>& add) {
  std::lock_guard write(write_);
  auto out = store_->add_suppressions(add);
  reload_oversight();
  return out;
}

std::optional<Suppression> Gallery::lift_suppression(std::int64_t id) {
  std::lock_guard write(write_);
  auto out = store_->remove_suppression(id);
  reload_oversight();
  return out;
}

std::int64_t Gallery::purge_suppressions(std::int64_t before_ms) {
  std::lock_guard write(write_);
  const std::int64_t purged = store_->purge_suppressions(before_ms);
  if (purged > 0) reload_oversight();
  return purged;
}

std::vector<Suppression> Gallery::suppressions_of(std::int64_t identity_id) const {
  std::shared_lock lock(oversight_mutex_);
  const auto it = suppressions_.find(identity_id);
  return it == suppressions_.end() ? std::vector<Suppression>{} : it->second;
}

bool Gallery::suppressed(std::int64_t identity_id, const Embedding& query) const {
  if (options_.suppression_distance <= 0) return false;
  std::shared_lock lock(oversight_mutex_);
  const auto it = suppressions_.find(identity_id);
  if (it == suppressions_.end()) return false;
  for (const Suppression& x : it->second) {
    if (distance(query, x.descriptor) <= options_.suppression_distance) return true;
  }
  return false;
}

Watchlist Gallery::create_watchlist(const Watchlist& watchlist) {
  check_max_distance(watchlist.max_distance, "max_distance");
  std::lock_guard write(write_);
  Watchlist created = store_->create_watchlist(watchlist);
  std::unique_lock lock(indexes_mutex_);
  indexes_[created.id] = {build_index(created.id), store_->last_change()};
  return created;
}

void Gallery::delete_watchlist(const std::string& name) {
  std::lock_guard write(write_);
  const auto w = store_->find_watchlist(name);
  if (!w)
    throw Error(ErrorCode::kNotFound, "watchlist " + quote_for_message(name) + " does not exist");
  store_->delete_watchlist(name);
  {
    std::unique_lock lock(indexes_mutex_);
    indexes_.erase(w->id);
    std::lock_guard centroids(centroids_mutex_);
    centroids_.clear();  // its identities are gone; the others are recomputed when needed
  }
  if (!options_.snapshot_dir.empty()) {
    std::filesystem::remove(snapshot_path(options_.snapshot_dir, w->id));
  }
  catch_up();
  reload_oversight();  // its authorisations and its identities' suppressions are gone
}

Identity Gallery::enroll(const Identity& identity, const std::vector<StoredFace>& faces) {
  std::lock_guard write(write_);
  Identity out = store_->enroll(identity, faces);
  catch_up();
  return out;
}

std::vector<StoredFace> Gallery::add_faces(std::int64_t identity_id,
                                           const std::vector<StoredFace>& faces) {
  std::lock_guard write(write_);
  auto out = store_->add_faces(identity_id, faces);
  catch_up();
  std::unique_lock lock(indexes_mutex_);
  std::lock_guard centroids(centroids_mutex_);
  centroids_.erase(identity_id);
  return out;
}

void Gallery::remove_identity(std::int64_t identity_id) {
  std::lock_guard write(write_);
  store_->remove_identity(identity_id);
  catch_up();
  reload_oversight();
  std::unique_lock lock(indexes_mutex_);
  std::lock_guard centroids(centroids_mutex_);
  centroids_.erase(identity_id);
}

Embedding Gallery::centroid_of(std::int64_t identity_id) {
  {
    std::lock_guard lock(centroids_mutex_);
    const auto it = centroids_.find(identity_id);
    if (it != centroids_.end()) return it->second;
  }
  std::vector<Embedding> descriptors;
  for (const StoredFace& f : store_->faces_of_identity(identity_id)) {
    descriptors.push_back(f.descriptor);
  }
  const Embedding centroid = mean_embedding(descriptors);
  std::lock_guard lock(centroids_mutex_);
  centroids_[identity_id] = centroid;
  return centroid;
}

std::vector<std::vector<Candidate>> Gallery::search(std::span<const Embedding> queries,
                                                    const std::vector<std::string>& watchlists,
                                                    int top_k, std::optional<float> max_distance,
                                                    std::vector<std::string>* missing) {
  if (top_k < 1 || top_k > 1000) {
    throw Error(ErrorCode::kInvalidArgument,
                "top_k must be in 1..1000, got " + std::to_string(top_k));
  }
  if (max_distance && !(*max_distance > 0.0f && *max_distance <= 4.0f)) {
    throw Error(ErrorCode::kInvalidArgument, "max_distance must be in (0, 4]");
  }
  if (watchlists.size() > fields::kMaxNamesPerList) {
    throw Error(ErrorCode::kInvalidArgument,
                "a search names at most " + std::to_string(fields::kMaxNamesPerList) +
                    " watchlists, got " + std::to_string(watchlists.size()) +
                    " (name none to search all)");
  }
  for (std::size_t q = 0; q < queries.size(); ++q) {
    require_finite(queries[q], "query descriptor " + std::to_string(q + 1));
  }
  std::vector<Watchlist> targets;
  if (watchlists.empty()) {
    targets = store_->list_watchlists();
  } else {
    // The names are a set: a watchlist named twice is searched once (its identities would
    // otherwise come twice and push others out of top_k).
    const std::set<std::string> names(watchlists.begin(), watchlists.end());
    for (const std::string& name : names) {
      auto w = store_->find_watchlist(name);
      if (w) {
        targets.push_back(*w);
      } else if (missing != nullptr) {
        missing->push_back(name);
      } else {
        throw Error(ErrorCode::kNotFound,
                    "watchlist " + quote_for_message(name) + " does not exist");
      }
    }
  }

  std::vector<std::vector<Candidate>> results(queries.size());
  std::unordered_map<std::int64_t, std::optional<Identity>> owners;  // face id -> identity
  int suppressed_identities = 0;
  {
    std::shared_lock oversight(oversight_mutex_);
    suppressed_identities = static_cast<int>(std::min<std::size_t>(suppressions_.size(), 100));
  }
  std::shared_lock lock(indexes_mutex_);
  for (const Watchlist& w : targets) {
    auto it = indexes_.find(w.id);
    if (it == indexes_.end()) continue;
    const float threshold = max_distance.value_or(threshold_of(w));
    const bool by_centroid = options_.identity_score == IdentityScore::kCentroid;
    const float radius = by_centroid ? std::min(4.0f, threshold + kCentroidSlack) : threshold;
    // Room for the identities a suppression may leave out, so top_k others still fit.
    const auto found = it->second.index->search(
        queries, (top_k + suppressed_identities) * kFacesPerIdentity, radius);
    for (std::size_t q = 0; q < queries.size(); ++q) {
      std::vector<std::int64_t> scored;  // identities already scored for this query
      for (const Neighbor& n : found[q]) {
        auto owner = owners.find(n.id);
        if (owner == owners.end())
          owner = owners.emplace(n.id, store_->identity_of_face(n.id)).first;
        if (!owner->second) continue;  // removed since the search began
        const std::int64_t identity = owner->second->id;
        if (std::find(scored.begin(), scored.end(), identity) != scored.end()) continue;
        scored.push_back(identity);  // neighbours come nearest first: this is its nearest face
        const float d = by_centroid ? distance(queries[q], centroid_of(identity)) : n.distance;
        if (!(d <= threshold)) continue;                 // NaN-safe: a NaN is never a match
        if (suppressed(identity, queries[q])) continue;  // a person told frs this is not them
        results[q].push_back(
            {identity, owner->second->external_id, owner->second->display_name, w.name, n.id, d});
      }
    }
  }
  for (auto& list : results) {
    std::stable_sort(list.begin(), list.end(), [](const Candidate& a, const Candidate& b) {
      return a.distance < b.distance;
    });
    if (list.size() > static_cast<std::size_t>(top_k)) list.resize(static_cast<std::size_t>(top_k));
  }
  return results;
}

std::size_t Gallery::indexed_faces(std::int64_t watchlist_id) const {
  std::shared_lock lock(indexes_mutex_);
  auto it = indexes_.find(watchlist_id);
  return it == indexes_.end() ? 0 : it->second.index->size();
}

std::map<std::int64_t, std::string> Gallery::load_report() const {
  std::shared_lock lock(indexes_mutex_);
  return load_report_;
}

void Gallery::save_snapshots() {
  if (options_.snapshot_dir.empty()) return;
  std::lock_guard write(write_);
  std::shared_lock lock(indexes_mutex_);
  for (const auto& [id, w] : indexes_) {
    w.index->save(snapshot_path(options_.snapshot_dir, id), w.applied);
  }
}

}  // namespace frs
