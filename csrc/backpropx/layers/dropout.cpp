#include "backpropx/layers/dropout.hpp"

#include <algorithm>

namespace bpx {

template <class T>
Dropout<T>::Dropout(Shape shape, double p) : shape_(std::move(shape)), size_(shape_size(shape_)), p_(p) {
  require(size_ > 0, "Dropout needs a positive number of features");
  require(p_ >= 0.0 && p_ < 1.0, "Dropout probability must be in [0, 1), got " + std::to_string(p_));
}

template <class T>
void Dropout<T>::forward(const T* x, T* y, const LayerBuffers<T>& buffers, std::size_t n,
                         const Pass& pass) const {
  // x, y, mask are (N, F), F the elements of one sample
  const std::size_t count = n * size_;
  T* mask = buffers.cache;
  if (!pass.training || p_ == 0.0 || pass.rng == nullptr) {
    std::copy(x, x + count, y);
    if (mask) std::fill(mask, mask + count, T(1));
    return;
  }
  const T scale = T(1.0 / (1.0 - p_));
  for (std::size_t i = 0; i < count; ++i) {
    const T m = pass.rng->uniform() >= p_ ? scale : T(0);
    if (mask) mask[i] = m;
    y[i] = x[i] * m;
  }
}

template <class T>
void Dropout<T>::backward(const T*, const T*, const LayerBuffers<T>& buffers, T* dy, T* dx,
                          std::size_t n, const Pass&) {
  // forward: y = x * mask;  dx = dy * mask
  if (dx == nullptr) return;
  const std::size_t count = n * size_;
  for (std::size_t i = 0; i < count; ++i) dx[i] = dy[i] * buffers.cache[i];
}

template <class T>
std::unique_ptr<Layer<T>> make_dropout(const ConfigReader& c, const Shape& input) {
  Shape shape = input;
  if (c.has("features")) {
    const std::size_t f = c.size("features");
    require(input.empty() || shape_size(input) == f,
            "Dropout(features=" + std::to_string(f) + ") expects " + std::to_string(f) +
                " values per sample but receives per-sample shape " + shape_str(input));
    if (input.empty()) shape = {f};
  }
  require(!shape.empty(), "a first Dropout layer needs the network's input_shape (or features=)");
  return std::make_unique<Dropout<T>>(shape, c.real("p", 0.5));
}

template class Dropout<float>;
template class Dropout<double>;
template std::unique_ptr<Layer<float>> make_dropout<float>(const ConfigReader&, const Shape&);
template std::unique_ptr<Layer<double>> make_dropout<double>(const ConfigReader&, const Shape&);

}  // namespace bpx
