// attention, compiled once per ISA (see isa.h): fused scaled dot-product attention.
//
//   E = Q K^T * scale + mask,   A = softmax_rows(E),   Y = A V,   lse_i = log sum_j exp(E_ij)
//   backward (D_i = rowsum(dY * Y) = rowsum(dA * A)):
//     dV = A^T dY,   dA = dY V^T,   dE = A * (dA - D),   dQ = dE K * scale,   dK = dE^T Q * scale
//
// Legend: BH heads, L queries, S keys, D query/key features, Dv value features, W SIMD
// lanes, BQ queries per tile (a multiple of W, <= 64), BK keys per tile (64).
//
// Algorithm (flash attention, Dao et al. 2022, on a CPU): the (L, S) matrices are never
// formed. The forward walks, for one tile of BQ queries, over tiles of BK keys, keeping
// per query the running max m and sum l of the online softmax (online_softmax_update in
// attention.h) and an output accumulator that is rescaled whenever the max grows; at the
// end out = acc / l and lse = m + log l are written, nothing else. The backward first
// computes D_i, then for each tile of BK keys walks over the query tiles, recomputing the
// probabilities from lse (P = exp(E - lse)) and accumulating dV, dK for the key tile in
// registers-and-L1 buffers and dQ for the head. With is_causal, key tiles that lie
// wholly above the diagonal (every key after every query of the tile) are skipped, not
// computed and masked: about half the work at L = S.
//
// Layout: queries run along the SIMD lanes. Each score tile is held transposed,
// ST = (BK keys, BQ queries), so that the softmax statistics of a query (max, sum over
// keys, the rescale factor, lse, D_i) are plain vertical vector operations, with no
// horizontal reductions, and every product of the algorithm has the form
//   C(r, lanes) (+)= sum_p A(r, p) B(p, lanes)
// with A read by broadcasts from wherever it lies (K, V, P^T or dE^T, any strides) and B
// read as contiguous rows (Q^T and dY^T packed per head, P^T / dE^T tiles, or the rows of
// dY, Q, K): one register-tiled micro-kernel (tile_kernel, MR x NV vectors, all
// accumulators in registers) serves all seven products, and K and V are read in place,
// never packed. Only Q^T (scaled) and dY^T are packed, once per query tile (forward) or
// per head (backward).
//
// Threads: the forward splits (head, query tile) pairs over the team (dynamic: causal
// tiles differ in cost). The backward gives each thread whole heads when there are at
// least as many heads as threads; otherwise it splits each head's key tiles over the
// team, each thread summing its own dQ, added up in thread order at the end (so results
// differ between thread counts only by rounding).
//
// Workspace, per worker thread (one block held by the calling thread, kept between
// calls): forward (D + BK + Dv + 3) x BQ values (~50 KiB in float32 at D = Dv = 64,
// BQ = 64: it stays in L1/L2); backward, per head, Q^T and dY^T (D + Dv) x L, dQ L x D
// and two BK x BQ tiles, plus padded copies of Q, K, dY when D or Dv is not a multiple
// of W -- O(L + S) per head, never O(L S).
//
// Checked by tests/kernels/test_attention.py against the float64 NumPy reference
// (pydl/kernels/reference/attention.py) on every ISA path: lengths 1 to 256, L != S,
// D 1 to 64, Dv != D, boolean and additive masks with broadcasting, causal with L != S,
// fully masked rows, scores of large magnitude, 1 and 2 threads, and the peak memory at
// L = S = 4096.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <utility>

#include "pydl/attention.h"
#include "pydl/parallel.h"
#include "pydl/scratch.h"
#include "pydl/simd.h"
#include "pydl/simd_math.h"
#include "pydl/tile_product.h"

