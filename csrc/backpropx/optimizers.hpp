// Optimizers over the network's flat buffers, with torch.optim's update rules
// and defaults, so one step can be checked against it. Each is a per-element
// update; state (momentum, moments, ...) is one flat buffer per quantity,
// covering only the trainable ranges (frozen layers carry no state).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backpropx/network.hpp"

namespace bpx {

template <class T>
class Optimizer {
 public:
  explicit Optimizer(double learning_rate) : lr(learning_rate) {}
  virtual ~Optimizer() = default;

  virtual std::string name() const = 0;
  // Names of the per-element state buffers, e.g. {"exp_avg", "exp_avg_sq"}.
  virtual std::vector<std::string> state_names() const = 0;

  // One update of params from grads over the given ranges. The first step,
  // or a step over ranges of a different total size, starts fresh state.
  void step(T* params, const T* grads, const std::vector<Segment>& segments);

  std::int64_t steps() const { return t_; }
  void set_steps(std::int64_t t) { t_ = t; }
  std::vector<std::vector<T>>& state() { return state_; }
  // Restores buffers taken from state() (a checkpoint) and the step count.
  void load_state(std::vector<std::vector<T>> state, std::int64_t steps);
  void reset() {
    t_ = 0;
    state_.clear();
    layout_.clear();
    state_ready_ = false;
  }

  double lr;  // schedules change it between steps

 protected:
  // Value state buffer `which` holds before the first step.
  virtual T initial_state(std::size_t /*which*/) const { return T(0); }
  // Updates count elements; s[i] points at this range of state buffer i.
  // t_ is already the number of this step (1 for the first).
  virtual void update(T* p, const T* g, T* const* s, std::size_t count) const = 0;

  std::int64_t t_ = 0;

 private:
  static constexpr std::size_t kMaxStateBuffers = 4;
  std::vector<std::vector<T>> state_;
  bool state_ready_ = false;
  std::vector<Segment> layout_;  // the ranges the state belongs to
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
