// Detection kernels on the GPU: box_iou, generalized_box_iou, nms / batched_nms (the
// 64-box bitmask algorithm), roi_align and roi_pool forward and backward.
//
// What it computes (torchvision's rules; the defined behaviour on bad boxes is in
// pydl/kernels/reference/boxes.py; the per-pair IoU / GIoU and the RoI geometry are the
// PYDL_HOST_DEVICE helpers of csrc/include/pydl/boxes.h, shared with csrc/cpu/boxes*.cpp):
//   IoU(a, b) = |a n b| / |a u b| (0 when the union is not > 0), GIoU as in boxes.h
//   nms       greedy walk by decreasing score (the order is sorted by the caller: ties by
//             index, NaN last); a box goes when its IoU with a kept box is > threshold
//   roi_align / roi_pool: the CPU's formulas (csrc/cpu/boxes_roi.cpp), the geometry in double.
//
// Dimension legend: N, M boxes; n boxes in score order, nb = ceil(n / 64) blocks of 64;
// K RoIs, (N, C, H, W) feature map, (PH, PW) pooled size.
//
// NMS algorithm (torchvision's CUDA kernel, with the sweep on the device): (1) the mask
// kernel, one block of 64 threads per (row block, column block >= row block), writes
// mask[i, c] = the 64 bits "IoU(box i, box 64 c + l) > thr" (only l > i's lane on the
// diagonal; batched_nms also requires the same category, which is exact for any
// coordinates, unlike the coordinate-offset trick); (2) the sweep kernel, ONE block,
// walks the row blocks in order: thread 0 decides which boxes of the block survive (a
// serial pass over 64 bits against the block's diagonal words, staged in shared memory),
// then all threads OR the kept rows' words into the removed-words of every later block
// (one writer per word, so no atomics and the result is deterministic). keep_flag[p] = 1
// marks the kept positions p of the score order. The float threshold is the largest T <=
// the double threshold, so `iou > thr` decides as the CPU does.
// RoI Align backward scatters with atomicAdd (RoIs overlap); RoI pool backward likewise.
//
// Workspace: nms, the mask n * nb 64-bit words (1.25 GB at n = 100000, as torchvision) and
// nb removed-words, allocated by the caller; the others none.
//
// Checked by tests/vision/test_ops.py and tests/vision/test_roi_align.py (marked cuda)
// against the float64 reference.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>

#include "pydl/boxes.h"
#include "pydl/boxes_cuda.h"
#include "pydl/cuda_check.h"
#include "pydl/cuda_launch.h"

