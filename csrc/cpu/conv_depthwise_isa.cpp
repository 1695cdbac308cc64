// Depthwise conv2d loops (Cg == 1: each output channel sees one input channel), compiled
// once per ISA (see isa.h); the drivers in conv.cpp call them one input plane at a time.
//
//   out[j, oh, ow] = b[j] + sum_{kh, kw} w[j, kh, kw] x[oh * SH - PH + kh * DH, ow * SW - PW + kw * DW]
//
// for the Kg output channels j of the plane (the depth multiplier). Legend: see conv.h.
//
// Algorithm: the plane is first copied into a zero-padded buffer, split into SW column
// phases (conv.h), so that every tap of every output row reads one contiguous,
// branch-free run; the forward pass then accumulates all KH * KW taps of U vectors of an
// output row in registers (in interleaved partial sums, so enough FMAs are in flight); the
// stride-1 input gradient is the same correlation run on the zero-padded grad_out with the
// kernel turned around, a strided one adds each output pixel's gradient times each tap into
// a padded gradient plane; the weight gradient is per tap a dot product of grad_out with
// the shifted input rows. A gemm would be Kg x pixels x KH*KW here: far too thin.
//
// Workspace: depthwise_scratch_size(g) elements per thread (two padded planes and one
// padded grad_out plane, conv.h), from the driver.
//
// Checked by tests/kernels/test_conv.py against the float64 reference on every ISA path.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "conv_rows.h"
#include "pydl/conv.h"
#include "pydl/simd.h"

namespace pydl::PYDL_ISA_NS {
namespace {

using namespace conv_rows;

// The plane in padded coordinates (a, b) = (ih + PH, iw + PW), split into SW column phases:
// pad(r, a)[q] = x[a - PH, q * SW + r - PW] (0 outside the image). Output pixel (oh, ow)
// reads tap (kh, kw) at tap_row(oh, kh, kw)[ow], with no bounds to test.
template <typename T>
struct PaddedPlane {
  const ConvGeometry& g;
  DepthwisePlane dims;
  T* data;  // (SW, Hp, Q)
  PaddedPlane(const ConvGeometry& geom, int64_t chunk, T* buf) : g(geom), dims(geom, chunk), data(buf) {}

