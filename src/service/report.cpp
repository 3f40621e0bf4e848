#include "frs/service/report.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "frs/core/error.h"
#include "frs/core/time_text.h"

namespace frs::service {
namespace {

namespace pb = ::frs::v1;
using nlohmann::json;

// Calls `visit` for every row the query selects, oldest first, page by page.
void for_each_row(AuditLog& audit, AuditQuery query,
                  const std::function<void(const AuditRecord&)>& visit) {
  query.limit = 10000;
  while (true) {
    const auto page = audit.list(query);
    for (const AuditRecord& row : page) visit(row);
    if (page.size() < static_cast<std::size_t>(query.limit)) return;
    query.after_seq = page.back().seq;
  }
}

json parsed(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  return j.is_object() ? j : json::object();
}

void add_counts(const std::map<std::string, std::int64_t>& counts,
                google::protobuf::RepeatedPtrField<pb::CountByKey>* out) {
  for (const auto& [key, count] : counts) {
    pb::CountByKey* c = out->Add();
    c->set_key(key);
    c->set_count(count);
  }
}

// The nearest-rank percentile p (0..100) of sorted values.
double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * sorted.size()));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

std::string day_of(std::int64_t unix_ms) {
  return format_utc_time(unix_ms).substr(0, 10);
}

// Live matching sessions from the audit log's camera.matching_started/_stopped rows.
void add_live_matching(AuditLog& audit, std::int64_t from, std::int64_t to, std::int64_t now,
                       pb::AccountabilityReport* report) {
  std::vector<AuditRecord> events;
  for (const char* method : {"camera.matching_started", "camera.matching_stopped"}) {
    AuditQuery q;
    q.method = method;
    q.until_ms = to;
    for_each_row(audit, q, [&](const AuditRecord& row) { events.push_back(row); });
  }
  std::sort(events.begin(), events.end(),
            [](const AuditRecord& a, const AuditRecord& b) { return a.seq < b.seq; });
  struct Open {
    std::int64_t since = 0;
    std::string authorization;
  };
  struct Total {
    double hours = 0;
    int sessions = 0;
    std::set<std::string> authorizations;
  };
  std::map<std::pair<std::string, std::string>, Open> open;
  std::map<std::pair<std::string, std::string>, Total> totals;
  const auto close = [&](const std::pair<std::string, std::string>& key, std::int64_t end) {
    const auto it = open.find(key);
    if (it == open.end()) return;
    const std::int64_t start = std::max(it->second.since, from);
    const std::int64_t stop = std::min(end, to);
    if (stop >= start && end >= from) {
      Total& t = totals[key];
      t.hours += static_cast<double>(stop - start) / static_cast<double>(kMsPerHour);
      ++t.sessions;
      if (!it->second.authorization.empty()) t.authorizations.insert(it->second.authorization);
    }
    open.erase(it);
  };
  for (const AuditRecord& row : events) {
    const json details = parsed(row.details_json);
    const json targets = parsed(row.targets_json);
    const std::string camera = targets.contains("cameras") && !targets["cameras"].empty()
                                   ? targets["cameras"][0].get<std::string>()
                                   : "";
    const bool started = row.method == "camera.matching_started";
    for (const json& w : details.value("watchlists", json::array())) {
      const std::pair<std::string, std::string> key{camera, w.value("name", "")};
      // A start with the session still open: the server stopped without saying so (a
      // crash); the session is taken to have run until this new start.
      close(key, row.time_ms);
      if (!started) continue;
      Open session;
      session.since = row.time_ms;
      if (w.contains("authorization")) {
        session.authorization =
            w["authorization"].value("basis", "") + " " + w["authorization"].value("reference", "");
      }
      open[key] = session;
    }
  }
  std::vector<std::pair<std::string, std::string>> still_open;
  for (const auto& [key, session] : open) still_open.push_back(key);
  for (const auto& key : still_open) close(key, std::min(now, to));
  for (const auto& [key, total] : totals) {
    pb::MatchingHours* m = report->add_live_matching();
    m->set_camera(key.first);
    m->set_watchlist(key.second);
    m->set_hours(total.hours);
    m->set_sessions(total.sessions);
    for (const std::string& a : total.authorizations) m->add_authorizations(a);
  }
}

