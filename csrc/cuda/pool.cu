// pooling on the GPU: max (with the arg-max), average, adaptive average / max, fractional
// max, max-unpooling; forward and backward.
//
// Legend: P = N * C contiguous planes, (H, W) input plane, (OH, OW) output plane, window
// (KH, KW), stride (SH, SW), padding (PH, PW), dilation (DH, DW); indices are flat
// positions h * W + w inside a plane (int64), as PyTorch's return_indices gives them.
//
//   max:      out = max over the window (padding never wins), idx = where it was;
//             backward: grad_in[p, idx] += grad_out            (the max routes)
//   avg:      out = sum of the window / divisor;  backward spreads grad_out / divisor
//   adaptive: window i of n over L is [floor(iL/n), ceil((i+1)L/n))
//   unpool:   out[p, idx] = x (the later input in scan order wins a shared index)
//
// Algorithm: one thread per output element for the forwards (a grid-stride loop, int64
// indices), scanning its window in row order with the CPU's comparison, so ties and NaN
// resolve exactly as on the CPU. Backwards gather where the windows are known (average,
// adaptive average: each input pixel sums the outputs whose window holds it; no atomics,
// deterministic) and scatter with atomicAdd where only the indices are (max routing: any
// index may repeat). Unpooling resolves repeated indices deterministically: an atomicMax
// pass records the last input for each output, a second pass copies it.
// The window and size rules are the CPU's own (pydl/pool.h, PYDL_HOST_DEVICE).
//
// Workspace: none, except max_unpool2d's (P, OH * OW) int64 winners (allocated by the caller).
// Checked by tests/kernels/test_pool.py (marked cuda) against the float64 reference.
#include <cmath>

#include "pydl/cuda_check.h"
#include "pydl/cuda_launch.h"
#include "pydl/pool_cuda.h"

