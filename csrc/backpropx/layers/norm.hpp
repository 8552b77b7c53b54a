// Normalisation layers, as torch.nn.BatchNorm1d/2d and torch.nn.LayerNorm.
//
// BatchNorm over samples (C,), (C, L) (1D) or (C, H, W) (2D), per channel c:
//   y = (x - mean_c) / sqrt(var_c + eps) * weight[c] + bias[c]
// In training, mean_c and var_c (biased) are the batch's, over samples and
// positions, and the running estimates follow them:
//   running = (1 - momentum) * running + momentum * batch statistic
// with the unbiased variance (count / (count - 1)) in running_var, and
// momentum = 1 / num_batches_tracked when cumulative (torch's momentum=None).
// In evaluation the running estimates are used. running_mean, running_var and
// num_batches_tracked are buffers (Layer::buffer_specs), not parameters.
// Without track_running_stats the batch statistics are used in evaluation too.
//
// LayerNorm over the trailing axes `normalized_shape` of each sample:
//   y = (x - mean) / sqrt(var + eps) * weight + bias, statistics per row of D values.
#pragma once

#include "backpropx/layers/registry.hpp"

namespace bpx {

struct BatchNormOptions {
  double eps = 1e-5;
  double momentum = 0.1;
  bool cumulative = false;  // momentum = 1 / num_batches_tracked
  bool affine = true;
  bool track_running_stats = true;
};

template <class T>
class BatchNorm final : public Layer<T> {
 public:
  BatchNorm(std::size_t dims, Shape input, const BatchNormOptions& options);

  std::string kind() const override { return dims_ == 1 ? "batch_norm1d" : "batch_norm2d"; }
  Shape input_shape() const override { return shape_; }
  Shape output_shape() const override { return shape_; }
  std::vector<ParamSpec> parameter_specs() const override;
  void bind(T* params, T* grads) override;
  std::vector<BufferSpec> buffer_specs() const override;
  void bind_buffers(T* buffers) override;
  // cache: [mean (C) | rstd (C) | 1 when batch statistics were used, else 0]
  std::size_t cache_size(std::size_t) const override { return 2 * C_ + 1; }
  void forward(const T* x, T* y, const LayerBuffers<T>& buffers, std::size_t n,
               const Pass& pass) const override;
  void backward(const T* x, const T* y, const LayerBuffers<T>& buffers, T* dy, T* dx,
                std::size_t n, const Pass& pass) override;

 private:
  std::size_t dims_;
  Shape shape_;
  std::size_t C_, S_;  // channels, positions per channel in a sample
  BatchNormOptions opt_;
  T* weight_ = nullptr;  // (C,)
  T* bias_ = nullptr;    // (C,)
  T* dweight_ = nullptr;
  T* dbias_ = nullptr;
  T* running_mean_ = nullptr;  // (C,)
  T* running_var_ = nullptr;   // (C,)
  T* batches_ = nullptr;       // num_batches_tracked, a count held in T (exact up to 2^24 in float32)
};

template <class T>
class LayerNorm final : public Layer<T> {
 public:
  LayerNorm(Shape input, Shape normalized, double eps, bool affine, bool bias);

  std::string kind() const override { return "layer_norm"; }
  Shape input_shape() const override { return shape_; }
  Shape output_shape() const override { return shape_; }
  std::vector<ParamSpec> parameter_specs() const override;
  void bind(T* params, T* grads) override;
  // cache: [mean (rows) | rstd (rows)]
  std::size_t cache_size(std::size_t n) const override { return 2 * rows(n); }
  // Normalising trailing axes only, each step of the first axis on its own.
  bool keeps_steps() const override { return normalized_.size() < shape_.size(); }
  void forward(const T* x, T* y, const LayerBuffers<T>& buffers, std::size_t n,
               const Pass& pass) const override;
  void backward(const T* x, const T* y, const LayerBuffers<T>& buffers, T* dy, T* dx,
                std::size_t n, const Pass& pass) override;

 private:
  std::size_t rows(std::size_t n) const { return checked_mul(n, shape_size(shape_) / D_); }

  Shape shape_, normalized_;
  std::size_t D_;
  double eps_;
  bool affine_, has_bias_;
  T* weight_ = nullptr;  // normalized_shape
  T* bias_ = nullptr;
  T* dweight_ = nullptr;
  T* dbias_ = nullptr;
};

template <class T>
std::unique_ptr<Layer<T>> make_batch_norm1d(const ConfigReader& config, const Shape& input);
template <class T>
std::unique_ptr<Layer<T>> make_batch_norm2d(const ConfigReader& config, const Shape& input);
template <class T>
std::unique_ptr<Layer<T>> make_layer_norm(const ConfigReader& config, const Shape& input);

}  // namespace bpx
