// softmax family on the GPU: softmax, log_softmax, the fused cross-entropy and the
// multiclass SVM hinge loss, over the rows of a row-major (N, C) array.
//
//   softmax      y_c = exp(x_c - m) / l,      m = max_c x_c,  l = sum_c exp(x_c - m)
//                dx_c = y_c (dy_c - sum_k dy_k y_k)
//   log_softmax  y_c = (x_c - m) - log l
//                dx_c = dy_c - exp(y_c) sum_k dy_k
//   cross_entropy (PyTorch's; class-index target t, weights w, smoothing eps)
//                L = (1 - eps) w_t (lse - z_t) + eps / C sum_c w_c (lse - z_c)  (softmax.h)
//                dL/dz_c = p_c ((1 - eps) w_t + eps S_w / C) - (1 - eps) w_t [c == t] - eps / C w_c
//   svm_loss     L = sum_{c != t} max(0, s_c - s_t + margin)
//                dL/ds_c = [s_c - s_t + margin > 0] (c != t),  dL/ds_t = -sum of those
//
// Legend: N rows (batch), C columns (classes).
//
// Algorithm: a team owns a row: one warp when C <= 1024 (8 rows per block of 256), one
// block of 512 threads beyond. Each thread walks its columns (coalesced: lane j reads j,
// j + team, ...) keeping the online-softmax pair (m, l) (online_softmax_update,
// attention.h, which also gets -inf right); the team merges the pairs with
// __shfl_xor_sync (and shared memory across warps), then a second walk writes the row,
// which the first walk left in L1/L2. So 2 reads and 1 write of the row; no workspace.
// The fused cross-entropy computes the loss and the gradient of the reduced loss in the
// same pass (a third walk for the smoothing term sum_c w_c (z_c - m) when eps > 0), as on
// the CPU; its backward only scales that gradient. Row losses go to an (N,) float64
// buffer, reduced by the caller. The weight sum S_w and the mean's denominator come as
// device values (no host synchronisation).
//
// NaN / Inf, as on the CPU: a NaN or +inf in a row makes the row NaN; -inf entries get
// probability 0; a row of only -inf is NaN. Ignored cross-entropy rows get loss 0 and
// gradient 0.
//
// Checked by tests/kernels/test_softmax.py and tests/kernels/test_losses.py (marked cuda)
// against the float64 reference.
#include <cfloat>

#include "pydl/attention.h"
#include "pydl/cuda_check.h"
#include "pydl/cuda_reduce.h"
#include "pydl/softmax.h"
#include "pydl/softmax_cuda.h"

