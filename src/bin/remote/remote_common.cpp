#include "remote_common.h"

#include <cstdlib>
#include <fstream>

#include "frs/auth/tokens.h"

namespace frs::cli {

RemoteOptions& remote_options() {
  static RemoteOptions options;
  return options;
}

std::string default_server() {
  const char* env = std::getenv("FRS_SERVER");
  return env && *env ? env : "127.0.0.1:50051";
}

namespace {
std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}
}  // namespace

void add_shared_remote_options(CLI::App& app) {
  RemoteOptions& o = remote_options();
  o.client.server = default_server();
  app.add_option("--server", o.client.server, "frs-server address, host:port (env FRS_SERVER)")
      ->capture_default_str();
  app.add_option("--token", o.client.token,
                 "API token (env FRS_TOKEN; visible to other users in the process list: prefer "
                 "--token-file)");
  app.add_option("--token-file", o.token_file,
                 "File holding the API token (env FRS_TOKEN_FILE), e.g. DATA_DIR/admin.token");
  app.add_option("--purpose", o.client.purpose,
                 "Why: a case number or reason, 4..200 characters, recorded in the audit log "
                 "(env FRS_PURPOSE; needed by search, enroll, watchlist create, camera add and "
                 "alerts get)");
  app.add_flag("--tls", o.client.tls, "Connect with TLS, trusting the system's CA store");
  app.add_option("--tls-ca", o.client.tls_ca,
                 "Connect with TLS, trusting this PEM CA file (env FRS_TLS_CA)");
  app.add_option("--tls-cert", o.client.tls_cert, "This client's PEM certificate (mTLS)");
  app.add_option("--tls-key", o.client.tls_key, "Its PEM private key");
  app.add_flag("--json", o.json_output, "JSON output, one object per line");
  // The options above work after the subcommand too: `frs watchlist list --server X`.
  app.fallthrough();
}

std::shared_ptr<grpc::Channel> connect(RemoteOptions& o) {
  if (o.client.token.empty()) o.client.token = environment("FRS_TOKEN");
  if (o.client.token.empty()) {
    if (o.token_file.empty()) o.token_file = environment("FRS_TOKEN_FILE");
    if (!o.token_file.empty()) {
      try {
        o.client.token = read_token_file(o.token_file);
      } catch (const std::exception& e) {
        throw RemoteError(e.what());
      }
    }
  }
  if (o.client.purpose.empty()) o.client.purpose = environment("FRS_PURPOSE");
  if (o.client.tls_ca.empty()) o.client.tls_ca = environment("FRS_TLS_CA");
  try {
    return make_channel(o.client);
  } catch (const std::exception& e) {
    throw RemoteError(e.what());
  }
}

void check(const grpc::Status& status, const RemoteOptions& o) {
  if (status.ok()) return;
  const std::string& message = status.error_message();
  const auto says = [&](const char* text) { return message.find(text) != std::string::npos; };
  const std::string at = "frs-server at " + o.client.server;
  // gRPC's own words for what failed on the way; an UNAVAILABLE that frs-server sent itself
  // (its audit log, its token store) is passed on as it is.
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    if (says("Ssl handshake failed") || says("SSL_ERROR")) {
      throw RemoteError("the TLS handshake with " + at +
                        " failed: check that --tls-ca (FRS_TLS_CA) is the CA that signed the "
                        "server's certificate and that the certificate names the host in "
                        "--server; if the server serves plain text, connect without --tls-ca (" +
                        message + ")");
    }
    if ((says("Socket closed") || says("Connection reset")) && o.client.tls_ca.empty()) {
      throw RemoteError(at +
                        " closed the connection as it was being set up: if it serves TLS "
                        "(frs-server --tls-cert), give the CA of its certificate with --tls-ca "
                        "FILE or FRS_TLS_CA (" +
                        message + ")");
    }
    if (says("failed to connect to all addresses") || says("DNS resolution failed") ||
        says("Socket closed") || says("Connection reset")) {
      throw RemoteError("cannot reach " + at +
                        ": start it, or point --server / FRS_SERVER at it (" + message + ")");
    }
  }
  throw RemoteError(message);
}

std::unique_ptr<grpc::ClientContext> context(int seconds) {
  auto c = std::make_unique<grpc::ClientContext>();
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return c;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw RemoteError("cannot read '" + path + "'");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

json box_json(const pb::Box& b) {
  return {{"x", b.x()}, {"y", b.y()}, {"width", b.width()}, {"height", b.height()}};
}

CLI::Option* add_repeatable(CLI::App* command, const std::string& name,
                            std::vector<std::string>& values, const std::string& description) {
  return command->add_option(name, values, description)
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

}  // namespace frs::cli
