// Losses with PyTorch's default (mean) reductions. Each returns the batch
// mean and writes its gradient with respect to the loss input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bpx {

#define BPX_LOSSES(X) \
  X(mse)              \
  X(cross_entropy)    \
  X(binary_cross_entropy)

enum class Loss {
#define BPX_ENUM_ENTRY(name) name,
  BPX_LOSSES(BPX_ENUM_ENTRY)
#undef BPX_ENUM_ENTRY
};

const char* loss_name(Loss l);
Loss loss_from_name(const std::string& name);
std::vector<std::string> loss_names();

// Targets of one batch: integer class labels (N,) for cross_entropy, or
// values (N, C) for every loss (probability rows for cross_entropy).
template <class T>
struct Targets {
  const T* values = nullptr;
  const std::int64_t* labels = nullptr;
};

// input is (N, C): the network output, or, for cross_entropy, the logits
// (the pre-softmax values when the last layer is softmax, else the output).
//   mse                   mean((x - t)^2) over N*C        dx = 2 (x - t) / (N C)
//   cross_entropy         mean_n(-sum_c t log softmax(x))  dx = (softmax(x) - t) / N
//   binary_cross_entropy  mean(-(t log p + (1-t) log(1-p))), logs clamped at
//                         -100 as torch does; dp = (p - t) / max(p (1-p), 1e-12f) / (N C)
// dinput may be null (loss only). Returns the mean loss, summed in double.
template <class T>
double loss_forward_backward(Loss loss, const T* input, Targets<T> targets, std::size_t N,
                             std::size_t C, T* dinput);

// Correct predictions in the batch: argmax match for cross_entropy, the
// fraction of matching 0.5-thresholded outputs per sample for
// binary_cross_entropy. mse has no accuracy (returns NaN).
template <class T>
double count_correct(Loss loss, const T* input, Targets<T> targets, std::size_t N,
                     std::size_t C);

bool loss_has_accuracy(Loss loss);

}  // namespace bpx
