#include "harnesses.h"

#include <spdlog/spdlog.h>
#include <unistd.h>
#include <zlib.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <span>
#include <string>

#include "../src/bin/server_config.h"
#include "frs/alerts/alert_feed.h"
#include "frs/alerts/alert_store.h"
#include "frs/auth/audit_log.h"
#include "frs/auth/tokens.h"
#include "frs/core/error.h"
#include "frs/eval/dataset.h"
#include "frs/gallery/gallery.h"
#include "frs/live/camera_store.h"
#include "frs/live/live_recognizer.h"
#include "frs/service/services.h"
#include "frs/v1/audit.grpc.pb.h"
#include "frs/v1/eval.grpc.pb.h"
#include "frs/v1/gallery.grpc.pb.h"
#include "frs/v1/live.grpc.pb.h"
#include "frs/v1/tokens.grpc.pb.h"
#include "frs/vision/face_engine.h"

namespace frs::fuzz {
namespace {

namespace pb = ::frs::v1;

// A directory of this process's own, removed at exit.
const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    std::string pattern = (std::filesystem::temp_directory_path() / "frs-fuzz-").string() +
                          std::string(6, 'X');  // mkdtemp's pattern
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(scratch(), ignored);
    });
    return std::filesystem::path(pattern);
  }();
  return dir;
}

// Writes `data` to a file of its own and returns its path (the readers take paths).
std::filesystem::path as_file(const char* name, const std::uint8_t* data, std::size_t size) {
  const auto path = scratch() / name;
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

// Small limits: a fuzzer input should cost milliseconds to seconds, not minutes.
FaceEngineOptions fuzz_engine_options() {
  FaceEngineOptions o;
  o.threads = 1;
  o.limits.max_pixels = 4'000'000;
  o.limits.max_decoded_bytes = 64u << 20;
  o.max_detector_views = 16;
  return o;
}

const FaceEngine& engine() {
  static const FaceEngine* e = [] {
    spdlog::set_level(spdlog::level::off);
    return new FaceEngine(fuzz_engine_options());
  }();
  return *e;
}

// Everything frs-server builds, once per process.
struct Services {
  Services()
      : gallery(open_gallery_store(scratch() / "gallery.db"),
                [] {
                  GalleryOptions o;
                  o.snapshot_dir = scratch() / "index";
                  return o;
                }()),
        alerts(scratch() / "alerts.db"),
        cameras(scratch() / "cameras.db"),
        live(engine(), gallery, alerts, feed, DecisionOptions{}, 1),
        tokens(open_token_store(scratch() / "tokens.db")),
        audit(open_audit_log(scratch() / "audit.db")),
        access(*tokens, *audit, {.calls_per_second = 0, .burst = 1}) {
    // Fuzzed camera URLs may only reach this machine's loopback, and no files.
    live.set_source_policy({{}, {"127.0.0.0/8"}});
    TokenRecord admin;
    admin.name = "fuzz";
    admin.role = Role::kAdmin;
    admin.created_by = "fuzz";
    secret = new_token_secret();
    tokens->create(admin, token_secret_hash(secret));
    options.image_slots = std::make_shared<Admission>(2, std::chrono::milliseconds(1000), "images");
    gallery_service = service::make_gallery_service(access, gallery, engine(), options);
    search_service = service::make_search_service(access, gallery, engine(), options);
    eval_service = service::make_evaluation_service(access, engine(), options);
    camera_service = service::make_camera_service(access, live, cameras);
    alert_service = service::make_alert_service(access, alerts, feed, {2, &gallery});
    token_service = service::make_token_service(access);
    audit_service = service::make_audit_service(
        access, {&alerts, &gallery, 2, [](const std::string& model) { return "fuzz " + model; }});
    Watchlist w;
    w.name = "wanted";
    gallery.create_watchlist(w);
  }

  Gallery gallery;
  AlertStore alerts;
  AlertFeed feed;
  CameraStore cameras;
  LiveRecognizer live;
  std::unique_ptr<TokenStore> tokens;
  std::unique_ptr<AuditLog> audit;
  service::AccessControl access;
  service::ServiceOptions options;
  std::string secret;
  std::unique_ptr<grpc::Service> gallery_service, search_service, eval_service, camera_service,
      alert_service, token_service, audit_service;
};

Services& services() {
  static Services* s = new Services();  // never destroyed: the fuzzer exits with _exit
  return *s;
}

template <typename Request, typename Response, typename Service, typename Method>
void serve_one(grpc::Service& service, Method method, const char* name, std::string_view bytes) {
  Request request;
  if (!request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return;
  Services& s = services();
  grpc::ServerContext context;
  const std::string authorization = "Bearer " + s.secret;
  const std::string purpose = "fuzzing";
  std::multimap<grpc::string_ref, grpc::string_ref> metadata = {{"authorization", authorization},
                                                                {"purpose", purpose}};
  s.access.admit(&context, name, metadata, "fuzz");
  Response response;
  (static_cast<Service&>(service).*method)(&context, &request, &response);
  s.access.forget(&context);
}

}  // namespace

namespace {

std::string big_endian(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string png_chunk(const std::string& type, const std::string& data) {
  const std::string body = type + data;
  const auto crc = static_cast<std::uint32_t>(
      ::crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size())));
  return big_endian(static_cast<std::uint32_t>(data.size())) + body + big_endian(crc);
}

std::string png(std::uint32_t width, std::uint32_t height, char colour, const std::string& idat) {
  const std::string header = big_endian(width) + big_endian(height) +
                             std::string{8, colour, 0, 0, 0};  // depth, colour type, ...
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", header) +
         (idat.empty() ? "" : png_chunk("IDAT", idat)) + png_chunk("IEND", "");
}

}  // namespace

