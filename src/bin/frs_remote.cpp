// The `frs` subcommands that talk to frs-server over gRPC: watchlist, enroll, identity,
// search. Server address: --server, else $FRS_SERVER, else 127.0.0.1:50051.

#include "frs_remote.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "frs/v1/gallery.grpc.pb.h"
#include "frs/v1/live.grpc.pb.h"
#include "progress.h"

namespace frs::cli {
namespace {

namespace pb = ::frs::v1;
using nlohmann::json;

struct RemoteOptions {
  std::string server;
  bool json_output = false;
};

class RemoteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string default_server() {
  const char* env = std::getenv("FRS_SERVER");
  return env && *env ? env : "127.0.0.1:50051";
}

std::shared_ptr<grpc::Channel> connect(const RemoteOptions& o) {
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(64 << 20);
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(o.server, grpc::InsecureChannelCredentials(), args);
}

void check(const grpc::Status& status, const RemoteOptions& o) {
  if (status.ok()) return;
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    throw RemoteError("cannot reach frs-server at " + o.server +
                      ": start it, or point --server / FRS_SERVER at it (" +
                      status.error_message() + ")");
  }
  throw RemoteError(status.error_message());
}

// The refused photos' outcomes of an Enroll/AddFaces that failed because of them, from the
// status details (see frs.v1.ErrorStatus); empty for other failures.
std::vector<pb::PhotoOutcome> refused_photos(const grpc::Status& status) {
  std::vector<pb::PhotoOutcome> refused;
  pb::ErrorStatus details;
  if (status.error_details().empty() || !details.ParseFromString(status.error_details())) {
    return refused;
  }
  for (const auto& any : details.details()) {
    pb::EnrollResponse outcomes;
    if (!any.UnpackTo(&outcomes)) continue;
    for (const auto& photo : outcomes.photos()) {
      if (!photo.accepted()) refused.push_back(photo);
    }
  }
  return refused;
}

std::unique_ptr<grpc::ClientContext> context(int seconds = 120) {
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

double rounded(double v) {
  return std::round(v * 10000) / 10000;
}

json basis_json(const pb::ThresholdBasis& b) {
  json j = {{"method", b.method()}, {"set_at_ms", b.set_at_ms()}};
  if (b.method() == "calibrated") {
    j["target_fpir"] = b.target_fpir();
    j["gallery_size"] = b.gallery_size();
    j["per_comparison_fmr"] = b.per_comparison_fmr();
    j["impostor_comparisons"] = b.impostor_comparisons();
    j["extrapolated"] = b.extrapolated();
    j["data"] = b.data();
  }
  return j;
}

// The threshold's basis in a sentence an operator (or an auditor) can act on.
std::string basis_text(const pb::Watchlist& w) {
  const pb::ThresholdBasis& b = w.threshold_basis();
  char when[32] = "";
  const std::time_t t = static_cast<std::time_t>(b.set_at_ms() / 1000);
  std::strftime(when, sizeof when, "%Y-%m-%d", std::gmtime(&t));
  if (b.method() == "default") {
    return std::string(
               "the fixed default the server was configured with (--default-max-distance; "
               "not calibrated), since ") +
           when;
  }
  if (b.method() == "manual") return std::string("set by hand on ") + when + " (not calibrated)";
  if (b.method() == "calibrated") {
    char text[512];
    std::snprintf(text, sizeof text,
                  "calibrated on %s from %s: expected false-alert rate %.3g for %lld "
                  "identities (each comparison may falsely match with probability %.3g; %s %lld "
                  "comparisons of different people)%s",
                  when, b.data().c_str(), b.target_fpir(), static_cast<long long>(b.gallery_size()),
                  b.per_comparison_fmr(), b.extrapolated() ? "extrapolated from" : "read off",
                  static_cast<long long>(b.impostor_comparisons()),
                  w.identity_count() > b.gallery_size()
                      ? "; the watchlist has grown past that size: recalibrate"
                      : "");
    return text;
  }
  return "not recorded (set before frs recorded it)";
}

json watchlist_json(const pb::Watchlist& w) {
  return {{"id", w.id()},
          {"name", w.name()},
          {"description", w.description()},
          {"max_distance", rounded(w.max_distance())},
          {"identities", w.identity_count()},
          {"faces", w.face_count()},
          {"indexed_faces", w.indexed_face_count()},
          {"created_by", w.created_by()},
          {"created_at_ms", w.created_at_ms()},
          {"threshold_basis",
           w.has_threshold_basis() ? basis_json(w.threshold_basis()) : json(nullptr)}};
}

json identity_json(const pb::Identity& i) {
  return {{"identity_id", i.id()},    {"external_id", i.external_id()},
          {"name", i.display_name()}, {"watchlist", i.watchlist()},
          {"faces", i.face_count()},  {"created_at_ms", i.created_at_ms()}};
}

// Calls `visit` for every identity of a watchlist, page by page.
void for_each_identity(pb::Gallery::Stub& stub, const RemoteOptions& o,
                       const std::string& watchlist,
                       const std::function<void(const pb::Identity&)>& visit) {
  std::string token;
  do {
    pb::ListIdentitiesRequest request;
    request.set_watchlist(watchlist);
    request.set_page_size(1000);
    request.set_page_token(token);
    pb::ListIdentitiesResponse response;
    check(stub.ListIdentities(context().get(), request, &response), o);
    for (const auto& i : response.identities()) visit(i);
    token = response.next_page_token();
  } while (!token.empty());
}

// Bulk enrollment of a folder tree, one sub-folder per identity.
struct BulkReport {
  std::atomic<int> done{0}, enrolled{0}, skipped{0}, rejected{0};
  std::mutex mutex;
  std::vector<std::pair<std::string, std::string>> rejections;  // photo, reason
};

bool is_image(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".webp";
}

void enroll_folder(pb::Gallery::Stub& stub, const RemoteOptions& o, const std::string& watchlist,
                   const std::string& person, const std::vector<std::filesystem::path>& photos,
                   std::optional<std::int64_t> identity_id, BulkReport& report) {
  auto reject = [&](const std::filesystem::path& p, const std::string& why) {
    ++report.rejected;
    std::lock_guard lock(report.mutex);
    report.rejections.emplace_back(p.string(), why);
  };
  for (const auto& photo : photos) {
    pb::Photo* p = nullptr;
    pb::EnrollResponse response;
    grpc::Status status;
    std::string bytes;
    try {
      bytes = read_bytes(photo.string());
    } catch (const std::exception& e) {
      reject(photo, e.what());
      ++report.done;
      continue;
    }
    if (!identity_id) {
      pb::EnrollRequest request;
      request.set_watchlist(watchlist);
      request.set_external_id(person);
      request.set_display_name(person);
      p = request.add_photos();
      p->set_image(std::move(bytes));
      p->set_source(photo.string());
      status = stub.Enroll(context().get(), request, &response);
    } else {
      pb::AddFacesRequest request;
      request.set_identity_id(*identity_id);
      p = request.add_photos();
      p->set_image(std::move(bytes));
      p->set_source(photo.string());
      status = stub.AddFaces(context().get(), request, &response);
    }
    ++report.done;
    if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      reject(photo, status.error_message());
      continue;
    }
    check(status, o);
    identity_id = response.identity().id();
    if (response.photos_size() > 0 && response.photos(0).skipped()) {
      ++report.skipped;
    } else {
      ++report.enrolled;
    }
  }
}

int bulk_enroll(const RemoteOptions& o, const std::string& watchlist, const std::string& dir,
                int workers) {
  auto channel = connect(o);
  auto stub = pb::Gallery::NewStub(channel);
  // Identities already enrolled, so a re-run adds to them (the server skips photos it has).
  std::map<std::string, std::int64_t> existing;
  for_each_identity(*stub, o, watchlist,
                    [&](const pb::Identity& i) { existing[i.external_id()] = i.id(); });

  std::vector<std::pair<std::string, std::vector<std::filesystem::path>>> people;
  std::size_t total = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (!entry.is_directory()) continue;
    std::vector<std::filesystem::path> photos;
    for (const auto& f : std::filesystem::directory_iterator(entry.path())) {
      if (f.is_regular_file() && is_image(f.path())) photos.push_back(f.path());
    }
    std::sort(photos.begin(), photos.end());
    total += photos.size();
    if (!photos.empty()) people.emplace_back(entry.path().filename().string(), std::move(photos));
  }
  if (ec) throw RemoteError("cannot read folder '" + dir + "': " + ec.message());
  if (people.empty()) {
    throw RemoteError("'" + dir +
                      "' has no sub-folders with photos: use one sub-folder per person");
  }
  std::sort(people.begin(), people.end());

