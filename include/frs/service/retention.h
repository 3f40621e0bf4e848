#pragma once
// Retention: what frs keeps about people is kept for a bounded time. One purge removes
// alerts (with their face crops, descriptors and reviews) and the suppressions learnt from
// them, and audit rows, older than their periods; each purge is itself in the audit log,
// and the audit chain stays verifiable (the purge record anchors the first row kept).
// frs-server runs it at start and once an hour.

#include <chrono>
#include <cstdint>

#include "frs/alerts/alert_store.h"
#include "frs/gallery/gallery.h"
#include "frs/service/access_control.h"

namespace frs::service {

struct RetentionPolicy {
  // Alerts, their crops, and the suppressions learnt from them. Default 30 days.
  std::chrono::milliseconds alerts{std::chrono::hours(24 * 30)};
  // Confirmed alerts: at least `alerts`. Default 365 days.
  std::chrono::milliseconds confirmed_alerts{std::chrono::hours(24 * 365)};
  // Audit rows. Default 7 years (2,557 days).
  std::chrono::milliseconds audit{std::chrono::hours(24 * 2557)};
};

struct RetentionRun {
  AlertPurge alerts;
  std::int64_t suppressions = 0;
  std::int64_t audit_rows = 0;
};

// Purges what `policy` says is older than it at `now_ms`. Throws what the stores throw
// (the audit log unwritable: kUnavailable); a purge that fails changes nothing of its own
// store.
RetentionRun purge_expired(AlertStore& alerts, Gallery& gallery, AccessControl& access,
                           const RetentionPolicy& policy, std::int64_t now_ms);

}  // namespace frs::service
