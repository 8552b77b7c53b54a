#include "backpropx/losses.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "backpropx/common.hpp"

namespace bpx {

const char* loss_name(Loss l) {
  switch (l) {
#define BPX_NAME_CASE(name) \
  case Loss::name:          \
    return #name;
    BPX_LOSSES(BPX_NAME_CASE)
#undef BPX_NAME_CASE
  }
  return "unknown";
}

std::vector<std::string> loss_names() {
  return {
#define BPX_NAME_ENTRY(name) #name,
      BPX_LOSSES(BPX_NAME_ENTRY)
#undef BPX_NAME_ENTRY
  };
}

Loss loss_from_name(const std::string& name) {
#define BPX_FROM_NAME(n) \
  if (name == #n) return Loss::n;
  BPX_LOSSES(BPX_FROM_NAME)
#undef BPX_FROM_NAME
  throw unknown_name("loss", name, loss_names());
}

bool loss_has_accuracy(Loss loss) { return loss != Loss::mse && loss != Loss::poisson; }

namespace {

template <class T>
T row_weight(const Targets<T>& tg, std::size_t r) {
  return tg.weights ? tg.weights[r / tg.group] : T(1);
}

// The loop the element-wise losses share: a padded row gets no loss and a
// zero gradient; otherwise element(i, g) adds value i's loss (and writes its
// gradient with g = grad_factor / C * row weight), and the row's mean enters
// the sum weighted.
template <class T, class Element>
double mean_of_elements(const Targets<T>& tg, std::size_t N, std::size_t C, T* d, double grad_factor,
                        Element element) {
  double sum = 0;
  for (std::size_t r = 0; r < N; ++r) {
    if (!row_counts(tg, r)) {
      if (d) std::fill(d + r * C, d + (r + 1) * C, T(0));
      continue;
    }
    const T g = static_cast<T>(grad_factor / static_cast<double>(C)) * row_weight(tg, r);
    double row = 0;
    for (std::size_t j = 0; j < C; ++j) row += element(r * C + j, g);
    sum += static_cast<double>(row_weight(tg, r)) * row / static_cast<double>(C);
  }
  return sum;
}

template <class T>
double mse(const T* x, Targets<T> tg, std::size_t N, std::size_t C, T* dx, double scale) {
  const T* t = tg.values;
  return mean_of_elements(tg, N, C, dx, 2.0 * scale, [&](std::size_t i, T g) {
    const T d = x[i] - t[i];
    if (dx) dx[i] = g * d;
    return static_cast<double>(d) * static_cast<double>(d);
  });
}

template <class T>
double cross_entropy(const T* z, Targets<T> tg, std::size_t N, std::size_t C, T* dz, double scale) {
  double sum = 0;
  for (std::size_t r = 0; r < N; ++r) {
    if (!row_counts(tg, r)) {
      if (dz) std::fill(dz + r * C, dz + (r + 1) * C, T(0));
      continue;
    }
    const T* zr = z + r * C;
    const T m = *std::max_element(zr, zr + C);
    T s = 0;
    for (std::size_t j = 0; j < C; ++j) s += std::exp(zr[j] - m);
    const T lse = m + std::log(s);  // log-sum-exp, never overflows
    double row = 0;
    if (tg.labels) {
      row = static_cast<double>(lse - zr[tg.labels[r]]);
    } else {
      const T* tr = tg.values + r * C;
      for (std::size_t j = 0; j < C; ++j)
        if (tr[j] != T(0)) row += static_cast<double>(tr[j]) * static_cast<double>(lse - zr[j]);
    }
    sum += static_cast<double>(row_weight(tg, r)) * row;
    if (dz) {
      // d/dz_j of -sum_c t_c log softmax(z)_c = p_j * sum_c t_c - t_j: rows
      // of probability targets need not sum to 1 (label smoothing, partial
      // or zero rows), so the sum is taken, not assumed.
      const T g = static_cast<T>(scale) * row_weight(tg, r);
      T* dr = dz + r * C;
      double sum_t = 1;
      if (!tg.labels) {
        sum_t = 0;
        for (std::size_t j = 0; j < C; ++j) sum_t += static_cast<double>(tg.values[r * C + j]);
      }
      const T mass = static_cast<T>(sum_t);
      for (std::size_t j = 0; j < C; ++j) {
        const T p = std::exp(zr[j] - lse);
        const T t = tg.labels ? (static_cast<std::size_t>(tg.labels[r]) == j ? T(1) : T(0))
                              : tg.values[r * C + j];
        dr[j] = (p * mass - t) * g;
      }
    }
  }
  return sum;
}

template <class T>
double binary_cross_entropy(const T* p, Targets<T> tg, std::size_t N, std::size_t C, T* dp,
                            double scale) {
  const T* t = tg.values;
  return mean_of_elements(tg, N, C, dp, scale, [&](std::size_t i, T g) {
    const T log_p = std::max(std::log(p[i]), T(-100));
    const T log_1mp = std::max(std::log1p(-p[i]), T(-100));
    if (dp) dp[i] = (p[i] - t[i]) / std::max((T(1) - p[i]) * p[i], T(1e-12f)) * g;
    return -static_cast<double>(t[i] * log_p + (T(1) - t[i]) * log_1mp);
  });
}

template <class T>
double poisson(const T* x, Targets<T> tg, std::size_t N, std::size_t C, T* dx, double scale) {
  const T* t = tg.values;
  return mean_of_elements(tg, N, C, dx, scale, [&](std::size_t i, T g) {
    const double xi = static_cast<double>(x[i]), ti = static_cast<double>(t[i]);
    if (dx) dx[i] = (std::exp(x[i]) - t[i]) * g;
    // exp(x) - t x + xlogy(t, t) - t, with xlogy(0, 0) = 0
    return std::exp(xi) - ti * xi + (ti > 0 ? ti * std::log(ti) : 0.0) - ti;
  });
}

template <class T>
std::size_t argmax(const T* row, std::size_t C) {
  return static_cast<std::size_t>(std::max_element(row, row + C) - row);
}

}  // namespace

template <class T>
double weight_sum(Targets<T> tg, std::size_t N) {
  if (!tg.weights) return count_rows(tg, N);
  double sum = 0;
  for (std::size_t r = 0; r < N; ++r)
    if (row_counts(tg, r)) sum += static_cast<double>(tg.weights[r / tg.group]);
  return sum;
}

template <class T>
double count_rows(Targets<T> tg, std::size_t N) {
  if (!tg.lengths) return static_cast<double>(N);
  double rows = 0;
  for (std::size_t r = 0; r < N; ++r) rows += row_counts(tg, r) ? 1.0 : 0.0;
  return rows;
}

template <class T>
double loss_forward_backward(Loss loss, const T* input, Targets<T> tg, std::size_t N,
                             std::size_t C, T* dinput, double grad_scale) {
  if (N == 0) return 0.0;
  switch (loss) {
    case Loss::mse:
      return mse(input, tg, N, C, dinput, grad_scale);
    case Loss::cross_entropy:
      if (tg.labels)
        for (std::size_t r = 0; r < N; ++r)
          if (row_counts(tg, r) && (tg.labels[r] < 0 || static_cast<std::size_t>(tg.labels[r]) >= C))
            throw std::invalid_argument("label " + std::to_string(tg.labels[r]) + " at row " +
                                        std::to_string(r) + " is outside [0, " +
                                        std::to_string(C) + ")");
      return cross_entropy(input, tg, N, C, dinput, grad_scale);
    case Loss::binary_cross_entropy:
      return binary_cross_entropy(input, tg, N, C, dinput, grad_scale);
    case Loss::poisson:
      return poisson(input, tg, N, C, dinput, grad_scale);
  }
  return std::numeric_limits<double>::quiet_NaN();
}

template <class T>
double count_correct(Loss loss, const T* input, Targets<T> tg, std::size_t N, std::size_t C) {
  double correct = 0;
  switch (loss) {
    case Loss::mse:
    case Loss::poisson:
      return std::numeric_limits<double>::quiet_NaN();
    case Loss::cross_entropy:
      for (std::size_t r = 0; r < N; ++r) {
        if (!row_counts(tg, r)) continue;
        const std::size_t want = tg.labels ? static_cast<std::size_t>(tg.labels[r])
                                           : argmax(tg.values + r * C, C);
        correct += argmax(input + r * C, C) == want ? 1.0 : 0.0;
      }
      return correct;
    case Loss::binary_cross_entropy:
      for (std::size_t r = 0; r < N; ++r) {
        if (!row_counts(tg, r)) continue;
        std::size_t hits = 0;
        for (std::size_t j = 0; j < C; ++j)
          hits += (input[r * C + j] > T(0.5)) == (tg.values[r * C + j] > T(0.5));
        correct += static_cast<double>(hits) / static_cast<double>(C);
      }
      return correct;
  }
  return correct;
}

template double weight_sum<float>(Targets<float>, std::size_t);
template double weight_sum<double>(Targets<double>, std::size_t);
template double count_rows<float>(Targets<float>, std::size_t);
template double count_rows<double>(Targets<double>, std::size_t);
template double loss_forward_backward<float>(Loss, const float*, Targets<float>, std::size_t,
                                             std::size_t, float*, double);
template double loss_forward_backward<double>(Loss, const double*, Targets<double>, std::size_t,
                                              std::size_t, double*, double);
template double count_correct<float>(Loss, const float*, Targets<float>, std::size_t,
                                     std::size_t);
template double count_correct<double>(Loss, const double*, Targets<double>, std::size_t,
                                      std::size_t);

}  // namespace bpx
