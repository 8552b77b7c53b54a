// The FP32 FMA peak of one core, measured: 16 independent chains of AVX-512
// (or, without it, AVX2) fused multiply-adds, best of 5 timed runs. The
// figure conv_compare.py's --peak takes (BENCH.md's 117 GFLOP/s was a Zen 4;
// the machine may since be another).
#include <chrono>
#include <cstdio>

#include <immintrin.h>

namespace {
#if defined(__AVX512F__)
using Vec = __m512;
constexpr int kLanes = 16;
Vec splat(float x) { return _mm512_set1_ps(x); }
Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
float sum(Vec v) {
  alignas(64) float f[16];
  _mm512_store_ps(f, v);
  float t = 0;
  for (float x : f) t += x;
  return t;
}
#else
using Vec = __m256;
constexpr int kLanes = 8;
Vec splat(float x) { return _mm256_set1_ps(x); }
Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
float sum(Vec v) {
  alignas(32) float f[8];
  _mm256_store_ps(f, v);
  return f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7];
}
#endif
}  // namespace

int main() {
  constexpr int kChains = 16;  // more than latency x throughput: the FMA units never wait
  Vec acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = splat(0.001f * static_cast<float>(i));
  const Vec a = splat(0.999999f), b = splat(1e-7f);
  const long rounds = 12'500'000;
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    for (long r = 0; r < rounds; ++r)
#pragma GCC unroll 16
      for (int i = 0; i < kChains; ++i) acc[i] = fma(acc[i], a, b);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double gflops = 2.0 * kLanes * kChains * static_cast<double>(rounds) / s / 1e9;
    if (gflops > best) best = gflops;
  }
  float sink = 0;
  for (int i = 0; i < kChains; ++i) sink += sum(acc[i]);
  std::printf("%.1f GFLOP/s FP32 FMA peak of one core (%d-lane vectors; checksum %g)\n", best, kLanes,
              static_cast<double>(sink));
}
