// pydl._C_cuda: the CUDA kernels, on raw device pointers. The Python side
// (pydl/kernels/cuda/) checks CuPy arrays and passes pointers, strides in elements and
// the current CuPy stream; this module only launches.
#include <cuda_runtime.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "pydl/cuda_check.h"
#include "pydl/cuda_bind.h"

namespace py = pybind11;

PYBIND11_MODULE(_C_cuda, m) {
  m.doc() = "pydl's CUDA kernels (private: use pydl.kernels)";
  // One line per kernel family (csrc/cuda/<family>_bind.cpp).
  pydl::cuda::bind_gemm(m);
  pydl::cuda::bind_norm(m);
  pydl::cuda::bind_softmax(m);
  pydl::cuda::bind_embedding(m);
  pydl::cuda::bind_dropout(m);
  pydl::cuda::bind_pool(m);
  pydl::cuda::bind_upsample(m);
  pydl::cuda::bind_attention(m);
  pydl::cuda::bind_boxes(m);
  pydl::cuda::bind_rnn(m);
  pydl::cuda::bind_conv(m);

  // (usable, reason): whether a device can run our kernels, and if not, why not.
  m.def("device_status", []() {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      cudaGetLastError();
      return py::make_tuple(false, std::string("CUDA runtime: ") + cudaGetErrorString(err));
    }
    if (count == 0) return py::make_tuple(false, std::string("no CUDA device found"));
    cudaDeviceProp prop;
    PYDL_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    return py::make_tuple(true, std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
                                    std::to_string(prop.minor) + "), " + std::to_string(count) + " device(s)");
  });
  m.attr("archs") = PYDL_CUDA_ARCHS;
  int rt = 0;
  cudaRuntimeGetVersion(&rt);
  m.attr("runtime_version") = rt;
}
