#include "frs/gallery/face_index.h"

#include <faiss/IVFlib.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <mutex>

#include "frs/core/error.h"

namespace frs {
namespace {

constexpr char kMagic[8] = {'F', 'R', 'S', 'F', 'A', 'I', 'S', 'S'};
// 2: the searchable ids are stored; FAISS ids are native for IVF types (no IDMap2).
constexpr std::uint32_t kFormatVersion = 2;

// The descriptors side by side, as FAISS reads them; Error(kFailedPrecondition) for one
// of another length (another descriptor model's).
std::vector<float> packed(std::span<const Embedding> descriptors, std::size_t dimension) {
  std::vector<float> out;
  out.reserve(descriptors.size() * dimension);
  for (std::size_t i = 0; i < descriptors.size(); ++i) {
    if (descriptors[i].size() != dimension) {
      throw Error(ErrorCode::kFailedPrecondition,
                  "descriptor " + std::to_string(i + 1) + " has " +
                      std::to_string(descriptors[i].size()) + " values; this index holds " +
                      std::to_string(dimension) +
                      "-value descriptors of another model: use descriptors of the "
                      "watchlist's model");
    }
    out.insert(out.end(), descriptors[i].begin(), descriptors[i].end());
  }
  return out;
}

// FNV-1a, enough to tell a torn or damaged snapshot from a good one.
std::uint64_t checksum(const std::vector<std::uint8_t>& bytes, std::size_t length) {
  std::uint64_t h = 1469598103934665603ull;
  for (std::size_t i = 0; i < length; ++i) h = (h ^ bytes[i]) * 1099511628211ull;
  return h;
}

template <typename T>
void put(std::vector<std::uint8_t>& out, const T& value) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(&value);
  out.insert(out.end(), p, p + sizeof(T));
}

class Reader {
 public:
  explicit Reader(const std::vector<std::uint8_t>& bytes, std::size_t end)
      : bytes_(bytes), end_(end) {}
  template <typename T>
  bool get(T& value) {
    if (pos_ + sizeof(T) > end_) return false;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool get_bytes(std::size_t n, std::vector<std::uint8_t>& out) {
    if (n > end_ - pos_) return false;
    out.assign(bytes_.begin() + static_cast<long>(pos_),
               bytes_.begin() + static_cast<long>(pos_ + n));
    pos_ += n;
    return true;
  }

 private:
  const std::vector<std::uint8_t>& bytes_;
  std::size_t end_;
  std::size_t pos_ = 0;
};

// The index that does the coarse work, inside frs's id map and FAISS's refine and
// transform ("PCA64,...") wrappers.
faiss::Index* coarse_index(faiss::Index* index) {
  if (auto* id_map = dynamic_cast<faiss::IndexIDMap*>(index)) index = id_map->index;
  if (auto* refine = dynamic_cast<faiss::IndexRefine*>(index)) index = refine->base_index;
  if (auto* transform = dynamic_cast<faiss::IndexPreTransform*>(index)) index = transform->index;
  return index;
}

}  // namespace

FaceIndex::FaceIndex(const FaceIndexOptions& options) : options_(options) {
  if (options.dimension < 1 || options.dimension > kMaxEmbeddingSize) {
    throw Error(ErrorCode::kInvalidArgument, "index dimension must be in 1.." +
                                                 std::to_string(kMaxEmbeddingSize) + ", got " +
                                                 std::to_string(options.dimension));
  }
  if (options.factory.empty() || options.factory.rfind("IDMap", 0) == 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "index type '" + options.factory +
                    "' is not a FAISS factory string without an id map: use e.g. Flat, "
                    "HNSW32 or IVF4096,PQ32x8");
  }
  try {
    std::unique_ptr<faiss::Index> base(faiss::index_factory(
        static_cast<int>(options.dimension), options.factory.c_str(), faiss::METRIC_L2));
    if (auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(coarse_index(base.get()))) {
      // Polysemous training only serves polysemous search, which frs never enables, and
      // took 100 s for a 20k-face gallery.
      ivfpq->do_polysemous_training = false;
    }
    if (dynamic_cast<faiss::IndexIVF*>(base.get()) != nullptr) {
      // IVF lists store 8-byte ids themselves; an id map would add 8 more per face
      // (IDMap2 another ~40 for its reverse hash map).
      index_ = std::move(base);
    } else {
      auto* id_map = new faiss::IndexIDMap(base.release());
      id_map->own_fields = true;
      index_.reset(id_map);
    }
  } catch (const faiss::FaissException& e) {
    throw Error(ErrorCode::kInvalidArgument, "FAISS cannot build index type '" + options.factory +
                                                 "': " + e.msg +
                                                 " (examples: Flat, HNSW32, IVF4096,PQ32x8)");
  }
  apply_search_options();
}

