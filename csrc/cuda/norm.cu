// normalisation family on the GPU: batch_norm, layer_norm, group_norm (instance norm is
// group norm with num_groups == C), forward and backward, float32 and float64.
//
// Formulas (csrc/include/pydl/norm.h): xhat = (x - mean) * rstd, rstd = 1 / sqrt(var +
// eps) with the biased variance, y = xhat * w + b; with g = dy * w,
//   dx = rstd * (g - sum(g) / M - xhat * sum(g * xhat) / M),
// written per channel (or group) as dx = dy * A + (x - mean) * B + C.
//
// Dimension legend: N batch, C channels, L = the product of the sizes after C (H * W),
// G groups of C / G channels; layer norm: R rows (the leading axes) of D values; M = the
// number of values one mean and variance are taken over.
//
// Statistics: Welford (cuda_reduce.h) in the input's type, of the values shifted by the
// set's first element, merged across lanes with __shfl_xor_sync and across warps through
// shared memory; the mean goes back to double (K + mean of the shifted values) and is
// applied as hi + lo (split_hi_lo, norm.h), so a float32 channel of 200K values with mean
// 1e3 keeps full precision. Every reduction has a fixed order (no atomics): the results
// are the same bits on every run.
//
// Algorithm and workspace (allocated by pydl/kernels/cuda/norm.py, which also picks S):
// - batch norm: grid (C, S): block (c, s) reduces slice s of channel c's N * L values
//   (walked as (n, l) pairs, coalesced along l) into a partial state, workspace (C, S, 3);
//   one thread per channel merges its S partials in order, updates the running
//   statistics (update_running, norm.h) and writes per-channel coefficients (C, 4); an
//   element-wise kernel applies them (a block per plane when L >= 128, else one flat
//   grid-stride loop). Backward: the same (C, S) slices for sum dy and sum dy (x - mean)
//   (workspace (C, S, 2)), then coefficients, then dx.
// - layer norm: one warp per row when D <= 1024, else one block per row; forward reduces
//   then writes y (the row is re-read from L1/L2); backward reduces sum g and sum g * xhat
//   then writes dx; the parameter gradients sum columns in blocks of 32 columns x S row
//   slices (workspace (S, 2, D)), then over the slices in order.
// - group norm: one block per (n, g) group (a contiguous run of (C / G) * L values);
//   backward: one warp per (n, c) plane for its two sums (workspace (N, C, 2)), one block
//   per group for dx, one thread per channel for the parameter gradients.
//
// Checked by tests/kernels/test_norm.py (marked cuda) against the float64 reference
// pydl/kernels/reference/norm.py.
#include "pydl/cuda_check.h"
#include "pydl/cuda_reduce.h"
#include "pydl/norm.h"
#include "pydl/norm_cuda.h"

namespace pydl::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kPlaneMin = 128;  // planes at least this long get a block each

// Visits the (n, l) pairs of one channel's sequence n * L + l for i in [i, end) with
// stride `step`, without a division per element.
template <typename F>
__device__ inline void for_channel_values(int64_t i, int64_t end, int64_t step, int64_t L, F&& f) {
  if (i >= end) return;
  int64_t n = i / L, l = i - n * L;
  const int64_t dn = step / L, dl = step - dn * L;
  for (; i < end; i += step) {
    f(n, l);
    n += dn;
    l += dl;
    if (l >= L) {
      l -= L;
      ++n;
    }
  }
}

// ---------------------------------------------------------------------------------------
// batch norm
// ---------------------------------------------------------------------------------------

// partial: (C, S) Welford states of x - K_c, K_c = the channel's first value.
template <typename T>
__global__ void bn_partial_stats(const T* __restrict__ x, int64_t N, int64_t C, int64_t L, int64_t chunk,
                                 Welford<T>* __restrict__ partial) {
  const int64_t c = blockIdx.x, s = blockIdx.y, M = N * L;
  const int64_t begin = s * chunk, end = begin + chunk < M ? begin + chunk : M;
  const T K = x[c * L];
  Welford<T> w{T(0), T(0), T(0)};
  for_channel_values(begin + threadIdx.x, end, blockDim.x, L,
                     [&](int64_t n, int64_t l) { welford_add(w, x[(n * C + c) * L + l] - K); });
  w = block_reduce(w, WelfordOp{});
  if (threadIdx.x == 0) partial[c * gridDim.y + s] = w;
}

