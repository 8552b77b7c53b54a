#include "kernels/pool.hpp"

#include <algorithm>
#include <cmath>


namespace bpx::kernels {

namespace {
// The input rows [r.lo, r.hi) and columns [c.lo, c.hi) under output (oh, ow):
// the window clipped to the input.
struct Box {
  std::size_t r0, r1, c0, c1;
};

inline Box window_box(const Window& g, std::size_t oh, std::size_t ow) {
  const long long top = static_cast<long long>(oh * g.SH) - static_cast<long long>(g.PT);
  const long long left = static_cast<long long>(ow * g.SW) - static_cast<long long>(g.PL);
  const long long bottom = std::min(top + static_cast<long long>(g.KH), static_cast<long long>(g.H));
  const long long right = std::min(left + static_cast<long long>(g.KW), static_cast<long long>(g.W));
  return {static_cast<std::size_t>(std::max(top, 0LL)), static_cast<std::size_t>(std::max(bottom, 0LL)),
          static_cast<std::size_t>(std::max(left, 0LL)), static_cast<std::size_t>(std::max(right, 0LL))};
}

inline std::size_t divisor(const Window& g, const Box& b, bool count_include_pad) {
  return count_include_pad ? g.KH * g.KW : (b.r1 - b.r0) * (b.c1 - b.c0);
}
}  // namespace

template <class T>
void max_pool_forward(const Window& g, const T* x, T* y, std::int32_t* argmax) {
  // x is (H, W), y and argmax are (OH, OW)
  for (std::size_t oh = 0; oh < g.OH; ++oh)
    for (std::size_t ow = 0; ow < g.OW; ++ow) {
      const Box b = window_box(g, oh, ow);  // never empty: padding <= kernel / 2
      std::size_t best_at = b.r0 * g.W + b.c0;
      T best = x[best_at];
      for (std::size_t r = b.r0; r < b.r1; ++r)
        for (std::size_t c = b.c0; c < b.c1; ++c) {
          const T v = x[r * g.W + c];
          if (v > best || std::isnan(v)) {
            best = v;
            best_at = r * g.W + c;
          }
        }
      y[oh * g.OW + ow] = best;
      if (argmax) argmax[oh * g.OW + ow] = static_cast<std::int32_t>(best_at);
    }
}

template <class T>
void max_pool_backward(const Window& g, const std::int32_t* argmax, const T* dy, T* dx) {
  std::fill(dx, dx + g.plane(), T(0));
  for (std::size_t p = 0; p < g.positions(); ++p) dx[argmax[p]] += dy[p];
}

template <class T>
void avg_pool_forward(const Window& g, const T* x, T* y, bool count_include_pad) {
  for (std::size_t oh = 0; oh < g.OH; ++oh)
    for (std::size_t ow = 0; ow < g.OW; ++ow) {
      const Box b = window_box(g, oh, ow);
      T sum = 0;
      for (std::size_t r = b.r0; r < b.r1; ++r)
        for (std::size_t c = b.c0; c < b.c1; ++c) sum += x[r * g.W + c];
      y[oh * g.OW + ow] = sum / static_cast<T>(divisor(g, b, count_include_pad));
    }
}

template <class T>
void avg_pool_backward(const Window& g, const T* dy, T* dx, bool count_include_pad) {
  std::fill(dx, dx + g.plane(), T(0));
  for (std::size_t oh = 0; oh < g.OH; ++oh)
    for (std::size_t ow = 0; ow < g.OW; ++ow) {
      const Box b = window_box(g, oh, ow);
      const T share = dy[oh * g.OW + ow] / static_cast<T>(divisor(g, b, count_include_pad));
      for (std::size_t r = b.r0; r < b.r1; ++r)
        for (std::size_t c = b.c0; c < b.c1; ++c) dx[r * g.W + c] += share;
    }
}

#define BPX_INSTANTIATE(T)                                                                  \
  template void max_pool_forward<T>(const Window&, const T*, T*, std::int32_t*);            \
  template void max_pool_backward<T>(const Window&, const std::int32_t*, const T*, T*);     \
  template void avg_pool_forward<T>(const Window&, const T*, T*, bool);                     \
  template void avg_pool_backward<T>(const Window&, const T*, T*, bool);
BPX_INSTANTIATE(float)
BPX_INSTANTIATE(double)
#undef BPX_INSTANTIATE

}  // namespace bpx::kernels
