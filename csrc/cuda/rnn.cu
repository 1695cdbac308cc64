// rnn on the GPU: LSTM and GRU layers over whole sequences (the time loop on the host,
// launching on one stream), forward and backward; a cell is the T = 1 case.
//
//   LSTM  a_t = x_t w_ih^T + h_{t-1} w_hh^T + b_ih + b_hh   (B, 4H), gates i, f, g, o
//         c_t = f c_{t-1} + i g,  h_t = o tanh(c_t)
//   GRU   gi_t = x_t w_ih^T + b_ih, gh_t = h_{t-1} w_hh^T + b_hh   (B, 3H), gates r, z, n
//         h_t = (1 - z) n + z h_{t-1},  n = tanh(gi_n + r gh_n)
// The element-wise gate math is pydl/rnn.h's PYDL_HOST_DEVICE helpers (lstm_gates_forward
// and friends with ScalarGateMath), the same code the CPU's passes run.
//
// Legend: T steps, B batch, I input features, H hidden units, G = 4 (LSTM) or 3 (GRU).
//
// Algorithm (as csrc/cpu/rnn.cpp): the input products of all steps are one gemm,
// (T B, I) @ (I, G H), before the loop; per step one gemm h_{t-1} w_hh^T (B, G H) and one
// fused gate kernel (one thread per (row, hidden unit): reads its G pre-activations, adds
// the biases, writes the activations to the cache and h, c). The backward mirrors it: per
// step the gate-gradient kernel, then dh_{t-1} = da_t w_hh (one gemm; the GRU adds the
// direct path dh z written by the gate kernel); after the loop three big gemms over all
// steps give grad_x = da w_ih, grad_w_ih = da^T x, grad_w_hh = da^T [h_0 .. h_{T-1}], and
// a column-sum kernel the bias gradients. Every product is pydl::cuda::gemm
// (pydl/gemm_cuda.h) reading its operands through strides (no transposed copies).
//
// Memory: the cache keeps the gate activations (T, B, G H) (GRU: r, z, n, gh_n: (T, B, 4H)),
// the hidden states (T + 1, B, H) and, for the LSTM, the cell states (T + 1, B, H); the
// GRU forward's workspace is gi (T, B, 3H); each direction one (B, G H) product buffer; the
// backward's the gate gradients (T, B, G H) (GRU: two). All allocated by the caller (CuPy).
//
// Checked by tests/kernels/test_rnn_kernels.py (marked cuda) against the float64 reference.
#include <cuda_runtime.h>

#include <cstdint>

#include "pydl/cuda_check.h"
#include "pydl/cuda_launch.h"
#include "pydl/gemm_cuda.h"
#include "pydl/rnn.h"
#include "pydl/rnn_cuda.h"