namespace pydl::cuda {
namespace {

// Max over rows h0 + i DH (i < KH) and columns w0 + j DW (j < KW) of plane xp, positions
// outside the plane skipped. best_i stays -1 only for a window with no input in it.
template <typename T>
__device__ void window_max(const T* xp, int64_t H, int64_t W, int64_t h0, int64_t KH, int64_t DH, int64_t w0,
                           int64_t KW, int64_t DW, T& best, int64_t& best_i) {
  best = T(-INFINITY);
  best_i = -1;
  for (int64_t i = 0; i < KH; ++i) {
    const int64_t h = h0 + i * DH;
    if (h < 0 || h >= H) continue;
    for (int64_t j = 0; j < KW; ++j) {
      const int64_t w = w0 + j * DW;
      if (w < 0 || w >= W) continue;
      const T v = xp[h * W + w];
      // the first input in the window is kept even when it is -inf (the reference's start)
      if (best_i < 0 || max_pool_better(v, best)) {
        best = v;
        best_i = h * W + w;
      }
    }
  }
}

template <typename T>
__global__ void max_pool2d_forward_kernel(Pool2dShape s, const T* __restrict__ x, T* __restrict__ out,
                                          int64_t* __restrict__ idx) {
  const int64_t n = s.P * s.OH * s.OW;
  for (int64_t i = grid_start(); i < n; i += grid_stride()) {
    const int64_t ow = i % s.OW, oh = (i / s.OW) % s.OH, p = i / (s.OW * s.OH);
    T best;
    int64_t best_i;
    window_max(x + p * s.H * s.W, s.H, s.W, oh * s.SH - s.PH, s.KH, s.DH, ow * s.SW - s.PW, s.KW, s.DW, best, best_i);
    out[i] = best;
    idx[i] = best_i < 0 ? 0 : best_i;
  }
}

template <typename T>
__global__ void max_pool2d_backward_kernel(int64_t P, int64_t HW, int64_t OHW, const T* __restrict__ g,
                                           const int64_t* __restrict__ idx, T* __restrict__ grad_in) {
  const int64_t n = P * OHW;
  for (int64_t i = grid_start(); i < n; i += grid_stride()) atomicAdd(grad_in + (i / OHW) * HW + idx[i], g[i]);
}

// winner[p, idx] = the largest input position j (scan order) that points there.
__global__ void max_unpool2d_winner_kernel(int64_t P, int64_t HW, int64_t OHW, const int64_t* __restrict__ idx,
                                           int64_t* __restrict__ winner) {
  const int64_t n = P * HW;
  for (int64_t i = grid_start(); i < n; i += grid_stride()) {
    const int64_t p = i / HW, j = i % HW;
    atomicMax(reinterpret_cast<long long*>(winner + p * OHW + idx[i]), static_cast<long long>(j));
  }
}

template <typename T>
__global__ void max_unpool2d_gather_kernel(int64_t P, int64_t HW, int64_t OHW, const T* __restrict__ x,
                                           const int64_t* __restrict__ winner, T* __restrict__ out) {
  const int64_t n = P * OHW;
  for (int64_t i = grid_start(); i < n; i += grid_stride()) {
    const int64_t j = winner[i];
    out[i] = j >= 0 ? x[(i / OHW) * HW + j] : T(0);
  }
}

template <typename T>
__global__ void max_unpool2d_backward_kernel(int64_t P, int64_t HW, int64_t OHW, const T* __restrict__ g,
                                             const int64_t* __restrict__ idx, T* __restrict__ grad_in) {
  const int64_t n = P * HW;
  for (int64_t i = grid_start(); i < n; i += grid_stride()) grad_in[i] = g[(i / HW) * OHW + idx[i]];
}

template <typename T>
__global__ void avg_pool2d_forward_kernel(Pool2dShape s, bool cip, int64_t dov, const T* __restrict__ x,
                                          T* __restrict__ out) {
  const int64_t n = s.P * s.OH * s.OW;
  for (int64_t i = grid_start(); i < n; i += grid_stride()) {
    const int64_t ow = i % s.OW, oh = (i / s.OW) % s.OH, p = i / (s.OW * s.OH);
    const AvgWindow a = avg_window(s, oh, ow, cip, dov);
    const T* xp = x + p * s.H * s.W;
    T sum = 0;
    for (int64_t h = a.h0; h < a.h1; ++h)
      for (int64_t w = a.w0; w < a.w1; ++w) sum += xp[h * s.W + w];
    out[i] = (a.h0 < a.h1 && a.w0 < a.w1) ? sum / static_cast<T>(a.divisor) : T(0);
  }
}

// Outputs o along one axis whose unclipped window [o S - P, o S - P + K) may hold input i.
__device__ __forceinline__ void covering(int64_t i, int64_t K, int64_t S, int64_t P, int64_t O, int64_t& lo,
                                         int64_t& hi) {
  const int64_t first = i + P - K;  // the window must start after this
  lo = first < 0 ? 0 : first / S + 1;
  hi = (i + P) / S;
  if (hi > O - 1) hi = O - 1;
}

template <typename T>
__global__ void avg_pool2d_backward_kernel(Pool2dShape s, bool cip, int64_t dov, const T* __restrict__ g,
                                           T* __restrict__ grad_in) {
  const int64_t n = s.P * s.H * s.W;
  for (int64_t i = grid_start(); i < n; i += grid_stride()) {
    const int64_t iw = i % s.W, ih = (i / s.W) % s.H, p = i / (s.W * s.H);
    const T* gp = g + p * s.OH * s.OW;
    int64_t oh0, oh1, ow0, ow1;
    covering(ih, s.KH, s.SH, s.PH, s.OH, oh0, oh1);
    covering(iw, s.KW, s.SW, s.PW, s.OW, ow0, ow1);
    T sum = 0;
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const AvgWindow a = avg_window(s, oh, ow, cip, dov);
        if (ih >= a.h0 && ih < a.h1 && iw >= a.w0 && iw < a.w1) sum += gp[oh * s.OW + ow] / static_cast<T>(a.divisor);
      }
    grad_in[i] = sum;
  }
}

template <typename T>
__global__ void adaptive_avg_forward_kernel(Pool2dShape s, const T* __restrict__ x, T* __restrict__ out) {
  const int64_t n = s.P * s.OH * s.OW;
  for (int64_t i = grid_start(); i < n; i += grid_stride()) {
    const int64_t ow = i % s.OW, oh = (i / s.OW) % s.OH, p = i / (s.OW * s.OH);
    const int64_t h0 = adaptive_start(oh, s.H, s.OH), h1 = adaptive_end(oh, s.H, s.OH);
    const int64_t w0 = adaptive_start(ow, s.W, s.OW), w1 = adaptive_end(ow, s.W, s.OW);
    const T* xp = x + p * s.H * s.W;
    T sum = 0;
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) sum += xp[h * s.W + w];
    out[i] = sum / static_cast<T>((h1 - h0) * (w1 - w0));
  }
}

