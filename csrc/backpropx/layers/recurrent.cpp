#include "backpropx/layers/recurrent.hpp"

#include <algorithm>
#include <utility>

#include "backpropx/gemm.hpp"
#include "backpropx/layers/recurrent_cells.hpp"
#include "backpropx/parallel.hpp"
#include "kernels/gemm_isa.hpp"

namespace bpx {

namespace {
// A time step runs on row blocks of at most kStepRows samples: the product
// of a block (up to 4 micro-tiles of rows) reads the weights in place instead
// of packing them again at every step, and a block's product and cell run as
// one task. With threads, blocks are as many as threads (one parallel region
// per step) once a step has kThreadWork multiply-adds. Rows are independent,
// so the blocks never change a result.
constexpr std::size_t kStepRows = 48;
constexpr std::size_t kMinBlockRows = 12;  // a micro-tile: blocks shared by threads are no smaller
constexpr std::size_t kThreadWork = std::size_t{1} << 18;

// Threads for tasks of `work` multiply-adds in all: 1 below kThreadWork, else
// what the GEMM's policy grants (1 while it backs off from a core that
// another process holds, see kernels/gemm_threads.cpp).
std::size_t threads_for(std::size_t work) {
  if (work < kThreadWork || in_parallel()) return 1;
  return static_cast<std::size_t>(kernels::gemm_threads(1e30));
}

// Runs body(t) for t in [0, tasks) on `threads` threads, and reports to the
// GEMM's policy how long the caller waited for the others, as products do:
// a core busy elsewhere then makes the next steps run on one thread.
template <class Body>
void run_tasks(std::size_t tasks, std::size_t threads, Body&& body) {
  if (threads <= 1 || tasks <= 1) {
    for (std::size_t t = 0; t < tasks; ++t) body(t);
    return;
  }
  const std::int64_t start = kernels::gemm_clock_ns();
  std::int64_t caller_done = start;
  parallel_for(tasks, [&](std::size_t t) {
    body(t);
    if (on_calling_thread()) caller_done = kernels::gemm_clock_ns();
  });
  const std::int64_t end = kernels::gemm_clock_ns();
  kernels::gemm_threads_report(end - caller_done, end - start);
}

template <class Body>
void for_step_blocks(std::size_t n, std::size_t work, Body&& body) {
  std::size_t blocks = (n + kStepRows - 1) / kStepRows;
  const std::size_t threads = n >= 2 * kMinBlockRows ? threads_for(work) : 1;
  if (threads > 1) blocks = (std::max(blocks, threads) + threads - 1) / threads * threads;
  run_tasks(blocks, threads, [&](std::size_t b) { body(n * b / blocks, n * (b + 1) / blocks); });
}

// C (m, N) = A (m, K) . B (K, N) + beta C (beta 0 or 1) for one step's row
// block. Tiny products (MNIST-1D's GRU: 18 x 6 weights) are a plain loop:
// at that size the GEMM's blocking and packing cost more than the product.
constexpr std::size_t kSmallWeights = 1024;  // K * N at or below: the plain loop
constexpr std::size_t kNarrowHidden = 16;    // GRU cells below: gathered gate by gate (recurrent_cells.hpp)

template <class T>
BPX_ELEMENTWISE_CLONES void small_product(std::size_t m, std::size_t N, std::size_t K, const T* A,
                                          std::size_t lda, const T* __restrict B, std::size_t ldb, bool beta,
                                          T* __restrict C, std::size_t ldc) {
  for (std::size_t i = 0; i < m; ++i) {
    T* c = C + i * ldc;
    if (!beta)
      for (std::size_t j = 0; j < N; ++j) c[j] = T(0);
    for (std::size_t k = 0; k < K; ++k) {
      const T a = A[i * lda + k];
      const T* b = B + k * ldb;
      for (std::size_t j = 0; j < N; ++j) c[j] += a * b[j];
    }
  }
}

template <class T>
void step_product(std::size_t m, std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* B,
                  std::size_t ldb, bool beta, T* C, std::size_t ldc) {
  if (K * N <= kSmallWeights) small_product(m, N, K, A, lda, B, ldb, beta, C, ldc);
  else gemm<T>(Trans::N, Trans::N, m, N, K, T(1), A, lda, B, ldb, beta ? T(1) : T(0), C, ldc);
}

std::size_t gate_count(Cell c) {
  switch (c) {
    case Cell::rnn_tanh:
    case Cell::rnn_relu: return 1;
    case Cell::gru: return 3;
    case Cell::lstm: return 4;
  }
  return 1;
}

// (n, T, F) <-> (T, n, F)
template <class T>
void to_time_major(const T* x, T* xt, std::size_t n, std::size_t steps, std::size_t F) {
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t t = 0; t < steps; ++t)
      std::copy(x + (i * steps + t) * F, x + (i * steps + t + 1) * F, xt + (t * n + i) * F);
}

// Runs body(d) for each direction, on two threads when there are and a
// direction has kThreadWork multiply-adds or more (below that, waking a
// second thread costs more than it saves).
template <class Body>
void each_direction(std::size_t D, std::size_t work, Body&& body) {
  run_tasks(D, D == 2 ? threads_for(work) : 1, body);
}
}  // namespace

