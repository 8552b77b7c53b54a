// The skinny product C (M, N) = A (M, K) . Bt (N, K)^T with few columns (the
// forward product X . W^T of a last layer, 10 classes): rows of A and Bt are both
// contiguous in k, so a tile of DR rows x DC columns keeps DR * DC vector
// accumulators along k and reduces each at the end. Nothing is packed.
//
// Each C element sums lane-wise partial sums in k order (lane l takes
// k = l, l + W, ...), then adds the W lanes in a fixed order: the result
// depends on the shape only, never on the thread count.
//
// Compiled once per instruction set: internal linkage only (see gemm_driver.hpp).
#pragma once

#include <cstddef>

#include "kernels/gemm_tasks.hpp"


namespace bpx::kernels {
namespace {

// C (rows <= DR, DC) = alpha * A (rows, K) . B (DC, K)^T + beta * C.
template <class V, std::size_t DR, std::size_t DC>
void dot_tile(std::size_t K, const typename V::T* A, std::size_t lda, std::size_t rows,
              const typename V::T* B, std::size_t ldb, typename V::T alpha, typename V::T beta,
              typename V::T* C, std::size_t ldc) {
  using T = typename V::T;
  using reg = typename V::reg;
  constexpr std::size_t W = V::W;
  const T* a[DR];
  for (std::size_t r = 0; r < DR; ++r) a[r] = A + (r < rows ? r : rows - 1) * lda;
  reg acc[DR][DC];
#pragma GCC unroll 32
  for (std::size_t r = 0; r < DR; ++r)
#pragma GCC unroll 32
    for (std::size_t c = 0; c < DC; ++c) acc[r][c] = V::zero();

  std::size_t k = 0;
  for (; k + W <= K; k += W) {
    reg av[DR];
#pragma GCC unroll 32
    for (std::size_t r = 0; r < DR; ++r) av[r] = V::load(a[r] + k);
#pragma GCC unroll 32
    for (std::size_t c = 0; c < DC; ++c) {
      const reg bv = V::load(B + c * ldb + k);
#pragma GCC unroll 32
      for (std::size_t r = 0; r < DR; ++r) acc[r][c] = V::fma(av[r], bv, acc[r][c]);
    }
  }
  if (k < K) {
    const typename V::mask tail = V::first(K - k);
    reg av[DR];
#pragma GCC unroll 32
    for (std::size_t r = 0; r < DR; ++r) av[r] = V::load(a[r] + k, tail);
#pragma GCC unroll 32
    for (std::size_t c = 0; c < DC; ++c) {
      const reg bv = V::load(B + c * ldb + k, tail);
#pragma GCC unroll 32
      for (std::size_t r = 0; r < DR; ++r) acc[r][c] = V::fma(av[r], bv, acc[r][c]);
    }
  }
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < DC; ++c) {
      const T s = alpha * V::sum(acc[r][c]);
      T* out = C + r * ldc + c;
      *out = beta == T(0) ? s : s + beta * *out;
    }
}

// Columns [c0, c0 + nc), nc <= DC, of a row block: one instantiation per width.
template <class V, std::size_t DR, std::size_t DC>
void dot_cols(std::size_t nc, std::size_t K, const typename V::T* A, std::size_t lda,
              std::size_t rows, const typename V::T* B, std::size_t ldb, typename V::T alpha,
              typename V::T beta, typename V::T* C, std::size_t ldc) {
  if constexpr (DC > 1) {
    if (nc < DC) {
      dot_cols<V, DR, DC - 1>(nc, K, A, lda, rows, B, ldb, alpha, beta, C, ldc);
      return;
    }
  }
  dot_tile<V, DR, DC>(K, A, lda, rows, B, ldb, alpha, beta, C, ldc);
}

// C (M, N) = alpha * A (M, K) . B (N, K)^T + beta * C, K > 0.
template <class V, std::size_t DR, std::size_t DC>
void gemm_dot(std::size_t M, std::size_t N, std::size_t K, typename V::T alpha,
              const typename V::T* A, std::size_t lda, const typename V::T* B, std::size_t ldb,
              typename V::T beta, typename V::T* C, std::size_t ldc, int threads) {
  constexpr std::size_t kRowsPerTask = 8 * DR;
  const std::size_t tasks = (M + kRowsPerTask - 1) / kRowsPerTask;
  auto task = [&](std::size_t t) {
    const std::size_t i1 = (t + 1) * kRowsPerTask < M ? (t + 1) * kRowsPerTask : M;
    for (std::size_t i = t * kRowsPerTask; i < i1; i += DR) {
      const std::size_t rows = i1 - i < DR ? i1 - i : DR;
      for (std::size_t j = 0; j < N; j += DC) {
        const std::size_t nc = N - j < DC ? N - j : DC;
        dot_cols<V, DR, DC>(nc, K, A + i * lda, lda, rows, B + j * ldb, ldb, alpha, beta,
                            C + i * ldc + j, ldc);
      }
    }
  };
  run_tasks(threads, tasks, task);
}

}  // namespace
}  // namespace bpx::kernels
