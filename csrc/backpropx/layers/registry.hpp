// The layer registry: builds any layer from a plain description, so the
// bindings, saved files and the C++ API need no per-layer code. Adding a
// layer kind is its class and one line in registry.cpp.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backpropx/layer.hpp"

namespace bpx {

struct LayerConfig {
  std::string kind;
  std::map<std::string, long long> ints;  // booleans as 0/1
  std::map<std::string, double> reals;
  std::map<std::string, std::string> strings;
  std::map<std::string, std::vector<long long>> int_lists;  // shapes, pairs
  std::vector<LayerConfig> layers;  // the sub-stack of a container (Residual)
};

// Typed access to a config, with errors that name the layer kind and key.
class ConfigReader {
 public:
  explicit ConfigReader(const LayerConfig& c) : c_(c) {}
  long long integer(const std::string& key) const;
  std::size_t size(const std::string& key) const;  // a positive integer
  std::size_t size_or(const std::string& key, std::size_t fallback) const;
  bool flag(const std::string& key, bool fallback) const;
  double real(const std::string& key, double fallback) const;
  std::string string(const std::string& key, const std::string& fallback) const;
  bool has(const std::string& key) const;
  std::vector<long long> int_list(const std::string& key) const;
  const LayerConfig& config() const { return c_; }

 private:
  const LayerConfig& c_;
};

// `input` is the per-sample shape the layer receives; empty when the layer
// is first and the network was given no input_shape (a layer that cannot
// infer its own then throws, naming input_shape).
template <class T>
using LayerFactory = std::unique_ptr<Layer<T>> (*)(const ConfigReader& config, const Shape& input);

template <class T>
struct LayerKind {
  const char* kind;
  std::vector<std::string> keys;  // every key its config may hold besides "kind"
  LayerFactory<T> make;
};

template <class T>
const std::vector<LayerKind<T>>& layer_kinds();

std::vector<std::string> layer_kind_names();

// Checks the kind and that every key is one it knows, then builds the layer.
template <class T>
std::unique_ptr<Layer<T>> make_layer(const LayerConfig& config, const Shape& input);

// Builds a sequence of layers, each fed the previous one's output shape.
// `where` prefixes errors ("layer 3", "layer 2.1").
template <class T>
std::vector<std::unique_ptr<Layer<T>>> make_layers(const std::vector<LayerConfig>& configs,
                                                   Shape input, const std::string& prefix);

}  // namespace bpx
