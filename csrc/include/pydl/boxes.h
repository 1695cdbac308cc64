// Box geometry shared by the CPU and CUDA detection kernels: the per-pair IoU lives here
// once, so the two devices cannot drift apart (see pydl/kernels/reference/boxes.py for the
// defined behaviour on degenerate, inverted and NaN boxes).
//
// Also here, for the same reason: the generalized IoU of a pair, and the RoI Align / RoI
// pool geometry (the sample grid of a bin and its bilinear taps, the rounded bins of RoI
// pool), computed in double on both devices so float32 and float64 see the same taps.
#pragma once

#include <cmath>
#include <cstdint>

#include "pydl/host_device.h"

namespace pydl {

// NaN-propagating-or-not does not matter for the results below: every NaN path ends in a
// union that is not > 0 (the area term carries the NaN), hence an IoU of 0.
template <typename T>
PYDL_HOST_DEVICE inline T box_min(T a, T b) { return b < a ? b : a; }
template <typename T>
PYDL_HOST_DEVICE inline T box_max(T a, T b) { return a < b ? b : a; }

// max(x2 - x1, 0) * max(y2 - y1, 0): inverted boxes have area 0; NaN stays NaN.
template <typename T>
PYDL_HOST_DEVICE inline T box_area_clamped(T x1, T y1, T x2, T y2) {
  T w = x2 - x1, h = y2 - y1;
  return (w < T(0) ? T(0) : w) * (h < T(0) ? T(0) : h);
}

// Intersection area of two boxes (0 when they do not overlap).
template <typename T>
PYDL_HOST_DEVICE inline T box_intersection(T ax1, T ay1, T ax2, T ay2, T bx1, T by1, T bx2, T by2) {
  T iw = box_min(ax2, bx2) - box_max(ax1, bx1);
  T ih = box_min(ay2, by2) - box_max(ay1, by1);
  return (iw > T(0) ? iw : T(0)) * (ih > T(0) ? ih : T(0));
}

// IoU from the intersection and the two clamped areas: inter / union when union > 0, else 0
// (zero-area, inverted and NaN boxes). The division is computed unconditionally and then
// selected, so loops over boxes vectorise.
template <typename T>
PYDL_HOST_DEVICE inline T iou_from_parts(T inter, T area_a, T area_b) {
  T uni = area_a + area_b - inter;
  T q = inter / uni;
  return uni > T(0) ? q : T(0);
}

// IoU of boxes a and b, (x1, y1, x2, y2) each.
template <typename T>
PYDL_HOST_DEVICE inline T box_iou_pair(const T* a, const T* b) {
  T inter = box_intersection(a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]);
  return iou_from_parts(inter, box_area_clamped(a[0], a[1], a[2], a[3]), box_area_clamped(b[0], b[1], b[2], b[3]));
}

// Generalized IoU of boxes a and b from their coordinates and clamped areas:
// IoU - (|C| - |a u b|) / |C|, C the enclosing box; the IoU where |C| is not > 0 or the
// formula gives NaN (infinite boxes). Branch-free, so loops over boxes vectorise.
template <typename T>
PYDL_HOST_DEVICE inline T generalized_iou(T ax1, T ay1, T ax2, T ay2, T area_a, T bx1, T by1, T bx2, T by2,
                                          T area_b) {
  const T inter = box_intersection(ax1, ay1, ax2, ay2, bx1, by1, bx2, by2);
  const T iou = iou_from_parts(inter, area_a, area_b);
  const T uni = area_a + area_b - inter;
  const T cw = box_max(ax2, bx2) - box_min(ax1, bx1);
  const T ch = box_max(ay2, by2) - box_min(ay1, by1);
  const T ac = (cw > T(0) ? cw : T(0)) * (ch > T(0) ? ch : T(0));
  const T u = uni > T(0) ? uni : T(0);
  const T g = iou - (ac - u) / ac;
  return (ac > T(0)) & (g == g) ? g : iou;
}

// --------------------------------------------------------------------------------------
// RoI Align: a RoI (batch index, x1, y1, x2, y2) scaled by spatial_scale (- 0.5 when
// aligned; sides at least 1 when not) is cut into PH x PW bins of gh x gw samples each.
// --------------------------------------------------------------------------------------
struct RoiAlignGeom {
  int64_t n;              // batch index
  double x1, y1, bw, bh;  // corner and bin size, in feature-map cells
  int64_t gh, gw;         // samples per bin side
  double inv_count;       // 1 / (gh gw)
  bool valid;             // false for a RoI with a non-finite coordinate (every bin reads 0)
};

