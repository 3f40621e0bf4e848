#include "frs/vision/image.h"

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "frs/core/error.h"

// libjpeg's headers need <cstdio> before them, and jerror.h needs jpeglib.h.
// clang-format off
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

namespace frs {
namespace {

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         p[3];
}
std::uint32_t le32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) |
         (std::uint32_t{p[3]} << 24);
}
std::uint32_t le24(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16);
}

void probe_jpeg(std::span<const std::uint8_t> b, ImageHeader& h) {
  // Walk the marker segments to the first start-of-frame, which holds the dimensions.
  std::size_t i = 2;
  while (i + 9 < b.size()) {
    if (b[i] != 0xFF) return;
    const std::uint8_t marker = b[i + 1];
    if (marker == 0xFF) {
      ++i;
      continue;
    }
    const std::size_t length = (std::size_t{b[i + 2]} << 8) | b[i + 3];
    const bool is_sof =
        marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (is_sof) {
      h.height = (b[i + 5] << 8) | b[i + 6];
      h.width = (b[i + 7] << 8) | b[i + 8];
      // Decoded as 8-bit BGR (IMREAD_COLOR); a CMYK JPEG goes through 4 channels first.
      h.bytes_per_sample = 1;
      h.channels = b[i + 9] == 4 ? 4 : 3;
      h.progressive = marker == 0xC2 || marker == 0xC6 || marker == 0xCA || marker == 0xCE;
      return;
    }
    if (length < 2) return;
    i += 2 + length;
  }
}

void probe_webp(std::span<const std::uint8_t> b, ImageHeader& h) {
  if (b.size() < 30) return;
  const std::uint8_t* chunk = b.data() + 12;
  if (std::memcmp(chunk, "VP8 ", 4) == 0) {
    h.width = (chunk[14] | (chunk[15] << 8)) & 0x3FFF;
    h.height = (chunk[16] | (chunk[17] << 8)) & 0x3FFF;
  } else if (std::memcmp(chunk, "VP8L", 4) == 0) {
    const std::uint32_t bits = le32(chunk + 9);
    h.width = static_cast<int>((bits & 0x3FFF) + 1);
    h.height = static_cast<int>(((bits >> 14) & 0x3FFF) + 1);
  } else if (std::memcmp(chunk, "VP8X", 4) == 0) {
    h.width = static_cast<int>(le24(chunk + 12) + 1);
    h.height = static_cast<int>(le24(chunk + 15) + 1);
  }
}

// libjpeg decodes a cut or damaged JPEG "successfully": it warns, fills what is missing
// with grey, and OpenCV ignores the warning. This pass decodes the entropy-coded data once
// more (at 1/8 scale: the Huffman decoding that finds damage is done whole, the inverse
// DCT hardly at all) and turns the warnings that mean missing or wrong pixels into a
// refusal. Warnings about harmless oddities (extra bytes between segments) pass.
struct JpegCheck {
  jpeg_error_mgr manager;  // first: libjpeg hands back a pointer to it
  std::jmp_buf fail;
  char message[JMSG_LENGTH_MAX];
};

extern "C" void jpeg_check_error_exit(j_common_ptr info) {
  auto* check = reinterpret_cast<JpegCheck*>(info->err);
  (*info->err->format_message)(info, check->message);
  std::longjmp(check->fail, 1);
}

extern "C" void jpeg_check_emit_message(j_common_ptr info, int level) {
  if (level >= 0) return;  // trace messages
  switch (info->err->msg_code) {
    case JWRN_JPEG_EOF:        // truncated
    case JWRN_HIT_MARKER:      // a scan cut short
    case JWRN_MUST_RESYNC:     // restart markers out of order
    case JWRN_HUFF_BAD_CODE:   // damaged Huffman data
    case JWRN_ARITH_BAD_CODE:  // damaged arithmetic-coded data
    case JWRN_BOGUS_PROGRESSION:
    case JWRN_NOT_SEQUENTIAL:
      jpeg_check_error_exit(info);
      break;
    default:
      break;
  }
}

// Empty when the JPEG decodes whole; otherwise libjpeg's reason.
std::string jpeg_damage(std::span<const std::uint8_t> bytes) {
  jpeg_decompress_struct info{};
  JpegCheck check{};
  // Set after setjmp and read after a longjmp back to it: volatile, and nothing here has a
  // destructor that the jump would skip.
  JSAMPROW volatile row = nullptr;
  info.err = jpeg_std_error(&check.manager);
  check.manager.error_exit = jpeg_check_error_exit;
  check.manager.emit_message = jpeg_check_emit_message;
  if (setjmp(check.fail) != 0) {
    std::free(row);
    jpeg_destroy_decompress(&info);
    return check.message[0] != '\0' ? check.message : "damaged data";
  }
  jpeg_create_decompress(&info);
  jpeg_mem_src(&info, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&info, TRUE);
  info.scale_num = 1;
  info.scale_denom = 8;
  info.dct_method = JDCT_IFAST;
  info.do_fancy_upsampling = FALSE;
  jpeg_start_decompress(&info);
  row = static_cast<JSAMPROW>(std::malloc(static_cast<std::size_t>(info.output_width) *
                                          static_cast<std::size_t>(info.output_components)));
  if (row == nullptr) {
    jpeg_destroy_decompress(&info);
    return "out of memory";
  }
  while (info.output_scanline < info.output_height) {
    JSAMPROW rows[1] = {row};
    jpeg_read_scanlines(&info, rows, 1);
  }
  jpeg_finish_decompress(&info);  // reads on to the end-of-image marker
  std::free(row);
  jpeg_destroy_decompress(&info);
  return {};
}

