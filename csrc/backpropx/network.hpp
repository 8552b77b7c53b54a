// A feed-forward stack of layers over one flat parameter buffer and one flat
// gradient buffer (so an optimizer step is one loop and zero_grad one fill).
// Computing gradients (forward_backward, or forward then backward) and
// applying them (apply_update) are separate steps, so a data-parallel
// all-reduce of grads() can go between them.
//
// Samples have per-sample shapes: X is (n, *input_shape), the output
// (n, *output_shape). Losses act on the last axis: the output is read as
// rows of `classes()` values, rows_per_sample() of them per sample.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "backpropx/layers/registry.hpp"
#include "backpropx/losses.hpp"
#include "backpropx/stack.hpp"

namespace bpx {

// Buffers of one pass, sized once for up to `capacity` samples and reused
// for every batch. A training workspace also keeps what backward needs.
template <class T>
struct Workspace {
  std::size_t capacity = 0;
  bool training = false;
  std::vector<T> acts, caches, scratch, deltas;
  std::vector<std::int32_t> indices;
  std::vector<T> probs;  // the output after a softmax the network took over
  typename LayerStack<T>::View view;
};

// What evaluate() returns: the (weighted) mean loss, the number of correct
// rows and the number of rows counted (padded steps excluded).
struct Evaluation {
  double loss = 0;
  double correct = 0;
  double rows = 0;
};

struct TensorInfo {
  std::size_t layer;
  std::string name;  // "weight", "bias", "0.weight" inside a container
  Shape shape;
  std::size_t offset;  // into params()/grads()
  bool l2;             // penalised by Trainer(l2=)
};

template <class T>
class Network {
 public:
  // Builds the layers from their configs, each fed the previous one's output
  // shape (input_shape may be empty when the first layer implies it, as
  // Dense does), allocates the flat buffers and initialises every tensor
  // from one Rng seeded with `seed`, in order.
  Network(const std::vector<LayerConfig>& configs, Shape input_shape, std::uint64_t seed);
  Network(std::vector<std::unique_ptr<Layer<T>>> layers, std::uint64_t seed);

  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  std::size_t num_layers() const { return stack_.size(); }
  Layer<T>& layer(std::size_t k) { return stack_.layer(k); }
  const Layer<T>& layer(std::size_t k) const { return stack_.layer(k); }
  const Shape& input_shape() const { return stack_.input_shape(); }
  const Shape& output_shape() const { return stack_.output_shape(); }
  std::size_t in_features() const { return in_size_; }    // values per input sample
  std::size_t out_features() const { return out_size_; }  // values per output sample
  std::size_t classes() const { return output_shape().back(); }
  std::size_t rows_per_sample() const { return out_size_ / classes(); }
  // True when the last layer's softmax was taken over by the network (fused
  // into cross-entropy, applied by the network for the other losses).
  bool output_softmax() const { return head_softmax_; }

  std::size_t num_params() const { return params_.size(); }
  T* params() { return params_.data(); }
  const T* params() const { return params_.data(); }
  T* grads() { return grads_.data(); }
  const T* grads() const { return grads_.data(); }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // Buffers (BatchNorm's running statistics): beside the parameters, never
  // seen by an optimizer; `l2` is false for all of them.
  std::size_t num_buffers() const { return buffers_.size(); }
  T* buffers() { return buffers_.data(); }
  const T* buffers() const { return buffers_.data(); }
  const std::vector<TensorInfo>& buffer_tensors() const { return buffer_tensors_; }
  Segment layer_segment(std::size_t k) const { return stack_.segment(k); }
  // Parameter ranges of trainable layers, in order.
  std::vector<Segment> trainable_segments() const;

  void zero_grad();

  // Validates n samples of input data for a first layer that reads data
  // (Embedding's ids); throws std::invalid_argument naming the problem.
  void check_input(const T* x, std::size_t n) const;