PYDL_HOST_DEVICE inline RoiAlignGeom roi_align_geom(const double* r, double scale, int64_t PH, int64_t PW,
                                                    int64_t sampling, bool aligned) {
  RoiAlignGeom g{};
  g.n = static_cast<int64_t>(r[0]);
  const double off = aligned ? 0.5 : 0.0;
  const double x1 = r[1] * scale - off, y1 = r[2] * scale - off, x2 = r[3] * scale - off, y2 = r[4] * scale - off;
  g.valid = std::isfinite(x1) && std::isfinite(y1) && std::isfinite(x2) && std::isfinite(y2);
  if (!g.valid) return g;
  double rw = x2 - x1, rh = y2 - y1;
  if (!aligned) rw = rw < 1.0 ? 1.0 : rw, rh = rh < 1.0 ? 1.0 : rh;
  g.x1 = x1, g.y1 = y1, g.bh = rh / PH, g.bw = rw / PW;
  g.gh = sampling > 0 ? sampling : static_cast<int64_t>(std::ceil(rh / PH));
  g.gw = sampling > 0 ? sampling : static_cast<int64_t>(std::ceil(rw / PW));
  const int64_t count = g.gh * g.gw;
  g.inv_count = 1.0 / static_cast<double>(count > 1 ? count : 1);
  return g;
}

// The four (offset, weight) taps of a sample at (y, x) in an H x W plane (torchvision's
// rule); false if the sample lies outside [-1, H] x [-1, W] or is NaN.
PYDL_HOST_DEVICE inline bool bilinear_taps(double y, double x, int64_t H, int64_t W, int64_t off[4], double w[4]) {
  if (!(y >= -1.0 && y <= static_cast<double>(H) && x >= -1.0 && x <= static_cast<double>(W))) return false;
  y = y < 0.0 ? 0.0 : y, x = x < 0.0 ? 0.0 : x;
  int64_t ylo = static_cast<int64_t>(y), xlo = static_cast<int64_t>(x), yhi, xhi;
  if (ylo >= H - 1) ylo = yhi = H - 1, y = static_cast<double>(ylo);
  else yhi = ylo + 1;
  if (xlo >= W - 1) xlo = xhi = W - 1, x = static_cast<double>(xlo);
  else xhi = xlo + 1;
  const double ly = y - ylo, lx = x - xlo, hy = 1.0 - ly, hx = 1.0 - lx;
  off[0] = ylo * W + xlo, off[1] = ylo * W + xhi, off[2] = yhi * W + xlo, off[3] = yhi * W + xhi;
  w[0] = hy * hx, w[1] = hy * lx, w[2] = ly * hx, w[3] = ly * lx;
  return true;
}

// Calls f(offset, weight / count) for every tap of every sample of bin (ph, pw).
template <typename F>
PYDL_HOST_DEVICE inline void for_each_bin_tap(const RoiAlignGeom& g, int64_t H, int64_t W, int64_t ph, int64_t pw,
                                              F&& f) {
  if (!g.valid) return;
  int64_t off[4];
  double w[4];
  for (int64_t iy = 0; iy < g.gh; ++iy) {
    const double y = g.y1 + ph * g.bh + (iy + 0.5) * g.bh / g.gh;
    for (int64_t ix = 0; ix < g.gw; ++ix) {
      const double x = g.x1 + pw * g.bw + (ix + 0.5) * g.bw / g.gw;
      if (!bilinear_taps(y, x, H, W, off, w)) continue;
      for (int q = 0; q < 4; ++q) f(off[q], w[q] * g.inv_count);
    }
  }
}

// --------------------------------------------------------------------------------------
// RoI pool: the scaled RoI rounded to whole cells (half away from zero), cut into bins
// with floor / ceil edges, clipped to the map.
// --------------------------------------------------------------------------------------
PYDL_HOST_DEVICE inline int64_t round_half_away(double v) {
  return static_cast<int64_t>(v >= 0 ? std::floor(v + 0.5) : -std::floor(-v + 0.5));
}

struct RoiPoolGeom {
  int64_t sh, sw;  // first cell row / column of the rounded RoI
  double bh, bw;   // bin size in cells
  bool valid;      // false for a RoI with a non-finite coordinate (empty bins)
};

PYDL_HOST_DEVICE inline RoiPoolGeom roi_pool_geom(const double* r, double scale, int64_t PH, int64_t PW) {
  RoiPoolGeom g{};
  g.valid = std::isfinite(r[1]) && std::isfinite(r[2]) && std::isfinite(r[3]) && std::isfinite(r[4]);
  if (!g.valid) return g;
  g.sw = round_half_away(r[1] * scale), g.sh = round_half_away(r[2] * scale);
  const int64_t ew = round_half_away(r[3] * scale), eh = round_half_away(r[4] * scale);
  const int64_t rw = ew - g.sw + 1, rh = eh - g.sh + 1;
  g.bh = static_cast<double>(rh > 1 ? rh : 1) / PH, g.bw = static_cast<double>(rw > 1 ? rw : 1) / PW;
  return g;
}

// Cells [lo, hi) of bin p along one side: start + [floor(p bin), ceil((p + 1) bin)) in [0, size].
PYDL_HOST_DEVICE inline void roi_pool_bin(int64_t p, double bin, int64_t start, int64_t size, int64_t& lo,
                                          int64_t& hi) {
  lo = static_cast<int64_t>(std::floor(p * bin)) + start;
  hi = static_cast<int64_t>(std::ceil((p + 1) * bin)) + start;
  lo = lo < 0 ? 0 : (lo > size ? size : lo);
  hi = hi < 0 ? 0 : (hi > size ? size : hi);
}

}  // namespace pydl
