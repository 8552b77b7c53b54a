// The blocking, packing and threading driver shared by every GEMM path
// (GotoBLAS / BLIS style), templated on a micro-kernel description `Kern`:
//
//   struct Kern {
//     using T = float;                 // element type
//     static constexpr size_t MR, NR;  // register tile: MR rows x NR columns of C
//     static constexpr size_t KC;      // depth of one rank-KC update of C
//     static constexpr size_t MC, NT;  // rows, columns of a compute task (A block in L2)
//     using V;                         // vector type (gemm_microkernel.hpp)
//     static constexpr size_t DR, DC;  // tile of the skinny path (gemm_dot.hpp)
//     // C (m, n) = alpha * sum_k a(i, k) b(k, j) + beta * C, m <= MR, n <= NR, k < kc,
//     // where b(k, j) = b[k * ldb + j] and a(i, k) is
//     //   packed: a[k * MR + i]          (zero-padded rows beyond m)
//     //   strided: a[i * rs + k * cs]     (rows beyond m are never read)
//     // beta == 0 must not read C. c_trans: C (i, j) is c[j * ldc + i].
//     static void run(size_t kc, const T* a, size_t rs, size_t cs, bool packed, const T* b,
//                     size_t ldb, T* c, size_t ldc, bool c_trans, size_t m, size_t n, T alpha,
//                     T beta);
//   };
//
// Loops: chunks of K (whole KC slices, kPackBudget), N (kMaxNB) and M
// (kMaxMB) bound the packing buffers; each chunk is one parallel_for over
// tasks, MC x NT tiles of C.
// A task walks KC slices, then NR-column micro-panels of packed op(B), then
// MR-row micro-panels of packed op(A) (the A block stays in L2, the B
// micro-panel in L1/L2). The first task to need a slice of a panel packs it
// (transposes handled by the packing), so there is no barrier between packing
// and computing and a panel is packed once per chunk whatever the threads.
//
// Every element of C sums its products in one fixed order: k ascending inside
// a KC slice, slices added to C in ascending order. Block sizes and the choice
// of path depend on the shape only, never on the thread count, and tasks only
// partition C, so results are bit-identical for any number of threads.
//
// This header is compiled once per instruction set, with that set's flags,
// so everything here has internal linkage (anonymous namespace) and uses no
// std:: templates that the linker could merge across flag sets.
#pragma once

#include <cstddef>
#include <thread>

#include "kernels/gemm_dot.hpp"
#include "kernels/gemm_interleave.hpp"
#include "kernels/gemm_isa.hpp"
#include "kernels/gemm_tasks.hpp"

namespace bpx::kernels {
namespace {

using std::size_t;

inline size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }
inline size_t round_up(size_t a, size_t b) { return (a + b - 1) / b * b; }

// Chunks of the operands packed at once: bound the packing buffers to
// (kMaxMB + kMaxNB) * kMaxKB elements, and to kPackBudget bytes where one KC
// slice allows (see gemm_blocked).
constexpr size_t kMaxMB = 1024;
constexpr size_t kMaxNB = 2048;
constexpr size_t kMaxKB = 1024;
constexpr size_t kPackBudget = size_t(512) << 10;
// Products X . W^T with at most this many columns take the dot-product path.
constexpr size_t kDotMaxN = 16;
// Forward products X . W^T in double of at most this many rows (a batch)
// run as C^T = W . X^T, which reads W in place instead of transposing it
// into panels: batch 16 +28 % (AVX2), +90 % (AVX-512); batch 32 loses 6-20 %,
// and float gains 4 % with AVX2 but loses 19 % with AVX-512 (Zen 5).
constexpr size_t kSwapMaxM = 16;
// KC slices shallower than this walk C by rows of micro-tiles (see the task;
// K = 16: 57 -> 94 GFLOP/s float, 42 -> 48 double; K = 32, 64 unchanged).
constexpr size_t kRowsFirstBelowKC = 48;

// C (m, n) = beta * C without reading C when beta == 0 (the K == 0 product).
template <class T>
void scale_c(size_t m, size_t n, T beta, T* C, size_t ldc) {
  for (size_t i = 0; i < m; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0)) {
      for (size_t j = 0; j < n; ++j) c[j] = T(0);
    } else {
      for (size_t j = 0; j < n; ++j) c[j] *= beta;
    }
  }
}

