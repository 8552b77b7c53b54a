#include "backpropx/io/model_file.hpp"

#include <cmath>
#include <cstring>
#include <set>
#include <stdexcept>

#include "backpropx/io/json.hpp"
#include "backpropx/io/safetensors.hpp"

namespace bpx::io {

namespace {

constexpr const char* kFormat = "backpropx";
constexpr const char* kFormatVersion = "1";
constexpr const char* kExtraPrefix = "extra.";

template <class T>
constexpr const char* dtype_name() {
  return sizeof(T) == 4 ? "float32" : "float64";
}
template <class T>
constexpr const char* tensor_dtype() {
  return sizeof(T) == 4 ? "F32" : "F64";
}

[[noreturn]] void bad(const std::string& path, const std::string& why) {
  throw std::invalid_argument(path + " is not a usable backpropx model: " + why);
}

// `trainable` only for the network's own layers (Python writes it there).
json::Value config_to_json(const LayerConfig& c, const bool* trainable) {
  std::vector<std::pair<std::string, json::Value>> members{{"kind", json::make_string(c.kind)}};
  for (const auto& [k, v] : c.ints) members.emplace_back(k, json::make_integer(v));
  for (const auto& [k, v] : c.reals) members.emplace_back(k, json::make_real(v));
  for (const auto& [k, v] : c.strings) members.emplace_back(k, json::make_string(v));
  for (const auto& [k, v] : c.int_lists) {
    std::vector<json::Value> items;
    for (long long i : v) items.push_back(json::make_integer(i));
    members.emplace_back(k, json::make_array(std::move(items)));
  }
  if (!c.layers.empty()) {
    std::vector<json::Value> children;
    for (const LayerConfig& child : c.layers) children.push_back(config_to_json(child, nullptr));
    members.emplace_back("layers", json::make_array(std::move(children)));
  }
  if (trainable) members.emplace_back("trainable", json::make_bool(*trainable));
  return json::make_object(std::move(members));
}

// A layer description from the file, as the Python bindings convert one:
// JSON integers and booleans become ints, other numbers reals, strings
// strings, arrays of integers int_lists, "layers" the sub-stack of a
// container; null means "not given". "trainable" is the network's business.
LayerConfig config_from_json(const json::Value& v, const std::string& where, const std::string& path,
                             bool* trainable) {
  if (v.type != json::Value::Type::object) bad(path, where + " is not described by an object");
  LayerConfig c;
  std::set<std::string> seen;
  for (const auto& [key, value] : v.members) {
    if (!seen.insert(key).second) bad(path, where + ": option '" + key + "' appears twice");
    using Type = json::Value::Type;
    if (key == "kind") {
      if (value.type != Type::string) bad(path, where + ": kind must be a string");
      c.kind = value.text;
    } else if (key == "trainable" && trainable != nullptr) {
      if (value.type != Type::boolean) bad(path, where + ": trainable must be true or false");
      *trainable = value.boolean;
    } else if (key == "layers" && value.type == Type::array) {
      for (std::size_t i = 0; i < value.items.size(); ++i)
        c.layers.push_back(config_from_json(value.items[i], where + "." + std::to_string(i), path, nullptr));
    } else if (value.type == Type::array) {
      std::vector<long long> items;
      for (const auto& item : value.items) {
        if (!item.is_integer()) bad(path, where + ": option '" + key + "' must be a list of integers");
        try {
          items.push_back(item.as_integer());
        } catch (const std::invalid_argument& e) {
          bad(path, where + ": option '" + key + "': " + e.what());
        }
      }
      c.int_lists[key] = std::move(items);
    } else if (value.type == Type::boolean) {
      c.ints[key] = value.boolean ? 1 : 0;
    } else if (value.type == Type::number && value.is_integer()) {
      try {
        c.ints[key] = value.as_integer();
      } catch (const std::invalid_argument& e) {
        bad(path, where + ": option '" + key + "': " + e.what());
      }
    } else if (value.type == Type::number) {
      const double r = value.as_real();
      if (!std::isfinite(r)) bad(path, where + ": option '" + key + "' is not a finite number");
      c.reals[key] = r;
    } else if (value.type == Type::string) {
      c.strings[key] = value.text;
    } else if (value.type != Type::null) {
      bad(path, where + ": option '" + key + "' must be a number, a string or a boolean");
    }
  }
  if (c.kind.empty()) bad(path, where + " has no kind");
  return c;
}

std::string required(const std::map<std::string, std::string>& meta, const std::string& key,
                     const std::string& path) {
  const auto it = meta.find(key);
  if (it == meta.end()) bad(path, "the header has no '" + key + "'");
  return it->second;
}

// Header checks shared by load_model and file_dtype.
void check_format(const SafetensorsFile& file, const std::string& path) {
  const auto it = file.metadata.find("format");
  if (it == file.metadata.end() || it->second != kFormat)
    throw std::invalid_argument(path + " was not written by backpropx (no backpropx metadata)");
  const std::string version = required(file.metadata, "format_version", path);
  if (version != kFormatVersion)
    bad(path, "format version '" + version + "'; this backpropx reads version " + kFormatVersion);
}

}  // namespace

template <class T>
Model<T> build_model(std::vector<LayerConfig> layers, std::uint64_t seed, Shape input_shape) {
  Model<T> model;
  model.network = std::make_unique<Network<T>>(layers, input_shape, seed);
  model.layers = std::move(layers);
  model.input_shape = std::move(input_shape);
  model.seed = seed;
  return model;
}

template <class T>
void save_model(const std::string& path, const Model<T>& model) {
  require(model.network != nullptr, "save_model: the model has no network");
  const Network<T>& net = *model.network;
  require(model.layers.size() == net.num_layers(),
          "save_model: " + std::to_string(model.layers.size()) + " layer configurations for a network of " +
              std::to_string(net.num_layers()) + " layers");
  std::vector<json::Value> layers;
  for (std::size_t k = 0; k < net.num_layers(); ++k) {
    require(model.layers[k].kind == net.layer(k).kind(),
            "save_model: layer " + std::to_string(k) + " is a " + net.layer(k).kind() +
                " but its configuration says " + model.layers[k].kind);
    const bool trainable = net.layer(k).trainable();
    layers.push_back(config_to_json(model.layers[k], &trainable));
  }
  std::vector<json::Value> input_shape;
  for (std::size_t d : net.input_shape()) input_shape.push_back(json::make_integer(static_cast<long long>(d)));
  std::map<std::string, std::string> meta{{"format", kFormat},
                                          {"format_version", kFormatVersion},
                                          {"dtype", dtype_name<T>()},
                                          {"seed", std::to_string(model.seed)},
                                          {"layers", json::dump(json::make_array(std::move(layers)))},
                                          {"input_shape", json::dump(json::make_array(std::move(input_shape)))}};
  for (const auto& [k, v] : model.metadata) {
    require(!k.empty(), "save_model: metadata keys must not be empty");
    meta[kExtraPrefix + k] = v;
  }
  require(all_finite(net.params(), net.num_params()), "save_model: the network has non-finite parameters");
  std::vector<TensorData> tensors;
  for (const TensorInfo& t : net.tensors())
    tensors.push_back({std::to_string(t.layer) + "." + t.name, tensor_dtype<T>(), t.shape,
                       net.params() + t.offset, shape_size(t.shape) * sizeof(T)});
  atomic_write(path, serialize_safetensors(tensors, meta));
}

template <class T>
Model<T> load_model(const std::string& path) {
  const SafetensorsFile file = read_safetensors(path);
  check_format(file, path);
  const std::string dtype = required(file.metadata, "dtype", path);
  if (dtype != "float32" && dtype != "float64") bad(path, "unsupported dtype '" + dtype + "'");
  if (dtype != dtype_name<T>())
    throw std::invalid_argument(path + " holds a " + dtype + " model; load it as " +
                                (dtype == "float32" ? "load_model<float>" : "load_model<double>"));
  Model<T> model;
  const std::string seed = required(file.metadata, "seed", path);
  try {
    std::size_t used = 0;
    model.seed = std::stoull(seed, &used);
    if (used != seed.size() || seed[0] == '-') throw std::invalid_argument(seed);
  } catch (const std::exception&) {
    model.seed = 0;  // as the Python loader: the seed only documents the initial weights
  }
  json::Value layers;
  try {
    layers = json::parse(required(file.metadata, "layers", path));
  } catch (const std::invalid_argument& e) {
    bad(path, std::string("the layer list: ") + e.what());
  }
  if (layers.type != json::Value::Type::array || layers.items.empty())
    bad(path, "the header's layer list is empty or not a list");

  const auto shape_text = file.metadata.find("input_shape");
  if (shape_text != file.metadata.end() && shape_text->second != "null") {
    json::Value shape;
    try {
      shape = json::parse(shape_text->second);
    } catch (const std::invalid_argument& e) {
      bad(path, std::string("input_shape: ") + e.what());
    }
    if (shape.type != json::Value::Type::array || shape.items.empty()) bad(path, "bad input_shape in the header");
    for (const auto& d : shape.items) {
      if (!d.is_integer() || d.text.size() > 13 || d.as_integer() < 1) bad(path, "bad input_shape in the header");
      model.input_shape.push_back(static_cast<std::size_t>(d.as_integer()));
    }
  }
  std::vector<bool> trainable;
  for (std::size_t k = 0; k < layers.items.size(); ++k) {
    bool flag = true;
    model.layers.push_back(config_from_json(layers.items[k], "layer " + std::to_string(k), path, &flag));
    trainable.push_back(flag);
  }
  // The layers own no memory: built first, their parameter specs are checked
  // against the file's tensors before the network allocates anything.
  std::vector<std::unique_ptr<Layer<T>>> built;
  try {
    built = make_layers<T>(model.layers, model.input_shape, "layer");
  } catch (const std::invalid_argument& e) {
    bad(path, e.what());
  } catch (const AllocationError& e) {  // sizes no file can hold
    bad(path, e.what());
  }
  std::size_t expected = 0, present = 0;
  for (const auto& layer : built)
    for (const ParamSpec& spec : layer->parameter_specs()) {
      std::size_t count = 1;
      for (std::size_t d : spec.shape) {
        if (d != 0 && count > static_cast<std::size_t>(-1) / d)
          bad(path, "the architecture's parameter count overflows");
        count *= d;
      }
      expected += count;
      if (expected < count) bad(path, "the architecture's parameter count overflows");
    }
  std::set<std::string> names;
  for (const TensorEntry& t : file.tensors) {
    // A trainer checkpoint adds optimizer state and the generator; a network needs only its parameters.
    if (t.name.rfind("optimizer.", 0) == 0 || t.name == "rng") continue;
    names.insert(t.name);
    present += (t.end - t.begin) / dtype_size(t.dtype);
  }
  if (expected != present)
    bad(path, "the architecture needs " + std::to_string(expected) + " parameters but the file holds " +
                  std::to_string(present));
  built.clear();
  try {
    model.network = std::make_unique<Network<T>>(model.layers, model.input_shape, model.seed);
  } catch (const std::invalid_argument& e) {
    bad(path, e.what());
  }
  Network<T>& net = *model.network;
  for (const TensorInfo& info : net.tensors()) {
    const std::string name = std::to_string(info.layer) + "." + info.name;
    const TensorEntry* t = file.find(name);
    if (t == nullptr) bad(path, "tensor '" + name + "' is missing");
    if (t->dtype != tensor_dtype<T>())
      bad(path, "tensor '" + name + "' is " + t->dtype + ", but the model's dtype is " + dtype);
    if (t->shape != info.shape)
      bad(path, "tensor '" + name + "' has shape " + shape_str(t->shape) + ", expected " + shape_str(info.shape));
    const std::size_t n = shape_size(info.shape);
    std::memcpy(net.params() + info.offset, file.data.data() + t->begin, n * sizeof(T));
    if (!all_finite(net.params() + info.offset, n)) bad(path, "tensor '" + name + "' holds non-finite values");
    names.erase(name);
  }
  if (!names.empty()) bad(path, "unexpected tensor '" + *names.begin() + "'");
  for (std::size_t k = 0; k < trainable.size(); ++k) net.layer(k).set_trainable(trainable[k]);
  for (const auto& [key, value] : file.metadata)
    if (key.rfind(kExtraPrefix, 0) == 0) model.metadata[key.substr(std::strlen(kExtraPrefix))] = value;
  return model;
}

std::string file_dtype(const std::string& path) {
  const SafetensorsFile file = read_safetensors(path);
  check_format(file, path);
  return required(file.metadata, "dtype", path);
}

template Model<float> build_model<float>(std::vector<LayerConfig>, std::uint64_t, Shape);
template Model<double> build_model<double>(std::vector<LayerConfig>, std::uint64_t, Shape);
template void save_model<float>(const std::string&, const Model<float>&);
template void save_model<double>(const std::string&, const Model<double>&);
template Model<float> load_model<float>(const std::string&);
template Model<double> load_model<double>(const std::string&);

}  // namespace bpx::io
