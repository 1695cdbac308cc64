// conv2d and conv_transpose2d on the CPU: im2col + pydl's gemm, forward and backward.
// (Argument checks and bindings: conv_bind.cpp; the loops: conv_isa.cpp, conv_depthwise_isa.cpp.)
//
//   out[n, k, oh, ow] = b[k] + sum_{c, kh, kw} w[k, c, kh, kw] x[n, g*Cg + c, oh*SH - PH + kh*DH, ow*SW - PW + kw*DW]
//
// (k in group g; zero outside the image). Legend (see conv.h): N, C, H, W input; K, OH,
// OW output; KH x KW kernel; G groups, Cg = C / G, Kg = K / G, CKK = Cg * KH * KW; a tile
// is a band of output rows [oh0, oh1) of one image, tileN = (oh1 - oh0) * OW pixels.
//
// Algorithm, per image, per tile, per group (the tile's columns are built once and used
// by every output channel of the group):
//   forward      cols (CKK, tileN) = im2col(x)         out_tile (Kg, tileN) = W_g (Kg, CKK) @ cols (+ b)
//   weight grad  gwT_g (CKK, Kg) += cols @ grad_out_tile^T       (a thread's own sum, beta = 1)
//   input grad   cols = W_g^T @ grad_out_tile                    grad_x += col2im(cols)
//   bias grad    per (image, channel) sums of the grad_out tiles the gemms read anyway
// With float32 on AVX-512, the forward of any layer whose output rows are 16 pixels or
// wider runs as an unpacked implicit GEMM (forward_unpacked): register tiles of 8 output
// channels x 48 output pixels read the columns straight from the padded, phase-split image
// (conv.h's WidePlane) and are stored straight into out -- no im2col, no packing, no
// transpose; it runs at 93-96% of the FMA peak (AlexNet-1 N16 2 threads 5.7 -> 4.56 ms,
// 493 GFLOP/s; CIFAR and LeNet 1.8-1.9x faster than the paths below). Elsewhere, how each
// product is handed to the gemm decides how near its peak it runs (measured on
// the canonical layers, see the comments at each choice): the forward product of deep
// layers on large images (ResNet's 56x56, AlexNet's first layer) runs pixel-major as an
// implicit GEMM: cols^T @ W_g^T with cols^T packed by the gemm straight from the padded,
// phase-split image (conv.h's WidePlane: each tap a contiguous run of it), never
// materialised, then a SIMD transpose (1 thread, CPU time: ResNet 162 -> 194 GFLOP/s,
// AlexNet-1 146 -> 172 against the materialised columns); shallow
// ones (CKK 25-27) pad W_g with zero rows so that no register tile is ragged; the weight
// gradient of thin layers is a dot product along the pixels (conv_isa.cpp) instead of a
// gemm whose two operands would both be packed from transposed views. A 1x1 stride-1
// unpadded conv skips im2col/col2im: the image itself is the column matrix (Cg, H * W).
// The other deep layers (CKK >= 128: small images, strided layers, rows under 16 pixels)
// run channel-major implicit GEMMs (forward_implicit_pixels): the gemm packs its pixel
// panels straight from the images' WidePlanes (GemmPackB), several small images side by
// side (images_per_tile) so that the products are not thin, the weights packed once per
// call; their weight gradient likewise (pack_pixels_by_tap), and for weights of 4 MiB and
// more as one product per chunk of images that the threads split (weight_grad_chunks)
// instead of one sum per thread. The input gradient of a stride-1 conv with rows of 16 or
// more and 8+ input channels per group is the forward conv of the flipped kernel, through
// the unpacked kernel (input_grad_by_forward). 1x1 kernels gather their columns straight
// from the image (conv_isa.cpp's pointwise_columns).
// 3x3 stride-1 undilated convs with 128+ channels per group on both sides (ResNet's deep
// layers) run Winograd's F(2x2, 3x3) instead (conv_winograd.cpp): forward, input gradient
// (the flipped forward) and weight gradient as 16 products over the channels with 2.25x
// fewer multiply-adds (2 threads, CIFAR ResNet-18 B32: 1.2-1.7x per layer and pass).
// Depthwise convolutions (Cg == 1) with few filters per channel run direct loops
// (conv_depthwise_isa.cpp): their gemm would be Kg x tileN x KH*KW, far too thin.
// The transposed convolution is the same machinery read backwards: its forward is
// conv2d's input gradient (col2im), its input gradient is conv2d's forward, its weight
// gradient conv2d's weight gradient with input and output swapped.
//
// Threads: the (image, tile) tasks are split across threads, each with its own column
// buffer and gemm on one thread, when there are enough of them to balance; otherwise
// they run in turn and each gemm uses the threads. The backward pass is parallel over
// images only (the col2im of neighbouring tiles overlaps). Bias and depthwise weight
// gradients are summed per channel in a fixed order (the same for any thread count);
// the gemm weight gradient sums each thread's share in thread order.
//
// Workspace, per thread, thread-local and kept between calls (never the whole batch):
// implicit GEMM: the image's WidePlane (the image padded: Cg x Hq x Wq elements, Hq, Wq
// the output size plus the kernel's reach) and, packed, its (pixels, Kg) product; otherwise one
// column buffer of CKK x tileN elements, tileN as many whole output rows as fit
// kDefaultTileKB = 8 MiB (at least one row; a whole 64x56x56 ResNet image is 7 MiB: larger
// tiles measured faster up to there, 2 MiB -> 8 MiB +6%), none for 1x1 convs; the tile
// computed aside when it is transposed or padded (Kg x tileN); for strided convs the
// column phases of the input rows a tile reads (conv_scratch_size); for depthwise convs
// depthwise_scratch_size; with several images per tile, cols spans them (CKK x nb*OHW,
// within the same budget) and the tile's (Kg, nb*OHW) products.
// Per call: the weight gradient's (G, CKK, Kg) sum per thread, an (N, K) table of bias sums,
// and transposed / padded copies of the weights.
//
// Checked by tests/kernels/test_conv.py against the float64 reference
// (pydl/kernels/reference/conv.py), whose backward is checked by numeric gradients; every
// algorithm above is forced in turn there (pydl._C._conv_tuning).
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <tuple>
#include <vector>

#include "pydl/conv.h"
#include "pydl/gemm.h"
#include "pydl/parallel.h"
#include "pydl/scratch.h"