namespace pydl::PYDL_ISA_NS {
namespace {

using simd::Vec;
using tiles::kAccumulate;
using tiles::kScaleAccumulate;
using tiles::kStore;
using tiles::tile_product;

constexpr int64_t kBK = 64;  // keys per tile

// Queries per tile: 64 floats or 32 doubles, so that a BK x BQ tile is 16 KiB.
template <typename T>
constexpr int64_t max_bq() {
  return sizeof(T) == 4 ? 64 : 32;
}

// ---------------------------------------------------------------------------------
// Score tiles: mask, causal rule, softmax statistics
// ---------------------------------------------------------------------------------

template <typename T>
struct VecMath {
  using R = typename Vec<T>::R;
  static R max(R a, R b) { return Vec<T>::max(a, b); }
  static R exp(R a) { return simd::exp<T>(a); }
  static R lowest() { return Vec<T>::set1(std::numeric_limits<T>::lowest()); }
};

// ST (nk, bq) += mask[i0 + i, j0 + j] for the nq valid query lanes.
template <typename T>
void add_mask(const AttentionArgs<T>& a, const T* mask, int64_t i0, int64_t nq, int64_t j0, int64_t nk, T* ST,
              int64_t bq) {
  using V = Vec<T>;
  constexpr int W = V::W;
  for (int64_t j = 0; j < nk; ++j) {
    const T* mj = mask + (j0 + j) * a.mask_ss + i0 * a.mask_ls;
    T* s = ST + j * bq;
    if (a.mask_ls == 0) {  // the same value for every query (a key padding mask)
      const typename V::R mv = V::set1(*mj);
      for (int64_t i = 0; i < bq; i += W) V::store(s + i, V::add(V::load(s + i), mv));
    } else {
      for (int64_t i = 0; i < nq; ++i) s[i] += mj[i * a.mask_ls];
    }
  }
}

// The causal rule on a tile crossing the diagonal: key j0 + j is hidden from query i0 + i
// when j0 + j > i0 + i.
template <typename T>
void mask_causal(int64_t i0, int64_t j0, int64_t nk, T* ST, int64_t bq) {
  for (int64_t j = 0; j < nk; ++j) {
    const int64_t hidden = std::min<int64_t>(bq, std::max<int64_t>(0, j0 + j - i0));  // lanes i < j0 + j - i0
    std::fill(ST + j * bq, ST + j * bq + hidden, -std::numeric_limits<T>::infinity());
  }
}

// Workspace: each kernel takes one thread_scratch (pydl/scratch.h) for its whole team
// BEFORE its parallel region (an allocation failure then reaches Python as MemoryError
// instead of ending the process inside the region) and hands every thread its own slice.
int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Elements of a thread's slice, rounded to whole cache lines (no false sharing).
template <typename T>
size_t slice_size(int64_t n) {
  return static_cast<size_t>(round_up(n, 64 / static_cast<int64_t>(sizeof(T))));
}

// Queries per tile for L queries: up to max_bq, a multiple of W (short sequences do not
// pay for 64 lanes).
template <typename T>
int64_t pick_bq(int64_t L) {
  return std::min<int64_t>(max_bq<T>(), round_up(std::max<int64_t>(L, 1), Vec<T>::W));
}

// ---------------------------------------------------------------------------------
// Forward
// ---------------------------------------------------------------------------------

template <typename T>
size_t forward_workspace(const AttentionArgs<T>& a, int64_t bq) {
  return slice_size<T>((a.D + kBK + a.Dv + 3) * bq);
}

// One tile of queries [i0, i0 + nq) of head bh, against every key it may see; ws holds
// forward_workspace elements.
template <typename T>
void forward_tile(const AttentionArgs<T>& a, int64_t bh, int64_t i0, int64_t bq, T* ws) {
  using V = Vec<T>;
  using R = typename V::R;
  constexpr int W = V::W;
  const int64_t L = a.L, S = a.S, D = a.D, Dv = a.Dv;
  const int64_t nq = std::min(bq, L - i0);
  T* QT = ws;               // (D, bq): Q^T * scale, zero past nq
  T* ST = QT + D * bq;      // (kBK, bq): scores, then probabilities, of one key tile
  T* OT = ST + kBK * bq;    // (Dv, bq): output accumulator, transposed
  T* m = OT + Dv * bq;      // (bq,) running max
  T* l = m + bq;            // (bq,) running sum
  T* alpha = l + bq;        // (bq,) this tile's rescale factor

  const T* q = a.q + (bh * L + i0) * D;
  const T* k = a.k + bh * S * D;
  const T* v = a.v + bh * S * Dv;
  const T* mask = a.mask ? a.mask + a.mask_offset[bh] : nullptr;
  for (int64_t d = 0; d < D; ++d) {
    T* row = QT + d * bq;
    for (int64_t i = 0; i < nq; ++i) row[i] = q[i * D + d] * a.scale;
    for (int64_t i = nq; i < bq; ++i) row[i] = T(0);
  }
  std::fill(OT, OT + Dv * bq, T(0));
  std::fill(m, m + bq, -std::numeric_limits<T>::infinity());
  std::fill(l, l + bq, T(0));

  // Causal: query i sees keys j <= i, so the tile needs keys below i0 + nq only.
  const int64_t j_end = a.causal ? std::min(S, i0 + nq) : S;
  for (int64_t j0 = 0; j0 < j_end; j0 += kBK) {
    const int64_t nk = std::min(kBK, j_end - j0);
    // ST = K[j0 : j0 + nk] @ (Q^T * scale)
    tile_product<T, kStore>(nk, bq, D, k + j0 * D, D, 1, QT, bq, ST, bq);
    if (mask) add_mask(a, mask, i0, nq, j0, nk, ST, bq);
    if (a.causal && j0 + nk - 1 > i0) mask_causal(i0, j0, nk, ST, bq);
    for (int64_t i = 0; i < bq; i += W) {
      R mx = V::set1(-std::numeric_limits<T>::infinity());
      for (int64_t j = 0; j < nk; ++j) mx = V::max(mx, V::load(ST + j * bq + i));
      R mi = V::load(m + i), li = V::load(l + i), sh = V::zero();
      const R al = online_softmax_update<R, VecMath<T>>(mi, li, mx, sh);
      R s0 = V::zero(), s1 = V::zero();
      int64_t j = 0;
      for (; j + 2 <= nk; j += 2) {
        const R e0 = simd::exp<T>(V::sub(V::load(ST + j * bq + i), sh));
        const R e1 = simd::exp<T>(V::sub(V::load(ST + (j + 1) * bq + i), sh));
        V::store(ST + j * bq + i, e0);
        V::store(ST + (j + 1) * bq + i, e1);
        s0 = V::add(s0, e0);
        s1 = V::add(s1, e1);
      }
      if (j < nk) {
        const R e0 = simd::exp<T>(V::sub(V::load(ST + j * bq + i), sh));
        V::store(ST + j * bq + i, e0);
        s0 = V::add(s0, e0);
      }
      V::store(m + i, mi);
      V::store(l + i, V::add(li, V::add(s0, s1)));
      V::store(alpha + i, al);
    }
    // OT = OT * alpha + V[j0 : j0 + nk]^T @ P^T
    tile_product<T, kScaleAccumulate>(Dv, bq, nk, v + j0 * Dv, 1, Dv, ST, bq, OT, bq, alpha);
  }

  T* out = a.out + (bh * L + i0) * Dv;
  T* lse = a.lse + bh * L + i0;
  for (int64_t i = 0; i < nq; ++i) {
    const T inv = l[i] > T(0) ? T(1) / l[i] : T(0);  // a fully masked row: output 0
    lse[i] = m[i] + std::log(l[i]);                   // ... and lse -inf
    for (int64_t c = 0; c < Dv; ++c) out[i * Dv + c] = OT[c * bq + i] * inv;
  }
}

template <typename T>
void attention_forward(const AttentionArgs<T>& a) {
  const int64_t bq = pick_bq<T>(a.L);
  const int64_t tiles = (a.L + bq - 1) / bq;
  const int64_t items = a.BH * tiles;
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(a.threads, items)));
  const size_t per_thread = forward_workspace(a, bq);
  T* ws = thread_scratch<T, 0>(per_thread * static_cast<size_t>(threads));
  if (threads == 1) {
    for (int64_t it = 0; it < items; ++it) forward_tile(a, it / tiles, (it % tiles) * bq, bq, ws);
    return;
  }
  // Causal tiles late in a head see the most keys: hand those out first.
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t it = 0; it < items; ++it) {
    const int64_t t = a.causal ? tiles - 1 - it % tiles : it % tiles;
    forward_tile(a, it / tiles, t * bq, bq, ws + static_cast<size_t>(omp_get_thread_num()) * per_thread);
  }
}

