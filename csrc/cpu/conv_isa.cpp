// conv2d loops, compiled once per ISA (see isa.h): im2col, col2im, the direct depthwise
// kernels and a channel sum. The drivers that call them (and pydl's gemm) are in conv.cpp.
//
//   im2col   cols[(c, kh, kw), (oh - oh0) * OW + ow] = x[c, oh * SH - PH + kh * DH, ow * SW - PW + kw * DW]
//            (0 where that pixel lies in the padding)
//   col2im   the adjoint: x[c, ih, iw] += every column entry im2col copied from it
//   depthwise (Cg == 1)  out[oh, ow] = b + sum_{kh, kw} w[kh, kw] x[oh * SH - PH + kh * DH, ow * SW - PW + kw * DW]
//
// Legend: see conv.h (Cg input channels of a group, KH x KW kernel, OH x OW output, a
// tile = output rows [oh0, oh1)).
//
// Algorithm: every loop runs along an output row, the contiguous direction of both the
// columns and the images. Padding is handled by ranges, not per-element tests: for each
// kernel column kw, the output columns [lo, hi) whose input column lies inside the image
// are computed once (valid_columns); rows outside the image are skipped (or zero-filled)
// whole. Inside the range a stride-1 row is a memcpy (im2col) or a vector add / axpy
// (col2im, depthwise); other strides use strided loops. No workspace.
//
// Checked by tests/kernels/test_conv.py against the float64 reference
// (pydl/kernels/reference/conv.py) on every ISA path.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "pydl/conv.h"
#include "pydl/simd.h"

namespace pydl::PYDL_ISA_NS {
namespace {

using simd::Vec;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }  // a >= 0, b > 0

// Output columns [lo, hi) whose input column ow * S + off (off = kw * D - P) is in [0, W).
inline void valid_columns(int64_t off, int64_t S, int64_t W, int64_t OW, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : ceil_div(-off, S);
  hi = W - off <= 0 ? 0 : std::min(OW, ceil_div(W - off, S));
  lo = std::min(lo, hi);
}

template <typename T>
inline void zero(T* p, int64_t n) {
  if (n > 0) std::memset(p, 0, size_t(n) * sizeof(T));
}

// dst[i] = src[i * S] for i in [0, n)
template <typename T>
inline void gather_row(T* __restrict dst, const T* __restrict src, int64_t n, int64_t S) {
  if (S == 1) {
    std::memcpy(dst, src, size_t(n) * sizeof(T));
  } else if (S == 2) {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[2 * i];
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i * S];
  }
}

// dst[i * S] += src[i] for i in [0, n)
template <typename T>
inline void scatter_add_row(T* __restrict dst, const T* __restrict src, int64_t n, int64_t S) {
  if (S == 1) {
    for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i * S] += src[i];
  }
}

// dst[i] += a * src[i * S]
template <typename T>
inline void axpy_gather(T* __restrict dst, T a, const T* __restrict src, int64_t n, int64_t S) {
  if (S == 1) {
    for (int64_t i = 0; i < n; ++i) dst[i] += a * src[i];
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] += a * src[i * S];
  }
}

// dst[i * S] += a * src[i]
template <typename T>
inline void axpy_scatter(T* __restrict dst, T a, const T* __restrict src, int64_t n, int64_t S) {
  if (S == 1) {
    for (int64_t i = 0; i < n; ++i) dst[i] += a * src[i];
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i * S] += a * src[i];
  }
}

// sum_i a[i] * b[i * S], in lanes of T
template <typename T>
inline T dot_gather(const T* a, const T* b, int64_t n, int64_t S) {
  using V = Vec<T>;
  constexpr int W = V::W;
  int64_t i = 0;
  T s = 0;
  if (S == 1 && n >= 2 * W) {
    typename V::R acc0 = V::zero(), acc1 = V::zero();
    for (; i + 2 * W <= n; i += 2 * W) {
      acc0 = V::fma(V::load(a + i), V::load(b + i), acc0);
      acc1 = V::fma(V::load(a + i + W), V::load(b + i + W), acc1);
    }
    s = V::hsum(V::add(acc0, acc1));
  }
  for (; i < n; ++i) s += a[i] * b[i * S];
  return s;
}

template <typename T>
void im2col(const ConvGeometry& g, const T* x, int64_t oh0, int64_t oh1, T* cols) {
  const int64_t OW = g.OW, H = g.H, W = g.W, tile = (oh1 - oh0) * OW;
  for (int64_t c = 0; c < g.Cg(); ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        T* row = cols + ((c * g.KH + kh) * g.KW + kw) * tile;  // (oh1 - oh0, OW)
        const int64_t off = kw * g.DW - g.PW;
        int64_t lo, hi;
        valid_columns(off, g.SW, W, OW, lo, hi);
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          T* dst = row + (oh - oh0) * OW;
          const int64_t ih = oh * g.SH - g.PH + kh * g.DH;
          if (ih < 0 || ih >= H) {
            zero(dst, OW);
            continue;
          }
          const T* src = x + (c * H + ih) * W + off;  // src[ow * SW] = x[c, ih, ow * SW + off]
          zero(dst, lo);
          gather_row(dst + lo, src + lo * g.SW, hi - lo, g.SW);
          zero(dst + hi, OW - hi);
        }
      }
}

