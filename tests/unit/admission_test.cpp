#include "frs/core/admission.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace frs {
namespace {

ErrorCode code_of(Admission& admission, const Cancellation& cancel = {}) {
  try {
    admission.acquire(cancel);
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "a slot was given";
  return ErrorCode::kInternal;
}

TEST(Admission, GivesAtMostItsSlotsWaitsBrieflyThenRefuses) {
  Admission admission(2, std::chrono::milliseconds(100), "images analysed");
  auto a = admission.acquire();
  auto b = admission.acquire();
  EXPECT_EQ(admission.in_use(), 2u);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(code_of(admission), ErrorCode::kResourceExhausted);
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(100));
  // A slot freed while someone waits goes to the waiter (who waits long enough here for
  // the releasing thread to run on a loaded machine).
  std::optional<Admission::Slot> held(std::move(a));
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    held.reset();
  });
  { auto c = admission.acquire({}, std::chrono::seconds(60)); }
  release.join();
  EXPECT_EQ(admission.in_use(), 1u);
}

TEST(Admission, AWaiterWhoseCallerGaveUpStopsWaiting) {
  Admission admission(1, Admission::kUntilCancelled, "images analysed");
  auto only = admission.acquire();
  std::atomic<bool> gone{false};
  std::thread cancel([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    gone = true;
  });
  EXPECT_EQ(code_of(admission, Cancellation([&] { return gone.load(); })), ErrorCode::kCancelled);
  cancel.join();
}

}  // namespace
}  // namespace frs
