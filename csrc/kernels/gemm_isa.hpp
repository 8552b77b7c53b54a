// Internal entry points of the per-ISA GEMM paths, selected by gemm_dispatch.
// Each has the contract of bpx::gemm (row-major, beta == 0 never reads C).
#pragma once

#include <cstddef>

namespace bpx::kernels {

// A 64-byte aligned scratch buffer of at least `bytes`, owned by the calling
// thread and reused across calls (it only grows). Slot 0 holds packed A,
// 1 packed B, 2 the panel states. Throws std::bad_alloc.
void* packing_buffer(int slot, std::size_t bytes);

#define BPX_DECLARE_GEMM_PATH(name)                                                          \
  template <class T>                                                                        \
  void name(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha, \
            const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C,          \
            std::size_t ldc);
BPX_DECLARE_GEMM_PATH(gemm_avx2)
BPX_DECLARE_GEMM_PATH(gemm_avx512)
#undef BPX_DECLARE_GEMM_PATH

}  // namespace bpx::kernels
