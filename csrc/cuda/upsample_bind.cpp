// pydl._C_cuda bindings of the up-sampling family (csrc/cuda/upsample.cu). A resize comes
// as (P, H, W, OH, OW) and the two scales (<= 0: from the sizes).
#include <string>

#include "pydl/cuda_bind.h"
#include "pydl/upsample_cuda.h"

namespace py = pybind11;

namespace pydl::cuda {
namespace {

template <typename T>
void bind_typed(py::module_& m, const char* suffix) {
  auto name = [&](const char* base) { return std::string(base) + suffix; };
  m.def(name("upsample_nearest2d_forward").c_str(), [](int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                                       double sh, double sw, uintptr_t x, uintptr_t out,
                                                       uintptr_t stream) {
    py::gil_scoped_release release;
    upsample_nearest2d_forward<T>({P, H, W, OH, OW, sh, sw}, device_ptr<const T>(x), device_ptr<T>(out),
                                  as_stream(stream));
  });
  m.def(name("upsample_nearest2d_backward").c_str(), [](int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                                        double sh, double sw, uintptr_t g, uintptr_t grad_in,
                                                        uintptr_t stream) {
    py::gil_scoped_release release;
    upsample_nearest2d_backward<T>({P, H, W, OH, OW, sh, sw}, device_ptr<const T>(g), device_ptr<T>(grad_in),
                                   as_stream(stream));
  });
  m.def(name("upsample_bilinear2d_forward").c_str(), [](int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                                        double sh, double sw, bool align_corners, uintptr_t x,
                                                        uintptr_t out, uintptr_t stream) {
    py::gil_scoped_release release;
    upsample_bilinear2d_forward<T>({P, H, W, OH, OW, sh, sw}, align_corners, device_ptr<const T>(x),
                                   device_ptr<T>(out), as_stream(stream));
  });
  m.def(name("upsample_bilinear2d_backward").c_str(), [](int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                                         double sh, double sw, bool align_corners, uintptr_t g,
                                                         uintptr_t grad_in, uintptr_t stream) {
    py::gil_scoped_release release;
    upsample_bilinear2d_backward<T>({P, H, W, OH, OW, sh, sw}, align_corners, device_ptr<const T>(g),
                                    device_ptr<T>(grad_in), as_stream(stream));
  });
  m.def(name("pixel_shuffle").c_str(), [](uintptr_t x, uintptr_t y, int64_t B, int64_t C, int64_t H, int64_t W,
                                          int64_t r, bool inverse, uintptr_t stream) {
    py::gil_scoped_release release;
    pixel_shuffle<T>(device_ptr<const T>(x), device_ptr<T>(y), B, C, H, W, r, inverse, as_stream(stream));
  });
}

}  // namespace

void bind_upsample(py::module_& m) {
  bind_typed<float>(m, "_f32");
  bind_typed<double>(m, "_f64");
}

}  // namespace pydl::cuda
