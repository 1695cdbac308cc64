// pydl._C_cuda: the CUDA kernels, on raw device pointers. The Python side
// (pydl/kernels/cuda.py) checks CuPy arrays and passes pointers, strides in elements and
// the current CuPy stream; this module only launches.
#include <cuda_runtime.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "pydl/cuda_check.h"
#include "pydl/gemm_cuda.h"

namespace py = pybind11;

namespace {

template <typename T>
void gemm_ptr(int64_t batch, int64_t M, int64_t N, int64_t K, uintptr_t a, int64_t bs_a, int64_t rs_a,
              int64_t cs_a, uintptr_t b, int64_t bs_b, int64_t rs_b, int64_t cs_b, uintptr_t c, int64_t bs_c,
              int64_t rs_c, double alpha, double beta, uintptr_t stream) {
  py::gil_scoped_release release;
  pydl::cuda::gemm<T>(batch, M, N, K, reinterpret_cast<const T*>(a), bs_a, rs_a, cs_a,
                      reinterpret_cast<const T*>(b), bs_b, rs_b, cs_b, reinterpret_cast<T*>(c), bs_c, rs_c,
                      static_cast<T>(alpha), static_cast<T>(beta), reinterpret_cast<cudaStream_t>(stream));
}

}  // namespace

PYBIND11_MODULE(_C_cuda, m) {
  m.doc() = "pydl's CUDA kernels (private: use pydl.kernels)";
  m.def("gemm_f32", &gemm_ptr<float>);
  m.def("gemm_f64", &gemm_ptr<double>);

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
