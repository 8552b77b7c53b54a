// Inverted dropout (Srivastava et al. 2014), on samples of any shape: in
// training each element is kept with probability 1 - p and scaled by
// 1 / (1 - p), so inference is the identity. The mask comes from the
// trainer's seeded Rng, drawn in row-major order on one thread, so it does
// not depend on the thread count.
#pragma once

#include "backpropx/layers/registry.hpp"

namespace bpx {

template <class T>
class Dropout final : public Layer<T> {
 public:
  Dropout(Shape shape, double p);

  std::string kind() const override { return "dropout"; }
  Shape input_shape() const override { return shape_; }
  Shape output_shape() const override { return shape_; }
  std::size_t cache_size(std::size_t n) const override { return checked_mul(n, size_); }
  bool keeps_steps() const override { return true; }
  void forward(const T* x, T* y, const LayerBuffers<T>& buffers, std::size_t n,
               const Pass& pass) const override;
  void backward(const T* x, const T* y, const LayerBuffers<T>& buffers, T* dy, T* dx,
                std::size_t n, const Pass& pass) override;

 private:
  Shape shape_;
  std::size_t size_;
  double p_;
};

template <class T>
std::unique_ptr<Layer<T>> make_dropout(const ConfigReader& config, const Shape& input);

}  // namespace bpx
