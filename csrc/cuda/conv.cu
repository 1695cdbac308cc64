// conv2d on the GPU by im2col + pydl's CUDA gemm: forward, input gradient, weight
// gradient (conv_transpose2d is the same three products read the other way round, see
// pydl/kernels/cuda/conv.py).
//
// Legend (pydl/conv.h, ConvGeometry): N images, C input channels, H x W input, K output
// channels, KH x KW kernel, OH x OW output, G groups (Cg = C / G, Kg = K / G), S stride,
// P padding (top / left), D dilation, CKK = Cg KH KW, OHW = OH OW.
//
//   cols[n, c, kh, kw, oh, ow] = x[n, c, oh SH - PH + kh DH, ow SW - PW + kw DW]   (0 outside)
//   out_g = W_g (Kg, CKK) @ cols_g (CKK, OHW)                 per image n and group g
//   dcols_g = W_g^T @ dout_g,   dx = col2im(dcols)            (copy adds)
//   dW_g = sum_n dout_g[n] @ cols_g[n]^T                      (mul swaps)
//
// Algorithm: the batch runs in tiles of nb images (nb chosen by the caller so that the
// workspace stays bounded, DESIGN.md's "one image or a tile at a time"). For a tile,
// im2col writes the columns of its nb images side by side; the per-(image, group) products
// are then batched gemm launches: the operands of image n and group g sit at fixed strides
// in n and in g, so one launch covers every image of a group (or every group of an image,
// whichever means fewer launches: depthwise layers batch over their many groups). The
// weight gradient computes one partial dW per image of the tile in parallel (a batched
// product; a lone sequential sum over images would leave the GPU idle: dW has few tiles)
// and adds the partials in image order (deterministic). col2im gathers: each input pixel
// sums the column entries that copied it (no atomics). A 1x1, stride-1, unpadded conv
// uses the input (and input gradient) as its columns directly. A depthwise conv (Cg == 1:
// each output channel reads one input channel) runs its forward and input gradient as
// direct loops over the KH x KW taps, one thread per output / input element: its products
// are too thin for a gemm and its columns would cost KH KW times the input.
//
// Workspace (caller-allocated, conv2d_columns_per_image): cols nb * C * KH * KW * OHW
// elements (none for 1x1, none for a depthwise forward or input gradient), and for the
// weight gradient nb * K * CKK partial products (none when nb == 1).
// Checked by tests/kernels/test_conv.py (marked cuda) against the float64 reference.
#include "pydl/conv_cuda.h"
#include "pydl/cuda_check.h"
#include "pydl/cuda_launch.h"
#include "pydl/gemm_cuda.h"

namespace pydl::cuda {
namespace {

// The (image n, group g) blocks of one operand: element (r, c) of block (n, g) at
// base[n * sn + g * sg + r * rs + c * cs].
template <typename T>
struct Blocks {
  T* base;
  int64_t sn, sg, rs, cs;
};

// C(n, g) = A(n, g) @ B(n, g) + beta C(n, g) for n < nt, g < G, each (M, K) @ (K, N). C's
// columns are contiguous (cs == 1, the gemm's contract).
template <typename T>
void group_products(int64_t nt, int64_t G, int64_t M, int64_t N, int64_t K, Blocks<const T> a, Blocks<const T> b,
                    Blocks<T> c, T beta, cudaStream_t stream) {
  if (G <= nt) {  // one launch per group, batched over the images
    for (int64_t g = 0; g < G; ++g)
      gemm<T>(nt, M, N, K, a.base + g * a.sg, a.sn, a.rs, a.cs, b.base + g * b.sg, b.sn, b.rs, b.cs,
              c.base + g * c.sg, c.sn, c.rs, T(1), beta, stream);
  } else {  // one launch per image, batched over the groups
    for (int64_t n = 0; n < nt; ++n)
      gemm<T>(G, M, N, K, a.base + n * a.sn, a.sg, a.rs, a.cs, b.base + n * b.sn, b.sg, b.rs, b.cs,
              c.base + n * c.sn, c.sg, c.rs, T(1), beta, stream);
  }
}

// cols (nt, C, KH, KW, OH, OW) <- the images x (nt, C, H, W).
template <typename T>
__global__ void im2col_kernel(ConvGeometry g, int64_t nt, const T* __restrict__ x, T* __restrict__ cols) {
  const int64_t OHW = g.OH * g.OW, KK = g.KH * g.KW, n = nt * g.C * KK * OHW;
  for (int64_t e = grid_start(); e < n; e += grid_stride()) {
    const int64_t p = e % OHW, kk = (e / OHW) % KK, nc = e / (OHW * KK);  // nc = image * C + channel
    const int64_t ih = (p / g.OW) * g.SH - g.PH + (kk / g.KW) * g.DH;
    const int64_t iw = (p % g.OW) * g.SW - g.PW + (kk % g.KW) * g.DW;
    cols[e] = (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) ? x[(nc * g.H + ih) * g.W + iw] : T(0);
  }
}

// dx (nt, C, H, W) <- col2im(cols (nt, C, KH, KW, OH, OW)): each pixel gathers its taps.
template <typename T>
__global__ void col2im_kernel(ConvGeometry g, int64_t nt, const T* __restrict__ cols, T* __restrict__ dx) {
  const int64_t OHW = g.OH * g.OW, KK = g.KH * g.KW, n = nt * g.C * g.H * g.W;
  for (int64_t e = grid_start(); e < n; e += grid_stride()) {
    const int64_t iw = e % g.W, ih = (e / g.W) % g.H, nc = e / (g.W * g.H);
    const T* cp = cols + nc * KK * OHW;
    T sum = 0;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t th = ih + g.PH - kh * g.DH;  // = oh * SH for the output row that reads ih
      if (th < 0 || th % g.SH) continue;
      const int64_t oh = th / g.SH;
      if (oh >= g.OH) continue;
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t tw = iw + g.PW - kw * g.DW;
        if (tw < 0 || tw % g.SW) continue;
        const int64_t ow = tw / g.SW;
        if (ow >= g.OW) continue;
        sum += cp[(kh * g.KW + kw) * OHW + oh * g.OW + ow];
      }
    }
    dx[e] = sum;
  }
}

