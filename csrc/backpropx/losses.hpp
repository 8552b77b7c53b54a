// Losses with PyTorch's default (mean) reductions. Each returns the batch
// mean and writes its gradient with respect to the loss input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bpx {

#define BPX_LOSSES(X)     \
  X(mse)                  \
  X(cross_entropy)        \
  X(binary_cross_entropy) \
  X(poisson)

enum class Loss {
#define BPX_ENUM_ENTRY(name) name,
  BPX_LOSSES(BPX_ENUM_ENTRY)
#undef BPX_ENUM_ENTRY
};

const char* loss_name(Loss l);
Loss loss_from_name(const std::string& name);
std::vector<std::string> loss_names();

// Targets of one batch of N loss rows: integer class labels (N,) for
// cross_entropy, or values (N, C) for every loss (probability rows for
// cross_entropy), and optional per-sample weights, one for each `group`
// consecutive rows (a sample of shape (T, C) has T rows).
// With `lengths` (one per sample), the `group` rows of a sample cover
// `steps` time steps (group / steps rows each), and the rows of steps
// t >= lengths[sample] are padding: no loss, zero gradient, not counted.
template <class T>
struct Targets {
  const T* values = nullptr;
  const std::int64_t* labels = nullptr;
  const T* weights = nullptr;
  std::size_t group = 1;
  const std::int64_t* lengths = nullptr;
  std::size_t steps = 1;
};

// Whether row r counts (false for the rows of padded steps).
template <class T>
inline bool row_counts(const Targets<T>& tg, std::size_t r) {
  if (tg.lengths == nullptr) return true;
  const std::size_t step = (r % tg.group) / (tg.group / tg.steps);
  return static_cast<long long>(step) < tg.lengths[r / tg.group];
}

// Sum of the N rows' weights (the number of counted rows without weights).
template <class T>
double weight_sum(Targets<T> targets, std::size_t N);

// The number of counted rows among N.
template <class T>
double count_rows(Targets<T> targets, std::size_t N);

// input is (N, C): the network output, or, for cross_entropy, the logits
// (the pre-softmax values when the last layer is softmax, else the output).
// Per-sample losses l_n:
//   mse                   mean_c (x - t)^2
//   cross_entropy         -sum_c t log softmax(x)       (t one-hot for labels; rows of t
//                         need not sum to 1: gradient softmax(x) sum_c t - t)
//   binary_cross_entropy  mean_c -(t log p + (1-t) log(1-p)), logs clamped at
//                         -100 and p (1-p) floored at 1e-12f in the gradient, as torch does
//   poisson               mean_c exp(x) - t x + xlogy(t, t) - t, x the log-rate (mu = exp(x)):
//                         half the Poisson deviance of mu, as scikit-learn's MLPRegressor(loss=
//                         "poisson") with its exp output; d/dx = exp(x) - t, the gradient of
//                         torch.nn.PoissonNLLLoss(log_input=True), whose value lacks the
//                         constant xlogy(t, t) - t (which makes a perfect fit score 0). t >= 0.
// Returns sum_n w_n l_n (w_n = 1 without weights) and writes
// dinput = grad_scale * d(sum_n w_n l_n) / dinput unless dinput is null;
// grad_scale = 1 / weight_sum gives the gradient of the (weighted) mean,
// PyTorch's default reduction. Sums are in double.
template <class T>
double loss_forward_backward(Loss loss, const T* input, Targets<T> targets, std::size_t N,
                             std::size_t C, T* dinput, double grad_scale);

// Correct predictions in the batch: argmax match for cross_entropy, the
// fraction of matching 0.5-thresholded outputs per sample for
// binary_cross_entropy. mse and poisson have no accuracy (return NaN).
template <class T>
double count_correct(Loss loss, const T* input, Targets<T> targets, std::size_t N,
                     std::size_t C);

bool loss_has_accuracy(Loss loss);

}  // namespace bpx
