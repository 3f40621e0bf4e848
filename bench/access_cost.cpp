// What access control and the audit log cost.
//
// 1. Per Search call: the same descriptor search through two in-process gRPC servers on
//    loopback, one as frs-server runs it (interceptor: token lookup, rate limit, method
//    table, purpose; serve(): the audit row, written durably before the answer) and one
//    whose handler calls the gallery directly, alternating call by call. Latency p50/p99 of
//    each, medians over rounds.
// 2. `frs audit verify` speed: a log of 1,000,000 rows (made directly, with real hashes)
//    checked by AuditLog::verify; rows per second, median of 3 runs.
// 3. On that log: the accountability report of the whole period (median of 3 runs), then
//    one retention purge of its older half (the purge record appended, the chain verified
//    after it).
//
//   bench_access_cost [--calls N] [--rounds R] [--rows M]

#include <grpcpp/grpcpp.h>
#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "bench_util.h"
#include "frs/auth/audit_log.h"
#include "frs/auth/tokens.h"
#include "frs/client/channel.h"
#include "frs/core/clock.h"
#include "frs/gallery/gallery.h"
#include "frs/service/report.h"
#include "frs/service/services.h"
#include "frs/v1/gallery.grpc.pb.h"
#include "test_tokens.h"
#include "testdata.h"

namespace {

namespace pb = ::frs::v1;
using Clock = std::chrono::steady_clock;

// The search without access control or audit: what the Search handler does for descriptors.
class BareSearch final : public pb::Search::Service {
 public:
  explicit BareSearch(frs::Gallery& gallery) : gallery_(gallery) {}
  grpc::Status Search(grpc::ServerContext*, const pb::SearchRequest* request,
                      pb::SearchResponse* response) override {
    std::vector<frs::Embedding> queries;
    for (const pb::Descriptor& d : request->descriptors().descriptors()) {
      queries.emplace_back(d.values().begin(), d.values().end());
    }
    const auto results =
        gallery_.search(queries, frs::kDlibDescriptorId, {}, request->top_k(), std::nullopt);
    for (const auto& candidates : results) {
      pb::FaceResult* face = response->add_faces();
      for (const frs::Candidate& c : candidates) {
        pb::Candidate* out = face->add_candidates();
        out->set_identity_id(c.identity_id);
        out->set_external_id(c.external_id);
        out->set_display_name(c.display_name);
        out->set_watchlist(c.watchlist);
        out->set_distance(c.distance);
      }
    }
    return grpc::Status::OK;
  }