  // Offset of tap (kh, kw) from an output row's start: tap_row = data + oh * SH * Q + offset.
  int64_t tap_offset(int64_t kh, int64_t kw) const {
    const int64_t b = kw * g.DW;
    return ((b % g.SW) * dims.Hp + kh * g.DH) * dims.Q + b / g.SW;
  }
  T* row(int64_t oh) const { return data + oh * g.SH * dims.Q; }
  void clear() const { zero(data, dims.size(g)); }
  // Visits the (image row, padded row) pairs and, per phase r, the image columns
  // iw = q * SW + r - PW that land in the plane: f(x_row_offset, pad_row, first iw, count).
  template <typename F>
  void for_each_run(F f) const {
    for (int64_t ih = 0; ih < g.H; ++ih) {
      const int64_t a = ih + g.PH;
      if (a >= dims.Hp) break;
      for (int64_t r = 0; r < g.SW; ++r) {
        // q >= 0 with iw = q * SW + r - PW >= 0, and iw < W, q < Q
        int64_t q0 = r >= g.PW ? 0 : ceil_div(g.PW - r, g.SW);
        int64_t q1 = std::min(dims.Q, g.W + g.PW - r <= 0 ? 0 : ceil_div(g.W + g.PW - r, g.SW));
        if (q1 > q0) f(ih * g.W + q0 * g.SW + r - g.PW, data + (r * dims.Hp + a) * dims.Q + q0, q1 - q0);
      }
    }
  }
  void load(const T* x) const {  // the image into the (cleared) plane
    clear();
    for_each_run([&](int64_t off, T* dst, int64_t n) {
      const T* src = x + off;
      if (g.SW == 1) copy(dst, src, n);
      else for (int64_t i = 0; i < n; ++i) dst[i] = src[i * g.SW];
    });
  }
  void store(T* x) const {  // the plane's image part back into x (H, W)
    for_each_run([&](int64_t off, T* src, int64_t n) {
      T* dst = x + off;
      if (g.SW == 1) copy(dst, src, n);
      else for (int64_t i = 0; i < n; ++i) dst[i * g.SW] = src[i];
    });
  }
};

// The tap offsets of a plane, kept on the stack for kernels up to 16x16.
struct TapOffsets {
  int64_t small[256];
  std::vector<int64_t> big;
  int64_t* off;
  explicit TapOffsets(int64_t KK) : off(KK <= 256 ? small : (big.resize(size_t(KK)), big.data())) {}
  template <typename T>
  explicit TapOffsets(const PaddedPlane<T>& p) : TapOffsets(p.g.KH * p.g.KW) {
    for (int64_t kh = 0; kh < p.g.KH; ++kh)
      for (int64_t kw = 0; kw < p.g.KW; ++kw) off[kh * p.g.KW + kw] = p.tap_offset(kh, kw);
  }
};

// Independent accumulator chains per vector of a chunk: the taps of a row are summed in A
// interleaved partial sums so that U * A >= 8 FMAs are in flight (FMA latency 4, two units);
// one chain of 25 taps (5x5 on a 14-wide image) ran 4x below the FMA rate (measured).
template <int U>
constexpr int kChains = U >= 4 ? 2 : 8 / U;

// out (rows, cols) (+)= sum_t w[t] * plane[r * row_step + off[t] + c] (+ bias): U vectors of
// one output row at a time, every tap accumulated in registers. A chunk that runs past the
// end of its row is stored whole where that is allowed (not accumulating, before `end`):
// the lanes past the row land at the start of the next row, written later anyway.
template <typename T, int U>
void correlate_rows(const T* plane, int64_t row_step, const int64_t* off, int64_t KK, const T* w, T bias,
                    bool accumulate, T* out, int64_t rows, int64_t cols, const T* end) {
  using V = Vec<T>;
  using R = typename V::R;
  constexpr int64_t CW = U * V::W;
  constexpr int A = kChains<U>;
  alignas(64) T tmp[CW];
  for (int64_t r = 0; r < rows; ++r) {
    T* o = out + r * cols;
    const T* prow = plane + r * row_step;
    for (int64_t c = 0; c < cols; c += CW) {
      const bool whole = c + CW <= cols;
      R acc[A][U];
#pragma GCC unroll 8
      for (int a = 0; a < A; ++a)
#pragma GCC unroll 4
        for (int u = 0; u < U; ++u) acc[a][u] = V::zero();
      int64_t t = 0;
      for (; t + A <= KK; t += A)
#pragma GCC unroll 8
        for (int a = 0; a < A; ++a) {
          const T* in = prow + off[t + a] + c;
          const R wv = V::set1(w[t + a]);
#pragma GCC unroll 4
          for (int u = 0; u < U; ++u) acc[a][u] = V::fma(wv, V::load(in + u * V::W), acc[a][u]);
        }
      for (; t < KK; ++t) {
        const T* in = prow + off[t] + c;
        const R wv = V::set1(w[t]);
#pragma GCC unroll 4
        for (int u = 0; u < U; ++u) acc[0][u] = V::fma(wv, V::load(in + u * V::W), acc[0][u]);
      }
      const T* prev = o + c;
      if (accumulate && !whole) {
        zero(tmp, CW);
        copy(tmp, o + c, cols - c);
        prev = tmp;
      }
      const R b = V::set1(bias);
#pragma GCC unroll 4
      for (int u = 0; u < U; ++u) {
#pragma GCC unroll 8
        for (int a = 1; a < A; ++a) acc[0][u] = V::add(acc[0][u], acc[a][u]);
        acc[0][u] = V::add(acc[0][u], accumulate ? V::load(prev + u * V::W) : b);
      }
      if (whole || (!accumulate && o + c + CW <= end)) {
#pragma GCC unroll 4
        for (int u = 0; u < U; ++u) V::store(o + c + u * V::W, acc[0][u]);
      } else {
        for (int u = 0; u < U; ++u) V::store(tmp + u * V::W, acc[0][u]);
        copy(o + c, tmp, cols - c);
      }
    }
  }
}

// Vectors per chunk of a row `width` wide: enough to cover it, at most 4.
template <typename T>
int chunk_vectors(int64_t width) {
  return static_cast<int>(std::min<int64_t>(4, std::max<int64_t>(1, ceil_div(width, Vec<T>::W))));
}

template <typename T, int U>
void depthwise_forward_rows(const ConvGeometry& g, const PaddedPlane<T>& xp, const T* w, const T* bias, T* out) {
  const int64_t KK = g.KH * g.KW;
  const TapOffsets taps(xp);
  const T* end = out + g.Kg() * g.OH * g.OW;
  for (int64_t j = 0; j < g.Kg(); ++j)
    correlate_rows<T, U>(xp.data, g.SH * xp.dims.Q, taps.off, KK, w + j * KK, bias ? bias[j] : T(0), false,
                         out + j * g.OH * g.OW, g.OH, g.OW, end);
}

// Stride 1: grad_x[ih, iw] = sum_{j, kh, kw} w_j[kh, kw] grad_out_j[ih + PH - kh*DH, iw + PW - kw*DW],
// each channel j zero-padded into `plane` (DepthwiseGradPlane), then correlated like the forward pass.
template <typename T, int U>
void depthwise_input_grad_gather(const ConvGeometry& g, const T* grad_out, const T* w, T* grad_x, T* plane) {
  const DepthwiseGradPlane p(g, U * Vec<T>::W);
  const int64_t KK = g.KH * g.KW;
  TapOffsets taps(KK);
  for (int64_t kh = 0; kh < g.KH; ++kh)
    for (int64_t kw = 0; kw < g.KW; ++kw)
      taps.off[kh * g.KW + kw] = (g.PH - kh * g.DH + p.TOP) * p.Qg + g.PW - kw * g.DW + p.LEFT;
  zero(plane, p.size());
  for (int64_t j = 0; j < g.Kg(); ++j) {
    for (int64_t oh = 0; oh < g.OH && oh + p.TOP < p.Hg; ++oh)
      copy(plane + (oh + p.TOP) * p.Qg + p.LEFT, grad_out + (j * g.OH + oh) * g.OW,
           std::min(g.OW, p.Qg - p.LEFT));
    correlate_rows<T, U>(plane, p.Qg, taps.off, KK, w + j * KK, T(0), j > 0, grad_x, g.H, g.W, grad_x + g.H * g.W);
  }
}

// grad_x: every output pixel's gradient times each tap, added where the tap read (into a
// padded plane, so no bounds), U vectors of an output row at a time.
// grad_w: per tap, the dot product of grad_out with the padded input rows the tap read.
// gop: one channel of grad_out, rows zero-padded to OWc.
template <typename T, int U>
void depthwise_backward_rows(const ConvGeometry& g, const T* grad_out, const PaddedPlane<T>* xp, const T* w,
                             const PaddedPlane<T>* gxp, double* grad_w, T* gop, int64_t OWc) {
  using V = Vec<T>;
  constexpr int64_t CW = U * V::W;
  const int64_t KK = g.KH * g.KW, OWu = ceil_div(g.OW, CW) * CW;  // OWu <= OWc
  const TapOffsets taps(xp ? *xp : *gxp);  // the same geometry for both planes
  for (int64_t j = 0; j < g.Kg(); ++j) {
    for (int64_t oh = 0; oh < g.OH; ++oh) copy(gop + oh * OWc, grad_out + (j * g.OH + oh) * g.OW, g.OW);
    if (gxp) {
      const T* wj = w + j * KK;
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < OWu; ow += CW) {
          typename V::R d[U];
          for (int u = 0; u < U; ++u) d[u] = V::load(gop + oh * OWc + ow + u * V::W);
          T* grow = gxp->row(oh) + ow;
          for (int64_t t = 0; t < KK; ++t) {
            T* dst = grow + taps.off[t];
            const typename V::R wv = V::set1(wj[t]);
            for (int u = 0; u < U; ++u) V::store(dst + u * V::W, V::fma(wv, d[u], V::load(dst + u * V::W)));
          }
        }
    }
    if (grad_w)
      for (int64_t t = 0; t < KK; ++t) {  // A chains over the rows, as in the forward loop
        constexpr int A = kChains<U>;
        typename V::R acc[A][U];
        for (int a = 0; a < A; ++a)
          for (int u = 0; u < U; ++u) acc[a][u] = V::zero();
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          const T* in = xp->row(oh) + taps.off[t];
          const T* d = gop + oh * OWc;
          const int a = static_cast<int>(oh % A);
          for (int64_t ow = 0; ow < OWu; ow += CW)
            for (int u = 0; u < U; ++u)
              acc[a][u] = V::fma(V::load(d + ow + u * V::W), V::load(in + ow + u * V::W), acc[a][u]);
        }
        T s = 0;
        for (int a = 0; a < A; ++a)
          for (int u = 0; u < U; ++u) s += V::hsum(acc[a][u]);
        grad_w[j * KK + t] += s;
      }
  }
}

}  // namespace

