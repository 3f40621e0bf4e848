// Soak: a real frs-server under mixed load for a bounded time, to show that nothing grows
// without bound. Searches (two clients), enrollments and removals, one live camera (the
// shared clip over RTSP), one alert subscriber that reads and one that never reads. Every
// minute: calls and their p50/p99 latency per kind, errors by code, the server's RSS and
// threads. At the end: whether RSS stayed flat after the first minutes (warm-up).
//
//   bench_soak [--minutes N (default 10)] [--warmup-minutes W (default 2)]
//
// Exit code 1 when RSS grew by more than 10% (and 50 MiB) from the end of the warm-up to the
// end, or when the server died.

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "child_processes.h"
#include "frs/auth/tokens.h"
#include "frs/client/channel.h"
#include "frs/core/clock.h"
#include "frs/v1/gallery.grpc.pb.h"
#include "frs/v1/live.grpc.pb.h"
#include "testdata.h"

namespace {

namespace pb = ::frs::v1;
using Clock = std::chrono::steady_clock;
using frs::testing::bytes_of;

double proc_status_kib(pid_t pid, const char* key) {
  std::ifstream status(std::filesystem::path("/proc") / std::to_string(pid) / "status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(key, 0) == 0) return std::stod(line.substr(std::string(key).size()));
  }
  return 0;
}

// Calls of one kind in the current minute.
struct Tally {
  std::vector<double> ms;
  std::map<std::string, int> errors;  // by status code name
};

class Recorder {
 public:
  void record(const std::string& kind, double ms, const grpc::Status& status) {
    std::lock_guard lock(mutex_);
    Tally& t = minute_[kind];
    t.ms.push_back(ms);
    if (!status.ok()) ++t.errors[code_name(status.error_code())];
  }
  std::map<std::string, Tally> take() {
    std::lock_guard lock(mutex_);
    std::map<std::string, Tally> out;
    out.swap(minute_);
    return out;
  }