namespace pydl::cuda {
namespace {

constexpr int kThreads = 256;        // warp-per-row blocks: 8 rows each
constexpr int kRowThreads = 512;     // block-per-row blocks
constexpr int64_t kWarpRowMax = 1024;

template <typename T>
struct DeviceMath;
template <>
struct DeviceMath<float> {
  __device__ static float max(float a, float b) { return fmaxf(a, b); }
  __device__ static float exp(float a) { return expf(a); }
  __device__ static float log(float a) { return logf(a); }
  __device__ static float lowest() { return -FLT_MAX; }
};
template <>
struct DeviceMath<double> {
  __device__ static double max(double a, double b) { return fmax(a, b); }
  __device__ static double exp(double a) { return ::exp(a); }
  __device__ static double log(double a) { return ::log(a); }
  __device__ static double lowest() { return -DBL_MAX; }
};

// The running max m of a set and l = sum exp(x - m) over it.
template <typename T>
struct MaxSum {
  T m, l;
};
template <typename T>
__device__ inline MaxSum<T> shfl_xor(MaxSum<T> v, int mask) {
  return {__shfl_xor_sync(kFullWarp, v.m, mask), __shfl_xor_sync(kFullWarp, v.l, mask)};
}
template <typename T>
__device__ inline MaxSum<T> shfl_from(MaxSum<T> v, int lane) {
  return {__shfl_sync(kFullWarp, v.m, lane), __shfl_sync(kFullWarp, v.l, lane)};
}

// Adds a set with max bm and sum bl (relative to bm) to a: one online-softmax step.
template <typename T>
__device__ inline void max_sum_add(MaxSum<T>& a, T bm, T bl) {
  using M = DeviceMath<T>;
  T shift;
  online_softmax_update<T, M>(a.m, a.l, bm, shift);
  a.l += bl * M::exp(bm - shift);
}
struct MaxSumOp {
  template <typename T>
  __device__ MaxSum<T> operator()(MaxSum<T> a, MaxSum<T> b) const {
    max_sum_add(a, b.m, b.l);
    return a;
  }
};

template <typename T, typename Team>
__device__ inline MaxSum<T> row_max_sum(const T* x, int64_t C) {
  MaxSum<T> st{-INFINITY, T(0)};
  for (int64_t j = Team::rank(); j < C; j += Team::size()) max_sum_add(st, x[j], T(1));
  return Team::reduce(st, MaxSumOp{});
}

template <typename T, bool kBlock, bool kLog>
__global__ void softmax_rows(const T* __restrict__ x, T* __restrict__ y, int64_t N, int64_t C) {
  using TM = Team<kBlock>;
  using M = DeviceMath<T>;
  for (int64_t i = TM::first_row(); i < N; i += TM::row_step()) {
    const T* xr = x + i * C;
    T* yr = y + i * C;
    const MaxSum<T> st = row_max_sum<T, TM>(xr, C);
    if constexpr (kLog) {
      const T log_l = M::log(st.l);
      for (int64_t j = TM::rank(); j < C; j += TM::size()) yr[j] = (xr[j] - st.m) - log_l;
    } else {
      for (int64_t j = TM::rank(); j < C; j += TM::size()) yr[j] = M::exp(xr[j] - st.m) / st.l;
    }
  }
}

template <typename T, bool kBlock, bool kLog>
__global__ void softmax_backward_rows(const T* __restrict__ gy, const T* __restrict__ y, T* __restrict__ gx, int64_t N,
                                      int64_t C) {
  using TM = Team<kBlock>;
  using M = DeviceMath<T>;
  for (int64_t i = TM::first_row(); i < N; i += TM::row_step()) {
    const T* g = gy + i * C;
    const T* yr = y + i * C;
    T s = T(0);
    for (int64_t j = TM::rank(); j < C; j += TM::size()) s += kLog ? g[j] : g[j] * yr[j];
    s = TM::reduce(s, SumOp{});
    for (int64_t j = TM::rank(); j < C; j += TM::size())
      gx[i * C + j] = kLog ? g[j] - M::exp(yr[j]) * s : yr[j] * (g[j] - s);
  }
}

template <typename T, bool kBlock>
__global__ void cross_entropy_rows(CrossEntropyCudaArgs<T> a) {
  using TM = Team<kBlock>;
  using M = DeviceMath<T>;
  const int64_t C = a.C;
  const double eps = a.label_smoothing;
  const double S_w = a.sums[0];
  const double scale = a.mean ? 1.0 / a.sums[1] : 1.0;
  for (int64_t i = TM::first_row(); i < a.N; i += TM::row_step()) {
    const T* z = a.logits + i * C;
    T* g = a.grad + i * C;
    const int64_t t = a.target[i];
    if (t == a.ignore_index) {  // the whole team takes this branch
      for (int64_t j = TM::rank(); j < C; j += TM::size()) g[j] = T(0);
      if (TM::rank() == 0) a.row_loss[i] = 0.0;
      continue;
    }
    const MaxSum<T> st = row_max_sum<T, TM>(z, C);
    double wsum_zm = 0.0;
    if (eps != 0.0) {
      T s = T(0);
      for (int64_t j = TM::rank(); j < C; j += TM::size()) s += (a.weight ? a.weight[j] : T(1)) * (z[j] - st.m);
      wsum_zm = static_cast<double>(TM::reduce(s, SumOp{}));
    }
    const double w_t = a.weight ? static_cast<double>(a.weight[t]) : 1.0;
    const double l = static_cast<double>(st.l);
    if (TM::rank() == 0) {
      const double zt = static_cast<double>(z[t]) - static_cast<double>(st.m);
      a.row_loss[i] = cross_entropy_row_loss(::log(l), zt, wsum_zm, w_t, S_w, eps, C);
    }
    const CrossEntropyGradCoeffs k = cross_entropy_grad_coeffs(scale, eps, w_t, S_w, C, l);
    const T ta = static_cast<T>(k.a), tb = static_cast<T>(k.b);
    for (int64_t j = TM::rank(); j < C; j += TM::size()) {
      const T e = M::exp(z[j] - st.m);
      const T wj = a.weight ? a.weight[j] : T(1);
      g[j] = j == t ? static_cast<T>(k.a * static_cast<double>(e) - k.b * w_t - k.d) : ta * e - tb * wj;
    }
  }
}

template <typename T, bool kBlock>
__global__ void svm_rows(const T* __restrict__ scores, const int64_t* __restrict__ target, int64_t N, int64_t C,
                         double margin, double grad_scale, T* __restrict__ grad, double* __restrict__ row_loss) {
  using TM = Team<kBlock>;
  const T mg = static_cast<T>(margin), sc = static_cast<T>(grad_scale);
  for (int64_t i = TM::first_row(); i < N; i += TM::row_step()) {
    const T* s = scores + i * C;
    T* g = grad + i * C;
    const int64_t t = target[i];
    const T st = s[t];
    Pair<T> acc{T(0), T(0)};  // (loss, active margins)
    for (int64_t j = TM::rank(); j < C; j += TM::size()) {
      if (j == t) continue;
      const T d = (s[j] - st) + mg;
      const bool on = d > T(0);
      acc.a += on || isnan(d) ? d : T(0);  // a NaN score makes the loss NaN
      acc.b += on ? T(1) : T(0);
      g[j] = on ? sc : T(0);
    }
    acc = TM::reduce(acc, SumOp{});
    if (TM::rank() == 0) {
      row_loss[i] = static_cast<double>(acc.a);
      g[t] = static_cast<T>(-static_cast<double>(acc.b) * grad_scale);
    }
  }
}

// Launches kernel<kBlock> for N rows of C: a warp per row or a block per row.
template <typename WarpKernel, typename BlockKernel, typename... Args>
void launch_rows(int64_t N, int64_t C, WarpKernel warp_kernel, BlockKernel block_kernel, cudaStream_t stream,
                 Args... args) {
  if (N == 0) return;
  if (C <= kWarpRowMax) warp_kernel<<<grid_for(N, kThreads / kWarp), kThreads, 0, stream>>>(args...);
  else block_kernel<<<grid_for(N, 1), kRowThreads, 0, stream>>>(args...);
  PYDL_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

template <typename T>
void softmax_forward(const T* x, T* y, int64_t N, int64_t C, bool log, cudaStream_t stream) {
  if (log) launch_rows(N, C, softmax_rows<T, false, true>, softmax_rows<T, true, true>, stream, x, y, N, C);
  else launch_rows(N, C, softmax_rows<T, false, false>, softmax_rows<T, true, false>, stream, x, y, N, C);
}

template <typename T>
void softmax_backward(const T* grad_y, const T* y, T* grad_x, int64_t N, int64_t C, bool log, cudaStream_t stream) {
  if (log)
    launch_rows(N, C, softmax_backward_rows<T, false, true>, softmax_backward_rows<T, true, true>, stream, grad_y, y,
                grad_x, N, C);
  else
    launch_rows(N, C, softmax_backward_rows<T, false, false>, softmax_backward_rows<T, true, false>, stream, grad_y,
                y, grad_x, N, C);
}

template <typename T>
void cross_entropy(const CrossEntropyCudaArgs<T>& a, cudaStream_t stream) {
  launch_rows(a.N, a.C, cross_entropy_rows<T, false>, cross_entropy_rows<T, true>, stream, a);
}

template <typename T>
void svm_loss(const T* scores, const int64_t* target, int64_t N, int64_t C, double margin, double grad_scale, T* grad,
              double* row_loss, cudaStream_t stream) {
  launch_rows(N, C, svm_rows<T, false>, svm_rows<T, true>, stream, scores, target, N, C, margin, grad_scale, grad,
              row_loss);
}

#define PYDL_SOFTMAX_INSTANTIATE(T)                                                                               \
  template void softmax_forward<T>(const T*, T*, int64_t, int64_t, bool, cudaStream_t);                          \
  template void softmax_backward<T>(const T*, const T*, T*, int64_t, int64_t, bool, cudaStream_t);               \
  template void cross_entropy<T>(const CrossEntropyCudaArgs<T>&, cudaStream_t);                                   \
  template void svm_loss<T>(const T*, const int64_t*, int64_t, int64_t, double, double, T*, double*, cudaStream_t);
PYDL_SOFTMAX_INSTANTIATE(float)
PYDL_SOFTMAX_INSTANTIATE(double)
#undef PYDL_SOFTMAX_INSTANTIATE

}  // namespace pydl::cuda
