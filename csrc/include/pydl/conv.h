// conv2d / conv_transpose2d: the geometry of one 2-D convolution, the per-ISA loops
// (im2col, col2im, depthwise, channel sums; csrc/cpu/conv_isa.cpp) and the drivers that
// combine them with pydl's gemm (csrc/cpu/conv.cpp).
//
// Legend: N images, C input channels, H x W input, K output channels, KH x KW kernel,
// OH x OW output, G groups (Cg = C / G, Kg = K / G), S stride, P padding (top / left),
// D dilation, CKK = Cg * KH * KW (the rows of a column matrix).
//
// A transposed convolution is described by the geometry of the conv2d it transposes:
// its input plays the conv's output (OH x OW = its H x W), its output the conv's input.
#pragma once
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

// The direct depthwise loops keep per-kernel-column ranges on the stack: wider kernels
// take the im2col + gemm path.
constexpr int kConvMaxDirectKW = 64;

// The loops that touch every element, compiled once per ISA. Rows [oh0, oh1) of the
// output form one tile; `x` points at the first channel of one image and group.
template <typename T>
struct ConvLoops {
  // cols (CKK, (oh1 - oh0) * OW) <- the receptive fields of the tile's output pixels.
  void (*im2col)(const ConvGeometry& g, const T* x, int64_t oh0, int64_t oh1, T* cols);
  // x (Cg, H, W) += the columns of the tile added back where im2col took them from.
  void (*col2im)(const ConvGeometry& g, const T* cols, int64_t oh0, int64_t oh1, T* x);
  // Depthwise (Cg == 1), one plane: out (OH, OW) = x (H, W) * w (KH, KW) + bias.
  void (*depthwise_forward)(const ConvGeometry& g, const T* x, const T* w, T bias, T* out);
  // Depthwise input gradient, one plane: grad_x (H, W) += grad_out (OH, OW) *^T w (KH, KW).
  void (*depthwise_input_grad)(const ConvGeometry& g, const T* grad_out, const T* w, T* grad_x);
  // Depthwise weight gradient, one plane: grad_w (KH, KW) += grad_out (OH, OW) . x windows.
  void (*depthwise_weight_grad)(const ConvGeometry& g, const T* grad_out, const T* x, double* grad_w);
  // The sum of n contiguous elements (a bias gradient of one plane), in double.
  double (*sum)(const T* x, int64_t n);
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

// The drivers (csrc/cpu/conv.cpp), on C-contiguous arrays of the geometry's shapes.
// out (N, K, OH, OW) = conv2d(x (N, C, H, W), w (K, Cg, KH, KW)) + bias (K or null)
template <typename T>
void conv2d_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out);
// Any of grad_x (N, C, H, W), grad_w (K, Cg, KH, KW), grad_b (K) may be null (not needed).
template <typename T>
void conv2d_backward(const ConvGeometry& g, const T* grad_out, const T* x, const T* w, T* grad_x, T* grad_w,
                     T* grad_b);

}  // namespace pydl
