// Box geometry shared by the CPU and CUDA detection kernels: the per-pair IoU lives here
// once, so the two devices cannot drift apart (see pydl/kernels/reference/boxes.py for the
// defined behaviour on degenerate, inverted and NaN boxes).
#pragma once

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

}  // namespace pydl
