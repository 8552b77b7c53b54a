// Portable GEMM: packs op(B) into row-major panels so the inner loop is a
// unit-stride axpy that compilers vectorise without reassociating sums.
// Each C element sums its K products in the same order whatever the thread
// count, so results are bit-identical for any number of threads.
#include <algorithm>
#include <vector>

#include "backpropx/parallel.hpp"
#include "kernels/kernels.hpp"

namespace bpx::kernels {

namespace {
constexpr std::size_t kRowBlock = 32;
constexpr std::size_t kColBlock = 256;
constexpr std::size_t kDepthBlock = 256;
}  // namespace

template <class T>
void gemm_generic(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K,
                  T alpha, const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C,
                  std::size_t ldc) {
  const std::size_t row_blocks = (M + kRowBlock - 1) / kRowBlock;
  const std::size_t col_blocks = (N + kColBlock - 1) / kColBlock;
  // Tiny problems stay on the calling thread: a fork costs more than they do.
  const bool small = M * N * K < 64 * 64 * 64;
  auto tile = [&](std::size_t task) {
    const std::size_t i0 = (task / col_blocks) * kRowBlock, i1 = std::min(M, i0 + kRowBlock);
    const std::size_t j0 = (task % col_blocks) * kColBlock, j1 = std::min(N, j0 + kColBlock);
    const std::size_t nc = j1 - j0;
    thread_local std::vector<T> packed_buf(kDepthBlock * kColBlock), acc_buf(kColBlock);
    T* packed = packed_buf.data();
    T* acc = acc_buf.data();
    for (std::size_t i = i0; i < i1; ++i) {
      T* c = C + i * ldc + j0;
      if (beta == T(0)) std::fill(c, c + nc, T(0));
      else if (beta != T(1)) for (std::size_t j = 0; j < nc; ++j) c[j] *= beta;
    }
    for (std::size_t k0 = 0; k0 < K; k0 += kDepthBlock) {
      const std::size_t kc = std::min(K, k0 + kDepthBlock) - k0;
      for (std::size_t k = 0; k < kc; ++k)
        for (std::size_t j = 0; j < nc; ++j)
          packed[k * nc + j] = trans_b ? B[(j0 + j) * ldb + k0 + k] : B[(k0 + k) * ldb + j0 + j];
      for (std::size_t i = i0; i < i1; ++i) {
        std::fill(acc, acc + nc, T(0));
        for (std::size_t k = 0; k < kc; ++k) {
          const T a = trans_a ? A[(k0 + k) * lda + i] : A[i * lda + k0 + k];
          const T* b = packed + k * nc;
          for (std::size_t j = 0; j < nc; ++j) acc[j] += a * b[j];
        }
        T* c = C + i * ldc + j0;
        for (std::size_t j = 0; j < nc; ++j) c[j] += alpha * acc[j];
      }
    }
  };
  const std::size_t tasks = row_blocks * col_blocks;
  if (small) {
    for (std::size_t t = 0; t < tasks; ++t) tile(t);
  } else {
    parallel_for(tasks, tile);
  }
}

template void gemm_generic<float>(bool, bool, std::size_t, std::size_t, std::size_t, float,
                                  const float*, std::size_t, const float*, std::size_t, float,
                                  float*, std::size_t);
template void gemm_generic<double>(bool, bool, std::size_t, std::size_t, std::size_t, double,
                                   const double*, std::size_t, const double*, std::size_t, double,
                                   double*, std::size_t);

template <class T>
void gemm_dispatch(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K,
                   T alpha, const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C,
                   std::size_t ldc) {
  gemm_generic<T>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

template void gemm_dispatch<float>(bool, bool, std::size_t, std::size_t, std::size_t, float,
                                   const float*, std::size_t, const float*, std::size_t, float,
                                   float*, std::size_t);
template void gemm_dispatch<double>(bool, bool, std::size_t, std::size_t, std::size_t, double,
                                    const double*, std::size_t, const double*, std::size_t, double,
                                    double*, std::size_t);

}  // namespace bpx::kernels
