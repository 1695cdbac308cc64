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

template <typename T>
const WinogradLoops<T>& winograd_loops() {
  if constexpr (sizeof(T) == sizeof(float)) return pick_winograd_kernels().f32;
  else return pick_winograd_kernels().f64;
}

template <typename T>
void gemm_on_panels(const GemmArgs<T>& g, const T* a_panels) {
  if constexpr (sizeof(T) == sizeof(float)) pick_gemm_kernels().f32_from(g, GemmSources<T>{{}, a_panels});
  else pick_gemm_kernels().f64_from(g, GemmSources<T>{{}, a_panels});
}

template <typename T>
void pack_panels(int64_t M, int64_t K, const T* A, T* panels, int threads) {
  if constexpr (sizeof(T) == sizeof(float)) pick_gemm_kernels().f32_pack_a_panels(M, K, A, K, 1, panels, threads);
  else pick_gemm_kernels().f64_pack_a_panels(M, K, A, K, 1, panels, threads);
}

template <typename T>
int64_t panels_size(int64_t rows, int64_t depth) {
  const int64_t mr = pick_gemm_kernels().mr;
  return (rows + mr - 1) / mr * mr * depth;
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

}  // namespace

template <typename T>
void conv2d_forward_winograd(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out,
                             int64_t budget_bytes) {
  const WinogradLoops<T>& L = winograd_loops<T>();
  const int64_t Kg = g.Kg(), Cg = g.Cg(), H = g.H, W = g.W, HW = g.HW();
  const int64_t TH = (g.OH + 1) / 2, TW = (g.OW + 1) / 2, tiles = TH * TW;
  // The padded planes: the patch of the last tile reaches row 2 TH + 1 (column 2 TW + 1),
  // counted from PH rows above the image.
  const int64_t Hp = 2 * TH + 2, Wp = 2 * TW + 2;
  // Images per chunk: V and M within the budget, the offsets within int32.
  const int64_t image_bytes = kXi * (Cg + Kg) * tiles * int64_t(sizeof(T));
  const int64_t limit = (int64_t(1) << 31) / std::max(g.K * g.OHW(), Hp * Wp) - 1;
  const int64_t nb = std::clamp<int64_t>(std::min(budget_bytes / std::max<int64_t>(1, image_bytes), limit), 1, g.N);
  const int64_t usize = panels_size<T>(Kg, Cg), KC = Kg * Cg;
  T* U = thread_scratch<T, 0>(size_t(kXi * KC));             // (16, Kg, Cg), one group at a time
  T* Upk = thread_scratch<T, 1>(size_t(g.G * kXi * usize));  // (G, 16) panels
  T* V = thread_scratch<T, 2>(size_t(kXi * Cg * nb * tiles));  // (16, Cg, P)
  T* M = thread_scratch<T, 3>(size_t(kXi * Kg * nb * tiles));  // (16, Kg, P)
  const TileLists lists = tile_lists(g, nb, TH, TW, Hp, Wp);
  const int tf = threads_for(KC * 9, int64_t(1) << 18);
  constexpr int64_t kFilterBlock = 1024;
  for (int64_t gi = 0; gi < g.G; ++gi) {
#pragma omp parallel for schedule(static) num_threads(tf) if (tf > 1)
    for (int64_t kc0 = 0; kc0 < KC; kc0 += kFilterBlock)
      L.filters(kc0, std::min(kFilterBlock, KC - kc0), KC, w + gi * KC * 9, U);
    for (int xi = 0; xi < kXi; ++xi) pack_panels<T>(Kg, Cg, U + xi * KC, Upk + (gi * kXi + xi) * usize, tf);
  }
  const int t = threads_for(g.N * g.K * Cg * tiles * kXi, int64_t(1) << 22);
  std::exception_ptr failure;  // an exception may not leave an OpenMP region: carry it out
#pragma omp parallel num_threads(t) if (t > 1)
  {
    T* planes = nullptr;  // (nb, Hp, Wp): zero where no image row or column lands, for the whole call
    try {
      planes = thread_scratch<T, 4>(size_t(nb * Hp * Wp));
      std::fill(planes, planes + nb * Hp * Wp, T(0));
    } catch (...) {
#pragma omp critical(pydl_conv_failure)
      if (!failure) failure = std::current_exception();
    }
    // The rows and columns of an image that land in the padded planes.
    const int64_t r0 = std::max<int64_t>(0, -g.PH), r1 = std::min<int64_t>(H, Hp - g.PH);
    const int64_t c0 = std::max<int64_t>(0, -g.PW), c1 = std::min<int64_t>(W, Wp - g.PW);
    for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
      const int64_t nn = std::min(nb, g.N - n0), P = nn * tiles;
      for (int64_t gi = 0; gi < g.G; ++gi) {
#pragma omp for schedule(static)
        for (int64_t c = 0; c < Cg; ++c) {
          if (!planes) continue;
          for (int64_t j = 0; j < nn; ++j) {
            const T* src = x + ((n0 + j) * g.C + gi * Cg + c) * HW;
            T* dst = planes + j * Hp * Wp + g.PH * Wp + g.PW;
            for (int64_t r = r0; r < r1 && c1 > c0; ++r) std::copy(src + r * W + c0, src + r * W + c1, dst + r * Wp + c0);
          }
          L.input(planes, lists.patch.data(), P, Wp, V + c * P, Cg * P);
        }
#pragma omp for schedule(static)
        for (int xi = 0; xi < kXi; ++xi) {
          try {
            gemm_on_panels(GemmArgs<T>{Kg, P, Cg, U, Cg, 1, V + xi * Cg * P, P, 1, M + xi * Kg * P, P, T(1), T(0), 1},
                           Upk + (gi * kXi + xi) * usize);
          } catch (...) {
#pragma omp critical(pydl_conv_failure)
            if (!failure) failure = std::current_exception();
          }
        }
#pragma omp for schedule(static)
        for (int64_t k = 0; k < Kg; ++k)
          L.output(M + k * P, Kg * P, lists.tile.data(), lists.flags.data(), P, g.OW, bias ? bias[gi * Kg + k] : T(0),
                   out + (n0 * g.K + gi * Kg + k) * g.OHW());
      }
    }
  }
  if (failure) std::rethrow_exception(failure);
}

template void conv2d_forward_winograd<float>(const ConvGeometry&, const float*, const float*, const float*, float*,
                                             int64_t);
template void conv2d_forward_winograd<double>(const ConvGeometry&, const double*, const double*, const double*,
                                              double*, int64_t);

}  // namespace pydl
