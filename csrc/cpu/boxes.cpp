// Detection kernels on the CPU: box_iou, generalized_box_iou, nms, batched_nms (and, from
// boxes_roi.cpp, roi_align / roi_pool forward and backward).
//
// What it computes (torchvision's rules; the defined behaviour on bad boxes is spelled out
// in pydl/kernels/reference/boxes.py, the per-pair IoU is pydl::box_iou_pair in
// csrc/include/pydl/boxes.h, shared with the CUDA kernels):
//   IoU(a, b) = |a n b| / |a u b| (0 when the union is not > 0: zero-area, inverted, NaN)
//   GIoU      = IoU - (|C| - |a u b|) / |C|, C the enclosing box (IoU where that is NaN or |C| !> 0)
//   nms       keep = greedy walk by decreasing score (ties by index, NaN scores last);
//             a box goes when its IoU with a kept box is > threshold (== stays)
//
// Dimension legend: N, M boxes (nms: N boxes, nb = ceil(N / 64) blocks of 64).
//
// NMS algorithm: boxes sorted by score and laid out as structure-of-arrays (x1, y1, x2, y2,
// clamped area), padded to whole 64-box blocks. The removed set is a bitmask, one 64-bit
// word per block (torchvision's CUDA layout). Block by block: (1) a serial sweep inside the
// block decides which of its boxes are kept (a 64-lane IoU row per kept box, masked to the
// boxes after it); (2) the kept boxes' IoU rows against every later block are ORed into
// that block's word, the later blocks split across threads (each word has one writer, so
// no atomics and the result does not depend on the thread count). Early exits: suppressed
// boxes never compute a row (torchvision's CUDA kernel computes all N^2 / 2 pairs), and a
// block whose word is all ones is skipped. A row is 64 IoU tests of one box against the
// block's arrays: a branch-free loop the compiler vectorises; it is compiled for the
// generic target, AVX2 and AVX-512 through function target attributes and picked with
// pydl::active_isa(). The float threshold is the largest float <= the double threshold,
// so `iou > thr` decides exactly as torchvision's float-vs-double compare.
// batched_nms runs that per category (boxes bucketed by category in score order), which
// is exact for any coordinates (the offset trick breaks on inf / NaN) and faster than the
// offset trick, whose rows test every pair of categories (measured, float32, boxes of the
// nms benchmark: 10000 boxes in 80 categories 1.6 ms vs 5.0 ms, in 3 categories 2.4 vs 4.6).
//
// RoI Align / RoI pool live in csrc/cpu/boxes_roi.cpp (registered from bind_boxes).
//
// Workspace: nms keeps 5 arrays of nb * 64 T, nb words and the order (thread-local,
// reused between calls); box_iou one (5, M) copy of boxes2.
//
// Checked by tests/vision/test_ops.py: parity with the reference over every ISA path and
// thread count, threshold-exact boxes, ties, NaN, inverted and empty boxes, float32 and
// float64, strided input, bad arguments.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include <immintrin.h>

#include "pydl/boxes.h"
#include "pydl/checks.h"
#include "pydl/isa.h"
#include "pydl/parallel.h"

#include <omp.h>

