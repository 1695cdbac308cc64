// conv2d loops, compiled once per ISA (see isa.h): im2col and col2im, the implicit GEMM's
// padded, phase-split image (implicit_columns), its packers and its unpacked forward
// (implicit_forward, float32 on AVX-512: its own comment below), the transposes and
// copies that put a tile computed aside into place, the dot-product weight gradient and a
// channel sum (the depthwise loops are in conv_depthwise_isa.cpp). The drivers that call
// them (and pydl's gemm) are in conv.cpp.
//
//   im2col   cols[(c, kh, kw), (oh - oh0) * OW + ow] = x[c, oh * SH - PH + kh * DH, ow * SW - PW + kw * DW]
//            (0 where that pixel lies in the padding)
//   col2im   the adjoint: x[c, ih, iw] += every column entry im2col copied from it
//
// Legend: see conv.h (Cg input channels of a group, KH x KW kernel, OH x OW output, a
// tile = output rows [oh0, oh1)).
//
// Algorithm: every loop runs along an output row, the contiguous direction of both the
// columns and the images. Padding is handled by ranges, not per-element tests: for each
// kernel column kw, the output columns [lo, hi) whose input column lies inside the image
// are computed once (valid_columns); rows outside the image are zero-filled (or skipped)
// whole. A stride-1 'same' conv copies each tap's valid rows as one run; a strided conv
// first splits the rows its tile reads into column phases (conv.h), so that each row of
// columns is still a contiguous copy instead of a strided gather (AlexNet's stride 4:
// im2col 27% -> 16% of the forward pass, measured).
//
// Workspace: conv_scratch_size(g, rows) elements from the driver (strided convs only).
//
// Checked by tests/kernels/test_conv.py against the float64 reference
// (pydl/kernels/reference/conv.py) on every ISA path.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "conv_rows.h"
#include "pydl/conv.h"
#include "pydl/simd.h"

namespace pydl::PYDL_ISA_NS {

// conv_depthwise_isa.cpp
template <typename T>
void depthwise_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out, T* scratch);
template <typename T>
void depthwise_backward(const ConvGeometry& g, const T* grad_out, const T* x, const T* w, T* grad_x, double* grad_w,
                        T* scratch);

namespace {

using namespace conv_rows;

// Where im2col reads and col2im writes the input rows of one tile: the image itself
// (SW == 1), or its rows [ih0, ih1) split into SW column phases in the scratch buffer, so
// that row(c, ih, off)[ow] = x[c, ih, ow * SW + off] is contiguous in ow either way.
template <typename T>
struct TileSource {
  T* base;
  int64_t S, ih0, rows, Wq, H, W;

  TileSource(const ConvGeometry& g, const T* x, int64_t oh0, int64_t oh1, T* scratch)
      : base(const_cast<T*>(x)), S(g.SW), ih0(0), rows(g.H), Wq(g.W), H(g.H), W(g.W) {
    if (S == 1) return;
    ih0 = std::max<int64_t>(0, oh0 * g.SH - g.PH);
    const int64_t ih1 = std::min(g.H, (oh1 - 1) * g.SH - g.PH + (g.KH - 1) * g.DH + 1);
    rows = std::max<int64_t>(0, ih1 - ih0);
    Wq = (W + S - 1) / S;
    base = scratch;  // (Cg, S, rows, Wq)
  }
  // Lays out the phases from x (im2col) ...
  void split(const T* x, int64_t Cg) const {
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t r = 0; r < S; ++r)
        for (int64_t i = 0; i < rows; ++i) {
          const T* src = x + (c * H + ih0 + i) * W + r;
          T* dst = base + ((c * S + r) * rows + i) * Wq;
          const int64_t n = (W - r + S - 1) / S;  // columns r, r + S, ... below W
          for (int64_t q = 0; q < n; ++q) dst[q] = src[q * S];
        }
  }
  // ... or adds them back into x (col2im), after they were zeroed and accumulated.
  void merge(T* x, int64_t Cg) const {
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t r = 0; r < S; ++r)
        for (int64_t i = 0; i < rows; ++i) {
          T* dst = x + (c * H + ih0 + i) * W + r;
          const T* src = base + ((c * S + r) * rows + i) * Wq;
          const int64_t n = (W - r + S - 1) / S;
          for (int64_t q = 0; q < n; ++q) dst[q * S] += src[q];
        }
  }
  T* row(int64_t c, int64_t ih, int64_t off) const {
    if (S == 1) return base + (c * H + ih) * W + off;
    const int64_t r = ((off % S) + S) % S, q = (off - r) / S;  // off = q * S + r, 0 <= r < S
    return base + ((c * S + r) * rows + ih - ih0) * Wq + q;
  }
};

// A stride-1 conv whose output rows are as wide as its input rows (padding 'same'): the
// valid rows of one kernel tap form one contiguous run in both the image and the columns,
// copied (or added) in one sweep; the few entries that wrap around a row edge sit where
// the padding is and are zeroed.
inline bool flat_rows(const ConvGeometry& g) { return g.SW == 1 && g.SH == 1 && g.OW == g.W; }

