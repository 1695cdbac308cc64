// up-sampling on the GPU (csrc/cuda/upsample.cu): the launchers behind
// pydl/kernels/cuda/upsample.py. Planes are contiguous; every launcher runs on `stream`.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace pydl::cuda {

// P = N * C planes of H x W resized to OH x OW; scale_h / scale_w: the caller's
// scale_factor, or <= 0 when the output size was given (pydl/upsample.h).
struct ResizeShape {
  int64_t P, H, W, OH, OW;
  double scale_h, scale_w;
};

template <typename T>
void upsample_nearest2d_forward(const ResizeShape& s, const T* x, T* out, cudaStream_t stream);
template <typename T>
void upsample_nearest2d_backward(const ResizeShape& s, const T* g, T* grad_in, cudaStream_t stream);
template <typename T>
void upsample_bilinear2d_forward(const ResizeShape& s, bool align_corners, const T* x, T* out, cudaStream_t stream);
template <typename T>
void upsample_bilinear2d_backward(const ResizeShape& s, bool align_corners, const T* g, T* grad_in,
                                  cudaStream_t stream);
// (B, C r^2, H, W) -> (B, C, H r, W r), or back when inverse (B: the leading axes flattened).
template <typename T>
void pixel_shuffle(const T* x, T* y, int64_t B, int64_t C, int64_t H, int64_t W, int64_t r, bool inverse,
                   cudaStream_t stream);

}  // namespace pydl::cuda