namespace pydl {
namespace py = pybind11;

namespace {

// --------------------------------------------------------------------------------------
// 64-lane IoU rows, compiled per ISA
// --------------------------------------------------------------------------------------
template <typename T>
struct BoxesSoA {  // each (nb * 64,), sorted by score, padded with zero boxes
  const T *x1, *y1, *x2, *y2, *area;
};

// Bits l of the result: IoU(box a, box 64 * blk + l) > thr.
template <typename T>
__attribute__((always_inline)) inline uint64_t iou_row(const T* a, T a_area, const BoxesSoA<T>& s, int64_t blk,
                                                       T thr) {
  const int64_t o = blk * 64;
  const T *x1 = s.x1 + o, *y1 = s.y1 + o, *x2 = s.x2 + o, *y2 = s.y2 + o, *ar = s.area + o;
  uint64_t bits = 0;
  for (int half = 0; half < 2; ++half) {  // two 32-lane halves: uint32 lanes pack cheaply
    uint32_t c[32];
    for (int l = 0; l < 32; ++l) {
      const int j = half * 32 + l;
      T inter = box_intersection(a[0], a[1], a[2], a[3], x1[j], y1[j], x2[j], y2[j]);
      c[l] = iou_from_parts(inter, a_area, ar[j]) > thr ? 1u : 0u;
    }
    uint32_t m = 0;
    for (int l = 0; l < 32; ++l) m |= c[l] << l;
    bits |= static_cast<uint64_t>(m) << (32 * half);
  }
  return bits;
}

// word |= rows of the kept boxes against block blk (stops once every box is suppressed).
template <typename T>
__attribute__((always_inline)) inline uint64_t suppress_block(const int64_t* kept, int nk, const BoxesSoA<T>& s,
                                                              int64_t blk, T thr, uint64_t word) {
  for (int i = 0; i < nk && word != ~uint64_t(0); ++i) {
    const int64_t p = kept[i];
    const T a[4] = {s.x1[p], s.y1[p], s.x2[p], s.y2[p]};
    word |= iou_row(a, s.area[p], s, blk, thr);
  }
  return word;
}

template <typename T>
using SuppressFn = uint64_t (*)(const int64_t*, int, const BoxesSoA<T>&, int64_t, T, uint64_t);

template <typename T>
uint64_t suppress_generic(const int64_t* k, int nk, const BoxesSoA<T>& s, int64_t b, T t, uint64_t w) {
  return suppress_block(k, nk, s, b, t, w);
}
template <typename T>
__attribute__((target("avx2,fma"))) uint64_t suppress_avx2(const int64_t* k, int nk, const BoxesSoA<T>& s,
                                                           int64_t b, T t, uint64_t w) {
  return suppress_block(k, nk, s, b, t, w);
}
template <typename T>
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"))) uint64_t suppress_avx512(
    const int64_t* k, int nk, const BoxesSoA<T>& s, int64_t b, T t, uint64_t w) {
  return suppress_block(k, nk, s, b, t, w);
}

// float rows with intrinsics (the compiler's packing of 64 compare results is slow). Same
// arithmetic as box_intersection / iou_from_parts: MINPS / MAXPS differ from box_min /
// box_max only when a coordinate is NaN, and then the area (hence the union) is NaN and
// the compare is false either way.
template <>
__attribute__((target("avx2,fma"))) uint64_t suppress_avx2<float>(const int64_t* kept, int nk,
                                                                  const BoxesSoA<float>& s, int64_t blk, float thr,
                                                                  uint64_t word) {
  const int64_t o = blk * 64;
  const __m256 zero = _mm256_setzero_ps(), vt = _mm256_set1_ps(thr);
  for (int i = 0; i < nk && word != ~uint64_t(0); ++i) {
    const int64_t p = kept[i];
    const __m256 ax1 = _mm256_set1_ps(s.x1[p]), ay1 = _mm256_set1_ps(s.y1[p]);
    const __m256 ax2 = _mm256_set1_ps(s.x2[p]), ay2 = _mm256_set1_ps(s.y2[p]), aar = _mm256_set1_ps(s.area[p]);
    for (int v = 0; v < 8; ++v) {
      const int64_t j = o + 8 * v;
      __m256 iw = _mm256_sub_ps(_mm256_min_ps(ax2, _mm256_loadu_ps(s.x2 + j)),
                                _mm256_max_ps(ax1, _mm256_loadu_ps(s.x1 + j)));
      __m256 ih = _mm256_sub_ps(_mm256_min_ps(ay2, _mm256_loadu_ps(s.y2 + j)),
                                _mm256_max_ps(ay1, _mm256_loadu_ps(s.y1 + j)));
      __m256 inter = _mm256_mul_ps(_mm256_max_ps(iw, zero), _mm256_max_ps(ih, zero));
      __m256 uni = _mm256_sub_ps(_mm256_add_ps(aar, _mm256_loadu_ps(s.area + j)), inter);
      __m256 q = _mm256_div_ps(inter, uni);
      __m256 c = _mm256_and_ps(_mm256_cmp_ps(uni, zero, _CMP_GT_OQ), _mm256_cmp_ps(q, vt, _CMP_GT_OQ));
      word |= static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_ps(c))) << (8 * v);
    }
  }
  return word;
}