// Depthwise (Cg == 1), directly: output channel k reads input channel k / Kg through its taps.
template <typename T>
__global__ void depthwise_forward_kernel(ConvGeometry g, const T* __restrict__ x, const T* __restrict__ w,
                                         T* __restrict__ out) {
  const int64_t OHW = g.OH * g.OW, Kg = g.K / g.G, n = g.N * g.K * OHW;
  for (int64_t e = grid_start(); e < n; e += grid_stride()) {
    const int64_t ow = e % g.OW, oh = (e / g.OW) % g.OH, nk = e / OHW, k = nk % g.K;
    const T* xp = x + ((nk / g.K) * g.C + k / Kg) * g.H * g.W;  // (H, W) plane of input channel k / Kg
    const T* wk = w + k * g.KH * g.KW;
    T sum = 0;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t ih = oh * g.SH - g.PH + kh * g.DH;
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t iw = ow * g.SW - g.PW + kw * g.DW;
        if (iw >= 0 && iw < g.W) sum += wk[kh * g.KW + kw] * xp[ih * g.W + iw];
      }
    }
    out[e] = sum;
  }
}

// Its input gradient, gathered: pixel (c, ih, iw) sums over the Kg output channels of group c
// and the taps whose output position reads it.
template <typename T>
__global__ void depthwise_input_grad_kernel(ConvGeometry g, const T* __restrict__ dout, const T* __restrict__ w,
                                            T* __restrict__ dx) {
  const int64_t OHW = g.OH * g.OW, Kg = g.K / g.G, n = g.N * g.C * g.H * g.W;
  for (int64_t e = grid_start(); e < n; e += grid_stride()) {
    const int64_t iw = e % g.W, ih = (e / g.W) % g.H, nc = e / (g.W * g.H), c = nc % g.C;
    T sum = 0;
    for (int64_t k = c * Kg; k < (c + 1) * Kg; ++k) {
      const T* dp = dout + ((nc / g.C) * g.K + k) * OHW;
      const T* wk = w + k * g.KH * g.KW;
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        const int64_t th = ih + g.PH - kh * g.DH;  // = oh * SH for the output row that reads ih
        if (th < 0 || th % g.SH || th / g.SH >= g.OH) continue;
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const int64_t tw = iw + g.PW - kw * g.DW;
          if (tw < 0 || tw % g.SW || tw / g.SW >= g.OW) continue;
          sum += wk[kh * g.KW + kw] * dp[(th / g.SH) * g.OW + tw / g.SW];
        }
      }
    }
    dx[e] = sum;
  }
}

// dw (len) = (accumulate ? dw : 0) + sum over the nt partials (nt, len), in image order.
template <typename T>
__global__ void sum_partials_kernel(const T* __restrict__ partial, int64_t nt, int64_t len, bool accumulate,
                                    T* __restrict__ dw) {
  for (int64_t i = grid_start(); i < len; i += grid_stride()) {
    T s = accumulate ? dw[i] : T(0);
    for (int64_t n = 0; n < nt; ++n) s += partial[n * len + i];
    dw[i] = s;
  }
}

// The columns of the nt images at x: cols, filled by im2col, or x itself for a 1x1 conv.
template <typename T>
const T* tile_columns(const ConvGeometry& g, int64_t nt, const T* x, T* cols, cudaStream_t stream) {
  if (g.pointwise()) return x;
  launch_elementwise(nt * g.C * g.KH * g.KW * g.OHW(), stream, im2col_kernel<T>, g, nt, x, cols);
  return cols;
}

