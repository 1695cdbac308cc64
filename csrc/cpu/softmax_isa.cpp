// softmax family, compiled once per ISA (see isa.h): softmax, log_softmax, fused
// cross-entropy and the multiclass SVM hinge loss, each forward and backward, over the
// rows of a row-major (N, C) array.
//
//   softmax      y_c = exp(x_c - m) / s,      m = max_c x_c,  s = sum_c exp(x_c - m)
//                dx_c = y_c (dy_c - sum_k dy_k y_k)
//   log_softmax  y_c = x_c - m - log s
//                dx_c = dy_c - exp(y_c) sum_k dy_k
//   cross_entropy (PyTorch's, class-index target t, weights w, smoothing eps; p = softmax(z))
//                L = (1 - eps) w_t (lse - z_t) + eps / C sum_c w_c (lse - z_c)
//                dL/dz_c = p_c ((1 - eps) w_t + eps S_w / C) - (1 - eps) w_t [c == t] - eps / C w_c
//   svm_loss     L = sum_{c != t} max(0, s_c - s_t + margin)
//                dL/ds_c = [s_c - s_t + margin > 0] (c != t),  dL/ds_t = -sum of those
//
// Legend: N rows (batch), C columns (classes), W SIMD lanes.
//
// Algorithm: one thread owns a row from start to finish (OpenMP, guided split of the
// rows), so its input and output (2 C elements: C up to ~5K floats) stay in L1 between
// its sweeps (in L2 up to ~100K), and results are bitwise the same for any thread count. A softmax row takes three sweeps:
//   1. m = max_c x_c                      (the only sweep that reads memory)
//   2. e_c = exp(x_c - m) into y, s = sum_c e_c
//   3. y_c = e_c / s                      (in L1)
// i.e. one exp per element. (The online one-sweep max/sum needs exp(x - m) again to
// write y, plus a rescale per vector: ~2x the arithmetic for no saving in memory
// traffic, since sweeps 2-3 hit L1.) Subtracting the row max keeps every exponent <= 0:
// exp never overflows. exp is simd_math.h's (Cody-Waite + polynomial, <= 1.25 ulp).
// Cross-entropy is fused: the same three sweeps compute the loss AND the gradient of
// the (reduced) loss, written where the softmax would go (sweep 2 also sums w_c (z_c - m)
// for the smoothing term, sweep 3 maps e_c to the gradient). Backward then only scales
// it by grad_loss, or hands it over untouched when grad_loss == 1, so forward + backward
// reads the logits once and writes the gradient once. The loss of a row comes from
// cross_entropy_row_loss (softmax.h), in shifted form: no cancellation at logits of 1e4.
// Stores are plain: non-temporal stores (to skip the read-for-ownership of the output)
// were measured within +-7% either way at 4096 x 1000 on this machine, and they push the
// output out of the cache its consumer is about to read it from.
//
// NaN / Inf: a NaN anywhere in a row makes its sum NaN, so the whole row is NaN (as in
// PyTorch); +inf makes x - m NaN (inf - inf), so the row is NaN too; -inf entries get
// probability 0; a row of only -inf is NaN (as PyTorch). Ignored cross-entropy rows
// are skipped (loss 0, gradient 0). The SVM loss of a row with a NaN is NaN.
//
// Workspace: none beyond the outputs; the binding passes an (N,) buffer of row losses,
// summed afterwards in row order.
//
// Checked by tests/kernels/test_softmax.py and tests/kernels/test_losses.py against the
// float64 NumPy reference (pydl/kernels/reference/softmax.py, losses.py) on every ISA
// path, at 1 to 1000 rows and columns, logits of +-1e4, NaN/Inf, 1 and 2 threads.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "pydl/simd.h"
#include "pydl/simd_math.h"
#include "pydl/softmax.h"

