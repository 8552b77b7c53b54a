#include "backpropx/layers/norm.hpp"

#include <algorithm>
#include <cmath>

#include "backpropx/parallel.hpp"
#include "kernels/norm.hpp"

namespace bpx {

namespace {
constexpr std::size_t kGrain = 1 << 16;  // elements per task before a fork/join pays off
}

template <class T>
BatchNorm<T>::BatchNorm(std::size_t dims, Shape input, const BatchNormOptions& options)
    : dims_(dims), shape_(std::move(input)), C_(shape_.at(0)), S_(shape_size(shape_) / shape_.at(0)),
      opt_(options) {}

template <class T>
std::vector<ParamSpec> BatchNorm<T>::parameter_specs() const {
  if (!opt_.affine) return {};
  return {{"weight", {C_}, 1, 1, Init::ones, ParamRole::weight, false},
          {"bias", {C_}, 1, 1, Init::zeros, ParamRole::bias, false}};
}

template <class T>
void BatchNorm<T>::bind(T* params, T* grads) {
  if (!opt_.affine) return;
  weight_ = params;
  bias_ = params + C_;
  dweight_ = grads;
  dbias_ = grads + C_;
}

template <class T>
std::vector<BufferSpec> BatchNorm<T>::buffer_specs() const {
  if (!opt_.track_running_stats) return {};
  return {{"running_mean", {C_}, 0.0}, {"running_var", {C_}, 1.0}, {"num_batches_tracked", {}, 0.0}};
}

template <class T>
void BatchNorm<T>::bind_buffers(T* buffers) {
  if (!opt_.track_running_stats) return;
  running_mean_ = buffers;
  running_var_ = buffers + C_;
  batches_ = buffers + 2 * C_;
}

template <class T>
void BatchNorm<T>::forward(const T* x, T* y, const LayerBuffers<T>& buffers, std::size_t n,
                           const Pass& pass) const {
  // x, y are (N, C, S): channel c of sample i is the run x[(i*C + c)*S .. + S]
  const bool batch = pass.training || !opt_.track_running_stats;
  const bool update = pass.training && opt_.track_running_stats;
  const std::size_t count = n * S_;
  if (pass.training && count < 2)
    throw std::invalid_argument("BatchNorm" + std::to_string(dims_) +
                                "D needs more than one value per channel in training (a batch of " +
                                std::to_string(n) + " sample" + (n == 1 ? "" : "s") + " of shape " +
                                shape_str(shape_) + "); use a larger batch");
  double factor = opt_.momentum;
  if (update) {
    *batches_ += T(1);
    if (opt_.cumulative) factor = 1.0 / static_cast<double>(*batches_);
  }
  T* cache = buffers.cache;
  parallel_rows(C_, kGrain / (count + 1) + 1, [&](std::size_t b, std::size_t e) {
    for (std::size_t c = b; c < e; ++c) {
      T mean, rstd;
      if (batch) {
        double m = 0, v = 0;
        kernels::channel_moments(x + c * S_, n, S_, C_ * S_, m, v);
        mean = static_cast<T>(m);
        rstd = static_cast<T>(1.0 / std::sqrt(v + opt_.eps));
        if (update) {
          const double unbiased = v * static_cast<double>(count) / static_cast<double>(count - 1);
          running_mean_[c] = static_cast<T>(factor * m + (1.0 - factor) * static_cast<double>(running_mean_[c]));
          running_var_[c] =
              static_cast<T>(factor * unbiased + (1.0 - factor) * static_cast<double>(running_var_[c]));
        }
      } else {
        mean = running_mean_[c];
        rstd = static_cast<T>(1.0 / std::sqrt(static_cast<double>(running_var_[c]) + opt_.eps));
      }
      if (cache) {
        cache[c] = mean;
        cache[C_ + c] = rstd;
      }
      kernels::channel_normalize(x + c * S_, y + c * S_, n, S_, C_ * S_, mean, rstd,
                                 opt_.affine ? weight_[c] : T(1), opt_.affine ? bias_[c] : T(0));
    }
  });
  if (cache) cache[2 * C_] = batch ? T(1) : T(0);
}

template <class T>
void BatchNorm<T>::backward(const T* x, const T*, const LayerBuffers<T>& buffers, T* dy, T* dx,
                            std::size_t n, const Pass&) {
  // forward: y = (x - mean) * rstd * weight + bias (see kernels/norm.hpp for dx)
  const T* cache = buffers.cache;
  const bool batch = cache[2 * C_] != T(0);
  const bool learn = this->trainable() && opt_.affine;
  if (!learn && dx == nullptr) return;
  parallel_rows(C_, kGrain / (n * S_ + 1) + 1, [&](std::size_t b, std::size_t e) {
    for (std::size_t c = b; c < e; ++c)
      kernels::channel_backward(x + c * S_, dy + c * S_, dx ? dx + c * S_ : nullptr, n, S_, C_ * S_, cache[c],
                                cache[C_ + c], opt_.affine ? weight_[c] : T(1), batch,
                                learn ? dweight_ + c : nullptr, learn ? dbias_ + c : nullptr);
  });
}

template <class T>
LayerNorm<T>::LayerNorm(Shape input, Shape normalized, double eps, bool affine, bool bias)
    : shape_(std::move(input)), normalized_(std::move(normalized)), D_(shape_size(normalized_)), eps_(eps),
      affine_(affine), has_bias_(affine && bias) {}

template <class T>
std::vector<ParamSpec> LayerNorm<T>::parameter_specs() const {
  std::vector<ParamSpec> specs;
  if (affine_) specs.push_back({"weight", normalized_, 1, 1, Init::ones, ParamRole::weight, false});
  if (has_bias_) specs.push_back({"bias", normalized_, 1, 1, Init::zeros, ParamRole::bias, false});
  return specs;
}

template <class T>
void LayerNorm<T>::bind(T* params, T* grads) {
  if (!affine_) return;
  weight_ = params;
  dweight_ = grads;
  if (has_bias_) {
    bias_ = params + D_;
    dbias_ = grads + D_;
  }
}

template <class T>
void LayerNorm<T>::forward(const T* x, T* y, const LayerBuffers<T>& buffers, std::size_t n,
                           const Pass&) const {
  // x, y are (R, D): R = n * (rows per sample), D = the normalized values
  const std::size_t R = rows(n);
  T* mean = buffers.cache;
  T* rstd = mean ? mean + R : nullptr;
  parallel_rows(R, kGrain / (D_ + 1) + 1, [&](std::size_t b, std::size_t e) {
    kernels::layer_norm_rows(x + b * D_, y + b * D_, e - b, D_, weight_, bias_, eps_, mean ? mean + b : nullptr,
                             rstd ? rstd + b : nullptr);
  });
}

template <class T>
void LayerNorm<T>::backward(const T* x, const T*, const LayerBuffers<T>& buffers, T* dy, T* dx,
                            std::size_t n, const Pass&) {
  // forward: xhat = (x - mean) * rstd, y = xhat * weight + bias, per row
  const std::size_t R = rows(n);
  const T* mean = buffers.cache;
  const T* rstd = mean + R;
  if (this->trainable() && affine_)  // one task per block of columns: each sums every row, in order
    parallel_rows(D_, kGrain / (R + 1) + 1, [&](std::size_t b, std::size_t e) {
      kernels::layer_norm_param_grads(x, dy, R, D_, mean, rstd, dweight_, dbias_, b, e);
    });
  if (dx == nullptr) return;
  parallel_rows(R, kGrain / (D_ + 1) + 1, [&](std::size_t b, std::size_t e) {
    kernels::layer_norm_rows_backward(x + b * D_, dy + b * D_, dx + b * D_, e - b, D_, weight_, mean + b, rstd + b);
  });
}

namespace {
template <class T>
std::unique_ptr<Layer<T>> make_batch_norm(const ConfigReader& c, const Shape& input, std::size_t dims) {
  const std::string name = "BatchNorm" + std::to_string(dims) + "D";
  const std::size_t features = c.size("num_features");
  const std::string expect = dims == 1 ? "(num_features,) or (num_features, length)" : "(num_features, height, width)";
  require(!input.empty(), "a first " + name + " layer needs the network's input_shape " + expect);
  const bool rank_ok = dims == 1 ? (input.size() == 1 || input.size() == 2) : input.size() == 3;
  require(rank_ok && input[0] == features, name + "(" + std::to_string(features) + ") takes samples " + expect +
                                               ", but receives per-sample shape " + shape_str(input));
  BatchNormOptions o;
  o.eps = c.real("eps", 1e-5);
  require(o.eps > 0 && std::isfinite(o.eps), name + ": eps must be positive");
  o.cumulative = c.flag("cumulative_average", false);
  o.momentum = c.real("momentum", 0.1);
  require(o.momentum >= 0 && o.momentum <= 1, name + ": momentum must be in [0, 1], got " + std::to_string(o.momentum));
  o.affine = c.flag("affine", true);
  o.track_running_stats = c.flag("track_running_stats", true);
  return std::make_unique<BatchNorm<T>>(dims, input, o);
}
}  // namespace

template <class T>
std::unique_ptr<Layer<T>> make_batch_norm1d(const ConfigReader& c, const Shape& input) {
  return make_batch_norm<T>(c, input, 1);
}

template <class T>
std::unique_ptr<Layer<T>> make_batch_norm2d(const ConfigReader& c, const Shape& input) {
  return make_batch_norm<T>(c, input, 2);
}

template <class T>
std::unique_ptr<Layer<T>> make_layer_norm(const ConfigReader& c, const Shape& input) {
  Shape normalized;
  for (long long d : c.int_list("normalized_shape")) {
    require(d > 0, "LayerNorm: normalized_shape sizes must be positive, got " + std::to_string(d));
    normalized.push_back(static_cast<std::size_t>(d));
  }
  require(!normalized.empty(), "LayerNorm needs a non-empty normalized_shape");
  const Shape shape = input.empty() ? normalized : input;
  const bool fits = shape.size() >= normalized.size() &&
                    std::equal(normalized.begin(), normalized.end(), shape.end() - static_cast<long>(normalized.size()));
  require(fits, "LayerNorm(" + shape_str(normalized) + ") normalises the trailing axes of each sample, but receives "
                "per-sample shape " + shape_str(shape));
  const double eps = c.real("eps", 1e-5);
  require(eps > 0 && std::isfinite(eps), "LayerNorm: eps must be positive");
  return std::make_unique<LayerNorm<T>>(shape, normalized, eps, c.flag("elementwise_affine", true),
                                        c.flag("bias", true));
}

#define BPX_INSTANTIATE(T)                                                                    \
  template class BatchNorm<T>;                                                                \
  template class LayerNorm<T>;                                                                \
  template std::unique_ptr<Layer<T>> make_batch_norm1d<T>(const ConfigReader&, const Shape&); \
  template std::unique_ptr<Layer<T>> make_batch_norm2d<T>(const ConfigReader&, const Shape&); \
  template std::unique_ptr<Layer<T>> make_layer_norm<T>(const ConfigReader&, const Shape&);
BPX_INSTANTIATE(float)
BPX_INSTANTIATE(double)
#undef BPX_INSTANTIATE

}  // namespace bpx
