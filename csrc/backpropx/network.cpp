#include "backpropx/network.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace bpx {

namespace {
constexpr std::size_t kInferenceChunk = 4096;  // samples per pass; bounds predict's memory
}

template <class T>
Network<T>::Network(const std::vector<LayerConfig>& configs, Shape input_shape, std::uint64_t seed) {
  require(!configs.empty(), "a Network needs at least one layer");
  stack_ = LayerStack<T>(make_layers<T>(configs, input_shape, ""), input_shape);
  build(seed);
}

template <class T>
Network<T>::Network(std::vector<std::unique_ptr<Layer<T>>> layers, std::uint64_t seed) {
  require(!layers.empty(), "a Network needs at least one layer");
  for (std::size_t k = 0; k < layers.size(); ++k)
    require(layers[k] != nullptr, "layer " + std::to_string(k) + " is null");
  Shape input = layers.front()->input_shape();
  stack_ = LayerStack<T>(std::move(layers), input);
  build(seed);
}

template <class T>
void Network<T>::build(std::uint64_t seed) {
  in_size_ = shape_size(input_shape());
  out_size_ = shape_size(output_shape());
  require(!output_shape().empty() && out_size_ > 0, "the network's output is empty");
  // The network, not the layer, owns a final softmax: fused into
  // cross-entropy, applied here for every other use.
  Layer<T>& last = stack_.layer(stack_.size() - 1);
  if (last.output_activation() == Activation::softmax) {
    last.release_output_activation();
    head_softmax_ = true;
  }
  const std::size_t total = stack_.num_params();
  check_allocation(checked_mul(checked_mul(total, 2), sizeof(T)), "the network's parameters and gradients");
  params_.assign(total, T(0));
  grads_.assign(total, T(0));
  stack_.bind(params_.data(), grads_.data());
  buffers_.assign(stack_.num_buffers(), T(0));
  stack_.bind_buffers(buffers_.data());
  for (std::size_t k = 0; k < stack_.size(); ++k) {
    std::size_t offset = stack_.buffer_segment(k).offset;
    for (const BufferSpec& spec : stack_.layer(k).buffer_specs()) {
      const std::size_t count = shape_size(spec.shape);
      buffer_tensors_.push_back({k, spec.name, spec.shape, offset, false});
      std::fill(buffers_.begin() + offset, buffers_.begin() + offset + count, static_cast<T>(spec.fill));
      offset += count;
    }
  }

  Rng rng(seed);
  for (std::size_t k = 0; k < stack_.size(); ++k) {
    std::size_t offset = stack_.segment(k).offset;
    for (const ParamSpec& spec : stack_.layer(k).parameter_specs()) {
      const std::size_t count = shape_size(spec.shape);
      tensors_.push_back({k, spec.name, spec.shape, offset, spec.l2});
      init_tensor(spec.init, spec.role, params_.data() + offset, count, spec.fan_in, spec.fan_out, rng);
      offset += count;
    }
  }
  stack_.after_init();
}

template <class T>
void Network<T>::check_input(const T* x, std::size_t n) const {
  stack_.layer(0).check_input(x, n);
}

template <class T>
void Network<T>::check_lengths(const std::int64_t* lengths, std::size_t n) const {
  if (lengths == nullptr) return;
  require(stack_.lengths_error().empty(), stack_.lengths_error());
  require(accepts_lengths(),
          "this network takes no lengths: none of its layers reads them and its output " +
              shape_str(output_shape()) + " has no steps of the input's first axis to mask");
  const long long steps = static_cast<long long>(input_shape().front());
  for (std::size_t i = 0; i < n; ++i)
    if (lengths[i] < 1 || lengths[i] > steps)
      throw std::invalid_argument("lengths[" + std::to_string(i) + "] is " + std::to_string(lengths[i]) +
                                  "; each length must be in [1, " + std::to_string(steps) +
                                  "] (the input's first axis)");
}

template <class T>
Targets<T> Network<T>::with_lengths(Targets<T> y, const std::int64_t* lengths) const {
  y.group = rows_per_sample();
  if (lengths != nullptr && masks_rows()) {
    y.lengths = lengths;
    y.steps = output_shape().front();
  }
  return y;
}