template <>
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"))) uint64_t suppress_avx512<float>(
    const int64_t* kept, int nk, const BoxesSoA<float>& s, int64_t blk, float thr, uint64_t word) {
  const int64_t o = blk * 64;
  const __m512 zero = _mm512_setzero_ps(), vt = _mm512_set1_ps(thr);
  for (int i = 0; i < nk && word != ~uint64_t(0); ++i) {
    const int64_t p = kept[i];
    const __m512 ax1 = _mm512_set1_ps(s.x1[p]), ay1 = _mm512_set1_ps(s.y1[p]);
    const __m512 ax2 = _mm512_set1_ps(s.x2[p]), ay2 = _mm512_set1_ps(s.y2[p]), aar = _mm512_set1_ps(s.area[p]);
    for (int v = 0; v < 4; ++v) {
      const int64_t j = o + 16 * v;
      __m512 iw = _mm512_sub_ps(_mm512_min_ps(ax2, _mm512_loadu_ps(s.x2 + j)),
                                _mm512_max_ps(ax1, _mm512_loadu_ps(s.x1 + j)));
      __m512 ih = _mm512_sub_ps(_mm512_min_ps(ay2, _mm512_loadu_ps(s.y2 + j)),
                                _mm512_max_ps(ay1, _mm512_loadu_ps(s.y1 + j)));
      __m512 inter = _mm512_mul_ps(_mm512_max_ps(iw, zero), _mm512_max_ps(ih, zero));
      __m512 uni = _mm512_sub_ps(_mm512_add_ps(aar, _mm512_loadu_ps(s.area + j)), inter);
      __m512 q = _mm512_div_ps(inter, uni);
      __mmask16 c = _mm512_cmp_ps_mask(uni, zero, _CMP_GT_OQ) & _mm512_cmp_ps_mask(q, vt, _CMP_GT_OQ);
      word |= static_cast<uint64_t>(c) << (16 * v);
    }
  }
  return word;
}

template <typename T>
SuppressFn<T> pick_suppress() {
  switch (active_isa()) {
    case Isa::avx512: return &suppress_avx512<T>;
    case Isa::avx2: return &suppress_avx2<T>;
    default: return &suppress_generic<T>;
  }
}

// The largest T <= thr: `(T)iou > thr_T` then decides exactly as `(double)iou > thr`.
template <typename T>
T threshold_as(double thr) {
  T t = static_cast<T>(thr);
  if (std::isfinite(thr) && static_cast<double>(t) > thr) t = std::nextafter(t, -std::numeric_limits<T>::infinity());
  return t;
}

// Order by decreasing score, ties by index, NaN scores last.
template <typename T>
void score_order(const T* scores, int64_t n, std::vector<int64_t>& order) {
  order.resize(n);
  std::iota(order.begin(), order.end(), int64_t(0));
  std::sort(order.begin(), order.end(), [scores](int64_t i, int64_t j) {
    const T a = scores[i], b = scores[j];
    const bool na = std::isnan(a), nb = std::isnan(b);
    if (na != nb) return nb;  // the number first
    if (!na && a != b) return a > b;
    return i < j;
  });
}

// IoU tests per thread before nms uses another (tests lower it through _C._nms_grain to
// cover the parallel path at sizes the reference can check).
std::atomic<int64_t> nms_grain{int64_t(1) << 22};

