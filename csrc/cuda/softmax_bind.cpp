// pydl._C_cuda bindings of the softmax family (csrc/cuda/softmax.cu): softmax,
// log_softmax, the fused cross-entropy and the SVM hinge loss. A weight pointer of 0
// stands for no class weights.
#include <cuda_runtime.h>

#include "pydl/cuda_bind.h"
#include "pydl/softmax_cuda.h"

namespace py = pybind11;

namespace pydl::cuda {
namespace {

template <typename T>
void softmax_forward_ptr(uintptr_t x, uintptr_t y, int64_t N, int64_t C, bool log, uintptr_t stream) {
  py::gil_scoped_release release;
  softmax_forward<T>(device_ptr<const T>(x), device_ptr<T>(y), N, C, log, as_stream(stream));
}

template <typename T>
void softmax_backward_ptr(uintptr_t grad_y, uintptr_t y, uintptr_t grad_x, int64_t N, int64_t C, bool log,
                          uintptr_t stream) {
  py::gil_scoped_release release;
  softmax_backward<T>(device_ptr<const T>(grad_y), device_ptr<const T>(y), device_ptr<T>(grad_x), N, C, log,
                      as_stream(stream));
}

template <typename T>
void cross_entropy_ptr(int64_t N, int64_t C, uintptr_t logits, uintptr_t target, uintptr_t weight, uintptr_t sums,
                       bool mean, int64_t ignore_index, double label_smoothing, uintptr_t grad, uintptr_t row_loss,
                       uintptr_t stream) {
  CrossEntropyCudaArgs<T> a{N, C, device_ptr<const T>(logits), device_ptr<const int64_t>(target),
                            device_ptr<const T>(weight), device_ptr<const double>(sums), mean, ignore_index,
                            label_smoothing, device_ptr<T>(grad), device_ptr<double>(row_loss)};
  py::gil_scoped_release release;
  cross_entropy<T>(a, as_stream(stream));
}

template <typename T>
void svm_loss_ptr(uintptr_t scores, uintptr_t target, int64_t N, int64_t C, double margin, double grad_scale,
                  uintptr_t grad, uintptr_t row_loss, uintptr_t stream) {
  py::gil_scoped_release release;
  svm_loss<T>(device_ptr<const T>(scores), device_ptr<const int64_t>(target), N, C, margin, grad_scale,
              device_ptr<T>(grad), device_ptr<double>(row_loss), as_stream(stream));
}

}  // namespace

void bind_softmax(py::module_& m) {
  m.def("softmax_forward_f32", &softmax_forward_ptr<float>);
  m.def("softmax_forward_f64", &softmax_forward_ptr<double>);
  m.def("softmax_backward_f32", &softmax_backward_ptr<float>);
  m.def("softmax_backward_f64", &softmax_backward_ptr<double>);
  m.def("cross_entropy_f32", &cross_entropy_ptr<float>);
  m.def("cross_entropy_f64", &cross_entropy_ptr<double>);
  m.def("svm_loss_f32", &svm_loss_ptr<float>);
  m.def("svm_loss_f64", &svm_loss_ptr<double>);
}

}  // namespace pydl::cuda
