// normalisation primitives, compiled once per ISA (see isa.h): the sweeps over one
// contiguous run that batch norm, layer norm and group norm are made of (csrc/cpu/norm.cpp
// arranges them; the formulas are in csrc/include/pydl/norm.h).
//
// Legend: n values in the run; T float or double; 8 or 16 lanes per step.
//
// Algorithm: statistics accumulate in double whatever T is. A float32 run is read 8
// values at a time and widened (__builtin_convertvector: one vcvtps2pd on AVX-512, two on
// AVX2, four on SSE2) before it is shifted and summed, so a channel of 200K float32
// values loses nothing to the accumulation; the sums use two independent accumulator
// pairs to hide the add latency. The element-wise sweeps (normalise, and the backward's
// dx = dy a + (x - mean) b + c) run in T, 64 bytes per step. The code is written once
// with GCC vector extensions of fixed width (64 bytes), which each ISA compilation lowers
// to its own registers: one zmm on AVX-512, two ymm on AVX2, four xmm on the baseline.
// These sweeps are memory-bound, so precision is bought with arithmetic: (x - mean) is
// formed explicitly rather than folded into an offset, and the forward subtracts the
// double mean as two floats (hi, then lo; norm.h's split_hi_lo), so a mean of 1e3 over a
// standard deviation of 1 costs float32 nothing. Column sums (batch norm over short
// planes, e.g. (N, C) input) keep a tile of 16 columns' accumulators in registers down
// all the rows.
//
// Workspace: none (the callers own their accumulators).
//
// Checked by tests/kernels/test_norm.py against pydl/kernels/reference/norm.py on every
// ISA path (run lengths 1 to 300, a channel of 200K float32 values with mean 1e3).
#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "pydl/norm.h"

// The 64-byte vector types below never cross a non-inlined call boundary in a way that
// matters (every helper is internal), so GCC's note that their ABI differs between ISA
// targets does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace pydl::PYDL_ISA_NS {
namespace {

typedef double d8 __attribute__((vector_size(64)));  // 8 doubles: the accumulator
typedef float f8 __attribute__((vector_size(32)));   // 8 floats, widened to d8

template <typename T>
struct V64 {  // 64 bytes of T: the element-wise step
  typedef T R __attribute__((vector_size(64)));
  static constexpr int W = 64 / sizeof(T);
  static R load(const T* p) {
    R v;
    std::memcpy(&v, p, sizeof(R));
    return v;
  }
  static void store(T* p, R v) { std::memcpy(p, &v, sizeof(R)); }
  static R set1(T x) { return R{} + x; }
};

inline d8 load_d8(const double* p) {
  d8 v;
  std::memcpy(&v, p, sizeof(d8));
  return v;
}
inline d8 load_d8(const float* p) {
#if defined(__AVX512F__)
  return reinterpret_cast<d8>(_mm512_cvtps_pd(_mm256_loadu_ps(p)));  // GCC splits the generic form in two
#else
  f8 v;
  std::memcpy(&v, p, sizeof(f8));
  return __builtin_convertvector(v, d8);
#endif
}
inline void store_d8(double* p, d8 v) { std::memcpy(p, &v, sizeof(d8)); }
inline double hsum(d8 v) { return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7])); }

// ---------------------------------------------------------------------------------------
// Sums (double accumulators)
// ---------------------------------------------------------------------------------------

template <typename T>
void sums_shifted(const T* x, int64_t n, double shift, double* s, double* q) {
  const d8 k = d8{} + shift;
  d8 s0{}, s1{}, q0{}, q1{};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const d8 a = load_d8(x + i) - k, b = load_d8(x + i + 8) - k;
    s0 += a;
    s1 += b;
    q0 += a * a;
    q1 += b * b;
  }
  if (i + 8 <= n) {
    const d8 a = load_d8(x + i) - k;
    s0 += a;
    q0 += a * a;
    i += 8;
  }
  double ss = hsum(s0 + s1), qq = hsum(q0 + q1);
  for (; i < n; ++i) {
    const double v = static_cast<double>(x[i]) - shift;
    ss += v;
    qq += v * v;
  }
  *s += ss;
  *q += qq;
}

