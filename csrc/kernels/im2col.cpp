#include "kernels/im2col.hpp"

#include <algorithm>
#include <cstring>

#include "kernels/window_range.hpp"

namespace bpx::kernels {

template <class T>
void im2col(const Window& g, const T* x, T* cols, std::size_t ld, std::size_t c0, std::size_t c1) {
  // x is (C, H, W), cols is (C*KH*KW, ld); row (c, i, j), column oh*OW + ow
  for (std::size_t c = c0; c < c1; ++c) {
    const T* xc = x + c * g.plane();
    for (std::size_t i = 0; i < g.KH; ++i) {
      const long long row_offset = static_cast<long long>(i * g.DH) - static_cast<long long>(g.PT);
      const Range rows = valid_range(row_offset, g.SH, g.H, g.OH);
      for (std::size_t j = 0; j < g.KW; ++j) {
        const long long col_offset = static_cast<long long>(j * g.DW) - static_cast<long long>(g.PL);
        const Range cs = valid_range(col_offset, g.SW, g.W, g.OW);
        T* dst = cols + ((c * g.KH + i) * g.KW + j) * ld;
        for (std::size_t oh = 0; oh < g.OH; ++oh, dst += g.OW) {
          if (oh < rows.lo || oh >= rows.hi || cs.lo == cs.hi) {
            std::fill(dst, dst + g.OW, T(0));
            continue;
          }
          const T* src = xc + static_cast<std::size_t>(static_cast<long long>(oh * g.SH) + row_offset) * g.W;
          std::fill(dst, dst + cs.lo, T(0));
          const T* s = src + static_cast<std::size_t>(static_cast<long long>(cs.lo * g.SW) + col_offset);
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
void col2im(const Window& g, const T* cols, std::size_t ld, T* dx, std::size_t c0, std::size_t c1) {
  // forward: cols[(c, i, j), p] = x[c, ih(p, i), iw(p, j)];  dx[c, ih, iw] = sum of those entries
  for (std::size_t c = c0; c < c1; ++c) {
    T* dxc = dx + c * g.plane();
    std::fill(dxc, dxc + g.plane(), T(0));
    for (std::size_t i = 0; i < g.KH; ++i) {
      const long long row_offset = static_cast<long long>(i * g.DH) - static_cast<long long>(g.PT);
      const Range rows = valid_range(row_offset, g.SH, g.H, g.OH);
      for (std::size_t j = 0; j < g.KW; ++j) {
        const long long col_offset = static_cast<long long>(j * g.DW) - static_cast<long long>(g.PL);
        const Range cs = valid_range(col_offset, g.SW, g.W, g.OW);
        const T* src = cols + ((c * g.KH + i) * g.KW + j) * ld;
        for (std::size_t oh = rows.lo; oh < rows.hi; ++oh) {
          T* dst = dxc + static_cast<std::size_t>(static_cast<long long>(oh * g.SH) + row_offset) * g.W;
          const T* s = src + oh * g.OW;
          T* d = dst + static_cast<std::size_t>(static_cast<long long>(cs.lo * g.SW) + col_offset);
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

#define BPX_INSTANTIATE(T)                                                                      \
  template void im2col<T>(const Window&, const T*, T*, std::size_t, std::size_t, std::size_t);  \
  template void col2im<T>(const Window&, const T*, std::size_t, T*, std::size_t, std::size_t);
BPX_INSTANTIATE(float)
BPX_INSTANTIATE(double)
#undef BPX_INSTANTIATE

}  // namespace bpx::kernels
