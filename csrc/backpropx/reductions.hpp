// Reductions over parameter and gradient memory, in a fixed order (so their
// results never depend on the thread count) and vectorised.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "backpropx/common.hpp"

namespace bpx {

// Sum of squares in double, over eight interleaved partial sums (a fixed
// order, so the result does not depend on threads, yet the loop pipelines).
// A non-finite element makes it non-finite, which is how the trainer checks
// gradients for NaN and infinity in the same pass as their norms.
template <class T>
BPX_ELEMENTWISE_CLONES double sum_squares(const T* p, std::size_t n) {
  double lanes[8] = {};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (std::size_t j = 0; j < 8; ++j) lanes[j] += static_cast<double>(p[i + j]) * static_cast<double>(p[i + j]);
  double sum = 0;
  for (; i < n; ++i) sum += static_cast<double>(p[i]) * static_cast<double>(p[i]);
  for (double lane : lanes) sum += lane;
  return sum;
}

// Magnitudes on their bit patterns: clearing the sign gives |x|, whose
// patterns order as the values do, and NaN and infinity are exactly the
// patterns at or above the exponent mask. So the largest |x| of many values,
// with "some value was not finite" folded in, is an integer maximum, which
// vectorises inside any element-wise loop.
template <class T>
using MagnitudeBits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;

template <class T>
inline MagnitudeBits<T> magnitude_bits(T x) {
  constexpr MagnitudeBits<T> magnitude = MagnitudeBits<T>(~MagnitudeBits<T>(0) >> 1);
  MagnitudeBits<T> b;
  std::memcpy(&b, &x, sizeof b);
  return b & magnitude;
}

// The magnitude a maximum of magnitude_bits stands for: +infinity when a
// value was NaN or infinite.
template <class T>
inline double magnitude_value(MagnitudeBits<T> most) {
  constexpr MagnitudeBits<T> exponent =
      sizeof(T) == 4 ? MagnitudeBits<T>(0x7f800000u) : MagnitudeBits<T>(0x7ff0000000000000ull);
  if (most >= exponent) return std::numeric_limits<double>::infinity();
  T value;
  std::memcpy(&value, &most, sizeof value);
  return static_cast<double>(value);
}

// The largest |p[i]|, or +infinity when an element is NaN or infinite.
template <class T>
BPX_ELEMENTWISE_CLONES double max_abs(const T* p, std::size_t n) {
  MagnitudeBits<T> most = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const MagnitudeBits<T> b = magnitude_bits(p[i]);
    most = b > most ? b : most;
  }
  return magnitude_value<T>(most);
}

}  // namespace bpx
