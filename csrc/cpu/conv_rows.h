// Row helpers shared by the conv loops (conv_isa.cpp, conv_depthwise_isa.cpp), compiled
// into each ISA's namespace: valid output ranges of a kernel tap, and short vector copies.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "pydl/conv.h"
#include "pydl/simd.h"

namespace pydl::PYDL_ISA_NS::conv_rows {

using simd::Vec;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }  // a >= 0, b > 0

// Output columns [lo, hi) whose input column ow * S + off (off = kw * D - P) is in [0, W).
inline void valid_columns(int64_t off, int64_t S, int64_t W, int64_t OW, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : ceil_div(-off, S);
  hi = W - off <= 0 ? 0 : std::min(OW, ceil_div(W - off, S));
  lo = std::min(lo, hi);
}

// Short runs (a padding column, a 7- to 55-wide row) are the common case here: they are
// copied and cleared with whole vectors inline, the last one overlapping the previous
// where n is not a multiple of the width, instead of calling memset / memcpy.
template <typename T>
inline void zero(T* p, int64_t n) {
  using V = Vec<T>;
  if (n >= 8 * V::W) {
    std::memset(p, 0, size_t(n) * sizeof(T));
  } else if (n >= V::W) {
    for (int64_t i = 0; i + V::W < n; i += V::W) V::store(p + i, V::zero());
    V::store(p + n - V::W, V::zero());
  } else {
    for (int64_t i = 0; i < n; ++i) p[i] = T(0);
  }
}

// dst[i] = src[i] (dst and src do not overlap)
template <typename T>
inline void copy(T* __restrict dst, const T* __restrict src, int64_t n) {
  using V = Vec<T>;
  if (n >= 16 * V::W) {
    std::memcpy(dst, src, size_t(n) * sizeof(T));
  } else if (n >= V::W) {
    for (int64_t i = 0; i + V::W < n; i += V::W) V::store(dst + i, V::load(src + i));
    V::store(dst + n - V::W, V::load(src + n - V::W));
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
  }
}

// dst[i] += src[i]
template <typename T>
inline void add(T* __restrict dst, const T* __restrict src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

}  // namespace pydl::PYDL_ISA_NS::conv_rows
