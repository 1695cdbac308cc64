// conv2d / conv_transpose2d: the geometry of one 2-D convolution, the per-ISA loops
// (im2col, col2im, transposes, sums: csrc/cpu/conv_isa.cpp; depthwise:
// csrc/cpu/conv_depthwise_isa.cpp), the drivers that combine them with pydl's gemm
// (csrc/cpu/conv.cpp) and their bindings (csrc/cpu/conv_bind.cpp).
//
// Legend: N images, C input channels, H x W input, K output channels, KH x KW kernel,
// OH x OW output, G groups (Cg = C / G, Kg = K / G), S stride, P padding (top / left),
// D dilation, CKK = Cg * KH * KW (the rows of a column matrix).
//
// A transposed convolution is described by the geometry of the conv2d it transposes:
// its input plays the conv's output (OH x OW = its H x W), its output the conv's input.
#pragma once
#include <algorithm>
#include <cstdint>

#include "pydl/isa.h"

namespace pydl {

struct ConvGeometry {
  int64_t N, C, H, W;       // input (N, C, H, W)
  int64_t K, OH, OW;        // output (N, K, OH, OW)
  int64_t KH, KW;           // weight (K, Cg, KH, KW)
  int64_t SH, SW, PH, PW;   // stride; padding at the top / left (bottom / right follow from OH, OW)
  int64_t DH, DW;           // dilation
  int64_t G;                // groups

