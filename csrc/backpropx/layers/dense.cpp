#include "backpropx/layers/dense.hpp"

#include "backpropx/gemm.hpp"

namespace bpx {

template <class T>
Dense<T>::Dense(std::size_t in_features, std::size_t out_features, bool bias,
                Activation activation, Init init, Shape lead)
    : in_(in_features), out_(out_features), has_bias_(bias), act_(activation), init_(init),
      lead_(std::move(lead)), positions_(1) {
  require(in_ > 0 && out_ > 0, "Dense layer sizes must be positive, got in_features=" +
                                   std::to_string(in_) + ", out_features=" + std::to_string(out_));
  for (std::size_t d : lead_) positions_ = checked_mul(positions_, d);
  checked_mul(in_, out_);
}

template <class T>
Shape Dense<T>::input_shape() const {
  Shape s = lead_;
  s.push_back(in_);
  return s;
}

template <class T>
Shape Dense<T>::output_shape() const {
  Shape s = lead_;
  s.push_back(out_);
  return s;
}

template <class T>
std::vector<ParamSpec> Dense<T>::parameter_specs() const {
  std::vector<ParamSpec> specs{{"weight", {out_, in_}, in_, out_, init_, ParamRole::weight, true}};
  if (has_bias_) specs.push_back({"bias", {out_}, in_, out_, init_, ParamRole::bias, false});
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
std::size_t Dense<T>::cache_size(std::size_t n) const {
  return act_ == Activation::identity ? 0 : checked_mul(rows(n), out_);
}

template <class T>
void Dense<T>::forward(const T* x, T* y, const LayerBuffers<T>& buffers, std::size_t n,
                       const Pass&) const {
  // x is (R, IN), weight is (OUT, IN), y and z are (R, OUT); R = n * positions
  const std::size_t R = rows(n);
  T* z = buffers.cache != nullptr ? buffers.cache : y;
  gemm<T>(Trans::N, Trans::T, R, out_, in_, T(1), x, in_, weight_, in_, T(0), z, out_);
  bias_activation_forward(act_, has_bias_ ? bias_ : nullptr, z, y, R, out_);
}

template <class T>
void Dense<T>::backward(const T* x, const T* y, const LayerBuffers<T>& buffers, T* dy, T* dx,
                        std::size_t n, const Pass& pass) {
  // forward: z = x W^T + b, y = f(z)
  // dz = dy * f'(z) (in place in dy);  db += sum over rows of dz
  const std::size_t R = rows(n);
  const bool learn = this->trainable();
  const T* z = act_ == Activation::identity ? y : buffers.cache;
  if (learn && has_bias_ && pass.fresh_gradients) std::fill(dbias_, dbias_ + out_, T(0));
  activation_backward_bias(act_, z, y, dy, learn && has_bias_ ? dbias_ : nullptr, R, out_);
  const T* dz = dy;
  // dW += dz^T x : dz (R, OUT), x (R, IN), dW (OUT, IN); fresh: dW = dz^T x, never read
  const T keep = pass.fresh_gradients ? T(0) : T(1);
  if (learn) gemm<T>(Trans::T, Trans::N, out_, in_, R, T(1), dz, out_, x, in_, keep, dweight_, in_);
  // dx = dz W : dz (R, OUT), W (OUT, IN), dx (R, IN)
  if (dx != nullptr) gemm<T>(Trans::N, Trans::N, R, in_, out_, T(1), dz, out_, weight_, in_, T(0), dx, in_);
}

template <class T>
void Dense<T>::forward_sparse(const CsrMatrix<T>& x, T* y, const LayerBuffers<T>& buffers,
                              const Pass&) const {
  // x is (N, IN) CSR; as forward, with the sparse product z = x W^T
  require(lead_.empty(), "a Dense layer reads sparse rows only for 1-d samples");
  T* z = buffers.cache != nullptr ? buffers.cache : y;
  csr_matmul_nt(z, x, weight_, out_);
  bias_activation_forward(act_, has_bias_ ? bias_ : nullptr, z, y, x.rows, out_);
}

template <class T>
void Dense<T>::backward_sparse(const CsrMatrix<T>& x, const T* y, const LayerBuffers<T>& buffers, T* dy,
                               const Pass&) {
  // as backward: dz = dy * f'(z), db += sum of dz rows, dW += dz^T x; no dx
  const bool learn = this->trainable();
  const T* z = act_ == Activation::identity ? y : buffers.cache;
  activation_backward_bias(act_, z, y, dy, learn && has_bias_ ? dbias_ : nullptr, x.rows, out_);
  if (learn) csr_weight_grad(dweight_, dy, x, out_);
}

template <class T>
std::unique_ptr<Layer<T>> make_dense(const ConfigReader& c, const Shape& input) {
  const std::size_t in = c.size("in_features"), out = c.size("out_features");
  const Activation act = activation_from_name(c.string("activation", "identity"));
  const Init init = init_from_name(c.string("init", "default"), act);
  Shape lead;
  if (!input.empty()) {
    // A wrongly sized last axis after a multi-axis output is almost always
    // a missing Flatten (torch.nn.Linear applies to the last axis, as we do).
    if (input.back() != in) {
      std::string msg = "expects in_features=" + std::to_string(in) +
                        " values on the last axis, but receives per-sample shape " + shape_str(input);
      if (input.size() > 1 && shape_size(input) == in)
        msg += "; add bx.Flatten() before it to flatten each sample";
      else if (input.size() > 1)
        msg += " (" + std::to_string(shape_size(input)) + " values per sample: add bx.Flatten() "
               "before it and set in_features=" + std::to_string(shape_size(input)) + ")";
      throw std::invalid_argument(msg);
    }
    lead.assign(input.begin(), input.end() - 1);
  }
  return std::make_unique<Dense<T>>(in, out, c.flag("bias", true), act, init, lead);
}

template class Dense<float>;
template class Dense<double>;
template std::unique_ptr<Layer<float>> make_dense<float>(const ConfigReader&, const Shape&);
template std::unique_ptr<Layer<double>> make_dense<double>(const ConfigReader&, const Shape&);

}  // namespace bpx
