// dropout on the GPU: out = x * (keep ? 1 / (1 - p) : 0), with the caller's keep-mask.
//
// What it computes: inverted dropout, as csrc/cpu/dropout.cpp. The random draw stays in
// Python (pydl's generator), so the kernel only applies the mask (bool or uint8, non-zero
// = keep), which has the input's shape or a prefix of it and broadcasts over the rest
// (dropout2d). p == 1 multiplies by 0 (NaN stays NaN, as PyTorch). The backward is the
// same product applied to the gradient.
//
// Dimension legend: O = the mask's size (outer), I = the input's size / O (inner: the
// values one mask entry covers).
//
// Algorithm: one flat grid-stride pass; workspace: none.
//
// Checked by tests/kernels/test_dropout.py (marked cuda) against pydl/kernels/reference/dropout.py.
#include "pydl/cuda_check.h"
#include "pydl/cuda_reduce.h"
#include "pydl/dropout_cuda.h"

namespace pydl::cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void dropout_apply(const T* __restrict__ x, const uint8_t* __restrict__ mask, T* __restrict__ y,
                              int64_t total, int64_t I, T scale) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step)
    y[i] = x[i] * (mask[I == 1 ? i : i / I] ? scale : T(0));
}

}  // namespace

template <typename T>
void dropout(const T* x, const uint8_t* mask, T* y, int64_t O, int64_t I, T scale, cudaStream_t stream) {
  const int64_t total = O * I;
  if (total == 0) return;
  dropout_apply<T><<<grid_for(total, kThreads), kThreads, 0, stream>>>(x, mask, y, total, I, scale);
  PYDL_CUDA_CHECK(cudaGetLastError());
}

template void dropout<float>(const float*, const uint8_t*, float*, int64_t, int64_t, float, cudaStream_t);
template void dropout<double>(const double*, const uint8_t*, double*, int64_t, int64_t, double, cudaStream_t);

}  // namespace pydl::cuda
