// pydl._C_cuda bindings of the pooling family (csrc/cuda/pool.cu). A pooling problem comes
// as the 13 ints of pydl::Pool2dShape (P, H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW).
#include <pybind11/stl.h>

#include <array>
#include <stdexcept>

#include "pydl/cuda_bind.h"
#include "pydl/pool_cuda.h"

namespace py = pybind11;

namespace pydl::cuda {
namespace {

using Shape13 = std::array<int64_t, 13>;

Pool2dShape pool_shape(const Shape13& v) {
  return {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12]};
}

template <typename T>
void bind_typed(py::module_& m, const char* suffix) {
  auto name = [&](const char* base) { return std::string(base) + suffix; };
  m.def(name("max_pool2d_forward").c_str(), [](const Shape13& s, uintptr_t x, uintptr_t out, uintptr_t idx,
                                               uintptr_t stream) {
    py::gil_scoped_release release;
    max_pool2d_forward<T>(pool_shape(s), device_ptr<const T>(x), device_ptr<T>(out), device_ptr<int64_t>(idx),
                          as_stream(stream));
  });
  m.def(name("max_pool2d_backward").c_str(), [](int64_t P, int64_t HW, int64_t OHW, uintptr_t g, uintptr_t idx,
                                                uintptr_t grad_in, uintptr_t stream) {
    py::gil_scoped_release release;
    max_pool2d_backward<T>(P, HW, OHW, device_ptr<const T>(g), device_ptr<const int64_t>(idx), device_ptr<T>(grad_in),
                           as_stream(stream));
  });
  m.def(name("max_unpool2d_forward").c_str(), [](int64_t P, int64_t HW, int64_t OHW, uintptr_t x, uintptr_t idx,
                                                 uintptr_t winner, uintptr_t out, uintptr_t stream) {
    py::gil_scoped_release release;
    max_unpool2d_forward<T>(P, HW, OHW, device_ptr<const T>(x), device_ptr<const int64_t>(idx),
                            device_ptr<int64_t>(winner), device_ptr<T>(out), as_stream(stream));
  });
  m.def(name("max_unpool2d_backward").c_str(), [](int64_t P, int64_t HW, int64_t OHW, uintptr_t g, uintptr_t idx,
                                                  uintptr_t grad_in, uintptr_t stream) {
    py::gil_scoped_release release;
    max_unpool2d_backward<T>(P, HW, OHW, device_ptr<const T>(g), device_ptr<const int64_t>(idx),
                             device_ptr<T>(grad_in), as_stream(stream));
  });
  m.def(name("avg_pool2d_forward").c_str(), [](const Shape13& s, bool cip, int64_t dov, uintptr_t x, uintptr_t out,
                                               uintptr_t stream) {
    py::gil_scoped_release release;
    avg_pool2d_forward<T>(pool_shape(s), cip, dov, device_ptr<const T>(x), device_ptr<T>(out), as_stream(stream));
  });
  m.def(name("avg_pool2d_backward").c_str(), [](const Shape13& s, bool cip, int64_t dov, uintptr_t g,
                                                uintptr_t grad_in, uintptr_t stream) {
    py::gil_scoped_release release;
    avg_pool2d_backward<T>(pool_shape(s), cip, dov, device_ptr<const T>(g), device_ptr<T>(grad_in), as_stream(stream));
  });
  m.def(name("adaptive_avg_pool2d_forward").c_str(), [](const Shape13& s, uintptr_t x, uintptr_t out,
                                                        uintptr_t stream) {
    py::gil_scoped_release release;
    adaptive_avg_pool2d_forward<T>(pool_shape(s), device_ptr<const T>(x), device_ptr<T>(out), as_stream(stream));
  });
  m.def(name("adaptive_avg_pool2d_backward").c_str(), [](const Shape13& s, uintptr_t g, uintptr_t grad_in,
                                                         uintptr_t stream) {
    py::gil_scoped_release release;
    adaptive_avg_pool2d_backward<T>(pool_shape(s), device_ptr<const T>(g), device_ptr<T>(grad_in), as_stream(stream));
  });
  m.def(name("adaptive_max_pool2d_forward").c_str(), [](const Shape13& s, uintptr_t x, uintptr_t out, uintptr_t idx,
                                                        uintptr_t stream) {
    py::gil_scoped_release release;
    adaptive_max_pool2d_forward<T>(pool_shape(s), device_ptr<const T>(x), device_ptr<T>(out),
                                   device_ptr<int64_t>(idx), as_stream(stream));
  });
  m.def(name("fractional_max_pool2d_forward").c_str(), [](const Shape13& s, uintptr_t samples, uintptr_t x,
                                                          uintptr_t out, uintptr_t idx, uintptr_t stream) {
    py::gil_scoped_release release;
    fractional_max_pool2d_forward<T>(pool_shape(s), device_ptr<const T>(samples), device_ptr<const T>(x),
                                     device_ptr<T>(out), device_ptr<int64_t>(idx), as_stream(stream));
  });
}

}  // namespace

void bind_pool(py::module_& m) {
  bind_typed<float>(m, "_f32");
  bind_typed<double>(m, "_f64");
}

}  // namespace pydl::cuda
