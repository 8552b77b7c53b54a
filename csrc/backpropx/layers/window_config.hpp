// Reading a sliding window (kernel_size, stride, padding, dilation) from a
// layer config, for convolution and pooling over 1-D samples (C, L) and
// 2-D samples (C, H, W). Each option is an integer or one per spatial axis,
// as PyTorch takes them; a 1-D layer is the 2-D case with H = 1.
#pragma once

#include <string>

#include "backpropx/layers/registry.hpp"
#include "kernels/window.hpp"

namespace bpx {

struct WindowOptions {
  std::string layer;       // "Conv2D": names the layer in errors
  std::size_t dims = 2;    // spatial axes: 1 or 2
  bool same_padding_ok = false;  // padding="same"/"valid" (convolution)
  bool dilation_ok = false;
  bool stride_defaults_to_kernel = false;  // pooling: stride=None means the kernel size
  bool half_kernel_padding = false;        // pooling: padding <= kernel / 2, as torch requires
};

// Checks the sample shape (C, *spatial) and the options, and returns the
// geometry with its output size (at least 1 per axis, else an error).
kernels::Window read_window(const ConfigReader& c, const Shape& input, const WindowOptions& o);

// The per-sample output shape (channels, *spatial) of a window layer.
Shape window_output_shape(const kernels::Window& g, std::size_t channels, std::size_t dims);

}  // namespace bpx
