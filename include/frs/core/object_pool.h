#pragma once
// A fixed set of interchangeable objects (network instances) shared by threads: each
// caller leases one for the duration of a call. Needed because dlib networks and OpenCV
// DNN nets keep per-call state and may not run two forward passes at once.

#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

namespace frs {

template <typename T>
class ObjectPool {
 public:
  class Lease {
   public:
    Lease(ObjectPool* pool, std::unique_ptr<T> object) : pool_(pool), object_(std::move(object)) {}
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&&) noexcept = default;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() {
      if (object_) pool_->give_back(std::move(object_));
    }
    T& operator*() { return *object_; }
    T* operator->() { return object_.get(); }

   private:
    ObjectPool* pool_;
    std::unique_ptr<T> object_;
  };

  void add(std::unique_ptr<T> object) {
    std::lock_guard lock(mutex_);
    free_.push_back(std::move(object));
    ++size_;
    available_.notify_one();
  }

  // Blocks until an object is free.
  Lease acquire() {
    std::unique_lock lock(mutex_);
    available_.wait(lock, [this] { return !free_.empty(); });
    std::unique_ptr<T> object = std::move(free_.back());
    free_.pop_back();
    return Lease(this, std::move(object));
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return size_;
  }

 private:
  void give_back(std::unique_ptr<T> object) {
    std::lock_guard lock(mutex_);
    free_.push_back(std::move(object));
    available_.notify_one();
  }

  mutable std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<T>> free_;
  std::size_t size_ = 0;
};

}  // namespace frs
