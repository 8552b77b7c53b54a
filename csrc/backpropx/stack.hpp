// A sequence of layers run forward and backward over caller-owned memory.
// The Network is a stack plus parameters and a loss; Residual is a stack
// plus a skip connection: both run their layers through this one code path.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backpropx/layer.hpp"

namespace bpx {

// A contiguous range of the flat buffers.
struct Segment {
  std::size_t offset = 0;
  std::size_t size = 0;
};

template <class T>
class LayerStack {
 public:
  LayerStack() = default;
  // Checks that each layer's input shape is the previous one's output shape.
  LayerStack(std::vector<std::unique_ptr<Layer<T>>> layers, Shape input);

  std::size_t size() const { return layers_.size(); }
  Layer<T>& layer(std::size_t k) { return *layers_.at(k); }
  const Layer<T>& layer(std::size_t k) const { return *layers_.at(k); }
  const Shape& input_shape() const { return input_; }
  const Shape& output_shape() const { return output_; }

  // Every layer's parameter specs with the layer index, and each layer's
  // range of the stack's parameters (offsets from the stack's start).
  std::size_t num_params() const { return num_params_; }
  Segment segment(std::size_t k) const { return segments_.at(k); }
  void bind(T* params, T* grads);
  void after_init();  // every layer's after_init, once the parameters are drawn

  // Sequences (Pass::lengths): the stack keeps the steps of its input's
  // first axis when all its layers do; it uses lengths when a layer that
  // receives step-aligned input reads them. lengths_error() names a layer
  // that would need lengths but receives input whose steps were mixed (a
  // recurrent layer after Flatten), or is empty.
  bool keeps_steps() const { return aligned_ == layers_.size() && all_keep_; }
  bool uses_lengths() const { return uses_lengths_; }
  const std::string& lengths_error() const { return lengths_error_; }

  // The same for buffer tensors (Layer::buffer_specs), in their own flat store.
  std::size_t num_buffers() const { return num_buffers_; }
  Segment buffer_segment(std::size_t k) const { return buffer_segments_.at(k); }
  void bind_buffers(T* buffers);

  // Element counts of the memory one pass over up to n samples needs.
  struct Sizes {
    std::size_t acts = 0;     // layer outputs (none for aliasing layers)
    std::size_t caches = 0;   // kept for backward (training)
    std::size_t indices = 0;  // integer caches (training)
    std::size_t scratch = 0;  // the largest layer scratch (shared: valid within one call)
    std::size_t deltas = 0;   // two gradient buffers of the widest layer (training)
  };
  Sizes sizes(std::size_t n, bool training) const;

  // Pointers into caller memory for a capacity of n samples.
  struct View {
    std::vector<T*> act;  // act[k]: output of layer k, null when it aliases its input
    std::vector<LayerBuffers<T>> buffers;
    T* delta_a = nullptr;
    T* delta_b = nullptr;
  };
  View carve(std::size_t n, bool training, T* acts, T* caches, std::int32_t* indices, T* scratch,
             T* deltas) const;

  // Where layer k's output lives after forward(x): its buffer, or for an
  // aliasing layer the memory of the layer before (x for the first).
  const T* output_of(std::size_t k, const T* x, const View& v) const;

  // Runs n samples of x through every layer; returns the last output. x
  // may be CSR rows when the first layer accepts_sparse().
  const T* forward(Input<T> x, std::size_t n, const View& v, const Pass& pass) const;

  // Backward from dy (n, output; overwritten) through layers k >= lowest,
  // after forward(x) with the same view. Writes dx (n, input) unless null
  // (it must be null for sparse x).
  void backward(Input<T> x, T* dy, T* dx, std::size_t n, const View& v, const Pass& pass,
                std::size_t lowest = 0);

 private:
  std::vector<std::unique_ptr<Layer<T>>> layers_;
  Shape input_, output_;
  std::vector<Segment> segments_;
  std::size_t num_params_ = 0;
  T* grads_ = nullptr;  // the gradients bind() received (for Pass::fresh_gradients)
  std::vector<Segment> buffer_segments_;
  std::size_t num_buffers_ = 0;
  std::size_t widest_ = 0;  // largest per-sample size among the input and non-aliasing outputs
  std::size_t aligned_ = 0;  // layers [0, aligned_) receive step-aligned input and Pass::lengths
  bool all_keep_ = true;
  bool uses_lengths_ = false;
  std::string lengths_error_;
};

}  // namespace bpx