std::vector<std::string> hostile_images() {
  std::string rows;
  for (int i = 0; i < 30000; ++i) rows += std::string{0, '\x80'};  // filter byte, one grey
  uLongf packed_size = compressBound(static_cast<uLong>(rows.size()));
  std::string packed(packed_size, '\0');
  ::compress(reinterpret_cast<Bytef*>(packed.data()), &packed_size,
             reinterpret_cast<const Bytef*>(rows.data()), static_cast<uLong>(rows.size()));
  packed.resize(packed_size);
  // SOI, a baseline frame header of 65535 x 65535 with three components, EOI: no scan.
  static const char kJpegMarkers[] =
      "\xff\xd8\xff\xc0\x00\x11\x08\xff\xff\xff\xff\x03\x01\x22\x00\x02\x11"
      "\x01\x03\x11\x01\xff\xd9";
  const std::string jpeg_markers(kJpegMarkers, sizeof kJpegMarkers - 1);
  return {png(100000, 100000, 2, ""), png(1, 30000, 0, packed), jpeg_markers};
}

int image(const std::uint8_t* data, std::size_t size) {
  try {
    const cv::Mat bgr = decode_image(std::span(data, size), engine().options().limits);
    engine().analyze(bgr, true);
  } catch (const Error&) {
    // A refusal is the right answer to bad bytes.
  }
  return 0;
}

