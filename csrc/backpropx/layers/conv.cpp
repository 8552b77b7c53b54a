#include "backpropx/layers/conv.hpp"

#include <algorithm>
#include <cstring>

#include "backpropx/gemm.hpp"
#include "backpropx/layers/window_config.hpp"
#include "backpropx/parallel.hpp"
#include "kernels/im2col.hpp"

namespace bpx {

namespace {

constexpr std::size_t kGroupColumns = 2048;     // columns worth one product (the GEMM's N block)
constexpr std::size_t kGroupElements = 1 << 20;  // bound of a multi-sample column matrix
constexpr std::size_t kGrain = 1 << 16;          // elements copied per task before a fork/join pays off
constexpr std::size_t kKeptColumns = 1 << 16;     // column values per sample a training forward may cache

constexpr std::size_t kTile = 32;                 // positions per block of the transposing epilogue

// The epilogue of the forward product, for m samples. The product is
// position-major, Zt (m*P, OUT): row i*P + p holds every channel of sample
// i's position p. Writes z[i, o, p] = Zt + b[o] when z is not null (the
// cache for backward) and y[i, o, p] = f(that): the transpose to the
// caller's channels-first layout, the bias and the activation in one pass,
// a block of positions at a time (their rows stay in L1 while every
// channel is written).
template <class Impl, class T>
void bias_activation_planes(const T* bias, const T* Zt, T* z, T* y, std::size_t m, std::size_t OUT,
                            std::size_t P) {
  const std::size_t blocks = (P + kTile - 1) / kTile;
  parallel_rows(m * blocks, kGrain / (kTile * OUT + 1) + 1, [&](std::size_t b, std::size_t e) {
    for (std::size_t t = b; t < e; ++t) {
      const std::size_t i = t / blocks, p0 = (t % blocks) * kTile, p1 = std::min(P, p0 + kTile);
      for (std::size_t o = 0; o < OUT; ++o) {
        const T bo = bias ? bias[o] : T(0);
        const T* src = Zt + (i * P) * OUT + o;
        T* zr = z ? z + (i * OUT + o) * P : nullptr;
        T* yr = y + (i * OUT + o) * P;
        for (std::size_t p = p0; p < p1; ++p) {
          const T v = bias ? src[p * OUT] + bo : src[p * OUT];
          if (zr) zr[p] = v;
          yr[p] = Impl::f(v);
        }
      }
    }
  });
}

template <class T>
void bias_activation(Activation a, const T* bias, const T* Zt, T* z, T* y, std::size_t m, std::size_t OUT,
                     std::size_t P) {
  switch (a) {
#define BPX_EPILOGUE_CASE(name, impl)                            \
  case Activation::name:                                         \
    bias_activation_planes<impl>(bias, Zt, z, y, m, OUT, P);     \
    return;
    BPX_ACTIVATIONS(BPX_EPILOGUE_CASE)  // softmax is refused by make_conv
#undef BPX_EPILOGUE_CASE
  }
}

}  // namespace

template <class T>
Conv<T>::Conv(std::size_t dims, const kernels::Window& g, std::size_t out_channels, bool bias,
              Activation activation, Init init)
    : dims_(dims), g_(g), ranges_(kernels::tap_ranges(g)), out_(out_channels), has_bias_(bias), act_(activation),
      init_(init) {
  require(out_ > 0, "a convolution needs out_channels >= 1");
  checked_mul(checked_mul(out_, taps()), positions());
}

template <class T>
Shape Conv<T>::input_shape() const {
  return dims_ == 1 ? Shape{g_.C, g_.W} : Shape{g_.C, g_.H, g_.W};
}

template <class T>
Shape Conv<T>::output_shape() const {
  return window_output_shape(g_, out_, dims_);
}

template <class T>
std::vector<ParamSpec> Conv<T>::parameter_specs() const {
  // fans as torch's _calculate_fan_in_and_fan_out: channels times kernel taps
  const std::size_t fan_in = taps(), fan_out = out_ * g_.taps();
  const Shape wshape = dims_ == 1 ? Shape{out_, g_.C, g_.KW} : Shape{out_, g_.C, g_.KH, g_.KW};
  std::vector<ParamSpec> specs{{"weight", wshape, fan_in, fan_out, init_, ParamRole::weight, true}};
  if (has_bias_) specs.push_back({"bias", {out_}, fan_in, fan_out, init_, ParamRole::bias, false});
  return specs;
}

template <class T>
void Conv<T>::bind(T* params, T* grads) {
  weight_ = params;
  dweight_ = grads;
  if (has_bias_) {
    bias_ = params + out_ * taps();
    dbias_ = grads + out_ * taps();
  }
}

template <class T>
bool Conv<T>::pointwise() const {
  return g_.KH == 1 && g_.KW == 1 && g_.SH == 1 && g_.SW == 1 && g_.PT == 0 && g_.PL == 0 &&
         g_.OH == g_.H && g_.OW == g_.W;
}

template <class T>
bool Conv<T>::keeps_z() const {
  return act_ != Activation::identity && act_ != Activation::relu && act_ != Activation::leaky_relu;
}

template <class T>
bool Conv<T>::keeps_columns() const {
  return !pointwise() && taps() * positions() <= kKeptColumns;
}

template <class T>
std::size_t Conv<T>::group(std::size_t n) const {
  const std::size_t P = positions();
  std::size_t m = (kGroupColumns + P - 1) / P;
  m = std::min(m, std::max<std::size_t>(1, kGroupElements / std::max<std::size_t>(1, taps() * P)));
  return std::max<std::size_t>(1, std::min(m, n));
}

// cache: [z (N, OUT, P) when kept | the column matrices, group after group, when kept]
template <class T>
std::size_t Conv<T>::cache_size(std::size_t n) const {
  const std::size_t z = keeps_z() ? checked_mul(checked_mul(n, out_), positions()) : 0;
  return z + (keeps_columns() ? checked_mul(checked_mul(n, taps()), positions()) : 0);
}

// scratch: [columns (taps, m*P) | product (m*P, OUT) or gathered dZ (OUT, m*P) | dW^T (taps, OUT)]
template <class T>
std::size_t Conv<T>::scratch_size(std::size_t n) const {
  const std::size_t m = group(n), P = positions();
  return checked_mul(checked_mul(taps() + out_, m), P) + checked_mul(taps(), out_);
}

template <class T>
const T* Conv<T>::columns(const T* x, std::size_t s, std::size_t m, T* cols) const {
  const std::size_t P = positions(), sample = g_.C * g_.plane();
  if (pointwise() && m == 1) return x + s * sample;
  // one task per (sample, channel): each writes its own rows of its own columns
  parallel_rows(m * g_.C, kGrain / (g_.taps() * P + 1) + 1, [&](std::size_t b, std::size_t e) {
    for (std::size_t t = b; t < e;) {
      const std::size_t i = t / g_.C, c0 = t % g_.C, c1 = std::min(g_.C, c0 + (e - t));
      kernels::im2col(g_, ranges_, x + (s + i) * sample, cols + i * P, m * P, c0, c1);
      t += c1 - c0;
    }
  });
  return cols;
}

template <class T>
void Conv<T>::forward(const T* x, T* y, const LayerBuffers<T>& buffers, std::size_t n, const Pass&) const {
  // x is (N, C, H, W), y and the cache z are (N, OUT, OH, OW); per group of m samples, K = C*KH*KW:
  // Zt (m*P, OUT) = cols^T (m*P, K) . W^T (K, OUT), position-major: the product's long side
  // (positions) runs along the GEMM's rows, which fill its register tiles best.
  const std::size_t P = positions(), K = taps(), M = group(n);
  const bool act = keeps_z();
  T* z = act ? buffers.cache : nullptr;  // null in inference or when y stands in for it
  T* kept = buffers.cache && keeps_columns() ? buffers.cache + (act ? n * out_ * P : 0) : nullptr;
  T* product = buffers.scratch + K * M * P;
  for (std::size_t s = 0; s < n; s += M) {
    const std::size_t m = std::min(M, n - s);
    const T* B = columns(x, s, m, kept ? kept + s * K * P : buffers.scratch);
    gemm<T>(Trans::T, Trans::T, m * P, out_, K, T(1), B, m * P, weight_, K, T(0), product, out_);
    bias_activation(act_, has_bias_ ? bias_ : nullptr, product, z ? z + s * out_ * P : nullptr, y + s * out_ * P,
                    m, out_, P);
  }
}

template <class T>
void Conv<T>::backward(const T* x, const T* y, const LayerBuffers<T>& buffers, T* dy, T* dx,
                       std::size_t n, const Pass&) {
  // forward: z = W * x + b (the convolution), y = f(z)
  // dz = dy * f'(z), in place in dy;  db[o] += sum over samples and positions of dz[., o, .]
  const std::size_t P = positions(), K = taps(), M = group(n), sample = g_.C * g_.plane();
  const bool learn = this->trainable();
  const bool act = keeps_z();
  const T* zc = act ? buffers.cache : y;
  const T* kept = keeps_columns() ? buffers.cache + (act ? n * out_ * P : 0) : nullptr;
  activation_backward_bias<T>(act_, zc, y, dy, nullptr, n * out_, P);
  if (learn && has_bias_)
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t o = 0; o < out_; ++o) {
        const T* d = dy + (i * out_ + o) * P;
        T sum = 0;
        for (std::size_t p = 0; p < P; ++p) sum += d[p];
        dbias_[o] += sum;
      }
  if (!learn && dx == nullptr) return;
  T* cols = buffers.scratch;
  T* gathered = buffers.scratch + K * M * P;
  T* dwt = gathered + out_ * M * P;  // dW^T (K, OUT), summed over the groups
  for (std::size_t s = 0; s < n; s += M) {
    const std::size_t m = std::min(M, n - s);
    // dZ (OUT, m*P): sample i's channel o at dZ[o*m*P + i*P]
    const T* dZ = dy + s * out_ * P;
    if (m > 1) {
      for (std::size_t i = 0; i < m; ++i)
        for (std::size_t o = 0; o < out_; ++o)
          std::memcpy(gathered + o * m * P + i * P, dy + ((s + i) * out_ + o) * P, P * sizeof(T));
      dZ = gathered;
    }
    // dW^T (+)= cols dZ^T : cols (K, m*P), dZ (OUT, m*P), dW^T (K, OUT); K rows fill the tiles
    if (learn)
      gemm<T>(Trans::N, Trans::T, K, out_, m * P, T(1), kept ? kept + s * K * P : columns(x, s, m, cols), m * P, dZ,
              m * P, s == 0 ? T(0) : T(1), dwt, out_);
    if (dx == nullptr) continue;
    // dcols = W^T dZ : W (OUT, K), dcols (K, m*P); then dx = col2im(dcols)
    if (pointwise() && m == 1) {
      gemm<T>(Trans::T, Trans::N, K, P, out_, T(1), weight_, K, dZ, P, T(0), dx + s * sample, P);
      continue;
    }
    gemm<T>(Trans::T, Trans::N, K, m * P, out_, T(1), weight_, K, dZ, m * P, T(0), cols, m * P);
    parallel_rows(m * g_.C, kGrain / (g_.taps() * P + 1) + 1, [&](std::size_t b, std::size_t e) {
      for (std::size_t t = b; t < e;) {
        const std::size_t i = t / g_.C, c0 = t % g_.C, c1 = std::min(g_.C, c0 + (e - t));
        kernels::col2im(g_, ranges_, cols + i * P, m * P, dx + (s + i) * sample, c0, c1);
        t += c1 - c0;
      }
    });
  }
  if (learn)  // dW += (dW^T)^T
    for (std::size_t o = 0; o < out_; ++o)
      for (std::size_t k = 0; k < K; ++k) dweight_[o * K + k] += dwt[k * out_ + o];
}

