// gemm: C = alpha * A @ B + beta * C on strided operands.
//
// Dimension legend: A is (M, K), B is (K, N), C is (M, N). Operands are described by
// element strides, so transposed and sliced views (a.T, a[::2], negative strides) are
// packed straight from where they lie instead of being copied first.
#pragma once
#include <cstdint>

#include "pydl/isa.h"

namespace pydl {

template <typename T>
struct GemmArgs {
  int64_t M, N, K;
  const T* A; int64_t rs_a, cs_a;  // A(i, p) = A[i * rs_a + p * cs_a]
  const T* B; int64_t rs_b, cs_b;  // B(p, j) = B[p * rs_b + j * cs_b]
  T* C; int64_t rs_c;              // C(i, j) = C[i * rs_c + j]
  T alpha, beta;                   // beta == 0: C is written, never read (may hold NaN)
  int threads;                     // OpenMP threads for this call (1: run on the caller)
};

// The A operand of an implicit GEMM, written by the caller straight into the gemm's packed
// layout (a convolution packs its columns from the image: they are never materialised).
// pack(ctx, i0, mc, p0, kc, mr, packed): packed (ceil(mc / mr), kc, mr) <- A rows [i0, i0 + mc),
// depth [p0, p0 + kc), one mr-tall panel after another, column by column, rows past mc zero.
template <typename T>
struct GemmPackA {
  void (*pack)(const void* ctx, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int64_t mr, T* packed);
  const void* ctx;
};

// ... and the B operand of one (a convolution whose pixels are the product's columns packs
// them from the images): pack(ctx, j0, nc, p0, kc, nr, packed): packed (ceil(nc / nr), kc, nr)
// <- B columns [j0, j0 + nc), depth [p0, p0 + kc), one nr-wide panel after another, row by
// row, columns past nc zero.
template <typename T>
struct GemmPackB {
  void (*pack)(const void* ctx, int64_t j0, int64_t nc, int64_t p0, int64_t kc, int64_t nr, T* packed);
  const void* ctx;
};

// Where the operands of one product come from when not from GemmArgs' strided A and B
// (whose pointers and strides are then unused): A's blocks from a packer, or A packed whole
// beforehand -- a_panels, (ceil(M / MR), K, MR) with rows past M zero, as pack_a_panels
// writes it, read in place (a conv's weights, packed once for all its images) -- and B's
// panels from a packer.
template <typename T>
struct GemmSources {
  GemmPackA<T> pack_a{};        // pack_a.pack set: A from it
  const T* a_panels = nullptr;  // else, when set: A packed whole
  GemmPackB<T> pack_b{};        // pack_b.pack set: B from it
};

struct GemmKernels {
  void (*f32)(const GemmArgs<float>&);
  void (*f64)(const GemmArgs<double>&);
  int mr, nr;  // float32 micro-tile, for show_config
  // The same gemm with operands from GemmSources.
  void (*f32_from)(const GemmArgs<float>&, const GemmSources<float>&);
  void (*f64_from)(const GemmArgs<double>&, const GemmSources<double>&);
  // panels (ceil(M / MR), K, MR) <- A (M, K), A(i, p) = A[i * rs + p * cs]: GemmSources'
  // a_panels layout (MR: the gemm's micro-tile rows, mr above for both types). Uses up to
  // `threads` threads.
  void (*f32_pack_a_panels)(int64_t M, int64_t K, const float* A, int64_t rs, int64_t cs, float* panels,
                            int threads);
  void (*f64_pack_a_panels)(int64_t M, int64_t K, const double* A, int64_t rs, int64_t cs, double* panels,
                            int threads);
};

PYDL_DECLARE_ISA_TABLE(GemmKernels, gemm_kernels)

// The active ISA's entries by element type (for the kernels that call the gemm).
template <typename T>
void run_gemm(const GemmArgs<T>& g) {
  if constexpr (sizeof(T) == sizeof(float)) pick_gemm_kernels().f32(g);
  else pick_gemm_kernels().f64(g);
}
template <typename T>
void run_gemm(const GemmArgs<T>& g, const GemmSources<T>& s) {
  if constexpr (sizeof(T) == sizeof(float)) pick_gemm_kernels().f32_from(g, s);
  else pick_gemm_kernels().f64_from(g, s);
}
// panels <- A (M, K) packed whole for GemmSources::a_panels, a_panels_size<T>(M, K) elements.
template <typename T>
void pack_a_panels(int64_t M, int64_t K, const T* A, int64_t rs, int64_t cs, T* panels, int threads) {
  if constexpr (sizeof(T) == sizeof(float)) pick_gemm_kernels().f32_pack_a_panels(M, K, A, rs, cs, panels, threads);
  else pick_gemm_kernels().f64_pack_a_panels(M, K, A, rs, cs, panels, threads);
}
template <typename T>
int64_t a_panels_size(int64_t rows, int64_t depth) {
  const int64_t mr = pick_gemm_kernels().mr;
  return (rows + mr - 1) / mr * mr * depth;
}

// Batched driver: `batch` products whose operands advance by the given batch strides
// (0 broadcasts one matrix to every product). Picks the parallel split (inside each
// product, or across the batch when the products are small) and calls the ISA kernel.
template <typename T>
void gemm_batched(const GemmArgs<T>& first, int64_t batch, int64_t bs_a, int64_t bs_b, int64_t bs_c);

}  // namespace pydl
