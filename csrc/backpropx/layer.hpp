// The layer interface. A layer sees per-sample shapes (so N-d layers such as
// convolutions fit), owns no parameter memory (it is bound to slices of the
// network's flat buffers), and keeps no per-call state: what forward saves
// for backward lives in a caller-owned cache, so several threads may run
// inference on one network at once.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "backpropx/activations.hpp"
#include "backpropx/common.hpp"
#include "backpropx/rng.hpp"

namespace bpx {

struct ParamSpec {
  std::string name;  // "weight", "bias"
  Shape shape;
};

// How a forward/backward call runs.
struct Pass {
  bool training = false;  // dropout-like layers act only in training
  Rng* rng = nullptr;     // randomness of training-time layers
  // Backward only: dy already holds the gradient with respect to the
  // pre-activation (softmax fused into cross-entropy).
  bool dy_is_preactivation = false;
};

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
  virtual void initialize(Rng& /*rng*/) {}

  // Elements of cache that forward(training) fills for backward, for n samples.
  virtual std::size_t cache_size(std::size_t /*n*/) const { return 0; }

  // x is (n, input), y is (n, output). cache is null outside training.
  virtual void forward(const T* x, T* y, T* cache, std::size_t n, const Pass& pass) const = 0;

  // Accumulates parameter gradients (+=) and writes dx (=) unless dx is null.
  // dy may be overwritten. Frozen layers (trainable == false) skip their
  // parameter gradients.
  virtual void backward(const T* x, const T* y, const T* cache, T* dy, T* dx, std::size_t n,
                        const Pass& pass) = 0;

  // The output non-linearity, and the values before it (for fusing
  // softmax into cross-entropy).
  virtual Activation activation() const { return Activation::identity; }
  virtual const T* preactivation(const T* y, const T* /*cache*/) const { return y; }

  bool trainable = true;
};

}  // namespace bpx
