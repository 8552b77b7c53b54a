// The one random generator of the core: xoshiro256** (Blackman & Vigna,
// 2018) seeded through splitmix64. Integer outputs are identical on every
// machine; normals use Box-Muller in double precision.
#pragma once

#include <array>
#include <cstdint>

namespace bpx {

class Rng {
 public:
  using State = std::array<std::uint64_t, 4>;

  explicit Rng(std::uint64_t seed = 0);

  std::uint64_t next_u64();
  // Uniform in [0, 1) with 53 random bits.
  double uniform();
  // Standard normal, one Box-Muller draw per call (no cached second value,
  // so the state alone says what comes next).
  double normal();
  // Uniform integer in [0, n), unbiased (Lemire's multiply-and-reject).
  std::uint64_t below(std::uint64_t n);

  const State& state() const { return s_; }
  void set_state(const State& s);

 private:
  State s_;
};

// Fisher-Yates shuffle of [0, n) into perm, driven by rng.
template <class Index>
void shuffle_indices(Index* perm, std::uint64_t n, Rng& rng) {
  for (std::uint64_t i = n; i > 1; --i) {
    const std::uint64_t j = rng.below(i);
    Index tmp = perm[i - 1];
    perm[i - 1] = perm[j];
    perm[j] = tmp;
  }
}

}  // namespace bpx
