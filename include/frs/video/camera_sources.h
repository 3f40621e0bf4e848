#pragma once
// Where cameras may point. A camera URL makes the server open a connection or a file on the
// client's behalf, so frs-server limits it: only rtsp://, rtsps://, http:// and https://,
// hosts in an allowed list (when one is given), and video files only under a media
// directory (when one is given; none = no file cameras).

#include <filesystem>
#include <string>
#include <vector>

namespace frs {

struct CameraSourcePolicy {
  // Video files (a path or file://) are accepted only under this directory, after symbolic
  // links are resolved; empty: no file cameras at all.
  std::filesystem::path media_dir;
  // Hosts network cameras may be on: names ("cam-7.city.example"), addresses (10.0.0.5) or
  // CIDR ranges (10.20.0.0/16, fd00::/8). Empty: any host. A name is allowed when it is
  // listed, or when every address it resolves to is in a listed range.
  std::vector<std::string> allowed_hosts;
};

// Throws Error(kInvalidArgument) saying why `url` may not be a camera under `policy`. The
// message never says whether a local path outside the media dir exists or what it is.
void check_camera_source(const std::string& url, const CameraSourcePolicy& policy);

// Throws Error(kInvalidArgument) unless each entry is a host name, an address or a CIDR
// range (for --camera-hosts at start-up).
void check_camera_host_list(const std::vector<std::string>& hosts);

}  // namespace frs
