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
#include <atomic>
#include <chrono>
#include <cstdint>

#include "backpropx/parallel.hpp"
#include "kernels/gemm_isa.hpp"

namespace bpx::kernels {

namespace {
constexpr double kThreadMinFlops = 96.0 * 96.0 * 96.0;  // multiply-adds
constexpr std::int64_t kFirstBackoffNs = 50'000'000;
constexpr std::int64_t kMaxBackoffNs = 1'000'000'000;

std::atomic<std::int64_t> g_solo_until{0};  // steady-clock ns
std::atomic<std::int64_t> g_backoff{kFirstBackoffNs};
std::atomic<int> g_waits_in_a_row{0};

constexpr std::int64_t kMinWaitNs = 200'000;  // shorter waits never count
}  // namespace

std::int64_t gemm_clock_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int gemm_threads(double multiply_adds) {
  if (multiply_adds < kThreadMinFlops) return 1;
  const int threads = get_num_threads();
  // Called from inside a parallel region, a product gets a team of one anyway.
  if (threads <= 1 || in_parallel()) return 1;
  if (g_solo_until.load(std::memory_order_relaxed) > gemm_clock_ns()) return 1;
  return threads;
}

void gemm_threads_report(std::int64_t wait_ns, std::int64_t total_ns) {
  // A helper that arrives late but finds no task left costs nothing: only
  // the caller's wait counts.
  const bool left_waiting = wait_ns > kMinWaitNs && 3 * wait_ns > total_ns;
  if (!left_waiting) {
    g_waits_in_a_row.store(0, std::memory_order_relaxed);
    g_backoff.store(kFirstBackoffNs, std::memory_order_relaxed);
    return;
  }
  if (g_waits_in_a_row.fetch_add(1, std::memory_order_relaxed) + 1 < 2) return;
  g_waits_in_a_row.store(0, std::memory_order_relaxed);
  const std::int64_t backoff = g_backoff.load(std::memory_order_relaxed);
  g_solo_until.store(gemm_clock_ns() + backoff, std::memory_order_relaxed);
  g_backoff.store(backoff * 2 < kMaxBackoffNs ? backoff * 2 : kMaxBackoffNs,
                  std::memory_order_relaxed);
}

}  // namespace bpx::kernels