  BulkReport report;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::string failure;
  std::mutex failure_mutex;
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int w = 0; w < workers; ++w) {
    pool.emplace_back([&] {
      for (std::size_t i = next++; i < people.size() && !failed; i = next++) {
        try {
          const auto it = existing.find(people[i].first);
          enroll_folder(*stub, o, watchlist, people[i].first, people[i].second,
                        it == existing.end() ? std::nullopt : std::optional(it->second), report);
        } catch (const std::exception& e) {
          std::lock_guard lock(failure_mutex);
          failure = e.what();
          failed = true;
        }
      }
    });
  }
  while (report.done < static_cast<int>(total) && !failed) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    print_progress(static_cast<std::size_t>(report.done.load()), total,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                   "photos");
  }
  for (auto& t : pool) t.join();
  std::fprintf(stderr, "\n");

  // Also when the run stopped (the server went away): what was done, and how to go on.
  const std::string resume =
      failed ? "stopped after " + std::to_string(report.done.load()) + " of " +
                   std::to_string(total) + " photos: " + failure +
                   "; run the same command again to resume (photos already enrolled are "
                   "skipped)"
             : "";
  if (o.json_output) {
    json rejected = json::array();
    for (const auto& [photo, why] : report.rejections)
      rejected.push_back({{"photo", photo}, {"reason", why}});
    json out = {{"photos", total},
                {"enrolled", report.enrolled.load()},
                {"skipped", report.skipped.load()},
                {"rejected", rejected},
                {"complete", !failed}};
    if (failed) out["error"] = resume;
    std::cout << out.dump() << "\n";
  } else {
    std::cout << "enrolled " << report.enrolled << ", already enrolled " << report.skipped
              << ", rejected " << report.rejected << " of " << total << " photos"
              << (failed ? " (incomplete)" : "") << "\n";
    for (const auto& [photo, why] : report.rejections)
      std::cout << "  rejected " << photo << ": " << why << "\n";
  }
  if (failed) {
    std::cout.flush();
    std::cerr << "frs: " << resume << "\n";
    return 1;
  }
  return 0;
}

