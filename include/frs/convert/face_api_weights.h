#pragma once
// face-api's tensors into dlib's face descriptor network (frs/vision/face_net.h). Apart from
// tfjs_weights.h because it brings in dlib's DNN headers, which cost every file that
// includes them seconds of compiling.

#include <vector>

#include "frs/convert/tfjs_weights.h"
#include "frs/vision/face_net.h"

namespace frs::convert {

// Fills `net` with the face-api "face_recognition_model" tensors: filters are moved from TF
// [h,w,in,out] to dlib [out,in,h,w], each `scale` pair becomes the following affine_ layer
// (in CONV_MODE), `fc` becomes the final fc_no_bias. Throws frs::Error when a tensor is
// missing, has the wrong shape, or is left over.
void load_face_api_weights(const std::vector<TfjsTensor>& tensors, facenet::FaceNet& net);

}  // namespace frs::convert
