// A feed-forward stack of layers over one flat parameter buffer and one flat
// gradient buffer (so an optimizer step is one loop and zero_grad one fill).
// Computing gradients (forward_backward) and applying them (an Optimizer)
// are separate steps, so a data-parallel all-reduce of grads() can go
// between them.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "backpropx/layer.hpp"
#include "backpropx/losses.hpp"

namespace bpx {

// Buffers of one forward/backward pass, sized once for up to `capacity`
// samples and reused for every batch.
template <class T>
struct Workspace {
  std::size_t capacity = 0;
  bool keep_caches = false;  // needed by backward and by cross-entropy's logits
  bool keep_deltas = false;  // gradient buffers, for backward only
  std::vector<std::vector<T>> acts;    // acts[k]: output of layer k, (n, out_k)
  std::vector<std::vector<T>> caches;  // caches[k]: what layer k saved for backward
  std::vector<T> delta_a, delta_b;     // gradients flowing backward, (n, widest layer)
};

// A contiguous range of the flat buffers.
struct Segment {
  std::size_t offset = 0;
  std::size_t size = 0;
};

struct TensorInfo {
  std::size_t layer;
  std::string name;  // "weight", "bias"
  Shape shape;
  std::size_t offset;  // into params()/grads()
};

template <class T>
class Network {
 public:
  // Checks that consecutive layers fit, allocates the flat buffers and
  // initialises every layer from one Rng seeded with `seed`, in order.
  Network(std::vector<std::unique_ptr<Layer<T>>> layers, std::uint64_t seed);

  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  std::size_t num_layers() const { return layers_.size(); }
  Layer<T>& layer(std::size_t k) { return *layers_.at(k); }
  const Layer<T>& layer(std::size_t k) const { return *layers_.at(k); }
  std::size_t in_features() const { return in_features_; }
  std::size_t out_features() const { return out_features_; }

  std::size_t num_params() const { return params_.size(); }
  T* params() { return params_.data(); }
  const T* params() const { return params_.data(); }
  T* grads() { return grads_.data(); }
  const T* grads() const { return grads_.data(); }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  Segment layer_segment(std::size_t k) const { return segments_.at(k); }
  // Parameter ranges of trainable layers, in order.
  std::vector<Segment> trainable_segments() const;

  void zero_grad();

  // inference: layer outputs only; evaluation: plus the caches (for the
  // logits of cross-entropy); training: plus the backward gradient buffers.
  enum class Use { inference, evaluation, training };
  Workspace<T> make_workspace(std::size_t capacity, Use use) const;

  // Runs n rows of x (n, in_features) through every layer; the output
  // (n, out_features) stays in the workspace.
  const T* forward(const T* x, std::size_t n, Workspace<T>& ws, const Pass& pass) const;

  // forward, loss, backward. Gradients are added to grads() (call zero_grad
  // first for a fresh gradient). Returns the mean loss of the n rows (weighted
  // by y.weights when given) and adds
  // the number of correct predictions to *correct when given.
  double forward_backward(const T* x, Targets<T> y, std::size_t n, Loss loss, Workspace<T>& ws,
                          Pass pass, double* correct = nullptr);

  // Inference on n rows into out (n, out_features). Uses its own buffers,
  // so any number of threads may call it at once. Throws NonFiniteError
  // rather than return NaN or infinity.
  void predict(const T* x, std::size_t n, T* out) const;

  // (Weighted) mean loss and number of correct predictions over n rows, in
  // chunks; NonFiniteError when the loss is not finite.
  std::pair<double, double> evaluate(const T* x, Targets<T> y, std::size_t n, Loss loss) const;

 private:
  // The loss input: logits for cross-entropy (the pre-softmax values when
  // the last layer is softmax), the network output otherwise.
  const T* loss_input(Loss loss, const Workspace<T>& ws) const;

  std::vector<std::unique_ptr<Layer<T>>> layers_;
  std::vector<T> params_, grads_;
  std::vector<Segment> segments_;  // per layer
  std::vector<TensorInfo> tensors_;
  std::size_t in_features_ = 0, out_features_ = 0, widest_ = 0;
};

}  // namespace bpx