template <class T>
Recurrent<T>::Recurrent(Cell cell, std::size_t steps, std::size_t input_size, std::size_t hidden_size,
                        bool bias, bool bidirectional, bool return_sequences)
    : cell_(cell), T_(steps), F_(input_size), H_(hidden_size), G_(gate_count(cell)),
      D_(bidirectional ? 2 : 1), bias_(bias), sequences_(return_sequences) {
  require(T_ > 0 && F_ > 0 && H_ > 0, "recurrent layer sizes must be positive");
  checked_mul(checked_mul(G_ * H_, F_ + H_ + 2), D_);
  params_.resize(D_);
  grads_.resize(D_);
}

template <class T>
std::string Recurrent<T>::kind() const {
  switch (cell_) {
    case Cell::gru: return "gru";
    case Cell::lstm: return "lstm";
    default: return "simple_rnn";
  }
}

template <class T>
Shape Recurrent<T>::output_shape() const {
  if (sequences_) return {T_, D_ * H_};
  return {D_ * H_};
}

template <class T>
std::vector<ParamSpec> Recurrent<T>::parameter_specs() const {
  // torch draws every tensor from U(-1/sqrt(H), 1/sqrt(H)): fan_in H under `uniform`.
  const std::size_t GH = G_ * H_;
  std::vector<ParamSpec> specs;
  for (std::size_t d = 0; d < D_; ++d) {
    const std::string suffix = d == 0 ? "" : "_reverse";
    specs.push_back({"weight_ih" + suffix, {GH, F_}, H_, GH, Init::uniform, ParamRole::weight, true});
    specs.push_back({"weight_hh" + suffix, {GH, H_}, H_, GH, Init::uniform, ParamRole::weight, true});
    if (bias_) {
      specs.push_back({"bias_ih" + suffix, {GH}, H_, GH, Init::uniform, ParamRole::bias, false});
      specs.push_back({"bias_hh" + suffix, {GH}, H_, GH, Init::uniform, ParamRole::bias, false});
    }
  }
  return specs;
}

template <class T>
void Recurrent<T>::bind(T* params, T* grads) {
  const std::size_t GH = G_ * H_;
  for (std::size_t d = 0; d < D_; ++d) {
    for (auto [base, out] : {std::pair{params, &params_[d]}, std::pair{grads, &grads_[d]}}) {
      out->w_ih = base;
      out->w_hh = base + GH * F_;
      out->b_ih = bias_ ? base + GH * (F_ + H_) : nullptr;
      out->b_hh = bias_ ? base + GH * (F_ + H_ + 1) : nullptr;
    }
    const std::size_t size = GH * (F_ + H_ + (bias_ ? 2 : 0));
    params += size;
    grads += size;
  }
}

template <class T>
std::size_t Recurrent<T>::gates_width() const {
  switch (cell_) {
    case Cell::gru: return 4 * H_;   // r, z, n, hn
    case Cell::lstm: return 5 * H_;  // i, f, g, o, tanh(c)
    default: return 0;               // h' alone gives f'
  }
}

