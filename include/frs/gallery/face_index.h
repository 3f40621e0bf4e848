#pragma once
// A FAISS index of face descriptors, keyed by the gallery's face ids. The index type comes
// from a FAISS index_factory string ("Flat" exact; "HNSW32" or "IVF4096,PQ32x8" for
// millions). Searches run concurrently; changes take an exclusive lock (FAISS's own rule).
// Distances are Euclidean on the raw descriptors (not squared): lower = more alike.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "frs/core/embedding.h"

namespace faiss {
struct Index;
}

namespace frs {

struct FaceIndexOptions {
  // FAISS index_factory description, without an id map (frs keeps ids in IVF lists or
  // adds "IDMap"). Default "Flat" (exact L2). Examples: "HNSW32", "IVF4096,Flat",
  // "IVF4096,PQ32,RFlat" (PQ codes re-ranked by exact distance), "IVF4096,PQ64".
  std::string factory = "Flat";
  // Values per descriptor: the descriptor model's dimension. Default 128 (dlib-resnet-v1);
  // range 1..kMaxEmbeddingSize. Descriptors of another length are refused.
  std::size_t dimension = 128;
  // HNSW: candidates kept while searching; higher = better recall, slower. Default 64,
  // range 1..4096.
  int hnsw_ef_search = 64;
  // IVF: inverted lists visited per query; higher = better recall, slower. Default 16,
  // range 1..number of lists.
  int ivf_nprobe = 16;
  // Refined types ("...,RFlat", "...,Refine(...)"): the coarse search returns top_k times
  // this many candidates, re-ranked by the finer codes. Default 8, range 1..1024.
  int refine_k_factor = 8;
};

struct Neighbor {
  std::int64_t id = -1;  // the face id given to add()
  float distance = 0;    // Euclidean distance to the query; lower = more alike
};

class FaceIndex {
 public:
  // Throws frs::Error(kInvalidArgument) naming the factory string when FAISS rejects it.
  explicit FaceIndex(const FaceIndexOptions& options);
  ~FaceIndex();
  FaceIndex(const FaceIndex&) = delete;
  FaceIndex& operator=(const FaceIndex&) = delete;

  // Index types that cluster or quantise (IVF, PQ) learn from sample descriptors before the
  // first add. True until train() has run for such a type.
  bool needs_training() const;
  // Fewer training descriptors than this make FAISS fail or learn a poor clustering.
  std::size_t min_training_size() const;
  void train(std::span<const Embedding> samples);

  // Adds descriptors under the given ids (same length). An id already present is an error.
  void add(std::span<const std::int64_t> ids, std::span<const Embedding> descriptors);
  // Removes the ids present; returns how many were. Index types that cannot delete (HNSW)
  // hide the ids from searches instead (see tombstones()).
  std::size_t remove(std::span<const std::int64_t> ids);

  // For each query, up to k neighbours nearest first, only those with distance <=
  // max_distance. Thread-safe with other searches.
  std::vector<std::vector<Neighbor>> search(std::span<const Embedding> queries, int k,
                                            float max_distance) const;

  // Changes ivf_nprobe, hnsw_ef_search and refine_k_factor (the factory stays): search
  // speed against recall, tunable without a rebuild. Same ranges as FaceIndexOptions.
  void set_search_options(const FaceIndexOptions& search_options);

  std::size_t size() const;        // searchable descriptors
  std::size_t tombstones() const;  // removed but still stored (HNSW); rebuild when large
  const FaceIndexOptions& options() const { return options_; }

  // Writes the index and the store change number it reflects to `path` atomically (a
  // temporary file renamed over it).
  void save(const std::filesystem::path& path, std::uint64_t change_number) const;

  struct Snapshot {
    std::unique_ptr<FaceIndex> index;
    std::uint64_t change_number = 0;
  };
  // Reads a snapshot written by save(). Returns nullopt, with the reason in `why`, when the
  // file is missing, corrupt, or holds another index type than `options` asks for: the
  // caller then rebuilds from the store.
  static std::optional<Snapshot> load(const std::filesystem::path& path,
                                      const FaceIndexOptions& options, std::string& why);

 private:
  FaceIndex(const FaceIndexOptions& options, faiss::Index* index);
  void apply_search_options();
  bool contains(std::int64_t id) const;  // caller holds mutex_

  FaceIndexOptions options_;
  std::unique_ptr<faiss::Index> index_;
  std::vector<std::int64_t> ids_;                // searchable ids, ascending (8 bytes a face)
  std::unordered_set<std::int64_t> tombstones_;  // removed, still inside index_
  mutable std::shared_mutex mutex_;
};

}  // namespace frs
