// Saving and loading networks from C++ in the file format of the Python
// package (backpropx.io): a safetensors file with one tensor per parameter
// ("{k}.weight", "{k}.bias", ...) and, in its metadata, "format" = "backpropx",
// "format_version" = "1", "dtype", "seed", "input_shape" (a JSON list, per
// sample), "layers" (a JSON list of layer configurations, each with "kind",
// its options, nested "layers" for containers, and "trainable") and the
// caller's metadata under "extra." keys. A file saved here loads with
// `backpropx.Network.load`, and one saved by Python loads here.
//
// The io knows no layer kind: configurations go through LayerConfig and the
// registry (Network builds them), so every kind it builds is saved and loaded.
//
//   auto model = bpx::io::build_model<float>({dense(2, 8, "tanh"), dense(8, 1, "sigmoid")}, 0);
//   ... train model.network ...
//   bpx::io::save_model("xor.safetensors", model);
//   auto again = bpx::io::load_model<float>("xor.safetensors");
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backpropx/layers/registry.hpp"
#include "backpropx/network.hpp"

namespace bpx::io {

template <class T>
struct Model {
  std::vector<LayerConfig> layers;              // how each layer was built
  Shape input_shape;                            // per sample; empty when the first layer implies it
  std::uint64_t seed = 0;                       // of the initial weights
  std::unique_ptr<Network<T>> network;
  std::map<std::string, std::string> metadata;  // e.g. "classes" (a JSON list); Python's Network.metadata
};

// Builds a Network from the layer configurations, seeded with `seed`.
template <class T>
Model<T> build_model(std::vector<LayerConfig> layers, std::uint64_t seed, Shape input_shape = {});

// Writes the model atomically. std::invalid_argument for what the format
// cannot hold (a non-finite real option); std::system_error for I/O.
template <class T>
void save_model(const std::string& path, const Model<T>& model);

// Reads and checks a model file; T must be the file's dtype ("float32" is
// float, "float64" double: see file_dtype). Every size, offset, dtype, shape
// and value is checked before the network is built; a hostile or damaged
// file raises std::invalid_argument naming the problem.
template <class T>
Model<T> load_model(const std::string& path);

// The "dtype" a model file records ("float32" or "float64"), after the same checks of the header.
std::string file_dtype(const std::string& path);

}  // namespace bpx::io
