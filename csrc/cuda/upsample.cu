// up-sampling on the GPU: nearest and bilinear resize (forward and backward) and pixel
// (un)shuffle.
//
// Legend: P = N * C contiguous planes, (H, W) input plane, (OH, OW) output plane; scale_h,
// scale_w: the caller's scale_factor per axis, or <= 0 when the output size was given.
//
//   nearest:  out[p, i, j] = x[p, src_h(i), src_w(j)]
//   bilinear: out[p, i, j] = sum over the 2 x 2 taps of l_h * l_w * x[p, h, w]
//   shuffle:  out[b, c, h r + i, w r + j] = x[b, c r^2 + i r + j, h, w]  (unshuffle: inverse)
//
// The source-index rules are the CPU's own (pydl/upsample.h: nearest_source_index,
// bilinear_tap, PYDL_HOST_DEVICE). Forward: one thread per output element. Backward
// gathers, one thread per input element, so no atomics and the same sum on every run:
// along each axis the source index is a non-decreasing function of the output index, so
// the outputs that read input i form one contiguous range, found by binary search over
// the same rule (nearest: src == i; bilinear: i0 in {i - 1, i}, whose taps may touch i).
//
// Workspace: none. Checked by tests/kernels/test_upsample.py (marked cuda) against the
// float64 reference.
#include "pydl/cuda_check.h"
#include "pydl/cuda_launch.h"
#include "pydl/upsample.h"
#include "pydl/upsample_cuda.h"

namespace pydl::cuda {
namespace {

// The smallest o in [0, O] with key(o) >= target (O when there is none); key non-decreasing.
template <typename Key>
__device__ int64_t first_at_least(int64_t target, int64_t O, Key key) {
  int64_t lo = 0, hi = O;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (key(mid) >= target) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

template <typename T>
__global__ void nearest_forward_kernel(ResizeShape s, const T* __restrict__ x, T* __restrict__ out) {
  const int64_t n = s.P * s.OH * s.OW;
  for (int64_t e = grid_start(); e < n; e += grid_stride()) {
    const int64_t j = e % s.OW, i = (e / s.OW) % s.OH, p = e / (s.OW * s.OH);
    const int64_t h = nearest_source_index(i, s.H, s.OH, s.scale_h), w = nearest_source_index(j, s.W, s.OW, s.scale_w);
    out[e] = x[(p * s.H + h) * s.W + w];
  }
}

template <typename T>
__global__ void nearest_backward_kernel(ResizeShape s, const T* __restrict__ g, T* __restrict__ grad_in) {
  const int64_t n = s.P * s.H * s.W;
  for (int64_t e = grid_start(); e < n; e += grid_stride()) {
    const int64_t w = e % s.W, h = (e / s.W) % s.H, p = e / (s.W * s.H);
    auto src_h = [&](int64_t i) { return nearest_source_index(i, s.H, s.OH, s.scale_h); };
    auto src_w = [&](int64_t j) { return nearest_source_index(j, s.W, s.OW, s.scale_w); };
    const int64_t i0 = first_at_least(h, s.OH, src_h), i1 = first_at_least(h + 1, s.OH, src_h);
    const int64_t j0 = first_at_least(w, s.OW, src_w), j1 = first_at_least(w + 1, s.OW, src_w);
    const T* gp = g + p * s.OH * s.OW;
    T sum = 0;
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t j = j0; j < j1; ++j) sum += gp[i * s.OW + j];
    grad_in[e] = sum;
  }
}

template <typename T>
__global__ void bilinear_forward_kernel(ResizeShape s, bool align_corners, const T* __restrict__ x,
                                        T* __restrict__ out) {
  const int64_t n = s.P * s.OH * s.OW;
  for (int64_t e = grid_start(); e < n; e += grid_stride()) {
    const int64_t j = e % s.OW, i = (e / s.OW) % s.OH, p = e / (s.OW * s.OH);
    const LinearTap<T> r = bilinear_tap<T>(i, s.H, s.OH, align_corners, s.scale_h);
    const LinearTap<T> c = bilinear_tap<T>(j, s.W, s.OW, align_corners, s.scale_w);
    const T* x0 = x + (p * s.H + r.i0) * s.W;
    const T* x1 = x + (p * s.H + r.i1) * s.W;
    out[e] = r.l0 * (c.l0 * x0[c.i0] + c.l1 * x0[c.i1]) + r.l1 * (c.l0 * x1[c.i0] + c.l1 * x1[c.i1]);
  }
}

// The weight with which output o's taps read input i along one axis (both taps may be i at the edge).
template <typename T>
__device__ __forceinline__ T tap_weight(const LinearTap<T>& t, int64_t i) {
  return (t.i0 == i ? t.l0 : T(0)) + (t.i1 == i ? t.l1 : T(0));
}

template <typename T>
__global__ void bilinear_backward_kernel(ResizeShape s, bool align_corners, const T* __restrict__ g,
                                         T* __restrict__ grad_in) {
  const int64_t n = s.P * s.H * s.W;
  for (int64_t e = grid_start(); e < n; e += grid_stride()) {
    const int64_t w = e % s.W, h = (e / s.W) % s.H, p = e / (s.W * s.H);
    // Outputs whose first tap is h - 1 or h: the only ones that may read h (i1 <= i0 + 1).
    auto i0_h = [&](int64_t i) { return bilinear_tap<T>(i, s.H, s.OH, align_corners, s.scale_h).i0; };
    auto i0_w = [&](int64_t j) { return bilinear_tap<T>(j, s.W, s.OW, align_corners, s.scale_w).i0; };
    const int64_t ia = first_at_least(h - 1, s.OH, i0_h), ib = first_at_least(h + 1, s.OH, i0_h);
    const int64_t ja = first_at_least(w - 1, s.OW, i0_w), jb = first_at_least(w + 1, s.OW, i0_w);
    const T* gp = g + p * s.OH * s.OW;
    T sum = 0;
    for (int64_t i = ia; i < ib; ++i) {
      const T wh = tap_weight(bilinear_tap<T>(i, s.H, s.OH, align_corners, s.scale_h), h);
      if (wh == T(0)) continue;
      T row = 0;
      for (int64_t j = ja; j < jb; ++j)
        row += tap_weight(bilinear_tap<T>(j, s.W, s.OW, align_corners, s.scale_w), w) * gp[i * s.OW + j];
      sum += wh * row;
    }
    grad_in[e] = sum;
  }
}

// Element e of the large layout (B, C, H r, W r) <-> the small one (B, C r^2, H, W).
template <typename T>
__global__ void pixel_shuffle_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t B, int64_t C, int64_t H,
                                     int64_t W, int64_t r, bool inverse) {
  const int64_t Wr = W * r, Hr = H * r, n = B * C * Hr * Wr;
  for (int64_t e = grid_start(); e < n; e += grid_stride()) {
    const int64_t col = e % Wr, row = (e / Wr) % Hr, bc = e / (Wr * Hr);  // bc = b * C + c
    const int64_t h = row / r, i = row % r, w = col / r, j = col % r;
    const int64_t small = ((bc * r * r + i * r + j) * H + h) * W + w;
    if (!inverse) y[e] = x[small];
    else y[small] = x[e];
  }
}

}  // namespace