// A 1x1 kernel reads one pixel per output pixel (a strided one: ResNet's shortcuts): its
// columns are the image subsampled, gathered row by row straight from the image (the
// phase split below would write every phase and row for the one it reads: it was a third
// of such a layer's forward, measured). col2im is the matching scatter (no two output
// pixels read the same input pixel).
template <typename T, bool kScatter>
void pointwise_columns(const ConvGeometry& g, T* x, int64_t oh0, int64_t oh1, T* cols, int64_t ld) {
  const int64_t OW = g.OW;
  int64_t lo, hi;
  valid_columns(-g.PW, g.SW, g.W, OW, lo, hi);
  for (int64_t c = 0; c < g.Cg(); ++c)
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      T* dst = cols + c * ld + (oh - oh0) * OW;
      const int64_t ih = oh * g.SH - g.PH;
      if (ih < 0 || ih >= g.H) {
        if constexpr (!kScatter) zero(dst, OW);
        continue;
      }
      T* row = x + (c * g.H + ih) * g.W - g.PW;
      if constexpr (kScatter) {
        for (int64_t ow = lo; ow < hi; ++ow) row[ow * g.SW] += dst[ow];
      } else {
        zero(dst, lo);
        for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = row[ow * g.SW];
        zero(dst + hi, OW - hi);
      }
    }
}

template <typename T>
void im2col(const ConvGeometry& g, const T* x, int64_t oh0, int64_t oh1, T* cols, int64_t ld, T* scratch) {
  if (g.KH == 1 && g.KW == 1) return pointwise_columns<T, false>(g, const_cast<T*>(x), oh0, oh1, cols, ld);
  const int64_t OW = g.OW;
  const TileSource<T> src(g, x, oh0, oh1, scratch);
  if (g.SW > 1) src.split(x, g.Cg());
  const bool flat = flat_rows(g);
  for (int64_t c = 0; c < g.Cg(); ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      int64_t a, b;  // output rows [a, b) of the tile read image rows inside the image
      valid_columns(kh * g.DH - g.PH, g.SH, g.H, g.OH, a, b);
      a = std::clamp(a, oh0, oh1), b = std::clamp(b, a, oh1);
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        T* row = cols + ((c * g.KH + kh) * g.KW + kw) * ld;  // (oh1 - oh0, OW)
        const int64_t off = kw * g.DW - g.PW;
        int64_t lo, hi;
        valid_columns(off, g.SW, g.W, OW, lo, hi);
        zero(row, (a - oh0) * OW);
        zero(row + (b - oh0) * OW, (oh1 - b) * OW);
        if (a == b) continue;
        const auto ih = [&](int64_t oh) { return oh * g.SH - g.PH + kh * g.DH; };
        if (flat && hi > lo) {
          T* dst = row + (a - oh0) * OW;
          copy(dst + lo, src.row(c, ih(a), off) + lo, (b - a - 1) * OW + hi - lo);
          for (int64_t oh = a; oh < b; ++oh, dst += OW) {
            zero(dst, lo);
            zero(dst + hi, OW - hi);
          }
          continue;
        }
        for (int64_t oh = a; oh < b; ++oh) {
          T* dst = row + (oh - oh0) * OW;
          zero(dst, lo);
          copy(dst + lo, src.row(c, ih(oh), off) + lo, hi - lo);
          zero(dst + hi, OW - hi);
        }
      }
    }
}

template <typename T>
void col2im(const ConvGeometry& g, T* cols, int64_t ld, int64_t oh0, int64_t oh1, T* x, T* scratch) {
  if (g.KH == 1 && g.KW == 1) return pointwise_columns<T, true>(g, x, oh0, oh1, cols, ld);
  const int64_t OW = g.OW;
  const TileSource<T> dst_rows(g, x, oh0, oh1, scratch);
  if (g.SW > 1) zero(scratch, g.Cg() * g.SW * dst_rows.rows * dst_rows.Wq);
  const bool flat = flat_rows(g);
  for (int64_t c = 0; c < g.Cg(); ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      int64_t a, b;
      valid_columns(kh * g.DH - g.PH, g.SH, g.H, g.OH, a, b);
      a = std::clamp(a, oh0, oh1), b = std::clamp(b, a, oh1);
      if (a == b) continue;
      const auto ih = [&](int64_t oh) { return oh * g.SH - g.PH + kh * g.DH; };
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        T* row = cols + ((c * g.KH + kh) * g.KW + kw) * ld;
        const int64_t off = kw * g.DW - g.PW;
        int64_t lo, hi;
        valid_columns(off, g.SW, g.W, OW, lo, hi);
        if (hi <= lo) continue;
        if (flat) {
          T* r = row + (a - oh0) * OW;
          for (int64_t oh = a; oh < b; ++oh, r += OW) {  // padding entries must add nothing
            zero(r, lo);
            zero(r + hi, OW - hi);
          }
          add(dst_rows.row(c, ih(a), off) + lo, row + (a - oh0) * OW + lo, (b - a - 1) * OW + hi - lo);
          continue;
        }
        for (int64_t oh = a; oh < b; ++oh)
          add(dst_rows.row(c, ih(oh), off) + lo, row + (oh - oh0) * OW + lo, hi - lo);
      }
    }
  if (g.SW > 1) dst_rows.merge(x, g.Cg());
}

