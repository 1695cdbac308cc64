// pydl._C_cuda bindings of the conv family (csrc/cuda/conv.cu). A convolution comes as the
// 16 ints of pydl::ConvGeometry (N, C, H, W, K, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW, G),
// already checked by pydl/kernels/cuda/conv.py.
#include <pybind11/stl.h>

#include <array>
#include <string>

#include "pydl/conv_cuda.h"
#include "pydl/cuda_bind.h"

namespace py = pybind11;

namespace pydl::cuda {
namespace {

using Geometry16 = std::array<int64_t, 16>;

ConvGeometry geometry(const Geometry16& v) {
  return {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]};
}

template <typename T>
void bind_typed(py::module_& m, const char* suffix) {
  auto name = [&](const char* base) { return std::string(base) + suffix; };
  m.def(name("conv2d_forward").c_str(), [](const Geometry16& g, uintptr_t x, uintptr_t w, uintptr_t out,
                                           uintptr_t cols, int64_t nb, uintptr_t stream) {
    py::gil_scoped_release release;
    conv2d_forward<T>(geometry(g), device_ptr<const T>(x), device_ptr<const T>(w), device_ptr<T>(out),
                      device_ptr<T>(cols), nb, as_stream(stream));
  });
  m.def(name("conv2d_backward_input").c_str(), [](const Geometry16& g, uintptr_t dout, uintptr_t w, uintptr_t dx,
                                                  uintptr_t cols, int64_t nb, uintptr_t stream) {
    py::gil_scoped_release release;
    conv2d_backward_input<T>(geometry(g), device_ptr<const T>(dout), device_ptr<const T>(w), device_ptr<T>(dx),
                             device_ptr<T>(cols), nb, as_stream(stream));
  });
  m.def(name("conv2d_backward_weight").c_str(), [](const Geometry16& g, uintptr_t dout, uintptr_t x, uintptr_t dw,
                                                   uintptr_t cols, uintptr_t partial, int64_t nb, uintptr_t stream) {
    py::gil_scoped_release release;
    conv2d_backward_weight<T>(geometry(g), device_ptr<const T>(dout), device_ptr<const T>(x), device_ptr<T>(dw),
                              device_ptr<T>(cols), device_ptr<T>(partial), nb, as_stream(stream));
  });
}

}  // namespace

void bind_conv(py::module_& m) {
  bind_typed<float>(m, "_f32");
  bind_typed<double>(m, "_f64");
  // Elements of column workspace one image needs in a forward / input-gradient pass or in a
  // weight-gradient pass (0: a 1x1 conv reads its input as columns; a depthwise conv's
  // forward and input gradient run without columns).
  m.def("conv2d_columns_per_image", [](const Geometry16& v, bool weight_grad) {
    const ConvGeometry g = geometry(v);
    return g.pointwise() || (g.depthwise() && !weight_grad) ? int64_t(0) : g.C * g.KH * g.KW * g.OHW();
  });
}

}  // namespace pydl::cuda