FaceIndex::FaceIndex(const FaceIndexOptions& options, faiss::Index* index)
    : options_(options), index_(index) {
  apply_search_options();
}

FaceIndex::~FaceIndex() = default;

void FaceIndex::apply_search_options() {
  if (options_.hnsw_ef_search < 1 || options_.hnsw_ef_search > 4096) {
    throw Error(ErrorCode::kInvalidArgument, "hnsw_ef_search must be in 1..4096, got " +
                                                 std::to_string(options_.hnsw_ef_search));
  }
  if (options_.ivf_nprobe < 1) {
    throw Error(ErrorCode::kInvalidArgument, "ivf_nprobe must be >= 1");
  }
  if (options_.refine_k_factor < 1 || options_.refine_k_factor > 1024) {
    throw Error(ErrorCode::kInvalidArgument, "refine_k_factor must be in 1..1024, got " +
                                                 std::to_string(options_.refine_k_factor));
  }
  // Set on the FAISS objects themselves: ParameterSpace does not reach an IVF inside a
  // refine wrapper (measured: nprobe stayed 1 and recall@1 fell to 0.51).
  faiss::Index* outer = index_.get();
  if (auto* id_map = dynamic_cast<faiss::IndexIDMap*>(outer)) outer = id_map->index;
  if (auto* refine = dynamic_cast<faiss::IndexRefine*>(outer)) {
    refine->k_factor = static_cast<float>(options_.refine_k_factor);
  }
  faiss::Index* inner = coarse_index(index_.get());
  if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(inner)) {
    hnsw->hnsw.efSearch = options_.hnsw_ef_search;
  }
  if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(inner)) {
    ivf->nprobe = static_cast<std::size_t>(options_.ivf_nprobe);
    // An HNSW coarse quantiser ("IVF65536_HNSW32") must look at least nprobe lists deep.
    if (auto* coarse = dynamic_cast<faiss::IndexHNSW*>(ivf->quantizer)) {
      coarse->hnsw.efSearch = std::max(options_.hnsw_ef_search, options_.ivf_nprobe);
    }
  }
}

void FaceIndex::set_search_options(const FaceIndexOptions& search_options) {
  std::unique_lock lock(mutex_);
  const FaceIndexOptions before = options_;
  options_.ivf_nprobe = search_options.ivf_nprobe;
  options_.hnsw_ef_search = search_options.hnsw_ef_search;
  options_.refine_k_factor = search_options.refine_k_factor;
  try {
    apply_search_options();
  } catch (const Error&) {
    options_ = before;
    throw;
  }
}

bool FaceIndex::needs_training() const {
  std::shared_lock lock(mutex_);
  return !index_->is_trained;
}

std::size_t FaceIndex::min_training_size() const {
  std::shared_lock lock(mutex_);
  if (index_->is_trained) return 0;
  // FAISS's k-means wants at least 39 points per centroid; PQ sub-quantisers have 256.
  std::size_t n = 0;
  if (const faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index_.get())) {
    n = 39 * ivf->nlist;
  }
  if (options_.factory.find("PQ") != std::string::npos) n = std::max<std::size_t>(n, 39 * 256);
  return std::max<std::size_t>(n, 1);
}

void FaceIndex::train(std::span<const Embedding> samples) {
  std::unique_lock lock(mutex_);
  if (faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(index_.get())) {
    // FAISS samples up to 256 points per list; 64 cluster as well here and train a
    // 10M-face gallery in minutes instead of an hour on two cores.
    ivf->cp.max_points_per_centroid = 64;
  }
  try {
    const std::vector<float> data = packed(samples, options_.dimension);
    index_->train(static_cast<faiss::Index::idx_t>(samples.size()), data.data());
  } catch (const faiss::FaissException& e) {
    throw Error(ErrorCode::kInvalidArgument, "training '" + options_.factory + "' on " +
                                                 std::to_string(samples.size()) +
                                                 " descriptors failed: " + e.msg);
  }
}

