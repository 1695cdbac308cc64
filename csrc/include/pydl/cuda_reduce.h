// Warp and block reductions for the CUDA kernels (nvcc only): sums, Welford statistics
// and any other value with a shuffle and an associative merge.
//
// A "team" reduces one row (or one group) together: a warp (32 lanes, __shfl_xor_sync
// only) or a whole block (warps reduce, lane 0 of each writes to shared memory, every
// thread then folds the per-warp values in warp order). The result is the same value,
// bit for bit, in every thread of the team, and the same on every run: the order of the
// merges is fixed by the lane and warp indices, never by timing (no atomics).
//
// Welford: (count, mean, m2 = sum (x - mean)^2) of a set, merged with Chan et al.'s
// formula; the variance m2 / count loses nothing to cancellation (unlike E[x^2] - E[x]^2)
// and accumulates in the input's type. Callers feed it values shifted by one element of
// the set, so that a mean far from zero also costs the final mean no precision.
//
// Rules for callers: blocks are a multiple of 32 threads; every thread of the team calls
// the reduction (no early return before it).
#pragma once
#include <cuda_runtime.h>

namespace pydl::cuda {

constexpr unsigned kFullWarp = 0xffffffffu;
constexpr int kWarp = 32;

template <typename T>
__device__ inline T shfl_xor(T v, int mask) { return __shfl_xor_sync(kFullWarp, v, mask); }
template <typename T>
__device__ inline T shfl_from(T v, int lane) { return __shfl_sync(kFullWarp, v, lane); }

// A pair of sums reduced together (e.g. sum dy and sum dy * xhat).
template <typename T>
struct Pair {
  T a, b;
};
template <typename T>
__device__ inline Pair<T> shfl_xor(Pair<T> v, int mask) { return {shfl_xor(v.a, mask), shfl_xor(v.b, mask)}; }
template <typename T>
__device__ inline Pair<T> shfl_from(Pair<T> v, int lane) { return {shfl_from(v.a, lane), shfl_from(v.b, lane)}; }

struct SumOp {
  template <typename T>
  __device__ T operator()(T x, T y) const { return x + y; }
  template <typename T>
  __device__ Pair<T> operator()(Pair<T> x, Pair<T> y) const { return {x.a + y.a, x.b + y.b}; }
};

// Welford state; no constructors, so that it can live in __shared__ memory.
template <typename T>
struct Welford {
  T n, mean, m2;
};
template <typename T>
__device__ inline void welford_add(Welford<T>& w, T x) {
  w.n += T(1);
  const T d = x - w.mean;
  w.mean += d / w.n;
  w.m2 += d * (x - w.mean);
}
template <typename T>
__device__ inline Welford<T> shfl_xor(Welford<T> v, int mask) {
  return {shfl_xor(v.n, mask), shfl_xor(v.mean, mask), shfl_xor(v.m2, mask)};
}
template <typename T>
__device__ inline Welford<T> shfl_from(Welford<T> v, int lane) {
  return {shfl_from(v.n, lane), shfl_from(v.mean, lane), shfl_from(v.m2, lane)};
}
struct WelfordOp {
  template <typename T>
  __device__ Welford<T> operator()(Welford<T> a, Welford<T> b) const {
    const T n = a.n + b.n;
    if (n == T(0)) return {T(0), T(0), T(0)};
    const T d = b.mean - a.mean, fb = b.n / n;
    return {n, a.mean + d * fb, a.m2 + b.m2 + d * d * a.n * fb};
  }
};
// The biased variance of a Welford state (0 for an empty one), clamped at 0.
template <typename T>
__device__ inline double welford_var(const Welford<T>& w) {
  if (w.n == T(0)) return 0.0;
  const double v = static_cast<double>(w.m2) / static_cast<double>(w.n);
  return v > 0.0 ? v : 0.0;
}

// Butterfly over the warp, then lane 0's value to every lane (the merge need not be
// symmetric bit for bit, so the lanes take one copy).
template <typename V, typename Op>
__device__ inline V warp_reduce(V v, Op op) {
#pragma unroll
  for (int o = kWarp / 2; o > 0; o >>= 1) v = op(v, shfl_xor(v, o));
  return shfl_from(v, 0);
}

// The whole block's value in every thread. Starts with a barrier so that it may be
// called several times in a row (the shared slots are reused).
template <typename V, typename Op>
__device__ inline V block_reduce(V v, Op op) {
  __shared__ V slots[kWarp];
  v = warp_reduce(v, op);
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, warps = (blockDim.x + kWarp - 1) / kWarp;
  __syncthreads();
  if (lane == 0) slots[warp] = v;
  __syncthreads();
  v = slots[0];
  for (int w = 1; w < warps; ++w) v = op(v, slots[w]);
  return v;
}

// A team of threads that owns one row: a warp (kBlock = false; row = warp index in the
// grid) or the block (kBlock = true; row = block index).
template <bool kBlock>
struct Team {
  __device__ static int rank() { return kBlock ? threadIdx.x : threadIdx.x % kWarp; }
  __device__ static int size() { return kBlock ? blockDim.x : kWarp; }
  __device__ static long long first_row() {
    return kBlock ? blockIdx.x : static_cast<long long>(blockIdx.x) * (blockDim.x / kWarp) + threadIdx.x / kWarp;
  }
  __device__ static long long row_step() {
    return kBlock ? gridDim.x : static_cast<long long>(gridDim.x) * (blockDim.x / kWarp);
  }
  template <typename V, typename Op>
  __device__ static V reduce(V v, Op op) {
    if constexpr (kBlock) return block_reduce(v, op);
    else return warp_reduce(v, op);
  }
};

// Blocks for a grid-stride loop over `items` with `per_block` items per block, capped.
inline unsigned grid_for(long long items, long long per_block, long long cap = 65535LL * 16) {
  long long g = (items + per_block - 1) / per_block;
  if (g < 1) g = 1;
  return static_cast<unsigned>(g < cap ? g : cap);
}

}  // namespace pydl::cuda