// Greedy NMS over the boxes `idx[0..n)` (already in score order) of boxes (N, 4); appends
// the kept entries of idx to `keep`.
template <typename T>
void nms_sorted(const T* boxes, const int64_t* idx, int64_t n, double thr_d, std::vector<int64_t>& keep) {
  if (n == 0) return;
  const int64_t nb = (n + 63) / 64;
  thread_local std::vector<T> soa;        // (5, nb * 64)
  thread_local std::vector<uint64_t> removed;  // (nb,)
  soa.assign(5 * nb * 64, T(0));
  removed.assign(nb, 0);
  T* x1 = soa.data();
  T* y1 = x1 + nb * 64;
  T* x2 = y1 + nb * 64;
  T* y2 = x2 + nb * 64;
  T* ar = y2 + nb * 64;
  for (int64_t p = 0; p < n; ++p) {
    const T* b = boxes + 4 * idx[p];
    x1[p] = b[0], y1[p] = b[1], x2[p] = b[2], y2[p] = b[3];
    ar[p] = box_area_clamped(b[0], b[1], b[2], b[3]);
  }
  if (n % 64) removed[nb - 1] = ~uint64_t(0) << (n % 64);  // padding never kept
  const BoxesSoA<T> s{x1, y1, x2, y2, ar};
  const T thr = threshold_as<T>(thr_d);
  const SuppressFn<T> suppress = pick_suppress<T>();
  int64_t kept[64];
  for (int64_t b = 0; b < nb; ++b) {
    uint64_t word = removed[b];
    int nk = 0;
    for (int bit = 0; bit < 64; ++bit) {
      if (word >> bit & 1) continue;
      const int64_t p = b * 64 + bit;
      kept[nk++] = p;
      keep.push_back(idx[p]);
      if (bit < 63) word |= suppress(&kept[nk - 1], 1, s, b, thr, 0) & (~uint64_t(0) << (bit + 1));
    }
    removed[b] = word;
    const int64_t later = nb - b - 1;
    if (nk == 0 || later == 0) continue;
    // a parallel region costs milliseconds when another process holds the other core: only
    // steps of millions of IoU tests (N beyond ~100k boxes) are worth a second thread
    const int t = threads_for(later * nk * 64, nms_grain.load(std::memory_order_relaxed));
    uint64_t* rm = removed.data();
#pragma omp parallel for num_threads(t) if (t > 1) schedule(static)
    for (int64_t c = b + 1; c < nb; ++c) rm[c] = suppress(kept, nk, s, c, thr, rm[c]);
  }
}

// --------------------------------------------------------------------------------------
// box_iou / generalized_box_iou
// --------------------------------------------------------------------------------------
// Rows [i0, i1) of the IoU / GIoU matrix against b's structure-of-arrays (5, M).
template <typename T>
__attribute__((always_inline)) inline void iou_rows(const T* a, int64_t i0, int64_t i1, const T* soa, int64_t M,
                                                    T* out, bool generalized) {
  const T *bx1 = soa, *by1 = bx1 + M, *bx2 = by1 + M, *by2 = bx2 + M, *bar = by2 + M;
  for (int64_t i = i0; i < i1; ++i) {
    const T ax1 = a[4 * i], ay1 = a[4 * i + 1], ax2 = a[4 * i + 2], ay2 = a[4 * i + 3];
    const T aar = box_area_clamped(ax1, ay1, ax2, ay2);
    T* o = out + i * M;
    if (!generalized) {
      for (int64_t j = 0; j < M; ++j)
        o[j] = iou_from_parts(box_intersection(ax1, ay1, ax2, ay2, bx1[j], by1[j], bx2[j], by2[j]), aar, bar[j]);
    } else {
      for (int64_t j = 0; j < M; ++j)
        o[j] = generalized_iou(ax1, ay1, ax2, ay2, aar, bx1[j], by1[j], bx2[j], by2[j], bar[j]);
    }
  }
}

template <typename T>
using IouRowsFn = void (*)(const T*, int64_t, int64_t, const T*, int64_t, T*, bool);
template <typename T>
void iou_rows_generic(const T* a, int64_t i0, int64_t i1, const T* s, int64_t M, T* o, bool g) {
  iou_rows(a, i0, i1, s, M, o, g);
}
template <typename T>
__attribute__((target("avx2,fma"))) void iou_rows_avx2(const T* a, int64_t i0, int64_t i1, const T* s, int64_t M,
                                                       T* o, bool g) {
  iou_rows(a, i0, i1, s, M, o, g);
}
template <typename T>
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"))) void iou_rows_avx512(
    const T* a, int64_t i0, int64_t i1, const T* s, int64_t M, T* o, bool g) {
  iou_rows(a, i0, i1, s, M, o, g);
}