// Adaptive windows along one axis (L inputs, O outputs) that may hold input i: window o
// starts at or before i when o <= ((i + 1) O - 1) / L and ends after i when o >= i O / L.
__device__ __forceinline__ void adaptive_covering(int64_t i, int64_t L, int64_t O, int64_t& lo, int64_t& hi) {
  lo = i * O / L;
  hi = ((i + 1) * O - 1) / L;
  if (hi > O - 1) hi = O - 1;
}

template <typename T>
__global__ void adaptive_avg_backward_kernel(Pool2dShape s, const T* __restrict__ g, T* __restrict__ grad_in) {
  const int64_t n = s.P * s.H * s.W;
  for (int64_t i = grid_start(); i < n; i += grid_stride()) {
    const int64_t iw = i % s.W, ih = (i / s.W) % s.H, p = i / (s.W * s.H);
    const T* gp = g + p * s.OH * s.OW;
    int64_t oh0, oh1, ow0, ow1;
    adaptive_covering(ih, s.H, s.OH, oh0, oh1);
    adaptive_covering(iw, s.W, s.OW, ow0, ow1);
    T sum = 0;
    for (int64_t oh = oh0; oh <= oh1; ++oh) {
      const int64_t h0 = adaptive_start(oh, s.H, s.OH), h1 = adaptive_end(oh, s.H, s.OH);
      if (ih < h0 || ih >= h1) continue;
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const int64_t w0 = adaptive_start(ow, s.W, s.OW), w1 = adaptive_end(ow, s.W, s.OW);
        if (iw >= w0 && iw < w1) sum += gp[oh * s.OW + ow] / static_cast<T>((h1 - h0) * (w1 - w0));
      }
    }
    grad_in[i] = sum;
  }
}

template <typename T>
__global__ void adaptive_max_forward_kernel(Pool2dShape s, const T* __restrict__ x, T* __restrict__ out,
                                            int64_t* __restrict__ idx) {
  const int64_t n = s.P * s.OH * s.OW;
  for (int64_t i = grid_start(); i < n; i += grid_stride()) {
    const int64_t ow = i % s.OW, oh = (i / s.OW) % s.OH, p = i / (s.OW * s.OH);
    const int64_t h0 = adaptive_start(oh, s.H, s.OH), w0 = adaptive_start(ow, s.W, s.OW);
    T best;
    int64_t best_i;
    window_max(x + p * s.H * s.W, s.H, s.W, h0, adaptive_end(oh, s.H, s.OH) - h0, 1, w0,
               adaptive_end(ow, s.W, s.OW) - w0, 1, best, best_i);
    out[i] = best;
    idx[i] = best_i < 0 ? 0 : best_i;
  }
}

template <typename T>
__global__ void fractional_max_forward_kernel(Pool2dShape s, const T* __restrict__ samples, const T* __restrict__ x,
                                              T* __restrict__ out, int64_t* __restrict__ idx) {
  const int64_t n = s.P * s.OH * s.OW;
  for (int64_t i = grid_start(); i < n; i += grid_stride()) {
    const int64_t ow = i % s.OW, oh = (i / s.OW) % s.OH, p = i / (s.OW * s.OH);
    const int64_t h0 = fractional_start<T>(samples[2 * p + 1], oh, s.H, s.OH, s.KH);
    const int64_t w0 = fractional_start<T>(samples[2 * p], ow, s.W, s.OW, s.KW);
    T best;
    int64_t best_i;
    window_max(x + p * s.H * s.W, s.H, s.W, h0, s.KH, 1, w0, s.KW, 1, best, best_i);
    out[i] = best;
    idx[i] = best_i < 0 ? 0 : best_i;
  }
}

}  // namespace

template <typename T>
void max_pool2d_forward(const Pool2dShape& s, const T* x, T* out, int64_t* idx, cudaStream_t stream) {
  launch_elementwise(s.P * s.OH * s.OW, stream, max_pool2d_forward_kernel<T>, s, x, out, idx);
}

template <typename T>
void max_pool2d_backward(int64_t P, int64_t HW, int64_t OHW, const T* g, const int64_t* idx, T* grad_in,
                         cudaStream_t stream) {
  if (P * HW == 0) return;
  PYDL_CUDA_CHECK(cudaMemsetAsync(grad_in, 0, sizeof(T) * P * HW, stream));
  launch_elementwise(P * OHW, stream, max_pool2d_backward_kernel<T>, P, HW, OHW, g, idx, grad_in);
}

