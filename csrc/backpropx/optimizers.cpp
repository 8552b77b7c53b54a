#include "backpropx/optimizers.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "backpropx/parallel.hpp"
#include "backpropx/reductions.hpp"

namespace bpx {

namespace {
// Elements per block of run_step: a block's parameters and state are still in
// cache when they are checked, and blocks fix the order of the sums.
constexpr std::size_t kStepBlock = 1024;
constexpr double kInf = std::numeric_limits<double>::infinity();
}  // namespace

template <class T>
void Optimizer<T>::begin_step(const std::vector<Segment>& segments) {
  step_lr_ = lr;
  std::size_t total = 0;
  for (const Segment& s : segments) total += s.size;
  // State restored by load_state adopts the first layout it is used with;
  // otherwise a change of trainable layers starts fresh state.
  const bool same_layout =
      layout_.empty() ? (state_.empty() || state_[0].size() == total)
                      : std::equal(segments.begin(), segments.end(), layout_.begin(), layout_.end(),
                                   [](const Segment& a, const Segment& b) {
                                     return a.offset == b.offset && a.size == b.size;
                                   });
  if (!state_ready_ || !same_layout) {
    const std::size_t buffers = state_names().size();
    require(buffers <= kMaxStateBuffers, "optimizer " + name() + " keeps too many state buffers");
    state_.assign(buffers, {});
    state_bound_.assign(buffers, 0.0);
    state_signs_ok_ = true;
    for (std::size_t i = 0; i < buffers; ++i) {
      state_[i].assign(total, initial_state(i));
      state_bound_[i] = std::fabs(static_cast<double>(initial_state(i)));
    }
    state_ready_ = true;
    t_ = 0;
  }
  if (!same_layout || layout_.empty()) layout_ = segments;
  ++t_;
}

template <class T>
double Optimizer<T>::step_bound(double param_max, double grad_max) {
  if (!(param_max < kInf) || !(grad_max < kInf) || !state_signs_ok_) return kInf;
  // A bound lost to an unbounded step is measured again (a rare pass).
  for (std::size_t i = 0; i < state_bound_.size(); ++i)
    if (!(state_bound_[i] < kInf)) state_bound_[i] = max_abs(state_[i].data(), state_[i].size());
  double next[kMaxStateBuffers] = {};
  return bound_step(param_max, grad_max, state_bound_.data(), next);
}

template <class T>
StepReport Optimizer<T>::run_step(T* params, const T* grads, const std::vector<Segment>& segments,
                                  double param_max, double grad_max, UpdateSums* sums) {
  std::size_t blocks = 0;
  for (const Segment& seg : segments) blocks += (seg.size + kStepBlock - 1) / kStepBlock;
  if (block_max_.size() < blocks) {  // grows once; the batch loop then never allocates
    block_max_.resize(blocks);
    block_delta_sq_.resize(blocks);
    block_before_sq_.resize(blocks);
  }
  if (sums) {
    sums->delta_sq.assign(segments.size(), 0.0);
    sums->before_sq.assign(segments.size(), 0.0);
  }
  std::size_t state_offset = 0, first_block = 0;
  for (const Segment& seg : segments) {
    const std::size_t n_blocks = (seg.size + kStepBlock - 1) / kStepBlock;
    // Element-wise, so any split over threads gives the same bits.
    parallel_rows(n_blocks, (std::size_t{1} << 15) / kStepBlock, [&](std::size_t b0, std::size_t b1) {
      T before[kStepBlock];
      T* local[kMaxStateBuffers] = {};
      for (std::size_t b = b0; b < b1; ++b) {
        const std::size_t lo = b * kStepBlock, count = std::min(kStepBlock, seg.size - lo);
        T* p = params + seg.offset + lo;
        for (std::size_t i = 0; i < state_.size(); ++i) local[i] = state_[i].data() + state_offset + lo;
        if (sums) std::copy(p, p + count, before);
        block_max_[first_block + b] = magnitude_value<T>(update(p, grads + seg.offset + lo, local, count));
        if (sums) {
          double d2 = 0, w2 = 0;
          for (std::size_t i = 0; i < count; ++i) {
            const double was = static_cast<double>(before[i]);
            const double d = static_cast<double>(p[i]) - was;
            d2 += d * d;
            w2 += was * was;
          }
          block_delta_sq_[first_block + b] = d2;
          block_before_sq_[first_block + b] = w2;
        }
      }
    });
    state_offset += seg.size;
    first_block += n_blocks;
  }
  StepReport report;
  first_block = 0;
  for (std::size_t s = 0; s < segments.size(); ++s) {
    const std::size_t n_blocks = (segments[s].size + kStepBlock - 1) / kStepBlock;
    for (std::size_t b = first_block; b < first_block + n_blocks; ++b) {
      report.param_max = std::max(report.param_max, block_max_[b]);
      if (sums) {
        sums->delta_sq[s] += block_delta_sq_[b];
        sums->before_sq[s] += block_before_sq_[b];
      }
    }
    first_block += n_blocks;
  }
  report.finite = report.param_max < kInf;
  // The state's bounds follow the rule; unknown inputs leave them unknown.
  double next[kMaxStateBuffers] = {};
  const bool bounded = param_max < kInf && grad_max < kInf &&
                       bound_step(param_max, grad_max, state_bound_.data(), next) < kInf;
  for (std::size_t i = 0; i < state_bound_.size(); ++i) state_bound_[i] = bounded ? next[i] : kInf;
  return report;
}

template <class T>
void Optimizer<T>::load_state(std::vector<std::vector<T>> state, std::int64_t steps) {
  const std::size_t buffers = state_names().size();
  require(steps >= 0, "optimizer step count must be non-negative");
  if (steps == 0 && state.empty()) return reset();
  require(state.size() == buffers, "optimizer " + name() + " expects " + std::to_string(buffers) +
                                       " state buffers, got " + std::to_string(state.size()));
  for (const auto& b : state)
    require(b.size() == state.front().size(), "optimizer state buffers differ in length");
  state_bound_.clear();
  state_signs_ok_ = true;
  for (std::size_t i = 0; i < state.size(); ++i) {
    state_bound_.push_back(max_abs(state[i].data(), state[i].size()));
    if (nonnegative_state(i))
      for (T x : state[i]) state_signs_ok_ = state_signs_ok_ && !(x < T(0));
  }
  state_ = std::move(state);
  state_ready_ = true;
  layout_.clear();
  t_ = steps;
}

namespace {

double get(const OptimizerConfig& c, const std::string& key, double fallback) {
  auto it = c.values.find(key);
  return it == c.values.end() ? fallback : it->second;
}

void check(bool ok, const std::string& what, double value) {
  // Same wording as torch.optim: "Invalid learning rate: -1"
  if (!ok) {
    // The shortest form that reads back as the same double, like Python's repr.
    char v[32];
    for (int digits = 1; digits <= 17; ++digits) {
      std::snprintf(v, sizeof v, "%.*g", digits, value);
      if (std::strtod(v, nullptr) == value) break;
    }
    throw std::invalid_argument("Invalid " + what + ": " + v);
  }
}

// torch.lerp's formula, so exponential averages round as torch's do.
template <class T>
T lerp(T start, T end, T weight) {
  return weight < T(0.5) ? start + weight * (end - start) : end - (end - start) * (T(1) - weight);
}

// SGD with momentum (Sutskever et al. 2013), torch.optim.SGD's rule:
//   g = grad + wd p;  b = g (first step) or mu b + (1 - dampening) g
//   g = g + mu b (nesterov) or b;  p -= lr g
template <class T>
class Sgd final : public Optimizer<T> {
 public:
  explicit Sgd(const OptimizerConfig& c)
      : Optimizer<T>(get(c, "lr", 1e-3)),
        momentum_(get(c, "momentum", 0)),
        dampening_(get(c, "dampening", 0)),
        wd_(get(c, "weight_decay", 0)),
        nesterov_(get(c, "nesterov", 0) != 0) {
    check(this->lr >= 0, "learning rate", this->lr);  // torch accepts 0 (schedules reach it)
    check(momentum_ >= 0, "momentum value", momentum_);
    check(wd_ >= 0, "weight_decay value", wd_);
    if (nesterov_ && (momentum_ <= 0 || dampening_ != 0))
      throw std::invalid_argument("Nesterov momentum requires a momentum and zero dampening");
  }
  std::string name() const override { return "sgd"; }
  std::vector<std::string> state_names() const override {
    return momentum_ != 0 ? std::vector<std::string>{"momentum_buffer"} : std::vector<std::string>{};
  }

