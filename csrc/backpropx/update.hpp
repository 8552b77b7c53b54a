// One optimizer step on a network, with the guarantees every caller (the
// epoch loop, a manual opt.step(net)) shares: a non-finite gradient is
// refused before anything changes, and an update that makes a parameter
// non-finite is undone, with the optimizer state restarted.
//
// Undoing needs the parameters as they were, but copying them costs a pass
// over parameter memory on every step for an event that almost never
// happens. So the step is first bounded: from the largest |p| and |g| and
// the optimizer's bounds on its state, Optimizer::step_bound bounds every
// value the step can write. Below a quarter of the type's range (a margin
// far beyond rounding), the step provably stays finite and runs in place
// with no copy; only an unbounded step (huge values, or a rule with no
// bound, such as a zero eps) keeps a copy to undo it.
#pragma once

#include <limits>
#include <string>
#include <vector>

#include "backpropx/network.hpp"
#include "backpropx/optimizers.hpp"

namespace bpx {

// Marks a bound that the caller does not know (apply_update measures it).
constexpr double kUnknownBound = std::numeric_limits<double>::infinity();

// The largest |g| over the trainable ranges, in one pass; throws
// NonFiniteError naming `what` when a gradient is not finite.
template <class T>
double check_gradients_finite(const Network<T>& net, const std::vector<Segment>& segments,
                              const std::string& what);

// Steps `segments` of the network's parameters, given grad_max >= every
// |g| there (kUnknownBound if not known) and param_max >= every |p| there
// (kUnknownBound: measured here, one read of the parameters). Returns the
// largest |p| after the step, which the next step may pass as param_max when
// nothing else wrote the parameters in between. `undo` is the copy an
// unbounded step keeps (reused between calls). `sums`, when given, receives
// the update-ratio sums of each segment.
template <class T>
double apply_update(Network<T>& net, Optimizer<T>& opt, const std::vector<Segment>& segments,
                    double grad_max, double param_max, std::vector<T>& undo, const std::string& what,
                    UpdateSums* sums = nullptr);

}  // namespace bpx