// Packs op(A)(i0 : i0 + m, k0 : k0 + kb) = A as one MR-row panel,
// dst[k * MR + i]: a transpose (A^T packs by groups, pack_a_rows).
template <class Kern, class T>
void pack_a_panel(const T* A, size_t lda, size_t i0, size_t m, size_t k0, size_t kb, T* dst) {
  interleave<Kern::MR>(A + i0 * lda + k0, lda, m, kb, dst);
}

// Packs op(A)(i0 : i0 + m, k0 : k0 + kb) = A^T, m <= kAGroup MR, as MR-row
// panels (panel q at dst + q stride, dst[k * MR + i], the last one
// zero-padded): row k of A holds a row of each panel, so the group reads
// 8 MR contiguous elements a row where one panel read MR (the rows, lda
// apart, each a wait on memory: dW = dY^T . X).
template <class Kern, class T>
void pack_a_rows(const T* A, size_t lda, size_t i0, size_t m, size_t k0, size_t kb, T* dst,
                 size_t stride) {
  constexpr size_t MR = Kern::MR;
  const size_t full = m / MR, rest = m % MR;
  for (size_t k = 0; k < kb; ++k) {
    const T* src = A + (k0 + k) * lda + i0;
    T* d = dst + k * MR;
    for (size_t q = 0; q < full; ++q)
      for (size_t i = 0; i < MR; ++i) d[q * stride + i] = src[q * MR + i];
    if (rest != 0)
      for (size_t i = 0; i < MR; ++i) d[full * stride + i] = i < rest ? src[full * MR + i] : T(0);
  }
}

// Packs op(B)(k0 : k0 + kb, j0 : j0 + n) as one NR-column panel: dst[k * NR + j].
template <class Kern, class T>
void pack_b_panel(bool trans_b, const T* B, size_t ldb, size_t j0, size_t n, size_t k0, size_t kb,
                  T* dst) {
  constexpr size_t NR = Kern::NR;
  if (!trans_b) {  // op(B)(k, j) = B[k * ldb + j]: a row copy, two vectors a row
    // (GCC left the plain loop scalar: 4 % of square 1024 went to it).
    using V = typename Kern::V;
    constexpr size_t W = V::W;
    static_assert(NR == 2 * W, "a panel is two vectors wide");
    if (n == NR) {
      for (size_t k = 0; k < kb; ++k) {
        const T* src = B + (k0 + k) * ldb + j0;
        V::store(dst + k * NR, V::load(src));
        V::store(dst + k * NR + W, V::load(src + W));
      }
    } else {  // masked loads read no element past column n; the rest is zero
      const typename V::mask m0 = V::first(n < W ? n : W);
      const typename V::mask m1 = V::first(n > W ? n - W : 0);
      for (size_t k = 0; k < kb; ++k) {
        const T* src = B + (k0 + k) * ldb + j0;
        V::store(dst + k * NR, V::load(src, m0));
        V::store(dst + k * NR + W, V::load(src + W, m1));
      }
    }
    return;
  }
  // op(B)(k, j) = B[j * ldb + k]: a transpose.
  interleave<NR>(B + j0 * ldb + k0, ldb, n, kb, dst);
}

// Panels of op(B) = B (not transposed) packed at once (pack_b_rows), by a
// task for itself or into the shared buffer.
constexpr size_t kOwnPanels = 4;
// Panels of op(A) = A^T packed at once (pack_a_rows).
constexpr size_t kAGroup = 8;

// Packs op(B)(k0 : k0 + kb, j0 : j0 + n) = B (no transpose), n <= kOwnPanels
// NR, as NR-column panels of kb rows (panel q at dst + q stride, the last one
// zero-padded). Row by row: one panel alone reads a single line per row,
// rows ldb apart, and waits on memory for each (9 % of W3's dX); four panels
// read 256 contiguous bytes a row.
template <class Kern, class T>
void pack_b_rows(const T* B, size_t ldb, size_t j0, size_t n, size_t k0, size_t kb, T* dst,
                 size_t stride) {
  using V = typename Kern::V;
  constexpr size_t NR = Kern::NR, W = V::W;
  const size_t full = n / NR, rest = n % NR;
  const typename V::mask m0 = V::first(rest < W ? rest : W);
  const typename V::mask m1 = V::first(rest > W ? rest - W : 0);
  for (size_t k = 0; k < kb; ++k) {
    const T* src = B + (k0 + k) * ldb + j0;
    T* d = dst + k * NR;
    for (size_t q = 0; q < full; ++q) {
      V::store(d + q * stride, V::load(src + q * NR));
      V::store(d + q * stride + W, V::load(src + q * NR + W));
    }
    if (rest != 0) {
      V::store(d + full * stride, V::load(src + full * NR, m0));
      V::store(d + full * stride + W, V::load(src + full * NR + W, m1));
    }
  }
}

