// Convolution, as torch.nn.Conv1d / Conv2d (groups 1, zero padding):
//   z[o, oh, ow] = b[o] + sum_{c, i, j} W[o, c, i, j] x[c, oh*SH - PT + i*DH, ow*SW - PL + j*DW]
//   y = f(z)
// on samples (C, L) or (C, H, W), weight (OUT, C, K) or (OUT, C, KH, KW).
//
// Layout: the caller's (channels first) throughout, so Flatten stays a view
// and nothing is transposed at the network's edges. im2col turns a sample
// into a (C*KH*KW, P) column matrix (P = OH*OW positions); then
//   Z (OUT, P) = W (OUT, C*KH*KW) . cols (C*KH*KW, P)
// is already the sample's (OUT, OH, OW) output. Small images put the columns
// of several samples side by side, so one product covers them; its
// (OUT, samples*P) result is then copied into (samples, OUT, P) by the same
// pass that adds the bias and applies the activation. 1x1 convolutions with
// stride 1 and no padding use the samples themselves as the columns. When
// a sample's columns are small (small images, few channels), a training
// forward keeps them in the cache for backward instead of rebuilding them.
#pragma once

#include "backpropx/layers/registry.hpp"
#include "kernels/im2col.hpp"

namespace bpx {

template <class T>
class Conv final : public Layer<T> {
 public:
  // dims: 1 (Conv1D) or 2 (Conv2D); g: the window over the input.
  Conv(std::size_t dims, const kernels::Window& g, std::size_t out_channels, bool bias,
       Activation activation, Init init);

  std::string kind() const override { return dims_ == 1 ? "conv1d" : "conv2d"; }
  Shape input_shape() const override;
  Shape output_shape() const override;
  std::vector<ParamSpec> parameter_specs() const override;
  void bind(T* params, T* grads) override;
  std::size_t cache_size(std::size_t n) const override;
  std::size_t scratch_size(std::size_t n) const override;
  void forward(const T* x, T* y, const LayerBuffers<T>& buffers, std::size_t n,
               const Pass& pass) const override;
  void backward(const T* x, const T* y, const LayerBuffers<T>& buffers, T* dy, T* dx,
                std::size_t n, const Pass& pass) override;
  Activation output_activation() const override { return act_; }
  void release_output_activation() override { act_ = Activation::identity; }

 private:
  std::size_t taps() const { return g_.C * g_.taps(); }  // rows of the column matrix: C*KH*KW
  std::size_t positions() const { return g_.positions(); }
  // Samples whose columns share one product: enough columns for an efficient
  // product, few enough to keep the column matrix small. Depends on the
  // shape only (never on threads), so results do not either.
  std::size_t group(std::size_t n) const;
  bool pointwise() const;  // 1x1, stride 1, no padding: a sample is its own column matrix
  bool keeps_columns() const;  // a training forward caches the column matrices
  // Whether backward needs the pre-activation z: not for the identity, nor
  // for relu and leaky_relu, whose derivative at z equals theirs at y = f(z)
  // (y > 0 exactly when z > 0), so y stands in for z and the cache is spared.
  bool keeps_z() const;
  // The column matrix of samples [s, s + m) into cols (taps, m*P); returns
  // where it is (the input itself for a pointwise single sample).
  const T* columns(const T* x, std::size_t s, std::size_t m, T* cols) const;

  std::size_t dims_;
  kernels::Window g_;
  kernels::TapRanges ranges_;
  std::size_t out_;
  bool has_bias_;
  Activation act_;
  Init init_;
  T* weight_ = nullptr;  // (OUT, C*KH*KW)
  T* bias_ = nullptr;    // (OUT,)
  T* dweight_ = nullptr;
  T* dbias_ = nullptr;
};

template <class T>
std::unique_ptr<Layer<T>> make_conv1d(const ConfigReader& config, const Shape& input);
template <class T>
std::unique_ptr<Layer<T>> make_conv2d(const ConfigReader& config, const Shape& input);

}  // namespace bpx
