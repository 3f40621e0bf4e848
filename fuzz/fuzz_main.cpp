// One libFuzzer target; FRS_FUZZ_TARGET names the harness (fuzz/CMakeLists.txt).
#include "harnesses.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return frs::fuzz::FRS_FUZZ_TARGET(data, size);
}
