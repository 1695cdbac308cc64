// attention on the GPU: fused scaled dot-product attention, forward and backward.
//
//   E = Q K^T * scale + mask,   A = softmax_rows(E),   Y = A V,   lse_i = log sum_j exp(E_ij)
//   backward (D_i = rowsum(dY * Y)):
//     dV = A^T dY,   dA = dY V^T,   dE = A * (dA - D),   dQ = dE K * scale,   dK = dE^T Q * scale
//
// Legend: BH heads, L queries, S keys, D query/key features, Dv value features, b the
// tile side (queries per tile = keys per tile), kThreads threads per block.
//
// Algorithm (flash attention 2, Dao 2023, in its plainest form). Forward: one block per
// (head, tile of b queries) walks over the key tiles; per tile it stages K, computes the
// b x b scores in shared memory, updates each row's running max and sum with the same
// online_softmax_update as the CPU (pydl/attention.h; one thread per row), stages V and
// rescales-and-accumulates the output tile, which stays in shared memory until the end
// (out = acc / l, lse = m + log l). With is_causal, key tiles wholly after the query tile
// are never visited. Backward: a small kernel computes D_i; then one block per (head,
// tile of b keys) walks over the query tiles (causal: only those at or after the key
// tile), recomputes P = exp(E - lse) from the saved lse, accumulates dV and dK for its keys
// in shared memory and adds dQ = dE K * scale with atomicAdd (each query tile receives one
// add per key tile; float atomics make dQ's rounding order vary between runs).
// Shared-memory rows are padded by one element (row strides D + 1, Dv + 1, b + 1) so the
// column walks of a warp do not hit one bank. b is 32, or 16 / 8 when the tiles of a
// large D would not fit in the device's shared memory (an error names the limit beyond).
// This is the correct-first version: no tensor cores, no register tiling.
//
// Workspace: shared memory only: forward b (2 (D + 1) + 2 (Dv + 1) + b + 4) elements,
// backward b (3 (D + 1) + 3 (Dv + 1) + 2 (b + 1) + 2); in global memory the backward's
// D vector (BH, L) (passed in). Never O(L S).
//
// Checked by tests/kernels/test_attention.py (marked cuda) against the float64 reference.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "pydl/attention.h"
#include "pydl/attention_cuda.h"
#include "pydl/cuda_check.h"

