#include "backpropx/trainer.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace bpx {

namespace {
template <class T>
bool all_finite(const T* p, std::size_t n) {
  T acc = 0;
  for (std::size_t i = 0; i < n; ++i) acc += p[i] * T(0);  // NaN or inf turn this into NaN
  return acc == T(0);
}
}  // namespace

template <class T>
Trainer<T>::Trainer(Network<T>& network, Optimizer<T>& optimizer, Loss loss,
                    std::size_t batch_size, bool shuffle, std::uint64_t seed)
    : net_(network), opt_(optimizer), loss_(loss), batch_size_(batch_size), shuffle_(shuffle),
      rng_(seed) {
  require(batch_size_ >= 1, "batch_size must be at least 1, got " + std::to_string(batch_size_));
}

template <class T>
EpochStats Trainer<T>::train_epoch(const T* X, Targets<T> y, std::size_t n,
                                   const std::function<void(const BatchProgress&)>& on_batches,
                                   std::size_t every) {
  require(n > 0, "cannot train on an empty data set");
  const std::size_t IN = net_.in_features(), C = net_.out_features();
  const std::size_t bs = std::min(batch_size_, n);
  // Buffers are sized once per size of data set, never inside the batch loop.
  if (ws_.capacity != bs) {
    ws_ = net_.make_workspace(bs, true);
    batch_x_.assign(checked_mul(bs, IN), T(0));
    batch_y_.assign(checked_mul(bs, C), T(0));
    batch_labels_.assign(bs, 0);
  }
  if (order_.size() != n) order_.resize(n);
  std::iota(order_.begin(), order_.end(), std::uint64_t{0});
  if (shuffle_) shuffle_indices(order_.data(), n, rng_);

  const std::vector<Segment> segments = net_.trainable_segments();
  Pass pass;
  pass.training = true;
  pass.rng = &rng_;
  EpochStats stats;
  const std::size_t batches = (n + bs - 1) / bs;
  double loss_sum = 0, correct = 0;
  for (std::size_t b = 0; b < batches; ++b) {
    const std::size_t start = b * bs, m = std::min(bs, n - start);
    for (std::size_t r = 0; r < m; ++r) {
      const std::size_t src = order_[start + r];
      std::memcpy(batch_x_.data() + r * IN, X + src * IN, IN * sizeof(T));
      if (y.labels) batch_labels_[r] = y.labels[src];
      else std::memcpy(batch_y_.data() + r * C, y.values + src * C, C * sizeof(T));
    }
    Targets<T> target;
    if (y.labels) target.labels = batch_labels_.data();
    else target.values = batch_y_.data();

    net_.zero_grad();
    const double value = net_.forward_backward(batch_x_.data(), target, m, loss_, ws_, pass, &correct);
    if (!std::isfinite(value) || !all_finite(net_.grads(), net_.num_params()))
      throw NonFiniteError((std::isfinite(value) ? "gradient" : "loss") +
                           std::string(" became non-finite at batch ") + std::to_string(b) +
                           " (loss " + std::to_string(value) +
                           "); the update of this batch was not applied");
    opt_.step(net_.params(), net_.grads(), segments);
    loss_sum += value * static_cast<double>(m);
    stats.samples += m;
    stats.batches = b + 1;
    if (on_batches && every > 0 && ((b + 1) % every == 0 || b + 1 == batches))
      on_batches({b + 1, batches, stats.samples, loss_sum / static_cast<double>(stats.samples)});
  }
  stats.loss = loss_sum / static_cast<double>(stats.samples);
  if (loss_has_accuracy(loss_)) stats.accuracy = correct / static_cast<double>(stats.samples);
  return stats;
}

template class Trainer<float>;
template class Trainer<double>;

}  // namespace bpx
