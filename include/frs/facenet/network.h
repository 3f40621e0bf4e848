#pragma once
// dlib's 128-D face descriptor network ("dlib_face_recognition_resnet_model_v1") behind an
// opaque type. The network's type (src/facenet/face_net_type.h) instantiates dlib's DNN
// templates, which cost every file that compiles them over a minute of CPU in a sanitizer
// build; src/facenet/network.cpp is the only file that does, and the embedder, the model
// converter and the tests reach the network through this header.

#include <dlib/matrix.h>
#include <dlib/pixel.h>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace frs::facenet {

// Side of the square chip the network reads, in pixels.
inline constexpr int kChipSize = 150;
// Length of the descriptor the network writes.
inline constexpr int kDescriptorSize = 128;

// Views into the network's own parameter storage, input first, for filling it from another
// framework's tensors (the model converter). Valid while the network lives and is not copied
// over.
struct ConvolutionParameters {
  float* values;  // dlib's layout: filters [filters][channels][rows][cols], then `filters` biases
  long filters, channels, rows, cols;
};
struct AffineParameters {
  float* gamma;  // one per channel (the network's affine layers work per channel)
  float* beta;
  long channels;
};
struct NetworkParameters {
  std::vector<ConvolutionParameters> convolutions;  // 29, input first
  std::vector<AffineParameters> affines;            // one after each convolution
  float* fully_connected;                           // [inputs][outputs], as TensorFlow's
  long fully_connected_inputs, fully_connected_outputs;
};

class Network {
 public:
  // An untrained network: its parameters get their shape at the first use (or parameters()).
  Network();
  Network(const Network& other);
  Network& operator=(const Network& other);
  Network(Network&&) noexcept;
  Network& operator=(Network&&) noexcept;
  ~Network();

  // Reads a network that dlib::serialize wrote. Throws frs::Error (kFailedPrecondition) naming
  // the file when it is not one.
  static Network read(const std::filesystem::path& path);
  // Writes the weights only (dlib's clean() first) to `path` + ".partial", then renames, so a
  // crash never leaves a half-written file under the final name.
  void write(const std::filesystem::path& path);
  // The same bytes as write(), in memory.
  std::string serialised();
  static Network deserialised(const std::string& bytes);

  // Views into every layer's parameters. A new network first gets their final shape (its
  // affine layers per channel, one forward pass); a network read from a file has it, and
  // keeps its values.
  NetworkParameters parameters();
  // Every trained value, the affine layers' included (dlib's own count leaves them out).
  std::size_t parameter_count();

  // One 128-D descriptor per 150x150 RGB chip, `batch_size` chips per forward pass.
  std::vector<dlib::matrix<float, 0, 1>> describe(
      const std::vector<dlib::matrix<dlib::rgb_pixel>>& chips, std::size_t batch_size = 16);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace frs::facenet
