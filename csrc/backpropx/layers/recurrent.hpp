// Recurrent layers: SimpleRNN, GRU and LSTM with PyTorch's equations (see
// recurrent_cells.hpp), gate orders (GRU r, z, n; LSTM i, f, g, o) and
// parameters: weight_ih (G*H, F), weight_hh (G*H, H), bias_ih, bias_hh (G*H,),
// and for bidirectional=True the same again with the suffix "_reverse".
// Input (T, F) per sample (batch first); output (T, D*H) with
// return_sequences, else (D*H,): the final states, the forward direction's
// at each sample's last valid step and the reverse direction's at t = 0
// (torch's h_n, Keras' Bidirectional(return_sequences=False)); D = 2 when
// bidirectional, the directions concatenated forward | reverse. The initial
// state is zero. Init: U(-1/sqrt(H), 1/sqrt(H)) for every tensor, as torch.
//
// Backpropagation through time, organised as PyTorch's CPU path: per
// direction, the input projection of all steps is one product before the
// time loop; each step does one recurrent product and the cell; backward
// runs the steps in reverse with one product by W_hh each, then dW_ih,
// dW_hh and dx as one product each over all steps. The two directions are
// independent and run on two threads when there are.
//
// With Pass::lengths, steps t >= lengths[i] of sample i are padding: the
// reverse direction starts at each sample's last valid step, outputs there
// are zero (torch's pad_packed_sequence) and nothing flows through them.
#pragma once

#include "backpropx/layers/registry.hpp"

namespace bpx {

enum class Cell { rnn_tanh, rnn_relu, gru, lstm };

template <class T>
class Recurrent final : public Layer<T> {
 public:
  Recurrent(Cell cell, std::size_t steps, std::size_t input_size, std::size_t hidden_size, bool bias,
            bool bidirectional, bool return_sequences);

  std::string kind() const override;
  Shape input_shape() const override { return {T_, F_}; }
  Shape output_shape() const override;
  std::vector<ParamSpec> parameter_specs() const override;
  void bind(T* params, T* grads) override;
  std::size_t cache_size(std::size_t n) const override;
  std::size_t scratch_size(std::size_t n) const override;
  void forward(const T* x, T* y, const LayerBuffers<T>& buffers, std::size_t n,
               const Pass& pass) const override;
  void backward(const T* x, const T* y, const LayerBuffers<T>& buffers, T* dy, T* dx,
                std::size_t n, const Pass& pass) override;
  bool keeps_steps() const override { return sequences_; }
  bool uses_lengths() const override { return true; }

 private:
  // One direction's parameters (views of the flat buffers) and memory.
  struct Params {
    T *w_ih, *w_hh, *b_ih, *b_hh;  // b_* null without bias
  };
  struct Memory {
    T *states, *cells, *gates;  // (T+1, N, H), LSTM (T+1, N, H), (T, N, W)
    T *proj, *proj_h, *rec;     // (T, N, G*H): xp / dgx, GRU dgh; (N, G*H)
    T *dh, *dh2, *dc, *dc2;     // (N, H) each
    T *bias;                    // (G*H + H): folded biases
    T *dxt;                     // (T, N, F)
    T *whh_t;                   // W_hh^T (H, GH), transposed once per forward
    T *inputs, *wgrad;          // [xt | 1 | hprev | 1] (T*N, F+H+2) and its product (GH, F+H+2)
    T *narrow;                  // (N, 4H): the narrow GRU cell's gate-major temporaries
    bool stored;                // states and gates persist in the cache (training)
  };
  std::size_t gates_width() const;  // W: the cache per row and step
  std::size_t state_size(std::size_t n) const { return (T_ + 1) * n * H_; }
  std::size_t cache_per_direction(std::size_t n) const;
  std::size_t scratch_per_direction(std::size_t n) const;
  Memory memory(const LayerBuffers<T>& b, std::size_t n, std::size_t d, bool training) const;
  void run_forward(std::size_t d, const T* xt, T* y, const Memory& m, std::size_t n,
                   const std::int64_t* lengths) const;
  void run_backward(std::size_t d, const T* xt, const T* dy, const Memory& m, std::size_t n,
                    const std::int64_t* lengths);
  // Slot of h_t in the states, and of the state before step t.
  std::size_t slot(std::size_t d, std::size_t t) const { return d == 0 ? t + 1 : t; }
  std::size_t prev_slot(std::size_t d, std::size_t t) const { return d == 0 ? t : t + 1; }
  // The step whose state is the direction's output when !return_sequences.
  std::size_t final_step(std::size_t d, std::size_t i, const std::int64_t* lengths) const;

  Cell cell_;
  std::size_t T_, F_, H_, G_, D_;
  bool bias_, sequences_;
  std::vector<Params> params_, grads_;
};

template <class T>
std::unique_ptr<Layer<T>> make_simple_rnn(const ConfigReader& config, const Shape& input);
template <class T>
std::unique_ptr<Layer<T>> make_gru(const ConfigReader& config, const Shape& input);
template <class T>
std::unique_ptr<Layer<T>> make_lstm(const ConfigReader& config, const Shape& input);

}  // namespace bpx