// One thread per channel: the statistics (merged partials in training, the running ones
// in evaluation), the running-statistics update, the saved statistics and the forward's
// coefficients coef (C, 4) = (mean_hi, mean_lo, scale, shift).
template <typename T>
__global__ void bn_forward_finalize(const T* __restrict__ x, int64_t C, int64_t L, int S,
                                    const Welford<T>* __restrict__ partial, bool training, T* running_mean,
                                    T* running_var, const T* __restrict__ w, const T* __restrict__ b,
                                    double momentum, double eps, double M, T* __restrict__ save_mean,
                                    T* __restrict__ save_invstd, T* __restrict__ coef) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double mean, var;
  if (training) {
    Welford<T> acc = partial[c * S];
    for (int s = 1; s < S; ++s) acc = WelfordOp{}(acc, partial[c * S + s]);
    mean = static_cast<double>(x[c * L]) + static_cast<double>(acc.mean);
    var = welford_var(acc);
    if (running_mean != nullptr || running_var != nullptr) {
      double r_mean = running_mean ? static_cast<double>(running_mean[c]) : 0.0;
      double r_var = running_var ? static_cast<double>(running_var[c]) : 0.0;
      update_running(r_mean, r_var, mean, var, M, momentum);
      if (running_mean) running_mean[c] = static_cast<T>(r_mean);
      if (running_var) running_var[c] = static_cast<T>(r_var);
    }
  } else {
    mean = static_cast<double>(running_mean[c]);
    var = static_cast<double>(running_var[c]);
  }
  const double invstd = 1.0 / sqrt(var + eps);
  const HiLo<T> m = split_hi_lo<T>(mean);
  save_mean[c] = static_cast<T>(mean);
  save_invstd[c] = static_cast<T>(invstd);
  coef[4 * c] = m.hi;
  coef[4 * c + 1] = m.lo;
  coef[4 * c + 2] = static_cast<T>(invstd * (w ? static_cast<double>(w[c]) : 1.0));
  coef[4 * c + 3] = b ? b[c] : T(0);
}

// The element-wise sweeps, with the channel's four coefficients k[0..3]:
// forward  y = ((x - hi) - lo) * scale + shift
// backward dx = dy * A + (x - mean) * B + C  (training), dx = dy * A (evaluation)
template <typename T>
struct BnNormalise {
  const T* x;
  T* y;
  __device__ void operator()(int64_t i, const T* k) const { y[i] = ((x[i] - k[0]) - k[1]) * k[2] + k[3]; }
};
template <typename T>
struct BnInputGrad {
  const T* dy;
  const T* x;
  T* dx;
  bool training;
  __device__ void operator()(int64_t i, const T* k) const {
    dx[i] = training ? dy[i] * k[0] + (x[i] - k[1]) * k[2] + k[3] : dy[i] * k[0];
  }
};

// A block per (n, c) plane (grid-stride over planes), threads along l.
template <typename T, typename Op>
__global__ void bn_apply_planes(int64_t planes, int64_t C, int64_t L, const T* __restrict__ coef, Op op) {
  for (int64_t p = blockIdx.x; p < planes; p += gridDim.x) {
    const T* k = coef + 4 * (p % C);
    for (int64_t l = threadIdx.x; l < L; l += blockDim.x) op(p * L + l, k);
  }
}

// Short planes: one flat grid-stride loop over every element.
template <typename T, typename Op>
__global__ void bn_apply_flat(int64_t total, int64_t C, int64_t L, const T* __restrict__ coef, Op op) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step)
    op(i, coef + 4 * ((i / L) % C));
}

template <typename T, typename Op>
void bn_apply(int64_t N, int64_t C, int64_t L, const T* coef, Op op, cudaStream_t stream) {
  const int64_t total = N * C * L;
  if (total == 0) return;
  if (L >= kPlaneMin) {
    bn_apply_planes<T, Op><<<grid_for(N * C, 1), kThreads, 0, stream>>>(N * C, C, L, coef, op);
  } else {
    bn_apply_flat<T, Op><<<grid_for(total, kThreads), kThreads, 0, stream>>>(total, C, L, coef, op);
  }
  PYDL_CUDA_CHECK(cudaGetLastError());
}

