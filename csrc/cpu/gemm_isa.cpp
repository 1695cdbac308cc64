// gemm, compiled once per ISA (see isa.h): pydl's own packed, cache-blocked GEMM.
//
//   C(M, N) = alpha * A(M, K) @ B(K, N) + beta * C
//
// Algorithm: the Goto / BLIS loop nest. B is cut into KC x NC blocks packed into NR-wide
// column panels (meant to stay in L2/L3), A into MC x KC blocks packed into MR-tall row
// panels (in L2), and the micro-kernel multiplies
// one MR x KC panel by one KC x NR panel into an MR x NR register tile of C, streaming
// the B panel from L1. Packing pads ragged edges with zeros so the micro-kernel never
// branches; ragged C tiles go through a small stack buffer.
//
//   for jc in N step NC:
//     for pc in K step KC:            B block -> packed_b (KC x NC)
//       for ic in M step MC:          A block -> packed_a (MC x KC)
//         for jr in NC step NR:
//           for ir in MC step MR:     micro_kernel<MR, NR>
//
// Micro-kernel: MR rows x NV vectors of W lanes (NR = NV * W), all MR * NV accumulators
// in registers: AVX-512 12 x 32 floats (24 zmm), AVX2 6 x 16 (12 ymm), baseline 6 x 8.
// Each k step loads NV vectors of B, broadcasts MR values of A and issues MR * NV FMAs.
//
// Implicit GEMM (gemm_from, GemmSources): the same loop nest with the A blocks (or the B
// panels) written into packed_a (packed_b) by the caller's packer (GemmPackA, GemmPackB)
// instead of packed from a strided matrix -- conv2d packs its columns straight from the
// image that way -- or with A packed whole once (pack_a_panels) and read in place by every
// product that reuses it (a conv's weights, image after image).
//
// Threads: C is split into one block per thread (see gemm below), each block a serial
// Goto GEMM with its own packed buffers; no barriers, at the cost of re-packing the
// operand shared by the blocks (measured faster and steadier on this shared 2-core
// machine than one shared packed B with two barriers per K block).
//
// Workspace: per thread packed_b KC x NC (1.5 MiB in float32) and packed_a MC x KC,
// thread-local buffers kept between calls (no page faults in steady state).
//
// Checked by tests/kernels/test_gemm.py against the float64 NumPy reference on every
// ISA path this CPU supports.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

#include "pydl/gemm.h"
#include "pydl/parallel.h"
#include "pydl/scratch.h"
#include "pydl/simd.h"

