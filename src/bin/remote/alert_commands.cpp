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
#include "frs/core/clock.h"
#include "frs/core/time_text.h"
#include "remote_common.h"

namespace frs::cli {
namespace {

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
            {"review", a.review()},
            {"confirmations_needed", a.confirmations_needed()},
            {"reviews", json::array()}};
  if (a.has_runner_up_distance()) j["runner_up_distance"] = rounded(a.runner_up_distance());
  for (const auto& r : a.reviews()) {
    j["reviews"].push_back({{"reviewer", r.reviewer()},
                            {"decision", r.decision()},
                            {"note", r.note()},
                            {"at", format_utc_time(r.at_ms())}});
  }
  return j;
}

int confirmations_of(const pb::Alert& a) {
  int n = 0;
  for (const auto& r : a.reviews()) n += r.decision() == "confirmed" ? 1 : 0;
  return n;
}

// "3 h 12 min", "45 s": how long something has waited.
std::string waited(std::int64_t ms) {
  const std::int64_t s = std::max<std::int64_t>(0, ms / 1000);
  if (s < 120) return std::to_string(s) + " s";
  if (s < 7200) return std::to_string(s / 60) + " min";
  if (s < 2 * 86400) return std::to_string(s / 3600) + " h " + std::to_string(s / 60 % 60) + " min";
  return std::to_string(s / 86400) + " days";
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
  std::cout << ", " << a.review();
  if (a.review() == "pending" && a.confirmations_needed() > 0) {
    std::cout << " (" << confirmations_of(a) << " of " << a.confirmations_needed()
              << " confirmations, waiting " << waited(now_unix_ms() - a.detected_at_ms()) << ")";
  }
  std::cout << std::endl;
  for (const auto& r : a.reviews()) {
    std::cout << "    " << r.decision() << " by " << r.reviewer() << " at "
              << format_utc_time(r.at_ms()) << (r.note().empty() ? "" : ": " + r.note())
              << std::endl;
  }
}

}  // namespace

void add_alert_commands(CLI::App& app, Action& action) {
  auto run = [&action](std::function<int()> f) { action = std::move(f); };
  // alerts
  static bool follow = false, confirm = false, reject = false, pending_only = false;
  static std::int64_t after_id = 0, alert_id = 0;
  static std::vector<std::string> alert_cameras, alert_watchlists;
  static std::string review_note;
  CLI::App* alerts = app.add_subcommand("alerts", "Print alerts (--follow: as they happen)");
  alerts->require_subcommand(0, 1);
  auto* follow_flag =
      alerts->add_flag("--follow", follow, "Keep printing new alerts until interrupted");
  alerts
      ->add_flag("--pending", pending_only,
                 "Only alerts that wait for review, with their confirmations so far and how "
                 "long they have waited")
      ->excludes(follow_flag);
  alerts->add_option("--after", after_id, "Only alerts with a larger id (resume from here)");
  add_repeatable(alerts, "--camera", alert_cameras, "Only this camera (repeatable)");
  add_repeatable(alerts, "--watchlist", alert_watchlists, "Only this watchlist (repeatable)");
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
          if (pending_only) request.set_review("pending");
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
  review->callback([run] {
    run([] {
      if (confirm == reject) throw RemoteError("say --confirm or --reject");
      auto stub = pb::Alerts::NewStub(connect(o));
      pb::ReviewAlertRequest request;
      request.set_id(alert_id);
      request.set_confirm(confirm);
      request.set_note(review_note);
      pb::Alert response;
      check(stub->ReviewAlert(context().get(), request, &response), o);
      print_alert(response, o.json_output);
      return 0;
    });
  });
}

}  // namespace frs::cli