 protected:
  MagnitudeBits<T> update(T* p, const T* g, T* const* s, std::size_t n) const override {
    const Coefficients c = coefficients();
    // Choices fixed for the whole call become template arguments, so the
    // loop has no branches and vectorises (as Adam's).
    const int momentum = momentum_ == 0 ? kNone : this->t_ == 1 ? kFirst : kLater;
    return wd_ != 0 ? dispatch<true>(momentum, p, g, s[0], n, c) : dispatch<false>(momentum, p, g, s[0], n, c);
  }
  double bound_step(double P, double G, const double* S, double* S_next) const override {
    const Coefficients c = coefficients();
    const double rate = this->magnitude(c.rate), mu = this->magnitude(c.mu), damp = this->magnitude(c.damp),
                 wd = this->magnitude(c.wd);
    double d = G + wd * P;
    if (momentum_ != 0) {
      const double buf = this->t_ == 1 ? d : mu * S[0] + damp * d;
      S_next[0] = buf;
      d = nesterov_ ? d + mu * buf : buf;
    }
    return this->worst({P + rate * d, d});  // d bounds g + wd p and the buffer too
  }

 private:
  enum { kNone, kFirst, kLater };  // no momentum; the buffer's first step; later steps
  struct Coefficients {
    T rate, mu, damp, wd;
  };
  Coefficients coefficients() const { return {T(this->step_lr_), T(momentum_), T(1 - dampening_), T(wd_)}; }

