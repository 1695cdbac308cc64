// gemm on the GPU: C(M, N) = alpha * A(M, K) @ B(K, N) + beta * C, batched by grid.z.
//
// Algorithm: the classic shared-memory tiling. A block of 16 x 16 threads computes a
// 64 x 64 tile of C, each thread a 4 x 4 register block; the K loop stages a 64 x 16 tile
// of A and a 16 x 64 tile of B in shared memory per step. Operands are read through
// their strides, so transposed views need no copy. This is the correct-first version;
// the tuned kernels (vectorised loads, tensor cores) come with the CUDA issue.
//
// Workspace: 2 x 64 x 16 elements of shared memory per block; nothing in global memory.
// Checked by tests/kernels/test_gemm.py (marked cuda) against the float64 reference.
#include "pydl/cuda_check.h"
#include "pydl/gemm_cuda.h"

namespace pydl::cuda {
namespace {

constexpr int TILE_M = 64, TILE_N = 64, TILE_K = 16, THREADS = 16, REG = 4;

template <typename T>
__global__ void gemm_tiled(int64_t M, int64_t N, int64_t K,
                           const T* __restrict__ A, int64_t bs_a, int64_t rs_a, int64_t cs_a,
                           const T* __restrict__ B, int64_t bs_b, int64_t rs_b, int64_t cs_b,
                           T* __restrict__ C, int64_t bs_c, int64_t rs_c, T alpha, T beta) {
  __shared__ T a_tile[TILE_K][TILE_M + 1];  // a_tile[p][i] = A(row0 + i, k0 + p)
  __shared__ T b_tile[TILE_K][TILE_N];      // b_tile[p][j] = B(k0 + p, col0 + j)
  const int64_t z = blockIdx.z;
  A += z * bs_a; B += z * bs_b; C += z * bs_c;
  const int64_t row0 = int64_t(blockIdx.y) * TILE_M, col0 = int64_t(blockIdx.x) * TILE_N;
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * THREADS + tx;

  T acc[REG][REG] = {};
  for (int64_t k0 = 0; k0 < K; k0 += TILE_K) {
    for (int e = tid; e < TILE_M * TILE_K; e += THREADS * THREADS) {
      const int i = e / TILE_K, p = e % TILE_K;
      const int64_t gi = row0 + i, gp = k0 + p;
      a_tile[p][i] = (gi < M && gp < K) ? A[gi * rs_a + gp * cs_a] : T(0);
    }
    for (int e = tid; e < TILE_K * TILE_N; e += THREADS * THREADS) {
      const int p = e / TILE_N, j = e % TILE_N;
      const int64_t gp = k0 + p, gj = col0 + j;
      b_tile[p][j] = (gp < K && gj < N) ? B[gp * rs_b + gj * cs_b] : T(0);
    }
    __syncthreads();
#pragma unroll
    for (int p = 0; p < TILE_K; ++p) {
      T a_reg[REG], b_reg[REG];
#pragma unroll
      for (int r = 0; r < REG; ++r) {
        a_reg[r] = a_tile[p][ty + r * THREADS];
        b_reg[r] = b_tile[p][tx + r * THREADS];
      }
#pragma unroll
      for (int r = 0; r < REG; ++r)
#pragma unroll
        for (int s = 0; s < REG; ++s) acc[r][s] += a_reg[r] * b_reg[s];
    }
    __syncthreads();
  }
#pragma unroll
  for (int r = 0; r < REG; ++r) {
    const int64_t i = row0 + ty + r * THREADS;
    if (i >= M) continue;
#pragma unroll
    for (int s = 0; s < REG; ++s) {
      const int64_t j = col0 + tx + s * THREADS;
      if (j >= N) continue;
      T* c = C + i * rs_c + j;
      *c = beta == T(0) ? alpha * acc[r][s] : alpha * acc[r][s] + beta * *c;
    }
  }
}

}  // namespace

template <typename T>
void gemm(int64_t batch, int64_t M, int64_t N, int64_t K,
          const T* A, int64_t bs_a, int64_t rs_a, int64_t cs_a,
          const T* B, int64_t bs_b, int64_t rs_b, int64_t cs_b,
          T* C, int64_t bs_c, int64_t rs_c, T alpha, T beta, cudaStream_t stream) {
  if (batch == 0 || M == 0 || N == 0) return;
  if (batch > 65535) throw std::invalid_argument("gemm (cuda): batch of at most 65535 products per call");
  dim3 grid(unsigned((N + TILE_N - 1) / TILE_N), unsigned((M + TILE_M - 1) / TILE_M), unsigned(batch));
  if (grid.y > 65535) throw std::invalid_argument("gemm (cuda): M too large for one launch");
  dim3 block(THREADS, THREADS);
  gemm_tiled<T><<<grid, block, 0, stream>>>(M, N, K, A, bs_a, rs_a, cs_a, B, bs_b, rs_b, cs_b, C, bs_c, rs_c,
                                            alpha, beta);
  PYDL_CUDA_CHECK(cudaGetLastError());
}

template void gemm<float>(int64_t, int64_t, int64_t, int64_t, const float*, int64_t, int64_t, int64_t, const float*,
                          int64_t, int64_t, int64_t, float*, int64_t, int64_t, float, float, cudaStream_t);
template void gemm<double>(int64_t, int64_t, int64_t, int64_t, const double*, int64_t, int64_t, int64_t,
                           const double*, int64_t, int64_t, int64_t, double*, int64_t, int64_t, double, double,
                           cudaStream_t);

}  // namespace pydl::cuda