namespace pydl::cuda {
namespace {

// --------------------------------------------------------------------------------------
// box_iou / generalized_box_iou: one thread per (i, j) pair
// --------------------------------------------------------------------------------------
template <typename T>
__global__ void box_iou_kernel(const T* __restrict__ a, int64_t N, const T* __restrict__ b, int64_t M,
                               T* __restrict__ out, bool generalized) {
  const int64_t total = N * M;
  for (int64_t e = grid_start(); e < total; e += grid_stride()) {
    const T* p = a + 4 * (e / M);
    const T* q = b + 4 * (e % M);
    if (!generalized) {
      out[e] = box_iou_pair(p, q);
    } else {
      out[e] = generalized_iou(p[0], p[1], p[2], p[3], box_area_clamped(p[0], p[1], p[2], p[3]), q[0], q[1], q[2],
                               q[3], box_area_clamped(q[0], q[1], q[2], q[3]));
    }
  }
}

// --------------------------------------------------------------------------------------
// nms
// --------------------------------------------------------------------------------------
// grid (nb column blocks, nb row blocks), 64 threads. boxes (n, 4) in score order; cls (n,)
// categories in score order or nullptr.
template <typename T>
__global__ void nms_mask_kernel(const T* __restrict__ boxes, const int64_t* __restrict__ cls, int64_t n, int64_t nb,
                                T thr, uint64_t* __restrict__ mask) {
  const int64_t row_blk = blockIdx.y, col_blk = blockIdx.x;
  if (col_blk < row_blk) return;  // never read: the sweep only ORs words of later blocks
  __shared__ T cb[64][5];         // the column block: x1, y1, x2, y2, clamped area
  __shared__ int64_t cc[64];      // its categories
  const int t = threadIdx.x;
  const int64_t col0 = col_blk * 64;
  const int cn = static_cast<int>(n - col0 < 64 ? n - col0 : 64);
  if (t < cn) {
    const T* q = boxes + 4 * (col0 + t);
    cb[t][0] = q[0], cb[t][1] = q[1], cb[t][2] = q[2], cb[t][3] = q[3];
    cb[t][4] = box_area_clamped(q[0], q[1], q[2], q[3]);
    cc[t] = cls ? cls[col0 + t] : 0;
  }
  __syncthreads();
  const int64_t i = row_blk * 64 + t;
  if (i >= n) return;
  const T* p = boxes + 4 * i;
  const T ax1 = p[0], ay1 = p[1], ax2 = p[2], ay2 = p[3];
  const T area = box_area_clamped(ax1, ay1, ax2, ay2);
  const int64_t ci = cls ? cls[i] : 0;
  const int start = row_blk == col_blk ? t + 1 : 0;  // on the diagonal: only later boxes
  uint64_t word = 0;
  for (int j = start; j < cn; ++j) {
    if (cc[j] != ci) continue;
    const T inter = box_intersection(ax1, ay1, ax2, ay2, cb[j][0], cb[j][1], cb[j][2], cb[j][3]);
    if (iou_from_parts(inter, area, cb[j][4]) > thr) word |= uint64_t(1) << j;
  }
  mask[i * nb + col_blk] = word;
}

// One block. removed (nb,) zeroed by the caller; keep_flag (n,) written here.
__global__ void nms_sweep_kernel(const uint64_t* __restrict__ mask, int64_t n, int64_t nb, uint64_t* removed,
                                 uint8_t* __restrict__ keep_flag) {
  __shared__ uint64_t diag[64];
  __shared__ uint64_t kept_s;
  const int tid = threadIdx.x, nt = blockDim.x;
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t row0 = b * 64;
    const int valid = static_cast<int>(n - row0 < 64 ? n - row0 : 64);
    if (tid < 64) diag[tid] = tid < valid ? mask[(row0 + tid) * nb + b] : 0;
    __syncthreads();
    if (tid == 0) {
      uint64_t word = removed[b], kept = 0;
      for (int bit = 0; bit < valid; ++bit) {
        if (word >> bit & 1) continue;
        kept |= uint64_t(1) << bit;
        word |= diag[bit];
      }
      kept_s = kept;
    }
    __syncthreads();
    const uint64_t kept = kept_s;
    if (tid < valid) keep_flag[row0 + tid] = static_cast<uint8_t>(kept >> tid & 1);
    if (kept) {
      for (int64_t w = b + 1 + tid; w < nb; w += nt) {
        uint64_t acc = removed[w];
        for (uint64_t k = kept; k && acc != ~uint64_t(0); k &= k - 1) {
          const int bit = __ffsll(static_cast<long long>(k)) - 1;
          acc |= mask[(row0 + bit) * nb + w];
        }
        removed[w] = acc;
      }
    }
    __syncthreads();  // removed[] of later blocks complete; diag and kept_s free again
  }
}

// --------------------------------------------------------------------------------------
// RoI Align / RoI pool: one thread per output bin (k, c, ph, pw)
// --------------------------------------------------------------------------------------
// The output bin (k, c, ph, pw) of flat index e into (K, C, PH, PW).
struct Bin {
  int64_t k, c, ph, pw;
};

__device__ inline Bin bin_of(int64_t e, int64_t C, int64_t PH, int64_t PW) {
  return Bin{e / (PW * PH * C), (e / (PW * PH)) % C, (e / PW) % PH, e % PW};
}

template <typename T>
__global__ void roi_align_forward_kernel(const T* __restrict__ x, const double* __restrict__ rois, int64_t K,
                                         int64_t C, int64_t H, int64_t W, int64_t PH, int64_t PW, double scale,
                                         int64_t sampling, bool aligned, T* __restrict__ out) {
  const int64_t total = K * C * PH * PW;
  for (int64_t e = grid_start(); e < total; e += grid_stride()) {
    const Bin o = bin_of(e, C, PH, PW);
    const RoiAlignGeom g = roi_align_geom(rois + 5 * o.k, scale, PH, PW, sampling, aligned);
    const T* plane = x + (g.n * C + o.c) * H * W;
    double acc = 0.0;
    for_each_bin_tap(g, H, W, o.ph, o.pw, [&](int64_t off, double wt) { acc += wt * static_cast<double>(plane[off]); });
    out[e] = static_cast<T>(acc);
  }
}

template <typename T>
__global__ void roi_align_backward_kernel(const T* __restrict__ g, const double* __restrict__ rois, int64_t K,
                                          int64_t C, int64_t H, int64_t W, int64_t PH, int64_t PW, double scale,
                                          int64_t sampling, bool aligned, T* __restrict__ dx) {
  const int64_t total = K * C * PH * PW;
  for (int64_t e = grid_start(); e < total; e += grid_stride()) {
    const Bin o = bin_of(e, C, PH, PW);
    const RoiAlignGeom geo = roi_align_geom(rois + 5 * o.k, scale, PH, PW, sampling, aligned);
    T* plane = dx + (geo.n * C + o.c) * H * W;
    const double ge = static_cast<double>(g[e]);
    for_each_bin_tap(geo, H, W, o.ph, o.pw,
                     [&](int64_t off, double wt) { atomicAdd(plane + off, static_cast<T>(wt * ge)); });
  }
}

template <typename T>
__global__ void roi_pool_forward_kernel(const T* __restrict__ x, const double* __restrict__ rois, int64_t K,
                                        int64_t C, int64_t H, int64_t W, int64_t PH, int64_t PW, double scale,
                                        T* __restrict__ out, int64_t* __restrict__ argmax) {
  const int64_t total = K * C * PH * PW;
  for (int64_t e = grid_start(); e < total; e += grid_stride()) {
    const Bin o = bin_of(e, C, PH, PW);
    const double* rk = rois + 5 * o.k;
    const RoiPoolGeom geo = roi_pool_geom(rk, scale, PH, PW);
    T best = T(0);
    int64_t idx = -1;  // an empty bin (or a non-finite RoI): 0 and -1
    if (geo.valid) {
      int64_t hs, he, ws, we;
      roi_pool_bin(o.ph, geo.bh, geo.sh, H, hs, he);
      roi_pool_bin(o.pw, geo.bw, geo.sw, W, ws, we);
      const T* plane = x + (static_cast<int64_t>(rk[0]) * C + o.c) * H * W;
      for (int64_t h = hs; h < he; ++h)
        for (int64_t w = ws; w < we; ++w)
          if (idx < 0 || plane[h * W + w] > best) best = plane[h * W + w], idx = h * W + w;  // first on ties
      if (idx < 0) best = T(0);
    }
    out[e] = best;
    argmax[e] = idx;
  }
}

template <typename T>
__global__ void roi_pool_backward_kernel(const T* __restrict__ g, const int64_t* __restrict__ argmax,
                                         const double* __restrict__ rois, int64_t K, int64_t C, int64_t HW,
                                         int64_t PHW, T* __restrict__ dx) {
  const int64_t total = K * C * PHW;
  for (int64_t e = grid_start(); e < total; e += grid_stride()) {
    const int64_t a = argmax[e];
    if (a < 0) continue;
    const int64_t c = (e / PHW) % C, k = e / (PHW * C);
    atomicAdd(dx + (static_cast<int64_t>(rois[5 * k]) * C + c) * HW + a, g[e]);
  }
}

// The largest T <= thr: `(T)iou > thr_T` then decides exactly as `(double)iou > thr`.
template <typename T>
T threshold_as(double thr) {
  T t = static_cast<T>(thr);
  if (std::isfinite(thr) && static_cast<double>(t) > thr) t = std::nextafter(t, -std::numeric_limits<T>::infinity());
  return t;
}

}  // namespace

