// PYDL_HOST_DEVICE marks the per-element helpers shared by the CPU and CUDA kernels
// (IoU of two boxes, the gate non-linearities, the online-softmax update, ...): compiled
// for both sides by nvcc, plain inline functions for the C++ compiler.
#pragma once

#if defined(__CUDACC__)
#define PYDL_HOST_DEVICE __host__ __device__
#else
#define PYDL_HOST_DEVICE
#endif
