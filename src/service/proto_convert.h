#pragma once
// Conversions from frs types to API messages shared by the services.

#include <cmath>
#include <opencv2/core.hpp>

#include "frs/v1/gallery.pb.h"

namespace frs::service {

// Pixels, rounded to the nearest integer.
inline void to_proto(const cv::Rect2f& r, ::frs::v1::Box* out) {
  out->set_x(static_cast<int>(std::lround(r.x)));
  out->set_y(static_cast<int>(std::lround(r.y)));
  out->set_width(static_cast<int>(std::lround(r.width)));
  out->set_height(static_cast<int>(std::lround(r.height)));
}

}  // namespace frs::service
