#pragma once
// A real frs-server process on a loopback port with a temporary data directory, and
// channels to it that carry a token: shared by the server and access tests.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "child_processes.h"
#include "frs/auth/audit_log.h"
#include "frs/auth/tokens.h"
#include "frs/client/channel.h"
#include "frs/core/clock.h"
#include "frs/v1/audit.grpc.pb.h"
#include "frs/v1/gallery.grpc.pb.h"
#include "frs/v1/live.grpc.pb.h"
#include "frs/v1/tokens.grpc.pb.h"
#include "model_fixture.h"

namespace frs::testing {

namespace pb = ::frs::v1;

inline constexpr const char* kTestPurpose = "frs integration tests";

// Runs a shell command until it exits; returns its exit code and what it printed.
inline std::pair<int, std::string> run_command(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  for (char buffer[512]; std::fgets(buffer, sizeof buffer, pipe) != nullptr;) output += buffer;
  const int status = ::pclose(pipe);
  return {WEXITSTATUS(status), output};
}

// Calls `method` with `request` (a serialised request message; by default the empty one,
// valid for every frs request type) as a generic stream, so unary and streaming methods
// alike; returns the final status.
inline grpc::Status call_method(const std::shared_ptr<grpc::Channel>& channel,
                                const std::string& method,
                                std::chrono::milliseconds deadline = std::chrono::seconds(3),
                                std::string* retry_after = nullptr,
                                const std::string& request = "") {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + deadline);
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&context, method, &cq);
  void* tag = nullptr;
  bool ok = false;
  const auto step = [&] { return cq.Next(&tag, &ok) && ok; };
  call->StartCall(reinterpret_cast<void*>(1));
  step();
  const grpc::Slice request_slice(request);
  const grpc::ByteBuffer request_bytes(&request_slice, 1);
  call->Write(request_bytes, reinterpret_cast<void*>(2));
  step();
  call->WritesDone(reinterpret_cast<void*>(3));
  step();
  grpc::ByteBuffer reply;
  do {
    call->Read(&reply, reinterpret_cast<void*>(4));
  } while (step());
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (retry_after != nullptr) {
    const auto& trailing = context.GetServerTrailingMetadata();
    const auto it = trailing.find("retry-after-ms");
    *retry_after = it == trailing.end() ? "" : std::string(it->second.data(), it->second.size());
  }
  return status;
}

class Server {
 public:
  // `extra`: more frs-server arguments, after --listen, --data-dir and --threads.
  // `client`: how channels reach it (TLS files); server and token are filled in.
  // `listen_host`: what it listens on (clients always connect over 127.0.0.1).
  explicit Server(std::filesystem::path data, std::vector<std::string> extra = {},
                  ClientOptions client = {}, std::string listen_host = "127.0.0.1")
      : data_(std::move(data)),
        extra_(std::move(extra)),
        client_(std::move(client)),
        listen_host_(std::move(listen_host)),
        port_(free_port()),
        metrics_port_(free_port()) {
    start();
  }
  ~Server() { stop(SIGTERM); }

