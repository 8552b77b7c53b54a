// What training minimises beyond the loss: the L2 penalty (shared by the
// mini-batch Trainer and the full-batch objective), and the full-batch
// objective itself, which quasi-Newton solvers such as L-BFGS evaluate at
// parameter vectors of their choosing (scipy's L-BFGS-B drives it from
// Python; see backpropx/lbfgs.py).
#pragma once

#include <cstddef>
#include <vector>

#include "backpropx/network.hpp"

namespace bpx {

// L2 penalty on the tensors of trainable layers whose ParamSpec asks for it
// (weights, not biases), as scikit-learn's MLP `alpha`: adds
// alpha * W / batch_weight to their gradients and returns
// 0.5 * alpha * ||W||^2 / batch_weight.
template <class T>
double add_l2_penalty(Network<T>& net, double alpha, double batch_weight);

// The (weighted) mean loss over all n rows plus the L2 penalty (with the
// rows' weight sum as batch_weight), and its gradient. Rows are run in
// chunks (`chunk` rows; 0: about 2 MiB of work buffers each) through
// one workspace allocated here, so an evaluation allocates nothing; dropout
// and other training-time layers are off (the objective must be a
// deterministic function of the parameters).
template <class T>
class FullBatchObjective {
 public:
  FullBatchObjective(Network<T>& net, Input<T> x, Targets<T> y, std::size_t n, Loss loss,
                     double alpha, std::size_t chunk = 0);

  // Sets the network's parameters to w (P values, rounded to T), evaluates,
  // writes grad (P) = scale * d objective / dw and returns scale * objective.
  // A non-finite objective is returned as is (a line search backs off from
  // it); grad is then not meaningful.
  double evaluate(const double* w, double* grad, double scale);

  std::size_t evaluations() const { return evaluations_; }

 private:
  Network<T>& net_;
  Input<T> x_;
  Targets<T> y_;
  std::size_t n_, chunk_;
  Loss loss_;
  double alpha_, weight_total_;
  Workspace<T> ws_;
  std::size_t evaluations_ = 0;
};

}  // namespace bpx
