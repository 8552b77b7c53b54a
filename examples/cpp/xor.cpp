// XOR from C++ with the installed backpropx library: build a 2-8-1 network
// from layer configurations, train it with Adam and binary cross-entropy,
// save it in the Python package's format, load it back, and print the four
// predictions (Python's backpropx.Network.load reads the same file).
//
//   xor train MODEL.safetensors     train, save, print predictions of the saved model
//   xor predict MODEL.safetensors   load any 2-input model (e.g. saved from Python) and print its predictions
//
// Built against the installed package: find_package(backpropx) in CMakeLists.txt.
#include <backpropx/backpropx.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

namespace {

bpx::LayerConfig dense(long long in, long long out, const std::string& activation) {
  bpx::LayerConfig c;
  c.kind = "dense";
  c.ints = {{"in_features", in}, {"out_features", out}, {"bias", 1}};
  c.strings = {{"activation", activation}};
  return c;
}

// The four XOR inputs; each output line: x1 x2 and every output of the network,
// with enough digits to read back the exact value (9 for float, 17 for double).
template <class T>
void print_predictions(const bpx::Network<T>& net) {
  const T X[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
  bpx::require(net.in_features() == 2, "the model takes " + std::to_string(net.in_features()) +
                                           " inputs; this example feeds 2");
  std::vector<T> out(4 * net.out_features());
  net.predict(&X[0][0], 4, out.data());
  for (std::size_t i = 0; i < 4; ++i) {
    std::printf("%g %g", double(X[i][0]), double(X[i][1]));
    for (std::size_t j = 0; j < net.out_features(); ++j)
      std::printf(" %.*g", sizeof(T) == 4 ? 9 : 17, double(out[i * net.out_features() + j]));
    std::printf("\n");
  }
}

int train(const std::string& path) {
  const float X[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
  auto model = bpx::io::build_model<float>({dense(2, 8, "tanh"), dense(8, 1, "sigmoid")}, /*seed=*/0);
  model.metadata["classes"] = "[0, 1]";  // what Python's net.classes returns
  auto adam = bpx::make_optimizer<float>({"adam", {{"lr", 0.05}}});
  bpx::Trainer<float> trainer(*model.network, *adam, bpx::Loss::binary_cross_entropy, /*batch_size=*/4,
                              /*shuffle=*/true, /*seed=*/0);
  const float y[4] = {0, 1, 1, 0};
  bpx::EpochStats stats;
  for (int epoch = 0; epoch < 500; ++epoch)
    stats = trainer.train_epoch(&X[0][0], bpx::Targets<float>{y, nullptr, nullptr}, 4);
  std::fprintf(stderr, "final loss %.6f\n", stats.loss);
  bpx::io::save_model(path, model);
  print_predictions(*bpx::io::load_model<float>(path).network);
  return 0;
}

int predict(const std::string& path) {
  if (bpx::io::file_dtype(path) == "float64") print_predictions(*bpx::io::load_model<double>(path).network);
  else print_predictions(*bpx::io::load_model<float>(path).network);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || (std::string(argv[1]) != "train" && std::string(argv[1]) != "predict")) {
    std::fprintf(stderr, "usage: %s train|predict MODEL.safetensors\n", argv[0]);
    return 2;
  }
  try {
    return std::string(argv[1]) == "train" ? train(argv[2]) : predict(argv[2]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
