// Search latency, recall and memory of the FAISS index types on a large synthetic gallery.
// Descriptors are drawn from a normal distribution with the mean and full covariance of
// every face in the shared test photos, so synthetic people spread like real ones
// (along the few directions real faces vary in, not evenly in all 128) and their distances
// resemble real impostor distances. Mated queries are an enrolled descriptor plus
// a change of length 0.4 drawn from how real photos of one person differ (lfw10, crops: the
// same person seen again, the case an alert depends on; --mated-noise isotropic draws the
// direction uniformly instead);
// non-mated queries are fresh draws (nobody enrolled). Single queries, one at a time, on
// one thread. recall@1 = the index's first answer is exact search's first answer.
//   bench_search_latency [--faces N] [--queries Q]
//       [--types "Flat;HNSW32;IVF4096,Flat;IVF4096,PQ32,RFlat"]
//       [--nprobe "8,16,32"] [--ef "64,128"] [--k-factor "8"] [--mated-noise isotropic]
// Each search setting of a type is measured on the same built index.

#include <faiss/utils/distances.h>
#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <opencv2/core.hpp>
#include <random>
#include <span>
#include <sstream>
#include <thread>

#include "bench_util.h"
#include "frs/core/error.h"
#include "frs/gallery/face_index.h"
#include "frs/vision/face_engine.h"
#include "testdata.h"

using namespace frs;

namespace {

std::vector<int> split_ints(const std::string& text) {
  std::vector<int> values;
  for (const auto& t : bench::split(text, ',')) values.push_back(std::stoi(t));
  return values;
}

// Resident memory of this process in bytes, after returning freed heap to the system.
double resident_bytes() {
  malloc_trim(0);
  std::ifstream statm("/proc/self/statm");
  double size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<double>(sysconf(_SC_PAGESIZE));
}

// The descriptors this benchmark draws: dlib-resnet-v1's.
constexpr int kDimension = 128;

// A multivariate normal distribution: draws are mean + standard normal * mixing.
struct Gaussian {
  cv::Mat mean;    // 1 x 128
  cv::Mat mixing;  // 128 x 128: eigenvectors scaled by the square roots of the eigenvalues
  void draw(std::mt19937& rng, Embedding* out, std::size_t count) const {
    std::normal_distribution<float> unit(0.0f, 1.0f);
    cv::Mat z(static_cast<int>(count), kDimension, CV_32F);
    for (int i = 0; i < z.rows; ++i)
      for (int d = 0; d < z.cols; ++d) z.at<float>(i, d) = unit(rng);
    cv::Mat x;
    cv::gemm(z, mixing, 1.0, cv::repeat(mean, z.rows, 1), 1.0, x);
    for (int i = 0; i < x.rows; ++i) out[i].assign(x.ptr<float>(i), x.ptr<float>(i) + kDimension);
  }
};

Gaussian fit_gaussian(std::vector<Embedding>& samples) {
  cv::Mat rows(static_cast<int>(samples.size()), kDimension, CV_32F);
  for (int i = 0; i < rows.rows; ++i) {
    std::copy(samples[static_cast<std::size_t>(i)].begin(),
              samples[static_cast<std::size_t>(i)].end(), rows.ptr<float>(i));
  }
  Gaussian g;
  cv::Mat covariance, eigenvalues;
  cv::calcCovarMatrix(rows, covariance, g.mean, cv::COVAR_NORMAL | cv::COVAR_ROWS | cv::COVAR_SCALE,
                      CV_32F);
  cv::eigen(covariance, eigenvalues, g.mixing);
  for (int r = 0; r < g.mixing.rows; ++r) {
    g.mixing.row(r) *= std::sqrt(std::max(0.0f, eigenvalues.at<float>(r)));
  }
  return g;
}

struct Queries {
  std::vector<Embedding> vectors;
  std::vector<std::int64_t> exact_first;  // exact search's nearest face
};

std::vector<float> packed(std::span<const Embedding> descriptors) {
  std::vector<float> out;
  out.reserve(descriptors.size() * kDimension);
  for (const Embedding& e : descriptors) out.insert(out.end(), e.begin(), e.end());
  return out;
}

// In blocks of the gallery, so that no second copy of a 10M-face gallery is made.
void exact_nearest(const std::vector<Embedding>& gallery, Queries& q) {
  constexpr std::size_t kBlock = 100000;
  const std::vector<float> queries = packed(q.vectors);
  std::vector<float> best(q.vectors.size(), std::numeric_limits<float>::infinity());
  q.exact_first.assign(q.vectors.size(), -1);
  std::vector<float> distances(q.vectors.size());
  std::vector<std::int64_t> labels(q.vectors.size());
  for (std::size_t begin = 0; begin < gallery.size(); begin += kBlock) {
    const std::size_t count = std::min(kBlock, gallery.size() - begin);
    const std::vector<float> block =
        packed(std::span<const Embedding>(gallery).subspan(begin, count));
    faiss::knn_L2sqr(queries.data(), block.data(), kDimension, q.vectors.size(), count, 1,
                     distances.data(), labels.data());
    for (std::size_t i = 0; i < q.vectors.size(); ++i) {
      if (labels[i] >= 0 && distances[i] < best[i]) {
        best[i] = distances[i];
        q.exact_first[i] = static_cast<std::int64_t>(begin) + labels[i];
      }
    }
  }
}

struct Measured {
  double p50 = 0, p99 = 0, recall = 0;
};

Measured measure(const FaceIndex& index, const Queries& q) {
  std::vector<double> ms;
  int hits = 0;
  for (std::size_t i = 0; i < q.vectors.size(); ++i) {
    const Embedding one[] = {q.vectors[i]};
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = index.search(one, 1, 4.0f);
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    hits += !r[0].empty() && r[0][0].id == q.exact_first[i] ? 1 : 0;
  }
  return {bench::percentile(ms, 0.5), bench::percentile(ms, 0.99),
          static_cast<double>(hits) / static_cast<double>(q.vectors.size())};
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t faces = 100000;
  int query_count = 500;
  std::vector<std::string> types = {"Flat", "HNSW32", "IVF1024,Flat"};
  std::vector<int> nprobes = {16}, efs = {64}, k_factors = {8};
  bool isotropic_noise = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--faces") faces = std::stoul(value);
    if (flag == "--queries") query_count = std::stoi(value);
    if (flag == "--types") types = bench::split(value, ';');  // factory strings contain commas
    if (flag == "--nprobe") nprobes = split_ints(value);
    if (flag == "--ef") efs = split_ints(value);
    if (flag == "--k-factor") k_factors = split_ints(value);
    if (flag == "--mated-noise") isotropic_noise = value == "isotropic";
  }

