#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/kernels.hpp"

namespace bpx::kernels {

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::generic:
      return true;
#if defined(__x86_64__) || defined(__i386__)
    case Isa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
#else
    default:
      return false;
#endif
  }
  return false;
}

Isa best_isa() {
  if (isa_supported(Isa::avx512)) return Isa::avx512;
  if (isa_supported(Isa::avx2)) return Isa::avx2;
  return Isa::generic;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::generic:
      return "generic";
    case Isa::avx2:
      return "avx2";
    case Isa::avx512:
      return "avx512";
  }
  return "unknown";
}

Isa isa_from_name(const char* name) {
  for (Isa isa : {Isa::generic, Isa::avx2, Isa::avx512})
    if (std::strcmp(name, isa_name(isa)) == 0) return isa;
  throw std::invalid_argument(std::string("unknown kernel '") + name +
                              "'; expected one of: generic, avx2, avx512");
}

namespace {
Isa initial_isa() {
  const char* forced = std::getenv("BACKPROPX_KERNEL");
  if (forced == nullptr || *forced == '\0') return best_isa();
  // A bad value in the environment must not abort the interpreter at import:
  // fall back to the best path; set_kernel() reports errors properly.
  try {
    Isa isa = isa_from_name(forced);
    return isa_supported(isa) ? isa : best_isa();
  } catch (const std::invalid_argument&) {
    return best_isa();
  }
}
std::atomic<int> g_active{-1};
}  // namespace

Isa active_isa() {
  int v = g_active.load(std::memory_order_relaxed);
  if (v < 0) {
    v = static_cast<int>(initial_isa());
    g_active.store(v);
  }
  return static_cast<Isa>(v);
}

void set_active_isa(Isa isa) {
  if (!isa_supported(isa))
    throw std::invalid_argument(std::string("kernel '") + isa_name(isa) +
                                "' is not supported by this CPU");
  g_active.store(static_cast<int>(isa));
}

}  // namespace bpx::kernels
