// max pooling's forward plane, compiled once per ISA (see isa.h): out[oh, ow] = the max of
// its window and idx[oh, ow] = h * W + w of the winner, PyTorch's rule (a candidate
// replaces the best when v > best or v is NaN: the first maximum in scan order wins a tie,
// the last NaN wins over everything). csrc/cpu/pool.cpp calls it once per plane.
//
// Legend: (H, W) input plane, (OH, OW) output plane, window (KH, KW), stride (SH, SW),
// padding (PH, PW), dilation (DH, DW); V = 16 float or 8 double lanes.
//
// Algorithm: a scalar compare-and-branch per tap mispredicts about every other time on
// real data (~30 cycles an output: 70 ms for the canonical N64 64x56x56 2x2 plane set).
// Here V adjacent outputs of a row are computed at once, branch-free: for each tap (h, kw)
// the V inputs are one load (stride 1) or two loads and a shuffle that keeps the even
// elements (stride 2), then a compare and two selects update (best, index). The taps are
// visited in the scalar scan order, so ties and NaN resolve exactly as there. Only the
// interior columns -- whose every tap lies inside the row -- go through the vector path;
// the last chunk is shifted back to end at the interior's end (recomputing a few outputs)
// so no load ever reads past the row. Border columns, other strides and planes too
// narrow for a chunk take the scalar loop (selects, not branches, in the body).
//
// Workspace: none.
//
// Checked by tests/kernels/test_pool.py on every ISA path (paths with 1, 2 and 3 strides,
// dilation, padding, ceil_mode, ties, NaN, planes narrower than a chunk).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#include "pydl/pool.h"

#pragma GCC diagnostic ignored "-Wpsabi"  // internal vector helpers only; see norm_isa.cpp

namespace pydl::PYDL_ISA_NS {
namespace {

template <typename T>
struct Lanes;
template <>
struct Lanes<float> {
  static constexpr int V = 16;
  typedef int32_t Idx;
  typedef float R __attribute__((vector_size(64)));
  typedef int32_t I __attribute__((vector_size(64)));  // the comparison masks' type, and the index
  typedef int64_t L __attribute__((vector_size(128)));
  static I iota() { return I{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}; }
  // p[0], p[2], ..., p[30], reading p[0..30] only
  static R load_even(const float* p) {
    R a, b;
    std::memcpy(&a, p, sizeof(R));
    std::memcpy(&b, p + 15, sizeof(R));
    return __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 17, 19, 21, 23, 25, 27, 29, 31);
  }
};
template <>
struct Lanes<double> {
  static constexpr int V = 8;
  typedef int64_t Idx;
  typedef double R __attribute__((vector_size(64)));
  typedef int64_t I __attribute__((vector_size(64)));
  typedef int64_t L __attribute__((vector_size(64)));
  static I iota() { return I{0, 1, 2, 3, 4, 5, 6, 7}; }
  static R load_even(const double* p) {  // p[0], p[2], ..., p[14], reading p[0..14] only
    R a, b;
    std::memcpy(&a, p, sizeof(R));
    std::memcpy(&b, p + 7, sizeof(R));
    return __builtin_shufflevector(a, b, 0, 2, 4, 6, 9, 11, 13, 15);
  }
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
template <typename T, int SW>
inline void vector_chunk(const T* xp, const Pool2dShape& s, int64_t h0, int64_t h1, int64_t c, T* o, int64_t* io) {
  using Ln = Lanes<T>;
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
      if constexpr (SW == 1) std::memcpy(&v, row + kw * s.DW, sizeof(R));
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

template <typename T>
void max_pool_plane(const T* xp, T* op, int64_t* ip, const Pool2dShape& s) {
  constexpr int V = Lanes<T>::V;
  // Interior columns: every tap inside the row, ow SW - PW >= 0 and
  // ow SW - PW + (KW - 1) DW <= W - 1.
  const int64_t ow_lo = (s.PW + s.SW - 1) / s.SW;
  const int64_t last = s.W - 1 - (s.KW - 1) * s.DW + s.PW;
  int64_t ow_hi = last < 0 ? 0 : std::min<int64_t>(s.OW, last / s.SW + 1);
  if (ow_hi < ow_lo) ow_hi = ow_lo;
  const bool vec = (s.SW == 1 || s.SW == 2) && ow_hi - ow_lo >= V && s.H * s.W < (int64_t(1) << 31);
  for (int64_t oh = 0; oh < s.OH; ++oh) {
    int64_t h0 = oh * s.SH - s.PH;
    const int64_t h1 = std::min<int64_t>(h0 + (s.KH - 1) * s.DH + 1, s.H);
    while (h0 < 0) h0 += s.DH;
    T* o = op + oh * s.OW;
    int64_t* io = ip + oh * s.OW;
    if (!vec) {
      for (int64_t ow = 0; ow < s.OW; ++ow) scalar_window(xp, s, h0, h1, ow, o + ow, io + ow);
      continue;
    }
    for (int64_t ow = 0; ow < ow_lo; ++ow) scalar_window(xp, s, h0, h1, ow, o + ow, io + ow);
    for (int64_t c = ow_lo;; c += V) {
      if (c + V > ow_hi) c = ow_hi - V;  // the last chunk ends at the interior's end
      if (s.SW == 1) vector_chunk<T, 1>(xp, s, h0, h1, c, o + c, io + c);
      else vector_chunk<T, 2>(xp, s, h0, h1, c, o + c, io + c);
      if (c + V >= ow_hi) break;
    }
    for (int64_t ow = ow_hi; ow < s.OW; ++ow) scalar_window(xp, s, h0, h1, ow, o + ow, io + ow);
  }
}

}  // namespace

extern const PoolKernels pool_kernels = {{&max_pool_plane<float>}, {&max_pool_plane<double>}};

}  // namespace pydl::PYDL_ISA_NS