namespace pydl::PYDL_ISA_NS {
namespace {

using simd::Vec;

template <typename T>
struct Blocking;

#if defined(__AVX512F__)
template <> struct Blocking<float> { static constexpr int MR = 12, NV = 2, KC = 256, MC = 144, NC = 1536; };
template <> struct Blocking<double> { static constexpr int MR = 12, NV = 2, KC = 256, MC = 96, NC = 768; };
#elif defined(__AVX2__) && defined(__FMA__)
template <> struct Blocking<float> { static constexpr int MR = 6, NV = 2, KC = 256, MC = 144, NC = 1536; };
template <> struct Blocking<double> { static constexpr int MR = 6, NV = 2, KC = 256, MC = 96, NC = 768; };
#else
template <> struct Blocking<float> { static constexpr int MR = 6, NV = 2, KC = 256, MC = 96, NC = 1024; };
template <> struct Blocking<double> { static constexpr int MR = 6, NV = 2, KC = 256, MC = 96, NC = 512; };
#endif

// A row-major float32 A (cs == 1: each row contiguous along the depth, the usual layout of
// a weight matrix or a batch of inputs) packed through 16 x 16 register transposes: each
// panel's MR rows loaded 16 depths at a time, transposed, stored as 16 packed columns (the
// element-by-element loop below cost 6% of a CIFAR ResNet-18 conv forward, packing the
// weights). Returns false where this ISA has no transpose here.
template <int MR>
bool pack_a_rows(int64_t mc, int64_t kc, const float* A, int64_t rs, float* packed) {
#if defined(__AVX512F__)
  static_assert(MR <= 16);
  for (int64_t ir = 0; ir < mc; ir += MR, packed += kc * MR) {
    const int64_t mr = std::min<int64_t>(MR, mc - ir);
    const float* a = A + ir * rs;
    for (int64_t p0 = 0; p0 < kc; p0 += 16) {
      const int64_t m = std::min<int64_t>(16, kc - p0);
      const __mmask16 depth = __mmask16(m == 16 ? 0xFFFF : (1u << m) - 1);
      __m512 r[16];
      for (int t = 0; t < 16; ++t) r[t] = t < mr ? _mm512_maskz_loadu_ps(depth, a + t * rs + p0) : _mm512_setzero_ps();
      simd::transpose16(r);  // r[q]: depth p0 + q of the panel's rows
      // Stored whole, each store's lanes past MR overwritten by the next column's; the
      // panel's last column under a mask, so nothing past the panel is written.
      for (int64_t q = 0; q < m; ++q)
        if (p0 + q + 1 < kc) _mm512_storeu_ps(packed + (p0 + q) * MR, r[q]);
        else _mm512_mask_storeu_ps(packed + (p0 + q) * MR, __mmask16((1u << MR) - 1), r[q]);
    }
  }
  return true;
#else
  (void)mc, (void)kc, (void)A, (void)rs, (void)packed;
  return false;
#endif
}

// packed_a: (ceil(mc / MR), kc, MR) -- one MR-tall panel after another, column by column.
template <typename T, int MR>
void pack_a_block(int64_t mc, int64_t kc, const T* A, int64_t rs, int64_t cs, T* packed) {
  if constexpr (std::is_same_v<T, float>)
    if (cs == 1 && rs != 1 && pack_a_rows<MR>(mc, kc, A, rs, packed)) return;
  for (int64_t ir = 0; ir < mc; ir += MR) {
    const int64_t mr = std::min<int64_t>(MR, mc - ir);
    const T* a = A + ir * rs;
    if (mr == MR && rs == 1) {
      for (int64_t p = 0; p < kc; ++p) std::memcpy(packed + p * MR, a + p * cs, MR * sizeof(T));
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        T* dst = packed + p * MR;
        int64_t i = 0;
        for (; i < mr; ++i) dst[i] = a[i * rs + p * cs];
        for (; i < MR; ++i) dst[i] = T(0);
      }
    }
    packed += kc * MR;
  }
}

// A column-major float32 B (rs == 1: each column contiguous along the depth; a.T of a
// row-major matrix, a conv weight gradient's columns) packed through register transposes of
// WxW blocks: W columns loaded across W depths each, transposed, stored as W packed rows
// (the element-by-element loop below cost 19% of LeNet's second conv weight gradient).
// Returns false where this ISA has no transpose (the caller packs element by element).
template <int NR>
bool pack_b_columns(int64_t nr, int64_t kc, const float* B, int64_t cs, float* packed) {
#if defined(__AVX512F__)
  constexpr int W = 16;
  for (int64_t p0 = 0; p0 < kc; p0 += W) {
    const int64_t m = std::min<int64_t>(W, kc - p0);
    const __mmask16 depth = __mmask16(m == W ? 0xFFFF : (1u << m) - 1);
    for (int j0 = 0; j0 < NR; j0 += W) {
      __m512 r[W];
      for (int t = 0; t < W; ++t)
        r[t] = j0 + t < nr ? _mm512_maskz_loadu_ps(depth, B + (j0 + t) * cs + p0) : _mm512_setzero_ps();
      simd::transpose16(r);  // r[q]: depth p0 + q of columns j0 .. j0 + 15
      for (int64_t q = 0; q < m; ++q) _mm512_storeu_ps(packed + (p0 + q) * NR + j0, r[q]);
    }
  }
  return true;
#elif defined(__AVX2__)
  constexpr int W = 8;
  const int64_t whole = kc / W * W;
  for (int64_t p0 = 0; p0 < whole; p0 += W)
    for (int j0 = 0; j0 < NR; j0 += W) {
      __m256 r[W];
      for (int t = 0; t < W; ++t) r[t] = j0 + t < nr ? _mm256_loadu_ps(B + (j0 + t) * cs + p0) : _mm256_setzero_ps();
      simd::transpose8(r);
      for (int q = 0; q < W; ++q) _mm256_storeu_ps(packed + (p0 + q) * NR + j0, r[q]);
    }
  for (int64_t p = whole; p < kc; ++p)
    for (int64_t j = 0; j < NR; ++j) packed[p * NR + j] = j < nr ? B[p + j * cs] : 0.0f;
  return true;
#else
  (void)nr, (void)kc, (void)B, (void)cs, (void)packed;
  return false;
#endif
}

// packed_b panel: (kc, NR) -- row by row, zero-padded past nr.
template <typename T, int NR>
void pack_b_panel(int64_t nr, int64_t kc, const T* B, int64_t rs, int64_t cs, T* packed) {
  if (nr == NR && cs == 1) {
    for (int64_t p = 0; p < kc; ++p) std::memcpy(packed + p * NR, B + p * rs, NR * sizeof(T));
    return;
  }
  if constexpr (std::is_same_v<T, float>)
    if (rs == 1 && cs != 1 && pack_b_columns<NR>(nr, kc, B, cs, packed)) return;
  for (int64_t p = 0; p < kc; ++p) {
    T* dst = packed + p * NR;
    int64_t j = 0;
    for (; j < nr; ++j) dst[j] = B[p * rs + j * cs];
    for (; j < NR; ++j) dst[j] = T(0);
  }
}

// Where the micro-kernel's A panels come from: block(i0, mc, p0, kc, buffer) returns the
// block's first panel, the next ones panel_stride(kc) apart. A strided matrix is packed into
// the buffer (the ordinary gemm) ...
template <typename T, int MR>
struct StridedA {
  const T* A;
  int64_t rs, cs;
  const T* block(int64_t i0, int64_t mc, int64_t p0, int64_t kc, T* packed) const {
    pack_a_block<T, MR>(mc, kc, A + i0 * rs + p0 * cs, rs, cs, packed);
    return packed;
  }
  int64_t panel_stride(int64_t kc) const { return kc * MR; }
  StridedA rows_from(int64_t r0) const { return {A + r0 * rs, rs, cs}; }
};
// ... or by the caller's packer (implicit GEMM, see GemmPackA) ...
template <typename T, int MR>
struct CallerA {
  GemmPackA<T> p;
  int64_t row0;
  const T* block(int64_t i0, int64_t mc, int64_t p0, int64_t kc, T* packed) const {
    p.pack(p.ctx, row0 + i0, mc, p0, kc, MR, packed);
    return packed;
  }
  int64_t panel_stride(int64_t kc) const { return kc * MR; }
  CallerA rows_from(int64_t r0) const { return {p, row0 + r0}; }
};
// ... or copied from A packed whole (GemmSources::a_panels; blocks start at rows that are
// multiples of MR): one contiguous run per panel. (Read in place instead, the block's
// panels lie K * MR apart, out of L2 and past the prefetchers: the products ran 25% slower,
// measured on conv layers.)
template <typename T, int MR>
struct PanelsA {
  const T* panels;
  int64_t K, row0;
  const T* block(int64_t i0, int64_t mc, int64_t p0, int64_t kc, T* packed) const {
    const T* src = panels + (row0 + i0) / MR * K * MR + p0 * MR;
    for (int64_t i = 0; i < mc; i += MR, src += K * MR, packed += kc * MR)
      std::memcpy(packed, src, size_t(kc * MR) * sizeof(T));
    return packed - (mc + MR - 1) / MR * kc * MR;
  }
  int64_t panel_stride(int64_t kc) const { return kc * MR; }
  PanelsA rows_from(int64_t r0) const { return {panels, K, row0 + r0}; }
};

// Where packed_b's panels come from: a strided matrix ...
template <typename T, int NR>
struct StridedB {
  const T* B;
  int64_t rs, cs;
  void pack(int64_t j0, int64_t nc, int64_t p0, int64_t kc, T* packed) const {
    for (int64_t jr = 0; jr < nc; jr += NR)
      pack_b_panel<T, NR>(std::min<int64_t>(NR, nc - jr), kc, B + p0 * rs + (j0 + jr) * cs, rs, cs, packed + jr * kc);
  }
  StridedB cols_from(int64_t c0) const { return {B + c0 * cs, rs, cs}; }
};
// ... or the caller's packer (see GemmPackB).
template <typename T, int NR>
struct CallerB {
  GemmPackB<T> p;
  int64_t col0;
  void pack(int64_t j0, int64_t nc, int64_t p0, int64_t kc, T* packed) const {
    p.pack(p.ctx, col0 + j0, nc, p0, kc, NR, packed);
  }
  CallerB cols_from(int64_t c0) const { return {p, col0 + c0}; }
};

// c(MR, NR) = alpha * a_panel @ b_panel + beta * c   (beta == 0: c is not read)
// a_panel's columns lie AS apart: a panel packed MR_full tall can feed a shorter kernel
// (the ragged last rows of a block, see gemm_serial).
// Never inlined: inside some of gemm_serial's instantiations the compiler ran short of
// vector registers and kept a B vector on the stack, one extra load per FMA (25% slower,
// measured on a conv layer); as its own function it always gets all 32.
template <typename T, int MR, int NV, int AS = MR>
[[gnu::noinline]] void micro_kernel(int64_t kc, const T* __restrict a, const T* __restrict b, T* c, int64_t rs_c,
                         T alpha, T beta) {
  using V = Vec<T>;
  using R = typename V::R;
  constexpr int W = V::W, NR = NV * W;
  R acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[i][v] = V::zero();

#pragma GCC unroll 2
  for (int64_t p = 0; p < kc; ++p) {
    R bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bv[v] = V::load(b + v * W);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const R ai = V::set1(a[i]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[i][v] = V::fma(ai, bv[v], acc[i][v]);
    }
    a += AS;
    b += NR;
  }

  const R va = V::set1(alpha);
  if (beta == T(0)) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) V::store(c + i * rs_c + v * W, V::mul(acc[i][v], va));
  } else {
    const R vb = V::set1(beta);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        T* ci = c + i * rs_c + v * W;
        V::store(ci, V::fma(vb, V::load(ci), V::mul(acc[i][v], va)));
      }
  }
}

