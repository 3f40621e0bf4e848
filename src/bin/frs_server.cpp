// frs-server: the gRPC server. Holds the face engine and the gallery (SQLite store + FAISS
// indexes) and serves the Gallery and Search APIs, the standard health service and server
// reflection.
//
//   frs-server [--config FILE] [--listen ADDR] [--data-dir DIR] [--models DIR] ... (--help)

#include <fcntl.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <httplib.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <set>
#include <thread>

#include "frs/auth/audit_log.h"
#include "frs/auth/tokens.h"
#include "frs/core/error.h"
#include "frs/core/logfmt.h"
#include "frs/core/net.h"
#include "frs/gallery/enrollment.h"
#include "frs/service/services.h"

namespace {

struct ServerConfig {
  std::string listen = "127.0.0.1:50051";  // host:port; loopback unless told otherwise
  std::string data_dir = "frs-data";       // store and index snapshots
  std::string models_dir = frs::default_models_dir().string();
  frs::FaceIndexOptions index;   // FAISS type and search settings (face_index.h)
  int threads = 0;               // face engine threads; 0 = one per core
  int max_message_mb = 64;       // largest request, MiB (1..1024)
  int max_decoded_mb = 384;      // memory one image may take to decode, MiB (1..16384)
  int max_detector_views = 128;  // detector views per image (1..4096)
  int max_images_at_once = 0;    // images analysed at once by all calls; 0 = 2 per thread
  int image_wait_ms = 2000;      // how long a call waits for that, ms (0..60000)
  frs::service::AlertStreamLimits alert_streams;  // StreamAlerts: open streams, write timeout
  std::int64_t alert_write_timeout_ms = 10000;    // ... as a flag (100..3600000)
  std::string metrics_listen = "127.0.0.1:9464";  // Prometheus /metrics; "" = off
  bool metrics_public = false;                    // allow a non-loopback --metrics-listen
  std::string admin_token_file;                   // the admin token's secret, supplied (automation)
  std::string tls_cert, tls_key;                  // PEM files: TLS on the gRPC listener
  std::string tls_client_ca;               // PEM file: also require client certificates it signed
  bool insecure = false;                   // allow plain text on a non-loopback --listen
  frs::service::AccessLimits access;       // calls per token per second
  frs::CameraSourcePolicy camera_sources;  // --media-dir, --camera-hosts
  float default_max_distance = 0;          // of watchlists created without one; 0 = calibrated
  double default_target_fpir = 0.01;       // ... at this false-alert rate
  std::int64_t default_expected_identities = 1000;  // ... for this size, unless told
  std::string identity_score = "centroid";          // nearest or centroid (gallery.h)
  frs::DecisionOptions decisions;                   // live video: when a track alerts
  frs::EnrollmentRules enrollment;                  // the enrollment gate (enrollment.h)
  std::vector<frs::CameraConfig> cameras;           // from the config file's `cameras:` list
};

void define_flags(CLI::App& flags, ServerConfig& config, std::string& config_file) {
  flags.add_option("--config", config_file, "YAML config file (keys as the long options)")
      ->check(CLI::ExistingFile);
  flags.add_option("--listen", config.listen, "Address to serve on, host:port")
      ->capture_default_str();
  flags.add_option("--data-dir", config.data_dir, "Store and index snapshots")
      ->capture_default_str();
  flags.add_option("--models", config.models_dir, "Model directory")->capture_default_str();
  flags
      .add_option("--index-type", config.index.factory,
                  "FAISS factory string: Flat (exact), HNSW32, IVF4096,Flat, IVF4096,PQ32,RFlat, "
                  "IVF4096,PQ64 (docs/benchmarks.md compares them)")
      ->capture_default_str();
  flags
      .add_option("--ivf-nprobe", config.index.ivf_nprobe,
                  "IVF types: lists searched per query (more = better recall, slower)")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  flags
      .add_option("--hnsw-ef-search", config.index.hnsw_ef_search,
                  "HNSW types: candidates kept while searching (more = better recall, slower)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  flags
      .add_option("--refine-k-factor", config.index.refine_k_factor,
                  "Refined types (RFlat): candidates re-ranked per wanted result")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  flags
      .add_option("--identity-score", config.identity_score,
                  "How an identity with several photos is scored: centroid (the mean of its "
                  "descriptors; fewer misses, docs/accuracy.md) or nearest (its nearest photo)")
      ->check(CLI::IsMember({"centroid", "nearest"}))
      ->capture_default_str();
  flags.add_option("--threads", config.threads, "Face engine threads (0 = one per core)")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  flags
      .add_option("--alert-votes", config.decisions.votes_needed,
                  "Matching descriptors of one track needed to alert (agreement over chips)")
      ->check(CLI::Range(1, 32))
      ->capture_default_str();
  flags
      .add_option("--alert-fuse-chips", config.decisions.fuse_chips,
                  "Search with the quality-weighted mean of a track's best N chips (1 = each "
                  "chip alone)")
      ->check(CLI::Range(1, 32))
      ->capture_default_str();
  flags
      .add_option("--alert-thin-margin", config.decisions.thin_margin,
                  "When the runner-up identity is this close to the match, wait for "
                  "--alert-thin-margin-votes matching searches (0 = off)")
      ->check(CLI::Range(0.0f, 1.0f))
      ->capture_default_str();
  flags
      .add_option("--alert-thin-margin-votes", config.decisions.thin_margin_votes,
                  "Matching searches of one track needed when the margin is thin")
      ->check(CLI::Range(1, 32))
      ->capture_default_str();
  flags
      .add_option("--alert-margin", config.decisions.margin,
                  "Distance the match must beat the runner-up identity by (0 = off)")
      ->check(CLI::Range(0.0f, 1.0f))
      ->capture_default_str();
  flags
      .add_option("--alert-cooldown-ms", config.decisions.cooldown_ms,
                  "No new alert for the same person on the same camera for this long")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{86400000}))
      ->capture_default_str();
  flags
      .add_option("--enroll-min-face-px", config.enrollment.min_face_px,
                  "Enrollment gate: smallest face accepted, pixels")
      ->check(CLI::Range(16.0f, 1000.0f))
      ->capture_default_str();
  flags
      .add_option("--enroll-min-sharpness", config.enrollment.min_sharpness,
                  "Enrollment gate: least chip sharpness accepted (0 = off)")
      ->check(CLI::Range(0.0f, 1000.0f))
      ->capture_default_str();
  flags
      .add_option("--enroll-max-yaw", config.enrollment.max_yaw,
                  "Enrollment gate: most head turn accepted, |yaw| (0 frontal, 1 profile; 2 = off)")
      ->check(CLI::Range(0.05f, 2.0f))
      ->capture_default_str();
  flags
      .add_option("--enroll-min-eye-brightness", config.enrollment.min_eye_brightness,
                  "Enrollment gate: least eye-region brightness relative to the nose accepted "
                  "(dark glasses; 0 = off)")
      ->check(CLI::Range(0.0f, 1.0f))
      ->capture_default_str();
  flags
      .add_option("--metrics-listen", config.metrics_listen,
                  "host:port of the Prometheus /metrics endpoint (plain HTTP: keep it on "
                  "loopback or a monitoring network); empty = off")
      ->capture_default_str();
  flags
      .add_option("--admin-token-file", config.admin_token_file,
                  "File holding the admin token's secret (made the token 'admin'); default: "
                  "on first start a new one is written to DATA_DIR/admin.token")
      ->check(CLI::ExistingFile);
  flags.add_option("--tls-cert", config.tls_cert, "PEM certificate (chain) of the gRPC listener")
      ->check(CLI::ExistingFile);
  flags.add_option("--tls-key", config.tls_key, "PEM private key of --tls-cert")
      ->check(CLI::ExistingFile);
  flags
      .add_option("--tls-client-ca", config.tls_client_ca,
                  "PEM CA certificates: clients must present a certificate they signed (mTLS)")
      ->check(CLI::ExistingFile);
  flags.add_flag("--insecure", config.insecure,
                 "Serve plain text on a non-loopback --listen (tokens and faces travel "
                 "unencrypted; a warning is logged at start and every hour)");
  flags
      .add_option("--media-dir", config.camera_sources.media_dir,
                  "Video files may be cameras only under this directory (default none: only "
                  "rtsp://, rtsps://, http:// and https:// cameras)")
      ->check(CLI::ExistingDirectory);
  flags
      .add_option("--camera-hosts", config.camera_sources.allowed_hosts,
                  "Hosts cameras may be on: names, addresses or CIDR ranges, comma-separated "
                  "(default any)")
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  flags.add_flag("--metrics-public", config.metrics_public,
                 "Allow a non-loopback --metrics-listen (it carries no names, faces or URLs)");
  flags
      .add_option("--rate-limit", config.access.calls_per_second,
                  "Calls per token per second, on average (0 = no limit); over it: "
                  "RESOURCE_EXHAUSTED with retry-after-ms")
      ->check(CLI::Range(0.0, 100000.0))
      ->capture_default_str();
  flags
      .add_option("--rate-burst", config.access.burst,
                  "Calls one token may make at once above --rate-limit")
      ->check(CLI::Range(1.0, 100000.0))
      ->capture_default_str();
  flags
      .add_option("--max-alert-streams-per-token", config.alert_streams.max_streams_per_token,
                  "StreamAlerts calls one token may have open at once")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  flags.add_option("--max-message-mb", config.max_message_mb, "Largest request in MiB")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  flags
      .add_option("--max-decoded-mb", config.max_decoded_mb,
                  "Most memory decoding one image may take, MiB (estimated from its header "
                  "before decoding; over it: RESOURCE_EXHAUSTED)")
      ->check(CLI::Range(1, 16384))
      ->capture_default_str();
  flags
      .add_option("--max-detector-views", config.max_detector_views,
                  "Most detector views (whole image + tiles) per image; larger images are "
                  "scanned for larger faces")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  flags
      .add_option("--max-images-at-once", config.max_images_at_once,
                  "Images decoded and analysed at once by all calls together (0 = 2 per "
                  "engine thread); bounds the memory requests can take")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  flags
      .add_option("--max-alert-streams", config.alert_streams.max_streams,
                  "StreamAlerts calls open at once (more: RESOURCE_EXHAUSTED)")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  flags
      .add_option("--alert-write-timeout-ms", config.alert_write_timeout_ms,
                  "An alert stream whose client reads nothing for this long is reset")
      ->check(CLI::Range(std::int64_t{100}, std::int64_t{3600000}))
      ->capture_default_str();
  flags
      .add_option("--image-wait-ms", config.image_wait_ms,
                  "How long a call waits for one of those before RESOURCE_EXHAUSTED")
      ->check(CLI::Range(0, 60000))
      ->capture_default_str();
  flags
      .add_option("--default-max-distance", config.default_max_distance,
                  "Fixed max_distance of new watchlists that do not set one; 0 = calibrate it "
                  "for the watchlist's expected size with the built-in impostor model")
      ->check(CLI::Range(0.0f, 4.0f))
      ->capture_default_str();
  flags
      .add_option("--default-target-fpir", config.default_target_fpir,
                  "False-alert rate that calibration aims at (share of never-enrolled people "
                  "who alert)")
      ->check(CLI::Range(1e-9, 0.5))
      ->capture_default_str();
  flags
      .add_option("--default-expected-identities", config.default_expected_identities,
                  "Watchlist size calibrated for when the request does not say")
      ->check(CLI::Range(std::int64_t{1}, frs::service::kMaxExpectedIdentities))
      ->capture_default_str();
}

