#pragma once
// Live delivery of new alerts to subscribers (consoles streaming alerts). Each subscriber
// has a bounded queue: one that does not keep up is marked as having fallen behind and
// gets nothing more, so it can never make the server's memory grow or slow the others; it
// resumes from the last id it saw, out of the alert log.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "frs/alerts/alert_store.h"

namespace frs {

class AlertFeed;

class AlertSubscription {
 public:
  ~AlertSubscription();
  AlertSubscription(const AlertSubscription&) = delete;
  AlertSubscription& operator=(const AlertSubscription&) = delete;

  // The next alert, or nullopt after `timeout` (or at once when fallen behind).
  std::optional<Alert> next(std::chrono::milliseconds timeout);
  bool fell_behind() const;

 private:
  friend class AlertFeed;
  AlertSubscription(AlertFeed& feed, std::size_t capacity) : feed_(feed), capacity_(capacity) {}
  void offer(const Alert& alert);  // under feed_.mutex_

  AlertFeed& feed_;
  std::size_t capacity_;
  std::deque<Alert> queue_;
  bool fell_behind_ = false;
  std::condition_variable ready_;
};

class AlertFeed {
 public:
  // Default queue length of a subscriber: alerts are rare, a console that is this far
  // behind is stuck and should resume from the log.
  static constexpr std::size_t kDefaultCapacity = 256;

  void publish(const Alert& alert);
  std::unique_ptr<AlertSubscription> subscribe(std::size_t capacity = kDefaultCapacity);
  std::size_t subscribers() const;

 private:
  friend class AlertSubscription;
  mutable std::mutex mutex_;
  std::vector<AlertSubscription*> subscriptions_;
};

}  // namespace frs
