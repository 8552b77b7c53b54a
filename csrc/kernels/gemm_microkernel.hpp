// The register-tiled GEMM micro-kernel, written once over a vector type `V`
// supplied by each instruction-set file:
//
//   struct V {
//     using T, reg, mask;  static constexpr size_t W;  // lanes per register
//     reg zero(); reg load(const T*); reg load(const T*, mask);   // masked: zero lanes
//     reg bcast(T); reg fma(reg a, reg b, reg c);  // a * b + c
//     reg mul(reg, reg); void store(T*, reg); void store(T*, reg, mask);
//     mask first(size_t n);                        // lanes [0, n), n <= W
//   };
//
// A tile is MR rows x NR = 2 * W columns of C, kept in 2 * MR registers. Per
// k it loads two vectors of B and broadcasts MR elements of A, so each C
// element accumulates its products in k order with one fused multiply-add
// each (or multiply and add where the set has no FMA).
//
// Compiled once per instruction set: internal linkage only (see gemm_driver.hpp).
#pragma once

#include <cstddef>
#include <type_traits>

namespace bpx::kernels {
namespace {

// C (m, n) = alpha * A (m, kc) . B (kc, n) + beta * C, m <= R <= MR; see
// gemm_driver.hpp for the layouts of a and b. kPacked: a[k * MR + i], else
// a[i * rs + k * cs]. R rows are computed: fewer than MR on the last panel
// of a product whose M is no multiple of MR (M = 32 of a batch wastes 4 of
// 36 rows with R = MR = 6).
template <class V, std::size_t MR, std::size_t R, bool kPacked, bool kFullN, bool kTransC>
inline void micro_tile(std::size_t kc, const typename V::T* a, std::size_t rs, std::size_t cs,
                       const typename V::T* b, std::size_t ldb, typename V::T* c, std::size_t ldc,
                       std::size_t m, std::size_t n, typename V::T alpha, typename V::T beta) {
  using T = typename V::T;
  using reg = typename V::reg;
  constexpr std::size_t W = V::W;
  const typename V::mask m0 = V::first(kFullN || n >= W ? W : n);
  const typename V::mask m1 = V::first(kFullN ? W : (n > W ? n - W : 0));

  // The tile of C is read (or written) only after the k loop, and on a
  // large product it has left L1 and L2 since the previous KC slice: fetch
  // it now, so the epilogue does not wait for memory.
  if (!kTransC) {
#pragma GCC unroll 32
    for (std::size_t i = 0; i < R; ++i) {
      if (i >= m) break;
      __builtin_prefetch(c + i * ldc, 0, 3);
      __builtin_prefetch(c + i * ldc + 2 * W - 1, 0, 3);
    }
  }

  reg acc[R][2];
#pragma GCC unroll 32
  for (std::size_t i = 0; i < R; ++i) acc[i][0] = acc[i][1] = V::zero();

  if constexpr (kPacked) {
#pragma GCC unroll 2
    for (std::size_t k = 0; k < kc; ++k) {
      const reg b0 = kFullN ? V::load(b) : V::load(b, m0);
      const reg b1 = kFullN ? V::load(b + W) : V::load(b + W, m1);
#pragma GCC unroll 32
      for (std::size_t i = 0; i < R; ++i) {
        const reg ai = V::bcast(a[i]);
        acc[i][0] = V::fma(ai, b0, acc[i][0]);
        acc[i][1] = V::fma(ai, b1, acc[i][1]);
      }
      a += MR;
      b += ldb;
    }
  } else {
    // Rows past m repeat the last row: computed, never stored, never out of bounds.
    const T* ap[R];
#pragma GCC unroll 32
    for (std::size_t i = 0; i < R; ++i) ap[i] = a + (i < m ? i : m - 1) * rs;
    std::size_t off = 0;
    for (std::size_t k = 0; k < kc; ++k) {
      const reg b0 = kFullN ? V::load(b) : V::load(b, m0);
      const reg b1 = kFullN ? V::load(b + W) : V::load(b + W, m1);
#pragma GCC unroll 32
      for (std::size_t i = 0; i < R; ++i) {
        const reg ai = V::bcast(ap[i][off]);
        acc[i][0] = V::fma(ai, b0, acc[i][0]);
        acc[i][1] = V::fma(ai, b1, acc[i][1]);
      }
      off += cs;
      b += ldb;
    }
  }

  // A transposed C (element (i, j) at c[j * ldc + i]) goes through a
  // row-major copy, so both layouts share the epilogue's arithmetic.
  alignas(64) T tile[R * 2 * W];
  T* out = c;
  std::size_t ld_out = ldc;
  if (kTransC) {
    out = tile;
    ld_out = 2 * W;
    for (std::size_t i = 0; i < R * 2 * W; ++i) tile[i] = T(0);
    if (beta != T(0))
      for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j) tile[i * 2 * W + j] = c[j * ldc + i];
  }