template <typename T>
void col2im(const ConvGeometry& g, const T* cols, int64_t oh0, int64_t oh1, T* x) {
  const int64_t OW = g.OW, H = g.H, W = g.W, tile = (oh1 - oh0) * OW;
  for (int64_t c = 0; c < g.Cg(); ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const T* row = cols + ((c * g.KH + kh) * g.KW + kw) * tile;
        const int64_t off = kw * g.DW - g.PW;
        int64_t lo, hi;
        valid_columns(off, g.SW, W, OW, lo, hi);
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          const int64_t ih = oh * g.SH - g.PH + kh * g.DH;
          if (ih < 0 || ih >= H) continue;
          T* dst = x + (c * H + ih) * W + off;
          scatter_add_row(dst + lo * g.SW, row + (oh - oh0) * OW + lo, hi - lo, g.SW);
        }
      }
}

// Valid output-column ranges of every kernel column, for the depthwise loops below (the
// drivers only send kernels with KW <= kConvMaxDirectKW here).
struct ColumnRanges {
  int64_t off[kConvMaxDirectKW], lo[kConvMaxDirectKW], hi[kConvMaxDirectKW];
  explicit ColumnRanges(const ConvGeometry& g) {
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      off[kw] = kw * g.DW - g.PW;
      valid_columns(off[kw], g.SW, g.W, g.OW, lo[kw], hi[kw]);
    }
  }
};

template <typename T>
void depthwise_forward(const ConvGeometry& g, const T* x, const T* w, T bias, T* out) {
  const ColumnRanges r(g);
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    T* o = out + oh * g.OW;  // (OW,)
    for (int64_t ow = 0; ow < g.OW; ++ow) o[ow] = bias;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t ih = oh * g.SH - g.PH + kh * g.DH;
      if (ih < 0 || ih >= g.H) continue;
      const T* in = x + ih * g.W;
      for (int64_t kw = 0; kw < g.KW; ++kw)
        axpy_gather(o + r.lo[kw], w[kh * g.KW + kw], in + r.lo[kw] * g.SW + r.off[kw], r.hi[kw] - r.lo[kw], g.SW);
    }
  }
}

template <typename T>
void depthwise_input_grad(const ConvGeometry& g, const T* grad_out, const T* w, T* grad_x) {
  const ColumnRanges r(g);
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const T* go = grad_out + oh * g.OW;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t ih = oh * g.SH - g.PH + kh * g.DH;
      if (ih < 0 || ih >= g.H) continue;
      T* gx = grad_x + ih * g.W;
      for (int64_t kw = 0; kw < g.KW; ++kw)
        axpy_scatter(gx + r.lo[kw] * g.SW + r.off[kw], w[kh * g.KW + kw], go + r.lo[kw], r.hi[kw] - r.lo[kw], g.SW);
    }
  }
}

template <typename T>
void depthwise_weight_grad(const ConvGeometry& g, const T* grad_out, const T* x, double* grad_w) {
  const ColumnRanges r(g);
  for (int64_t kh = 0; kh < g.KH; ++kh)
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      T s = 0;  // one plane's sum in T, added to the double total
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const int64_t ih = oh * g.SH - g.PH + kh * g.DH;
        if (ih < 0 || ih >= g.H) continue;
        s += dot_gather(grad_out + oh * g.OW + r.lo[kw], x + ih * g.W + r.lo[kw] * g.SW + r.off[kw],
                        r.hi[kw] - r.lo[kw], g.SW);
      }
      grad_w[kh * g.KW + kw] += s;
    }
}

template <typename T>
double sum(const T* x, int64_t n) {
  using V = Vec<T>;
  constexpr int W = V::W;
  typename V::R acc[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W)
    for (int j = 0; j < 4; ++j) acc[j] = V::add(acc[j], V::load(x + i + j * W));
  double s = V::hsum(V::add(V::add(acc[0], acc[1]), V::add(acc[2], acc[3])));
  for (; i < n; ++i) s += x[i];
  return s;
}

template <typename T>
constexpr ConvLoops<T> loops() {
  return {&im2col<T>, &col2im<T>, &depthwise_forward<T>, &depthwise_input_grad<T>, &depthwise_weight_grad<T>,
          &sum<T>};
}

}  // namespace

extern const ConvKernels conv_kernels = {loops<float>(), loops<double>()};

}  // namespace pydl::PYDL_ISA_NS