int requests(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  Services& s = services();
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  using G = pb::Gallery::Service;
  using S = pb::Search::Service;
  using C = pb::Cameras::Service;
  using A = pb::Alerts::Service;
  using T = pb::Tokens::Service;
  using U = pb::Audit::Service;
  using E = pb::Evaluation::Service;
  switch (data[0] % 28) {
    case 0:
      serve_one<pb::CreateWatchlistRequest, pb::Watchlist, G>(
          *s.gallery_service, &G::CreateWatchlist, "/frs.v1.Gallery/CreateWatchlist", bytes);
      break;
    case 1:
      serve_one<pb::ListWatchlistsRequest, pb::ListWatchlistsResponse, G>(
          *s.gallery_service, &G::ListWatchlists, "/frs.v1.Gallery/ListWatchlists", bytes);
      break;
    case 2:
      serve_one<pb::GetWatchlistRequest, pb::Watchlist, G>(*s.gallery_service, &G::GetWatchlist,
                                                           "/frs.v1.Gallery/GetWatchlist", bytes);
      break;
    case 3:
      serve_one<pb::DeleteWatchlistRequest, pb::DeleteWatchlistResponse, G>(
          *s.gallery_service, &G::DeleteWatchlist, "/frs.v1.Gallery/DeleteWatchlist", bytes);
      break;
    case 4:
      serve_one<pb::UpdateWatchlistThresholdRequest, pb::Watchlist, G>(
          *s.gallery_service, &G::UpdateWatchlistThreshold,
          "/frs.v1.Gallery/UpdateWatchlistThreshold", bytes);
      break;
    case 5:
      serve_one<pb::EnrollRequest, pb::EnrollResponse, G>(*s.gallery_service, &G::Enroll,
                                                          "/frs.v1.Gallery/Enroll", bytes);
      break;
    case 6:
      serve_one<pb::AddFacesRequest, pb::EnrollResponse, G>(*s.gallery_service, &G::AddFaces,
                                                            "/frs.v1.Gallery/AddFaces", bytes);
      break;
    case 7:
      serve_one<pb::ListIdentitiesRequest, pb::ListIdentitiesResponse, G>(
          *s.gallery_service, &G::ListIdentities, "/frs.v1.Gallery/ListIdentities", bytes);
      break;
    case 8:
      serve_one<pb::GetIdentityRequest, pb::Identity, G>(*s.gallery_service, &G::GetIdentity,
                                                         "/frs.v1.Gallery/GetIdentity", bytes);
      break;
    case 9:
      serve_one<pb::RemoveIdentityRequest, pb::RemoveIdentityResponse, G>(
          *s.gallery_service, &G::RemoveIdentity, "/frs.v1.Gallery/RemoveIdentity", bytes);
      break;
    case 10:
      serve_one<pb::SearchRequest, pb::SearchResponse, S>(*s.search_service, &S::Search,
                                                          "/frs.v1.Search/Search", bytes);
      break;
    case 11:
      serve_one<pb::CompareRequest, pb::CompareResponse, S>(*s.search_service, &S::Compare,
                                                            "/frs.v1.Search/Compare", bytes);
      break;
    case 12:
      serve_one<pb::EvaluateRequest, pb::EvaluateResponse, E>(*s.eval_service, &E::Evaluate,
                                                              "/frs.v1.Evaluation/Evaluate", bytes);
      break;
    case 13: {
      serve_one<pb::AddCameraRequest, pb::Camera, C>(*s.camera_service, &C::AddCamera,
                                                     "/frs.v1.Cameras/AddCamera", bytes);
      // Cameras are threads and connections: none outlives its input.
      for (const CameraReport& r : s.live.cameras()) {
        s.live.remove_camera(r.config.name);
        s.cameras.remove(r.config.name);
      }
      break;
    }
    case 14:
      serve_one<pb::ListCamerasRequest, pb::ListCamerasResponse, C>(
          *s.camera_service, &C::ListCameras, "/frs.v1.Cameras/ListCameras", bytes);
      break;
    case 15:
      serve_one<pb::RemoveCameraRequest, pb::RemoveCameraResponse, C>(
          *s.camera_service, &C::RemoveCamera, "/frs.v1.Cameras/RemoveCamera", bytes);
      break;
    case 16:
      serve_one<pb::ListAlertsRequest, pb::ListAlertsResponse, A>(
          *s.alert_service, &A::ListAlerts, "/frs.v1.Alerts/ListAlerts", bytes);
      break;
    case 17:
      serve_one<pb::GetAlertRequest, pb::Alert, A>(*s.alert_service, &A::GetAlert,
                                                   "/frs.v1.Alerts/GetAlert", bytes);
      break;
    case 18:
      serve_one<pb::ReviewAlertRequest, pb::Alert, A>(*s.alert_service, &A::ReviewAlert,
                                                      "/frs.v1.Alerts/ReviewAlert", bytes);
      break;
    case 19:
      serve_one<pb::CreateTokenRequest, pb::CreateTokenResponse, T>(
          *s.token_service, &T::CreateToken, "/frs.v1.Tokens/CreateToken", bytes);
      break;
    case 20:
      serve_one<pb::ListTokensRequest, pb::ListTokensResponse, T>(
          *s.token_service, &T::ListTokens, "/frs.v1.Tokens/ListTokens", bytes);
      break;
    case 21:
      serve_one<pb::RevokeTokenRequest, pb::Token, T>(*s.token_service, &T::RevokeToken,
                                                      "/frs.v1.Tokens/RevokeToken", bytes);
      break;
    case 22:
      serve_one<pb::ListAuditRecordsRequest, pb::ListAuditRecordsResponse, U>(
          *s.audit_service, &U::ListAuditRecords, "/frs.v1.Audit/ListAuditRecords", bytes);
      break;
    case 23:
      serve_one<pb::VerifyAuditLogRequest, pb::VerifyAuditLogResponse, U>(
          *s.audit_service, &U::VerifyAuditLog, "/frs.v1.Audit/VerifyAuditLog", bytes);
      break;
    case 24:
      serve_one<pb::AuthorizeWatchlistRequest, pb::Authorization, G>(
          *s.gallery_service, &G::AuthorizeWatchlist, "/frs.v1.Gallery/AuthorizeWatchlist", bytes);
      break;
    case 25:
      serve_one<pb::LiftSuppressionRequest, pb::Suppression, G>(
          *s.gallery_service, &G::LiftSuppression, "/frs.v1.Gallery/LiftSuppression", bytes);
      break;
    case 26:
      serve_one<pb::ReportRequest, pb::AccountabilityReport, U>(*s.audit_service, &U::Report,
                                                                "/frs.v1.Audit/Report", bytes);
      break;
    case 27:
      serve_one<pb::SetWatchlistLiveOnlyRequest, pb::Watchlist, G>(
          *s.gallery_service, &G::SetWatchlistLiveOnly, "/frs.v1.Gallery/SetWatchlistLiveOnly",
          bytes);
      break;
  }
  return 0;
}