  const reg va = V::bcast(alpha);
  const reg vb = V::bcast(beta);
#pragma GCC unroll 32
  for (std::size_t i = 0; i < R; ++i) {
    if (i >= m) break;
    T* row = out + i * ld_out;
    reg r0 = V::mul(va, acc[i][0]);
    reg r1 = V::mul(va, acc[i][1]);
    if (beta != T(0)) {
      r0 = V::fma(vb, kFullN ? V::load(row) : V::load(row, m0), r0);
      r1 = V::fma(vb, kFullN ? V::load(row + W) : V::load(row + W, m1), r1);
    }
    if (kFullN) {
      V::store(row, r0);
      V::store(row + W, r1);
    } else {
      V::store(row, r0, m0);
      V::store(row + W, r1, m1);
    }
  }
  if (kTransC)
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t i = 0; i < m; ++i) c[j * ldc + i] = tile[i * 2 * W + j];
}

// The `Kern::run` of gemm_driver.hpp for a vector type V and MR rows. Every
// flag is a template parameter: a runtime one in the same function costs the
// k loop registers (GCC then spills an accumulator).
template <class V, std::size_t MR, std::size_t R = MR>
void micro_run(std::size_t kc, const typename V::T* a, std::size_t rs, std::size_t cs,
               bool packed, const typename V::T* b, std::size_t ldb, typename V::T* c,
               std::size_t ldc, bool c_trans, std::size_t m, std::size_t n, typename V::T alpha,
               typename V::T beta) {
  // The last panel of rows: the smallest of MR / 3, 2 MR / 3, MR rows that covers m.
  if constexpr (R == MR && MR % 3 == 0) {
    if (m <= MR / 3) {
      micro_run<V, MR, MR / 3>(kc, a, rs, cs, packed, b, ldb, c, ldc, c_trans, m, n, alpha, beta);
      return;
    }
    if (m <= 2 * MR / 3) {
      micro_run<V, MR, 2 * MR / 3>(kc, a, rs, cs, packed, b, ldb, c, ldc, c_trans, m, n, alpha,
                                   beta);
      return;
    }
  }
  const bool full = n == 2 * V::W;
#define BPX_TILE(P, F, TC) \
  micro_tile<V, MR, R, P, F, TC>(kc, a, rs, cs, b, ldb, c, ldc, m, n, alpha, beta)
  if (c_trans) {  // the skinny path: masked loads suffice
    if (packed) BPX_TILE(true, false, true);
    else BPX_TILE(false, false, true);
  } else if (packed) {
    if (full) BPX_TILE(true, true, false);
    else BPX_TILE(true, false, false);
  } else {
    if (full) BPX_TILE(false, true, false);
    else BPX_TILE(false, false, false);
  }
#undef BPX_TILE
}

// One ISA's configuration for gemm_driver: the vector type, MR rows of the
// register tile, KC depth, MC x NT task tiles and DR x DC skinny tiles (see
// gemm_driver.hpp and gemm_dot.hpp).
template <class Vec, std::size_t kMR, std::size_t kKC, std::size_t kMC, std::size_t kNT,
          std::size_t kDR, std::size_t kDC>
struct Kern {
  using V = Vec;
  using T = typename V::T;
  static constexpr std::size_t MR = kMR, NR = 2 * V::W, KC = kKC, MC = kMC, NT = kNT;
  static constexpr std::size_t DR = kDR, DC = kDC;
  static void run(std::size_t kc, const T* a, std::size_t rs, std::size_t cs, bool packed,
                  const T* b, std::size_t ldb, T* c, std::size_t ldc, bool c_trans, std::size_t m,
                  std::size_t n, T alpha, T beta) {
    micro_run<V, MR>(kc, a, rs, cs, packed, b, ldb, c, ldc, c_trans, m, n, alpha, beta);
  }
};

// The float or double configuration, by element type.
template <class T, class KernF32, class KernF64>
using KernFor = std::conditional_t<std::is_same_v<T, float>, KernF32, KernF64>;

}  // namespace
}  // namespace bpx::kernels
