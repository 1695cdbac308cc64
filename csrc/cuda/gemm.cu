// gemm on the GPU: C(M, N) = alpha * A(M, K) @ B(K, N) + beta * C, batched by grid.z.
//
// Two kernels.
//
// gemm_simt (float32 and float64, the default): register-blocked SGEMM. A block of 256
// threads computes a 128 x 128 tile of C, each thread an 8 x 8 register block (rows
// ty*4 + {0..3} and 64 + ty*4 + {0..3}, columns likewise from tx, so that every shared
// memory read is one 4-wide vector); products of at most 64 rows use 64 x 128 tiles of 128
// threads instead (a conv layer of 64 channels would leave half of a 128-row tile idle). The K loop stages 128 x 8 tiles of A and of B in
// shared memory, double-buffered: the next tile is read from global memory into
// registers while the current one is multiplied, then stored into the other buffer (one
// barrier per step). Both tiles are kept k-major, tile[p][r] (r = row of op(A) or
// column of op(B)), so the inner product reads a row of each.
// Global reads: each thread reads 4 consecutive elements along the operand's contiguous
// axis, as one 16-byte vector when that axis has stride 1, the other stride is a multiple
// of 4 and the base is 16-byte aligned (the common contiguous and transposed cases), and
// element by element through the strides otherwise (sliced or negative-stride views):
// no operand is ever copied.
//
// gemm_wmma (float32 data, opt-in): tensor cores through nvcuda::wmma (sm_80+), fp32
// accumulation. Operands are rounded when staged in shared memory: to TF32 (10-bit
// mantissa, round to nearest) or to bfloat16 (7-bit mantissa, round to nearest even).
// A block of 8 warps computes a 128 x 128 tile (each warp 64 x 32: 4 x 2 fragments of
// 16 x 16) over K steps of 32, read from global memory as the SIMT kernel reads (16-byte
// vectors along the contiguous axis where aligned) into registers one step ahead, so that
// the reads overlap the tensor-core work; the accumulators go back through a 16 x 16
// staging tile per warp so that alpha, beta and the edges are applied element by element.
// Precision: each product carries the rounding of its two factors (relative 2^-11 for
// TF32, 2^-8 for bf16), so a length-K sum of unit-size products is off by about
// sqrt(K) * 2^-11 (TF32) or sqrt(K) * 2^-8 (bf16): tests/kernels/test_gemm.py states the
// tolerances it allows.
//
// Workspace: shared memory only -- 2 x 2 x 8 x 132 elements (simt: 16.5 KiB float, 33 KiB
// double); 128 x 36 + 32 x 132 floats + 8 KiB staging (TF32: 42.5 KiB) or the bf16 half
// of the operand tiles (26.5 KiB). Nothing in global memory.
// Checked by tests/kernels/test_gemm.py (marked cuda) against the float64 reference.
#include <cuda_bf16.h>
#include <mma.h>

#include <cstdint>
#include <stdexcept>
#include <type_traits>

#include "pydl/cuda_check.h"
#include "pydl/gemm_cuda.h"

