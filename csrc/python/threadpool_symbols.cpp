// Plain C entry points to the core's thread count, exported from the
// extension module so threadpoolctl finds and drives them through ctypes,
// as it does OpenBLAS's (backpropx/threads.py registers the controller).
// They never throw: a count outside [1, kMaxThreads] is clamped.
#include "backpropx/parallel.hpp"

#define BPX_EXPORT extern "C" __attribute__((visibility("default")))

BPX_EXPORT int backpropx_get_num_threads() noexcept { return bpx::get_num_threads(); }

BPX_EXPORT void backpropx_set_num_threads(int n) noexcept {
  bpx::set_num_threads(n < 1 ? 1 : (n > bpx::kMaxThreads ? bpx::kMaxThreads : n));
}