// cache, per direction: states (T+1, N, H) | LSTM cells (T+1, N, H) | gates (T, N, W)
template <class T>
std::size_t Recurrent<T>::cache_per_direction(std::size_t n) const {
  return checked_mul(state_size(n), cell_ == Cell::lstm ? 2 : 1) + checked_mul(T_ * n, gates_width());
}

template <class T>
std::size_t Recurrent<T>::cache_size(std::size_t n) const {
  return checked_mul(cache_per_direction(n), D_);
}

// scratch: xt (T, N, F), then per direction: proj (T, N, GH) | GRU proj_h (T, N, GH) | rec (N, GH)
// | dh, dh2, dc, dc2 (N, H) | bias (GH + H) | dxt (T, N, F) | inference: states, cells, gates (N, W)
template <class T>
std::size_t Recurrent<T>::scratch_per_direction(std::size_t n) const {
  const std::size_t GH = G_ * H_;
  std::size_t s = checked_mul(checked_mul(T_, n), GH) * (cell_ == Cell::gru ? 2 : 1);
  s += n * GH + 4 * n * H_ + GH + H_ + checked_mul(T_ * n, F_) + GH * H_;
  s += checked_mul(T_ * n, F_ + H_ + 2) + GH * (F_ + H_ + 2) + 4 * n * H_;
  s += state_size(n) * (cell_ == Cell::lstm ? 2 : 1) + n * gates_width();
  return s;
}

template <class T>
std::size_t Recurrent<T>::scratch_size(std::size_t n) const {
  return checked_mul(checked_mul(T_, n), F_) + checked_mul(scratch_per_direction(n), D_);
}

template <class T>
typename Recurrent<T>::Memory Recurrent<T>::memory(const LayerBuffers<T>& b, std::size_t n,
                                                   std::size_t d, bool training) const {
  const std::size_t GH = G_ * H_, S = state_size(n);
  Memory m{};
  T* s = b.scratch + T_ * n * F_ + d * scratch_per_direction(n);
  m.proj = s;
  s += T_ * n * GH;
  m.proj_h = m.proj;
  if (cell_ == Cell::gru) {
    m.proj_h = s;
    s += T_ * n * GH;
  }
  m.rec = s;
  s += n * GH;
  m.dh = s;
  m.dh2 = s + n * H_;
  m.dc = s + 2 * n * H_;
  m.dc2 = s + 3 * n * H_;
  s += 4 * n * H_;
  m.bias = s;
  s += GH + H_;
  m.dxt = s;
  s += T_ * n * F_;
  m.whh_t = s;
  s += GH * H_;
  m.inputs = s;
  s += T_ * n * (F_ + H_ + 2);
  m.wgrad = s;
  s += GH * (F_ + H_ + 2);
  m.narrow = s;
  s += 4 * n * H_;
  m.stored = training;
  T* c = training ? b.cache + d * cache_per_direction(n) : s;  // inference: the scratch tail
  m.states = c;
  c += S;
  m.cells = nullptr;
  if (cell_ == Cell::lstm) {
    m.cells = c;
    c += S;
  }
  m.gates = c;
  return m;
}

template <class T>
std::size_t Recurrent<T>::final_step(std::size_t d, std::size_t i, const std::int64_t* lengths) const {
  if (d == 1) return 0;
  return lengths ? static_cast<std::size_t>(lengths[i]) - 1 : T_ - 1;
}

template <class T>
void Recurrent<T>::forward(const T* x, T* y, const LayerBuffers<T>& buffers, std::size_t n,
                           const Pass& pass) const {
  // x is (N, T, F), y is (N, T, D*H) or (N, D*H)
  const bool training = buffers.cache != nullptr;
  T* xt = buffers.scratch;
  to_time_major(x, xt, n, T_, F_);
  each_direction(D_, T_ * n * G_ * H_ * (F_ + H_), [&](std::size_t d) {
    run_forward(d, xt, y, memory(buffers, n, d, training), n, pass.lengths);
  });
}