// Input rows split into S column phases, zero-padded by P on the left: row i of x
// (x + i * lds, W columns) to dst + i * ldd,
//   dst[r * ld + q] = x[q * S + r - P] (0 outside [0, W)), r < S, q < Wq.
template <typename T>
void split_rows(const T* x, int64_t rows, int64_t lds, int64_t W, int64_t S, int64_t P, T* dst, int64_t ldd,
                int64_t ld, int64_t Wq) {
#if defined(__AVX512F__)
  const auto inside = [W](int64_t e) {  // lanes l with 0 <= e + l < W
    const int64_t lo = std::clamp<int64_t>(-e, 0, 16), hi = std::clamp<int64_t>(W - e, 0, 16);
    return hi > lo ? __mmask16(((1u << hi) - 1) & ~((1u << lo) - 1)) : __mmask16(0);
  };
  if constexpr (std::is_same_v<T, float>) {
    if (S == 1) {  // the padding included, 16 columns at a time, rows inner (as below): CIFAR
      // ResNet-18's 8x8 rows were three short calls per row (1 thread, CPU time, 8x8x256
      // forward 11.3 -> 11.0 ms: the plane building 4.0% -> 2.9% of it)
      for (int64_t q = 0; q < Wq; q += 16) {
        const __mmask16 in = inside(q - P), store = Wq - q >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (Wq - q)) - 1);
        for (int64_t i = 0; i < rows; ++i)
          _mm512_mask_storeu_ps(dst + i * ldd + q, store, _mm512_maskz_loadu_ps(in, x + i * lds + q - P));
      }
      return;
    }
  }
#endif
  if (S == 1) {
    int64_t lo, hi;
    valid_columns(-P, 1, W, Wq, lo, hi);
    for (int64_t i = 0; i < rows; ++i) {
      zero(dst + i * ldd, lo);
      copy(dst + i * ldd + lo, x + i * lds + lo - P, hi - lo);
      zero(dst + i * ldd + hi, Wq - hi);
    }
    return;
  }
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    if (S == 2 || S == 4) {  // ResNet's downsampling layers, AlexNet's first layer
      // By vectors, the padding and the rows' ends included: 16 columns of every phase from
      // 16 * S of x, loaded under masks (0 outside [0, W)) and stored under a mask past Wq;
      // the masks are the same for every row, so the rows are the inner loop. (Element by
      // element, the rows' ends took 4/5 of this at AlexNet-1, 9 of 57 columns per phase;
      // against one row at a time through a zero-padded row buffer, 1 thread, CPU time, the
      // unpacked forward: 32x32 64->128 stride 2 N32 6.34 -> 5.45 ms, 56x56 64->128 stride 2
      // N8 4.66 -> 3.98, 32x32 3->32 stride 2 N32 0.14 -> 0.08, AlexNet-1 even.)
      const __m512i every2 = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
      const __m512i every4 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
      for (int64_t q = 0; q < Wq; q += 16) {
        const int64_t e = q * S - P;  // x's column under lane 0 of phase 0
        const __mmask16 store = Wq - q >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (Wq - q)) - 1);
        const __mmask16 ma = inside(e), mb = inside(e + 16), mc = inside(e + 32), md = inside(e + 48);
        if (S == 2) {
          for (int64_t i = 0; i < rows; ++i) {
            const float* src = x + i * lds + e;
            const __m512 a = _mm512_maskz_loadu_ps(ma, src), b = _mm512_maskz_loadu_ps(mb, src + 16);
            for (int r = 0; r < 2; ++r)
              _mm512_mask_storeu_ps(dst + i * ldd + r * ld + q, store,
                                    _mm512_permutex2var_ps(a, _mm512_add_epi32(every2, _mm512_set1_epi32(r)), b));
          }
          continue;
        }
        for (int64_t i = 0; i < rows; ++i) {
          const float* src = x + i * lds + e;
          const __m512 a = _mm512_maskz_loadu_ps(ma, src), b = _mm512_maskz_loadu_ps(mb, src + 16),
                       c = _mm512_maskz_loadu_ps(mc, src + 32), d = _mm512_maskz_loadu_ps(md, src + 48);
          for (int r = 0; r < 4; ++r) {
            const __m512i idx = _mm512_add_epi32(every4, _mm512_set1_epi32(r));
            const __m512 ab = _mm512_permutex2var_ps(a, idx, b), cd = _mm512_permutex2var_ps(c, idx, d);
            _mm512_mask_storeu_ps(dst + i * ldd + r * ld + q, store, _mm512_shuffle_f32x4(ab, cd, 0x44));  // ab's 8, then cd's
          }
        }
      }
      return;
    }
  }
