// pydl._C_cuda bindings of the normalisation family (csrc/cuda/norm.cu). Pointers of 0
// stand for absent optional arrays (weight, bias, running statistics, unwanted gradients).
#include <cuda_runtime.h>

#include "pydl/cuda_bind.h"
#include "pydl/norm_cuda.h"

namespace py = pybind11;

namespace pydl::cuda {
namespace {

template <typename T>
void bn_forward_ptr(int64_t N, int64_t C, int64_t L, uintptr_t x, uintptr_t y, uintptr_t running_mean,
                    uintptr_t running_var, uintptr_t weight, uintptr_t bias, bool training, double momentum,
                    double eps, uintptr_t save_mean, uintptr_t save_invstd, int S, uintptr_t workspace,
                    uintptr_t stream) {
  BnForwardArgs<T> a{N, C, L, device_ptr<const T>(x), device_ptr<T>(y), device_ptr<T>(running_mean),
                     device_ptr<T>(running_var), device_ptr<const T>(weight), device_ptr<const T>(bias), training,
                     momentum, eps, device_ptr<T>(save_mean), device_ptr<T>(save_invstd), S,
                     device_ptr<T>(workspace)};
  py::gil_scoped_release release;
  batch_norm_forward<T>(a, as_stream(stream));
}

template <typename T>
void bn_backward_ptr(int64_t N, int64_t C, int64_t L, uintptr_t grad_out, uintptr_t x, uintptr_t weight,
                     uintptr_t save_mean, uintptr_t save_invstd, bool training, uintptr_t grad_input,
                     uintptr_t grad_weight, uintptr_t grad_bias, int S, uintptr_t workspace, uintptr_t stream) {
  BnBackwardArgs<T> a{N, C, L, device_ptr<const T>(grad_out), device_ptr<const T>(x), device_ptr<const T>(weight),
                      device_ptr<const T>(save_mean), device_ptr<const T>(save_invstd), training,
                      device_ptr<T>(grad_input), device_ptr<T>(grad_weight), device_ptr<T>(grad_bias), S,
                      device_ptr<T>(workspace)};
  py::gil_scoped_release release;
  batch_norm_backward<T>(a, as_stream(stream));
}

template <typename T>
void ln_forward_ptr(uintptr_t x, uintptr_t y, int64_t R, int64_t D, uintptr_t w, uintptr_t b, double eps,
                    uintptr_t mean, uintptr_t rstd, uintptr_t stream) {
  py::gil_scoped_release release;
  layer_norm_forward<T>(device_ptr<const T>(x), device_ptr<T>(y), R, D, device_ptr<const T>(w),
                        device_ptr<const T>(b), eps, device_ptr<T>(mean), device_ptr<T>(rstd), as_stream(stream));
}

template <typename T>
void ln_backward_ptr(uintptr_t dy, uintptr_t x, int64_t R, int64_t D, uintptr_t mean, uintptr_t rstd, uintptr_t w,
                     uintptr_t dx, uintptr_t grad_w, uintptr_t grad_b, uintptr_t workspace, int S,
                     uintptr_t stream) {
  py::gil_scoped_release release;
  layer_norm_backward<T>(device_ptr<const T>(dy), device_ptr<const T>(x), R, D, device_ptr<const T>(mean),
                         device_ptr<const T>(rstd), device_ptr<const T>(w), device_ptr<T>(dx), device_ptr<T>(grad_w),
                         device_ptr<T>(grad_b), device_ptr<T>(workspace), S, as_stream(stream));
}

template <typename T>
void gn_forward_ptr(uintptr_t x, uintptr_t y, int64_t N, int64_t C, int64_t L, int64_t G, uintptr_t w, uintptr_t b,
                    double eps, uintptr_t mean, uintptr_t rstd, uintptr_t stream) {
  py::gil_scoped_release release;
  group_norm_forward<T>(device_ptr<const T>(x), device_ptr<T>(y), N, C, L, G, device_ptr<const T>(w),
                        device_ptr<const T>(b), eps, device_ptr<T>(mean), device_ptr<T>(rstd), as_stream(stream));
}

template <typename T>
void gn_backward_ptr(uintptr_t dy, uintptr_t x, int64_t N, int64_t C, int64_t L, int64_t G, uintptr_t mean,
                     uintptr_t rstd, uintptr_t w, uintptr_t dx, uintptr_t grad_w, uintptr_t grad_b,
                     uintptr_t workspace, uintptr_t stream) {
  py::gil_scoped_release release;
  group_norm_backward<T>(device_ptr<const T>(dy), device_ptr<const T>(x), N, C, L, G, device_ptr<const T>(mean),
                         device_ptr<const T>(rstd), device_ptr<const T>(w), device_ptr<T>(dx), device_ptr<T>(grad_w),
                         device_ptr<T>(grad_b), device_ptr<T>(workspace), as_stream(stream));
}

}  // namespace

void bind_norm(py::module_& m) {
  m.def("batch_norm_forward_f32", &bn_forward_ptr<float>);
  m.def("batch_norm_forward_f64", &bn_forward_ptr<double>);
  m.def("batch_norm_backward_f32", &bn_backward_ptr<float>);
  m.def("batch_norm_backward_f64", &bn_backward_ptr<double>);
  m.def("layer_norm_forward_f32", &ln_forward_ptr<float>);
  m.def("layer_norm_forward_f64", &ln_forward_ptr<double>);
  m.def("layer_norm_backward_f32", &ln_backward_ptr<float>);
  m.def("layer_norm_backward_f64", &ln_backward_ptr<double>);
  m.def("group_norm_forward_f32", &gn_forward_ptr<float>);
  m.def("group_norm_forward_f64", &gn_forward_ptr<double>);
  m.def("group_norm_backward_f32", &gn_backward_ptr<float>);
  m.def("group_norm_backward_f64", &gn_backward_ptr<double>);
}

}  // namespace pydl::cuda