template <class T>
void Recurrent<T>::run_forward(std::size_t d, const T* xt, T* y, const Memory& m, std::size_t n,
                               const std::int64_t* lengths) const {
  const Params& p = params_[d];
  const std::size_t H = H_, GH = G_ * H_, W = gates_width(), DH = D_ * H_;
  // Folded biases: b_ih + b_hh, except GRU's n gate, whose b_hn sits inside r * (...).
  T* bx = m.bias;
  T* bhn = m.bias + GH;
  for (std::size_t j = 0; j < GH; ++j) bx[j] = bias_ ? p.b_ih[j] + p.b_hh[j] : T(0);
  if (cell_ == Cell::gru)
    for (std::size_t j = 0; j < H; ++j) {
      bx[2 * H + j] = bias_ ? p.b_ih[2 * H + j] : T(0);
      bhn[j] = bias_ ? p.b_hh[2 * H + j] : T(0);
    }
  // xp = x W_ih^T for every step at once: xt (T*N, F), W_ih (GH, F), proj (T*N, GH)
  gemm<T>(Trans::N, Trans::T, T_ * n, GH, F_, T(1), xt, F_, p.w_ih, F_, T(0), m.proj, GH);
  // W_hh^T (H, GH), so each step's product reads it in place (in 16 x 16 tiles)
  for (std::size_t g0 = 0; g0 < GH; g0 += 16)
    for (std::size_t k0 = 0; k0 < H; k0 += 16)
      for (std::size_t g = g0; g < std::min(GH, g0 + 16); ++g)
        for (std::size_t k = k0; k < std::min(H, k0 + 16); ++k) m.whh_t[k * GH + g] = p.w_hh[g * H + k];
  // The zero initial state sits in the boundary slot.
  const std::size_t boundary = d == 0 ? 0 : T_;
  std::fill(m.states + boundary * n * H, m.states + (boundary + 1) * n * H, T(0));
  if (m.cells) std::fill(m.cells + boundary * n * H, m.cells + (boundary + 1) * n * H, T(0));
  for (std::size_t s = 0; s < T_; ++s) {
    const std::size_t t = d == 0 ? s : T_ - 1 - s;
    const T* hprev = m.states + prev_slot(d, t) * n * H;
    T* h = m.states + slot(d, t) * n * H;
    const T* xp = m.proj + t * n * GH;
    T* gates = m.stored ? m.gates + t * n * W : m.gates;
    for_step_blocks(n, n * GH * H, [&](std::size_t r0, std::size_t r1) {
      // hp = h W_hh^T: hprev (N, H), W_hh^T (H, GH), rec (N, GH), rows [r0, r1)
      if (s == 0) std::fill(m.rec + r0 * GH, m.rec + r1 * GH, T(0));
      else step_product<T>(r1 - r0, GH, H, hprev + r0 * H, H, m.whh_t, GH, false, m.rec + r0 * GH, GH);
      switch (cell_) {
        case Cell::rnn_tanh:
        case Cell::rnn_relu:
          cells::rnn_forward(r0, r1, H, cell_ == Cell::rnn_relu, xp, m.rec, bx, h, lengths, t);
          break;
        case Cell::gru:
          if (H < kNarrowHidden)
            cells::gru_forward_narrow(r0, r1, H, xp, m.rec, bx, bhn, hprev, h, gates, lengths, t,
                                      m.narrow + 4 * r0 * H);
          else
            cells::gru_forward(r0, r1, H, xp, m.rec, bx, bhn, hprev, h, gates, lengths, t);
          break;
        case Cell::lstm:
          cells::lstm_forward(r0, r1, H, xp, m.rec, bx, m.cells + prev_slot(d, t) * n * H,
                              m.cells + slot(d, t) * n * H, h, gates, lengths, t);
          break;
      }
    });
  }
  // The output: every step's state, or each sample's final state.
  for (std::size_t i = 0; i < n; ++i) {
    if (sequences_) {
      for (std::size_t t = 0; t < T_; ++t) {
        const T* h = m.states + (slot(d, t) * n + i) * H;
        std::copy(h, h + H, y + (i * T_ + t) * DH + d * H);
      }
    } else {
      const T* h = m.states + (slot(d, final_step(d, i, lengths)) * n + i) * H;
      std::copy(h, h + H, y + i * DH + d * H);
    }
  }
}

