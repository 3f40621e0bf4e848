#include "frs/core/blas.h"

#include <dlib/matrix.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace frs {
namespace {

TEST(Blas, SingleThreadedOpenBlasBuildsAreTakenAsUnsafe) {
  // openblas_get_config() of Debian 12's libopenblas0-serial and libopenblas0-pthread.
  EXPECT_FALSE(openblas_config_is_thread_safe(
      "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY SINGLE_THREADED"));
  EXPECT_TRUE(openblas_config_is_thread_safe(
      "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64"));
  EXPECT_TRUE(openblas_config_is_thread_safe(""));  // not OpenBLAS: nothing known against it
}

TEST(Blas, TheLoadedBlasIsAcceptedForConcurrentCallers) {
  EXPECT_NO_THROW(require_thread_safe_blas()) << loaded_blas_config();
}

// The failure this guards against: Debian's serial OpenBLAS returned wrong products in
// 51 to 390 of these 4,000 (5 runs), through exactly this path (dlib's matrix product is
// what its descriptor network's layers call).
TEST(Blas, ProductsFromEightThreadsAtOnceEqualTheOnesComputedAlone) {
  struct Shape {
    long rows, inner, cols;  // the shapes of the descriptor network's convolutions
  };
  const std::vector<Shape> shapes = {
      {32, 147, 1444}, {64, 576, 1369}, {128, 1152, 324}, {256, 2304, 81}};
  dlib::rand rng(7);
  std::vector<dlib::matrix<float>> lhs, rhs, expected;
  for (const Shape& s : shapes) {
    lhs.push_back(dlib::matrix_cast<float>(dlib::randm(s.rows, s.inner, rng)));
    rhs.push_back(dlib::matrix_cast<float>(dlib::randm(s.inner, s.cols, rng)));
    expected.push_back(lhs.back() * rhs.back());
  }
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      dlib::matrix<float> product;
      for (std::size_t i = 0; i < 500; ++i) {
        const std::size_t k = (i + t) % shapes.size();
        product = lhs[k] * rhs[k];
        if (product != expected[k]) ++wrong;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0) << "of 4000 products; BLAS: " << loaded_blas_config();
}

}  // namespace
}  // namespace frs