namespace pydl::cuda {
namespace {

constexpr int kThreads = 128;

// The scalar Math policy of online_softmax_update (pydl/attention.h) on the device.
template <typename T>
struct ScalarSoftmaxMath {
  PYDL_HOST_DEVICE static T max(T a, T b) { return a < b ? b : a; }
  PYDL_HOST_DEVICE static T exp(T a) { return std::exp(a); }
  PYDL_HOST_DEVICE static T lowest() { return -std::numeric_limits<T>::max(); }
};

template <typename T>
__device__ inline T neg_inf() {
  return -std::numeric_limits<T>::infinity();
}

// Score of query gi against key gj before the softmax: (q_i * scale) . k_j + mask, or -inf
// where the causal rule hides the key. qs and ks are shared-memory rows of D elements.
template <typename T>
__device__ inline T score(const AttentionArgs<T>& a, const T* mask, const T* qs, const T* ks, int64_t gi,
                          int64_t gj) {
  if (a.causal && gj > gi) return neg_inf<T>();
  T acc = T(0);
  for (int64_t d = 0; d < a.D; ++d) acc += qs[d] * ks[d];
  if (mask) acc += mask[gi * a.mask_ls + gj * a.mask_ss];
  return acc;
}

// dst (b rows, ld apart, in shared memory) = rows [0, n) of src (rows `width` apart) *
// scale, zeros past n; the block's nt threads share the copy.
template <typename T>
__device__ inline void stage_rows(T* dst, int64_t ld, const T* src, int64_t width, int n, int b, T scale, int tid,
                                  int nt) {
  for (int64_t e = tid; e < b * width; e += nt) {
    const int64_t i = e / width, d = e % width;
    dst[i * ld + d] = i < n ? src[i * width + d] * scale : T(0);
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) attention_forward_kernel(AttentionArgs<T> a, int b, int64_t tiles) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sm = reinterpret_cast<T*>(smem_raw);
  const int64_t bh = blockIdx.x / tiles, i0 = (blockIdx.x % tiles) * b;
  const int64_t L = a.L, S = a.S, D = a.D, Dv = a.Dv;
  const int tid = threadIdx.x, nt = blockDim.x;
  const int nq = static_cast<int>(min(int64_t(b), L - i0));
  const int64_t ldd = D + 1, ldv = Dv + 1, lds = b + 1;
  T* Qs = sm;                            // (b, D): this tile's queries * scale, zero past nq
  T* KV = Qs + b * ldd;                  // (b, D) K tile, then (b, Dv) V tile
  T* Ss = KV + b * max(ldd, ldv);        // (b, b): scores, then probabilities
  T* Os = Ss + b * lds;                  // (b, Dv): output accumulator
  T* m = Os + b * ldv;                   // (b,) running max
  T* l = m + b;                          // (b,) running sum
  T* alpha = l + b;                      // (b,) this key tile's rescale factor

  const T* q = a.q + (bh * L + i0) * D;
  const T* k = a.k + bh * S * D;
  const T* v = a.v + bh * S * Dv;
  const T* mask = a.mask ? a.mask + a.mask_offset[bh] : nullptr;
  stage_rows(Qs, ldd, q, D, nq, b, a.scale, tid, nt);
  stage_rows(Os, ldv, q, Dv, 0, b, T(1), tid, nt);  // zeros
  for (int i = tid; i < b; i += nt) m[i] = neg_inf<T>(), l[i] = T(0);

  // Causal: query i sees keys j <= i, so this tile needs keys below i0 + nq only.
  const int64_t j_end = a.causal ? min(S, i0 + nq) : S;
  for (int64_t j0 = 0; j0 < j_end; j0 += b) {
    const int nk = static_cast<int>(min(int64_t(b), j_end - j0));
    __syncthreads();  // the previous tile's V is no longer read
    stage_rows(KV, ldd, k + j0 * D, D, nk, b, T(1), tid, nt);
    __syncthreads();
    for (int e = tid; e < b * b; e += nt) {
      const int i = e / b, j = e % b;
      Ss[i * lds + j] = (i < nq && j < nk) ? score(a, mask, Qs + i * ldd, KV + j * ldd, i0 + i, j0 + j)
                                           : neg_inf<T>();
    }
    __syncthreads();
    for (int i = tid; i < b; i += nt) {  // one thread per query row
      T* row = Ss + i * lds;
      T mx = neg_inf<T>();
      for (int j = 0; j < nk; ++j) mx = ScalarSoftmaxMath<T>::max(mx, row[j]);
      T mi = m[i], li = l[i], shift = T(0);
      const T al = online_softmax_update<T, ScalarSoftmaxMath<T>>(mi, li, mx, shift);
      T sum = T(0);
      for (int j = 0; j < nk; ++j) {
        const T p = std::exp(row[j] - shift);
        row[j] = p;
        sum += p;
      }
      m[i] = mi, l[i] = li + sum, alpha[i] = al;
    }
    stage_rows(KV, ldv, v + j0 * Dv, Dv, nk, b, T(1), tid, nt);
    __syncthreads();
    for (int64_t e = tid; e < b * Dv; e += nt) {
      const int64_t i = e / Dv, d = e % Dv;
      const T* p = Ss + i * lds;
      T acc = Os[i * ldv + d] * alpha[i];
      for (int j = 0; j < nk; ++j) acc += p[j] * KV[j * ldv + d];
      Os[i * ldv + d] = acc;
    }
  }
  __syncthreads();
  T* out = a.out + (bh * L + i0) * Dv;
  for (int64_t e = tid; e < nq * Dv; e += nt) {
    const int64_t i = e / Dv, d = e % Dv;
    out[e] = l[i] > T(0) ? Os[i * ldv + d] / l[i] : T(0);  // a fully masked row gives 0
  }
  for (int i = tid; i < nq; i += nt) a.lse[bh * L + i0 + i] = l[i] > T(0) ? m[i] + std::log(l[i]) : neg_inf<T>();
}

// delta[r] = sum_d grad_out[r, d] * out[r, d] for the BH L rows: one warp per row.
template <typename T>
__global__ void attention_delta_kernel(const T* __restrict__ g, const T* __restrict__ y, int64_t rows, int64_t Dv,
                                       T* __restrict__ delta) {
  const int64_t r = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;  // whole warps leave together (blockDim is a multiple of 32)
  T acc = T(0);
  for (int64_t d = lane; d < Dv; d += 32) acc += g[r * Dv + d] * y[r * Dv + d];
  for (int off = 16; off > 0; off /= 2) acc += __shfl_down_sync(0xffffffffu, acc, off);
  if (lane == 0) delta[r] = acc;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) attention_backward_kernel(AttentionArgs<T> a, const T* __restrict__ delta,
                                                                      int b, int64_t tiles) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sm = reinterpret_cast<T*>(smem_raw);
  const int64_t bh = blockIdx.x / tiles, j0 = (blockIdx.x % tiles) * b;
  const int64_t L = a.L, S = a.S, D = a.D, Dv = a.Dv;
  const int tid = threadIdx.x, nt = blockDim.x;
  const int nk = static_cast<int>(min(int64_t(b), S - j0));
  const int64_t ldd = D + 1, ldv = Dv + 1, lds = b + 1;
  T* Ks = sm;               // (b, D) this block's keys
  T* Vs = Ks + b * ldd;     // (b, Dv) its values
  T* dKs = Vs + b * ldv;    // (b, D) dK accumulator
  T* dVs = dKs + b * ldd;   // (b, Dv) dV accumulator
  T* Qs = dVs + b * ldv;    // (b, D) a query tile * scale
  T* dYs = Qs + b * ldd;    // (b, Dv) its output gradient
  T* Ps = dYs + b * ldv;    // (b, b) probabilities P[i][j]
  T* dSs = Ps + b * lds;    // (b, b) dE[i][j]
  T* lse_s = dSs + b * lds; // (b,)
  T* dl_s = lse_s + b;      // (b,) D_i