  // Variable-length sequences (Pass::lengths): lengths count valid steps of
  // the input's first axis. They are accepted when a layer uses them or the
  // output keeps the steps (then losses skip the padded rows: masks_rows).
  // check_lengths throws std::invalid_argument unless each is in [1, steps].
  bool accepts_lengths() const { return stack_.uses_lengths() || masks_rows(); }
  bool masks_rows() const { return stack_.keeps_steps() && output_shape().size() >= 2; }
  void check_lengths(const std::int64_t* lengths, std::size_t n) const;

  // inference: layer outputs and scratch only; training: plus caches and
  // the backward gradient buffers.
  Workspace<T> make_workspace(std::size_t capacity, bool training) const;

  // Runs n samples of x through every layer and returns the output
  // (n, *output_shape), which lives in the workspace (or in x when every
  // layer is a view). x may be CSR rows when the first layer accepts_sparse().
  const T* forward(Input<T> x, std::size_t n, Workspace<T>& ws, const Pass& pass) const;

  // After forward(x, n, ws, pass) with a training workspace: backprop dy
  // (n, *output_shape) to the input. Parameter gradients are added to
  // grads(); dx (n, *input_shape) is written unless null.
  void backward(const T* x, const T* dy, T* dx, std::size_t n, Workspace<T>& ws, const Pass& pass);

  // forward, loss, backward: the fit path. Gradients are added to grads()
  // (call zero_grad first), or written over them with pass.fresh_gradients. Returns the mean loss of
  // the n samples' rows (weighted by y.weights when given; rows of padded
  // steps excluded when pass.lengths is set) and adds the number of correct
  // rows to *correct when given.
  // weight_total > 0 divides by it instead of the rows' own weight sum: the
  // samples are one process's part of a data-parallel batch of that weight,
  // or one chunk of a full-batch objective, and the loss and gradient are
  // their share of the batch mean.
  double forward_backward(Input<T> x, Targets<T> y, std::size_t n, Loss loss, Workspace<T>& ws,
                          Pass pass, double* correct = nullptr, double weight_total = 0);

  // Inference on n samples into out (n, out_features). Uses its own buffers,
  // so any number of threads may call it at once. Throws NonFiniteError
  // rather than return NaN or infinity.
  // `lengths` (n,) as Pass::lengths, or null.
  void predict(Input<T> x, std::size_t n, T* out, const std::int64_t* lengths = nullptr) const;

  // (Weighted) mean loss and number of correct rows over n samples, in
  // chunks; NonFiniteError when the loss is not finite.
  Evaluation evaluate(Input<T> x, Targets<T> y, std::size_t n, Loss loss,
                      const std::int64_t* lengths = nullptr) const;

  // The loss rows' targets of a batch with lengths: padded rows excluded.
  Targets<T> with_lengths(Targets<T> y, const std::int64_t* lengths) const;

  // Where layer k's output lives after forward(x) with ws.
  const T* layer_output(std::size_t k, const T* x, const Workspace<T>& ws) const {
    return stack_.output_of(k, x, ws.view);
  }

 private:
  void build(std::uint64_t seed);
  // The values the loss sees: the logits for cross-entropy (before a softmax
  // the network took over), the network output otherwise.
  const T* loss_input(Loss loss, const T* x, const Workspace<T>& ws) const;
  // dlast holds d loss / d output (or / d logits when `at_logits`); backprop it.
  void backward_from(Input<T> x, T* dlast, bool at_logits, T* dx, std::size_t n, Workspace<T>& ws,
                     const Pass& pass, std::size_t lowest);
  std::size_t lowest_trainable() const;

  LayerStack<T> stack_;
  bool head_softmax_ = false;
  std::vector<T> params_, grads_;
  std::vector<TensorInfo> tensors_;
  std::vector<T> buffers_;
  std::vector<TensorInfo> buffer_tensors_;
  std::size_t in_size_ = 0, out_size_ = 0;
};

}  // namespace bpx