const char* format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::kJpeg:
      return "JPEG";
    case ImageFormat::kPng:
      return "PNG";
    case ImageFormat::kBmp:
      return "BMP";
    case ImageFormat::kWebp:
      return "WebP";
    case ImageFormat::kUnknown:
      break;
  }
  return "unknown";
}

cv::Mat to_bgr8(cv::Mat decoded) {
  if (decoded.depth() == CV_16U) {
    decoded.convertTo(decoded, CV_8U, 1.0 / 257.0);
  } else if (decoded.depth() != CV_8U) {
    cv::normalize(decoded, decoded, 0, 255, cv::NORM_MINMAX, CV_8U);
  }
  cv::Mat bgr;
  switch (decoded.channels()) {
    case 1:
      cv::cvtColor(decoded, bgr, cv::COLOR_GRAY2BGR);
      break;
    case 3:
      bgr = decoded;
      break;
    case 4: {
      // Composite over mid-grey: black or white behind a cut-out face shifts the
      // detector's and the descriptor's view of the face edge more than grey does.
      bgr.create(decoded.size(), CV_8UC3);
      decoded.forEach<cv::Vec4b>([&](const cv::Vec4b& px, const int* pos) {
        const int a = px[3];
        cv::Vec3b& out = bgr.at<cv::Vec3b>(pos[0], pos[1]);
        for (int c = 0; c < 3; ++c)
          out[c] = static_cast<uchar>((px[c] * a + 128 * (255 - a)) / 255);
      });
      break;
    }
    default:
      throw Error(ErrorCode::kInvalidArgument, "image has " + std::to_string(decoded.channels()) +
                                                   " channels; expected grey, RGB or RGBA");
  }
  return bgr;
}

}  // namespace

ImageHeader probe_image(std::span<const std::uint8_t> b) {
  ImageHeader h;
  if (b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) {
    h.format = ImageFormat::kJpeg;
    probe_jpeg(b, h);
  } else if (b.size() >= 8 && std::memcmp(b.data(), "\x89PNG\r\n\x1a\n", 8) == 0) {
    h.format = ImageFormat::kPng;
    if (b.size() >= 24) {
      h.width = static_cast<int>(std::min<std::uint32_t>(be32(b.data() + 16), INT32_MAX));
      h.height = static_cast<int>(std::min<std::uint32_t>(be32(b.data() + 20), INT32_MAX));
    }
    if (b.size() >= 26) {
      // IHDR bit depth and colour type: 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA.
      h.bytes_per_sample = b[24] == 16 ? 2 : 1;
      const std::uint8_t colour = b[25];
      h.channels = colour == 0 ? 1 : colour == 2 ? 3 : colour == 4 ? 2 : 4;
    }
  } else if (b.size() >= 2 && b[0] == 'B' && b[1] == 'M') {
    h.format = ImageFormat::kBmp;
    if (b.size() >= 26) {
      const auto w = static_cast<std::int32_t>(le32(b.data() + 18));
      const auto ht = static_cast<std::int32_t>(le32(b.data() + 22));
      // A negative height means a top-down bitmap; INT32_MIN has no positive counterpart.
      h.width = w == INT32_MIN ? INT32_MAX : std::abs(w);
      h.height = ht == INT32_MIN ? INT32_MAX : std::abs(ht);
    }
  } else if (b.size() >= 12 && std::memcmp(b.data(), "RIFF", 4) == 0 &&
             std::memcmp(b.data() + 8, "WEBP", 4) == 0) {
    h.format = ImageFormat::kWebp;
    probe_webp(b, h);
  }
  return h;
}

std::uint64_t decoding_bytes(const ImageHeader& h) {
  const std::uint64_t pixels = static_cast<std::uint64_t>(std::max(0, h.width)) *
                               static_cast<std::uint64_t>(std::max(0, h.height));
  const auto channels = static_cast<std::uint64_t>(h.channels);
  std::uint64_t per_pixel = channels * static_cast<std::uint64_t>(h.bytes_per_sample);
  if (h.bytes_per_sample > 1) per_pixel += channels;  // the 8-bit copy
  if (h.channels != 3) per_pixel += 3;                // the BGR copy
  if (h.progressive) per_pixel += 2 * channels;       // the coefficients, at worst unsubsampled
  return pixels * per_pixel;
}