  const T* k = a.k + (bh * S + j0) * D;
  const T* v = a.v + (bh * S + j0) * Dv;
  const T* mask = a.mask ? a.mask + a.mask_offset[bh] : nullptr;
  stage_rows(Ks, ldd, k, D, nk, b, T(1), tid, nt);
  stage_rows(Vs, ldv, v, Dv, nk, b, T(1), tid, nt);
  stage_rows(dKs, ldd, k, D, 0, b, T(1), tid, nt);  // zeros
  stage_rows(dVs, ldv, v, Dv, 0, b, T(1), tid, nt);
  // Causal: keys j0.. are seen by queries i >= j0 only (tiles start on multiples of b).
  for (int64_t i0 = a.causal ? j0 : 0; i0 < L; i0 += b) {
    const int nq = static_cast<int>(min(int64_t(b), L - i0));
    __syncthreads();  // the previous query tile is no longer read
    const T* q = a.q + (bh * L + i0) * D;
    const T* go = a.grad_out + (bh * L + i0) * Dv;
    stage_rows(Qs, ldd, q, D, nq, b, a.scale, tid, nt);
    stage_rows(dYs, ldv, go, Dv, nq, b, T(1), tid, nt);
    for (int i = tid; i < b; i += nt) {
      lse_s[i] = i < nq ? a.lse[bh * L + i0 + i] : neg_inf<T>();
      dl_s[i] = i < nq ? delta[bh * L + i0 + i] : T(0);
    }
    __syncthreads();
    for (int e = tid; e < b * b; e += nt) {
      const int i = e / b, j = e % b;
      T p = T(0), ds = T(0);
      // a fully masked row (lse = -inf) passes no gradient
      if (i < nq && j < nk && lse_s[i] != neg_inf<T>()) {
        p = std::exp(score(a, mask, Qs + i * ldd, Ks + j * ldd, i0 + i, j0 + j) - lse_s[i]);
        T dp = T(0);
        for (int64_t d = 0; d < Dv; ++d) dp += dYs[i * ldv + d] * Vs[j * ldv + d];
        ds = p * (dp - dl_s[i]);
      }
      Ps[i * lds + j] = p;
      dSs[i * lds + j] = ds;
    }
    __syncthreads();
    for (int64_t e = tid; e < nk * Dv; e += nt) {  // dV += P^T dY
      const int64_t j = e / Dv, d = e % Dv;
      T acc = T(0);
      for (int i = 0; i < nq; ++i) acc += Ps[i * lds + j] * dYs[i * ldv + d];
      dVs[j * ldv + d] += acc;
    }
    for (int64_t e = tid; e < nk * D; e += nt) {  // dK += dE^T (Q * scale)
      const int64_t j = e / D, d = e % D;
      T acc = T(0);
      for (int i = 0; i < nq; ++i) acc += dSs[i * lds + j] * Qs[i * ldd + d];
      dKs[j * ldd + d] += acc;
    }
    T* gq = a.grad_q + (bh * L + i0) * D;
    for (int64_t e = tid; e < nq * D; e += nt) {  // dQ += dE K * scale
      const int64_t i = e / D, d = e % D;
      T acc = T(0);
      for (int j = 0; j < nk; ++j) acc += dSs[i * lds + j] * Ks[j * ldd + d];
      atomicAdd(gq + i * D + d, acc * a.scale);
    }
  }
  __syncthreads();
  T* gk = a.grad_k + (bh * S + j0) * D;
  T* gv = a.grad_v + (bh * S + j0) * Dv;
  for (int64_t e = tid; e < nk * D; e += nt) gk[e] = dKs[(e / D) * ldd + e % D];
  for (int64_t e = tid; e < nk * Dv; e += nt) gv[e] = dVs[(e / Dv) * ldv + e % Dv];
}

template <typename T>
size_t forward_smem(int64_t b, int64_t D, int64_t Dv) {
  return sizeof(T) * b * (2 * (D + 1) + 2 * (Dv + 1) + (b + 1) + 3);
}

template <typename T>
size_t backward_smem(int64_t b, int64_t D, int64_t Dv) {
  return sizeof(T) * b * (3 * (D + 1) + 3 * (Dv + 1) + 2 * (b + 1) + 2);
}

// The largest tile side in {32, 16, 8} whose shared memory fits the device; raises the
// kernel's dynamic shared-memory limit when it needs more than the default 48 KiB.
template <typename Kernel>
int pick_tile(Kernel kernel, size_t (*smem)(int64_t, int64_t, int64_t), int64_t D, int64_t Dv, size_t& bytes,
              const char* op) {
  int device = 0, optin = 0;
  PYDL_CUDA_CHECK(cudaGetDevice(&device));
  PYDL_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  for (int b : {32, 16, 8}) {
    bytes = smem(b, D, Dv);
    if (bytes > static_cast<size_t>(optin)) continue;
    if (bytes > 48 * 1024)
      PYDL_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(bytes)));
    return b;
  }
  throw std::invalid_argument(std::string(op) + ": D = " + std::to_string(D) + " and Dv = " + std::to_string(Dv) +
                              " need more shared memory than this device has (" + std::to_string(optin) +
                              " bytes per block) for the CUDA kernel");
}

