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

template <typename T>
void lstm_backward_pass(int64_t rows, int64_t H, int64_t j0, int64_t j1, const T* gates, const T* c_prev,
                        const T* c, const T* dh1, const T* dh2, const T* dc, T* dgates, T* dc_prev, T* dbias) {
  using V = Vec<T>;
  using R = typename V::R;
  constexpr int W = V::W;
  for (int64_t r = 0; r < rows; ++r) {
    const T* gr = gates + r * 4 * H;
    T* dgr = dgates + r * 4 * H;
    const int64_t o = r * H;
    int64_t j = j0;
    for (; j + W <= j1; j += W) {
      R dh = V::load(dh1 + o + j);
      if (dh2) dh = V::add(dh, V::load(dh2 + o + j));
      const R dcin = dc ? V::load(dc + o + j) : V::zero();
      R da_i, da_f, da_g, da_o, dcp;
      lstm_gates_backward<R, VecGateMath<T>>(V::load(gr + j), V::load(gr + H + j), V::load(gr + 2 * H + j),
                                             V::load(gr + 3 * H + j), V::load(c_prev + o + j), V::load(c + o + j),
                                             dh, dcin, da_i, da_f, da_g, da_o, dcp);
      V::store(dgr + j, da_i);
      V::store(dgr + H + j, da_f);
      V::store(dgr + 2 * H + j, da_g);
      V::store(dgr + 3 * H + j, da_o);
      V::store(dc_prev + o + j, dcp);
      const R da[4] = {da_i, da_f, da_g, da_o};
      for (int k = 0; k < 4; ++k) V::store(dbias + k * H + j, V::add(V::load(dbias + k * H + j), da[k]));
    }
    for (; j < j1; ++j) {
      const T dh = dh1[o + j] + (dh2 ? dh2[o + j] : T(0));
      T da_i, da_f, da_g, da_o, dcp;
      lstm_gates_backward<T, ScalarGateMath<T>>(gr[j], gr[H + j], gr[2 * H + j], gr[3 * H + j], c_prev[o + j],
                                                c[o + j], dh, dc ? dc[o + j] : T(0), da_i, da_f, da_g, da_o, dcp);
      dgr[j] = da_i;
      dgr[H + j] = da_f;
      dgr[2 * H + j] = da_g;
      dgr[3 * H + j] = da_o;
      dc_prev[o + j] = dcp;
      dbias[j] += da_i;
      dbias[H + j] += da_f;
      dbias[2 * H + j] += da_g;
      dbias[3 * H + j] += da_o;
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
  for (int64_t r = 0; r < rows; ++r) {
    const T* sr = saved + r * 4 * H;
    T* dgir = dgi + r * 3 * H;
    T* dghr = dgh + r * 3 * H;
    const int64_t o = r * H;
    int64_t j = j0;
    for (; j + W <= j1; j += W) {
      R dh = V::load(dh1 + o + j);
      if (dh2) dh = V::add(dh, V::load(dh2 + o + j));
      R dr, dz, dni, dnh, dhp;
      gru_gates_backward<R, VecGateMath<T>>(V::load(sr + j), V::load(sr + H + j), V::load(sr + 2 * H + j),
                                            V::load(sr + 3 * H + j), V::load(h_prev + o + j), dh, dr, dz, dni, dnh,
                                            dhp);
      V::store(dgir + j, dr);
      V::store(dgir + H + j, dz);
      V::store(dgir + 2 * H + j, dni);
      V::store(dghr + j, dr);
      V::store(dghr + H + j, dz);
      V::store(dghr + 2 * H + j, dnh);
      V::store(dh_prev + o + j, dhp);
      V::store(dbi + j, V::add(V::load(dbi + j), dr));
      V::store(dbi + H + j, V::add(V::load(dbi + H + j), dz));
      V::store(dbi + 2 * H + j, V::add(V::load(dbi + 2 * H + j), dni));
      V::store(dbh + j, V::add(V::load(dbh + j), dr));
      V::store(dbh + H + j, V::add(V::load(dbh + H + j), dz));
      V::store(dbh + 2 * H + j, V::add(V::load(dbh + 2 * H + j), dnh));
    }
    for (; j < j1; ++j) {
      const T dh = dh1[o + j] + (dh2 ? dh2[o + j] : T(0));
      T dr, dz, dni, dnh, dhp;
      gru_gates_backward<T, ScalarGateMath<T>>(sr[j], sr[H + j], sr[2 * H + j], sr[3 * H + j], h_prev[o + j], dh, dr,
                                               dz, dni, dnh, dhp);
      dgir[j] = dr;
      dgir[H + j] = dz;
      dgir[2 * H + j] = dni;
      dghr[j] = dr;
      dghr[H + j] = dz;
      dghr[2 * H + j] = dnh;
      dh_prev[o + j] = dhp;
      dbi[j] += dr;
      dbi[H + j] += dz;
      dbi[2 * H + j] += dni;
      dbh[j] += dr;
      dbh[H + j] += dz;
      dbh[2 * H + j] += dnh;
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
