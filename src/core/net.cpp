#include "frs/core/net.h"

#include <arpa/inet.h>

namespace frs {

std::string host_of_address(std::string_view address) {
  if (address.rfind("unix:", 0) == 0 || address.rfind("unix-abstract:", 0) == 0) return "unix";
  if (address.rfind("dns:", 0) == 0) address.remove_prefix(4);
  if (address.rfind("ipv4:", 0) == 0) address.remove_prefix(5);
  if (address.rfind("ipv6:", 0) == 0) address.remove_prefix(5);
  if (!address.empty() && address.front() == '[') {
    const auto close = address.find(']');
    return std::string(address.substr(1, close == std::string_view::npos ? close : close - 1));
  }
  const auto colon = address.rfind(':');
  // More than one colon and no brackets: a bare IPv6 address without a port.
  if (colon != std::string_view::npos && address.find(':') != colon) return std::string(address);
  return std::string(address.substr(0, colon));
}

bool is_loopback_host(std::string_view host) {
  if (host == "unix" || host == "localhost") return true;
  const std::string text(host);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

}  // namespace frs
