// A register-tiled product for small and mid-sized operands that are read where they
// lie, without packing: C(r, lanes) (+)= sum_p A(r, p) B(p, lanes), with A read by scalar
// broadcasts at any strides and B read as contiguous rows (brs apart). For the shapes of
// attention tiles and of an RNN step this beats packing both operands for pydl's gemm:
// (64, 512) @ (512, 256) in float32 runs at ~250 GFLOP/s on one AVX-512 core, against
// ~185 for gemm, whose packing (and 12-row tiles, 72 rows computed for 64) costs more than
// the product saves at these sizes.
//
// Include from a source compiled per ISA (PYDL_ISA_SOURCES) only: the code lands in that
// ISA's namespace. Used by csrc/cpu/attention_isa.cpp and csrc/cpu/rnn_isa.cpp.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "pydl/isa.h"
#include "pydl/simd.h"

namespace pydl::PYDL_ISA_NS::tiles {

using simd::Vec;

// Micro-tile: MR rows x NV vectors of accumulators (AVX-512: 24 of 32 zmm; AVX2 and the
// baseline: 12 of 16 registers).
#if defined(__AVX512F__)
constexpr int kMR = 6, kNV = 4;
#else
constexpr int kMR = 6, kNV = 2;
#endif

enum Mode { kStore = 0, kAccumulate = 1, kScaleAccumulate = 2 };

// C(r, 0:NV*W) = [C * lane_scale (kScaleAccumulate) | C (kAccumulate) | 0 (kStore)]
//               + sum_{p < K} A[r * ars + p * acs] * B[p * brs + 0:NV*W]      for r < MR
template <typename T, int MR, int NV, int MODE>
void tile_kernel(int64_t K, const T* __restrict A, int64_t ars, int64_t acs, const T* __restrict B, int64_t brs,
                 T* C, int64_t crs, const T* lane_scale) {
  using V = Vec<T>;
  using R = typename V::R;
  constexpr int W = V::W;
  R acc[MR][NV];
  if constexpr (MODE == kStore) {
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = V::zero();
  } else {
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        acc[r][v] = V::load(C + r * crs + v * W);
        if constexpr (MODE == kScaleAccumulate) acc[r][v] = V::mul(acc[r][v], V::load(lane_scale + v * W));
      }
  }
#pragma GCC unroll 2
  for (int64_t p = 0; p < K; ++p) {
    R bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = V::load(B + p * brs + v * W);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const R av = V::set1(A[r * ars + p * acs]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = V::fma(av, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) V::store(C + r * crs + v * W, acc[r][v]);
}

template <typename T>
using TileFn = void (*)(int64_t, const T*, int64_t, int64_t, const T*, int64_t, T*, int64_t, const T*);

template <typename T, int MODE, int MR, int... NVs>
constexpr std::array<TileFn<T>, sizeof...(NVs)> tile_row(std::integer_sequence<int, NVs...>) {
  return {&tile_kernel<T, MR, NVs + 1, MODE>...};
}
template <typename T, int MODE, int... MRs>
constexpr std::array<std::array<TileFn<T>, kNV>, sizeof...(MRs)> tile_table(std::integer_sequence<int, MRs...>) {
  return {tile_row<T, MODE, MRs + 1>(std::make_integer_sequence<int, kNV>{})...};
}

// C (M rows, `lanes` columns, a multiple of W) (+)= A (M x K, strided) @ B (K x lanes,
// rows brs apart), in MR x NV*W register tiles; ragged edges use the smaller tiles.
template <typename T, int MODE>
void tile_product(int64_t M, int64_t lanes, int64_t K, const T* A, int64_t ars, int64_t acs, const T* B, int64_t brs,
                  T* C, int64_t crs, const T* lane_scale = nullptr) {
  static constexpr auto table = tile_table<T, MODE>(std::make_integer_sequence<int, kMR>{});
  constexpr int64_t W = Vec<T>::W;
  for (int64_t c0 = 0; c0 < lanes; c0 += kNV * W) {
    const int nv = static_cast<int>(std::min<int64_t>(kNV, (lanes - c0) / W));
    const T* ls = lane_scale ? lane_scale + c0 : nullptr;
    for (int64_t r0 = 0; r0 < M; r0 += kMR) {
      const int mr = static_cast<int>(std::min<int64_t>(kMR, M - r0));
      table[mr - 1][nv - 1](K, A + r0 * ars, ars, acs, B + c0, brs, C + r0 * crs + c0, crs, ls);
    }
  }
}

}  // namespace pydl::PYDL_ISA_NS::tiles
