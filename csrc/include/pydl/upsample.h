// up-sampling family: PyTorch's source-index rules for 'nearest' and 'bilinear', once, for
// the CPU (csrc/cpu/upsample.cpp) and GPU kernels. The NumPy twin is
// pydl/kernels/reference/upsample.py.
//
// `scale` is the caller's scale_factor for that axis (F.interpolate(scale_factor=s)), or
// <= 0 when the output size was given: PyTorch then uses in / out, else 1 / s.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "pydl/host_device.h"

namespace pydl {

// 'nearest': min(floor(dst * s), in - 1), computed in float whatever the data type (as
// PyTorch does), with its two exact shortcuts: out == in copies, out == 2 in halves.
PYDL_HOST_DEVICE inline int64_t nearest_source_index(int64_t dst, int64_t in, int64_t out, double scale) {
  if (out == in) return dst;
  if (out == 2 * in) return dst >> 1;
  const float s = scale > 0 ? static_cast<float>(1.0 / scale) : static_cast<float>(in) / static_cast<float>(out);
  const int64_t src = static_cast<int64_t>(floorf(static_cast<float>(dst) * s));
  return src < in - 1 ? src : in - 1;
}

// 'bilinear' along one axis: the two inputs an output reads and their weights.
template <typename T>
struct LinearTap {
  int64_t i0, i1;
  T l0, l1;
};

// align_corners: src = dst (in - 1) / (out - 1); else src = max((dst + 0.5) r - 0.5, 0)
// with r = 1 / scale or in / out. i0 = floor(src) (clamped), i1 = i0 + 1 unless at the
// edge, l1 = src - i0. out == in copies (PyTorch's shortcut).
template <typename T>
PYDL_HOST_DEVICE inline LinearTap<T> bilinear_tap(int64_t dst, int64_t in, int64_t out, bool align_corners,
                                                   double scale) {
  if (out == in) return {dst, dst, T(1), T(0)};
  T src;
  if (align_corners) {
    const T r = out > 1 ? static_cast<T>(in - 1) / static_cast<T>(out - 1) : T(0);
    src = r * static_cast<T>(dst);
  } else {
    const T r = scale > 0 ? static_cast<T>(1.0 / scale) : static_cast<T>(in) / static_cast<T>(out);
    src = r * (static_cast<T>(dst) + T(0.5)) - T(0.5);
    if (src < 0) src = 0;
  }
  int64_t i0 = static_cast<int64_t>(std::floor(src));
  if (i0 > in - 1) i0 = in - 1;
  T l1 = src - static_cast<T>(i0);
  l1 = l1 < 0 ? T(0) : (l1 > 1 ? T(1) : l1);
  return {i0, i0 < in - 1 ? i0 + 1 : i0, T(1) - l1, l1};
}

}  // namespace pydl