// The YAML file's keys are the long flag names without "--"; each becomes "--key value"
// placed before the command line's own arguments, so flags override the file and both go
// through the same checks.
std::vector<std::string> config_file_arguments(const std::string& path, const CLI::App& flags) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw frs::Error(frs::ErrorCode::kInvalidArgument,
                     "cannot read config '" + path + "': " + e.what());
  }
  if (!root.IsMap()) {
    throw frs::Error(frs::ErrorCode::kInvalidArgument,
                     "config '" + path + "' must be a map of option: value");
  }
  std::vector<std::string> arguments;
  for (const auto& entry : root) {
    const auto key = entry.first.as<std::string>();
    if (key == "cameras") continue;  // a list, read by config_file_cameras()
    if (key == "config" || flags.get_option_no_throw("--" + key) == nullptr) {
      throw frs::Error(frs::ErrorCode::kInvalidArgument,
                       "config '" + path + "': unknown key '" + key +
                           "' (keys are the long options of frs-server --help)");
    }
    if (!entry.second.IsScalar()) {
      throw frs::Error(frs::ErrorCode::kInvalidArgument,
                       "config '" + path + "': '" + key + "' must be a single value");
    }
    arguments.push_back("--" + key);
    arguments.push_back(entry.second.as<std::string>());
  }
  return arguments;
}

