// The geometry of a sliding window over the spatial axes of one sample, as
// convolution and pooling use it. 1-D layers are the 2-D case with H = 1
// (kernel, stride 1, no padding along that axis), so one set of loops
// serves both. Sizes (legend in backpropx/common.hpp, plus):
//   C        channels of the input
//   H, W     spatial size of the input
//   OH, OW   spatial size of the output; P = OH * OW positions
//   KH, KW   kernel size; a tap (i, j) reads row oh*SH - PT + i*DH, column
//            ow*SW - PL + j*DW of the input (outside it: padding)
#pragma once

#include <cstddef>

namespace bpx::kernels {

struct Window {
  std::size_t C = 1, H = 1, W = 1;
  std::size_t KH = 1, KW = 1;
  std::size_t SH = 1, SW = 1;  // stride
  std::size_t PT = 0, PL = 0;  // padding before the first row / column (top, left)
  std::size_t DH = 1, DW = 1;  // dilation
  std::size_t OH = 1, OW = 1;

  std::size_t positions() const { return OH * OW; }
  std::size_t taps() const { return KH * KW; }
  std::size_t plane() const { return H * W; }
};

// Output length of one axis: floor((in + pad_total - dilation*(k-1) - 1) / stride) + 1,
// or 0 when the (dilated) kernel does not fit the padded input.
inline std::size_t window_output(std::size_t in, std::size_t pad_total, std::size_t k,
                                 std::size_t stride, std::size_t dilation) {
  const std::size_t span = dilation * (k - 1) + 1;
  if (in + pad_total < span) return 0;
  return (in + pad_total - span) / stride + 1;
}

}  // namespace bpx::kernels