// ---------------------------------------------------------------------------------
// Backward
// ---------------------------------------------------------------------------------

// What every key tile of one head reads: packed once per head.
template <typename T>
struct HeadPack {
  int64_t bq, Lp;        // query tile width, L rounded up to whole tiles
  const T* QT;           // (D, Lp): Q^T * scale, zero past L
  const T* dOT;          // (Dv, Lp): dY^T, zero past L
  const T* Dvec;         // (Lp,): rowsum(dY * Y), 0 past L
  const T* lse;          // (Lp,): lse, +inf where -inf (fully masked rows) and past L: P = 0 there
  const T* qrows;        // Q rows, qs apart (q itself, or a copy padded to Dp)
  const T* krows;        // K rows, ks apart
  const T* dorows;       // dY rows, dos apart
  int64_t qs, ks, dos;
  int64_t Dp, Dvp;       // D, Dv rounded up to W
};

// Packs head bh into `buf` (sized by pack_size) and returns the view.
template <typename T>
size_t pack_size(const AttentionArgs<T>& a, int64_t bq) {
  constexpr int64_t W = Vec<T>::W;
  const int64_t Lp = round_up(std::max<int64_t>(a.L, 1), bq), Dp = round_up(a.D, W), Dvp = round_up(a.Dv, W);
  size_t n = static_cast<size_t>((a.D + a.Dv + 2) * Lp);
  if (Dp != a.D) n += static_cast<size_t>((a.L + a.S) * Dp);
  if (Dvp != a.Dv) n += static_cast<size_t>(a.L * Dvp);
  return n;
}

