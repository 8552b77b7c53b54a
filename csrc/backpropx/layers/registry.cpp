#include "backpropx/layers/registry.hpp"

#include <algorithm>

#include "backpropx/layers/activation.hpp"
#include "backpropx/layers/conv.hpp"
#include "backpropx/layers/dense.hpp"
#include "backpropx/layers/dropout.hpp"
#include "backpropx/layers/norm.hpp"
#include "backpropx/layers/pool.hpp"
#include "backpropx/layers/embedding.hpp"
#include "backpropx/layers/recurrent.hpp"
#include "backpropx/layers/reshape.hpp"
#include "backpropx/layers/residual.hpp"

namespace bpx {

// One line per layer kind: its name, the keys its config may hold, its factory.
template <class T>
const std::vector<LayerKind<T>>& layer_kinds() {
  static const std::vector<LayerKind<T>> kinds = {
      {"dense", {"in_features", "out_features", "bias", "activation", "init"}, &make_dense<T>},
      {"dropout", {"p", "features"}, &make_dropout<T>},
      {"activation", {"activation"}, &make_activation<T>},
      {"flatten", {}, &make_flatten<T>},
      {"reshape", {"shape"}, &make_reshape<T>},
      {"residual", {"layers"}, &make_residual<T>},
      {"conv1d", {"in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "bias", "activation", "init"}, &make_conv1d<T>},
      {"conv2d", {"in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "bias", "activation", "init"}, &make_conv2d<T>},
      {"max_pool1d", {"kernel_size", "stride", "padding"}, &make_max_pool1d<T>},
      {"max_pool2d", {"kernel_size", "stride", "padding"}, &make_max_pool2d<T>},
      {"avg_pool1d", {"kernel_size", "stride", "padding", "count_include_pad"}, &make_avg_pool1d<T>},
      {"avg_pool2d", {"kernel_size", "stride", "padding", "count_include_pad"}, &make_avg_pool2d<T>},
      {"global_avg_pool", {"keepdim"}, &make_global_avg_pool<T>},
      {"batch_norm1d", {"num_features", "eps", "momentum", "cumulative_average", "affine", "track_running_stats"}, &make_batch_norm1d<T>},
      {"batch_norm2d", {"num_features", "eps", "momentum", "cumulative_average", "affine", "track_running_stats"}, &make_batch_norm2d<T>},
      {"layer_norm", {"normalized_shape", "eps", "elementwise_affine", "bias"}, &make_layer_norm<T>},
      {"simple_rnn", {"input_size", "hidden_size", "nonlinearity", "bias", "bidirectional", "return_sequences"}, &make_simple_rnn<T>},
      {"gru", {"input_size", "hidden_size", "bias", "bidirectional", "return_sequences"}, &make_gru<T>},
      {"lstm", {"input_size", "hidden_size", "bias", "bidirectional", "return_sequences"}, &make_lstm<T>},
      {"embedding", {"num_embeddings", "embedding_dim", "padding_idx"}, &make_embedding<T>},
  };
  return kinds;
}

std::vector<std::string> layer_kind_names() {
  std::vector<std::string> names;
  for (const auto& k : layer_kinds<double>()) names.emplace_back(k.kind);
  return names;
}

long long ConfigReader::integer(const std::string& key) const {
  auto it = c_.ints.find(key);
  require(it != c_.ints.end(), c_.kind + " layer needs an integer '" + key + "'");
  return it->second;
}

std::size_t ConfigReader::size(const std::string& key) const {
  const long long v = integer(key);
  require(v > 0, c_.kind + " layer: " + key + " must be a positive integer, got " + std::to_string(v));
  return static_cast<std::size_t>(v);
}

std::size_t ConfigReader::size_or(const std::string& key, std::size_t fallback) const {
  return c_.ints.count(key) ? size(key) : fallback;
}

bool ConfigReader::flag(const std::string& key, bool fallback) const {
  auto it = c_.ints.find(key);
  return it == c_.ints.end() ? fallback : it->second != 0;
}

double ConfigReader::real(const std::string& key, double fallback) const {
  if (auto it = c_.reals.find(key); it != c_.reals.end()) return it->second;
  if (auto it = c_.ints.find(key); it != c_.ints.end()) return static_cast<double>(it->second);
  return fallback;
}

std::string ConfigReader::string(const std::string& key, const std::string& fallback) const {
  auto it = c_.strings.find(key);
  return it == c_.strings.end() ? fallback : it->second;
}

bool ConfigReader::has(const std::string& key) const {
  return c_.ints.count(key) || c_.reals.count(key) || c_.strings.count(key) ||
         c_.int_lists.count(key) || (key == "layers" && !c_.layers.empty());
}

std::vector<long long> ConfigReader::int_list(const std::string& key) const {
  auto it = c_.int_lists.find(key);
  require(it != c_.int_lists.end(), c_.kind + " layer needs a list of integers '" + key + "'");
  return it->second;
}

namespace {
template <class Map>
void check_keys(const LayerConfig& c, const Map& map, const std::vector<std::string>& allowed) {
  for (const auto& [key, value] : map) {
    (void)value;
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      throw std::invalid_argument(c.kind + " layer has no option '" + key + "'; its options are: " +
                                  (list.empty() ? "(none)" : list));
    }
  }
}
}  // namespace

template <class T>
std::unique_ptr<Layer<T>> make_layer(const LayerConfig& c, const Shape& input) {
  for (const auto& kind : layer_kinds<T>()) {
    if (c.kind != kind.kind) continue;
    check_keys(c, c.ints, kind.keys);
    check_keys(c, c.reals, kind.keys);
    check_keys(c, c.strings, kind.keys);
    check_keys(c, c.int_lists, kind.keys);
    if (!c.layers.empty()) check_keys(c, std::map<std::string, int>{{"layers", 0}}, kind.keys);
    return kind.make(ConfigReader(c), input);
  }
  throw unknown_name("layer kind", c.kind, layer_kind_names());
}

template <class T>
std::vector<std::unique_ptr<Layer<T>>> make_layers(const std::vector<LayerConfig>& configs,
                                                   Shape input, const std::string& prefix) {
  std::vector<std::unique_ptr<Layer<T>>> layers;
  for (std::size_t k = 0; k < configs.size(); ++k) {
    const std::string where = prefix + std::to_string(k) + " (" + configs[k].kind + ")";
    try {
      layers.push_back(make_layer<T>(configs[k], input));
    } catch (const std::invalid_argument& e) {
      const std::string from = k == 0 ? "" : " (the output of layer " + prefix + std::to_string(k - 1) +
                                                 " (" + configs[k - 1].kind + "))";
      throw std::invalid_argument("layer " + where + ": " + e.what() + from);
    }
    input = layers.back()->output_shape();
  }
  return layers;
}

#define BPX_INSTANTIATE(T)                                                                       \
  template const std::vector<LayerKind<T>>& layer_kinds<T>();                                    \
  template std::unique_ptr<Layer<T>> make_layer<T>(const LayerConfig&, const Shape&);            \
  template std::vector<std::unique_ptr<Layer<T>>> make_layers<T>(const std::vector<LayerConfig>&, \
                                                                 Shape, const std::string&);
BPX_INSTANTIATE(float)
BPX_INSTANTIATE(double)
#undef BPX_INSTANTIATE

}  // namespace bpx
