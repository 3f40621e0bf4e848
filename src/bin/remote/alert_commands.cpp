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
#include "remote_common.h"

namespace frs::cli {
namespace {

RemoteOptions& o = remote_options();
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

void add_alert_commands(CLI::App& app, Action& action) {
  auto run = [&action](std::function<int()> f) { action = std::move(f); };
  // alerts
  static bool follow = false, confirm = false, reject = false;
  static std::int64_t after_id = 0, alert_id = 0;
  static std::vector<std::string> alert_cameras, alert_watchlists;
  static std::string review_note;
  CLI::App* alerts = app.add_subcommand("alerts", "Print alerts (--follow: as they happen)");
  alerts->require_subcommand(0, 1);
  alerts->add_flag("--follow", follow, "Keep printing new alerts until interrupted");
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
