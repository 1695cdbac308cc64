// embedding on the GPU: row lookup and its sparse backward.
//
//   forward   out[p, :] = weight[idx[p], :]                    for every position p
//   backward  grad_weight[v, :] = sum_{p : idx[p] == v} grad_out[p, :]   (0 for padding_idx)
//
// Legend: V rows of the table (num_embeddings), E features (embedding_dim), N positions
// (every dimension of the indices flattened).
//
// Algorithm: the forward is one flat grid-stride copy. The backward is deterministic
// and atomic-free, the CPU's algorithm: the caller (pydl/kernels/cuda/embedding.py)
// sorts the positions by row with CuPy (keys idx * N + p, so the order inside a row is
// increasing p whatever the sort), and finds each row's bucket start (searchsorted);
// then a block owns a row and its threads own features, each summing the bucket in
// order. The sums are the CPU's, in the CPU's order: the same bits.
//
// Workspace: the sorted positions (N) and the bucket starts (V + 1), int64, from CuPy.
//
// Checked by tests/kernels/test_embedding.py (marked cuda) against the float64 reference.
#include "pydl/cuda_check.h"
#include "pydl/cuda_reduce.h"
#include "pydl/embedding_cuda.h"

namespace pydl::cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void embedding_gather(const T* __restrict__ weight, const int64_t* __restrict__ idx, int64_t N, int64_t E,
                                 T* __restrict__ out) {
  const int64_t total = N * E, step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const int64_t p = i / E, e = i - p * E;
    out[i] = weight[idx[p] * E + e];
  }
}

template <typename T>
__global__ void embedding_row_sums(const T* __restrict__ grad_out, const int64_t* __restrict__ order,
                                   const int64_t* __restrict__ start, int64_t V, int64_t E, int64_t padding,
                                   T* __restrict__ grad_weight) {
  for (int64_t v = blockIdx.x; v < V; v += gridDim.x) {
    const int64_t k0 = start[v], k1 = start[v + 1];
    for (int64_t e = threadIdx.x; e < E; e += blockDim.x) {
      T acc = T(0);
      if (v != padding)
        for (int64_t k = k0; k < k1; ++k) acc += grad_out[order[k] * E + e];
      grad_weight[v * E + e] = acc;
    }
  }
}

}  // namespace

template <typename T>
void embedding_forward(const T* weight, const int64_t* idx, int64_t N, int64_t E, T* out, cudaStream_t stream) {
  if (N * E == 0) return;
  embedding_gather<T><<<grid_for(N * E, kThreads), kThreads, 0, stream>>>(weight, idx, N, E, out);
  PYDL_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void embedding_backward(const T* grad_out, const int64_t* order, const int64_t* start, int64_t V, int64_t E,
                        int64_t padding, T* grad_weight, cudaStream_t stream) {
  if (V * E == 0) return;
  const int threads = E >= kThreads ? kThreads : static_cast<int>((E + kWarp - 1) / kWarp) * kWarp;
  embedding_row_sums<T><<<grid_for(V, 1), threads, 0, stream>>>(grad_out, order, start, V, E, padding, grad_weight);
  PYDL_CUDA_CHECK(cudaGetLastError());
}

template void embedding_forward<float>(const float*, const int64_t*, int64_t, int64_t, float*, cudaStream_t);
template void embedding_forward<double>(const double*, const int64_t*, int64_t, int64_t, double*, cudaStream_t);
template void embedding_backward<float>(const float*, const int64_t*, const int64_t*, int64_t, int64_t, int64_t,
                                        float*, cudaStream_t);
template void embedding_backward<double>(const double*, const int64_t*, const int64_t*, int64_t, int64_t, int64_t,
                                         double*, cudaStream_t);

}  // namespace pydl::cuda
