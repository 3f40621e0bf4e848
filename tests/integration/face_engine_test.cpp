#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <opencv2/imgproc.hpp>
#include <set>
#include <thread>

#include "frs/core/error.h"
#include "model_fixture.h"

namespace frs::testing {
namespace {

float photo_distance(const std::string& a, const std::string& b) {
  return distance(*largest_face(face_path(a)).embedding, *largest_face(face_path(b)).embedding);
}

TEST(FaceEngine, SamePersonIsUnderDlibsThresholdAndOthersAreOver) {
  // The figures measured with dlib's own pipeline (testdata README): 0.369, 0.336, 0.830.
  EXPECT_NEAR(photo_distance("obama.jpg", "obama2.jpg"), 0.369, 0.02);
  EXPECT_NEAR(photo_distance("obama.jpg", "obama3.jpg"), 0.336, 0.02);
  EXPECT_LT(photo_distance("obama2.jpg", "obama3.jpg"), kDefaultMaxDistance);
  EXPECT_NEAR(photo_distance("obama.jpg", "biden.jpg"), 0.830, 0.02);
  EXPECT_GT(photo_distance("obama2.jpg", "biden.jpg"), kDefaultMaxDistance);
}

TEST(FaceEngine, FindsTheSameFaceAtEveryResolution) {
  const Face reference = largest_face(face_path("obama-1080p.jpg"));
  for (const char* name : {"obama-240p.jpg", "obama-480p.jpg", "obama-720p.jpg"}) {
    const Face face = largest_face(face_path(name));
    EXPECT_LT(distance(*face.embedding, *reference.embedding), 0.25f) << name;
  }
}

TEST(FaceEngine, ReadsRgbaPngAndSmallPhotos) {
  EXPECT_LT(distance(*largest_face(face_path("32bit.png")).embedding,
                     *largest_face(face_path("obama.jpg")).embedding),
            kDefaultMaxDistance);
  EXPECT_LT(distance(*largest_face(face_path("obama_small.jpg")).embedding,
                     *largest_face(face_path("obama.jpg")).embedding),
            kDefaultMaxDistance);
}

// Jittered descriptors (test-time augmentation as dlib's example does it) are repeatable and
// stay near the plain one.
TEST(FaceEngine, JitteredDescriptorsAreRepeatableAndNearThePlainOne) {
  FaceEngineOptions options;
  options.threads = 2;
  options.jitter = 4;
  const FaceEngine jittering(options);
  const cv::Mat obama = load_image(face_path("obama.jpg"));
  std::vector<Face> faces = shared_dlib_engine().analyze(obama, false);
  ASSERT_FALSE(faces.empty());
  std::vector<Face> first = {faces[0]}, second = {faces[0]}, plain = {faces[0]};
  jittering.embed(first);
  jittering.embed(second);
  shared_dlib_engine().embed(plain);
  EXPECT_EQ(*first[0].embedding, *second[0].embedding);
  const float moved = distance(*first[0].embedding, *plain[0].embedding);
  EXPECT_GT(moved, 0.0f);
  EXPECT_LT(moved, 0.15f);  // the same face; obama-obama2 is 0.37 apart
  options.jitter = 101;
  EXPECT_THROW(FaceEngine{options}, Error);
}

TEST(FaceEngine, SingleImageAndBatchGiveTheSameDescriptors) {
  const cv::Mat group = load_image(testdata_dir() / "groups" / "bbt1.jpg");
  std::vector<Face> batch = shared_dlib_engine().analyze(group, true);
  ASSERT_GE(batch.size(), 3u);
  for (Face& face : batch) {
    std::vector<Face> one = {face};
    one[0].embedding.reset();
    shared_dlib_engine().embed(one);
    EXPECT_LT(distance(*one[0].embedding, *face.embedding), 1e-5f);
  }
}

TEST(FaceEngine, ConcurrentCallersGetTheSameAnswers) {
  const cv::Mat image = load_image(face_path("obama.jpg"));
  const Embedding expected = *shared_dlib_engine().analyze(image).front().embedding;
  std::vector<std::thread> threads;
  std::vector<float> distances(4, 1.0f);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      distances[static_cast<std::size_t>(i)] =
          distance(*shared_dlib_engine().analyze(image).front().embedding, expected);
    });
  }
  for (auto& t : threads) t.join();
  for (float d : distances) EXPECT_LT(d, 1e-5f);
}

