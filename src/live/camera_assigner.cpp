#include "frs/live/camera_assigner.h"

#include <spdlog/spdlog.h>

#include <set>

#include "frs/core/error.h"
#include "frs/core/logfmt.h"
#include "frs/core/url.h"

namespace frs {

CameraAssigner::CameraAssigner(CameraLeaseStore& leases, CameraStore& cameras, LiveRecognizer& live,
                               ClusterNode self, std::function<std::uint64_t()> applied_change,
                               CameraAssignerOptions options)
    : leases_(leases),
      cameras_(cameras),
      live_(live),
      self_(std::move(self)),
      applied_change_(std::move(applied_change)),
      options_(options) {
  if (options_.lease < std::chrono::seconds(2) || options_.lease > std::chrono::minutes(10)) {
    throw Error(ErrorCode::kInvalidArgument, "the camera lease time must be 2 s..10 min");
  }
  if (options_.round <= std::chrono::milliseconds(0) || options_.round * 2 > options_.lease) {
    throw Error(ErrorCode::kInvalidArgument,
                "a lease round must be positive and at most half the lease time");
  }
  renewed_ns_ = std::chrono::steady_clock::now().time_since_epoch().count();
  thread_ = std::thread([this] { run(); });
  watchdog_ = std::thread([this] { fence(); });
}

CameraAssigner::~CameraAssigner() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  watchdog_.join();
  std::vector<std::string> names;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, started] : running_) names.push_back(name);
  }
  for (const std::string& name : names) stop_camera(name, "node stopping");
  try {
    leases_.leave(self_.id);
  } catch (const std::exception& e) {
    // Its leases expire by themselves.
    spdlog::warn("event=cluster_leave_failed error={}", logfmt_value(redact_urls_in(e.what())));
  }
}

std::vector<std::string> CameraAssigner::running() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [name, started] : running_) out.push_back(name);
  return out;
}

void CameraAssigner::stop_camera(const std::string& name, const char* why) {
  try {
    live_.remove_camera(name);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound) throw;
  }
  {
    std::lock_guard lock(mutex_);
    running_.erase(name);
  }
  spdlog::info("camera={} event=lease_stopped reason={}", logfmt_value(name), logfmt_value(why));
}

void CameraAssigner::run() {
  for (;;) {
    const auto started = std::chrono::steady_clock::now();
    try {
      one_round();
      if (!last_error_.empty()) spdlog::info("event=cluster_round_recovered");
      last_error_.clear();
    } catch (const std::exception& e) {
      const std::string error = redact_urls_in(e.what());
      if (error != last_error_) {
        spdlog::warn("event=cluster_round_failed error={}", logfmt_value(error));
      }
      last_error_ = error;
    }
    std::unique_lock lock(mutex_);
    if (wake_.wait_until(lock, started + options_.round, [this] { return stopping_; })) return;
  }
}

void CameraAssigner::fence() {
  // Our leases run out `lease` after the last renewal began, at the earliest; stop one round
  // before, checking often, so that a round stuck on a dead server cannot delay it.
  const auto limit = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      options_.lease - options_.round);
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (wake_.wait_for(lock, std::chrono::milliseconds(100), [this] { return stopping_; })) {
        return;
      }
    }
    const std::chrono::steady_clock::time_point renewed{
        std::chrono::steady_clock::duration(renewed_ns_.load())};
    if (std::chrono::steady_clock::now() - renewed < limit) continue;
    for (const std::string& name : running()) stop_camera(name, "lease not renewed in time");
  }
}

void CameraAssigner::one_round() {
  std::map<std::string, CameraConfig> configs;
  std::vector<std::string> names;
  for (CameraConfig& c : cameras_.list()) {
    names.push_back(c.name);
    configs.emplace(c.name, std::move(c));
  }
  self_.applied_change = applied_change_ ? applied_change_() : 0;
  const auto started = std::chrono::steady_clock::now();
  const LeaseRound round = leases_.round(self_, names, options_.lease);
  renewed_ns_ = started.time_since_epoch().count();
  std::set<std::string> wanted(round.held.begin(), round.held.end());
  for (const std::string& name : round.give_up) wanted.erase(name);
  for (const std::string& name : running()) {
    if (!wanted.count(name)) {
      stop_camera(name, configs.count(name) ? "given to another node" : "camera removed");
    }
  }
  if (!round.give_up.empty()) leases_.release(self_.id, round.give_up);
  for (const std::string& name : wanted) {
    {
      std::lock_guard lock(mutex_);
      if (running_.count(name) || stopping_) continue;
    }
    try {
      live_.add_camera(configs.at(name), MissingWatchlists::kReport);  // logs event=added
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kAlreadyExists) {
        spdlog::error("camera={} event=not_started error={}", logfmt_value(name),
                      logfmt_value(redact_urls_in(e.what())));
        continue;  // retried next round
      }
    }
    std::lock_guard lock(mutex_);
    running_[name] = true;
    spdlog::info("camera={} event=lease_started node={}", logfmt_value(name),
                 logfmt_value(self_.id));
  }
}

}  // namespace frs
