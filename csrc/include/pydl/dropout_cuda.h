// dropout on the GPU (csrc/cuda/dropout.cu): the launcher, on contiguous device arrays,
// launched on the given stream. Shapes and dtypes are checked by the Python side
// (pydl/kernels/cuda/dropout.py).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace pydl::cuda {

// y = x * (mask[i / I] ? scale : 0) over O * I values; mask (O,) of 0 / non-zero bytes.
template <typename T>
void dropout(const T* x, const uint8_t* mask, T* y, int64_t O, int64_t I, T scale, cudaStream_t stream);

}  // namespace pydl::cuda
