// One group of `frs` commands that talk to frs-server (see remote_common.h).

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <iostream>

#include "../frs_remote.h"
#include "../progress.h"
#include "frs/core/time_text.h"
#include "frs/vision/descriptor_model.h"
#include "remote_common.h"

namespace frs::cli {
namespace {

json basis_json(const pb::ThresholdBasis& b) {
  json j = {{"method", b.method()}, {"set_at_ms", b.set_at_ms()}};
  if (b.method() == "calibrated") {
    j["target_fpir"] = b.target_fpir();
    j["gallery_size"] = b.gallery_size();
    j["per_comparison_fmr"] = b.per_comparison_fmr();
    j["impostor_comparisons"] = b.impostor_comparisons();
    j["extrapolated"] = b.extrapolated();
    j["data"] = b.data();
    j["groups"] = std::vector<std::string>(b.groups().begin(), b.groups().end());
    j["bound_by_group"] = b.bound_by_group();
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
                  "expected false-alert rate %.3g for %lld identities (each comparison may "
                  "falsely match with probability %.3g; %s %lld comparisons of different "
                  "people)",
                  b.target_fpir(), static_cast<long long>(b.gallery_size()), b.per_comparison_fmr(),
                  b.extrapolated() ? "extrapolated from" : "read off",
                  static_cast<long long>(b.impostor_comparisons()));
    std::string out = std::string("calibrated on ") + when + " from " + b.data() + ": " + text;
    if (b.groups().empty()) {
      out += "; not checked per group: the rate holds on average, not for every group";
    } else {
      out += "; held for each of " + std::to_string(b.groups_size()) + " groups (";
      for (int i = 0; i < b.groups_size(); ++i) out += (i ? ", " : "") + b.groups(i);
      out += b.bound_by_group().empty() ? "), the pooled comparisons set it"
                                        : "), " + b.bound_by_group() + " sets it";
    }
    if (w.identity_count() > b.gallery_size()) {
      out += "; the watchlist has grown past that size: recalibrate";
    }
    return out;
  }
  return "not recorded (set before frs recorded it)";
}

json authorization_json(const pb::Authorization& a) {
  return {{"id", a.id()},
          {"watchlist", a.watchlist()},
          {"basis", a.basis()},
          {"reference", a.reference()},
          {"issued_by", a.issued_by()},
          {"valid_from", format_utc_time(a.valid_from_ms())},
          {"valid_until", format_utc_time(a.valid_until_ms())},
          {"recorded_by", a.recorded_by()},
          {"recorded_at", format_utc_time(a.recorded_at_ms())},
          {"in_force", a.in_force()}};
}

std::string authorization_line(const pb::Authorization& a) {
  return "#" + std::to_string(a.id()) + " " + a.basis() + " " + a.reference() +
         (a.issued_by().empty() ? "" : " issued by " + a.issued_by()) + ", " +
         format_utc_time(a.valid_from_ms()) + " .. " + format_utc_time(a.valid_until_ms()) +
         ", recorded by " + a.recorded_by() + (a.in_force() ? " (in force)" : "");
}

json watchlist_json(const pb::Watchlist& w) {
  json authorizations = json::array();
  for (const auto& a : w.authorizations()) authorizations.push_back(authorization_json(a));
  return {
      {"id", w.id()},
      {"live_only", w.live_only()},
      {"authorized", w.authorized()},
      {"authorization_status", w.authorization_status()},
      {"authorizations", authorizations},
      {"effective_max_distance", rounded(w.effective_max_distance())},
      {"name", w.name()},
      {"description", w.description()},
      {"max_distance", rounded(w.max_distance())},
      {"identities", w.identity_count()},
      {"faces", w.face_count()},
      {"indexed_faces", w.indexed_face_count()},
      {"created_by", w.created_by()},
      {"created_at_ms", w.created_at_ms()},
      {"descriptor_model", w.descriptor_model()},
      {"reembedding", w.has_reembedding() ? json{{"target_model", w.reembedding().target_model()},
                                                 {"done", w.reembedding().done()},
                                                 {"total", w.reembedding().total()},
                                                 {"started_by", w.reembedding().started_by()},
                                                 {"started_at_ms", w.reembedding().started_at_ms()}}
                                          : json(nullptr)},
      {"threshold_basis",
       w.has_threshold_basis() ? basis_json(w.threshold_basis()) : json(nullptr)}};
}

}  // namespace

