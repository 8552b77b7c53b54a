// Normalisation loops (Ioffe & Szegedy 2015; Ba et al. 2016). Statistics are
// summed in double, in a fixed order, so results do not depend on threads.
//
// A batch-norm channel is n runs of S values, `stride` apart (the channel's
// plane in each of n samples). A layer-norm row is D contiguous values.
#pragma once

#include <cstddef>

namespace bpx::kernels {

// Mean and biased variance (two passes) of one channel.
template <class T>
void channel_moments(const T* x, std::size_t n, std::size_t S, std::size_t stride, double& mean,
                     double& var);

// y = (x - mean) * (rstd * gamma) + beta over one channel.
template <class T>
void channel_normalize(const T* x, T* y, std::size_t n, std::size_t S, std::size_t stride, T mean,
                       T rstd, T gamma, T beta);

// forward: xhat = (x - mean) * rstd, y = gamma * xhat + beta, over one channel.
// dgamma += sum dy * xhat, dbeta += sum dy (when not null). When dx is not
// null: with batch statistics (mean and rstd computed from this x)
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = gamma * dy;
// with fixed (running) statistics, dx = g * rstd.
template <class T>
void channel_backward(const T* x, const T* dy, T* dx, std::size_t n, std::size_t S, std::size_t stride,
                      T mean, T rstd, T gamma, bool batch_statistics, T* dgamma, T* dbeta);

// Per row of D values: mean, rstd = 1 / sqrt(var + eps) (biased variance);
// y = (x - mean) * rstd * w + b (w, b of D values, or null: 1 and 0).
template <class T>
void layer_norm_rows(const T* x, T* y, std::size_t rows, std::size_t D, const T* w, const T* b, double eps,
                     T* mean, T* rstd);

// forward as above; dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = w * dy, per row.
template <class T>
void layer_norm_rows_backward(const T* x, const T* dy, T* dx, std::size_t rows, std::size_t D, const T* w,
                              const T* mean, const T* rstd);

// dw[j] += sum over rows of dy * xhat, db[j] += sum of dy, for columns [j0, j1); either may be null.
template <class T>
void layer_norm_param_grads(const T* x, const T* dy, std::size_t rows, std::size_t D, const T* mean,
                            const T* rstd, T* dw, T* db, std::size_t j0, std::size_t j1);

}  // namespace bpx::kernels
