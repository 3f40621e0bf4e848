#pragma once
// What the `frs` commands that talk to frs-server share: the options every one of them
// takes (before or after the subcommand: --server, --token, --token-file, --purpose,
// --json, --tls*), the connection, and error reporting. Each group of commands has its own
// file (watchlist, enroll + identity, search, camera, alerts, token, audit).

#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "frs/client/channel.h"
#include "frs/v1/audit.grpc.pb.h"
#include "frs/v1/gallery.grpc.pb.h"
#include "frs/v1/live.grpc.pb.h"
#include "frs/v1/tokens.grpc.pb.h"

namespace frs::cli {

namespace pb = ::frs::v1;
using nlohmann::json;
using Action = std::function<int()>;

struct RemoteOptions {
  ClientOptions client;    // server, token, purpose, TLS
  std::string token_file;  // --token-file / FRS_TOKEN_FILE, read when no token was given
  bool json_output = false;
};

// The one instance the root options fill.
RemoteOptions& remote_options();
// The name every command file reads them by.
inline RemoteOptions& o = remote_options();
// Adds the shared options to the root command (they then also work after a subcommand).
void add_shared_remote_options(CLI::App& app);

class RemoteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string default_server();
// The channel to frs-server with the token (--token, else FRS_TOKEN, else --token-file,
// else FRS_TOKEN_FILE) and purpose (--purpose, else FRS_PURPOSE).
std::shared_ptr<grpc::Channel> connect(RemoteOptions& o);
// Throws RemoteError with a message that says what to do.
void check(const grpc::Status& status, const RemoteOptions& o);
std::unique_ptr<grpc::ClientContext> context(int seconds = 120);
std::string read_bytes(const std::string& path);
json box_json(const pb::Box& b);
inline double rounded(double v) {
  return std::round(v * 10000) / 10000;
}

// An option that may be given several times, one value each time: `--watchlist a
// --watchlist b IMAGE...` (never eating the positional arguments after it).
CLI::Option* add_repeatable(CLI::App* command, const std::string& name,
                            std::vector<std::string>& values, const std::string& description);

void add_watchlist_commands(CLI::App& app, Action& action);
void add_enroll_commands(CLI::App& app, Action& action);  // enroll, identity
void add_search_commands(CLI::App& app, Action& action);
void add_camera_commands(CLI::App& app, Action& action);
void add_alert_commands(CLI::App& app, Action& action);
void add_token_commands(CLI::App& app, Action& action);
void add_audit_commands(CLI::App& app, Action& action);

}  // namespace frs::cli
