// The mini-batch loop of one epoch, entirely in C++: seeded shuffle, batch
// gather, forward, loss, backward, update, running loss and accuracy. The
// caller is called back at most once every `every` batches.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "backpropx/network.hpp"
#include "backpropx/optimizers.hpp"
#include "backpropx/rng.hpp"

namespace bpx {

struct EpochStats {
  double loss = 0;  // mean over the epoch's samples
  double accuracy = std::numeric_limits<double>::quiet_NaN();
  std::size_t samples = 0;
  std::size_t batches = 0;
};

struct BatchProgress {
  std::size_t batch = 0;    // batches done in this epoch
  std::size_t batches = 0;  // batches in this epoch
  std::size_t samples = 0;  // samples done
  double loss = 0;          // running mean loss
};

template <class T>
class Trainer {
 public:
  Trainer(Network<T>& network, Optimizer<T>& optimizer, Loss loss, std::size_t batch_size,
          bool shuffle, std::uint64_t seed);

  // One pass over the n rows of X (n, in_features) and their targets.
  // Throws NonFiniteError, before applying that batch's update, when the loss
  // or a gradient is not finite; earlier batches' updates stay applied.
  EpochStats train_epoch(const T* X, Targets<T> y, std::size_t n,
                         const std::function<void(const BatchProgress&)>& on_batches = nullptr,
                         std::size_t every = 0);

  Rng& rng() { return rng_; }
  std::size_t batch_size() const { return batch_size_; }
  Loss loss() const { return loss_; }

 private:
  Network<T>& net_;
  Optimizer<T>& opt_;
  Loss loss_;
  std::size_t batch_size_;
  bool shuffle_;
  Rng rng_;
  Workspace<T> ws_;
  std::vector<T> batch_x_, batch_y_;
  std::vector<std::int64_t> batch_labels_;
  std::vector<std::uint64_t> order_;
};

}  // namespace bpx
