#pragma once
// frs-server's options: the flags, and the YAML config file that gives the same keys (and
// the `cameras:` list). Apart from main() so that the config loader can be fuzzed.

#include <CLI/CLI.hpp>
#include <map>
#include <string>
#include <vector>

#include "frs/gallery/enrollment.h"
#include "frs/service/services.h"

namespace frs::server {

struct ServerConfig {
  std::string listen = "127.0.0.1:50051";  // host:port; loopback unless told otherwise
  std::string data_dir = "frs-data";       // store and index snapshots
  // Where the stores live: "" = SQLite files in data_dir (one machine); a PostgreSQL URL
  // ("postgresql://user@host:port/database") = the database several nodes share.
  std::string store;
  // Cluster mode: cameras this node analyses at most (0 = two per face engine thread, the
  // measured real-time load of 640x360 streams; docs/scaling.md), and how long a camera
  // lease lasts unrenewed, ms (2000..600000): a dead node's cameras move after about that.
  int camera_capacity = 0;
  int camera_lease_ms = 5000;
  std::string models_dir = frs::default_models_dir().string();
  // Descriptor model of watchlists created without one (CreateWatchlist descriptor_model).
  std::string descriptor = std::string(frs::kDefaultDescriptorId);
  frs::FaceIndexOptions index;  // FAISS type and search settings (face_index.h)
  int threads = 0;              // face engine threads; 0 = one per core
  int max_message_mb = 64;      // largest request, MiB (1..1024)
  int max_decoded_mb = 384;     // memory one image may take to decode, MiB (1..16384)
  // Face detector of stills and live video: blazeface (default), rfb or hog (docs/accuracy.md).
  std::string detector = "blazeface";
  int max_detector_views = 128;  // detector views per image (1..4096)
  int max_images_at_once = 0;    // images analysed at once by all calls; 0 = 2 per thread
  int image_wait_ms = 2000;      // how long a call waits for that, ms (0..60000)
  frs::service::AlertStreamLimits alert_streams;  // StreamAlerts: open streams, write timeout
  std::int64_t alert_write_timeout_ms = 10000;    // ... as a flag (100..3600000)
  std::string metrics_listen = "127.0.0.1:9464";  // Prometheus /metrics; "" = off
  bool metrics_public = false;                    // allow a non-loopback --metrics-listen
  std::string admin_token_file;                   // the admin token's secret, supplied (automation)
  // Why an empty audit log may begin over stores that hold history ("" = it may not: the
  // server refuses to start, since the log before was lost). 4..200 characters.
  std::string new_audit_log;
  std::string tls_cert, tls_key;           // PEM files: TLS on the gRPC listener
  std::string tls_client_ca;               // PEM file: also require client certificates it signed
  bool insecure = false;                   // allow plain text on a non-loopback --listen
  frs::service::AccessLimits access;       // calls per token per second
  frs::CameraSourcePolicy camera_sources;  // --media-dir, --camera-hosts
  float default_max_distance = 0;          // of watchlists created without one; 0 = calibrated
  double default_target_fpir = kDefaultTargetFpir;  // ... at this false-alert rate
  std::int64_t default_expected_identities = kDefaultExpectedIdentities;  // ... for this size
  std::string identity_score = "centroid";  // nearest or centroid (gallery.h)
  frs::DecisionOptions decisions;           // live video: when a track alerts
  frs::EnrollmentRules enrollment;          // the enrollment gate (enrollment.h)
  std::vector<frs::CameraConfig> cameras;   // from the config file's `cameras:` list
  // Oversight (docs/operations.md "Oversight"):
  int confirmations = 2;  // different people who confirm an alert (1..3)
  // Loosest threshold anyone may set: "VALUE" (the --descriptor model's) or "MODEL=VALUE";
  // models not given (or 0) are calibrated (max_distance_ceilings()).
  std::vector<std::string> max_distance_ceilings;
  float suppression_margin = 0.1f;  // a rejection holds within (1 + this) x the identity's distance (0..1)
  int exigent_max_hours = 48;                      // longest exigent authorisation (1..720)
  std::string search_authorization = "live-only";  // never, live-only or always
  int alert_retention_days = 30;             // alerts, their crops and suppressions (1..36500)
  int confirmed_alert_retention_days = 365;  // confirmed alerts (>= alert_retention_days)
  int audit_retention_days = 2557;           // audit rows: 7 years (1..36500)
};

void define_flags(CLI::App& flags, ServerConfig& config, std::string& config_file);

// Every descriptor model's ceiling from --max-distance-ceiling and the calibrated defaults.
// Throws Error(kInvalidArgument) for an entry that does not parse, an unknown model, a
// value outside 0..4, or a model given twice.
std::map<std::string, float, std::less<>> max_distance_ceilings(const ServerConfig& config);

// The YAML file's keys are the long flag names without "--"; each becomes "--key value"
// placed before the command line's own arguments, so flags override the file and both go
// through the same checks. Throws Error(kInvalidArgument) naming the bad key.
std::vector<std::string> config_file_arguments(const std::string& path, const CLI::App& flags);

// The config file's `cameras:` list: each entry has `name` and `url`, optionally
// `watchlists` (a list), `fps`, `rtsp-transport`, `rtsp-latency-ms` and `region`
// ([x, y, width, height]).
std::vector<frs::CameraConfig> config_file_cameras(const std::string& path);

}  // namespace frs::server
