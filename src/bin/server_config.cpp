#include "server_config.h"

#include <yaml-cpp/yaml.h>

#include <set>

#include "frs/core/error.h"
#include "frs/storage/database.h"
#include "frs/vision/face_engine.h"

namespace frs::server {

namespace {

std::vector<std::string> descriptor_models_list() {
  std::vector<std::string> ids;
  for (const DescriptorModel& m : descriptor_models()) ids.emplace_back(m.id);
  return ids;
}

}  // namespace

std::map<std::string, float, std::less<>> max_distance_ceilings(const ServerConfig& config) {
  std::map<std::string, float, std::less<>> out;
  for (const DescriptorModel& m : descriptor_models()) {
    out[std::string(m.id)] = service::default_max_distance_ceiling(m);
  }
  std::set<std::string> given;
  for (const std::string& entry : config.max_distance_ceilings) {
    const auto equals = entry.find('=');
    const std::string model =
        equals == std::string::npos ? config.descriptor : entry.substr(0, equals);
    const std::string number = equals == std::string::npos ? entry : entry.substr(equals + 1);
    descriptor_model(model);  // kInvalidArgument naming the known ones
    float value = -1;
    try {
      std::size_t used = 0;
      value = std::stof(number, &used);
      if (used != number.size()) value = -1;
    } catch (const std::exception&) {
      value = -1;
    }
    if (!(value >= 0 && value <= 4)) {
      throw Error(ErrorCode::kInvalidArgument,
                  "--max-distance-ceiling " + entry +
                      ": give VALUE or MODEL=VALUE with VALUE in 0..4 (0 = calibrated)");
    }
    if (!given.insert(model).second) {
      throw Error(ErrorCode::kInvalidArgument,
                  "--max-distance-ceiling gives " + model + "'s ceiling twice");
    }
    if (value > 0) out[model] = value;
  }
  return out;
}

void define_flags(CLI::App& flags, ServerConfig& config, std::string& config_file) {
  flags.add_option("--config", config_file, "YAML config file (keys as the long options)")
      ->check(CLI::ExistingFile);
  flags.add_option("--listen", config.listen, "Address to serve on, host:port")
      ->capture_default_str();
  flags.add_option("--data-dir", config.data_dir, "Store and index snapshots")
      ->capture_default_str();
  flags
      .add_option("--store", config.store,
                  "The stores' database: empty (default) = SQLite files in --data-dir; "
                  "postgresql://user@host:port/database = a PostgreSQL database that several "
                  "frs-server nodes share (docs/scaling.md). Give the password in ~/.pgpass or "
                  "PGPASSWORD, not here")
      ->check([](const std::string& url) -> std::string {
        if (url.empty() || frs::is_postgres_url(url)) return "";
        return "--store takes a postgresql:// URL (or nothing, for SQLite files in --data-dir)";
      });
  flags
      .add_option("--camera-capacity", config.camera_capacity,
                  "Cluster mode: cameras this node analyses at most; 0 = two per face engine "
                  "thread")
      ->check(CLI::Range(0, 10000))
      ->capture_default_str();
  flags
      .add_option("--camera-lease-ms", config.camera_lease_ms,
                  "Cluster mode: a camera lease not renewed for this long expires and another "
                  "node takes the camera, ms")
      ->check(CLI::Range(2000, 600000))
      ->capture_default_str();
  flags.add_option("--models", config.models_dir, "Model directory")->capture_default_str();
  flags
      .add_option("--descriptor", config.descriptor,
                  "Descriptor model of new watchlists (" + descriptor_model_ids() +
                      "; docs/accuracy.md compares them). The server describes faces with "
                      "every model, each watchlist with its own")
      ->check(CLI::IsMember(std::vector<std::string>(descriptor_models_list())))
      ->capture_default_str();
  flags
      .add_option("--detector", config.detector,
                  "Face detector of stills and live video: blazeface, rfb or hog "
                  "(docs/accuracy.md compares them)")
      ->check(CLI::IsMember(frs::detector_names()))
      ->capture_default_str();
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
  flags
      .add_option("--new-audit-log", config.new_audit_log,
                  "REASON: start a new, empty audit log although the other stores hold history "
                  "(the log was lost and cannot be restored). Without it frs-server refuses to "
                  "start over an empty log then. The new log's first row records REASON; only "
                  "for an empty log")
      ->check([](const std::string& reason) -> std::string {
        if (reason.size() < 4 || reason.size() > 200) {
          return "--new-audit-log takes a reason of 4..200 characters (a ticket, who, why)";
        }
        return "";
      });
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
      .add_option("--refused-rate-limit", config.access.refused_calls_per_second,
                  "Calls refused for their token (none, unknown, revoked, expired) per peer "
                  "address per second, on average (0 = no limit); over it: RESOURCE_EXHAUSTED "
                  "with retry-after-ms. Callers with a valid token are never counted")
      ->check(CLI::Range(0.0, 100000.0))
      ->capture_default_str();
  flags
      .add_option("--refused-rate-burst", config.access.refused_burst,
                  "Refused calls one address may make at once above --refused-rate-limit")
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
  flags
      .add_option("--confirmations", config.confirmations,
                  "Different people (token names) who must confirm an alert before it is "
                  "confirmed; one rejection rejects it")
      ->check(CLI::Range(1, 3))
      ->capture_default_str();
  flags
      .add_option("--max-distance-ceiling", config.max_distance_ceilings,
                  "Loosest max_distance any watchlist or search may use: VALUE for the "
                  "--descriptor model, MODEL=VALUE for any (repeatable); a model not given "
                  "(or 0) gets its built-in calibration for 1,000 identities at FPIR 0.01 plus "
                  "0.05 (dlib-resnet-v1 0.546, faceplugin-v1 1.154, fused-v1 0.733)")
      ->take_all();
  flags
      .add_option("--suppression-margin", config.suppression_margin,
                  "A face is not alerted or returned as an identity when a face rejected as "
                  "that identity lies at most (1 + this) times as far from it as the "
                  "identity does")
      ->check(CLI::Range(0.0f, 1.0f))
      ->capture_default_str();
  // Removed, not reinterpreted: a configuration that set a radius is told what replaced it
  // rather than given another meaning silently.
  flags
      .add_option_function<std::string>(
          "--suppression-distance",
          [](const std::string&) {
            throw CLI::ValidationError(
                "--suppression-distance",
                "removed: a rejection now holds by rule (a face as near a rejected face as "
                "to the identity is not that identity), set by --suppression-margin (default "
                "0.1); delete the option");
          },
          "Removed: see --suppression-margin")
      ->group("");
  flags
      .add_option("--exigent-max-hours", config.exigent_max_hours,
                  "Longest an exigent authorisation may run")
      ->check(CLI::Range(1, 720))
      ->capture_default_str();
  flags
      .add_option("--search-authorization", config.search_authorization,
                  "Which still-image searches need an authorisation in force: never, "
                  "live-only (watchlists created --live-only) or always")
      ->check(CLI::IsMember({"never", "live-only", "always"}))
      ->capture_default_str();
  flags
      .add_option("--alert-retention-days", config.alert_retention_days,
                  "Alerts (with their face crops and the suppressions learnt from them) older "
                  "than this are purged")
      ->check(CLI::Range(1, 36500))
      ->capture_default_str();
  flags
      .add_option("--confirmed-alert-retention-days", config.confirmed_alert_retention_days,
                  "Confirmed alerts are kept this long instead (at least --alert-retention-days)")
      ->check(CLI::Range(1, 36500))
      ->capture_default_str();
  flags
      .add_option("--audit-retention-days", config.audit_retention_days,
                  "Audit rows older than this are purged (the chain stays verifiable)")
      ->check(CLI::Range(1, 36500))
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
    // A key that is a list or a map ("? {a: 1}") is no option name.
    if (!entry.first.IsScalar()) {
      throw frs::Error(frs::ErrorCode::kInvalidArgument,
                       "config '" + path + "': line " +
                           std::to_string(entry.first.Mark().line + 1) +
                           ": a key must be an option name (keys are the long options of "
                           "frs-server --help)");
    }
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
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw frs::Error(frs::ErrorCode::kInvalidArgument,
                     "cannot read config '" + path + "': " + e.what());
  }
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

}  // namespace frs::server