void add_calls(AuditLog& audit, std::int64_t from, std::int64_t to,
               pb::AccountabilityReport* report) {
  std::map<std::string, std::int64_t> by_purpose, by_watchlist, by_token;
  AuditQuery q;
  q.since_ms = from;
  q.until_ms = to;
  q.method = "/frs.v1.Search/Search";
  for_each_row(audit, q, [&](const AuditRecord& row) {
    report->set_searches(report->searches() + 1);
    if (row.outcome != 0) report->set_searches_refused(report->searches_refused() + 1);
    ++by_purpose[row.purpose.empty() ? "(none)" : row.purpose];
    ++by_token[row.token];
    const json names = parsed(row.targets_json).value("watchlist_names", json::array());
    if (names.empty()) ++by_watchlist["(all)"];
    for (const json& n : names) ++by_watchlist[n.get<std::string>()];
  });
  add_counts(by_purpose, report->mutable_searches_by_purpose());
  add_counts(by_watchlist, report->mutable_searches_by_watchlist());
  add_counts(by_token, report->mutable_searches_by_token());

  q.method = "/frs.v1.Alerts/ReviewAlert";
  for_each_row(audit, q, [&](const AuditRecord& row) {
    if (row.outcome != 0) return;
    report->set_suppressions_made(report->suppressions_made() +
                                  parsed(row.details_json).value("suppressions", 0));
  });
  q.method = "/frs.v1.Gallery/LiftSuppression";
  for_each_row(audit, q, [&](const AuditRecord& row) {
    if (row.outcome == 0) report->set_suppressions_lifted(report->suppressions_lifted() + 1);
  });
  for (const char* method : {"/frs.v1.Gallery/Enroll", "/frs.v1.Gallery/AddFaces"}) {
    q.method = method;
    for_each_row(audit, q, [&](const AuditRecord& row) {
      if (row.outcome != 0) return;
      const json details = parsed(row.details_json);
      const json watchlists = parsed(row.targets_json).value("watchlists", json::array());
      std::int64_t faces = 0;
      for (const json& photo : details.value("photos", json::array())) {
        if (!photo.contains("face_id")) continue;
        ++faces;
        if (!photo.contains("gate_override")) continue;
        pb::GateOverride* o = report->add_gate_overrides();
        o->set_time_ms(row.time_ms);
        o->set_token(row.token);
        if (!watchlists.empty()) o->set_watchlist_id(watchlists[0].get<std::int64_t>());
        o->set_gate_override(photo["gate_override"].get<std::string>());
      }
      if (faces == 0) return;  // every photo was already enrolled
      report->set_enrollments(report->enrollments() + 1);
      report->set_faces_enrolled(report->faces_enrolled() + faces);
    });
  }
  q.method = "retention.purged";
  for_each_row(audit, q, [&](const AuditRecord& row) {
    report->set_alerts_purged(report->alerts_purged() +
                              parsed(row.details_json).value("alerts", std::int64_t{0}));
  });
  // The last evaluation before the period's end, however long before.
  AuditQuery evaluations;
  evaluations.until_ms = to;
  evaluations.method = "/frs.v1.Evaluation/Evaluate";
  for_each_row(audit, evaluations, [&](const AuditRecord& row) {
    const json details = parsed(row.details_json);
    if (row.outcome != 0 || !details.contains("results")) return;
    report->set_last_evaluation_json(details["results"].dump());
    report->set_last_evaluation_at_ms(row.time_ms);
  });
}

void add_alerts(AlertStore& alerts, std::int64_t from, std::int64_t to,
                pb::AccountabilityReport* report) {
  AlertFilter filter;
  filter.detected_from_ms = from;
  filter.detected_until_ms = to;
  filter.limit = 1000;
  std::map<std::string, pb::AlertDay> days;
  std::vector<double> delays;
  while (true) {
    const auto page = alerts.list(filter);
    for (const Alert& a : page) {
      pb::AlertDay& day = days[day_of(a.detected_at_ms)];
      day.set_raised(day.raised() + 1);
      report->set_alerts_raised(report->alerts_raised() + 1);
      switch (a.review) {
        case ReviewState::kConfirmed:
          day.set_confirmed(day.confirmed() + 1);
          report->set_alerts_confirmed(report->alerts_confirmed() + 1);
          break;
        case ReviewState::kRejected:
          day.set_rejected(day.rejected() + 1);
          report->set_alerts_rejected(report->alerts_rejected() + 1);
          break;
        case ReviewState::kPending:
          day.set_pending(day.pending() + 1);
          report->set_alerts_pending(report->alerts_pending() + 1);
          break;
      }
      if (a.review != ReviewState::kPending) {
        delays.push_back(static_cast<double>(a.reviewed_at_ms - a.detected_at_ms) / 1000.0);
      }
    }
    if (page.size() < static_cast<std::size_t>(filter.limit)) break;
    filter.after_id = page.back().id;
  }
  for (auto& [name, day] : days) {
    day.set_day(name);
    *report->add_alerts_per_day() = day;
  }
  for (const double d : delays) report->add_review_delays_s(d);
  std::sort(delays.begin(), delays.end());
  report->set_review_delay_median_s(percentile(delays, 50));
  report->set_review_delay_p95_s(percentile(delays, 95));
}