// partial: (C, S) pairs (sum dy, sum dy * (x - mean_c)).
template <typename T>
__global__ void bn_partial_grad_sums(const T* __restrict__ dy, const T* __restrict__ x, const T* __restrict__ mean,
                                     int64_t N, int64_t C, int64_t L, int64_t chunk, Pair<T>* __restrict__ partial) {
  const int64_t c = blockIdx.x, s = blockIdx.y, M = N * L;
  const int64_t begin = s * chunk, end = begin + chunk < M ? begin + chunk : M;
  const T m = mean[c];
  Pair<T> acc{T(0), T(0)};
  for_channel_values(begin + threadIdx.x, end, blockDim.x, L, [&](int64_t n, int64_t l) {
    const int64_t i = (n * C + c) * L + l;
    acc.a += dy[i];
    acc.b += dy[i] * (x[i] - m);
  });
  acc = block_reduce(acc, SumOp{});
  if (threadIdx.x == 0) partial[c * gridDim.y + s] = acc;
}

// One thread per channel: grad_weight, grad_bias and the input gradient's coefficients
// coef (C, 4) = (A, mean, B, C).
template <typename T>
__global__ void bn_backward_finalize(int64_t C, int S, const Pair<T>* __restrict__ partial,
                                     const T* __restrict__ w, const T* __restrict__ mean,
                                     const T* __restrict__ invstd, bool training, double M, T* __restrict__ grad_w,
                                     T* __restrict__ grad_b, T* __restrict__ coef) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double sum_dy = 0.0, sum_dyx = 0.0;
  for (int s = 0; s < S; ++s) {
    sum_dy += static_cast<double>(partial[c * S + s].a);
    sum_dyx += static_cast<double>(partial[c * S + s].b);
  }
  const double r = static_cast<double>(invstd[c]);
  if (grad_w) grad_w[c] = static_cast<T>(r * sum_dyx);
  if (grad_b) grad_b[c] = static_cast<T>(sum_dy);
  if (coef) {
    const NormGradCoeffs gc = norm_grad_coeffs(r, w ? static_cast<double>(w[c]) : 1.0, sum_dy, sum_dyx, M);
    const bool batch_stats = training && M > 0;  // evaluation: the statistics are constants
    coef[4 * c] = static_cast<T>(gc.A);
    coef[4 * c + 1] = mean[c];
    coef[4 * c + 2] = static_cast<T>(batch_stats ? gc.B : 0.0);
    coef[4 * c + 3] = static_cast<T>(batch_stats ? gc.C : 0.0);
  }
}

// ---------------------------------------------------------------------------------------
// layer norm
// ---------------------------------------------------------------------------------------

template <typename T, bool kBlock>
__global__ void ln_forward_rows(const T* __restrict__ x, T* __restrict__ y, int64_t R, int64_t D,
                                const T* __restrict__ w, const T* __restrict__ b, double eps, T* __restrict__ mean,
                                T* __restrict__ rstd) {
  using TM = Team<kBlock>;
  for (int64_t r = TM::first_row(); r < R; r += TM::row_step()) {
    const T* xr = x + r * D;
    T* yr = y + r * D;
    const T K = xr[0];
    Welford<T> acc{T(0), T(0), T(0)};
    for (int64_t j = TM::rank(); j < D; j += TM::size()) welford_add(acc, xr[j] - K);
    acc = TM::reduce(acc, WelfordOp{});
    const double mu = static_cast<double>(K) + static_cast<double>(acc.mean);
    const double rs = 1.0 / sqrt(welford_var(acc) + eps);
    const HiLo<T> m = split_hi_lo<T>(mu);
    const T rt = static_cast<T>(rs);
    for (int64_t j = TM::rank(); j < D; j += TM::size()) {
      T v = ((xr[j] - m.hi) - m.lo) * rt;
      if (w) v *= w[j];
      if (b) v += b[j];
      yr[j] = v;
    }
    if (TM::rank() == 0) {
      mean[r] = static_cast<T>(mu);
      rstd[r] = rt;
    }
  }
}

