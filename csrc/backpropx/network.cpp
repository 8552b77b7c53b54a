#include "backpropx/network.hpp"

#include <algorithm>
#include <cmath>

namespace bpx {

namespace {
constexpr std::size_t kInferenceChunk = 4096;  // rows per pass; bounds predict's memory
}

template <class T>
Network<T>::Network(std::vector<std::unique_ptr<Layer<T>>> layers, std::uint64_t seed)
    : layers_(std::move(layers)) {
  require(!layers_.empty(), "a Network needs at least one layer");
  for (std::size_t k = 0; k < layers_.size(); ++k)
    require(layers_[k] != nullptr, "layer " + std::to_string(k) + " is null");
  for (std::size_t k = 1; k < layers_.size(); ++k) {
    const Shape out = layers_[k - 1]->output_shape(), in = layers_[k]->input_shape();
    require(out == in, "layer " + std::to_string(k - 1) + " (" + layers_[k - 1]->kind() +
                           ") outputs " + shape_str(out) + " but layer " + std::to_string(k) +
                           " (" + layers_[k]->kind() + ") expects " + shape_str(in));
  }
  in_features_ = shape_size(layers_.front()->input_shape());
  out_features_ = shape_size(layers_.back()->output_shape());
  widest_ = in_features_;

  std::size_t total = 0;
  for (std::size_t k = 0; k < layers_.size(); ++k) {
    widest_ = std::max(widest_, shape_size(layers_[k]->output_shape()));
    Segment seg{total, 0};
    for (const ParamSpec& spec : layers_[k]->parameter_specs()) {
      std::size_t count = 1;
      for (std::size_t d : spec.shape) count = checked_mul(count, d);
      tensors_.push_back({k, spec.name, spec.shape, total + seg.size});
      seg.size += count;
      require(total + seg.size >= total, "parameter count overflows");
    }
    segments_.push_back(seg);
    total += seg.size;
  }
  check_allocation(checked_mul(checked_mul(total, 2), sizeof(T)), "the network's parameters and gradients");
  params_.assign(total, T(0));
  grads_.assign(total, T(0));

  Rng rng(seed);
  for (std::size_t k = 0; k < layers_.size(); ++k) {
    layers_[k]->bind(params_.data() + segments_[k].offset, grads_.data() + segments_[k].offset);
    layers_[k]->initialize(rng);
  }
}

template <class T>
std::vector<Segment> Network<T>::trainable_segments() const {
  std::vector<Segment> out;
  for (std::size_t k = 0; k < layers_.size(); ++k)
    if (layers_[k]->trainable && segments_[k].size > 0) out.push_back(segments_[k]);
  return out;
}

template <class T>
void Network<T>::zero_grad() {
  std::fill(grads_.begin(), grads_.end(), T(0));
}

template <class T>
Workspace<T> Network<T>::make_workspace(std::size_t capacity, Use use) const {
  Workspace<T> ws;
  ws.capacity = capacity;
  ws.keep_caches = use != Use::inference;
  ws.keep_deltas = use == Use::training;
  std::size_t bytes = 0;
  for (const auto& layer : layers_) {
    bytes += checked_mul(checked_mul(capacity, shape_size(layer->output_shape())), sizeof(T));
    if (ws.keep_caches) bytes += checked_mul(layer->cache_size(capacity), sizeof(T));
  }
  if (ws.keep_deltas) bytes += checked_mul(checked_mul(capacity, widest_), 2 * sizeof(T));
  check_allocation(bytes, "the work buffers for a batch of " + std::to_string(capacity));
  ws.acts.resize(layers_.size());
  ws.caches.resize(layers_.size());
  for (std::size_t k = 0; k < layers_.size(); ++k) {
    ws.acts[k].resize(capacity * shape_size(layers_[k]->output_shape()));
    if (ws.keep_caches) ws.caches[k].resize(layers_[k]->cache_size(capacity));
  }
  if (ws.keep_deltas) {
    ws.delta_a.resize(capacity * widest_);
    ws.delta_b.resize(capacity * widest_);
  }
  return ws;
}

template <class T>
const T* Network<T>::forward(const T* x, std::size_t n, Workspace<T>& ws, const Pass& pass) const {
  if (n > ws.capacity)
    throw std::invalid_argument("batch of " + std::to_string(n) + " rows exceeds the workspace (" +
                                std::to_string(ws.capacity) + ")");
  const T* in = x;
  for (std::size_t k = 0; k < layers_.size(); ++k) {
    T* cache = ws.keep_caches && !ws.caches[k].empty() ? ws.caches[k].data() : nullptr;
    layers_[k]->forward(in, ws.acts[k].data(), cache, n, pass);
    in = ws.acts[k].data();
  }
  return in;
}

template <class T>
const T* Network<T>::loss_input(Loss loss, const Workspace<T>& ws) const {
  const std::size_t last = layers_.size() - 1;
  const T* out = ws.acts[last].data();
  if (loss != Loss::cross_entropy || layers_[last]->activation() != Activation::softmax) return out;
  const T* cache = ws.caches[last].empty() ? nullptr : ws.caches[last].data();
  return layers_[last]->preactivation(out, cache);
}

template <class T>
double Network<T>::forward_backward(const T* x, Targets<T> y, std::size_t n, Loss loss,
                                    Workspace<T>& ws, Pass pass, double* correct) {
  require(ws.keep_deltas, "forward_backward needs a training workspace");
  forward(x, n, ws, pass);
  const std::size_t last = layers_.size() - 1;
  const T* input = loss_input(loss, ws);
  T* delta = ws.delta_a.data();
  // The (weighted) mean; a batch whose weights are all zero has zero loss and gradient.
  const double wsum = weight_sum(y, n);
  const double sum =
      loss_forward_backward(loss, input, y, n, out_features_, delta, wsum > 0 ? 1.0 / wsum : 0.0);
  const double value = wsum > 0 ? sum / wsum : 0.0;
  if (correct) *correct += count_correct(loss, input, y, n, out_features_);
  if (!std::isfinite(value)) return value;  // the caller decides; no gradient is applied

  // Layers below the lowest trainable one need no backward pass at all.
  std::size_t lowest = layers_.size();
  for (std::size_t k = 0; k < layers_.size(); ++k)
    if (layers_[k]->trainable && segments_[k].size > 0) {
      lowest = k;
      break;
    }
  T* other = ws.delta_b.data();
  for (std::size_t k = last + 1; k-- > lowest;) {
    Pass p = pass;
    p.dy_is_preactivation =
        k == last && loss == Loss::cross_entropy && layers_[k]->activation() == Activation::softmax;
    const T* in = k == 0 ? x : ws.acts[k - 1].data();
    const T* cache = ws.caches[k].empty() ? nullptr : ws.caches[k].data();
    T* dx = k > lowest ? other : nullptr;
    layers_[k]->backward(in, ws.acts[k].data(), cache, delta, dx, n, p);
    std::swap(delta, other);
  }
  return value;
}

template <class T>
void Network<T>::predict(const T* x, std::size_t n, T* out) const {
  const std::size_t chunk = std::min(n, kInferenceChunk);
  Workspace<T> ws = make_workspace(chunk, Use::inference);
  for (std::size_t r = 0; r < n; r += chunk) {
    const std::size_t m = std::min(chunk, n - r);
    const T* y = forward(x + r * in_features_, m, ws, Pass{});
    if (!all_finite(y, m * out_features_))
      throw NonFiniteError("the network's output is not finite (rows " + std::to_string(r) + " to " +
                           std::to_string(r + m - 1) + "): its weights or inputs overflow " +
                           (sizeof(T) == 4 ? "float32" : "float64"));
    std::copy(y, y + m * out_features_, out + r * out_features_);
  }
}

template <class T>
std::pair<double, double> Network<T>::evaluate(const T* x, Targets<T> y, std::size_t n,
                                               Loss loss) const {
  const std::size_t chunk = std::min(n, kInferenceChunk);
  Workspace<T> ws = make_workspace(chunk, Use::evaluation);
  double loss_sum = 0, weights = 0, correct = 0;
  for (std::size_t r = 0; r < n; r += chunk) {
    const std::size_t m = std::min(chunk, n - r);
    forward(x + r * in_features_, m, ws, Pass{});
    Targets<T> part{y.values ? y.values + r * out_features_ : nullptr,
                    y.labels ? y.labels + r : nullptr, y.weights ? y.weights + r : nullptr};
    const T* input = loss_input(loss, ws);
    loss_sum += loss_forward_backward<T>(loss, input, part, m, out_features_, nullptr, 0.0);
    weights += weight_sum(part, m);
    correct += count_correct(loss, input, part, m, out_features_);
  }
  if (!std::isfinite(loss_sum))
    throw NonFiniteError("the loss is not finite: the network's weights or inputs overflow");
  return {weights > 0 ? loss_sum / weights : 0.0, correct};
}

template class Network<float>;
template class Network<double>;

}  // namespace bpx
