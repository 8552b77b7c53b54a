#include "kernels/im2col.hpp"

#include <algorithm>
#include <cstring>

namespace bpx::kernels {

namespace {
long long offset(std::size_t tap, std::size_t dilation, std::size_t pad) {
  return static_cast<long long>(tap * dilation) - static_cast<long long>(pad);
}
}  // namespace

TapRanges tap_ranges(const Window& g) {
  TapRanges r;
  for (std::size_t i = 0; i < g.KH; ++i) r.rows.push_back(valid_range(offset(i, g.DH, g.PT), g.SH, g.H, g.OH));
  for (std::size_t j = 0; j < g.KW; ++j) r.cols.push_back(valid_range(offset(j, g.DW, g.PL), g.SW, g.W, g.OW));
  return r;
}

template <class T>
void im2col(const Window& g, const TapRanges& r, const T* x, T* cols, std::size_t ld, std::size_t c0,
            std::size_t c1) {
  // x is (C, H, W), cols is (C*KH*KW, ld); row (c, i, j), column oh*OW + ow
  for (std::size_t c = c0; c < c1; ++c) {
    const T* xc = x + c * g.plane();
    for (std::size_t i = 0; i < g.KH; ++i) {
      const Range rows = r.rows[i];
      const long long row_offset = offset(i, g.DH, g.PT);
      for (std::size_t j = 0; j < g.KW; ++j) {
        const Range cs = r.cols[j];
        // the first input column this tap reads (at output column cs.lo)
        const std::size_t first = static_cast<std::size_t>(static_cast<long long>(cs.lo * g.SW) + offset(j, g.DW, g.PL));
        T* dst = cols + ((c * g.KH + i) * g.KW + j) * ld;
        for (std::size_t oh = 0; oh < g.OH; ++oh, dst += g.OW) {
          if (oh < rows.lo || oh >= rows.hi || cs.lo == cs.hi) {
            std::fill(dst, dst + g.OW, T(0));
            continue;
          }
          const T* s = xc + static_cast<std::size_t>(static_cast<long long>(oh * g.SH) + row_offset) * g.W + first;
          std::fill(dst, dst + cs.lo, T(0));
          if (g.SW == 1) {
            std::memcpy(dst + cs.lo, s, (cs.hi - cs.lo) * sizeof(T));
          } else {
            for (std::size_t ow = cs.lo; ow < cs.hi; ++ow, s += g.SW) dst[ow] = *s;
          }
          std::fill(dst + cs.hi, dst + g.OW, T(0));
        }
      }
    }
  }
}

template <class T>
void col2im(const Window& g, const TapRanges& r, const T* cols, std::size_t ld, T* dx, std::size_t c0,
            std::size_t c1) {
  // forward: cols[(c, i, j), p] = x[c, ih(p, i), iw(p, j)];  dx[c, ih, iw] = sum of those entries
  for (std::size_t c = c0; c < c1; ++c) {
    T* dxc = dx + c * g.plane();
    std::fill(dxc, dxc + g.plane(), T(0));
    for (std::size_t i = 0; i < g.KH; ++i) {
      const Range rows = r.rows[i];
      const long long row_offset = offset(i, g.DH, g.PT);
      for (std::size_t j = 0; j < g.KW; ++j) {
        const Range cs = r.cols[j];
        if (cs.lo == cs.hi) continue;  // this tap reads only padding
        const std::size_t first = static_cast<std::size_t>(static_cast<long long>(cs.lo * g.SW) + offset(j, g.DW, g.PL));
        const T* src = cols + ((c * g.KH + i) * g.KW + j) * ld;
        for (std::size_t oh = rows.lo; oh < rows.hi; ++oh) {
          T* d = dxc + static_cast<std::size_t>(static_cast<long long>(oh * g.SH) + row_offset) * g.W + first;
          const T* s = src + oh * g.OW;
          if (g.SW == 1) {
            for (std::size_t ow = cs.lo; ow < cs.hi; ++ow, ++d) *d += s[ow];
          } else {
            for (std::size_t ow = cs.lo; ow < cs.hi; ++ow, d += g.SW) *d += s[ow];
          }
        }
      }
    }
  }
}

#define BPX_INSTANTIATE(T)                                                                             \
  template void im2col<T>(const Window&, const TapRanges&, const T*, T*, std::size_t, std::size_t,     \
                          std::size_t);                                                                \
  template void col2im<T>(const Window&, const TapRanges&, const T*, std::size_t, T*, std::size_t,     \
                          std::size_t);
BPX_INSTANTIATE(float)
BPX_INSTANTIATE(double)
#undef BPX_INSTANTIATE

}  // namespace bpx::kernels