namespace {
template <class T>
std::unique_ptr<Layer<T>> make_conv(const ConfigReader& c, const Shape& input, std::size_t dims) {
  const std::string name = dims == 1 ? "Conv1D" : "Conv2D";
  const std::size_t in = c.size("in_channels"), out = c.size("out_channels");
  WindowOptions o;
  o.layer = name;
  o.dims = dims;
  o.same_padding_ok = true;
  o.dilation_ok = true;
  if (!input.empty())
    require(input.size() != dims + 1 || input[0] == in,
            name + " expects in_channels=" + std::to_string(in) + " but receives per-sample shape " +
                shape_str(input) + " (" + std::to_string(input[0]) + " channels)");
  const kernels::Window g = read_window(c, input, o);
  const Activation act = activation_from_name(c.string("activation", "identity"));
  require(act != Activation::softmax, name + ": softmax over the positions of a convolution is not offered "
                                             "as its activation; add bx.Flatten() and a softmax layer after it");
  const Init init = init_from_name(c.string("init", "default"), act);
  return std::make_unique<Conv<T>>(dims, g, out, c.flag("bias", true), act, init);
}
}  // namespace

template <class T>
std::unique_ptr<Layer<T>> make_conv1d(const ConfigReader& c, const Shape& input) {
  return make_conv<T>(c, input, 1);
}

template <class T>
std::unique_ptr<Layer<T>> make_conv2d(const ConfigReader& c, const Shape& input) {
  return make_conv<T>(c, input, 2);
}

template class Conv<float>;
template class Conv<double>;
template std::unique_ptr<Layer<float>> make_conv1d<float>(const ConfigReader&, const Shape&);
template std::unique_ptr<Layer<double>> make_conv1d<double>(const ConfigReader&, const Shape&);
template std::unique_ptr<Layer<float>> make_conv2d<float>(const ConfigReader&, const Shape&);
template std::unique_ptr<Layer<double>> make_conv2d<double>(const ConfigReader&, const Shape&);

}  // namespace bpx