void add_watchlist_commands(CLI::App& app, Action& action) {
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
  static std::string descriptor;
  create->add_option("--descriptor", descriptor,
                     "Descriptor model of its faces (" + descriptor_model_ids() +
                         "; default: the server's --descriptor)");
  static bool live_only = false;
  create->add_flag("--live-only", live_only,
                   "Kept for live matching: still-image searches of it need an authorisation "
                   "in force too");
  create->callback([run] {
    run([] {
      auto stub = pb::Gallery::NewStub(connect(o));
      pb::CreateWatchlistRequest request;
      request.set_name(name);
      request.set_description(description);
      request.set_max_distance(max_distance);
      request.set_expected_identities(expected_identities);
      request.set_live_only(live_only);
      request.set_descriptor_model(descriptor);
      pb::Watchlist response;
      check(stub->CreateWatchlist(context().get(), request, &response), o);
      if (o.json_output) {
        std::cout << watchlist_json(response).dump() << "\n";
      } else {
        std::cout << "created watchlist " << response.name() << " (" << response.descriptor_model()
                  << " descriptors; max distance " << response.max_distance() << ": "
                  << basis_text(response) << ")\n";
      }
      return 0;
    });
  });
  CLI::App* list = watchlist->add_subcommand("list", "List watchlists");
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
                    << w.face_count() << "  max distance " << w.max_distance() << "  "
                    << w.descriptor_model() << "\n";
        }
      }
      return 0;
    });
  });
  CLI::App* show = watchlist->add_subcommand("show", "Show one watchlist");
  show->add_option("name", name, "Watchlist name")->required();
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
                << "descriptor    " << response.descriptor_model()
                << " (its faces' model: thresholds and the ceiling are on its scale)\n"
                << (response.has_reembedding()
                        ? "re-embedding  to " + response.reembedding().target_model() + ": " +
                              std::to_string(response.reembedding().done()) + "/" +
                              std::to_string(response.reembedding().total()) + " faces, begun by " +
                              response.reembedding().started_by() + " " +
                              format_utc_time(response.reembedding().started_at_ms()) +
                              " (frs watchlist reembed resumes it)\n"
                        : std::string())
                << "identities    " << response.identity_count() << "\n"
                << "faces         " << response.face_count() << " stored, "
                << response.indexed_face_count() << " in the search index\n"
                << "created by    " << response.created_by() << "\n"
                << "live-only     " << (response.live_only() ? "yes" : "no") << "\n"
                << "matching      " << response.authorization_status() << "\n";
      if (response.effective_max_distance() < response.max_distance()) {
        std::cout << "  capped      matched at " << response.effective_max_distance()
                  << ", the server's --max-distance-ceiling\n";
      }
      for (const auto& a : response.authorizations()) {
        std::cout << "authorisation " << authorization_line(a) << "\n";
      }
      return 0;
    });
  });
  static std::string live_only_setting;
  CLI::App* update =
      watchlist->add_subcommand("update", "Change a watchlist's threshold or live-only setting");
  update->add_option("name", name, "Watchlist name")->required();
  update
      ->add_option("--max-distance", max_distance,
                   "New match threshold (distance, lower = stricter)")
      ->check(CLI::Range(0.01f, 4.0f));
  update
      ->add_option("--live-only", live_only_setting,
                   "on: still-image searches of it need an authorisation in force too; off: not")
      ->check(CLI::IsMember({"on", "off"}));
  update->callback([run] {
    run([] {
      if (max_distance == 0 && live_only_setting.empty()) {
        throw RemoteError("say what to change: --max-distance D and/or --live-only on|off");
      }
      auto stub = pb::Gallery::NewStub(connect(o));
      pb::Watchlist response;
      if (max_distance != 0) {
        pb::UpdateWatchlistThresholdRequest request;
        request.set_name(name);
        request.set_max_distance(max_distance);
        check(stub->UpdateWatchlistThreshold(context().get(), request, &response), o);
      }
      if (!live_only_setting.empty()) {
        pb::SetWatchlistLiveOnlyRequest request;
        request.set_name(name);
        request.set_live_only(live_only_setting == "on");
        check(stub->SetWatchlistLiveOnly(context().get(), request, &response), o);
      }
      if (o.json_output) {
        std::cout << watchlist_json(response).dump() << "\n";
      } else {
        std::cout << "watchlist " << response.name() << ": max distance now "
                  << response.max_distance() << ", live-only "
                  << (response.live_only() ? "yes" : "no") << "\n";
      }
      return 0;
    });
  });
  static std::string basis, reference, issued_by, valid_from, valid_until;
  CLI::App* authorize = watchlist->add_subcommand(
      "authorize", "Record the legal basis for matching against a watchlist");
  authorize->add_option("name", name, "Watchlist name")->required();
  authorize->add_option("--basis", basis, "warrant, court-order, exigent, consent or policy")
      ->required()
      ->check(CLI::IsMember({"warrant", "court-order", "exigent", "consent", "policy"}));
  authorize->add_option("--reference", reference, "e.g. the warrant number")->required();
  authorize
      ->add_option("--until", valid_until,
                   "Last moment it is in force: a date (the end of that day, UTC) or an "
                   "ISO 8601 date-time such as 2026-12-01T18:30:00Z")
      ->required();
  authorize->add_option("--from", valid_from, "When it starts (default: now); as --until");
  authorize->add_option("--issued-by", issued_by, "Who issued it, e.g. the court");
  authorize->callback([run] {
    run([] {
      pb::AuthorizeWatchlistRequest request;
      request.set_watchlist(name);
      request.set_basis(basis);
      request.set_reference(reference);
      request.set_issued_by(issued_by);
      try {
        request.set_valid_until_ms(parse_utc_time(valid_until, DateMeans::kEndOfDay, "--until"));
        if (!valid_from.empty()) {
          request.set_valid_from_ms(parse_utc_time(valid_from, DateMeans::kStartOfDay, "--from"));
        }
      } catch (const std::exception& e) {
        throw RemoteError(e.what());
      }
      auto stub = pb::Gallery::NewStub(connect(o));
      pb::Authorization response;
      check(stub->AuthorizeWatchlist(context().get(), request, &response), o);
      if (o.json_output) {
        std::cout << authorization_json(response).dump() << "\n";
      } else {
        std::cout << "watchlist " << name << ": authorisation " << authorization_line(response)
                  << "\n";
      }
      return 0;
    });
  });
  CLI::App* reembed = watchlist->add_subcommand(
      "reembed",
      "Move a watchlist to another descriptor model without its original photos (resumable)");
  reembed->add_option("name", name, "Watchlist name")->required();
  static std::string target;
  reembed
      ->add_option("--descriptor", target, "The model to move to (" + descriptor_model_ids() + ")")
      ->required();
  static float reembed_max_distance = 0;
  reembed
      ->add_option("--max-distance", reembed_max_distance,
                   "Threshold after the move (default: recalibrated for the new model, or a "
                   "threshold set by hand kept)")
      ->check(CLI::Range(0.01f, 4.0f));
  reembed->callback([run] {
    run([] {
      auto stub = pb::Gallery::NewStub(connect(o));
      pb::ReembedWatchlistRequest request;
      request.set_name(name);
      request.set_descriptor_model(target);
      request.set_max_distance(reembed_max_distance);
      const auto call = context(7 * 24 * 3600);  // as long as the watchlist takes
      auto reader = stub->ReembedWatchlist(call.get(), request);
      const auto start = std::chrono::steady_clock::now();
      pb::ReembedProgress progress, last;
      while (reader->Read(&progress)) {
        last = progress;
        if (!o.json_output) {
          print_progress(
              static_cast<std::size_t>(progress.done()), static_cast<std::size_t>(progress.total()),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
              "faces");
        }
      }
      if (!o.json_output) std::cerr << "\n";
      check(reader->Finish(), o);
      json need = json::array();
      for (const auto& n : last.need_original()) {
        need.push_back({{"face_id", n.face_id()},
                        {"identity_id", n.identity_id()},
                        {"external_id", n.external_id()},
                        {"reason", n.reason()}});
      }
      if (o.json_output) {
        json out = {{"switched", last.has_watchlist()},
                    {"faces", last.total()},
                    {"from_region", last.from_region()},
                    {"from_thumbnail", last.from_thumbnail()},
                    {"need_original", need},
                    {"suppressions_carried", last.suppressions_carried()},
                    {"suppressions_lost", last.suppressions_lost()},
                    {"threshold_note", last.threshold_note()}};
        if (last.has_watchlist()) out["watchlist"] = watchlist_json(last.watchlist());
        std::cout << out.dump() << "\n";
      } else if (last.has_watchlist()) {
        std::cout << "watchlist " << name << " is now " << last.watchlist().descriptor_model()
                  << ": " << last.total() << " faces (" << last.from_region()
                  << " described now from the kept face region, " << last.from_thumbnail()
                  << " from the thumbnail, lower quality; the rest before a resume)\n"
                  << "max distance " << last.watchlist().max_distance() << ": "
                  << last.threshold_note() << "\n";
        if (last.suppressions_carried() + last.suppressions_lost() > 0) {
          std::cout << "known non-matches (rejected alerts): " << last.suppressions_carried()
                    << " carried over from their face crops, " << last.suppressions_lost()
                    << " could not be (no face found in the crop)\n";
        }
      } else {
        std::cout << "watchlist " << name << " not moved: " << last.need_original_size()
                  << " faces need their original photo (remove them or enroll them again, "
                     "then run this again):\n";
        for (const auto& n : last.need_original()) {
          std::cout << "  face " << n.face_id() << " of " << n.external_id() << ": " << n.reason()
                    << "\n";
        }
      }
      return last.has_watchlist() ? 0 : 1;
    });
  });
  CLI::App* remove = watchlist->add_subcommand("delete", "Delete a watchlist and all it holds");
  remove->add_option("name", name, "Watchlist name")->required();
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
}

int apply_calibration(const std::string& server, const std::string& watchlist,
                      const Calibration& calibration, const std::string& data, bool json_output,
                      const CalibrationForEveryGroup* every_group) {
  if (!server.empty()) o.client.server = server;
  o.json_output = o.json_output || json_output;
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
    if (every_group != nullptr) {
      for (const GroupCalibration& g : every_group->groups) {
        if (g.calibration) basis->add_groups(g.group);
      }
      basis->set_bound_by_group(every_group->bound_by);
    }
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
