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
  // Most memory decoding may take, in bytes: the decoder's output (width x height x
  // channels x bytes per sample) plus the 8-bit and BGR copies made from it, and a
  // progressive JPEG's coefficients, estimated from the header before any pixel is decoded
  // (decoding_bytes). A 381 KB 7000x7000 16-bit RGBA PNG would take 735 MB. Default 384 MiB
  // (a 50 Mpx RGB JPEG takes 150 MB, progressive 450 MB: refused; 50 Mpx RGBA PNG 343 MB);
  // range 1 MiB .. 16 GiB.
  std::uint64_t max_decoded_bytes = std::uint64_t{384} << 20;
  // Longest side over shortest side accepted. Default 20 (panoramas are up to about 8);
  // a 2 KB PNG of 1x1,000,000 grey pixels has no face to find and cost 89 s of detector
  // time before this limit.
  int max_aspect_ratio = 20;
};

enum class ImageFormat { kUnknown, kJpeg, kPng, kBmp, kWebp };

struct ImageHeader {
  ImageFormat format = ImageFormat::kUnknown;
  int width = 0;   // pixels, 0 when the header does not say
  int height = 0;  // pixels
  // What the decoder will output per pixel, as far as the header says (else the largest
  // the format allows): channels (1..4) and bytes per sample (1 or 2).
  int channels = 4;
  int bytes_per_sample = 1;
  // A progressive JPEG: its decoder holds every DCT coefficient of the image (2 bytes each)
  // until the last scan.
  bool progressive = false;
};

// Memory decode_image needs for an image with this header, in bytes (see
// ImageLimits::max_decoded_bytes).
std::uint64_t decoding_bytes(const ImageHeader& header);

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