  template <bool kDecay>
  MagnitudeBits<T> dispatch(int momentum, T* p, const T* g, T* buf, std::size_t n, const Coefficients& c) const {
    if (momentum == kNone) return loop<kDecay, kNone, false>(p, g, buf, n, c);
    if (nesterov_)
      return momentum == kFirst ? loop<kDecay, kFirst, true>(p, g, buf, n, c) : loop<kDecay, kLater, true>(p, g, buf, n, c);
    return momentum == kFirst ? loop<kDecay, kFirst, false>(p, g, buf, n, c) : loop<kDecay, kLater, false>(p, g, buf, n, c);
  }

  // Cloned for AVX-512 and AVX2 machines, chosen when the library loads.
  template <bool kDecay, int kMomentum, bool kNesterov>
  BPX_ELEMENTWISE_CLONES static MagnitudeBits<T> loop(T* __restrict p, const T* __restrict g, T* __restrict buf,
                                                      std::size_t n, const Coefficients& c) {
    MagnitudeBits<T> most = 0;
    for (std::size_t i = 0; i < n; ++i) {
      T d = kDecay ? g[i] + c.wd * p[i] : g[i];
      if constexpr (kMomentum != kNone) {
        buf[i] = kMomentum == kFirst ? d : buf[i] * c.mu + c.damp * d;
        d = kNesterov ? d + c.mu * buf[i] : buf[i];
      }
      p[i] += -c.rate * d;
      const MagnitudeBits<T> b = magnitude_bits(p[i]);
      most = b > most ? b : most;
    }
    return most;
  }

  double momentum_, dampening_, wd_;
  bool nesterov_;
};

// Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), torch's rule:
//   AdamW: p *= 1 - lr wd;  Adam: g = grad + wd p
//   m = lerp(m, g, 1 - b1);  v = b2 v + (1 - b2) g^2;  (amsgrad: vmax = max(vmax, v))
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
template <class T>
class AdamBase : public Optimizer<T> {
 public:
  AdamBase(const OptimizerConfig& c, double default_wd, bool decoupled)
      : Optimizer<T>(get(c, "lr", 1e-3)),
        beta1_(get(c, "beta1", 0.9)),
        beta2_(get(c, "beta2", 0.999)),
        eps_(get(c, "eps", 1e-8)),
        wd_(get(c, "weight_decay", default_wd)),
        amsgrad_(get(c, "amsgrad", 0) != 0),
        decoupled_(decoupled) {
    check(this->lr >= 0, "learning rate", this->lr);  // torch accepts 0 (schedules reach it)
    check(eps_ >= 0, "epsilon value", eps_);
    check(beta1_ >= 0 && beta1_ < 1, "beta parameter at index 0", beta1_);
    check(beta2_ >= 0 && beta2_ < 1, "beta parameter at index 1", beta2_);
    check(wd_ >= 0, "weight_decay value", wd_);
  }
  std::vector<std::string> state_names() const override {
    if (amsgrad_) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
    return {"exp_avg", "exp_avg_sq"};
  }

