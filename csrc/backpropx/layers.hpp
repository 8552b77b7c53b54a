// The layer registry: builds any layer from a plain description, so the
// bindings need no per-layer code. Adding a layer: its class, one branch in
// make_layer (layers.cpp), and its Python class.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "backpropx/layer.hpp"

namespace bpx {

struct LayerConfig {
  std::string kind;
  std::map<std::string, long long> ints;
  std::map<std::string, double> reals;
  std::map<std::string, std::string> strings;
};

template <class T>
std::unique_ptr<Layer<T>> make_layer(const LayerConfig& config);

}  // namespace bpx
