// attention family: fused scaled dot-product attention, forward and backward.
//
//   E = Q K^T * scale + mask,   A = softmax_rows(E),   Y = A V,   lse_i = log sum_j exp(E_ij)
//
// Legend: BH heads (every leading dimension flattened), L queries, S keys, D features of
// a query / key, Dv features of a value. The kernels are in csrc/cpu/attention_isa.cpp
// (compiled once per ISA; the block comment there has the algorithm), the argument checks
// and the binding in csrc/cpu/attention.cpp.
#pragma once
#include <cstdint>

#include "pydl/isa.h"

#include "pydl/host_device.h"

namespace pydl {

// One step of the online softmax (Milakov & Gimelshein 2018; flash attention) for a row,
// or for a vector of rows when R is a SIMD register: the running max m and the running
// sum l of exp(e - m) over the keys seen so far meet a new tile of scores whose max is
// tile_max. Afterwards m is the max over both, l has been rescaled to it (the caller adds
// the new tile's sum of exp(e - shift)), and the returned alpha = exp(m_old - m_new)
// rescales the output accumulator the same way.
//
// shift is the value the new tile's exponentials are taken against: the new max, except
// that a row with every score so far at -inf (fully masked) gets the lowest finite value
// instead, so that exp(-inf - shift) = 0 and alpha = exp(-inf - shift) = 0 rather than
// exp(-inf + inf) = NaN; such a row keeps l = 0 and gets output 0 at the end (PyTorch's
// rule) and lse = -inf. m itself stays -inf, so a later tile with real scores is not
// shifted against a made-up max.
//
// Math supplies max(a, b), exp(a) and lowest() (the lowest finite value) for R.
template <typename R, typename Math>
PYDL_HOST_DEVICE inline R online_softmax_update(R& m, R& l, R tile_max, R& shift) {
  const R m_new = Math::max(m, tile_max);
  shift = Math::max(m_new, Math::lowest());
  const R alpha = Math::exp(m - shift);
  l = l * alpha;
  m = m_new;
  return alpha;
}

template <typename T>
struct AttentionArgs {
  int64_t BH, L, S, D, Dv;
  const T* q;  // (BH, L, D)
  const T* k;  // (BH, S, D)
  const T* v;  // (BH, S, Dv)
  // Additive mask (booleans arrive as 0 / -inf), or nullptr: head b reads
  // mask[mask_offset[b] + i * mask_ls + j * mask_ss] for query i and key j (strides are 0
  // along broadcast dimensions).
  const T* mask;
  const int64_t* mask_offset;  // (BH,)
  int64_t mask_ls, mask_ss;
  bool causal;  // key j is seen by query i only when j <= i
  T scale;
  T* out;  // (BH, L, Dv)
  T* lse;  // (BH, L): log-sum-exp of each row of E (-inf for a fully masked row)
  // backward only
  const T* grad_out;  // (BH, L, Dv)
  T* grad_q;          // (BH, L, D)
  T* grad_k;          // (BH, S, D)
  T* grad_v;          // (BH, S, Dv)
  int threads;
};

template <typename T>
struct AttentionKernelsT {
  void (*forward)(const AttentionArgs<T>& a);   // reads q, k, v, mask; writes out, lse
  void (*backward)(const AttentionArgs<T>& a);  // reads q, k, v, mask, out, lse, grad_out; writes grad_*
};

struct AttentionKernels {
  AttentionKernelsT<float> f32;
  AttentionKernelsT<double> f64;
};

PYDL_DECLARE_ISA_TABLE(AttentionKernels, attention_kernels)

template <typename T>
const AttentionKernelsT<T>& pick_attention() {
  if constexpr (sizeof(T) == 4) return pick_attention_kernels().f32;
  else return pick_attention_kernels().f64;
}

}  // namespace pydl
