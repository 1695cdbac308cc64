// rnn element-wise passes, compiled once per ISA (see isa.h): the LSTM and GRU gate
// math of one step, forward and backward, over rows x a range of hidden units.
//
// The formulas are the inline helpers of rnn.h (lstm_gates_forward/backward,
// gru_gates_forward/backward), instantiated here on SIMD registers with a vector Math
// policy, and on scalars for the ragged end of a range:
//   sigmoid(x) = 1 / (1 + exp(-x))          (exp(+inf) = inf gives 0, no overflow trap)
//   tanh(x)    = 1 - 2 / (exp(2x) + 1)      (saturates to +-1; absolute error ~1 ulp of 1)
// with simd_math.h's exp. Each pass reads the gate pre-activations (or saved activations)
// of a step once and writes everything the next product or the backward needs, so a step
// costs one sweep over its (rows, G H) gates besides its gemm.
//
// Legend: rows (the batch B), H hidden units, [j0, j1) the hidden units of this call (a
// thread's slice in the time loop), W SIMD lanes. Rows of gates are G H values: gate k of
// hidden unit j is at k H + j (PyTorch's stacking).
//
// Workspace: none. Checked by tests/kernels/test_rnn_kernels.py against the float64
// reference (pydl/kernels/reference/rnn.py) on every ISA path, with hidden sizes that are
// not a multiple of W.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "pydl/rnn.h"
#include "pydl/simd.h"
#include "pydl/simd_math.h"
#include "pydl/tile_product.h"

namespace pydl::PYDL_ISA_NS {
namespace {

using simd::Vec;

template <typename T>
struct VecGateMath {
  using R = typename Vec<T>::R;
  static R one() { return Vec<T>::set1(T(1)); }
  static R sigmoid(R x) { return one() / (one() + simd::exp<T>(Vec<T>::sub(Vec<T>::zero(), x))); }
  static R tanh(R x) { return one() - Vec<T>::set1(T(2)) / (simd::exp<T>(Vec<T>::add(x, x)) + one()); }
};

// C (M, N) (+)= A (M, K) @ B (K, N) in K blocks of 128 (64 columns of them stay in L1);
// the columns past the last whole vector (a hidden size off the SIMD width) by dot products.
template <typename T>
void step_product(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C,
                  int64_t ldc, bool accumulate) {
  constexpr int64_t W = Vec<T>::W, KC = 128;
  const int64_t Nv = N / W * W;
  if (Nv > 0) {
    if (K == 0 && !accumulate)
      for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + Nv, T(0));
    for (int64_t p0 = 0; p0 < K; p0 += KC) {
      const int64_t kc = std::min(KC, K - p0);
      if (p0 == 0 && !accumulate)
        tiles::tile_product<T, tiles::kStore>(M, Nv, kc, A, lda, 1, B, ldb, C, ldc);
      else
        tiles::tile_product<T, tiles::kAccumulate>(M, Nv, kc, A + p0, lda, 1, B + p0 * ldb, ldb, C, ldc);
    }
  }
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = Nv; j < N; ++j) {
      T s = accumulate ? C[i * ldc + j] : T(0);
      for (int64_t p = 0; p < K; ++p) s += A[i * lda + p] * B[p * ldb + j];
      C[i * ldc + j] = s;
    }
}

template <typename T>
void lstm_forward_pass(int64_t rows, int64_t H, int64_t j0, int64_t j1, const T* bias, T* gates, const T* c_prev,
                       T* c, T* h, T* h2) {
  using V = Vec<T>;
  using R = typename V::R;
  constexpr int W = V::W;
  for (int64_t r = 0; r < rows; ++r) {
    T* gr = gates + r * 4 * H;
    const T* cp = c_prev + r * H;
    T* cr = c + r * H;
    T* hr = h + r * H;
    T* h2r = h2 ? h2 + r * H : nullptr;
    int64_t j = j0;
    for (; j + W <= j1; j += W) {
      R a[4];
      for (int k = 0; k < 4; ++k) {
        a[k] = V::load(gr + k * H + j);
        if (bias) a[k] = V::add(a[k], V::load(bias + k * H + j));
      }
      R i, f, g, o, cn, hn;
      lstm_gates_forward<R, VecGateMath<T>>(a[0], a[1], a[2], a[3], V::load(cp + j), i, f, g, o, cn, hn);
      V::store(gr + j, i);
      V::store(gr + H + j, f);
      V::store(gr + 2 * H + j, g);
      V::store(gr + 3 * H + j, o);
      V::store(cr + j, cn);
      V::store(hr + j, hn);
      if (h2r) V::store(h2r + j, hn);
    }
    for (; j < j1; ++j) {
      T a[4];
      for (int k = 0; k < 4; ++k) a[k] = gr[k * H + j] + (bias ? bias[k * H + j] : T(0));
      T i, f, g, o, cn, hn;
      lstm_gates_forward<T, ScalarGateMath<T>>(a[0], a[1], a[2], a[3], cp[j], i, f, g, o, cn, hn);
      gr[j] = i;
      gr[H + j] = f;
      gr[2 * H + j] = g;
      gr[3 * H + j] = o;
      cr[j] = cn;
      hr[j] = hn;
      if (h2r) h2r[j] = hn;
    }
  }
}

