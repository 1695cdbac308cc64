// gemm on the GPU: the same contract as pydl/gemm.h (strided operands, batch strides,
// alpha/beta), on device pointers, launched on the given stream.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace pydl::cuda {

template <typename T>
void gemm(int64_t batch, int64_t M, int64_t N, int64_t K,
          const T* A, int64_t bs_a, int64_t rs_a, int64_t cs_a,
          const T* B, int64_t bs_b, int64_t rs_b, int64_t cs_b,
          T* C, int64_t bs_c, int64_t rs_c, T alpha, T beta, cudaStream_t stream);

}  // namespace pydl::cuda