 protected:
  MagnitudeBits<T> update(T* p, const T* g, T* const* s, std::size_t n) const override {
    const Coefficients c = coefficients();
    // Choices fixed for the whole call become template arguments, so the
    // loop has no branches and vectorises.
    const int decay = wd_ == 0 ? kNoDecay : decoupled_ ? kDecoupled : kL2;
    const bool low = c.w1 < T(0.5);
    if (amsgrad_)
      return low ? dispatch_decay<true, true>(decay, p, g, s, n, c) : dispatch_decay<true, false>(decay, p, g, s, n, c);
    return low ? dispatch_decay<false, true>(decay, p, g, s, n, c) : dispatch_decay<false, false>(decay, p, g, s, n, c);
  }

 private:
  // m stays between its old value and the gradient (a convex combination),
  // v >= 0 (nonnegative_state), and the denominator is at least eps.
  double bound_step(double P, double G, const double* S, double* S_next) const override {
    const Coefficients c = coefficients();
    const double w1 = this->magnitude(c.w1), b2 = this->magnitude(c.b2), w2 = this->magnitude(c.w2),
                 wd = this->magnitude(c.wd), decay = this->magnitude(c.decay),
                 step_size = this->magnitude(c.step_size), eps = this->floor_of(c.eps);
    const double grad = G + (!decoupled_ ? wd * P : 0.0);
    S_next[0] = this->worst({S[0], grad});
    S_next[1] = b2 * S[1] + w2 * grad * grad;
    if (amsgrad_) S_next[2] = this->worst({S[2], S_next[1]});
    // A zero sqrt(1 - b2^t) divides 0 by 0.
    if (!(c.bc2_sqrt > T(0)) || !(w1 <= 1)) return this->kUnbounded;
    const double kept = decoupled_ ? P * decay : P;
    const double ratio = S_next[0] / eps;  // m / denom
    // also grad - m inside the average, and v (an infinite v times a zero beta2 is NaN)
    return this->worst({kept + step_size * ratio, ratio, grad + S[0], S_next[1]});
  }

  enum { kNoDecay, kL2, kDecoupled };
  struct Coefficients {
    T w1, b2, w2, eps, wd, decay, step_size, bc2_sqrt;
  };
  Coefficients coefficients() const {
    const double t = static_cast<double>(this->t_), rate = this->step_lr_;
    return {T(1 - beta1_),
            T(beta2_),
            T(1 - beta2_),
            T(eps_),
            T(wd_),
            T(1 - rate * wd_),
            T(rate / (1 - std::pow(beta1_, t))),
            T(std::sqrt(1 - std::pow(beta2_, t)))};
  }
  bool nonnegative_state(std::size_t which) const override { return which >= 1; }

  template <bool kAmsgrad, bool kLowWeight>
  static MagnitudeBits<T> dispatch_decay(int decay, T* p, const T* g, T* const* s, std::size_t n,
                                         const Coefficients& c) {
    if (decay == kNoDecay) return loop<kAmsgrad, kLowWeight, kNoDecay>(p, g, s, n, c);
    if (decay == kL2) return loop<kAmsgrad, kLowWeight, kL2>(p, g, s, n, c);
    return loop<kAmsgrad, kLowWeight, kDecoupled>(p, g, s, n, c);
  }

