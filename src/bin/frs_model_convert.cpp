// frs-model-convert: turns face-api's TensorFlow.js copy of dlib's face descriptor network
// into a dlib .dat file that dlib::deserialize reads into frs::facenet::Network.

#include <CLI/CLI.hpp>
#include <iostream>

#include "frs/convert/tfjs_weights.h"
#include "frs/core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"Convert face-api's face_recognition_model (TF.js) to a dlib .dat file"};
  std::string manifest;
  std::string output;
  app.add_option("manifest", manifest,
                 "face_recognition_model-weights_manifest.json (its .bin beside it)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("-o,--output", output, "Where to write the .dat file")->required();
  CLI11_PARSE(app, argc, argv);

  try {
    frs::convert::convert_face_recognition_model(manifest, output);
  } catch (const std::exception& e) {
    std::cerr << "frs-model-convert: " << e.what() << "\n";
    return 1;
  }
  std::cout << "wrote " << output << "\n";
  return 0;
}
