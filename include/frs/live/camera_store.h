#pragma once
// Cameras added at run time, kept so they come back after a restart (SQLite, in the data
// dir).

#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "frs/live/live_recognizer.h"
#include "frs/storage/sqlite.h"

namespace frs {

class CameraStore {
 public:
  explicit CameraStore(const std::filesystem::path& file);
  // Inserts or replaces the camera of that name.
  void put(const CameraConfig& camera);
  // Returns whether it was there.
  bool remove(const std::string& name);
  std::vector<CameraConfig> list();

 private:
  SqliteDatabase db_;
  std::mutex mutex_;
};

}  // namespace frs
