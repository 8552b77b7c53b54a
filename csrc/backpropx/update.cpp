#include "backpropx/update.hpp"

#include <algorithm>

#include "backpropx/reductions.hpp"

namespace bpx {

template <class T>
double check_gradients_finite(const Network<T>& net, const std::vector<Segment>& segments,
                              const std::string& what) {
  double most = 0;
  for (const Segment& s : segments) most = std::max(most, max_abs(net.grads() + s.offset, s.size));
  if (!(most < kUnknownBound))
    throw NonFiniteError("non-finite gradient at " + what + "; the update was not applied");
  return most;
}

template <class T>
double apply_update(Network<T>& net, Optimizer<T>& opt, const std::vector<Segment>& segments,
                    double grad_max, double param_max, std::vector<T>& undo, const std::string& what,
                    UpdateSums* sums) {
  if (!(param_max < kUnknownBound)) {
    param_max = 0;
    for (const Segment& s : segments) param_max = std::max(param_max, max_abs(net.params() + s.offset, s.size));
  }
  opt.begin_step(segments);
  const double limit = static_cast<double>(std::numeric_limits<T>::max()) / 4;
  if (opt.step_bound(param_max, grad_max) <= limit) {
    const StepReport r = opt.run_step(net.params(), net.grads(), segments, param_max, grad_max, sums);
    // The bound proved this cannot happen; if it ever did, no copy exists to undo it.
    if (!r.finite)
      throw NonFiniteError("internal error: the update of " + what +
                           " made parameters non-finite despite its bound, and could not be undone");
    return r.param_max;
  }
  std::size_t total = 0;
  for (const Segment& s : segments) total += s.size;
  undo.resize(total);
  T* out = undo.data();
  for (const Segment& s : segments) out = std::copy(net.params() + s.offset, net.params() + s.offset + s.size, out);
  const StepReport r = opt.run_step(net.params(), net.grads(), segments, param_max, grad_max, sums);
  if (r.finite) return r.param_max;
  const T* in = undo.data();
  for (const Segment& s : segments) {
    std::copy(in, in + s.size, net.params() + s.offset);
    in += s.size;
  }
  opt.reset();  // its moments saw the overflow too
  // Finite gradients from non-finite weights: a bounded activation hid
  // weights written from outside (tanh(inf) = 1); say so, not "overflow".
  if (!(param_max < kUnknownBound))
    throw NonFiniteError("parameters were not finite before " + what +
                         " (written through a view?); the update was undone and the optimizer "
                         "state restarted");
  throw NonFiniteError("the update of " + what +
                       " made parameters non-finite; it was undone and the optimizer state restarted");
}

#define BPX_INSTANTIATE(T)                                                                          \
  template double check_gradients_finite<T>(const Network<T>&, const std::vector<Segment>&,         \
                                            const std::string&);                                    \
  template double apply_update<T>(Network<T>&, Optimizer<T>&, const std::vector<Segment>&, double,  \
                                  double, std::vector<T>&, const std::string&, UpdateSums*);
BPX_INSTANTIATE(float)
BPX_INSTANTIATE(double)
#undef BPX_INSTANTIATE

}  // namespace bpx