// dx of each row: with g = dy * w and xhat = (x - mean) * rstd,
// dx = rstd * (g - sum(g) / D - xhat * sum(g * xhat) / D).
template <typename T, bool kBlock>
__global__ void ln_backward_rows(const T* __restrict__ dy, const T* __restrict__ x, T* __restrict__ dx, int64_t R,
                                 int64_t D, const T* __restrict__ mean, const T* __restrict__ rstd,
                                 const T* __restrict__ w) {
  using TM = Team<kBlock>;
  for (int64_t r = TM::first_row(); r < R; r += TM::row_step()) {
    const T* dyr = dy + r * D;
    const T* xr = x + r * D;
    const T m = mean[r], rs = rstd[r];
    Pair<T> acc{T(0), T(0)};
    for (int64_t j = TM::rank(); j < D; j += TM::size()) {
      const T g = w ? dyr[j] * w[j] : dyr[j];
      acc.a += g;
      acc.b += g * ((xr[j] - m) * rs);
    }
    acc = TM::reduce(acc, SumOp{});
    const T mg = acc.a / static_cast<T>(D), mgx = acc.b / static_cast<T>(D);
    for (int64_t j = TM::rank(); j < D; j += TM::size()) {
      const T g = w ? dyr[j] * w[j] : dyr[j];
      dx[r * D + j] = rs * (g - mg - ((xr[j] - m) * rs) * mgx);
    }
  }
}

constexpr int kColTile = 32, kColRows = 8;

// Block (32 x 8) of columns [32 bx, 32 bx + 32) over row slice blockIdx.y: partial
// (S, 2, D) = (sum dy * xhat, sum dy) per column.
template <typename T>
__global__ void ln_param_partials(const T* __restrict__ dy, const T* __restrict__ x, int64_t R, int64_t D,
                                  int64_t rows_per, const T* __restrict__ mean, const T* __restrict__ rstd,
                                  T* __restrict__ partial) {
  __shared__ T sw[kColRows][kColTile], sb[kColRows][kColTile];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kColTile + tx, s = blockIdx.y;
  const int64_t r0 = s * rows_per, r1 = r0 + rows_per < R ? r0 + rows_per : R;
  T aw = T(0), ab = T(0);
  if (j < D)
    for (int64_t r = r0 + ty; r < r1; r += kColRows) {
      const T g = dy[r * D + j];
      aw += g * ((x[r * D + j] - mean[r]) * rstd[r]);
      ab += g;
    }
  sw[ty][tx] = aw;
  sb[ty][tx] = ab;
  __syncthreads();
  if (ty == 0 && j < D) {
    for (int k = 1; k < kColRows; ++k) {
      aw += sw[k][tx];
      ab += sb[k][tx];
    }
    partial[(s * 2) * D + j] = aw;
    partial[(s * 2 + 1) * D + j] = ab;
  }
}

template <typename T>
__global__ void ln_param_finalize(int64_t D, int S, const T* __restrict__ partial, T* __restrict__ grad_w,
                                  T* __restrict__ grad_b) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= D) return;
  T aw = T(0), ab = T(0);
  for (int s = 0; s < S; ++s) {
    aw += partial[(2 * s) * D + j];
    ab += partial[(2 * s + 1) * D + j];
  }
  if (grad_w) grad_w[j] = aw;
  if (grad_b) grad_b[j] = ab;
}

// ---------------------------------------------------------------------------------------
// group norm
// ---------------------------------------------------------------------------------------

// One block per (n, g) group: a contiguous run of per * L values, channel c0 + j / L.
template <typename T>
__global__ void gn_forward_groups(const T* __restrict__ x, T* __restrict__ y, int64_t NG, int64_t G, int64_t per,
                                  int64_t L, const T* __restrict__ w, const T* __restrict__ b, double eps,
                                  T* __restrict__ mean, T* __restrict__ rstd) {
  const int64_t run = per * L;
  for (int64_t ng = blockIdx.x; ng < NG; ng += gridDim.x) {
    const T* xg = x + ng * run;
    T* yg = y + ng * run;
    const T K = xg[0];
    Welford<T> acc{T(0), T(0), T(0)};
    for (int64_t j = threadIdx.x; j < run; j += blockDim.x) welford_add(acc, xg[j] - K);
    acc = block_reduce(acc, WelfordOp{});
    const double mu = static_cast<double>(K) + static_cast<double>(acc.mean);
    const double rs = 1.0 / sqrt(welford_var(acc) + eps);
    const HiLo<T> m = split_hi_lo<T>(mu);
    const T rt = static_cast<T>(rs);
    const int64_t c0 = (ng % G) * per;
    for (int64_t j = threadIdx.x; j < run; j += blockDim.x) {
      const int64_t c = c0 + j / L;
      T v = ((xg[j] - m.hi) - m.lo) * rt;
      if (w) v *= w[c];
      if (b) v += b[c];
      yg[j] = v;
    }
    if (threadIdx.x == 0) {
      mean[ng] = static_cast<T>(mu);
      rstd[ng] = rt;
    }
  }
}

