// pydl._C_cuda bindings of the gemm family (csrc/cuda/gemm.cu).
#include <cuda_runtime.h>

#include "pydl/cuda_bind.h"
#include "pydl/gemm_cuda.h"

namespace py = pybind11;

namespace pydl::cuda {
namespace {

template <typename T>
void gemm_ptr(int64_t batch, int64_t M, int64_t N, int64_t K, uintptr_t a, int64_t bs_a, int64_t rs_a,
              int64_t cs_a, uintptr_t b, int64_t bs_b, int64_t rs_b, int64_t cs_b, uintptr_t c, int64_t bs_c,
              int64_t rs_c, double alpha, double beta, uintptr_t stream) {
  py::gil_scoped_release release;
  gemm<T>(batch, M, N, K, device_ptr<const T>(a), bs_a, rs_a, cs_a, device_ptr<const T>(b), bs_b, rs_b, cs_b,
          device_ptr<T>(c), bs_c, rs_c, static_cast<T>(alpha), static_cast<T>(beta), as_stream(stream));
}

template <TensorCorePrecision P>
void gemm_tensor_core_ptr(int64_t batch, int64_t M, int64_t N, int64_t K, uintptr_t a, int64_t bs_a, int64_t rs_a,
                          int64_t cs_a, uintptr_t b, int64_t bs_b, int64_t rs_b, int64_t cs_b, uintptr_t c,
                          int64_t bs_c, int64_t rs_c, double alpha, double beta, uintptr_t stream) {
  py::gil_scoped_release release;
  gemm_tensor_core(P, batch, M, N, K, device_ptr<const float>(a), bs_a, rs_a, cs_a, device_ptr<const float>(b), bs_b,
                   rs_b, cs_b, device_ptr<float>(c), bs_c, rs_c, static_cast<float>(alpha), static_cast<float>(beta),
                   as_stream(stream));
}

}  // namespace

void bind_gemm(py::module_& m) {
  m.def("gemm_f32", &gemm_ptr<float>);
  m.def("gemm_f64", &gemm_ptr<double>);
  // float32 operands on tensor cores (opt-in: precision='tf32' / 'bf16' in pydl.kernels.cuda.gemm)
  m.def("gemm_tf32", &gemm_tensor_core_ptr<TensorCorePrecision::tf32>);
  m.def("gemm_bf16", &gemm_tensor_core_ptr<TensorCorePrecision::bf16>);
}

}  // namespace pydl::cuda
