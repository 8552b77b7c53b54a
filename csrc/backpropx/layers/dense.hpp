// Fully connected layer: y = f(x W^T + b), over the last axis of each sample
// (as torch.nn.Linear): a sample of shape (..., IN) gives (..., OUT).
#pragma once

#include "backpropx/layers/registry.hpp"

namespace bpx {

template <class T>
class Dense final : public Layer<T> {
 public:
  // `lead` holds the per-sample axes before the feature axis (empty for 1-D samples).
  Dense(std::size_t in_features, std::size_t out_features, bool bias, Activation activation,
        Init init, Shape lead = {});

  std::string kind() const override { return "dense"; }
  Shape input_shape() const override;
  Shape output_shape() const override;
  std::vector<ParamSpec> parameter_specs() const override;
  void bind(T* params, T* grads) override;
  std::size_t cache_size(std::size_t n) const override;
  void forward(const T* x, T* y, const LayerBuffers<T>& buffers, std::size_t n,
               const Pass& pass) const override;
  bool writes_fresh_gradients() const override { return true; }
  void backward(const T* x, const T* y, const LayerBuffers<T>& buffers, T* dy, T* dx,
                std::size_t n, const Pass& pass) override;
  // Sparse rows of 1-d samples (n, IN): the products are csr_matmul_nt and
  // csr_weight_grad (sparse.hpp), the rest is as forward / backward.
  bool accepts_sparse() const override { return lead_.empty(); }
  void forward_sparse(const CsrMatrix<T>& x, T* y, const LayerBuffers<T>& buffers,
                      const Pass& pass) const override;
  void backward_sparse(const CsrMatrix<T>& x, const T* y, const LayerBuffers<T>& buffers, T* dy,
                       const Pass& pass) override;
  bool keeps_steps() const override { return !lead_.empty(); }
  Activation output_activation() const override { return act_; }
  void release_output_activation() override { act_ = Activation::identity; }

 private:
  std::size_t rows(std::size_t n) const { return checked_mul(n, positions_); }

  std::size_t in_, out_;
  bool has_bias_;
  Activation act_;
  Init init_;
  Shape lead_;
  std::size_t positions_;  // product of lead_: rows per sample
  T* weight_ = nullptr;    // (OUT, IN)
  T* bias_ = nullptr;      // (OUT,)
  T* dweight_ = nullptr;
  T* dbias_ = nullptr;
};

template <class T>
std::unique_ptr<Layer<T>> make_dense(const ConfigReader& config, const Shape& input);

}  // namespace bpx
