// The C++ model file io: save/load round trips (float and double, frozen
// layers, metadata), and hostile files: every truncation of a valid file,
// random byte flips, and forged headers (lengths, offsets, shapes, dtypes,
// nesting, duplicates, non-finite values, a directory). Each must load or
// raise std::invalid_argument / std::system_error: never another exception,
// never a crash (CI also runs this under ASan/UBSan). Returns nonzero on failure.
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "backpropx/backpropx.hpp"

namespace {

int g_failures = 0;
int g_checks = 0;

void check(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok && ++g_failures <= 20) std::fprintf(stderr, "FAIL: %s\n", what.c_str());
}

bpx::LayerConfig dense(long long in, long long out, const std::string& act) {
  bpx::LayerConfig c;
  c.kind = "dense";
  c.ints = {{"in_features", in}, {"out_features", out}, {"bias", 1}};
  c.strings = {{"activation", act}, {"init", "default"}};
  return c;
}

bpx::LayerConfig dropout(long long features, double p) {
  bpx::LayerConfig c;
  c.kind = "dropout";
  c.ints = {{"features", features}};
  c.reals = {{"p", p}};
  return c;
}

std::string temp_path(const std::string& name) {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/backpropx-test-io-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    return std::string(d ? d : "/tmp");
  }();
  return dir + "/" + name;
}

std::vector<unsigned char> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<unsigned char>(std::istreambuf_iterator<char>(f), {});
}

void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
  // A new file each time: ext4 flushes a file truncated and rewritten in place on close.
  ::unlink(path.c_str());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Loads `bytes` as a model: "ok", "rejected", or "WRONG: ..." for any other outcome.
std::string outcome(const std::vector<unsigned char>& bytes) {
  const std::string path = temp_path("case.safetensors");
  write_bytes(path, bytes);
  try {
    auto m = bpx::io::load_model<float>(path);
    return m.network ? "ok" : "WRONG: no network";
  } catch (const std::invalid_argument&) {
    return "rejected";
  } catch (const std::system_error&) {
    return "rejected";
  } catch (const std::exception& e) {
    return std::string("WRONG: ") + e.what();
  }
}

