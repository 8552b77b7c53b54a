// Per-ISA kernels behind one dispatcher. The instruction set is chosen once,
// from the CPU's features, and can be forced (BACKPROPX_KERNEL=generic|avx2|
// avx512, or bpx::kernels::set_active_isa) so tests cover every path.
#pragma once

#include <cstddef>

namespace bpx::kernels {

enum class Isa { generic = 0, avx2 = 1, avx512 = 2 };

bool isa_supported(Isa isa);
Isa best_isa();
const char* isa_name(Isa isa);
// Throws std::invalid_argument for an unknown name.
Isa isa_from_name(const char* name);

Isa active_isa();
// Throws std::invalid_argument when this CPU cannot run `isa`.
void set_active_isa(Isa isa);

// Row-major C (M, N) = alpha * op(A) . op(B) + beta * C; see backpropx/gemm.hpp.
template <class T>
void gemm_dispatch(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K,
                   T alpha, const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C,
                   std::size_t ldc);

// The portable path, always available.
template <class T>
void gemm_generic(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K,
                  T alpha, const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C,
                  std::size_t ldc);

}  // namespace bpx::kernels
