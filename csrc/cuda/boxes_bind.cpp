// pydl._C_cuda bindings of the detection family (csrc/cuda/boxes.cu). The Python side
// (pydl/kernels/cuda/boxes.py) has checked shapes, dtypes and batch indices, sorted the
// boxes by score and allocated every output and workspace.
#include <cuda_runtime.h>

#include "pydl/boxes_cuda.h"
#include "pydl/cuda_bind.h"

namespace py = pybind11;

namespace pydl::cuda {
namespace {

template <typename T>
void box_iou_ptr(uintptr_t a, int64_t N, uintptr_t b, int64_t M, uintptr_t out, bool generalized, uintptr_t stream) {
  py::gil_scoped_release release;
  box_iou<T>(device_ptr<const T>(a), N, device_ptr<const T>(b), M, device_ptr<T>(out), generalized,
             as_stream(stream));
}

template <typename T>
void nms_ptr(uintptr_t boxes, uintptr_t cls, int64_t n, double thr, uintptr_t mask, uintptr_t removed,
             uintptr_t keep_flag, uintptr_t stream) {
  py::gil_scoped_release release;
  nms_sorted<T>(device_ptr<const T>(boxes), cls ? device_ptr<const int64_t>(cls) : nullptr, n, thr,
                device_ptr<uint64_t>(mask), device_ptr<uint64_t>(removed), device_ptr<uint8_t>(keep_flag),
                as_stream(stream));
}

template <typename T>
void roi_align_forward_ptr(uintptr_t x, uintptr_t rois, int64_t K, int64_t C, int64_t H, int64_t W, int64_t PH,
                           int64_t PW, double scale, int64_t sampling, bool aligned, uintptr_t out,
                           uintptr_t stream) {
  py::gil_scoped_release release;
  roi_align_forward<T>(device_ptr<const T>(x), device_ptr<const double>(rois), K, C, H, W, PH, PW, scale, sampling,
                       aligned, device_ptr<T>(out), as_stream(stream));
}

template <typename T>
void roi_align_backward_ptr(uintptr_t g, uintptr_t rois, int64_t K, int64_t N, int64_t C, int64_t H, int64_t W,
                            int64_t PH, int64_t PW, double scale, int64_t sampling, bool aligned, uintptr_t dx,
                            uintptr_t stream) {
  py::gil_scoped_release release;
  roi_align_backward<T>(device_ptr<const T>(g), device_ptr<const double>(rois), K, N, C, H, W, PH, PW, scale,
                        sampling, aligned, device_ptr<T>(dx), as_stream(stream));
}

template <typename T>
void roi_pool_forward_ptr(uintptr_t x, uintptr_t rois, int64_t K, int64_t C, int64_t H, int64_t W, int64_t PH,
                          int64_t PW, double scale, uintptr_t out, uintptr_t argmax, uintptr_t stream) {
  py::gil_scoped_release release;
  roi_pool_forward<T>(device_ptr<const T>(x), device_ptr<const double>(rois), K, C, H, W, PH, PW, scale,
                      device_ptr<T>(out), device_ptr<int64_t>(argmax), as_stream(stream));
}

template <typename T>
void roi_pool_backward_ptr(uintptr_t g, uintptr_t argmax, uintptr_t rois, int64_t K, int64_t N, int64_t C, int64_t H,
                           int64_t W, int64_t PH, int64_t PW, uintptr_t dx, uintptr_t stream) {
  py::gil_scoped_release release;
  roi_pool_backward<T>(device_ptr<const T>(g), device_ptr<const int64_t>(argmax), device_ptr<const double>(rois), K,
                       N, C, H, W, PH, PW, device_ptr<T>(dx), as_stream(stream));
}

}  // namespace

void bind_boxes(py::module_& m) {
  m.def("box_iou_f32", &box_iou_ptr<float>);
  m.def("box_iou_f64", &box_iou_ptr<double>);
  m.def("nms_f32", &nms_ptr<float>);
  m.def("nms_f64", &nms_ptr<double>);
  m.def("roi_align_forward_f32", &roi_align_forward_ptr<float>);
  m.def("roi_align_forward_f64", &roi_align_forward_ptr<double>);
  m.def("roi_align_backward_f32", &roi_align_backward_ptr<float>);
  m.def("roi_align_backward_f64", &roi_align_backward_ptr<double>);
  m.def("roi_pool_forward_f32", &roi_pool_forward_ptr<float>);
  m.def("roi_pool_forward_f64", &roi_pool_forward_ptr<double>);
  m.def("roi_pool_backward_f32", &roi_pool_backward_ptr<float>);
  m.def("roi_pool_backward_f64", &roi_pool_backward_ptr<double>);
}

}  // namespace pydl::cuda
