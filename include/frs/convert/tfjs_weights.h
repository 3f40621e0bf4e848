#pragma once
// Reader for TensorFlow.js weight files (a `*-weights_manifest.json` plus its binary shards)
// and the conversion of face-api's copy of dlib's face descriptor network back into dlib's
// own serialised format. Free of dlib's headers (its network is in face_api_weights.h), so
// that what only reads tensors or converts files does not compile dlib's DNN templates.

#include <filesystem>
#include <string>
#include <vector>

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

// The face-api block names, input first; each has conv1 and conv2 except the stem.
const std::vector<std::string>& face_api_block_names();

}  // namespace frs::convert
