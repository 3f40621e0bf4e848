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

  // An alert this node logged. Ignored once the feed follows the log (follow()).
  void publish(const Alert& alert);
  // Cluster mode: subscribers get the alerts of every node, out of the shared alert log in
  // id order; this node's own reach them the same way, so that an alert of another node
  // that committed first is never delivered after a later one. Call once, at start: from
  // then on only relay() publishes.
  void follow(AlertStore& log);
  // Publishes what the log gained since the last relay (the node's ChangeListener calls it
  // when a node announces an alert). Returns how many.
  std::size_t relay();
  std::unique_ptr<AlertSubscription> subscribe(std::size_t capacity = kDefaultCapacity);
  std::size_t subscribers() const;

 private:
  friend class AlertSubscription;
  void offer_all(const Alert& alert);

  mutable std::mutex mutex_;
  std::vector<AlertSubscription*> subscriptions_;
  std::mutex relay_mutex_;
  AlertStore* log_ = nullptr;    // followed (cluster mode); null: publish() delivers
  std::int64_t relayed_id_ = 0;  // the last alert relayed
};

}  // namespace frs
