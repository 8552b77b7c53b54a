// AVX-512 GEMM path: 512-bit registers, 12 x 2-register tiles (24 of the 32
// zmm registers accumulate), masked loads and stores for ragged columns.
//   float:  MR 12, NR 32;  double: MR 12, NR 16;  KC 512, tasks of 192 rows
//   (A block 384 / 768 KiB in the 1 MiB L2 of Zen 4) x 512 / 256 columns.
//   KC 512 beat 256 and 384 by 1-5 % on Zen 4 (fewer C tile passes).
// Built with -mavx512f -mavx512dq -mavx512vl -mavx512bw -mfma (CMakeLists.txt).
#include "kernels/gemm_isa.hpp"

#if defined(__AVX512F__) && defined(__FMA__)
#include <immintrin.h>

// GCC 12's AVX-512 headers seed some intrinsics with an "undefined" vector and
// then warn about it once inlined (GCC bug 105593); the code is correct.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "kernels/gemm_driver.hpp"
#include "kernels/gemm_microkernel.hpp"

namespace bpx::kernels {
namespace {

struct VecF32 {
  using T = float;
  using reg = __m512;
  using mask = __mmask16;
  static constexpr std::size_t W = 16;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg load(const T* p) { return _mm512_loadu_ps(p); }
  static reg load(const T* p, mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static reg bcast(T x) { return _mm512_set1_ps(x); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static void store(T* p, reg v) { _mm512_storeu_ps(p, v); }
  static void store(T* p, reg v, mask m) { _mm512_mask_storeu_ps(p, m, v); }
  static mask first(std::size_t n) { return static_cast<mask>((1u << n) - 1u); }
  static T sum(reg v) {  // halves, quarters, ... (no extract: GCC 12 warns inside it)
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v),
                                   _mm512_castps512_ps256(_mm512_shuffle_f32x4(v, v, 0xEE)));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(q, _mm_shuffle_ps(q, q, 1)));
  }
};

struct VecF64 {
  using T = double;
  using reg = __m512d;
  using mask = __mmask8;
  static constexpr std::size_t W = 8;
  static reg zero() { return _mm512_setzero_pd(); }
  static reg load(const T* p) { return _mm512_loadu_pd(p); }
  static reg load(const T* p, mask m) { return _mm512_maskz_loadu_pd(m, p); }
  static reg bcast(T x) { return _mm512_set1_pd(x); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_pd(a, b, c); }
  static reg mul(reg a, reg b) { return _mm512_mul_pd(a, b); }
  static void store(T* p, reg v) { _mm512_storeu_pd(p, v); }
  static void store(T* p, reg v, mask m) { _mm512_mask_storeu_pd(p, m, v); }
  static mask first(std::size_t n) { return static_cast<mask>((1u << n) - 1u); }
  static T sum(reg v) {
    const __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(v),
                                    _mm512_castpd512_pd256(_mm512_shuffle_f64x2(v, v, 0xEE)));
    const __m128d q = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    return _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q)));
  }
};

// vector, MR, KC, MC, NT, DR, DC: see Kern in gemm_microkernel.hpp
using KernF32 = Kern<VecF32, 12, 512, 192, 512, 4, 5>;
using KernF64 = Kern<VecF64, 12, 512, 192, 256, 4, 5>;

}  // namespace

template <class T>
void gemm_avx512(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha,
                 const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C,
                 std::size_t ldc) {
  gemm_driver<KernFor<T, KernF32, KernF64>>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb,
                                            beta, C, ldc);
}

}  // namespace bpx::kernels

#else  // compiled without AVX-512: never selected (isa_supported says no), kept linkable
#include "kernels/kernels.hpp"

namespace bpx::kernels {
template <class T>
void gemm_avx512(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha,
                 const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C,
                 std::size_t ldc) {
  gemm_generic<T>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
}  // namespace bpx::kernels
#endif

namespace bpx::kernels {
template void gemm_avx512<float>(bool, bool, std::size_t, std::size_t, std::size_t, float,
                                 const float*, std::size_t, const float*, std::size_t, float,
                                 float*, std::size_t);
template void gemm_avx512<double>(bool, bool, std::size_t, std::size_t, std::size_t, double,
                                  const double*, std::size_t, const double*, std::size_t, double,
                                  double*, std::size_t);
}  // namespace bpx::kernels