namespace pydl {
namespace {

// Multiply-adds worth a thread: the gemm's own grain (see gemm.cpp).
constexpr int64_t kGrain = int64_t(1) << 23;
// Target size of one thread's column buffer (see Workspace above).
constexpr int64_t kDefaultTileKB = 8192;
std::atomic<int64_t> g_cols_bytes{kDefaultTileKB * 1024};
int64_t cols_bytes() { return g_cols_bytes.load(std::memory_order_relaxed); }
std::atomic<int> g_force_dot{-1}, g_force_direct{-1}, g_force_transposed{-1}, g_force_padded{-1},
    g_force_implicit{-1}, g_force_unpacked{-1}, g_force_flipped{-1}, g_force_winograd{-1};

template <typename T>
void run_gemm(const GemmArgs<T>& g, const GemmPackA<T>& a) {
  run_gemm(g, GemmSources<T>{a});
}
template <typename T>
void run_gemm(const GemmArgs<T>& g, const GemmPackB<T>& b) {
  run_gemm(g, GemmSources<T>{{}, nullptr, b});
}
// Output rows per tile: as many as fit the column-buffer budget, at least one.
template <typename T>
int64_t tile_rows(const ConvGeometry& g) {
  const int64_t row_bytes = std::max<int64_t>(1, g.CKK() * g.OW * int64_t(sizeof(T)));
  return std::clamp<int64_t>(cols_bytes() / row_bytes, 1, std::max<int64_t>(1, g.OH));
}

// How `tasks` tasks of `macs` multiply-adds in all are split: `outer` threads over the
// tasks (each gemm on one thread), or the tasks in turn with `inner` threads per gemm.
struct Split {
  int outer, inner;
};
Split split(int64_t tasks, int64_t macs) {
  const int t = threads_for(macs, kGrain);
  if (t <= 1) return {1, 1};
  // Whole rounds of tasks, or enough of them that the last partial round costs little.
  if (tasks >= t && (tasks % t == 0 || tasks >= 4 * t)) return {t, 1};
  return {1, threads_for(macs / std::max<int64_t>(1, tasks), kGrain)};
}

// ---------------------------------------------------------------------------------------
// Forward
// ---------------------------------------------------------------------------------------

template <typename T>
void forward_depthwise(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out) {
  const ConvLoops<T>& L = conv_loops<T>();
  const int64_t planes = g.N * g.C, Kg = g.Kg(), KK = g.KH * g.KW;  // one input plane, its Kg outputs
  const int t = threads_for(planes * Kg * g.OHW() * KK, kGrain / 4);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t c = p % g.C;
    T* scratch = thread_scratch<T, 1>(size_t(depthwise_scratch_size(g)));
    L.depthwise_forward(g, x + p * g.HW(), w + c * Kg * KK, bias ? bias + c * Kg : nullptr, out + p * Kg * g.OHW(),
                        scratch);
  }
}

// The gemm's register tile (MR rows x NR columns of C): a product whose M or N is not a
// multiple wastes the rest of its last tile.
template <typename T>
void micro_tile(int64_t& mr, int64_t& nr) {
  const GemmKernels& k = pick_gemm_kernels();
  mr = k.mr;
  nr = sizeof(T) == sizeof(float) ? k.nr : k.nr / 2;  // same vectors, half the lanes
}

inline int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }
constexpr int64_t kTransposedMinDepth = 128;
// ... and only on large enough images: per call it transposes W and every output tile,
// which the implicit GEMM pays back (1 thread, CPU time, batch 32, against the materialised
// channel-major product) from 512 output pixels on at stride 1 (32x32 64ch 159 -> 184
// GFLOP/s, 28x28 128ch 197 -> 203, 16x16 128ch even), from 2048 on when strided
// (AlexNet-1, 3025 pixels: 146 -> 172; 28x28 128ch stride 2: 165 -> 144, 16x16: 149 -> 130).
constexpr int64_t kTransposedMinPixels = 512, kTransposedMinPixelsStrided = 2048;

// Orientation: out_tile (Kg, tileN) = W_g @ cols puts the Kg channels on the gemm's rows,
// out^T (OHW, Kg) = cols^T @ W_g^T on its columns, then transposes the tile back (adding
// the bias on the way). The second wastes less of the last register tile when Kg is a
// multiple of NR but not of MR (64 channels: 12-row tiles waste 11%), and its A operand,
// cols^T, is packed by the gemm straight from the image (forward_implicit), which pays for
// the transpose when the product is deep enough (measured: +3-4% at CKK 363 and 576 with
// materialised columns, -12% at CIFAR's 27).
template <typename T>
bool forward_transposed(const ConvGeometry& g) {
  int64_t mr, nr;
  micro_tile<T>(mr, nr);
  const int force_t = g_force_transposed.load();
  if (force_t >= 0) return force_t == 1;
  const int64_t Kg = g.Kg();
  const bool strided = g.SH > 1 || g.SW > 1;
  return round_up(Kg, nr) < round_up(Kg, mr) && g.CKK() >= kTransposedMinDepth &&
         g.OHW() >= (strided ? kTransposedMinPixelsStrided : kTransposedMinPixels);
}

// Weights packed whole for the gemm (GemmSources::a_panels), once per call instead of once
// per product, where there are enough products: a (rows, depth) matrix takes (ceil(rows /
// mr), depth, mr) elements. (Packing W_g for every image was 3-6% of CIFAR ResNet-18's deep
// layers; packed once, 1 thread: 16x16x128 forward 11.3 -> 11.2 ms, input gradient 11.7 ->
// 11.5; with 2 products, 4x4x512, 11.3 -> 12.0: the extra pass over 9 MiB costs more.)
constexpr int64_t kPackGrain = int64_t(1) << 20;  // elements a packing thread gets
constexpr int64_t kPrepackMinTasks = 4;

// The channel-major forward of deep layers (the rest of forward_transposed's) runs as an
// implicit GEMM (forward_implicit_pixels) instead of over materialised columns.
template <typename T>
bool forward_implicit_channels(const ConvGeometry& g) {
  const int force = g_force_implicit.load();
  if (force >= 0) return force == 1;
  // (1x1 kernels read one pixel per tap: building the stride phases of their planes cost
  // more than it saved -- ResNet-18's strided 1x1 shortcuts 0.55 -> 0.67 ms, measured)
  // (the pixel panels packed element by element -- AVX2, float64 -- lose to im2col: AVX2,
  // 1 thread, LeNet's second conv weight gradient 7.1 -> 8.1 ms)
  return conv_loops<T>().pixels_by_vectors && g.KH * g.KW > 1 && g.CKK() >= kTransposedMinDepth;
}

// W_g^T per group: (G, CKK, Kg)
template <typename T>
std::vector<T> transposed_weights(const ConvGeometry& g, const T* w) {
  const int64_t Kg = g.Kg(), CKK = g.CKK();
  std::vector<T> wT(size_t(g.G * CKK * Kg));
  for (int64_t gi = 0; gi < g.G; ++gi)
    for (int64_t k = 0; k < Kg; ++k)
      for (int64_t r = 0; r < CKK; ++r) wT[(gi * CKK + r) * Kg + k] = w[(gi * Kg + k) * CKK + r];
  return wT;
}

// The implicit GEMM unpacked, one image per task (conv_isa.cpp's implicit_forward): out
// (Kg, OH, OW) = W_g @ cols + bias, the columns read straight from the image's WidePlane
// by the register tiles, which are stored straight into out. Threads take whole images, or
// with too few images (split) share each image's pixel blocks. Chosen wherever the ISA has
// the kernel (float32 on AVX-512) and the output rows are wide enough: it beat every other
// path on every layer measured. 1 thread, CPU time, ms, against the path chosen before:
// AlexNet-1 N8 5.63 -> 4.61, ResNet 64x56x56 N8 9.01 -> 7.43, ResNet-18 16x16x128 N32
// 11.26 -> 10.05, 32x32 64->128 stride 2 N32 6.10 -> 5.48, CIFAR 3x32x32 k32 N64 0.96 ->
// 0.56, LeNet conv1 N32 0.28 -> 0.14, 3x3 64x56x56 -> 128 stride 2 N8 4.52 -> 3.98, 1x1
// the same 0.66 -> 0.60, 96x27x27 k256 5x5 and 256x16x16 k256 even; 2 threads, N1: ResNet's
// 64x56x56 0.80 -> 0.58, AlexNet-1 0.52 -> 0.36, 128x28x28 k128 1.20 -> 0.64.
// Workspace per thread: the WidePlane (plus kImplicitPixels of slack read by the last tile)
// and CKK taps; per call the weights in panels of kImplicitChannels rows.
template <typename T>
bool unpacked_fits(const ConvGeometry& g) {
  return conv_loops<T>().implicit_forward && g.OW >= kImplicitMinRow && g_force_unpacked.load() != 0;
}

