// Activations: one scalar f/df pair each plus one entry in BPX_ACTIVATIONS.
// Bindings, Python names and tests iterate that list, so adding an activation
// is one struct and one list entry here (and its equation in the reference).
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

namespace bpx {

// X(enum name, struct implementing it). Element-wise activations form one
// list; identity (no work) and row-wise softmax are handled by the array
// functions themselves.
#define BPX_ELEMENTWISE_ACTIVATIONS(X) \
  X(sigmoid, SigmoidAct)               \
  X(tanh, TanhAct)                     \
  X(relu, ReluAct)                     \
  X(leaky_relu, LeakyReluAct)          \
  X(elu, EluAct)                       \
  X(gelu, GeluAct)

#define BPX_ACTIVATIONS(X)           \
  X(identity, IdentityAct)           \
  BPX_ELEMENTWISE_ACTIVATIONS(X)     \
  X(softmax, IdentityAct)

enum class Activation {
#define BPX_ENUM_ENTRY(name, impl) name,
  BPX_ACTIVATIONS(BPX_ENUM_ENTRY)
#undef BPX_ENUM_ENTRY
};

// df(z, y) is the derivative at z; y = f(z) is passed because it is cheaper
// for sigmoid and tanh. Derivatives at kinks follow PyTorch (relu'(0) = 0,
// leaky_relu'(0) = slope, elu'(0) = 1).
struct IdentityAct {
  template <class T> static T f(T z) { return z; }
  template <class T> static T df(T, T) { return T(1); }
};
struct SigmoidAct {
  // exp of a non-positive number only, so |z| up to 1e4 cannot overflow.
  template <class T> static T f(T z) {
    if (z >= T(0)) return T(1) / (T(1) + std::exp(-z));
    const T e = std::exp(z);
    return e / (T(1) + e);
  }
  template <class T> static T df(T, T y) { return y * (T(1) - y); }
};
struct TanhAct {
  template <class T> static T f(T z) { return std::tanh(z); }
  template <class T> static T df(T, T y) { return T(1) - y * y; }
};
struct ReluAct {
  // NaN propagates (NaN < 0 is false), as in torch; -0 stays -0.
  template <class T> static T f(T z) { return z < T(0) ? T(0) : z; }
  template <class T> static T df(T z, T) { return z > T(0) ? T(1) : T(0); }
};
struct LeakyReluAct {
  static constexpr double slope = 0.01;
  template <class T> static T f(T z) { return z > T(0) ? z : T(slope) * z; }
  template <class T> static T df(T z, T) { return z > T(0) ? T(1) : T(slope); }
};
struct EluAct {  // alpha = 1
  template <class T> static T f(T z) { return z > T(0) ? z : std::expm1(z); }
  template <class T> static T df(T z, T) { return z > T(0) ? T(1) : std::exp(z); }
};
struct GeluAct {  // exact form: z * Phi(z)
  template <class T> static T f(T z) {
    return T(0.5) * z * (T(1) + std::erf(z * T(0.70710678118654752440)));
  }
  template <class T> static T df(T z, T) {
    const T cdf = T(0.5) * (T(1) + std::erf(z * T(0.70710678118654752440)));
    const T pdf = T(0.39894228040143267794) * std::exp(T(-0.5) * z * z);
    return cdf + z * pdf;
  }
};

const char* activation_name(Activation a);
// Throws std::invalid_argument naming the valid choices.
Activation activation_from_name(const std::string& name);
std::vector<std::string> activation_names();

// The Dense layer's epilogue in one pass over memory: z += bias (per row;
// bias may be null), then y = f(z). y may alias z; z keeps the
// pre-activation when they differ.
template <class T>
void bias_activation_forward(Activation a, const T* bias, T* z, T* y, std::size_t rows,
                             std::size_t cols);

// y = f(x) over rows of cols values (softmax: per row); y may alias x.
template <class T>
void activation_forward(Activation a, const T* x, T* y, std::size_t rows, std::size_t cols);

// The Dense layer's backward prologue in one pass: dy becomes dz = dy * f'(z)
// (softmax: its Jacobian-vector product), and db += column sums of dz when db
// is not null. db is summed in row order, whatever the thread count.
template <class T>
void activation_backward_bias(Activation a, const T* z, const T* y, T* dy, T* db,
                              std::size_t rows, std::size_t cols);

}  // namespace bpx
