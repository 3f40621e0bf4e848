#include "frs/video/camera_sources.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <array>
#include <cstring>
#include <optional>

#include "frs/core/error.h"
#include "frs/core/text.h"
#include "frs/core/url.h"

namespace frs {
namespace {

struct Network {
  int family = 0;  // AF_INET or AF_INET6
  std::array<unsigned char, 16> bytes{};
  int prefix = 0;  // bits
};

std::optional<Network> parse_address(const std::string& text, int prefix = -1) {
  Network n;
  if (inet_pton(AF_INET, text.c_str(), n.bytes.data()) == 1) {
    n.family = AF_INET;
    n.prefix = prefix < 0 ? 32 : prefix;
    if (n.prefix > 32) return std::nullopt;
    return n;
  }
  if (inet_pton(AF_INET6, text.c_str(), n.bytes.data()) == 1) {
    n.family = AF_INET6;
    n.prefix = prefix < 0 ? 128 : prefix;
    if (n.prefix > 128) return std::nullopt;
    return n;
  }
  return std::nullopt;
}

// "10.0.0.0/8", "10.0.0.5", "fd00::/8"; nullopt for a host name (or a malformed range).
std::optional<Network> parse_network(const std::string& entry) {
  const auto slash = entry.find('/');
  if (slash == std::string::npos) return parse_address(entry);
  const std::string bits = entry.substr(slash + 1);
  if (bits.empty() || bits.size() > 3 ||
      bits.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return parse_address(entry.substr(0, slash), std::stoi(bits));
}

bool contains(const Network& net, const Network& address) {
  if (net.family != address.family) return false;
  const int full = net.prefix / 8, rest = net.prefix % 8;
  if (std::memcmp(net.bytes.data(), address.bytes.data(), static_cast<std::size_t>(full)) != 0) {
    return false;
  }
  if (rest == 0) return true;
  const auto mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (net.bytes[static_cast<std::size_t>(full)] & mask) ==
         (address.bytes[static_cast<std::size_t>(full)] & mask);
}

bool valid_host_name(const std::string& name) {
  if (name.empty() || name.size() > 253) return false;
  for (const char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.')) return false;
  }
  return true;
}

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

bool host_allowed(const std::string& host, const std::vector<std::string>& allowed) {
  if (allowed.empty()) return true;
  std::vector<Network> ranges;
  for (const std::string& entry : allowed) {
    if (const auto net = parse_network(entry)) {
      ranges.push_back(*net);
    } else if (lower(entry) == host) {
      return true;  // listed by name
    }
  }
  const auto in_ranges = [&](const Network& address) {
    for (const Network& r : ranges) {
      if (contains(r, address)) return true;
    }
    return false;
  };
  if (const auto literal = parse_address(host)) return in_ranges(*literal);
  // A name: every address it resolves to now must be in a listed range.
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (ranges.empty() || getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0) return false;
  bool all = found != nullptr;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = "";
    const void* raw =
        a->ai_family == AF_INET
            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
            : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
    inet_ntop(a->ai_family, raw, text, sizeof text);
    const auto address = parse_address(text);
    all = all && address && in_ranges(*address);
  }
  freeaddrinfo(found);
  return all;
}

void refuse(const std::string& url, const std::string& why) {
  throw Error(ErrorCode::kInvalidArgument,
              "camera URL " + quote_for_message(redact_url(url), 200) + " " + why);
}

}  // namespace

void check_camera_host_list(const std::vector<std::string>& hosts) {
  for (const std::string& entry : hosts) {
    if (parse_network(entry) || (entry.find('/') == std::string::npos && valid_host_name(entry))) {
      continue;
    }
    throw Error(ErrorCode::kInvalidArgument,
                "--camera-hosts entry " + quote_for_message(entry) +
                    " is not a host name, an address or a CIDR range (10.20.0.0/16)");
  }
}

void check_camera_source(const std::string& url, const CameraSourcePolicy& policy) {
  const auto parts = split_url(url);
  if (!parts || parts->scheme == "file") {
    // A video file.
    if (policy.media_dir.empty()) {
      refuse(url,
             "is a file: frs-server plays video files only from its --media-dir, and none is "
             "set (use rtsp://, rtsps://, http:// or https://)");
    }
    std::string path = url;
    if (parts) {
      // file:///a/b -> /a/b; no host, no query, no escapes (spell the path plainly).
      if (!parts->host.empty() && parts->host != "localhost") {
        refuse(url, "names a file on another host: give a path under --media-dir");
      }
      path = parts->rest;
      if (path.find_first_of("%?#") != std::string::npos) {
        refuse(url, "has escapes or a query: give the plain path of a file under --media-dir");
      }
    }
    std::error_code ec;
    const auto media = std::filesystem::canonical(policy.media_dir, ec);
    const auto target = std::filesystem::weakly_canonical(std::filesystem::absolute(path, ec), ec);
    const auto relative = target.lexically_relative(media);
    const bool inside = !ec && !media.empty() && !relative.empty() && relative.is_relative() &&
                        *relative.begin() != "..";
    // Outside: the same answer whether it exists or not, and whatever it is.
    if (!inside) refuse(url, "is not under --media-dir " + policy.media_dir.string());
    if (!std::filesystem::is_regular_file(target, ec)) {
      refuse(url, "is not a video file in --media-dir (not there, or not a regular file)");
    }
    return;
  }
  const std::string& scheme = parts->scheme;
  if (scheme != "rtsp" && scheme != "rtsps" && scheme != "http" && scheme != "https") {
    refuse(url, "has a scheme frs does not play: use rtsp://, rtsps://, http:// or https://");
  }
  // "rtsp://a/b@c/" is host a to GStreamer and host c to a reader of the last '@': refused,
  // so that the host checked is the host connected to.
  if (parts->user_info.find_first_of("/?#") != std::string::npos) {
    refuse(url,
           "has '/', '?' or '#' before its '@': percent-encode them in the user name or "
           "password (%2F, %3F, %23)");
  }
  if (parts->host.empty()) refuse(url, "has no host");
  if (!host_allowed(parts->host, policy.allowed_hosts)) {
    refuse(url, "points to a host --camera-hosts does not allow");
  }
}

}  // namespace frs
