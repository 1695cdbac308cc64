// pydl._C_cuda bindings of the embedding family (csrc/cuda/embedding.cu).
#include <cuda_runtime.h>

#include "pydl/cuda_bind.h"
#include "pydl/embedding_cuda.h"

namespace py = pybind11;

namespace pydl::cuda {
namespace {

template <typename T>
void embedding_forward_ptr(uintptr_t weight, uintptr_t idx, int64_t N, int64_t E, uintptr_t out, uintptr_t stream) {
  py::gil_scoped_release release;
  embedding_forward<T>(device_ptr<const T>(weight), device_ptr<const int64_t>(idx), N, E, device_ptr<T>(out),
                       as_stream(stream));
}

template <typename T>
void embedding_backward_ptr(uintptr_t grad_out, uintptr_t order, uintptr_t start, int64_t V, int64_t E,
                            int64_t padding, uintptr_t grad_weight, uintptr_t stream) {
  py::gil_scoped_release release;
  embedding_backward<T>(device_ptr<const T>(grad_out), device_ptr<const int64_t>(order),
                        device_ptr<const int64_t>(start), V, E, padding, device_ptr<T>(grad_weight),
                        as_stream(stream));
}

}  // namespace

void bind_embedding(py::module_& m) {
  m.def("embedding_forward_f32", &embedding_forward_ptr<float>);
  m.def("embedding_forward_f64", &embedding_forward_ptr<double>);
  m.def("embedding_backward_f32", &embedding_backward_ptr<float>);
  m.def("embedding_backward_f64", &embedding_backward_ptr<double>);
}

}  // namespace pydl::cuda