// The config file's `cameras:` list: each entry has `name` and `url`, optionally
// `watchlists` (a list), `fps`, `rtsp-transport`, `rtsp-latency-ms` and `region`
// ([x, y, width, height]).
std::vector<frs::CameraConfig> config_file_cameras(const std::string& path) {
  const YAML::Node root = YAML::LoadFile(path);
  std::vector<frs::CameraConfig> cameras;
  if (!root["cameras"]) return cameras;
  if (!root["cameras"].IsSequence()) {
    throw frs::Error(frs::ErrorCode::kInvalidArgument,
                     "config '" + path + "': 'cameras' must be a list of {name, url, ...}");
  }
  const std::set<std::string> known = {
      "name", "url", "watchlists", "fps", "rtsp-transport", "rtsp-latency-ms", "region"};
  for (const auto& entry : root["cameras"]) {
    try {
      for (const auto& field : entry) {
        if (!known.count(field.first.as<std::string>())) {
          throw frs::Error(frs::ErrorCode::kInvalidArgument,
                           "unknown camera key '" + field.first.as<std::string>() + "'");
        }
      }
      frs::CameraConfig c;
      c.name = entry["name"].as<std::string>();
      c.source.url = entry["url"].as<std::string>();
      if (entry["watchlists"]) c.watchlists = entry["watchlists"].as<std::vector<std::string>>();
      if (entry["fps"]) c.analyse_fps = entry["fps"].as<double>();
      if (entry["rtsp-transport"])
        c.source.rtsp_transport = entry["rtsp-transport"].as<std::string>();
      if (entry["rtsp-latency-ms"]) c.source.rtsp_latency_ms = entry["rtsp-latency-ms"].as<int>();
      if (entry["region"]) {
        const auto r = entry["region"].as<std::vector<int>>();
        if (r.size() != 4)
          throw frs::Error(frs::ErrorCode::kInvalidArgument, "region needs 4 numbers");
        c.region = cv::Rect(r[0], r[1], r[2], r[3]);
      }
      cameras.push_back(c);
    } catch (const YAML::Exception& e) {
      throw frs::Error(frs::ErrorCode::kInvalidArgument,
                       "config '" + path + "': camera " + std::to_string(cameras.size() + 1) +
                           " needs `name` and `url` (" + e.what() + ")");
    } catch (const frs::Error& e) {
      throw frs::Error(
          frs::ErrorCode::kInvalidArgument,
          "config '" + path + "': camera " + std::to_string(cameras.size() + 1) + ": " + e.what());
    }
  }
  return cameras;
}

