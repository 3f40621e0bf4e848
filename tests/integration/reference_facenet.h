#pragma once
// A second, independent computation of dlib's face descriptor: a plain forward pass written
// with OpenCV matrices straight from face-api's TF-layout tensors, sharing no code with dlib
// or with the converter's layout transposition.

#include <opencv2/core.hpp>
#include <vector>

#include "frs/convert/tfjs_weights.h"
#include "frs/core/embedding.h"

namespace frs::testing {

// `chip_bgr`: a 150x150 8-bit BGR chip.
Embedding reference_descriptor(const std::vector<convert::TfjsTensor>& tensors,
                               const cv::Mat& chip_bgr);

}  // namespace frs::testing
