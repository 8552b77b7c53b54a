// Threads for the core. Work is split into tasks that each produce their own
// outputs, so results never depend on how many threads run them.
#pragma once

#include <cstddef>

#include <omp.h>

namespace bpx {

void set_num_threads(int n);
int get_num_threads();

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
  const long long count = static_cast<long long>(n_tasks);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (long long t = 0; t < count; ++t) body(static_cast<std::size_t>(t));
}

// Splits n rows into chunks of at least `grain` rows, for element-wise work.
template <class Body>
void parallel_rows(std::size_t n, std::size_t grain, Body&& body) {
  const std::size_t threads = static_cast<std::size_t>(get_num_threads());
  std::size_t chunks = grain == 0 ? 1 : n / grain;
  if (chunks > 4 * threads) chunks = 4 * threads;
  if (chunks <= 1 || threads <= 1) {
    body(std::size_t{0}, n);
    return;
  }
  parallel_for(chunks, [&](std::size_t c) { body(n * c / chunks, n * (c + 1) / chunks); });
}

}  // namespace bpx
