#include "backpropx/stack.hpp"

#include <algorithm>
#include <cstring>

namespace bpx {

template <class T>
LayerStack<T>::LayerStack(std::vector<std::unique_ptr<Layer<T>>> layers, Shape input)
    : layers_(std::move(layers)), input_(std::move(input)) {
  require(!layers_.empty(), "a stack of layers needs at least one layer");
  Shape shape = input_.empty() ? layers_.front()->input_shape() : input_;
  input_ = shape;
  widest_ = shape_size(shape);
  for (std::size_t k = 0; k < layers_.size(); ++k) {
    require(layers_[k] != nullptr, "layer " + std::to_string(k) + " is null");
    const Shape in = layers_[k]->input_shape();
    require(in == shape, "layer " + std::to_string(k) + " (" + layers_[k]->kind() + ") expects " +
                             shape_str(in) + " per sample but receives " + shape_str(shape));
    require(k == 0 || !layers_[k]->reads_input_data(),
            "layer " + std::to_string(k) + " (" + layers_[k]->kind() +
                ") reads the network's input data (token ids), so it must be the first layer");
    shape = layers_[k]->output_shape();
    if (!layers_[k]->aliases_input()) widest_ = std::max(widest_, shape_size(shape));
    // Lengths reach layer k while every layer before it kept the steps.
    if (all_keep_) {
      aligned_ = k + 1;
      uses_lengths_ = uses_lengths_ || layers_[k]->uses_lengths();
      all_keep_ = layers_[k]->keeps_steps();
      const LayerStack<T>* inner = layers_[k]->children();
      if (inner != nullptr && !inner->lengths_error().empty() && lengths_error_.empty())
        lengths_error_ = "inside layer " + std::to_string(k) + " (" + layers_[k]->kind() + "), " +
                         inner->lengths_error();
    } else if (layers_[k]->uses_lengths() && lengths_error_.empty()) {
      lengths_error_ = "layer " + std::to_string(k) + " (" + layers_[k]->kind() +
                       ") cannot take lengths: an earlier layer mixes the steps of the input's first axis";
    }
    Segment seg{num_params_, 0};
    for (const ParamSpec& spec : layers_[k]->parameter_specs()) {
      std::size_t count = 1;
      for (std::size_t d : spec.shape) count = checked_mul(count, d);
      seg.size = checked_add(seg.size, count);  // a wrapped sum would under-allocate
    }
    segments_.push_back(seg);
    num_params_ = checked_add(num_params_, seg.size);
    Segment buf{num_buffers_, 0};
    for (const BufferSpec& spec : layers_[k]->buffer_specs()) buf.size = checked_add(buf.size, shape_size(spec.shape));
    buffer_segments_.push_back(buf);
    num_buffers_ = checked_add(num_buffers_, buf.size);
  }
  output_ = shape;
}

template <class T>
void LayerStack<T>::bind(T* params, T* grads) {
  grads_ = grads;
  for (std::size_t k = 0; k < layers_.size(); ++k)
    layers_[k]->bind(params + segments_[k].offset, grads + segments_[k].offset);
}

template <class T>
void LayerStack<T>::bind_buffers(T* buffers) {
  for (std::size_t k = 0; k < layers_.size(); ++k)
    layers_[k]->bind_buffers(buffers + buffer_segments_[k].offset);
}

template <class T>
void LayerStack<T>::after_init() {
  for (auto& layer : layers_) layer->after_init();
}

template <class T>
typename LayerStack<T>::Sizes LayerStack<T>::sizes(std::size_t n, bool training) const {
  Sizes s;
  for (const auto& layer : layers_) {
    if (!layer->aliases_input()) s.acts = checked_add(s.acts, checked_mul(n, shape_size(layer->output_shape())));
    if (training) {
      s.caches = checked_add(s.caches, layer->cache_size(n));
      s.indices = checked_add(s.indices, layer->index_cache_size(n));
    }
    s.scratch = std::max(s.scratch, layer->scratch_size(n));
  }
  if (training) s.deltas = checked_mul(checked_mul(n, widest_), 2);
  return s;
}

template <class T>
typename LayerStack<T>::View LayerStack<T>::carve(std::size_t n, bool training, T* acts, T* caches,
                                                  std::int32_t* indices, T* scratch,
                                                  T* deltas) const {
  View v;
  v.act.resize(layers_.size(), nullptr);
  v.buffers.resize(layers_.size());
  for (std::size_t k = 0; k < layers_.size(); ++k) {
    const Layer<T>& layer = *layers_[k];
    if (!layer.aliases_input()) {
      v.act[k] = acts;
      acts += n * shape_size(layer.output_shape());
    }
    LayerBuffers<T>& b = v.buffers[k];
    if (training && layer.cache_size(n) > 0) {
      b.cache = caches;
      caches += layer.cache_size(n);
    }
    if (training && layer.index_cache_size(n) > 0) {
      b.indices = indices;
      indices += layer.index_cache_size(n);
    }
    if (layer.scratch_size(n) > 0) b.scratch = scratch;
  }
  if (training) {
    v.delta_a = deltas;
    v.delta_b = deltas + n * widest_;
  }
  return v;
}

template <class T>
const T* LayerStack<T>::output_of(std::size_t k, const T* x, const View& v) const {
  for (std::size_t j = k + 1; j-- > 0;)
    if (v.act[j] != nullptr) return v.act[j];
  return x;
}

template <class T>
const T* LayerStack<T>::forward(Input<T> x, std::size_t n, const View& v, const Pass& pass) const {
  if (x.sparse) require(layers_[0]->accepts_sparse(), "sparse input needs a first layer that reads it (Dense)");
  const T* in = x.dense;
  Pass unaligned = pass;  // for layers whose input no longer has the steps lengths count
  unaligned.lengths = nullptr;
  for (std::size_t k = 0; k < layers_.size(); ++k) {
    if (v.act[k] == nullptr) continue;  // an aliasing layer: same memory, new shape
    const Pass& p = k < aligned_ ? pass : unaligned;
    if (k == 0 && x.sparse) layers_[0]->forward_sparse(x.csr, v.act[0], v.buffers[0], p);
    else layers_[k]->forward(in, v.act[k], v.buffers[k], n, p);
    in = v.act[k];
  }
  return in;
}

template <class T>
void LayerStack<T>::backward(Input<T> x, T* dy, T* dx, std::size_t n, const View& v,
                             const Pass& pass, std::size_t lowest) {
  require(!x.sparse || dx == nullptr, "there is no gradient with respect to sparse input");
  // The lowest layer that does work writes into dx; the others alternate
  // between the two delta buffers, never the one they read.
  std::size_t first = layers_.size();
  for (std::size_t k = lowest; k < layers_.size(); ++k)
    if (v.act[k] != nullptr) {
      first = k;
      break;
    }
  if (pass.fresh_gradients)  // layers that will not write their gradients start them at zero
    for (std::size_t k = 0; k < layers_.size(); ++k) {
      const bool writes = k >= lowest && v.act[k] != nullptr && layers_[k]->trainable() &&
                          layers_[k]->writes_fresh_gradients() && !(k == 0 && x.sparse);
      if (!writes && segments_[k].size > 0)
        std::fill(grads_ + segments_[k].offset, grads_ + segments_[k].offset + segments_[k].size, T(0));
    }
  T* delta = dy;
  Pass unaligned = pass;
  unaligned.lengths = nullptr;
  for (std::size_t k = layers_.size(); k-- > lowest;) {
    if (v.act[k] == nullptr) continue;
    const T* in = k == 0 ? x.dense : output_of(k - 1, x.dense, v);
    T* target = nullptr;
    if (k > first) target = delta == v.delta_a ? v.delta_b : v.delta_a;
    else if (lowest == 0) target = dx;
    const Pass& p = k < aligned_ ? pass : unaligned;
    if (k == 0 && x.sparse) layers_[0]->backward_sparse(x.csr, v.act[0], v.buffers[0], delta, p);
    else layers_[k]->backward(in, v.act[k], v.buffers[k], delta, target, n, p);
    delta = target;
  }
  if (first == layers_.size() && dx != nullptr && lowest == 0)  // only aliasing layers
    std::memcpy(dx, dy, n * shape_size(input_) * sizeof(T));
}

template class LayerStack<float>;
template class LayerStack<double>;

}  // namespace bpx
