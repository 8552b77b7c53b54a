#include "backpropx/layers/window_config.hpp"

#include <limits>

namespace bpx {

namespace {

// One value per spatial axis, innermost last: an integer applies to every axis.
std::vector<std::size_t> per_axis(const ConfigReader& c, const WindowOptions& o, const std::string& key,
                                  long long fallback, long long minimum) {
  std::vector<long long> values;
  if (c.config().int_lists.count(key)) {
    values = c.int_list(key);
    require(values.size() == o.dims, o.layer + ": " + key + " takes an integer or " + std::to_string(o.dims) +
                                         " of them, got " + std::to_string(values.size()));
  } else {
    values.assign(o.dims, c.config().ints.count(key) ? c.integer(key) : fallback);
  }
  std::vector<std::size_t> out;
  for (long long v : values) {
    require(v >= minimum && v < (1LL << 31), o.layer + ": " + key + " must be " +
                                                 (minimum > 0 ? "positive" : "non-negative") + ", got " +
                                                 std::to_string(v));
    out.push_back(static_cast<std::size_t>(v));
  }
  if (o.dims == 1) out.insert(out.begin(), minimum > 0 ? 1 : 0);  // the H axis of a 1-D layer
  return out;
}

}  // namespace

kernels::Window read_window(const ConfigReader& c, const Shape& input, const WindowOptions& o) {
  const std::string expect = o.dims == 1 ? "(channels, length)" : "(channels, height, width)";
  require(!input.empty(), "a first " + o.layer + " layer needs the network's input_shape, e.g. input_shape=" +
                              (o.dims == 1 ? std::string("(1, 40)") : std::string("(1, 28, 28)")));
  require(input.size() == o.dims + 1, o.layer + " takes samples " + expect + ", but receives per-sample shape " +
                                          shape_str(input) +
                                          (input.size() == 1 ? " (add bx.Reshape to give them channels)" : ""));
  for (std::size_t d : input)
    require(d < (std::size_t{1} << 31), o.layer + ": per-sample shape " + shape_str(input) + " is too large");
  kernels::Window g;
  g.C = input[0];
  g.H = o.dims == 1 ? 1 : input[1];
  g.W = input.back();
  require(checked_mul(g.H, g.W) < (std::size_t{1} << 31), o.layer + ": a plane of " + shape_str(input) +
                                                              " holds more than 2^31 values");
  const auto kernel = per_axis(c, o, "kernel_size", 0, 1);
  g.KH = kernel[0];
  g.KW = kernel[1];
  const bool stride_given = c.has("stride");
  const auto stride = stride_given || !o.stride_defaults_to_kernel ? per_axis(c, o, "stride", 1, 1) : kernel;
  g.SH = stride[0];
  g.SW = stride[1];
  const auto dilation = per_axis(c, o, "dilation", 1, 1);
  require(o.dilation_ok || (dilation[0] == 1 && dilation[1] == 1), o.layer + " takes no dilation");
  g.DH = dilation[0];
  g.DW = dilation[1];
  const std::size_t span_h = g.DH * (g.KH - 1) + 1, span_w = g.DW * (g.KW - 1) + 1;

  std::size_t pad_total_h = 0, pad_total_w = 0;
  const std::string mode = c.string("padding", "");
  if (!mode.empty()) {
    require(o.same_padding_ok, o.layer + ": padding must be an integer or " + std::to_string(o.dims) +
                                   " of them, got '" + mode + "'");
    if (mode == "same") {
      require(g.SH == 1 && g.SW == 1, o.layer + ": padding='same' needs stride 1 (as in PyTorch)");
      // torch pads dilation*(k-1) in all, the odd one at the end
      pad_total_h = span_h - 1;
      pad_total_w = span_w - 1;
      g.PT = pad_total_h / 2;
      g.PL = pad_total_w / 2;
    } else {
      require(mode == "valid", o.layer + ": padding must be an integer, a pair, 'same' or 'valid', got '" +
                                   mode + "'");
    }
  } else {
    const auto pad = per_axis(c, o, "padding", 0, 0);
    g.PT = pad[0];
    g.PL = pad[1];
    pad_total_h = 2 * g.PT;
    pad_total_w = 2 * g.PL;
    if (o.half_kernel_padding)
      require(2 * g.PT <= g.KH && 2 * g.PL <= g.KW,
              o.layer + ": padding must be at most half the kernel size (as in PyTorch), got padding " +
                  std::to_string(o.dims == 1 ? g.PL : g.PT) + " for kernel " +
                  std::to_string(o.dims == 1 ? g.KW : g.KH));
  }
  g.OH = kernels::window_output(g.H, pad_total_h, g.KH, g.SH, g.DH);
  g.OW = kernels::window_output(g.W, pad_total_w, g.KW, g.SW, g.DW);
  require(g.OH > 0 && g.OW > 0, o.layer + ": the kernel (" + std::to_string(o.dims == 1 ? span_w : span_h) +
                                    (o.dims == 1 ? "" : " x " + std::to_string(span_w)) +
                                    " with dilation) is larger than the padded input " + shape_str(input));
  return g;
}

Shape window_output_shape(const kernels::Window& g, std::size_t channels, std::size_t dims) {
  return dims == 1 ? Shape{channels, g.OW} : Shape{channels, g.OH, g.OW};
}

}  // namespace bpx