TEST(FaceEngine, KnnTrainingPhotosAreNearestToTheSamePerson) {
  const auto images = read_identity_tree(testdata_dir() / "faces" / "knn" / "train");
  ASSERT_EQ(images.size(), 9u);
  std::vector<Embedding> embeddings;
  for (const auto& img : images) embeddings.push_back(*largest_face(img.file).embedding);
  std::map<std::string, int> photos_of;
  for (const auto& img : images) ++photos_of[img.identity];
  int correct = 0, asked = 0;
  for (std::size_t i = 0; i < images.size(); ++i) {
    if (photos_of[images[i].identity] < 2) continue;  // no other photo of them to find
    ++asked;
    std::size_t best = i;
    float best_distance = 1e9f;
    for (std::size_t j = 0; j < images.size(); ++j) {
      if (j == i) continue;
      const float d = distance(embeddings[i], embeddings[j]);
      if (d < best_distance) best_distance = d, best = j;
    }
    correct += images[best].identity == images[i].identity ? 1 : 0;
  }
  std::printf("knn/train: nearest neighbour is the same person for %d of %d photos\n", correct,
              asked);
  EXPECT_EQ(asked, 8);
  EXPECT_EQ(correct, asked);
}

TEST(FaceEngine, KnnTestPhotoWithTwoPeopleMatchesBoth) {
  const auto train = read_identity_tree(testdata_dir() / "faces" / "knn" / "train");
  std::vector<std::pair<std::string, Embedding>> gallery;
  for (const auto& img : train)
    gallery.emplace_back(img.identity, *largest_face(img.file).embedding);
  const auto faces = shared_dlib_engine().analyze(
      load_image(testdata_dir() / "faces" / "knn" / "test" / "obama_and_biden.jpg"));
  // Also in the photo: a child at the edge and (a detector false positive) a patch of the
  // background; neither may match anyone.
  ASSERT_GE(faces.size(), 2u);
  std::multiset<std::string> matched;
  for (const Face& f : faces) {
    std::string best;
    float best_distance = 1e9f;
    for (const auto& [identity, e] : gallery) {
      const float d = distance(*f.embedding, e);
      if (d < best_distance) best_distance = d, best = identity;
    }
    if (best_distance < kDefaultMaxDistance) matched.insert(best);
  }
  EXPECT_EQ(matched, (std::multiset<std::string>{"biden", "obama"}));
}

TEST(FaceEngine, Lfw10SamePersonPairsAreCloserThanOtherPeople) {
  const auto images = read_identity_tree(testdata_dir() / "lfw10");
  ASSERT_EQ(images.size(), 100u);
  std::vector<Embedding> embeddings;
  std::vector<std::string> identities;
  int no_face = 0;
  for (const auto& img : images) {
    // LFW images are 250x250 with the subject centred: the centre-most face is the subject.
    const auto faces = shared_dlib_engine().analyze(load_image(img.file));
    if (faces.empty()) {
      ++no_face;
      continue;
    }
    const Face* centre = &faces.front();
    for (const Face& f : faces) {
      const auto c = (f.box.tl() + f.box.br()) * 0.5f;
      const auto best = (centre->box.tl() + centre->box.br()) * 0.5f;
      if (cv::norm(c - cv::Point2f(125, 125)) < cv::norm(best - cv::Point2f(125, 125))) centre = &f;
    }
    embeddings.push_back(*centre->embedding);
    identities.push_back(img.identity);
  }
  std::map<std::string, float> farthest_same, nearest_other;
  int pairs = 0, correct = 0;
  for (std::size_t i = 0; i < embeddings.size(); ++i) {
    for (std::size_t j = i + 1; j < embeddings.size(); ++j) {
      const float d = distance(embeddings[i], embeddings[j]);
      const bool same = identities[i] == identities[j];
      ++pairs;
      correct += (d < kDefaultMaxDistance) == same ? 1 : 0;
      for (const auto& id : {identities[i], identities[j]}) {
        if (same) {
          farthest_same[id] = std::max(farthest_same[id], d);
        } else {
          nearest_other.try_emplace(id, 1e9f);
          nearest_other[id] = std::min(nearest_other[id], d);
        }
      }
    }
  }
  int separated = 0;
  for (const auto& [id, far] : farthest_same) separated += far < nearest_other[id] ? 1 : 0;
  const double accuracy = static_cast<double>(correct) / pairs;
  std::printf(
      "lfw10: %d images without a face; %d of %zu identities fully separated; pair "
      "accuracy at 0.6: %.4f over %d pairs\n",
      no_face, separated, farthest_same.size(), accuracy, pairs);
  EXPECT_EQ(no_face, 0);
  // Measured: 7 of 10 separated, 0.9964 (LFW's hard poses make a few same-person pairs
  // farther apart than the nearest look-alike; dlib reports 99.38% on LFW's own protocol).
  EXPECT_GE(separated, 6);
  EXPECT_GE(accuracy, 0.99);
}

