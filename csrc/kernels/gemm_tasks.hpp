// Runs the tasks of one product, each producing its own part of C, on the
// threads gemm_threads() granted, and reports how long the caller waited
// for the helpers after its own last task.
// Internal linkage: compiled once per instruction set (see gemm_driver.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "backpropx/parallel.hpp"
#include "kernels/gemm_isa.hpp"

namespace bpx::kernels {
namespace {

template <class Task>
void run_tasks(int threads, std::size_t n_tasks, Task&& task) {
  if (threads <= 1 || n_tasks <= 1) {
    for (std::size_t t = 0; t < n_tasks; ++t) task(t);
    return;
  }
  const std::int64_t start = gemm_clock_ns();
  std::int64_t caller_done = start;  // when the calling thread finished its last task
  parallel_for(n_tasks, [&](std::size_t t) {
    task(t);
    if (on_calling_thread()) caller_done = gemm_clock_ns();
  });
  const std::int64_t end = gemm_clock_ns();
  gemm_threads_report(end - caller_done, end - start);
}

}  // namespace
}  // namespace bpx::kernels
