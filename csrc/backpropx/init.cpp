#include "backpropx/init.hpp"

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
void init_dense(Init init, T* weight, T* bias, std::size_t OUT, std::size_t IN, Rng& rng) {
  const std::size_t count = OUT * IN;
  const double fan_in = static_cast<double>(IN), fan_out = static_cast<double>(OUT);
  auto fill_normal = [&](T* p, std::size_t n, double std) {
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<T>(std * rng.normal());
  };
  auto fill_uniform = [&](T* p, std::size_t n, double bound) {
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<T>(bound * (2.0 * rng.uniform() - 1.0));
  };
  switch (init) {
    case Init::he: fill_normal(weight, count, std::sqrt(2.0 / fan_in)); break;
    case Init::xavier: fill_uniform(weight, count, std::sqrt(6.0 / (fan_in + fan_out))); break;
    case Init::lecun: fill_normal(weight, count, std::sqrt(1.0 / fan_in)); break;
    case Init::uniform: fill_uniform(weight, count, 1.0 / std::sqrt(fan_in)); break;
    case Init::normal: fill_normal(weight, count, 0.01); break;
    case Init::zeros: for (std::size_t i = 0; i < count; ++i) weight[i] = T(0); break;
  }
  if (bias == nullptr) return;
  if (init == Init::uniform) fill_uniform(bias, OUT, 1.0 / std::sqrt(fan_in));
  else for (std::size_t i = 0; i < OUT; ++i) bias[i] = T(0);
}

template void init_dense<float>(Init, float*, float*, std::size_t, std::size_t, Rng&);
template void init_dense<double>(Init, double*, double*, std::size_t, std::size_t, Rng&);

}  // namespace bpx
