// Embedding: a lookup table, y[..., :] = weight[id] for integer token ids,
// as torch.nn.Embedding. A sample of ids of shape (T,) (any shape S) gives
// (T, E) ((*S, E)). The ids arrive as the network's floating-point input,
// integers exactly (float32 holds every integer below 2^24), so the layer
// must be a network's first layer; the network checks them before anything
// runs. weight (num_embeddings, E) starts as N(0, 1) (torch's default), the
// padding_idx row as zeros; that row gets no gradient. The ids themselves are
// not differentiable: the input gradient is zero.
#pragma once

#include "backpropx/layers/registry.hpp"

namespace bpx {

template <class T>
class Embedding final : public Layer<T> {
 public:
  // padding_idx < 0: none.
  Embedding(std::size_t num_embeddings, std::size_t dim, long long padding_idx, Shape input);

  std::string kind() const override { return "embedding"; }
  Shape input_shape() const override { return input_; }
  Shape output_shape() const override;
  std::vector<ParamSpec> parameter_specs() const override;
  void bind(T* params, T* grads) override;
  void forward(const T* x, T* y, const LayerBuffers<T>& buffers, std::size_t n,
               const Pass& pass) const override;
  void backward(const T* x, const T* y, const LayerBuffers<T>& buffers, T* dy, T* dx,
                std::size_t n, const Pass& pass) override;
  bool keeps_steps() const override { return true; }
  bool reads_input_data() const override { return true; }
  void check_input(const T* x, std::size_t n) const override;
  void after_init() override;

 private:
  std::size_t num_, dim_;
  long long padding_;
  Shape input_;
  std::size_t ids_;  // ids per sample
  T* weight_ = nullptr;   // (num, E)
  T* dweight_ = nullptr;
};

template <class T>
std::unique_ptr<Layer<T>> make_embedding(const ConfigReader& config, const Shape& input);

}  // namespace bpx
