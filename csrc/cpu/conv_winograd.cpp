// conv2d by Winograd's minimal filtering F(2x2, 3x3): 3x3 kernels, stride 1, no dilation.
//
//   out[n, k, oh, ow] = b[k] + sum_{c, kh, kw} w[k, c, kh, kw] x[n, g*Cg + c, oh - PH + kh, ow - PW + kw]
//
// Legend as conv.h (N, C, H, W input; K, OH, OW output; G groups, Cg = C / G, Kg = K / G).
// The output is cut into 2x2 tiles, TH = ceil(OH / 2) by TW = ceil(OW / 2) per image; tile
// (ty, tx) reads the 4x4 input patch d at rows 2 ty - PH .., columns 2 tx - PW .. (zero
// outside the image). With the lecture's transforms
//
//   B^T = [1  0 -1  0]     G = [ 1    0    0 ]     A^T = [1  1  1  0]
//         [0  1  1  0]         [1/2  1/2  1/2]           [0  1 -1 -1]
//         [0 -1  1  0]         [1/2 -1/2  1/2]
//         [0  1  0 -1]         [ 0    0    1 ]
//
// a tile's output is  Y = A^T [ sum_c (G w_kc G^T) . (B^T d_c B) ] A  (. elementwise): each
// of the 16 positions xi of the 4x4 transformed tile is one matrix product over the channels,
//
//   M_xi (Kg, P) = U_xi (Kg, Cg) @ V_xi (Cg, P),   U = G w G^T,  V = B^T d B,  P tiles,
//
// 16 * Kg * Cg * P multiply-adds where the direct convolution does 9 * 4 * Kg * Cg * P:
// 2.25x fewer, run by pydl's gemm. The transforms only add and halve (exactly, in binary), so
// the result is about as accurate as the direct sum (tests/kernels/test_conv.py holds it to
// the same tolerances against the float64 reference); F(4x4, 3x3) would save 4x but its
// transforms lose digits, and is not used.
//
// Algorithm: the filters are transformed once per call and packed for the gemm (A panels).
// The images go in chunks of nb (as many as keep V and M within the column budget, so that
// they stay in the caches between the steps); per chunk and group, three steps, each split
// across the threads: the input transform (per image and channel: the 4 rows of a row of
// tiles combined by B^T as whole rows, then by B across the columns, even and odd columns
// apart so that every step is a contiguous loop), the 16 products (one per thread at a
// time, each thread its own xi: no sums shared), the output transform with the bias,
// written straight into out.
//
// Workspace (calling thread, kept between calls): the transformed filters (G, 16, Kg, Cg)
// and their panels; V (16, Cg, P) and M (16, Kg, P) of one chunk; per thread two rows of
// TW + 1 values per tile row.
//
// Checked by tests/kernels/test_conv.py against the float64 reference, forced on and off
// (pydl._C._conv_tuning(winograd=...)) over paddings, odd sizes, groups and both dtypes.
#include <algorithm>
#include <cstdint>
#include <exception>
#include <vector>

#include "pydl/conv.h"
#include "pydl/gemm.h"
#include "pydl/parallel.h"
#include "pydl/scratch.h"

