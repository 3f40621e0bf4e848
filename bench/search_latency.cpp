// Search latency and recall of the FAISS index types on a large synthetic gallery.
// Descriptors are drawn from a normal distribution with the per-dimension mean and spread
// of real descriptors (the 100 lfw10 photos), so distances between different synthetic
// people resemble real impostor distances. Mated queries are an enrolled descriptor plus
// noise of length 0.4 (the same person seen again); non-mated queries are fresh draws.
// Single queries, one at a time; recall@1 = the mated query's own face ranked first.
//   bench_search_latency [--faces N] [--types Flat,HNSW32,IVF1024,Flat]

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <sstream>

#include "bench_util.h"
#include "frs/gallery/face_index.h"
#include "frs/vision/face_engine.h"
#include "testdata.h"

using namespace frs;

namespace {

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t faces = 100000;
  std::vector<std::string> types = {"Flat", "HNSW32", "IVF1024,Flat"};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--faces") == 0) faces = std::stoul(argv[i + 1]);
    if (std::strcmp(argv[i], "--types") == 0) {
      types.clear();
      // Factory strings contain commas; types are separated by ';'.
      std::stringstream list(argv[i + 1]);
      for (std::string t; std::getline(list, t, ';');) types.push_back(t);
    }
  }

  // Per-dimension mean and standard deviation of real descriptors.
  FaceEngineOptions engine_options;
  engine_options.threads = 2;
  const FaceEngine engine(engine_options);
  std::array<double, kEmbeddingSize> mean{}, var{};
  std::vector<Embedding> real;
  for (const auto& p : testing::read_identity_tree(testing::testdata_dir() / "lfw10")) {
    const auto found = engine.analyze(load_image(p.file));
    if (!found.empty()) real.push_back(*found.front().embedding);
  }
  for (const auto& e : real)
    for (std::size_t d = 0; d < kEmbeddingSize; ++d)
      mean[d] += e[d] / static_cast<double>(real.size());
  for (const auto& e : real)
    for (std::size_t d = 0; d < kEmbeddingSize; ++d)
      var[d] += (e[d] - mean[d]) * (e[d] - mean[d]) / static_cast<double>(real.size());

  std::mt19937 rng(42);
  std::normal_distribution<double> unit(0.0, 1.0);
  auto draw = [&] {
    Embedding e{};
    for (std::size_t d = 0; d < kEmbeddingSize; ++d)
      e[d] = static_cast<float>(mean[d] + std::sqrt(var[d]) * unit(rng));
    return e;
  };
  std::vector<Embedding> gallery(faces);
  std::vector<std::int64_t> ids(faces);
  for (std::size_t i = 0; i < faces; ++i) {
    gallery[i] = draw();
    ids[i] = static_cast<std::int64_t>(i);
  }
  constexpr int kQueries = 500;
  std::vector<Embedding> mated(kQueries), non_mated(kQueries);
  std::vector<std::int64_t> mated_id(kQueries);
  for (int q = 0; q < kQueries; ++q) {
    mated_id[static_cast<std::size_t>(q)] = static_cast<std::int64_t>(rng() % faces);
    Embedding noise{};
    double length = 0;
    for (float& v : noise) {
      v = static_cast<float>(unit(rng));
      length += static_cast<double>(v) * v;
    }
    for (std::size_t d = 0; d < kEmbeddingSize; ++d) {
      mated[static_cast<std::size_t>(q)][d] =
          gallery[static_cast<std::size_t>(mated_id[static_cast<std::size_t>(q)])][d] +
          static_cast<float>(0.4 * noise[d] / std::sqrt(length));
    }
    non_mated[static_cast<std::size_t>(q)] = draw();
  }

  std::printf("Synthetic gallery of %zu faces (from %zu real descriptors), %d queries each.\n\n",
              faces, real.size(), kQueries);
  std::printf(
      "| index | build s | bytes per face | mated p50 ms | mated p99 ms | recall@1 | non-mated p50 "
      "ms | non-mated p99 ms |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (const std::string& type : types) {
    FaceIndexOptions options;
    options.factory = type;
    FaceIndex index(options);
    const auto start = std::chrono::steady_clock::now();
    if (index.needs_training()) index.train(gallery);
    index.add(ids, gallery);
    const double build =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto snapshot = std::filesystem::temp_directory_path() / "frs_bench_index";
    index.save(snapshot, 0);
    const double bytes =
        static_cast<double>(std::filesystem::file_size(snapshot)) / static_cast<double>(faces);
    std::filesystem::remove(snapshot);

    std::vector<double> mated_ms, non_mated_ms;
    int hits = 0;
    for (int q = 0; q < kQueries; ++q) {
      const Embedding one[] = {mated[static_cast<std::size_t>(q)]};
      const auto t0 = std::chrono::steady_clock::now();
      const auto r = index.search(one, 1, 4.0f);
      mated_ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      hits += !r[0].empty() && r[0][0].id == mated_id[static_cast<std::size_t>(q)] ? 1 : 0;
      const Embedding other[] = {non_mated[static_cast<std::size_t>(q)]};
      const auto t1 = std::chrono::steady_clock::now();
      index.search(other, 1, 4.0f);
      non_mated_ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count());
    }
    std::printf("| %s | %.1f | %.0f | %.3f | %.3f | %.3f | %.3f | %.3f |\n", type.c_str(), build,
                bytes, percentile(mated_ms, 0.5), percentile(mated_ms, 0.99),
                static_cast<double>(hits) / kQueries, percentile(non_mated_ms, 0.5),
                percentile(non_mated_ms, 0.99));
    std::fflush(stdout);
  }
  return 0;
}