void add_gallery(Gallery& gallery, const std::string& default_model, std::int64_t from,
                 std::int64_t to, pb::AccountabilityReport* report) {
  std::map<std::string, std::int64_t> by_basis;
  report->set_max_distance_ceiling(gallery.max_distance_ceiling(default_model));
  for (const Watchlist& w : gallery.store().list_watchlists()) {
    pb::WatchlistThreshold* t = report->add_thresholds();
    t->set_watchlist(w.name);
    t->set_descriptor_model(w.descriptor_model);
    t->set_max_distance_ceiling(gallery.max_distance_ceiling(w.descriptor_model));
    t->set_max_distance(w.max_distance);
    t->set_effective_max_distance(gallery.threshold_of(w));
    t->set_identities(gallery.store().identity_count(w.id));
    t->set_live_only(w.live_only);
    const json basis = parsed(w.threshold_basis);
    t->set_method(basis.value("method", ""));
    t->set_data(basis.value("data", ""));
    if (const auto groups = basis.find("groups"); groups != basis.end() && groups->is_array()) {
      for (const json& g : *groups) {
        if (g.is_string()) t->add_groups(g.get<std::string>());
      }
    }
    t->set_bound_by_group(basis.value("boundByGroup", ""));
    for (const Authorization& a : gallery.authorizations(w.id)) {
      if (a.valid_until_ms < from || a.valid_from_ms > to) continue;  // not in force then
      pb::AuthorizationSummary* s = report->add_authorizations();
      s->set_watchlist(w.name);
      s->set_basis(a.basis);
      s->set_reference(a.reference);
      s->set_issued_by(a.issued_by);
      s->set_valid_from_ms(a.valid_from_ms);
      s->set_valid_until_ms(a.valid_until_ms);
      // In double: a row stored before times were range-checked may hold any int64.
      s->set_hours((static_cast<double>(a.valid_until_ms) - static_cast<double>(a.valid_from_ms)) /
                   static_cast<double>(kMsPerHour));
      s->set_recorded_by(a.recorded_by);
      ++by_basis[a.basis];
    }
  }
  add_counts(by_basis, report->mutable_authorizations_by_basis());
}

}  // namespace

pb::AccountabilityReport build_report(AuditLog& audit, const ReportSources& sources,
                                      std::int64_t from_ms, std::int64_t to_ms,
                                      std::int64_t now_ms) {
  if (to_ms < from_ms) {
    throw Error(ErrorCode::kInvalidArgument,
                "the report's end (--to) is before its start (--from)");
  }
  pb::AccountabilityReport report;
  report.set_from_ms(from_ms);
  report.set_to_ms(to_ms);
  report.set_generated_at_ms(now_ms);
  report.set_confirmations_needed(sources.confirmations);
  add_calls(audit, from_ms, to_ms, &report);
  add_live_matching(audit, from_ms, to_ms, now_ms, &report);
  if (sources.alerts != nullptr) add_alerts(*sources.alerts, from_ms, to_ms, &report);
  if (sources.gallery != nullptr) {
    add_gallery(*sources.gallery, sources.default_model, from_ms, to_ms, &report);
  }
  if (sources.describe_model) {
    // The default model, then every other a watchlist is of.
    std::vector<std::string> models = {sources.default_model};
    for (const pb::WatchlistThreshold& t : report.thresholds()) {
      if (std::find(models.begin(), models.end(), t.descriptor_model()) == models.end()) {
        models.push_back(t.descriptor_model());
      }
    }
    std::string named;
    for (const std::string& m : models)
      named += (named.empty() ? "" : "; ") + sources.describe_model(m);
    report.set_descriptor_model(named);
  }
  return report;
}

}  // namespace frs::service
