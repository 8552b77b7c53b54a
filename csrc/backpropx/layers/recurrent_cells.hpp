// The cells of the recurrent layers: one time step of SimpleRNN, GRU and
// LSTM over a range of rows, forward and backward, with PyTorch's equations
// and gate orders. The time loop, the products and the memory live in
// recurrent.cpp; these are the element-wise parts between the products.
//
// Per step t and row (sample) i, with xp = x_t W_ih^T (no bias), hp = h W_hh^T
// (no bias) and H the hidden size:
//   SimpleRNN  h' = f(xp + b_ih + hp + b_hh), f = tanh or relu
//   GRU        r = s(xp_r + b_ir + hp_r + b_hr),  z = s(xp_z + b_iz + hp_z + b_hz)
//              n = tanh(xp_n + b_in + r * (hp_n + b_hn)),  h' = (1 - z) * n + z * h
//   LSTM       i, f, o = s(xp + b_ih + hp + b_hh) over their gates, g = tanh(...)
//              c' = f * c + i * g,  h' = o * tanh(c')
// (s: the logistic sigmoid). Rows of padded steps (t >= lengths[i]) get a
// zero state and zero gradients.
//
// float uses branch-free exp/tanh approximations (Cephes' polynomials,
// within 2 ulp) so the loops vectorise; double uses the C library, since
// float64 exists to check gradients tightly. Every value is computed
// unconditionally and the ternaries only select between computed values:
// GCC if-converts (vectorises) that without -ffast-math. The step loops are
// cloned per x86-64 level; -ffp-contract=off keeps every clone's bits alike.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "backpropx/common.hpp"