template <typename T>
void box_iou_kernel(const T* a, int64_t N, const T* b, int64_t M, T* out, bool generalized) {
  std::vector<T> soa(5 * M);  // b as structure-of-arrays (5, M) so a row vectorises
  T *bx1 = soa.data(), *by1 = bx1 + M, *bx2 = by1 + M, *by2 = bx2 + M, *bar = by2 + M;
  for (int64_t j = 0; j < M; ++j) {
    bx1[j] = b[4 * j], by1[j] = b[4 * j + 1], bx2[j] = b[4 * j + 2], by2[j] = b[4 * j + 3];
    bar[j] = box_area_clamped(bx1[j], by1[j], bx2[j], by2[j]);
  }
  IouRowsFn<T> rows = active_isa() == Isa::avx512 ? &iou_rows_avx512<T>
                      : active_isa() == Isa::avx2 ? &iou_rows_avx2<T>
                                                  : &iou_rows_generic<T>;
  // ~1 ms of work per thread: waking a second one costs about that much on a busy machine
  const int t = threads_for(N * M, int64_t(1) << 23);
  if (t <= 1) return rows(a, 0, N, soa.data(), M, out, generalized);
#pragma omp parallel num_threads(t)
  {
    const int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
    rows(a, N * id / nt, N * (id + 1) / nt, soa.data(), M, out, generalized);
  }
}

// --------------------------------------------------------------------------------------
// bindings
// --------------------------------------------------------------------------------------
py::array boxes_arg(const py::handle& obj, const char* op, const char* name) {
  py::array a = as_array(obj, op, name);
  float_kind(a, op, name);
  if (a.ndim() != 2 || a.shape(1) != 4)
    throw py::value_error(std::string(op) + ": " + name + " must have shape (N, 4), got " + shape_str(a));
  return a;
}

py::array box_iou_py(const py::handle& b1o, const py::handle& b2o, bool generalized) {
  const char* op = generalized ? "generalized_box_iou" : "box_iou";
  py::array b1 = boxes_arg(b1o, op, "boxes1"), b2 = boxes_arg(b2o, op, "boxes2");
  check_same_dtype(b1, b2, op, "boxes1", "boxes2");
  auto run = [&](auto zero) -> py::array {
    using T = decltype(zero);
    auto a = contiguous<T>(b1), b = contiguous<T>(b2);
    const int64_t N = a.shape(0), M = b.shape(0);
    py::array_t<T, py::array::c_style> out({N, M});
    if (N * M > 0) {
      py::gil_scoped_release release;
      box_iou_kernel<T>(a.data(), N, b.data(), M, out.mutable_data(), generalized);
    }
    return out;
  };
  return float_kind(b1, op, "boxes1") == Float::f32 ? run(0.0f) : run(0.0);
}

py::array nms_py(const py::handle& bo, const py::handle& so, double thr) {
  py::array b = boxes_arg(bo, "nms", "boxes");
  py::array s = as_array(so, "nms", "scores");
  float_kind(s, "nms", "scores");
  check_same_dtype(b, s, "nms", "boxes", "scores");
  if (s.ndim() != 1 || s.shape(0) != b.shape(0))
    throw py::value_error("nms: scores must have shape (" + std::to_string(b.shape(0)) + ",), got " + shape_str(s));
  auto run = [&](auto zero) -> py::array {
    using T = decltype(zero);
    auto bc = contiguous<T>(b), sc = contiguous<T>(s);
    const int64_t n = bc.shape(0);
    std::vector<int64_t> keep;
    {
      py::gil_scoped_release release;
      std::vector<int64_t> order;
      score_order(sc.data(), n, order);
      keep.reserve(n);
      nms_sorted<T>(bc.data(), order.data(), n, thr, keep);
    }
    py::array_t<int64_t> out(static_cast<py::ssize_t>(keep.size()));
    std::copy(keep.begin(), keep.end(), out.mutable_data());
    return out;
  };
  return float_kind(b, "nms", "boxes") == Float::f32 ? run(0.0f) : run(0.0);
}