json camera_json(const pb::Camera& c) {
  return {{"name", c.spec().name()},
          {"url", c.spec().url()},
          {"watchlists", c.spec().watchlists()},
          {"analyse_fps", c.spec().analyse_fps()},
          {"region", c.spec().has_region() ? json{{"x", c.spec().region().x()},
                                                  {"y", c.spec().region().y()},
                                                  {"width", c.spec().region().width()},
                                                  {"height", c.spec().region().height()}}
                                           : json(nullptr)},
          {"rtsp_transport", c.spec().rtsp_transport()},
          {"state", c.state()},
          {"last_error", c.last_error()},
          {"reconnects", c.reconnects()},
          {"frames_in", c.frames_in()},
          {"frames_analysed", c.frames_analysed()},
          {"frames_dropped", c.frames_dropped()},
          {"faces", c.faces()},
          {"tracks", c.tracks()},
          {"alerts", c.alerts()},
          {"last_frame_at_ms", c.last_frame_at_ms()}};
}

json alert_json(const pb::Alert& a) {
  json j = {{"id", a.id()},
            {"camera", a.camera()},
            {"captured_at", a.captured_at_ms()},
            {"detected_at", a.detected_at_ms()},
            {"track_id", a.track_id()},
            {"identity_id", a.identity_id()},
            {"name", a.display_name()},
            {"external_id", a.external_id()},
            {"watchlist", a.watchlist()},
            {"distance", rounded(a.distance())},
            {"runner_up_distance", nullptr},
            {"review", a.review()}};
  if (a.has_runner_up_distance()) j["runner_up_distance"] = rounded(a.runner_up_distance());
  return j;
}

// "2026-11-22 04:50:01.123" in local time, for people reading alerts as they come.
std::string local_time(std::int64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm parts{};
  localtime_r(&seconds, &parts);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &parts);
  char millis[8];
  std::snprintf(millis, sizeof millis, ".%03d", static_cast<int>(unix_ms % 1000));
  return std::string(text) + millis;
}

void print_alert(const pb::Alert& a, bool as_json) {
  if (as_json) {
    std::cout << alert_json(a).dump() << std::endl;
    return;
  }
  std::cout << "#" << a.id() << " " << local_time(a.captured_at_ms()) << " " << a.camera() << ": "
            << a.display_name() << " (" << a.external_id() << ", " << a.watchlist() << ") distance "
            << rounded(a.distance());
  if (a.has_runner_up_distance()) std::cout << ", runner-up " << rounded(a.runner_up_distance());
  std::cout << ", " << a.review() << std::endl;
}

}  // namespace