  // Mean and covariance of real descriptors; draws are mean + eigenvectors * (sqrt(eigen
  // values) * standard normal).
  std::vector<Embedding> real;
  // How one person's descriptors differ from that person's mean (lfw10: 10 photos of each
  // of 10 people; crops: 20 of each of 5).
  std::vector<Embedding> within_person;
  {
    FaceEngineOptions engine_options;
    engine_options.threads = 2;
    const FaceEngine engine(engine_options);
    std::map<std::string, std::vector<Embedding>> by_person;
    for (const auto& p : testing::read_identity_tree(testing::testdata_dir() / "lfw10")) {
      const auto found = engine.analyze(load_image(p.file));
      if (!found.empty()) by_person["lfw10/" + p.identity].push_back(*found.front().embedding);
    }
    for (const auto& entry :
         std::filesystem::directory_iterator(testing::testdata_dir() / "crops")) {
      const auto found = engine.analyze(load_image(entry.path()));
      const std::string name = entry.path().filename().string();
      if (!found.empty()) {
        by_person["crops/" + name.substr(0, name.find('_'))].push_back(*found.front().embedding);
      }
    }
    for (const auto& [person, descriptors] : by_person) {
      const Embedding centre = mean_embedding(descriptors);
      for (const Embedding& e : descriptors) {
        Embedding r(kDimension);
        for (std::size_t d = 0; d < kDimension; ++d) r[d] = e[d] - centre[d];
        within_person.push_back(r);
      }
    }
    // Every face of every photo (group photos add many people).
    for (const char* set : {"lfw10", "crops", "faces", "groups"}) {
      for (const auto& entry :
           std::filesystem::recursive_directory_iterator(testing::testdata_dir() / set)) {
        if (!entry.is_regular_file()) continue;
        try {
          for (const auto& face : engine.analyze(load_image(entry.path()))) {
            if (face.embedding) real.push_back(*face.embedding);
          }
        } catch (const Error&) {
          // not a photo (README, licence) or one frs refuses: nothing to learn from
        }
      }
    }
  }
  const Gaussian people = fit_gaussian(real);
  const Gaussian same_person = fit_gaussian(within_person);
  auto draw_rows = [&](std::mt19937& rng, Embedding* out, std::size_t count) {
    people.draw(rng, out, count);
  };

