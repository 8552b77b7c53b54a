// Threads for the core. Work is split into tasks that each produce their own
// outputs, so results never depend on how many threads run them.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <type_traits>
#include <vector>

#include <omp.h>

#include "backpropx/thread_pool.hpp"

namespace bpx {

// The most threads the core accepts. More threads than cores never speed it
// up (results are the same for any count), and an absurd count makes the
// OpenMP runtime fail to create its team, which it reports by crashing the
// process rather than by an error we could catch; so larger requests are
// refused. 1024 is above the hardware threads of any machine we build for.
constexpr int kMaxThreads = 1024;

// Threads of the core; throws std::invalid_argument outside [1, kMaxThreads].
void set_num_threads(int n);
int get_num_threads();

// The count the core starts with: BACKPROPX_NUM_THREADS, else the first
// level of OMP_NUM_THREADS ("4" or "4,2"; what joblib and job schedulers set
// to avoid oversubscription), else the number of processors (at most
// kMaxThreads). A variable that is set but not an integer in
// [1, kMaxThreads] is skipped, and named in `ignored` (Python warns).
struct ThreadDefault {
  int threads = 1;
  std::string source;  // "BACKPROPX_NUM_THREADS", "OMP_NUM_THREADS" or "processors"
  std::vector<std::string> ignored;
};
ThreadDefault thread_default_from_environment();

// Who runs parallel_for's tasks: the core's own thread pool (thread_pool.hpp,
// the default) or OpenMP. BACKPROPX_THREADING=openmp|pool picks at load;
// results are the same bits either way (tasks only partition the work).
enum class Threading { pool, openmp };
void set_threading(Threading t);
Threading threading();
const char* threading_name(Threading t);
// BACKPROPX_THREADING's value, or pool when it is unset or not a name above.
Threading threading_from_environment();

// Inside a parallel_for task (where nested calls run on one thread).
inline bool in_parallel() { return pool_in_region() || omp_in_parallel(); }
// The thread that called parallel_for (true outside any region too).
inline bool on_calling_thread() { return !pool_is_worker() && omp_get_thread_num() == 0; }

// Runs body(task) for task in [0, n_tasks). Each task runs on one thread;
// tasks are handed out dynamically, so a core busy with another process
// slows us down by its share instead of stalling the whole loop.
template <class Body>
void parallel_for(std::size_t n_tasks, Body&& body) {
  const int threads = get_num_threads();
  if (threads <= 1 || n_tasks <= 1) {
    for (std::size_t t = 0; t < n_tasks; ++t) body(t);
    return;
  }
  // No more threads than tasks: the extra ones would only be created and joined.
  const int team = n_tasks < static_cast<std::size_t>(threads) ? static_cast<int>(n_tasks) : threads;
  if (threading() == Threading::pool) {
    // A task that throws must not unwind past the pool (its helpers may still
    // be running the region's other tasks): the first exception is kept and
    // rethrown once the region is over.
    struct Call {
      explicit Call(std::remove_reference_t<Body>* b) : body(b) {}
      std::remove_reference_t<Body>* body;
      std::atomic<bool> failed{false};
      std::exception_ptr error;
    } call(&body);
    pool_run(n_tasks, team, [](void* ctx, std::size_t t) {
      auto* c = static_cast<Call*>(ctx);
      try {
        (*c->body)(t);
      } catch (...) {
        if (!c->failed.exchange(true)) c->error = std::current_exception();
      }
    }, &call);
    if (call.error) std::rethrow_exception(call.error);
    return;
  }
  const long long count = static_cast<long long>(n_tasks);
#pragma omp parallel for schedule(dynamic, 1) num_threads(team)
  for (long long t = 0; t < count; ++t) body(static_cast<std::size_t>(t));
}

// When another process holds a core, a helper thread may sit descheduled for
// a whole scheduler slice, and element-wise work of microseconds waits
// milliseconds at the join. So parallel_rows reports how long the caller
// waited for the helpers after its own last chunk; after two long waits in a
// row, element-wise work runs on the calling thread for a while (50 ms,
// doubling while the core stays busy, up to 1 s), as the GEMM does for its
// products (kernels/gemm_threads.cpp). Results never depend on it: chunks
// only partition the rows.
// The policy, shared by element-wise rows and the GEMM (one instance each):
// a wait over 200 us and a third of the call's time counts; after two in a
// row, solo() is true for the back-off time.
class SoloBackoff {
 public:
  bool solo() const;
  void report(std::int64_t wait_ns, std::int64_t total_ns);

 private:
  static constexpr std::int64_t kMinWaitNs = 200'000;  // shorter waits never count
  static constexpr std::int64_t kFirstBackoffNs = 50'000'000;
  static constexpr std::int64_t kMaxBackoffNs = 1'000'000'000;
  std::atomic<std::int64_t> solo_until_{0};  // steady-clock ns
  std::atomic<std::int64_t> backoff_{kFirstBackoffNs};
  std::atomic<int> waits_in_a_row_{0};
};
bool rows_run_solo();
void rows_report_wait(std::int64_t wait_ns, std::int64_t total_ns);
std::int64_t steady_ns();

// Splits n rows into chunks of at least `grain` rows, for element-wise work.
template <class Body>
void parallel_rows(std::size_t n, std::size_t grain, Body&& body) {
  const std::size_t threads = static_cast<std::size_t>(get_num_threads());
  std::size_t chunks = grain == 0 ? 1 : n / grain;
  if (chunks > 4 * threads) chunks = 4 * threads;
  if (chunks <= 1 || threads <= 1 || rows_run_solo()) {
    body(std::size_t{0}, n);
    return;
  }
  const std::int64_t start = steady_ns();
  std::int64_t caller_done = start;  // when the calling thread finished its last chunk
  parallel_for(chunks, [&](std::size_t c) {
    body(n * c / chunks, n * (c + 1) / chunks);
    if (on_calling_thread()) caller_done = steady_ns();
  });
  const std::int64_t end = steady_ns();
  rows_report_wait(end - caller_done, end - start);
}

}  // namespace bpx