template <typename T>
void sums_grad(const T* dy, const T* x, int64_t n, double mean, double* s_dy, double* s_dyx) {
  const d8 m = d8{} + mean;
  d8 s0{}, s1{}, p0{}, p1{};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const d8 g0 = load_d8(dy + i), g1 = load_d8(dy + i + 8);
    s0 += g0;
    s1 += g1;
    p0 += g0 * (load_d8(x + i) - m);
    p1 += g1 * (load_d8(x + i + 8) - m);
  }
  if (i + 8 <= n) {
    const d8 g0 = load_d8(dy + i);
    s0 += g0;
    p0 += g0 * (load_d8(x + i) - m);
    i += 8;
  }
  double ss = hsum(s0 + s1), pp = hsum(p0 + p1);
  for (; i < n; ++i) {
    const double g = dy[i];
    ss += g;
    pp += g * (static_cast<double>(x[i]) - mean);
  }
  *s_dy += ss;
  *s_dyx += pp;
}

// The column sums keep a tile of 16 columns' accumulators in registers down all the rows
// (a 64-byte line of float32 per row), so the accumulators are loaded and stored once
// per tile rather than once per row.
template <typename T>
void col_sums_shifted(const T* x, int64_t rows, int64_t stride, int64_t n, const T* shift, double* s, double* q) {
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const d8 k0 = load_d8(shift + j), k1 = load_d8(shift + j + 8);
    d8 s0{}, s1{}, q0{}, q1{};
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = x + r * stride + j;
      const d8 a = load_d8(xr) - k0, b = load_d8(xr + 8) - k1;
      s0 += a;
      s1 += b;
      q0 += a * a;
      q1 += b * b;
    }
    store_d8(s + j, load_d8(s + j) + s0);
    store_d8(s + j + 8, load_d8(s + j + 8) + s1);
    store_d8(q + j, load_d8(q + j) + q0);
    store_d8(q + j + 8, load_d8(q + j + 8) + q1);
  }
  for (; j < n; ++j) {
    const double k = static_cast<double>(shift[j]);
    double ss = 0.0, qq = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
      const double a = static_cast<double>(x[r * stride + j]) - k;
      ss += a;
      qq += a * a;
    }
    s[j] += ss;
    q[j] += qq;
  }
}

template <typename T>
void col_sums_grad(const T* dy, const T* x, int64_t rows, int64_t stride, int64_t n, const T* mean, double* s_dy,
                   double* s_dyx) {
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const d8 m0 = load_d8(mean + j), m1 = load_d8(mean + j + 8);
    d8 s0{}, s1{}, p0{}, p1{};
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t o = r * stride + j;
      const d8 g0 = load_d8(dy + o), g1 = load_d8(dy + o + 8);
      s0 += g0;
      s1 += g1;
      p0 += g0 * (load_d8(x + o) - m0);
      p1 += g1 * (load_d8(x + o + 8) - m1);
    }
    store_d8(s_dy + j, load_d8(s_dy + j) + s0);
    store_d8(s_dy + j + 8, load_d8(s_dy + j + 8) + s1);
    store_d8(s_dyx + j, load_d8(s_dyx + j) + p0);
    store_d8(s_dyx + j + 8, load_d8(s_dyx + j + 8) + p1);
  }
  for (; j < n; ++j) {
    const double m = static_cast<double>(mean[j]);
    double ss = 0.0, pp = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
      const double g = dy[r * stride + j];
      ss += g;
      pp += g * (static_cast<double>(x[r * stride + j]) - m);
    }
    s_dy[j] += ss;
    s_dyx[j] += pp;
  }
}

// ---------------------------------------------------------------------------------------
// Element-wise sweeps (in T)
// ---------------------------------------------------------------------------------------

