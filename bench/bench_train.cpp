// One training epoch of each BENCH.md workload in the C++ core (no Python):
// shuffle, forward, loss, backward and Adam update, float32, 1 and 2 threads.
// Before timing, each network's forward pass is checked against a naive one
// built from bpx::gemm_naive and the scalar activation formulas.
//
//   bench_train                                all workloads (about a minute)
//   BACKPROPX_BENCH_SMOKE=1 bench_train        tiny data sets (seconds, for CI)
//
// W2's shapes are those of the 8x8 digits; its data here are uniform random
// numbers in [0, 1] (the digits themselves ship with the Python package).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backpropx/gemm.hpp"
#include "backpropx/layers/registry.hpp"
#include "backpropx/network.hpp"
#include "backpropx/optimizers.hpp"
#include "backpropx/parallel.hpp"
#include "backpropx/trainer.hpp"

namespace {

using std::size_t;

bool g_verification_failed = false;  // makes the process fail, for CI

struct Workload {
  const char* name;
  std::vector<size_t> widths;  // input, hidden..., classes
  size_t batch;
  size_t samples;
  bool uniform_inputs;
};

const Workload kFull[] = {
    {"W1", {784, 256, 256, 10}, 128, 60000, false},
    {"W2", {64, 32, 10}, 32, 1797, true},
    {"W3", {1024, 1024, 1024, 10}, 256, 20000, false},
};
const Workload kSmoke[] = {
    {"W1", {784, 256, 256, 10}, 128, 512, false},
    {"W2", {64, 32, 10}, 32, 256, true},
    {"W3", {1024, 1024, 1024, 10}, 256, 512, false},
};

std::unique_ptr<bpx::Network<float>> build(const Workload& w) {
  std::vector<bpx::LayerConfig> layers;
  for (size_t k = 0; k + 1 < w.widths.size(); ++k) {
    bpx::LayerConfig c;
    c.kind = "dense";
    c.ints["in_features"] = static_cast<long long>(w.widths[k]);
    c.ints["out_features"] = static_cast<long long>(w.widths[k + 1]);
    c.strings["activation"] = k + 2 == w.widths.size() ? "softmax" : "relu";
    layers.push_back(c);
  }
  return std::make_unique<bpx::Network<float>>(layers, bpx::Shape{}, 0);
}

// Forward pass with the naive GEMM and scalar formulas; returns the largest
// difference from the network's predict, relative to the output scale.
double verify_forward(const bpx::Network<float>& net, const Workload& w, const float* X, size_t n) {
  std::vector<float> in(X, X + n * w.widths[0]), out;
  for (size_t k = 0; k + 1 < w.widths.size(); ++k) {
    const size_t IN = w.widths[k], OUT = w.widths[k + 1];
    const auto& t = net.tensors();
    const float* W = net.params() + t[2 * k].offset;
    const float* b = net.params() + t[2 * k + 1].offset;
    out.assign(n * OUT, 0.0f);
    bpx::gemm_naive<float>(bpx::Trans::N, bpx::Trans::T, n, OUT, IN, 1.0f, in.data(), IN, W, IN,
                           0.0f, out.data(), OUT);
    for (size_t r = 0; r < n; ++r) {
      float* row = out.data() + r * OUT;
      for (size_t j = 0; j < OUT; ++j) row[j] += b[j];
      if (k + 2 == w.widths.size()) {
        const float m = *std::max_element(row, row + OUT);
        float s = 0;
        for (size_t j = 0; j < OUT; ++j) s += (row[j] = std::exp(row[j] - m));
        for (size_t j = 0; j < OUT; ++j) row[j] /= s;
      } else {
        for (size_t j = 0; j < OUT; ++j) row[j] = std::max(row[j], 0.0f);
      }
    }
    in.swap(out);
  }
  std::vector<float> got(n * w.widths.back());
  net.predict(X, n, got.data());
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(double(got[i]) - in[i]));
  return worst;
}

void run_epoch(benchmark::State& state, const Workload& w, int threads) {
  bpx::set_num_threads(threads);
  std::mt19937_64 gen(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::vector<float> X(w.samples * w.widths[0]);
  for (float& v : X) v = w.uniform_inputs ? uniform(gen) : normal(gen);
  std::vector<std::int64_t> labels(w.samples);
  for (auto& l : labels) l = static_cast<std::int64_t>(gen() % w.widths.back());

  auto net = build(w);
  const double error = verify_forward(*net, w, X.data(), std::min<size_t>(w.samples, 64));
  if (!(error < 1e-4)) {
    g_verification_failed = true;
    state.SkipWithError(("forward pass differs from the naive one by " + std::to_string(error)).c_str());
    return;
  }
  auto adam = bpx::make_optimizer<float>(bpx::OptimizerConfig{"adam", {{"lr", 1e-3}}});
  bpx::Trainer<float> trainer(*net, *adam, bpx::Loss::cross_entropy, w.batch, true, 0);
  bpx::Targets<float> y;
  y.labels = labels.data();
  trainer.train_epoch(X.data(), y, w.samples);  // warm-up epoch
  for (auto _ : state) {
    bpx::EpochStats s = trainer.train_epoch(X.data(), y, w.samples);
    benchmark::DoNotOptimize(s.loss);
  }
  state.counters["samples/s"] =
      benchmark::Counter(double(w.samples), benchmark::Counter::kIsIterationInvariantRate);
}

void register_all(const Workload* list, size_t count) {
  for (size_t i = 0; i < count; ++i)
    for (int threads : {1, 2}) {
      const Workload w = list[i];
      benchmark::RegisterBenchmark((std::string(w.name) + "/threads:" + std::to_string(threads)).c_str(),
                                   [w, threads](benchmark::State& s) { run_epoch(s, w, threads); })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
}

}  // namespace

int main(int argc, char** argv) {
#ifndef NDEBUG
  std::fprintf(stderr, "bench_train: refusing to time a Debug build; configure with "
                       "-DCMAKE_BUILD_TYPE=Release\n");
  return 1;
#endif
  const char* smoke_env = std::getenv("BACKPROPX_BENCH_SMOKE");
  const bool smoke = smoke_env != nullptr && *smoke_env != '\0' && *smoke_env != '0';
  if (smoke) register_all(kSmoke, std::size(kSmoke));
  else register_all(kFull, std::size(kFull));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return g_verification_failed ? 1 : 0;
}