  // Starts it and waits until it answers. A port taken since free_port() chose it (by
  // another test's server, or an outgoing connection's ephemeral port) makes the server
  // exit saying so: it is started again on other ports.
  void start() {
    for (int attempt = 1;; ++attempt) {
      const std::size_t log_before = log_size();
      try {
        start_once();
        return;
      } catch (const std::runtime_error&) {
        const std::string log = bytes_of(data_.parent_path() / "server.log").substr(log_before);
        const bool port_taken = log.find("cannot listen on") != std::string::npos ||
                                log.find("cannot serve metrics on") != std::string::npos;
        if (!port_taken || attempt == 5) throw;
        port_ = free_port();
        metrics_port_ = free_port();
      }
    }
  }
  void start_once() {
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string listen = listen_host_ + ":" + std::to_string(port_);
      const std::string log = (data_.parent_path() / "server.log").string();
      std::freopen(log.c_str(), "a", stderr);
      std::freopen(log.c_str(), "a", stdout);
      std::vector<std::string> args = {FRS_SERVER,   "--listen",         listen,
                                       "--data-dir", data_.string(),     "--threads",
                                       "2",          "--metrics-listen", metrics_address()};
      args.insert(args.end(), extra_.begin(), extra_.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(FRS_SERVER, argv.data());
      std::_Exit(127);
    }
    const auto give_up = std::chrono::system_clock::now() + std::chrono::seconds(90);
    // The admin token the server writes on its first start (before it listens), or the
    // one it was given.
    auto token_file = data_ / "admin.token";
    const auto given = std::find(extra_.begin(), extra_.end(), "--admin-token-file");
    if (given != extra_.end() && given + 1 != extra_.end()) token_file = *(given + 1);
    while (!std::filesystem::exists(token_file) && std::chrono::system_clock::now() < give_up) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("frs-server exited before it wrote " + token_file.string() +
                                 "; its log:\n" + bytes_of(data_.parent_path() / "server.log"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    // Until it listens. A gRPC channel that tried before then backs off (1 s, 1.6 s, 2.6 s...
    // between attempts): waiting on the channel cost every start several seconds.
    const bool serves_metrics =
        std::find(extra_.begin(), extra_.end(), "--metrics-listen") == extra_.end();
    while (!(tcp_accepts(port_) && (!serves_metrics || tcp_accepts(metrics_port_))) &&
           std::chrono::system_clock::now() < give_up) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("frs-server exited before it listened on " + address() +
                                 "; its log:\n" + bytes_of(data_.parent_path() / "server.log"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (std::filesystem::exists(token_file)) admin_token_ = read_token_file(token_file);
    // The frs CLI the tests run finds it there too.
    ::setenv("FRS_TOKEN_FILE", token_file.c_str(), 1);
    ::setenv("FRS_PURPOSE", kTestPurpose, 1);
    channel_ = channel_with(admin_token_);
    gallery_ = pb::Gallery::NewStub(channel_);
    search_ = pb::Search::NewStub(channel_);
    cameras_ = pb::Cameras::NewStub(channel_);
    alerts_ = pb::Alerts::NewStub(channel_);
    while (true) {
      grpc::ClientContext c;
      c.set_wait_for_ready(true);
      c.set_deadline(std::min(give_up, std::chrono::system_clock::now() + std::chrono::seconds(2)));
      pb::ListWatchlistsResponse r;
      if (gallery_->ListWatchlists(&c, pb::ListWatchlistsRequest(), &r).ok()) break;
      int status = 0;
      const bool exited = ::waitpid(pid_, &status, WNOHANG) == pid_;
      if (exited) pid_ = -1;
      if (exited || std::chrono::system_clock::now() > give_up) {
        stop(SIGKILL);
        throw std::runtime_error("frs-server did not come up on " + address() + "; its log:\n" +
                                 bytes_of(data_.parent_path() / "server.log"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  // Returns the wait status (WIFEXITED, WEXITSTATUS...), -1 when it was not running.
  int stop(int signal) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, signal);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  pid_t pid() const { return pid_; }
  std::size_t log_size() const {
    std::error_code ignored;
    const auto size = std::filesystem::file_size(data_.parent_path() / "server.log", ignored);
    return ignored ? 0 : static_cast<std::size_t>(size);
  }
  const std::string& admin_token() const { return admin_token_; }
  // A channel of its own whose calls carry `token` and `purpose`: gRPC would otherwise reuse
  // the connection to a server that was just stopped, which looks ready for a moment after
  // the process is gone.
  std::shared_ptr<grpc::Channel> channel_with(const std::string& token,
                                              const std::string& purpose = kTestPurpose) const {
    ClientOptions o = client_;
    o.server = address();
    o.token = token;
    o.purpose = purpose;
    o.own_connection = true;
    o.max_message_mb = 128;
    return make_channel(o);
  }
  // CPU time the server process has used so far, seconds (user + system).
  double cpu_seconds() const {
    std::ifstream stat(std::filesystem::path("/proc") / std::to_string(pid_) / "stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    std::istringstream fields(text.substr(text.rfind(')') + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
      if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
    }
    return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }
  // Resident memory of the server process, MiB.
  double rss_mib() const {
    std::ifstream status(std::filesystem::path("/proc") / std::to_string(pid_) / "status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
    }
    return 0;
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string metrics_address() const { return "127.0.0.1:" + std::to_string(metrics_port_); }
  int metrics_port() const { return metrics_port_; }
  // Threads of the running server process.
  std::size_t threads() const {
    const auto tasks = std::filesystem::path("/proc") / std::to_string(pid_) / "task";
    return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator(tasks),
                                                  std::filesystem::directory_iterator()));
  }
  pb::Gallery::Stub& gallery() { return *gallery_; }
  pb::Search::Stub& search() { return *search_; }
  pb::Cameras::Stub& cameras() { return *cameras_; }
  pb::Alerts::Stub& alerts() { return *alerts_; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

  // A new token through the API; returns its secret.
  std::string create_token(const std::string& name, const std::string& role,
                           std::int64_t expires_at_ms = 0) {
    auto tokens = pb::Tokens::NewStub(channel_);
    grpc::ClientContext c;
    pb::CreateTokenRequest r;
    r.set_name(name);
    r.set_role(role);
    r.set_expires_at_ms(expires_at_ms);
    pb::CreateTokenResponse response;
    const auto status = tokens->CreateToken(&c, r, &response);
    if (!status.ok()) throw std::runtime_error("CreateToken: " + status.error_message());
    return response.secret();
  }

  // The audit log's rows (all, or of one method or event), oldest first, as an admin.
  std::vector<pb::AuditRecord> audit_rows(const std::string& method = "") {
    auto audit = pb::Audit::NewStub(channel_);
    grpc::ClientContext c;
    pb::ListAuditRecordsRequest r;
    r.set_method(method);
    r.set_page_size(10000);
    pb::ListAuditRecordsResponse response;
    const auto status = audit->ListAuditRecords(&c, r, &response);
    if (!status.ok()) throw std::runtime_error("ListAuditRecords: " + status.error_message());
    return {response.records().begin(), response.records().end()};
  }
  // The rows of `method` that record outcomes: without the intent rows that calls which
  // change state write before they change anything.
  std::vector<pb::AuditRecord> outcome_rows(const std::string& method) {
    std::vector<pb::AuditRecord> rows = audit_rows(method);
    std::erase_if(rows,
                  [](const pb::AuditRecord& r) { return r.outcome() == kAuditOutcomeStarted; });
    return rows;
  }

  // Records an authorisation (basis policy, reference "test") for a watchlist, in force
  // from now for `lasting`: cameras match against it only while one is.
  grpc::Status authorize(const std::string& watchlist,
                         std::chrono::milliseconds lasting = std::chrono::hours(24),
                         pb::Authorization* out = nullptr) {
    grpc::ClientContext c;
    pb::AuthorizeWatchlistRequest r;
    r.set_watchlist(watchlist);
    r.set_basis("policy");
    r.set_reference("test");
    r.set_valid_until_ms(now_unix_ms() + lasting.count());
    pb::Authorization ignored;
    return gallery_->AuthorizeWatchlist(&c, r, out ? out : &ignored);
  }

 private:
  std::filesystem::path data_;
  std::vector<std::string> extra_;
  ClientOptions client_;
  std::string listen_host_;
  int port_;
  int metrics_port_;
  pid_t pid_ = -1;
  std::shared_ptr<grpc::Channel> channel_;
  std::string admin_token_;
  std::unique_ptr<pb::Gallery::Stub> gallery_;
  std::unique_ptr<pb::Search::Stub> search_;
  std::unique_ptr<pb::Cameras::Stub> cameras_;
  std::unique_ptr<pb::Alerts::Stub> alerts_;
};

// A StreamAlerts call on a thread of its own, keeping each alert's id and receipt time (steady
// clock) until stopped.
class AlertSubscriber {
 public:
  using Receipt = std::pair<std::int64_t, std::chrono::steady_clock::time_point>;
  explicit AlertSubscriber(const std::shared_ptr<grpc::Channel>& channel,
                           pb::StreamAlertsRequest request = {})
      : stub_(pb::Alerts::NewStub(channel)) {
    thread_ = std::thread([this, request] {
      auto stream = stub_->StreamAlerts(&context_, request);
      for (pb::Alert alert; stream->Read(&alert);) {
        const auto at = std::chrono::steady_clock::now();
        std::lock_guard lock(mutex_);
        received_.emplace_back(alert.id(), at);
      }
      const grpc::Status status = stream->Finish();
      std::lock_guard lock(mutex_);
      status_ = status;
    });
  }
  ~AlertSubscriber() { stop(); }
  AlertSubscriber(const AlertSubscriber&) = delete;
  AlertSubscriber& operator=(const AlertSubscriber&) = delete;
  void stop() {
    context_.TryCancel();
    if (thread_.joinable()) thread_.join();
  }
  std::vector<Receipt> received() const {
    std::lock_guard lock(mutex_);
    return received_;
  }
  std::vector<std::int64_t> ids() const {
    std::vector<std::int64_t> out;
    for (const auto& [id, at] : received()) out.push_back(id);
    return out;
  }
  // How the call ended (OK until it has; CANCELLED after stop()).
  grpc::Status status() const {
    std::lock_guard lock(mutex_);
    return status_;
  }

 private:
  std::unique_ptr<pb::Alerts::Stub> stub_;
  grpc::ClientContext context_;
  mutable std::mutex mutex_;
  std::vector<Receipt> received_;
  grpc::Status status_;
  std::thread thread_;
};

// Waits (up to a minute) until `server` has used `cpu` seconds more CPU than `cpu_before`:
// a call sent since is being worked on, on a machine of any speed or load, where a fixed
// sleep would come too early on a loaded machine and too late on a fast one.
inline bool server_is_at_work(const Server& server, double cpu_before, double cpu = 0.1) {
  return eventually([&] { return server.cpu_seconds() - cpu_before >= cpu; },
                    std::chrono::seconds(60), std::chrono::milliseconds(5));
}

// DIR/admin.token: a new admin secret, readable by its owner only, for nodes that share one
// admin token (--admin-token-file).
inline std::filesystem::path write_admin_token_file(const std::filesystem::path& dir) {
  const auto file = dir / "admin.token";
  std::ofstream(file) << new_token_secret() << "\n";
  std::filesystem::permissions(
      file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  return file;
}

// Watchlist "wanted" with Lin-Manuel Miranda (external id LMM-1), who is in the test clip.
inline void enroll_him(Server& server) {
  grpc::ClientContext create;
  pb::CreateWatchlistRequest w;
  w.set_name("wanted");
  pb::Watchlist created;
  ASSERT_TRUE(server.gallery().CreateWatchlist(&create, w, &created).ok());
  ASSERT_TRUE(server.authorize("wanted").ok());
  grpc::ClientContext c;
  pb::EnrollRequest r;
  r.set_watchlist("wanted");
  r.set_external_id("LMM-1");
  r.set_display_name("Lin-Manuel Miranda");
  r.add_photos()->set_image(bytes_of(face_path("lin-manuel-miranda.png")));
  pb::EnrollResponse response;
  ASSERT_TRUE(server.gallery().Enroll(&c, r, &response).ok());
}

}  // namespace frs::testing
