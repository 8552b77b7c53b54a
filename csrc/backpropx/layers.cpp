#include "backpropx/layers.hpp"

#include "backpropx/dense.hpp"
#include "backpropx/dropout.hpp"

namespace bpx {

namespace {
long long get_int(const LayerConfig& c, const std::string& key) {
  auto it = c.ints.find(key);
  require(it != c.ints.end(), c.kind + " layer needs an integer '" + key + "'");
  return it->second;
}
std::string get_string(const LayerConfig& c, const std::string& key, const std::string& fallback) {
  auto it = c.strings.find(key);
  return it == c.strings.end() ? fallback : it->second;
}
std::size_t get_size(const LayerConfig& c, const std::string& key) {
  const long long v = get_int(c, key);
  require(v > 0, c.kind + " layer: " + key + " must be a positive integer, got " + std::to_string(v));
  return static_cast<std::size_t>(v);
}
}  // namespace

template <class T>
std::unique_ptr<Layer<T>> make_layer(const LayerConfig& c) {
  if (c.kind == "dense") {
    const Activation act = activation_from_name(get_string(c, "activation", "identity"));
    const Init init = init_from_name(get_string(c, "init", "default"), act);
    const bool bias = c.ints.count("bias") ? get_int(c, "bias") != 0 : true;
    return std::make_unique<Dense<T>>(get_size(c, "in_features"), get_size(c, "out_features"), bias,
                                      act, init);
  }
  if (c.kind == "dropout") {
    auto it = c.reals.find("p");
    require(it != c.reals.end(), "dropout layer needs a probability 'p'");
    return std::make_unique<Dropout<T>>(get_size(c, "features"), it->second);
  }
  throw std::invalid_argument("unknown layer kind '" + c.kind + "'; expected one of: dense, dropout");
}

template std::unique_ptr<Layer<float>> make_layer<float>(const LayerConfig&);
template std::unique_ptr<Layer<double>> make_layer<double>(const LayerConfig&);

}  // namespace bpx
