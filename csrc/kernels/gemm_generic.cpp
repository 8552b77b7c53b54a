// Portable GEMM path, for any CPU: the shared driver and micro-kernel over
// 16-byte GCC/Clang vector extensions (SSE2 on x86-64, NEON on ARM), built
// without instruction-set flags.
//   float: MR 4, NR 8;  double: MR 4, NR 4;  KC 256.
#include <cstddef>
#include <cstring>

#include "kernels/gemm_driver.hpp"
#include "kernels/gemm_microkernel.hpp"
#include "kernels/kernels.hpp"

namespace bpx::kernels {
namespace {

template <class Elem>
struct Vec16 {
  using T = Elem;
  typedef T reg __attribute__((vector_size(16)));
  using mask = std::size_t;  // number of leading lanes
  static constexpr std::size_t W = 16 / sizeof(T);
  static reg zero() { return reg{}; }
  static reg load(const T* p) {
    reg r;
    std::memcpy(&r, p, sizeof r);
    return r;
  }
  static reg load(const T* p, mask n) {
    reg r{};
    for (std::size_t l = 0; l < n; ++l) r[l] = p[l];
    return r;
  }
  static reg bcast(T x) { return reg{} + x; }
  static reg fma(reg a, reg b, reg c) { return a * b + c; }
  static reg mul(reg a, reg b) { return a * b; }
  static void store(T* p, reg v) { std::memcpy(p, &v, sizeof v); }
  static void store(T* p, reg v, mask n) {
    for (std::size_t l = 0; l < n; ++l) p[l] = v[l];
  }
  static mask first(std::size_t n) { return n; }
  static T sum(reg v) {
    T s = v[0];
    for (std::size_t l = 1; l < W; ++l) s += v[l];
    return s;
  }
};

template <class Elem>
using KernGeneric = Kern<Vec16<Elem>, 4, 256, 128, 256, 2, 4>;

}  // namespace

template <class T>
void gemm_generic(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K,
                  T alpha, const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C,
                  std::size_t ldc) {
  gemm_driver<KernGeneric<T>>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

template void gemm_generic<float>(bool, bool, std::size_t, std::size_t, std::size_t, float,
                                  const float*, std::size_t, const float*, std::size_t, float,
                                  float*, std::size_t);
template void gemm_generic<double>(bool, bool, std::size_t, std::size_t, std::size_t, double,
                                   const double*, std::size_t, const double*, std::size_t, double,
                                   double*, std::size_t);

}  // namespace bpx::kernels