 private:
  frs::Gallery& gallery_;
};

frs::Embedding random_descriptor(std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 0.09f);
  frs::Embedding e(128);  // dlib-resnet-v1's length
  for (float& v : e) v = normal(rng);
  return e;
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

void bench_search(int calls, int rounds) {
  const frs::testing::ScopedTempDir dir("access-cost");
  frs::GalleryOptions options;
  options.snapshot_dir = dir / "index";
  frs::Gallery gallery(frs::open_gallery_store(dir / "gallery.db"), options);
  frs::Watchlist w;
  w.name = "wanted";
  w.max_distance = 0.5f;
  const frs::Watchlist created = gallery.create_watchlist(w);
  std::mt19937 rng(7);
  for (int i = 0; i < 1000; ++i) {
    frs::Identity identity;
    identity.watchlist_id = created.id;
    identity.external_id = "B-" + std::to_string(i);
    identity.display_name = "person " + std::to_string(i);
    frs::StoredFace face;
    face.descriptor = random_descriptor(rng);
    face.image_sha256 = std::to_string(i);
    gallery.enroll(identity, {face});
  }
  frs::FaceEngineOptions engine_options;
  engine_options.threads = 1;
  const frs::FaceEngine engine(engine_options);

  auto tokens = frs::open_token_store(dir / "tokens.db");
  auto audit = frs::open_audit_log(dir / "audit.db");
  const std::string secret = frs::testing::make_token(*tokens, "bench", frs::Role::kInvestigator);
  frs::service::AccessControl access(*tokens, *audit, {.calls_per_second = 0, .burst = 1});
  frs::service::ServiceOptions service_options;
  auto guarded = frs::service::make_search_service(access, gallery, engine, service_options);
  BareSearch bare(gallery);

  int guarded_port = 0, bare_port = 0;
  grpc::ServerBuilder with;
  with.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &guarded_port);
  with.experimental().SetInterceptorCreators(frs::service::make_interceptors(access));
  with.RegisterService(guarded.get());
  auto guarded_server = with.BuildAndStart();
  grpc::ServerBuilder without;
  without.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &bare_port);
  without.RegisterService(&bare);
  auto bare_server = without.BuildAndStart();

  frs::ClientOptions client;
  client.token = secret;
  client.purpose = "bench access cost";
  client.server = "127.0.0.1:" + std::to_string(guarded_port);
  auto guarded_stub = pb::Search::NewStub(frs::make_channel(client));
  client.server = "127.0.0.1:" + std::to_string(bare_port);
  client.token.clear();
  client.purpose.clear();
  auto bare_stub = pb::Search::NewStub(frs::make_channel(client));

  pb::SearchRequest request;
  request.set_top_k(5);
  const frs::Embedding query = random_descriptor(rng);
  auto* d = request.mutable_descriptors()->add_descriptors();
  for (float v : query) d->add_values(v);
  const auto timed = [&](pb::Search::Stub& stub) {
    grpc::ClientContext c;
    pb::SearchResponse response;
    const auto start = Clock::now();
    const grpc::Status status = stub.Search(&c, request, &response);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (!status.ok()) {
      std::fprintf(stderr, "search failed: %s\n", status.error_message().c_str());
      std::exit(1);
    }
    return ms;
  };
  for (int i = 0; i < 200; ++i) {
    timed(*guarded_stub);
    timed(*bare_stub);
  }
  std::vector<double> p50_with, p99_with, p50_without, p99_without;
  for (int r = 0; r < rounds; ++r) {
    std::vector<double> a, b;
    for (int i = 0; i < calls; ++i) {
      a.push_back(timed(*guarded_stub));
      b.push_back(timed(*bare_stub));
    }
    p50_with.push_back(percentile(a, 0.5));
    p99_with.push_back(percentile(a, 0.99));
    p50_without.push_back(percentile(b, 0.5));
    p99_without.push_back(percentile(b, 0.99));
    std::printf("round %d: with p50 %.3f p99 %.3f ms, without p50 %.3f p99 %.3f ms\n", r + 1,
                p50_with.back(), p99_with.back(), p50_without.back(), p99_without.back());
  }
  using frs::bench::median;
  std::printf(
      "Search of 1 descriptor in 1,000 identities, %d calls x %d rounds, medians:\n"
      "  with access control + audit: p50 %.3f ms, p99 %.3f ms\n"
      "  without:                     p50 %.3f ms, p99 %.3f ms\n"
      "  cost: p50 +%.3f ms (x%.2f), p99 +%.3f ms; audit rows written: %lld\n",
      calls, rounds, median(p50_with), median(p99_with), median(p50_without), median(p99_without),
      median(p50_with) - median(p50_without), median(p50_with) / median(p50_without),
      median(p99_with) - median(p99_without), static_cast<long long>(audit->head().seq));
  guarded_server->Shutdown();
  bare_server->Shutdown();
}