template <typename T>
void upsample_nearest2d_forward(const ResizeShape& s, const T* x, T* out, cudaStream_t stream) {
  launch_elementwise(s.P * s.OH * s.OW, stream, nearest_forward_kernel<T>, s, x, out);
}

template <typename T>
void upsample_nearest2d_backward(const ResizeShape& s, const T* g, T* grad_in, cudaStream_t stream) {
  launch_elementwise(s.P * s.H * s.W, stream, nearest_backward_kernel<T>, s, g, grad_in);
}

template <typename T>
void upsample_bilinear2d_forward(const ResizeShape& s, bool align_corners, const T* x, T* out, cudaStream_t stream) {
  launch_elementwise(s.P * s.OH * s.OW, stream, bilinear_forward_kernel<T>, s, align_corners, x, out);
}

template <typename T>
void upsample_bilinear2d_backward(const ResizeShape& s, bool align_corners, const T* g, T* grad_in,
                                  cudaStream_t stream) {
  launch_elementwise(s.P * s.H * s.W, stream, bilinear_backward_kernel<T>, s, align_corners, g, grad_in);
}

template <typename T>
void pixel_shuffle(const T* x, T* y, int64_t B, int64_t C, int64_t H, int64_t W, int64_t r, bool inverse,
                   cudaStream_t stream) {
  launch_elementwise(B * C * H * W * r * r, stream, pixel_shuffle_kernel<T>, x, y, B, C, H, W, r, inverse);
}

#define PYDL_UPSAMPLE_INSTANTIATE(T)                                                                           \
  template void upsample_nearest2d_forward<T>(const ResizeShape&, const T*, T*, cudaStream_t);                 \
  template void upsample_nearest2d_backward<T>(const ResizeShape&, const T*, T*, cudaStream_t);                \
  template void upsample_bilinear2d_forward<T>(const ResizeShape&, bool, const T*, T*, cudaStream_t);          \
  template void upsample_bilinear2d_backward<T>(const ResizeShape&, bool, const T*, T*, cudaStream_t);         \
  template void pixel_shuffle<T>(const T*, T*, int64_t, int64_t, int64_t, int64_t, int64_t, bool, cudaStream_t);
PYDL_UPSAMPLE_INSTANTIATE(float)
PYDL_UPSAMPLE_INSTANTIATE(double)
#undef PYDL_UPSAMPLE_INSTANTIATE

}  // namespace pydl::cuda
