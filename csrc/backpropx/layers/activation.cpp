#include "backpropx/layers/activation.hpp"

#include <algorithm>

namespace bpx {

template <class T>
ActivationLayer<T>::ActivationLayer(Shape shape, Activation activation)
    : shape_(std::move(shape)), size_(shape_size(shape_)), act_(activation) {
  require(size_ > 0, "an Activation layer needs a non-empty input");
}

template <class T>
void ActivationLayer<T>::forward(const T* x, T* y, const LayerBuffers<T>&, std::size_t n,
                                 const Pass&) const {
  // x, y are (N, F); softmax rows are (N * F / last, last)
  const std::size_t c = cols();
  activation_forward(act_, x, y, n * size_ / c, c);
}

template <class T>
void ActivationLayer<T>::backward(const T* x, const T* y, const LayerBuffers<T>&, T* dy, T* dx,
                                  std::size_t n, const Pass&) {
  // forward: y = f(x);  dx = dy * f'(x) (softmax: its Jacobian-vector product)
  if (dx == nullptr) return;
  const std::size_t c = cols();
  activation_backward_bias<T>(act_, x, y, dy, nullptr, n * size_ / c, c);
  std::copy(dy, dy + n * size_, dx);
}

template <class T>
std::unique_ptr<Layer<T>> make_activation(const ConfigReader& c, const Shape& input) {
  require(!input.empty(), "a first Activation layer needs the network's input_shape");
  return std::make_unique<ActivationLayer<T>>(input, activation_from_name(c.string("activation", "identity")));
}

template class ActivationLayer<float>;
template class ActivationLayer<double>;
template std::unique_ptr<Layer<float>> make_activation<float>(const ConfigReader&, const Shape&);
template std::unique_ptr<Layer<double>> make_activation<double>(const ConfigReader&, const Shape&);

}  // namespace bpx
