// The transposing half of packing: interleave `rows` rows of a row-major
// matrix into R-wide columns,
//   dst[k * R + r] = r < rows ? src[r * ld + k] : 0     for k < kb, r < R,
// used for op(A) = A (panels of MR rows) and op(B) = B^T (panels of NR columns).
// A plain loop everywhere, 8 x 8 (float) / 4 x 4 (double) register transposes
// where AVX is compiled in. Internal linkage: compiled once per instruction set.
#pragma once

#include <cstddef>

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace bpx::kernels {
namespace {

template <std::size_t R, class T>
void interleave_scalar(const T* src, std::size_t ld, std::size_t rows, std::size_t k0,
                       std::size_t kb, T* dst) {
  for (std::size_t k = k0; k < kb; ++k) {
    T* d = dst + k * R;
    for (std::size_t r = 0; r < R; ++r) d[r] = r < rows ? src[r * ld + k] : T(0);
  }
}

#if defined(__AVX__)
// Stores lanes [0, n) of v, n <= 8 (float) or n <= 4 (double). The partial
// widths of the 6-row panels (6 floats, 2 doubles) are one or two plain
// stores: a spill to the stack and a scalar copy cost a third of packing A.
inline void store_lanes(float* p, __m256 v, std::size_t n) {
  if (n == 8) {
    _mm256_storeu_ps(p, v);
  } else if (n == 6) {
    _mm_storeu_ps(p, _mm256_castps256_ps128(v));
    _mm_storel_pi(reinterpret_cast<__m64*>(p + 4), _mm256_extractf128_ps(v, 1));
  } else if (n == 4) {
    _mm_storeu_ps(p, _mm256_castps256_ps128(v));
  } else {
    alignas(32) float t[8];
    _mm256_store_ps(t, v);
    for (std::size_t l = 0; l < n; ++l) p[l] = t[l];
  }
}
inline void store_lanes(double* p, __m256d v, std::size_t n) {
  if (n == 4) {
    _mm256_storeu_pd(p, v);
  } else if (n == 2) {
    _mm_storeu_pd(p, _mm256_castpd256_pd128(v));
  } else {
    alignas(32) double t[4];
    _mm256_store_pd(t, v);
    for (std::size_t l = 0; l < n; ++l) p[l] = t[l];
  }
}

template <std::size_t R>
void interleave(const float* src, std::size_t ld, std::size_t rows, std::size_t kb, float* dst) {
  // Row groups outside, k inside: 8 sequential streams; k outside would keep
  // R rows in flight, which thrash one L1 set when ld is a multiple of 4 KiB.
  const std::size_t k_end = kb / 8 * 8;
  for (std::size_t r = 0; r < R; r += 8) {
    for (std::size_t k = 0; k < k_end; k += 8) {
      __m256 v[8];
      for (std::size_t q = 0; q < 8; ++q)
        v[q] = r + q < rows ? _mm256_loadu_ps(src + (r + q) * ld + k) : _mm256_setzero_ps();
      // 8 x 8 transpose: v[q] lane l -> w[l] lane q.
      const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
      const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
      const __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
      const __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
      const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
      const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
      const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
      const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
      const __m256 w[8] = {
          _mm256_permute2f128_ps(s0, s4, 0x20), _mm256_permute2f128_ps(s1, s5, 0x20),
          _mm256_permute2f128_ps(s2, s6, 0x20), _mm256_permute2f128_ps(s3, s7, 0x20),
          _mm256_permute2f128_ps(s0, s4, 0x31), _mm256_permute2f128_ps(s1, s5, 0x31),
          _mm256_permute2f128_ps(s2, s6, 0x31), _mm256_permute2f128_ps(s3, s7, 0x31)};
      const std::size_t lanes = R - r < 8 ? R - r : 8;
      for (std::size_t q = 0; q < 8; ++q) store_lanes(dst + (k + q) * R + r, w[q], lanes);
    }
  }
  interleave_scalar<R>(src, ld, rows, k_end, kb, dst);
}

template <std::size_t R>
void interleave(const double* src, std::size_t ld, std::size_t rows, std::size_t kb,
                double* dst) {
  const std::size_t k_end = kb / 4 * 4;
  for (std::size_t r = 0; r < R; r += 4) {
    for (std::size_t k = 0; k < k_end; k += 4) {
      __m256d v[4];
      for (std::size_t q = 0; q < 4; ++q)
        v[q] = r + q < rows ? _mm256_loadu_pd(src + (r + q) * ld + k) : _mm256_setzero_pd();
      const __m256d t0 = _mm256_unpacklo_pd(v[0], v[1]), t1 = _mm256_unpackhi_pd(v[0], v[1]);
      const __m256d t2 = _mm256_unpacklo_pd(v[2], v[3]), t3 = _mm256_unpackhi_pd(v[2], v[3]);
      const __m256d w[4] = {
          _mm256_permute2f128_pd(t0, t2, 0x20), _mm256_permute2f128_pd(t1, t3, 0x20),
          _mm256_permute2f128_pd(t0, t2, 0x31), _mm256_permute2f128_pd(t1, t3, 0x31)};
      const std::size_t lanes = R - r < 4 ? R - r : 4;
      for (std::size_t q = 0; q < 4; ++q) store_lanes(dst + (k + q) * R + r, w[q], lanes);
    }
  }
  interleave_scalar<R>(src, ld, rows, k_end, kb, dst);
}
#else
template <std::size_t R, class T>
void interleave(const T* src, std::size_t ld, std::size_t rows, std::size_t kb, T* dst) {
  interleave_scalar<R>(src, ld, rows, 0, kb, dst);
}
#endif

}  // namespace
}  // namespace bpx::kernels