// Shutdown on SIGINT/SIGTERM. Blocking the signals in main() and sigwait()ing for them is
// not enough: libraries start threads before main() runs (OpenBLAS starts its pool from a
// constructor), those threads have the signals unblocked, and the kernel delivered
// SIGTERM to one of them, whose default action killed the process (6 of 6 runs). A handler
// is process-wide: whichever thread takes the signal, it only writes the signal's number
// to a pipe that one thread of ours reads.
int g_stop_pipe[2] = {-1, -1};

extern "C" void on_stop_signal(int signal) {
  static volatile sig_atomic_t seen = 0;
  if (seen) std::_Exit(128 + signal);  // a second signal: the operator wants out now
  seen = 1;
  const int saved_errno = errno;  // the interrupted code may be about to read it
  const char byte = static_cast<char>(signal);
  [[maybe_unused]] const ssize_t written = ::write(g_stop_pipe[1], &byte, 1);
  errno = saved_errno;
}

void install_stop_signals() {
  if (::pipe2(g_stop_pipe, O_CLOEXEC) != 0) {
    throw frs::Error(frs::ErrorCode::kInternal, "cannot create the shutdown pipe");
  }
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

// Blocks until SIGINT or SIGTERM; returns which.
int wait_for_stop_signal() {
  char byte = 0;
  while (::read(g_stop_pipe[0], &byte, 1) != 1) {
    if (errno != EINTR) return 0;
  }
  return byte;
}

// How long calls in flight may take to finish after a stop signal.
constexpr int kShutdownGraceSeconds = 10;

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw frs::Error(frs::ErrorCode::kInvalidArgument, "cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The gRPC listener's credentials: TLS (and mTLS) when given; plain text only on loopback,
// or anywhere with --insecure.
std::shared_ptr<grpc::ServerCredentials> listener_credentials(const ServerConfig& config) {
  if (config.tls_cert.empty() != config.tls_key.empty()) {
    throw frs::Error(frs::ErrorCode::kInvalidArgument,
                     "--tls-cert and --tls-key go together: give both");
  }
  if (!config.tls_client_ca.empty() && config.tls_cert.empty()) {
    throw frs::Error(frs::ErrorCode::kInvalidArgument,
                     "--tls-client-ca needs --tls-cert and --tls-key (mTLS is TLS with client "
                     "certificates)");
  }
  if (config.tls_cert.empty()) {
    if (!frs::is_loopback_host(frs::host_of_address(config.listen)) && !config.insecure) {
      throw frs::Error(
          frs::ErrorCode::kInvalidArgument,
          "--listen " + config.listen +
              " is reachable from other machines, and tokens and faces would cross the network "
              "unencrypted: add --tls-cert FILE --tls-key FILE (and --tls-client-ca FILE to "
              "require client certificates), listen on 127.0.0.1, or pass --insecure if "
              "something else encrypts the traffic");
    }
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions options(
      config.tls_client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                   : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_key_cert_pairs.push_back(
      {read_text_file(config.tls_key), read_text_file(config.tls_cert)});
  if (!config.tls_client_ca.empty()) options.pem_root_certs = read_text_file(config.tls_client_ca);
  return grpc::SslServerCredentials(options);
}

bool plain_text_in_the_open(const ServerConfig& config) {
  return config.tls_cert.empty() && !frs::is_loopback_host(frs::host_of_address(config.listen));
}

}  // namespace

int main(int argc, char** argv) {
  ServerConfig config;
  std::string config_file;
  CLI::App flags{"frs-server: face recognition server (gRPC)"};
  // Before the options exist: defaults apply to options defined afterwards.
  flags.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  define_flags(flags, config, config_file);
  std::vector<std::string> arguments = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    std::string file;
    if (arg == "--config" && i + 1 < argc) file = argv[i + 1];
    if (arg.rfind("--config=", 0) == 0) file = arg.substr(9);
    if (file.empty() || !std::filesystem::is_regular_file(file)) continue;
    try {
      const auto from_file = config_file_arguments(file, flags);
      arguments.insert(arguments.begin() + 1, from_file.begin(), from_file.end());
      config.cameras = config_file_cameras(file);
    } catch (const std::exception& e) {
      std::cerr << "frs-server: " << e.what() << "\n";
      return 2;
    }
  }
  for (int i = 1; i < argc; ++i) arguments.emplace_back(argv[i]);
  std::vector<const char*> pointers;
  for (const auto& a : arguments) pointers.push_back(a.c_str());
  try {
    flags.parse(static_cast<int>(pointers.size()), pointers.data());
  } catch (const CLI::ParseError& e) {
    return flags.exit(e);
  }

  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_ERROR);
  try {
    // SIGINT/SIGTERM start the graceful shutdown, whichever thread the kernel gives them to.
    install_stop_signals();
    // Refused before the slow model load: a server that would serve in the open.
    const auto credentials = listener_credentials(config);
    frs::check_camera_host_list(config.camera_sources.allowed_hosts);
    if (!config.metrics_listen.empty() && !config.metrics_public &&
        !frs::is_loopback_host(frs::host_of_address(config.metrics_listen))) {
      throw frs::Error(frs::ErrorCode::kInvalidArgument,
                       "--metrics-listen " + config.metrics_listen +
                           " is reachable from other machines: pass --metrics-public as well "
                           "if that is meant (the metrics carry no names, faces or URLs)");
    }
    frs::GalleryOptions gallery_options;
    gallery_options.snapshot_dir = std::filesystem::path(config.data_dir) / "index";
    gallery_options.index = config.index;
    gallery_options.identity_score = config.identity_score == "nearest"
                                         ? frs::IdentityScore::kNearestFace
                                         : frs::IdentityScore::kCentroid;
    frs::FaceIndex validate_index_type(gallery_options.index);  // before the slow model load
    std::filesystem::create_directories(config.data_dir);
    // The data dir holds faces, camera credentials and the token hashes: its owner only.
    std::filesystem::permissions(config.data_dir, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::replace);
    // Who may call, and the record of what they did.
    const std::filesystem::path data_dir(config.data_dir);
    auto tokens = frs::open_sqlite_token_store(data_dir / "tokens.db");
    const std::string admin_note =
        frs::ensure_admin_token(*tokens, config.admin_token_file, data_dir / "admin.token");
    if (!admin_note.empty()) spdlog::info("{}", admin_note);
    auto audit_log = frs::open_sqlite_audit_log(data_dir / "audit.db");
    frs::service::AccessControl access(*tokens, *audit_log, config.access);
    const auto log_audit_head = [&](const char* when) {
      const frs::AuditHead head = audit_log->head();
      spdlog::info("audit head {}: {}:{} (keep it; frs audit verify --expect {}:{})", when,
                   head.seq, head.hash, head.seq, head.hash);
    };
    log_audit_head("at start");
    frs::FaceEngineOptions engine_options;
    engine_options.models_dir = config.models_dir;
    engine_options.threads = config.threads;
    engine_options.limits.max_bytes = static_cast<std::size_t>(config.max_message_mb) << 20;
    engine_options.limits.max_decoded_bytes = static_cast<std::uint64_t>(config.max_decoded_mb)
                                              << 20;
    engine_options.max_detector_views = config.max_detector_views;
    const frs::FaceEngine engine(engine_options);

    frs::Gallery gallery(
        frs::open_sqlite_store(std::filesystem::path(config.data_dir) / "gallery.db"),
        gallery_options);
    for (const auto& [id, how] : gallery.load_report()) {
      spdlog::info("watchlist {} index: {} ({} faces)", id, how, gallery.indexed_faces(id));
    }

    // Live video: the alert log, stored cameras, and the recognizer that runs them.
    const std::filesystem::path data(config.data_dir);
    frs::AlertStore alerts(data / "alerts.db");
    frs::AlertFeed feed;
    frs::CameraStore camera_store(data / "cameras.db");
    frs::LiveRecognizer live(engine, gallery, alerts, feed, config.decisions, config.threads);
    live.set_source_policy(config.camera_sources);
    // Matching sessions in the audit log: when, which camera, against which watchlists, and
    // the store's change number (the reference database as it was).
    live.set_matching_listener([&](const frs::MatchingEvent& event) {
      frs::AuditEntry row;
      row.token = "frs-server";
      row.method = event.started ? "camera.matching_started" : "camera.matching_stopped";
      nlohmann::json targets = {{"cameras", {event.camera}}};
      nlohmann::json watchlists = nlohmann::json::array();
      const auto watchlist_row = [&](const frs::Watchlist& w) {
        targets["watchlists"].push_back(w.id);
        watchlists.push_back(
            {{"id", w.id}, {"name", w.name}, {"identities", gallery.store().identity_count(w.id)}});
      };
      if (event.watchlists.empty()) {
        for (const frs::Watchlist& w : gallery.store().list_watchlists()) watchlist_row(w);
      } else {
        for (const std::string& name : event.watchlists) {
          if (const auto w = gallery.store().find_watchlist(name)) watchlist_row(*w);
        }
      }
      row.targets_json = targets.dump();
      row.details_json = nlohmann::json{{"reason", event.reason},
                                        {"all_watchlists", event.watchlists.empty()},
                                        {"watchlists", watchlists},
                                        {"store_change", gallery.store().last_change()}}
                             .dump();
      access.audit(row);
    });
    // Cameras of the config file are stored like those added through the API; the file
    // wins for a name in both.
    for (const frs::CameraConfig& camera : config.cameras) camera_store.put(camera);
    for (const frs::CameraConfig& camera : camera_store.list()) {
      try {
        // A watchlist deleted while it was down: the camera runs and reports it.
        live.add_camera(camera, frs::MissingWatchlists::kReport);  // logs `event=added`
      } catch (const std::exception& e) {
        spdlog::error("camera={} event=not_started error={}", frs::logfmt_value(camera.name),
                      frs::logfmt_value(e.what()));
      }
    }

    frs::service::ServiceOptions service_options;
    service_options.default_max_distance = config.default_max_distance;
    service_options.default_target_fpir = config.default_target_fpir;
    service_options.default_expected_identities = config.default_expected_identities;
    service_options.enrollment = config.enrollment;
    const int images_at_once =
        config.max_images_at_once > 0 ? config.max_images_at_once : 2 * engine.options().threads;
    service_options.image_slots = std::make_shared<frs::Admission>(
        static_cast<std::size_t>(images_at_once), std::chrono::milliseconds(config.image_wait_ms),
        "images analysed");
    service_options.on_watchlist_deleted = [&live](const std::string& name) {
      live.watchlist_deleted(name);
    };
    auto gallery_service =
        frs::service::make_gallery_service(access, gallery, engine, service_options);
    auto search_service =
        frs::service::make_search_service(access, gallery, engine, service_options);
    auto evaluation_service =
        frs::service::make_evaluation_service(access, engine, service_options);
    auto camera_service = frs::service::make_camera_service(access, live, camera_store);
    config.alert_streams.write_timeout = std::chrono::milliseconds(config.alert_write_timeout_ms);
    config.alert_streams.max_streams_per_token =
        std::min(config.alert_streams.max_streams_per_token, config.alert_streams.max_streams);
    auto alert_service =
        frs::service::make_alert_service(access, alerts, feed, config.alert_streams);
    auto token_service = frs::service::make_token_service(access);
    auto audit_service = frs::service::make_audit_service(access);

    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(config.listen, credentials, &port);
    builder.SetMaxReceiveMessageSize(config.max_message_mb << 20);
    builder.experimental().SetInterceptorCreators(frs::service::make_interceptors(access));
    builder.RegisterService(gallery_service.get());
    builder.RegisterService(search_service.get());
    builder.RegisterService(evaluation_service.get());
    builder.RegisterService(camera_service.get());
    builder.RegisterService(alert_service.get());
    builder.RegisterService(token_service.get());
    builder.RegisterService(audit_service.get());
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    if (!server || port == 0) {
      spdlog::error("cannot listen on {}: is the address valid and the port free?", config.listen);
      return 1;
    }
    spdlog::info("frs-server listening on {} (port {}, {}), data in {}", config.listen, port,
                 config.tls_cert.empty()
                     ? "plain text"
                     : (config.tls_client_ca.empty() ? "TLS" : "TLS with client certificates"),
                 config.data_dir);
    const auto warn_if_in_the_open = [&] {
      if (plain_text_in_the_open(config)) {
        spdlog::warn(
            "--insecure: serving plain text on {}: tokens, faces and names cross the network "
            "unencrypted; use --tls-cert/--tls-key",
            config.listen);
      }
    };
    warn_if_in_the_open();

    // Prometheus text endpoint; plain HTTP, so loopback by default.
    httplib::Server metrics;
    std::thread metrics_thread;
    if (!config.metrics_listen.empty()) {
      const auto colon = config.metrics_listen.rfind(':');
      const std::string host = config.metrics_listen.substr(0, colon);
      const int metrics_port =
          colon == std::string::npos ? 0 : std::atoi(config.metrics_listen.c_str() + colon + 1);
      metrics.Get("/metrics", [&](const httplib::Request&, httplib::Response& response) {
        std::string text = live.prometheus_metrics();
        text +=
            "# HELP frs_alert_subscribers Clients streaming alerts.\n"
            "# TYPE frs_alert_subscribers gauge\nfrs_alert_subscribers " +
            std::to_string(feed.subscribers()) + "\n";
        response.set_content(text, "text/plain; version=0.0.4");
      });
      if (metrics_port <= 0 || !metrics.bind_to_port(host, metrics_port)) {
        spdlog::error("cannot serve metrics on {}: give a free host:port, or \"\" for none",
                      config.metrics_listen);
        server->Shutdown();
        return 1;
      }
      metrics_thread = std::thread([&] { metrics.listen_after_bind(); });
      spdlog::info("metrics on http://{}/metrics", config.metrics_listen);
    }

    // Every hour: the insecure warning again, and the audit head (a head kept in the logs
    // proves the rows before it were not rewritten since).
    std::mutex hourly_mutex;
    std::condition_variable hourly_wake;
    bool stopping = false;
    std::thread hourly([&] {
      std::unique_lock lock(hourly_mutex);
      while (!hourly_wake.wait_for(lock, std::chrono::hours(1), [&] { return stopping; })) {
        warn_if_in_the_open();
        log_audit_head("hourly");
      }
    });
    std::thread signal_waiter([&] {
      const int signal = wait_for_stop_signal();
      spdlog::info("signal {}: finishing calls in flight (up to {} s), then stopping", signal,
                   kShutdownGraceSeconds);
      server->Shutdown(std::chrono::system_clock::now() +
                       std::chrono::seconds(kShutdownGraceSeconds));
    });
    server->Wait();
    signal_waiter.join();
    {
      std::lock_guard lock(hourly_mutex);
      stopping = true;
    }
    hourly_wake.notify_all();
    hourly.join();
    log_audit_head("at stop");
    metrics.stop();
    if (metrics_thread.joinable()) metrics_thread.join();
    gallery.save_snapshots();
    spdlog::info("index snapshots saved; stopped");
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  return 0;
}