// The column blocks of a tile: cols (nt, C KH KW, OHW), or the images themselves for a 1x1 conv.
template <typename T>
Blocks<T> column_blocks(const ConvGeometry& g, T* cols, bool transposed) {
  const int64_t OHW = g.OHW();
  return transposed ? Blocks<T>{cols, g.C * g.KH * g.KW * OHW, g.CKK() * OHW, 1, OHW}   // (p, ckk)
                    : Blocks<T>{cols, g.C * g.KH * g.KW * OHW, g.CKK() * OHW, OHW, 1};  // (ckk, p)
}

}  // namespace

template <typename T>
void conv2d_forward(const ConvGeometry& g, const T* x, const T* w, T* out, T* cols, int64_t nb, cudaStream_t stream) {
  if (g.depthwise()) return launch_elementwise(g.N * g.K * g.OHW(), stream, depthwise_forward_kernel<T>, g, x, w, out);
  const int64_t OHW = g.OHW(), CKK = g.CKK(), Kg = g.Kg();
  for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
    const int64_t nt = g.N - n0 < nb ? g.N - n0 : nb;
    const T* c = tile_columns(g, nt, x + n0 * g.C * g.H * g.W, cols, stream);
    group_products<T>(nt, g.G, Kg, OHW, CKK, {w, 0, Kg * CKK, CKK, 1}, column_blocks(g, c, false),
                      {out + n0 * g.K * OHW, g.K * OHW, Kg * OHW, OHW, 1}, T(0), stream);
  }
}

template <typename T>
void conv2d_backward_input(const ConvGeometry& g, const T* dout, const T* w, T* dx, T* cols, int64_t nb,
                           cudaStream_t stream) {
  if (g.depthwise())
    return launch_elementwise(g.N * g.C * g.H * g.W, stream, depthwise_input_grad_kernel<T>, g, dout, w, dx);
  const int64_t OHW = g.OHW(), CKK = g.CKK(), Kg = g.Kg();
  const bool direct = g.pointwise();
  for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
    const int64_t nt = g.N - n0 < nb ? g.N - n0 : nb;
    T* dxt = dx + n0 * g.C * g.H * g.W;
    T* dc = direct ? dxt : cols;
    // W_g^T (CKK, Kg): element (i, k) at w[(g Kg + k) CKK + i]
    group_products<T>(nt, g.G, CKK, OHW, Kg, {w, 0, Kg * CKK, 1, CKK},
                      {dout + n0 * g.K * OHW, g.K * OHW, Kg * OHW, OHW, 1}, column_blocks(g, dc, false), T(0),
                      stream);
    if (!direct) launch_elementwise(nt * g.C * g.H * g.W, stream, col2im_kernel<T>, g, nt, cols, dxt);
  }
}

template <typename T>
void conv2d_backward_weight(const ConvGeometry& g, const T* dout, const T* x, T* dw, T* cols, T* partial, int64_t nb,
                            cudaStream_t stream) {
  const int64_t OHW = g.OHW(), CKK = g.CKK(), Kg = g.Kg(), len = g.K * CKK;
  if (len == 0) return;
  if (g.N == 0) {
    PYDL_CUDA_CHECK(cudaMemsetAsync(dw, 0, sizeof(T) * len, stream));
    return;
  }
  for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
    const int64_t nt = g.N - n0 < nb ? g.N - n0 : nb;
    const T* c = tile_columns(g, nt, x + n0 * g.C * g.H * g.W, cols, stream);
    const Blocks<const T> a{dout + n0 * g.K * OHW, g.K * OHW, Kg * OHW, OHW, 1};  // dout_g[n] (Kg, OHW)
    if (nt == 1) {  // straight into dw, adding to the earlier images
      group_products<T>(1, g.G, Kg, CKK, OHW, a, column_blocks(g, c, true), {dw, 0, Kg * CKK, CKK, 1},
                        n0 == 0 ? T(0) : T(1), stream);
      continue;
    }
    group_products<T>(nt, g.G, Kg, CKK, OHW, a, column_blocks(g, c, true), {partial, len, Kg * CKK, CKK, 1}, T(0),
                      stream);
    launch_elementwise(len, stream, sum_partials_kernel<T>, partial, nt, len, n0 > 0, dw);
  }
}

#define PYDL_CONV_INSTANTIATE(T)                                                                                   \
  template void conv2d_forward<T>(const ConvGeometry&, const T*, const T*, T*, T*, int64_t, cudaStream_t);         \
  template void conv2d_backward_input<T>(const ConvGeometry&, const T*, const T*, T*, T*, int64_t, cudaStream_t);  \
  template void conv2d_backward_weight<T>(const ConvGeometry&, const T*, const T*, T*, T*, T*, int64_t,            \
                                          cudaStream_t);
PYDL_CONV_INSTANTIATE(float)
PYDL_CONV_INSTANTIATE(double)
#undef PYDL_CONV_INSTANTIATE

}  // namespace pydl::cuda
