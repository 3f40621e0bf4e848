#pragma once
// dlib's 128-D face descriptor network ("dlib_face_recognition_resnet_model_v1"): a
// 29-convolution ResNet over a 150x150 RGB chip. This is our own statement of the
// architecture that dlib's examples/dnn_face_recognition_ex.cpp defines as `anet_type`; the
// converted weights only load into a type with exactly this layer sequence.
//
// Reading order, input first: conv 7x7/2 (32) -> affine -> relu -> max_pool 3x3/2 ->
// 3 residual blocks of 32 -> down-block + 3 of 64 -> down-block + 2 of 128 ->
// down-block + 2 of 256 -> down-block of 256 -> global average -> fc 256->128.
// A residual block is conv3x3 -> affine -> relu -> conv3x3 -> affine, added to its input,
// then relu. A down-block strides its first conv by 2 and adds a 2x2 average pool of its
// input (dlib's add_prev zero-pads the missing channels).
//
// Private to src/facenet/network.cpp: compiling this type costs a minute of CPU per file.

#include <dlib/dnn.h>

#include "frs/facenet/network.h"

namespace frs::facenet {

template <template <int, template <typename> class, int, typename> class Block, int N,
          template <typename> class Norm, typename Subnet>
using residual = dlib::add_prev1<Block<N, Norm, 1, dlib::tag1<Subnet>>>;

template <template <int, template <typename> class, int, typename> class Block, int N,
          template <typename> class Norm, typename Subnet>
using residual_down = dlib::add_prev2<
    dlib::avg_pool<2, 2, 2, 2, dlib::skip1<dlib::tag2<Block<N, Norm, 2, dlib::tag1<Subnet>>>>>>;

template <int N, template <typename> class Norm, int Stride, typename Subnet>
using conv_block =
    Norm<dlib::con<N, 3, 3, 1, 1, dlib::relu<Norm<dlib::con<N, 3, 3, Stride, Stride, Subnet>>>>>;

template <int N, typename Subnet>
using res = dlib::relu<residual<conv_block, N, dlib::affine, Subnet>>;
template <int N, typename Subnet>
using res_down = dlib::relu<residual_down<conv_block, N, dlib::affine, Subnet>>;

template <typename Subnet>
using level0 = res_down<256, Subnet>;
template <typename Subnet>
using level1 = res<256, res<256, res_down<256, Subnet>>>;
template <typename Subnet>
using level2 = res<128, res<128, res_down<128, Subnet>>>;
template <typename Subnet>
using level3 = res<64, res<64, res<64, res_down<64, Subnet>>>>;
template <typename Subnet>
using level4 = res<32, res<32, res<32, Subnet>>>;

using FaceNet = dlib::loss_metric<dlib::fc_no_bias<
    kDescriptorSize, dlib::avg_pool_everything<level0<level1<level2<level3<level4<dlib::max_pool<
                         3, 3, 2, 2,
                         dlib::relu<dlib::affine<dlib::con<
                             32, 7, 7, 2, 2, dlib::input_rgb_image_sized<kChipSize>>>>>>>>>>>>>;

}  // namespace frs::facenet
