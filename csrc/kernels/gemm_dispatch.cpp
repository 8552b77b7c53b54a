// Picks the GEMM path for the active instruction set, and owns the
// per-thread packing buffers every path shares.
#include <cstddef>
#include <new>

#include "kernels/gemm_isa.hpp"
#include "kernels/kernels.hpp"

namespace bpx::kernels {

namespace {
struct PackingBuffers {
  void* data[4] = {nullptr, nullptr, nullptr, nullptr};
  std::size_t bytes[4] = {0, 0, 0, 0};
  ~PackingBuffers() {
    for (void* p : data)
      if (p != nullptr) ::operator delete(p, std::align_val_t(64));
  }
};
}  // namespace

void* packing_buffer(int slot, std::size_t bytes) {
  thread_local PackingBuffers buffers;
  if (bytes > buffers.bytes[slot]) {
    if (buffers.data[slot] != nullptr) ::operator delete(buffers.data[slot], std::align_val_t(64));
    buffers.data[slot] = nullptr;
    buffers.bytes[slot] = 0;
    buffers.data[slot] = ::operator new(bytes, std::align_val_t(64));
    buffers.bytes[slot] = bytes;
  }
  return buffers.data[slot];
}

template <class T>
void gemm_dispatch(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K,
                   T alpha, const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C,
                   std::size_t ldc) {
  switch (active_isa()) {
    case Isa::avx512:
      gemm_avx512<T>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      return;
    case Isa::avx2:
      gemm_avx2<T>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      return;
    case Isa::generic:
      break;
  }
  gemm_generic<T>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

template void gemm_dispatch<float>(bool, bool, std::size_t, std::size_t, std::size_t, float,
                                   const float*, std::size_t, const float*, std::size_t, float,
                                   float*, std::size_t);
template void gemm_dispatch<double>(bool, bool, std::size_t, std::size_t, std::size_t, double,
                                    const double*, std::size_t, const double*, std::size_t, double,
                                    double*, std::size_t);

}  // namespace bpx::kernels
