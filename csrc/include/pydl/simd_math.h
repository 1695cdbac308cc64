// Vector math on pydl::simd::Vec registers: exp, and the few lane operations the
// softmax family needs beyond simd.h (a 0/1 lane mask, partial loads and stores for
// row tails).
//
// exp(x), float and double, one algorithm on every ISA (Cody-Waite range reduction):
//   n = round(x / ln 2),  r = x - n ln2_hi - n ln2_lo  (|r| <= ln2 / 2, the split keeps
//   n ln2_hi exact so r carries no cancellation error),  exp(x) = 2^n e^r.
//   e^r = 1 + r + r^2 P(r): float P is Cephes' degree-5 minimax (expf, ~1 ulp); double
//   P is the Taylor series to r^13 (truncation 4e-18 on |r| <= 0.347, ~1-2 ulp).
//   2^n: AVX-512 scales with vscalefps/pd; AVX2 and the baseline build 2^n from exponent
//   bits in two halves 2^(n/2) 2^(n - n/2) so that overflow to inf, gradual underflow to
//   denormals and 0 all come out of IEEE rounding with no special cases.
// Range: x is clamped to [lo, hi] just past where exp underflows to 0 / overflows to
// inf, so exp(-inf) = 0 and exp(+inf) = inf. NaN propagates: max/min are written as
// max(limit, x), which returns x when x is NaN (the x86 rule: the second operand wins).
// Checked by tests/kernels/test_softmax.py (test_vector_exp_*) against numpy.exp.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "pydl/simd.h"

namespace pydl::simd {

template <typename T>
struct ExpConst;
template <>
struct ExpConst<float> {
  static constexpr float lo = -104.0f, hi = 89.0f;  // exp(lo) < half the smallest denormal, exp(hi) > FLT_MAX
  static constexpr float log2e = 1.44269504088896341f;
  static constexpr float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;  // Cephes' split
};
template <>
struct ExpConst<double> {
  static constexpr double lo = -746.0, hi = 710.0;
  static constexpr double log2e = 1.4426950408889634074;
  static constexpr double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;  // fdlibm
};

// e^r on |r| <= ln2 / 2, as 1 + r + r^2 P(r).
template <typename T>
inline typename Vec<T>::R exp_reduced(typename Vec<T>::R r) {
  using V = Vec<T>;
  typename V::R p;
  if constexpr (sizeof(T) == 4) {
    p = V::set1(1.9875691500E-4f);
    p = V::fma(p, r, V::set1(1.3981999507E-3f));
    p = V::fma(p, r, V::set1(8.3334519073E-3f));
    p = V::fma(p, r, V::set1(4.1665795894E-2f));
    p = V::fma(p, r, V::set1(1.6666665459E-1f));
    p = V::fma(p, r, V::set1(5.0000001201E-1f));
  } else {
    // 1/13!, 1/12!, ..., 1/2!
    static constexpr double c[12] = {1.6059043836821613e-10, 2.0876756987868099e-09, 2.5052108385441720e-08,
                                     2.7557319223985893e-07, 2.7557319223985888e-06, 2.4801587301587302e-05,
                                     1.9841269841269841e-04, 1.3888888888888889e-03, 8.3333333333333332e-03,
                                     4.1666666666666664e-02, 1.6666666666666666e-01, 5.0000000000000000e-01};
    p = V::set1(c[0]);
    for (int k = 1; k < 12; ++k) p = V::fma(p, r, V::set1(c[k]));
  }
  return V::fma(p, V::mul(r, r), V::add(r, V::set1(T(1))));
}

#if defined(__AVX512F__)

inline __m512 round_nearest(__m512 x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline __m512d round_nearest(__m512d x) { return _mm512_roundscale_pd(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline __m512 clamp(__m512 x, float lo, float hi) { return _mm512_max_ps(_mm512_set1_ps(lo), _mm512_min_ps(_mm512_set1_ps(hi), x)); }
inline __m512d clamp(__m512d x, double lo, double hi) { return _mm512_max_pd(_mm512_set1_pd(lo), _mm512_min_pd(_mm512_set1_pd(hi), x)); }
inline __m512 scale_pow2(__m512 p, __m512 n) { return _mm512_scalef_ps(p, n); }
inline __m512d scale_pow2(__m512d p, __m512d n) { return _mm512_scalef_pd(p, n); }
// 1 where x > 0, else 0 (NaN -> 0).
inline __m512 positive_mask01(__m512 x) {
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ), _mm512_set1_ps(1.0f));
}
inline __m512d positive_mask01(__m512d x) {
  return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_GT_OQ), _mm512_set1_pd(1.0));
}