// One warp per (n, c) plane: sums (N, C) pairs (sum dy, sum dy * (x - mean_ng)).
template <typename T>
__global__ void gn_plane_sums(const T* __restrict__ dy, const T* __restrict__ x, int64_t planes, int64_t C,
                              int64_t per, int64_t L, const T* __restrict__ mean, Pair<T>* __restrict__ sums) {
  using TM = Team<false>;
  for (int64_t p = TM::first_row(); p < planes; p += TM::row_step()) {
    const int64_t ng = (p / C) * (C / per) + (p % C) / per;
    const T m = mean[ng];
    Pair<T> acc{T(0), T(0)};
    for (int64_t l = TM::rank(); l < L; l += TM::size()) {
      const T g = dy[p * L + l];
      acc.a += g;
      acc.b += g * (x[p * L + l] - m);
    }
    acc = TM::reduce(acc, SumOp{});
    if (TM::rank() == 0) sums[p] = acc;
  }
}

// One block per group: dx = dy * r w_c + (x - mean) * B + Cc with the group's
// B = -r^3 S2 / M, Cc = -r S1 / M, S1 = sum_c w_c sum dy, S2 = sum_c w_c sum dy (x - mean).
template <typename T>
__global__ void gn_input_grad(const T* __restrict__ dy, const T* __restrict__ x, T* __restrict__ dx, int64_t NG,
                              int64_t G, int64_t per, int64_t L, const T* __restrict__ mean,
                              const T* __restrict__ rstd, const T* __restrict__ w, const Pair<T>* __restrict__ sums) {
  const int64_t run = per * L;
  const double M = static_cast<double>(run);
  for (int64_t ng = blockIdx.x; ng < NG; ng += gridDim.x) {
    const int64_t c0 = (ng % G) * per, n = ng / G, C = G * per;
    double S1 = 0.0, S2 = 0.0;  // every thread, in channel order: the same value everywhere
    for (int64_t i = 0; i < per; ++i) {
      const double wc = w ? static_cast<double>(w[c0 + i]) : 1.0;
      const Pair<T> s = sums[n * C + c0 + i];
      S1 += wc * static_cast<double>(s.a);
      S2 += wc * static_cast<double>(s.b);
    }
    const NormGradCoeffs gc = norm_grad_coeffs(static_cast<double>(rstd[ng]), 1.0, S1, S2, M);  // w inside S1, S2
    const T B = static_cast<T>(gc.B), Cc = static_cast<T>(gc.C);
    const T m = mean[ng], rt = rstd[ng];
    const int64_t o = ng * run;
    for (int64_t j = threadIdx.x; j < run; j += blockDim.x) {
      const T A = w ? rt * w[c0 + j / L] : rt;
      dx[o + j] = dy[o + j] * A + (x[o + j] - m) * B + Cc;
    }
  }
}

// One thread per channel: grad_w[c] = sum_n rstd[n, g] sum dy (x - mean), grad_b[c] = sum_n sum dy.
template <typename T>
__global__ void gn_param_grads(int64_t N, int64_t C, int64_t G, int64_t per, const T* __restrict__ rstd,
                               const Pair<T>* __restrict__ sums, T* __restrict__ grad_w, T* __restrict__ grad_b) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double sw = 0.0, sb = 0.0;
  for (int64_t n = 0; n < N; ++n) {
    const Pair<T> s = sums[n * C + c];
    sw += static_cast<double>(rstd[n * G + c / per]) * static_cast<double>(s.b);
    sb += static_cast<double>(s.a);
  }
  if (grad_w) grad_w[c] = static_cast<T>(sw);
  if (grad_b) grad_b[c] = static_cast<T>(sb);
}

