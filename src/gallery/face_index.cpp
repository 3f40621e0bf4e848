#include "frs/gallery/face_index.h"

#include <faiss/AutoTune.h>
#include <faiss/IVFlib.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
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
constexpr std::uint32_t kFormatVersion = 1;

const float* data_of(std::span<const Embedding> e) {
  return e.empty() ? nullptr : e.front().data();
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

}  // namespace

FaceIndex::FaceIndex(const FaceIndexOptions& options) : options_(options) {
  if (options.factory.empty() || options.factory.rfind("IDMap", 0) == 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "index type '" + options.factory +
                    "' is not a FAISS factory string without an id map: use e.g. Flat, "
                    "HNSW32 or IVF4096,PQ32x8");
  }
  try {
    index_.reset(faiss::index_factory(static_cast<int>(kEmbeddingSize),
                                      ("IDMap2," + options.factory).c_str(), faiss::METRIC_L2));
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
  faiss::ParameterSpace space;
  try {
    if (options_.factory.find("HNSW") != std::string::npos) {
      space.set_index_parameter(index_.get(), "efSearch", options_.hnsw_ef_search);
    }
    if (faiss::ivflib::try_extract_index_ivf(index_.get()) != nullptr) {
      space.set_index_parameter(index_.get(), "nprobe", options_.ivf_nprobe);
    }
  } catch (const faiss::FaissException& e) {
    throw Error(ErrorCode::kInvalidArgument,
                "cannot set search options on '" + options_.factory + "': " + e.msg);
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
  try {
    index_->train(static_cast<faiss::Index::idx_t>(samples.size()), data_of(samples));
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
  std::unique_lock lock(mutex_);
  if (!index_->is_trained) {
    throw Error(ErrorCode::kFailedPrecondition,
                "index '" + options_.factory + "' must be trained before descriptors are added");
  }
  std::unordered_set<std::int64_t> batch;
  for (std::int64_t id : ids) {
    if (ids_.count(id) || tombstones_.count(id) || !batch.insert(id).second) {
      throw Error(ErrorCode::kAlreadyExists,
                  "face id " + std::to_string(id) + " is already in the index");
    }
  }
  try {
    index_->add_with_ids(static_cast<faiss::Index::idx_t>(ids.size()), data_of(descriptors),
                         ids.data());
  } catch (const faiss::FaissException& e) {
    throw Error(ErrorCode::kInternal,
                "adding to index '" + options_.factory + "' failed: " + e.msg);
  }
  ids_.insert(ids.begin(), ids.end());
}

std::size_t FaceIndex::remove(std::span<const std::int64_t> ids) {
  std::unique_lock lock(mutex_);
  std::vector<faiss::Index::idx_t> present;
  for (std::int64_t id : ids) {
    if (ids_.count(id)) present.push_back(id);
  }
  if (present.empty()) return 0;
  try {
    const faiss::IDSelectorBatch selector(present.size(), present.data());
    index_->remove_ids(selector);
  } catch (const faiss::FaissException&) {
    // HNSW graphs cannot delete: keep the vectors but never return them.
    tombstones_.insert(present.begin(), present.end());
  }
  for (auto id : present) ids_.erase(id);
  return present.size();
}

std::vector<std::vector<Neighbor>> FaceIndex::search(std::span<const Embedding> queries, int k,
                                                     float max_distance) const {
  if (k < 1) throw Error(ErrorCode::kInvalidArgument, "top_k must be at least 1");
  std::shared_lock lock(mutex_);
  std::vector<std::vector<Neighbor>> results(queries.size());
  if (queries.empty() || ids_.empty()) return results;
  // Ask for enough extra neighbours that removed-but-stored vectors cannot crowd out k.
  const auto fetch = static_cast<faiss::Index::idx_t>(std::min<std::size_t>(
      static_cast<std::size_t>(k) + tombstones_.size(), static_cast<std::size_t>(index_->ntotal)));
  std::vector<float> squared(queries.size() * static_cast<std::size_t>(fetch));
  std::vector<faiss::Index::idx_t> labels(squared.size());
  try {
    index_->search(static_cast<faiss::Index::idx_t>(queries.size()), data_of(queries), fetch,
                   squared.data(), labels.data());
  } catch (const faiss::FaissException& e) {
    throw Error(ErrorCode::kInternal, "search in '" + options_.factory + "' failed: " + e.msg);
  }
  for (std::size_t q = 0; q < queries.size(); ++q) {
    for (faiss::Index::idx_t j = 0; j < fetch; ++j) {
      const std::size_t at = q * static_cast<std::size_t>(fetch) + static_cast<std::size_t>(j);
      const auto id = labels[at];
      if (id < 0 || tombstones_.count(id)) continue;
      // FAISS reports squared L2; approximate types can return tiny negatives.
      const float d = std::sqrt(std::max(0.0f, squared[at]));
      if (d > max_distance) continue;
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
  bool ok = in.get(change_number) && in.get(tombstone_count);
  for (std::uint64_t i = 0; ok && i < tombstone_count; ++i) {
    std::int64_t id = 0;
    ok = in.get(id);
    tombstones.insert(id);
  }
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
  auto* id_map = dynamic_cast<faiss::IndexIDMap2*>(index.get());
  if (id_map == nullptr) {
    why = path.string() + " holds an index without an id map";
    return std::nullopt;
  }
  Snapshot snapshot;
  snapshot.change_number = change_number;
  snapshot.index.reset(new FaceIndex(options, index.release()));
  for (auto id : id_map->id_map) {
    if (!tombstones.count(id)) snapshot.index->ids_.insert(id);
  }
  snapshot.index->tombstones_ = std::move(tombstones);
  return snapshot;
}

}  // namespace frs
