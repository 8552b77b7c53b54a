#include "backpropx/layers/pool.hpp"

#include <algorithm>

#include "backpropx/layers/window_config.hpp"
#include "backpropx/parallel.hpp"

namespace bpx {

namespace {
constexpr std::size_t kGrain = 1 << 16;  // elements per task before a fork/join pays off
}

template <class T>
Pool<T>::Pool(PoolMode mode, std::size_t dims, const kernels::Window& g, bool count_include_pad)
    : mode_(mode), dims_(dims), g_(g), ranges_(kernels::pool_ranges(g)), count_include_pad_(count_include_pad) {}

template <class T>
std::string Pool<T>::kind() const {
  return std::string(mode_ == PoolMode::max ? "max_pool" : "avg_pool") + (dims_ == 1 ? "1d" : "2d");
}

template <class T>
Shape Pool<T>::input_shape() const {
  return dims_ == 1 ? Shape{g_.C, g_.W} : Shape{g_.C, g_.H, g_.W};
}

template <class T>
Shape Pool<T>::output_shape() const {
  return window_output_shape(g_, g_.C, dims_);
}

template <class T>
std::size_t Pool<T>::index_cache_size(std::size_t n) const {
  return mode_ == PoolMode::max ? checked_mul(checked_mul(n, g_.C), g_.positions()) : 0;
}

template <class T>
void Pool<T>::forward(const T* x, T* y, const LayerBuffers<T>& buffers, std::size_t n, const Pass&) const {
  // x is (N, C, H, W), y and the argmax cache (N, C, OH, OW): one task per plane
  const std::size_t in = g_.plane(), out = g_.positions();
  parallel_rows(n * g_.C, kGrain / (in + 1) + 1, [&](std::size_t b, std::size_t e) {
    for (std::size_t q = b; q < e; ++q) {
      if (mode_ == PoolMode::max)
        kernels::max_pool_forward(g_, ranges_, x + q * in, y + q * out, buffers.indices ? buffers.indices + q * out : nullptr);
      else
        kernels::avg_pool_forward(g_, ranges_, x + q * in, y + q * out, count_include_pad_);
    }
  });
}

template <class T>
void Pool<T>::backward(const T*, const T*, const LayerBuffers<T>& buffers, T* dy, T* dx, std::size_t n,
                       const Pass&) {
  // forward: y = pool(x);  dx = each output's gradient spread back over its window
  if (dx == nullptr) return;
  const std::size_t in = g_.plane(), out = g_.positions();
  parallel_rows(n * g_.C, kGrain / (in + 1) + 1, [&](std::size_t b, std::size_t e) {
    for (std::size_t q = b; q < e; ++q) {
      if (mode_ == PoolMode::max)
        kernels::max_pool_backward(g_, ranges_, buffers.indices + q * out, dy + q * out, dx + q * in);
      else
        kernels::avg_pool_backward(g_, ranges_, dy + q * out, dx + q * in, count_include_pad_);
    }
  });
}

template <class T>
GlobalAvgPool<T>::GlobalAvgPool(Shape input, bool keepdim)
    : in_(std::move(input)), keepdim_(keepdim), C_(in_.at(0)), S_(shape_size(in_) / in_.at(0)) {}

template <class T>
Shape GlobalAvgPool<T>::output_shape() const {
  if (!keepdim_) return {C_};
  Shape s(in_.size(), 1);
  s[0] = C_;
  return s;
}

template <class T>
void GlobalAvgPool<T>::forward(const T* x, T* y, const LayerBuffers<T>&, std::size_t n, const Pass&) const {
  // x is (N, C, S), y is (N, C): y = sum over S / S
  parallel_rows(n * C_, kGrain / (S_ + 1) + 1, [&](std::size_t b, std::size_t e) {
    for (std::size_t q = b; q < e; ++q) {
      const T* xq = x + q * S_;
      T sum = 0;
      for (std::size_t s = 0; s < S_; ++s) sum += xq[s];
      y[q] = sum / static_cast<T>(S_);
    }
  });
}

template <class T>
void GlobalAvgPool<T>::backward(const T*, const T*, const LayerBuffers<T>&, T* dy, T* dx, std::size_t n,
                                const Pass&) {
  // forward: y = sum_s x[s] / S;  dx[s] = dy / S
  if (dx == nullptr) return;
  parallel_rows(n * C_, kGrain / (S_ + 1) + 1, [&](std::size_t b, std::size_t e) {
    for (std::size_t q = b; q < e; ++q) std::fill(dx + q * S_, dx + (q + 1) * S_, dy[q] / static_cast<T>(S_));
  });
}

namespace {
template <class T>
std::unique_ptr<Layer<T>> make_pool(const ConfigReader& c, const Shape& input, PoolMode mode, std::size_t dims) {
  WindowOptions o;
  o.layer = std::string(mode == PoolMode::max ? "MaxPool" : "AvgPool") + (dims == 1 ? "1D" : "2D");
  o.dims = dims;
  o.stride_defaults_to_kernel = true;
  o.half_kernel_padding = true;
  const kernels::Window g = read_window(c, input, o);
  return std::make_unique<Pool<T>>(mode, dims, g, c.flag("count_include_pad", true));
}
}  // namespace

template <class T>
std::unique_ptr<Layer<T>> make_max_pool1d(const ConfigReader& c, const Shape& input) {
  return make_pool<T>(c, input, PoolMode::max, 1);
}
template <class T>
std::unique_ptr<Layer<T>> make_max_pool2d(const ConfigReader& c, const Shape& input) {
  return make_pool<T>(c, input, PoolMode::max, 2);
}
template <class T>
std::unique_ptr<Layer<T>> make_avg_pool1d(const ConfigReader& c, const Shape& input) {
  return make_pool<T>(c, input, PoolMode::avg, 1);
}
template <class T>
std::unique_ptr<Layer<T>> make_avg_pool2d(const ConfigReader& c, const Shape& input) {
  return make_pool<T>(c, input, PoolMode::avg, 2);
}

template <class T>
std::unique_ptr<Layer<T>> make_global_avg_pool(const ConfigReader& c, const Shape& input) {
  require(!input.empty(), "a first GlobalAvgPool layer needs the network's input_shape, e.g. (C, H, W)");
  require(input.size() >= 2, "GlobalAvgPool takes samples (channels, *positions), but receives per-sample shape " +
                                 shape_str(input));
  return std::make_unique<GlobalAvgPool<T>>(input, c.flag("keepdim", false));
}

#define BPX_INSTANTIATE(T)                                                                       \
  template class Pool<T>;                                                                        \
  template class GlobalAvgPool<T>;                                                               \
  template std::unique_ptr<Layer<T>> make_max_pool1d<T>(const ConfigReader&, const Shape&);      \
  template std::unique_ptr<Layer<T>> make_max_pool2d<T>(const ConfigReader&, const Shape&);      \
  template std::unique_ptr<Layer<T>> make_avg_pool1d<T>(const ConfigReader&, const Shape&);      \
  template std::unique_ptr<Layer<T>> make_avg_pool2d<T>(const ConfigReader&, const Shape&);      \
  template std::unique_ptr<Layer<T>> make_global_avg_pool<T>(const ConfigReader&, const Shape&);
BPX_INSTANTIATE(float)
BPX_INSTANTIATE(double)
#undef BPX_INSTANTIATE

}  // namespace bpx
