// The core's thread pool (thread_pool.hpp): every task of every region runs
// exactly once and has finished when pool_run returns, with regions of every
// size back to back (helpers arriving late for the last one must claim
// nothing of the next), from two user threads at once (one falls back to
// running its tasks itself) and nested (inner regions run on the caller).
// CI also builds it with -fsanitize=thread. Returns nonzero on failure.
#include <atomic>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "backpropx/thread_pool.hpp"

namespace {

std::atomic<int> g_failures{0};

struct Region {
  std::vector<std::atomic<int>> runs;
  explicit Region(std::size_t n) : runs(n) {}
};

void count(void* ctx, std::size_t t) { static_cast<Region*>(ctx)->runs[t].fetch_add(1); }

void check_region(std::size_t n, int team) {
  Region r(n);
  bpx::pool_run(n, team, &count, &r);
  for (std::size_t t = 0; t < n; ++t)
    if (r.runs[t].load() != 1 && g_failures.fetch_add(1) < 10)
      std::fprintf(stderr, "FAIL: task %zu of %zu (team %d) ran %d times\n", t, n, team, r.runs[t].load());
}

void rounds(unsigned seed, int count_of_rounds) {
  std::mt19937 rng(seed);
  for (int i = 0; i < count_of_rounds; ++i) {
    const std::size_t n = rng() % 3 == 0 ? rng() % 4 : rng() % 600;
    check_region(n, 1 + static_cast<int>(rng() % 8));
  }
}

struct Nested {
  std::atomic<int> inner_runs{0};
};

void outer(void* ctx, std::size_t) {
  auto* nested = static_cast<Nested*>(ctx);
  Region inner(17);
  bpx::pool_run(17, 4, &count, &inner);  // inside a region: runs on this thread
  for (auto& runs : inner.runs) nested->inner_runs.fetch_add(runs.load());
}

}  // namespace

int main() {
  rounds(1, 3000);
  std::thread other([] { rounds(2, 2000); });
  rounds(3, 2000);
  other.join();
  Nested nested;
  bpx::pool_run(9, 4, &outer, &nested);
  if (nested.inner_runs.load() != 9 * 17) {
    std::fprintf(stderr, "FAIL: nested regions ran %d inner tasks, expected %d\n", nested.inner_runs.load(), 9 * 17);
    g_failures.fetch_add(1);
  }
  std::printf("test_thread_pool: %s\n", g_failures.load() == 0 ? "ok" : "FAILED");
  return g_failures.load() == 0 ? 0 : 1;
}
