#include "frs/service/retention.h"

#include <nlohmann/json.hpp>

#include "frs/core/error.h"
#include "frs/core/time_text.h"

namespace frs::service {

RetentionRun purge_expired(AlertStore& alerts, Gallery& gallery, AccessControl& access,
                           const RetentionPolicy& policy, std::int64_t now_ms) {
  if (policy.alerts.count() <= 0 || policy.audit.count() <= 0 ||
      policy.confirmed_alerts < policy.alerts) {
    throw Error(ErrorCode::kInvalidArgument,
                "retention periods must be positive, confirmed alerts' at least alerts'");
  }
  RetentionRun run;
  const std::int64_t alerts_before = now_ms - policy.alerts.count();
  const std::int64_t confirmed_before = now_ms - policy.confirmed_alerts.count();
  run.alerts = alerts.purge(alerts_before, confirmed_before);
  // Suppressions go with the alerts they came from (rejected ones: the shorter period).
  run.suppressions = gallery.purge_suppressions(alerts_before);
  if (run.alerts.alerts > 0 || run.suppressions > 0) {
    AuditEntry row;
    row.time_ms = now_ms;
    row.token = "frs-server";
    row.method = "retention.purged";
    nlohmann::json details = {{"alerts", run.alerts.alerts},
                              {"confirmed_alerts", run.alerts.confirmed},
                              {"suppressions", run.suppressions},
                              {"alerts_before_ms", alerts_before},
                              {"confirmed_alerts_before_ms", confirmed_before}};
    if (run.alerts.alerts > 0) {
      details["alert_ids"] = {run.alerts.first_id, run.alerts.last_id};
    }
    row.details_json = details.dump();
    access.audit(row);
  }
  AuditEntry record;
  record.time_ms = now_ms;
  record.token = "frs-server";
  record.details_json = nlohmann::json{{"retention_days", policy.audit.count() / kMsPerDay}}.dump();
  if (const auto purged = access.audit_log().purge(now_ms - policy.audit.count(), record)) {
    run.audit_rows = nlohmann::json::parse(purged->details_json).value("rows", std::int64_t{0});
  }
  return run;
}

}  // namespace frs::service
