#include "frs/gallery/gallery.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <unordered_map>

#include "frs/core/blas.h"
#include "frs/core/error.h"
#include "frs/core/text_fields.h"
#include "frs/vision/descriptor_model.h"

namespace frs {
namespace {

std::filesystem::path snapshot_path(const std::filesystem::path& dir, std::int64_t watchlist_id) {
  return dir / ("watchlist-" + std::to_string(watchlist_id) + ".index");
}

// Faces fetched per wanted identity: an identity with several enrolled faces fills several
// neighbour slots, and results name identities.
constexpr int kFacesPerIdentity = 4;

}  // namespace

void rank_candidates(std::vector<Candidate>& candidates, int top_k) {
  const bool one_model = std::all_of(candidates.begin(), candidates.end(), [&](const Candidate& c) {
    return c.descriptor_model == candidates.front().descriptor_model;
  });
  const auto score = [one_model](const Candidate& c) {
    return one_model || c.threshold <= 0 ? c.distance : c.distance / c.threshold;
  };
  std::stable_sort(candidates.begin(), candidates.end(),
                   [&](const Candidate& a, const Candidate& b) { return score(a) < score(b); });
  if (candidates.size() > static_cast<std::size_t>(top_k)) {
    candidates.resize(static_cast<std::size_t>(top_k));
  }
}

Gallery::Gallery(std::unique_ptr<GalleryStore> store, const GalleryOptions& options)
    : store_(std::move(store)),
      options_(options),
      training_size_(FaceIndex(options.index).min_training_size()) {
  require_thread_safe_blas();  // FAISS trains and searches with BLAS from concurrent requests
  for (const auto& [model, ceiling] : options_.max_distance_ceilings) {
    descriptor_model(model);  // kInvalidArgument naming the known ones
    if (!(ceiling > 0 && ceiling <= 4)) {
      throw Error(ErrorCode::kInvalidArgument,
                  "the max_distance ceiling of " + model + " must be in (0, 4]");
    }
  }
  if (!(options_.suppression_margin >= 0 && options_.suppression_margin <= 1)) {
    throw Error(ErrorCode::kInvalidArgument, "the suppression margin must be in 0..1");
  }
  reload_oversight();
  if (!options_.snapshot_dir.empty()) std::filesystem::create_directories(options_.snapshot_dir);
  std::lock_guard write(write_);
  const std::uint64_t last = store_->last_change();
  for (const Watchlist& w : store_->list_watchlists()) {
    std::string why = "snapshots are off";
    if (!options_.snapshot_dir.empty()) {
      auto snapshot = FaceIndex::load(snapshot_path(options_.snapshot_dir, w.id),
                                      index_options(w.descriptor_model), why);
      if (snapshot && snapshot->change_number <= last) {
        indexes_[w.id] = {std::move(snapshot->index), snapshot->change_number, w.descriptor_model};
        load_report_[w.id] = "snapshot";
        continue;
      }
      if (snapshot) why = "the snapshot is newer than the store";
    }
    indexes_[w.id] = {build_index(w.id, w.descriptor_model), last, w.descriptor_model};
    load_report_[w.id] = "rebuilt: " + why;
  }
  catch_up();
}

Gallery::~Gallery() = default;

FaceIndexOptions Gallery::index_options(const std::string& model) const {
  FaceIndexOptions o = options_.index;
  o.dimension = descriptor_model(model).dimension;
  return o;
}

std::unique_ptr<FaceIndex> Gallery::build_index(
    std::int64_t watchlist_id, const std::string& model,
    const std::vector<std::pair<std::int64_t, Embedding>>* given) {
  std::vector<std::int64_t> ids;
  std::vector<Embedding> descriptors;
  if (given != nullptr) {
    for (const auto& [id, descriptor] : *given) {
      ids.push_back(id);
      descriptors.push_back(descriptor);
    }
  } else {
    for (StoredFace& f : store_->faces_of_watchlist(watchlist_id)) {
      ids.push_back(f.id);
      descriptors.push_back(std::move(f.descriptor));
    }
  }
  auto index = std::make_unique<FaceIndex>(index_options(model));
  if (index->needs_training()) {
    if (descriptors.size() < index->min_training_size()) {
      // Too few faces to learn clusters from: exact search is fast at this size anyway.
      FaceIndexOptions exact = index_options(model);
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
  std::vector<std::pair<std::int64_t, std::string>> grown;
  {
    std::shared_lock lock(indexes_mutex_);
    for (const auto& [id, w] : indexes_) {
      if (w.index->options().factory != options_.index.factory &&
          w.index->size() >= training_size_) {
        grown.emplace_back(id, w.model);
      }
    }
  }
  for (const auto& [id, model] : grown) {
    auto rebuilt = build_index(id, model);
    std::unique_lock lock(indexes_mutex_);
    indexes_[id].index = std::move(rebuilt);
    load_report_[id] = "rebuilt as " + options_.index.factory + ": grown to training size";
  }
}

std::size_t Gallery::apply_changes() {
  std::unique_lock lock(indexes_mutex_);
  if (indexes_.empty()) return 0;
  std::uint64_t from = UINT64_MAX;
  for (const auto& [id, w] : indexes_) from = std::min(from, w.applied);
  // Changes commit in sequence order (the store's write lock), so every change up to the
  // last one read is in this read: none can commit below it later, from any node.
  std::uint64_t read_through = from;
  std::size_t applied = 0;
  for (const FaceChange& c : store_->changes_after(from)) {
    read_through = std::max(read_through, c.sequence);
    auto it = indexes_.find(c.watchlist_id);
    if (it == indexes_.end() || c.sequence <= it->second.applied) continue;
    ++applied;
    if (c.reindex) {
      // Switched to another model by another node (or before a restart): the store's
      // descriptors are all of the new model now. The number is read before the rebuild
      // reads the faces, so a change committed between the two is applied again below
      // (an addition the rebuild has already is skipped), never lost.
      const std::uint64_t covered = store_->last_change();
      const auto w = store_->get_watchlist(c.watchlist_id);
      if (w && w->descriptor_model == it->second.model) {
        // This node made the switch and built the new index already (finish_reembed).
        it->second.applied = c.sequence;
        continue;
      }
      if (w) {
        it->second.model = w->descriptor_model;
        it->second.index = build_index(w->id, w->descriptor_model);
        load_report_[w->id] = "rebuilt: re-embedded with " + w->descriptor_model;
        std::lock_guard centroids(centroids_mutex_);
        centroids_.clear();
      }
      it->second.applied = std::max(c.sequence, covered);
      continue;
    }
    const std::int64_t one[] = {c.face_id};
    if (c.added) {
      const Embedding descriptor[] = {c.descriptor};
      try {
        it->second.index->add(one, descriptor);
      } catch (const Error& e) {
        if (e.code() != ErrorCode::kAlreadyExists) throw;  // a rebuild read it already
      }
    } else {
      it->second.index->remove(one);
    }
    it->second.applied = c.sequence;
  }
  for (auto& [id, w] : indexes_) w.applied = std::max(w.applied, read_through);
  return applied;
}

bool Gallery::sync_with_store() {
  std::lock_guard write(write_);
  const std::vector<Watchlist> stored = store_->list_watchlists();
  std::vector<const Watchlist*> created;
  std::vector<std::int64_t> deleted;
  {
    std::shared_lock lock(indexes_mutex_);
    std::set<std::int64_t> ids;
    for (const Watchlist& w : stored) {
      ids.insert(w.id);
      if (!indexes_.count(w.id)) created.push_back(&w);
    }
    for (const auto& [id, w] : indexes_) {
      if (!ids.count(id)) deleted.push_back(id);
    }
  }
  for (const Watchlist* w : created) {
    // Read before the faces, as in apply_changes: what commits between is applied again.
    const std::uint64_t covered = store_->last_change();
    auto index = build_index(w->id, w->descriptor_model);
    std::unique_lock lock(indexes_mutex_);
    indexes_[w->id] = {std::move(index), covered, w->descriptor_model};
    load_report_[w->id] = "built: created on another node";
  }
  if (!deleted.empty()) {
    std::unique_lock lock(indexes_mutex_);
    for (const std::int64_t id : deleted) {
      indexes_.erase(id);
      load_report_.erase(id);
    }
  }
  for (const std::int64_t id : deleted) {
    if (!options_.snapshot_dir.empty()) {
      std::filesystem::remove(snapshot_path(options_.snapshot_dir, id));
    }
  }
  if (apply_changes() > 0 || !deleted.empty()) {
    // Another node's enrollment changes its identity's centroid; which identity a face
    // belonged to is not in the log, so every centroid is computed afresh when next needed.
    std::unique_lock lock(indexes_mutex_);
    std::lock_guard centroids(centroids_mutex_);
    centroids_.clear();
  }
  catch_up();
  reload_oversight();
  return !created.empty() || !deleted.empty();
}

std::uint64_t Gallery::applied_change() const {
  std::shared_lock lock(indexes_mutex_);
  if (indexes_.empty()) return store_->last_change();
  std::uint64_t applied = UINT64_MAX;
  for (const auto& [id, w] : indexes_) applied = std::min(applied, w.applied);
  return applied;
}

float Gallery::max_distance_ceiling(std::string_view model) const {
  const auto it = options_.max_distance_ceilings.find(model);
  return it == options_.max_distance_ceilings.end() ? 4.0f : it->second;
}

void Gallery::check_max_distance(float max_distance, std::string_view model,
                                 const std::string& what) const {
  const float ceiling = max_distance_ceiling(model);
  if (max_distance > ceiling) {
    char text[240];
    std::snprintf(text, sizeof text,
                  "%s %.4g is looser than this server's ceiling %.4g for %.*s descriptors "
                  "(frs-server --max-distance-ceiling): use a smaller distance",
                  what.c_str(), max_distance, ceiling, static_cast<int>(model.size()),
                  model.data());
    throw Error(ErrorCode::kInvalidArgument, text);
  }
}

float Gallery::threshold_of(const Watchlist& watchlist) const {
  return std::min(watchlist.max_distance, max_distance_ceiling(watchlist.descriptor_model));
}

void Gallery::set_max_distance(const std::string& name, float max_distance,
                               const std::string& threshold_basis) {
  const auto w = store_->find_watchlist(name);
  if (!w)
    throw Error(ErrorCode::kNotFound, "watchlist " + quote_for_message(name) + " does not exist");
  check_max_distance(max_distance, w->descriptor_model, "max_distance");
  store_->set_max_distance(name, max_distance, threshold_basis);
}

std::map<std::string, std::vector<std::string>> Gallery::watchlists_by_model(
    const std::vector<std::string>& watchlists, std::vector<std::string>* missing) {
  std::map<std::int64_t, std::string> models;
  {
    std::shared_lock lock(indexes_mutex_);
    for (const auto& [id, w] : indexes_) models[id] = w.model;
  }
  std::map<std::string, std::vector<std::string>> out;
  auto add = [&](const Watchlist& w) {
    const auto it = models.find(w.id);
    out[it == models.end() ? w.descriptor_model : it->second].push_back(w.name);
  };
  if (watchlists.empty()) {
    for (const Watchlist& w : store_->list_watchlists()) add(w);
    return out;
  }
  for (const std::string& name : std::set<std::string>(watchlists.begin(), watchlists.end())) {
    if (const auto w = store_->find_watchlist(name)) {
      add(*w);
    } else if (missing != nullptr) {
      missing->push_back(name);
    } else {
      throw Error(ErrorCode::kNotFound, "watchlist " + quote_for_message(name) + " does not exist");
    }
  }
  return out;
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

bool Gallery::suppressed(std::int64_t identity_id, const Embedding& query,
                         std::string_view model, float identity_distance) const {
  std::shared_lock lock(oversight_mutex_);
  const auto it = suppressions_.find(identity_id);
  if (it == suppressions_.end()) return false;
  // A fixed radius held only near-copies of the rejected chips: the man a dispatcher
  // rejected came back as the same identity from other frames of his face (issue 28). By
  // rule instead: a face that looks at least about as much like a face rejected as X as
  // like X's own is not X. The real X, far nearer their own photos, is not held back.
  const float reach = identity_distance * (1 + options_.suppression_margin);
  for (const Suppression& x : it->second) {
    // One learnt under another model (before a re-embedding) cannot be compared.
    if (x.descriptor_model != model) continue;
    if (distance(query, x.descriptor) <= reach) return true;
  }
  return false;
}

Watchlist Gallery::create_watchlist(const Watchlist& watchlist) {
  descriptor_model(watchlist.descriptor_model);  // kInvalidArgument naming the known ones
  check_max_distance(watchlist.max_distance, watchlist.descriptor_model, "max_distance");
  std::lock_guard write(write_);
  Watchlist created = store_->create_watchlist(watchlist);
  const std::uint64_t covered = store_->last_change();  // before the faces: see apply_changes
  auto index = build_index(created.id, created.descriptor_model);
  std::unique_lock lock(indexes_mutex_);
  indexes_[created.id] = {std::move(index), covered, created.descriptor_model};
  return created;
}

Watchlist Gallery::finish_reembed(std::int64_t watchlist_id, const std::string& model,
                                  float max_distance, const std::string& threshold_basis) {
  check_max_distance(max_distance, model, "max_distance");
  std::lock_guard write(write_);  // no enrollment between the descriptors read and the switch
  std::vector<std::pair<std::int64_t, Embedding>> made = store_->reembedded(watchlist_id, model);
  auto index = build_index(watchlist_id, model, &made);  // searches go on with the old one
  // Before the switch: another node's enrollment right after it must still be applied.
  const std::uint64_t covered = store_->last_change();
  Watchlist switched = store_->finish_reembed(watchlist_id, model, max_distance, threshold_basis);
  {
    std::unique_lock lock(indexes_mutex_);
    indexes_[watchlist_id] = {std::move(index), covered, model};
    load_report_[watchlist_id] = "rebuilt: re-embedded with " + model;
    std::lock_guard centroids(centroids_mutex_);
    centroids_.clear();
  }
  catch_up();
  return switched;
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

Embedding Gallery::centroid_of(std::int64_t identity_id, std::string_view model) {
  {
    std::lock_guard lock(centroids_mutex_);
    const auto it = centroids_.find(identity_id);
    if (it != centroids_.end()) return it->second;
  }
  std::vector<Embedding> descriptors;
  for (StoredFace& f : store_->faces_of_identity(identity_id)) {
    // Only between a re-embedding's commit and its index swap are there others.
    if (f.descriptor_model == model) descriptors.push_back(std::move(f.descriptor));
  }
  if (descriptors.empty()) return {};
  Embedding centroid = mean_embedding(descriptors);
  // The mean of unit descriptors is shorter than one: back onto the sphere they lie on.
  if (descriptor_model(model).metric == DescriptorMetric::kCosine) normalize(centroid);
  std::lock_guard lock(centroids_mutex_);
  centroids_[identity_id] = centroid;
  return centroid;
}

void Gallery::check_search_names(const std::vector<std::string>& watchlists) {
  if (watchlists.size() > fields::kMaxNamesPerList) {
    throw Error(ErrorCode::kInvalidArgument,
                "a search names at most " + std::to_string(fields::kMaxNamesPerList) +
                    " watchlists, got " + std::to_string(watchlists.size()) +
                    " (name none to search all)");
  }
}

std::vector<std::vector<Candidate>> Gallery::search(std::span<const Embedding> queries,
                                                    std::string_view model,
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
  check_search_names(watchlists);
  const DescriptorModel& query_model = descriptor_model(model);
  for (std::size_t q = 0; q < queries.size(); ++q) {
    const std::string what = "query descriptor " + std::to_string(q + 1);
    require_finite(queries[q], what);
    require_descriptor_of(query_model, queries[q], what);
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
    // The index's model, not the stored row's: they differ only for the moment between a
    // re-embedding's commit and its index swap, and the index is what is searched.
    if (it->second.model != model) {
      if (watchlists.empty()) continue;  // all watchlists: those of this model
      throw Error(ErrorCode::kFailedPrecondition,
                  "watchlist " + quote_for_message(w.name) + " holds " + it->second.model +
                      " descriptors, the query is of " + std::string(model) +
                      ": descriptors of two models cannot be compared");
    }
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
        float d = n.distance;
        if (by_centroid) {
          const Embedding centroid = centroid_of(identity, model);
          if (!centroid.empty()) d = distance(queries[q], centroid);
        }
        if (!(d <= threshold)) continue;                        // NaN-safe: a NaN is never a match
        if (suppressed(identity, queries[q], model, d)) continue;  // a person said: not them
        results[q].push_back({identity, owner->second->external_id, owner->second->display_name,
                              w.name, n.id, d, threshold, it->second.model});
      }
    }
  }
  for (auto& list : results) rank_candidates(list, top_k);
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
