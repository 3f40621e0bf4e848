#include "frs/convert/tfjs_weights.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "frs/core/error.h"
#include "frs/facenet/network.h"

namespace frs::convert {
namespace {

using nlohmann::json;

std::vector<char> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error(ErrorCode::kNotFound,
                "cannot open '" + path.string() + "': run models/fetch.sh to download it");
  }
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::size_t element_count(const std::vector<int>& shape) {
  std::size_t n = 1;
  for (int d : shape) n *= static_cast<std::size_t>(d);
  return n;
}

std::string shape_text(const std::vector<int>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

std::vector<TfjsTensor> read_tfjs_weights(const std::filesystem::path& manifest_path) {
  const std::vector<char> manifest_bytes = read_file(manifest_path);
  json manifest;
  try {
    manifest = json::parse(manifest_bytes.begin(), manifest_bytes.end());
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kInvalidArgument,
                "'" + manifest_path.string() + "' is not valid JSON: " + e.what());
  }
  if (!manifest.is_array()) {
    throw Error(
        ErrorCode::kInvalidArgument,
        "'" + manifest_path.string() + "' is not a TF.js weights manifest (expected an array)");
  }

  std::vector<TfjsTensor> tensors;
  const auto dir = manifest_path.parent_path();
  try {
    for (const json& group : manifest) {
      std::vector<char> data;
      for (const json& shard : group.at("paths")) {
        const std::vector<char> bytes = read_file(dir / shard.get<std::string>());
        data.insert(data.end(), bytes.begin(), bytes.end());
      }
      std::size_t offset = 0;
      for (const json& w : group.at("weights")) {
        TfjsTensor t;
        t.name = w.at("name").get<std::string>();
        t.shape = w.at("shape").get<std::vector<int>>();
        const std::size_t n = element_count(t.shape);
        t.values.resize(n);

        std::string stored = w.at("dtype").get<std::string>();
        double scale = 1.0, min = 0.0;
        if (w.contains("quantization")) {
          const json& q = w.at("quantization");
          stored = q.at("dtype").get<std::string>();
          scale = q.at("scale").get<double>();
          min = q.at("min").get<double>();
        }
        const std::size_t width = stored == "uint8" ? 1 : stored == "uint16" ? 2 : 4;
        if (stored != "uint8" && stored != "uint16" && stored != "float32") {
          throw Error(ErrorCode::kInvalidArgument, "tensor '" + t.name + "' in '" +
                                                       manifest_path.string() +
                                                       "' has unsupported dtype " + stored);
        }
        if (offset + n * width > data.size()) {
          throw Error(ErrorCode::kInvalidArgument,
                      "the weight shards of '" + manifest_path.string() + "' end before tensor '" +
                          t.name +
                          "': the download is truncated; delete models/data and re-run "
                          "models/fetch.sh");
        }
        const char* p = data.data() + offset;
        for (std::size_t i = 0; i < n; ++i) {
          if (width == 1) {
            t.values[i] = static_cast<float>(min + scale * static_cast<std::uint8_t>(p[i]));
          } else if (width == 2) {
            std::uint16_t q;
            std::memcpy(&q, p + 2 * i, 2);
            t.values[i] = static_cast<float>(min + scale * q);
          } else {
            std::memcpy(&t.values[i], p + 4 * i, 4);
          }
        }
        offset += n * width;
        tensors.push_back(std::move(t));
      }
      if (offset != data.size()) {
        throw Error(ErrorCode::kInvalidArgument,
                    "the weight shards of '" + manifest_path.string() + "' hold " +
                        std::to_string(data.size() - offset) +
                        " bytes more than the manifest describes: wrong or corrupt shard");
      }
    }
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kInvalidArgument,
                "'" + manifest_path.string() + "' is not a TF.js weights manifest: " + e.what());
  }
  return tensors;
}

const std::vector<std::string>& face_api_block_names() {
  static const std::vector<std::string> names = {
      "conv32_1",     "conv32_2",  "conv32_3",     "conv64_down",     "conv64_1",
      "conv64_2",     "conv64_3",  "conv128_down", "conv128_1",       "conv128_2",
      "conv256_down", "conv256_1", "conv256_2",    "conv256_down_out"};
  return names;
}