namespace pydl {
namespace {

constexpr int kXi = 16;  // positions of a transformed 4x4 tile
constexpr int64_t kFilterBlock = 1024;  // filters a transform task takes

template <typename T>
const WinogradLoops<T>& winograd_loops() {
  if constexpr (sizeof(T) == sizeof(float)) return pick_winograd_kernels().f32;
  else return pick_winograd_kernels().f64;
}

// The tiles of a chunk of nb images, in the order of the products' columns p = (image,
// tile row, tile column): where each patch starts in the chunk's padded planes (nb, Hp, Wp),
// where each output tile starts in out (images K * OH * OW apart), and which of its second
// column and row exist.
struct TileLists {
  std::vector<int32_t> patch, tile;
  std::vector<uint8_t> flags;
};
TileLists tile_lists(const ConvGeometry& g, int64_t nb, int64_t TH, int64_t TW, int64_t Hp, int64_t Wp) {
  TileLists t;
  const int64_t P = nb * TH * TW;
  t.patch.resize(size_t(P)), t.tile.resize(size_t(P)), t.flags.resize(size_t(P));
  int64_t p = 0;
  for (int64_t j = 0; j < nb; ++j)
    for (int64_t ty = 0; ty < TH; ++ty)
      for (int64_t tx = 0; tx < TW; ++tx, ++p) {
        t.patch[size_t(p)] = int32_t(j * Hp * Wp + 2 * ty * Wp + 2 * tx);
        t.tile[size_t(p)] = int32_t(j * g.K * g.OHW() + 2 * ty * g.OW + 2 * tx);
        t.flags[size_t(p)] = uint8_t((2 * tx + 1 < g.OW ? 1 : 0) | (2 * ty + 1 < g.OH ? 2 : 0));
      }
  return t;
}

// How a call cuts its work: the tiles (TH x TW per image), the padded planes their patches
// are read from (the patch of the last tile reaches row 2 TH + 1 and column 2 TW + 1, counted
// from PH rows above the image), and nb images per chunk: the chunk's transformed tiles (V
// and M, or dM) within the budget, its offsets within int32.
struct Plan {
  int64_t TH, TW, tiles, Hp, Wp, nb;
  TileLists lists;
  template <typename T>
  Plan(const ConvGeometry& g, int64_t budget_bytes, T)
      : TH((g.OH + 1) / 2), TW((g.OW + 1) / 2), tiles(TH * TW), Hp(2 * TH + 2), Wp(2 * TW + 2) {
    const int64_t image_bytes = kXi * (g.Cg() + g.Kg()) * tiles * int64_t(sizeof(T));
    const int64_t limit = (int64_t(1) << 31) / std::max(g.K * g.OHW(), Hp * Wp) - 1;
    nb = std::clamp<int64_t>(std::min(budget_bytes / std::max<int64_t>(1, image_bytes), limit), 1, g.N);
    lists = tile_lists(g, nb, TH, TW, Hp, Wp);
  }
};

// The chunk's padded planes (nb, Hp, Wp), one per thread, zero where no image row or column
// lands (the same places for every chunk and channel of a call: zeroed once).
template <typename T>
T* zeroed_planes(const Plan& p) {
  T* planes = thread_scratch<T, 4>(size_t(p.nb * p.Hp * p.Wp));
  std::fill(planes, planes + p.nb * p.Hp * p.Wp, T(0));
  return planes;
}

// V[xi][c][.] (rows P long) <- the tiles of nn images' channel plane c (x: the first
// image's plane, images C * H * W apart), through the padded planes.
template <typename T>
void input_tiles(const ConvGeometry& g, const Plan& p, const WinogradLoops<T>& L, const T* x, int64_t nn, T* planes,
                 T* V, int64_t c, int64_t P) {
  const int64_t H = g.H, W = g.W, Wp = p.Wp;
  const int64_t r0 = std::max<int64_t>(0, -g.PH), r1 = std::min<int64_t>(H, p.Hp - g.PH);
  const int64_t c0 = std::max<int64_t>(0, -g.PW), c1 = std::min<int64_t>(W, Wp - g.PW);
  for (int64_t j = 0; j < nn; ++j) {
    const T* src = x + j * g.C * g.HW();
    T* dst = planes + j * p.Hp * Wp + g.PH * Wp + g.PW;
    for (int64_t r = r0; r < r1 && c1 > c0; ++r) std::copy(src + r * W + c0, src + r * W + c1, dst + r * Wp + c0);
  }
  L.input(planes, p.lists.patch.data(), P, Wp, V + c * P, g.Cg() * P);
}

template <typename T>
void keep_first(std::exception_ptr& failure) {
#pragma omp critical(pydl_conv_failure)
  if (!failure) failure = std::current_exception();
}

// Inside a parallel region, every thread: for each chunk of images and group, the chunk's
// input tiles into V (split across the threads), then step(n0, nn, P, gi) -- the call's
// own work-shared loops on them.
template <typename T, typename Step>
void over_chunks(const ConvGeometry& g, const Plan& plan, const WinogradLoops<T>& L, const T* x, T* V,
                 std::exception_ptr& failure, Step step) {
  T* planes = nullptr;
  try {
    planes = zeroed_planes<T>(plan);
  } catch (...) {
    keep_first<T>(failure);
  }
  const int64_t Cg = g.Cg();
  for (int64_t n0 = 0; n0 < g.N; n0 += plan.nb) {
    const int64_t nn = std::min(plan.nb, g.N - n0), P = nn * plan.tiles;
    for (int64_t gi = 0; gi < g.G; ++gi) {
#pragma omp for schedule(static)
      for (int64_t c = 0; c < Cg; ++c)
        if (planes) input_tiles(g, plan, L, x + (n0 * g.C + gi * Cg + c) * g.HW(), nn, planes, V, c, P);
      step(n0, nn, P, gi);
    }
  }
}

}  // namespace

template <typename T>
void conv2d_forward_winograd(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out,
                             int64_t budget_bytes) {
  const WinogradLoops<T>& L = winograd_loops<T>();
  const int64_t Kg = g.Kg(), Cg = g.Cg();
  const Plan plan(g, budget_bytes, T());
  const int64_t nb = plan.nb, tiles = plan.tiles;
  const int64_t usize = a_panels_size<T>(Kg, Cg), KC = Kg * Cg;
  T* U = thread_scratch<T, 0>(size_t(kXi * KC));             // (16, Kg, Cg), one group at a time
  T* Upk = thread_scratch<T, 1>(size_t(g.G * kXi * usize));  // (G, 16) panels
  T* V = thread_scratch<T, 2>(size_t(kXi * Cg * nb * tiles));  // (16, Cg, P)
  T* M = thread_scratch<T, 3>(size_t(kXi * Kg * nb * tiles));  // (16, Kg, P)
  const int tf = threads_for(KC * 9, int64_t(1) << 18);
  for (int64_t gi = 0; gi < g.G; ++gi) {
#pragma omp parallel for schedule(static) num_threads(tf) if (tf > 1)
    for (int64_t kc0 = 0; kc0 < KC; kc0 += kFilterBlock)
      L.filters(kc0, std::min(kFilterBlock, KC - kc0), KC, w + gi * KC * 9, U);
    for (int xi = 0; xi < kXi; ++xi) pack_a_panels<T>(Kg, Cg, U + xi * KC, Cg, 1, Upk + (gi * kXi + xi) * usize, tf);
  }
  const int t = threads_for(g.N * g.K * Cg * tiles * kXi, int64_t(1) << 22);
  std::exception_ptr failure;  // an exception may not leave an OpenMP region: carry it out
#pragma omp parallel num_threads(t) if (t > 1)
  over_chunks(g, plan, L, x, V, failure, [&](int64_t n0, int64_t, int64_t P, int64_t gi) {
#pragma omp for schedule(static)
    for (int xi = 0; xi < kXi; ++xi) {
      try {
        run_gemm(GemmArgs<T>{Kg, P, Cg, U, Cg, 1, V + xi * Cg * P, P, 1, M + xi * Kg * P, P, T(1), T(0), 1},
                 GemmSources<T>{{}, Upk + (gi * kXi + xi) * usize});
      } catch (...) {
        keep_first<T>(failure);
      }
    }
#pragma omp for schedule(static)
    for (int64_t k = 0; k < Kg; ++k)
      L.output(M + k * P, Kg * P, plan.lists.tile.data(), plan.lists.flags.data(), P, g.OW,
               bias ? bias[gi * Kg + k] : T(0), out + (n0 * g.K + gi * Kg + k) * g.OHW());
  });
  if (failure) std::rethrow_exception(failure);
}

// The weight gradient: dU_xi (Kg, Cg) = sum over the chunks of dM_xi (Kg, P) @ V_xi^T, dM the
// grad_out tiles transformed (A dY A^T), then grad_w = G^T dU G. Each position's sum is one
// thread's, over the chunks in order: the same result for any thread count.
template <typename T>
void conv2d_weight_grad_winograd(const ConvGeometry& g, const T* grad_out, const T* x, T* grad_w,
                                 int64_t budget_bytes) {
  const WinogradLoops<T>& L = winograd_loops<T>();
  const int64_t Kg = g.Kg(), Cg = g.Cg(), KC = Kg * Cg;
  const Plan plan(g, budget_bytes, T());
  const int64_t nb = plan.nb, tiles = plan.tiles;
  T* dU = thread_scratch<T, 0>(size_t(g.G * kXi * KC));        // (G, 16, Kg, Cg)
  T* V = thread_scratch<T, 2>(size_t(kXi * Cg * nb * tiles));   // (16, Cg, P)
  T* dM = thread_scratch<T, 3>(size_t(kXi * Kg * nb * tiles));  // (16, Kg, P)
  const int t = threads_for(g.N * g.K * Cg * tiles * kXi, int64_t(1) << 22);
  std::exception_ptr failure;
#pragma omp parallel num_threads(t) if (t > 1)
  over_chunks(g, plan, L, x, V, failure, [&](int64_t n0, int64_t, int64_t P, int64_t gi) {
#pragma omp for schedule(static)
    for (int64_t k = 0; k < Kg; ++k)
      L.grad_output(grad_out + (n0 * g.K + gi * Kg + k) * g.OHW(), plan.lists.tile.data(), plan.lists.flags.data(),
                    P, g.OW, dM + k * P, Kg * P);
#pragma omp for schedule(static)
    for (int xi = 0; xi < kXi; ++xi) {
      try {
        run_gemm(GemmArgs<T>{Kg, Cg, P, dM + xi * Kg * P, P, 1, V + xi * Cg * P, 1, P, dU + (gi * kXi + xi) * KC,
                             Cg, T(1), n0 == 0 ? T(0) : T(1), 1});
      } catch (...) {
        keep_first<T>(failure);
      }
    }
  });
  if (failure) std::rethrow_exception(failure);
  const int tf = threads_for(KC * 9, int64_t(1) << 18);
  for (int64_t gi = 0; gi < g.G; ++gi) {
#pragma omp parallel for schedule(static) num_threads(tf) if (tf > 1)
    for (int64_t kc0 = 0; kc0 < KC; kc0 += kFilterBlock)
      L.grad_filters(kc0, std::min(kFilterBlock, KC - kc0), KC, dU + gi * kXi * KC, grad_w + gi * KC * 9);
  }
}

#define PYDL_WINOGRAD_INSTANTIATE(T)                                                                          \
  template void conv2d_forward_winograd<T>(const ConvGeometry&, const T*, const T*, const T*, T*, int64_t); \
  template void conv2d_weight_grad_winograd<T>(const ConvGeometry&, const T*, const T*, T*, int64_t);
PYDL_WINOGRAD_INSTANTIATE(float)
PYDL_WINOGRAD_INSTANTIATE(double)

}  // namespace pydl