namespace pydl::PYDL_ISA_NS {
namespace {

using simd::Vec;

// Rows go to threads in guided chunks (halving in size), not a fixed static split: on
// this shared 2-core machine a thread often starts late or is preempted, and the other
// then takes over its rows (measured 10-20% faster medians at 4096 x 1000 than static;
// dynamic chunks of 16 rows were slower than both). A row is still one thread's work,
// so results do not depend on the split.
template <typename Body>
void for_rows(int64_t N, int threads, Body&& body) {
#pragma omp parallel for schedule(guided) num_threads(threads) if (threads > 1)
  for (int64_t i = 0; i < N; ++i) body(i);
}

// ---------------------------------------------------------------------------------
// Row sweeps
// ---------------------------------------------------------------------------------

template <typename T>
T row_max(const T* x, int64_t C) {
  using V = Vec<T>;
  constexpr int W = V::W;
  const T ninf = -std::numeric_limits<T>::infinity();
  typename V::R m0 = V::set1(ninf), m1 = m0, m2 = m0, m3 = m0;
  int64_t c = 0;
  for (; c + 4 * W <= C; c += 4 * W) {
    m0 = V::max(m0, V::load(x + c));
    m1 = V::max(m1, V::load(x + c + W));
    m2 = V::max(m2, V::load(x + c + 2 * W));
    m3 = V::max(m3, V::load(x + c + 3 * W));
  }
  for (; c + W <= C; c += W) m0 = V::max(m0, V::load(x + c));
  if (c < C) m1 = V::max(m1, simd::load_partial(x + c, C - c, ninf));
  return V::hmax(V::max(V::max(m0, m1), V::max(m2, m3)));
}

// e_c = exp(x_c - m) for c < C into e; returns sum_c e_c.
template <typename T>
T exp_shifted(const T* x, T m, T* e, int64_t C) {
  using V = Vec<T>;
  constexpr int W = V::W;
  const typename V::R vm = V::set1(m);
  typename V::R s0 = V::zero(), s1 = V::zero();
  int64_t c = 0;
  for (; c + 2 * W <= C; c += 2 * W) {
    typename V::R e0 = simd::exp<T>(V::sub(V::load(x + c), vm));
    typename V::R e1 = simd::exp<T>(V::sub(V::load(x + c + W), vm));
    V::store(e + c, e0);
    V::store(e + c + W, e1);
    s0 = V::add(s0, e0);
    s1 = V::add(s1, e1);
  }
  for (; c + W <= C; c += W) {
    typename V::R e0 = simd::exp<T>(V::sub(V::load(x + c), vm));
    V::store(e + c, e0);
    s0 = V::add(s0, e0);
  }
  if (c < C) {  // padding lanes hold -inf: exp gives 0, the sum is unchanged
    typename V::R e0 = simd::exp<T>(V::sub(simd::load_partial(x + c, C - c, -std::numeric_limits<T>::infinity()), vm));
    simd::store_partial(e + c, e0, C - c);
    s1 = V::add(s1, e0);
  }
  return V::hsum(V::add(s0, s1));
}

// sum_c exp(x_c - m), nothing stored.
template <typename T>
T sum_exp_shifted(const T* x, T m, int64_t C) {
  using V = Vec<T>;
  constexpr int W = V::W;
  const typename V::R vm = V::set1(m);
  typename V::R s0 = V::zero(), s1 = V::zero();
  int64_t c = 0;
  for (; c + 2 * W <= C; c += 2 * W) {
    s0 = V::add(s0, simd::exp<T>(V::sub(V::load(x + c), vm)));
    s1 = V::add(s1, simd::exp<T>(V::sub(V::load(x + c + W), vm)));
  }
  for (; c + W <= C; c += W) s0 = V::add(s0, simd::exp<T>(V::sub(V::load(x + c), vm)));
  if (c < C)
    s1 = V::add(s1, simd::exp<T>(V::sub(simd::load_partial(x + c, C - c, -std::numeric_limits<T>::infinity()), vm)));
  return V::hsum(V::add(s0, s1));
}

// y_c = f(c) for c < C: fv(c) gives the W lanes at c, fs(c) one element (the tail).
template <typename T, typename VecFn, typename ScalarFn>
void store_sweep(T* y, int64_t C, VecFn fv, ScalarFn fs) {
  constexpr int W = Vec<T>::W;
  int64_t c = 0;
  for (; c + W <= C; c += W) Vec<T>::store(y + c, fv(c));
  for (; c < C; ++c) y[c] = fs(c);
}

// ---------------------------------------------------------------------------------
// softmax / log_softmax
// ---------------------------------------------------------------------------------

template <typename T>
void softmax_forward(const T* x, T* y, int64_t N, int64_t C, int threads) {
  for_rows(N, threads, [&](int64_t i) {
    const T* xr = x + i * C;
    T* yr = y + i * C;
    const T m = row_max(xr, C);
    const T inv_s = T(1) / exp_shifted(xr, m, yr, C);
    const typename Vec<T>::R v_inv_s = Vec<T>::set1(inv_s);
    store_sweep(yr, C, [&](int64_t c) { return Vec<T>::mul(Vec<T>::load(yr + c), v_inv_s); },
                [&](int64_t c) { return yr[c] * inv_s; });
  });
}

template <typename T>
void log_softmax_forward(const T* x, T* y, int64_t N, int64_t C, int threads) {
  for_rows(N, threads, [&](int64_t i) {
    const T* xr = x + i * C;
    const T m = row_max(xr, C);
    // y = (x - m) - log s: x - m first, so the largest entries (y ~ 0) keep their digits
    // even when m is 1e4.
    const T log_s = static_cast<T>(std::log(static_cast<double>(sum_exp_shifted(xr, m, C))));
    const typename Vec<T>::R vm = Vec<T>::set1(m), vlog_s = Vec<T>::set1(log_s);
    store_sweep(y + i * C, C,
                [&](int64_t c) { return Vec<T>::sub(Vec<T>::sub(Vec<T>::load(xr + c), vm), vlog_s); },
                [&](int64_t c) { return (xr[c] - m) - log_s; });
  });
}

// dx = y * (dy - sum(dy * y))
template <typename T>
void softmax_backward(const T* gy, const T* y, T* gx, int64_t N, int64_t C, int threads) {
  using V = Vec<T>;
  constexpr int W = V::W;
  for_rows(N, threads, [&](int64_t i) {
    const T* g = gy + i * C;
    const T* p = y + i * C;
    T* out = gx + i * C;
    typename V::R d0 = V::zero(), d1 = V::zero();
    int64_t c = 0;
    for (; c + 2 * W <= C; c += 2 * W) {
      d0 = V::fma(V::load(g + c), V::load(p + c), d0);
      d1 = V::fma(V::load(g + c + W), V::load(p + c + W), d1);
    }
    for (; c + W <= C; c += W) d0 = V::fma(V::load(g + c), V::load(p + c), d0);
    if (c < C) d1 = V::fma(simd::load_partial(g + c, C - c, T(0)), simd::load_partial(p + c, C - c, T(0)), d1);
    const typename V::R vd = V::set1(V::hsum(V::add(d0, d1)));
    for (c = 0; c + W <= C; c += W) V::store(out + c, V::mul(V::load(p + c), V::sub(V::load(g + c), vd)));
    if (c < C)
      simd::store_partial(out + c,
                          V::mul(simd::load_partial(p + c, C - c, T(0)), V::sub(simd::load_partial(g + c, C - c, T(0)), vd)),
                          C - c);
  });
}

// dx = dy - exp(y) * sum(dy)
template <typename T>
void log_softmax_backward(const T* gy, const T* y, T* gx, int64_t N, int64_t C, int threads) {
  using V = Vec<T>;
  constexpr int W = V::W;
  for_rows(N, threads, [&](int64_t i) {
    const T* g = gy + i * C;
    const T* ly = y + i * C;
    T* out = gx + i * C;
    typename V::R s0 = V::zero(), s1 = V::zero();
    int64_t c = 0;
    for (; c + 2 * W <= C; c += 2 * W) {
      s0 = V::add(s0, V::load(g + c));
      s1 = V::add(s1, V::load(g + c + W));
    }
    for (; c + W <= C; c += W) s0 = V::add(s0, V::load(g + c));
    if (c < C) s1 = V::add(s1, simd::load_partial(g + c, C - c, T(0)));
    const typename V::R vs = V::set1(V::hsum(V::add(s0, s1)));
    for (c = 0; c + W <= C; c += W)
      V::store(out + c, V::sub(V::load(g + c), V::mul(simd::exp<T>(V::load(ly + c)), vs)));
    if (c < C) {
      typename V::R e = simd::exp<T>(simd::load_partial(ly + c, C - c, T(0)));
      simd::store_partial(out + c, V::sub(simd::load_partial(g + c, C - c, T(0)), V::mul(e, vs)), C - c);
    }
  });
}

// ---------------------------------------------------------------------------------
// Fused cross-entropy: loss and gradient in one visit of each row
// ---------------------------------------------------------------------------------

// sum_c w_c (z_c - m) (w_c = 1 when !kWeighted): the label-smoothing term.
template <typename T, bool kWeighted>
double weighted_shifted_sum(const T* z, const T* w, T m, int64_t C) {
  using V = Vec<T>;
  constexpr int W = V::W;
  const typename V::R vm = V::set1(m);
  typename V::R t0 = V::zero(), t1 = V::zero();
  int64_t c = 0;
  for (; c + 2 * W <= C; c += 2 * W) {
    typename V::R d0 = V::sub(V::load(z + c), vm), d1 = V::sub(V::load(z + c + W), vm);
    if constexpr (kWeighted) {
      t0 = V::fma(V::load(w + c), d0, t0);
      t1 = V::fma(V::load(w + c + W), d1, t1);
    } else {
      t0 = V::add(t0, d0);
      t1 = V::add(t1, d1);
    }
  }
  for (; c + W <= C; c += W) {
    typename V::R d0 = V::sub(V::load(z + c), vm);
    t0 = kWeighted ? V::fma(V::load(w + c), d0, t0) : V::add(t0, d0);
  }
  double t = static_cast<double>(V::hsum(V::add(t0, t1)));
  for (; c < C; ++c) t += (kWeighted ? static_cast<double>(w[c]) : 1.0) * (static_cast<double>(z[c]) - m);
  return t;
}

// g_c = a g_c - b w_c in place (w_c = 1 when !kWeighted, b = 0 when !kSmooth).
template <typename T, bool kSmooth, bool kWeighted>
void cross_entropy_grad_sweep(const T* w, T* g, int64_t C, T a, T b) {
  using V = Vec<T>;
  const typename V::R va = V::set1(a), vb = V::set1(b);
  store_sweep(
      g, C,
      [&](int64_t c) {
        typename V::R v = V::mul(V::load(g + c), va);
        if constexpr (kSmooth) v = V::sub(v, kWeighted ? V::mul(V::load(w + c), vb) : vb);
        return v;
      },
      [&](int64_t c) {
        T v = g[c] * a;
        if constexpr (kSmooth) v -= (kWeighted ? w[c] : T(1)) * b;
        return v;
      });
}

template <typename T, bool kSmooth, bool kWeighted>
void cross_entropy_rows(const CrossEntropyArgs<T>& A) {
  const int64_t C = A.C;
  const double eps = A.label_smoothing;
  for_rows(A.N, A.threads, [&](int64_t i) {
    const T* z = A.logits + i * C;
    T* g = A.grad + i * C;
    const int64_t t = A.target[i];
    if (t == A.ignore_index) {
      std::memset(g, 0, static_cast<size_t>(C) * sizeof(T));
      A.row_loss[i] = 0.0;
      return;
    }
    const double w_t = kWeighted ? static_cast<double>(A.weight[t]) : 1.0;
    const T m = row_max(z, C);
    const T s = exp_shifted(z, m, g, C);  // g holds e_c = exp(z_c - m) until the last sweep
    const double wsum_zm = kSmooth ? weighted_shifted_sum<T, kWeighted>(z, A.weight, m, C) : 0.0;
    const double zt = static_cast<double>(z[t]) - static_cast<double>(m);
    A.row_loss[i] = cross_entropy_row_loss(std::log(static_cast<double>(s)), zt, wsum_zm, w_t, A.weight_sum, eps, C);
    const CrossEntropyGradCoeffs k =
        cross_entropy_grad_coeffs(A.grad_scale, eps, w_t, A.weight_sum, C, static_cast<double>(s));
    const double e_t = static_cast<double>(g[t]);
    cross_entropy_grad_sweep<T, kSmooth, kWeighted>(A.weight, g, C, static_cast<T>(k.a), static_cast<T>(k.b));
    g[t] = static_cast<T>(k.a * e_t - k.b * w_t - k.d);
  });
}

template <typename T>
void cross_entropy(const CrossEntropyArgs<T>& A) {
  const bool smooth = A.label_smoothing != 0.0, weighted = A.weight != nullptr;
  if (smooth && weighted) cross_entropy_rows<T, true, true>(A);
  else if (smooth) cross_entropy_rows<T, true, false>(A);
  else if (weighted) cross_entropy_rows<T, false, true>(A);
  else cross_entropy_rows<T, false, false>(A);
}

// ---------------------------------------------------------------------------------
// Multiclass SVM hinge loss: loss and gradient in one sweep per row
// ---------------------------------------------------------------------------------

template <typename T>
void svm_loss(const SvmArgs<T>& A) {
  using V = Vec<T>;
  constexpr int W = V::W;
  const int64_t C = A.C;
  for_rows(A.N, A.threads, [&](int64_t i) {
    const T* s = A.scores + i * C;
    T* g = A.grad + i * C;
    const int64_t t = A.target[i];
    // d_c = (s_c - s_t) + margin; the loss sums max(0, d_c), the gradient is [d_c > 0].
    const T st = s[t], margin = static_cast<T>(A.margin), scale = static_cast<T>(A.grad_scale);
    const typename V::R vst = V::set1(st), vmargin = V::set1(margin), vscale = V::set1(scale), zero = V::zero();
    typename V::R loss = V::zero(), count = V::zero();
    int64_t c = 0;
    for (; c + W <= C; c += W) {
      typename V::R d = V::add(V::sub(V::load(s + c), vst), vmargin);
      loss = V::add(loss, V::max(zero, d));  // max(0, NaN) is NaN: x86 returns the second operand
      typename V::R hit = simd::positive_mask01(d);
      count = V::add(count, hit);
      V::store(g + c, V::mul(hit, vscale));
    }
    double loss_sum = static_cast<double>(V::hsum(loss));
    double hits = static_cast<double>(V::hsum(count));
    auto hinge = [&](int64_t k) { return (s[k] - st) + margin; };
    for (; c < C; ++c) {
      const T d = hinge(c);
      loss_sum += d > T(0) || std::isnan(d) ? static_cast<double>(d) : 0.0;
      hits += d > T(0) ? 1.0 : 0.0;
      g[c] = d > T(0) ? scale : T(0);
    }
    // Take out the c == t term the sweep counted (d_t = margin).
    const T d_t = hinge(t);
    if (d_t > T(0)) {
      loss_sum -= static_cast<double>(d_t);
      hits -= 1.0;
    }
    A.row_loss[i] = loss_sum;
    g[t] = static_cast<T>(-hits * A.grad_scale);
  });
}

// ---------------------------------------------------------------------------------
// Backward of the fused losses: scale the stored gradient
// ---------------------------------------------------------------------------------

template <typename T>
void scale_rows(T* x, int64_t N, int64_t C, const T* row_scale, T scale, int threads) {
  using V = Vec<T>;
  constexpr int W = V::W;
  for_rows(N, threads, [&](int64_t i) {
    T* r = x + i * C;
    const T f = row_scale ? static_cast<T>(scale * row_scale[i]) : scale;
    const typename V::R vf = V::set1(f);
    int64_t c = 0;
    for (; c + W <= C; c += W) V::store(r + c, V::mul(V::load(r + c), vf));
    for (; c < C; ++c) r[c] *= f;
  });
}

template <typename T>
constexpr SoftmaxKernelsT<T> table_for() {
  return {&softmax_forward<T>, &softmax_backward<T>, &log_softmax_forward<T>, &log_softmax_backward<T>,
          &cross_entropy<T>, &svm_loss<T>, &scale_rows<T>};
}

}  // namespace

extern const SoftmaxKernels softmax_kernels = {table_for<float>(), table_for<double>()};

}  // namespace pydl::PYDL_ISA_NS