template <typename T>
void affine(const T* x, T* y, int64_t n, T mean_hi, T mean_lo, T scale, T shift) {
  using V = V64<T>;
  const typename V::R mh = V::set1(mean_hi), ml = V::set1(mean_lo), a = V::set1(scale), b = V::set1(shift);
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) V::store(y + i, ((V::load(x + i) - mh) - ml) * a + b);
  for (; i < n; ++i) y[i] = ((x[i] - mean_hi) - mean_lo) * scale + shift;
}

template <typename T>
void affine_grad(const T* dy, const T* x, T* dx, int64_t n, T a, T mean, T b, T c) {
  using V = V64<T>;
  const typename V::R va = V::set1(a), vm = V::set1(mean), vb = V::set1(b), vc = V::set1(c);
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) V::store(dx + i, V::load(dy + i) * va + ((V::load(x + i) - vm) * vb + vc));
  for (; i < n; ++i) dx[i] = dy[i] * a + ((x[i] - mean) * b + c);
}

template <typename T>
void col_affine(const T* x, T* y, int64_t n, const T* mean_hi, const T* mean_lo, const T* scale, const T* shift) {
  using V = V64<T>;
  int64_t j = 0;
  for (; j + V::W <= n; j += V::W)
    V::store(y + j, ((V::load(x + j) - V::load(mean_hi + j)) - V::load(mean_lo + j)) * V::load(scale + j) +
                        V::load(shift + j));
  for (; j < n; ++j) y[j] = ((x[j] - mean_hi[j]) - mean_lo[j]) * scale[j] + shift[j];
}

template <typename T>
void col_affine_grad(const T* dy, const T* x, T* dx, int64_t n, const T* a, const T* mean, const T* b, const T* c) {
  using V = V64<T>;
  int64_t j = 0;
  for (; j + V::W <= n; j += V::W)
    V::store(dx + j, V::load(dy + j) * V::load(a + j) +
                         ((V::load(x + j) - V::load(mean + j)) * V::load(b + j) + V::load(c + j)));
  for (; j < n; ++j) dx[j] = dy[j] * a[j] + ((x[j] - mean[j]) * b[j] + c[j]);
}

// ---------------------------------------------------------------------------------------
// Layer norm rows
// ---------------------------------------------------------------------------------------

template <typename T, bool HasW, bool HasB>
void ln_affine_t(const T* x, T* y, int64_t n, T mean_hi, T mean_lo, T rstd, const T* w, const T* b) {
  using V = V64<T>;
  const typename V::R mh = V::set1(mean_hi), ml = V::set1(mean_lo), r = V::set1(rstd);
  int64_t j = 0;
  for (; j + V::W <= n; j += V::W) {
    typename V::R v = ((V::load(x + j) - mh) - ml) * r;
    if constexpr (HasW) v = v * V::load(w + j);
    if constexpr (HasB) v = v + V::load(b + j);
    V::store(y + j, v);
  }
  for (; j < n; ++j) {
    T v = ((x[j] - mean_hi) - mean_lo) * rstd;
    if constexpr (HasW) v = v * w[j];
    if constexpr (HasB) v = v + b[j];
    y[j] = v;
  }
}

template <typename T>
void ln_affine(const T* x, T* y, int64_t n, T mean_hi, T mean_lo, T rstd, const T* w, const T* b) {
  if (w && b) ln_affine_t<T, true, true>(x, y, n, mean_hi, mean_lo, rstd, w, b);
  else if (w) ln_affine_t<T, true, false>(x, y, n, mean_hi, mean_lo, rstd, w, b);
  else if (b) ln_affine_t<T, false, true>(x, y, n, mean_hi, mean_lo, rstd, w, b);
  else ln_affine_t<T, false, false>(x, y, n, mean_hi, mean_lo, rstd, w, b);
}

