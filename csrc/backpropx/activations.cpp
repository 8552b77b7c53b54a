#include "backpropx/activations.hpp"

#include <algorithm>

#include "backpropx/common.hpp"
#include "backpropx/parallel.hpp"

namespace bpx {

namespace {
constexpr std::size_t kGrain = 1 << 14;  // elements per task before threads pay off

template <class Impl, class T>
void map_forward(const T* z, T* y, std::size_t count) {
  parallel_rows(count, kGrain, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) y[i] = Impl::f(z[i]);
  });
}

template <class Impl, class T>
void map_backward(const T* z, const T* y, const T* dy, T* dz, std::size_t count) {
  parallel_rows(count, kGrain, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) dz[i] = dy[i] * Impl::df(z[i], y[i]);
  });
}
}  // namespace

const char* activation_name(Activation a) {
  switch (a) {
#define BPX_NAME_CASE(name, impl) \
  case Activation::name:          \
    return #name;
    BPX_ACTIVATIONS(BPX_NAME_CASE)
#undef BPX_NAME_CASE
  }
  return "unknown";
}

std::vector<std::string> activation_names() {
  return {
#define BPX_NAME_ENTRY(name, impl) #name,
      BPX_ACTIVATIONS(BPX_NAME_ENTRY)
#undef BPX_NAME_ENTRY
  };
}

Activation activation_from_name(const std::string& name) {
#define BPX_FROM_NAME(n, impl) \
  if (name == #n) return Activation::n;
  BPX_ACTIVATIONS(BPX_FROM_NAME)
#undef BPX_FROM_NAME
  std::string choices;
  for (const auto& n : activation_names()) choices += (choices.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown activation '" + name + "'; expected one of: " + choices);
}

template <class T>
void softmax_rows(const T* z, T* y, std::size_t rows, std::size_t cols) {
  parallel_rows(rows, kGrain / (cols + 1) + 1, [&](std::size_t b, std::size_t e) {
    for (std::size_t r = b; r < e; ++r) {
      const T* zr = z + r * cols;
      T* yr = y + r * cols;
      const T m = *std::max_element(zr, zr + cols);
      T sum = 0;
      for (std::size_t j = 0; j < cols; ++j) sum += (yr[j] = std::exp(zr[j] - m));
      const T inv = T(1) / sum;
      for (std::size_t j = 0; j < cols; ++j) yr[j] *= inv;
    }
  });
}

template <class T>
void activation_forward(Activation a, const T* z, T* y, std::size_t rows, std::size_t cols) {
  const std::size_t count = rows * cols;
  switch (a) {
    case Activation::softmax:
      softmax_rows(z, y, rows, cols);
      return;
    case Activation::identity:
      if (y != z) std::copy(z, z + count, y);
      return;
#define BPX_FORWARD_CASE(name, impl)     \
  case Activation::name:                 \
    map_forward<impl>(z, y, count);      \
    return;
      BPX_ELEMENTWISE_ACTIVATIONS(BPX_FORWARD_CASE)
#undef BPX_FORWARD_CASE
  }
}

template <class T>
void activation_backward(Activation a, const T* z, const T* y, const T* dy, T* dz,
                         std::size_t rows, std::size_t cols) {
  const std::size_t count = rows * cols;
  switch (a) {
    case Activation::softmax:
      // y = softmax(z): dz_j = y_j (dy_j - sum_k dy_k y_k)
      parallel_rows(rows, kGrain / (cols + 1) + 1, [&](std::size_t b, std::size_t e) {
        for (std::size_t r = b; r < e; ++r) {
          const T* yr = y + r * cols;
          const T* dyr = dy + r * cols;
          T* dzr = dz + r * cols;
          T dot = 0;
          for (std::size_t j = 0; j < cols; ++j) dot += dyr[j] * yr[j];
          for (std::size_t j = 0; j < cols; ++j) dzr[j] = yr[j] * (dyr[j] - dot);
        }
      });
      return;
    case Activation::identity:
      if (dz != dy) std::copy(dy, dy + count, dz);
      return;
#define BPX_BACKWARD_CASE(name, impl)          \
  case Activation::name:                       \
    map_backward<impl>(z, y, dy, dz, count);   \
    return;
      BPX_ELEMENTWISE_ACTIVATIONS(BPX_BACKWARD_CASE)
#undef BPX_BACKWARD_CASE
  }
}

#define BPX_INSTANTIATE(T)                                                                      \
  template void softmax_rows<T>(const T*, T*, std::size_t, std::size_t);                        \
  template void activation_forward<T>(Activation, const T*, T*, std::size_t, std::size_t);      \
  template void activation_backward<T>(Activation, const T*, const T*, const T*, T*, std::size_t, \
                                       std::size_t);
BPX_INSTANTIATE(float)
BPX_INSTANTIATE(double)
#undef BPX_INSTANTIATE

}  // namespace bpx
