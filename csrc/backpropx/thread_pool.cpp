#include "backpropx/thread_pool.hpp"

#include <omp.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BPX_SPIN_PAUSE() _mm_pause()
#else
#define BPX_SPIN_PAUSE() ((void)0)
#endif

namespace bpx {

namespace {

thread_local bool t_in_region = false;
thread_local bool t_worker = false;

// About 0.2-0.3 ms of pause instructions (Zen's pause takes ~65 cycles):
// long enough to bridge the serial gaps between the regions of a training
// step (a loss, a norm), short enough to leave an idle core to others soon.
constexpr int kSpinChecks = 16000;

// The claim word: which region is open, how many tasks it has and the next
// task to claim, in one atomic, so a helper still holding an older region's
// word fails its compare-exchange instead of claiming a task of the next one.
// (A helper would have to stall through 2^24 regions between its load and its
// compare-exchange, landing on the same count and index, to be fooled.)
constexpr int kTaskBits = 20;
constexpr std::uint64_t kTaskMask = (std::uint64_t{1} << kTaskBits) - 1;
constexpr std::uint64_t kRegionMask = (std::uint64_t{1} << (64 - 2 * kTaskBits)) - 1;
constexpr std::size_t kMaxRegionTasks = kTaskMask;

std::uint64_t region_of(std::uint64_t word) { return word >> (2 * kTaskBits); }
std::uint64_t tasks_of(std::uint64_t word) { return (word >> kTaskBits) & kTaskMask; }
std::uint64_t next_of(std::uint64_t word) { return word & kTaskMask; }

class Pool {
 public:
  void run(std::size_t n_tasks, int team, void (*fn)(void*, std::size_t), void* ctx) {
    std::unique_lock<std::mutex> busy(run_mutex_, std::defer_lock);
    if (t_in_region || t_worker || !busy.try_lock()) {
      for (std::size_t t = 0; t < n_tasks; ++t) fn(ctx, t);
      return;
    }
    for (std::size_t first = 0; first < n_tasks; first += kMaxRegionTasks) {
      offset_.store(first, std::memory_order_relaxed);
      region(std::min(kMaxRegionTasks, n_tasks - first), team, fn, ctx);
    }
  }

 private:
  void region(std::size_t n_tasks, int team, void (*fn)(void*, std::size_t), void* ctx) {
    // More threads than processors never help (and each would be kept).
    team = std::min(team, processors_);
    start_workers(team - 1);
    fn_.store(fn, std::memory_order_relaxed);
    ctx_.store(ctx, std::memory_order_relaxed);
    helpers_.store(team - 1, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    const std::uint64_t region = ++regions_;
    claim_.store(((region & kRegionMask) << (2 * kTaskBits)) | (std::uint64_t{n_tasks} << kTaskBits),
                 std::memory_order_release);
    {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      region_.store(region, std::memory_order_release);
      if (sleepers_ > 0) wake_.notify_all();
    }
    t_in_region = true;
    work(region);
    t_in_region = false;
    // Only tasks other threads claimed can still be running.
    for (int spins = 0; done_.load(std::memory_order_acquire) < n_tasks; ++spins) {
      if (spins < kSpinChecks) BPX_SPIN_PAUSE();
      else std::this_thread::yield();
    }
  }

  // Claims and runs tasks of `region` until none is left.
  void work(std::uint64_t region) {
    std::uint64_t word = claim_.load(std::memory_order_acquire);
    for (;;) {
      if (region_of(word) != (region & kRegionMask) || next_of(word) >= tasks_of(word)) return;
      if (!claim_.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel, std::memory_order_acquire))
        continue;
      // A claimed task keeps the region open, so fn_, ctx_ and offset_ are this region's.
      fn_.load(std::memory_order_relaxed)(ctx_.load(std::memory_order_relaxed),
                                          offset_.load(std::memory_order_relaxed) + next_of(word));
      done_.fetch_add(1, std::memory_order_acq_rel);
      word = claim_.load(std::memory_order_acquire);
    }
  }

  void start_workers(int wanted) {
    while (static_cast<int>(workers_.size()) < wanted) {
      const int index = static_cast<int>(workers_.size());
      workers_.emplace_back([this, index] { loop(index); });
      workers_.back().detach();  // the pool lives as long as the process
    }
  }

  void loop(int index) {
    t_worker = true;
    std::uint64_t seen = region_.load(std::memory_order_acquire);
    bool worked = true;  // only a helper that just worked spins: the others sleep at once
    for (;;) {
      std::uint64_t now = seen;
      for (int spins = 0; worked && spins < kSpinChecks && now == seen; ++spins) {
        BPX_SPIN_PAUSE();
        now = region_.load(std::memory_order_acquire);
      }
      if (now == seen) {
        std::unique_lock<std::mutex> lock(sleep_mutex_);
        ++sleepers_;
        wake_.wait(lock, [&] { return region_.load(std::memory_order_acquire) != seen; });
        --sleepers_;
        now = region_.load(std::memory_order_acquire);
      }
      seen = now;
      worked = index < helpers_.load(std::memory_order_acquire);
      if (worked) {
        t_in_region = true;
        work(now);
        t_in_region = false;
      }
    }
  }

  const int processors_ = std::max(1, omp_get_num_procs());
  std::mutex run_mutex_;  // one region at a time
  std::uint64_t regions_ = 0;  // regions opened so far (guarded by run_mutex_)
  std::vector<std::thread> workers_;
  // Written by the caller before it opens a region (the release of claim_).
  std::atomic<void (*)(void*, std::size_t)> fn_{nullptr};
  std::atomic<void*> ctx_{nullptr};
  std::atomic<std::size_t> offset_{0};  // of the region's first task (huge loops take several regions)
  std::atomic<int> helpers_{0};
  std::atomic<std::uint64_t> claim_{0};
  std::atomic<std::size_t> done_{0};
  std::atomic<std::uint64_t> region_{0};  // the last region opened: helpers wait for it to change
  std::mutex sleep_mutex_;
  std::condition_variable wake_;
  int sleepers_ = 0;  // guarded by sleep_mutex_
};

// Never destroyed: detached helpers may still be waiting at exit. A child
// process made by fork() has none of the parent's threads, so it starts a
// new pool (the old one, perhaps with a mutex held, is left alone).
Pool* g_pool = nullptr;
std::once_flag g_pool_once;

Pool& pool() {
  std::call_once(g_pool_once, [] {
    g_pool = new Pool;
    pthread_atfork(nullptr, nullptr, [] { g_pool = new Pool; });
  });
  return *g_pool;
}

}  // namespace

void pool_run(std::size_t n_tasks, int team, void (*fn)(void*, std::size_t), void* ctx) {
  pool().run(n_tasks, team, fn, ctx);
}

bool pool_in_region() { return t_in_region; }
bool pool_is_worker() { return t_worker; }

}  // namespace bpx