// The source of a slice of a B panel, op(B)(k0 : k0 + kb, j0 : j0 + n), as
// numbered pieces of at most a cache line each: kb rows of n elements, or
// (transposed) n rows of kb elements, a line at a time.
template <class T>
size_t b_source_pieces(bool trans_b, size_t n, size_t kb) {
  constexpr size_t L = 64 / sizeof(T);
  return trans_b ? n * ((kb + L - 1) / L) : kb;
}

// Fetches pieces [from, to) of that source into L2. Packing a panel of an
// operand too large for L2 otherwise waits on memory for each of its rows
// (a row copy of B reads one line per row, rows ldb apart: 13 % of dX in
// float64 was that wait); fetched a little at a time while the previous
// panel computes, the lines are there when the panel is packed.
template <class T>
void prefetch_b_source(bool trans_b, const T* B, size_t ldb, size_t j0, size_t n, size_t k0,
                       size_t kb, size_t from, size_t to) {
  constexpr size_t L = 64 / sizeof(T);
  if (!trans_b) {
    for (size_t k = from; k < to; ++k) {
      const T* src = B + (k0 + k) * ldb + j0;
      __builtin_prefetch(src, 0, 2);
      __builtin_prefetch(src + n - 1, 0, 2);
    }
    return;
  }
  const size_t per_row = (kb + L - 1) / L;
  for (size_t q = from; q < to; ++q) {
    const size_t j = q / per_row, off = (q % per_row) * L;
    __builtin_prefetch(B + (j0 + j) * ldb + k0 + off, 0, 2);
  }
}

// Tasks: mt x nt tiles of a chunk's mb x nb block of C (multiples of MR x NR
// on a fixed grid), made smaller until every thread has a few.
template <class Kern>
void task_grid(size_t mb, size_t nb, int threads, size_t* mt_out, size_t* nt_out) {
  constexpr size_t MR = Kern::MR, NR = Kern::NR;
  size_t mt = min_sz(round_up(Kern::MC, MR), round_up(mb, MR));
  size_t nt = min_sz(round_up(Kern::NT, NR), round_up(nb, NR));
  if (threads > 1) {
    const size_t want = 4 * static_cast<size_t>(threads);
    auto count = [&] { return ((mb + mt - 1) / mt) * ((nb + nt - 1) / nt); };
    while (count() < want && (nt > NR || mt > MR)) {
      if (nt > NR && (nt >= mt || mt <= MR)) nt = round_up(nt / 2, NR);
      else mt = round_up(mt / 2, MR);
    }
  }
  *mt_out = mt;
  *nt_out = nt;
}

enum PanelState : int { kUnpacked = 0, kPacking = 1, kPacked = 2 };

// Runs pack() if no other thread has claimed the panel, else waits until the
// claiming thread has finished it.
template <class Pack>
void ensure_packed(int* state, Pack&& pack) {
  if (__atomic_load_n(state, __ATOMIC_ACQUIRE) == kPacked) return;
  int expected = kUnpacked;
  if (__atomic_compare_exchange_n(state, &expected, kPacking, false, __ATOMIC_ACQ_REL,
                                  __ATOMIC_ACQUIRE)) {
    pack();
    __atomic_store_n(state, kPacked, __ATOMIC_RELEASE);
    return;
  }
  for (unsigned spin = 0; __atomic_load_n(state, __ATOMIC_ACQUIRE) != kPacked; ++spin) {
    if (spin > 64) std::this_thread::yield();  // the packer may have lost its core
  }
}

