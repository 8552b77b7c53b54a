// Which output positions of one axis read inside the input, for a tap.
#pragma once

#include <cstddef>

namespace bpx::kernels {

// The output positions o in [lo, hi) for which o*stride + offset lies in
// [0, in); the others read padding. offset = tap*dilation - pad_before.
struct Range {
  std::size_t lo, hi;
};

inline Range valid_range(long long offset, std::size_t stride, std::size_t in, std::size_t out) {
  const long long s = static_cast<long long>(stride);
  long long lo = offset >= 0 ? 0 : (-offset + s - 1) / s;
  const long long last = static_cast<long long>(in) - 1 - offset;  // o*stride <= last
  long long hi = last < 0 ? 0 : last / s + 1;
  if (hi > static_cast<long long>(out)) hi = static_cast<long long>(out);
  if (lo > hi) lo = hi;
  return {static_cast<std::size_t>(lo), static_cast<std::size_t>(hi)};
}

}  // namespace bpx::kernels