#elif defined(__AVX2__) && defined(__FMA__)

inline __m256 round_nearest(__m256 x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline __m256d round_nearest(__m256d x) { return _mm256_round_pd(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline __m256 clamp(__m256 x, float lo, float hi) { return _mm256_max_ps(_mm256_set1_ps(lo), _mm256_min_ps(_mm256_set1_ps(hi), x)); }
inline __m256d clamp(__m256d x, double lo, double hi) { return _mm256_max_pd(_mm256_set1_pd(lo), _mm256_min_pd(_mm256_set1_pd(hi), x)); }
inline __m256 scale_pow2(__m256 p, __m256 n) {
  // n is integral in [-151, 129]: 2^n = 2^a 2^b with a = n >> 1, b = n - a, both normal.
  __m256i ni = _mm256_cvtps_epi32(n);
  __m256i a = _mm256_srai_epi32(ni, 1), b = _mm256_sub_epi32(ni, a);
  __m256 sa = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(a, _mm256_set1_epi32(127)), 23));
  __m256 sb = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(127)), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, sa), sb);
}
inline __m256d scale_pow2(__m256d p, __m256d n) {
  __m128i ni = _mm256_cvtpd_epi32(n);
  __m128i a = _mm_srai_epi32(ni, 1), b = _mm_sub_epi32(ni, a);
  const __m256i bias = _mm256_set1_epi64x(1023);
  __m256d sa = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(a), bias), 52));
  __m256d sb = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(b), bias), 52));
  return _mm256_mul_pd(_mm256_mul_pd(p, sa), sb);
}
inline __m256 positive_mask01(__m256 x) {
  return _mm256_and_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ), _mm256_set1_ps(1.0f));
}
inline __m256d positive_mask01(__m256d x) {
  return _mm256_and_pd(_mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_GT_OQ), _mm256_set1_pd(1.0));
}

#else

template <typename R>
inline R round_nearest(R x) {
  // Adding and removing 1.5 * 2^(mantissa bits) rounds to nearest (|x| < 2^22 here).
  using T = decltype(x[0] + 0);
  const T magic = sizeof(T) == 4 ? T(12582912.0) : T(6755399441055744.0);
  return (x + magic) - magic;  // not folded: without -ffast-math this is no identity
}
template <typename R, typename T>
inline R clamp(R x, T lo, T hi) {
  R l = R{} + lo, h = R{} + hi;
  R y = h < x ? h : x;  // NaN: the comparison is false, x (NaN) is kept
  return l > y ? l : y;
}
template <typename R>
inline R scale_pow2(R p, R n) {
  using T = decltype(p[0] + 0);
  using I = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  typedef I IV __attribute__((vector_size(16)));
  constexpr int bits = sizeof(T) == 4 ? 23 : 52;
  constexpr I bias = sizeof(T) == 4 ? 127 : 1023;
  IV ni = __builtin_convertvector(n, IV);
  IV a = ni >> 1, b = ni - a;
  R sa = (R)((a + bias) << bits);  // a vector cast between equal sizes reinterprets the bits
  R sb = (R)((b + bias) << bits);
  return p * sa * sb;
}
template <typename R>
inline R positive_mask01(R x) {
  return x > R{} ? R{} + 1 : R{};
}

#endif

template <typename T>
inline typename Vec<T>::R exp(typename Vec<T>::R x) {
  using V = Vec<T>;
  using K = ExpConst<T>;
  x = clamp(x, K::lo, K::hi);
  typename V::R n = round_nearest(V::mul(x, V::set1(K::log2e)));
  typename V::R r = V::sub(x, V::mul(n, V::set1(K::ln2_hi)));  // exact: ln2_hi has few mantissa bits
  r = V::sub(r, V::mul(n, V::set1(K::ln2_lo)));
  return scale_pow2(exp_reduced<T>(r), n);
}

// The first `n` (< W) lanes from p, the others set to `fill`.
template <typename T>
inline typename Vec<T>::R load_partial(const T* p, int64_t n, T fill) {
  alignas(64) T buf[Vec<T>::W];
  for (int i = 0; i < Vec<T>::W; ++i) buf[i] = i < n ? p[i] : fill;
  return Vec<T>::load(buf);
}

// Stores the first `n` (< W) lanes of v to p.
template <typename T>
inline void store_partial(T* p, typename Vec<T>::R v, int64_t n) {
  alignas(64) T buf[Vec<T>::W];
  Vec<T>::store(buf, v);
  std::memcpy(p, buf, static_cast<size_t>(n) * sizeof(T));
}

}  // namespace pydl::simd