template <class T>
void Recurrent<T>::backward(const T* x, const T*, const LayerBuffers<T>& buffers, T* dy, T* dx,
                            std::size_t n, const Pass& pass) {
  T* xt = buffers.scratch;
  to_time_major(x, xt, n, T_, F_);  // scratch does not outlive a call: transpose again
  each_direction(D_, T_ * n * G_ * H_ * (F_ + H_), [&](std::size_t d) {
    run_backward(d, xt, dy, memory(buffers, n, d, true), n, pass.lengths);
  });
  if (dx == nullptr) return;
  // dx (N, T, F) = the directions' dxt (T, N, F), summed in direction order
  const T* forward_dxt = memory(buffers, n, 0, true).dxt;
  const T* reverse_dxt = D_ == 2 ? memory(buffers, n, 1, true).dxt : nullptr;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t t = 0; t < T_; ++t) {
      T* out = dx + (i * T_ + t) * F_;
      const T* a = forward_dxt + (t * n + i) * F_;
      if (reverse_dxt == nullptr) {
        std::copy(a, a + F_, out);
      } else {
        const T* b = reverse_dxt + (t * n + i) * F_;
        for (std::size_t f = 0; f < F_; ++f) out[f] = a[f] + b[f];
      }
    }
}

template <class T>
void Recurrent<T>::run_backward(std::size_t d, const T* xt, const T* dy, const Memory& m, std::size_t n,
                                const std::int64_t* lengths) {
  const Params& p = params_[d];
  const Params& g = grads_[d];
  const std::size_t H = H_, GH = G_ * H_, W = gates_width(), DH = D_ * H_;
  T* dh = m.dh;
  T* dh2 = m.dh2;
  T* dc = m.dc;
  T* dc2 = m.dc2;
  std::fill(dh, dh + n * H, T(0));
  std::fill(dc, dc + n * H, T(0));
  for (std::size_t s = T_; s-- > 0;) {
    const std::size_t t = d == 0 ? s : T_ - 1 - s;
    const T* hprev = m.states + prev_slot(d, t) * n * H;
    const T* h = m.states + slot(d, t) * n * H;
    const T* gates = m.gates + t * n * W;
    T* dgx = m.proj + t * n * GH;
    T* dgh = m.proj_h + t * n * GH;
    for_step_blocks(n, n * GH * H, [&](std::size_t r0, std::size_t r1) {
      // dh' += the output's gradient at this step
      for (std::size_t i = r0; i < r1; ++i) {
        const T* src = nullptr;
        if (sequences_) src = dy + (i * T_ + t) * DH + d * H;
        else if (t == final_step(d, i, lengths)) src = dy + i * DH + d * H;
        if (src)
          for (std::size_t j = 0; j < H; ++j) dh[i * H + j] += src[j];
      }
      switch (cell_) {
        case Cell::rnn_tanh:
        case Cell::rnn_relu:
          cells::rnn_backward(r0, r1, H, cell_ == Cell::rnn_relu, h, dh, dgx, lengths, t);
          break;
        case Cell::gru:
          cells::gru_backward(r0, r1, H, gates, hprev, dh, dgx, dgh, dh2, lengths, t);
          break;
        case Cell::lstm:
          cells::lstm_backward(r0, r1, H, gates, m.cells + prev_slot(d, t) * n * H, dh, dc, dgx, dc2,
                               lengths, t);
          break;
      }
      // forward hp = hprev W_hh^T:  dhprev (+)= dgh W_hh : dgh (N, GH), W_hh (GH, H); none
      // for the first step, whose state before is the constant zero
      if (s > 0)
        step_product<T>(r1 - r0, H, GH, dgh + r0 * GH, GH, p.w_hh, H, cell_ == Cell::gru, dh2 + r0 * H, H);
    });
    std::swap(dh, dh2);
    std::swap(dc, dc2);
  }
  const std::size_t rows = T_ * n;
  if (this->trainable()) {
    // Every weight and bias gradient over all steps at once (rows t*N + i, t in time order),
    // from one product with B = [xt | 1 | hprev | 1] (T*N, F+H+2), hprev the states before
    // each step; the columns of ones give the bias gradients (the column sums):
    //   [dW_ih | db_ih] += dgx^T [xt | 1],   [dW_hh | db_hh] += dgh^T [hprev | 1]
    // one product when dgx is dgh (SimpleRNN, LSTM), two for GRU.
    const std::size_t WB = F_ + H_ + 2;
    const T* hprev_all = m.states + (d == 0 ? 0 : n * H);
    for (std::size_t r = 0; r < rows; ++r) {
      T* b = m.inputs + r * WB;
      std::copy(xt + r * F_, xt + (r + 1) * F_, b);
      b[F_] = T(1);
      std::copy(hprev_all + r * H, hprev_all + (r + 1) * H, b + F_ + 1);
      b[F_ + H + 1] = T(1);
    }
    if (m.proj_h == m.proj) {
      gemm<T>(Trans::T, Trans::N, GH, WB, rows, T(1), m.proj, GH, m.inputs, WB, T(0), m.wgrad, WB);
    } else {
      gemm<T>(Trans::T, Trans::N, GH, F_ + 1, rows, T(1), m.proj, GH, m.inputs, WB, T(0), m.wgrad, WB);
      gemm<T>(Trans::T, Trans::N, GH, H + 1, rows, T(1), m.proj_h, GH, m.inputs + F_ + 1, WB, T(0),
              m.wgrad + F_ + 1, WB);
    }
    for (std::size_t j = 0; j < GH; ++j) {
      const T* c = m.wgrad + j * WB;
      for (std::size_t f = 0; f < F_; ++f) g.w_ih[j * F_ + f] += c[f];
      for (std::size_t k = 0; k < H; ++k) g.w_hh[j * H + k] += c[F_ + 1 + k];
      if (bias_) {
        g.b_ih[j] += c[F_];
        g.b_hh[j] += c[F_ + H + 1];
      }
    }
  }
  // dxt = dgx W_ih : dgx (T*N, GH), W_ih (GH, F)
  gemm<T>(Trans::N, Trans::N, rows, F_, GH, T(1), m.proj, GH, p.w_ih, F_, T(0), m.dxt, F_);
}

