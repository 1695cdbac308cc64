// gemm, compiled once per ISA (see isa.h): pydl's own packed, cache-blocked GEMM.
//
//   C(M, N) = alpha * A(M, K) @ B(K, N) + beta * C
//
// Algorithm: the Goto / BLIS loop nest. B is cut into KC x NC blocks packed into NR-wide
// column panels (shared by all threads, meant to stay in L3), A into MC x KC blocks packed
// into MR-tall row panels (private to a thread, in L2), and the micro-kernel multiplies
// one MR x KC panel by one KC x NR panel into an MR x NR register tile of C, streaming
// the B panel from L1. Packing pads ragged edges with zeros so the micro-kernel never
// branches; ragged C tiles go through a small stack buffer.
//
//   for jc in N step NC:              B block  -> packed_b  (KC x NC)
//     for pc in K step KC:
//       for (ic, jr-chunk) per thread:  A block -> packed_a (MC x KC)
//         for jr in chunk step NR:
//           for ir in MC step MR:     micro_kernel_MRxNR
//
// Micro-kernel: MR rows x NV vectors of W lanes (NR = NV * W), all MR * NV accumulators
// in registers: AVX-512 12 x 32 floats (24 zmm), AVX2 6 x 16 (12 ymm), baseline 6 x 8.
// Each k step loads NV vectors of B, broadcasts MR values of A and issues MR * NV FMAs.
//
// Threads: work items are (MC block, slice of the NR panels); when M is short the N
// range is sliced so both cores work. Each thread re-packs the A block it needs.
//
// Workspace: packed_b KC x NC shared (at most 1.5 MiB in float32), packed_a MC x KC per
// thread; both are thread-local buffers kept between calls (no page faults in steady
// state).
//
// Checked by tests/kernels/test_gemm.py against the float64 NumPy reference on every
// ISA path this CPU supports.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "pydl/gemm.h"
#include "pydl/parallel.h"
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

// A buffer that grows and is reused by the same thread across calls.
template <typename T>
T* scratch(std::unique_ptr<T[], void (*)(void*)>& buf, size_t& cap, size_t n) {
  if (n > cap) {
    void* p = std::aligned_alloc(64, ((n * sizeof(T) + 63) / 64) * 64);
    if (!p) throw std::bad_alloc();
    buf = std::unique_ptr<T[], void (*)(void*)>(static_cast<T*>(p), std::free);
    cap = n;
  }
  return buf.get();
}

template <typename T>
struct Workspace {
  std::unique_ptr<T[], void (*)(void*)> a{nullptr, std::free}, b{nullptr, std::free};
  size_t a_cap = 0, b_cap = 0;
};

template <typename T>
Workspace<T>& workspace() {
  thread_local Workspace<T> ws;
  return ws;
}

// packed_a: (ceil(mc / MR), kc, MR) -- one MR-tall panel after another, column by column.
template <typename T, int MR>
void pack_a_block(int64_t mc, int64_t kc, const T* A, int64_t rs, int64_t cs, T* packed) {
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

// packed_b panel: (kc, NR) -- row by row, zero-padded past nr.
template <typename T, int NR>
void pack_b_panel(int64_t nr, int64_t kc, const T* B, int64_t rs, int64_t cs, T* packed) {
  if (nr == NR && cs == 1) {
    for (int64_t p = 0; p < kc; ++p) std::memcpy(packed + p * NR, B + p * rs, NR * sizeof(T));
    return;
  }
  for (int64_t p = 0; p < kc; ++p) {
    T* dst = packed + p * NR;
    int64_t j = 0;
    for (; j < nr; ++j) dst[j] = B[p * rs + j * cs];
    for (; j < NR; ++j) dst[j] = T(0);
  }
}

// c(MR, NR) = alpha * a_panel @ b_panel + beta * c   (beta == 0: c is not read)
template <typename T, int MR, int NV>
inline void micro_kernel(int64_t kc, const T* __restrict a, const T* __restrict b, T* c, int64_t rs_c,
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
    a += MR;
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

template <typename T>
void gemm(const GemmArgs<T>& g) {
  using Bk = Blocking<T>;
  constexpr int MR = Bk::MR, NV = Bk::NV, NR = NV * Vec<T>::W;
  constexpr int64_t KC = Bk::KC, MC = Bk::MC, NC = Bk::NC;
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

  // packed_b: (ceil(NC / NR), KC, NR), shared by the team; lives in the calling thread.
  T* packed_b = scratch(workspace<T>().b, workspace<T>().b_cap, size_t(KC) * ((NC + NR - 1) / NR) * NR);
  const int threads = std::max(1, g.threads);

#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    Workspace<T>& mine = workspace<T>();
    T* packed_a = scratch(mine.a, mine.a_cap, size_t(KC) * ((MC + MR - 1) / MR) * MR);
    const int team = omp_get_num_threads();

    for (int64_t jc = 0; jc < N; jc += NC) {
      const int64_t nc = std::min(NC, N - jc);
      const int64_t n_panels = (nc + NR - 1) / NR;
      const int64_t m_blocks = (M + MC - 1) / MC;
      // Slice the NR panels when there are too few MC blocks to keep every thread busy.
      const int64_t slices = std::min<int64_t>(n_panels, (2 * team + m_blocks - 1) / m_blocks);
      const int64_t panels_per_slice = (n_panels + slices - 1) / slices;

      for (int64_t pc = 0; pc < K; pc += KC) {
        const int64_t kc = std::min(KC, K - pc);
        const T beta = pc == 0 ? g.beta : T(1);

#pragma omp for schedule(static)
        for (int64_t jp = 0; jp < n_panels; ++jp) {
          const int64_t j0 = jc + jp * NR;
          pack_b_panel<T, NR>(std::min<int64_t>(NR, N - j0), kc, g.B + pc * g.rs_b + j0 * g.cs_b, g.rs_b, g.cs_b,
                              packed_b + jp * kc * NR);
        }  // implicit barrier: packed_b is complete

#pragma omp for schedule(static)
        for (int64_t item = 0; item < m_blocks * slices; ++item) {
          const int64_t ic = (item / slices) * MC, slice = item % slices;
          const int64_t mc = std::min(MC, M - ic);
          pack_a_block<T, MR>(mc, kc, g.A + ic * g.rs_a + pc * g.cs_a, g.rs_a, g.cs_a, packed_a);
          const int64_t jp_end = std::min(n_panels, (slice + 1) * panels_per_slice);
          for (int64_t jp = slice * panels_per_slice; jp < jp_end; ++jp) {
            const int64_t j0 = jc + jp * NR, nr = std::min<int64_t>(NR, N - j0);
            const T* bp = packed_b + jp * kc * NR;
            for (int64_t ir = 0; ir < mc; ir += MR) {
              const int64_t mr = std::min<int64_t>(MR, mc - ir);
              const T* ap = packed_a + ir * kc;
              T* c = g.C + (ic + ir) * g.rs_c + j0;
              if (mr == MR && nr == NR) {
                micro_kernel<T, MR, NV>(kc, ap, bp, c, g.rs_c, g.alpha, beta);
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
        }  // implicit barrier: nobody repacks B while another thread still reads it
      }
    }
  }
}

}  // namespace

extern const GemmKernels gemm_kernels = {
    &gemm<float>, &gemm<double>, Blocking<float>::MR, Blocking<float>::NV * Vec<float>::W,
};

}  // namespace pydl::PYDL_ISA_NS