void bench_verify(std::int64_t rows) {
  const frs::testing::ScopedTempDir dir("audit-verify");
  const auto file = dir / "audit.db";
  frs::open_audit_log(file);  // the schema
  sqlite3* db = nullptr;
  sqlite3_open(file.c_str(), &db);
  sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(db,
                     "INSERT INTO audit(seq, time_ms, token, role, peer, method, purpose, outcome, "
                     "outcome_message, targets, details, previous_hash, hash) VALUES "
                     "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     -1, &insert, nullptr);
  frs::AuditRecord row;
  row.previous_hash = frs::kAuditGenesisHash;
  const auto start_build = Clock::now();
  std::int64_t middle_ms = 0;
  for (std::int64_t seq = 1; seq <= rows; ++seq) {
    row.seq = seq;
    row.time_ms = frs::now_unix_ms();
    if (seq == rows / 2 + 1) middle_ms = row.time_ms;
    row.token = "det.jones";
    row.role = "investigator";
    row.peer = "ipv4:10.0.0.7:41234";
    row.method = "/frs.v1.Search/Search";
    row.purpose = "case 2026-113";
    row.targets_json = R"({"identities":[17,4242]})";
    row.details_json =
        R"({"faces":2,"image_sha256":["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]})";
    row.hash = frs::audit_row_hash(row);
    sqlite3_bind_int64(insert, 1, row.seq);
    sqlite3_bind_int64(insert, 2, row.time_ms);
    const std::string* texts[] = {&row.token, &row.role, &row.peer, &row.method, &row.purpose};
    for (int i = 0; i < 5; ++i) {
      sqlite3_bind_text(insert, 3 + i, texts[i]->c_str(), -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(insert, 8, 0);
    sqlite3_bind_text(insert, 9, "", -1, SQLITE_STATIC);
    sqlite3_bind_text(insert, 10, row.targets_json.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(insert, 11, row.details_json.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(insert, 12, row.previous_hash.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(insert, 13, row.hash.c_str(), -1, SQLITE_STATIC);
    sqlite3_step(insert);
    sqlite3_reset(insert);
    row.previous_hash = row.hash;
  }
  sqlite3_finalize(insert);
  sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  std::printf("built %lld rows in %.1f s\n", static_cast<long long>(rows),
              std::chrono::duration<double>(Clock::now() - start_build).count());
  auto log = frs::open_audit_log(file);
  std::vector<double> rates;
  for (int run = 0; run < 3; ++run) {
    const auto start = Clock::now();
    const frs::AuditVerification v = log->verify(std::nullopt);
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    if (!v.intact || v.rows_checked != rows) {
      std::fprintf(stderr, "verify failed: %s\n", v.problem.c_str());
      std::exit(1);
    }
    rates.push_back(static_cast<double>(rows) / s);
    std::printf("verify run %d: %.2f s, %.0f rows/s\n", run + 1, s, rates.back());
  }
  std::printf("audit verify of %lld rows: median %.0f rows/s\n", static_cast<long long>(rows),
              frs::bench::median(rates));

  std::vector<double> report_s;
  for (int run = 0; run < 3; ++run) {
    const auto start = Clock::now();
    const auto report =
        frs::service::build_report(*log, {}, 0, frs::now_unix_ms(), frs::now_unix_ms());
    report_s.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    if (report.searches() != rows) {
      std::fprintf(stderr, "report counted %lld searches of %lld\n",
                   static_cast<long long>(report.searches()), static_cast<long long>(rows));
      std::exit(1);
    }
    std::printf("report run %d: %.2f s\n", run + 1, report_s.back());
  }
  std::printf("accountability report over %lld rows: median %.2f s\n", static_cast<long long>(rows),
              frs::bench::median(report_s));

  frs::AuditEntry record;
  record.time_ms = frs::now_unix_ms();
  record.token = "frs-server";
  const auto start_purge = Clock::now();
  const auto purged = log->purge(middle_ms, record);
  const double purge_s = std::chrono::duration<double>(Clock::now() - start_purge).count();
  const frs::AuditVerification after = log->verify(std::nullopt);
  std::printf(
      "purge of the older %lld rows: %.2f s; chain after it %s (purged through %lld)\n",
      static_cast<long long>(
          purged ? nlohmann::json::parse(purged->details_json)["rows"].get<std::int64_t>() : 0),
      purge_s, after.intact ? "intact" : after.problem.c_str(),
      static_cast<long long>(after.purged_through));
}

}  // namespace

int main(int argc, char** argv) {
  frs::bench::send_logs_to_stderr();
  int calls = 1000, rounds = 5;
  std::int64_t rows = 1'000'000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--calls") calls = std::max(10, std::atoi(argv[i + 1]));
    if (flag == "--rounds") rounds = std::max(1, std::atoi(argv[i + 1]));
    if (flag == "--rows") rows = std::max<std::int64_t>(1, std::atoll(argv[i + 1]));
  }
  bench_search(calls, rounds);
  bench_verify(rows);
  return 0;
}
