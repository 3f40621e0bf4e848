#include "frs/core/blas.h"

#include <dlfcn.h>

#include <mutex>

#include "frs/core/error.h"

namespace frs {

bool openblas_config_is_thread_safe(std::string_view openblas_config) {
  return openblas_config.find("SINGLE_THREADED") == std::string_view::npos;
}

std::string loaded_blas_config() {
  // Looked up at run time: frs links the generic libblas.so.3, and which build answers it
  // is the system's choice (update-alternatives), not ours.
  using GetConfig = char* (*)();
  auto get_config = reinterpret_cast<GetConfig>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
  if (get_config == nullptr) return "";
  const char* config = get_config();
  return config == nullptr ? "" : config;
}

void require_thread_safe_blas() {
  static std::once_flag once;
  static std::string unsafe_config;
  std::call_once(once, [] {
    using SetThreads = void (*)(int);
    if (auto set_threads =
            reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
      set_threads(1);
    }
    const std::string config = loaded_blas_config();
    if (!openblas_config_is_thread_safe(config)) unsafe_config = config;
  });
  if (!unsafe_config.empty()) {
    throw Error(ErrorCode::kFailedPrecondition,
                "the BLAS library loaded (" + unsafe_config +
                    ") returns wrong results when two threads multiply at once, which would "
                    "corrupt face descriptors; install the thread-safe build with "
                    "'apt-get install libopenblas0-pthread' (scripts/setup.sh does), or select "
                    "it with 'update-alternatives --config libblas.so.3-x86_64-linux-gnu'");
  }
}

}  // namespace frs
