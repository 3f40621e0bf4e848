#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include "frs/core/error.h"
#include "frs/core/object_pool.h"
#include "frs/vision/aligner.h"
#include "frs/vision/embedder.h"

namespace frs {

struct OnnxFaceEmbedder::Impl {
  ObjectPool<cv::dnn::Net> nets;
};

namespace {

// NCHW float blob of BGR chips, (v - 127) / 128, optionally mirrored left-right.
cv::Mat input_blob(const std::vector<cv::Mat>& chips, std::size_t from, std::size_t to,
                   bool mirror) {
  std::vector<cv::Mat> part;
  part.reserve(to - from);
  for (std::size_t i = from; i < to; ++i) {
    if (!mirror) {
      part.push_back(chips[i]);
      continue;
    }
    cv::Mat flipped;
    cv::flip(chips[i], flipped, 1);
    part.push_back(flipped);
  }
  return cv::dnn::blobFromImages(part, 1.0 / 128.0, cv::Size(), cv::Scalar::all(127),
                                 /*swapRB=*/false, /*crop=*/false, CV_32F);
}

}  // namespace

OnnxFaceEmbedder::OnnxFaceEmbedder(const OnnxEmbedderOptions& options)
    : options_(options), impl_(std::make_unique<Impl>()) {
  if (options.threads < 1 || options.threads > 64) {
    throw Error(ErrorCode::kInvalidArgument,
                "embedder threads must be in 1..64, got " + std::to_string(options.threads));
  }
  if (!std::filesystem::exists(options.model)) {
    throw Error(
        ErrorCode::kFailedPrecondition,
        "face descriptor model '" + options.model.string() +
            "' is missing: run scripts/setup.sh (or models/fetch.sh), or pass --models DIR");
  }
  for (int i = 0; i < options.threads; ++i) {
    try {
      auto net = std::make_unique<cv::dnn::Net>(cv::dnn::readNetFromONNX(options.model.string()));
      if (dimension_ == 0) {
        // One probe pass learns the output size and checks the input shape.
        const cv::Mat probe(kArcFaceChipSize, kArcFaceChipSize, CV_8UC3, cv::Scalar::all(127));
        net->setInput(input_blob({probe}, 0, 1, false));
        const cv::Mat out = net->forward();
        if (out.dims != 2 || out.size[0] != 1 || out.size[1] < 64 || out.size[1] > 4096) {
          throw Error(ErrorCode::kFailedPrecondition,
                      "face descriptor model '" + options.model.string() +
                          "' does not output one descriptor of 64..4096 values per 112x112 chip");
        }
        dimension_ = static_cast<std::size_t>(out.size[1]);
      }
      impl_->nets.add(std::move(net));
    } catch (const cv::Exception& e) {
      throw Error(ErrorCode::kFailedPrecondition,
                  "face descriptor model '" + options.model.string() +
                      "' cannot be loaded (corrupt? re-run models/fetch.sh): " + e.err);
    }
  }
}

OnnxFaceEmbedder::~OnnxFaceEmbedder() = default;

std::vector<Embedding> OnnxFaceEmbedder::embed(const std::vector<cv::Mat>& chips,
                                               const Cancellation& cancel) const {
  for (std::size_t i = 0; i < chips.size(); ++i) {
    if (chips[i].rows != kArcFaceChipSize || chips[i].cols != kArcFaceChipSize ||
        chips[i].type() != CV_8UC3) {
      throw Error(ErrorCode::kInvalidArgument,
                  "chip " + std::to_string(i) + " is " + std::to_string(chips[i].cols) + "x" +
                      std::to_string(chips[i].rows) + "; this descriptor needs 112x112 BGR chips");
    }
  }
  std::vector<Embedding> out(chips.size(), Embedding(dimension_, 0.0f));
  // One chip per forward pass: the graph's reshape is fixed to a batch of one, and a
  // batch of two gave a second row that was not the second chip's descriptor (caught by
  // tests/integration/faceplugin_test.cpp).
  const auto run_share = [&](std::size_t begin, std::size_t end) {
    auto net = impl_->nets.acquire();
    for (std::size_t i = begin; i < end; ++i) {
      cancel.check();
      for (int pass = 0; pass < (options_.flip_average ? 2 : 1); ++pass) {
        net->setInput(input_blob(chips, i, i + 1, pass == 1));
        const cv::Mat result = net->forward();
        if (result.total() != dimension_ || result.type() != CV_32F) {
          throw Error(ErrorCode::kInternal,
                      "the descriptor network returned " + std::to_string(result.total()) +
                          " values for one chip, expected " + std::to_string(dimension_));
        }
        const float* row = result.ptr<float>();
        for (std::size_t d = 0; d < dimension_; ++d) out[i][d] += row[d];
      }
    }
  };
  const std::size_t shares =
      std::min<std::size_t>(static_cast<std::size_t>(options_.threads), chips.size());
  run_in_shares(chips.size(), shares, run_share);
  for (Embedding& e : out) normalize(e);  // of the sum: the mirror pair averages as it should
  return out;
}

}  // namespace frs