namespace bpx::cells {

// exp(x) for x <= 0 (clamped below at -87, where it is below float's
// smallest normal): 2^k exp(r), k = round(x / ln 2), |r| <= ln(2) / 2.
inline float exp_nonpositive(float x) {
  x = std::max(x, -87.0f);
  const float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest
  const float r = (x - k * 0.693359375f) - k * -2.12194440e-4f;           // Cody-Waite ln 2
  const float z = r * r;
  const float p = (((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r +
                     4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f) * z + r + 1.0f;
  const std::int32_t bits = (static_cast<std::int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline float sigmoid(float x) {
  const float e = exp_nonpositive(-std::fabs(x));  // exp(-|x|): never overflows
  const float s = 1.0f / (1.0f + e);
  const float es = e * s;  // 1 - s, for x < 0
  return x >= 0.0f ? s : es;
}

inline float tanh(float x) {
  const float a = std::fabs(x);
  const float z = x * x;  // |x| < 0.625: odd polynomial (no cancellation near 0)
  const float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                        1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
  const float e = exp_nonpositive(-2.0f * a);  // else (1 - e) / (1 + e), e = exp(-2|x|)
  const float large = std::copysign((1.0f - e) / (1.0f + e), x);
  return a < 0.625f ? small : large;
}

inline double sigmoid(double x) {
  if (x >= 0.0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

inline double tanh(double x) { return std::tanh(x); }

// Whether row i is a real step at time t (not padding).
inline bool valid(const std::int64_t* lengths, std::size_t i, std::size_t t) {
  return lengths == nullptr || static_cast<std::int64_t>(t) < lengths[i];
}

// ---- forward: rows [r0, r1) of one step ------------------------------------
// xp, hp (N, G*H); hprev, h (N, H); bx: the folded biases (G*H, see
// recurrent.cpp), bhn: GRU's b_hn (H); gates (N, W): what backward needs.

template <class T>
BPX_ELEMENTWISE_CLONES void rnn_forward(std::size_t r0, std::size_t r1, std::size_t H, bool relu, const T* __restrict xp,
                 const T* __restrict hp, const T* __restrict bx, T* __restrict h,
                 const std::int64_t* lengths, std::size_t t) {
  for (std::size_t i = r0; i < r1; ++i) {
    T* hi = h + i * H;
    if (!valid(lengths, i, t)) {
      for (std::size_t j = 0; j < H; ++j) hi[j] = T(0);
      continue;
    }
    const T* x = xp + i * H;
    const T* p = hp + i * H;
    if (relu) {
      for (std::size_t j = 0; j < H; ++j) hi[j] = std::max(x[j] + p[j] + bx[j], T(0));
    } else {
      for (std::size_t j = 0; j < H; ++j) hi[j] = cells::tanh(x[j] + p[j] + bx[j]);
    }
  }
}

// gates per row: r, z, n, hn = hp_n + b_hn (4H)
template <class T>
BPX_ELEMENTWISE_CLONES void gru_forward(std::size_t r0, std::size_t r1, std::size_t H, const T* __restrict xp,
                 const T* __restrict hp, const T* __restrict bx, const T* __restrict bhn,
                 const T* __restrict hprev, T* __restrict h, T* __restrict gates,
                 const std::int64_t* lengths, std::size_t t) {
  const std::size_t G = 3 * H;
  for (std::size_t i = r0; i < r1; ++i) {
    T* hi = h + i * H;
    T* g = gates + i * 4 * H;
    if (!valid(lengths, i, t)) {
      for (std::size_t j = 0; j < H; ++j) hi[j] = T(0);
      for (std::size_t j = 0; j < 4 * H; ++j) g[j] = T(0);
      continue;
    }
    const T* x = xp + i * G;
    const T* p = hp + i * G;
    const T* hp_i = hprev + i * H;
    for (std::size_t j = 0; j < H; ++j) {
      const T r = cells::sigmoid(x[j] + p[j] + bx[j]);
      const T z = cells::sigmoid(x[H + j] + p[H + j] + bx[H + j]);
      const T hn = p[2 * H + j] + bhn[j];
      const T n = cells::tanh(x[2 * H + j] + bx[2 * H + j] + r * hn);
      hi[j] = (T(1) - z) * n + z * hp_i[j];
      g[j] = r;
      g[H + j] = z;
      g[2 * H + j] = n;
      g[3 * H + j] = hn;
    }
  }
}

// The same for narrow layers (H below a vector's width, MNIST-1D's GRU has
// H = 6): a row's loops are too short to vectorise, so the gate inputs of
// rows [r0, r1) are first gathered gate by gate into tmp (4 (r1-r0) H), the
// sigmoid/tanh loops then run over all their (r1-r0) H values at once, and
// the results are scattered to the row layout. The same operations in the
// same order as gru_forward: the same bits.
template <class T>
BPX_ELEMENTWISE_CLONES void gru_forward_narrow(std::size_t r0, std::size_t r1, std::size_t H,
                                               const T* __restrict xp, const T* __restrict hp,
                                               const T* __restrict bx, const T* __restrict bhn,
                                               const T* __restrict hprev, T* __restrict h,
                                               T* __restrict gates, const std::int64_t* lengths,
                                               std::size_t t, T* __restrict tmp) {
  const std::size_t G = 3 * H, MH = (r1 - r0) * H;
  T* ar = tmp;            // r's input, then r
  T* az = tmp + MH;       // z's input, then z
  T* an = tmp + 2 * MH;   // xp_n + b_in, then n
  T* hn = tmp + 3 * MH;   // hp_n + b_hn
  for (std::size_t i = r0; i < r1; ++i) {
    const T* x = xp + i * G;
    const T* p = hp + i * G;
    const std::size_t o = (i - r0) * H;
    for (std::size_t j = 0; j < H; ++j) {
      ar[o + j] = x[j] + p[j] + bx[j];
      az[o + j] = x[H + j] + p[H + j] + bx[H + j];
      an[o + j] = x[2 * H + j] + bx[2 * H + j];
      hn[o + j] = p[2 * H + j] + bhn[j];
    }
  }
  const T* hp0 = hprev + r0 * H;
  T* h0 = h + r0 * H;
  for (std::size_t k = 0; k < MH; ++k) {
    const T r = cells::sigmoid(ar[k]);
    const T z = cells::sigmoid(az[k]);
    const T n = cells::tanh(an[k] + r * hn[k]);
    h0[k] = (T(1) - z) * n + z * hp0[k];
    ar[k] = r;
    az[k] = z;
    an[k] = n;
  }
  for (std::size_t i = r0; i < r1; ++i) {
    T* g = gates + i * 4 * H;
    const std::size_t o = (i - r0) * H;
    if (!valid(lengths, i, t)) {
      for (std::size_t j = 0; j < H; ++j) h[i * H + j] = T(0);
      for (std::size_t j = 0; j < 4 * H; ++j) g[j] = T(0);
      continue;
    }
    for (std::size_t j = 0; j < H; ++j) {
      g[j] = ar[o + j];
      g[H + j] = az[o + j];
      g[2 * H + j] = an[o + j];
      g[3 * H + j] = hn[o + j];
    }
  }
}

// gates per row: i, f, g, o, tanh(c') (5H)
template <class T>
BPX_ELEMENTWISE_CLONES void lstm_forward(std::size_t r0, std::size_t r1, std::size_t H, const T* __restrict xp,
                  const T* __restrict hp, const T* __restrict bx, const T* __restrict cprev,
                  T* __restrict c, T* __restrict h, T* __restrict gates, const std::int64_t* lengths,
                  std::size_t t) {
  const std::size_t G = 4 * H;
  for (std::size_t i = r0; i < r1; ++i) {
    T* hi = h + i * H;
    T* ci = c + i * H;
    T* g = gates + i * 5 * H;
    if (!valid(lengths, i, t)) {
      for (std::size_t j = 0; j < H; ++j) hi[j] = ci[j] = T(0);
      for (std::size_t j = 0; j < 5 * H; ++j) g[j] = T(0);
      continue;
    }
    const T* x = xp + i * G;
    const T* p = hp + i * G;
    const T* cp = cprev + i * H;
    for (std::size_t j = 0; j < H; ++j) {
      const T ig = cells::sigmoid(x[j] + p[j] + bx[j]);
      const T fg = cells::sigmoid(x[H + j] + p[H + j] + bx[H + j]);
      const T gg = cells::tanh(x[2 * H + j] + p[2 * H + j] + bx[2 * H + j]);
      const T og = cells::sigmoid(x[3 * H + j] + p[3 * H + j] + bx[3 * H + j]);
      const T cn = fg * cp[j] + ig * gg;
      const T tc = cells::tanh(cn);
      ci[j] = cn;
      hi[j] = og * tc;
      g[j] = ig;
      g[H + j] = fg;
      g[2 * H + j] = gg;
      g[3 * H + j] = og;
      g[4 * H + j] = tc;
    }
  }
}

// ---- backward: rows [r0, r1) of one step -----------------------------------
// dh (N, H): d loss / d h' (consumed); dgx (N, G*H): d loss / d (xp + b_ih);
// dgh (N, G*H): d loss / d (hp + b_hh), the same as dgx except GRU's n gate;
// dhprev (N, H): the part of d loss / d h that bypasses W_hh (GRU: dh' * z),
// written; the product with W_hh is added by the caller.

template <class T>
BPX_ELEMENTWISE_CLONES void rnn_backward(std::size_t r0, std::size_t r1, std::size_t H, bool relu, const T* __restrict h,
                  const T* __restrict dh, T* __restrict dgx, const std::int64_t* lengths, std::size_t t) {
  for (std::size_t i = r0; i < r1; ++i) {
    T* d = dgx + i * H;
    if (!valid(lengths, i, t)) {
      for (std::size_t j = 0; j < H; ++j) d[j] = T(0);
      continue;
    }
    const T* hi = h + i * H;
    const T* g = dh + i * H;
    // forward h' = f(a): da = dh' * f'(a), f' from h' (tanh: 1 - h'^2; relu: h' > 0)
    if (relu) {
      for (std::size_t j = 0; j < H; ++j) d[j] = hi[j] > T(0) ? g[j] : T(0);
    } else {
      for (std::size_t j = 0; j < H; ++j) d[j] = g[j] * (T(1) - hi[j] * hi[j]);
    }
  }
}

template <class T>
BPX_ELEMENTWISE_CLONES void gru_backward(std::size_t r0, std::size_t r1, std::size_t H, const T* __restrict gates,
                  const T* __restrict hprev, const T* __restrict dh, T* __restrict dgx,
                  T* __restrict dgh, T* __restrict dhprev, const std::int64_t* lengths, std::size_t t) {
  const std::size_t G = 3 * H;
  for (std::size_t i = r0; i < r1; ++i) {
    T* dx = dgx + i * G;
    T* dhh = dgh + i * G;
    T* dp = dhprev + i * H;
    if (!valid(lengths, i, t)) {
      for (std::size_t j = 0; j < G; ++j) dx[j] = dhh[j] = T(0);
      for (std::size_t j = 0; j < H; ++j) dp[j] = T(0);
      continue;
    }
    const T* g = gates + i * 4 * H;
    const T* hp = hprev + i * H;
    const T* d = dh + i * H;
    for (std::size_t j = 0; j < H; ++j) {
      const T r = g[j], z = g[H + j], n = g[2 * H + j], hn = g[3 * H + j];
      // h' = (1 - z) n + z h:  dn = dh' (1 - z), dz = dh' (h - n), dh = dh' z (+ the W_hh term)
      const T dn = d[j] * (T(1) - z);
      const T dz = d[j] * (hp[j] - n);
      // n = tanh(a_n), a_n = xp_n + b_in + r hn:  da_n = dn (1 - n^2), dr = da_n hn, dhn = da_n r
      const T dan = dn * (T(1) - n * n);
      const T dr = dan * hn;
      // r = s(a_r), z = s(a_z):  da = d * s (1 - s)
      const T dar = dr * r * (T(1) - r);
      const T daz = dz * z * (T(1) - z);
      dx[j] = dhh[j] = dar;
      dx[H + j] = dhh[H + j] = daz;
      dx[2 * H + j] = dan;
      dhh[2 * H + j] = dan * r;
      dp[j] = d[j] * z;
    }
  }
}

template <class T>
BPX_ELEMENTWISE_CLONES void lstm_backward(std::size_t r0, std::size_t r1, std::size_t H, const T* __restrict gates,
                   const T* __restrict cprev, const T* __restrict dh, const T* __restrict dc,
                   T* __restrict dgx, T* __restrict dcprev, const std::int64_t* lengths, std::size_t t) {
  const std::size_t G = 4 * H;
  for (std::size_t i = r0; i < r1; ++i) {
    T* dx = dgx + i * G;
    T* dcp = dcprev + i * H;
    if (!valid(lengths, i, t)) {
      for (std::size_t j = 0; j < G; ++j) dx[j] = T(0);
      for (std::size_t j = 0; j < H; ++j) dcp[j] = T(0);
      continue;
    }
    const T* g = gates + i * 5 * H;
    const T* cp = cprev + i * H;
    const T* d = dh + i * H;
    const T* dci = dc + i * H;
    for (std::size_t j = 0; j < H; ++j) {
      const T ig = g[j], fg = g[H + j], gg = g[2 * H + j], og = g[3 * H + j], tc = g[4 * H + j];
      // h' = o tanh(c'):  do = dh' tanh(c'),  dc' += dh' o (1 - tanh(c')^2)
      const T dog = d[j] * tc;
      const T dct = dci[j] + d[j] * og * (T(1) - tc * tc);
      // c' = f c + i g:  di = dc' g, dg = dc' i, df = dc' c, dc = dc' f
      const T dig = dct * gg, dgg = dct * ig, dfg = dct * cp[j];
      dcp[j] = dct * fg;
      dx[j] = dig * ig * (T(1) - ig);
      dx[H + j] = dfg * fg * (T(1) - fg);
      dx[2 * H + j] = dgg * (T(1) - gg * gg);
      dx[3 * H + j] = dog * og * (T(1) - og);
    }
  }
}

}  // namespace bpx::cells