  // Cloned for AVX-512 and AVX2 machines, chosen when the library loads.
  template <bool kAmsgrad, bool kLowWeight, int kDecay>
  BPX_ELEMENTWISE_CLONES static MagnitudeBits<T> loop(T* __restrict p, const T* __restrict g, T* const* s,
                                                      std::size_t n, const Coefficients& c) {
    MagnitudeBits<T> most = 0;
    T* __restrict m = s[0];
    T* __restrict v = s[1];
    T* __restrict vmax = kAmsgrad ? s[2] : nullptr;
    for (std::size_t i = 0; i < n; ++i) {
      T grad = g[i];
      if constexpr (kDecay == kDecoupled) p[i] *= c.decay;
      if constexpr (kDecay == kL2) grad += c.wd * p[i];
      // torch.lerp(m, grad, w1), whose formula depends on the weight
      if constexpr (kLowWeight) m[i] = m[i] + c.w1 * (grad - m[i]);
      else m[i] = grad - (grad - m[i]) * (T(1) - c.w1);
      v[i] = v[i] * c.b2 + c.w2 * grad * grad;
      T second = v[i];
      if constexpr (kAmsgrad) second = vmax[i] = std::max(vmax[i], v[i]);
      const T denom = std::sqrt(second) / c.bc2_sqrt + c.eps;
      p[i] += -c.step_size * (m[i] / denom);
      const MagnitudeBits<T> b = magnitude_bits(p[i]);
      most = b > most ? b : most;
    }
    return most;
  }

  double beta1_, beta2_, eps_, wd_;
  bool amsgrad_, decoupled_;
};

template <class T>
struct Adam final : AdamBase<T> {
  explicit Adam(const OptimizerConfig& c) : AdamBase<T>(c, 0.0, false) {}
  std::string name() const override { return "adam"; }
};

template <class T>
struct AdamW final : AdamBase<T> {
  explicit AdamW(const OptimizerConfig& c) : AdamBase<T>(c, 1e-2, true) {}
  std::string name() const override { return "adamw"; }
};

// RMSprop (Hinton, lecture 6e), torch's rule:
//   g = grad + wd p;  sq = alpha sq + (1 - alpha) g^2
//   avg = sqrt(sq - ga^2) + eps with ga = lerp(ga, g, 1 - alpha) (centered), else sqrt(sq) + eps
//   momentum: b = mu b + g / avg, p -= lr b;  else p -= lr g / avg
template <class T>
class RmsProp final : public Optimizer<T> {
 public:
  explicit RmsProp(const OptimizerConfig& c)
      : Optimizer<T>(get(c, "lr", 1e-2)),
        alpha_(get(c, "alpha", 0.99)),
        eps_(get(c, "eps", 1e-8)),
        wd_(get(c, "weight_decay", 0)),
        momentum_(get(c, "momentum", 0)),
        centered_(get(c, "centered", 0) != 0) {
    check(this->lr >= 0, "learning rate", this->lr);  // torch accepts 0 (schedules reach it)
    check(eps_ >= 0, "epsilon value", eps_);
    check(momentum_ >= 0, "momentum value", momentum_);
    check(wd_ >= 0, "weight_decay value", wd_);
    check(alpha_ >= 0, "alpha value", alpha_);
  }
  std::string name() const override { return "rmsprop"; }
  std::vector<std::string> state_names() const override {
    std::vector<std::string> names{"square_avg"};
    if (momentum_ > 0) names.push_back("momentum_buffer");
    if (centered_) names.push_back("grad_avg");
    return names;
  }

