#include "frs/vision/image.h"

#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include "frs/core/error.h"

namespace frs {
namespace {

std::vector<std::uint8_t> encode(const cv::Mat& image, const std::string& ext,
                                 const std::vector<int>& params = {}) {
  std::vector<std::uint8_t> bytes;
  EXPECT_TRUE(cv::imencode(ext, image, bytes, params));
  return bytes;
}

cv::Mat gradient(int width, int height, int type) {
  cv::Mat m(height, width, type);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width * m.channels(); ++x) {
      m.ptr<uchar>(y)[x] = static_cast<uchar>((x * 7 + y * 3) % 256);
    }
  }
  return m;
}

ErrorCode code_of(const std::vector<std::uint8_t>& bytes, const ImageLimits& limits = {}) {
  try {
    decode_image(bytes, limits);
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "decode_image accepted the input";
  return ErrorCode::kInternal;
}

std::string message_of(const std::vector<std::uint8_t>& bytes, const ImageLimits& limits = {}) {
  try {
    decode_image(bytes, limits);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(DecodeImage, ReadsEveryFormatAsBgr8) {
  const cv::Mat colour = gradient(64, 48, CV_8UC3);
  for (const std::string ext : {".jpg", ".png", ".bmp", ".webp"}) {
    const cv::Mat decoded = decode_image(encode(colour, ext));
    EXPECT_EQ(decoded.type(), CV_8UC3) << ext;
    EXPECT_EQ(decoded.size(), cv::Size(64, 48)) << ext;
  }
  const cv::Mat lossless = decode_image(encode(colour, ".png"));
  EXPECT_EQ(cv::norm(lossless, colour, cv::NORM_INF), 0.0);
}

TEST(DecodeImage, ExpandsGreyAndCompositesAlpha) {
  const cv::Mat grey = decode_image(encode(gradient(20, 10, CV_8UC1), ".png"));
  EXPECT_EQ(grey.type(), CV_8UC3);

  cv::Mat rgba(10, 10, CV_8UC4, cv::Scalar(255, 0, 0, 0));        // fully transparent blue
  rgba(cv::Rect(0, 0, 5, 10)).setTo(cv::Scalar(0, 0, 255, 255));  // opaque red left half
  const cv::Mat bgr = decode_image(encode(rgba, ".png"));
  EXPECT_EQ(bgr.at<cv::Vec3b>(5, 2), cv::Vec3b(0, 0, 255));
  EXPECT_EQ(bgr.at<cv::Vec3b>(5, 8), cv::Vec3b(128, 128, 128));  // grey behind transparency
}

TEST(DecodeImage, ReducesSixteenBitToEight) {
  cv::Mat deep(4, 4, CV_16UC3, cv::Scalar(65535, 0, 32896));
  const cv::Mat bgr = decode_image(encode(deep, ".png"));
  EXPECT_EQ(bgr.type(), CV_8UC3);
  EXPECT_EQ(bgr.at<cv::Vec3b>(0, 0), cv::Vec3b(255, 0, 128));
}

TEST(DecodeImage, RejectsEmptyAndUnknownBytes) {
  EXPECT_EQ(code_of({}), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of({'h', 'e', 'l', 'l', 'o'}), ErrorCode::kInvalidArgument);
  EXPECT_NE(message_of({'h', 'e', 'l', 'l', 'o'}).find("not a JPEG, PNG, BMP or WebP"),
            std::string::npos);
}

// A decoder that pads what is missing (libjpeg fills a cut scan with grey) would give
// the face engine a picture that is not the photo: a JPEG cut to 35% was enrolled. Every
// cut, of every format, is refused and the message says so.
TEST(DecodeImage, RejectsTruncatedFilesOfEveryFormat) {
  const cv::Mat colour = gradient(64, 48, CV_8UC3);
  for (const std::string ext : {".jpg", ".png", ".bmp", ".webp"}) {
    for (const std::vector<int>& params :
         {std::vector<int>{}, std::vector<int>{cv::IMWRITE_JPEG_PROGRESSIVE, 1}}) {
      if (ext != ".jpg" && !params.empty()) continue;
      const std::vector<std::uint8_t> bytes = encode(colour, ext, params);
      for (const double share : {0.05, 0.35, 0.5, 0.8, 0.95}) {
        const auto keep = std::max<std::size_t>(
            4, static_cast<std::size_t>(share * static_cast<double>(bytes.size())));
        const std::vector<std::uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<long>(keep));
        EXPECT_EQ(code_of(cut), ErrorCode::kInvalidArgument) << ext << " cut to " << share;
      }
      // The last byte alone: a JPEG without its end-of-image marker, a PNG without IEND.
      const std::vector<std::uint8_t> last_byte(bytes.begin(), bytes.end() - 1);
      if (ext != ".bmp") {  // BMP has no end marker: its last byte is a pixel
        EXPECT_EQ(code_of(last_byte), ErrorCode::kInvalidArgument) << ext << " minus 1 byte";
      }
    }
  }
  std::vector<std::uint8_t> jpeg = encode(colour, ".jpg");
  jpeg.resize(jpeg.size() * 35 / 100);
  EXPECT_NE(message_of(jpeg).find("truncated"), std::string::npos) << message_of(jpeg);
}

// Bytes damaged in the middle of the compressed data (a bad transfer) are refused where the
// format can tell: PNG has checksums, WebP's decoder checks its partitions. JPEG has no
// checksum: flipped bits inside its entropy-coded data decode to wrong pixels in every
// decoder; what frs refuses is damage libjpeg sees, such as a marker inside a scan.
TEST(DecodeImage, RejectsCorruptCompressedData) {
  const cv::Mat colour = gradient(64, 48, CV_8UC3);
  for (const std::string ext : {".png", ".webp"}) {
    std::vector<std::uint8_t> bytes = encode(colour, ext);
    for (std::size_t i = bytes.size() / 2; i < bytes.size() / 2 + 16; ++i) bytes[i] ^= 0x5A;
    EXPECT_EQ(code_of(bytes), ErrorCode::kInvalidArgument) << ext;
  }
  std::vector<std::uint8_t> jpeg = encode(colour, ".jpg");
  jpeg[jpeg.size() / 2] = 0xFF;
  jpeg[jpeg.size() / 2 + 1] = 0xD3;  // a restart marker where no restart is due
  EXPECT_NE(message_of(jpeg).find("corrupt"), std::string::npos) << message_of(jpeg);
}

TEST(DecodeImage, RejectsGarbageAfterAValidHeader) {
  std::vector<std::uint8_t> bytes = encode(gradient(64, 48, CV_8UC3), ".png");
  for (std::size_t i = 40; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i * 31);
  EXPECT_EQ(code_of(bytes), ErrorCode::kInvalidArgument);
}

void set_png_size(std::vector<std::uint8_t>& png, std::uint32_t width, std::uint32_t height) {
  for (int i = 0; i < 4; ++i) {
    png[16 + i] = static_cast<std::uint8_t>(width >> (24 - 8 * i));
    png[20 + i] = static_cast<std::uint8_t>(height >> (24 - 8 * i));
  }
}

// A 2 KB PNG of 1x1,000,000 pixels cost 89 s of detector time: absurd shapes are refused
// from the header.
TEST(DecodeImage, RefusesAbsurdAspectRatiosFromTheHeader) {
  const cv::Mat line(1, 1000000, CV_8UC1, cv::Scalar(128));
  const auto bytes = encode(line, ".png");
  EXPECT_LT(bytes.size(), 5000u);
  EXPECT_EQ(code_of(bytes), ErrorCode::kInvalidArgument);
  EXPECT_NE(message_of(bytes).find("20 to 1"), std::string::npos) << message_of(bytes);
  EXPECT_EQ(decode_image(encode(cv::Mat(10, 200, CV_8UC3, cv::Scalar::all(9)), ".png")).cols,
            200);  // 20:1 exactly is accepted
  EXPECT_EQ(code_of(encode(cv::Mat(10, 201, CV_8UC3, cv::Scalar::all(9)), ".png")),
            ErrorCode::kInvalidArgument);
}

// A 381 KB 7000x7000 16-bit RGBA PNG cost 705 MB in one Search: the memory decoding takes
// is estimated from the header and bounded before a pixel is decoded.
TEST(DecodeImage, BoundsTheMemoryDecodingTakesBeforeDecoding) {
  auto png = encode(cv::Mat(8, 8, CV_16UC4, cv::Scalar::all(1000)), ".png");
  set_png_size(png, 7000, 7000);  // header only: refused before the data is looked at
  ImageHeader header = probe_image(png);
  EXPECT_EQ(header.channels, 4);
  EXPECT_EQ(header.bytes_per_sample, 2);
  EXPECT_EQ(decoding_bytes(header), 49000000ull * (8 + 4 + 3));
  EXPECT_EQ(code_of(png), ErrorCode::kResourceExhausted);
  EXPECT_NE(message_of(png).find("MiB, over the limit of 384 MiB"), std::string::npos)
      << message_of(png);
  // The same pixels as 8-bit RGB fit: 147 MB.
  auto rgb = encode(cv::Mat(8, 8, CV_8UC3, cv::Scalar::all(7)), ".png");
  set_png_size(rgb, 7000, 7000);
  EXPECT_EQ(decoding_bytes(probe_image(rgb)), 49000000ull * 3);
  // A progressive JPEG's decoder also holds its coefficients.
  const auto progressive =
      encode(cv::Mat(8, 8, CV_8UC3, cv::Scalar::all(7)), ".jpg", {cv::IMWRITE_JPEG_PROGRESSIVE, 1});
  EXPECT_TRUE(probe_image(progressive).progressive);
  EXPECT_EQ(decoding_bytes(probe_image(progressive)), 64u * (3 + 6));
  EXPECT_EQ(decoding_bytes(probe_image(encode(cv::Mat(8, 8, CV_8UC3, cv::Scalar::all(7)), ".jpg"))),
            64u * 3);
  ImageLimits tight;
  tight.max_decoded_bytes = 100;
  EXPECT_EQ(code_of(encode(cv::Mat(8, 8, CV_8UC3, cv::Scalar::all(7)), ".jpg"), tight),
            ErrorCode::kResourceExhausted);  // 192 bytes of BGR
}

TEST(DecodeImage, RejectsZeroSizeImages) {
  std::vector<std::uint8_t> bytes = encode(gradient(8, 8, CV_8UC3), ".png");
  // Patch the PNG header's width and height to 0.
  std::fill(bytes.begin() + 16, bytes.begin() + 24, 0);
  EXPECT_EQ(code_of(bytes), ErrorCode::kInvalidArgument);
}

TEST(DecodeImage, RejectsImagesOverThePixelLimitBeforeDecoding) {
  std::vector<std::uint8_t> bytes = encode(gradient(8, 8, CV_8UC3), ".png");
  // Claim 100000 x 100000 pixels in the header: 10 Gpx must be refused, not allocated.
  const std::uint8_t big[] = {0x00, 0x01, 0x86, 0xA0};
  std::copy(big, big + 4, bytes.begin() + 16);
  std::copy(big, big + 4, bytes.begin() + 20);
  EXPECT_EQ(code_of(bytes), ErrorCode::kResourceExhausted);
  EXPECT_NE(message_of(bytes).find("100000x100000"), std::string::npos);

  ImageLimits small;
  small.max_pixels = 100;
  const std::vector<std::uint8_t> jpeg = encode(gradient(64, 48, CV_8UC3), ".jpg");
  EXPECT_EQ(code_of(jpeg, small), ErrorCode::kResourceExhausted);
  small.max_pixels = 64 * 48;
  EXPECT_NO_THROW(decode_image(jpeg, small));
}

TEST(DecodeImage, RejectsInputsOverTheByteLimit) {
  ImageLimits limits;
  limits.max_bytes = 10;
  EXPECT_EQ(code_of(encode(gradient(8, 8, CV_8UC3), ".png"), limits),
            ErrorCode::kResourceExhausted);
}

TEST(ProbeImage, ReadsDimensionsFromHeaders) {
  const cv::Mat colour = gradient(123, 45, CV_8UC3);
  for (const std::string ext : {".jpg", ".png", ".bmp", ".webp"}) {
    const ImageHeader h = probe_image(encode(colour, ext));
    EXPECT_EQ(h.width, 123) << ext;
    EXPECT_EQ(h.height, 45) << ext;
  }
  const ImageHeader lossless =
      probe_image(encode(colour, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}));
  EXPECT_EQ(lossless.width, 123);
  EXPECT_EQ(lossless.height, 45);
}

TEST(LoadImage, NamesTheMissingFile) {
  try {
    load_image("/nonexistent/face.jpg");
    FAIL() << "loaded a missing file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/face.jpg"), std::string::npos);
  }
}

}  // namespace
}  // namespace frs
