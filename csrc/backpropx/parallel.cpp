#include "backpropx/parallel.hpp"

#include <atomic>
#include <cstdlib>

#include "backpropx/common.hpp"

namespace bpx {

namespace {
int default_threads() {
  int n = omp_get_num_procs();
  return n < 1 ? 1 : n;
}
std::atomic<int> g_threads{default_threads()};
}  // namespace

void set_num_threads(int n) {
  require(n >= 1, "number of threads must be at least 1, got " + std::to_string(n));
  g_threads.store(n);
}

int get_num_threads() { return g_threads.load(); }

}  // namespace bpx
