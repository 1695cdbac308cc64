// conv2d on the GPU (csrc/cuda/conv.cu): im2col + the CUDA gemm, in tiles of nb images.
// Arrays are contiguous NCHW; the geometry is pydl::ConvGeometry (pydl/conv.h), every
// argument already checked by the caller (pydl/kernels/cuda/conv.py).
//
// Workspace the caller allocates: cols, nb * C * KH * KW * OH * OW elements (unused, may
// be null, for a 1x1 stride-1 unpadded conv); partial (weight gradient only), nb * K * CKK
// elements (unused when nb == 1).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "pydl/conv.h"

namespace pydl::cuda {

// out (N, K, OH, OW) = conv2d(x (N, C, H, W), w (K, Cg, KH, KW)), without bias.
template <typename T>
void conv2d_forward(const ConvGeometry& g, const T* x, const T* w, T* out, T* cols, int64_t nb, cudaStream_t stream);

// dx (N, C, H, W) = col2im(W^T @ dout), dout (N, K, OH, OW).
template <typename T>
void conv2d_backward_input(const ConvGeometry& g, const T* dout, const T* w, T* dx, T* cols, int64_t nb,
                           cudaStream_t stream);

// dw (K, Cg, KH, KW) = sum_n dout[n] @ cols[n]^T.
template <typename T>
void conv2d_backward_weight(const ConvGeometry& g, const T* dout, const T* x, T* dw, T* cols, T* partial, int64_t nb,
                            cudaStream_t stream);

}  // namespace pydl::cuda
