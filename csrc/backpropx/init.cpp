#include "backpropx/init.hpp"

#include <algorithm>
#include <cmath>

#include "backpropx/common.hpp"

namespace bpx {

const char* init_name(Init init) {
  switch (init) {
    case Init::he: return "he";
    case Init::xavier: return "xavier";
    case Init::lecun: return "lecun";
    case Init::uniform: return "uniform";
    case Init::normal: return "normal";
    case Init::zeros: return "zeros";
    case Init::ones: return "ones";
  }
  return "unknown";
}

std::vector<std::string> init_names() {
  return {"default", "he", "xavier", "glorot", "lecun", "uniform", "normal", "zeros"};
}

Init init_from_name(const std::string& name, Activation activation) {
  if (name == "default") {
    switch (activation) {
      case Activation::relu:
      case Activation::leaky_relu:
      case Activation::elu:
      case Activation::gelu:
        return Init::he;
      default:
        return Init::xavier;
    }
  }
  if (name == "glorot") return Init::xavier;
  for (Init i : {Init::he, Init::xavier, Init::lecun, Init::uniform, Init::normal, Init::zeros})
    if (name == init_name(i)) return i;
  throw unknown_name("init", name, init_names());
}

template <class T>
void init_tensor(Init init, ParamRole role, T* p, std::size_t count, std::size_t fan_in,
                 std::size_t fan_out, Rng& rng) {
  const double in = static_cast<double>(fan_in), out = static_cast<double>(fan_out);
  auto fill_normal = [&](double std) {
    for (std::size_t i = 0; i < count; ++i) p[i] = static_cast<T>(std * rng.normal());
  };
  auto fill_uniform = [&](double bound) {
    for (std::size_t i = 0; i < count; ++i) p[i] = static_cast<T>(bound * (2.0 * rng.uniform() - 1.0));
  };
  if (role == ParamRole::bias) {
    if (init == Init::uniform) fill_uniform(1.0 / std::sqrt(in));
    else std::fill(p, p + count, T(0));
    return;
  }
  switch (init) {
    case Init::he: fill_normal(std::sqrt(2.0 / in)); break;
    case Init::xavier: fill_uniform(std::sqrt(6.0 / (in + out))); break;
    case Init::lecun: fill_normal(std::sqrt(1.0 / in)); break;
    case Init::uniform: fill_uniform(1.0 / std::sqrt(in)); break;
    case Init::normal: fill_normal(0.01); break;
    case Init::zeros: std::fill(p, p + count, T(0)); break;
    case Init::ones: std::fill(p, p + count, T(1)); break;
  }
}

template void init_tensor<float>(Init, ParamRole, float*, std::size_t, std::size_t, std::size_t, Rng&);
template void init_tensor<double>(Init, ParamRole, double*, std::size_t, std::size_t, std::size_t,
                                  Rng&);

}  // namespace bpx