 protected:
  MagnitudeBits<T> update(T* p, const T* g, T* const* s, std::size_t n) const override {
    const T rate = T(this->step_lr_), a = T(alpha_), w = T(1 - alpha_), eps = T(eps_), wd = T(wd_),
            mu = T(momentum_);
    MagnitudeBits<T> most = 0;
    T* sq = s[0];
    T* buf = momentum_ > 0 ? s[1] : nullptr;
    T* ga = centered_ ? s[momentum_ > 0 ? 2 : 1] : nullptr;
    for (std::size_t i = 0; i < n; ++i) {
      const T grad = wd_ != 0 ? g[i] + wd * p[i] : g[i];
      sq[i] = sq[i] * a + w * grad * grad;
      T avg;
      if (centered_) {
        ga[i] = lerp(ga[i], grad, w);
        avg = std::sqrt(sq[i] + -T(1) * ga[i] * ga[i]) + eps;
      } else {
        avg = std::sqrt(sq[i]) + eps;
      }
      if (buf) {
        buf[i] = buf[i] * mu + grad / avg;
        p[i] += -rate * buf[i];
      } else {
        p[i] += -rate * (grad / avg);
      }
      const MagnitudeBits<T> b = magnitude_bits(p[i]);
      most = b > most ? b : most;
    }
    return most;
  }
  // The denominator is at least eps while the mean square stays >= 0, so
  // not centered (sqrt of a mean square minus a squared mean that rounding
  // made negative is NaN) nor with alpha > 1 (a negative weight on g^2).
  double bound_step(double P, double G, const double* S, double* S_next) const override {
    const double rate = this->magnitude(T(this->step_lr_)), a = this->magnitude(T(alpha_)),
                 wd = this->magnitude(T(wd_)), mu = this->magnitude(T(momentum_)),
                 eps = this->floor_of(T(eps_));
    const double grad = G + wd * P;
    S_next[0] = a * S[0] + this->magnitude(T(1 - alpha_)) * grad * grad;
    const std::size_t ga = momentum_ > 0 ? 2 : 1;
    if (centered_) S_next[ga] = this->worst({S[ga], grad});
    double step = grad / eps;
    if (momentum_ > 0) step = S_next[1] = mu * S[1] + step;
    if (centered_ || T(1 - alpha_) < T(0)) return this->kUnbounded;
    return this->worst({P + rate * step, step, grad, S_next[0]});
  }
  bool nonnegative_state(std::size_t which) const override { return which == 0; }

 private:
  double alpha_, eps_, wd_, momentum_;
  bool centered_;
};

// Adagrad (Duchi et al. 2011), torch's rule:
//   g = grad + wd p;  clr = lr / (1 + (t - 1) lr_decay);  sum += g^2
//   p -= clr g / (sqrt(sum) + eps)
template <class T>
class Adagrad final : public Optimizer<T> {
 public:
  explicit Adagrad(const OptimizerConfig& c)
      : Optimizer<T>(get(c, "lr", 1e-2)),
        lr_decay_(get(c, "lr_decay", 0)),
        wd_(get(c, "weight_decay", 0)),
        initial_(get(c, "initial_accumulator_value", 0)),
        eps_(get(c, "eps", 1e-10)) {
    check(this->lr >= 0, "learning rate", this->lr);  // torch accepts 0 (schedules reach it)
    check(lr_decay_ >= 0, "lr_decay value", lr_decay_);
    check(wd_ >= 0, "weight_decay value", wd_);
    check(initial_ >= 0, "initial_accumulator_value value", initial_);
    check(eps_ >= 0, "epsilon value", eps_);
  }
  std::string name() const override { return "adagrad"; }
  std::vector<std::string> state_names() const override { return {"sum"}; }

 protected:
  T initial_state(std::size_t) const override { return T(initial_); }
  MagnitudeBits<T> update(T* p, const T* g, T* const* s, std::size_t n) const override {
    const T clr = T(this->step_lr_ / (1 + static_cast<double>(this->t_ - 1) * lr_decay_));
    const T eps = T(eps_), wd = T(wd_);
    T* sum = s[0];
    MagnitudeBits<T> most = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const T grad = wd_ != 0 ? g[i] + wd * p[i] : g[i];
      sum[i] += grad * grad;
      p[i] += -clr * (grad / (std::sqrt(sum[i]) + eps));
      const MagnitudeBits<T> b = magnitude_bits(p[i]);
      most = b > most ? b : most;
    }
    return most;
  }
  double bound_step(double P, double G, const double* S, double* S_next) const override {
    const double clr = this->magnitude(T(this->step_lr_ / (1 + static_cast<double>(this->t_ - 1) * lr_decay_)));
    const double grad = G + this->magnitude(T(wd_)) * P, eps = this->floor_of(T(eps_));
    S_next[0] = S[0] + grad * grad;
    return this->worst({P + clr * grad / eps, grad / eps, grad, S_next[0]});
  }
  bool nonnegative_state(std::size_t) const override { return true; }

