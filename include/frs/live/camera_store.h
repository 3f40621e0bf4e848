#pragma once
// Cameras added at run time, kept so they come back after a restart (SQLite in the data
// dir, or the cluster's PostgreSQL database).

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "frs/live/live_recognizer.h"
#include "frs/storage/database.h"

namespace frs {

class CameraStore {
 public:
  explicit CameraStore(const StoreLocation& where);
  // Inserts or replaces the camera of that name.
  void put(const CameraConfig& camera);
  // Returns whether it was there.
  bool remove(const std::string& name);
  std::vector<CameraConfig> list();

 private:
  std::unique_ptr<Database> db_;
  std::mutex mutex_;
};

}  // namespace frs
