// pooling family: PyTorch's pooling rules, once, for the CPU (csrc/cpu/pool.cpp) and GPU
// kernels. The NumPy twin of these rules is pydl/kernels/reference/_pool_rules.py.
//
// Dimension legend: P = N * C planes, (H, W) input plane, (OH, OW) output plane, window
// (KH, KW), stride (SH, SW), padding (PH, PW), dilation (DH, DW). Indices are flat
// positions h * W + w inside a plane, int64, as PyTorch's return_indices gives them.
#pragma once
#include <cstdint>

#include "pydl/isa.h"

#include "pydl/host_device.h"

namespace pydl {

// floor((L + 2p - d(k-1) - 1 [+ s-1 if ceil_mode]) / s) + 1; with ceil_mode the last
// window must start inside the input or the left padding. May be < 1 (the caller reports).
PYDL_HOST_DEVICE inline int64_t pool_output_size(int64_t L, int64_t k, int64_t s, int64_t p, int64_t d,
                                                 bool ceil_mode) {
  int64_t num = L + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;  // floor division
  if (ceil_mode && (out - 1) * s >= L + p) --out;
  return out;
}

// PyTorch's max-pooling comparison: replace the best so far when strictly greater, or NaN
// (so a tie keeps the first maximum in scan order and the last NaN wins).
template <typename T>
PYDL_HOST_DEVICE inline bool max_pool_better(T v, T best) {
  return v > best || v != v;
}

// Adaptive pooling: window i of n over a length-L axis is [floor(iL/n), ceil((i+1)L/n)).
PYDL_HOST_DEVICE inline int64_t adaptive_start(int64_t i, int64_t L, int64_t n) { return (i * L) / n; }
PYDL_HOST_DEVICE inline int64_t adaptive_end(int64_t i, int64_t L, int64_t n) { return ((i + 1) * L + n - 1) / n; }

// Fractional max pooling (PyTorch's generate_intervals): start of window i of n, each K
// long, over a length-L axis, from the plane's sample u in [0, 1), computed in T as
// PyTorch computes it in the input's type.
template <typename T>
PYDL_HOST_DEVICE inline int64_t fractional_start(T u, int64_t i, int64_t L, int64_t n, int64_t K) {
  if (i == n - 1) return L - K;
  T alpha = static_cast<T>(L - K) / static_cast<T>(n - 1);
  return static_cast<int>((static_cast<T>(i) + u) * alpha) - static_cast<int>(u * alpha);
}

// One pooling problem, read by every pooling kernel.
struct Pool2dShape {
  int64_t P, H, W, OH, OW;      // planes (N * C), input plane, output plane
  int64_t KH, KW, SH, SW, PH, PW, DH, DW;
};

// The clipped window of average-pooling output (oh, ow) and its divisor (PyTorch's
// avg_pool2d rule): divisor_override when non-zero, else the window's size counting the
// padding (a ceil_mode window hanging past the padding counts only up to it) when
// count_include_pad, else the number of real inputs.
struct AvgWindow {
  int64_t h0, h1, w0, w1;
  int64_t divisor;
};

PYDL_HOST_DEVICE inline AvgWindow avg_window(const Pool2dShape& s, int64_t oh, int64_t ow, bool count_include_pad,
                                             int64_t divisor_override) {
  int64_t h0 = oh * s.SH - s.PH, w0 = ow * s.SW - s.PW;
  int64_t h1 = h0 + s.KH < s.H + s.PH ? h0 + s.KH : s.H + s.PH;
  int64_t w1 = w0 + s.KW < s.W + s.PW ? w0 + s.KW : s.W + s.PW;
  const int64_t pool_size = (h1 - h0) * (w1 - w0);
  h0 = h0 > 0 ? h0 : 0;
  w0 = w0 > 0 ? w0 : 0;
  h1 = h1 < s.H ? h1 : s.H;
  w1 = w1 < s.W ? w1 : s.W;
  const int64_t div = divisor_override ? divisor_override : count_include_pad ? pool_size : (h1 - h0) * (w1 - w0);
  return {h0, h1, w0, w1, div};
}

// The plane kernels compiled per ISA (csrc/cpu/pool_isa.cpp).
template <typename T>
struct PoolKernelsT {
  // One plane of max pooling: xp (H, W) -> op, ip (OH, OW).
  void (*max_pool_plane)(const T* xp, T* op, int64_t* ip, const Pool2dShape& s);
};

struct PoolKernels {
  PoolKernelsT<float> f32;
  PoolKernelsT<double> f64;
};

PYDL_DECLARE_ISA_TABLE(PoolKernels, pool_kernels)

template <typename T>
const PoolKernelsT<T>& pick_pool() {
  if constexpr (sizeof(T) == 4) return pick_pool_kernels().f32;
  else return pick_pool_kernels().f64;
}

}  // namespace pydl