namespace pydl::cuda {
namespace {

constexpr int64_t kMaxGridZ = 65535;  // products per launch (grid.z); more run in chunks

// ---------------------------------------------------------------------------------------
// gemm_simt
// ---------------------------------------------------------------------------------------

// Block tile TBM x BN (TBM = 128, or 64 for products of at most 64 rows, such as the
// 64-channel layers of a ResNet: a 128-row tile would leave half its threads idle),
// 2 TBM threads of 8 x 8 each, K steps of BK.
constexpr int BN = 128, BK = 8;
constexpr int PAD = 4;  // tile rows padded by one vector: the k-fast stores hit distinct banks

// One operand seen as an R x K matrix: element (r, p) at base[r * s_r + p * s_p].
// A: r = row i of op(A). B: r = column j of op(B).
template <typename T>
struct Operand {
  const T* base;
  int64_t s_r, s_p, R;
  bool p_fast;  // the thread's 4 elements run along p (K) rather than along r
  bool vec;     // ... and are one aligned 16-byte-aligned vector read
};

// Four consecutive elements; one 16-byte load for float, two for double.
template <typename T>
__device__ __forceinline__ void load4(const T* src, T (&dst)[4]) {
  if constexpr (std::is_same_v<T, float>) {
    const float4 v = *reinterpret_cast<const float4*>(src);
    dst[0] = v.x, dst[1] = v.y, dst[2] = v.z, dst[3] = v.w;
  } else {
    const double2 v0 = reinterpret_cast<const double2*>(src)[0], v1 = reinterpret_cast<const double2*>(src)[1];
    dst[0] = v0.x, dst[1] = v0.y, dst[2] = v1.x, dst[3] = v1.y;
  }
}

template <typename T>
__device__ __forceinline__ void store4(T* dst, const T (&src)[4]) {
  if constexpr (std::is_same_v<T, float>) {
    *reinterpret_cast<float4*>(dst) = make_float4(src[0], src[1], src[2], src[3]);
  } else {
    reinterpret_cast<double2*>(dst)[0] = make_double2(src[0], src[1]);
    reinterpret_cast<double2*>(dst)[1] = make_double2(src[2], src[3]);
  }
}

// Where vector v of an RT x TK operand tile lies in it: 4 consecutive elements along the
// fast axis, from (rl, pl) -- p_fast: row v / (TK / 4), columns (v % (TK / 4)) * 4 + {0..3};
// else column v / (RT / 4), rows (v % (RT / 4)) * 4 + {0..3}. Consecutive v walk the fast axis.
template <int RT, int TK>
__device__ __forceinline__ void vector_place(bool p_fast, int v, int& rl, int& pl) {
  rl = p_fast ? v / (TK / 4) : (v % (RT / 4)) * 4;
  pl = p_fast ? (v % (TK / 4)) * 4 : v / (RT / 4);
}

// Vector v of the RT x TK tile at (r0, k0): one 16-byte read where it is whole and aligned,
// else element by element (zeros past the edges).
template <int RT, int TK, typename T>
__device__ __forceinline__ void load_vector(const Operand<T>& o, int64_t r0, int64_t k0, int64_t K, int v,
                                            T (&out)[4]) {
  int rl, pl;
  vector_place<RT, TK>(o.p_fast, v, rl, pl);
  const int64_t r = r0 + rl, p = k0 + pl;
  const bool whole = o.p_fast ? (r < o.R && p + 3 < K) : (r + 3 < o.R && p < K);
  if (o.vec && whole) {
    load4(o.base + r * o.s_r + p * o.s_p, out);
    return;
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t ri = o.p_fast ? r : r + i, pi = o.p_fast ? p + i : p;
    out[i] = (ri < o.R && pi < K) ? o.base[ri * o.s_r + pi * o.s_p] : T(0);
  }
}

// The (RT x BK) tile at k0, VPT vectors a thread (vector tid + q * threads), into registers.
template <int RT, int VPT, typename T>
__device__ __forceinline__ void load_tile(const Operand<T>& o, int64_t r0, int64_t k0, int64_t K, int tid,
                                          T (&v)[VPT][4]) {
#pragma unroll
  for (int q = 0; q < VPT; ++q) load_vector<RT, BK>(o, r0, k0, K, tid + q * (RT * BK / 4 / VPT), v[q]);
}

// The same vectors into tile[p][r] (rows of RT + PAD).
template <int RT, int VPT, typename T>
__device__ __forceinline__ void store_tile(bool p_fast, int tid, const T (&v)[VPT][4], T (*tile)[RT + PAD]) {
#pragma unroll
  for (int q = 0; q < VPT; ++q) {
    int rl, pl;
    vector_place<RT, BK>(p_fast, tid + q * (RT * BK / 4 / VPT), rl, pl);
    if (p_fast) {
#pragma unroll
      for (int i = 0; i < 4; ++i) tile[pl + i][rl] = v[q][i];
    } else {
      store4(&tile[pl][rl], v[q]);
    }
  }
}

template <typename T, int TBM>
__global__ void __launch_bounds__(2 * TBM)
gemm_simt(int64_t M, int64_t N, int64_t K, Operand<T> a, int64_t bs_a, Operand<T> b, int64_t bs_b,
          T* __restrict__ C, int64_t bs_c, int64_t rs_c, T alpha, T beta) {
  constexpr int THREADS = 2 * TBM, VA = TBM * BK / 4 / THREADS, VB = BN * BK / 4 / THREADS;  // vectors a thread
  __shared__ __align__(16) T a_tile[2][BK][TBM + PAD];  // a_tile[.][p][i] = A(row0 + i, k0 + p)
  __shared__ __align__(16) T b_tile[2][BK][BN + PAD];   // b_tile[.][p][j] = B(k0 + p, col0 + j)
  const int64_t z = blockIdx.z;
  a.base += z * bs_a;
  b.base += z * bs_b;
  C += z * bs_c;
  const int64_t row0 = int64_t(blockIdx.y) * TBM, col0 = int64_t(blockIdx.x) * BN;
  // thread (ty, tx): rows ty * 4 + {0..3} and TBM / 2 + ty * 4 + {0..3}, columns likewise from tx
  const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;

  T acc[8][8] = {};
  T va[VA][4], vb[VB][4];
  load_tile<TBM>(a, row0, 0, K, tid, va);
  load_tile<BN>(b, col0, 0, K, tid, vb);
  store_tile<TBM>(a.p_fast, tid, va, a_tile[0]);
  store_tile<BN>(b.p_fast, tid, vb, b_tile[0]);
  __syncthreads();

  const int64_t steps = (K + BK - 1) / BK;
  for (int64_t s = 0; s < steps; ++s) {
    const int cur = int(s & 1);
    const bool more = s + 1 < steps;
    if (more) {  // the next tile's global reads overlap this tile's products
      load_tile<TBM>(a, row0, (s + 1) * BK, K, tid, va);
      load_tile<BN>(b, col0, (s + 1) * BK, K, tid, vb);
    }
#pragma unroll
    for (int p = 0; p < BK; ++p) {
      T ra[8], rb[8];
      T lo[4], hi[4];
      load4(&a_tile[cur][p][ty * 4], lo);
      load4(&a_tile[cur][p][TBM / 2 + ty * 4], hi);
#pragma unroll
      for (int i = 0; i < 4; ++i) ra[i] = lo[i], ra[4 + i] = hi[i];
      load4(&b_tile[cur][p][tx * 4], lo);
      load4(&b_tile[cur][p][64 + tx * 4], hi);
#pragma unroll
      for (int i = 0; i < 4; ++i) rb[i] = lo[i], rb[4 + i] = hi[i];
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] += ra[i] * rb[j];
    }
    if (more) {  // the other buffer was last read before the previous barrier
      store_tile<TBM>(a.p_fast, tid, va, a_tile[cur ^ 1]);
      store_tile<BN>(b.p_fast, tid, vb, b_tile[cur ^ 1]);
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int64_t gi = row0 + (i < 4 ? ty * 4 + i : TBM / 2 + ty * 4 + i - 4);
    if (gi >= M) continue;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int64_t gj = col0 + (j < 4 ? tx * 4 + j : 64 + tx * 4 + j - 4);
      if (gj >= N) continue;
      T* c = C + gi * rs_c + gj;
      *c = beta == T(0) ? alpha * acc[i][j] : alpha * acc[i][j] + beta * *c;
    }
  }
}

// R x K view of an operand; vector reads when the thread's 4 elements are contiguous and
// every vector start is 16-byte aligned (base aligned, the other stride a multiple of 4).
template <typename T>
Operand<T> operand(const T* base, int64_t s_r, int64_t s_p, int64_t R, int64_t bs) {
  Operand<T> o{base, s_r, s_p, R, false, false};
  // The axis with the smaller stride is walked by consecutive elements of a thread.
  const auto mag = [](int64_t v) { return v < 0 ? -v : v; };
  o.p_fast = mag(s_p) <= mag(s_r);
  const bool aligned = reinterpret_cast<uintptr_t>(base) % 16 == 0 && bs % 4 == 0;
  o.vec = aligned && (o.p_fast ? (s_p == 1 && s_r % 4 == 0) : (s_r == 1 && s_p % 4 == 0));
  return o;
}

// ---------------------------------------------------------------------------------------
// gemm_wmma: TF32 / bf16 tensor cores, fp32 accumulation
// ---------------------------------------------------------------------------------------

namespace wmma = nvcuda::wmma;
constexpr int TC_BM = 128, TC_BN = 128, TC_BK = 32, TC_WARPS = 8;

// E: how an operand element is staged (float holding a TF32 value, or bf16); WK: the
// fragment depth (8 for TF32, 16 for bf16); AK / BNP: padded tile rows (wmma wants a
// row length in multiples of 16 bytes, and the padding spreads the rows over the banks).
template <typename E>
struct TcTraits;
template <>
struct TcTraits<float> {
  static constexpr int WK = 8, AK = TC_BK + 4, BNP = TC_BN + 4;
  using Prec = wmma::precision::tf32;
  static __device__ __forceinline__ float round(float v) { return wmma::__float_to_tf32(v); }
};
template <>
struct TcTraits<__nv_bfloat16> {
  static constexpr int WK = 16, AK = TC_BK + 8, BNP = TC_BN + 8;
  using Prec = __nv_bfloat16;
  static __device__ __forceinline__ __nv_bfloat16 round(float v) { return __float2bfloat16(v); }
};

template <typename E>
__global__ void __launch_bounds__(TC_WARPS * 32)
gemm_wmma(int64_t M, int64_t N, int64_t K, Operand<float> a, int64_t bs_a, Operand<float> b, int64_t bs_b,
          float* __restrict__ C, int64_t bs_c, int64_t rs_c, float alpha, float beta) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  using Tr = TcTraits<E>;
  constexpr int VECTORS = TC_BM * TC_BK / 4 / (TC_WARPS * 32);  // 4-element vectors of a tile per thread
  __shared__ __align__(128) E a_tile[TC_BM][Tr::AK];   // a_tile[i][p] = A(row0 + i, k0 + p), rounded
  __shared__ __align__(128) E b_tile[TC_BK][Tr::BNP];  // b_tile[p][j] = B(k0 + p, col0 + j), rounded
  __shared__ __align__(128) float stage[TC_WARPS][16 * 16];
  const int64_t z = blockIdx.z;
  a.base += z * bs_a;
  b.base += z * bs_b;
  C += z * bs_c;
  const int64_t row0 = int64_t(blockIdx.y) * TC_BM, col0 = int64_t(blockIdx.x) * TC_BN;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int wm = warp / 4, wn = warp % 4;  // this warp's 64 x 32 piece: rows wm * 64, columns wn * 32

