#include "backpropx/layers/residual.hpp"

#include <algorithm>

namespace bpx {

template <class T>
Residual<T>::Residual(std::vector<std::unique_ptr<Layer<T>>> layers, Shape shape)
    : shape_(shape), size_(shape_size(shape)), body_(std::move(layers), shape) {
  require(body_.output_shape() == shape_,
          "a Residual block must keep the shape of its input: it receives " + shape_str(shape_) +
              " per sample but its layers output " + shape_str(body_.output_shape()));
}

template <class T>
std::vector<ParamSpec> Residual<T>::parameter_specs() const {
  std::vector<ParamSpec> specs;
  for (std::size_t j = 0; j < body_.size(); ++j)
    for (ParamSpec s : body_.layer(j).parameter_specs()) {
      s.name = std::to_string(j) + "." + s.name;
      specs.push_back(std::move(s));
    }
  return specs;
}

template <class T>
std::vector<BufferSpec> Residual<T>::buffer_specs() const {
  std::vector<BufferSpec> specs;
  for (std::size_t j = 0; j < body_.size(); ++j)
    for (BufferSpec s : body_.layer(j).buffer_specs()) {
      s.name = std::to_string(j) + "." + s.name;
      specs.push_back(std::move(s));
    }
  return specs;
}

// cache:   [body outputs | body caches]                          (training)
// scratch: [body outputs (inference) | dy copy | body scratch | body deltas]
template <class T>
std::size_t Residual<T>::cache_size(std::size_t n) const {
  const auto s = body_.sizes(n, true);
  return s.acts + s.caches;
}

template <class T>
std::size_t Residual<T>::index_cache_size(std::size_t n) const {
  return body_.sizes(n, true).indices;
}

template <class T>
std::size_t Residual<T>::scratch_size(std::size_t n) const {
  const auto s = body_.sizes(n, true);
  return s.acts + checked_mul(n, size_) + s.scratch + s.deltas;
}

template <class T>
typename LayerStack<T>::View Residual<T>::view(const LayerBuffers<T>& b, std::size_t n,
                                               bool training) const {
  const auto s = body_.sizes(n, true);
  T* acts = training ? b.cache : b.scratch;
  T* caches = training ? b.cache + s.acts : nullptr;
  T* scratch = b.scratch + s.acts + n * size_;
  return body_.carve(n, training, acts, caches, b.indices, scratch, scratch + s.scratch);
}

template <class T>
void Residual<T>::forward(const T* x, T* y, const LayerBuffers<T>& buffers, std::size_t n,
                          const Pass& pass) const {
  // y = x + f(x); x, y are (N, F)
  const bool training = buffers.cache != nullptr;
  const T* fx = body_.forward(x, n, view(buffers, n, training), pass);
  const std::size_t count = n * size_;
  for (std::size_t i = 0; i < count; ++i) y[i] = x[i] + fx[i];
}

template <class T>
void Residual<T>::backward(const T* x, const T*, const LayerBuffers<T>& buffers, T* dy, T* dx,
                           std::size_t n, const Pass& pass) {
  // forward: y = x + f(x);  dx = dy + J_f(x)^T dy, parameter gradients from f's backward
  const auto v = view(buffers, n, true);
  if (dx == nullptr) {
    body_.backward(x, dy, nullptr, n, v, pass);
    return;
  }
  const std::size_t count = n * size_;
  T* dy_copy = buffers.scratch + body_.sizes(n, true).acts;  // the body overwrites what it reads
  std::copy(dy, dy + count, dy_copy);
  body_.backward(x, dy_copy, dx, n, v, pass);
  for (std::size_t i = 0; i < count; ++i) dx[i] += dy[i];
}

template <class T>
void Residual<T>::set_trainable(bool on) {
  Layer<T>::set_trainable(on);
  for (std::size_t j = 0; j < body_.size(); ++j) body_.layer(j).set_trainable(on);
}

template <class T>
std::unique_ptr<Layer<T>> make_residual(const ConfigReader& c, const Shape& input) {
  require(!input.empty(), "a first Residual layer needs the network's input_shape");
  require(!c.config().layers.empty(), "a Residual block needs at least one layer");
  return std::make_unique<Residual<T>>(make_layers<T>(c.config().layers, input, ""), input);
}

template class Residual<float>;
template class Residual<double>;
template std::unique_ptr<Layer<float>> make_residual<float>(const ConfigReader&, const Shape&);
template std::unique_ptr<Layer<double>> make_residual<double>(const ConfigReader&, const Shape&);

}  // namespace bpx
