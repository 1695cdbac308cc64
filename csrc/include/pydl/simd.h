// A thin vector type per ISA, so one kernel source compiles to AVX-512, AVX2+FMA or the
// x86-64 baseline. Vec<T>::W is the number of lanes. Only what the kernels need is here.
#pragma once
#include <cstring>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace pydl::simd {

template <typename T>
struct Vec;

#if defined(__AVX512F__)
template <>
struct Vec<float> {
  using R = __m512;
  static constexpr int W = 16;
  static R load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, R v) { _mm512_storeu_ps(p, v); }
  static R set1(float x) { return _mm512_set1_ps(x); }
  static R zero() { return _mm512_setzero_ps(); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
  static R sub(R a, R b) { return _mm512_sub_ps(a, b); }
  static R max(R a, R b) { return _mm512_max_ps(a, b); }
  static float hsum(R v) { return _mm512_reduce_add_ps(v); }
  static float hmax(R v) { return _mm512_reduce_max_ps(v); }
};
template <>
struct Vec<double> {
  using R = __m512d;
  static constexpr int W = 8;
  static R load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, R v) { _mm512_storeu_pd(p, v); }
  static R set1(double x) { return _mm512_set1_pd(x); }
  static R zero() { return _mm512_setzero_pd(); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
  static R mul(R a, R b) { return _mm512_mul_pd(a, b); }
  static R add(R a, R b) { return _mm512_add_pd(a, b); }
  static R sub(R a, R b) { return _mm512_sub_pd(a, b); }
  static R max(R a, R b) { return _mm512_max_pd(a, b); }
  static double hsum(R v) { return _mm512_reduce_add_pd(v); }
  static double hmax(R v) { return _mm512_reduce_max_pd(v); }
};
#elif defined(__AVX2__) && defined(__FMA__)
template <>
struct Vec<float> {
  using R = __m256;
  static constexpr int W = 8;
  static R load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, R v) { _mm256_storeu_ps(p, v); }
  static R set1(float x) { return _mm256_set1_ps(x); }
  static R zero() { return _mm256_setzero_ps(); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  static R add(R a, R b) { return _mm256_add_ps(a, b); }
  static R sub(R a, R b) { return _mm256_sub_ps(a, b); }
  static R max(R a, R b) { return _mm256_max_ps(a, b); }
  static float hsum(R v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float hmax(R v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};
template <>
struct Vec<double> {
  using R = __m256d;
  static constexpr int W = 4;
  static R load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, R v) { _mm256_storeu_pd(p, v); }
  static R set1(double x) { return _mm256_set1_pd(x); }
  static R zero() { return _mm256_setzero_pd(); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
  static R mul(R a, R b) { return _mm256_mul_pd(a, b); }
  static R add(R a, R b) { return _mm256_add_pd(a, b); }
  static R sub(R a, R b) { return _mm256_sub_pd(a, b); }
  static R max(R a, R b) { return _mm256_max_pd(a, b); }
  static double hsum(R v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
  }
  static double hmax(R v) {
    __m128d s = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_max_sd(s, _mm_unpackhi_pd(s, s)));
  }
};
#else
// Baseline: GCC/Clang vector extensions, 16 bytes wide (SSE2 on x86-64, NEON elsewhere).
template <typename T>
struct VecExt {
  typedef T R __attribute__((vector_size(16)));
  static constexpr int W = 16 / sizeof(T);
  static R load(const T* p) { R v; std::memcpy(&v, p, sizeof(R)); return v; }
  static void store(T* p, R v) { std::memcpy(p, &v, sizeof(R)); }
  static R set1(T x) { return R{} + x; }
  static R zero() { return R{}; }
  static R fma(R a, R b, R c) { return a * b + c; }
  static R mul(R a, R b) { return a * b; }
  static R add(R a, R b) { return a + b; }
  static R sub(R a, R b) { return a - b; }
  static R max(R a, R b) { return a > b ? a : b; }
  static T hsum(R v) { T s = 0; for (int i = 0; i < W; ++i) s += v[i]; return s; }
  static T hmax(R v) { T s = v[0]; for (int i = 1; i < W; ++i) s = v[i] > s ? v[i] : s; return s; }
};
template <> struct Vec<float> : VecExt<float> {};
template <> struct Vec<double> : VecExt<double> {};
#endif

}  // namespace pydl::simd