template <typename T>
HeadPack<T> pack_head(const AttentionArgs<T>& a, int64_t bh, int64_t bq, T* buf) {
  constexpr int64_t W = Vec<T>::W;
  const int64_t L = a.L, S = a.S, D = a.D, Dv = a.Dv;
  HeadPack<T> h;
  h.bq = bq;
  h.Lp = round_up(std::max<int64_t>(L, 1), bq);
  h.Dp = round_up(D, W);
  h.Dvp = round_up(Dv, W);
  const int64_t Lp = h.Lp;
  const T* q = a.q + bh * L * D;
  const T* k = a.k + bh * S * D;
  const T* o = a.out + bh * L * Dv;
  const T* dO = a.grad_out + bh * L * Dv;
  const T* lse = a.lse + bh * L;
  T* QT = buf;                  // (D, Lp)
  T* dOT = QT + D * Lp;         // (Dv, Lp)
  T* Dvec = dOT + Dv * Lp;      // (Lp,)
  T* lsh = Dvec + Lp;           // (Lp,)
  T* rest = lsh + Lp;
  for (int64_t d = 0; d < D; ++d) {
    for (int64_t i = 0; i < L; ++i) QT[d * Lp + i] = q[i * D + d] * a.scale;
    std::fill(QT + d * Lp + L, QT + (d + 1) * Lp, T(0));
  }
  for (int64_t c = 0; c < Dv; ++c) {
    for (int64_t i = 0; i < L; ++i) dOT[c * Lp + i] = dO[i * Dv + c];
    std::fill(dOT + c * Lp + L, dOT + (c + 1) * Lp, T(0));
  }
  const T inf = std::numeric_limits<T>::infinity();
  for (int64_t i = 0; i < L; ++i) {
    T s = 0;
    for (int64_t c = 0; c < Dv; ++c) s += dO[i * Dv + c] * o[i * Dv + c];
    Dvec[i] = s;
    lsh[i] = lse[i] == -inf ? inf : lse[i];
  }
  std::fill(Dvec + L, Dvec + Lp, T(0));
  std::fill(lsh + L, lsh + Lp, inf);
  h.QT = QT;
  h.dOT = dOT;
  h.Dvec = Dvec;
  h.lse = lsh;
  // Row operands of the products whose lanes run over features: padded copies when the
  // feature count is not a multiple of W (the padding is zero and never read back).
  if (h.Dp != D) {
    T* qp = rest;
    T* kp = qp + L * h.Dp;
    rest = kp + S * h.Dp;
    for (int64_t i = 0; i < L; ++i) {
      std::copy(q + i * D, q + (i + 1) * D, qp + i * h.Dp);
      std::fill(qp + i * h.Dp + D, qp + (i + 1) * h.Dp, T(0));
    }
    for (int64_t j = 0; j < S; ++j) {
      std::copy(k + j * D, k + (j + 1) * D, kp + j * h.Dp);
      std::fill(kp + j * h.Dp + D, kp + (j + 1) * h.Dp, T(0));
    }
    h.qrows = qp;
    h.krows = kp;
    h.qs = h.ks = h.Dp;
  } else {
    h.qrows = q;
    h.krows = k;
    h.qs = h.ks = D;
  }
  if (h.Dvp != Dv) {
    T* dp = rest;
    for (int64_t i = 0; i < L; ++i) {
      std::copy(dO + i * Dv, dO + (i + 1) * Dv, dp + i * h.Dvp);
      std::fill(dp + i * h.Dvp + Dv, dp + (i + 1) * h.Dvp, T(0));
    }
    h.dorows = dp;
    h.dos = h.Dvp;
  } else {
    h.dorows = dO;
    h.dos = Dv;
  }
  return h;
}

