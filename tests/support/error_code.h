#pragma once
// The code of the frs::Error a call throws: tests of refusals check which refusal it was.

#include <gtest/gtest.h>

#include <functional>

#include "frs/core/error.h"

namespace frs::testing {

// The code `f` throws; a test failure (and kInternal) when it throws nothing.
inline ErrorCode code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "no error";
  return ErrorCode::kInternal;
}

}  // namespace frs::testing
