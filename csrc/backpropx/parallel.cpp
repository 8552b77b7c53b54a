#include "backpropx/parallel.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>

#include "backpropx/common.hpp"

namespace bpx {

namespace {

// A thread count from an environment variable's text: "4", or for
// OMP_NUM_THREADS the first level of a nested list such as "4,2". Returns 0
// and says why in `problem` when the text is not an integer in
// [1, kMaxThreads]; returns 0 with an empty `problem` for an unset or empty
// variable.
int parse_threads(const char* name, bool first_of_list, std::string& problem) {
  const char* text = std::getenv(name);
  if (text == nullptr) return 0;
  std::string value(text);
  if (first_of_list) value = value.substr(0, value.find(','));
  const auto first = value.find_first_not_of(" \t");
  if (first == std::string::npos) return 0;
  value = value.substr(first, value.find_last_not_of(" \t") - first + 1);
  errno = 0;
  char* end = nullptr;
  const long long n = std::strtoll(value.c_str(), &end, 10);
  if (end == value.c_str() || *end != '\0' || errno == ERANGE || n < 1 || n > kMaxThreads) {
    problem = std::string(name) + "='" + text + "' is not a thread count (an integer from 1 to " +
              std::to_string(kMaxThreads) + ")";
    return 0;
  }
  return static_cast<int>(n);
}

std::atomic<int> g_threads{thread_default_from_environment().threads};
std::atomic<Threading> g_threading{threading_from_environment()};

}  // namespace

Threading threading_from_environment() {
  const char* text = std::getenv("BACKPROPX_THREADING");
  return text != nullptr && std::string(text) == "openmp" ? Threading::openmp : Threading::pool;
}

void set_threading(Threading t) { g_threading.store(t); }
Threading threading() { return g_threading.load(std::memory_order_relaxed); }
const char* threading_name(Threading t) { return t == Threading::pool ? "pool" : "openmp"; }

ThreadDefault thread_default_from_environment() {
  ThreadDefault d;
  for (const char* name : {"BACKPROPX_NUM_THREADS", "OMP_NUM_THREADS"}) {
    std::string problem;
    const int n = parse_threads(name, std::string(name) == "OMP_NUM_THREADS", problem);
    if (!problem.empty()) d.ignored.push_back(problem);
    if (n > 0) {
      d.threads = n;
      d.source = name;
      return d;
    }
  }
  const int procs = omp_get_num_procs();
  d.threads = procs < 1 ? 1 : (procs > kMaxThreads ? kMaxThreads : procs);
  d.source = "processors";
  return d;
}

void set_num_threads(int n) {
  require(n >= 1 && n <= kMaxThreads, "number of threads must be from 1 to " + std::to_string(kMaxThreads) +
                                          ", got " + std::to_string(n));
  g_threads.store(n);
}

int get_num_threads() { return g_threads.load(); }

namespace {
SoloBackoff g_rows;
}  // namespace

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool SoloBackoff::solo() const { return solo_until_.load(std::memory_order_relaxed) > steady_ns(); }

void SoloBackoff::report(std::int64_t wait_ns, std::int64_t total_ns) {
  // A helper that arrives late but finds no task left costs nothing: only
  // the caller's wait counts.
  if (!(wait_ns > kMinWaitNs && 3 * wait_ns > total_ns)) {
    waits_in_a_row_.store(0, std::memory_order_relaxed);
    backoff_.store(kFirstBackoffNs, std::memory_order_relaxed);
    return;
  }
  if (waits_in_a_row_.fetch_add(1, std::memory_order_relaxed) + 1 < 2) return;
  waits_in_a_row_.store(0, std::memory_order_relaxed);
  const std::int64_t backoff = backoff_.load(std::memory_order_relaxed);
  solo_until_.store(steady_ns() + backoff, std::memory_order_relaxed);
  backoff_.store(backoff * 2 < kMaxBackoffNs ? backoff * 2 : kMaxBackoffNs, std::memory_order_relaxed);
}

bool rows_run_solo() { return g_rows.solo(); }
void rows_report_wait(std::int64_t wait_ns, std::int64_t total_ns) { g_rows.report(wait_ns, total_ns); }

}  // namespace bpx
