// GEMM speed: square products, the three training products of the W1, W3 and
// W4 layers, small-K and skinny shapes of training at batch 16-128, float and
// double, 1 and 2 threads. Every benchmark first checks its result against
// bpx::gemm_naive on sampled elements, then reports the counter GFLOP=x/s (2 M N K flops per product).
//
//   bench_gemm                                  all shapes (minutes)
//   BACKPROPX_BENCH_SMOKE=1 bench_gemm          tiny shapes only (seconds, for CI)
//   BACKPROPX_KERNEL=avx2 bench_gemm --benchmark_filter='sq512'
//
// Compare against NumPy's @ in the same session, alternating runs (BENCH.md).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backpropx/gemm.hpp"
#include "backpropx/parallel.hpp"
#include "kernels/kernels.hpp"

namespace {

bool g_verification_failed = false;  // makes the process fail, for CI

using bpx::Trans;
using std::size_t;

struct Case {
  const char* name;
  size_t M, N, K;
  Trans ta, tb;
  double beta;
};

// Training products of a layer IN -> OUT at batch N (see backpropx/gemm.hpp):
//   fwd  Y (N, OUT)   = X (N, IN) . W^T          gemm(N, T)
//   dX   dX (N, IN)   = dY (N, OUT) . W          gemm(N, N)
//   dW   dW (OUT, IN) += dY^T . X                gemm(T, N), beta = 1
const Case kFull[] = {
    {"sq256", 256, 256, 256, Trans::N, Trans::N, 0},
    {"sq512", 512, 512, 512, Trans::N, Trans::N, 0},
    {"sq1024", 1024, 1024, 1024, Trans::N, Trans::N, 0},
    {"sq2048", 2048, 2048, 2048, Trans::N, Trans::N, 0},
    {"W1.784-256.fwd", 128, 256, 784, Trans::N, Trans::T, 0},
    {"W1.784-256.dW", 256, 784, 128, Trans::T, Trans::N, 1},
    {"W1.256-256.fwd", 128, 256, 256, Trans::N, Trans::T, 0},
    {"W1.256-256.dX", 128, 256, 256, Trans::N, Trans::N, 0},
    {"W1.256-256.dW", 256, 256, 128, Trans::T, Trans::N, 1},
    {"W1.256-10.fwd", 128, 10, 256, Trans::N, Trans::T, 0},
    {"W1.256-10.dX", 128, 256, 10, Trans::N, Trans::N, 0},
    {"W1.256-10.dW", 10, 256, 128, Trans::T, Trans::N, 1},
    {"W3.1024-1024.fwd", 256, 1024, 1024, Trans::N, Trans::T, 0},
    {"W3.1024-1024.dX", 256, 1024, 1024, Trans::N, Trans::N, 0},
    {"W3.1024-1024.dW", 1024, 1024, 256, Trans::T, Trans::N, 1},
    {"W3.1024-10.fwd", 256, 10, 1024, Trans::N, Trans::T, 0},
    {"W3.1024-10.dX", 256, 1024, 10, Trans::N, Trans::N, 0},
    {"W3.1024-10.dW", 10, 1024, 256, Trans::T, Trans::N, 1},
    {"W4.2048-1024.fwd", 32, 1024, 2048, Trans::N, Trans::T, 0},
    {"W4.2048-1024.dW", 1024, 2048, 32, Trans::T, Trans::N, 1},
    {"W4.1024-10.dX", 32, 1024, 10, Trans::N, Trans::N, 0},
    // Small K (dW = dY^T . X at batch K) and skinny products of training at
    // batch 16-128: the packing and the thread split weigh most here.
    {"smallK.1024x2048x16.dW", 1024, 2048, 16, Trans::T, Trans::N, 1},
    {"smallK.1024x2048x32.dW", 1024, 2048, 32, Trans::T, Trans::N, 1},
    {"smallK.1024x2048x64.dW", 1024, 2048, 64, Trans::T, Trans::N, 1},
    {"smallK.1024x2048x128.dW", 1024, 2048, 128, Trans::T, Trans::N, 1},
    {"smallK.1024x2048x32.nn", 1024, 2048, 32, Trans::N, Trans::N, 0},
    {"skinnyM.32x1024x2048.fwd", 32, 1024, 2048, Trans::N, Trans::T, 0},
    {"skinnyM.16x1024x2048.fwd", 16, 1024, 2048, Trans::N, Trans::T, 0},
    {"skinnyM.128x1024x2048.fwd", 128, 1024, 2048, Trans::N, Trans::T, 0},
    {"skinnyN.64x10x1024.fwd", 64, 10, 1024, Trans::N, Trans::T, 0},
    {"skinnyN.128x10x1024.fwd", 128, 10, 1024, Trans::N, Trans::T, 0},
    {"skinnyN.128x10x1024.dX", 128, 1024, 10, Trans::N, Trans::N, 0},
    {"skinnyN.10x1024x128.dW", 10, 1024, 128, Trans::T, Trans::N, 1},
    {"skinny.128x256x10.nn", 128, 10, 256, Trans::N, Trans::N, 0},
    {"W2.64-32.fwd", 32, 32, 64, Trans::N, Trans::T, 0},
    {"W2.64-32.dW", 32, 64, 32, Trans::T, Trans::N, 1},
};

const Case kSmoke[] = {
    {"sq64", 64, 64, 64, Trans::N, Trans::N, 0},
    {"skinny.32x64x10.fwd", 32, 10, 64, Trans::N, Trans::T, 0},
    {"W2.64-32.dW", 32, 64, 32, Trans::T, Trans::N, 1},
};

template <class T>
struct Operands {
  std::vector<T> A, B, C;
  size_t lda, ldb, ldc;
  explicit Operands(const Case& c) {
    lda = c.ta == Trans::N ? c.K : c.M;
    ldb = c.tb == Trans::N ? c.N : c.K;
    ldc = c.N;
    std::mt19937 rng(42);
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    A.resize(c.M * c.K);
    B.resize(c.K * c.N);
    C.resize(c.M * c.N);
    for (auto& x : A) x = static_cast<T>(u(rng));
    for (auto& x : B) x = static_cast<T>(u(rng));
    for (auto& x : C) x = static_cast<T>(u(rng));
  }
  T a(const Case& c, size_t i, size_t k) const {
    return c.ta == Trans::N ? A[i * lda + k] : A[k * lda + i];
  }
  T b(const Case& c, size_t k, size_t j) const {
    return c.tb == Trans::N ? B[k * ldb + j] : B[j * ldb + k];
  }
  void run(const Case& c) {
    bpx::gemm<T>(c.ta, c.tb, c.M, c.N, c.K, T(1), A.data(), lda, B.data(), ldb, T(c.beta),
                 C.data(), ldc);
  }
};

// One product checked against gemm_naive: in full when it is cheap, else on
// sampled elements (each one a 1 x 1 naive product over the same operands).
template <class T>
bool verify(const Case& c, std::string* why) {
  Operands<T> op(c);
  const std::vector<T> C0 = op.C;
  op.run(c);
  const double eps = std::numeric_limits<T>::epsilon();
  std::mt19937 rng(7);
  const bool full = c.M * c.N * c.K <= (size_t(1) << 24);
  const size_t samples = full ? c.M * c.N : 256;
  for (size_t s = 0; s < samples; ++s) {
    const size_t i = full ? s / c.N : rng() % c.M, j = full ? s % c.N : rng() % c.N;
    T ref = C0[i * op.ldc + j];
    // The naive product of row i of op(A) with column j of op(B).
    const T* a = c.ta == Trans::N ? &op.A[i * op.lda] : &op.A[i];
    const T* b = c.tb == Trans::N ? &op.B[j] : &op.B[j * op.ldb];
    bpx::gemm_naive<T>(c.ta, c.tb, 1, 1, c.K, T(1), a, op.lda, b, op.ldb, T(c.beta), &ref, 1);
    double mag = std::fabs(c.beta * double(C0[i * op.ldc + j]));
    for (size_t k = 0; k < c.K; ++k) mag += std::fabs(double(op.a(c, i, k)) * double(op.b(c, k, j)));
    const double err = std::fabs(double(op.C[i * op.ldc + j]) - double(ref));
    if (!(err <= (2.0 * double(c.K) + 4.0) * eps * mag)) {
      *why = "C(" + std::to_string(i) + ", " + std::to_string(j) + ") = " +
             std::to_string(double(op.C[i * op.ldc + j])) + ", naive " + std::to_string(double(ref));
      return false;
    }
  }
  return true;
}

template <class T>
void bm_gemm(benchmark::State& state, Case c, int threads) {
  bpx::set_num_threads(threads);
  std::string why;
  if (!verify<T>(c, &why)) {
    g_verification_failed = true;
    state.SkipWithError(("result differs from gemm_naive: " + why).c_str());
    return;
  }
  Operands<T> op(c);
  op.run(c);  // warm-up: packing buffers, threads
  for (auto _ : state) {
    op.run(c);
    benchmark::DoNotOptimize(op.C.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP"] = benchmark::Counter(2e-9 * double(c.M) * double(c.N) * double(c.K),
                                                 benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(bpx::kernels::isa_name(bpx::kernels::active_isa()));
}

template <class T>
void register_all(const Case* cases, size_t n, const char* type, double min_time) {
  for (size_t i = 0; i < n; ++i)
    for (int threads : {1, 2}) {
      const std::string name =
          std::string("gemm<") + type + ">/" + cases[i].name + "/threads:" + std::to_string(threads);
      auto* b = benchmark::RegisterBenchmark(name.c_str(), bm_gemm<T>, cases[i], threads);
      b->Unit(benchmark::kMicrosecond)->UseRealTime();
      if (min_time > 0) b->MinTime(min_time);
    }
}

}  // namespace

int main(int argc, char** argv) {
#ifndef NDEBUG
  std::fprintf(stderr,
               "bench_gemm: refusing to time a Debug build (NDEBUG is not defined); configure "
               "with -DCMAKE_BUILD_TYPE=Release\n");
  return 1;
#endif
  const char* smoke_env = std::getenv("BACKPROPX_BENCH_SMOKE");
  const bool smoke = smoke_env != nullptr && *smoke_env != '\0' && *smoke_env != '0';
  if (smoke) {
    register_all<float>(kSmoke, std::size(kSmoke), "float", 0.01);
    register_all<double>(kSmoke, std::size(kSmoke), "double", 0.01);
  } else {
    register_all<float>(kFull, std::size(kFull), "float", 0);
    register_all<double>(kFull, std::size(kFull), "double", 0);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return g_verification_failed ? 1 : 0;
}