  const auto generate_start = std::chrono::steady_clock::now();
  std::vector<Embedding> gallery(faces);
  std::vector<std::int64_t> ids(faces);
  for (std::size_t i = 0; i < faces; ++i) ids[i] = static_cast<std::int64_t>(i);
  {
    // Two generator threads, each with its own seeded stream, in blocks of 50k draws.
    constexpr std::size_t kThreads = 2, kBlock = 50000;
    std::vector<std::thread> workers;
    for (std::size_t t = 0; t < kThreads; ++t) {
      workers.emplace_back([&, t] {
        std::mt19937 rng(static_cast<unsigned>(42 + t));
        for (std::size_t begin = t * kBlock; begin < faces; begin += kThreads * kBlock) {
          draw_rows(rng, gallery.data() + begin, std::min(kBlock, faces - begin));
        }
      });
    }
    for (auto& w : workers) w.join();
  }
  std::mt19937 rng(7);
  std::normal_distribution<double> unit(0.0, 1.0);
  Queries mated, non_mated;
  for (int q = 0; q < query_count; ++q) {
    const Embedding& enrolled = gallery[rng() % faces];
    // The same person again: a change of the kind real photos of one person show, or
    // (--mated-noise isotropic) one in a uniformly random direction; length 0.4 either way.
    Embedding noise(kDimension);
    if (isotropic_noise) {
      for (float& v : noise) v = static_cast<float>(unit(rng));
    } else {
      same_person.draw(rng, &noise, 1);
      for (std::size_t d = 0; d < kDimension; ++d)
        noise[d] -= same_person.mean.at<float>(0, static_cast<int>(d));
    }
    double length = 0;
    for (float v : noise) length += static_cast<double>(v) * v;
    Embedding seen(kDimension);
    for (std::size_t d = 0; d < kDimension; ++d)
      seen[d] = enrolled[d] + static_cast<float>(0.4 * noise[d] / std::sqrt(length));
    mated.vectors.push_back(seen);
    Embedding stranger;
    draw_rows(rng, &stranger, 1);
    non_mated.vectors.push_back(stranger);
  }
  exact_nearest(gallery, mated);
  exact_nearest(gallery, non_mated);
  const double generate_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - generate_start).count();

  std::printf(
      "Synthetic gallery of %zu faces (from %zu real descriptors), %d mated (%s change) and %d "
      "non-mated single queries on one thread; gallery and exact answers took %.0f s.\n\n",
      faces, real.size(), query_count, isotropic_noise ? "isotropic" : "same-person", query_count,
      generate_s);
  std::printf(
      "| index | search setting | build s | snapshot bytes/face | resident bytes/face | mated "
      "p50 ms | mated p99 ms | mated recall@1 | non-mated p50 ms | non-mated p99 ms | non-mated "
      "recall@1 |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);
  for (const std::string& type : types) {
    FaceIndexOptions options;
    options.factory = type;
    const double resident_before = resident_bytes();
    const auto start = std::chrono::steady_clock::now();
    FaceIndex index(options);
    if (index.needs_training()) index.train(gallery);
    // In blocks: FaceIndex::add packs what it is given, and one block's copy is small.
    for (std::size_t begin = 0; begin < faces; begin += 100000) {
      const std::size_t count = std::min<std::size_t>(100000, faces - begin);
      index.add(std::span<const std::int64_t>(ids).subspan(begin, count),
                std::span<const Embedding>(gallery).subspan(begin, count));
    }
    const double build =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double resident = (resident_bytes() - resident_before) / static_cast<double>(faces);
    const auto snapshot = std::filesystem::temp_directory_path() / "frs_bench_index";
    index.save(snapshot, 0);
    const double bytes =
        static_cast<double>(std::filesystem::file_size(snapshot)) / static_cast<double>(faces);
    std::filesystem::remove(snapshot);

    // Only the settings that apply to this type.
    std::vector<std::pair<std::string, FaceIndexOptions>> settings;
    const bool ivf = type.find("IVF") != std::string::npos;
    const bool hnsw = type.find("HNSW") != std::string::npos;
    const bool refine =
        type.find("Refine") != std::string::npos || type.find("RFlat") != std::string::npos;
    for (int nprobe : ivf ? nprobes : std::vector<int>{16}) {
      for (int ef : hnsw ? efs : std::vector<int>{64}) {
        for (int k_factor : refine ? k_factors : std::vector<int>{8}) {
          FaceIndexOptions s = options;
          s.ivf_nprobe = nprobe;
          s.hnsw_ef_search = ef;
          s.refine_k_factor = k_factor;
          std::string name;
          if (ivf) name += "nprobe " + std::to_string(nprobe) + " ";
          if (hnsw) name += "efSearch " + std::to_string(ef) + " ";
          if (refine) name += "k_factor " + std::to_string(k_factor);
          settings.emplace_back(name.empty() ? "-" : name, s);
        }
      }
    }
    for (const auto& [name, s] : settings) {
      index.set_search_options(s);
      const Measured m = measure(index, mated);
      const Measured n = measure(index, non_mated);
      std::printf("| %s | %s | %.1f | %.0f | %.0f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |\n",
                  type.c_str(), name.c_str(), build, bytes, resident, m.p50, m.p99, m.recall, n.p50,
                  n.p99, n.recall);
      std::fflush(stdout);
    }
  }
  return 0;
}