py::array batched_nms_py(const py::handle& bo, const py::handle& so, const py::handle& io, double thr) {
  py::array b = boxes_arg(bo, "batched_nms", "boxes");
  py::array s = as_array(so, "batched_nms", "scores");
  float_kind(s, "batched_nms", "scores");
  check_same_dtype(b, s, "batched_nms", "boxes", "scores");
  const int64_t n = b.shape(0);
  if (s.ndim() != 1 || s.shape(0) != n)
    throw py::value_error("batched_nms: scores must have shape (" + std::to_string(n) + ",), got " + shape_str(s));
  py::array ia = as_array(io, "batched_nms", "idxs");
  if (ia.dtype().kind() != 'i' && ia.dtype().kind() != 'u' && ia.dtype().kind() != 'b')
    throw py::type_error("batched_nms: idxs must be an integer array, got " + dtype_str(ia));
  if (ia.ndim() != 1 || ia.shape(0) != n)
    throw py::value_error("batched_nms: idxs must have shape (" + std::to_string(n) + ",), got " + shape_str(ia));
  auto ic = py::reinterpret_borrow<py::array_t<int64_t, py::array::c_style>>(
      py::module_::import("numpy").attr("require")(ia, py::dtype::of<int64_t>(), "CA"));
  auto run = [&](auto zero) -> py::array {
    using T = decltype(zero);
    auto bc = contiguous<T>(b), sc = contiguous<T>(s);
    std::vector<int64_t> keep;
    {
      py::gil_scoped_release release;
      std::vector<int64_t> order;
      score_order(sc.data(), n, order);
      const int64_t* cls = ic.data();
      // bucket the score order by category (stable: each bucket stays in score order)
      std::vector<int64_t> by_cls(order);
      std::stable_sort(by_cls.begin(), by_cls.end(), [cls](int64_t i, int64_t j) { return cls[i] < cls[j]; });
      std::vector<int64_t> rank(n);
      for (int64_t p = 0; p < n; ++p) rank[order[p]] = p;
      keep.reserve(n);
      for (int64_t lo = 0; lo < n;) {
        int64_t hi = lo;
        while (hi < n && cls[by_cls[hi]] == cls[by_cls[lo]]) ++hi;
        nms_sorted<T>(bc.data(), by_cls.data() + lo, hi - lo, thr, keep);
        lo = hi;
      }
      std::sort(keep.begin(), keep.end(), [&rank](int64_t i, int64_t j) { return rank[i] < rank[j]; });
    }
    py::array_t<int64_t> out(static_cast<py::ssize_t>(keep.size()));
    std::copy(keep.begin(), keep.end(), out.mutable_data());
    return out;
  };
  return float_kind(b, "batched_nms", "boxes") == Float::f32 ? run(0.0f) : run(0.0);
}

}  // namespace

void bind_roi(py::module_& m);  // csrc/cpu/boxes_roi.cpp

void bind_boxes(py::module_& m) {
  m.def("box_iou", [](py::handle a, py::handle b) { return box_iou_py(a, b, false); }, py::arg("boxes1"),
        py::arg("boxes2"));
  m.def("generalized_box_iou", [](py::handle a, py::handle b) { return box_iou_py(a, b, true); }, py::arg("boxes1"),
        py::arg("boxes2"));
  m.def("nms", &nms_py, py::arg("boxes"), py::arg("scores"), py::arg("iou_threshold"));
  m.def("batched_nms", &batched_nms_py, py::arg("boxes"), py::arg("scores"), py::arg("idxs"),
        py::arg("iou_threshold"));
  bind_roi(m);
  m.def("_nms_grain", [](int64_t grain) {  // private, for tests: returns the previous grain
    if (grain < 1) throw py::value_error("_nms_grain: grain must be positive");
    return nms_grain.exchange(grain);
  });
}

}  // namespace pydl
