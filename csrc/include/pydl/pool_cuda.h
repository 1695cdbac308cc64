// pooling on the GPU (csrc/cuda/pool.cu): the launchers behind pydl/kernels/cuda/pool.py.
// Planes are contiguous (P = N * C planes of H x W); indices are flat positions h * W + w
// in a plane, int64, as on the CPU. Every launcher runs on `stream` and returns at once.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "pydl/pool.h"

namespace pydl::cuda {

template <typename T>
void max_pool2d_forward(const Pool2dShape& s, const T* x, T* out, int64_t* idx, cudaStream_t stream);
// grad_in (P, HW) is zeroed, then grad_in[p, idx] += g (overlapping windows add).
template <typename T>
void max_pool2d_backward(int64_t P, int64_t HW, int64_t OHW, const T* g, const int64_t* idx, T* grad_in,
                         cudaStream_t stream);
// winner: (P, OHW) int64 workspace (which input lands on each output: the last in scan order).
template <typename T>
void max_unpool2d_forward(int64_t P, int64_t HW, int64_t OHW, const T* x, const int64_t* idx, int64_t* winner,
                          T* out, cudaStream_t stream);
template <typename T>
void max_unpool2d_backward(int64_t P, int64_t HW, int64_t OHW, const T* g, const int64_t* idx, T* grad_in,
                           cudaStream_t stream);
template <typename T>
void avg_pool2d_forward(const Pool2dShape& s, bool count_include_pad, int64_t divisor_override, const T* x, T* out,
                        cudaStream_t stream);
template <typename T>
void avg_pool2d_backward(const Pool2dShape& s, bool count_include_pad, int64_t divisor_override, const T* g,
                         T* grad_in, cudaStream_t stream);
template <typename T>
void adaptive_avg_pool2d_forward(const Pool2dShape& s, const T* x, T* out, cudaStream_t stream);
template <typename T>
void adaptive_avg_pool2d_backward(const Pool2dShape& s, const T* g, T* grad_in, cudaStream_t stream);
template <typename T>
void adaptive_max_pool2d_forward(const Pool2dShape& s, const T* x, T* out, int64_t* idx, cudaStream_t stream);
// samples: (P, 2) in T, [0] places the columns, [1] the rows (PyTorch's order).
template <typename T>
void fractional_max_pool2d_forward(const Pool2dShape& s, const T* samples, const T* x, T* out, int64_t* idx,
                                   cudaStream_t stream);

}  // namespace pydl::cuda
