// Weight initialisation, drawn in double from the seeded Rng and rounded to T,
// so float32 and float64 networks built with one seed start from the same
// values (up to rounding).
//   he      N(0, 2 / IN)                     He et al. 2015, for relu-like units
//   xavier  U(-a, a), a = sqrt(6 / (IN+OUT))  Glorot & Bengio 2010 ("glorot")
//   lecun   N(0, 1 / IN)                      LeCun et al. 1998
//   uniform U(-1/sqrt(IN), 1/sqrt(IN))        torch.nn.Linear's default (bias too)
//   normal  N(0, 0.01^2)
//   zeros   all zero
//   ones    all one (normalisation scales; not offered by name)
// Biases start at zero except with `uniform`, which draws them as torch does.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "backpropx/activations.hpp"
#include "backpropx/rng.hpp"

namespace bpx {

enum class Init { he, xavier, lecun, uniform, normal, zeros, ones };

// Biases start at zero except under `uniform`, which draws them as torch does.
enum class ParamRole { weight, bias };

// "default" picks by activation: he for relu, leaky_relu, elu and gelu;
// xavier for identity, sigmoid, tanh and softmax. "glorot" is xavier.
Init init_from_name(const std::string& name, Activation activation);
const char* init_name(Init init);
std::vector<std::string> init_names();

// Fills count values of one parameter tensor; fan_in/fan_out as for a
// Dense weight (IN, OUT), or a convolution's IN*k and OUT*k.
template <class T>
void init_tensor(Init init, ParamRole role, T* p, std::size_t count, std::size_t fan_in,
                 std::size_t fan_out, Rng& rng);

}  // namespace bpx