// Warp per row up to this many values, block per row beyond.
constexpr int64_t kWarpRowMax = 1024;

}  // namespace

// ---------------------------------------------------------------------------------------
// Launchers (norm_cuda.h)
// ---------------------------------------------------------------------------------------

template <typename T>
void batch_norm_forward(const BnForwardArgs<T>& a, cudaStream_t stream) {
  const double M = static_cast<double>(a.N) * static_cast<double>(a.L);
  if (a.C == 0) return;
  if (a.training) {
    if (a.S < 1 || a.S > 65535) throw std::invalid_argument("batch_norm (cuda): S must lie in [1, 65535]");
    const int64_t chunk = (a.N * a.L + a.S - 1) / a.S;
    auto* partial = reinterpret_cast<Welford<T>*>(a.workspace);
    bn_partial_stats<T><<<dim3(static_cast<unsigned>(a.C), static_cast<unsigned>(a.S)), kThreads, 0, stream>>>(
        a.x, a.N, a.C, a.L, chunk, partial);
    PYDL_CUDA_CHECK(cudaGetLastError());
  }
  T* coef = a.workspace + (a.training ? 3 * a.C * a.S : 0);
  bn_forward_finalize<T><<<grid_for(a.C, kThreads), kThreads, 0, stream>>>(
      a.x, a.C, a.L, a.S, reinterpret_cast<const Welford<T>*>(a.workspace), a.training, a.running_mean,
      a.running_var, a.weight, a.bias, a.momentum, a.eps, M, a.save_mean, a.save_invstd, coef);
  PYDL_CUDA_CHECK(cudaGetLastError());
  bn_apply(a.N, a.C, a.L, coef, BnNormalise<T>{a.x, a.y}, stream);
}

template <typename T>
void batch_norm_backward(const BnBackwardArgs<T>& a, cudaStream_t stream) {
  if (a.C == 0) return;
  const double M = static_cast<double>(a.N) * static_cast<double>(a.L);
  if (a.S < 1 || a.S > 65535) throw std::invalid_argument("batch_norm_backward (cuda): S must lie in [1, 65535]");
  auto* partial = reinterpret_cast<Pair<T>*>(a.workspace);
  T* coef = a.grad_input ? a.workspace + 2 * a.C * a.S : nullptr;
  const bool sums = a.grad_weight || a.grad_bias || (a.grad_input && a.training);
  const int64_t chunk = (a.N * a.L + a.S - 1) / a.S;
  if (sums) {
    bn_partial_grad_sums<T><<<dim3(static_cast<unsigned>(a.C), static_cast<unsigned>(a.S)), kThreads, 0, stream>>>(
        a.grad_out, a.x, a.save_mean, a.N, a.C, a.L, chunk, partial);
    PYDL_CUDA_CHECK(cudaGetLastError());
  }
  bn_backward_finalize<T><<<grid_for(a.C, kThreads), kThreads, 0, stream>>>(
      a.C, sums ? a.S : 0, partial, a.weight, a.save_mean, a.save_invstd, a.training, M, a.grad_weight, a.grad_bias,
      coef);
  PYDL_CUDA_CHECK(cudaGetLastError());
  if (a.grad_input) bn_apply(a.N, a.C, a.L, coef, BnInputGrad<T>{a.grad_out, a.x, a.grad_input, a.training}, stream);
}