  wmma::fragment<wmma::accumulator, 16, 16, Tr::WK, float> acc[4][2];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  // The next K step's operands wait in registers while the tensor cores work on this one.
  float va[VECTORS][4], vb[VECTORS][4];
#pragma unroll
  for (int q = 0; q < VECTORS; ++q) {
    load_vector<TC_BM, TC_BK>(a, row0, 0, K, tid + q * TC_WARPS * 32, va[q]);
    load_vector<TC_BM, TC_BK>(b, col0, 0, K, tid + q * TC_WARPS * 32, vb[q]);
  }
  for (int64_t k0 = 0; k0 < K; k0 += TC_BK) {
#pragma unroll
    for (int q = 0; q < VECTORS; ++q) {  // registers -> shared memory, rounded to E
      int rl, pl;
      vector_place<TC_BM, TC_BK>(a.p_fast, tid + q * TC_WARPS * 32, rl, pl);
#pragma unroll
      for (int e = 0; e < 4; ++e) a_tile[a.p_fast ? rl : rl + e][a.p_fast ? pl + e : pl] = Tr::round(va[q][e]);
      vector_place<TC_BM, TC_BK>(b.p_fast, tid + q * TC_WARPS * 32, rl, pl);  // B: r = column j, p = k
#pragma unroll
      for (int e = 0; e < 4; ++e) b_tile[b.p_fast ? pl + e : pl][b.p_fast ? rl : rl + e] = Tr::round(vb[q][e]);
    }
    __syncthreads();
    if (k0 + TC_BK < K) {
#pragma unroll
      for (int q = 0; q < VECTORS; ++q) {
        load_vector<TC_BM, TC_BK>(a, row0, k0 + TC_BK, K, tid + q * TC_WARPS * 32, va[q]);
        load_vector<TC_BM, TC_BK>(b, col0, k0 + TC_BK, K, tid + q * TC_WARPS * 32, vb[q]);
      }
    }
#pragma unroll
    for (int kk = 0; kk < TC_BK; kk += Tr::WK) {
      wmma::fragment<wmma::matrix_a, 16, 16, Tr::WK, typename Tr::Prec, wmma::row_major> af[4];
      wmma::fragment<wmma::matrix_b, 16, 16, Tr::WK, typename Tr::Prec, wmma::row_major> bf[2];
#pragma unroll
      for (int i = 0; i < 4; ++i) wmma::load_matrix_sync(af[i], &a_tile[wm * 64 + i * 16][kk], Tr::AK);
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(bf[j], &b_tile[kk][wn * 32 + j * 16], Tr::BNP);
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], af[i], bf[j], acc[i][j]);
    }
    __syncthreads();
  }

  float* st = stage[warp];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      wmma::store_matrix_sync(st, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      for (int e = lane; e < 256; e += 32) {
        const int64_t gi = row0 + wm * 64 + i * 16 + e / 16, gj = col0 + wn * 32 + j * 16 + e % 16;
        if (gi < M && gj < N) {
          float* c = C + gi * rs_c + gj;
          *c = beta == 0.0f ? alpha * st[e] : alpha * st[e] + beta * *c;
        }
      }
      __syncwarp();
    }
