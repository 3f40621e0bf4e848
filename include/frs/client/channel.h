#pragma once
// How a client reaches frs-server: the channel, TLS, and the token and purpose that every
// call carries (`authorization: Bearer TOKEN`, `purpose` or `purpose-bin`). The CLI, the
// tests and the benchmarks all connect through here.

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace frs {

struct ClientOptions {
  std::string server = "127.0.0.1:50051";  // host:port
  std::string token;    // the secret; "" = none (only the health service answers)
  std::string purpose;  // sent with every call when not empty
  bool tls = false;     // TLS (also implied by any of the three below)
  std::string tls_ca;  // PEM file of the CA that signed the server's certificate; "" = system store
  std::string tls_cert;  // PEM file: this client's certificate (mTLS)
  std::string tls_key;   // PEM file: its private key
  int max_message_mb = 64;
  bool own_connection = false;  // a connection of its own, not shared with other channels
};

// A channel whose every call carries the token and purpose. Throws Error(kInvalidArgument)
// when a TLS file cannot be read, or tls_cert is given without tls_key.
std::shared_ptr<grpc::Channel> make_channel(const ClientOptions& options);

}  // namespace frs