void FaceIndex::add(std::span<const std::int64_t> ids, std::span<const Embedding> descriptors) {
  if (ids.size() != descriptors.size()) {
    throw Error(ErrorCode::kInvalidArgument, "add: " + std::to_string(ids.size()) + " ids for " +
                                                 std::to_string(descriptors.size()) +
                                                 " descriptors");
  }
  for (std::size_t i = 0; i < descriptors.size(); ++i) {
    require_finite(descriptors[i], "the descriptor of face " + std::to_string(ids[i]));
  }
  const std::vector<float> data = packed(descriptors, options_.dimension);
  std::unique_lock lock(mutex_);
  if (!index_->is_trained) {
    throw Error(ErrorCode::kFailedPrecondition,
                "index '" + options_.factory + "' must be trained before descriptors are added");
  }
  std::vector<std::int64_t> sorted(ids.begin(), ids.end());
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const std::int64_t id = sorted[i];
    if ((i > 0 && sorted[i - 1] == id) || contains(id) || tombstones_.count(id)) {
      throw Error(ErrorCode::kAlreadyExists,
                  "face id " + std::to_string(id) + " is already in the index");
    }
  }
  try {
    index_->add_with_ids(static_cast<faiss::Index::idx_t>(ids.size()), data.data(), ids.data());
  } catch (const faiss::FaissException& e) {
    throw Error(ErrorCode::kInternal,
                "adding to index '" + options_.factory + "' failed: " + e.msg);
  }
  // Store ids grow, so this is usually an append.
  const auto middle = static_cast<std::ptrdiff_t>(ids_.size());
  ids_.insert(ids_.end(), sorted.begin(), sorted.end());
  if (middle > 0 && !sorted.empty() &&
      sorted.front() < ids_[static_cast<std::size_t>(middle) - 1]) {
    std::inplace_merge(ids_.begin(), ids_.begin() + middle, ids_.end());
  }
}

bool FaceIndex::contains(std::int64_t id) const {
  return std::binary_search(ids_.begin(), ids_.end(), id);
}

std::size_t FaceIndex::remove(std::span<const std::int64_t> ids) {
  std::unique_lock lock(mutex_);
  std::vector<faiss::Index::idx_t> present;
  for (std::int64_t id : ids) {
    if (contains(id)) present.push_back(id);
  }
  std::sort(present.begin(), present.end());
  present.erase(std::unique(present.begin(), present.end()), present.end());
  if (present.empty()) return 0;
  try {
    const faiss::IDSelectorBatch selector(present.size(), present.data());
    index_->remove_ids(selector);
  } catch (const faiss::FaissException&) {
    // HNSW graphs and refined indexes cannot delete: keep the vectors, never return them.
    tombstones_.insert(present.begin(), present.end());
  }
  std::vector<std::int64_t> kept;
  kept.reserve(ids_.size() - present.size());
  std::set_difference(ids_.begin(), ids_.end(), present.begin(), present.end(),
                      std::back_inserter(kept));
  ids_ = std::move(kept);
  return present.size();
}

std::vector<std::vector<Neighbor>> FaceIndex::search(std::span<const Embedding> queries, int k,
                                                     float max_distance) const {
  if (k < 1) throw Error(ErrorCode::kInvalidArgument, "top_k must be at least 1");
  for (std::size_t q = 0; q < queries.size(); ++q) {
    require_finite(queries[q], "query descriptor " + std::to_string(q + 1));
  }
  const std::vector<float> data = packed(queries, options_.dimension);
  std::shared_lock lock(mutex_);
  std::vector<std::vector<Neighbor>> results(queries.size());
  if (queries.empty() || ids_.empty()) return results;
  // Ask for enough extra neighbours that removed-but-stored vectors cannot crowd out k.
  const auto fetch = static_cast<faiss::Index::idx_t>(std::min<std::size_t>(
      static_cast<std::size_t>(k) + tombstones_.size(), static_cast<std::size_t>(index_->ntotal)));
  std::vector<float> squared(queries.size() * static_cast<std::size_t>(fetch));
  std::vector<faiss::Index::idx_t> labels(squared.size());
  try {
    index_->search(static_cast<faiss::Index::idx_t>(queries.size()), data.data(), fetch,
                   squared.data(), labels.data());
  } catch (const faiss::FaissException& e) {
    throw Error(ErrorCode::kInternal, "search in '" + options_.factory + "' failed: " + e.msg);
  }
  for (std::size_t q = 0; q < queries.size(); ++q) {
    for (faiss::Index::idx_t j = 0; j < fetch; ++j) {
      const std::size_t at = q * static_cast<std::size_t>(fetch) + static_cast<std::size_t>(j);
      const auto id = labels[at];
      if (id < 0 || tombstones_.count(id)) continue;
      // FAISS reports squared L2; approximate types can return tiny negatives. Written so
      // that a NaN (std::max(0, NaN) is 0) never counts as near.
      if (std::isnan(squared[at])) continue;
      const float d = std::sqrt(std::max(0.0f, squared[at]));
      if (!(d <= max_distance)) continue;
      results[q].push_back({id, d});
      if (results[q].size() == static_cast<std::size_t>(k)) break;
    }
  }
  return results;
}

std::size_t FaceIndex::size() const {
  std::shared_lock lock(mutex_);
  return ids_.size();
}

std::size_t FaceIndex::tombstones() const {
  std::shared_lock lock(mutex_);
  return tombstones_.size();
}

