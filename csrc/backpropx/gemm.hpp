// Matrix products of training, row-major, without materialised transposes:
//   forward      Y  = X . W^T      gemm(N, T, ...)   X (N, IN), W (OUT, IN)
//   input grad   dX = dY . W       gemm(N, N, ...)   dY (N, OUT)
//   weight grad  dW += dY^T . X    gemm(T, N, ..., beta = 1)
// C (M, N) = alpha * op(A) (M, K) . op(B) (K, N) + beta * C. When beta == 0,
// C is written without being read (it may hold garbage or NaN).
#pragma once

#include <cstddef>
#include <string>

namespace bpx {

enum class Trans : bool { N = false, T = true };

template <class T>
void gemm(Trans ta, Trans tb, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A,
          std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc);

// The textbook triple loop: the reference every fast path is tested against.
template <class T>
void gemm_naive(Trans ta, Trans tb, std::size_t M, std::size_t N, std::size_t K, T alpha,
                const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C,
                std::size_t ldc);

}  // namespace bpx