// Sweep 1 (reads memory): s1 = sum g, s2 = sum g xhat with g = dy w, and the parameter
// gradients' accumulators; sweep 2 (row in L1): dx = dy (rstd w) + (x - mean) B + C with
// B = -rstd^2 s2 / n, C = -rstd s1 / n. Everything in sweep 1 runs in T, 64 bytes a step:
// the row sums in blocks of 512 values (32 per float lane) added into double, the
// parameter gradients into the caller's T accumulators, which it empties into double every
// few rows (norm.cpp) -- widening every element to double was a third of the time.
template <typename T, bool HasW, bool AccW, bool AccB>
void ln_row_backward_t(const T* dy, const T* x, T* dx, int64_t n, T mean, T rstd, const T* w, T* acc_dw,
                       T* acc_db) {
  using V = V64<T>;
  using R = typename V::R;
  const R vm = V::set1(mean), vr = V::set1(rstd);
  double t1 = 0.0, t2 = 0.0;
  int64_t j = 0;
  constexpr int64_t kBlock = 512;
  while (j + V::W <= n) {
    const int64_t end = std::min<int64_t>(n, j + kBlock);
    R s1{}, s2{};
    for (; j + V::W <= end; j += V::W) {
      const R g = V::load(dy + j);
      const R xh = (V::load(x + j) - vm) * vr;
      R gw = g;
      if constexpr (HasW) gw = g * V::load(w + j);
      s1 += gw;
      s2 += gw * xh;
      if constexpr (AccW) V::store(acc_dw + j, V::load(acc_dw + j) + g * xh);
      if constexpr (AccB) V::store(acc_db + j, V::load(acc_db + j) + g);
    }
    for (int i = 0; i < V::W; ++i) {
      t1 += static_cast<double>(s1[i]);
      t2 += static_cast<double>(s2[i]);
    }
  }
  for (; j < n; ++j) {
    const T g = dy[j];
    const T xh = (x[j] - mean) * rstd;
    const T gw = HasW ? g * w[j] : g;
    t1 += gw;
    t2 += static_cast<double>(gw * xh);
    if constexpr (AccW) acc_dw[j] += g * xh;
    if constexpr (AccB) acc_db[j] += g;
  }
  const double r = rstd, dn = static_cast<double>(n);
  const T B = static_cast<T>(-r * r * t2 / dn), C = static_cast<T>(-r * t1 / dn);
  const R vB = V::set1(B), vC = V::set1(C);
  j = 0;
  for (; j + V::W <= n; j += V::W) {
    R a = vr;
    if constexpr (HasW) a = a * V::load(w + j);
    V::store(dx + j, V::load(dy + j) * a + ((V::load(x + j) - vm) * vB + vC));
  }
  for (; j < n; ++j) {
    const T a = HasW ? rstd * w[j] : rstd;
    dx[j] = dy[j] * a + ((x[j] - mean) * B + C);
  }
}

template <typename T>
void ln_row_backward(const T* dy, const T* x, T* dx, int64_t n, T mean, T rstd, const T* w, T* acc_dw, T* acc_db) {
  // dx is always wanted here (the binding skips rows entirely otherwise), so the variants
  // are: weight or not, times which accumulators.
#define PYDL_LN_CASE(HW)                                                                                   \
  if (acc_dw && acc_db) ln_row_backward_t<T, HW, true, true>(dy, x, dx, n, mean, rstd, w, acc_dw, acc_db); \
  else if (acc_dw) ln_row_backward_t<T, HW, true, false>(dy, x, dx, n, mean, rstd, w, acc_dw, acc_db);     \
  else if (acc_db) ln_row_backward_t<T, HW, false, true>(dy, x, dx, n, mean, rstd, w, acc_dw, acc_db);     \
  else ln_row_backward_t<T, HW, false, false>(dy, x, dx, n, mean, rstd, w, acc_dw, acc_db);
  if (w) {
    PYDL_LN_CASE(true)
  } else {
    PYDL_LN_CASE(false)
  }
#undef PYDL_LN_CASE
}

template <typename T>
NormKernelsT<T> table_for() {
  return {&sums_shifted<T>, &sums_grad<T>,    &affine<T>,          &affine_grad<T>,     &col_sums_shifted<T>,
          &col_sums_grad<T>, &col_affine<T>, &col_affine_grad<T>, &ln_affine<T>,       &ln_row_backward<T>};
}

}  // namespace

extern const NormKernels norm_kernels = {table_for<float>(), table_for<double>()};

}  // namespace pydl::PYDL_ISA_NS
