#include "kernels/norm.hpp"

#include <cmath>

namespace bpx::kernels {

template <class T>
void channel_moments(const T* x, std::size_t n, std::size_t S, std::size_t stride, double& mean,
                     double& var) {
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t s = 0; s < S; ++s) sum += static_cast<double>(x[i * stride + s]);
  const double count = static_cast<double>(n * S);
  mean = sum / count;
  double sq = 0;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t s = 0; s < S; ++s) {
      const double d = static_cast<double>(x[i * stride + s]) - mean;
      sq += d * d;
    }
  var = sq / count;
}

template <class T>
void channel_normalize(const T* x, T* y, std::size_t n, std::size_t S, std::size_t stride, T mean,
                       T rstd, T gamma, T beta) {
  const T scale = rstd * gamma;
  for (std::size_t i = 0; i < n; ++i) {
    const T* xi = x + i * stride;
    T* yi = y + i * stride;
    for (std::size_t s = 0; s < S; ++s) yi[s] = (xi[s] - mean) * scale + beta;
  }
}

template <class T>
void channel_backward(const T* x, const T* dy, T* dx, std::size_t n, std::size_t S, std::size_t stride,
                      T mean, T rstd, T gamma, bool batch_statistics, T* dgamma, T* dbeta) {
  double sum_dy = 0, sum_dy_xhat = 0;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t s = 0; s < S; ++s) {
      const double d = static_cast<double>(dy[i * stride + s]);
      sum_dy += d;
      sum_dy_xhat += d * static_cast<double>((x[i * stride + s] - mean) * rstd);
    }
  if (dgamma) *dgamma += static_cast<T>(sum_dy_xhat);
  if (dbeta) *dbeta += static_cast<T>(sum_dy);
  if (dx == nullptr) return;
  const T g_rstd = gamma * rstd;
  if (!batch_statistics) {
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t s = 0; s < S; ++s) dx[i * stride + s] = dy[i * stride + s] * g_rstd;
    return;
  }
  // mean(g) = gamma * sum_dy / count, mean(g * xhat) = gamma * sum_dy_xhat / count
  const double count = static_cast<double>(n * S);
  const T mean_dy = static_cast<T>(sum_dy / count), mean_dy_xhat = static_cast<T>(sum_dy_xhat / count);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t s = 0; s < S; ++s) {
      const T xhat = (x[i * stride + s] - mean) * rstd;
      dx[i * stride + s] = g_rstd * (dy[i * stride + s] - mean_dy - xhat * mean_dy_xhat);
    }
}

template <class T>
void layer_norm_rows(const T* x, T* y, std::size_t rows, std::size_t D, const T* w, const T* b, double eps,
                     T* mean, T* rstd) {
  for (std::size_t r = 0; r < rows; ++r) {
    const T* xr = x + r * D;
    T* yr = y + r * D;
    double m = 0, v = 0;
    channel_moments(xr, 1, D, D, m, v);
    const T mu = static_cast<T>(m), rs = static_cast<T>(1.0 / std::sqrt(v + eps));
    for (std::size_t j = 0; j < D; ++j) {
      const T xhat = (xr[j] - mu) * rs;
      yr[j] = w ? (b ? xhat * w[j] + b[j] : xhat * w[j]) : xhat;
    }
    if (mean) mean[r] = mu;
    if (rstd) rstd[r] = rs;
  }
}

template <class T>
void layer_norm_rows_backward(const T* x, const T* dy, T* dx, std::size_t rows, std::size_t D, const T* w,
                              const T* mean, const T* rstd) {
  for (std::size_t r = 0; r < rows; ++r) {
    const T* xr = x + r * D;
    const T* dr = dy + r * D;
    T* out = dx + r * D;
    double sum_g = 0, sum_g_xhat = 0;
    for (std::size_t j = 0; j < D; ++j) {
      const double g = static_cast<double>(w ? dr[j] * w[j] : dr[j]);
      sum_g += g;
      sum_g_xhat += g * static_cast<double>((xr[j] - mean[r]) * rstd[r]);
    }
    const T mg = static_cast<T>(sum_g / static_cast<double>(D));
    const T mgx = static_cast<T>(sum_g_xhat / static_cast<double>(D));
    for (std::size_t j = 0; j < D; ++j) {
      const T xhat = (xr[j] - mean[r]) * rstd[r];
      const T g = w ? dr[j] * w[j] : dr[j];
      out[j] = rstd[r] * (g - mg - xhat * mgx);
    }
  }
}

template <class T>
void layer_norm_param_grads(const T* x, const T* dy, std::size_t rows, std::size_t D, const T* mean,
                            const T* rstd, T* dw, T* db, std::size_t j0, std::size_t j1) {
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = j0; j < j1; ++j) {
      const T d = dy[r * D + j];
      if (dw) dw[j] += d * ((x[r * D + j] - mean[r]) * rstd[r]);
      if (db) db[j] += d;
    }
}

#define BPX_INSTANTIATE(T)                                                                                   \
  template void channel_moments<T>(const T*, std::size_t, std::size_t, std::size_t, double&, double&);       \
  template void channel_normalize<T>(const T*, T*, std::size_t, std::size_t, std::size_t, T, T, T, T);       \
  template void channel_backward<T>(const T*, const T*, T*, std::size_t, std::size_t, std::size_t, T, T, T, \
                                    bool, T*, T*);                                                           \
  template void layer_norm_rows<T>(const T*, T*, std::size_t, std::size_t, const T*, const T*, double, T*,  \
                                   T*);                                                                      \
  template void layer_norm_rows_backward<T>(const T*, const T*, T*, std::size_t, std::size_t, const T*,     \
                                            const T*, const T*);                                             \
  template void layer_norm_param_grads<T>(const T*, const T*, std::size_t, std::size_t, const T*, const T*, \
                                          T*, T*, std::size_t, std::size_t);
BPX_INSTANTIATE(float)
BPX_INSTANTIATE(double)
#undef BPX_INSTANTIATE

}  // namespace bpx::kernels