namespace pydl::cuda {
namespace {

#define PYDL_GRID_STRIDE(e, total) for (int64_t e = grid_start(); e < (total); e += grid_stride())

template <typename T>
__device__ inline T bias_at(const T* b, int64_t j) {
  return b ? b[j] : T(0);
}

// gates (B, 4H): x-products in, activations i, f, g, o out; gh (B, 4H) the h-products;
// c_prev, c, h, out (B, H).
template <typename T>
__global__ void lstm_gates_forward_kernel(int64_t B, int64_t H, const T* __restrict__ gh, const T* __restrict__ b_ih,
                                          const T* __restrict__ b_hh, T* __restrict__ gates,
                                          const T* __restrict__ c_prev, T* __restrict__ c, T* __restrict__ h,
                                          T* __restrict__ out) {
  PYDL_GRID_STRIDE(e, B * H) {
    const int64_t b = e / H, j = e % H;
    T* a = gates + b * 4 * H;
    const T* r = gh + b * 4 * H;
    T pre[4];
#pragma unroll
    for (int q = 0; q < 4; ++q) pre[q] = a[q * H + j] + r[q * H + j] + bias_at(b_ih, q * H + j) + bias_at(b_hh, q * H + j);
    T i, f, g, o, cn, hn;
    lstm_gates_forward<T, ScalarGateMath<T>>(pre[0], pre[1], pre[2], pre[3], c_prev[e], i, f, g, o, cn, hn);
    a[j] = i, a[H + j] = f, a[2 * H + j] = g, a[3 * H + j] = o;
    c[e] = cn, h[e] = hn, out[e] = hn;
  }
}

// dh (B, H): the carried gradient, + grad_out (may be nullptr); dc (B, H) in, dc_prev out
// (in place); da (B, 4H) out.
template <typename T>
__global__ void lstm_gates_backward_kernel(int64_t B, int64_t H, const T* __restrict__ gates,
                                           const T* __restrict__ c_prev, const T* __restrict__ c,
                                           const T* __restrict__ dh, const T* __restrict__ grad_out, T* dc,
                                           T* __restrict__ da) {
  PYDL_GRID_STRIDE(e, B * H) {
    const int64_t b = e / H, j = e % H;
    const T* a = gates + b * 4 * H;
    const T dh_total = dh[e] + (grad_out ? grad_out[e] : T(0));
    T* d = da + b * 4 * H;
    T dc_prev;
    lstm_gates_backward<T, ScalarGateMath<T>>(a[j], a[H + j], a[2 * H + j], a[3 * H + j], c_prev[e], c[e], dh_total,
                                              dc[e], d[j], d[H + j], d[2 * H + j], d[3 * H + j], dc_prev);
    dc[e] = dc_prev;
  }
}

// gi, gh (B, 3H) without biases; saved (B, 4H) = r, z, n, gh_n (with b_hn); h, out (B, H).
template <typename T>
__global__ void gru_gates_forward_kernel(int64_t B, int64_t H, const T* __restrict__ gi, const T* __restrict__ gh,
                                         const T* __restrict__ b_ih, const T* __restrict__ b_hh,
                                         const T* __restrict__ h_prev, T* __restrict__ saved, T* __restrict__ h,
                                         T* __restrict__ out) {
  PYDL_GRID_STRIDE(e, B * H) {
    const int64_t b = e / H, j = e % H;
    const T* x = gi + b * 3 * H;
    const T* y = gh + b * 3 * H;
    const T gh_n = y[2 * H + j] + bias_at(b_hh, 2 * H + j);
    T r, z, n, hn;
    gru_gates_forward<T, ScalarGateMath<T>>(x[j] + bias_at(b_ih, j), x[H + j] + bias_at(b_ih, H + j),
                                            x[2 * H + j] + bias_at(b_ih, 2 * H + j), y[j] + bias_at(b_hh, j),
                                            y[H + j] + bias_at(b_hh, H + j), gh_n, h_prev[e], r, z, n, hn);
    T* s = saved + b * 4 * H;
    s[j] = r, s[H + j] = z, s[2 * H + j] = n, s[3 * H + j] = gh_n;
    h[e] = hn, out[e] = hn;
  }
}

// dh (B, H): the carried gradient (+ grad_out), replaced (in place) by the direct path
// dh z; dgi, dgh (B, 3H) out.
template <typename T>
__global__ void gru_gates_backward_kernel(int64_t B, int64_t H, const T* __restrict__ saved,
                                          const T* __restrict__ h_prev, T* dh, const T* __restrict__ grad_out,
                                          T* __restrict__ dgi, T* __restrict__ dgh) {
  PYDL_GRID_STRIDE(e, B * H) {
    const int64_t b = e / H, j = e % H;
    const T* s = saved + b * 4 * H;
    const T dh_total = dh[e] + (grad_out ? grad_out[e] : T(0));
    T dr, dz, dgi_n, dgh_n, direct;
    gru_gates_backward<T, ScalarGateMath<T>>(s[j], s[H + j], s[2 * H + j], s[3 * H + j], h_prev[e], dh_total, dr, dz,
                                             dgi_n, dgh_n, direct);
    T* di = dgi + b * 3 * H;
    T* dg = dgh + b * 3 * H;
    di[j] = dr, di[H + j] = dz, di[2 * H + j] = dgi_n;
    dg[j] = dr, dg[H + j] = dz, dg[2 * H + j] = dgh_n;
    dh[e] = direct;
  }
}

// out[j] = sum over rows of a[row, j]: one thread per column (coalesced across threads).
template <typename T>
__global__ void column_sum_kernel(const T* __restrict__ a, int64_t rows, int64_t cols, T* __restrict__ out) {
  PYDL_GRID_STRIDE(j, cols) {
    T acc = T(0);
    for (int64_t r = 0; r < rows; ++r) acc += a[r * cols + j];
    out[j] = acc;
  }
}

#undef PYDL_GRID_STRIDE

// C (M, N) = A (M, K) @ B (K, N) (+ beta C), row-major C, operands through strides.
template <typename T>
void product(int64_t M, int64_t N, int64_t K, const T* A, int64_t rs_a, int64_t cs_a, const T* B, int64_t rs_b,
             int64_t cs_b, T* C, int64_t rs_c, T beta, cudaStream_t stream) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // an empty sum: C = beta C
    if (beta != T(0)) return;
    if (rs_c == N) PYDL_CUDA_CHECK(cudaMemsetAsync(C, 0, sizeof(T) * M * N, stream));
    else PYDL_CUDA_CHECK(cudaMemset2DAsync(C, sizeof(T) * rs_c, 0, sizeof(T) * N, M, stream));
    return;
  }
  gemm<T>(1, M, N, K, A, 0, rs_a, cs_a, B, 0, rs_b, cs_b, C, 0, rs_c, T(1), beta, stream);
}

