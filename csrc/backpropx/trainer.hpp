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
  double loss = 0;  // mean over the epoch's samples (weighted by sample weights)
  double accuracy = std::numeric_limits<double>::quiet_NaN();
  std::size_t samples = 0;
  std::size_t batches = 0;
  // Per layer (NaN for layers without trainable parameters): the L2 norm of
  // the layer's gradient before clipping, averaged over the epoch's batches,
  // and ||update|| / ||weights|| of the epoch's last step.
  std::vector<double> grad_norm, update_ratio;
};

// Gradient clipping before each update, as torch.nn.utils does: values are
// clamped to [-clip_value, clip_value], then all gradients are scaled by
// clip_norm / (total L2 norm + 1e-6) when that is below 1. 0 turns either off.
struct Clipping {
  double clip_value = 0;
  double clip_norm = 0;
};

struct BatchProgress {
  std::size_t batch = 0;    // batches done in this epoch
  std::size_t batches = 0;  // batches in this epoch
  std::size_t samples = 0;  // samples done
  double loss = 0;          // running mean loss
};

// One data-parallel step's values of this process, summed over all
// processes together with the gradients (see DataParallel).
struct StepSums {
  double loss = 0;     // this process's share of the global batch's mean loss
  double correct = 0;  // correct predictions among this process's rows
  double draws = 0;    // 1 when a layer drew random numbers (dropout) in this step
  // Zero from the trainer and ignored after the sum: the reducer's own flags
  // (e.g. "stop: a process was interrupted"), agreed on in the same collective.
  double reducer[2] = {0, 0};
};

// Data-parallel training as process `rank` of `size` (DESIGN.md, "Distributed
// training"). Every process holds the whole data set and draws the same
// shuffle; each global batch of batch_size rows is split into `size`
// contiguous parts, and this process computes the gradient of part `rank`,
// already divided by the whole batch's weight sum. `reduce` is called once
// per step, after backward and before anything looks at the gradients; it
// must replace the flat gradient buffer and the StepSums by their sums over
// all processes (an all-reduce), which makes them the one-process values of
// the global batch. The L2 penalty, the finiteness check, clipping, the update
// and every statistic then see only sums, so every process takes the same
// decisions and the same step. `reduce` may throw to stop all processes alike.
template <class T>
struct DataParallel {
  std::size_t rank = 0, size = 1;
  std::function<void(T* grads, std::size_t count, StepSums& sums)> reduce;
};

template <class T>
class Trainer {
 public:
  // Where non-finite values first appear after a failed batch: the first
  // layer whose output is non-finite, else the last layer whose gradient is.
  std::string non_finite_origin() const;

  Trainer(Network<T>& network, Optimizer<T>& optimizer, Loss loss, std::size_t batch_size,
          bool shuffle, std::uint64_t seed);

  // One pass over the n rows of X (n, in_features; dense or CSR) and their targets;
  // `lengths` (n,) as Pass::lengths (valid steps per sample), or null.
  // Throws NonFiniteError when the loss or a gradient is not finite (before
  // that batch's update) or the update makes a parameter non-finite (the
  // update is undone); earlier batches' updates stay applied. Batches are
  // numbered from 1 in messages and progress.
  EpochStats train_epoch(Input<T> X, Targets<T> y, std::size_t n,
                         const std::function<void(const BatchProgress&)>& on_batches = nullptr,
                         std::size_t every = 0, const std::int64_t* lengths = nullptr);
  // Each step knows the largest parameter from the step before, which spares
  // it a pass over them (update.hpp), until code outside the trainer may have
  // written them: after every on_batches call, the next step measures them
  // again, unless the callback calls this because it ran nothing that could
  // (a progress check that returned at once).
  void keep_parameter_bound() { keep_param_bound_ = true; }

  void set_clipping(const Clipping& c);
  // Data-parallel training from the next epoch on; a DataParallel without
  // `reduce` returns to single-process training.
  void set_data_parallel(DataParallel<T> dp);
  // L2 penalty on the tensors whose ParamSpec asks for it (weights, not
  // biases), as scikit-learn's MLP `alpha`: each batch adds
  // 0.5 * alpha * ||W||^2 / B to the loss and alpha * W / B to the weight
  // gradients, B the weight sum of the batch's loss rows (its row count
  // without weights), the denominator of its mean loss.
  void set_l2(double alpha);
  const Clipping& clipping() const { return clip_; }
  Rng& rng() { return rng_; }
  std::size_t batch_size() const { return batch_size_; }
  Loss loss() const { return loss_; }

 private:
  // The ranges of the layers trainable now (Network::trainable_segments, in place).
  void refresh_segments(std::vector<Segment>& segments) const;
  // Copies batch rows order_[start, start + m) into the batch buffers;
  // returns the batch's targets and sets *batch to its rows.
  Targets<T> gather_batch(Input<T> X, Targets<T> y, const std::int64_t* lengths, std::size_t start,
                          std::size_t m, Input<T>* batch);
  // Data-parallel: this process's part of batch [start, start + m), reduced
  // through dp_; returns the batch's mean loss and sets its weight sum and
  // counted rows (padded steps excluded).
  double shared_batch_gradient(Input<T> X, Targets<T> y, const std::int64_t* lengths, std::size_t start,
                               std::size_t m, Pass pass, double& batch_weight, double& rows,
                               double& correct, bool& drew);
  // Squared gradient norm of each trainable layer into layer_sq_; returns
  // their sum, which is not finite when a gradient is not (the one pass over
  // the gradients besides the update).
  double gradient_squares();
  // Clips in place; returns the squared global norm after clipping.
  double clip_gradients(const std::vector<Segment>& segments, double total_sq);
  // Per layer: |update| / |weights before it|, from the last step's sums.
  std::vector<double> update_ratios(const UpdateSums& sums) const;

  Network<T>& net_;
  Optimizer<T>& opt_;
  Loss loss_;
  std::size_t batch_size_;
  bool shuffle_;
  Rng rng_;
  Clipping clip_;
  double l2_ = 0;
  Workspace<T> ws_;
  std::vector<T> undo_;          // apply_update's copy for undoing an unbounded step
  std::vector<double> layer_sq_;  // gradient_squares' per-layer results
  UpdateSums update_sums_;
  bool keep_param_bound_ = false;
  std::vector<T> batch_x_, batch_y_, batch_w_;
  std::vector<std::int64_t> batch_labels_, batch_lengths_;
  std::vector<std::int64_t> batch_indptr_;  // CSR batches
  std::vector<std::int32_t> batch_indices_;
  std::vector<T> batch_data_;
  std::vector<std::uint64_t> order_;
  DataParallel<T> dp_;
  StepSums sums_;     // a member, so a reducer's view of it never dangles
  Rng dropout_rng_;   // data-parallel: this process's dropout stream
};

}  // namespace bpx
