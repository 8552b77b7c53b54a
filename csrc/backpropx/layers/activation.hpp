// A standalone activation, y = f(x), for every registered activation
// (softmax over the last axis of each sample). The same f/df pairs that
// Dense fuses into its epilogue: no activation is written twice.
#pragma once

#include "backpropx/layers/registry.hpp"

namespace bpx {

template <class T>
class ActivationLayer final : public Layer<T> {
 public:
  ActivationLayer(Shape shape, Activation activation);

  std::string kind() const override { return "activation"; }
  Shape input_shape() const override { return shape_; }
  Shape output_shape() const override { return shape_; }
  void forward(const T* x, T* y, const LayerBuffers<T>& buffers, std::size_t n,
               const Pass& pass) const override;
  void backward(const T* x, const T* y, const LayerBuffers<T>& buffers, T* dy, T* dx,
                std::size_t n, const Pass& pass) override;
  bool keeps_steps() const override { return true; }
  Activation output_activation() const override { return act_; }
  void release_output_activation() override { act_ = Activation::identity; }

 private:
  // softmax acts on rows of the last axis; element-wise ones on whole samples.
  std::size_t cols() const { return act_ == Activation::softmax ? shape_.back() : size_; }

  Shape shape_;
  std::size_t size_;
  Activation act_;
};

template <class T>
std::unique_ptr<Layer<T>> make_activation(const ConfigReader& config, const Shape& input);

}  // namespace bpx
