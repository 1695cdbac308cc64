// rnn family: LSTM and GRU cells and their time loops, forward and backward.
//
// Legend: T steps, B batch, I input features, H hidden units, G gates (LSTM 4: i, f, g, o;
// GRU 3: r, z, n, PyTorch's order). Weights are stacked as PyTorch stores them: w_ih
// (G H, I), w_hh (G H, H). The element-wise gate math lives here once, as inline helpers
// templated on the value type (a scalar, or a SIMD register in csrc/cpu/rnn_isa.cpp) and
// on a Math policy supplying sigmoid and tanh, so every device computes the same
// formulas. The time loops and the binding are in csrc/cpu/rnn.cpp.
#pragma once
#include <cmath>
#include <cstdint>

#include "pydl/isa.h"

#include "pydl/host_device.h"

namespace pydl {

// Scalar Math policy (the vector one is in rnn_isa.cpp).
template <typename T>
struct ScalarGateMath {
  PYDL_HOST_DEVICE static T sigmoid(T x) { return T(1) / (T(1) + std::exp(-x)); }
  PYDL_HOST_DEVICE static T tanh(T x) { return std::tanh(x); }
  PYDL_HOST_DEVICE static T one() { return T(1); }
};

// LSTM step for one hidden unit: pre-activations a_* (biases included) and the previous
// cell state in; gate activations, the new cell state and the new hidden state out.
//   i = s(a_i), f = s(a_f), g = tanh(a_g), o = s(a_o),  c' = f c + i g,  h' = o tanh(c')
template <typename R, typename Math>
PYDL_HOST_DEVICE inline void lstm_gates_forward(R a_i, R a_f, R a_g, R a_o, R c_prev, R& i, R& f, R& g, R& o,
                                                R& c, R& h) {
  i = Math::sigmoid(a_i);
  f = Math::sigmoid(a_f);
  g = Math::tanh(a_g);
  o = Math::sigmoid(a_o);
  c = f * c_prev + i * g;
  h = o * Math::tanh(c);
}

// Its backward: the saved activations, c_prev and c', and dh', dc' in; the gradients of
// the four pre-activations and dc (the cell-state highway: dc = dc_total * f) out.
//   dc_total = dc' + dh' o (1 - tanh(c')^2)
//   da_i = dc_total g i (1 - i),  da_f = dc_total c_prev f (1 - f),
//   da_g = dc_total i (1 - g^2),  da_o = dh' tanh(c') o (1 - o)
template <typename R, typename Math>
PYDL_HOST_DEVICE inline void lstm_gates_backward(R i, R f, R g, R o, R c_prev, R c, R dh, R dc_in, R& da_i,
                                                 R& da_f, R& da_g, R& da_o, R& dc_prev) {
  const R one = Math::one();
  const R tc = Math::tanh(c);
  const R dc = dc_in + dh * o * (one - tc * tc);
  da_i = dc * g * i * (one - i);
  da_f = dc * c_prev * f * (one - f);
  da_g = dc * i * (one - g * g);
  da_o = dh * tc * o * (one - o);
  dc_prev = dc * f;
}

// GRU step for one hidden unit: the input part gi_* = x w_i*^T + b_i* and the hidden part
// gh_* = h w_h*^T + b_h* of each gate, and h in; r, z, n and h' out.
//   r = s(gi_r + gh_r),  z = s(gi_z + gh_z),  n = tanh(gi_n + r gh_n),  h' = (1 - z) n + z h
template <typename R, typename Math>
PYDL_HOST_DEVICE inline void gru_gates_forward(R gi_r, R gi_z, R gi_n, R gh_r, R gh_z, R gh_n, R h_prev, R& r, R& z,
                                               R& n, R& h) {
  r = Math::sigmoid(gi_r + gh_r);
  z = Math::sigmoid(gi_z + gh_z);
  n = Math::tanh(gi_n + r * gh_n);
  h = (Math::one() - z) * n + z * h_prev;
}

// Its backward: r, z, n, gh_n and h in with dh'; the gradients of the input parts
// (dgi_*), of the hidden parts (dgh_r = dgi_r, dgh_z = dgi_z, dgh_n = dgi_n r) and the
// direct path to h (dh' z) out.
template <typename R, typename Math>
PYDL_HOST_DEVICE inline void gru_gates_backward(R r, R z, R n, R gh_n, R h_prev, R dh, R& dg_r, R& dg_z, R& dgi_n,
                                                R& dgh_n, R& dh_prev) {
  const R one = Math::one();
  const R da_n = dh * (one - z) * (one - n * n);
  dg_r = da_n * gh_n * r * (one - r);
  dg_z = dh * (h_prev - n) * z * (one - z);
  dgi_n = da_n;
  dgh_n = da_n * r;
  dh_prev = dh * z;
}

// The element-wise passes over rows x hidden units [j0, j1) (rows of H, G H or 4 H values,
// contiguous), compiled per ISA. nullptr marks an absent optional argument. The backward
// passes also add each gate gradient, summed over the rows, into the bias gradients
// (columns [j0, j1) of each gate only), so the time loop needs no extra sweep for them.
template <typename T>
struct RnnKernelsT {
  // The recurrent product of a step, C (M, N) (+)= A (M, K) @ B (K, N): A row-major (rows
  // lda apart), B rows ldb apart, C rows ldc apart; accumulate = false overwrites C.
  // Register tiles read both operands in place (tile_product.h): no packing per step.
  void (*product)(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C,
                  int64_t ldc, bool accumulate);
  // gates (rows, 4H): pre-activations (+ bias (4H,)) in, activations i, f, g, o out;
  // c = f c_prev + i g and h = o tanh(c) into c, h and h2 (all (rows, H)).
  void (*lstm_forward)(int64_t rows, int64_t H, int64_t j0, int64_t j1, const T* bias, T* gates,
                       const T* c_prev, T* c, T* h, T* h2);
  // dh = dh1 + dh2, dc (may be nullptr: 0) in; dgates (rows, 4H) and dc_prev out;
  // dbias (4H,) += column sums of dgates.
  void (*lstm_backward)(int64_t rows, int64_t H, int64_t j0, int64_t j1, const T* gates, const T* c_prev,
                        const T* c, const T* dh1, const T* dh2, const T* dc, T* dgates, T* dc_prev, T* dbias);
  // gi, gh (rows, 3H) without biases, + b_ih, b_hh (3H,); saved (rows, 4H) = r, z, n, gh_n
  // (gh_n with b_hn); h into h and h2.
  void (*gru_forward)(int64_t rows, int64_t H, int64_t j0, int64_t j1, const T* b_ih, const T* b_hh,
                      const T* gi, const T* gh, const T* h_prev, T* saved, T* h, T* h2);
  // dh = dh1 + dh2 in; dgi, dgh (rows, 3H) and the direct part of dh_prev (rows, H) out;
  // dbi, dbh (3H,) += column sums of dgi, dgh.
  void (*gru_backward)(int64_t rows, int64_t H, int64_t j0, int64_t j1, const T* saved, const T* h_prev,
                       const T* dh1, const T* dh2, T* dgi, T* dgh, T* dh_prev, T* dbi, T* dbh);
};

struct RnnKernels {
  RnnKernelsT<float> f32;
  RnnKernelsT<double> f64;
};

PYDL_DECLARE_ISA_TABLE(RnnKernels, rnn_kernels)

template <typename T>
const RnnKernelsT<T>& pick_rnn() {
  if constexpr (sizeof(T) == 4) return pick_rnn_kernels().f32;
  else return pick_rnn_kernels().f64;
}

}  // namespace pydl