void add_remote_commands(CLI::App& app, std::function<int()>& action) {
  static RemoteOptions o;
  o.server = default_server();
  auto common = [&](CLI::App* cmd) {
    cmd->add_option("--server", o.server, "frs-server address (env FRS_SERVER)")
        ->capture_default_str();
    cmd->add_flag("--json", o.json_output, "JSON output");
  };
  auto run = [&action](std::function<int()> f) { action = std::move(f); };

  // watchlist
  CLI::App* watchlist =
      app.add_subcommand("watchlist", "Create, list, show, update and delete watchlists");
  watchlist->require_subcommand(1);
  static std::string name, description;
  static float max_distance = 0;
  static std::int64_t expected_identities = 0;
  CLI::App* create = watchlist->add_subcommand("create", "Create a watchlist");
  create->add_option("name", name, "Watchlist name")->required();
  create
      ->add_option("--max-distance", max_distance,
                   "Match threshold (distance, lower = stricter; default: calibrated by the "
                   "server for --expected-identities)")
      ->check(CLI::Range(0.01f, 4.0f));
  create
      ->add_option("--expected-identities", expected_identities,
                   "How many identities the watchlist will hold (default: the server's, 1000); "
                   "a larger watchlist gets a stricter threshold")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1000000000}));
  create->add_option("--description", description, "Free text");
  common(create);
  create->callback([run] {
    run([] {
      auto stub = pb::Gallery::NewStub(connect(o));
      pb::CreateWatchlistRequest request;
      request.set_name(name);
      request.set_description(description);
      request.set_max_distance(max_distance);
      request.set_expected_identities(expected_identities);
      pb::Watchlist response;
      check(stub->CreateWatchlist(context().get(), request, &response), o);
      if (o.json_output) {
        std::cout << watchlist_json(response).dump() << "\n";
      } else {
        std::cout << "created watchlist " << response.name() << " (max distance "
                  << response.max_distance() << ": " << basis_text(response) << ")\n";
      }
      return 0;
    });
  });
  CLI::App* list = watchlist->add_subcommand("list", "List watchlists");
  common(list);
  list->callback([run] {
    run([] {
      auto stub = pb::Gallery::NewStub(connect(o));
      pb::ListWatchlistsResponse response;
      check(stub->ListWatchlists(context().get(), pb::ListWatchlistsRequest(), &response), o);
      for (const auto& w : response.watchlists()) {
        if (o.json_output) {
          std::cout << watchlist_json(w).dump() << "\n";
        } else {
          std::cout << w.name() << "  identities " << w.identity_count() << "  faces "
                    << w.face_count() << "  max distance " << w.max_distance() << "\n";
        }
      }
      return 0;
    });
  });
  CLI::App* show = watchlist->add_subcommand("show", "Show one watchlist");
  show->add_option("name", name, "Watchlist name")->required();
  common(show);
  show->callback([run] {
    run([] {
      auto stub = pb::Gallery::NewStub(connect(o));
      pb::GetWatchlistRequest request;
      request.set_name(name);
      pb::Watchlist response;
      check(stub->GetWatchlist(context().get(), request, &response), o);
      if (o.json_output) {
        std::cout << watchlist_json(response).dump() << "\n";
        return 0;
      }
      std::cout << "name          " << response.name() << "\n"
                << "description   " << response.description() << "\n"
                << "max distance  " << response.max_distance()
                << " (a match needs distance <= this; lower = stricter)\n"
                << "  chosen      " << basis_text(response) << "\n"
                << "identities    " << response.identity_count() << "\n"
                << "faces         " << response.face_count() << " stored, "
                << response.indexed_face_count() << " in the search index\n"
                << "created by    " << response.created_by() << "\n";
      return 0;
    });
  });
  CLI::App* update = watchlist->add_subcommand("update", "Change a watchlist's threshold");
  update->add_option("name", name, "Watchlist name")->required();
  update
      ->add_option("--max-distance", max_distance,
                   "New match threshold (distance, lower = stricter)")
      ->check(CLI::Range(0.01f, 4.0f))
      ->required();
  common(update);
  update->callback([run] {
    run([] {
      auto stub = pb::Gallery::NewStub(connect(o));
      pb::UpdateWatchlistThresholdRequest request;
      request.set_name(name);
      request.set_max_distance(max_distance);
      pb::Watchlist response;
      check(stub->UpdateWatchlistThreshold(context().get(), request, &response), o);
      if (o.json_output) {
        std::cout << watchlist_json(response).dump() << "\n";
      } else {
        std::cout << "watchlist " << response.name() << ": max distance now "
                  << response.max_distance() << "\n";
      }
      return 0;
    });
  });
  CLI::App* remove = watchlist->add_subcommand("delete", "Delete a watchlist and all it holds");
  remove->add_option("name", name, "Watchlist name")->required();
  common(remove);
  remove->callback([run] {
    run([] {
      auto stub = pb::Gallery::NewStub(connect(o));
      pb::DeleteWatchlistRequest request;
      request.set_name(name);
      pb::DeleteWatchlistResponse response;
      check(stub->DeleteWatchlist(context().get(), request, &response), o);
      if (!o.json_output) std::cout << "deleted watchlist " << name << "\n";
      return 0;
    });
  });

  // enroll
  static std::string enroll_watchlist, display_name, external_id, folder;
  static std::vector<std::string> photos;
  static int workers = 4;
  static std::string override_reason;
  CLI::App* enroll = app.add_subcommand("enroll", "Enroll a person's photos, or a folder tree");
  enroll->add_option("--watchlist", enroll_watchlist, "Watchlist")->required();
  enroll->add_option("--name", display_name, "Display name");
  enroll->add_option("--external-id", external_id, "e.g. booking number (default: the name)");
  enroll->add_option("--dir", folder, "Folder with one sub-folder of photos per person");
  enroll->add_option("--parallel", workers, "Uploads at once (--dir)")->check(CLI::Range(1, 32));
  enroll->add_option("photos", photos, "Photos of one person");
  enroll->add_option("--force", override_reason,
                     "Enroll these photos even if the quality gate refuses them (too small, "
                     "blurred, turned, eyes covered), for this reason (stored and logged)");
  common(enroll);
  enroll->callback([run] {
    run([] {
      if (!folder.empty() && !override_reason.empty()) {
        throw RemoteError(
            "--force applies to one person's photos, not a folder tree: enroll the refused "
            "person on their own with --name, the photos and --force");
      }
      if (!folder.empty()) return bulk_enroll(o, enroll_watchlist, folder, workers);
      if (photos.empty() || display_name.empty()) {
        throw RemoteError("give --name and photos, or --dir FOLDER");
      }
      auto stub = pb::Gallery::NewStub(connect(o));
      pb::EnrollRequest request;
      request.set_watchlist(enroll_watchlist);
      request.set_display_name(display_name);
      request.set_external_id(external_id.empty() ? display_name : external_id);
      for (const auto& path : photos) {
        auto* p = request.add_photos();
        p->set_image(read_bytes(path));
        p->set_source(path);
        p->set_override_reason(override_reason);
      }
      pb::EnrollResponse response;
      const grpc::Status status = stub->Enroll(context().get(), request, &response);
      const auto refused = refused_photos(status);
      if (!refused.empty()) {
        std::string photo_list;
        bool overridable = false;
        for (const auto& photo : refused) {
          photo_list += "\n  " + photo.source() + ": " + photo.reason();
          overridable = overridable || photo.overridable();
        }
        if (overridable) {
          photo_list +=
              "\n(a photo the quality gate refuses can be enrolled with --force REASON when it "
              "is the best there is)";
        }
        throw RemoteError("nothing enrolled: fix or leave out these photos:" + photo_list);
      }
      check(status, o);
      if (o.json_output) {
        json out = identity_json(response.identity());
        for (const auto& photo : response.photos()) {
          if (photo.overridden().empty()) continue;
          out["overridden"].push_back(
              {{"source", photo.source()}, {"refusal", photo.overridden()}});
        }
        std::cout << out.dump() << "\n";
      } else {
        std::cout << "enrolled " << response.identity().display_name() << " (identity "
                  << response.identity().id() << ", " << response.identity().face_count()
                  << " faces)\n";
        for (const auto& photo : response.photos()) {
          if (!photo.overridden().empty()) {
            std::cout << "  " << photo.source() << ": enrolled despite \"" << photo.overridden()
                      << "\" (--force, recorded with the face)\n";
          }
        }
      }
      return 0;
    });
  });

  // identity
  static std::int64_t identity_id = 0;
  CLI::App* identity = app.add_subcommand("identity", "List and remove identities");
  identity->require_subcommand(1);
  CLI::App* ilist = identity->add_subcommand("list", "List the identities of a watchlist");
  ilist->add_option("--watchlist", enroll_watchlist, "Watchlist")->required();
  common(ilist);
  ilist->callback([run] {
    run([] {
      auto stub = pb::Gallery::NewStub(connect(o));
      for_each_identity(*stub, o, enroll_watchlist, [](const pb::Identity& i) {
        if (o.json_output) {
          std::cout << identity_json(i).dump() << "\n";
        } else {
          std::cout << i.id() << "  " << i.external_id() << "  " << i.display_name() << "  "
                    << i.face_count() << " faces\n";
        }
      });
      return 0;
    });
  });
  CLI::App* iremove = identity->add_subcommand("remove", "Remove an identity and its faces");
  iremove->add_option("id", identity_id, "Identity id")->required();
  common(iremove);
  iremove->callback([run] {
    run([] {
      auto stub = pb::Gallery::NewStub(connect(o));
      pb::RemoveIdentityRequest request;
      request.set_id(identity_id);
      pb::RemoveIdentityResponse response;
      check(stub->RemoveIdentity(context().get(), request, &response), o);
      if (!o.json_output) std::cout << "removed identity " << identity_id << "\n";
      return 0;
    });
  });

  // search
  static std::vector<std::string> search_watchlists;
  static int top_k = 5;
  static float search_max_distance = 0;
  static std::vector<std::string> search_images;
  CLI::App* search = app.add_subcommand("search", "Search every face of each image");
  search->add_option("images", search_images, "Images")->required();
  search->add_option("--watchlist", search_watchlists, "Watchlist (repeatable; default all)");
  search->add_option("--top-k", top_k, "Candidates per face")->check(CLI::Range(1, 100));
  search
      ->add_option("--max-distance", search_max_distance,
                   "Stricter threshold than the watchlists' own")
      ->check(CLI::Range(0.01f, 4.0f));
  common(search);
  search->callback([run] {
    run([] {
      auto stub = pb::Search::NewStub(connect(o));
      int status = 0;
      for (const auto& path : search_images) {
        pb::SearchRequest request;
        pb::SearchResponse response;
        grpc::Status rpc;
        try {
          request.set_image(read_bytes(path));
          for (const auto& w : search_watchlists) request.add_watchlists(w);
          request.set_top_k(top_k);
          request.set_max_distance(search_max_distance);
          rpc = stub->Search(context().get(), request, &response);
          if (rpc.error_code() == grpc::StatusCode::UNAVAILABLE) check(rpc, o);
        } catch (const RemoteError& e) {
          if (std::string(e.what()).rfind("cannot reach", 0) == 0) throw;
          rpc = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e.what());
        }
        if (!rpc.ok()) {
          status = 1;
          if (o.json_output)
            std::cout << json{{"image", path}, {"error", rpc.error_message()}}.dump() << "\n";
          std::cerr << "frs: " << path << ": " << rpc.error_message() << "\n";
          continue;
        }
        json line = {{"image", path}, {"faces", json::array()}};
        for (const auto& f : response.faces()) {
          json face = {{"box", box_json(f.box())}, {"candidates", json::array()}};
          for (const auto& c : f.candidates()) {
            face["candidates"].push_back({{"identity_id", c.identity_id()},
                                          {"external_id", c.external_id()},
                                          {"name", c.display_name()},
                                          {"watchlist", c.watchlist()},
                                          {"distance", rounded(c.distance())}});
          }
          line["faces"].push_back(face);
        }
        if (o.json_output) {
          std::cout << line.dump() << "\n";
        } else {
          std::cout << path << ": " << response.faces_size() << " faces\n";
          for (const auto& f : line["faces"]) {
            std::cout << "  face at " << f["box"]["x"] << "," << f["box"]["y"] << ": ";
            if (f["candidates"].empty()) std::cout << "no match";
            for (const auto& c : f["candidates"]) {
              std::cout << c["name"].get<std::string>() << " (" << c["watchlist"].get<std::string>()
                        << ", " << c["distance"] << ")  ";
            }
            std::cout << "\n";
          }
        }
      }
      return status;
    });
  });
  // camera
  static std::string camera_name, camera_url;
  static std::vector<std::string> camera_watchlists;
  static double camera_fps = 0;
  static std::vector<int> camera_region;
  static std::string camera_transport;
  static int camera_latency_ms = 0;
  CLI::App* camera = app.add_subcommand("camera", "Add, list and remove cameras");
  camera->require_subcommand(1);
  CLI::App* cadd = camera->add_subcommand("add", "Add a camera (kept across restarts)");
  cadd->add_option("name", camera_name, "Camera name")->required();
  cadd->add_option("url", camera_url, "rtsp://..., http(s)://..., or a video file on the server")
      ->required();
  cadd->add_option("--watchlist", camera_watchlists,
                   "Watchlist to check (repeatable; default all)");
  cadd->add_option("--fps", camera_fps, "Frames analysed per second (default 5)")
      ->check(CLI::Range(0.1, 60.0));
  cadd->add_option("--region", camera_region,
                   "Only faces centred in this rectangle: X,Y,WIDTH,HEIGHT in pixels")
      ->delimiter(',')
      ->expected(4);
  cadd->add_option("--transport", camera_transport, "RTSP transport: tcp (default), udp or auto")
      ->check(CLI::IsMember({"tcp", "udp", "auto"}));
  cadd->add_option("--latency", camera_latency_ms, "RTSP jitter buffer, ms (default 200)")
      ->check(CLI::Range(1, 10000));
  common(cadd);
  cadd->callback([run] {
    run([] {
      auto stub = pb::Cameras::NewStub(connect(o));
      pb::AddCameraRequest request;
      request.mutable_spec()->set_name(camera_name);
      request.mutable_spec()->set_url(camera_url);
      for (const auto& w : camera_watchlists) request.mutable_spec()->add_watchlists(w);
      request.mutable_spec()->set_analyse_fps(camera_fps);
      if (camera_region.size() == 4 && (camera_region[2] <= 0 || camera_region[3] <= 0)) {
        throw RemoteError("--region needs a positive width and height: X,Y,WIDTH,HEIGHT");
      }
      if (camera_region.size() == 4) {
        pb::Box* region = request.mutable_spec()->mutable_region();
        region->set_x(camera_region[0]);
        region->set_y(camera_region[1]);
        region->set_width(camera_region[2]);
        region->set_height(camera_region[3]);
      }
      request.mutable_spec()->set_rtsp_transport(camera_transport);
      request.mutable_spec()->set_rtsp_latency_ms(camera_latency_ms);
      pb::Camera response;
      check(stub->AddCamera(context().get(), request, &response), o);
      if (o.json_output) {
        std::cout << camera_json(response).dump() << "\n";
      } else {
        std::cout << "added camera " << camera_name << " (" << response.state() << ")\n";
      }
      return 0;
    });
  });
  CLI::App* clist = camera->add_subcommand("list", "List cameras with their state and counters");
  common(clist);
  clist->callback([run] {
    run([] {
      auto stub = pb::Cameras::NewStub(connect(o));
      pb::ListCamerasResponse response;
      check(stub->ListCameras(context().get(), pb::ListCamerasRequest(), &response), o);
      for (const auto& c : response.cameras()) {
        if (o.json_output) {
          std::cout << camera_json(c).dump() << "\n";
          continue;
        }
        std::cout << c.spec().name() << "  " << c.state() << "  " << c.spec().url() << "  frames "
                  << c.frames_in() << " in, " << c.frames_analysed() << " analysed, "
                  << c.frames_dropped() << " dropped  faces " << c.faces() << "  tracks "
                  << c.tracks() << "  alerts " << c.alerts() << "  reconnects " << c.reconnects()
                  << "\n";
        if (!c.last_error().empty()) std::cout << "  last error: " << c.last_error() << "\n";
      }
      return 0;
    });
  });
  CLI::App* cremove = camera->add_subcommand("remove", "Stop and forget a camera");
  cremove->add_option("name", camera_name, "Camera name")->required();
  common(cremove);
  cremove->callback([run] {
    run([] {
      auto stub = pb::Cameras::NewStub(connect(o));
      pb::RemoveCameraRequest request;
      request.set_name(camera_name);
      pb::RemoveCameraResponse response;
      check(stub->RemoveCamera(context().get(), request, &response), o);
      if (!o.json_output) std::cout << "removed camera " << camera_name << "\n";
      return 0;
    });
  });

  // alerts
  static bool follow = false, confirm = false, reject = false;
  static std::int64_t after_id = 0, alert_id = 0;
  static std::vector<std::string> alert_cameras, alert_watchlists;
  static std::string review_note;
  CLI::App* alerts = app.add_subcommand("alerts", "Print alerts (--follow: as they happen)");
  alerts->require_subcommand(0, 1);
  alerts->add_flag("--follow", follow, "Keep printing new alerts until interrupted");
  alerts->add_option("--after", after_id, "Only alerts with a larger id (resume from here)");
  alerts->add_option("--camera", alert_cameras, "Only this camera (repeatable)");
  alerts->add_option("--watchlist", alert_watchlists, "Only this watchlist (repeatable)");
  common(alerts);
  alerts->callback([run, alerts] {
    if (!alerts->get_subcommands().empty()) return;  // `alerts review`
    run([] {
      auto channel = connect(o);
      auto stub = pb::Alerts::NewStub(channel);
      pb::AlertFilter filter;
      for (const auto& c : alert_cameras) filter.add_cameras(c);
      for (const auto& w : alert_watchlists) filter.add_watchlists(w);
      if (!follow) {
        for (std::int64_t after = after_id;;) {
          pb::ListAlertsRequest request;
          *request.mutable_filter() = filter;
          request.set_after_id(after);
          request.set_page_size(1000);
          pb::ListAlertsResponse response;
          check(stub->ListAlerts(context().get(), request, &response), o);
          for (const auto& a : response.alerts()) print_alert(a, o.json_output);
          if (response.next_after_id() == 0) return 0;
          after = response.next_after_id();
        }
      }
      // Follow: stream; after a cut or falling behind, resume from the last id seen.
      std::int64_t last = after_id;
      while (true) {
        grpc::ClientContext streaming;
        pb::StreamAlertsRequest request;
        *request.mutable_filter() = filter;
        request.set_after_id(last);
        auto reader = stub->StreamAlerts(&streaming, request);
        pb::Alert alert;
        while (reader->Read(&alert)) {
          print_alert(alert, o.json_output);
          last = alert.id();
        }
        const grpc::Status status = reader->Finish();
        if (status.error_code() != grpc::StatusCode::ABORTED &&
            status.error_code() != grpc::StatusCode::UNAVAILABLE) {
          check(status, o);
          return 0;
        }
        std::cerr << "frs alerts: " << status.error_message() << "; resuming after #" << last
                  << "\n";
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
    });
  });
  CLI::App* review = alerts->add_subcommand("review", "Confirm or reject an alert");
  review->add_option("id", alert_id, "Alert id")->required();
  auto* confirm_flag = review->add_flag("--confirm", confirm, "It is that person");
  auto* reject_flag = review->add_flag("--reject", reject, "It is not that person");
  confirm_flag->excludes(reject_flag);
  review->add_option("--note", review_note, "Why (kept with the alert)");
  common(review);
  review->callback([run] {
    run([] {
      if (confirm == reject) throw RemoteError("say --confirm or --reject");
      auto stub = pb::Alerts::NewStub(connect(o));
      pb::ReviewAlertRequest request;
      request.set_id(alert_id);
      request.set_confirm(confirm);
      request.set_note(review_note);
      const char* user = std::getenv("USER");
      request.set_reviewer(user ? user : "");
      pb::Alert response;
      check(stub->ReviewAlert(context().get(), request, &response), o);
      print_alert(response, o.json_output);
      return 0;
    });
  });
}

