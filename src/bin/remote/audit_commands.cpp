// frs audit verify|list|report (auditor and admin tokens).

#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <iostream>

#include "frs/auth/audit_log.h"
#include "frs/core/time_text.h"
#include "frs/eval/plot.h"
#include "remote_common.h"

namespace frs::cli {
namespace {

json record_json(const pb::AuditRecord& r) {
  auto object = [](const std::string& text) {
    const json parsed = json::parse(text, nullptr, false);
    return parsed.is_discarded() ? json(text) : parsed;
  };
  return {{"seq", r.seq()},
          {"time", format_utc_time(r.time_ms())},
          {"token", r.token()},
          {"role", r.role()},
          {"peer", r.peer()},
          {"method", r.method()},
          {"purpose", r.purpose()},
          {"outcome", r.outcome()},
          {"outcome_message", r.outcome_message()},
          {"targets", object(r.targets_json())},
          {"details", object(r.details_json())},
          {"previous_hash", r.previous_hash()},
          {"hash", r.hash()}};
}

std::string counts_text(const google::protobuf::RepeatedPtrField<pb::CountByKey>& counts) {
  std::string text;
  for (const auto& c : counts) {
    text += (text.empty() ? "" : ", ") + c.key() + " " + std::to_string(c.count());
  }
  return text.empty() ? "none" : text;
}

std::string hours_text(double hours) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f h", hours);
  return text;
}

std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.0f s", seconds);
  return text;
}

// The per-group line of the last evaluation (its JSON is the EvaluateResponse's mapping),
// so that an auditor sees the differential without reading the JSON.
void print_group_differential(const std::string& evaluation_json) {
  const json e = json::parse(evaluation_json, nullptr, false);
  if (!e.is_object() || !e.contains("groups")) {
    std::cout << "  not measured per group (label the photos' groups to see the differential)\n";
    return;
  }
  std::cout << "  per group at max distance "
            << e.value("verification", json::object()).value("maxDistance", 0.0) << ": worst "
            << e.value("worstGroup", "") << ", best " << e.value("bestGroup", "");
  const double differential = e.value("fmrDifferential", 0.0);
  if (differential > 0) {
    std::cout << ", false-match differential " << differential << "x";
  } else {
    std::cout << ", false-match differential unknown (no false match in the best group)";
  }
  std::cout << "; the threshold states " << e.value("statedFmr", 0.0) << " per comparison\n";
}

