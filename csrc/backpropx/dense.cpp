#include "backpropx/dense.hpp"

#include "backpropx/gemm.hpp"

namespace bpx {

template <class T>
Dense<T>::Dense(std::size_t in_features, std::size_t out_features, bool bias,
                Activation activation, Init init)
    : in_(in_features), out_(out_features), has_bias_(bias), act_(activation), init_(init) {
  require(in_ > 0 && out_ > 0, "Dense layer sizes must be positive, got in_features=" +
                                   std::to_string(in_) + ", out_features=" + std::to_string(out_));
}

template <class T>
std::vector<ParamSpec> Dense<T>::parameter_specs() const {
  std::vector<ParamSpec> specs{{"weight", {out_, in_}}};
  if (has_bias_) specs.push_back({"bias", {out_}});
  return specs;
}

template <class T>
void Dense<T>::bind(T* params, T* grads) {
  weight_ = params;
  dweight_ = grads;
  if (has_bias_) {
    bias_ = params + out_ * in_;
    dbias_ = grads + out_ * in_;
  }
}

template <class T>
void Dense<T>::initialize(Rng& rng) {
  init_dense(init_, weight_, bias_, out_, in_, rng);
}

template <class T>
std::size_t Dense<T>::cache_size(std::size_t n) const {
  return act_ == Activation::identity ? 0 : checked_mul(n, out_);
}

template <class T>
const T* Dense<T>::preactivation(const T* y, const T* cache) const {
  return act_ == Activation::identity ? y : cache;
}

template <class T>
void Dense<T>::forward(const T* x, T* y, T* cache, std::size_t n, const Pass&) const {
  // x is (N, IN), weight is (OUT, IN), y and z are (N, OUT)
  T* z = cache != nullptr ? cache : y;
  gemm<T>(Trans::N, Trans::T, n, out_, in_, T(1), x, in_, weight_, in_, T(0), z, out_);
  bias_activation_forward(act_, has_bias_ ? bias_ : nullptr, z, y, n, out_);
}

template <class T>
void Dense<T>::backward(const T* x, const T* y, const T* cache, T* dy, T* dx, std::size_t n,
                        const Pass& pass) {
  // forward: z = x W^T + b, y = f(z)
  // dz = dy * f'(z) (in place in dy);  db += sum over rows of dz
  T* db = this->trainable && has_bias_ ? dbias_ : nullptr;
  const Activation act = pass.dy_is_preactivation ? Activation::identity : act_;
  activation_backward_bias(act, preactivation(y, cache), y, dy, db, n, out_);
  const T* dz = dy;
  // dW += dz^T x : dz (N, OUT), x (N, IN), dW (OUT, IN)
  if (this->trainable)
    gemm<T>(Trans::T, Trans::N, out_, in_, n, T(1), dz, out_, x, in_, T(1), dweight_, in_);
  // dx = dz W : dz (N, OUT), W (OUT, IN), dx (N, IN)
  if (dx != nullptr) gemm<T>(Trans::N, Trans::N, n, in_, out_, T(1), dz, out_, weight_, in_, T(0), dx, in_);
}

template class Dense<float>;
template class Dense<double>;

}  // namespace bpx
