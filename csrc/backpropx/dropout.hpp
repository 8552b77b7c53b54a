// Inverted dropout (Srivastava et al. 2014): in training each element is
// kept with probability 1 - p and scaled by 1 / (1 - p), so inference is the
// identity. The mask comes from the trainer's seeded Rng, drawn in row-major
// order on one thread, so it does not depend on the thread count.
#pragma once

#include "backpropx/layer.hpp"

namespace bpx {

template <class T>
class Dropout final : public Layer<T> {
 public:
  Dropout(std::size_t features, double p);

  std::string kind() const override { return "dropout"; }
  Shape input_shape() const override { return {features_}; }
  Shape output_shape() const override { return {features_}; }
  std::size_t cache_size(std::size_t n) const override { return checked_mul(n, features_); }
  void forward(const T* x, T* y, T* cache, std::size_t n, const Pass& pass) const override;
  void backward(const T* x, const T* y, const T* cache, T* dy, T* dx, std::size_t n,
                const Pass& pass) override;

 private:
  std::size_t features_;
  double p_;
};

}  // namespace bpx