namespace {
template <class T>
std::unique_ptr<Layer<T>> make_recurrent(Cell cell, const ConfigReader& c, const Shape& input) {
  const std::size_t F = c.size("input_size"), H = c.size("hidden_size");
  if (input.empty())
    throw std::invalid_argument("a first recurrent layer needs the network's input_shape=(steps, " +
                                std::to_string(F) + ")");
  if (input.size() != 2 || input[1] != F)
    throw std::invalid_argument("expects samples of shape (steps, input_size=" + std::to_string(F) +
                                ") (batch first, as torch's batch_first=True), but receives " +
                                shape_str(input));
  return std::make_unique<Recurrent<T>>(cell, input[0], F, H, c.flag("bias", true),
                                        c.flag("bidirectional", false), c.flag("return_sequences", false));
}
}  // namespace

template <class T>
std::unique_ptr<Layer<T>> make_simple_rnn(const ConfigReader& c, const Shape& input) {
  const std::string act = c.string("nonlinearity", "tanh");
  if (act != "tanh" && act != "relu")
    throw unknown_name("nonlinearity", act, {"tanh", "relu"});
  return make_recurrent<T>(act == "relu" ? Cell::rnn_relu : Cell::rnn_tanh, c, input);
}

template <class T>
std::unique_ptr<Layer<T>> make_gru(const ConfigReader& c, const Shape& input) {
  return make_recurrent<T>(Cell::gru, c, input);
}

template <class T>
std::unique_ptr<Layer<T>> make_lstm(const ConfigReader& c, const Shape& input) {
  return make_recurrent<T>(Cell::lstm, c, input);
}

template class Recurrent<float>;
template class Recurrent<double>;
#define BPX_INSTANTIATE(T)                                                                   \
  template std::unique_ptr<Layer<T>> make_simple_rnn<T>(const ConfigReader&, const Shape&); \
  template std::unique_ptr<Layer<T>> make_gru<T>(const ConfigReader&, const Shape&);        \
  template std::unique_ptr<Layer<T>> make_lstm<T>(const ConfigReader&, const Shape&);
BPX_INSTANTIATE(float)
BPX_INSTANTIATE(double)
#undef BPX_INSTANTIATE

}  // namespace bpx
