// rnn on the GPU (csrc/cuda/rnn.cu): the time loops of LSTM and GRU layers, forward and
// backward, on device pointers, launched on the given stream. Every buffer is allocated
// (and the initial states filled) by the caller; a cell is the T = 1 case.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace pydl::cuda {

// A layer's operands and its cache. G = 4 H (LSTM) or 3 H (GRU).
template <typename T>
struct RnnSeq {
  int64_t steps, B, I, H;  // T, B, I, H of the legend
  const T* x;            // (T, B, I)
  const T* w_ih;         // (G, I)
  const T* w_hh;         // (G, H)
  const T* b_ih;         // (G,) or nullptr
  const T* b_hh;         // (G,) or nullptr
  T* hs;                 // (T + 1, B, H): h_0 (filled by the caller) .. h_T
  T* cs;                 // LSTM: (T + 1, B, H) c_0 .. c_T; GRU: unused
  T* saved;              // LSTM (T, B, 4H) i, f, g, o; GRU (T, B, 4H) r, z, n, gh_n
};

template <typename T>
struct RnnGrads {
  const T* grad_out;  // (T, B, H) or nullptr
  T* dh;              // (B, H): grad_h_T in (zeros for None), grad_h_0 out
  T* dc;              // LSTM (B, H): grad_c_T in, grad_c_0 out; GRU unused
  T* da;              // (T, B, G) workspace: LSTM gate gradients; GRU input-part gradients dgi
  T* dah;             // GRU (T, B, 3H) workspace: hidden-part gradients dgh; LSTM unused
  T* grad_x;          // (T, B, I)
  T* grad_w_ih;       // (G, I)
  T* grad_w_hh;       // (G, H)
  T* db_ih;           // (G,) or nullptr (LSTM: the gradient of both biases)
  T* db_hh;           // GRU (G,) or nullptr; LSTM unused
};

// gh: (B, 4H) workspace; out (T, B, H).
template <typename T>
void lstm_forward(const RnnSeq<T>& s, T* gh, T* out, cudaStream_t stream);

// gi: (T, B, 3H) and gh: (B, 3H) workspaces; out (T, B, H).
template <typename T>
void gru_forward(const RnnSeq<T>& s, T* gi, T* gh, T* out, cudaStream_t stream);

template <typename T>
void lstm_backward(const RnnSeq<T>& s, const RnnGrads<T>& g, cudaStream_t stream);

template <typename T>
void gru_backward(const RnnSeq<T>& s, const RnnGrads<T>& g, cudaStream_t stream);

}  // namespace pydl::cuda