void print_report(const pb::AccountabilityReport& r) {
  std::cout << "Accountability report " << format_utc_time(r.from_ms()) << " .. "
            << format_utc_time(r.to_ms()) << " (generated " << format_utc_time(r.generated_at_ms())
            << ")\n\n";
  std::cout << "Searches of still images: " << r.searches() << " (" << r.searches_refused()
            << " refused)\n"
            << "  by purpose:   " << counts_text(r.searches_by_purpose()) << "\n"
            << "  by watchlist: " << counts_text(r.searches_by_watchlist()) << "\n"
            << "  by token:     " << counts_text(r.searches_by_token()) << "\n\n";
  std::cout << "Live matching (camera x watchlist):\n";
  if (r.live_matching_size() == 0) std::cout << "  none\n";
  for (const auto& m : r.live_matching()) {
    std::string basis;
    for (const auto& a : m.authorizations()) basis += (basis.empty() ? "" : "; ") + a;
    std::cout << "  " << m.camera() << " x " << m.watchlist() << ": " << hours_text(m.hours())
              << " in " << m.sessions() << " session(s), on " << (basis.empty() ? "?" : basis)
              << "\n";
  }
  std::cout << "\nAuthorisations in force during the period: "
            << counts_text(r.authorizations_by_basis()) << "\n";
  for (const auto& a : r.authorizations()) {
    std::cout << "  " << (a.basis() == "exigent" ? "EXIGENT " : "") << a.watchlist() << ": "
              << a.basis() << " " << a.reference()
              << (a.issued_by().empty() ? "" : " issued by " + a.issued_by()) << ", "
              << format_utc_time(a.valid_from_ms()) << " .. " << format_utc_time(a.valid_until_ms())
              << " (" << hours_text(a.hours()) << "), recorded by " << a.recorded_by() << "\n";
  }
  std::cout << "\nAlerts raised: " << r.alerts_raised() << ": confirmed " << r.alerts_confirmed()
            << ", rejected " << r.alerts_rejected() << ", still pending " << r.alerts_pending()
            << " (confirmation needs " << r.confirmations_needed() << " people)\n"
            << "  time to review: median " << seconds_text(r.review_delay_median_s()) << ", p95 "
            << seconds_text(r.review_delay_p95_s()) << " (" << r.review_delays_s_size()
            << " decided)\n";
  if (r.alerts_purged() > 0) {
    std::cout << "  purged by retention during the period: " << r.alerts_purged() << "\n";
  }
  std::cout << "Suppressions (known non-matches): made " << r.suppressions_made() << ", lifted "
            << r.suppressions_lifted() << "\n\n";
  std::cout << "Enrollments: " << r.enrollments() << " (" << r.faces_enrolled() << " faces), "
            << r.gate_overrides_size() << " enrollment-gate override(s)\n";
  for (const auto& g : r.gate_overrides()) {
    std::cout << "  " << format_utc_time(g.time_ms()) << " " << g.token() << ", watchlist "
              << g.watchlist_id() << ": " << g.gate_override() << "\n";
  }
  std::cout << "\nDescriptor models: " << r.descriptor_model() << "\n";
  std::cout << "Thresholds:\n";
  for (const auto& t : r.thresholds()) {
    std::cout << "  " << t.watchlist() << " (" << t.descriptor_model() << ", ceiling "
              << t.max_distance_ceiling() << "): max distance " << t.max_distance();
    if (t.effective_max_distance() < t.max_distance()) {
      std::cout << " (matched at " << t.effective_max_distance() << ")";
    }
    std::cout << ", " << (t.method().empty() ? "not recorded" : t.method())
              << (t.data().empty() ? "" : " on " + t.data()) << ", " << t.identities()
              << " identities" << (t.live_only() ? ", live-only" : "") << "\n";
    if (t.method() == "calibrated") {
      if (t.groups().empty()) {
        std::cout << "    not checked per group: its rate holds on average, not for every group\n";
      } else {
        std::cout << "    held for each of " << t.groups_size() << " groups (";
        for (int i = 0; i < t.groups_size(); ++i) std::cout << (i ? ", " : "") << t.groups(i);
        std::cout << "), set by "
                  << (t.bound_by_group().empty() ? "the pooled comparisons" : t.bound_by_group())
                  << "\n";
      }
    }
  }
  if (r.last_evaluation_json().empty()) {
    std::cout << "Last evaluation on this server: none recorded (the Evaluate RPC records one)\n";
  } else {
    std::cout << "Last evaluation on this server (" << format_utc_time(r.last_evaluation_at_ms())
              << "): " << r.last_evaluation_json() << "\n";
    print_group_differential(r.last_evaluation_json());
  }
}

}  // namespace

