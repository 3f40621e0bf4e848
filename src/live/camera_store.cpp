#include "frs/live/camera_store.h"

#include <nlohmann/json.hpp>

namespace frs {
namespace {

const char* const kCameraMigrations[] = {
    // the same in both dialects
    R"sql(
CREATE TABLE cameras (
  name TEXT PRIMARY KEY,
  spec TEXT NOT NULL  -- JSON of the camera's settings
);
)sql",
};

std::string to_json(const CameraConfig& c) {
  nlohmann::json j = {{"url", c.source.url},
                      {"watchlists", c.watchlists},
                      {"analyse_fps", c.analyse_fps},
                      {"rtsp_transport", c.source.rtsp_transport},
                      {"rtsp_latency_ms", c.source.rtsp_latency_ms}};
  if (c.region) {
    j["region"] = {c.region->x, c.region->y, c.region->width, c.region->height};
  }
  return j.dump();
}

CameraConfig from_json(const std::string& name, const std::string& text) {
  const auto j = nlohmann::json::parse(text);
  CameraConfig c;
  c.name = name;
  c.source.url = j.at("url").get<std::string>();
  c.watchlists = j.at("watchlists").get<std::vector<std::string>>();
  c.analyse_fps = j.at("analyse_fps").get<double>();
  c.source.rtsp_transport = j.value("rtsp_transport", std::string("tcp"));
  c.source.rtsp_latency_ms = j.value("rtsp_latency_ms", 200);
  if (j.contains("region")) {
    const auto& r = j["region"];
    c.region = cv::Rect(r[0].get<int>(), r[1].get<int>(), r[2].get<int>(), r[3].get<int>());
  }
  return c;
}

}  // namespace

CameraStore::CameraStore(const StoreLocation& where)
    : db_(open_database(where, "cameras", "the camera store",
                        {kCameraMigrations, kCameraMigrations})) {}

void CameraStore::put(const CameraConfig& camera) {
  std::lock_guard lock(mutex_);
  Statement s(
      *db_,
      "INSERT INTO cameras(name, spec) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET spec = "
      "excluded.spec");
  s.bind(1, camera.name).bind(2, to_json(camera)).step();
}

bool CameraStore::remove(const std::string& name) {
  std::lock_guard lock(mutex_);
  Statement(*db_, "DELETE FROM cameras WHERE name = ?").bind(1, name).step();
  return db_->changes() > 0;
}

std::vector<CameraConfig> CameraStore::list() {
  std::lock_guard lock(mutex_);
  Statement s(*db_, "SELECT name, spec FROM cameras ORDER BY name");
  std::vector<CameraConfig> out;
  while (s.step()) out.push_back(from_json(s.text(0), s.text(1)));
  return out;
}

}  // namespace frs