 private:
  static std::string code_name(grpc::StatusCode code) {
    switch (code) {
      case grpc::StatusCode::INVALID_ARGUMENT:
        return "INVALID_ARGUMENT";
      case grpc::StatusCode::NOT_FOUND:
        return "NOT_FOUND";
      case grpc::StatusCode::ALREADY_EXISTS:
        return "ALREADY_EXISTS";
      case grpc::StatusCode::RESOURCE_EXHAUSTED:
        return "RESOURCE_EXHAUSTED";
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        return "DEADLINE_EXCEEDED";
      case grpc::StatusCode::UNAVAILABLE:
        return "UNAVAILABLE";
      case grpc::StatusCode::ABORTED:
        return "ABORTED";
      case grpc::StatusCode::CANCELLED:
        return "CANCELLED";
      default:
        return "code " + std::to_string(static_cast<int>(code));
    }
  }
  std::mutex mutex_;
  std::map<std::string, Tally> minute_;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

template <typename F>
grpc::Status timed(Recorder& recorder, const std::string& kind, F&& call) {
  const auto start = Clock::now();
  const grpc::Status status = call();
  recorder.record(kind, std::chrono::duration<double, std::milli>(Clock::now() - start).count(),
                  status);
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  int minutes = 10, warmup = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--minutes") minutes = std::max(1, std::atoi(argv[i + 1]));
    if (flag == "--warmup-minutes") warmup = std::max(0, std::atoi(argv[i + 1]));
  }
  warmup = std::min(warmup, minutes - 1);
  namespace t = frs::testing;
  const auto lfw = t::read_identity_tree(t::testdata_dir() / "lfw10");
  const t::ScopedTempDir dir("soak");
  const int port = t::free_port();
  const std::string address = "127.0.0.1:" + std::to_string(port);
  // The admin token, supplied as automation would.
  const std::string admin_token = frs::new_token_secret();
  const std::string token_file = (dir.path() / "admin.token").string();
  std::ofstream(token_file) << admin_token << "\n";
  const pid_t server = ::fork();
  if (server == 0) {
    const std::string log = (dir.path() / "server.log").string();
    std::freopen(log.c_str(), "w", stderr);
    const std::string data = (dir.path() / "data").string();
    ::execl(FRS_SERVER, FRS_SERVER, "--listen", address.c_str(), "--data-dir", data.c_str(),
            "--metrics-listen", "", "--alert-cooldown-ms", "0", "--admin-token-file",
            token_file.c_str(), "--rate-limit", "0", static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  frs::ClientOptions client;
  client.server = address;
  client.token = admin_token;
  client.purpose = "bench_soak";
  auto channel = frs::make_channel(client);
  auto gallery = pb::Gallery::NewStub(channel);
  auto search = pb::Search::NewStub(channel);
  auto cameras = pb::Cameras::NewStub(channel);
  auto alerts = pb::Alerts::NewStub(channel);
  for (int i = 0; i < 600; ++i) {
    grpc::ClientContext c;
    c.set_wait_for_ready(true);
    c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
    pb::ListWatchlistsResponse r;
    if (gallery->ListWatchlists(&c, {}, &r).ok()) break;
  }
  {
    grpc::ClientContext c;
    pb::CreateWatchlistRequest r;
    r.set_name("wanted");
    pb::Watchlist w;
    gallery->CreateWatchlist(&c, r, &w);
    grpc::ClientContext c2;
    r.set_name("churn");
    gallery->CreateWatchlist(&c2, r, &w);
    grpc::ClientContext c3;
    pb::AuthorizeWatchlistRequest authorize;  // live matching needs a legal basis
    authorize.set_watchlist("wanted");
    authorize.set_basis("policy");
    authorize.set_reference("soak");
    authorize.set_valid_until_ms(frs::now_unix_ms() + 7 * 24 * 3600 * 1000LL);
    pb::Authorization authorization;
    gallery->AuthorizeWatchlist(&c3, authorize, &authorization);
    grpc::ClientContext e;
    pb::EnrollRequest enroll;
    enroll.set_watchlist("wanted");
    enroll.set_external_id("LMM-1");
    enroll.add_photos()->set_image(
        bytes_of(t::testdata_dir() / "faces" / "lin-manuel-miranda.png"));
    pb::EnrollResponse out;
    const auto status = gallery->Enroll(&e, enroll, &out);
    if (!status.ok()) {
      std::fprintf(stderr, "bench_soak: cannot enroll: %s\n", status.error_message().c_str());
      ::kill(server, SIGKILL);
      return 1;
    }
  }
  t::TestCamera camera;
  {
    grpc::ClientContext c;
    pb::AddCameraRequest r;
    r.mutable_spec()->set_name("stage");
    r.mutable_spec()->set_url(camera.url());
    r.mutable_spec()->add_watchlists("wanted");
    pb::Camera added;
    cameras->AddCamera(&c, r, &added);
  }

  Recorder recorder;
  std::atomic<bool> stop{false};
  std::atomic<long> alerts_read{0};
  std::vector<std::thread> load;
  for (int s = 0; s < 2; ++s) {
    load.emplace_back([&, s] {
      for (std::size_t i = static_cast<std::size_t>(s); !stop; i += 2) {
        pb::SearchRequest r;
        r.set_image(bytes_of(lfw[i % lfw.size()].file));
        r.set_top_k(3);
        timed(recorder, "search", [&] {
          grpc::ClientContext c;
          c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
          pb::SearchResponse response;
          return search->Search(&c, r, &response);
        });
      }
    });
  }
  load.emplace_back([&] {  // enroll a person, then remove them: the gallery stays the same size
    for (std::size_t i = 0; !stop; ++i) {
      pb::EnrollRequest r;
      r.set_watchlist("churn");
      r.set_external_id("person-" + std::to_string(i));
      r.add_photos()->set_image(bytes_of(lfw[(i * 7) % lfw.size()].file));
      pb::EnrollResponse out;
      const auto status = timed(recorder, "enroll", [&] {
        grpc::ClientContext c;
        c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
        return gallery->Enroll(&c, r, &out);
      });
      if (!status.ok()) continue;
      pb::RemoveIdentityRequest remove;
      remove.set_id(out.identity().id());
      timed(recorder, "remove", [&] {
        grpc::ClientContext c;
        pb::RemoveIdentityResponse removed;
        return gallery->RemoveIdentity(&c, remove, &removed);
      });
    }
  });
  load.emplace_back([&] {  // a console that reads every alert, resuming after each cut
    std::int64_t after = 0;
    while (!stop) {
      grpc::ClientContext c;
      c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      pb::StreamAlertsRequest r;
      r.set_after_id(after);
      auto reader = alerts->StreamAlerts(&c, r);
      pb::Alert a;
      while (reader->Read(&a)) {
        after = a.id();
        ++alerts_read;
      }
      const grpc::Status status = reader->Finish();
      if (status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
        recorder.record("stream", 0, status);
      }
    }
  });
  // A console that never reads, on a channel with a small window: the server resets it
  // after its write timeout; it opens another at once, for the whole run.
  load.emplace_back([&] {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 4096);
    auto slow = pb::Alerts::NewStub(
        grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
    while (!stop) {
      grpc::ClientContext c;
      c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
      c.AddMetadata("authorization", "Bearer " + admin_token);  // a channel of its own
      c.AddMetadata("purpose", "bench_soak");
      pb::StreamAlertsRequest r;
      r.set_with_images(true);
      auto reader = slow->StreamAlerts(&c, r);
      for (int i = 0; i < 600 && !stop; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      c.TryCancel();
      reader->Finish();
    }
  });

  std::printf("# Soak: %d minutes (%d of warm-up), frs-server on %s\n\n", minutes, warmup,
              address.c_str());
  std::printf(
      "| minute | searches | search p50 / p99 ms | enrolls | enroll p50 / p99 ms | "
      "removes | errors | alerts read | RSS MiB | threads |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  std::fflush(stdout);
  std::vector<double> rss;
  bool died = false;
  for (int minute = 1; minute <= minutes && !died; ++minute) {
    std::this_thread::sleep_for(std::chrono::minutes(1));
    int status = 0;
    if (::waitpid(server, &status, WNOHANG) == server) {
      died = true;
      break;
    }
    auto tallies = recorder.take();
    std::string errors;
    for (const auto& [kind, tally] : tallies) {
      for (const auto& [code, count] : tally.errors) {
        errors += (errors.empty() ? "" : ", ") + kind + " " + code + " " + std::to_string(count);
      }
    }
    rss.push_back(proc_status_kib(server, "VmRSS:") / 1024.0);
    std::printf("| %d | %zu | %.0f / %.0f | %zu | %.0f / %.0f | %zu | %s | %ld | %.0f | %.0f |\n",
                minute, tallies["search"].ms.size(), percentile(tallies["search"].ms, 0.5),
                percentile(tallies["search"].ms, 0.99), tallies["enroll"].ms.size(),
                percentile(tallies["enroll"].ms, 0.5), percentile(tallies["enroll"].ms, 0.99),
                tallies["remove"].ms.size(), errors.empty() ? "none" : errors.c_str(),
                alerts_read.load(), rss.back(), proc_status_kib(server, "Threads:"));
    std::fflush(stdout);
  }
  stop = true;
  for (auto& thread : load) thread.join();
  ::kill(server, SIGTERM);
  int status = 0;
  ::waitpid(server, &status, 0);
  if (died || rss.empty()) {
    std::printf("\nfrs-server died during the soak; its log: %s\n",
                (dir.path() / "server.log").c_str());
    return 1;
  }
  const double settled = rss[static_cast<std::size_t>(std::max(0, warmup - 1))];
  const double last = rss.back();
  const bool flat = last <= settled * 1.1 || last - settled < 50;
  std::printf(
      "\nRSS after warm-up %.0f MiB, at the end %.0f MiB (%+.1f%%): %s. Server exit "
      "status %d.\n",
      settled, last, 100.0 * (last - settled) / settled, flat ? "flat" : "GROWING",
      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return flat ? 0 : 1;
}
