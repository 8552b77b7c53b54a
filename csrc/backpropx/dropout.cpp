#include "backpropx/dropout.hpp"

#include <algorithm>

namespace bpx {

template <class T>
Dropout<T>::Dropout(std::size_t features, double p) : features_(features), p_(p) {
  require(features_ > 0, "Dropout needs a positive number of features");
  require(p_ >= 0.0 && p_ < 1.0, "Dropout probability must be in [0, 1), got " + std::to_string(p_));
}

template <class T>
void Dropout<T>::forward(const T* x, T* y, T* cache, std::size_t n, const Pass& pass) const {
  // x, y, mask are (N, F)
  const std::size_t count = n * features_;
  if (!pass.training || p_ == 0.0 || pass.rng == nullptr) {
    std::copy(x, x + count, y);
    if (cache) std::fill(cache, cache + count, T(1));
    return;
  }
  const T scale = T(1.0 / (1.0 - p_));
  for (std::size_t i = 0; i < count; ++i) {
    const T m = pass.rng->uniform() >= p_ ? scale : T(0);
    if (cache) cache[i] = m;
    y[i] = x[i] * m;
  }
}

template <class T>
void Dropout<T>::backward(const T*, const T*, const T* cache, T* dy, T* dx, std::size_t n,
                          const Pass&) {
  // forward: y = x * mask;  dx = dy * mask
  if (dx == nullptr) return;
  const std::size_t count = n * features_;
  for (std::size_t i = 0; i < count; ++i) dx[i] = dy[i] * cache[i];
}

template class Dropout<float>;
template class Dropout<double>;

}  // namespace bpx