// One thread, one block of C: the whole Goto loop nest on the caller's buffers.
template <typename T, typename PackA, typename PackB>
void gemm_serial(const GemmArgs<T>& g, const PackA& pack_a, const PackB& pack_b) {
  using Bk = Blocking<T>;
  constexpr int MR = Bk::MR, NV = Bk::NV, NR = NV * Vec<T>::W;
  constexpr int64_t KC = Bk::KC, NC = Bk::NC;
  const int64_t M = g.M, N = g.N, K = g.K;
  // MC: at most Bk::MC rows, evened out so no thin last block (1024 -> 8 x 128).
  const int64_t m_blocks = (M + Bk::MC - 1) / Bk::MC;
  const int64_t MC = std::min<int64_t>(Bk::MC, ((M + m_blocks - 1) / m_blocks + MR - 1) / MR * MR);
  T* packed_b = thread_scratch<T, 0>(size_t(KC) * ((NC + NR - 1) / NR) * NR);      // (NC / NR, KC, NR)
  T* packed_a = thread_scratch<T, 1>(size_t(KC) * ((Bk::MC + MR - 1) / MR) * MR);  // (MC / MR, KC, MR)

  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      const T beta = pc == 0 ? g.beta : T(1);  // later K blocks accumulate
      pack_b.pack(jc, nc, pc, kc, packed_b);
      for (int64_t ic = 0; ic < M; ic += MC) {
        const int64_t mc = std::min(MC, M - ic);
        const T* a_block = pack_a.block(ic, mc, pc, kc, packed_a);
        const int64_t a_stride = pack_a.panel_stride(kc);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int64_t nr = std::min<int64_t>(NR, nc - jr);
          const T* bp = packed_b + jr * kc;
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int64_t mr = std::min<int64_t>(MR, mc - ir);
            const T* ap = a_block + ir / MR * a_stride;
            T* c = g.C + (ic + ir) * g.rs_c + jc + jr;
            if (mr == MR && nr == NR) {
              micro_kernel<T, MR, NV>(kc, ap, bp, c, g.rs_c, g.alpha, beta);
            } else if (nr == NR && mr == MR / 3) {
              // Ragged rows of a power-of-two M (64, 256 in float32 on AVX-512: 4 of 12;
              // 128, 512: 8 of 12), a conv's output channels: a shorter kernel on the same
              // panel, straight into C. (The full tile aside cost as much as a whole one:
              // M = 256 took as long as 264, 1 thread.)
              micro_kernel<T, MR / 3, NV, MR>(kc, ap, bp, c, g.rs_c, g.alpha, beta);
            } else if (nr == NR && mr == 2 * MR / 3) {
              micro_kernel<T, 2 * MR / 3, NV, MR>(kc, ap, bp, c, g.rs_c, g.alpha, beta);
            } else {  // ragged edge: compute the full tile aside, add the part that exists
              alignas(64) T tile[MR * NR];
              micro_kernel<T, MR, NV>(kc, ap, bp, tile, NR, g.alpha, T(0));
              for (int64_t i = 0; i < mr; ++i)
                for (int64_t j = 0; j < nr; ++j) {
                  T& ci = c[i * g.rs_c + j];
                  ci = beta == T(0) ? tile[i * NR + j] : tile[i * NR + j] + beta * ci;
                }
            }
          }
        }
      }
    }
  }
}

