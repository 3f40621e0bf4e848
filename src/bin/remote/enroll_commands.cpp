// One group of `frs` commands that talk to frs-server (see remote_common.h).

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "../progress.h"
#include "frs/core/time_text.h"
#include "remote_common.h"

namespace frs::cli {
namespace {

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

json suppression_json(const pb::Suppression& x) {
  return {{"id", x.id()},
          {"identity_id", x.identity_id()},
          {"alert_id", x.alert_id()},
          {"created_by", x.created_by()},
          {"created_at", format_utc_time(x.created_at_ms())},
          {"expires_at", format_utc_time(x.expires_at_ms())},
          {"descriptor_model", x.descriptor_model()},
          {"note", x.note()}};
}

json identity_json(const pb::Identity& i) {
  json j = {{"identity_id", i.id()},       {"external_id", i.external_id()},
            {"name", i.display_name()},    {"watchlist", i.watchlist()},
            {"faces", i.face_count()},     {"created_at_ms", i.created_at_ms()},
            {"created_by", i.created_by()}};
  if (i.suppressions_size() > 0) {
    j["suppressions"] = json::array();
    for (const auto& x : i.suppressions()) j["suppressions"].push_back(suppression_json(x));
  }
  return j;
}

// Calls `visit` for every identity of a watchlist, page by page.
void for_each_identity(pb::Gallery::Stub& stub, RemoteOptions& o, const std::string& watchlist,
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

void enroll_folder(pb::Gallery::Stub& stub, RemoteOptions& o, const std::string& watchlist,
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

int bulk_enroll(RemoteOptions& o, const std::string& watchlist, const std::string& dir,
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

}  // namespace

void add_enroll_commands(CLI::App& app, Action& action) {
  auto run = [&action](std::function<int()> f) { action = std::move(f); };
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
  CLI::App* identity =
      app.add_subcommand("identity", "List, show and remove identities; lift suppressions");
  identity->require_subcommand(1);
  CLI::App* ilist = identity->add_subcommand("list", "List the identities of a watchlist");
  ilist->add_option("--watchlist", enroll_watchlist, "Watchlist")->required();
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
  CLI::App* ishow = identity->add_subcommand(
      "show", "Show an identity with its suppressions (known non-matches)");
  ishow->add_option("id", identity_id, "Identity id")->required();
  ishow->callback([run] {
    run([] {
      auto stub = pb::Gallery::NewStub(connect(o));
      pb::GetIdentityRequest request;
      request.set_id(identity_id);
      pb::Identity i;
      check(stub->GetIdentity(context().get(), request, &i), o);
      if (o.json_output) {
        std::cout << identity_json(i).dump() << "\n";
        return 0;
      }
      std::cout << "identity      " << i.id() << "\n"
                << "external id   " << i.external_id() << "\n"
                << "name          " << i.display_name() << "\n"
                << "watchlist     " << i.watchlist() << "\n"
                << "faces         " << i.face_count() << "\n"
                << "enrolled by   " << i.created_by() << " at "
                << format_utc_time(i.created_at_ms()) << "\n";
      if (i.suppressions_size() == 0) std::cout << "suppressions  none\n";
      for (const auto& x : i.suppressions()) {
        std::cout << "suppression   #" << x.id() << " from rejected alert #" << x.alert_id()
                  << " by " << x.created_by() << " at " << format_utc_time(x.created_at_ms())
                  << ", expires " << format_utc_time(x.expires_at_ms())
                  << (x.note().empty() ? "" : ": " + x.note()) << "\n";
      }
      return 0;
    });
  });
  static std::int64_t suppression_id = 0;
  static std::string lift_reason;
  CLI::App* ilift = identity->add_subcommand(
      "lift-suppression", "Lift a suppression: that face can match the identity again");
  ilift->add_option("id", suppression_id, "Suppression id (frs identity show)")->required();
  ilift->add_option("--reason", lift_reason, "Why (audited)")->required();
  ilift->callback([run] {
    run([] {
      auto stub = pb::Gallery::NewStub(connect(o));
      pb::LiftSuppressionRequest request;
      request.set_id(suppression_id);
      request.set_reason(lift_reason);
      pb::Suppression x;
      check(stub->LiftSuppression(context().get(), request, &x), o);
      if (o.json_output) {
        std::cout << suppression_json(x).dump() << "\n";
      } else {
        std::cout << "lifted suppression #" << x.id() << " of identity " << x.identity_id() << "\n";
      }
      return 0;
    });
  });
  CLI::App* iremove = identity->add_subcommand("remove", "Remove an identity and its faces");
  iremove->add_option("id", identity_id, "Identity id")->required();
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
}

}  // namespace frs::cli
