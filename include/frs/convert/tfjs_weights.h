#pragma once
// Reader for TensorFlow.js weight files (a `*-weights_manifest.json` plus its binary shards)
// and the conversion of face-api's copy of dlib's face descriptor network back into dlib's
// own serialised format.

#include <filesystem>
#include <string>
#include <vector>

namespace frs::facenet {
class Network;
}

namespace frs::convert {

// One tensor of a TF.js model, dequantised to float32.
struct TfjsTensor {
  std::string name;           // as in the manifest, e.g. "conv32_1/conv1/conv/filters"
  std::vector<int> shape;     // TF layout; conv filters are [height, width, in, out]
  std::vector<float> values;  // row-major in `shape`
};

// Reads every tensor the manifest lists, in manifest order. Quantised tensors (uint8 and
// uint16, value = min + scale * q) are dequantised; float32 tensors are copied as they are.
// Throws frs::Error naming the file and what is wrong with it (missing shard, shard shorter
// than the manifest says, unknown dtype).
std::vector<TfjsTensor> read_tfjs_weights(const std::filesystem::path& manifest_path);

// Reads the manifest, builds the network and writes it with dlib::serialize to `output`
// (after clean(), so the file holds only the weights).
void convert_face_recognition_model(const std::filesystem::path& manifest_path,
                                    const std::filesystem::path& output);

// Fills `network` with the face-api "face_recognition_model" tensors: filters are moved from
// TF [h,w,in,out] to dlib [out,in,h,w], each `scale` pair becomes the following affine layer,
// `fc` becomes the final fully connected layer. Throws frs::Error when a tensor is missing,
// has the wrong shape, or is left over.
void load_face_api_weights(const std::vector<TfjsTensor>& tensors, facenet::Network& network);

// The face-api block names, input first; each has conv1 and conv2 except the stem.
const std::vector<std::string>& face_api_block_names();

}  // namespace frs::convert