 private:
  double lr_decay_, wd_, initial_, eps_;
};

// Rprop (Riedmiller & Braun 1993), torch's rule: per element, the step grows
// by eta_plus while the gradient keeps its sign, shrinks by eta_minus when it
// flips (and that step is skipped), within [step_min, step_max].
template <class T>
class Rprop final : public Optimizer<T> {
 public:
  explicit Rprop(const OptimizerConfig& c)
      : Optimizer<T>(get(c, "lr", 1e-2)),
        eta_minus_(get(c, "eta_minus", 0.5)),
        eta_plus_(get(c, "eta_plus", 1.2)),
        step_min_(get(c, "step_min", 1e-6)),
        step_max_(get(c, "step_max", 50)) {
    check(this->lr >= 0, "learning rate", this->lr);  // torch accepts 0 (schedules reach it)
    if (!(0 < eta_minus_ && eta_minus_ < 1 && 1 < eta_plus_))
      throw std::invalid_argument("Invalid eta values: " + std::to_string(eta_minus_) + ", " +
                                  std::to_string(eta_plus_));
    check(step_min_ >= 0 && step_min_ <= step_max_, "step sizes minimum", step_min_);
  }
  std::string name() const override { return "rprop"; }
  std::vector<std::string> state_names() const override { return {"prev", "step_size"}; }

 protected:
  T initial_state(std::size_t which) const override { return which == 1 ? T(this->step_lr_) : T(0); }
  MagnitudeBits<T> update(T* p, const T* g, T* const* s, std::size_t n) const override {
    const T up = T(eta_plus_), down = T(eta_minus_), lo = T(step_min_), hi = T(step_max_);
    T* prev = s[0];
    T* step = s[1];
    MagnitudeBits<T> most = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const T prod = g[i] * prev[i];
      const T factor = prod > T(0) ? up : prod < T(0) ? down : T(1);
      step[i] = std::min(std::max(step[i] * factor, lo), hi);
      const T grad = prod < T(0) ? T(0) : g[i];
      const T sign = grad > T(0) ? T(1) : grad < T(0) ? T(-1) : T(0);
      p[i] += -sign * step[i];
      prev[i] = grad;
      const MagnitudeBits<T> b = magnitude_bits(p[i]);
      most = b > most ? b : most;
    }
    return most;
  }
  // Each step moves a parameter by at most its step size, kept within [step_min, step_max].
  double bound_step(double P, double G, const double* S, double* S_next) const override {
    const double up = this->magnitude(T(eta_plus_)), lo = this->magnitude(T(step_min_)),
                 hi = static_cast<double>(T(step_max_));  // +inf (no cap) is a valid cap here
    S_next[0] = G;
    S_next[1] = std::min(std::max(S[1] * up, lo), hi);
    return this->worst({P + S_next[1], S[1] * up});  // the step grows before it is clamped
  }

 private:
  double eta_minus_, eta_plus_, step_min_, step_max_;
};

}  // namespace

std::vector<std::string> optimizer_names() {
  return {"sgd", "adam", "adamw", "rmsprop", "adagrad", "rprop"};
}

template <class T>
std::unique_ptr<Optimizer<T>> make_optimizer(const OptimizerConfig& c) {
  if (c.name == "sgd") return std::make_unique<Sgd<T>>(c);
  if (c.name == "adam") return std::make_unique<Adam<T>>(c);
  if (c.name == "adamw") return std::make_unique<AdamW<T>>(c);
  if (c.name == "rmsprop") return std::make_unique<RmsProp<T>>(c);
  if (c.name == "adagrad") return std::make_unique<Adagrad<T>>(c);
  if (c.name == "rprop") return std::make_unique<Rprop<T>>(c);
  throw unknown_name("optimizer", c.name, optimizer_names());
}

template class Optimizer<float>;
template class Optimizer<double>;
template std::unique_ptr<Optimizer<float>> make_optimizer<float>(const OptimizerConfig&);
template std::unique_ptr<Optimizer<double>> make_optimizer<double>(const OptimizerConfig&);

}  // namespace bpx