template <typename T>
void layer_norm_forward(const T* x, T* y, int64_t R, int64_t D, const T* w, const T* b, double eps, T* mean, T* rstd,
                        cudaStream_t stream) {
  if (R == 0 || D == 0) return;
  if (D <= kWarpRowMax) {
    ln_forward_rows<T, false><<<grid_for(R, kThreads / kWarp), kThreads, 0, stream>>>(x, y, R, D, w, b, eps, mean,
                                                                                       rstd);
  } else {
    ln_forward_rows<T, true><<<grid_for(R, 1), kThreads * 2, 0, stream>>>(x, y, R, D, w, b, eps, mean, rstd);
  }
  PYDL_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void layer_norm_backward(const T* dy, const T* x, int64_t R, int64_t D, const T* mean, const T* rstd, const T* w,
                         T* dx, T* grad_w, T* grad_b, T* workspace, int S, cudaStream_t stream) {
  if (R == 0 || D == 0) {
    return;
  }
  if (dx) {
    if (D <= kWarpRowMax) {
      ln_backward_rows<T, false><<<grid_for(R, kThreads / kWarp), kThreads, 0, stream>>>(dy, x, dx, R, D, mean, rstd,
                                                                                          w);
    } else {
      ln_backward_rows<T, true><<<grid_for(R, 1), kThreads * 2, 0, stream>>>(dy, x, dx, R, D, mean, rstd, w);
    }
    PYDL_CUDA_CHECK(cudaGetLastError());
  }
  if (grad_w || grad_b) {
    if (S < 1 || S > 65535) throw std::invalid_argument("layer_norm_backward (cuda): S must lie in [1, 65535]");
    const int64_t rows_per = (R + S - 1) / S;
    const dim3 grid(static_cast<unsigned>((D + kColTile - 1) / kColTile), static_cast<unsigned>(S));
    ln_param_partials<T><<<grid, dim3(kColTile, kColRows), 0, stream>>>(dy, x, R, D, rows_per, mean, rstd, workspace);
    PYDL_CUDA_CHECK(cudaGetLastError());
    ln_param_finalize<T><<<grid_for(D, kThreads), kThreads, 0, stream>>>(D, S, workspace, grad_w, grad_b);
    PYDL_CUDA_CHECK(cudaGetLastError());
  }
}

template <typename T>
void group_norm_forward(const T* x, T* y, int64_t N, int64_t C, int64_t L, int64_t G, const T* w, const T* b,
                        double eps, T* mean, T* rstd, cudaStream_t stream) {
  const int64_t NG = N * G;
  if (NG == 0 || C * L == 0) return;
  gn_forward_groups<T><<<grid_for(NG, 1), kThreads, 0, stream>>>(x, y, NG, G, C / G, L, w, b, eps, mean, rstd);
  PYDL_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void group_norm_backward(const T* dy, const T* x, int64_t N, int64_t C, int64_t L, int64_t G, const T* mean,
                         const T* rstd, const T* w, T* dx, T* grad_w, T* grad_b, T* workspace, cudaStream_t stream) {
  if (N * C == 0) return;
  const int64_t per = C / G;
  auto* sums = reinterpret_cast<Pair<T>*>(workspace);  // (N, C)
  gn_plane_sums<T><<<grid_for(N * C, kThreads / kWarp), kThreads, 0, stream>>>(dy, x, N * C, C, per, L, mean, sums);
  PYDL_CUDA_CHECK(cudaGetLastError());
  if (dx && L > 0) {
    gn_input_grad<T><<<grid_for(N * G, 1), kThreads, 0, stream>>>(dy, x, dx, N * G, G, per, L, mean, rstd, w, sums);
    PYDL_CUDA_CHECK(cudaGetLastError());
  }
  if (grad_w || grad_b) {
    gn_param_grads<T><<<grid_for(C, kThreads), kThreads, 0, stream>>>(N, C, G, per, rstd, sums, grad_w, grad_b);
    PYDL_CUDA_CHECK(cudaGetLastError());
  }
}

#define PYDL_NORM_INSTANTIATE(T)                                                                                  \
  template void batch_norm_forward<T>(const BnForwardArgs<T>&, cudaStream_t);                                    \
  template void batch_norm_backward<T>(const BnBackwardArgs<T>&, cudaStream_t);                                  \
  template void layer_norm_forward<T>(const T*, T*, int64_t, int64_t, const T*, const T*, double, T*, T*,         \
                                      cudaStream_t);                                                              \
  template void layer_norm_backward<T>(const T*, const T*, int64_t, int64_t, const T*, const T*, const T*, T*, T*, \
                                       T*, T*, int, cudaStream_t);                                                \
  template void group_norm_forward<T>(const T*, T*, int64_t, int64_t, int64_t, int64_t, const T*, const T*,       \
                                      double, T*, T*, cudaStream_t);                                              \
  template void group_norm_backward<T>(const T*, const T*, int64_t, int64_t, int64_t, int64_t, const T*,          \
                                       const T*, const T*, T*, T*, T*, T*, cudaStream_t);
PYDL_NORM_INSTANTIATE(float)
PYDL_NORM_INSTANTIATE(double)
#undef PYDL_NORM_INSTANTIATE

}  // namespace pydl::cuda