#endif
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t r = 0; r < S; ++r)
      for (int64_t q = 0; q < Wq; ++q) {
        const int64_t iw = q * S + r - P;
        dst[i * ldd + r * ld + q] = iw >= 0 && iw < W ? x[i * lds + iw] : T(0);
      }
}

template <typename T>
void implicit_columns(const ConvGeometry& g, const T* x, T* plane, int64_t* taps) {
  const WidePlane wp(g);
  const int64_t Hq = wp.Hq, Wq = wp.Wq, Cg = g.Cg(), phase = Cg * Hq * Wq;  // plane (SH, SW, Cg, Hq, Wq)
  for (int64_t rh = 0; rh < g.SH; ++rh) {
    // rows a of phase rh in [a0, a1) lie in the image (ih = a * SH + rh - PH in [0, H))
    const int64_t a0 = std::min(Hq, ceil_div(std::max<int64_t>(0, g.PH - rh), g.SH));
    const int64_t a1 = std::max(a0, std::min(Hq, g.H + g.PH - rh > 0 ? ceil_div(g.H + g.PH - rh, g.SH) : 0));
    for (int64_t c = 0; c < Cg; ++c) {
      T* dst = plane + (rh * g.SW * Cg + c) * Hq * Wq;  // phase (rh, 0), channel c: (Hq, Wq)
      for (int64_t rw = 0; rw < g.SW; ++rw) {
        zero(dst + rw * phase, a0 * Wq);
        zero(dst + rw * phase + a1 * Wq, (Hq - a1) * Wq);
      }
      split_rows(x + (c * g.H + a0 * g.SH + rh - g.PH) * g.W, a1 - a0, g.SH * g.W, g.W, g.SW, g.PW, dst + a0 * Wq, Wq,
                 phase, Wq);
    }
  }
  for (int64_t c = 0; c < Cg; ++c)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t ah = kh * g.DH / g.SH, rh = kh * g.DH % g.SH, aw = kw * g.DW / g.SW, rw = kw * g.DW % g.SW;
        *taps++ = (((rh * g.SW + rw) * Cg + c) * Hq + ah) * Wq + aw;
      }
}

// pack_columns: each panel row is mr consecutive elements of the plane (the panel's pixels
// in one tap), zero past the last pixel.
template <typename T>
void pack_columns(const void* ctx, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int64_t mr, T* packed) {
  const ImplicitColumns<T>& cols = *static_cast<const ImplicitColumns<T>*>(ctx);
  const int64_t* taps = cols.taps + p0;
  for (int64_t i = 0; i < mc; i += mr, packed += kc * mr) {
    const int64_t n = std::min(mr, mc - i);
    const T* src = cols.plane + i0 + i;
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) {
      if (mr <= 16 && kc > 0) {  // one masked load per panel row
        // Stored whole, each store's lanes past mr overwritten by the next row's, the last
        // row under a mask (so nothing past the panel is written).
        const __mmask16 load = __mmask16((1u << n) - 1);
        for (int64_t p = 0; p + 1 < kc; ++p) _mm512_storeu_ps(packed + p * mr, _mm512_maskz_loadu_ps(load, src + taps[p]));
        _mm512_mask_storeu_ps(packed + (kc - 1) * mr, __mmask16((1u << mr) - 1),
                              _mm512_maskz_loadu_ps(load, src + taps[kc - 1]));
        continue;
      }
    }
#endif
    for (int64_t p = 0; p < kc; ++p) {
      T* d = packed + p * mr;
      const T* s = src + taps[p];
      int64_t r = 0;
      for (; r < n; ++r) d[r] = s[r];
      for (; r < mr; ++r) d[r] = T(0);
    }
  }
}

// implicit_forward: the implicit GEMM's forward without packing either operand,
// channel-major: out (Kg, OH * OW) = W_g (Kg, CKK) @ cols (CKK, OH * OW) + bias, in register
// tiles of kImplicitChannels channels x kImplicitPixels output pixels (8 x 48 floats: 24 of
// AVX-512's 32 registers). The columns are B and are never copied: row p of a tile is its
// pixels in tap p, read straight from the plane at taps[p] plus the pixels' offset there,
// one vector of 16 pixels at a time. Output pixel (oh, ow) sits at oh * Wq + ow in the
// plane, so a vector is one contiguous load unless it crosses the end of an output row;
// its lanes past the row are then merged in from a second, masked load Wq - OW further on
// (the plane's extra columns are skipped, not computed). A is the weights, packed once per
// call into panels (CKK, 8) by the driver. The tile's rows are output channels and its
// columns consecutive output pixels, so it is stored straight into NCHW (masked past the
// last pixel): no transpose. Against the pixel-major implicit GEMM (cols^T packed into
// 12 x 32 tiles, transposed back) this drops the packing and the transpose (9.5% and 5.4%
// of AlexNet-1's time) and the extra columns (3.6%): 1 thread, CPU time, AlexNet-1 N8
// 5.74 -> 4.62 ms (the merged second load only where a vector crosses a row end, by
// template: 4.86 -> 4.70; computing the extra columns instead: 4.92). More figures in
// conv.cpp (forward_unpacked).
#if defined(__AVX512F__)
// Where one vector of 16 output pixels [j, j + 16) is read from, relative to a tap's start
// in the plane: lane l at offset + l, or at offset + (Wq - OW) + l for the lanes in
// past_row; `valid` are the lanes that are output pixels.
struct PixelVector {
  int64_t offset;
  __mmask16 past_row, valid;
};
inline PixelVector pixel_vector(int64_t j, int64_t OH, int64_t OW, int64_t Wq) {
  const int64_t OHW = OH * OW;
  if (j >= OHW) return {0, 0, 0};  // past the last pixel: read the plane's start, store nothing
  const int64_t oh = j / OW, ow = j % OW, left = OW - ow;  // OW >= 16: a vector crosses one row end at most
  // (on the last row the lanes past it are not stored: read on, within the plane's slack)
  const __mmask16 past = left >= 16 || oh + 1 >= OH ? 0 : __mmask16(0xFFFFu << left);
  return {oh * Wq + ow, past, __mmask16(OHW - j >= 16 ? 0xFFFFu : (1u << (OHW - j)) - 1)};
}