int config(const std::uint8_t* data, std::size_t size) {
  const std::string path = as_file("config.yaml", data, size).string();
  server::ServerConfig settings;
  std::string config_file;
  CLI::App flags;
  flags.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  server::define_flags(flags, settings, config_file);
  try {
    std::vector<std::string> arguments = server::config_file_arguments(path, flags);
    server::config_file_cameras(path);
    arguments.insert(arguments.begin(), "frs-server");
    std::vector<const char*> pointers;
    for (const auto& a : arguments) pointers.push_back(a.c_str());
    flags.parse(static_cast<int>(pointers.size()), pointers.data());
  } catch (const Error&) {
    // A refusal naming the problem. Anything else (a yaml-cpp exception) is a bug: the
    // server would print a library's message instead of saying what to fix.
  } catch (const CLI::Error&) {
    // The server prints these and exits 2: a refusal.
  }
  return 0;
}

int eval_csv(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const auto path = as_file("input.csv", data + 1, size - 1);
  try {
    switch (data[0] % 5) {
      case 0:
        read_pairs_csv(path);
        break;
      case 1:
        read_groups_csv(path);
        break;
      case 2:
        read_images_csv(path);
        break;
      case 3:
        read_images_csv(path, "race");
        break;
      default:  // a score normaliser file (frs eval --normaliser)
        ScoreNormaliser::from_json(std::string(reinterpret_cast<const char*>(data + 1), size - 1));
    }
  } catch (const Error&) {
  }
  return 0;
}

}  // namespace frs::fuzz
