#include "backpropx/update.hpp"

#include <algorithm>

namespace bpx {

template <class T>
void check_gradients_finite(const Network<T>& net, const std::vector<Segment>& segments,
                            const std::string& what) {
  for (const Segment& s : segments)
    if (!all_finite(net.grads() + s.offset, s.size))
      throw NonFiniteError("non-finite gradient at " + what + "; the update was not applied");
}

template <class T>
void apply_update(Network<T>& net, Optimizer<T>& opt, const std::vector<Segment>& segments,
                  std::vector<T>& before, const std::string& what) {
  // A snapshot (one copy, cheap next to the products) lets an update that
  // overflows be undone, so the network always ends finite.
  before.resize(net.num_params());
  std::copy(net.params(), net.params() + net.num_params(), before.begin());
  opt.step(net.params(), net.grads(), segments);
  if (!all_finite(net.params(), net.num_params())) {
    std::copy(before.begin(), before.end(), net.params());
    opt.reset();  // its moments saw the overflow too
    // Finite gradients from non-finite weights: a bounded activation hid
    // weights written from outside (tanh(inf) = 1); say so, not "overflow".
    if (!all_finite(before.data(), before.size()))
      throw NonFiniteError("parameters were not finite before " + what +
                           " (written through a view?); the update was undone and the optimizer "
                           "state restarted");
    throw NonFiniteError("the update of " + what +
                         " made parameters non-finite; it was undone and the optimizer state restarted");
  }
}

#define BPX_INSTANTIATE(T)                                                                        \
  template void check_gradients_finite<T>(const Network<T>&, const std::vector<Segment>&,         \
                                          const std::string&);                                    \
  template void apply_update<T>(Network<T>&, Optimizer<T>&, const std::vector<Segment>&,          \
                                std::vector<T>&, const std::string&);
BPX_INSTANTIATE(float)
BPX_INSTANTIATE(double)
#undef BPX_INSTANTIATE

}  // namespace bpx