template <int MB, int NV, unsigned Crossing>  // bit v: vector v crosses a row end
void implicit_tile(int64_t CKK, const float* __restrict a, const float* plane, const int64_t* __restrict taps,
                   int64_t skip, const PixelVector* pv, const float* bias, int64_t mb, float* out, int64_t OHW) {
  __m512 acc[MB][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MB; ++i) {
    const __m512 init = bias && i < mb ? _mm512_set1_ps(bias[i]) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[i][v] = init;
  }
  int64_t offset[NV];
  __mmask16 past[NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) offset[v] = pv[v].offset, past[v] = pv[v].past_row;
#pragma GCC unroll 2
  for (int64_t p = 0; p < CKK; ++p) {
    const float* bp = plane + taps[p];
    __m512 bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      bv[v] = _mm512_loadu_ps(bp + offset[v]);
      if (Crossing >> v & 1) bv[v] = _mm512_mask_loadu_ps(bv[v], past[v], bp + offset[v] + skip);
    }
#pragma GCC unroll 16
    for (int i = 0; i < MB; ++i) {
      const __m512 ai = _mm512_set1_ps(a[p * MB + i]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MB; ++i) {
    if (i >= mb) break;
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) _mm512_mask_storeu_ps(out + i * OHW + 16 * v, pv[v].valid, acc[i][v]);
  }
}

void implicit_forward_f32(const ConvGeometry& g, const float* plane, const int64_t* taps, const float* w_panels,
                          const float* bias, float* out, int64_t j_begin, int64_t j_end) {
  constexpr int MB = kImplicitChannels, NV = kImplicitPixels / 16;
  // Pixel block by pixel block, every channel tile in turn: the plane lines of a block stay
  // in L1 for the 8 channel tiles while the weights come from L2 (measured: sweeping 8 or
  // 64 blocks per channel tile instead is 0.5-1% slower at AlexNet-1 and ResNet).
  const WidePlane wp(g);
  const int64_t Kg = g.Kg(), CKK = g.CKK(), OHW = g.OHW(), skip = wp.Wq - g.OW;
  for (int64_t j0 = j_begin; j0 < std::min(j_end, OHW); j0 += kImplicitPixels) {
    const int64_t vectors = std::min<int64_t>(NV, (std::min(j_end, OHW) - j0 + 15) / 16);
    PixelVector v[NV];
    unsigned crossing = 0;
    for (int i = 0; i < NV; ++i) {
      v[i] = pixel_vector(j0 + 16 * i, g.OH, g.OW, wp.Wq);
      if (v[i].past_row) crossing |= 1u << i;
    }
    for (int64_t k0 = 0; k0 < Kg; k0 += MB) {
      const float* a = w_panels + k0 * CKK;
      const float* bk = bias ? bias + k0 : nullptr;
      const int64_t mb = std::min<int64_t>(MB, Kg - k0);
      float* o = out + k0 * OHW + j0;
      switch (vectors * 8 + crossing) {  // the tile's width and which of its vectors cross a row end
#define PYDL_IMPLICIT_TILE(NVEC, CROSS) \
  case NVEC * 8 + CROSS: implicit_tile<MB, NVEC, CROSS>(CKK, a, plane, taps, skip, v, bk, mb, o, OHW); break;
        PYDL_IMPLICIT_TILE(1, 0) PYDL_IMPLICIT_TILE(1, 1)
        PYDL_IMPLICIT_TILE(2, 0) PYDL_IMPLICIT_TILE(2, 1) PYDL_IMPLICIT_TILE(2, 2) PYDL_IMPLICIT_TILE(2, 3)
        PYDL_IMPLICIT_TILE(3, 0) PYDL_IMPLICIT_TILE(3, 1) PYDL_IMPLICIT_TILE(3, 2) PYDL_IMPLICIT_TILE(3, 3)
        PYDL_IMPLICIT_TILE(3, 4) PYDL_IMPLICIT_TILE(3, 5) PYDL_IMPLICIT_TILE(3, 6) PYDL_IMPLICIT_TILE(3, 7)
#undef PYDL_IMPLICIT_TILE
      }
    }
  }
}
#endif