template <class T>
std::vector<Segment> Network<T>::trainable_segments() const {
  std::vector<Segment> out;
  for (std::size_t k = 0; k < stack_.size(); ++k)
    if (stack_.layer(k).trainable() && stack_.segment(k).size > 0) out.push_back(stack_.segment(k));
  return out;
}

template <class T>
void Network<T>::zero_grad() {
  std::fill(grads_.begin(), grads_.end(), T(0));
}

template <class T>
Workspace<T> Network<T>::make_workspace(std::size_t capacity, bool training) const {
  const auto s = stack_.sizes(capacity, training);
  const std::size_t probs = head_softmax_ ? checked_mul(capacity, out_size_) : 0;
  std::size_t bytes = 0;
  for (std::size_t part : {s.acts, s.caches, s.scratch, s.deltas, probs})
    bytes = checked_add(bytes, checked_mul(part, sizeof(T)));
  bytes = checked_add(bytes, checked_mul(s.indices, sizeof(std::int32_t)));
  check_allocation(bytes, "the work buffers for a batch of " + std::to_string(capacity));
  Workspace<T> ws;
  ws.capacity = capacity;
  ws.training = training;
  ws.acts.resize(s.acts);
  ws.caches.resize(s.caches);
  ws.scratch.resize(s.scratch);
  ws.deltas.resize(s.deltas);
  ws.indices.resize(s.indices);
  ws.probs.resize(probs);
  ws.view = stack_.carve(capacity, training, ws.acts.data(), ws.caches.data(), ws.indices.data(),
                         ws.scratch.data(), ws.deltas.data());
  return ws;
}

template <class T>
const T* Network<T>::forward(Input<T> x, std::size_t n, Workspace<T>& ws, const Pass& pass) const {
  if (n > ws.capacity)
    throw std::invalid_argument("batch of " + std::to_string(n) + " samples exceeds the workspace (" +
                                std::to_string(ws.capacity) + ")");
  if (pass.training) require(ws.training, "a training forward pass needs a training workspace");
  const T* out = stack_.forward(x, n, ws.view, pass);
  if (!head_softmax_) return out;
  activation_forward(Activation::softmax, out, ws.probs.data(), n * rows_per_sample(), classes());
  return ws.probs.data();
}

template <class T>
const T* Network<T>::loss_input(Loss loss, const T* x, const Workspace<T>& ws) const {
  if (head_softmax_ && loss != Loss::cross_entropy) return ws.probs.data();
  return stack_.output_of(stack_.size() - 1, x, ws.view);
}

template <class T>
std::size_t Network<T>::lowest_trainable() const {
  for (std::size_t k = 0; k < stack_.size(); ++k)
    if (stack_.layer(k).trainable() && stack_.segment(k).size > 0) return k;
  return stack_.size();
}

template <class T>
void Network<T>::backward_from(Input<T> x, T* dlast, bool at_logits, T* dx, std::size_t n,
                               Workspace<T>& ws, const Pass& pass, std::size_t lowest) {
  // forward: p = softmax(z) when the network owns the final softmax
  // dz = p * (dp - sum(dp * p)) per row
  if (head_softmax_ && !at_logits)
    activation_backward_bias<T>(Activation::softmax, nullptr, ws.probs.data(), dlast, nullptr,
                                n * rows_per_sample(), classes());
  if (lowest >= stack_.size()) {
    if (pass.fresh_gradients) zero_grad();
    if (dx) std::memcpy(dx, dlast, n * in_size_ * sizeof(T));  // unreachable with dx: lowest is 0
    return;
  }
  stack_.backward(x, dlast, dx, n, ws.view, pass, lowest);
}

template <class T>
void Network<T>::backward(const T* x, const T* dy, T* dx, std::size_t n, Workspace<T>& ws,
                          const Pass& pass) {
  require(ws.training, "backward needs the training workspace of a training forward pass");
  require(n <= ws.capacity, "backward: more samples than the forward pass had");
  T* dlast = ws.deltas.data();  // delta_a of the view
  std::memcpy(dlast, dy, n * out_size_ * sizeof(T));
  backward_from(x, dlast, false, dx, n, ws, pass, 0);
}

