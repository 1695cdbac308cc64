// Detection kernels on the GPU (csrc/cuda/boxes.cu): the host launchers, on device
// pointers, launched on the given stream. rois are (K, 5) float64 (batch index, x1, y1,
// x2, y2) with batch indices already checked by the caller.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace pydl::cuda {

// out (N, M) = IoU (or GIoU) of a (N, 4) against b (M, 4).
template <typename T>
void box_iou(const T* a, int64_t N, const T* b, int64_t M, T* out, bool generalized, cudaStream_t stream);

// Greedy NMS of boxes (n, 4) already in score order; cls (n,) in the same order makes it
// batched (only boxes of one category suppress each other), nullptr for plain nms.
// mask: n * ceil(n / 64) words and removed: ceil(n / 64) words of workspace; keep_flag (n,)
// gets 1 at the kept positions.
template <typename T>
void nms_sorted(const T* boxes, const int64_t* cls, int64_t n, double thr, uint64_t* mask, uint64_t* removed,
                uint8_t* keep_flag, cudaStream_t stream);

template <typename T>
void roi_align_forward(const T* x, const double* rois, int64_t K, int64_t C, int64_t H, int64_t W, int64_t PH,
                       int64_t PW, double scale, int64_t sampling, bool aligned, T* out, cudaStream_t stream);

// dx (N, C, H, W) is zeroed here, then scattered into.
template <typename T>
void roi_align_backward(const T* g, const double* rois, int64_t K, int64_t N, int64_t C, int64_t H, int64_t W,
                        int64_t PH, int64_t PW, double scale, int64_t sampling, bool aligned, T* dx,
                        cudaStream_t stream);

template <typename T>
void roi_pool_forward(const T* x, const double* rois, int64_t K, int64_t C, int64_t H, int64_t W, int64_t PH,
                      int64_t PW, double scale, T* out, int64_t* argmax, cudaStream_t stream);

// dx (N, C, H, W) is zeroed here; argmax holds values in [-1, H W) (checked by the caller).
template <typename T>
void roi_pool_backward(const T* g, const int64_t* argmax, const double* rois, int64_t K, int64_t N, int64_t C,
                       int64_t H, int64_t W, int64_t PH, int64_t PW, T* dx, cudaStream_t stream);

}  // namespace pydl::cuda