int64_t blocks_for(int64_t BH, int64_t tiles, const char* op) {
  const int64_t blocks = BH * tiles;
  if (blocks > int64_t(0x7fffffff)) throw std::invalid_argument(std::string(op) + ": too many heads for one launch");
  return blocks;
}

}  // namespace

template <typename T>
void attention_forward(const AttentionArgs<T>& a, cudaStream_t stream) {
  if (a.BH == 0 || a.L == 0) return;
  size_t bytes = 0;
  const int b = pick_tile(attention_forward_kernel<T>, &forward_smem<T>, a.D, a.Dv, bytes, "attention_forward");
  const int64_t tiles = (a.L + b - 1) / b;
  const int64_t blocks = blocks_for(a.BH, tiles, "attention_forward");
  attention_forward_kernel<T><<<unsigned(blocks), kThreads, bytes, stream>>>(a, b, tiles);
  PYDL_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void attention_backward(const AttentionArgs<T>& a, T* delta, cudaStream_t stream) {
  if (a.BH == 0) return;
  if (a.L > 0) PYDL_CUDA_CHECK(cudaMemsetAsync(a.grad_q, 0, sizeof(T) * a.BH * a.L * a.D, stream));
  if (a.S == 0) return;
  if (a.L == 0) {  // no query sees the keys
    PYDL_CUDA_CHECK(cudaMemsetAsync(a.grad_k, 0, sizeof(T) * a.BH * a.S * a.D, stream));
    PYDL_CUDA_CHECK(cudaMemsetAsync(a.grad_v, 0, sizeof(T) * a.BH * a.S * a.Dv, stream));
    return;
  }
  const int64_t rows = a.BH * a.L;
  const int64_t delta_blocks = (rows + 7) / 8;  // 8 warps of 32 per block
  if (delta_blocks > int64_t(0x7fffffff)) throw std::invalid_argument("attention_backward: too many rows");
  attention_delta_kernel<T><<<unsigned(delta_blocks), 256, 0, stream>>>(a.grad_out, a.out, rows, a.Dv, delta);
  PYDL_CUDA_CHECK(cudaGetLastError());
  size_t bytes = 0;
  const int b = pick_tile(attention_backward_kernel<T>, &backward_smem<T>, a.D, a.Dv, bytes, "attention_backward");
  const int64_t tiles = (a.S + b - 1) / b;
  const int64_t blocks = blocks_for(a.BH, tiles, "attention_backward");
  attention_backward_kernel<T><<<unsigned(blocks), kThreads, bytes, stream>>>(a, delta, b, tiles);
  PYDL_CUDA_CHECK(cudaGetLastError());
}

template void attention_forward<float>(const AttentionArgs<float>&, cudaStream_t);
template void attention_forward<double>(const AttentionArgs<double>&, cudaStream_t);
template void attention_backward<float>(const AttentionArgs<float>&, float*, cudaStream_t);
template void attention_backward<double>(const AttentionArgs<double>&, double*, cudaStream_t);

}  // namespace pydl::cuda