// C (M, N) = alpha op(A) op(B) + beta C with C (i, j) at C[i * ldc + j], or at
// C[j * ldc + i] when c_trans. M, N, K > 0.
template <class Kern>
void gemm_blocked(bool trans_a, bool trans_b, size_t M, size_t N, size_t K,
                  typename Kern::T alpha, const typename Kern::T* A, size_t lda,
                  const typename Kern::T* B, size_t ldb, typename Kern::T beta,
                  typename Kern::T* C, size_t ldc, bool c_trans) {
  using T = typename Kern::T;
  constexpr size_t MR = Kern::MR, NR = Kern::NR, KC = Kern::KC;
  const size_t c_rs = c_trans ? 1 : ldc, c_cs = c_trans ? ldc : 1;

  // Packing pays when a panel is reused: A across column tiles, B across row
  // tiles. A transposed B must be packed (the kernel reads rows of op(B));
  // skinny products read their operands in place.
  const bool pack_b = trans_b || M > 4 * MR;
  const bool pack_a = N > 2 * NR && M > MR;
  const int threads = gemm_threads(double(M) * double(N) * double(K));

  const size_t NB = min_sz(N, kMaxNB);
  const size_t MB = min_sz(M, kMaxMB);
  // Chunks of K: as many KC slices (up to kMaxKB deep) as keep the shared
  // packing buffers within kPackBudget. Big buffers leave the cache between
  // slices and between products (one slice of square 1024 packs 2 MiB; 4 MiB
  // chunks cost it 5-8 % when another library ran in between); small ones
  // (a batch of 32 rows of A) take whole K at once, in fewer parallel
  // regions, each ending in a join. B packs into the shared buffer only with
  // more than one row of tasks (see b_private below).
  size_t mt0, nt0;
  task_grid<Kern>(MB, NB, threads, &mt0, &nt0);
  const bool b_shared = pack_b && mt0 < MB;
  const size_t slice_bytes =
      ((pack_a ? round_up(MB, MR) : 0) + (b_shared ? round_up(NB, NR) : 0)) * KC * sizeof(T);
  const size_t most = kMaxKB > KC ? kMaxKB / KC : 1;
  const size_t fit = slice_bytes == 0 ? most : kPackBudget / slice_bytes;
  const size_t KB = min_sz(K, (fit < 1 ? 1 : min_sz(fit, most)) * KC);
  const size_t max_a_panels = (MB + MR - 1) / MR, max_b_panels = (NB + NR - 1) / NR;
  T* a_buf = pack_a ? static_cast<T*>(packing_buffer(0, max_a_panels * MR * KB * sizeof(T)))
                    : nullptr;
  T* b_buf = pack_b ? static_cast<T*>(packing_buffer(1, max_b_panels * NR * KB * sizeof(T)))
                    : nullptr;
  // States (kUnpacked, kPacking, kPacked) of each KC slice of each panel:
  // A panels, then B panels; slice s of panel p at [p * max_slices + s].
  const size_t max_slices = (KB + KC - 1) / KC;
  int* a_state = static_cast<int*>(
      packing_buffer(2, (max_a_panels + max_b_panels) * max_slices * sizeof(int)));
  int* b_state = a_state + max_a_panels * max_slices;

  for (size_t k0 = 0; k0 < K; k0 += KB) {
    const size_t kb = min_sz(KB, K - k0);
    const T beta_k = k0 == 0 ? beta : T(1);
    for (size_t j0 = 0; j0 < N; j0 += NB) {
      const size_t nb = min_sz(NB, N - j0);
      for (size_t q = 0; q < max_b_panels * max_slices; ++q) b_state[q] = kUnpacked;
      for (size_t i0 = 0; i0 < M; i0 += MB) {
        const size_t mb = min_sz(MB, M - i0);
        for (size_t p = 0; p < max_a_panels * max_slices; ++p) a_state[p] = kUnpacked;

        size_t mt, nt;
        task_grid<Kern>(mb, nb, threads, &mt, &nt);
        const size_t tiles_n = (nb + nt - 1) / nt;
        const size_t tiles = ((mb + mt - 1) / mt) * tiles_n;
        // With one row of tasks a slice of a B panel serves one task only:
        // it is packed into a small buffer of the task's thread, which stays
        // in L1, instead of the shared one, whose lines (NB x KB elements,
        // megabytes) would cost a fetch from memory and a write-back each.
        const bool b_private = pack_b && tiles == tiles_n;

        auto task = [&](size_t t) {
          const size_t ti0 = (t / tiles_n) * mt, ti1 = min_sz(mb, ti0 + mt);
          const size_t tj0 = (t % tiles_n) * nt, tj1 = min_sz(nb, tj0 + nt);
          T* b_own = b_private
                         ? static_cast<T*>(packing_buffer(3, kOwnPanels * NR * KC * sizeof(T)))
                         : nullptr;
          // Each KC slice of a panel is packed by the first task that needs
          // it, right before its first use (so it is still in cache), inside
          // this one parallel region: no barrier between packing and computing.
          // One KC slice (at p0) over the panels [jr0, jr1) of op(B).
          auto slice_pass = [&](size_t p0, size_t jr0, size_t jr1) {
            const size_t kc = min_sz(KC, kb - p0), slice = p0 / KC;
            const T beta_p = p0 == 0 ? beta_k : T(1);
            // Packed op(B) panel jr of this slice, or op(B) in place.
            auto b_panel = [&](size_t jr, size_t* b_ld) -> const T* {
              *b_ld = NR;
              if (b_private && trans_b) {
                pack_b_panel<Kern>(trans_b, B, ldb, j0 + jr, min_sz(NR, tj1 - jr), k0 + p0, kc,
                                   b_own);
                return b_own;
              }
              if (b_private) {  // kOwnPanels panels at a time, see pack_b_rows
                const size_t g = (jr - tj0) / NR % kOwnPanels;
                if (g == 0)
                  pack_b_rows<Kern>(B, ldb, j0 + jr, min_sz(kOwnPanels * NR, tj1 - jr), k0 + p0,
                                    kc, b_own, NR * kc);
                return b_own + g * NR * kc;
              }
              if (pack_b && !trans_b) {  // a group of panels, under the state of its first
                const size_t q = jr / NR, g0 = q / kOwnPanels * kOwnPanels;
                ensure_packed(&b_state[g0 * max_slices + slice], [&] {
                  pack_b_rows<Kern>(B, ldb, j0 + g0 * NR, min_sz(kOwnPanels * NR, nb - g0 * NR),
                                    k0 + p0, kc, b_buf + g0 * NR * kb + p0 * NR, NR * kb);
                });
                return b_buf + q * NR * kb + p0 * NR;
              }
              if (pack_b) {
                const size_t q = jr / NR;
                T* packed = b_buf + q * NR * kb + p0 * NR;
                ensure_packed(&b_state[q * max_slices + slice], [&] {
                  pack_b_panel<Kern>(trans_b, B, ldb, j0 + jr, min_sz(NR, nb - jr), k0 + p0, kc,
                                     packed);
                });
                return packed;
              }
              *b_ld = ldb;
              return B + (k0 + p0) * ldb + j0 + jr;
            };
            // The micro-tile at rows ir, columns jr of the chunk.
            auto tile = [&](size_t ir, size_t jr, const T* bp, size_t b_ld) {
              const size_t m = min_sz(MR, ti1 - ir), n = min_sz(NR, tj1 - jr);
              T* c = C + (i0 + ir) * c_rs + (j0 + jr) * c_cs;
              if (pack_a) {
                const size_t p = ir / MR;
                T* ap = a_buf + p * MR * kb + p0 * MR;
                if (trans_a) {  // a group of panels, under the state of its first
                  const size_t g0 = p / kAGroup * kAGroup;
                  ensure_packed(&a_state[g0 * max_slices + slice], [&] {
                    pack_a_rows<Kern>(A, lda, i0 + g0 * MR, min_sz(kAGroup * MR, mb - g0 * MR),
                                      k0 + p0, kc, a_buf + g0 * MR * kb + p0 * MR, MR * kb);
                  });
                } else {
                  ensure_packed(&a_state[p * max_slices + slice], [&] {
                    pack_a_panel<Kern>(A, lda, i0 + ir, min_sz(MR, mb - ir), k0 + p0, kc, ap);
                  });
                }
                Kern::run(kc, ap, 1, MR, true, bp, b_ld, c, ldc, c_trans, m, n, alpha, beta_p);
              } else if (trans_a) {
                Kern::run(kc, A + (k0 + p0) * lda + i0 + ir, 1, lda, false, bp, b_ld, c, ldc,
                          c_trans, m, n, alpha, beta_p);
              } else {
                Kern::run(kc, A + (i0 + ir) * lda + k0 + p0, lda, 1, false, bp, b_ld, c, ldc,
                          c_trans, m, n, alpha, beta_p);
              }
            };

            if (kc < kRowsFirstBelowKC && !b_private) {
              // A shallow slice (K = a batch of 16-32: dW = dY^T . X) is
              // bound by the passes over C, not by the multiply-adds: walk C
              // row panel by row panel, so each of its rows streams through
              // once in address order; the whole packed B slice fits in L2.
              for (size_t ir = ti0; ir < ti1; ir += MR)
                for (size_t jr = jr0; jr < jr1; jr += NR) {
                  size_t b_ld;
                  const T* bp = b_panel(jr, &b_ld);
                  tile(ir, jr, bp, b_ld);
                }
              return;
            }
            for (size_t jr = jr0; jr < jr1; jr += NR) {
              size_t b_ld;
              const T* bp = b_panel(jr, &b_ld);
              // The next panel of this task, when this task will pack it.
              const size_t jn = jr + NR;
              // (Panels of B not transposed pack by groups: fetch before a group.)
              const size_t jq = trans_b ? jn / NR : jn / NR / kOwnPanels * kOwnPanels;
              const bool pf = pack_b && jn < jr1 &&
                              (trans_b || (jn - (b_private ? tj0 : 0)) / NR % kOwnPanels == 0) &&
                              (b_private || __atomic_load_n(&b_state[jq * max_slices + slice],
                                                            __ATOMIC_RELAXED) == kUnpacked);
              const size_t nn = min_sz(NR, nb - jn);
              const size_t pieces = pf ? b_source_pieces<T>(trans_b, nn, kc) : 0;
              const size_t micro_tiles = (ti1 - ti0 + MR - 1) / MR;
              const size_t per_tile = (pieces + micro_tiles - 1) / micro_tiles;
              size_t piece = 0;
              for (size_t ir = ti0; ir < ti1; ir += MR) {
                if (piece < pieces) {
                  const size_t to = min_sz(pieces, piece + per_tile);
                  prefetch_b_source(trans_b, B, ldb, j0 + jn, nn, k0 + p0, kc, piece, to);
                  piece = to;
                }
                tile(ir, jr, bp, b_ld);
              }
            }
          };
          if (b_private && trans_b && kb > KC) {
            // X . W^T of a small batch: each panel of W^T through all the
            // slices of the chunk before the next panel, so the panel's rows
            // of W stream on in address order (slice after slice), and its
            // column of C stays in L1 between slices. Each element of C still
            // takes its slices in ascending order.
            for (size_t jr = tj0; jr < tj1; jr += NR)
              for (size_t p0 = 0; p0 < kb; p0 += KC) slice_pass(p0, jr, jr + NR);
          } else {
            for (size_t p0 = 0; p0 < kb; p0 += KC) slice_pass(p0, tj0, tj1);
          }
        };
        run_tasks(threads, tiles, task);
      }
    }
  }
}

