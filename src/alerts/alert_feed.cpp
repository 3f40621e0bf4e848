#include "frs/alerts/alert_feed.h"

#include <algorithm>

namespace frs {

AlertSubscription::~AlertSubscription() {
  std::lock_guard lock(feed_.mutex_);
  std::erase(feed_.subscriptions_, this);
}

void AlertSubscription::offer(const Alert& alert) {
  if (fell_behind_) return;
  if (queue_.size() >= capacity_) {
    fell_behind_ = true;
    queue_.clear();  // it resumes from the log; holding these would only cost memory
  } else {
    queue_.push_back(alert);
  }
  ready_.notify_one();
}

std::optional<Alert> AlertSubscription::next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(feed_.mutex_);
  ready_.wait_for(lock, timeout, [this] { return fell_behind_ || !queue_.empty(); });
  if (fell_behind_ || queue_.empty()) return std::nullopt;
  Alert alert = std::move(queue_.front());
  queue_.pop_front();
  return alert;
}

bool AlertSubscription::fell_behind() const {
  std::lock_guard lock(feed_.mutex_);
  return fell_behind_;
}

void AlertFeed::publish(const Alert& alert) {
  {
    std::lock_guard relay(relay_mutex_);
    if (log_ != nullptr) return;
  }
  offer_all(alert);
}

void AlertFeed::offer_all(const Alert& alert) {
  std::lock_guard lock(mutex_);
  for (AlertSubscription* s : subscriptions_) s->offer(alert);
}

void AlertFeed::follow(AlertStore& log) {
  std::lock_guard relay(relay_mutex_);
  log_ = &log;
  relayed_id_ = log.last_id();  // earlier alerts are the log's to give (after_id)
}

std::size_t AlertFeed::relay() {
  std::lock_guard relay(relay_mutex_);
  if (log_ == nullptr) return 0;
  std::size_t relayed = 0;
  AlertFilter page;
  page.limit = 1000;
  page.with_images = true;
  for (;;) {
    page.after_id = relayed_id_;
    const std::vector<Alert> alerts = log_->list(page);
    for (const Alert& alert : alerts) {
      offer_all(alert);
      relayed_id_ = alert.id;
      ++relayed;
    }
    if (alerts.size() < static_cast<std::size_t>(page.limit)) return relayed;
  }
}

std::unique_ptr<AlertSubscription> AlertFeed::subscribe(std::size_t capacity) {
  std::unique_ptr<AlertSubscription> s(
      new AlertSubscription(*this, std::max<std::size_t>(1, capacity)));
  std::lock_guard lock(mutex_);
  subscriptions_.push_back(s.get());
  return s;
}

std::size_t AlertFeed::subscribers() const {
  std::lock_guard lock(mutex_);
  return subscriptions_.size();
}

}  // namespace frs