// The three products after a backward loop, and the bias gradients:
//   grad_x (T B, I) = da @ w_ih,  grad_w_ih (G H, I) = da^T x,  grad_w_hh (G H, H) = dah^T hs[0:T]
template <typename T>
void weight_gradients(int64_t TB, int64_t I, int64_t H, int64_t GH, const T* x, const T* w_ih, const T* hs,
                      const T* da, const T* dah, T* grad_x, T* grad_w_ih, T* grad_w_hh, cudaStream_t stream) {
  product<T>(TB, I, GH, da, GH, 1, w_ih, I, 1, grad_x, I, T(0), stream);
  product<T>(GH, I, TB, da, 1, GH, x, I, 1, grad_w_ih, I, T(0), stream);
  product<T>(GH, H, TB, dah, 1, GH, hs, H, 1, grad_w_hh, H, T(0), stream);
}

template <typename T>
void column_sum(const T* a, int64_t rows, int64_t cols, T* out, cudaStream_t stream) {
  if (!out || cols == 0) return;
  column_sum_kernel<T><<<blocks_for(cols), kThreads, 0, stream>>>(a, rows, cols, out);
  PYDL_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

template <typename T>
void lstm_forward(const RnnSeq<T>& s, T* gh, T* out, cudaStream_t stream) {
  const int64_t T_ = s.steps, B = s.B, I = s.I, H = s.H, G = 4 * H, BH = B * H;
  if (T_ == 0 || BH == 0) return;
  // saved (T B, 4H) = x w_ih^T: the input products of every step, turned into activations below
  product<T>(T_ * B, G, I, s.x, I, 1, s.w_ih, 1, I, s.saved, G, T(0), stream);
  for (int64_t t = 0; t < T_; ++t) {
    product<T>(B, G, H, s.hs + t * BH, H, 1, s.w_hh, 1, H, gh, G, T(0), stream);  // gh = h_{t-1} w_hh^T
    lstm_gates_forward_kernel<T><<<blocks_for(BH), kThreads, 0, stream>>>(
        B, H, gh, s.b_ih, s.b_hh, s.saved + t * B * G, s.cs + t * BH, s.cs + (t + 1) * BH, s.hs + (t + 1) * BH,
        out + t * BH);
    PYDL_CUDA_CHECK(cudaGetLastError());
  }
}

template <typename T>
void gru_forward(const RnnSeq<T>& s, T* gi, T* gh, T* out, cudaStream_t stream) {
  const int64_t T_ = s.steps, B = s.B, I = s.I, H = s.H, G = 3 * H, BH = B * H;
  if (T_ == 0 || BH == 0) return;
  product<T>(T_ * B, G, I, s.x, I, 1, s.w_ih, 1, I, gi, G, T(0), stream);  // gi (T B, 3H) = x w_ih^T
  for (int64_t t = 0; t < T_; ++t) {
    product<T>(B, G, H, s.hs + t * BH, H, 1, s.w_hh, 1, H, gh, G, T(0), stream);
    gru_gates_forward_kernel<T><<<blocks_for(BH), kThreads, 0, stream>>>(
        B, H, gi + t * B * G, gh, s.b_ih, s.b_hh, s.hs + t * BH, s.saved + t * B * 4 * H, s.hs + (t + 1) * BH,
        out + t * BH);
    PYDL_CUDA_CHECK(cudaGetLastError());
  }
}

template <typename T>
void lstm_backward(const RnnSeq<T>& s, const RnnGrads<T>& g, cudaStream_t stream) {
  const int64_t T_ = s.steps, B = s.B, I = s.I, H = s.H, G = 4 * H, BH = B * H, TB = T_ * B;
  for (int64_t t = T_ - 1; t >= 0 && BH > 0; --t) {
    lstm_gates_backward_kernel<T><<<blocks_for(BH), kThreads, 0, stream>>>(
        B, H, s.saved + t * B * G, s.cs + t * BH, s.cs + (t + 1) * BH, g.dh, g.grad_out ? g.grad_out + t * BH : nullptr,
        g.dc, g.da + t * B * G);
    PYDL_CUDA_CHECK(cudaGetLastError());
    product<T>(B, H, G, g.da + t * B * G, G, 1, s.w_hh, H, 1, g.dh, H, T(0), stream);  // dh_{t-1} = da_t w_hh
  }
  weight_gradients<T>(TB, I, H, G, s.x, s.w_ih, s.hs, g.da, g.da, g.grad_x, g.grad_w_ih, g.grad_w_hh, stream);
  if (TB == 0) {
    if (g.db_ih && G) PYDL_CUDA_CHECK(cudaMemsetAsync(g.db_ih, 0, sizeof(T) * G, stream));
    return;
  }
  column_sum<T>(g.da, TB, G, g.db_ih, stream);  // the LSTM's two biases share one gradient
}

template <typename T>
void gru_backward(const RnnSeq<T>& s, const RnnGrads<T>& g, cudaStream_t stream) {
  const int64_t T_ = s.steps, B = s.B, I = s.I, H = s.H, G = 3 * H, BH = B * H, TB = T_ * B;
  for (int64_t t = T_ - 1; t >= 0 && BH > 0; --t) {
    gru_gates_backward_kernel<T><<<blocks_for(BH), kThreads, 0, stream>>>(
        B, H, s.saved + t * B * 4 * H, s.hs + t * BH, g.dh, g.grad_out ? g.grad_out + t * BH : nullptr,
        g.da + t * B * G, g.dah + t * B * G);
    PYDL_CUDA_CHECK(cudaGetLastError());
    product<T>(B, H, G, g.dah + t * B * G, G, 1, s.w_hh, H, 1, g.dh, H, T(1), stream);  // dh_{t-1} += dgh_t w_hh
  }
  weight_gradients<T>(TB, I, H, G, s.x, s.w_ih, s.hs, g.da, g.dah, g.grad_x, g.grad_w_ih, g.grad_w_hh, stream);
  if (TB == 0) {
    if (g.db_ih && G) PYDL_CUDA_CHECK(cudaMemsetAsync(g.db_ih, 0, sizeof(T) * G, stream));
    if (g.db_hh && G) PYDL_CUDA_CHECK(cudaMemsetAsync(g.db_hh, 0, sizeof(T) * G, stream));
    return;
  }
  column_sum<T>(g.da, TB, G, g.db_ih, stream);
  column_sum<T>(g.dah, TB, G, g.db_hh, stream);
}

#define PYDL_RNN_INSTANTIATE(T)                                                         \
  template void lstm_forward<T>(const RnnSeq<T>&, T*, T*, cudaStream_t);              \
  template void gru_forward<T>(const RnnSeq<T>&, T*, T*, T*, cudaStream_t);           \
  template void lstm_backward<T>(const RnnSeq<T>&, const RnnGrads<T>&, cudaStream_t); \
  template void gru_backward<T>(const RnnSeq<T>&, const RnnGrads<T>&, cudaStream_t);
PYDL_RNN_INSTANTIATE(float)
PYDL_RNN_INSTANTIATE(double)
#undef PYDL_RNN_INSTANTIATE

}  // namespace pydl::cuda
