// Internal entry points of the per-ISA GEMM paths, selected by gemm_dispatch.
// Each has the contract of bpx::gemm (row-major, beta == 0 never reads C).
#pragma once

#include <cstddef>
#include <cstdint>

namespace bpx::kernels {

// A 64-byte aligned scratch buffer of at least `bytes`, owned by the calling
// thread and reused across calls (it only grows). Slot 0 holds packed A,
// 1 packed B, 2 the panel states, 3 a B panel private to the thread.
// Throws std::bad_alloc.
void* packing_buffer(int slot, std::size_t bytes);

// Threads for a product of `multiply_adds` (M N K): 1 below a size where a
// fork costs more than it saves, or while backing off because the other
// threads failed to help (a core busy with another process); see
// gemm_threads.cpp. After a threaded product, report how long the caller
// waited for the others after its own last task, and the product's time.
int gemm_threads(double multiply_adds);
void gemm_threads_report(std::int64_t wait_ns, std::int64_t total_ns);
// Steady-clock nanoseconds.
std::int64_t gemm_clock_ns();

#define BPX_DECLARE_GEMM_PATH(name)                                                          \
  template <class T>                                                                        \
  void name(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha, \
            const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C,          \
            std::size_t ldc);
BPX_DECLARE_GEMM_PATH(gemm_avx2)
BPX_DECLARE_GEMM_PATH(gemm_avx512)
#undef BPX_DECLARE_GEMM_PATH

}  // namespace bpx::kernels
