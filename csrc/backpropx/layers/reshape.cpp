#include "backpropx/layers/reshape.hpp"

#include <algorithm>

namespace bpx {

template <class T>
ReshapeLayer<T>::ReshapeLayer(std::string kind, Shape input, Shape output)
    : kind_(std::move(kind)), in_(std::move(input)), out_(std::move(output)) {}

template <class T>
void ReshapeLayer<T>::forward(const T* x, T* y, const LayerBuffers<T>&, std::size_t n,
                              const Pass&) const {
  std::copy(x, x + n * shape_size(in_), y);
}

template <class T>
void ReshapeLayer<T>::backward(const T*, const T*, const LayerBuffers<T>&, T* dy, T* dx,
                               std::size_t n, const Pass&) {
  if (dx) std::copy(dy, dy + n * shape_size(in_), dx);
}

template <class T>
std::unique_ptr<Layer<T>> make_flatten(const ConfigReader&, const Shape& input) {
  require(!input.empty(), "a first Flatten layer needs the network's input_shape");
  return std::make_unique<ReshapeLayer<T>>("flatten", input, Shape{shape_size(input)});
}

template <class T>
std::unique_ptr<Layer<T>> make_reshape(const ConfigReader& c, const Shape& input) {
  require(!input.empty(), "a first Reshape layer needs the network's input_shape");
  const std::vector<long long> wanted = c.int_list("shape");
  require(!wanted.empty(), "Reshape needs a non-empty target shape");
  // One entry may be -1: the size that makes the element counts agree.
  Shape out;
  std::size_t known = 1, free_axis = wanted.size();
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    if (wanted[i] == -1) {
      require(free_axis == wanted.size(), "Reshape takes at most one -1");
      free_axis = i;
      out.push_back(0);
      continue;
    }
    require(wanted[i] > 0, "Reshape sizes must be positive or -1, got " + std::to_string(wanted[i]));
    out.push_back(static_cast<std::size_t>(wanted[i]));
    known = checked_mul(known, out.back());
  }
  const std::size_t total = shape_size(input);
  if (free_axis < wanted.size()) {
    require(total % known == 0, "cannot reshape per-sample shape " + shape_str(input) +
                                    " into one with -1 (" + std::to_string(total) +
                                    " values do not divide by " + std::to_string(known) + ")");
    out[free_axis] = total / known;
  }
  require(shape_size(out) == total, "cannot reshape per-sample shape " + shape_str(input) + " (" +
                                        std::to_string(total) + " values) into " + shape_str(out));
  return std::make_unique<ReshapeLayer<T>>("reshape", input, out);
}

template class ReshapeLayer<float>;
template class ReshapeLayer<double>;
template std::unique_ptr<Layer<float>> make_flatten<float>(const ConfigReader&, const Shape&);
template std::unique_ptr<Layer<double>> make_flatten<double>(const ConfigReader&, const Shape&);
template std::unique_ptr<Layer<float>> make_reshape<float>(const ConfigReader&, const Shape&);
template std::unique_ptr<Layer<double>> make_reshape<double>(const ConfigReader&, const Shape&);

}  // namespace bpx
