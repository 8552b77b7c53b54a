// AVX2 GEMM path: 256-bit registers, 6 x 2-register tiles (12 of the 16
// ymm registers accumulate), masked loads and stores for ragged columns.
//   float:  MR 6, NR 16;  double: MR 6, NR 8;  KC 256; tasks of 288 x 1024
//   (float) or 288 x 512 (double) elements of C.
// Built with -mavx2 -mfma (CMakeLists.txt).
#include "kernels/gemm_isa.hpp"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include "kernels/gemm_driver.hpp"
#include "kernels/gemm_microkernel.hpp"

namespace bpx::kernels {
namespace {

// Lane masks for maskload/maskstore: lanes [0, n) have the sign bit set.
inline __m256i lanes_below(std::size_t n, int lanes) {
  const __m256i iota = lanes == 8 ? _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)
                                  : _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), iota);
}

struct VecF32 {
  using T = float;
  using reg = __m256;
  using mask = __m256i;
  static constexpr std::size_t W = 8;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg load(const T* p) { return _mm256_loadu_ps(p); }
  static reg load(const T* p, mask m) { return _mm256_maskload_ps(p, m); }
  static reg bcast(T x) { return _mm256_set1_ps(x); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static void store(T* p, reg v) { _mm256_storeu_ps(p, v); }
  static void store(T* p, reg v, mask m) { _mm256_maskstore_ps(p, m, v); }
  static mask first(std::size_t n) { return lanes_below(n, 8); }
  static T sum(reg v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
  }
};

struct VecF64 {
  using T = double;
  using reg = __m256d;
  using mask = __m256i;
  static constexpr std::size_t W = 4;
  static reg zero() { return _mm256_setzero_pd(); }
  static reg load(const T* p) { return _mm256_loadu_pd(p); }
  static reg load(const T* p, mask m) { return _mm256_maskload_pd(p, m); }
  static reg bcast(T x) { return _mm256_set1_pd(x); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_pd(a, b, c); }
  static reg mul(reg a, reg b) { return _mm256_mul_pd(a, b); }
  static void store(T* p, reg v) { _mm256_storeu_pd(p, v); }
  static void store(T* p, reg v, mask m) { _mm256_maskstore_pd(p, m, v); }
  static mask first(std::size_t n) { return lanes_below(n, 4); }
  static T sum(reg v) {
    const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
  }
};

// vector, MR, KC, MC, NT, DR, DC: see Kern in gemm_microkernel.hpp
// KC stays 256 (it fixes the order of the sums, so the bits); MC and NT
// were measured on Zen 5 against 96 / 144 / 240 / 480 rows: tasks of 288
// rows keep a 288 / 576 KiB A block in L2 and re-read each packed B panel
// fewer times (+2-6 % on the square and dX products), and cover a batch of
// 256 in one row of tasks (B then packs privately, gemm_driver.hpp).
using KernF32 = Kern<VecF32, 6, 256, 288, 1024, 2, 5>;
using KernF64 = Kern<VecF64, 6, 256, 288, 512, 2, 5>;

}  // namespace

template <class T>
void gemm_avx2(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha,
                 const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C,
                 std::size_t ldc) {
  gemm_driver<KernFor<T, KernF32, KernF64>>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb,
                                            beta, C, ldc);
}

}  // namespace bpx::kernels

#else  // compiled without AVX2: never selected (isa_supported says no), kept linkable
#include "kernels/kernels.hpp"

namespace bpx::kernels {
template <class T>
void gemm_avx2(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha,
                 const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C,
                 std::size_t ldc) {
  gemm_generic<T>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
}  // namespace bpx::kernels
#endif

namespace bpx::kernels {
template void gemm_avx2<float>(bool, bool, std::size_t, std::size_t, std::size_t, float,
                                 const float*, std::size_t, const float*, std::size_t, float,
                                 float*, std::size_t);
template void gemm_avx2<double>(bool, bool, std::size_t, std::size_t, std::size_t, double,
                                  const double*, std::size_t, const double*, std::size_t, double,
                                  double*, std::size_t);
}  // namespace bpx::kernels
