// Pooling, as torch.nn.MaxPool1d/2d and AvgPool1d/2d (no dilation, no
// ceil_mode), over samples (C, L) or (C, H, W), each channel on its own;
// and GlobalAvgPool, the mean over every position of each channel
// (torch.nn.AdaptiveAvgPool{1,2,3}d(1), flattened unless keepdim).
// The loops are in kernels/pool.*; max pooling keeps its argmax in the
// integer cache for backward.
#pragma once

#include "backpropx/layers/registry.hpp"
#include "kernels/pool.hpp"

namespace bpx {

enum class PoolMode { max, avg };

template <class T>
class Pool final : public Layer<T> {
 public:
  Pool(PoolMode mode, std::size_t dims, const kernels::Window& g, bool count_include_pad);

  std::string kind() const override;
  Shape input_shape() const override;
  Shape output_shape() const override;
  std::size_t index_cache_size(std::size_t n) const override;
  void forward(const T* x, T* y, const LayerBuffers<T>& buffers, std::size_t n,
               const Pass& pass) const override;
  void backward(const T* x, const T* y, const LayerBuffers<T>& buffers, T* dy, T* dx,
                std::size_t n, const Pass& pass) override;

 private:
  PoolMode mode_;
  std::size_t dims_;
  kernels::Window g_;  // per plane; g_.C planes per sample
  kernels::PoolRanges ranges_;
  bool count_include_pad_;
};

template <class T>
class GlobalAvgPool final : public Layer<T> {
 public:
  GlobalAvgPool(Shape input, bool keepdim);

  std::string kind() const override { return "global_avg_pool"; }
  Shape input_shape() const override { return in_; }
  Shape output_shape() const override;
  void forward(const T* x, T* y, const LayerBuffers<T>& buffers, std::size_t n,
               const Pass& pass) const override;
  void backward(const T* x, const T* y, const LayerBuffers<T>& buffers, T* dy, T* dx,
                std::size_t n, const Pass& pass) override;

 private:
  Shape in_;
  bool keepdim_;
  std::size_t C_, S_;  // channels, positions per channel
};

template <class T>
std::unique_ptr<Layer<T>> make_max_pool1d(const ConfigReader& config, const Shape& input);
template <class T>
std::unique_ptr<Layer<T>> make_max_pool2d(const ConfigReader& config, const Shape& input);
template <class T>
std::unique_ptr<Layer<T>> make_avg_pool1d(const ConfigReader& config, const Shape& input);
template <class T>
std::unique_ptr<Layer<T>> make_avg_pool2d(const ConfigReader& config, const Shape& input);
template <class T>
std::unique_ptr<Layer<T>> make_global_avg_pool(const ConfigReader& config, const Shape& input);

}  // namespace bpx
