#include "backpropx/gemm.hpp"

#include <algorithm>
#include <vector>

#include "backpropx/parallel.hpp"
#include "kernels/kernels.hpp"

namespace bpx {

template <class T>
void gemm_naive(Trans ta, Trans tb, std::size_t M, std::size_t N, std::size_t K, T alpha,
                const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C,
                std::size_t ldc) {
  for (std::size_t i = 0; i < M; ++i) {
    for (std::size_t j = 0; j < N; ++j) {
      T acc = 0;
      for (std::size_t k = 0; k < K; ++k) {
        const T a = ta == Trans::N ? A[i * lda + k] : A[k * lda + i];
        const T b = tb == Trans::N ? B[k * ldb + j] : B[j * ldb + k];
        acc += a * b;
      }
      C[i * ldc + j] = beta == T(0) ? alpha * acc : alpha * acc + beta * C[i * ldc + j];
    }
  }
}

template <class T>
void gemm(Trans ta, Trans tb, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A,
          std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc) {
  if (M == 0 || N == 0) return;
  kernels::gemm_dispatch<T>(ta == Trans::T, tb == Trans::T, M, N, K, alpha, A, lda, B, ldb, beta,
                            C, ldc);
}

template void gemm_naive<float>(Trans, Trans, std::size_t, std::size_t, std::size_t, float,
                                const float*, std::size_t, const float*, std::size_t, float,
                                float*, std::size_t);
template void gemm_naive<double>(Trans, Trans, std::size_t, std::size_t, std::size_t, double,
                                 const double*, std::size_t, const double*, std::size_t, double,
                                 double*, std::size_t);
template void gemm<float>(Trans, Trans, std::size_t, std::size_t, std::size_t, float, const float*,
                          std::size_t, const float*, std::size_t, float, float*, std::size_t);
template void gemm<double>(Trans, Trans, std::size_t, std::size_t, std::size_t, double,
                           const double*, std::size_t, const double*, std::size_t, double,
                           double*, std::size_t);

}  // namespace bpx
