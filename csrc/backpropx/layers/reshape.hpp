// Flatten and Reshape: the same values under another per-sample shape. The
// core keeps samples in the caller's (PyTorch's) element order, so both are
// views: the network gives them no buffer and they cost nothing. Flatten's
// order is therefore torch's flatten(1) of the (C, H, W) tensor.
#pragma once

#include "backpropx/layers/registry.hpp"

namespace bpx {

template <class T>
class ReshapeLayer final : public Layer<T> {
 public:
  ReshapeLayer(std::string kind, Shape input, Shape output);

  std::string kind() const override { return kind_; }
  Shape input_shape() const override { return in_; }
  Shape output_shape() const override { return out_; }
  bool aliases_input() const override { return true; }
  // Called only by code that does not honour aliases_input(): a plain copy.
  void forward(const T* x, T* y, const LayerBuffers<T>& buffers, std::size_t n,
               const Pass& pass) const override;
  void backward(const T* x, const T* y, const LayerBuffers<T>& buffers, T* dy, T* dx,
                std::size_t n, const Pass& pass) override;

 private:
  std::string kind_;
  Shape in_, out_;
};

template <class T>
std::unique_ptr<Layer<T>> make_flatten(const ConfigReader& config, const Shape& input);
template <class T>
std::unique_ptr<Layer<T>> make_reshape(const ConfigReader& config, const Shape& input);

}  // namespace bpx