cv::Mat decode_image(std::span<const std::uint8_t> bytes, const ImageLimits& limits) {
  if (bytes.empty()) throw Error(ErrorCode::kInvalidArgument, "image is empty (0 bytes)");
  if (bytes.size() > limits.max_bytes) {
    throw Error(ErrorCode::kResourceExhausted, "image is " + std::to_string(bytes.size()) +
                                                   " bytes, over the limit of " +
                                                   std::to_string(limits.max_bytes) + " bytes");
  }
  const ImageHeader header = probe_image(bytes);
  if (header.format == ImageFormat::kUnknown) {
    throw Error(ErrorCode::kInvalidArgument,
                "not a JPEG, PNG, BMP or WebP image (unrecognised first bytes)");
  }
  if (header.width <= 0 || header.height <= 0) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string(format_name(header.format)) +
                    " image header is truncated or corrupt, or the image is 0x0");
  }
  const std::uint64_t pixels =
      static_cast<std::uint64_t>(header.width) * static_cast<std::uint64_t>(header.height);
  if (pixels > limits.max_pixels) {
    throw Error(ErrorCode::kResourceExhausted,
                std::string(format_name(header.format)) + " image is " +
                    std::to_string(header.width) + "x" + std::to_string(header.height) + " = " +
                    std::to_string(pixels) + " pixels, over the limit of " +
                    std::to_string(limits.max_pixels) + "; downscale it");
  }
  const int longer = std::max(header.width, header.height);
  const int shorter = std::min(header.width, header.height);
  if (static_cast<std::int64_t>(longer) >
      static_cast<std::int64_t>(shorter) * limits.max_aspect_ratio) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string(format_name(header.format)) + " image is " +
                    std::to_string(header.width) + "x" + std::to_string(header.height) +
                    ": its sides differ more than " + std::to_string(limits.max_aspect_ratio) +
                    " to 1, the most accepted; crop it to the part with the faces");
  }
  const std::uint64_t memory = decoding_bytes(header);
  if (memory > limits.max_decoded_bytes) {
    throw Error(ErrorCode::kResourceExhausted,
                std::string(format_name(header.format)) + " image is " +
                    std::to_string(header.width) + "x" + std::to_string(header.height) + ", " +
                    std::to_string(header.channels) + " channels of " +
                    std::to_string(8 * header.bytes_per_sample) + " bits: decoding it takes " +
                    std::to_string(memory >> 20) + " MiB, over the limit of " +
                    std::to_string(limits.max_decoded_bytes >> 20) +
                    " MiB; downscale it or save it as 8-bit RGB");
  }

  if (header.format == ImageFormat::kJpeg) {
    const std::string damage = jpeg_damage(bytes);
    if (!damage.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "JPEG image is truncated or corrupt (" + damage +
                      "): send the whole file; a decoder would fill the rest with grey");
    }
  }
  // Keep alpha and 16-bit depth for the formats that carry them; JPEG goes through
  // IMREAD_COLOR so that its EXIF orientation is applied.
  const int flags = header.format == ImageFormat::kJpeg
                        ? cv::IMREAD_COLOR
                        : (cv::IMREAD_UNCHANGED | cv::IMREAD_ANYDEPTH);
  cv::Mat decoded;
  try {
    const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8UC1,
                         const_cast<std::uint8_t*>(bytes.data()));
    decoded = cv::imdecode(buffer, flags);
  } catch (const cv::Exception& e) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string(format_name(header.format)) + " image could not be decoded: " + e.err);
  }
  if (decoded.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string(format_name(header.format)) +
                    " image could not be decoded: the data is corrupt, truncated or 0x0");
  }
  if (static_cast<std::uint64_t>(decoded.total()) > limits.max_pixels) {
    throw Error(ErrorCode::kResourceExhausted,
                "image is " + std::to_string(decoded.cols) + "x" + std::to_string(decoded.rows) +
                    " pixels, over the limit of " + std::to_string(limits.max_pixels));
  }
  return to_bgr8(std::move(decoded));  // moved: the conversions free what they replace
}

cv::Mat load_image(const std::filesystem::path& path, const ImageLimits& limits) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    throw Error(ErrorCode::kNotFound, "cannot read '" + path.string() + "': " + ec.message());
  }
  if (size > limits.max_bytes) {
    throw Error(ErrorCode::kResourceExhausted,
                "'" + path.string() + "' is " + std::to_string(size) +
                    " bytes, over the limit of " + std::to_string(limits.max_bytes) + " bytes");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, "cannot open '" + path.string() + "'");
  std::vector<std::uint8_t> bytes(size);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  if (static_cast<std::uint64_t>(in.gcount()) != size) {
    throw Error(ErrorCode::kInvalidArgument, "could not read all of '" + path.string() + "'");
  }
  try {
    return decode_image(bytes, limits);
  } catch (const Error& e) {
    throw Error(e.code(), "'" + path.string() + "': " + e.what());
  }
}

}  // namespace frs
