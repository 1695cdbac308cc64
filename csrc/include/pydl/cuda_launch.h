// Launch shapes shared by the element-wise CUDA kernels: one thread per output element,
// 256 threads a block, and a grid-stride loop over int64 indices, so that any element
// count (past 2^31 too) runs in one launch of a bounded grid.
#pragma once
#include <cstdint>

#include "pydl/cuda_check.h"

namespace pydl::cuda {

constexpr int kThreads = 256;

// Blocks for n elements: enough for one element a thread, at most 2^20 (the loop covers the rest).
inline unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > (int64_t(1) << 20) ? (int64_t(1) << 20) : b));
}

#if defined(__CUDACC__)
// The first element index of this thread and the loop stride of the grid.
__device__ __forceinline__ int64_t grid_start() { return int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t grid_stride() { return int64_t(gridDim.x) * blockDim.x; }

// kernel<<<blocks_for(n), kThreads, 0, stream>>>(args...) for an n-element grid-stride
// kernel, checked; nothing when n == 0.
template <typename... Params, typename... Args>
void launch_elementwise(int64_t n, cudaStream_t stream, void (*kernel)(Params...), Args... args) {
  if (n <= 0) return;
  kernel<<<blocks_for(n), kThreads, 0, stream>>>(args...);
  PYDL_CUDA_CHECK(cudaGetLastError());
}
#endif

}  // namespace pydl::cuda
