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

// Checks a TLS listener's certificate and key before they are used, so that a mistake is
// named rather than reported by gRPC as a listener that cannot start: throws
// Error(kInvalidArgument) when `certificate_pem` holds no certificate, `key_pem` no
// (unencrypted) private key, or the key is not the certificate's. `certificate_file` and
// `key_file` name them in the message.
void check_tls_key_pair(const std::string& certificate_pem, const std::string& key_pem,
                        const std::string& certificate_file, const std::string& key_file);

}  // namespace frs