template <typename T, typename PackA, typename PackB>
void gemm_with(const GemmArgs<T>& g, const PackA& pack_a, const PackB& pack_b) {
  using Bk = Blocking<T>;
  constexpr int64_t MR = Bk::MR, NR = Bk::NV * Vec<T>::W;
  const int64_t M = g.M, N = g.N, K = g.K;
  if (M == 0 || N == 0) return;
  if (K == 0 || g.alpha == T(0)) {  // C = beta * C; no product to add
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        T& c = g.C[i * g.rs_c + j];
        c = g.beta == T(0) ? T(0) : g.beta * c;
      }
    return;
  }
  const int threads = std::max(1, g.threads);
  if (threads == 1) return gemm_serial(g, pack_a, pack_b);

  // Threads: C is cut into a tm x tn grid of blocks, one per thread, each computed by
  // gemm_serial with its own packed buffers -- no barrier between threads, so a thread
  // slowed by another process delays only its own block. The price is re-packing: each
  // column of blocks packs its rows of A, each row of blocks its columns of B, so pick
  // the grid that re-packs least (tn * M + tm * N elements per K), in whole micro-tiles.
  int tm = threads, tn = 1;
  double best = -1;
  for (int r = 1; r <= threads; ++r) {
    if (threads % r) continue;
    const int c = threads / r;
    if ((M + MR - 1) / MR < r || (N + NR - 1) / NR < c) continue;
    const double cost = double(c) * M + double(r) * N;
    if (best < 0 || cost < best) best = cost, tm = r, tn = c;
  }
  const int64_t rows = ((M + tm - 1) / tm + MR - 1) / MR * MR;
  const int64_t cols = ((N + tn - 1) / tn + NR - 1) / NR * NR;
  std::exception_ptr failure;  // an exception may not leave an OpenMP region: carry it out