// The path's entry point. A product with few columns (the 10 classes of a
// last layer) wastes most of an NR-wide tile: with rows of A contiguous in k
// (the forward product X . W^T) it runs as dot products along k
// (gemm_dot.hpp, op(B) first transposed if need be: N x K elements), the
// others as the transposed product C^T (N, M) = op(B)^T op(A)^T, whose N
// rows fill MR-row tiles. So does a forward product of a small batch in
// double (kSwapMaxM). The transposed product sums each element of C in the same
// order (products commute exactly), so the bits do not depend on the path.
template <class Kern>
void gemm_driver(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, typename Kern::T alpha,
                 const typename Kern::T* A, size_t lda, const typename Kern::T* B, size_t ldb,
                 typename Kern::T beta, typename Kern::T* C, size_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  if (!trans_a && N <= kDotMaxN && K >= Kern::V::W) {
    using T = typename Kern::T;
    const T* bt = B;  // op(B)^T (N, K), row-major
    size_t ldbt = ldb;
    if (!trans_b) {  // small: N <= kDotMaxN rows
      T* buf = static_cast<T*>(packing_buffer(1, N * K * sizeof(T)));
      for (size_t k = 0; k < K; ++k)
        for (size_t j = 0; j < N; ++j) buf[j * K + k] = B[k * ldb + j];
      bt = buf;
      ldbt = K;
    }
    const int threads = gemm_threads(double(M) * double(N) * double(K));
    gemm_dot<typename Kern::V, Kern::DR, Kern::DC>(M, N, K, alpha, A, lda, bt, ldbt, beta, C, ldc,
                                                   threads);
  } else if ((2 * N <= Kern::NR && M > N) ||
             (sizeof(typename Kern::T) == 8 && Kern::V::W >= 4 && trans_b && !trans_a &&
              M <= kSwapMaxM && N >= 8 * M)) {
    gemm_blocked<Kern>(!trans_b, !trans_a, N, M, K, alpha, B, ldb, A, lda, beta, C, ldc, true);
  } else {
    gemm_blocked<Kern>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, false);
  }
}

}  // namespace
}  // namespace bpx::kernels
