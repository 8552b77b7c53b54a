// Optimizers over the network's flat buffers, with torch.optim's update rules
// and defaults, so one step can be checked against it. Each is a per-element
// update; state (momentum, moments, ...) is one flat buffer per quantity,
// covering only the trainable ranges (frozen layers carry no state).
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backpropx/network.hpp"
#include "backpropx/reductions.hpp"

namespace bpx {

// What one step reports about the parameters it wrote.
struct StepReport {
  bool finite = true;    // every updated parameter is finite
  double param_max = 0;  // the largest |p| over the updated ranges (+inf when not finite)
};

// For update ratios: per updated range, the sum of (p_after - p_before)^2
// and of p_before^2, gathered while stepping (no copy of the parameters).
struct UpdateSums {
  std::vector<double> delta_sq, before_sq;
};

template <class T>
class Optimizer {
 public:
  explicit Optimizer(double learning_rate) : lr(learning_rate) {}
  virtual ~Optimizer() = default;

  virtual std::string name() const = 0;
  // Names of the per-element state buffers, e.g. {"exp_avg", "exp_avg_sq"}.
  virtual std::vector<std::string> state_names() const = 0;

  // One update of params from grads over the given ranges, in three calls:
  // begin_step starts step number steps() + 1 (the first step, or a step
  // over ranges of a different total size, starts fresh state); step_bound
  // bounds what it can write; run_step applies it in place.
  void begin_step(const std::vector<Segment>& segments);
  // An upper bound on every |p| after the begun step, given |p| <= param_max
  // and |g| <= grad_max before it, from the rule and bounds on its state kept
  // since the state started: +inf when the rule has none (a zero eps can
  // divide 0 by 0). A finite bound well below the type's range proves that
  // the step cannot overflow, so the caller needs no copy to undo it.
  double step_bound(double param_max, double grad_max);
  // Applies the begun step, reporting whether the parameters it wrote are
  // finite and their largest magnitude (taken in the loop that writes them);
  // fills `sums` (one entry per segment) when given. Results do not depend
  // on the thread count.
  StepReport run_step(T* params, const T* grads, const std::vector<Segment>& segments,
                      double param_max, double grad_max, UpdateSums* sums = nullptr);

  std::int64_t steps() const { return t_; }
  void set_steps(std::int64_t t) {
    require(t >= 0, "optimizer step count must be non-negative");
    t_ = t;
  }
  std::vector<std::vector<T>>& state() { return state_; }
  // Restores buffers taken from state() (a checkpoint) and the step count.
  void load_state(std::vector<std::vector<T>> state, std::int64_t steps);
  void reset() {
    t_ = 0;
    state_.clear();
    state_bound_.clear();
    state_signs_ok_ = true;
    layout_.clear();
    state_ready_ = false;
  }

  double lr;  // schedules change it between steps

 protected:
  // Value state buffer `which` holds before the first step.
  virtual T initial_state(std::size_t /*which*/) const { return T(0); }
  // Updates count elements; s[i] points at this range of state buffer i.
  // t_ is already the number of this step (1 for the first). Returns the
  // largest magnitude_bits of the new parameters (reductions.hpp), taken
  // in the loop that writes them.
  virtual MagnitudeBits<T> update(T* p, const T* g, T* const* s, std::size_t count) const = 0;
  // The rule's bounds for step t_: given |p| <= P, |g| <= G and |state i| <=
  // S[i] before it, returns a bound on every |p| after it and on every value
  // computed on the way whose overflow would reach p (+inf when there is
  // none), and writes bounds on the state after it into S_next. Exact
  // arithmetic is enough: step_bound's caller leaves a wide margin for rounding.
  virtual double bound_step(double P, double G, const double* S, double* S_next) const = 0;
  // Buffers whose elements the rule keeps >= 0 (second moments), which its
  // bound relies on; a loaded state with a negative one there gets no bound.
  virtual bool nonnegative_state(std::size_t /*which*/) const { return false; }

  // Helpers for bound_step. The largest of some bounds, +inf when one is
  // NaN (an infinite coefficient times zero) or infinite.
  static double worst(std::initializer_list<double> bounds) {
    double most = 0;
    for (double b : bounds) {
      if (!(b <= std::numeric_limits<double>::max())) return kUnbounded;
      most = b > most ? b : most;
    }
    return most;
  }
  // |x| of a coefficient as the loop uses it, in T: +inf when it overflowed T.
  static double magnitude(T x) { return std::isfinite(x) ? std::fabs(static_cast<double>(x)) : kUnbounded; }
  // eps as the floor of a denominator: 0 (so no bound) unless a normal
  // number of T, since flush-to-zero arithmetic treats a subnormal as zero.
  static double floor_of(T eps) {
    return std::isfinite(eps) && eps >= std::numeric_limits<T>::min() ? static_cast<double>(eps) : 0.0;
  }
  static constexpr double kUnbounded = std::numeric_limits<double>::infinity();

  std::int64_t t_ = 0;
  double step_lr_ = 0;  // lr as begin_step found it: another thread changing lr mid-step changes nothing

 private:
  static constexpr std::size_t kMaxStateBuffers = 4;
  std::vector<std::vector<T>> state_;
  std::vector<double> state_bound_;  // >= max |state_[i]|
  bool state_signs_ok_ = true;       // no negative element where nonnegative_state says there is none
  bool state_ready_ = false;
  std::vector<Segment> layout_;  // the ranges the state belongs to
  std::vector<double> block_max_, block_delta_sq_, block_before_sq_;  // run_step's per-block results
};

struct OptimizerConfig {
  std::string name;
  std::map<std::string, double> values;  // hyper-parameters; booleans as 0/1
};

// Builds the optimizer `config.name` (sgd, adam, adamw, rmsprop, adagrad,
// rprop). Hyper-parameters missing from config take torch's defaults;
// invalid values throw std::invalid_argument naming them.
template <class T>
std::unique_ptr<Optimizer<T>> make_optimizer(const OptimizerConfig& config);

std::vector<std::string> optimizer_names();

}  // namespace bpx