#endif
}

// Launches `kernel` over grid (x, y) for `batch` products, at most kMaxGridZ per launch.
template <typename Launch>
void over_batch(int64_t batch, Launch launch) {
  for (int64_t z0 = 0; z0 < batch; z0 += kMaxGridZ) {
    launch(z0, static_cast<unsigned>(batch - z0 < kMaxGridZ ? batch - z0 : kMaxGridZ));
    PYDL_CUDA_CHECK(cudaGetLastError());
  }
}

dim3 tile_grid(int64_t M, int64_t N, int64_t tile_m, int64_t tile_n, unsigned z) {
  const int64_t gy = (M + tile_m - 1) / tile_m;
  if (gy > 65535) throw std::invalid_argument("gemm (cuda): M too large for one launch");
  return dim3(static_cast<unsigned>((N + tile_n - 1) / tile_n), static_cast<unsigned>(gy), z);
}

}  // namespace

template <typename T>
void gemm(int64_t batch, int64_t M, int64_t N, int64_t K,
          const T* A, int64_t bs_a, int64_t rs_a, int64_t cs_a,
          const T* B, int64_t bs_b, int64_t rs_b, int64_t cs_b,
          T* C, int64_t bs_c, int64_t rs_c, T alpha, T beta, cudaStream_t stream) {
  if (batch == 0 || M == 0 || N == 0) return;
  over_batch(batch, [&](int64_t z0, unsigned nz) {
    const Operand<T> a = operand(A + z0 * bs_a, rs_a, cs_a, M, bs_a);
    const Operand<T> b = operand(B + z0 * bs_b, cs_b, rs_b, N, bs_b);
    if (M <= 64)
      gemm_simt<T, 64><<<tile_grid(M, N, 64, BN, nz), 128, 0, stream>>>(M, N, K, a, bs_a, b, bs_b, C + z0 * bs_c,
                                                                         bs_c, rs_c, alpha, beta);
    else
      gemm_simt<T, 128><<<tile_grid(M, N, 128, BN, nz), 256, 0, stream>>>(M, N, K, a, bs_a, b, bs_b, C + z0 * bs_c,
                                                                           bs_c, rs_c, alpha, beta);
  });
}

