// The layer interface. A layer sees per-sample shapes (a sample of a Conv2D
// is (C, H, W), of a recurrent layer (T, F)), owns no parameter memory (it is
// bound to slices of the network's flat buffers), and keeps no per-call
// state: what forward saves for backward lives in caller-owned buffers, so
// several threads may run inference on one network at once.
//
// Adding a layer kind: its class in layers/<family>.{hpp,cpp} and one line
// in layers/registry.cpp. The network, the trainer, initialisation, L2 and
// the bindings learn everything else from this interface.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backpropx/activations.hpp"
#include "backpropx/common.hpp"
#include "backpropx/init.hpp"
#include "backpropx/rng.hpp"
#include "backpropx/sparse.hpp"

namespace bpx {

// One parameter tensor of a layer, with what initialisation and the L2
// penalty need to know about it, so neither matches on names.
struct ParamSpec {
  std::string name;  // "weight", "bias"; a nested layer's as "j.weight"
  Shape shape;
  std::size_t fan_in = 1;   // inputs feeding one output unit
  std::size_t fan_out = 1;  // outputs fed by one input unit
  Init init = Init::zeros;  // the layer's scheme (see init.hpp)
  ParamRole role = ParamRole::weight;
  bool l2 = true;  // Trainer(l2=) penalises it (weights yes, biases no)
};

// A state tensor of a layer that is not a parameter (BatchNorm's running
// statistics): it lives in the network's flat buffer store beside the
// parameters, is saved, loaded and checkpointed with them, and is never seen
// by an optimizer, L2 or clipping. The layer itself updates it, in a training
// forward pass; inference only reads it.
struct BufferSpec {
  std::string name;  // "running_mean"; a nested layer's as "j.running_mean"
  Shape shape;       // {} for a scalar
  double fill = 0;   // every element's initial value
};

// How a forward/backward call runs.
struct Pass {
  bool training = false;  // dropout-like layers act only in training
  Rng* rng = nullptr;     // randomness of training-time layers
  // Variable-length sequences: lengths[i] valid steps of sample i along the
  // first axis of the network's input (steps t >= lengths[i] are padding),
  // or null when every step is valid. A layer sees it only while every layer
  // before it keeps that axis (keeps_steps); backward gets forward's.
  const std::int64_t* lengths = nullptr;
  // Backward writes (=) the parameter gradients instead of adding to them:
  // the fit loop's first contribution to a fresh gradient, which saves
  // zeroing the gradient buffer and reading it back on every step. Layers
  // that write fresh gradients themselves say so (writes_fresh_gradients);
  // the stack zeroes every other layer's gradients first.
  bool fresh_gradients = false;
};

// Memory a layer receives for one call over n samples.
template <class T>
struct LayerBuffers {
  T* cache = nullptr;               // cache_size(n): filled by a training forward for backward; null otherwise
  std::int32_t* indices = nullptr;  // index_cache_size(n): integer cache (argmax, lengths), same lifetime
  T* scratch = nullptr;             // scratch_size(n): temporaries valid within one call, inference too
};

template <class T>
class LayerStack;

template <class T>
class Layer {
 public:
  virtual ~Layer() = default;

  virtual std::string kind() const = 0;
  virtual Shape input_shape() const = 0;
  virtual Shape output_shape() const = 0;

  // Parameter tensors in storage order; bind() receives their concatenation.
  virtual std::vector<ParamSpec> parameter_specs() const { return {}; }
  virtual void bind(T* /*params*/, T* /*grads*/) {}

  // Buffer tensors in storage order; bind_buffers() receives their concatenation.
  virtual std::vector<BufferSpec> buffer_specs() const { return {}; }
  virtual void bind_buffers(T* /*buffers*/) {}

  // Element counts of the buffers forward/backward receive, for n samples.
  virtual std::size_t cache_size(std::size_t /*n*/) const { return 0; }
  virtual std::size_t index_cache_size(std::size_t /*n*/) const { return 0; }
  virtual std::size_t scratch_size(std::size_t /*n*/) const { return 0; }

  // True when the output is the input's memory under another shape (Flatten,
  // Reshape): the network then gives the layer no output buffer and calls
  // neither forward nor backward; the gradient passes through untouched.
  virtual bool aliases_input() const { return false; }

  // x is (n, input_shape), y is (n, output_shape). A training forward may
  // update the layer's buffers (memory it was bound to, like parameters).
  virtual void forward(const T* x, T* y, const LayerBuffers<T>& buffers, std::size_t n,
                       const Pass& pass) const = 0;

  // Accumulates parameter gradients (+=) and writes dx (=) unless dx is null.
  // dy may be overwritten. A frozen layer (trainable() false) leaves its
  // parameter gradients alone but still returns dx.
  virtual void backward(const T* x, const T* y, const LayerBuffers<T>& buffers, T* dy, T* dx,
                        std::size_t n, const Pass& pass) = 0;
  // True when backward honours Pass::fresh_gradients (writes every parameter
  // gradient instead of adding to it). backward_sparse never does.
  virtual bool writes_fresh_gradients() const { return false; }

  // Sparse (CSR) input rows, for a first layer that reads them without
  // densifying them (Dense over 1-d samples). backward_sparse adds parameter
  // gradients only: nothing lies below a first layer.
  virtual bool accepts_sparse() const { return false; }
  virtual void forward_sparse(const CsrMatrix<T>& /*x*/, T* /*y*/, const LayerBuffers<T>& /*buffers*/,
                              const Pass& /*pass*/) const {
    throw std::invalid_argument("a " + kind() + " layer cannot read sparse input");
  }
  virtual void backward_sparse(const CsrMatrix<T>& /*x*/, const T* /*y*/, const LayerBuffers<T>& /*buffers*/,
                               T* /*dy*/, const Pass& /*pass*/) {
    throw std::invalid_argument("a " + kind() + " layer cannot read sparse input");
  }

  // The non-linearity this layer ends with. The network may take it over
  // (release_output_activation), after which the layer outputs the values
  // before it: that is how a final softmax is fused into cross-entropy
  // without any layer knowing about losses.
  virtual Activation output_activation() const { return Activation::identity; }
  virtual void release_output_activation() {}

  // Sequences (see Pass::lengths). keeps_steps: the output's first axis is
  // the input's, step for step, and padded input steps never reach valid
  // output steps (Dense over the last axis, element-wise layers, Embedding,
  // a recurrent layer returning sequences). uses_lengths: the layer reads
  // Pass::lengths (recurrent layers).
  virtual bool keeps_steps() const { return false; }
  virtual bool uses_lengths() const { return false; }

  // A layer whose input is data rather than values (Embedding's token ids)
  // must be a network's first layer; check_input validates n samples of
  // that data before anything runs, so bad input changes nothing.
  virtual bool reads_input_data() const { return false; }
  virtual void check_input(const T* /*x*/, std::size_t /*n*/) const {}

  // Called once the network has drawn the initial parameters (Embedding
  // zeroes its padding row there, as torch does).
  virtual void after_init() {}

  // The layers inside a container layer (Residual), for inspection.
  virtual const LayerStack<T>* children() const { return nullptr; }

  virtual void set_trainable(bool on) { trainable_ = on; }
  bool trainable() const { return trainable_; }

 private:
  bool trainable_ = true;
};

}  // namespace bpx