template <typename T>
void forward_unpacked(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out) {
  const ConvLoops<T>& L = conv_loops<T>();
  const Split s = split(g.N, g.N * g.K * g.CKK() * g.OHW());
  const int64_t Kg = g.Kg(), Cg = g.Cg(), CKK = g.CKK(), OHW = g.OHW();
  const int64_t panels = (Kg + kImplicitChannels - 1) / kImplicitChannels;
  const int64_t plane_size = WidePlane(g).size(g);
  std::vector<T> w_panels(size_t(g.G * panels * CKK * kImplicitChannels), T(0));  // (G, panels, CKK, 8)
  for (int64_t gi = 0; gi < g.G; ++gi)
    for (int64_t k = 0; k < Kg; ++k)
      for (int64_t r = 0; r < CKK; ++r)
        w_panels[size_t(((gi * panels + k / kImplicitChannels) * CKK + r) * kImplicitChannels + k % kImplicitChannels)] =
            w[(gi * Kg + k) * CKK + r];
  const auto image_group = [&](int64_t n, int64_t gi, T* plane, int64_t* taps, int64_t j0, int64_t j1) {
    L.implicit_forward(g, plane, taps, w_panels.data() + gi * panels * CKK * kImplicitChannels,
                       bias ? bias + gi * Kg : nullptr, out + (n * g.K + gi * Kg) * OHW, j0, j1);
  };
  if (s.outer == 1 && s.inner > 1) {  // too few images: the threads split each image's pixel blocks
    T* plane = thread_scratch<T, 1>(size_t(plane_size + kImplicitPixels));
    std::fill(plane + plane_size, plane + plane_size + kImplicitPixels, T(0));  // read by the last tile, dropped
    int64_t* taps = thread_scratch<int64_t, 0>(size_t(CKK));
    const int64_t blocks = (OHW + kImplicitPixels - 1) / kImplicitPixels;
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t gi = 0; gi < g.G; ++gi) {
        L.implicit_columns(g, x + (n * g.C + gi * Cg) * g.HW(), plane, taps);
#pragma omp parallel for schedule(static) num_threads(s.inner)
        for (int t = 0; t < s.inner; ++t)
          image_group(n, gi, plane, taps, blocks * t / s.inner * kImplicitPixels,
                      blocks * (t + 1) / s.inner * kImplicitPixels);
      }
    return;
  }
  std::exception_ptr failure;  // an exception may not leave an OpenMP region: carry it out
  // Images handed out one at a time: a thread slowed by another process takes fewer (the
  // others would wait for it at the end of a static split).
