#pragma once
// Decoding of untrusted image bytes into the BGR 8-bit frames the face engine reads.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <opencv2/core.hpp>
#include <span>
#include <string>

namespace frs {

struct ImageLimits {
  // Largest image accepted, in pixels (width x height). Default 50 Mpx (an 8K photo is
  // 33 Mpx); range 1 .. 1,000,000,000. Checked from the file header before decoding, so an
  // oversized image never allocates its pixels.
  std::uint64_t max_pixels = 50'000'000;
  // Largest encoded input accepted, in bytes. Default 64 MiB.
  std::size_t max_bytes = 64u << 20;
};

enum class ImageFormat { kUnknown, kJpeg, kPng, kBmp, kWebp };

struct ImageHeader {
  ImageFormat format = ImageFormat::kUnknown;
  int width = 0;   // pixels, 0 when the header does not say
  int height = 0;  // pixels
};

// Reads format and dimensions from the first bytes without decoding pixels.
ImageHeader probe_image(std::span<const std::uint8_t> bytes);

// Decodes JPEG, PNG, BMP or WebP bytes (grey, RGB, RGBA, 8 or 16 bit; JPEG EXIF
// orientation applied) into an 8-bit 3-channel BGR image. Transparent pixels are composited
// over mid-grey. Throws frs::Error (kInvalidArgument for unknown, corrupt or truncated
// data and 0x0 images; kResourceExhausted over `limits`) with a message naming the problem.
cv::Mat decode_image(std::span<const std::uint8_t> bytes, const ImageLimits& limits = {});

// Reads a file and decodes it as decode_image does; errors name the path.
cv::Mat load_image(const std::filesystem::path& path, const ImageLimits& limits = {});

}  // namespace frs
