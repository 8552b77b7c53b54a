// Pooling loops over one plane (one channel of one sample): x is (H, W),
// y is (OH, OW), with the window geometry of window.hpp (C ignored, no
// dilation). Padding is never a candidate for the maximum and counts in an
// average only with count_include_pad, as in PyTorch. Backward functions
// assign dx (=), adding the contributions in output-position order, so the
// result does not depend on threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/window.hpp"
#include "kernels/window_range.hpp"

namespace bpx::kernels {

// The input rows under each output row and the input columns under each
// output column: every window clipped to the input. Fixed by the geometry,
// so a layer computes them once.
struct PoolRanges {
  std::vector<Range> rows, cols;  // rows[oh] = [lo, hi) of input rows, cols[ow] likewise
  std::vector<Range> tap_rows, tap_cols;  // per kernel row i / column j: the outputs it reads inside the input
};
PoolRanges pool_ranges(const Window& g);

// y[p] = max of the window's values inside the input (NaN wins, as in torch;
// the first of equal maxima is taken). argmax[p] = its index ih*W + iw
// within the plane, unless argmax is null (inference).
template <class T>
void max_pool_forward(const Window& g, const PoolRanges& r, const T* x, T* y, std::int32_t* argmax);

// forward: y[p] = x[argmax[p]];  dx[argmax[p]] += dy[p]
template <class T>
void max_pool_backward(const Window& g, const PoolRanges& r, const std::int32_t* argmax, const T* dy, T* dx);

// y[p] = (sum of the window's values inside the input) / divisor, divisor =
// KH*KW with count_include_pad, else the number of those values.
template <class T>
void avg_pool_forward(const Window& g, const PoolRanges& r, const T* x, T* y, bool count_include_pad);

// forward: y[p] = sum_window x / divisor;  dx[window] += dy[p] / divisor
template <class T>
void avg_pool_backward(const Window& g, const PoolRanges& r, const T* dy, T* dx, bool count_include_pad);

}  // namespace bpx::kernels
