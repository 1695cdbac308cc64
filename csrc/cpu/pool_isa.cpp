// max pooling's forward plane, compiled once per ISA (see isa.h): out[oh, ow] = the max of
// its window and idx[oh, ow] = h * W + w of the winner, PyTorch's rule (a candidate
// replaces the best when v > best or v is NaN: the first maximum in scan order wins a tie,
// the last NaN wins over everything). csrc/cpu/pool.cpp calls it once per plane.
//
// Legend: (H, W) input plane, (OH, OW) output plane, window (KH, KW), stride (SH, SW),
// padding (PH, PW), dilation (DH, DW); V lanes: 64 bytes (16 floats, 8 doubles), or 32
// or 16 bytes for rows too narrow for 64 (LeNet's 14- and 7-wide pooled rows).
//
// Algorithm: a scalar compare-and-branch per tap mispredicts about every other time on
// real data (~30 cycles an output: 70 ms for the canonical N64 64x56x56 2x2 plane set).
// Here V adjacent outputs of a row are computed at once, branch-free: for each tap (h, kw)
// the V inputs are one load (stride 1) or two loads and a shuffle that keeps the even
// elements (stride 2), then a compare and two selects update (best, index). The taps are
// visited in the scalar scan order, so ties and NaN resolve exactly as there. Only the
// interior columns -- whose every tap lies inside the row -- go through the vector path,
// in the widest chunk the interior holds; the last chunk is shifted back to end at the
// interior's end (recomputing a few outputs) so no load ever reads past the row. Border
// columns, other strides and rows narrower than 4 lanes take the scalar loop (selects,
// not branches, in the body).
//
// Workspace: none.
//
// Checked by tests/kernels/test_pool.py on every ISA path (paths with 1, 2 and 3 strides,
// dilation, padding, ceil_mode, ties, NaN, planes narrower than a chunk).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "pydl/pool.h"

#pragma GCC diagnostic ignored "-Wpsabi"  // internal vector helpers only; see norm_isa.cpp