TEST(FaceEngine, FindsAFortyPixelFaceInA1080pFrameOnlyWithTiling) {
  // A real face scaled to 40 pixels, pasted into a 1920x1080 frame of a real (faceless) scene.
  const cv::Mat photo = load_image(face_path("obama.jpg"));
  const Face big = largest_face(face_path("obama.jpg"));
  const double scale = 40.0 / big.box.width;
  cv::Mat small;
  cv::resize(photo, small, cv::Size(), scale, scale, cv::INTER_AREA);
  cv::Mat frame;
  cv::resize(load_image(testdata_dir() / "detection" / "dlib" / "dogs.jpg"), frame, {1920, 1080});
  const cv::Point at(1300, 700);
  small.copyTo(frame(cv::Rect(at, small.size())));
  const cv::Rect2f expected(static_cast<float>(at.x + big.box.x * scale),
                            static_cast<float>(at.y + big.box.y * scale), 40, 40);

  auto found_it = [&](const FaceEngine& engine) {
    for (const Detection& d : engine.detect(frame)) {
      if (iou(d.box, expected) >= 0.3f) return true;
    }
    return false;
  };
  EXPECT_TRUE(found_it(shared_dlib_engine()));
  FaceEngineOptions one_pass;
  one_pass.min_face_px = 0;
  one_pass.threads = 1;
  EXPECT_FALSE(found_it(FaceEngine(one_pass)));
}

TEST(FaceEngine, FindsAHundredFacesInOneImage) {
  // A 10x10 mosaic of the 100 lfw10 photos, each shrunk to 160x160 (faces ~70 px).
  const auto images = read_identity_tree(testdata_dir() / "lfw10");
  cv::Mat mosaic(1600, 1600, CV_8UC3);
  for (std::size_t i = 0; i < images.size(); ++i) {
    cv::Mat tile;
    cv::resize(load_image(images[i].file), tile, {160, 160}, 0, 0, cv::INTER_AREA);
    tile.copyTo(
        mosaic(cv::Rect(static_cast<int>(i % 10) * 160, static_cast<int>(i / 10) * 160, 160, 160)));
  }
  const auto faces = shared_dlib_engine().analyze(mosaic, false);
  // Each tile's subject is centred; count the tiles whose centre region holds a face.
  std::set<int> tiles;
  for (const Face& f : faces) {
    const cv::Point2f c = (f.box.tl() + f.box.br()) * 0.5f;
    const int col = static_cast<int>(c.x) / 160, row = static_cast<int>(c.y) / 160;
    const cv::Point2f tile_centre(col * 160 + 80.0f, row * 160 + 80.0f);
    if (cv::norm(c - tile_centre) < 30) tiles.insert(row * 10 + col);
  }
  std::printf("100-face mosaic: %zu faces found, %zu of 100 subjects\n", faces.size(),
              tiles.size());
  EXPECT_GE(tiles.size(), 98u);
}

TEST(FaceEngine, QualityRanksASharpFrontalFaceAboveABlurredOne) {
  const cv::Mat sharp = load_image(face_path("obama.jpg"));
  cv::Mat blurred;
  cv::GaussianBlur(sharp, blurred, {0, 0}, 6);
  const auto a = shared_dlib_engine().analyze(sharp, false);
  const auto b = shared_dlib_engine().analyze(blurred, false);
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  EXPECT_GT(a[0].quality.sharpness, 4 * b[0].quality.sharpness);
  EXPECT_GT(a[0].quality.score, b[0].quality.score);
  EXPECT_LT(std::abs(a[0].quality.yaw), 0.2f);
}