std::vector<unsigned char> with_header(const std::string& header, std::size_t data_bytes) {
  std::vector<unsigned char> out(8 + header.size() + data_bytes, 0);
  const std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<unsigned char>(n >> (8 * i));
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

bpx::LayerConfig residual(std::vector<bpx::LayerConfig> inner) {
  bpx::LayerConfig c;
  c.kind = "residual";
  c.layers = std::move(inner);
  return c;
}

bpx::LayerConfig reshape(std::vector<long long> shape) {
  bpx::LayerConfig c;
  c.kind = "reshape";
  c.int_lists = {{"shape", std::move(shape)}};
  return c;
}

template <class T>
void round_trip() {
  const char* name = sizeof(T) == 4 ? "float" : "double";
  auto model = bpx::io::build_model<T>({dense(3, 5, "tanh"), dropout(5, 0.25), dense(5, 2, "softmax")}, 7);
  {  // containers (nested configurations) and list options survive too
    auto nested = bpx::io::build_model<T>({dense(3, 4, "relu"), residual({dense(4, 4, "tanh")}), reshape({2, 2})},
                                          3, {3});
    const std::string p = temp_path(std::string("nested_") + name + ".safetensors");
    bpx::io::save_model(p, nested);
    auto again = bpx::io::load_model<T>(p);
    check(again.layers[1].layers.size() == 1 && again.layers[2].int_lists.at("shape") == std::vector<long long>{2, 2},
          std::string(name) + ": nested layers and int lists survive");
    check(std::memcmp(again.network->params(), nested.network->params(), nested.network->num_params() * sizeof(T)) == 0,
          std::string(name) + ": nested parameters survive");
  }
  model.network->layer(0).set_trainable(false);
  model.metadata["classes"] = "[\"no\", \"yes\"]";
  const std::string path = temp_path(std::string("round_") + name + ".safetensors");
  bpx::io::save_model(path, model);
  auto back = bpx::io::load_model<T>(path);
  const auto& a = *model.network;
  const auto& b = *back.network;
  check(a.num_params() == b.num_params() &&
            std::memcmp(a.params(), b.params(), a.num_params() * sizeof(T)) == 0,
        std::string(name) + ": parameters survive the round trip bit for bit");
  check(!b.layer(0).trainable() && b.layer(2).trainable(), std::string(name) + ": trainable flags survive");
  check(back.metadata == model.metadata && back.seed == 7, std::string(name) + ": metadata and seed survive");
  check(back.layers.size() == 3 && back.layers[1].reals.at("p") == 0.25, std::string(name) + ": configs survive");
  const T x[3] = {T(0.5), T(-1), T(2)};
  T ya[2], yb[2];
  a.predict(x, 1, ya);
  b.predict(x, 1, yb);
  check(ya[0] == yb[0] && ya[1] == yb[1], std::string(name) + ": same predictions");
  bool wrong_type = false;
  try {
    if (sizeof(T) == 4) bpx::io::load_model<double>(path);
    else bpx::io::load_model<float>(path);
  } catch (const std::invalid_argument& e) {
    wrong_type = std::string(e.what()).find("load it as") != std::string::npos;
  }
  check(wrong_type, std::string(name) + ": loading as the other dtype names the right one");
  check(bpx::io::file_dtype(path) == (sizeof(T) == 4 ? "float32" : "float64"), "file_dtype");
}

void hostile() {
  auto model = bpx::io::build_model<float>({dense(2, 3, "relu"), dense(3, 1, "sigmoid")}, 1);
  const std::string path = temp_path("valid.safetensors");
  bpx::io::save_model(path, model);
  const std::vector<unsigned char> valid = read_bytes(path);
  check(outcome(valid) == "ok", "the valid file loads");

  for (std::size_t n = 0; n < valid.size(); ++n) {
    const std::string r = outcome(std::vector<unsigned char>(valid.begin(), valid.begin() + static_cast<std::ptrdiff_t>(n)));
    check(r == "rejected", "truncated to " + std::to_string(n) + " bytes: " + r);
  }
  std::mt19937 rng(42);
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<unsigned char> bytes = valid;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<unsigned char>(rng());
    const std::string r = outcome(bytes);
    check(r == "ok" || r == "rejected", "random bytes (trial " + std::to_string(trial) + "): " + r);
  }

  const std::string meta =
      "\"__metadata__\": {\"format\": \"backpropx\", \"format_version\": \"1\", \"dtype\": \"float32\", "
      "\"seed\": \"0\", \"layers\": \"[{\\\"kind\\\": \\\"dense\\\", \\\"in_features\\\": 1, "
      "\\\"out_features\\\": 1, \\\"bias\\\": true}]\"}";
  const std::string w = "\"0.weight\": {\"dtype\": \"F32\", \"shape\": [1, 1], \"data_offsets\": [0, 4]}";
  const std::string b = "\"0.bias\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}";
  check(outcome(with_header("{" + meta + ", " + w + ", " + b + "}", 8)) == "ok", "a hand-made file loads");
  struct Case {
    std::string what, header;
    std::size_t data;
  };
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<unsigned char> inf_file = with_header("{" + meta + ", " + w + ", " + b + "}", 8);
  std::memcpy(inf_file.data() + inf_file.size() - 8, &inf, 4);
  check(outcome(inf_file) == "rejected", "an infinite weight is rejected");
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "[";
  const Case cases[] = {
      {"offsets past the data", "{" + meta + ", " + w + ", \"0.bias\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 4000000000000]}}", 8},
      {"offsets overflow", "{" + meta + ", " + w + ", \"0.bias\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [18446744073709551615, 4]}}", 8},
      {"shape product overflows", "{" + meta + ", " + w + ", \"0.bias\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 16], \"data_offsets\": [4, 8]}}", 8},
      {"negative dimension", "{" + meta + ", " + w + ", \"0.bias\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [4, 8]}}", 8},
      {"overlapping tensors", "{" + meta + ", " + w + ", \"0.bias\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 8},
      {"gap in the data", "{" + meta + ", " + w + ", " + b + "}", 12},
      {"unknown dtype", "{" + meta + ", " + w + ", \"0.bias\": {\"dtype\": \"Q7\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8},
      {"float64 tensor in a float32 model", "{" + meta + ", " + w + ", \"0.bias\": {\"dtype\": \"F64\", \"shape\": [1], \"data_offsets\": [4, 12]}}", 12},
      {"missing tensor", "{" + meta + ", " + w + "}", 4},
      {"extra tensor", "{" + meta + ", " + w + ", " + b + ", \"9.weight\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}", 12},
      {"duplicate tensor", "{" + meta + ", " + w + ", " + w + ", " + b + "}", 8},
      {"deep nesting", "{\"x\": " + deep + "}", 0},
      {"not an object", "[1, 2]", 0},
      {"no metadata", "{" + w + ", " + b + "}", 8},
      {"huge layer", "{\"__metadata__\": {\"format\": \"backpropx\", \"format_version\": \"1\", \"dtype\": \"float32\", \"seed\": \"0\", \"layers\": \"[{\\\"kind\\\": \\\"dense\\\", \\\"in_features\\\": 4294967296, \\\"out_features\\\": 4294967296}]\"}}", 0},
      {"unknown kind", "{\"__metadata__\": {\"format\": \"backpropx\", \"format_version\": \"1\", \"dtype\": \"float32\", \"seed\": \"0\", \"layers\": \"[{\\\"kind\\\": \\\"teleport\\\"}]\"}}", 0},
      {"layers not JSON", "{\"__metadata__\": {\"format\": \"backpropx\", \"format_version\": \"1\", \"dtype\": \"float32\", \"seed\": \"0\", \"layers\": \"[{\"}}", 0},
      {"nested option", "{\"__metadata__\": {\"format\": \"backpropx\", \"format_version\": \"1\", \"dtype\": \"float32\", \"seed\": \"0\", \"layers\": \"[{\\\"kind\\\": \\\"dense\\\", \\\"in_features\\\": [1]}]\"}}", 0},
      {"other format version", "{\"__metadata__\": {\"format\": \"backpropx\", \"format_version\": \"9\"}}", 0},
  };
  for (const Case& c : cases) {
    const std::string r = outcome(with_header(c.header, c.data));
    check(r == "rejected", c.what + ": " + r);
  }
  std::vector<unsigned char> huge_length(16, 0);
  huge_length[7] = 0x7f;  // a header "length" of about 9e18
  check(outcome(huge_length) == "rejected", "an absurd header length");
  bool dir_rejected = false;
  try {
    bpx::io::load_model<float>("/tmp");
  } catch (const std::invalid_argument& e) {
    dir_rejected = std::string(e.what()).find("not a regular file") != std::string::npos;
  }
  check(dir_rejected, "a directory is not a regular file");
}

}  // namespace

int main() {
  round_trip<float>();
  round_trip<double>();
  hostile();
  std::printf("%d checks, %d failures\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