namespace pydl::PYDL_ISA_NS {
namespace {

// V lanes of T (V * sizeof(T) bytes: 64, 32 or 16), the index lanes as wide as T's, and
// the int64 lanes they are stored as.
template <typename T>
using IdxOf = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;

template <typename T, int V>
struct Lanes {
  typedef IdxOf<T> Idx;
  typedef T R __attribute__((vector_size(V * sizeof(T))));
  typedef Idx I __attribute__((vector_size(V * sizeof(T))));  // the comparison masks' type, and the index
  typedef int64_t L __attribute__((vector_size(V * 8)));
  static I iota() {
    I v;
    for (int i = 0; i < V; ++i) v[i] = static_cast<Idx>(i);
    return v;
  }
  static R load(const T* p) {
    R v;
    std::memcpy(&v, p, sizeof(R));
    return v;
  }
  // p[0], p[2], ..., p[2V - 2], reading p[0 .. 2V - 2] only: a = p[0 .. V-1] and
  // b = p[V-1 .. 2V-2], element 2k from a when 2k < V, else b[2k - V + 1] (index 2k + 1).
  template <size_t... K>
  static R even(R a, R b, std::index_sequence<K...>) {
    return __builtin_shufflevector(a, b, (2 * K < V ? 2 * K : 2 * K + 1)...);
  }
  static R load_even(const T* p) { return even(load(p), load(p + V - 1), std::make_index_sequence<V>{}); }
};

template <typename T>
inline void scalar_window(const T* xp, const Pool2dShape& s, int64_t h0, int64_t h1, int64_t ow, T* o,
                          int64_t* io) {
  int64_t w0 = ow * s.SW - s.PW;
  const int64_t w1 = std::min<int64_t>(w0 + (s.KW - 1) * s.DW + 1, s.W);
  while (w0 < 0) w0 += s.DW;
  T best = -std::numeric_limits<T>::infinity();
  int64_t best_i = h0 * s.W + w0;
  for (int64_t h = h0; h < h1; h += s.DH)
    for (int64_t w = w0; w < w1; w += s.DW) {
      const T v = xp[h * s.W + w];
      const bool t = max_pool_better(v, best);
      best = t ? v : best;
      best_i = t ? h * s.W + w : best_i;
    }
  *o = best;
  *io = best_i;
}

// V outputs of row oh starting at column c (all of them interior), stride SW in {1, 2}.
template <typename T, int V, int SW>
inline void vector_chunk(const T* xp, const Pool2dShape& s, int64_t h0, int64_t h1, int64_t c, T* o, int64_t* io) {
  using Ln = Lanes<T, V>;
  using R = typename Ln::R;
  using I = typename Ln::I;
  const int64_t col0 = c * SW - s.PW;  // input column of lane 0's first tap
  const I cols = static_cast<typename Ln::Idx>(col0) + Ln::iota() * SW;
  R best = R{} - std::numeric_limits<T>::infinity();
  I bi = static_cast<typename Ln::Idx>(h0 * s.W) + cols;
  for (int64_t h = h0; h < h1; h += s.DH) {
    const T* row = xp + h * s.W + col0;
    for (int64_t kw = 0; kw < s.KW; ++kw) {
      R v;
      if constexpr (SW == 1) v = Ln::load(row + kw * s.DW);
      else v = Ln::load_even(row + kw * s.DW);
      const I t = (v > best) | (v != v);
      best = t ? v : best;
      bi = t ? static_cast<typename Ln::Idx>(h * s.W + kw * s.DW) + cols : bi;
    }
  }
  std::memcpy(o, &best, sizeof(R));
  const typename Ln::L wide = __builtin_convertvector(bi, typename Ln::L);
  std::memcpy(io, &wide, sizeof(wide));
}

// The interior columns [ow_lo, ow_hi) of every row in chunks of V (the last chunk
// shifted back to end at ow_hi).
template <typename T, int V>
void interior_row(const T* xp, const Pool2dShape& s, int64_t h0, int64_t h1, int64_t ow_lo, int64_t ow_hi, T* o,
                  int64_t* io) {
  for (int64_t c = ow_lo;; c += V) {
    if (c + V > ow_hi) c = ow_hi - V;
    if (s.SW == 1) vector_chunk<T, V, 1>(xp, s, h0, h1, c, o + c, io + c);
    else vector_chunk<T, V, 2>(xp, s, h0, h1, c, o + c, io + c);
    if (c + V >= ow_hi) break;
  }
}

template <typename T>
void max_pool_plane(const T* xp, T* op, int64_t* ip, const Pool2dShape& s) {
  constexpr int V = 64 / sizeof(T);  // a 64-byte chunk; narrower rows use 32 or 16 bytes
  // Interior columns: every tap inside the row, ow SW - PW >= 0 and
  // ow SW - PW + (KW - 1) DW <= W - 1.
  const int64_t ow_lo = (s.PW + s.SW - 1) / s.SW;
  const int64_t last = s.W - 1 - (s.KW - 1) * s.DW + s.PW;
  int64_t ow_hi = last < 0 ? 0 : std::min<int64_t>(s.OW, last / s.SW + 1);
  if (ow_hi < ow_lo) ow_hi = ow_lo;
  const int64_t n = ow_hi - ow_lo;
  const int lanes = (s.SW != 1 && s.SW != 2) || s.H * s.W >= (int64_t(1) << 31) ? 0
                    : n >= V ? V : n >= V / 2 ? V / 2 : n >= V / 4 ? V / 4 : 0;
  for (int64_t oh = 0; oh < s.OH; ++oh) {
    int64_t h0 = oh * s.SH - s.PH;
    const int64_t h1 = std::min<int64_t>(h0 + (s.KH - 1) * s.DH + 1, s.H);
    while (h0 < 0) h0 += s.DH;
    T* o = op + oh * s.OW;
    int64_t* io = ip + oh * s.OW;
    if (lanes == 0) {
      for (int64_t ow = 0; ow < s.OW; ++ow) scalar_window(xp, s, h0, h1, ow, o + ow, io + ow);
      continue;
    }
    for (int64_t ow = 0; ow < ow_lo; ++ow) scalar_window(xp, s, h0, h1, ow, o + ow, io + ow);
    if (lanes == V) interior_row<T, V>(xp, s, h0, h1, ow_lo, ow_hi, o, io);
    else if (lanes == V / 2) interior_row<T, V / 2>(xp, s, h0, h1, ow_lo, ow_hi, o, io);
    else interior_row<T, V / 4>(xp, s, h0, h1, ow_lo, ow_hi, o, io);
    for (int64_t ow = ow_hi; ow < s.OW; ++ow) scalar_window(xp, s, h0, h1, ow, o + ow, io + ow);
  }
}

}  // namespace

extern const PoolKernels pool_kernels = {{&max_pool_plane<float>}, {&max_pool_plane<double>}};

}  // namespace pydl::PYDL_ISA_NS
