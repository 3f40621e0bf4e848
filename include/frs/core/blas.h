#pragma once
// The BLAS library under dlib's descriptor network and FAISS is called from several threads
// at once (one network per core, concurrent searches). Debian's serial OpenBLAS
// (libopenblas0-serial) is built without locking: two concurrent products sometimes share a
// scratch buffer and return wrong numbers, silently (measured: 2 to 421 wrong products in
// 40,000 from two threads). The pthread build is safe once its own thread pool is set to
// one thread, which also keeps it from competing with frs's own threads for the cores.

#include <string>
#include <string_view>

namespace frs {

// True unless `openblas_config` (what openblas_get_config() returns) names a build without
// thread support: "SINGLE_THREADED" builds do not lock their buffers by default.
bool openblas_config_is_thread_safe(std::string_view openblas_config);

// What the BLAS loaded in this process says about itself: its openblas_get_config() string,
// or "" when the BLAS is not OpenBLAS (then nothing is known against it).
std::string loaded_blas_config();

// Makes the loaded BLAS safe and quiet for concurrent callers: sets OpenBLAS's own thread
// pool to one thread (once per process) and throws Error(kFailedPrecondition) saying how to
// install a thread-safe build when the loaded one is not. Cheap after the first call.
void require_thread_safe_blas();

}  // namespace frs