#pragma omp parallel for schedule(dynamic, 1) num_threads(s.outer) if (s.outer > 1)
  for (int64_t n = 0; n < g.N; ++n) {
    try {
      T* plane = thread_scratch<T, 1>(size_t(plane_size + kImplicitPixels));
      std::fill(plane + plane_size, plane + plane_size + kImplicitPixels, T(0));  // read by the last tile, dropped
      int64_t* taps = thread_scratch<int64_t, 0>(size_t(CKK));
      for (int64_t gi = 0; gi < g.G; ++gi) {
        L.implicit_columns(g, x + (n * g.C + gi * Cg) * g.HW(), plane, taps);
        image_group(n, gi, plane, taps, 0, OHW);
      }
    } catch (...) {
#pragma omp critical(pydl_conv_failure)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

// Implicit GEMM packed (where forward_unpacked does not apply), one image per task: out^T (pixels, Kg) = cols^T @ W_g^T with cols^T packed by
// the gemm from the padded, phase-split image (ImplicitColumns), then transposed into place
// row by row with the bias (dropping the columns past each output row).
// Workspace per thread: the image's WidePlane, the (pixels, Kg) product, CKK taps.
constexpr int64_t kSlackRows = 16;  // transpose_bias reads whole blocks of 16 rows
template <typename T>
void forward_implicit(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out) {
  const ConvLoops<T>& L = conv_loops<T>();
  const int64_t Kg = g.Kg(), Cg = g.Cg(), CKK = g.CKK(), OW = g.OW, OHW = g.OHW();
  const WidePlane wp(g);
  const int64_t M = wp.rows(g);
  const std::vector<T> wT = transposed_weights(g, w);
  const Split s = split(g.N, g.N * g.K * CKK * OHW);
  std::exception_ptr failure;  // an exception may not leave an OpenMP region: carry it out
#pragma omp parallel for schedule(static) num_threads(s.outer) if (s.outer > 1)
  for (int64_t n = 0; n < g.N; ++n) {
    try {
      T* plane = thread_scratch<T, 1>(size_t(wp.size(g)));
      T* aside = thread_scratch<T, 2>(size_t((M + kSlackRows) * Kg));  // (M, Kg), then rows only read
      int64_t* taps = thread_scratch<int64_t, 0>(size_t(CKK));
      for (int64_t gi = 0; gi < g.G; ++gi) {
        L.implicit_columns(g, x + (n * g.C + gi * Cg) * g.HW(), plane, taps);
        const ImplicitColumns<T> cols{plane, taps};
        run_gemm(GemmArgs<T>{M, Kg, CKK, nullptr, 0, 0, wT.data() + gi * CKK * Kg, Kg, 1, aside, Kg, T(1), T(0),
                             s.inner},
                 GemmPackA<T>{L.pack_columns, &cols});
        T* o = out + (n * g.K + gi * Kg) * OHW;  // (Kg, OH, OW)
        for (int64_t oh = 0; oh < g.OH; ++oh)
          L.transpose_bias(aside + oh * wp.Wq * Kg, OW, M + kSlackRows - oh * wp.Wq, Kg, Kg,
                           bias ? bias + gi * Kg : nullptr, o + oh * OW, OHW);
      }
    } catch (...) {
#pragma omp critical(pydl_conv_failure)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

template <typename T>
void forward_gemm(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out) {
  const ConvLoops<T>& L = conv_loops<T>();
  const int64_t Kg = g.Kg(), Cg = g.Cg(), CKK = g.CKK(), OW = g.OW, OHW = g.OHW();
  const bool pointwise = g.pointwise();
  const int64_t rows = tile_rows<T>(g), tiles = (g.OH + rows - 1) / rows;
  int64_t mr, nr;
  micro_tile<T>(mr, nr);
  // Channel-major with Kg not a multiple of MR: the last register tile of every column panel
  // is ragged, computed aside and copied element by element by the gemm, which costs as much
  // as the tile itself in a shallow product (CKK 25-27). W is then padded with zero rows to
  // Kp, the tile computed into a buffer and copied out with the bias (measured +9% at
  // LeNet, +14% at CIFAR; nothing measurable at CKK >= 128).
  const int force_p = g_force_padded.load();
  const int64_t Kp = round_up(Kg, mr);
  const bool padded = Kp != Kg && (force_p >= 0 ? force_p == 1 : CKK < kTransposedMinDepth);
  std::vector<T> wP(padded ? size_t(g.G * Kp * CKK) : 0, T(0));  // (G, Kp, CKK)
  for (int64_t gi = 0; padded && gi < g.G; ++gi)
    std::copy(w + gi * Kg * CKK, w + (gi + 1) * Kg * CKK, wP.begin() + gi * Kp * CKK);
  const Split s = split(g.N * tiles, g.N * g.K * CKK * OHW);
#pragma omp parallel for schedule(static) num_threads(s.outer) if (s.outer > 1)
  for (int64_t task = 0; task < g.N * tiles; ++task) {
    const int64_t n = task / tiles, oh0 = (task % tiles) * rows, oh1 = std::min(g.OH, oh0 + rows);
    const int64_t tileN = (oh1 - oh0) * OW;
    T* cols = pointwise ? nullptr : thread_scratch<T, 0>(size_t(CKK * rows * OW));  // (CKK, tileN)
    T* scratch = thread_scratch<T, 1>(size_t(conv_scratch_size(g, rows)));
    T* aside = padded ? thread_scratch<T, 2>(size_t(rows * OW * Kp)) : nullptr;  // (Kp, tileN)
    for (int64_t gi = 0; gi < g.G; ++gi) {
      const T* xg = x + (n * g.C + gi * Cg) * g.HW();  // (Cg, H, W)
      T* o = out + (n * g.K + gi * Kg) * OHW + oh0 * OW;  // (Kg, tileN), row stride OHW
      const T* B = xg + oh0 * OW;  // the columns (CKK, tileN), row stride ld
      int64_t ld = g.HW();
      if (!pointwise) {
        L.im2col(g, xg, oh0, oh1, cols, tileN, scratch);
        B = cols, ld = tileN;
      }
      const T* bg = bias ? bias + gi * Kg : nullptr;
      if (padded) {
        run_gemm(GemmArgs<T>{Kp, tileN, CKK, wP.data() + gi * Kp * CKK, CKK, 1, B, ld, 1, aside, tileN, T(1), T(0),
                             s.inner});
        L.copy_bias(aside, Kg, tileN, tileN, bg, o, OHW);
      } else {
        if (bg)
          for (int64_t k = 0; k < Kg; ++k) std::fill(o + k * OHW, o + k * OHW + tileN, bg[k]);
        run_gemm(GemmArgs<T>{Kg, tileN, CKK, w + gi * Kg * CKK, CKK, 1, B, ld, 1, o, OHW, T(1), bg ? T(1) : T(0),
                             s.inner});
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Backward
// ---------------------------------------------------------------------------------------

// out[c] = sum over n and the plane of x (N, C, plane): per channel, images in order.
template <typename T>
void channel_sums(const T* x, int64_t N, int64_t C, int64_t plane, T* out) {
  const ConvLoops<T>& L = conv_loops<T>();
  const int t = threads_for(N * C * plane, int64_t(1) << 20);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
  for (int64_t c = 0; c < C; ++c) {
    double s = 0;
    for (int64_t n = 0; n < N; ++n) s += L.sum(x + (n * C + c) * plane, plane);
    out[c] = static_cast<T>(s);
  }
}

// One input channel per task, images in order: its input gradient plane of every image,
// and the weight gradient of its Kg filters summed over the images (in double).
template <typename T>
void backward_depthwise(const ConvGeometry& g, const T* grad_out, const T* x, const T* w, T* grad_x, T* grad_w) {
  const ConvLoops<T>& L = conv_loops<T>();
  const int64_t Kg = g.Kg(), KK = g.KH * g.KW, OHW = g.OHW(), HW = g.HW();
  const int64_t work = g.N * g.K * OHW * KK * ((grad_x ? 1 : 0) + (grad_w ? 1 : 0));
  const int t = threads_for(work, kGrain / 4);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
  for (int64_t c = 0; c < g.C; ++c) {
    T* scratch = thread_scratch<T, 1>(size_t(depthwise_scratch_size(g)));
    std::vector<double> acc(grad_w ? size_t(Kg * KK) : 0, 0.0);  // (Kg, KH, KW)
    for (int64_t n = 0; n < g.N; ++n)
      L.depthwise_backward(g, grad_out + (n * g.K + c * Kg) * OHW, x ? x + (n * g.C + c) * HW : nullptr,
                           w ? w + c * Kg * KK : nullptr, grad_x ? grad_x + (n * g.C + c) * HW : nullptr,
                           grad_w ? acc.data() : nullptr, scratch);
    for (size_t i = 0; i < acc.size(); ++i) grad_w[c * Kg * KK + i] = static_cast<T>(acc[i]);
  }
}

// The bias gradient is summed on the way, from the grad_out tiles the gemms read anyway:
// one double per (image, channel), added over the images in order at the end (the same
// result for any thread count).
template <typename T>
void backward_gemm(const ConvGeometry& g, const T* grad_out, const T* x, const T* w, T* grad_x, T* grad_w,
                   T* grad_b) {
  const ConvLoops<T>& L = conv_loops<T>();
  const int64_t Kg = g.Kg(), Cg = g.Cg(), CKK = g.CKK(), OW = g.OW, OHW = g.OHW(), HW = g.HW();
  const bool pointwise = g.pointwise();
  const int64_t rows = tile_rows<T>(g);
  const int64_t macs = g.N * g.K * CKK * OHW * ((grad_x ? 1 : 0) + (grad_w ? 1 : 0));
  const Split s = split(g.N, macs);
  const int force_dot = g_force_dot.load();
  // Thin weight gradients (few channels or a small kernel: CIFAR's first layer, 27 x 32)
  // spend more time packing the gemm's operands, which are both transposed here, than
  // multiplying: dot products along the pixels run 2-3x faster there (measured).
  const bool dot = force_dot >= 0 ? force_dot == 1 : 1.0 / Kg + 1.0 / CKK > 0.03;
  // The input gradient's columns W_g^T @ go have CKK rows: a shallow product (K = Kg) with
  // CKK not a multiple of MR pads W_g^T with zero rows to CKKp, as the forward pass does.
  int64_t mr, nr;
  micro_tile<T>(mr, nr);
  const int force_p = g_force_padded.load();
  const int64_t CKKp = round_up(CKK, mr);
  const bool padded = grad_x && !pointwise && CKKp != CKK && (force_p >= 0 ? force_p == 1 : CKK < kTransposedMinDepth);
  std::vector<T> wP(padded ? size_t(g.G * Kg * CKKp) : 0, T(0));  // (G, Kg, CKKp): W_g with zero columns
  for (int64_t r = 0; padded && r < g.G * Kg; ++r) std::copy(w + r * CKK, w + (r + 1) * CKK, wP.begin() + r * CKKp);
  const int64_t ldw = padded ? CKKp : CKK, Mx = padded ? CKKp : CKK;
  // The weight gradient of the implicit forward's layers is an implicit GEMM too (both of
  // its operands were packed from transposed views: 150 GFLOP/s at ResNet, 1 thread):
  // gwT_g (CKK, Kg) += cols (CKK, pixels) @ goT, cols packed by the gemm from the image's
  // WidePlane (pack_columns_by_tap), goT (pixels, Kg) grad_out transposed once per image
  // into the plane's pixel numbering, zero at the Wq - OW columns computed past each row.
  const bool implicit_w = grad_w && !dot && !pointwise && forward_transposed<T>(g);
  const WidePlane wp(g);
  const int64_t M = wp.rows(g);
  // gwT: one (G, CKK, Kg) sum per thread, added up in thread order at the end.
  const int64_t wsize = g.G * CKK * Kg;
  std::vector<T> gwT(grad_w ? size_t(s.outer * wsize) : 0, T(0));
  std::vector<double> plane_sums(grad_b ? size_t(g.N * g.K) : 0, 0.0);  // (N, K)
#pragma omp parallel num_threads(s.outer) if (s.outer > 1)
  {
    const int me = s.outer > 1 ? omp_get_thread_num() : 0;
    // (CKK or CKKp, tileN), unless no product needs it
    T* cols = pointwise || (implicit_w && !grad_x) ? nullptr : thread_scratch<T, 0>(size_t(Mx * rows * OW));
    T* scratch = thread_scratch<T, 1>(size_t(conv_scratch_size(g, rows)));
    T* plane = implicit_w ? thread_scratch<T, 2>(size_t(wp.size(g))) : nullptr;
    T* goT = implicit_w ? thread_scratch<T, 3>(size_t(M * Kg)) : nullptr;  // (M, Kg)
    int64_t* taps = implicit_w ? thread_scratch<int64_t, 0>(size_t(CKK)) : nullptr;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g.N; ++n) {
      if (grad_x) std::fill(grad_x + n * g.C * HW, grad_x + (n + 1) * g.C * HW, T(0));
      for (int64_t gi = 0; implicit_w && gi < g.G; ++gi) {
        L.implicit_columns(g, x + (n * g.C + gi * Cg) * HW, plane, taps);
        const ImplicitColumns<T> cols{plane, taps};
        const T* go = grad_out + (n * g.K + gi * Kg) * OHW;  // (Kg, OH, OW)
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          L.transpose_bias(go + oh * OW, Kg, Kg, OW, OHW, nullptr, goT + oh * wp.Wq * Kg, Kg);
          if (oh + 1 < g.OH) std::fill(goT + (oh * wp.Wq + OW) * Kg, goT + (oh + 1) * wp.Wq * Kg, T(0));
        }
        run_gemm(GemmArgs<T>{CKK, Kg, M, nullptr, 0, 0, goT, Kg, 1, gwT.data() + me * wsize + gi * CKK * Kg, Kg, T(1),
                             T(1), s.inner},
                 GemmPackA<T>{L.pack_columns_by_tap, &cols});
      }
      for (int64_t oh0 = 0; oh0 < g.OH; oh0 += rows) {
        const int64_t oh1 = std::min(g.OH, oh0 + rows), tileN = (oh1 - oh0) * OW;
        for (int64_t gi = 0; gi < g.G; ++gi) {
          const T* go = grad_out + (n * g.K + gi * Kg) * OHW + oh0 * OW;  // (Kg, tileN), row stride OHW
          if (grad_b)
            for (int64_t k = 0; k < Kg; ++k) plane_sums[n * g.K + gi * Kg + k] += L.sum(go + k * OHW, tileN);
          if (grad_w && !implicit_w) {
            const T* xg = x + (n * g.C + gi * Cg) * HW;
            const T* A = xg + oh0 * OW;  // (CKK, tileN)
            int64_t rs_a = HW;
            if (!pointwise) {
              L.im2col(g, xg, oh0, oh1, cols, tileN, scratch);
              A = cols, rs_a = tileN;
            }
            // gwT_g (CKK, Kg) += cols @ go^T
            T* acc = gwT.data() + me * wsize + gi * CKK * Kg;
            if (dot) L.dot_rows(CKK, Kg, tileN, A, rs_a, go, OHW, acc, Kg);
            else run_gemm(GemmArgs<T>{CKK, Kg, tileN, A, rs_a, 1, go, 1, OHW, acc, Kg, T(1), T(1), s.inner});
          }
          if (grad_x) {
            T* gx = grad_x + (n * g.C + gi * Cg) * HW;  // (Cg, H, W)
            // (CKK, tileN) = W_g^T @ go, straight into grad_x for a 1x1 conv
            const T* wg = padded ? wP.data() + gi * Kg * CKKp : w + gi * Kg * CKK;
            if (pointwise) {
              run_gemm(GemmArgs<T>{CKK, tileN, Kg, wg, 1, CKK, go, OHW, 1, gx + oh0 * OW, HW, T(1), T(0), s.inner});
            } else {
              run_gemm(GemmArgs<T>{Mx, tileN, Kg, wg, 1, ldw, go, OHW, 1, cols, tileN, T(1), T(0), s.inner});
              L.col2im(g, cols, tileN, oh0, oh1, gx, scratch);
            }
          }
        }
      }
    }
  }
  if (grad_w) {  // grad_w[g*Kg + k, r] = sum over threads of gwT[t][g][r][k]
    for (int64_t gi = 0; gi < g.G; ++gi)
      for (int64_t k = 0; k < Kg; ++k)
        for (int64_t r = 0; r < CKK; ++r) {
          T v = 0;
          for (int t = 0; t < s.outer; ++t) v += gwT[t * wsize + (gi * CKK + r) * Kg + k];
          grad_w[(gi * Kg + k) * CKK + r] = v;
        }
  }
  for (int64_t k = 0; grad_b && k < g.K; ++k) {
    double v = 0;
    for (int64_t n = 0; n < g.N; ++n) v += plane_sums[n * g.K + k];
    grad_b[k] = static_cast<T>(v);
  }
}

// ---------------------------------------------------------------------------------------
// Several small images per tile
// ---------------------------------------------------------------------------------------

// Deep layers on small images (CIFAR ResNet's 8x8 and 4x4 stages: CKK 2304-4608, 16-64
// pixels) make thin products per image: the gemm packs the whole weight matrix (up to
// 9 MiB) for 16 columns, and the weight gradient reads and writes its whole (CKK, Kg) sum
// for a depth of 16. There, nb images share one tile: their columns side by side,
// (CKK, nb * OHW), one product for all of them (the CIFAR ResNet-18 training step, batch 32,
// 2 threads: 60 -> 69 images/s). 1 where an image's own tile is already wide enough.
constexpr int64_t kMinBatchedCols = 256;  // measured: 512 and 1024 slower on the ResNet-18 step
template <typename T>
int64_t images_per_tile(const ConvGeometry& g) {
  const int64_t OHW = g.OHW(), CKK = g.CKK();
  if (g.pointwise() || CKK < kTransposedMinDepth || OHW >= kMinBatchedCols || tile_rows<T>(g) < g.OH) return 1;
  const int64_t fit = cols_bytes() / std::max<int64_t>(1, CKK * OHW * int64_t(sizeof(T)));
  return std::clamp<int64_t>(std::min((kMinBatchedCols + OHW - 1) / OHW, fit), 1, g.N);
}

// Each image's columns are written (im2col) and read back (col2im) in place, at column
// j * OHW of the tile's (CKK, nb * OHW): no staging copy per image (it cost 11-12% of
// LeNet's second conv, measured).
// Workspace per thread: cols (CKK, nb * OHW), the (Kg, nb * OHW) tile.
template <typename T>
void forward_batched(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out, int64_t nb) {
  const ConvLoops<T>& L = conv_loops<T>();
  const int64_t Kg = g.Kg(), Cg = g.Cg(), CKK = g.CKK(), OHW = g.OHW(), HW = g.HW();
  const int64_t tasks = (g.N + nb - 1) / nb;
  // Channel-major: the tile is wide enough here that the ragged last register tile costs
  // little, and transposing W (up to 9 MiB, strided) would cost more (measured 18.1 -> 6.5 ms
  // at 512 -> 512, 4x4, batch 32). (A forced pixel-major forward takes forward_implicit.)
  const Split s = split(tasks, g.N * g.K * CKK * OHW);
#pragma omp parallel for schedule(static) num_threads(s.outer) if (s.outer > 1)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t n0 = task * nb, nn = std::min(g.N, n0 + nb) - n0, cn = nn * OHW;
    T* cols = thread_scratch<T, 0>(size_t(CKK * nb * OHW));
    T* scratch = thread_scratch<T, 1>(size_t(conv_scratch_size(g, g.OH)));
    T* aside = thread_scratch<T, 2>(size_t(nb * OHW * Kg));  // (Kg, cn)
    for (int64_t gi = 0; gi < g.G; ++gi) {
      for (int64_t j = 0; j < nn; ++j)
        L.im2col(g, x + ((n0 + j) * g.C + gi * Cg) * HW, 0, g.OH, cols + j * OHW, cn, scratch);
      const T* bg = bias ? bias + gi * Kg : nullptr;
      run_gemm(GemmArgs<T>{Kg, cn, CKK, w + gi * Kg * CKK, CKK, 1, cols, cn, 1, aside, cn, T(1), T(0), s.inner});
      for (int64_t j = 0; j < nn; ++j)
        L.copy_bias(aside + j * OHW, Kg, OHW, cn, bg, out + ((n0 + j) * g.K + gi * Kg) * OHW, OHW);
    }
  }
}

// The weight gradient of deep channel-major layers with large weights as one implicit GEMM
// per chunk of images, every thread splitting each product:
//   grad_w_g (Kg, CKK) += go_chunk (Kg, nb * OHW) @ cols_chunk^T,
// cols_chunk packed by the gemm straight from the chunk's WidePlanes, transposed
// (pack_pixels_by_tap), never materialised. Not one sum per thread added up at the end as
// below: the (Kg, CKK) sums of 512-channel layers are 9 MiB each, and two threads streaming
// theirs through memory at once cost ~20% of the backward pass (ResNet-18's 4x4x512 layer,
// batch 32, 2 threads: 13.8 -> 12.3 ms; at 8x8x256, 2.3 MiB of weights, even; with smaller
// weights, larger images, slower: 16x16x128 12.1 -> 14.2 ms). Each entry is summed over the
// images in one fixed order: the same result for any thread count.
constexpr int64_t kChunkedWeightBytes = int64_t(4) << 20;
// Workspace (calling thread): a chunk's WidePlanes and grad_out (Kg, nb * OHW), within the
// column budget; CKK taps (twice: one per thread building planes).
template <typename T>
void weight_grad_chunks(const ConvGeometry& g, const T* grad_out, const T* x, T* grad_w) {
  const ConvLoops<T>& L = conv_loops<T>();
  const int64_t Kg = g.Kg(), Cg = g.Cg(), CKK = g.CKK(), OHW = g.OHW(), HW = g.HW();
  const WidePlane wp(g);
  const int64_t psize = wp.size(g);
  const int64_t nb = std::clamp<int64_t>(cols_bytes() / int64_t(sizeof(T)) / (psize + Kg * OHW), 1, g.N);
  T* planes = thread_scratch<T, 3>(size_t(nb * psize));
  T* gob = thread_scratch<T, 4>(size_t(Kg * nb * OHW));  // (Kg, nn * OHW)
  int64_t* taps = thread_scratch<int64_t, 0>(size_t(CKK));
  const int t = threads_for(g.N * g.K * CKK * OHW, kGrain);
  const int tc = threads_for(g.N * (psize + Kg * OHW), int64_t(1) << 18);  // copies: a memory grain
  for (int64_t n0 = 0; n0 < g.N; n0 += nb) {
    const int64_t nn = std::min(nb, g.N - n0), cn = nn * OHW;
    for (int64_t gi = 0; gi < g.G; ++gi) {
      L.implicit_columns(g, x + (n0 * g.C + gi * Cg) * HW, planes, taps);  // image 0 here: its taps are kept
      std::exception_ptr failure;
#pragma omp parallel for schedule(static) num_threads(tc) if (tc > 1)
      for (int64_t j = 0; j < nn; ++j) {
        try {
          if (j > 0) {
            int64_t* own_taps = thread_scratch<int64_t, 1>(size_t(CKK));  // the same values
            L.implicit_columns(g, x + ((n0 + j) * g.C + gi * Cg) * HW, planes + j * psize, own_taps);
          }
          for (int64_t k = 0; k < Kg; ++k)
            std::memcpy(gob + k * cn + j * OHW, grad_out + ((n0 + j) * g.K + gi * Kg + k) * OHW,
                        size_t(OHW) * sizeof(T));
        } catch (...) {
#pragma omp critical(pydl_conv_failure)
          if (!failure) failure = std::current_exception();
        }
      }
      if (failure) std::rethrow_exception(failure);
      const ImplicitPixels<T> px{planes, psize, taps, g.OW, OHW, wp.Wq};
      run_gemm(GemmArgs<T>{Kg, CKK, cn, gob, cn, 1, nullptr, 0, 0, grad_w + gi * Kg * CKK, CKK, T(1),
                           n0 == 0 ? T(0) : T(1), t},
               GemmPackB<T>{L.pack_pixels_by_tap, &px});
    }
  }
}

// Workspace per thread: cols (CKK, nb * OHW), grad_out of the tile gathered (Kg, nb * OHW);
// per call as backward_gemm.
template <typename T>
void backward_batched(const ConvGeometry& g, const T* grad_out, const T* x, const T* w, T* grad_x, T* grad_w,
                      T* grad_b, int64_t nb) {
  const ConvLoops<T>& L = conv_loops<T>();
  const int64_t Kg = g.Kg(), Cg = g.Cg(), CKK = g.CKK(), OHW = g.OHW(), HW = g.HW();
  const int64_t tasks = (g.N + nb - 1) / nb;
  const int64_t macs = g.N * g.K * CKK * OHW * ((grad_x ? 1 : 0) + (grad_w ? 1 : 0));
  const Split s = split(tasks, macs);
  const int force_dot = g_force_dot.load();
  const bool dot = force_dot >= 0 ? force_dot == 1 : 1.0 / Kg + 1.0 / CKK > 0.03;
  const int64_t wsize = g.G * CKK * Kg;
  // The weight gradient of deep layers as an implicit GEMM, as their forward pass: the
  // columns packed by the gemm straight from the images' WidePlanes, transposed
  // (pack_pixels_by_tap), never materialised; one product per task as below, or, for
  // large weights, per chunk of images with the threads splitting it (weight_grad_chunks).
  bool implicit = grad_w && !dot && forward_implicit_channels<T>(g);
  if (implicit && wsize * int64_t(sizeof(T)) >= kChunkedWeightBytes) {
    weight_grad_chunks(g, grad_out, x, grad_w);
    grad_w = nullptr, implicit = false;
    if (!grad_x && !grad_b) return;
  }
  const WidePlane wp(g);
  const int64_t psize = wp.size(g);
  // W_g^T, the input gradient's A, packed once for every task.
  const int64_t wtsize = grad_x && tasks >= kPrepackMinTasks ? a_panels_size<T>(CKK, Kg) : 0;
  T* wtpk = wtsize ? thread_scratch<T, 5>(size_t(g.G * wtsize)) : nullptr;
  for (int64_t gi = 0; wtsize && gi < g.G; ++gi)
    pack_a_panels<T>(CKK, Kg, w + gi * Kg * CKK, 1, CKK, wtpk + gi * wtsize, threads_for(g.K * CKK, kPackGrain));
  // One (G, Kg, CKK) sum per thread, in grad_w's own layout: added up in thread order at the
  // end without a transpose (a strided one of up to 9 MiB cost as much as the product).
  // Thread 0 sums into grad_w itself, the others into buffers of their own, kept between
  // calls (a fresh, zeroed vector of them all per call cost page faults and a serial pass).
  std::vector<T*> sums(size_t(s.outer), nullptr);
  std::vector<double> plane_sums(grad_b ? size_t(g.N * g.K) : 0, 0.0);  // (N, K)
#pragma omp parallel num_threads(s.outer) if (s.outer > 1)
  {
    const int me = s.outer > 1 ? omp_get_thread_num() : 0;
    if (grad_w) {
      sums[me] = me == 0 ? grad_w : thread_scratch<T, 7>(size_t(wsize));
      std::fill(sums[me], sums[me] + wsize, T(0));
    }
    T* cols = grad_x || (grad_w && !implicit) ? thread_scratch<T, 0>(size_t(CKK * nb * OHW)) : nullptr;
    T* scratch = thread_scratch<T, 1>(size_t(conv_scratch_size(g, g.OH)));
    T* gob = thread_scratch<T, 2>(size_t(Kg * nb * OHW));
    T* planes = implicit ? thread_scratch<T, 3>(size_t(nb * psize)) : nullptr;
    int64_t* taps = implicit ? thread_scratch<int64_t, 0>(size_t(CKK)) : nullptr;
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t n0 = task * nb, nn = std::min(g.N, n0 + nb) - n0, cn = nn * OHW;
      if (grad_x) std::fill(grad_x + n0 * g.C * HW, grad_x + (n0 + nn) * g.C * HW, T(0));
      for (int64_t gi = 0; gi < g.G; ++gi) {
        for (int64_t j = 0; j < nn; ++j)
          for (int64_t k = 0; k < Kg; ++k) {
            const T* go = grad_out + ((n0 + j) * g.K + gi * Kg + k) * OHW;
            std::memcpy(gob + k * cn + j * OHW, go, size_t(OHW) * sizeof(T));
            if (grad_b) plane_sums[(n0 + j) * g.K + gi * Kg + k] += L.sum(go, OHW);
          }
        if (grad_w) {
          T* acc = sums[me] + gi * Kg * CKK;  // (Kg, CKK) += gob @ cols^T
          if (implicit) {
            for (int64_t j = 0; j < nn; ++j)
              L.implicit_columns(g, x + ((n0 + j) * g.C + gi * Cg) * HW, planes + j * psize, taps);
            const ImplicitPixels<T> px{planes, psize, taps, g.OW, OHW, wp.Wq};
            run_gemm(GemmArgs<T>{Kg, CKK, cn, gob, cn, 1, nullptr, 0, 0, acc, CKK, T(1), T(1), s.inner},
                     GemmPackB<T>{L.pack_pixels_by_tap, &px});
          } else {
            for (int64_t j = 0; j < nn; ++j)
              L.im2col(g, x + ((n0 + j) * g.C + gi * Cg) * HW, 0, g.OH, cols + j * OHW, cn, scratch);
            if (dot) L.dot_rows(Kg, CKK, cn, gob, cn, cols, cn, acc, CKK);
            else run_gemm(GemmArgs<T>{Kg, CKK, cn, gob, cn, 1, cols, 1, cn, acc, CKK, T(1), T(1), s.inner});
          }
        }
        if (grad_x) {
          run_gemm(GemmArgs<T>{CKK, cn, Kg, w + gi * Kg * CKK, 1, CKK, gob, cn, 1, cols, cn, T(1), T(0), s.inner},
                   GemmSources<T>{{}, wtpk ? wtpk + gi * wtsize : nullptr});
          for (int64_t j = 0; j < nn; ++j)
            L.col2im(g, cols + j * OHW, cn, 0, g.OH, grad_x + ((n0 + j) * g.C + gi * Cg) * HW, scratch);
        }
      }
    }
  }
  if (grad_w && s.outer > 1) {  // grad_w = ((sum_0 + sum_1) + sum_2) ..., whatever the threads
    const int t = threads_for(wsize, int64_t(1) << 18);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
    for (int64_t i = 0; i < wsize; ++i) {
      T v = grad_w[i];
      for (int u = 1; u < s.outer; ++u) v += sums[u][i];
      grad_w[i] = v;
    }
  }
  for (int64_t k = 0; grad_b && k < g.K; ++k) {
    double v = 0;
    for (int64_t n = 0; n < g.N; ++n) v += plane_sums[n * g.K + k];
    grad_b[k] = static_cast<T>(v);
  }
}

// Channel-major implicit GEMM, nb images per task: out_tile (Kg, nb * OHW) = W_g @ cols,
// cols packed by the gemm panel by panel straight from the images' WidePlanes (conv.h's
// ImplicitPixels), never materialised; then each image's (Kg, OHW) block copied into place
// with the bias. This is the deep layers' forward where the pixel-major one does not pay
// (small images, strided layers): it spares im2col's write and the gemm's re-read of the
// columns (1 thread, CPU time against im2col: LeNet-5's second conv, 64x20x14x14 -> 50 5x5,
// 4.95 -> 4.06 ms; CIFAR ResNet-18, batch 32: 16x16x128 3x3 12.4 -> 11.3 ms, 8x8x256 12.1
// -> 11.4, 4x4x512 12.0 -> 11.3, 32x32 64 -> 128 stride 2 7.7 -> 6.7).
// Workspace per thread: nb WidePlanes, CKK taps and the (Kg, nb * OHW) tile.
template <typename T>
void forward_implicit_pixels(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out, int64_t nb) {
  const ConvLoops<T>& L = conv_loops<T>();
  const int64_t Kg = g.Kg(), Cg = g.Cg(), CKK = g.CKK(), OHW = g.OHW(), HW = g.HW();
  const WidePlane wp(g);
  const int64_t psize = wp.size(g), tasks = (g.N + nb - 1) / nb;
  const Split s = split(tasks, g.N * g.K * CKK * OHW);
  const int64_t wsize = tasks >= kPrepackMinTasks ? a_panels_size<T>(Kg, CKK) : 0;
  T* wpk = wsize ? thread_scratch<T, 5>(size_t(g.G * wsize)) : nullptr;  // W_g packed once for every task
  for (int64_t gi = 0; wsize && gi < g.G; ++gi)
    pack_a_panels<T>(Kg, CKK, w + gi * Kg * CKK, CKK, 1, wpk + gi * wsize, threads_for(g.K * CKK, kPackGrain));
  std::exception_ptr failure;  // an exception may not leave an OpenMP region: carry it out
#pragma omp parallel for schedule(static) num_threads(s.outer) if (s.outer > 1)
  for (int64_t task = 0; task < tasks; ++task) {
    try {
      const int64_t n0 = task * nb, nn = std::min(g.N, n0 + nb) - n0, cn = nn * OHW;
      T* planes = thread_scratch<T, 1>(size_t(nb * psize));
      T* aside = thread_scratch<T, 2>(size_t(Kg * nb * OHW));  // (Kg, cn)
      int64_t* taps = thread_scratch<int64_t, 0>(size_t(CKK));
      for (int64_t gi = 0; gi < g.G; ++gi) {
        for (int64_t j = 0; j < nn; ++j)
          L.implicit_columns(g, x + ((n0 + j) * g.C + gi * Cg) * HW, planes + j * psize, taps);
        const ImplicitPixels<T> cols{planes, psize, taps, g.OW, OHW, wp.Wq};
        run_gemm(GemmArgs<T>{Kg, cn, CKK, w + gi * Kg * CKK, CKK, 1, nullptr, 0, 0, aside, cn, T(1), T(0), s.inner},
                 GemmSources<T>{{}, wpk ? wpk + gi * wsize : nullptr, GemmPackB<T>{L.pack_pixels, &cols}});
        const T* bg = bias ? bias + gi * Kg : nullptr;
        for (int64_t j = 0; j < nn; ++j)
          L.copy_bias(aside + j * OHW, Kg, OHW, cn, bg, out + ((n0 + j) * g.K + gi * Kg) * OHW, OHW);
      }
    } catch (...) {
#pragma omp critical(pydl_conv_failure)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

// The backward pass of the deep layers whose forward is channel-major implicit (and whose
// image fits one column tile) runs one image per task through backward_batched, for its
// implicit weight gradient.
template <typename T>
bool backward_whole_images(const ConvGeometry& g) {
  return forward_implicit_channels<T>(g) && !forward_transposed<T>(g) && tile_rows<T>(g) >= g.OH;
}

// Winograd's F(2x2, 3x3) (conv_winograd.cpp) for 3x3 stride-1 undilated convs with enough
// channels on both sides: its transforms cost per channel what its 16 products save per
// channel pair. 2 threads, CIFAR ResNet-18 B32, ms, forward / weight gradient against the
// paths above: 16x16x128 4.95 -> 4.07 / 5.76 -> 4.33, 8x8x256 5.74 -> 3.58 / 5.68 -> 3.49,
// 4x4x512 5.53 -> 4.54 / 5.96 -> 3.62; at 32x32x64 the forward lost, 4.9 -> 7.3 (1 thread it
// won, 9.9 -> 8.7: the transforms' memory traffic does not scale), the weight gradient 6.7 -> 6.3.
constexpr int64_t kWinogradMinChannels = 128;
bool winograd_fits(const ConvGeometry& g) {
  const bool shape = g.KH == 3 && g.KW == 3 && g.SH == 1 && g.SW == 1 && g.DH == 1 && g.DW == 1;
  const int force = g_force_winograd.load();
  if (force >= 0) return force == 1 && shape;
  return shape && g.Cg() >= kWinogradMinChannels && g.Kg() >= kWinogradMinChannels;
}

// Depthwise convolutions (one input channel per group) run the direct loops: forward up to
// 8 filters per channel, backward for one (measured at 56x56: 2-5x faster than their thin
// gemms; with more filters per channel the gemms win, LeNet's 20 filters on 1 channel by 2x).
bool use_direct(const ConvGeometry& g, bool backward) {
  const int force = g_force_direct.load();
  if (force >= 0) return force == 1 && g.depthwise();
  return g.depthwise() && g.Kg() <= (backward ? 1 : 8);
}

}  // namespace

template <typename T>
void conv2d_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out) {
  if (g.N == 0 || g.K == 0) return;
  if (use_direct(g, false)) forward_depthwise(g, x, w, bias, out);
  else if (winograd_fits(g)) conv2d_forward_winograd(g, x, w, bias, out, cols_bytes());
  else if (unpacked_fits<T>(g)) forward_unpacked(g, x, w, bias, out);
  else if (forward_transposed<T>(g)) forward_implicit(g, x, w, bias, out);
  else if (forward_implicit_channels<T>(g)) forward_implicit_pixels(g, x, w, bias, out, images_per_tile<T>(g));
  else if (const int64_t nb = images_per_tile<T>(g); nb > 1) forward_batched(g, x, w, bias, out, nb);
  else forward_gemm(g, x, w, bias, out);
}

// The input gradient of a stride-1 conv is a convolution itself (the seeds' transposed
// convolution): grad_out, padded by DH * (KH - 1) - PH at the top (and the rest alike),
// correlated with the kernel turned around and its channel axes swapped. Where that
// forward runs the unpacked implicit GEMM (forward_unpacked: float32 on AVX-512, rows of 16
// or more) it beats W^T @ grad_out + col2im (1 thread, CPU time, CIFAR ResNet-18, batch
// 32: 32x32x64 12.0 -> 9.85 ms, 16x16x128 11.4 -> 10.05; through the packed forwards it
// does not: 8x8x256 11.4 -> 11.5, LeNet's 14x14 4.1 -> 5.4, so it is not used there, nor
// for convs of fewer than 8 input channels per group, see below).
template <typename T>
bool input_grad_by_forward(const ConvGeometry& g, ConvGeometry& f) {
  const int64_t reach_h = g.DH * (g.KH - 1), reach_w = g.DW * (g.KW - 1);
  if (g.SH != 1 || g.SW != 1 || g.PH > reach_h || g.PW > reach_w || g.H - g.OH + g.PH < 0 || g.W - g.OW + g.PW < 0)
    return false;  // (the last two: the bottom / right padding past the kernel's reach)
  f = g;
  f.C = g.K, f.H = g.OH, f.W = g.OW, f.K = g.C, f.OH = g.H, f.OW = g.W, f.PH = reach_h - g.PH, f.PW = reach_w - g.PW;
  const int force = g_force_flipped.load();
  // (its output channels, the conv's input channels, fill the kernel's 8-channel tiles: with
  // fewer it is slower -- 2 threads: 3 -> 32 channels 32x32 1.13 -> 1.73 ms, LeNet's 1 -> 20
  // 0.30 -> 0.98; 8 -> 32 0.50 -> 0.43, 16 -> 32 1.18 -> 0.73)
  return force >= 0 ? force == 1 : (g.Cg() >= kImplicitChannels && unpacked_fits<T>(f)) || winograd_fits(f);
}

// wf (C, Kg, KH, KW): wf[gi * Cg + c, k, kh, kw] = w[gi * Kg + k, c, KH - 1 - kh, KW - 1 - kw].
// (Row by row of wf, written in order: one kernel at a time in w's order wrote KK values
// Kg * KK apart each time, 1.4 ms at 512 -> 512 channels.)
template <typename T>
void flip_weights(const ConvGeometry& g, const T* w, T* wf) {
  const int64_t Kg = g.Kg(), Cg = g.Cg(), KK = g.KH * g.KW;
  const int t = threads_for(g.K * g.CKK(), int64_t(1) << 18);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
  for (int64_t row = 0; row < g.C; ++row) {  // row = gi * Cg + c
    const int64_t gi = row / Cg, c = row % Cg;
    for (int64_t k = 0; k < Kg; ++k) {
      const T* src = w + ((gi * Kg + k) * Cg + c) * KK;
      T* dst = wf + (row * Kg + k) * KK;
      for (int64_t q = 0; q < KK; ++q) dst[q] = src[KK - 1 - q];
    }
  }
}

template <typename T>
void conv2d_backward(const ConvGeometry& g, const T* grad_out, const T* x, const T* w, T* grad_x, T* grad_w,
                     T* grad_b) {
  if (ConvGeometry f; grad_x && g.N > 0 && g.K > 0 && !use_direct(g, true) && input_grad_by_forward<T>(g, f)) {
    T* wf = thread_scratch<T, 6>(size_t(g.K * g.CKK()));  // (C, Kg, KH, KW)
    flip_weights(g, w, wf);
    conv2d_forward<T>(f, grad_out, wf, nullptr, grad_x);
    grad_x = nullptr;
  }
  if (grad_w && g.N > 0 && g.K > 0 && winograd_fits(g)) {
    conv2d_weight_grad_winograd(g, grad_out, x, grad_w, cols_bytes());
    grad_w = nullptr;
  }
  if (g.N == 0 || g.K == 0 || !(grad_x || grad_w) || use_direct(g, true)) {
    if (grad_b) channel_sums(grad_out, g.N, g.K, g.OHW(), grad_b);
    grad_b = nullptr;
  }
  if (g.N == 0 || g.K == 0) {
    if (grad_x) std::fill(grad_x, grad_x + g.N * g.C * g.HW(), T(0));
    if (grad_w) std::fill(grad_w, grad_w + g.K * g.CKK(), T(0));
    return;
  }
  if (!(grad_x || grad_w)) return;
  if (use_direct(g, true)) backward_depthwise(g, grad_out, x, w, grad_x, grad_w);
  else if (const int64_t nb = images_per_tile<T>(g); nb > 1 || backward_whole_images<T>(g))
    backward_batched(g, grad_out, x, w, grad_x, grad_w, grad_b, nb);
  else backward_gemm(g, grad_out, x, w, grad_x, grad_w, grad_b);
}

template <typename T>
void conv_transpose2d_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* out) {
  // The conv's input gradient, with this op's input as the conv's grad_out.
  conv2d_backward<T>(g, x, nullptr, w, out, nullptr, nullptr);
  if (!bias) return;
  const int64_t HW = g.HW(), planes = g.N * g.C;
  const int t = threads_for(planes * HW, int64_t(1) << 20);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < HW; ++i) out[p * HW + i] += bias[p % g.C];
}

template <typename T>
void conv_transpose2d_backward(const ConvGeometry& g, const T* grad_out, const T* x, const T* w, T* grad_x, T* grad_w,
                               T* grad_b) {
  if (grad_x) conv2d_forward<T>(g, grad_out, w, nullptr, grad_x);
  if (grad_w) conv2d_backward<T>(g, x, grad_out, nullptr, nullptr, grad_w, nullptr);
  if (grad_b) channel_sums(grad_out, g.N, g.C, g.HW(), grad_b);
}

void conv_set_tuning(int64_t tile_kb, int dot, int direct, int transposed, int padded, int implicit, int unpacked,
                     int flipped, int winograd) {
  g_force_winograd = winograd;
  g_cols_bytes = (tile_kb > 0 ? tile_kb : kDefaultTileKB) * 1024;
  g_force_dot = dot, g_force_direct = direct, g_force_transposed = transposed, g_force_padded = padded;
  g_force_implicit = implicit, g_force_unpacked = unpacked, g_force_flipped = flipped;
}

#define PYDL_CONV_INSTANTIATE(T)                                                                                   \
  template void conv2d_forward<T>(const ConvGeometry&, const T*, const T*, const T*, T*);                         \
  template void conv2d_backward<T>(const ConvGeometry&, const T*, const T*, const T*, T*, T*, T*);                \
  template void conv_transpose2d_forward<T>(const ConvGeometry&, const T*, const T*, const T*, T*);               \
  template void conv_transpose2d_backward<T>(const ConvGeometry&, const T*, const T*, const T*, T*, T*, T*);
PYDL_CONV_INSTANTIATE(float)
PYDL_CONV_INSTANTIATE(double)

}  // namespace pydl