#pragma omp parallel for num_threads(tm * tn) schedule(static)
  for (int t = 0; t < tm * tn; ++t) {
    const int64_t r0 = (t / tn) * rows, c0 = (t % tn) * cols;
    if (r0 >= M || c0 >= N) continue;
    GemmArgs<T> part = g;
    part.M = std::min(rows, M - r0);
    part.N = std::min(cols, N - c0);
    part.C += r0 * g.rs_c + c0;
    try {
      // throws std::bad_alloc if its packing buffers cannot grow
      gemm_serial(part, pack_a.rows_from(r0), pack_b.cols_from(c0));
    } catch (...) {
#pragma omp critical(pydl_gemm_failure)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

template <typename T>
constexpr int kNR = Blocking<T>::NV * Vec<T>::W;

template <typename T>
void gemm(const GemmArgs<T>& g) {
  gemm_with(g, StridedA<T, Blocking<T>::MR>{g.A, g.rs_a, g.cs_a}, StridedB<T, kNR<T>>{g.B, g.rs_b, g.cs_b});
}

template <typename T, typename PackB>
void gemm_from_a(const GemmArgs<T>& g, const GemmSources<T>& s, const PackB& pack_b) {
  constexpr int MR = Blocking<T>::MR;
  if (s.pack_a.pack) gemm_with(g, CallerA<T, MR>{s.pack_a, 0}, pack_b);
  else if (s.a_panels) gemm_with(g, PanelsA<T, MR>{s.a_panels, g.K, 0}, pack_b);
  else gemm_with(g, StridedA<T, MR>{g.A, g.rs_a, g.cs_a}, pack_b);
}

template <typename T>
void gemm_from(const GemmArgs<T>& g, const GemmSources<T>& s) {
  if (s.pack_b.pack) gemm_from_a(g, s, CallerB<T, kNR<T>>{s.pack_b, 0});
  else gemm_from_a(g, s, StridedB<T, kNR<T>>{g.B, g.rs_b, g.cs_b});
}

// The whole of A as gemm_serial's blocks lay it out, panel by panel (the threads take whole
// groups of panels).
template <typename T>
void pack_a_panels(int64_t M, int64_t K, const T* A, int64_t rs, int64_t cs, T* panels, int threads) {
  constexpr int64_t MR = Blocking<T>::MR;
  const int64_t n = (M + MR - 1) / MR;
  const int t = std::max<int>(1, std::min<int64_t>(threads, n));
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
  for (int part = 0; part < t; ++part) {
    const int64_t p0 = n * part / t, p1 = n * (part + 1) / t;  // panels [p0, p1)
    if (p1 > p0)
      pack_a_block<T, MR>(std::min(M, p1 * MR) - p0 * MR, K, A + p0 * MR * rs, rs, cs, panels + p0 * K * MR);
  }
}

}  // namespace

extern const GemmKernels gemm_kernels = {
    &gemm<float>, &gemm<double>, Blocking<float>::MR, Blocking<float>::NV * Vec<float>::W,
    &gemm_from<float>, &gemm_from<double>, &pack_a_panels<float>, &pack_a_panels<double>,
};

}  // namespace pydl::PYDL_ISA_NS
