// How many threads a product may use. A product splits its output over
// bpx::parallel_for, whose join waits for every thread of the team; when
// another process holds a core, a helper thread may sit descheduled for a
// whole scheduler slice (milliseconds), before or in the middle of a task,
// and a 100-microsecond product then takes 50 times longer. So each threaded
// product reports how long the caller waited for the helpers after its own
// last task; a wait over 200 us and a third of the product's time counts,
// and after two such products in a row the following ones run on the calling
// thread for a while (50 ms, doubling while the core stays busy, up to 1 s),
// then threads are tried again. Results never depend on the choice: tasks
// only partition C.
#include <cstdint>

#include "backpropx/parallel.hpp"
#include "kernels/gemm_isa.hpp"

namespace bpx::kernels {

namespace {
constexpr double kThreadMinFlops = 96.0 * 96.0 * 96.0;  // multiply-adds
SoloBackoff g_products;  // products' own back-off, apart from element-wise rows'
}  // namespace

std::int64_t gemm_clock_ns() { return steady_ns(); }

int gemm_threads(double multiply_adds) {
  if (multiply_adds < kThreadMinFlops) return 1;
  const int threads = get_num_threads();
  // Called from inside a parallel region, a product gets a team of one anyway.
  if (threads <= 1 || in_parallel()) return 1;
  if (g_products.solo()) return 1;
  return threads;
}

void gemm_threads_report(std::int64_t wait_ns, std::int64_t total_ns) { g_products.report(wait_ns, total_ns); }

}  // namespace bpx::kernels
