// embedding on the GPU (csrc/cuda/embedding.cu): the launchers, on contiguous device
// arrays, launched on the given stream. Shapes, index ranges and dtypes are checked by
// the Python side (pydl/kernels/cuda/embedding.py), which also sorts the positions.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace pydl::cuda {

// out (N, E) = weight[idx] with weight (V, E), idx (N,) in [0, V).
template <typename T>
void embedding_forward(const T* weight, const int64_t* idx, int64_t N, int64_t E, T* out, cudaStream_t stream);

// grad_weight (V, E): row v = the sum of grad_out[order[k]] for k in [start[v], start[v + 1])
// (the positions that picked v, in increasing order), 0 for row `padding` (-1: none).
template <typename T>
void embedding_backward(const T* grad_out, const int64_t* order, const int64_t* start, int64_t V, int64_t E,
                        int64_t padding, T* grad_weight, cudaStream_t stream);

}  // namespace pydl::cuda
