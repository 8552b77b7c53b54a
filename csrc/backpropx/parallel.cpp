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

std::string shape_str(const Shape& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

std::size_t checked_mul(std::size_t a, std::size_t b) {
  if (a != 0 && b > static_cast<std::size_t>(-1) / a) throw std::bad_alloc();
  return a * b;
}

}  // namespace bpx