  int64_t Cg() const { return C / G; }
  int64_t Kg() const { return K / G; }
  int64_t CKK() const { return Cg() * KH * KW; }
  int64_t HW() const { return H * W; }
  int64_t OHW() const { return OH * OW; }
  // 1x1, stride 1, no padding: the input of a group IS its column matrix (Cg, H * W).
  bool pointwise() const { return KH == 1 && KW == 1 && SH == 1 && SW == 1 && PH == 0 && PW == 0 && OH == H && OW == W; }
  // Each output channel sees one input channel (depthwise, or a single input channel).
  bool depthwise() const { return Cg() == 1; }
};

// Scratch of im2col / col2im for a tile of `rows` output rows: a strided conv (SW > 1)
// first splits the input rows the tile reads into SW column phases,
//   phase[c][r][ih][q] = x[c, ih, q * SW + r],
// so that every row of columns becomes a contiguous copy (Cg * SW * rows read * ceil(W / SW)).
inline int64_t conv_scratch_size(const ConvGeometry& g, int64_t rows) {
  if (g.SW == 1) return 0;
  const int64_t read = (rows - 1) * g.SH + (g.KH - 1) * g.DH + 1;
  return g.Cg() * g.SW * (read < g.H ? read : g.H) * ((g.W + g.SW - 1) / g.SW);
}

// Scratch of the depthwise loops: the input plane zero-padded (and split into SW column
// phases, as above) so that every tap reads a contiguous, branch-free row, twice (input and
// gradient), plus the output gradient with rows zero-padded to whole chunks of
// kDepthwiseChunk (the widest vector run a loop computes at once).
constexpr int64_t kDepthwiseChunk = 64;
struct DepthwisePlane {
  int64_t Hp, OWc, Q;  // padded rows; output row padded to whole chunks; elements per row of one phase
  explicit DepthwisePlane(const ConvGeometry& g, int64_t chunk = kDepthwiseChunk)
      : Hp((g.OH - 1) * g.SH + (g.KH - 1) * g.DH + 1),
        OWc((g.OW + chunk - 1) / chunk * chunk),
        Q(OWc + (g.KW - 1) * g.DW / g.SW + 1) {}
  int64_t size(const ConvGeometry& g) const { return g.SW * Hp * Q; }
};
// A stride-1 input gradient gathers instead: grad_x is the correlation of grad_out, padded
// by TOP / LEFT (rows a = oh + TOP, columns b = ow + LEFT), with the kernel turned around.
struct DepthwiseGradPlane {
  int64_t TOP, LEFT, Hg, Qg;
  explicit DepthwiseGradPlane(const ConvGeometry& g, int64_t chunk = kDepthwiseChunk)
      : TOP(std::max<int64_t>(0, (g.KH - 1) * g.DH - g.PH)),
        LEFT(std::max<int64_t>(0, (g.KW - 1) * g.DW - g.PW)),
        Hg(g.H + g.PH + TOP),
        Qg((g.W + chunk - 1) / chunk * chunk + g.PW + LEFT) {}
  int64_t size() const { return Hg * Qg; }
};
// (the loops use chunks of at most kDepthwiseChunk, so this bounds their needs)
inline int64_t depthwise_plane_size(const ConvGeometry& g, int64_t chunk = kDepthwiseChunk) {
  return std::max(DepthwisePlane(g, chunk).size(g), DepthwiseGradPlane(g, chunk).size());
}
inline int64_t depthwise_scratch_size(const ConvGeometry& g) {
  return 2 * depthwise_plane_size(g) + g.OH * DepthwisePlane(g).OWc;
}

// One image's columns as the A operand of an implicit GEMM, cols^T (pixels, CKK): the gemm
// packs its blocks straight from the image (pack_columns), so the columns are never
// materialised. For that the image is zero-padded and split into SH x SW phases, each
// Hq x Wq,
//   plane[rh][rw][c][a][q] = x[c, a * SH + rh - PH, q * SW + rw - PW]   (0 in the padding),
// so that every tap (c, kh, kw), with kh * DH = ah * SH + rh and kw * DW = aw * SW + rw, reads
// a contiguous run of it: numbering the output pixels across rows Wq wide, j = oh * Wq + ow,
//   cols^T[j, (c, kh, kw)] = plane[tap(c, kh, kw) + j],  tap = phase and channel start + ah * Wq + aw.
// The Wq - OW columns past each output row (the largest aw) are computed and dropped by
// the packed implicit GEMM; the unpacked one (implicit_forward) skips them.
struct WidePlane {
  int64_t Hq, Wq;  // OH + the largest ah, OW + the largest aw
  explicit WidePlane(const ConvGeometry& g)
      : Hq(g.OH + (g.KH - 1) * g.DH / g.SH), Wq(g.OW + (g.KW - 1) * g.DW / g.SW) {}
  int64_t rows(const ConvGeometry& g) const { return (g.OH - 1) * Wq + g.OW; }  // the product's pixels
  int64_t size(const ConvGeometry& g) const { return g.SH * g.SW * g.Cg() * Hq * Wq; }
};
// implicit_forward's register tile: 8 output channels x 48 output pixels, read by vectors
// of 16 that cross one output row end at most (output rows of kImplicitMinRow or more).
constexpr int64_t kImplicitChannels = 8, kImplicitPixels = 48, kImplicitMinRow = 16;
template <typename T>
struct ImplicitColumns {
  const T* plane;       // WidePlane::size elements
  const int64_t* taps;  // (CKK): where each column row starts in plane
};

// Several images' columns as the B operand of a channel-major implicit GEMM, cols (CKK,
// nb * OHW): the gemm packs its panels straight from the images' WidePlanes (pack_pixels),
// with the pixels numbered exactly (nothing computed past a row): pixel j of the tile is
// pixel (oh, ow) of image i = j / OHW, and
//   cols[(c, kh, kw), j] = plane_i[tap(c, kh, kw) + oh * Wq + ow].
template <typename T>
struct ImplicitPixels {
  const T* planes;      // nb WidePlanes, `stride` elements apart
  int64_t stride;
  const int64_t* taps;  // (CKK)
  int64_t OW, OHW, Wq;
};

// The loops that touch every element, compiled once per ISA. Rows [oh0, oh1) of the
// output form one tile; `x` points at the first channel of one image and group.
template <typename T>
struct ConvLoops {
  // cols (CKK, (oh1 - oh0) * OW), rows ld apart <- the receptive fields of the tile's output
  // pixels (ld > the tile's pixels: several images' columns side by side).
  // scratch: conv_scratch_size(g, oh1 - oh0) elements (strided convs only; else unused).
  void (*im2col)(const ConvGeometry& g, const T* x, int64_t oh0, int64_t oh1, T* cols, int64_t ld, T* scratch);
  // x (Cg, H, W) += the columns of the tile (rows ld apart) added back where im2col took
  // them from. cols is clobbered (its entries that fall in the padding are zeroed).
  void (*col2im)(const ConvGeometry& g, T* cols, int64_t ld, int64_t oh0, int64_t oh1, T* x, T* scratch);
  // Depthwise (Cg == 1), one input plane x (H, W) and its Kg output channels:
  // out (Kg, OH, OW) = x * w (Kg, KH, KW) + bias (Kg, or null).
  void (*depthwise_forward)(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out, T* scratch);
  // ... and back: grad_x (H, W) = the Kg channels of grad_out (Kg, OH, OW) through w (or
  // nothing when grad_x is null); grad_w (Kg, KH, KW) += grad_out . x windows (when not null).
  void (*depthwise_backward)(const ConvGeometry& g, const T* grad_out, const T* x, const T* w, T* grad_x,
                             double* grad_w, T* scratch);
  // dst[c * ldd + r] = src[r * lds + c] + bias[c] (bias may be null): a (rows, cols) tile
  // computed pixel-major written back channel-major; src rows [rows, readable) may be read.
  void (*transpose_bias)(const T* src, int64_t rows, int64_t readable, int64_t cols, int64_t lds, const T* bias,
                         T* dst, int64_t ldd);
  // dst[r * ldd + i] = src[r * lds + i] + bias[r] (bias may be null): rows of a tile computed
  // aside copied into place.
  void (*copy_bias)(const T* src, int64_t rows, int64_t n, int64_t lds, const T* bias, T* dst, int64_t ldd);
  // C (M, N) += A (M, K) @ B (N, K)^T, the rows of A and B contiguous along K: a weight
  // gradient as dot products over the pixels (for thin ones; see conv.cpp).
  void (*dot_rows)(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C,
                   int64_t ldc);
  // The sum of n contiguous elements (a bias gradient of one plane), in double.
  double (*sum)(const T* x, int64_t n);
  // plane (WidePlane::size) and taps (CKK) <- the ImplicitColumns of the image x (Cg, H, W).
  void (*implicit_columns)(const ConvGeometry& g, const T* x, T* plane, int64_t* taps);
  // The GemmPackA packer of an ImplicitColumns (ctx): cols^T's rows (pixels) [i0, i0 + mc) x
  // taps [p0, p0 + kc) ...
  void (*pack_columns)(const void* ctx, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int64_t mr, T* packed);
  // ... and of the columns themselves: taps [i0, i0 + mc) x pixels [p0, p0 + kc).
  void (*pack_columns_by_tap)(const void* ctx, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int64_t mr,
                              T* packed);
  // The GemmPackB packer of an ImplicitPixels (ctx): taps [p0, p0 + kc) x pixels [j0, j0 + nc).
  // pixels_by_vectors: this ISA and type pack them (and pack_pixels_by_tap) by vectors; the
  // element-by-element fallback is slower than im2col, so the drivers pick them only then.
  bool pixels_by_vectors;
  void (*pack_pixels)(const void* ctx, int64_t j0, int64_t nc, int64_t p0, int64_t kc, int64_t nr, T* packed);
  // ... and of the columns transposed, cols^T: pixels [p0, p0 + kc) x taps [j0, j0 + nc).
  void (*pack_pixels_by_tap)(const void* ctx, int64_t j0, int64_t nc, int64_t p0, int64_t kc, int64_t nr,
                             T* packed);
  // out (Kg, OH, OW) = W_g (Kg, CKK) @ the columns of an ImplicitColumns (plane, taps) + bias
  // (Kg or null), reading the columns straight from the plane (null where this ISA and type
  // have no such kernel). w_panels: W_g in panels of kImplicitChannels rows, (ceil(Kg / 8),
  // CKK, 8), zero past Kg. The last row's vectors read up to 15 elements past the plane's
  // end (not stored): the plane needs kImplicitPixels readable ones there. Output rows of
  // kImplicitMinRow pixels or more.
  // Output pixels [j0, j1) only (j0 a multiple of kImplicitPixels; threads share an image).
  void (*implicit_forward)(const ConvGeometry& g, const T* plane, const int64_t* taps, const T* w_panels,
                           const T* bias, T* out, int64_t j0, int64_t j1);
};

struct ConvKernels {
  ConvLoops<float> f32;
  ConvLoops<double> f64;
};

PYDL_DECLARE_ISA_TABLE(ConvKernels, conv_kernels)

template <typename T>
const ConvLoops<T>& conv_loops() {
  if constexpr (sizeof(T) == sizeof(float)) return pick_conv_kernels().f32;
  else return pick_conv_kernels().f64;
}

// The transforms of Winograd's F(2x2, 3x3), per ISA (csrc/cpu/conv_winograd_isa.cpp),
// over lists of tiles given by offsets (see conv_winograd.cpp):
template <typename T>
struct WinogradLoops {
  // U[xi * KC + i] = (G w_i G^T)[xi] for the filters i in [kc0, kc0 + n) of w (KC, 3, 3).
  void (*filters)(int64_t kc0, int64_t n, int64_t KC, const T* w, T* U);
  // V[xi * vs + p] = (B^T d_p B)[xi], d_p the 4x4 patch at planes + off[p] (rows Wp apart).
  void (*input)(const T* planes, const int32_t* off, int64_t P, int64_t Wp, T* V, int64_t vs);
  // out[oo[p] + a * OW + b] = (A^T m_p A)[a][b] + bias, m_p[xi] = M[xi * ms + p]; b = 1 only
  // where flags[p] & 1, a = 1 only where flags[p] & 2.
  void (*output)(const T* M, int64_t ms, const int32_t* oo, const uint8_t* flags, int64_t P, int64_t OW, T bias,
                 T* out);
  // The weight gradient's: dM[xi * ms + p] = (A dY_p A^T)[xi], dY_p the 2x2 tile at go + oo[p]
  // (zero where flags[p] says it has no second column / row) ...
  void (*grad_output)(const T* go, const int32_t* oo, const uint8_t* flags, int64_t P, int64_t OW, T* dM, int64_t ms);
  // ... and gw[i * 9 ..] = G^T dU_i G, dU_i[xi] = dU[xi * KC + i], for i in [kc0, kc0 + n).
  void (*grad_filters)(int64_t kc0, int64_t n, int64_t KC, const T* dU, T* gw);
};
struct WinogradKernels {
  WinogradLoops<float> f32;
  WinogradLoops<double> f64;
};
PYDL_DECLARE_ISA_TABLE(WinogradKernels, winograd_kernels)

// The drivers (csrc/cpu/conv.cpp), on C-contiguous arrays of the geometry's shapes.
// out (N, K, OH, OW) = conv2d(x (N, C, H, W), w (K, Cg, KH, KW)) + bias (K or null)
template <typename T>
void conv2d_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out);
// Any of grad_x (N, C, H, W), grad_w (K, Cg, KH, KW), grad_b (K) may be null (not needed).
template <typename T>
void conv2d_backward(const ConvGeometry& g, const T* grad_out, const T* x, const T* w, T* grad_x, T* grad_w,
                     T* grad_b);
