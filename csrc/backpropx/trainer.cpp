#include "backpropx/trainer.hpp"

#include "backpropx/objective.hpp"
#include "backpropx/reductions.hpp"
#include "backpropx/update.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>
#include <type_traits>

namespace bpx {

namespace {
// A seed for process `rank`'s dropout stream from the shared generator's
// state, which it does not advance (so a network without dropout draws the
// shuffles of a single process).
std::uint64_t stream_seed(const Rng::State& s, std::size_t rank) {
  std::uint64_t h = 0x9E3779B97F4A7C15ull * (static_cast<std::uint64_t>(rank) + 1);
  for (std::uint64_t w : s) h = (h ^ w) * 0xBF58476D1CE4E5B9ull + 0x94D049BB133111EBull;
  return h;
}
}  // namespace

template <class T>
void Trainer<T>::set_clipping(const Clipping& c) {
  require(c.clip_value >= 0 && std::isfinite(c.clip_value), "clip_grad_value must be a non-negative number");
  require(c.clip_norm >= 0 && std::isfinite(c.clip_norm), "clip_grad_norm must be a non-negative number");
  clip_ = c;
}

template <class T>
void Trainer<T>::set_l2(double alpha) {
  require(alpha >= 0 && std::isfinite(alpha), "the L2 penalty must be a non-negative number");
  l2_ = alpha;
}

template <class T>
void Trainer<T>::set_data_parallel(DataParallel<T> dp) {
  require(dp.size >= 1 && dp.rank < dp.size, "data-parallel rank " + std::to_string(dp.rank) +
                                                 " is not in [0, " + std::to_string(dp.size) + ")");
  dp_ = std::move(dp);
}

template <class T>
std::string Trainer<T>::non_finite_origin() const {
  // Parameters are finite after every update (an overflowing one is undone),
  // so non-finite ones were written from outside: through a view or a callback.
  for (std::size_t k = 0; k < net_.num_layers(); ++k) {
    const Segment s = net_.layer_segment(k);
    if (!all_finite(net_.params() + s.offset, s.size))
      return "the parameters of layer " + std::to_string(k) + " (" + net_.layer(k).kind() +
             "), which were not finite before this batch (written through a view?)";
  }
  if (ws_.capacity > 0)
    for (std::size_t k = 0; k < net_.num_layers(); ++k) {
      const std::size_t count = ws_.capacity * shape_size(net_.layer(k).output_shape());
      if (!all_finite(net_.layer_output(k, batch_x_.data(), ws_), count))
        return "the output of layer " + std::to_string(k) + " (" + net_.layer(k).kind() + ")";
    }
  for (std::size_t k = net_.num_layers(); k-- > 0;) {
    const Segment s = net_.layer_segment(k);
    if (!all_finite(net_.grads() + s.offset, s.size))
      return "the gradient of layer " + std::to_string(k) + " (" + net_.layer(k).kind() + ")";
  }
  return "the loss";
}

template <class T>
Trainer<T>::Trainer(Network<T>& network, Optimizer<T>& optimizer, Loss loss,
                    std::size_t batch_size, bool shuffle, std::uint64_t seed)
    : net_(network), opt_(optimizer), loss_(loss), batch_size_(batch_size), shuffle_(shuffle),
      rng_(seed) {
  require(batch_size_ >= 1, "batch_size must be at least 1, got " + std::to_string(batch_size_));
}

template <class T>
EpochStats Trainer<T>::train_epoch(Input<T> X, Targets<T> y, std::size_t n,
                                   const std::function<void(const BatchProgress&)>& on_batches,
                                   std::size_t every, const std::int64_t* lengths) {
  require(n > 0, "cannot train on an empty data set");
  if (!X.sparse) net_.check_input(X.dense, n);
  net_.check_lengths(lengths, n);
  const std::size_t bs = std::min(batch_size_, n);
  const bool shared = static_cast<bool>(dp_.reduce);
  const std::size_t rows = shared ? (bs + dp_.size - 1) / dp_.size : bs;  // most rows of a step
  // Buffers are sized once per size of data set, never inside the batch loop.
  if (ws_.capacity != rows) {
    ws_ = net_.make_workspace(rows, true);
    batch_y_.assign(checked_mul(rows, net_.out_features()), T(0));
    batch_labels_.assign(checked_mul(rows, net_.rows_per_sample()), 0);
    batch_w_.assign(rows, T(1));
    batch_lengths_.assign(rows, 0);
  }
  if (!X.sparse && batch_x_.size() != checked_mul(rows, net_.in_features()))
    batch_x_.assign(rows * net_.in_features(), T(0));
  if (X.sparse) {  // room for the fullest possible batch, so the loop never allocates
    const std::size_t most = max_nnz_of_rows(X.csr, rows);
    if (batch_indices_.size() < most) {
      batch_indices_.resize(most);
      batch_data_.resize(most);
    }
  }
  if (order_.size() != n) order_.resize(n);
  std::iota(order_.begin(), order_.end(), std::uint64_t{0});
  if (shuffle_) shuffle_indices(order_.data(), n, rng_);

  std::vector<Segment> segments;
  const std::size_t L = net_.num_layers();
  std::vector<double> norm_sum(L, 0.0);
  Pass pass;
  pass.training = true;
  pass.rng = &rng_;
  if (shared) {
    // Each process masks its own rows: a stream per process. Dropout cannot
    // draw a single process's bits without drawing every rank's rows.
    dropout_rng_ = Rng(stream_seed(rng_.state(), dp_.rank));
    pass.rng = &dropout_rng_;
  }
  bool drew = false;
  // The largest |p|, known from each step's own report until Python code
  // (a callback) may have written the parameters.
  double param_max = kUnknownBound;
  EpochStats stats;
  const std::size_t batches = (n + bs - 1) / bs;
  double loss_sum = 0, weight_total = 0, correct = 0, counted = 0;
  for (std::size_t b = 0; b < batches; ++b) {
    const std::size_t start = b * bs, m = std::min(bs, n - start);
    // Read per batch: a callback that freezes or unfreezes a layer acts at
    // the next batch, exactly as in manual mode.
    refresh_segments(segments);
    double batch_weight = 0, batch_rows = 0, value = 0;
    if (shared) {
      value = shared_batch_gradient(X, y, lengths, start, m, pass, batch_weight, batch_rows, correct, drew);
    } else {
      Input<T> batch_x(batch_x_.data());
      const Targets<T> target = gather_batch(X, y, lengths, start, m, &batch_x);
      pass.lengths = lengths ? batch_lengths_.data() : nullptr;
      const Targets<T> rows_of = net_.with_lengths(target, pass.lengths);
      batch_weight = weight_sum(rows_of, m * net_.rows_per_sample());
      batch_rows = count_rows(rows_of, m * net_.rows_per_sample());
      Pass fresh = pass;  // backward writes the gradient: no zeroing pass
      fresh.fresh_gradients = true;
      value = net_.forward_backward(batch_x, target, m, loss_, ws_, fresh, &correct);
    }
    counted += batch_rows;
    if (l2_ > 0 && batch_weight > 0) value += add_l2_penalty(net_, l2_, batch_weight);
    const double total_sq = gradient_squares();
    // Frozen layers' gradients are zero, so a finite sum of squares of the
    // trainable ones means every gradient is finite; only a non-finite sum
    // (float64 squares can overflow) needs a look at the elements.
    if (!std::isfinite(value) || (!std::isfinite(total_sq) && !all_finite(net_.grads(), net_.num_params())))
      throw NonFiniteError("non-finite " + std::string(std::isfinite(value) ? "gradient" : "loss") +
                           " at batch " + std::to_string(b + 1) + ", first seen in " +
                           non_finite_origin() + "; this batch's update was not applied");
    for (std::size_t k = 0; k < L; ++k) norm_sum[k] += std::sqrt(layer_sq_[k]);
    // sqrt of the sum of squares bounds every |g| (what the update's bound
    // needs), except that squares below DBL_MIN (|g| < 1.5e-154) may vanish.
    const double grad_max = std::max(std::sqrt(clip_gradients(segments, total_sq)), 1e-150);
    const bool last = b + 1 == batches;
    param_max = apply_update(net_, opt_, segments, grad_max, param_max, undo_, "batch " + std::to_string(b + 1),
                             last ? &update_sums_ : nullptr);
    if (last) stats.update_ratio = update_ratios(update_sums_);
    loss_sum += value * batch_weight;
    weight_total += batch_weight;
    stats.samples += m;
    stats.batches = b + 1;
    if (on_batches && every > 0 && ((b + 1) % every == 0 || b + 1 == batches)) {
      keep_param_bound_ = false;
      on_batches({b + 1, batches, stats.samples, weight_total > 0 ? loss_sum / weight_total : 0.0});
      if (!keep_param_bound_) param_max = kUnknownBound;  // the callback may have written the parameters
    }
  }
  if (drew) rng_.next_u64();  // so the next epoch's masks differ, on every process alike
  stats.loss = weight_total > 0 ? loss_sum / weight_total : 0.0;
  stats.grad_norm.assign(L, std::numeric_limits<double>::quiet_NaN());
  for (std::size_t k = 0; k < L; ++k)
    if (net_.layer_segment(k).size > 0 && net_.layer(k).trainable())
      stats.grad_norm[k] = norm_sum[k] / static_cast<double>(batches);
  if (loss_has_accuracy(loss_))
    stats.accuracy = counted > 0 ? correct / counted : 0.0;
  return stats;
}

template <class T>
void Trainer<T>::refresh_segments(std::vector<Segment>& segments) const {
  // In place, so the batch loop does not allocate once the vector has grown.
  segments.clear();
  for (std::size_t k = 0; k < net_.num_layers(); ++k) {
    const Segment seg = net_.layer_segment(k);
    if (net_.layer(k).trainable() && seg.size > 0) segments.push_back(seg);
  }
}

template <class T>
Targets<T> Trainer<T>::gather_batch(Input<T> X, Targets<T> y, const std::int64_t* lengths,
                                    std::size_t start, std::size_t m, Input<T>* batch) {
  // Per sample: IN input values (or a CSR row), OUT target values or R labels (one per loss row).
  const std::size_t IN = net_.in_features(), OUT = net_.out_features(), R = net_.rows_per_sample();
  if (X.sparse)
    *batch = gather_csr_rows(X.csr, order_.data() + start, m, batch_indptr_, batch_indices_, batch_data_);
  for (std::size_t r = 0; r < m; ++r) {
    const std::size_t src = order_[start + r];
    if (!X.sparse) std::memcpy(batch_x_.data() + r * IN, X.dense + src * IN, IN * sizeof(T));
    if (y.labels) std::memcpy(batch_labels_.data() + r * R, y.labels + src * R, R * sizeof(std::int64_t));
    else std::memcpy(batch_y_.data() + r * OUT, y.values + src * OUT, OUT * sizeof(T));
    if (y.weights) batch_w_[r] = y.weights[src];
    if (lengths) batch_lengths_[r] = lengths[src];
  }
  Targets<T> target;
  target.group = R;
  if (y.labels) target.labels = batch_labels_.data();
  else target.values = batch_y_.data();
  if (y.weights) target.weights = batch_w_.data();
  return target;
}

template <class T>
double Trainer<T>::shared_batch_gradient(Input<T> X, Targets<T> y, const std::int64_t* lengths,
                                         std::size_t start, std::size_t m, Pass pass,
                                         double& batch_weight, double& rows, double& correct,
                                         bool& drew) {
  // The whole batch's weight sum, as a single process sums it: each
  // sample's weight once per counted loss row, in order.
  const std::size_t R = net_.rows_per_sample();
  batch_weight = rows = 0;
  for (std::size_t r = start; r < start + m; ++r) {
    Targets<T> one;  // sample order_[r] alone, to tell its counted rows
    one.group = R;
    one = net_.with_lengths(one, lengths ? lengths + order_[r] : nullptr);
    const double w = y.weights ? static_cast<double>(y.weights[order_[r]]) : 1.0;
    for (std::size_t i = 0; i < R; ++i)
      if (row_counts(one, i)) {
        rows += 1;
        batch_weight += w;
      }
  }
  // This process's rows: [lo, hi) of the batch (none when m < size).
  const std::size_t lo = start + m * dp_.rank / dp_.size;
  const std::size_t hi = start + m * (dp_.rank + 1) / dp_.size;
  sums_ = StepSums{};
  const Rng::State before = dropout_rng_.state();
  if (hi <= lo) net_.zero_grad();  // no rows here: this process adds nothing to the sum
  if (hi > lo) {
    Input<T> batch_x(batch_x_.data());
    const Targets<T> target = gather_batch(X, y, lengths, lo, hi - lo, &batch_x);
    pass.lengths = lengths ? batch_lengths_.data() : nullptr;
    pass.fresh_gradients = true;
    sums_.loss = net_.forward_backward(batch_x, target, hi - lo, loss_, ws_, pass, &sums_.correct,
                                       batch_weight);
  }
  sums_.draws = dropout_rng_.state() != before ? 1.0 : 0.0;
  dp_.reduce(net_.grads(), net_.num_params(), sums_);
  correct += sums_.correct;
  drew = drew || sums_.draws > 0;
  return sums_.loss;
}

template <class T>
double Trainer<T>::gradient_squares() {
  // Per-layer squared L2 norms before clipping, each summed in a fixed order.
  layer_sq_.assign(net_.num_layers(), 0.0);
  double total_sq = 0;
  for (std::size_t k = 0; k < net_.num_layers(); ++k) {
    const Segment seg = net_.layer_segment(k);
    if (seg.size == 0 || !net_.layer(k).trainable()) continue;
    layer_sq_[k] = sum_squares(net_.grads() + seg.offset, seg.size);
    total_sq += layer_sq_[k];
  }
  return total_sq;
}

template <class T>
double Trainer<T>::clip_gradients(const std::vector<Segment>& segments, double total_sq) {
  if (clip_.clip_value > 0) {
    const T v = T(clip_.clip_value);
    total_sq = 0;
    for (const Segment& seg : segments)
      for (T *g = net_.grads() + seg.offset, *e = g + seg.size; g != e; ++g) {
        *g = std::min(std::max(*g, -v), v);
        total_sq += static_cast<double>(*g) * static_cast<double>(*g);
      }
  }
  if (clip_.clip_norm > 0) {
    const double coef = clip_.clip_norm / (std::sqrt(total_sq) + 1e-6);
    if (coef < 1.0) {
      for (const Segment& seg : segments)
        for (T *g = net_.grads() + seg.offset, *e = g + seg.size; g != e; ++g) *g *= T(coef);
      // |T(coef) g| <= T(coef) |g| up to rounding, which the update's margin covers
      total_sq *= static_cast<double>(T(coef)) * static_cast<double>(T(coef));
    }
  }
  return total_sq;
}

template <class T>
std::vector<double> Trainer<T>::update_ratios(const UpdateSums& sums) const {
  // sums holds one entry per trainable layer with parameters, in layer order.
  std::vector<double> out(net_.num_layers(), std::numeric_limits<double>::quiet_NaN());
  std::size_t s = 0;
  for (std::size_t k = 0; k < net_.num_layers(); ++k) {
    if (net_.layer_segment(k).size == 0 || !net_.layer(k).trainable()) continue;
    const double d2 = sums.delta_sq[s], w2 = sums.before_sq[s];
    ++s;
    out[k] = w2 > 0 ? std::sqrt(d2 / w2) : std::numeric_limits<double>::infinity();
  }
  return out;
}

template class Trainer<float>;
template class Trainer<double>;

}  // namespace bpx
