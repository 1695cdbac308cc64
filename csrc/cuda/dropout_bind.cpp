// pydl._C_cuda bindings of dropout (csrc/cuda/dropout.cu).
#include <cuda_runtime.h>

#include "pydl/cuda_bind.h"
#include "pydl/dropout_cuda.h"

namespace py = pybind11;

namespace pydl::cuda {
namespace {

template <typename T>
void dropout_ptr(uintptr_t x, uintptr_t mask, uintptr_t y, int64_t O, int64_t I, double scale, uintptr_t stream) {
  py::gil_scoped_release release;
  dropout<T>(device_ptr<const T>(x), device_ptr<const uint8_t>(mask), device_ptr<T>(y), O, I, static_cast<T>(scale),
             as_stream(stream));
}

}  // namespace

void bind_dropout(py::module_& m) {
  m.def("dropout_f32", &dropout_ptr<float>);
  m.def("dropout_f64", &dropout_ptr<double>);
}

}  // namespace pydl::cuda