template <typename T>
void box_iou(const T* a, int64_t N, const T* b, int64_t M, T* out, bool generalized, cudaStream_t stream) {
  if (N * M == 0) return;
  box_iou_kernel<T><<<blocks_for(N * M), kThreads, 0, stream>>>(a, N, b, M, out, generalized);
  PYDL_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void nms_sorted(const T* boxes, const int64_t* cls, int64_t n, double thr, uint64_t* mask, uint64_t* removed,
                uint8_t* keep_flag, cudaStream_t stream) {
  if (n == 0) return;
  const int64_t nb = (n + 63) / 64;
  if (nb > 65535) throw std::invalid_argument("nms (cuda): at most 65535 * 64 boxes per call");
  PYDL_CUDA_CHECK(cudaMemsetAsync(removed, 0, sizeof(uint64_t) * nb, stream));
  dim3 grid(static_cast<unsigned>(nb), static_cast<unsigned>(nb));
  nms_mask_kernel<T><<<grid, 64, 0, stream>>>(boxes, cls, n, nb, threshold_as<T>(thr), mask);
  PYDL_CUDA_CHECK(cudaGetLastError());
  nms_sweep_kernel<<<1, 1024, 0, stream>>>(mask, n, nb, removed, keep_flag);
  PYDL_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void roi_align_forward(const T* x, const double* rois, int64_t K, int64_t C, int64_t H, int64_t W, int64_t PH,
                       int64_t PW, double scale, int64_t sampling, bool aligned, T* out, cudaStream_t stream) {
  const int64_t total = K * C * PH * PW;
  if (total == 0) return;
  if (H * W == 0) {
    PYDL_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(T) * total, stream));
    return;
  }
  roi_align_forward_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(x, rois, K, C, H, W, PH, PW, scale,
                                                                          sampling, aligned, out);
  PYDL_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void roi_align_backward(const T* g, const double* rois, int64_t K, int64_t N, int64_t C, int64_t H, int64_t W,
                        int64_t PH, int64_t PW, double scale, int64_t sampling, bool aligned, T* dx,
                        cudaStream_t stream) {
  if (N * C * H * W == 0) return;
  PYDL_CUDA_CHECK(cudaMemsetAsync(dx, 0, sizeof(T) * N * C * H * W, stream));
  const int64_t total = K * C * PH * PW;
  if (total == 0) return;
  roi_align_backward_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(g, rois, K, C, H, W, PH, PW, scale,
                                                                           sampling, aligned, dx);
  PYDL_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void roi_pool_forward(const T* x, const double* rois, int64_t K, int64_t C, int64_t H, int64_t W, int64_t PH,
                      int64_t PW, double scale, T* out, int64_t* argmax, cudaStream_t stream) {
  const int64_t total = K * C * PH * PW;
  if (total == 0) return;
  roi_pool_forward_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(x, rois, K, C, H, W, PH, PW, scale, out,
                                                                         argmax);
  PYDL_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void roi_pool_backward(const T* g, const int64_t* argmax, const double* rois, int64_t K, int64_t N, int64_t C,
                       int64_t H, int64_t W, int64_t PH, int64_t PW, T* dx, cudaStream_t stream) {
  if (N * C * H * W == 0) return;
  PYDL_CUDA_CHECK(cudaMemsetAsync(dx, 0, sizeof(T) * N * C * H * W, stream));
  const int64_t total = K * C * PH * PW;
  if (total == 0) return;
  roi_pool_backward_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(g, argmax, rois, K, C, H * W, PH * PW,
                                                                          dx);
  PYDL_CUDA_CHECK(cudaGetLastError());
}

#define PYDL_BOXES_INSTANTIATE(T)                                                                                  \
  template void box_iou<T>(const T*, int64_t, const T*, int64_t, T*, bool, cudaStream_t);                          \
  template void nms_sorted<T>(const T*, const int64_t*, int64_t, double, uint64_t*, uint64_t*, uint8_t*,           \
                              cudaStream_t);                                                                       \
  template void roi_align_forward<T>(const T*, const double*, int64_t, int64_t, int64_t, int64_t, int64_t,         \
                                     int64_t, double, int64_t, bool, T*, cudaStream_t);                            \
  template void roi_align_backward<T>(const T*, const double*, int64_t, int64_t, int64_t, int64_t, int64_t,        \
                                      int64_t, int64_t, double, int64_t, bool, T*, cudaStream_t);                  \
  template void roi_pool_forward<T>(const T*, const double*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, \
                                    double, T*, int64_t*, cudaStream_t);                                           \
  template void roi_pool_backward<T>(const T*, const int64_t*, const double*, int64_t, int64_t, int64_t, int64_t,  \
                                     int64_t, int64_t, int64_t, T*, cudaStream_t);
PYDL_BOXES_INSTANTIATE(float)
PYDL_BOXES_INSTANTIATE(double)
#undef PYDL_BOXES_INSTANTIATE

}  // namespace pydl::cuda