void gemm_tensor_core(TensorCorePrecision precision, int64_t batch, int64_t M, int64_t N, int64_t K,
                      const float* A, int64_t bs_a, int64_t rs_a, int64_t cs_a,
                      const float* B, int64_t bs_b, int64_t rs_b, int64_t cs_b,
                      float* C, int64_t bs_c, int64_t rs_c, float alpha, float beta, cudaStream_t stream) {
  if (batch == 0 || M == 0 || N == 0) return;
  int device = 0, major = 0;
  PYDL_CUDA_CHECK(cudaGetDevice(&device));
  PYDL_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  if (major < 8)
    throw std::invalid_argument("gemm (cuda): precision='tf32' / 'bf16' needs tensor cores of compute capability 8.0 "
                                "or newer (Ampere, Hopper)");
  over_batch(batch, [&](int64_t z0, unsigned nz) {
    const dim3 grid = tile_grid(M, N, TC_BM, TC_BN, nz);
    const Operand<float> a = operand(A + z0 * bs_a, rs_a, cs_a, M, bs_a);
    const Operand<float> b = operand(B + z0 * bs_b, cs_b, rs_b, N, bs_b);
    float* c = C + z0 * bs_c;
    if (precision == TensorCorePrecision::tf32)
      gemm_wmma<float><<<grid, TC_WARPS * 32, 0, stream>>>(M, N, K, a, bs_a, b, bs_b, c, bs_c, rs_c, alpha, beta);
    else
      gemm_wmma<__nv_bfloat16><<<grid, TC_WARPS * 32, 0, stream>>>(M, N, K, a, bs_a, b, bs_b, c, bs_c, rs_c, alpha,
                                                                    beta);
  });
}

template void gemm<float>(int64_t, int64_t, int64_t, int64_t, const float*, int64_t, int64_t, int64_t, const float*,
                          int64_t, int64_t, int64_t, float*, int64_t, int64_t, float, float, cudaStream_t);
template void gemm<double>(int64_t, int64_t, int64_t, int64_t, const double*, int64_t, int64_t, int64_t,
                           const double*, int64_t, int64_t, int64_t, double*, int64_t, int64_t, double, double,
                           cudaStream_t);

}  // namespace pydl::cuda
