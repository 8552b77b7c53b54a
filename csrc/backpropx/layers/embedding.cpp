#include "backpropx/layers/embedding.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "backpropx/parallel.hpp"

namespace bpx {

namespace {
// The row an id names: the caller has checked it (check_input).
template <class T>
std::size_t row_of(T id) {
  return static_cast<std::size_t>(id);
}
}  // namespace

template <class T>
Embedding<T>::Embedding(std::size_t num_embeddings, std::size_t dim, long long padding_idx, Shape input)
    : num_(num_embeddings), dim_(dim), padding_(padding_idx), input_(std::move(input)) {
  require(num_ > 0 && dim_ > 0, "Embedding sizes must be positive");
  require(padding_ < static_cast<long long>(num_), "padding_idx must be below num_embeddings");
  // Every id must survive the trip through the network's floating-point input.
  const double exact = sizeof(T) == 4 ? 16777216.0 : 9007199254740992.0;
  require(static_cast<double>(num_) <= exact,
          "num_embeddings=" + std::to_string(num_) + " is more ids than " +
              (sizeof(T) == 4 ? "float32 (2**24)" : "float64 (2**53)") +
              " represents exactly; use a float64 network");
  require(!input_.empty(), "an Embedding layer needs the network's input_shape: the shape of each "
                           "sample's ids, e.g. input_shape=(T,)");
  ids_ = shape_size(input_);
  checked_mul(num_, dim_);
}

template <class T>
Shape Embedding<T>::output_shape() const {
  Shape s = input_;
  s.push_back(dim_);
  return s;
}

template <class T>
std::vector<ParamSpec> Embedding<T>::parameter_specs() const {
  // lecun with fan-in 1 is N(0, 1): one id feeds each output unit.
  return {{"weight", {num_, dim_}, 1, dim_, Init::lecun, ParamRole::weight, true}};
}

template <class T>
void Embedding<T>::bind(T* params, T* grads) {
  weight_ = params;
  dweight_ = grads;
}

template <class T>
void Embedding<T>::after_init() {
  if (padding_ >= 0) std::fill(weight_ + padding_ * dim_, weight_ + (padding_ + 1) * dim_, T(0));
}

template <class T>
void Embedding<T>::check_input(const T* x, std::size_t n) const {
  const std::size_t count = n * ids_;
  const T top = static_cast<T>(num_);
  for (std::size_t i = 0; i < count; ++i) {
    const T id = x[i];
    if (!(id >= T(0) && id < top && id == std::floor(id))) {  // NaN fails too
      const std::size_t s = i / ids_;
      char value[32];
      std::snprintf(value, sizeof value, "%.17g", static_cast<double>(id));
      throw std::invalid_argument("token id " + std::string(value) + " of sample " +
                                  std::to_string(s) + " (position " + std::to_string(i % ids_) +
                                  ") is not an integer in [0, " + std::to_string(num_) +
                                  ") for an Embedding of " + std::to_string(num_) + " rows");
    }
  }
}

template <class T>
void Embedding<T>::forward(const T* x, T* y, const LayerBuffers<T>&, std::size_t n, const Pass&) const {
  // x is (N, IDS) ids, weight (num, E), y (N, IDS, E): y[r] = weight[x[r]]
  check_input(x, n);  // the network checked already; a lookup must never read out of bounds
  const std::size_t rows = n * ids_;
  parallel_rows(rows, (1 << 14) / dim_ + 1, [&](std::size_t b, std::size_t e) {
    for (std::size_t r = b; r < e; ++r)
      std::memcpy(y + r * dim_, weight_ + row_of(x[r]) * dim_, dim_ * sizeof(T));
  });
}

template <class T>
void Embedding<T>::backward(const T* x, const T*, const LayerBuffers<T>&, T* dy, T* dx, std::size_t n,
                            const Pass&) {
  // forward: y[r] = weight[x[r]];  dweight[id] += sum of dy[r] over the rows r with x[r] = id
  // (scatter-add in row order; threads split the E columns, so every element
  // sums in the same order whatever their number); padding_idx gets nothing.
  const std::size_t rows = n * ids_;
  if (this->trainable()) {
    parallel_rows(dim_, (1 << 14) / (rows + 1) + 1, [&](std::size_t c0, std::size_t c1) {
      for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t id = row_of(x[r]);
        if (static_cast<long long>(id) == padding_) continue;
        T* dst = dweight_ + id * dim_;
        const T* src = dy + r * dim_;
        for (std::size_t c = c0; c < c1; ++c) dst[c] += src[c];
      }
    });
  }
  if (dx != nullptr) std::fill(dx, dx + rows, T(0));  // ids are not differentiable
}

template <class T>
std::unique_ptr<Layer<T>> make_embedding(const ConfigReader& c, const Shape& input) {
  long long padding = -1;
  if (c.has("padding_idx")) {
    padding = c.integer("padding_idx");
    const long long num = static_cast<long long>(c.size("num_embeddings"));
    require(padding >= -num && padding < num, "padding_idx must be in [-num_embeddings, num_embeddings), got " +
                                                  std::to_string(padding));
    if (padding < 0) padding += num;  // torch's convention
  }
  return std::make_unique<Embedding<T>>(c.size("num_embeddings"), c.size("embedding_dim"), padding, input);
}

template class Embedding<float>;
template class Embedding<double>;
template std::unique_ptr<Layer<float>> make_embedding<float>(const ConfigReader&, const Shape&);
template std::unique_ptr<Layer<double>> make_embedding<double>(const ConfigReader&, const Shape&);

}  // namespace bpx
