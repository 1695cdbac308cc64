// pydl._C_cuda bindings of the attention family (csrc/cuda/attention.cu). The Python side
// (pydl/kernels/cuda/attention.py) has checked the shapes, made q, k, v contiguous and
// turned the mask into an additive one with per-head offsets (mask_offset: BH int64 on
// the device, 0 when there is no mask).
#include <cuda_runtime.h>

#include "pydl/attention_cuda.h"
#include "pydl/cuda_bind.h"

namespace py = pybind11;

namespace pydl::cuda {
namespace {

template <typename T>
AttentionArgs<T> args(int64_t BH, int64_t L, int64_t S, int64_t D, int64_t Dv, uintptr_t q, uintptr_t k,
                      uintptr_t v, uintptr_t mask, uintptr_t mask_offset, int64_t mask_ls, int64_t mask_ss,
                      bool causal, double scale) {
  AttentionArgs<T> a{};
  a.BH = BH, a.L = L, a.S = S, a.D = D, a.Dv = Dv;
  a.q = device_ptr<const T>(q), a.k = device_ptr<const T>(k), a.v = device_ptr<const T>(v);
  a.mask = mask ? device_ptr<const T>(mask) : nullptr;
  a.mask_offset = device_ptr<const int64_t>(mask_offset);
  a.mask_ls = mask_ls, a.mask_ss = mask_ss;
  a.causal = causal;
  a.scale = static_cast<T>(scale);
  return a;
}

template <typename T>
void forward_ptr(int64_t BH, int64_t L, int64_t S, int64_t D, int64_t Dv, uintptr_t q, uintptr_t k, uintptr_t v,
                 uintptr_t mask, uintptr_t mask_offset, int64_t mask_ls, int64_t mask_ss, bool causal, double scale,
                 uintptr_t out, uintptr_t lse, uintptr_t stream) {
  AttentionArgs<T> a = args<T>(BH, L, S, D, Dv, q, k, v, mask, mask_offset, mask_ls, mask_ss, causal, scale);
  a.out = device_ptr<T>(out), a.lse = device_ptr<T>(lse);
  py::gil_scoped_release release;
  attention_forward<T>(a, as_stream(stream));
}

template <typename T>
void backward_ptr(int64_t BH, int64_t L, int64_t S, int64_t D, int64_t Dv, uintptr_t q, uintptr_t k, uintptr_t v,
                  uintptr_t mask, uintptr_t mask_offset, int64_t mask_ls, int64_t mask_ss, bool causal, double scale,
                  uintptr_t out, uintptr_t lse, uintptr_t grad_out, uintptr_t delta, uintptr_t grad_q,
                  uintptr_t grad_k, uintptr_t grad_v, uintptr_t stream) {
  AttentionArgs<T> a = args<T>(BH, L, S, D, Dv, q, k, v, mask, mask_offset, mask_ls, mask_ss, causal, scale);
  a.out = device_ptr<T>(out), a.lse = device_ptr<T>(lse);
  a.grad_out = device_ptr<const T>(grad_out);
  a.grad_q = device_ptr<T>(grad_q), a.grad_k = device_ptr<T>(grad_k), a.grad_v = device_ptr<T>(grad_v);
  py::gil_scoped_release release;
  attention_backward<T>(a, device_ptr<T>(delta), as_stream(stream));
}

}  // namespace

void bind_attention(py::module_& m) {
  m.def("attention_forward_f32", &forward_ptr<float>);
  m.def("attention_forward_f64", &forward_ptr<double>);
  m.def("attention_backward_f32", &backward_ptr<float>);
  m.def("attention_backward_f64", &backward_ptr<double>);
}

}  // namespace pydl::cuda
