#pragma once
// Shared set-up of the tests that run the real models on the real faces.

#include <filesystem>
#include <memory>

#include "frs/vision/face_engine.h"
#include "testdata.h"

namespace frs::testing {

inline std::filesystem::path face_path(const std::string& name) {
  return testdata_dir() / "faces" / name;
}

// One engine for the whole test program (loading the models takes a second), describing
// with dlib-resnet-v1: the model whose published figures (testdata README) the tests check.
// Tests of the default model (fused-v1) or another say so with an engine of their own.
inline const FaceEngine& shared_dlib_engine() {
  static const std::unique_ptr<FaceEngine> engine = [] {
    FaceEngineOptions options;
    options.threads = 2;
    options.descriptor = std::string(kDlibDescriptorId);
    return std::make_unique<FaceEngine>(options);
  }();
  return *engine;
}

// The largest face of an image, embedded with dlib-resnet-v1; fails the test when there is none.
inline Face largest_face(const std::filesystem::path& path) {
  std::vector<Face> faces = shared_dlib_engine().analyze(load_image(path));
  if (faces.empty()) throw std::runtime_error("no face found in " + path.string());
  return faces.front();
}

}  // namespace frs::testing
