#include "frs/vision/embedder.h"

#include <dlib/image_transforms.h>

#include <future>

#include "frs/core/error.h"
#include "frs/core/object_pool.h"
#include "frs/facenet/network.h"

namespace frs {

struct FaceEmbedder::Impl {
  ObjectPool<facenet::Network> nets;
};

FaceEmbedder::FaceEmbedder(const EmbedderOptions& options)
    : options_(options), impl_(std::make_unique<Impl>()) {
  if (options.threads < 1 || options.threads > 64) {
    throw Error(ErrorCode::kInvalidArgument,
                "embedder threads must be in 1..64, got " + std::to_string(options.threads));
  }
  if (options.jitter < 0 || options.jitter > 100) {
    throw Error(ErrorCode::kInvalidArgument, "embedder jitter must be in 0..100 (0 = off), got " +
                                                 std::to_string(options.jitter));
  }
  if (options.batch_size < 1 || options.batch_size > 256) {
    throw Error(ErrorCode::kInvalidArgument,
                "embedder batch_size must be in 1..256, got " + std::to_string(options.batch_size));
  }
  if (!std::filesystem::exists(options.model)) {
    throw Error(
        ErrorCode::kFailedPrecondition,
        "face descriptor model '" + options.model.string() +
            "' is missing: run scripts/setup.sh (or models/fetch.sh), or pass --models DIR");
  }
  auto first = std::make_unique<facenet::Network>(facenet::Network::read(options.model));
  for (int i = 1; i < options.threads; ++i) {
    impl_->nets.add(std::make_unique<facenet::Network>(*first));
  }
  impl_->nets.add(std::move(first));
}

FaceEmbedder::~FaceEmbedder() = default;

void run_in_shares(std::size_t count, std::size_t shares,
                   const std::function<void(std::size_t, std::size_t)>& work) {
  if (count == 0) return;
  if (shares <= 1) {
    work(0, count);
    return;
  }
  std::vector<std::future<void>> jobs;
  const std::size_t per = (count + shares - 1) / shares;
  for (std::size_t begin = 0; begin < count; begin += per) {
    jobs.push_back(std::async(std::launch::async, work, begin, std::min(count, begin + per)));
  }
  for (auto& j : jobs) j.get();
}

namespace {

constexpr unsigned long kJitterSeed = 20261122;

dlib::matrix<dlib::rgb_pixel> to_dlib_rgb(const cv::Mat& chip, bool mirror) {
  dlib::matrix<dlib::rgb_pixel> out(chip.rows, chip.cols);
  for (int y = 0; y < chip.rows; ++y) {
    const cv::Vec3b* row = chip.ptr<cv::Vec3b>(y);
    for (int x = 0; x < chip.cols; ++x) {
      const cv::Vec3b& p = row[mirror ? chip.cols - 1 - x : x];
      out(y, x) = dlib::rgb_pixel(p[2], p[1], p[0]);
    }
  }
  return out;
}

}  // namespace

std::vector<Embedding> FaceEmbedder::embed(const std::vector<cv::Mat>& chips,
                                           const Cancellation& cancel) const {
  for (std::size_t i = 0; i < chips.size(); ++i) {
    if (chips[i].rows != facenet::kChipSize || chips[i].cols != facenet::kChipSize ||
        chips[i].type() != CV_8UC3) {
      throw Error(ErrorCode::kInvalidArgument,
                  "chip " + std::to_string(i) + " is " + std::to_string(chips[i].cols) + "x" +
                      std::to_string(chips[i].rows) + "; the descriptor needs 150x150 BGR chips");
    }
  }
  const int copies = options_.jitter > 0 ? options_.jitter : options_.flip_average ? 2 : 1;
  std::vector<dlib::matrix<dlib::rgb_pixel>> inputs;
  inputs.reserve(chips.size() * static_cast<std::size_t>(copies));
  for (const cv::Mat& chip : chips) {
    if (options_.jitter > 0) {
      const auto original = to_dlib_rgb(chip, false);
      dlib::rand random(kJitterSeed);  // per chip: a chip's descriptor never varies
      for (int j = 0; j < options_.jitter; ++j)
        inputs.push_back(dlib::jitter_image(original, random));
      continue;
    }
    inputs.push_back(to_dlib_rgb(chip, false));
    if (options_.flip_average) inputs.push_back(to_dlib_rgb(chip, true));
  }

  std::vector<dlib::matrix<float, 0, 1>> raw(inputs.size());
  // Split the inputs into one contiguous share per network.
  const std::size_t shares =
      std::min<std::size_t>(static_cast<std::size_t>(options_.threads), inputs.size());
  auto run_share = [&](std::size_t begin, std::size_t end) {
    auto net = impl_->nets.acquire();
    const auto batch = static_cast<std::size_t>(options_.batch_size);
    for (std::size_t from = begin; from < end; from += batch) {
      cancel.check();
      const std::size_t to = std::min(end, from + batch);
      std::vector<dlib::matrix<dlib::rgb_pixel>> part(inputs.begin() + static_cast<long>(from),
                                                      inputs.begin() + static_cast<long>(to));
      auto out = net->describe(part, batch);
      std::move(out.begin(), out.end(), raw.begin() + static_cast<long>(from));
    }
  };
  run_in_shares(inputs.size(), shares, run_share);

  std::vector<Embedding> embeddings;
  embeddings.reserve(chips.size());
  for (std::size_t i = 0; i < chips.size(); ++i) {
    std::vector<Embedding> views(static_cast<std::size_t>(copies));
    for (std::size_t c = 0; c < views.size(); ++c) {
      const auto& d = raw[i * views.size() + c];
      views[c].assign(d.begin(), d.end());
    }
    embeddings.push_back(mean_embedding(views));  // the chip's copies (mirror, jitters)
  }
  return embeddings;
}

}  // namespace frs
