// One optimizer step on a network, with the guarantees every caller (the
// epoch loop, a manual opt.step(net)) shares: a non-finite gradient is
// refused before anything changes, and an update that makes a parameter
// non-finite is undone, with the optimizer state restarted.
#pragma once

#include <string>
#include <vector>

#include "backpropx/network.hpp"
#include "backpropx/optimizers.hpp"

namespace bpx {

// Throws NonFiniteError naming `what` when a trainable gradient is not finite.
template <class T>
void check_gradients_finite(const Network<T>& net, const std::vector<Segment>& segments,
                            const std::string& what);

// Steps `segments` of the network's parameters. `before` receives the
// parameters as they were (reused between calls, so no allocation per step).
template <class T>
void apply_update(Network<T>& net, Optimizer<T>& opt, const std::vector<Segment>& segments,
                  std::vector<T>& before, const std::string& what);

}  // namespace bpx
