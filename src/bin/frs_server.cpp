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
#include "frs/core/clock.h"
#include "frs/core/digest.h"
#include "frs/core/error.h"
#include "frs/core/logfmt.h"
#include "frs/core/net.h"
#include "frs/core/url.h"
#include "frs/gallery/enrollment.h"
#include "frs/live/camera_assigner.h"
#include "frs/service/retention.h"
#include "frs/service/services.h"
#include "frs/storage/database.h"
#include "server_config.h"

namespace {

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
// The descriptor model as the accountability report names it: id, files and checksum.
std::string descriptor_model_name(const frs::DescriptorModel& model,
                                  const std::string& models_dir) {
  std::string files;
  for (std::string_view f : model.files) files += (files.empty() ? "" : ", ") + std::string(f);
  return std::string(model.id) + " (" + files + ", " + std::to_string(model.dimension) + "-D, " +
         (model.metric == frs::DescriptorMetric::kCosine ? "cosine" : "Euclidean") + "; sha256 " +
         frs::descriptor_model_checksum(model, models_dir) + ")";
}

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
std::shared_ptr<grpc::ServerCredentials> listener_credentials(
    const frs::server::ServerConfig& config) {
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
  const std::string key = read_text_file(config.tls_key);
  const std::string certificate = read_text_file(config.tls_cert);
  frs::check_tls_key_pair(certificate, key, config.tls_cert, config.tls_key);
  options.pem_key_cert_pairs.push_back({key, certificate});
  if (!config.tls_client_ca.empty()) options.pem_root_certs = read_text_file(config.tls_client_ca);
  return grpc::SslServerCredentials(options);
}

bool plain_text_in_the_open(const frs::server::ServerConfig& config) {
  return config.tls_cert.empty() && !frs::is_loopback_host(frs::host_of_address(config.listen));
}

// This node's name in the cluster: kept in DATA_DIR/node.id, made once (random), so that a
// restarted node is recognised and its unexpired leases are its own.
std::string node_id(const std::filesystem::path& data_dir) {
  const std::filesystem::path file = data_dir / "node.id";
  std::string id;
  if (std::ifstream in(file); in) std::getline(in, id);
  if (id.empty()) {
    const std::string bytes = frs::random_bytes(6);
    static const char* digits = "0123456789abcdef";
    id = "node-";
    for (const unsigned char c : bytes) {
      id += digits[c >> 4];
      id += digits[c & 15];
    }
    std::ofstream(file) << id << "\n";
  }
  return id;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace frs::server;
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
    gallery_options.max_distance_ceilings = frs::server::max_distance_ceilings(config);
    gallery_options.suppression_margin = config.suppression_margin;
    if (config.default_max_distance > gallery_options.max_distance_ceilings[config.descriptor]) {
      throw frs::Error(
          frs::ErrorCode::kInvalidArgument,
          "--default-max-distance " + std::to_string(config.default_max_distance) +
              " is looser than --max-distance-ceiling " +
              std::to_string(gallery_options.max_distance_ceilings[config.descriptor]) + " of " +
              config.descriptor);
    }
    if (config.confirmed_alert_retention_days < config.alert_retention_days) {
      throw frs::Error(frs::ErrorCode::kInvalidArgument,
                       "--confirmed-alert-retention-days must be at least "
                       "--alert-retention-days (confirmed alerts are kept longer, not shorter)");
    }
    frs::FaceIndex validate_index_type(gallery_options.index);  // before the slow model load
    std::filesystem::create_directories(config.data_dir);
    // The data dir holds faces, camera credentials and the token hashes: its owner only.
    std::filesystem::permissions(config.data_dir, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::replace);
    // Who may call, and the record of what they did.
    const std::filesystem::path data_dir(config.data_dir);
    // Each store's SQLite file in the data dir, or the one PostgreSQL database of the cluster.
    const auto store_at = [&](const char* file) {
      return config.store.empty() ? frs::StoreLocation(data_dir / file)
                                  : frs::StoreLocation::postgres(config.store);
    };
    const bool cluster = !config.store.empty();
    if (cluster) {
      spdlog::info("stores in PostgreSQL at {} (cluster mode)", frs::redact_url(config.store));
    }
    auto tokens = frs::open_token_store(store_at("tokens.db"));
    auto gallery_store = frs::open_gallery_store(store_at("gallery.db"));
    auto audit_log = frs::open_audit_log(store_at("audit.db"));
    // Before this start adds a token: what the stores held from earlier runs, which the log
    // must have recorded. (Nodes starting together: one writes the first row first.)
    frs::begin_audit_log(
        *audit_log, config.new_audit_log,
        {{"tokens", tokens->count_all()},
         {"watchlists", static_cast<std::int64_t>(gallery_store->list_watchlists().size())}});
    const std::string admin_note =
        frs::ensure_admin_token(*tokens, config.admin_token_file, data_dir / "admin.token");
    if (!admin_note.empty()) spdlog::info("{}", admin_note);
    if (!config.admin_token_file.empty()) {
      if (const std::string exposed = frs::token_file_exposure(config.admin_token_file);
          !exposed.empty()) {
        spdlog::warn("{}", exposed);
      }
    }
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
    engine_options.detector = frs::detector_kind(config.detector);
    engine_options.descriptor = config.descriptor;
    // Every model: each watchlist is described with its own, and a re-embedding needs the
    // target's. fetch.sh fetches all their files.
    for (const frs::DescriptorModel& m : frs::descriptor_models()) {
      engine_options.more_descriptors.emplace_back(m.id);
    }
    const frs::FaceEngine engine(engine_options);

    frs::Gallery gallery(std::move(gallery_store), gallery_options);
    for (const auto& [id, how] : gallery.load_report()) {
      spdlog::info("watchlist {} index: {} ({} faces)", id, how, gallery.indexed_faces(id));
    }
    std::string ceilings;
    for (const auto& [model, ceiling] : gallery_options.max_distance_ceilings) {
      ceilings += fmt::format("{}{}={:.4f}", ceilings.empty() ? "" : " ", model, ceiling);
    }
    spdlog::info(
        "descriptor model of new watchlists {}, max_distance ceilings {}, suppression margin "
        "{:.2f}, confirmations {}",
        config.descriptor, ceilings, gallery.suppression_margin(), config.confirmations);
    for (const frs::Watchlist& w : gallery.store().list_watchlists()) {
      const float ceiling = gallery.max_distance_ceiling(w.descriptor_model);
      if (w.max_distance > ceiling) {
        spdlog::warn(
            "watchlist={} event=threshold_capped descriptor_model={} max_distance={:.4f} "
            "ceiling={:.4f}",
            frs::logfmt_value(w.name), w.descriptor_model, w.max_distance, ceiling);
      }
    }

    // Live video: the alert log, stored cameras, and the recognizer that runs them.
    frs::AlertStore alerts(store_at("alerts.db"));
    frs::AlertFeed feed;
    // Several nodes: subscribers get every node's alerts, out of the log in id order.
    if (cluster) feed.follow(alerts);
    frs::CameraStore camera_store(store_at("cameras.db"));
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
      const std::int64_t now = frs::now_unix_ms();
      for (const std::string& name : event.watchlists) {
        nlohmann::json entry = {{"name", name}};
        if (const auto w = gallery.store().find_watchlist(name)) {
          targets["watchlists"].push_back(w->id);
          entry["id"] = w->id;
          entry["identities"] = gallery.store().identity_count(w->id);
          // The legal basis the matching rests on (the one in force when it started).
          if (const auto a = gallery.authorization_in_force(w->id, now)) {
            entry["authorization"] = {{"id", a->id},
                                      {"basis", a->basis},
                                      {"reference", a->reference},
                                      {"valid_until_ms", a->valid_until_ms}};
          }
        }
        watchlists.push_back(entry);
      }
      row.targets_json = targets.dump();
      row.details_json = nlohmann::json{{"reason", event.reason},
                                        {"watchlists", watchlists},
                                        {"store_change", gallery.store().last_change()}}
                             .dump();
      access.audit(row);
    });
    // Cameras of the config file are stored like those added through the API; the file
    // wins for a name in both.
    for (const frs::CameraConfig& camera : config.cameras) camera_store.put(camera);
    // Several nodes share the cameras out by leases (below); one node runs them all.
    for (const frs::CameraConfig& camera :
         cluster ? std::vector<frs::CameraConfig>{} : camera_store.list()) {
      try {
        // A watchlist deleted while it was down: the camera runs and reports it.
        live.add_camera(camera, frs::MissingWatchlists::kReport);  // logs `event=added`
      } catch (const std::exception& e) {
        spdlog::error("camera={} event=not_started error={}", frs::logfmt_value(camera.name),
                      frs::logfmt_value(e.what()));
      }
    }

    // Several nodes: what the others commit reaches this node's indexes, oversight copies and
    // alert subscribers (announced by PostgreSQL; a resync every 5 s covers a missed one).
    frs::ChangeListener cluster_changes(
        store_at("gallery.db"), {frs::kGalleryChannel, frs::kAlertChannel},
        [&](const std::string& channel) {
          try {
            if (channel == frs::kAlertChannel) {
              feed.relay();
            } else if (gallery.sync_with_store()) {
              live.refresh_matching();  // a watchlist a camera names was created or deleted
            }
          } catch (const std::exception& e) {
            spdlog::warn("event=cluster_sync_failed channel={} error={}", channel,
                         frs::logfmt_value(frs::redact_urls_in(e.what())));
          }
        });

    frs::service::ServiceOptions service_options;
    using SearchRule = frs::service::ServiceOptions::SearchAuthorization;
    service_options.default_max_distance = config.default_max_distance;
    service_options.default_target_fpir = config.default_target_fpir;
    service_options.default_expected_identities = config.default_expected_identities;
    service_options.enrollment = config.enrollment;
    const int images_at_once =
        config.max_images_at_once > 0 ? config.max_images_at_once : 2 * engine.options().threads;
    service_options.image_slots = std::make_shared<frs::Admission>(
        static_cast<std::size_t>(images_at_once), std::chrono::milliseconds(config.image_wait_ms),
        "images analysed");
    service_options.on_watchlists_changed = [&live] { live.refresh_matching(); };
    service_options.exigent_max = std::chrono::hours(config.exigent_max_hours);
    service_options.search_authorization =
        config.search_authorization == "never"    ? SearchRule::kNever
        : config.search_authorization == "always" ? SearchRule::kAlways
                                                  : SearchRule::kLiveOnly;
    service_options.alert_retention = std::chrono::hours(24 * config.alert_retention_days);
    service_options.alert_face = [&alerts](std::int64_t alert_id) {
      const auto alert = alerts.get(alert_id, true);
      return alert ? alert->face_jpeg : std::vector<std::uint8_t>{};
    };
    auto gallery_service =
        frs::service::make_gallery_service(access, gallery, engine, service_options);
    auto search_service =
        frs::service::make_search_service(access, gallery, engine, service_options);
    auto evaluation_service =
        frs::service::make_evaluation_service(access, engine, service_options);
    std::unique_ptr<frs::CameraLeaseStore> lease_store;
    frs::service::ClusterView cluster_view;
    if (cluster) {
      lease_store = std::make_unique<frs::CameraLeaseStore>(store_at("camera_leases.db"));
      cluster_view = {lease_store.get(), &gallery.store(), node_id(data_dir),
                      std::chrono::milliseconds(config.camera_lease_ms)};
    }
    auto camera_service = frs::service::make_camera_service(access, live, camera_store,
                                                            cluster ? &cluster_view : nullptr);
    config.alert_streams.write_timeout = std::chrono::milliseconds(config.alert_write_timeout_ms);
    config.alert_streams.max_streams_per_token =
        std::min(config.alert_streams.max_streams_per_token, config.alert_streams.max_streams);
    frs::service::AlertReviewRules review_rules;
    review_rules.confirmations = config.confirmations;
    review_rules.gallery = &gallery;
    auto alert_service =
        frs::service::make_alert_service(access, alerts, feed, review_rules, config.alert_streams);
    auto token_service = frs::service::make_token_service(access);
    frs::service::ReportSources report_sources;
    report_sources.alerts = &alerts;
    report_sources.gallery = &gallery;
    report_sources.confirmations = config.confirmations;
    report_sources.describe_model = [models = config.models_dir](const std::string& model) {
      return descriptor_model_name(frs::descriptor_model(model), models);
    };
    report_sources.default_model = config.descriptor;
    auto audit_service = frs::service::make_audit_service(access, report_sources);

    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(config.listen, credentials, &port);
    // gRPC sets SO_REUSEPORT by default: a second server on the same port would start and
    // take a share of this one's connections. A port in use is an error instead.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
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

    // Cluster mode: this node's share of the cameras, by leases in PostgreSQL.
    std::unique_ptr<frs::CameraAssigner> camera_assigner;
    if (cluster) {
      frs::ClusterNode self;
      self.id = cluster_view.self;
      self.address = config.listen;
      self.version = FRS_VERSION_TEXT;
      self.camera_capacity =
          config.camera_capacity > 0 ? config.camera_capacity : 2 * engine.options().threads;
      self.started_at_ms = frs::now_unix_ms();
      frs::CameraAssignerOptions lease_options;
      lease_options.lease = std::chrono::milliseconds(config.camera_lease_ms);
      lease_options.round = std::min(std::chrono::milliseconds(1000), lease_options.lease / 4);
      spdlog::info("cluster node {} at {}: up to {} cameras, leases of {} ms", self.id,
                   self.address, self.camera_capacity, config.camera_lease_ms);
      camera_assigner = std::make_unique<frs::CameraAssigner>(
          *lease_store, camera_store, live, self, [&gallery] { return gallery.applied_change(); },
          lease_options);
    }

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
      // cpp-httplib sets SO_REUSEPORT, as gRPC does: only SO_REUSEADDR (a quick restart),
      // so that a port in use is an error, not a shared one.
      metrics.set_socket_options([](socket_t socket) {
        const int yes = 1;
        ::setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
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

    // Retention: at start and every hour, what is older than its period goes.
    frs::service::RetentionPolicy retention;
    retention.alerts = std::chrono::hours(24 * config.alert_retention_days);
    retention.confirmed_alerts = std::chrono::hours(24 * config.confirmed_alert_retention_days);
    retention.audit = std::chrono::hours(24 * config.audit_retention_days);
    const auto purge_expired = [&] {
      try {
        const auto run =
            frs::service::purge_expired(alerts, gallery, access, retention, frs::now_unix_ms());
        if (run.alerts.alerts + run.suppressions + run.audit_rows > 0) {
          spdlog::info(
              "event=retention_purged alerts={} confirmed_alerts={} suppressions={} "
              "audit_rows={}",
              run.alerts.alerts, run.alerts.confirmed, run.suppressions, run.audit_rows);
        }
      } catch (const std::exception& e) {
        spdlog::error("event=retention_failed error={}", frs::logfmt_value(e.what()));
      }
    };
    // Every hour: the insecure warning again, the audit head (a head kept in the logs
    // proves the rows before it were not rewritten since), and the retention purge.
    std::mutex hourly_mutex;
    std::condition_variable hourly_wake;
    bool stopping = false;
    std::thread hourly([&] {
      std::unique_lock lock(hourly_mutex);
      purge_expired();
      while (!hourly_wake.wait_for(lock, std::chrono::hours(1), [&] { return stopping; })) {
        warn_if_in_the_open();
        purge_expired();
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