void FaceIndex::save(const std::filesystem::path& path, std::uint64_t change_number) const {
  std::vector<std::uint8_t> out(kMagic, kMagic + sizeof kMagic);
  {
    std::shared_lock lock(mutex_);
    put(out, kFormatVersion);
    put(out, static_cast<std::uint32_t>(options_.factory.size()));
    out.insert(out.end(), options_.factory.begin(), options_.factory.end());
    put(out, change_number);
    put(out, static_cast<std::uint64_t>(tombstones_.size()));
    for (std::int64_t id : tombstones_) put(out, id);
    put(out, static_cast<std::uint64_t>(ids_.size()));
    for (std::int64_t id : ids_) put(out, id);
    faiss::VectorIOWriter writer;
    faiss::write_index(index_.get(), &writer);
    put(out, static_cast<std::uint64_t>(writer.data.size()));
    out.insert(out.end(), writer.data.begin(), writer.data.end());
  }
  put(out, checksum(out, out.size()));

  const auto partial = std::filesystem::path(path.string() + ".partial");
  {
    std::ofstream file(partial, std::ios::binary | std::ios::trunc);
    file.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size()));
    file.flush();
    if (!file) {
      throw Error(ErrorCode::kInternal, "cannot write index snapshot '" + partial.string() + "'");
    }
  }
  std::filesystem::rename(partial, path);
}

std::optional<FaceIndex::Snapshot> FaceIndex::load(const std::filesystem::path& path,
                                                   const FaceIndexOptions& options,
                                                   std::string& why) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    why = "no snapshot at " + path.string();
    return std::nullopt;
  }
  const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(file)),
                                        std::istreambuf_iterator<char>());
  if (bytes.size() < sizeof kMagic + sizeof(std::uint64_t) ||
      std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    why = path.string() + " is not an frs index snapshot";
    return std::nullopt;
  }
  const std::size_t body = bytes.size() - sizeof(std::uint64_t);
  std::uint64_t stored_sum = 0;
  std::memcpy(&stored_sum, bytes.data() + body, sizeof stored_sum);
  if (stored_sum != checksum(bytes, body)) {
    why = path.string() + " is damaged (checksum mismatch)";
    return std::nullopt;
  }
  Reader in(bytes, body);
  std::vector<std::uint8_t> skip, factory_bytes, index_bytes;
  std::uint32_t version = 0, factory_length = 0;
  std::uint64_t change_number = 0, tombstone_count = 0, index_length = 0;
  in.get_bytes(sizeof kMagic, skip);
  if (!in.get(version) || version != kFormatVersion || !in.get(factory_length) ||
      !in.get_bytes(factory_length, factory_bytes)) {
    why = path.string() + " has an unknown snapshot format";
    return std::nullopt;
  }
  const std::string factory(factory_bytes.begin(), factory_bytes.end());
  if (factory != options.factory) {
    why = path.string() + " holds a '" + factory + "' index, the configuration asks for '" +
          options.factory + "'";
    return std::nullopt;
  }
  std::unordered_set<std::int64_t> tombstones;
  std::vector<std::int64_t> ids;
  std::uint64_t id_count = 0;
  bool ok = in.get(change_number) && in.get(tombstone_count);
  for (std::uint64_t i = 0; ok && i < tombstone_count; ++i) {
    std::int64_t id = 0;
    ok = in.get(id);
    tombstones.insert(id);
  }
  ok = ok && in.get(id_count) && id_count <= body / sizeof(std::int64_t);
  if (ok) ids.resize(id_count);
  for (std::uint64_t i = 0; ok && i < id_count; ++i) ok = in.get(ids[i]);
  ok = ok && in.get(index_length) && in.get_bytes(index_length, index_bytes);
  if (!ok) {
    why = path.string() + " is truncated";
    return std::nullopt;
  }
  faiss::VectorIOReader reader;
  reader.data = std::move(index_bytes);
  std::unique_ptr<faiss::Index> index;
  try {
    index.reset(faiss::read_index(&reader));
  } catch (const faiss::FaissException& e) {
    why = path.string() + ": FAISS cannot read the index: " + e.msg;
    return std::nullopt;
  }
  if (static_cast<std::size_t>(index->d) != options.dimension) {
    why = path.string() + " holds " + std::to_string(index->d) +
          "-value descriptors, the watchlist's model has " + std::to_string(options.dimension);
    return std::nullopt;
  }
  if (static_cast<std::uint64_t>(index->ntotal) != ids.size() + tombstones.size() ||
      !std::is_sorted(ids.begin(), ids.end())) {
    why = path.string() + " lists other faces than its index holds";
    return std::nullopt;
  }
  Snapshot snapshot;
  snapshot.change_number = change_number;
  snapshot.index.reset(new FaceIndex(options, index.release()));
  snapshot.index->ids_ = std::move(ids);
  snapshot.index->tombstones_ = std::move(tombstones);
  return snapshot;
}

}  // namespace frs