int apply_calibration(const std::string& server, const std::string& watchlist,
                      const Calibration& calibration, const std::string& data, bool json_output) {
  RemoteOptions o;
  o.server = server.empty() ? default_server() : server;
  o.json_output = json_output;
  try {
    auto stub = pb::Gallery::NewStub(connect(o));
    pb::UpdateWatchlistThresholdRequest request;
    request.set_name(watchlist);
    request.set_max_distance(calibration.max_distance);
    pb::ThresholdBasis* basis = request.mutable_basis();
    basis->set_method("calibrated");
    basis->set_target_fpir(calibration.target_fpir);
    basis->set_gallery_size(static_cast<std::int64_t>(calibration.gallery_size));
    basis->set_per_comparison_fmr(calibration.per_comparison_fmr);
    basis->set_impostor_comparisons(static_cast<std::int64_t>(calibration.impostor_comparisons));
    basis->set_extrapolated(calibration.extrapolated);
    basis->set_data(data);
    pb::Watchlist response;
    check(stub->UpdateWatchlistThreshold(context().get(), request, &response), o);
    if (!json_output) {
      std::cout << "watchlist " << response.name() << ": max distance now "
                << response.max_distance() << ", " << basis_text(response) << "\n";
    }
    return 0;
  } catch (const RemoteError& e) {
    std::cerr << "frs: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace frs::cli