// The bias gradient is summed over a block of kSumRows rows in registers, then added once:
// one load and store of dbias per block instead of per row.
constexpr int64_t kSumRows = 8;

template <typename T>
void lstm_backward_pass(int64_t rows, int64_t H, int64_t j0, int64_t j1, const T* gates, const T* c_prev,
                        const T* c, const T* dh1, const T* dh2, const T* dc, T* dgates, T* dc_prev, T* dbias) {
  using V = Vec<T>;
  using R = typename V::R;
  constexpr int W = V::W;
  for (int64_t r0 = 0; r0 < rows; r0 += kSumRows) {
    const int64_t r1 = std::min(rows, r0 + kSumRows);
    int64_t j = j0;
    for (; j + W <= j1; j += W) {
      R sum[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
      for (int64_t r = r0; r < r1; ++r) {
        const T* gr = gates + r * 4 * H;
        T* dgr = dgates + r * 4 * H;
        const int64_t o = r * H;
        R dh = V::load(dh1 + o + j);
        if (dh2) dh = V::add(dh, V::load(dh2 + o + j));
        const R dcin = dc ? V::load(dc + o + j) : V::zero();
        R da[4], dcp;
        lstm_gates_backward<R, VecGateMath<T>>(V::load(gr + j), V::load(gr + H + j), V::load(gr + 2 * H + j),
                                               V::load(gr + 3 * H + j), V::load(c_prev + o + j),
                                               V::load(c + o + j), dh, dcin, da[0], da[1], da[2], da[3], dcp);
        for (int k = 0; k < 4; ++k) {
          V::store(dgr + k * H + j, da[k]);
          sum[k] = V::add(sum[k], da[k]);
        }
        V::store(dc_prev + o + j, dcp);
      }
      for (int k = 0; k < 4; ++k) V::store(dbias + k * H + j, V::add(V::load(dbias + k * H + j), sum[k]));
    }
    for (; j < j1; ++j)
      for (int64_t r = r0; r < r1; ++r) {
        const T* gr = gates + r * 4 * H;
        T* dgr = dgates + r * 4 * H;
        const int64_t o = r * H;
        const T dh = dh1[o + j] + (dh2 ? dh2[o + j] : T(0));
        T da[4], dcp;
        lstm_gates_backward<T, ScalarGateMath<T>>(gr[j], gr[H + j], gr[2 * H + j], gr[3 * H + j], c_prev[o + j],
                                                  c[o + j], dh, dc ? dc[o + j] : T(0), da[0], da[1], da[2], da[3],
                                                  dcp);
        for (int k = 0; k < 4; ++k) {
          dgr[k * H + j] = da[k];
          dbias[k * H + j] += da[k];
        }
        dc_prev[o + j] = dcp;
      }
  }
}

template <typename T>
void gru_forward_pass(int64_t rows, int64_t H, int64_t j0, int64_t j1, const T* b_ih, const T* b_hh, const T* gi,
                      const T* gh, const T* h_prev, T* saved, T* h, T* h2) {
  using V = Vec<T>;
  using R = typename V::R;
  constexpr int W = V::W;
  for (int64_t r = 0; r < rows; ++r) {
    const T* gir = gi + r * 3 * H;
    const T* ghr = gh + r * 3 * H;
    T* sr = saved + r * 4 * H;
    const int64_t o = r * H;
    int64_t j = j0;
    for (; j + W <= j1; j += W) {
      R x[3], y[3];
      for (int k = 0; k < 3; ++k) {
        x[k] = V::load(gir + k * H + j);
        y[k] = V::load(ghr + k * H + j);
        if (b_ih) x[k] = V::add(x[k], V::load(b_ih + k * H + j));
        if (b_hh) y[k] = V::add(y[k], V::load(b_hh + k * H + j));
      }
      R rg, zg, ng, hn;
      gru_gates_forward<R, VecGateMath<T>>(x[0], x[1], x[2], y[0], y[1], y[2], V::load(h_prev + o + j), rg, zg, ng,
                                           hn);
      V::store(sr + j, rg);
      V::store(sr + H + j, zg);
      V::store(sr + 2 * H + j, ng);
      V::store(sr + 3 * H + j, y[2]);
      V::store(h + o + j, hn);
      if (h2) V::store(h2 + o + j, hn);
    }
    for (; j < j1; ++j) {
      T x[3], y[3];
      for (int k = 0; k < 3; ++k) {
        x[k] = gir[k * H + j] + (b_ih ? b_ih[k * H + j] : T(0));
        y[k] = ghr[k * H + j] + (b_hh ? b_hh[k * H + j] : T(0));
      }
      T rg, zg, ng, hn;
      gru_gates_forward<T, ScalarGateMath<T>>(x[0], x[1], x[2], y[0], y[1], y[2], h_prev[o + j], rg, zg, ng, hn);
      sr[j] = rg;
      sr[H + j] = zg;
      sr[2 * H + j] = ng;
      sr[3 * H + j] = y[2];
      h[o + j] = hn;
      if (h2) h2[o + j] = hn;
    }
  }
}

template <typename T>
void gru_backward_pass(int64_t rows, int64_t H, int64_t j0, int64_t j1, const T* saved, const T* h_prev,
                       const T* dh1, const T* dh2, T* dgi, T* dgh, T* dh_prev, T* dbi, T* dbh) {
  using V = Vec<T>;
  using R = typename V::R;
  constexpr int W = V::W;
  for (int64_t r0 = 0; r0 < rows; r0 += kSumRows) {
    const int64_t r1 = std::min(rows, r0 + kSumRows);
    int64_t j = j0;
    for (; j + W <= j1; j += W) {
      R sum[4] = {V::zero(), V::zero(), V::zero(), V::zero()};  // r, z, n (input part), n (hidden part)
      for (int64_t r = r0; r < r1; ++r) {
        const T* sr = saved + r * 4 * H;
        T* dgir = dgi + r * 3 * H;
        T* dghr = dgh + r * 3 * H;
        const int64_t o = r * H;
        R dh = V::load(dh1 + o + j);
        if (dh2) dh = V::add(dh, V::load(dh2 + o + j));
        R d[4], dhp;
        gru_gates_backward<R, VecGateMath<T>>(V::load(sr + j), V::load(sr + H + j), V::load(sr + 2 * H + j),
                                              V::load(sr + 3 * H + j), V::load(h_prev + o + j), dh, d[0], d[1],
                                              d[2], d[3], dhp);
        V::store(dgir + j, d[0]);
        V::store(dgir + H + j, d[1]);
        V::store(dgir + 2 * H + j, d[2]);
        V::store(dghr + j, d[0]);
        V::store(dghr + H + j, d[1]);
        V::store(dghr + 2 * H + j, d[3]);
        V::store(dh_prev + o + j, dhp);
        for (int k = 0; k < 4; ++k) sum[k] = V::add(sum[k], d[k]);
      }
      for (int k = 0; k < 3; ++k) {
        V::store(dbi + k * H + j, V::add(V::load(dbi + k * H + j), sum[k]));
        V::store(dbh + k * H + j, V::add(V::load(dbh + k * H + j), sum[k == 2 ? 3 : k]));
      }
    }
    for (; j < j1; ++j)
      for (int64_t r = r0; r < r1; ++r) {
        const T* sr = saved + r * 4 * H;
        const int64_t o = r * H;
        const T dh = dh1[o + j] + (dh2 ? dh2[o + j] : T(0));
        T d[4], dhp;
        gru_gates_backward<T, ScalarGateMath<T>>(sr[j], sr[H + j], sr[2 * H + j], sr[3 * H + j], h_prev[o + j], dh,
                                                 d[0], d[1], d[2], d[3], dhp);
        for (int k = 0; k < 3; ++k) {
          dgi[r * 3 * H + k * H + j] = d[k];
          dgh[r * 3 * H + k * H + j] = d[k == 2 ? 3 : k];
          dbi[k * H + j] += d[k];
          dbh[k * H + j] += d[k == 2 ? 3 : k];
        }
        dh_prev[o + j] = dhp;
      }
  }
}

}  // namespace

extern const RnnKernels rnn_kernels = {
    {&step_product<float>, &lstm_forward_pass<float>, &lstm_backward_pass<float>, &gru_forward_pass<float>,
     &gru_backward_pass<float>},
    {&step_product<double>, &lstm_forward_pass<double>, &lstm_backward_pass<double>, &gru_forward_pass<double>,
     &gru_backward_pass<double>},
};

}  // namespace pydl::PYDL_ISA_NS