template <typename T>
size_t key_tile_workspace(const AttentionArgs<T>& a, int64_t bq) {
  constexpr int64_t W = Vec<T>::W;
  return slice_size<T>(2 * kBK * bq + kBK * (round_up(a.D, W) + round_up(a.Dv, W)));
}

// Key tile [j0, j0 + nk) of head bh against every query tile that sees it: writes the
// tile's rows of grad_k and grad_v, adds its share of dQ (unscaled) into dq (L, Dp); ws
// holds key_tile_workspace elements.
template <typename T>
void backward_key_tile(const AttentionArgs<T>& a, const HeadPack<T>& h, int64_t bh, int64_t j0, T* dq, T* ws) {
  using V = Vec<T>;
  using R = typename V::R;
  constexpr int W = V::W;
  const int64_t L = a.L, S = a.S, D = a.D, Dv = a.Dv, bq = h.bq, Dp = h.Dp, Dvp = h.Dvp;
  const int64_t nk = std::min(kBK, S - j0);
  T* PT = ws;                // (kBK, bq): probabilities of one (key tile, query tile), transposed
  T* dST = PT + kBK * bq;    // (kBK, bq): dA^T, then dE^T
  T* dK = dST + kBK * bq;    // (kBK, Dp): this key tile's dK (unscaled)
  T* dV = dK + kBK * Dp;     // (kBK, Dvp): this key tile's dV
  std::fill(dK, dK + kBK * (Dp + Dvp), T(0));

  const T* k = a.k + (bh * S + j0) * D;
  const T* v = a.v + (bh * S + j0) * Dv;
  const T* mask = a.mask ? a.mask + a.mask_offset[bh] : nullptr;
  // Causal: query tile [i0, i0 + bq) sees key j0 only if its last query is >= j0.
  const int64_t i_begin = a.causal ? (j0 / bq) * bq : 0;
  for (int64_t i0 = i_begin; i0 < L; i0 += bq) {
    const int64_t nq = std::min(bq, L - i0);
    // PT = exp(K_tile @ (Q^T * scale) + mask - lse)
    tile_product<T, kStore>(nk, bq, D, k, D, 1, h.QT + i0, h.Lp, PT, bq);
    if (mask) add_mask(a, mask, i0, nq, j0, nk, PT, bq);
    if (a.causal && j0 + nk - 1 > i0) mask_causal(i0, j0, nk, PT, bq);
    for (int64_t j = 0; j < nk; ++j)
      for (int64_t i = 0; i < bq; i += W)
        V::store(PT + j * bq + i, simd::exp<T>(V::sub(V::load(PT + j * bq + i), V::load(h.lse + i0 + i))));
    // dV_tile += P^T @ dY_tile
    tile_product<T, kAccumulate>(nk, Dvp, nq, PT, bq, 1, h.dorows + i0 * h.dos, h.dos, dV, Dvp);
    // dST = V_tile @ dY^T_tile, then dE^T = P^T * (dA^T - D)
    tile_product<T, kStore>(nk, bq, Dv, v, Dv, 1, h.dOT + i0, h.Lp, dST, bq);
    for (int64_t j = 0; j < nk; ++j)
      for (int64_t i = 0; i < bq; i += W) {
        const R p = V::load(PT + j * bq + i);
        V::store(dST + j * bq + i, V::mul(p, V::sub(V::load(dST + j * bq + i), V::load(h.Dvec + i0 + i))));
      }
    // dK_tile += dE^T @ Q_tile;  dQ_tile += dE @ K_tile
    tile_product<T, kAccumulate>(nk, Dp, nq, dST, bq, 1, h.qrows + i0 * h.qs, h.qs, dK, Dp);
    tile_product<T, kAccumulate>(nq, Dp, nk, dST, 1, bq, h.krows + j0 * h.ks, h.ks, dq + i0 * Dp, Dp);
  }
  T* gk = a.grad_k + (bh * S + j0) * D;
  T* gv = a.grad_v + (bh * S + j0) * Dv;
  for (int64_t j = 0; j < nk; ++j) {
    for (int64_t d = 0; d < D; ++d) gk[j * D + d] = dK[j * Dp + d] * a.scale;
    std::copy(dV + j * Dvp, dV + j * Dvp + Dv, gv + j * Dv);
  }
}