// The live path picks which faces to align from estimate_quality: it must rank faces the
// way the landmark-based quality does where it matters (sharp over blurred, frontal over
// turned, large over small).
TEST(FaceEngine, EstimatedQualityRanksFacesLikeTheMeasuredOne) {
  const cv::Mat sharp = load_image(face_path("obama.jpg"));
  cv::Mat blurred, small;
  cv::GaussianBlur(sharp, blurred, {0, 0}, 6);
  cv::resize(sharp, small, {}, 0.15, 0.15, cv::INTER_AREA);
  const auto estimate = [](const cv::Mat& image) {
    const auto found = shared_dlib_engine().detect(image);
    EXPECT_FALSE(found.empty());
    return found.empty() ? FaceQuality{} : estimate_quality(image, found[0]);
  };
  const FaceQuality a = estimate(sharp), b = estimate(blurred), c = estimate(small);
  EXPECT_GT(a.sharpness, 4 * b.sharpness);
  EXPECT_GT(a.score, b.score);
  EXPECT_GT(a.score, c.score);
  EXPECT_LT(std::abs(a.yaw), 0.2f);

  // Yaw: on the faces of the crops set that the landmarks call clearly turned, the estimate
  // turns the same way (measured: 67 of 71; the ear keypoints are guesses when an ear is
  // hidden).
  int turned = 0, agreeing = 0;
  for (const auto& entry : std::filesystem::directory_iterator(testdata_dir() / "crops")) {
    const cv::Mat image = load_image(entry.path());
    const auto found = shared_dlib_engine().detect(image);
    if (found.empty()) continue;
    const Face face = shared_dlib_engine().align(image, found[0]);
    if (std::abs(face.quality.yaw) < 0.3f) continue;
    ++turned;
    const float guess = estimate_quality(image, found[0]).yaw;
    if ((guess > 0) == (face.quality.yaw > 0)) ++agreeing;
  }
  EXPECT_GE(turned, 20);
  EXPECT_GE(agreeing * 10, turned * 9);
}

// Enrollment detects with BlazeFace's front model (a quarter of the cost): on portraits it
// must find the same subject, and give nearly the same descriptor, as the full detector.
TEST(FaceEngine, ThePortraitDetectorFindsTheSameSubjectAsTheFullOne) {
  int photos = 0, same_subject = 0;
  std::vector<float> distances;
  for (const auto& p : read_identity_tree(testdata_dir() / "lfw10")) {
    const cv::Mat bgr = load_image(p.file);
    const auto full = shared_dlib_engine().analyze(bgr, true);
    const auto portrait = shared_dlib_engine().analyze_portrait(bgr, true);
    if (full.empty()) continue;
    ++photos;
    ASSERT_FALSE(portrait.empty()) << p.file;
    const cv::Rect2f a = full[0].box, b = portrait[0].box;
    if ((a & b).area() / (a | b).area() >= 0.5f) ++same_subject;
    distances.push_back(distance(*full[0].embedding, *portrait[0].embedding));
  }
  std::sort(distances.begin(), distances.end());
  ASSERT_EQ(photos, 100);
  EXPECT_GE(same_subject, 99);  // measured: 100
  // The same face, boxed a little differently: far closer than two photos of one person
  // (about 0.35). Measured: median 0.023, largest 0.108.
  EXPECT_LT(distances[distances.size() / 2], 0.1f);
  std::printf("portrait vs full: same subject %d of %d, descriptor distance median %.3f max %.3f\n",
              same_subject, photos, distances[distances.size() / 2], distances.back());
}

TEST(FaceEngine, HogDetectorFeedsTheSamePipeline) {
  FaceEngineOptions options;
  options.detector = DetectorKind::kHog;
  options.min_score = 0;
  options.threads = 1;
  const FaceEngine hog(options);
  const auto a = hog.analyze(load_image(face_path("obama.jpg")));
  const auto b = hog.analyze(load_image(face_path("obama2.jpg")));
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_LT(distance(*a[0].embedding, *b[0].embedding), kDefaultMaxDistance);
}

TEST(FaceEngine, MissingModelsSayHowToFixIt) {
  FaceEngineOptions options;
  options.models_dir = "/nonexistent/models";
  try {
    FaceEngine engine(options);
    FAIL() << "engine started without models";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(std::string(e.what()).find("scripts/setup.sh"), std::string::npos) << e.what();
  }
}

TEST(FaceEngine, CorruptModelsNameTheFile) {
  // A models directory where one file at a time is truncated to half its size.
  const auto dir =
      std::filesystem::temp_directory_path() / ("frs_models_" + std::to_string(::getpid()));
  const char* const models[] = {kBlazeFaceModelFile, kBlazeFaceFrontModelFile, kLandmarkModelFile,
                                kDescriptorModelFile};
  for (const char* broken : models) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    for (const char* name : models) {
      const auto source = std::filesystem::canonical(default_models_dir() / name);
      if (std::string(name) != broken) {
        std::filesystem::create_symlink(source, dir / name);
        continue;
      }
      std::ifstream in(source, std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      std::ofstream(dir / name, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    }
    FaceEngineOptions options;
    options.models_dir = dir;
    options.threads = 1;
    try {
      FaceEngine engine(options);
      ADD_FAILURE() << "engine loaded a truncated " << broken;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition) << broken;
      EXPECT_NE(std::string(e.what()).find(broken), std::string::npos) << e.what();
    }
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace frs::testing
