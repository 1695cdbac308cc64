// gemm on the GPU: the same contract as pydl/gemm.h (strided operands, batch strides,
// alpha/beta), on device pointers, launched on the given stream. Other CUDA families
// (conv) call it on their column buffers.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace pydl::cuda {

// C(z) = alpha * A(z) @ B(z) + beta * C(z), z < batch; A(z)(i, p) = A[z * bs_a + i * rs_a + p * cs_a],
// B(z)(p, j) = B[z * bs_b + p * rs_b + j * cs_b], C(z)(i, j) = C[z * bs_c + i * rs_c + j].
// beta == 0: C is written, never read. Full float32 / float64 precision.
template <typename T>
void gemm(int64_t batch, int64_t M, int64_t N, int64_t K,
          const T* A, int64_t bs_a, int64_t rs_a, int64_t cs_a,
          const T* B, int64_t bs_b, int64_t rs_b, int64_t cs_b,
          T* C, int64_t bs_c, int64_t rs_c, T alpha, T beta, cudaStream_t stream);

// The same product on tensor cores (sm_80+): float32 operands rounded to TF32 or bfloat16,
// float32 accumulation and output. Opt-in: the rounding changes float32 results.
enum class TensorCorePrecision { tf32, bf16 };

void gemm_tensor_core(TensorCorePrecision precision, int64_t batch, int64_t M, int64_t N, int64_t K,
                      const float* A, int64_t bs_a, int64_t rs_a, int64_t cs_a,
                      const float* B, int64_t bs_b, int64_t rs_b, int64_t cs_b,
                      float* C, int64_t bs_c, int64_t rs_c, float alpha, float beta, cudaStream_t stream);

}  // namespace pydl::cuda