template <typename T>
void store_grad_q(const AttentionArgs<T>& a, int64_t bh, const T* dq, int64_t Dp) {
  T* gq = a.grad_q + bh * a.L * a.D;
  for (int64_t i = 0; i < a.L; ++i)
    for (int64_t d = 0; d < a.D; ++d) gq[i * a.D + d] = dq[i * Dp + d] * a.scale;
}

template <typename T>
void attention_backward(const AttentionArgs<T>& a) {
  const int64_t bq = pick_bq<T>(a.L);
  const int64_t key_tiles = (a.S + kBK - 1) / kBK;
  const int64_t Dp = round_up(a.D, Vec<T>::W);
  const size_t dq_size = static_cast<size_t>(a.L * Dp);
  if (key_tiles == 0) {  // no keys: every gradient is 0
    std::fill(a.grad_q, a.grad_q + a.BH * a.L * a.D, T(0));
    return;
  }
  const size_t tile_ws = key_tile_workspace(a, bq);
  const int threads = std::max(1, a.threads);
  if (threads == 1 || a.BH >= threads) {
    // Whole heads per thread: each its own packed head, dQ and key-tile workspace.
    const size_t per_thread = slice_size<T>(static_cast<int64_t>(pack_size(a, bq) + dq_size)) + tile_ws;
    T* ws = thread_scratch<T, 1>(per_thread * static_cast<size_t>(threads));
    auto whole_head = [&](int64_t bh, T* mine) {
      T* dq = mine;  // (L, Dp)
      std::fill(dq, dq + dq_size, T(0));
      const HeadPack<T> h = pack_head(a, bh, bq, dq + dq_size);
      T* tile = mine + per_thread - tile_ws;
      for (int64_t t = 0; t < key_tiles; ++t) backward_key_tile(a, h, bh, t * kBK, dq, tile);
      store_grad_q(a, bh, dq, Dp);
    };
    if (threads == 1) {
      for (int64_t bh = 0; bh < a.BH; ++bh) whole_head(bh, ws);
      return;
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t bh = 0; bh < a.BH; ++bh) whole_head(bh, ws + static_cast<size_t>(omp_get_thread_num()) * per_thread);
    return;
  }
  // Fewer heads than threads: split each head's key tiles, one dQ per thread.
  const int team = static_cast<int>(std::min<int64_t>(threads, key_tiles));
  const size_t pack = slice_size<T>(static_cast<int64_t>(pack_size(a, bq)));
  const size_t per_thread = slice_size<T>(static_cast<int64_t>(dq_size)) + tile_ws;
  T* ws = thread_scratch<T, 1>(pack + dq_size + per_thread * static_cast<size_t>(team));
  T* dq = ws + pack;                  // (L, Dp): the sum of the parts
  T* parts = dq + dq_size;            // team x (dQ part, key-tile workspace)
  for (int64_t bh = 0; bh < a.BH; ++bh) {
    const HeadPack<T> h = pack_head(a, bh, bq, ws);
    for (int p = 0; p < team; ++p) std::fill(parts + p * per_thread, parts + p * per_thread + dq_size, T(0));
#pragma omp parallel for schedule(static, 1) num_threads(team)
    for (int64_t t = 0; t < key_tiles; ++t) {
      T* mine = parts + static_cast<size_t>(omp_get_thread_num()) * per_thread;
      backward_key_tile(a, h, bh, t * kBK, mine, mine + per_thread - tile_ws);
    }
    std::fill(dq, dq + dq_size, T(0));
    for (int p = 0; p < team; ++p)
      for (size_t i = 0; i < dq_size; ++i) dq[i] += parts[static_cast<size_t>(p) * per_thread + i];
    store_grad_q(a, bh, dq, Dp);
  }
}

}  // namespace

extern const AttentionKernels attention_kernels = {
    {&attention_forward<float>, &attention_backward<float>},
    {&attention_forward<double>, &attention_backward<double>},
};

}  // namespace pydl::PYDL_ISA_NS
