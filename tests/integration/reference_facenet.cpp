#include "reference_facenet.h"

#include <map>
#include <stdexcept>

namespace frs::testing {
namespace {

// A feature map: channels x height x width, stored as one row-major (h*w) x c matrix so a
// convolution is one matrix product.
struct Tensor {
  int h = 0, w = 0, c = 0;
  cv::Mat data;  // (h*w) x c, CV_32F
  float& at(int y, int x, int ch) { return data.at<float>(y * w + x, ch); }
  float at(int y, int x, int ch) const { return data.at<float>(y * w + x, ch); }
};

Tensor zeros(int h, int w, int c) {
  return {h, w, c, cv::Mat::zeros(h * w, c, CV_32F)};
}

using Weights = std::map<std::string, const convert::TfjsTensor*>;

const convert::TfjsTensor& get(const Weights& weights, const std::string& name) {
  auto it = weights.find(name);
  if (it == weights.end()) throw std::runtime_error("no tensor " + name);
  return *it->second;
}

// dlib pads a convolution by half the kernel when its stride is 1 and not at all otherwise.
Tensor conv(const Tensor& in, const convert::TfjsTensor& filters, const convert::TfjsTensor& bias,
            int stride) {
  const int kh = filters.shape[0], kw = filters.shape[1], out_c = filters.shape[3];
  const int pad = stride == 1 ? kh / 2 : 0;
  const int oh = (in.h + 2 * pad - kh) / stride + 1, ow = (in.w + 2 * pad - kw) / stride + 1;
  // im2col: one row per output pixel, columns ordered [ky][kx][in_c] as TF filters are.
  cv::Mat cols = cv::Mat::zeros(oh * ow, kh * kw * in.c, CV_32F);
  for (int y = 0; y < oh; ++y) {
    for (int x = 0; x < ow; ++x) {
      float* row = cols.ptr<float>(y * ow + x);
      for (int ky = 0; ky < kh; ++ky) {
        for (int kx = 0; kx < kw; ++kx) {
          const int iy = y * stride + ky - pad, ix = x * stride + kx - pad;
          if (iy < 0 || ix < 0 || iy >= in.h || ix >= in.w) continue;
          const float* src = in.data.ptr<float>(iy * in.w + ix);
          std::copy(src, src + in.c, row + (ky * kw + kx) * in.c);
        }
      }
    }
  }
  const cv::Mat kernel(kh * kw * in.c, out_c, CV_32F, const_cast<float*>(filters.values.data()));
  Tensor out{oh, ow, out_c, cols * kernel};
  for (int i = 0; i < oh * ow; ++i) {
    for (int ch = 0; ch < out_c; ++ch) out.data.at<float>(i, ch) += bias.values[ch];
  }
  return out;
}

void affine(Tensor& t, const convert::TfjsTensor& gamma, const convert::TfjsTensor& beta) {
  for (int i = 0; i < t.h * t.w; ++i) {
    for (int ch = 0; ch < t.c; ++ch) {
      float& v = t.data.at<float>(i, ch);
      v = v * gamma.values[ch] + beta.values[ch];
    }
  }
}

void relu(Tensor& t) {
  t.data = cv::max(t.data, 0.0f);
}

Tensor pool(const Tensor& in, int size, int stride, bool average) {
  const int oh = (in.h - size) / stride + 1, ow = (in.w - size) / stride + 1;
  Tensor out = zeros(oh, ow, in.c);
  for (int y = 0; y < oh; ++y) {
    for (int x = 0; x < ow; ++x) {
      for (int ch = 0; ch < in.c; ++ch) {
        float acc = average ? 0.0f : -1e30f;
        for (int dy = 0; dy < size; ++dy) {
          for (int dx = 0; dx < size; ++dx) {
            const float v = in.at(y * stride + dy, x * stride + dx, ch);
            acc = average ? acc + v : std::max(acc, v);
          }
        }
        out.at(y, x, ch) = average ? acc / static_cast<float>(size * size) : acc;
      }
    }
  }
  return out;
}

// Sum of two maps of possibly different sizes and channel counts; what one lacks is zero.
Tensor add_padded(const Tensor& a, const Tensor& b) {
  Tensor out = zeros(std::max(a.h, b.h), std::max(a.w, b.w), std::max(a.c, b.c));
  for (const Tensor* t : {&a, &b}) {
    for (int y = 0; y < t->h; ++y)
      for (int x = 0; x < t->w; ++x)
        for (int ch = 0; ch < t->c; ++ch) out.at(y, x, ch) += t->at(y, x, ch);
  }
  return out;
}

Tensor conv_affine(const Weights& w, const std::string& prefix, const Tensor& in, int stride) {
  Tensor t = conv(in, get(w, prefix + "/conv/filters"), get(w, prefix + "/conv/bias"), stride);
  affine(t, get(w, prefix + "/scale/weights"), get(w, prefix + "/scale/biases"));
  return t;
}

Tensor residual_block(const Weights& w, const std::string& name, const Tensor& in, bool down) {
  Tensor t = conv_affine(w, name + "/conv1", in, down ? 2 : 1);
  relu(t);
  t = conv_affine(w, name + "/conv2", t, 1);
  Tensor out = add_padded(t, down ? pool(in, 2, 2, true) : in);
  relu(out);
  return out;
}

}  // namespace

Embedding reference_descriptor(const std::vector<convert::TfjsTensor>& tensors,
                               const cv::Mat& chip_bgr) {
  Weights w;
  for (const auto& t : tensors) w[t.name] = &t;

  // dlib's input_rgb_image: (pixel - channel mean) / 256, channels in R, G, B order.
  const float mean[3] = {122.782f, 117.001f, 104.298f};
  Tensor x = zeros(chip_bgr.rows, chip_bgr.cols, 3);
  for (int y = 0; y < chip_bgr.rows; ++y) {
    for (int c = 0; c < chip_bgr.cols; ++c) {
      const cv::Vec3b p = chip_bgr.at<cv::Vec3b>(y, c);
      for (int ch = 0; ch < 3; ++ch) x.at(y, c, ch) = (p[2 - ch] - mean[ch]) / 256.0f;
    }
  }
  x = conv_affine(w, "conv32_down", x, 2);
  relu(x);
  x = pool(x, 3, 2, false);
  for (const std::string& block : convert::face_api_block_names()) {
    x = residual_block(w, block, x, block.find("down") != std::string::npos);
  }
  cv::Mat pooled;
  cv::reduce(x.data, pooled, 0, cv::REDUCE_AVG);  // 1 x channels
  const auto& fc = get(w, "fc");
  const cv::Mat fc_weights(fc.shape[0], fc.shape[1], CV_32F, const_cast<float*>(fc.values.data()));
  const cv::Mat out = pooled * fc_weights;
  return Embedding(out.ptr<float>(0), out.ptr<float>(0) + out.cols);
}

}  // namespace frs::testing
