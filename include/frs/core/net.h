#pragma once
// Addresses as frs is given them: listen addresses of the server, hosts of camera URLs.

#include <string>
#include <string_view>

namespace frs {

// The host of "host:port", "[v6]:port" or "unix:/path" ("unix" for the last).
std::string host_of_address(std::string_view address);

// Whether `host` is only reachable from this machine: localhost, 127.0.0.0/8, ::1, or a
// unix socket ("unix"). Anything else, the wildcard 0.0.0.0 / :: included, is not.
bool is_loopback_host(std::string_view host);

}  // namespace frs