namespace {

class TensorTable {
 public:
  explicit TensorTable(const std::vector<TfjsTensor>& tensors) {
    for (const TfjsTensor& t : tensors) by_name_.emplace(t.name, &t);
  }
  const TfjsTensor& take(const std::string& name, const std::vector<int>& expected_shape) {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "the face recognition model has no tensor '" + name +
                      "': this is not face-api's face_recognition_model");
    }
    if (it->second->shape != expected_shape) {
      throw Error(ErrorCode::kInvalidArgument,
                  "tensor '" + name + "' has shape " + shape_text(it->second->shape) +
                      ", the network expects " + shape_text(expected_shape));
    }
    const TfjsTensor* t = it->second;
    by_name_.erase(it);
    return *t;
  }
  void expect_all_used() const {
    if (!by_name_.empty()) {
      throw Error(ErrorCode::kInvalidArgument, "tensor '" + by_name_.begin()->first +
                                                   "' has no place in dlib's network: this is "
                                                   "not face-api's face_recognition_model");
    }
  }

 private:
  std::map<std::string, const TfjsTensor*> by_name_;
};

void load_conv(TensorTable& table, const std::string& prefix,
               const facenet::ConvolutionParameters& conv,
               const facenet::AffineParameters& affine) {
  const TfjsTensor& filters = table.take(
      prefix + "/conv/filters", {static_cast<int>(conv.rows), static_cast<int>(conv.cols),
                                 static_cast<int>(conv.channels), static_cast<int>(conv.filters)});
  const TfjsTensor& bias = table.take(prefix + "/conv/bias", {static_cast<int>(conv.filters)});
  const long in = conv.channels;
  // TF stores [h][w][in][out]; dlib's con_ wants [out][in][h][w] followed by the biases.
  for (long o = 0; o < conv.filters; ++o)
    for (long i = 0; i < in; ++i)
      for (long y = 0; y < conv.rows; ++y)
        for (long x = 0; x < conv.cols; ++x)
          conv.values[((o * in + i) * conv.rows + y) * conv.cols + x] =
              filters.values[((y * conv.cols + x) * in + i) * conv.filters + o];
  std::copy(bias.values.begin(), bias.values.end(),
            conv.values + conv.filters * in * conv.rows * conv.cols);

  const TfjsTensor& gamma = table.take(prefix + "/scale/weights", {static_cast<int>(conv.filters)});
  const TfjsTensor& beta = table.take(prefix + "/scale/biases", {static_cast<int>(conv.filters)});
  if (affine.channels != conv.filters) {
    throw Error(ErrorCode::kInternal, "affine layer after " + prefix + " has " +
                                          std::to_string(affine.channels) + " channels, expected " +
                                          std::to_string(conv.filters));
  }
  std::copy(gamma.values.begin(), gamma.values.end(), affine.gamma);
  std::copy(beta.values.begin(), beta.values.end(), affine.beta);
}

}  // namespace

void load_face_api_weights(const std::vector<TfjsTensor>& tensors, facenet::Network& network) {
  const facenet::NetworkParameters parameters = network.parameters();
  const auto& blocks = face_api_block_names();
  std::vector<std::string> prefixes = {"conv32_down"};
  for (const std::string& b : blocks) {
    prefixes.push_back(b + "/conv1");
    prefixes.push_back(b + "/conv2");
  }
  if (parameters.convolutions.size() != prefixes.size() ||
      parameters.affines.size() != prefixes.size() || parameters.fully_connected == nullptr) {
    throw Error(ErrorCode::kInternal,
                "the network has " + std::to_string(parameters.convolutions.size()) +
                    " convolutions, face-api's model " + std::to_string(prefixes.size()));
  }

  TensorTable table(tensors);
  for (std::size_t i = 0; i < prefixes.size(); ++i) {
    load_conv(table, prefixes[i], parameters.convolutions[i], parameters.affines[i]);
  }
  const TfjsTensor& fc_weights =
      table.take("fc", {static_cast<int>(parameters.fully_connected_inputs),
                        static_cast<int>(parameters.fully_connected_outputs)});
  // dlib's fc_ computes input * W with W stored [inputs][outputs], as TF does.
  std::copy(fc_weights.values.begin(), fc_weights.values.end(), parameters.fully_connected);
  table.expect_all_used();
}

void convert_face_recognition_model(const std::filesystem::path& manifest_path,
                                    const std::filesystem::path& output) {
  const std::vector<TfjsTensor> tensors = read_tfjs_weights(manifest_path);
  facenet::Network network;
  load_face_api_weights(tensors, network);
  network.write(output);
}

}  // namespace frs::convert
