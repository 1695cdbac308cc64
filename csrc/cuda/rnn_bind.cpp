// pydl._C_cuda bindings of the rnn family (csrc/cuda/rnn.cu). The Python side
// (pydl/kernels/cuda/rnn.py) has checked every shape and dtype, made the operands
// contiguous, filled the initial states and allocated the cache and the workspaces;
// a pointer of 0 is an absent optional argument.
#include <cuda_runtime.h>

#include "pydl/cuda_bind.h"
#include "pydl/rnn_cuda.h"

namespace py = pybind11;

namespace pydl::cuda {
namespace {

template <typename T>
T* or_null(uintptr_t p) {
  return p ? device_ptr<T>(p) : nullptr;
}

template <typename T>
RnnSeq<T> seq(int64_t steps, int64_t B, int64_t I, int64_t H, uintptr_t x, uintptr_t w_ih, uintptr_t w_hh,
              uintptr_t b_ih, uintptr_t b_hh, uintptr_t hs, uintptr_t cs, uintptr_t saved) {
  return RnnSeq<T>{steps, B, I, H, device_ptr<const T>(x), device_ptr<const T>(w_ih), device_ptr<const T>(w_hh),
                   or_null<const T>(b_ih), or_null<const T>(b_hh), device_ptr<T>(hs), or_null<T>(cs),
                   device_ptr<T>(saved)};
}

template <typename T>
void lstm_forward_ptr(int64_t steps, int64_t B, int64_t I, int64_t H, uintptr_t x, uintptr_t w_ih, uintptr_t w_hh,
                      uintptr_t b_ih, uintptr_t b_hh, uintptr_t hs, uintptr_t cs, uintptr_t saved, uintptr_t gh,
                      uintptr_t out, uintptr_t stream) {
  const RnnSeq<T> s = seq<T>(steps, B, I, H, x, w_ih, w_hh, b_ih, b_hh, hs, cs, saved);
  py::gil_scoped_release release;
  lstm_forward<T>(s, device_ptr<T>(gh), device_ptr<T>(out), as_stream(stream));
}

template <typename T>
void gru_forward_ptr(int64_t steps, int64_t B, int64_t I, int64_t H, uintptr_t x, uintptr_t w_ih, uintptr_t w_hh,
                     uintptr_t b_ih, uintptr_t b_hh, uintptr_t hs, uintptr_t saved, uintptr_t gi, uintptr_t gh,
                     uintptr_t out, uintptr_t stream) {
  const RnnSeq<T> s = seq<T>(steps, B, I, H, x, w_ih, w_hh, b_ih, b_hh, hs, 0, saved);
  py::gil_scoped_release release;
  gru_forward<T>(s, device_ptr<T>(gi), device_ptr<T>(gh), device_ptr<T>(out), as_stream(stream));
}

template <typename T>
void lstm_backward_ptr(int64_t steps, int64_t B, int64_t I, int64_t H, uintptr_t x, uintptr_t w_ih, uintptr_t w_hh,
                       uintptr_t hs, uintptr_t cs, uintptr_t saved, uintptr_t grad_out, uintptr_t dh, uintptr_t dc,
                       uintptr_t da, uintptr_t grad_x, uintptr_t grad_w_ih, uintptr_t grad_w_hh, uintptr_t db,
                       uintptr_t stream) {
  const RnnSeq<T> s = seq<T>(steps, B, I, H, x, w_ih, w_hh, 0, 0, hs, cs, saved);
  const RnnGrads<T> g{or_null<const T>(grad_out), device_ptr<T>(dh), device_ptr<T>(dc), device_ptr<T>(da), nullptr,
                      device_ptr<T>(grad_x), device_ptr<T>(grad_w_ih), device_ptr<T>(grad_w_hh), or_null<T>(db),
                      nullptr};
  py::gil_scoped_release release;
  lstm_backward<T>(s, g, as_stream(stream));
}

template <typename T>
void gru_backward_ptr(int64_t steps, int64_t B, int64_t I, int64_t H, uintptr_t x, uintptr_t w_ih, uintptr_t w_hh,
                      uintptr_t hs, uintptr_t saved, uintptr_t grad_out, uintptr_t dh, uintptr_t dgi, uintptr_t dgh,
                      uintptr_t grad_x, uintptr_t grad_w_ih, uintptr_t grad_w_hh, uintptr_t db_ih, uintptr_t db_hh,
                      uintptr_t stream) {
  const RnnSeq<T> s = seq<T>(steps, B, I, H, x, w_ih, w_hh, 0, 0, hs, 0, saved);
  const RnnGrads<T> g{or_null<const T>(grad_out), device_ptr<T>(dh), nullptr, device_ptr<T>(dgi), device_ptr<T>(dgh),
                      device_ptr<T>(grad_x), device_ptr<T>(grad_w_ih), device_ptr<T>(grad_w_hh), or_null<T>(db_ih),
                      or_null<T>(db_hh)};
  py::gil_scoped_release release;
  gru_backward<T>(s, g, as_stream(stream));
}

}  // namespace

void bind_rnn(py::module_& m) {
  m.def("lstm_forward_f32", &lstm_forward_ptr<float>);
  m.def("lstm_forward_f64", &lstm_forward_ptr<double>);
  m.def("gru_forward_f32", &gru_forward_ptr<float>);
  m.def("gru_forward_f64", &gru_forward_ptr<double>);
  m.def("lstm_backward_f32", &lstm_backward_ptr<float>);
  m.def("lstm_backward_f64", &lstm_backward_ptr<double>);
  m.def("gru_backward_f32", &gru_backward_ptr<float>);
  m.def("gru_backward_f64", &gru_backward_ptr<double>);
}

}  // namespace pydl::cuda
