// The pybind11 half of each CUDA family: csrc/cuda/<family>_bind.cpp defines
// bind_<family>(m), which adds that family's launchers to pydl._C_cuda; bind_cuda.cpp
// calls them all. Launchers take raw device pointers (uintptr_t), sizes and strides in
// elements and the CuPy stream handle; the Python side (pydl/kernels/cuda/<family>.py)
// has already checked every shape and dtype. Each launcher releases the GIL.
#pragma once
#include <cuda_runtime.h>
#include <pybind11/pybind11.h>

#include <cstdint>

namespace pydl::cuda {

template <typename T>
inline T* device_ptr(uintptr_t p) { return reinterpret_cast<T*>(p); }

inline cudaStream_t as_stream(uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

void bind_gemm(pybind11::module_& m);
void bind_norm(pybind11::module_& m);
void bind_softmax(pybind11::module_& m);
void bind_embedding(pybind11::module_& m);
void bind_dropout(pybind11::module_& m);
void bind_pool(pybind11::module_& m);
void bind_upsample(pybind11::module_& m);
void bind_attention(pybind11::module_& m);
void bind_boxes(pybind11::module_& m);
void bind_rnn(pybind11::module_& m);
void bind_conv(pybind11::module_& m);

}  // namespace pydl::cuda
