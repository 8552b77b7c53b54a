// The core's own persistent worker threads, an alternative to OpenMP for
// bpx::parallel_for (parallel.hpp chooses; BACKPROPX_THREADING picks at load).
//
// Why: a parallel region's join waits for every thread of the team. OpenMP
// counts a helper in the team whether or not it ever gets to run; on a
// machine where another process holds a core, a helper descheduled for a
// scheduler slice makes a 100-microsecond product wait milliseconds even
// when the caller has done all the work itself. Here a region is over when
// its tasks are done: helpers claim tasks one at a time, and a helper that
// wakes up late finds the region closed and claims nothing. Idle helpers
// spin briefly (a region usually follows soon in training), then sleep.
#pragma once

#include <cstddef>

namespace bpx {

// Runs fn(ctx, t) for t in [0, n_tasks) on the calling thread and up to
// team - 1 pool threads; returns when every task has finished. A call made
// while the pool is running another region (a second user thread, or a
// nested call) runs its tasks on the calling thread instead. fn must not
// throw (parallel_for catches for it).
void pool_run(std::size_t n_tasks, int team, void (*fn)(void*, std::size_t), void* ctx);

// True on a pool thread, and on the caller while it runs a region's tasks.
bool pool_in_region();
// True on pool threads (not the caller) at any time.
bool pool_is_worker();

}  // namespace bpx