// conv2d_forward of a 3x3, stride-1, undilated conv by Winograd's F(2x2, 3x3)
// (csrc/cpu/conv_winograd.cpp), the images in chunks whose transformed tiles take at most
// budget_bytes.
template <typename T>
void conv2d_forward_winograd(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out,
                             int64_t budget_bytes);
// ... and its weight gradient, grad_w (K, Cg, 3, 3) = the sum over the images (not added to).
template <typename T>
void conv2d_weight_grad_winograd(const ConvGeometry& g, const T* grad_out, const T* x, T* grad_w,
                                 int64_t budget_bytes);
// The transposed convolution, in the geometry of the conv2d it transposes: x (N, K, OH, OW),
// w (K, Cg, KH, KW), out (N, C, H, W), bias (C or null).
template <typename T>
void conv_transpose2d_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out);
// grad_out (N, C, H, W) -> grad_x (N, K, OH, OW), grad_w (K, Cg, KH, KW), grad_b (C); null: not needed.
template <typename T>
void conv_transpose2d_backward(const ConvGeometry& g, const T* grad_out, const T* x, const T* w, T* grad_x, T* grad_w,
                               T* grad_b);

// Forces the drivers' choices (tests and tuning only; pydl._C._conv_tuning): column-tile
// budget in KiB (0: the default), and for each switch -1 (automatic), 0 or 1: weight
// gradient by dot products, direct depthwise loops, pixel-major forward, zero-padded tiles,
// channel-major forward as an implicit GEMM (else over materialised columns), the implicit
// forward unpacked (where the ISA has it; see conv_isa.cpp's implicit_forward), a stride-1
// input gradient as the forward conv of the flipped kernel (where the geometry allows it),
// Winograd's F(2x2, 3x3) for 3x3 stride-1 convs.
void conv_set_tuning(int64_t tile_kb, int dot, int direct, int transposed, int padded, int implicit, int unpacked,
                     int flipped, int winograd);

}  // namespace pydl
