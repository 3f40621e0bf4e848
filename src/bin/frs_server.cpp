// frs-server: the gRPC server. Holds the face engine and the gallery (SQLite store + FAISS
// indexes) and serves the Gallery and Search APIs, the standard health service and server
// reflection.
//
//   frs-server [--config FILE] [--listen ADDR] [--data-dir DIR] [--models DIR]

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <thread>

#include "frs/core/error.h"
#include "frs/service/services.h"

namespace {

struct ServerConfig {
  std::string listen = "127.0.0.1:50051";  // host:port; loopback unless told otherwise
  std::string data_dir = "frs-data";       // store and index snapshots
  std::string models_dir = frs::default_models_dir().string();
  std::string index_type = "Flat";    // FAISS factory string
  int threads = 0;                    // face engine threads; 0 = one per core
  int max_message_mb = 64;            // largest request, MiB (1..1024)
  float default_max_distance = 0.5f;  // of watchlists created without one
};

// Reads the YAML file; keys are the long flag names with '-' (see docs/operations.md).
void read_config(const std::string& path, ServerConfig& c) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw frs::Error(frs::ErrorCode::kInvalidArgument,
                     "cannot read config '" + path + "': " + e.what());
  }
  const std::set<std::string> known = {"listen",
                                       "data-dir",
                                       "models",
                                       "index-type",
                                       "threads",
                                       "max-message-mb",
                                       "default-max-distance"};
  for (const auto& entry : root) {
    const auto key = entry.first.as<std::string>();
    if (!known.count(key)) {
      throw frs::Error(frs::ErrorCode::kInvalidArgument,
                       "config '" + path + "': unknown key '" + key + "'");
    }
  }
  try {
    if (root["listen"]) c.listen = root["listen"].as<std::string>();
    if (root["data-dir"]) c.data_dir = root["data-dir"].as<std::string>();
    if (root["models"]) c.models_dir = root["models"].as<std::string>();
    if (root["index-type"]) c.index_type = root["index-type"].as<std::string>();
    if (root["threads"]) c.threads = root["threads"].as<int>();
    if (root["max-message-mb"]) c.max_message_mb = root["max-message-mb"].as<int>();
    if (root["default-max-distance"])
      c.default_max_distance = root["default-max-distance"].as<float>();
  } catch (const YAML::Exception& e) {
    throw frs::Error(frs::ErrorCode::kInvalidArgument,
                     "config '" + path + "': wrong value type: " + e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  // The config file is read first, so that flags given as well override its values.
  ServerConfig config;
  std::string config_file;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) config_file = argv[i + 1];
    if (arg.rfind("--config=", 0) == 0) config_file = arg.substr(9);
  }
  try {
    if (!config_file.empty()) read_config(config_file, config);
  } catch (const std::exception& e) {
    std::cerr << "frs-server: " << e.what() << "\n";
    return 2;
  }
  CLI::App flags{"frs-server: face recognition server (gRPC)"};
  flags.add_option("--config", config_file, "YAML config file (keys as the long options)")
      ->check(CLI::ExistingFile);
  flags.add_option("--listen", config.listen, "Address to serve on, host:port")
      ->capture_default_str();
  flags.add_option("--data-dir", config.data_dir, "Store and index snapshots")
      ->capture_default_str();
  flags.add_option("--models", config.models_dir, "Model directory")->capture_default_str();
  flags
      .add_option("--index-type", config.index_type,
                  "FAISS factory string: Flat, HNSW32, IVF4096,PQ32x8")
      ->capture_default_str();
  flags.add_option("--threads", config.threads, "Face engine threads (0 = one per core)")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  flags.add_option("--max-message-mb", config.max_message_mb, "Largest request in MiB")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  flags
      .add_option("--default-max-distance", config.default_max_distance,
                  "max_distance of new watchlists that do not set one")
      ->check(CLI::Range(0.01f, 4.0f))
      ->capture_default_str();
  CLI11_PARSE(flags, argc, argv);

  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_ERROR);
  // SIGINT/SIGTERM are taken by a thread that starts the graceful shutdown.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  try {
    std::filesystem::create_directories(config.data_dir);
    frs::FaceEngineOptions engine_options;
    engine_options.models_dir = config.models_dir;
    engine_options.threads = config.threads;
    engine_options.limits.max_bytes = static_cast<std::size_t>(config.max_message_mb) << 20;
    const frs::FaceEngine engine(engine_options);

    frs::GalleryOptions gallery_options;
    gallery_options.snapshot_dir = std::filesystem::path(config.data_dir) / "index";
    gallery_options.index.factory = config.index_type;
    frs::FaceIndex validate_index_type(gallery_options.index);  // fails now, not at first use
    frs::Gallery gallery(
        frs::open_sqlite_store(std::filesystem::path(config.data_dir) / "gallery.db"),
        gallery_options);
    for (const auto& [id, how] : gallery.load_report()) {
      spdlog::info("watchlist {} index: {} ({} faces)", id, how, gallery.indexed_faces(id));
    }

    frs::service::ServiceOptions service_options;
    service_options.default_max_distance = config.default_max_distance;
    auto gallery_service = frs::service::make_gallery_service(gallery, engine, service_options);
    auto search_service = frs::service::make_search_service(gallery, engine, service_options);

    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(config.listen, grpc::InsecureServerCredentials(), &port);
    builder.SetMaxReceiveMessageSize(config.max_message_mb << 20);
    builder.RegisterService(gallery_service.get());
    builder.RegisterService(search_service.get());
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    if (!server || port == 0) {
      spdlog::error("cannot listen on {}: is the address valid and the port free?", config.listen);
      return 1;
    }
    spdlog::info("frs-server listening on {} (port {}), data in {}", config.listen, port,
                 config.data_dir);

    std::thread signal_waiter([&] {
      int signal = 0;
      sigwait(&signals, &signal);
      spdlog::info("signal {}: finishing calls in flight, then stopping", signal);
      server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
    });
    server->Wait();
    signal_waiter.join();
    gallery.save_snapshots();
    spdlog::info("index snapshots saved; stopped");
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  return 0;
}