void add_audit_commands(CLI::App& app, Action& action) {
  auto run = [&action](std::function<int()> f) { action = std::move(f); };
  CLI::App* audit = app.add_subcommand("audit", "Verify and read the audit log (auditor, admin)");
  audit->require_subcommand(1);

  static std::string expect, offline_db;
  CLI::App* verify = audit->add_subcommand(
      "verify", "Check the whole hash chain; exit 1 naming the first broken row");
  verify->add_option("--expect", expect,
                     "A head kept earlier, SEQ:HASH (from an earlier verify or the server log): "
                     "the log must still hold that row unchanged");
  verify
      ->add_option("--db", offline_db,
                   "Check this copy of DATA_DIR/audit.db here, without the server (a backup, "
                   "or the file of a stopped server), or a cluster's postgresql:// database")
      ->check([](const std::string& where) -> std::string {
        if (is_postgres_url(where) || std::filesystem::is_regular_file(where)) return "";
        return "--db: no such file '" + where + "' (give an audit.db file or a postgresql:// URL)";
      });
  verify->callback([run] {
    run([] {
      pb::VerifyAuditLogRequest request;
      if (!expect.empty()) {
        const auto colon = expect.find(':');
        std::int64_t seq = 0;
        try {
          seq = colon == std::string::npos ? 0 : std::stoll(expect.substr(0, colon));
        } catch (const std::exception&) {
        }
        if (seq < 1 || expect.size() - colon - 1 != 64) {
          throw RemoteError("--expect takes SEQ:HASH, e.g. 1042:9f86d08...(64 hex digits)");
        }
        request.set_expected_seq(seq);
        request.set_expected_hash(expect.substr(colon + 1));
      }
      pb::VerifyAuditLogResponse response;
      if (!offline_db.empty()) {
        std::optional<AuditHead> kept;
        if (request.expected_seq() > 0) {
          kept = AuditHead{request.expected_seq(), request.expected_hash()};
        }
        // Read-only: a check never changes what it checks, nor makes a log where none was.
        const AuditVerification v =
            open_audit_log(StoreLocation::parse(offline_db), OpenMode::kReadOnly)->verify(kept);
        response.set_intact(v.intact);
        response.set_rows_checked(v.rows_checked);
        response.set_first_broken_seq(v.first_broken_seq);
        response.set_problem(v.problem);
        response.set_head_seq(v.head.seq);
        response.set_head_hash(v.head.hash);
        response.set_purged_through(v.purged_through);
        response.set_begins_ms(v.begins_ms);
        // Without the other stores, only a loss row 1 records can be told.
        bool recorded = false;
        response.set_history_gap(audit_history_gap(v, -1, recorded));
        response.set_history_gap_recorded(recorded);
      } else {
        auto stub = pb::Audit::NewStub(connect(o));
        check(stub->VerifyAuditLog(context(3600).get(), request, &response), o);
      }
      if (o.json_output) {
        std::cout << json{{"intact", response.intact()},
                          {"rows_checked", response.rows_checked()},
                          {"first_broken_seq", response.first_broken_seq()},
                          {"problem", response.problem()},
                          {"purged_through", response.purged_through()},
                          {"begins_ms", response.begins_ms()},
                          {"history_gap", response.history_gap()},
                          {"history_gap_recorded", response.history_gap_recorded()},
                          {"head",
                           std::to_string(response.head_seq()) + ":" + response.head_hash()}}
                         .dump()
                  << "\n";
      } else if (response.intact()) {
        if (!response.history_gap().empty()) {
          std::cout << (response.history_gap_recorded() ? "note: " : "INCOMPLETE: ")
                    << response.history_gap() << "\n";
        }
        if (response.purged_through() > 0) {
          std::cout << "rows 1.." << response.purged_through()
                    << " were purged by retention (a purge record in the chain says so)\n";
        }
        std::cout << "audit log intact: " << response.rows_checked() << " rows; head "
                  << response.head_seq() << ":" << response.head_hash()
                  << " (keep it elsewhere; later: frs audit verify --expect " << response.head_seq()
                  << ":" << response.head_hash() << ")\n";
      } else {
        std::cout << "audit log BROKEN at row " << response.first_broken_seq() << ": "
                  << response.problem() << " (" << response.rows_checked()
                  << " rows before it are intact)\n";
      }
      // A log missing its start, with nothing in it saying why, proves nothing about it.
      const bool unexplained_gap =
          !response.history_gap().empty() && !response.history_gap_recorded();
      return response.intact() && !unexplained_gap ? 0 : 1;
    });
  });

  static std::string report_from, report_to, plot_dir;
  CLI::App* report = audit->add_subcommand(
      "report",
      "The accountability report of a period: searches, live matching, "
      "authorisations, alerts and reviews, suppressions, enrollments, thresholds");
  report->add_option("--from", report_from, "First day (UTC) or date-time")->required();
  report->add_option("--to", report_to, "Last day (its end, UTC) or date-time")->required();
  report->add_option("--plot", plot_dir,
                     "Also draw alerts per day by outcome and the review delay into this folder "
                     "(gnuplot)");
  report->callback([run] {
    run([] {
      pb::ReportRequest request;
      try {
        request.set_from_ms(parse_utc_time(report_from, DateMeans::kStartOfDay, "--from"));
        request.set_to_ms(parse_utc_time(report_to, DateMeans::kEndOfDay, "--to"));
      } catch (const std::exception& e) {
        throw RemoteError(e.what());
      }
      auto stub = pb::Audit::NewStub(connect(o));
      pb::AccountabilityReport response;
      check(stub->Report(context(600).get(), request, &response), o);
      if (o.json_output) {
        google::protobuf::util::JsonPrintOptions options;
        options.always_print_primitive_fields = true;
        options.preserve_proto_field_names = true;
        std::string text;
        (void)google::protobuf::util::MessageToJsonString(response, &text, options);
        std::cout << text << "\n";
      } else {
        print_report(response);
      }
      if (!plot_dir.empty()) {
        std::vector<AlertDayCounts> days;
        for (const auto& d : response.alerts_per_day()) {
          days.push_back({d.day(), d.confirmed(), d.rejected(), d.pending()});
        }
        try {
          const auto files = write_report_plots(
              plot_dir, days,
              {response.review_delays_s().begin(), response.review_delays_s().end()},
              report_from + " .. " + report_to);
          for (const auto& f : files) std::cerr << "plot: " << f.string() << "\n";
        } catch (const std::exception& e) {
          throw RemoteError(e.what());
        }
      }
      return 0;
    });
  });

  static std::string since, until, token_name, method;
  static int limit = 0;
  CLI::App* list = audit->add_subcommand("list", "Print audit rows, oldest first");
  list->add_option("--since", since, "From this date or date-time (UTC), inclusive");
  list->add_option("--until", until, "To this date (its end) or date-time (UTC), inclusive");
  list->add_option("--token", token_name,
                   "Only rows of this token name (here: a filter; give the API token before "
                   "the subcommand, or by --token-file / FRS_TOKEN)");
  list->add_option("--method", method, "Only this method: Search or /frs.v1.Search/Search");
  list->add_option("--limit", limit, "At most this many rows (default all)")
      ->check(CLI::PositiveNumber);
  list->callback([run] {
    run([] {
      pb::ListAuditRecordsRequest request;
      try {
        if (!since.empty()) {
          request.set_since_ms(parse_utc_time(since, DateMeans::kStartOfDay, "--since"));
        }
        if (!until.empty()) {
          request.set_until_ms(parse_utc_time(until, DateMeans::kEndOfDay, "--until"));
        }
      } catch (const std::exception& e) {
        throw RemoteError(e.what());
      }
      request.set_token(token_name);
      request.set_method(method);
      auto stub = pb::Audit::NewStub(connect(o));
      int printed = 0;
      for (std::int64_t after = 0;;) {
        request.set_after_seq(after);
        request.set_page_size(1000);
        pb::ListAuditRecordsResponse response;
        check(stub->ListAuditRecords(context().get(), request, &response), o);
        for (const pb::AuditRecord& r : response.records()) {
          if (limit > 0 && printed >= limit) return 0;
          ++printed;
          if (o.json_output) {
            std::cout << record_json(r).dump() << "\n";
            continue;
          }
          std::cout << r.seq() << "  " << format_utc_time(r.time_ms()) << "  "
                    << (r.token().empty() ? "-" : r.token()) << " (" << r.role() << ")  "
                    << r.method() << "  "
                    << (r.outcome() == 0 ? "OK"
                        : r.outcome() == kAuditOutcomeStarted
                            ? "started"
                            : "code " + std::to_string(r.outcome()))
                    << (r.purpose().empty() ? "" : "  purpose: " + r.purpose()) << "  "
                    << r.targets_json() << "\n";
        }
        if (response.next_after_seq() == 0) return 0;
        after = response.next_after_seq();
      }
    });
  });
}

}  // namespace frs::cli