template <typename T>
constexpr void (*implicit_forward())(const ConvGeometry&, const T*, const int64_t*, const T*, const T*, T*, int64_t,
                                     int64_t) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) return &implicit_forward_f32;
#endif
  return nullptr;
}

// Register transposes of square blocks: B rows of src (B channels each) become B rows of
// dst (B pixels each), plus the bias of each channel (float32 on AVX-512 and AVX2; the
// other types and ISAs copy element by element).
#if defined(__AVX512F__)
constexpr int64_t kTransposeBlock = 16;
inline void transpose_block(const float* src, int64_t lds, const float* bias, float* dst, int64_t ldd) {
  __m512 r[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * lds);
  simd::transpose16(r);
  for (int c = 0; c < 16; ++c)  // r[c]: channel c of the 16 pixels
    _mm512_storeu_ps(dst + c * ldd, bias ? _mm512_add_ps(r[c], _mm512_set1_ps(bias[c])) : r[c]);
}
template <typename T>
constexpr bool kHasTransposeBlock = std::is_same_v<T, float>;
#elif defined(__AVX2__)
constexpr int64_t kTransposeBlock = 8;
inline void transpose_block(const float* src, int64_t lds, const float* bias, float* dst, int64_t ldd) {
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  simd::transpose8(r);
  for (int c = 0; c < 8; ++c)  // r[c]: channel c of the 8 pixels
    _mm256_storeu_ps(dst + c * ldd, bias ? _mm256_add_ps(r[c], _mm256_set1_ps(bias[c])) : r[c]);
}
template <typename T>
constexpr bool kHasTransposeBlock = std::is_same_v<T, float>;
#else
constexpr int64_t kTransposeBlock = 16;
inline void transpose_block(const float*, int64_t, const float*, float*, int64_t) {}
template <typename T>
constexpr bool kHasTransposeBlock = false;
#endif
inline void transpose_block(const double*, int64_t, const double*, double*, int64_t) {}

// The blocks go through a small buffer of B channels x P pixels, so that dst is written in
// runs of P pixels: B rows written 16 pixels at a time alias in the caches when the
// channel stride is a multiple of 4 KiB (32x32 images), 4x slower (measured). Where src
// has rows past `rows` that may be read (readable of them in all), the last block reads
// some of them instead of finishing element by element (the implicit GEMM's output rows,
// 55-56 pixels: 13% of them were transposed one at a time).
template <typename T>
void transpose_bias(const T* src, int64_t rows, int64_t readable, int64_t cols, int64_t lds, const T* bias, T* dst,
                    int64_t ldd) {
  constexpr int64_t B = kTransposeBlock, P = 128;
  alignas(64) T buf[kHasTransposeBlock<T> ? B * P : 1];  // (B, P)
  for (int64_t r0 = 0; r0 < rows; r0 += P) {
    const int64_t n = std::min(P, rows - r0);
    const int64_t nb = kHasTransposeBlock<T> ? std::min((n + B - 1) / B, (readable - r0) / B) * B : 0;
    const int64_t nc = std::min(nb, n);  // rows copied from the blocks
    int64_t c0 = 0;
    for (; nb > 0 && c0 + B <= cols; c0 += B) {
      for (int64_t p = 0; p < nb; p += B) transpose_block(src + (r0 + p) * lds + c0, lds, bias ? bias + c0 : nullptr, buf + p, P);
      for (int64_t c = 0; c < B; ++c) {
        T* d = dst + (c0 + c) * ldd + r0;
        copy(d, buf + c * P, nc);
        const T b = bias ? bias[c0 + c] : T(0);
        for (int64_t r = nc; r < n; ++r) d[r] = src[(r0 + r) * lds + c0 + c] + b;
      }
    }
    for (int64_t c = c0; c < cols; ++c) {
      const T b = bias ? bias[c] : T(0);
      T* d = dst + c * ldd + r0;
      for (int64_t r = 0; r < n; ++r) d[r] = src[(r0 + r) * lds + c] + b;
    }
  }
}