template <typename T>
void max_unpool2d_forward(int64_t P, int64_t HW, int64_t OHW, const T* x, const int64_t* idx, int64_t* winner,
                          T* out, cudaStream_t stream) {
  if (P * OHW == 0) return;
  PYDL_CUDA_CHECK(cudaMemsetAsync(winner, 0xff, sizeof(int64_t) * P * OHW, stream));  // all -1: no input yet
  launch_elementwise(P * HW, stream, max_unpool2d_winner_kernel, P, HW, OHW, idx, winner);
  launch_elementwise(P * OHW, stream, max_unpool2d_gather_kernel<T>, P, HW, OHW, x, winner, out);
}

template <typename T>
void max_unpool2d_backward(int64_t P, int64_t HW, int64_t OHW, const T* g, const int64_t* idx, T* grad_in,
                           cudaStream_t stream) {
  launch_elementwise(P * HW, stream, max_unpool2d_backward_kernel<T>, P, HW, OHW, g, idx, grad_in);
}

template <typename T>
void avg_pool2d_forward(const Pool2dShape& s, bool count_include_pad, int64_t divisor_override, const T* x, T* out,
                        cudaStream_t stream) {
  launch_elementwise(s.P * s.OH * s.OW, stream, avg_pool2d_forward_kernel<T>, s, count_include_pad, divisor_override,
                     x, out);
}

template <typename T>
void avg_pool2d_backward(const Pool2dShape& s, bool count_include_pad, int64_t divisor_override, const T* g,
                         T* grad_in, cudaStream_t stream) {
  launch_elementwise(s.P * s.H * s.W, stream, avg_pool2d_backward_kernel<T>, s, count_include_pad, divisor_override,
                     g, grad_in);
}

template <typename T>
void adaptive_avg_pool2d_forward(const Pool2dShape& s, const T* x, T* out, cudaStream_t stream) {
  launch_elementwise(s.P * s.OH * s.OW, stream, adaptive_avg_forward_kernel<T>, s, x, out);
}

template <typename T>
void adaptive_avg_pool2d_backward(const Pool2dShape& s, const T* g, T* grad_in, cudaStream_t stream) {
  const int64_t n = s.P * s.H * s.W;
  if (n > 0 && s.OH * s.OW == 0) {  // no window: no gradient
    PYDL_CUDA_CHECK(cudaMemsetAsync(grad_in, 0, sizeof(T) * n, stream));
    return;
  }
  launch_elementwise(n, stream, adaptive_avg_backward_kernel<T>, s, g, grad_in);
}

template <typename T>
void adaptive_max_pool2d_forward(const Pool2dShape& s, const T* x, T* out, int64_t* idx, cudaStream_t stream) {
  launch_elementwise(s.P * s.OH * s.OW, stream, adaptive_max_forward_kernel<T>, s, x, out, idx);
}

template <typename T>
void fractional_max_pool2d_forward(const Pool2dShape& s, const T* samples, const T* x, T* out, int64_t* idx,
                                   cudaStream_t stream) {
  launch_elementwise(s.P * s.OH * s.OW, stream, fractional_max_forward_kernel<T>, s, samples, x, out, idx);
}

#define PYDL_POOL_INSTANTIATE(T)                                                                                    \
  template void max_pool2d_forward<T>(const Pool2dShape&, const T*, T*, int64_t*, cudaStream_t);                     \
  template void max_pool2d_backward<T>(int64_t, int64_t, int64_t, const T*, const int64_t*, T*, cudaStream_t);       \
  template void max_unpool2d_forward<T>(int64_t, int64_t, int64_t, const T*, const int64_t*, int64_t*, T*,          \
                                        cudaStream_t);                                                               \
  template void max_unpool2d_backward<T>(int64_t, int64_t, int64_t, const T*, const int64_t*, T*, cudaStream_t);     \
  template void avg_pool2d_forward<T>(const Pool2dShape&, bool, int64_t, const T*, T*, cudaStream_t);                \
  template void avg_pool2d_backward<T>(const Pool2dShape&, bool, int64_t, const T*, T*, cudaStream_t);               \
  template void adaptive_avg_pool2d_forward<T>(const Pool2dShape&, const T*, T*, cudaStream_t);                      \
  template void adaptive_avg_pool2d_backward<T>(const Pool2dShape&, const T*, T*, cudaStream_t);                     \
  template void adaptive_max_pool2d_forward<T>(const Pool2dShape&, const T*, T*, int64_t*, cudaStream_t);            \
  template void fractional_max_pool2d_forward<T>(const Pool2dShape&, const T*, const T*, T*, int64_t*, cudaStream_t);
PYDL_POOL_INSTANTIATE(float)
PYDL_POOL_INSTANTIATE(double)
#undef PYDL_POOL_INSTANTIATE

}  // namespace pydl::cuda
