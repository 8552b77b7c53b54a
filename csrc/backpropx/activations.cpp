#include "backpropx/activations.hpp"

#include <algorithm>

#include "backpropx/common.hpp"
#include "backpropx/parallel.hpp"

namespace bpx {

namespace {
constexpr std::size_t kGrain = 1 << 14;  // elements per task before threads pay off
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
  throw unknown_name("activation", name, activation_names());
}

namespace {

template <class T>
void softmax_row(const T* z, T* y, std::size_t cols) {
  const T m = *std::max_element(z, z + cols);
  T sum = 0;
  for (std::size_t j = 0; j < cols; ++j) sum += (y[j] = std::exp(z[j] - m));
  const T inv = T(1) / sum;
  for (std::size_t j = 0; j < cols; ++j) y[j] *= inv;
}

template <class T>
void softmax_jvp_row(const T* y, T* d, std::size_t cols) {
  T dot = 0;
  for (std::size_t j = 0; j < cols; ++j) dot += d[j] * y[j];
  for (std::size_t j = 0; j < cols; ++j) d[j] = y[j] * (d[j] - dot);
}

template <class Impl, class T>
void bias_map_rows(const T* bias, T* z, T* y, std::size_t b, std::size_t e, std::size_t cols) {
  for (std::size_t r = b; r < e; ++r) {
    T* zr = z + r * cols;
    T* yr = y + r * cols;
    for (std::size_t j = 0; j < cols; ++j) {
      const T v = bias ? zr[j] + bias[j] : zr[j];
      zr[j] = v;
      yr[j] = Impl::f(v);
    }
  }
}

template <class Impl, class T>
void derivative_rows(const T* z, const T* y, T* d, std::size_t b, std::size_t e, std::size_t cols) {
  for (std::size_t i = b * cols; i < e * cols; ++i) d[i] *= Impl::df(z[i], y[i]);
}

template <class T>
void add_column_sums(const T* d, T* db, std::size_t b, std::size_t e, std::size_t cols) {
  for (std::size_t r = b; r < e; ++r)
    for (std::size_t j = 0; j < cols; ++j) db[j] += d[r * cols + j];
}

}  // namespace

template <class T>
void bias_activation_forward(Activation a, const T* bias, T* z, T* y, std::size_t rows,
                             std::size_t cols) {
  parallel_rows(rows, kGrain / (cols + 1) + 1, [&](std::size_t b, std::size_t e) {
    switch (a) {
      case Activation::softmax:
        for (std::size_t r = b; r < e; ++r) {
          T* zr = z + r * cols;
          if (bias)
            for (std::size_t j = 0; j < cols; ++j) zr[j] += bias[j];
          softmax_row(zr, y + r * cols, cols);
        }
        return;
      case Activation::identity:
        bias_map_rows<IdentityAct>(bias, z, y, b, e, cols);
        return;
#define BPX_FORWARD_CASE(name, impl)                  \
  case Activation::name:                              \
    bias_map_rows<impl>(bias, z, y, b, e, cols);      \
    return;
        BPX_ELEMENTWISE_ACTIVATIONS(BPX_FORWARD_CASE)
#undef BPX_FORWARD_CASE
    }
  });
}

template <class T>
void activation_forward(Activation a, const T* x, T* y, std::size_t rows, std::size_t cols) {
  parallel_rows(rows, kGrain / (cols + 1) + 1, [&](std::size_t b, std::size_t e) {
    switch (a) {
      case Activation::softmax:
        for (std::size_t r = b; r < e; ++r) softmax_row(x + r * cols, y + r * cols, cols);
        return;
      case Activation::identity:
        if (x != y) std::copy(x + b * cols, x + e * cols, y + b * cols);
        return;
#define BPX_FORWARD_CASE(name, impl)                                         \
  case Activation::name:                                                     \
    for (std::size_t i = b * cols; i < e * cols; ++i) y[i] = impl::f(x[i]); \
    return;
        BPX_ELEMENTWISE_ACTIVATIONS(BPX_FORWARD_CASE)
#undef BPX_FORWARD_CASE
    }
  });
}

template <class T>
void activation_backward_bias(Activation a, const T* z, const T* y, T* dy, T* db,
                              std::size_t rows, std::size_t cols) {
  auto derivative = [&](std::size_t b, std::size_t e) {
    switch (a) {
      case Activation::softmax:
        for (std::size_t r = b; r < e; ++r) softmax_jvp_row(y + r * cols, dy + r * cols, cols);
        return;
      case Activation::identity:
        return;
#define BPX_BACKWARD_CASE(name, impl)                   \
  case Activation::name:                                \
    derivative_rows<impl>(z, y, dy, b, e, cols);        \
    return;
        BPX_ELEMENTWISE_ACTIVATIONS(BPX_BACKWARD_CASE)
#undef BPX_BACKWARD_CASE
    }
  };
  if (rows * cols <= kGrain || get_num_threads() <= 1) {
    // One pass: each row's derivative and its share of db while it is in cache.
    for (std::size_t r = 0; r < rows; ++r) {
      derivative(r, r + 1);
      if (db) add_column_sums(dy, db, r, r + 1, cols);
    }
    return;
  }
  parallel_rows(rows, kGrain / (cols + 1) + 1, derivative);
  if (db) add_column_sums(dy, db, 0, rows, cols);
}

#define BPX_INSTANTIATE(T)                                                                      \
  template void bias_activation_forward<T>(Activation, const T*, T*, T*, std::size_t, std::size_t); \
  template void activation_forward<T>(Activation, const T*, T*, std::size_t, std::size_t);      \
  template void activation_backward_bias<T>(Activation, const T*, const T*, T*, T*, std::size_t,  \
                                            std::size_t);

BPX_INSTANTIATE(float)
BPX_INSTANTIATE(double)
#undef BPX_INSTANTIATE

}  // namespace bpx