// pack_columns_by_tap: the columns themselves (CKK, pixels) as an A operand, rows = taps,
// depth = pixels: each packed panel row holds one pixel of mr taps, i.e. mr runs of the
// plane read across, transposed 16 pixels at a time in registers (float32 on AVX-512).
template <typename T>
void pack_columns_by_tap(const void* ctx, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int64_t mr, T* packed) {
  const ImplicitColumns<T>& cols = *static_cast<const ImplicitColumns<T>*>(ctx);
  for (int64_t i = 0; i < mc; i += mr, packed += kc * mr) {
    const int64_t n = std::min(mr, mc - i);
    const int64_t* taps = cols.taps + i0 + i;
    int64_t p = 0;
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) {
      if (mr <= 16) {
        const __mmask16 store = __mmask16((1u << mr) - 1);
        for (; p < kc; p += 16) {
          const __mmask16 load = __mmask16(kc - p >= 16 ? 0xFFFF : (1u << (kc - p)) - 1);
          __m512 r[16];
          for (int t = 0; t < 16; ++t)
            r[t] = t < n ? _mm512_maskz_loadu_ps(load, cols.plane + taps[t] + p0 + p) : _mm512_setzero_ps();
          simd::transpose16(r);  // r[j]: pixel p + j of the mr taps
          const int64_t m = std::min<int64_t>(16, kc - p);  // stored whole but the panel's last (see pack_columns)
          for (int64_t j = 0; j < m; ++j)
            if (p + j + 1 < kc) _mm512_storeu_ps(packed + (p + j) * mr, r[j]);
            else _mm512_mask_storeu_ps(packed + (p + j) * mr, store, r[j]);
        }
      }
    }
#endif
    for (; p < kc; ++p) {
      T* d = packed + p * mr;
      int64_t t = 0;
      for (; t < n; ++t) d[t] = cols.plane[taps[t] + p0 + p];
      for (; t < mr; ++t) d[t] = T(0);
    }
  }
}

// Where pixel j of an ImplicitPixels tile starts in its planes (its tap 0).
template <typename T>
int64_t pixel_offset(const ImplicitPixels<T>& px, int64_t j) {
  const int64_t i = j / px.OHW, q = j % px.OHW;
  return i * px.stride + q / px.OW * px.Wq + q % px.OW;
}

#if defined(__AVX512F__)
// Pixels [j, j + count) (count <= 16) as runs along output rows, each contiguous in the
// planes: lane mask and plane offset of lane 0 (the run's first pixel minus its lane), so
// that one masked load per run reads a tap of all of them. Returns the number of runs.
inline int pixel_runs(const ImplicitPixels<float>& px, int64_t j, int64_t count, int64_t* starts, __mmask16* masks) {
  int runs = 0;
  for (int64_t l = 0; l < count;) {
    const int64_t len = std::min(px.OW - (j + l) % px.OHW % px.OW, count - l);  // to the row's end
    starts[runs] = pixel_offset(px, j + l) - l;
    masks[runs++] = __mmask16(((1u << len) - 1) << l);
    l += len;
  }
  return runs;
}
inline __m512 load_runs(const float* base, int runs, const int64_t* starts, const __mmask16* masks) {
  __m512 v = _mm512_setzero_ps();
  for (int r = 0; r < runs; ++r) v = _mm512_mask_loadu_ps(v, masks[r], base + starts[r]);
  return v;
}
#endif

// pack_pixels: each packed panel row is one tap of nr consecutive pixels, a few runs of the
// planes (pixel_runs), found once per panel: every tap is then one masked load per run
// (float32 on AVX-512, 16 lanes at a time; elsewhere element by element through the offsets).
template <typename T>
void pack_pixels(const void* ctx, int64_t j0, int64_t nc, int64_t p0, int64_t kc, int64_t nr, T* packed) {
  const ImplicitPixels<T>& px = *static_cast<const ImplicitPixels<T>*>(ctx);
  const int64_t* taps = px.taps + p0;
  for (int64_t jr = 0; jr < nc; jr += nr, packed += kc * nr) {
    const int64_t n = std::min(nr, nc - jr);
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) {
      if (nr % 16 == 0) {
        for (int64_t h = 0; h < nr; h += 16) {
          int64_t starts[16];
          __mmask16 masks[16];
          const int runs = pixel_runs(px, j0 + jr + h, std::clamp<int64_t>(n - h, 0, 16), starts, masks);
          for (int64_t p = 0; p < kc; ++p)
            _mm512_storeu_ps(packed + p * nr + h, load_runs(px.planes + taps[p], runs, starts, masks));
        }
        continue;
      }
    }
#endif
    int64_t off[64];  // nr <= 64 on every ISA (gemm's NR)
    for (int64_t l = 0; l < n; ++l) off[l] = pixel_offset(px, j0 + jr + l);
    for (int64_t p = 0; p < kc; ++p) {
      const T* base = px.planes + taps[p];
      T* d = packed + p * nr;
      int64_t l = 0;
      for (; l < n; ++l) d[l] = base[off[l]];
      for (; l < nr; ++l) d[l] = T(0);
    }
  }
}

