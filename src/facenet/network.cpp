#include "frs/facenet/network.h"

#include <algorithm>
#include <sstream>
#include <type_traits>

#include "face_net_type.h"
#include "frs/core/error.h"

namespace frs::facenet {

struct Network::Impl {
  FaceNet net;
  // The parameters have their final shape: read from a file, or given it by parameters().
  bool shaped = false;
};

Network::Network() : impl_(std::make_unique<Impl>()) {}
Network::Network(const Network& other) : impl_(std::make_unique<Impl>(*other.impl_)) {}
Network& Network::operator=(const Network& other) {
  if (this != &other) impl_ = std::make_unique<Impl>(*other.impl_);
  return *this;
}
Network::Network(Network&&) noexcept = default;
Network& Network::operator=(Network&&) noexcept = default;
Network::~Network() = default;

Network Network::read(const std::filesystem::path& path) {
  Network network;
  try {
    dlib::deserialize(path.string()) >> network.impl_->net;
    network.impl_->shaped = true;
  } catch (const dlib::serialization_error& e) {
    throw Error(
        ErrorCode::kFailedPrecondition,
        "face descriptor model '" + path.string() +
            "' is not a dlib face recognition network (re-run models/fetch.sh): " + e.what());
  }
  return network;
}

void Network::write(const std::filesystem::path& path) {
  impl_->net.clean();
  const auto partial = std::filesystem::path(path.string() + ".partial");
  try {
    dlib::serialize(partial.string()) << impl_->net;
  } catch (const dlib::serialization_error& e) {
    throw Error(ErrorCode::kInvalidArgument,
                "cannot write '" + partial.string() + "': " + e.what());
  }
  std::filesystem::rename(partial, path);
}

std::string Network::serialised() {
  impl_->net.clean();
  std::ostringstream out;
  dlib::serialize(impl_->net, out);
  return std::move(out).str();
}

Network Network::deserialised(const std::string& bytes) {
  Network network;
  std::istringstream in(bytes);
  try {
    dlib::deserialize(network.impl_->net, in);
    network.impl_->shaped = true;
  } catch (const dlib::serialization_error& e) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string("not a serialised dlib face recognition network: ") + e.what());
  }
  return network;
}

namespace {

template <typename Layer>
concept Convolution = requires(Layer& l) {
  l.num_filters();
  l.stride_y();
  l.padding_y();
};

template <typename Layer>
concept FullyConnected = requires(Layer& l) {
  l.get_num_outputs();
};

}  // namespace

NetworkParameters Network::parameters() {
  FaceNet& net = impl_->net;
  if (!impl_->shaped) {
    // dlib defaults affine_ to FC_MODE (one gamma per value); the network needs one per
    // channel, and the mode fixes the parameter shapes at the first forward pass. Never done
    // again: it would reset the affine layers' values.
    dlib::visit_computational_layers(net, [](auto& layer) {
      if constexpr (std::is_same_v<std::decay_t<decltype(layer)>, dlib::affine_>) {
        layer = dlib::affine_(dlib::CONV_MODE);
      }
    });
    dlib::matrix<dlib::rgb_pixel> blank(kChipSize, kChipSize);
    blank = dlib::rgb_pixel(0, 0, 0);
    net(blank);
    impl_->shaped = true;
  }

  NetworkParameters parameters{};
  dlib::visit_computational_layers(net, [&](auto& layer) {
    using Layer = std::decay_t<decltype(layer)>;
    if constexpr (std::is_same_v<Layer, dlib::affine_>) {
      parameters.affines.push_back({layer.get_gamma().host(), layer.get_beta().host(),
                                    static_cast<long>(layer.get_gamma().size())});
    } else if constexpr (Convolution<Layer>) {
      dlib::tensor& values = layer.get_layer_params();
      const long filters = layer.num_filters();
      const long per_filter = layer.nr() * layer.nc();
      const long channels = (static_cast<long>(values.size()) - filters) / (filters * per_filter);
      parameters.convolutions.push_back({values.host(), filters, channels,
                                         static_cast<long>(layer.nr()),
                                         static_cast<long>(layer.nc())});
    } else if constexpr (FullyConnected<Layer>) {
      dlib::tensor& values = layer.get_layer_params();
      parameters.fully_connected = values.host();
      parameters.fully_connected_outputs = static_cast<long>(layer.get_num_outputs());
      parameters.fully_connected_inputs =
          static_cast<long>(values.size()) / parameters.fully_connected_outputs;
    }
  });
  // The visitor walks from the output to the input.
  std::reverse(parameters.convolutions.begin(), parameters.convolutions.end());
  std::reverse(parameters.affines.begin(), parameters.affines.end());
  return parameters;
}

std::size_t Network::parameter_count() {
  std::size_t affine_parameters = 0;
  dlib::visit_computational_layers(impl_->net, [&](auto& layer) {
    if constexpr (std::is_same_v<std::decay_t<decltype(layer)>, dlib::affine_>) {
      affine_parameters += layer.get_gamma().size() + layer.get_beta().size();
    }
  });
  return dlib::count_parameters(impl_->net) + affine_parameters;
}

std::vector<dlib::matrix<float, 0, 1>> Network::describe(
    const std::vector<dlib::matrix<dlib::rgb_pixel>>& chips, std::size_t batch_size) {
  return impl_->net(chips, batch_size);
}

}  // namespace frs::facenet
