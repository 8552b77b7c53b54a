// im2col / col2im: the layout helpers that turn a convolution into one
// matrix product (Chellapilla et al. 2006; Caffe, ggml). For one sample x
// (C, H, W), the column matrix has one row per (channel, tap) and one
// column per output position:
//   cols[(c*KH + i)*KW + j, oh*OW + ow] = x[c, oh*SH - PT + i*DH, ow*SW - PL + j*DW]
// (0 in the padding). Rows are `ld` apart, so several samples' columns can
// sit side by side in one matrix of C*KH*KW rows. Only channels [c0, c1)
// are touched, so callers can split the work over threads by channel.
#pragma once

#include <cstddef>
#include <vector>

#include "kernels/window.hpp"
#include "kernels/window_range.hpp"

namespace bpx::kernels {

// Per kernel row i (rows) and column j (cols): the output positions whose
// tap reads inside the input. Fixed by the geometry, so a layer computes
// them once.
struct TapRanges {
  std::vector<Range> rows, cols;
};
TapRanges tap_ranges(const Window& g);

// x is (C, H, W); cols is (C*KH*KW, ld), ld >= OH*OW.
template <class T>
void im2col(const Window& g, const TapRanges& r, const T* x, T* cols, std::size_t ld, std::size_t c0,
            std::size_t c1);

// The adjoint: dx[c, ...] (=) the sum of every column entry that im2col
// copied from there. Entries are added in row order, then position order,
// so the result is the same on any number of threads. dx is (C, H, W).
template <class T>
void col2im(const Window& g, const TapRanges& r, const T* cols, std::size_t ld, T* dx, std::size_t c0,
            std::size_t c1);

}  // namespace bpx::kernels