template <typename T>
void depthwise_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out, T* scratch) {
  const int U = chunk_vectors<T>(g.OW);
  const PaddedPlane<T> xp(g, U * Vec<T>::W, scratch);
  xp.load(x);
  switch (U) {
    case 1: return depthwise_forward_rows<T, 1>(g, xp, w, bias, out);
    case 2: return depthwise_forward_rows<T, 2>(g, xp, w, bias, out);
    case 3: return depthwise_forward_rows<T, 3>(g, xp, w, bias, out);
    default: return depthwise_forward_rows<T, 4>(g, xp, w, bias, out);
  }
}

template <typename T>
void depthwise_backward(const ConvGeometry& g, const T* grad_out, const T* x, const T* w, T* grad_x, double* grad_w,
                        T* scratch) {
  const int U = chunk_vectors<T>(g.OW);
  const DepthwisePlane dims(g, U * Vec<T>::W);
  const int64_t plane = depthwise_plane_size(g, U * Vec<T>::W);
  const PaddedPlane<T> xp(g, U * Vec<T>::W, scratch), gxp(g, U * Vec<T>::W, scratch + plane);
  T* gop = scratch + 2 * plane;  // (OH, OWc), zero past OW
  const bool gather = grad_x && g.SH == 1 && g.SW == 1;
  if (gather) {
    switch (chunk_vectors<T>(g.W)) {
      case 1: depthwise_input_grad_gather<T, 1>(g, grad_out, w, grad_x, scratch + plane); break;
      case 2: depthwise_input_grad_gather<T, 2>(g, grad_out, w, grad_x, scratch + plane); break;
      case 3: depthwise_input_grad_gather<T, 3>(g, grad_out, w, grad_x, scratch + plane); break;
      default: depthwise_input_grad_gather<T, 4>(g, grad_out, w, grad_x, scratch + plane); break;
    }
    if (!grad_w) return;
  }
  for (int64_t oh = 0; oh < g.OH; ++oh) zero(gop + oh * dims.OWc + g.OW, dims.OWc - g.OW);
  if (grad_w) xp.load(x);
  const PaddedPlane<T>* xpp = grad_w ? &xp : nullptr;
  const PaddedPlane<T>* gxpp = grad_x && !gather ? &gxp : nullptr;
  if (gxpp) gxp.clear();
  switch (U) {
    case 1: depthwise_backward_rows<T, 1>(g, grad_out, xpp, w, gxpp, grad_w, gop, dims.OWc); break;
    case 2: depthwise_backward_rows<T, 2>(g, grad_out, xpp, w, gxpp, grad_w, gop, dims.OWc); break;
    case 3: depthwise_backward_rows<T, 3>(g, grad_out, xpp, w, gxpp, grad_w, gop, dims.OWc); break;
    default: depthwise_backward_rows<T, 4>(g, grad_out, xpp, w, gxpp, grad_w, gop, dims.OWc); break;
  }
  if (gxpp) {  // image pixels no tap reads (cut off by the stride) get no gradient
    zero(grad_x, g.H * g.W);
    gxp.store(grad_x);
  }
}

template void depthwise_forward<float>(const ConvGeometry&, const float*, const float*, const float*, float*, float*);
template void depthwise_forward<double>(const ConvGeometry&, const double*, const double*, const double*, double*,
                                        double*);
template void depthwise_backward<float>(const ConvGeometry&, const float*, const float*, const float*, float*,
                                        double*, float*);
template void depthwise_backward<double>(const ConvGeometry&, const double*, const double*, const double*, double*,
                                         double*, double*);

}  // namespace pydl::PYDL_ISA_NS
