// Enrollment throughput: photos per second through the same path as the Enroll RPC
// (decode, detect, align, quality checks, embed, thumbnail, SQLite transaction, index
// update), every photo of lfw10 enrolled as its own identity, for 1 and 2 worker threads,
// with the portrait (front-model) detector enrollment uses and, as the baseline in the same
// run, the back model; with the default descriptor model and, on 2 workers, every other.
// Median of 3 runs, each into a fresh store. (The commercial anchor: 300,000 booking photos
// in about three days, ~1.2 photos/s; the target is 50 photos/s.)
//   bench_enrollment_throughput

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "bench_util.h"
#include "frs/gallery/enrollment.h"
#include "frs/gallery/gallery.h"
#include "testdata.h"

using namespace frs;

int main() {
  const auto people = testing::read_identity_tree(testing::testdata_dir() / "lfw10");
  std::vector<std::string> photos;
  for (const auto& p : people) {
    std::ifstream in(p.file, std::ios::binary);
    photos.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  struct Setting {
    int workers;
    bool portrait;
    std::string descriptor;
  };
  const std::string default_model(kDefaultDescriptorId);
  std::vector<Setting> settings = {{1, false, default_model},
                                   {1, true, default_model},
                                   {2, false, default_model},
                                   {2, true, default_model}};
  for (const DescriptorModel& m : descriptor_models()) {
    if (m.id != kDefaultDescriptorId) settings.push_back({2, true, std::string(m.id)});
  }
  std::printf(
      "| workers | detector | descriptor | photos | accepted | photos per second (median of "
      "3) |\n"
      "|---|---|---|---|---|---|\n");
  for (const auto& [workers, portrait, descriptor] : settings) {
    FaceEngineOptions engine_options;
    engine_options.threads = workers;
    engine_options.portrait_detector = portrait;
    engine_options.descriptor = descriptor;
    const FaceEngine engine(engine_options);
    std::vector<double> rates;
    int accepted_count = 0;
    for (int run = 0; run < 3; ++run) {
      const auto dir = std::filesystem::temp_directory_path() /
                       ("frs_bench_enroll_" + std::to_string(::getpid()));
      std::filesystem::remove_all(dir);
      std::filesystem::create_directories(dir);
      {
        Gallery gallery(open_gallery_store(dir / "gallery.db"), GalleryOptions{});
        Watchlist w;
        w.name = "bench";
        w.descriptor_model = descriptor;
        const auto watchlist = gallery.create_watchlist(w);
        std::atomic<std::size_t> next{0};
        std::atomic<int> accepted{0};
        const auto start = std::chrono::steady_clock::now();
        std::vector<std::thread> pool;
        for (int t = 0; t < workers; ++t) {
          pool.emplace_back([&] {
            for (std::size_t i = next++; i < photos.size(); i = next++) {
              const auto& bytes = photos[i];
              const PreparedPhoto p = prepare_photo(
                  engine, {reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()},
                  std::nullopt);
              if (!p.accepted) continue;
              Identity identity;
              identity.watchlist_id = watchlist.id;
              identity.external_id = "photo-" + std::to_string(i);
              gallery.enroll(identity, {p.face});
              ++accepted;
            }
          });
        }
        for (auto& t : pool) t.join();
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        rates.push_back(static_cast<double>(photos.size()) / seconds);
        accepted_count = accepted;
      }
      std::filesystem::remove_all(dir);
    }
    std::printf("| %d | %s | %s%s | %zu | %d | %.1f |\n", workers,
                portrait ? "front model (portrait)" : "back model", descriptor.c_str(),
                descriptor == default_model ? " (default)" : "", photos.size(), accepted_count,
                bench::median(rates));
  }
  return 0;
}