// pack_pixels_by_tap: the same columns transposed, cols^T (pixels, CKK) as a B operand (a
// weight gradient's): each packed panel row is one pixel of nr taps -- 16 taps of 16 pixels
// loaded by runs as above, then transposed in registers (float32 on AVX-512).
template <typename T>
void pack_pixels_by_tap(const void* ctx, int64_t j0, int64_t nc, int64_t p0, int64_t kc, int64_t nr, T* packed) {
  const ImplicitPixels<T>& px = *static_cast<const ImplicitPixels<T>*>(ctx);
  for (int64_t jr = 0; jr < nc; jr += nr, packed += kc * nr) {
    const int64_t n = std::min(nr, nc - jr);
    const int64_t* taps = px.taps + j0 + jr;
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) {
      if (nr % 16 == 0) {
        for (int64_t q0 = 0; q0 < kc; q0 += 16) {
          const int64_t m = std::min<int64_t>(16, kc - q0);
          int64_t starts[16];
          __mmask16 masks[16];
          const int runs = pixel_runs(px, p0 + q0, m, starts, masks);
          for (int64_t h = 0; h < nr; h += 16) {
            __m512 r[16];
            for (int t = 0; t < 16; ++t)
              r[t] = h + t < n ? load_runs(px.planes + taps[h + t], runs, starts, masks) : _mm512_setzero_ps();
            simd::transpose16(r);  // r[q]: pixel p0 + q0 + q of taps h .. h + 15
            for (int64_t q = 0; q < m; ++q) _mm512_storeu_ps(packed + (q0 + q) * nr + h, r[q]);
          }
        }
        continue;
      }
    }
#endif
    for (int64_t p = 0; p < kc; ++p) {
      const T* base = px.planes + pixel_offset(px, p0 + p);
      T* d = packed + p * nr;
      int64_t t = 0;
      for (; t < n; ++t) d[t] = base[taps[t]];
      for (; t < nr; ++t) d[t] = T(0);
    }
  }
}

template <typename T>
void copy_bias(const T* src, int64_t rows, int64_t n, int64_t lds, const T* bias, T* dst, int64_t ldd) {
  using V = Vec<T>;
  for (int64_t r = 0; r < rows; ++r) {
    const T* s = src + r * lds;
    T* d = dst + r * ldd;
    if (!bias) {
      copy(d, s, n);
      continue;
    }
    const T b = bias[r];
    const typename V::R vb = V::set1(b);
    int64_t i = 0;
    for (; i + V::W <= n; i += V::W) V::store(d + i, V::add(V::load(s + i), vb));
    for (; i < n; ++i) d[i] = s[i] + b;
  }
}

// Register block of dot_rows: MB rows of A x NB rows of B, one vector accumulator each.
#if defined(__AVX512F__)
constexpr int kDotMB = 4, kDotNB = 4;  // 16 accumulators + 8 operands of 32 registers
#else
constexpr int kDotMB = 3, kDotNB = 3;  // 9 + 6 of 16
#endif

template <typename T, int MB, int NB>
void dot_block(int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc) {
  using V = Vec<T>;
  constexpr int W = V::W;
  typename V::R acc[MB][NB];
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < NB; ++j) acc[i][j] = V::zero();
  int64_t p = 0;
  for (; p + W <= K; p += W) {
    typename V::R a[MB], b[NB];
    for (int i = 0; i < MB; ++i) a[i] = V::load(A + i * lda + p);
    for (int j = 0; j < NB; ++j) b[j] = V::load(B + j * ldb + p);
    for (int i = 0; i < MB; ++i)
      for (int j = 0; j < NB; ++j) acc[i][j] = V::fma(a[i], b[j], acc[i][j]);
  }
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < NB; ++j) {
      T s = V::hsum(acc[i][j]);
      for (int64_t q = p; q < K; ++q) s += A[i * lda + q] * B[j * ldb + q];
      C[i * ldc + j] += s;
    }
}

template <typename T, int MB, int NB = kDotNB>
void dot_edge(int64_t nb, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc) {
  if constexpr (NB > 1)
    if (nb < NB) return dot_edge<T, MB, NB - 1>(nb, K, A, lda, B, ldb, C, ldc);
  dot_block<T, MB, NB>(K, A, lda, B, ldb, C, ldc);
}

template <typename T, int MB = kDotMB>
void dot_tile(int64_t mb, int64_t nb, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C,
              int64_t ldc) {
  if constexpr (MB > 1)
    if (mb < MB) return dot_tile<T, MB - 1>(mb, nb, K, A, lda, B, ldb, C, ldc);
  dot_edge<T, MB>(nb, K, A, lda, B, ldb, C, ldc);
}

template <typename T>
void dot_rows(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; i += kDotMB)
    for (int64_t j = 0; j < N; j += kDotNB)
      dot_tile<T>(std::min<int64_t>(kDotMB, M - i), std::min<int64_t>(kDotNB, N - j), K, A + i * lda, lda,
                  B + j * ldb, ldb, C + i * ldc + j, ldc);
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
constexpr bool pixels_by_vectors() {
#if defined(__AVX512F__)
  return std::is_same_v<T, float>;
#else
  return false;
#endif
}

template <typename T>
constexpr ConvLoops<T> loops() {
  return {&im2col<T>, &col2im<T>, &depthwise_forward<T>, &depthwise_backward<T>, &transpose_bias<T>, &copy_bias<T>,
          &dot_rows<T>, &sum<T>, &implicit_columns<T>, &pack_columns<T>,
          &pack_columns_by_tap<T>, pixels_by_vectors<T>(), &pack_pixels<T>, &pack_pixels_by_tap<T>,
          implicit_forward<T>()};
}

}  // namespace

extern const ConvKernels conv_kernels = {loops<float>(), loops<double>()};

}  // namespace pydl::PYDL_ISA_NS
