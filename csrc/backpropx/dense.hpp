// Fully connected layer: y = f(x W^T + b).
#pragma once

#include "backpropx/init.hpp"
#include "backpropx/layer.hpp"

namespace bpx {

template <class T>
class Dense final : public Layer<T> {
 public:
  Dense(std::size_t in_features, std::size_t out_features, bool bias, Activation activation,
        Init init);

  std::string kind() const override { return "dense"; }
  Shape input_shape() const override { return {in_}; }
  Shape output_shape() const override { return {out_}; }
  std::vector<ParamSpec> parameter_specs() const override;
  void bind(T* params, T* grads) override;
  void initialize(Rng& rng) override;
  std::size_t cache_size(std::size_t n) const override;
  void forward(const T* x, T* y, T* cache, std::size_t n, const Pass& pass) const override;
  void backward(const T* x, const T* y, const T* cache, T* dy, T* dx, std::size_t n,
                const Pass& pass) override;
  Activation activation() const override { return act_; }
  const T* preactivation(const T* y, const T* cache) const override;

 private:
  std::size_t in_, out_;
  bool has_bias_;
  Activation act_;
  Init init_;
  T* weight_ = nullptr;  // (OUT, IN)
  T* bias_ = nullptr;    // (OUT,)
  T* dweight_ = nullptr;
  T* dbias_ = nullptr;
};

}  // namespace bpx
