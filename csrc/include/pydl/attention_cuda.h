// attention on the GPU (csrc/cuda/attention.cu): the launchers of the fused forward and
// backward, on device pointers, with the same AttentionArgs as the CPU kernels
// (pydl/attention.h; `threads` is unused here). Launched on the given stream.
#pragma once
#include <cuda_runtime.h>

#include "pydl/attention.h"

namespace pydl::cuda {

// Reads q, k, v, mask (+ mask_offset, a device array of BH offsets); writes out, lse.
template <typename T>
void attention_forward(const AttentionArgs<T>& a, cudaStream_t stream);

// Reads q, k, v, mask, out, lse, grad_out; writes grad_q (zeroed here first), grad_k,
// grad_v. delta: a (BH, L) device workspace for rowsum(dY * Y).
template <typename T>
void attention_backward(const AttentionArgs<T>& a, T* delta, cudaStream_t stream);

}  // namespace pydl::cuda
