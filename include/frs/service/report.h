#pragma once
// The accountability report (frs audit report): what was searched, matched live, raised,
// reviewed, suppressed and enrolled in a period, on what legal basis and at what
// thresholds. Computed from the audit log and the stores, never from counters a restart
// resets. Washington's RCW 43.386 asks an agency for such a report every year.

#include <cstdint>
#include <functional>
#include <string>

#include "frs/alerts/alert_store.h"
#include "frs/auth/audit_log.h"
#include "frs/gallery/gallery.h"
#include "frs/v1/audit.pb.h"
#include "frs/vision/descriptor_model.h"

namespace frs::service {

struct ReportSources {
  AlertStore* alerts = nullptr;  // null: no alert figures
  Gallery* gallery = nullptr;    // null: no authorisations or thresholds
  int confirmations = 2;
  // Names a descriptor model (by id) with its files' checksum; asked per report (hashing
  // the model files is work a report can afford and start-up should not do). Empty: not
  // named.
  std::function<std::string(const std::string& model)> describe_model;
  // Of new watchlists (frs-server --descriptor).
  std::string default_model = std::string(kDefaultDescriptorId);
};

// The report of [from_ms, to_ms] as of `now_ms`. kInvalidArgument when to_ms < from_ms.
frs::v1::AccountabilityReport build_report(AuditLog& audit, const ReportSources& sources,
                                           std::int64_t from_ms, std::int64_t to_ms,
                                           std::int64_t now_ms);

}  // namespace frs::service
