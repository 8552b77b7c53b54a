// Residual block: y = x + f(x), f a stack of layers whose output shape
// equals its input shape (He et al. 2016; the MNIST-1D MLP baseline's
// h = h + relu(L h)). f's parameters are this layer's parameters, named
// "j.weight" for its layer j, so they live in the network's flat buffers.
#pragma once

#include "backpropx/layers/registry.hpp"
#include "backpropx/stack.hpp"

namespace bpx {

template <class T>
class Residual final : public Layer<T> {
 public:
  Residual(std::vector<std::unique_ptr<Layer<T>>> layers, Shape shape);

  std::string kind() const override { return "residual"; }
  Shape input_shape() const override { return shape_; }
  Shape output_shape() const override { return shape_; }
  std::vector<ParamSpec> parameter_specs() const override;
  void bind(T* params, T* grads) override { body_.bind(params, grads); }
  std::vector<BufferSpec> buffer_specs() const override;
  void bind_buffers(T* buffers) override { body_.bind_buffers(buffers); }
  std::size_t cache_size(std::size_t n) const override;
  std::size_t index_cache_size(std::size_t n) const override;
  std::size_t scratch_size(std::size_t n) const override;
  void forward(const T* x, T* y, const LayerBuffers<T>& buffers, std::size_t n,
               const Pass& pass) const override;
  // Its stack zeroes or writes each inner layer's gradients itself.
  bool writes_fresh_gradients() const override { return true; }
  void backward(const T* x, const T* y, const LayerBuffers<T>& buffers, T* dy, T* dx,
                std::size_t n, const Pass& pass) override;
  void set_trainable(bool on) override;
  bool keeps_steps() const override { return body_.keeps_steps(); }
  bool uses_lengths() const override { return body_.uses_lengths(); }
  void after_init() override { body_.after_init(); }
  const LayerStack<T>* children() const override { return &body_; }

 private:
  // The body's memory inside this layer's buffers: in training its outputs
  // and caches persist in the cache; in inference they live in scratch.
  typename LayerStack<T>::View view(const LayerBuffers<T>& b, std::size_t n, bool training) const;

  Shape shape_;
  std::size_t size_;
  LayerStack<T> body_;
};

template <class T>
std::unique_ptr<Layer<T>> make_residual(const ConfigReader& config, const Shape& input);

}  // namespace bpx