template <class T>
double Network<T>::forward_backward(Input<T> x, Targets<T> y, std::size_t n, Loss loss,
                                    Workspace<T>& ws, Pass pass, double* correct,
                                    double weight_total) {
  require(ws.training, "forward_backward needs a training workspace");
  forward(x, n, ws, pass);
  const T* input = loss_input(loss, x.dense, ws);
  const std::size_t rows = n * rows_per_sample(), C = classes();
  y = with_lengths(y, pass.lengths);
  T* delta = ws.deltas.data();
  // The (weighted) mean; a batch whose weights are all zero has zero loss and gradient.
  const double wsum = weight_total > 0 ? weight_total : weight_sum(y, rows);
  const double sum = loss_forward_backward(loss, input, y, rows, C, delta, wsum > 0 ? 1.0 / wsum : 0.0);
  const double value = wsum > 0 ? sum / wsum : 0.0;
  if (correct) *correct += count_correct(loss, input, y, rows, C);
  if (!std::isfinite(value)) {  // the caller decides; no gradient is applied
    if (pass.fresh_gradients) zero_grad();  // no backward ran: the fresh gradient is zero
    return value;
  }
  // Layers below the lowest trainable one need no backward pass at all.
  backward_from(x, delta, loss == Loss::cross_entropy, nullptr, n, ws, pass, lowest_trainable());
  return value;
}

template <class T>
void Network<T>::predict(Input<T> x, std::size_t n, T* out, const std::int64_t* lengths) const {
  const std::size_t chunk = std::max<std::size_t>(1, std::min(n, kInferenceChunk));
  Workspace<T> ws = make_workspace(chunk, false);
  for (std::size_t r = 0; r < n; r += chunk) {
    const std::size_t m = std::min(chunk, n - r);
    Pass pass;
    pass.lengths = lengths ? lengths + r : nullptr;
    const T* y = forward(x.block(r, m, in_size_), m, ws, pass);
    if (!all_finite(y, m * out_size_))
      throw NonFiniteError("the network's output is not finite (rows " + std::to_string(r) + " to " +
                           std::to_string(r + m - 1) + "): its weights or inputs overflow " +
                           (sizeof(T) == 4 ? "float32" : "float64"));
    std::copy(y, y + m * out_size_, out + r * out_size_);
  }
}

template <class T>
Evaluation Network<T>::evaluate(Input<T> x, Targets<T> y, std::size_t n, Loss loss,
                                const std::int64_t* lengths) const {
  const std::size_t chunk = std::max<std::size_t>(1, std::min(n, kInferenceChunk));
  Workspace<T> ws = make_workspace(chunk, false);
  const std::size_t R = rows_per_sample(), C = classes();
  double loss_sum = 0, weights = 0;
  Evaluation e;
  for (std::size_t r = 0; r < n; r += chunk) {
    const std::size_t m = std::min(chunk, n - r);
    const Input<T> block = x.block(r, m, in_size_);
    Pass pass;
    pass.lengths = lengths ? lengths + r : nullptr;
    forward(block, m, ws, pass);
    Targets<T> part{y.values ? y.values + r * out_size_ : nullptr,
                    y.labels ? y.labels + r * R : nullptr, y.weights ? y.weights + r : nullptr, R};
    part = with_lengths(part, pass.lengths);
    const T* input = loss_input(loss, block.dense, ws);
    loss_sum += loss_forward_backward<T>(loss, input, part, m * R, C, nullptr, 0.0);
    weights += weight_sum(part, m * R);
    e.correct += count_correct(loss, input, part, m * R, C);
    e.rows += count_rows(part, m * R);
  }
  if (!std::isfinite(loss_sum))
    throw NonFiniteError("the loss is not finite: the network's weights or inputs overflow");
  e.loss = weights > 0 ? loss_sum / weights : 0.0;
  return e;
}

template class Network<float>;
template class Network<double>;

}  // namespace bpx
