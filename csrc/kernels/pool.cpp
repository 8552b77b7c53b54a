#include "kernels/pool.hpp"

#include <algorithm>
#include <limits>

namespace bpx::kernels {

namespace {
// [max(o*stride - pad, 0), min(o*stride - pad + k, in)) for every output position o.
std::vector<Range> clipped_windows(std::size_t out, std::size_t stride, std::size_t pad, std::size_t k,
                                   std::size_t in) {
  std::vector<Range> ranges;
  for (std::size_t o = 0; o < out; ++o) {
    const long long start = static_cast<long long>(o * stride) - static_cast<long long>(pad);
    const long long stop = std::min(start + static_cast<long long>(k), static_cast<long long>(in));
    ranges.push_back({static_cast<std::size_t>(std::max(start, 0LL)), static_cast<std::size_t>(std::max(stop, 0LL))});
  }
  return ranges;
}

inline std::size_t divisor(const Window& g, const Range& rows, const Range& cols, bool count_include_pad) {
  return count_include_pad ? g.KH * g.KW : (rows.hi - rows.lo) * (cols.hi - cols.lo);
}
}  // namespace

PoolRanges pool_ranges(const Window& g) {
  PoolRanges r{clipped_windows(g.OH, g.SH, g.PT, g.KH, g.H), clipped_windows(g.OW, g.SW, g.PL, g.KW, g.W), {}, {}};
  for (std::size_t i = 0; i < g.KH; ++i)
    r.tap_rows.push_back(valid_range(static_cast<long long>(i) - static_cast<long long>(g.PT), g.SH, g.H, g.OH));
  for (std::size_t j = 0; j < g.KW; ++j)
    r.tap_cols.push_back(valid_range(static_cast<long long>(j) - static_cast<long long>(g.PL), g.SW, g.W, g.OW));
  return r;
}

template <class T>
void max_pool_forward(const Window& g, const PoolRanges& r, const T* x, T* y, std::int32_t* argmax) {
  // x is (H, W), y and argmax are (OH, OW). Tap by tap in row-major window
  // order, each tap over a run of output columns: the same comparisons as a
  // window-by-window scan (strict >, so the first of equal maxima stays; NaN
  // wins, as in torch), but as selects over contiguous outputs, which
  // vectorise, instead of unpredictable branches. No window is empty
  // (padding <= kernel / 2); each starts from -inf at its first input.
  std::int32_t* at = argmax;
  for (std::size_t oh = 0; oh < g.OH; ++oh) {
    T* yr = y + oh * g.OW;
    std::int32_t* ar = at ? at + oh * g.OW : nullptr;
    for (std::size_t ow = 0; ow < g.OW; ++ow) {
      yr[ow] = -std::numeric_limits<T>::infinity();
      if (ar) ar[ow] = static_cast<std::int32_t>(r.rows[oh].lo * g.W + r.cols[ow].lo);
    }
    for (std::size_t i = 0; i < g.KH; ++i) {
      if (oh < r.tap_rows[i].lo || oh >= r.tap_rows[i].hi) continue;
      const std::size_t ih = oh * g.SH + i - g.PT;
      for (std::size_t j = 0; j < g.KW; ++j) {
        const Range cs = r.tap_cols[j];
        if (cs.lo == cs.hi) continue;
        const std::size_t first = ih * g.W + cs.lo * g.SW + j - g.PL;  // input of output column cs.lo
        const T* xs = x + first;
        if (ar) {
          for (std::size_t ow = cs.lo, k = 0; ow < cs.hi; ++ow, ++k) {
            const T v = xs[k * g.SW];
            const bool take = (v > yr[ow]) | (v != v);
            yr[ow] = take ? v : yr[ow];
            ar[ow] = take ? static_cast<std::int32_t>(first + k * g.SW) : ar[ow];
          }
        } else {
          for (std::size_t ow = cs.lo, k = 0; ow < cs.hi; ++ow, ++k) {
            const T v = xs[k * g.SW];
            yr[ow] = ((v > yr[ow]) | (v != v)) ? v : yr[ow];
          }
        }
      }
    }
  }
}

template <class T>
void max_pool_backward(const Window& g, const PoolRanges&, const std::int32_t* argmax, const T* dy, T* dx) {
  std::fill(dx, dx + g.plane(), T(0));
  for (std::size_t p = 0; p < g.positions(); ++p) dx[argmax[p]] += dy[p];
}

template <class T>
void avg_pool_forward(const Window& g, const PoolRanges& r, const T* x, T* y, bool count_include_pad) {
  for (std::size_t oh = 0; oh < g.OH; ++oh) {
    const Range rows = r.rows[oh];
    for (std::size_t ow = 0; ow < g.OW; ++ow) {
      const Range cols = r.cols[ow];
      T sum = 0;
      for (std::size_t i = rows.lo; i < rows.hi; ++i)
        for (std::size_t j = cols.lo; j < cols.hi; ++j) sum += x[i * g.W + j];
      y[oh * g.OW + ow] = sum / static_cast<T>(divisor(g, rows, cols, count_include_pad));
    }
  }
}

template <class T>
void avg_pool_backward(const Window& g, const PoolRanges& r, const T* dy, T* dx, bool count_include_pad) {
  std::fill(dx, dx + g.plane(), T(0));
  for (std::size_t oh = 0; oh < g.OH; ++oh) {
    const Range rows = r.rows[oh];
    for (std::size_t ow = 0; ow < g.OW; ++ow) {
      const Range cols = r.cols[ow];
      const T share = dy[oh * g.OW + ow] / static_cast<T>(divisor(g, rows, cols, count_include_pad));
      for (std::size_t i = rows.lo; i < rows.hi; ++i)
        for (std::size_t j = cols.lo; j < cols.hi; ++j) dx[i * g.W + j] += share;
    }
  }
}

#define BPX_INSTANTIATE(T)                                                                                     \
  template void max_pool_forward<T>(const Window&, const PoolRanges&, const T*, T*, std::int32_t*);            \
  template void max_pool_backward<T>(const Window&, const PoolRanges&, const std::int32_t*, const T*, T*);     \
  template void avg_pool_forward<T>(const Window&, const PoolRanges&, const T*, T*, bool);                     \
  template void avg_pool_backward<T>(const Window&, const PoolRanges&, const T*, T*, bool);
BPX_INSTANTIATE(float)
BPX_INSTANTIATE(double)
#undef BPX_INSTANTIATE

}  // namespace bpx::kernels
