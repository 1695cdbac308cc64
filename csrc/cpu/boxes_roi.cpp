// RoI Align and RoI pool on the CPU (the detection family's crops; see csrc/cpu/boxes.cpp
// for the box kernels). forward and backward.
//
// What it computes (torchvision's rules, pydl/kernels/reference/boxes.py):
//   roi_align out[k, c, ph, pw] = (1 / (gh gw)) sum_{iy < gh, ix < gw} bilinear(x[n_k, c], y, x) at
//             y = y1 + ph bh + (iy + 0.5) bh / gh (x likewise); RoI = rois[k, 1:] * spatial_scale
//             (- 0.5 when aligned; sides at least 1 when not); gh = sampling_ratio or
//             ceil(roi_h / PH); samples outside [-1, H] x [-1, W] or NaN read 0.
//   roi_pool  out[k, c, ph, pw] = max over the bin's cells of x[n_k, c] (RoI rounded half away
//             from zero; bin edges floor / ceil), argmax = h * W + w (first on ties), -1 and
//             0 for an empty bin; a RoI with a non-finite coordinate gives empty bins.
//   backward: the adjoint scatters (bilinear weights / the argmax cell).
//
// Dimension legend: K RoIs (rois (K, 5) = batch index, x1, y1, x2, y2), (N, C, H, W)
// feature map, (PH, PW) pooled size, (gh, gw) samples per bin.
//
// Algorithm: the sample geometry in double (as the reference), so float32 and float64 see
// the same taps; sums in double. Forward: (RoI, channel) planes split across threads.
// Backward: channels split across threads: all RoIs of a channel scatter into that
// channel's planes only (no atomics; results do not depend on the thread count).
//
// Workspace: forward, PH * PW doubles per plane; backward, none beyond grad_input.
//
// Checked by tests/vision/test_roi_align.py: parity with the reference (forward and
// backward, float32 and float64, aligned, fixed and adaptive sampling, RoIs over the edge,
// NaN / inverted RoIs, K = 0), gradcheck through autograd, threads, bad arguments.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "pydl/boxes.h"
#include "pydl/checks.h"
#include "pydl/parallel.h"

namespace pydl {
namespace py = pybind11;

namespace {
// --------------------------------------------------------------------------------------
// RoI Align / RoI pool
// --------------------------------------------------------------------------------------
// The RoI geometry (RoiAlignGeom, bilinear taps, RoiPoolGeom) is in pydl/boxes.h, shared
// with the CUDA kernels.

// Calls f(ph, pw, offset, weight) for every tap of every sample of the RoI.
template <typename F>
void for_each_tap(const RoiAlignGeom& g, int64_t H, int64_t W, int64_t PH, int64_t PW, F&& f) {
  for (int64_t ph = 0; ph < PH; ++ph)
    for (int64_t pw = 0; pw < PW; ++pw)
      for_each_bin_tap(g, H, W, ph, pw, [&](int64_t off, double wt) { f(ph, pw, off, wt); });
}

// rois (K, 5) as float64 with checked batch indices.
py::array_t<double, py::array::c_style> rois_arg(const py::handle& obj, int64_t N, const char* op) {
  py::array r = as_array(obj, op, "rois");
  float_kind(r, op, "rois");
  if (r.ndim() != 2 || r.shape(1) != 5)
    throw py::value_error(std::string(op) + ": rois must have shape (K, 5), got " + shape_str(r));
  auto rc = contiguous<double>(r);
  const double* p = rc.data();
  for (int64_t k = 0; k < rc.shape(0); ++k) {
    const double bi = p[5 * k];
    if (!(bi >= 0 && bi < static_cast<double>(N) && bi == std::floor(bi)))
      throw py::value_error(std::string(op) + ": rois[:, 0] must hold batch indices in [0, " + std::to_string(N) +
                            "), got " + py::str(py::float_(bi)).cast<std::string>() + " at row " + std::to_string(k));
  }
  return rc;
}

std::pair<int64_t, int64_t> output_size_arg(const py::object& o, const char* op) {
  std::vector<int64_t> v;
  if (py::isinstance<py::int_>(o)) {
    v = {o.cast<int64_t>(), o.cast<int64_t>()};
  } else {
    for (auto item : o) v.push_back(item.cast<int64_t>());
  }
  if (v.size() != 2 || v[0] <= 0 || v[1] <= 0)
    throw py::value_error(std::string(op) + ": output_size must be two positive integers, got " +
                          py::str(o).cast<std::string>());
  return {v[0], v[1]};
}

py::array feature_arg(const py::handle& obj, const char* op, const char* name) {
  py::array x = as_array(obj, op, name);
  float_kind(x, op, name);
  if (x.ndim() != 4)
    throw py::value_error(std::string(op) + ": " + name + " must be (N, C, H, W), got " + shape_str(x));
  return x;
}

std::vector<int64_t> shape_arg(const py::object& o, const char* op) {
  std::vector<int64_t> v;
  for (auto item : o) v.push_back(item.cast<int64_t>());
  if (v.size() != 4 || *std::min_element(v.begin(), v.end()) < 0)
    throw py::value_error(std::string(op) + ": input_shape must be (N, C, H, W), got " +
                          py::str(o).cast<std::string>());
  return v;
}

py::array roi_align_forward_py(const py::handle& xo, const py::handle& ro, const py::object& osz, double scale,
                               int64_t sampling, bool aligned) {
  const char* op = "roi_align";
  py::array xa = feature_arg(xo, op, "input");
  auto [PH, PW] = output_size_arg(osz, op);
  auto run = [&](auto zero) -> py::array {
    using T = decltype(zero);
    auto x = contiguous<T>(xa);
    const int64_t N = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
    auto r = rois_arg(ro, N, op);
    const int64_t K = r.shape(0);
    py::array_t<T, py::array::c_style> out({K, C, PH, PW});
    if (K * C * PH * PW == 0) return out;
    const T* xp = x.data();
    const double* rp = r.data();
    T* op_ = out.mutable_data();
    py::gil_scoped_release release;
    if (H * W == 0) {
      std::fill(op_, op_ + K * C * PH * PW, T(0));
      return out;
    }
    const int t = threads_for(K * C, 4);
#pragma omp parallel for num_threads(t) if (t > 1) schedule(dynamic, 1)
    for (int64_t kc = 0; kc < K * C; ++kc) {
      const int64_t k = kc / C, c = kc % C;
      const RoiAlignGeom g = roi_align_geom(rp + 5 * k, scale, PH, PW, sampling, aligned);
      const T* plane = xp + (g.n * C + c) * H * W;
      T* o = op_ + kc * PH * PW;
      std::vector<double> acc(PH * PW, 0.0);
      for_each_tap(g, H, W, PH, PW, [&](int64_t ph, int64_t pw, int64_t off, double wt) {
        acc[ph * PW + pw] += wt * static_cast<double>(plane[off]);
      });
      for (int64_t q = 0; q < PH * PW; ++q) o[q] = static_cast<T>(acc[q]);
    }
    return out;
  };
  return float_kind(xa, op, "input") == Float::f32 ? run(0.0f) : run(0.0);
}

py::array roi_align_backward_py(const py::handle& go, const py::handle& ro, const py::object& shp, double scale,
                                int64_t sampling, bool aligned) {
  const char* op = "roi_align_backward";
  py::array ga = feature_arg(go, op, "grad_out");
  auto s = shape_arg(shp, op);
  const int64_t N = s[0], C = s[1], H = s[2], W = s[3];
  auto run = [&](auto zero) -> py::array {
    using T = decltype(zero);
    auto g = contiguous<T>(ga);
    auto r = rois_arg(ro, N, op);
    const int64_t K = r.shape(0), PH = g.shape(2), PW = g.shape(3);
    if (g.shape(0) != K || g.shape(1) != C)
      throw py::value_error(std::string(op) + ": grad_out must be (" + std::to_string(K) + ", " + std::to_string(C) +
                            ", PH, PW), got " + shape_str(g));
    py::array_t<T, py::array::c_style> dx({N, C, H, W});
    T* dp = dx.mutable_data();
    const T* gp = g.data();
    const double* rp = r.data();
    py::gil_scoped_release release;
    std::fill(dp, dp + N * C * H * W, T(0));
    if (K * PH * PW == 0 || H * W == 0) return dx;
    const int t = threads_for(C, 1);
#pragma omp parallel for num_threads(t) if (t > 1) schedule(static)
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t k = 0; k < K; ++k) {
        const RoiAlignGeom geo = roi_align_geom(rp + 5 * k, scale, PH, PW, sampling, aligned);
        T* plane = dp + (geo.n * C + c) * H * W;
        const T* gk = gp + (k * C + c) * PH * PW;
        for_each_tap(geo, H, W, PH, PW, [&](int64_t ph, int64_t pw, int64_t off, double wt) {
          plane[off] += static_cast<T>(wt * static_cast<double>(gk[ph * PW + pw]));
        });
      }
    }
    return dx;
  };
  return float_kind(ga, op, "grad_out") == Float::f32 ? run(0.0f) : run(0.0);
}

py::tuple roi_pool_forward_py(const py::handle& xo, const py::handle& ro, const py::object& osz, double scale) {
  const char* op = "roi_pool";
  py::array xa = feature_arg(xo, op, "input");
  auto [PH, PW] = output_size_arg(osz, op);
  auto run = [&](auto zero) -> py::tuple {
    using T = decltype(zero);
    auto x = contiguous<T>(xa);
    const int64_t N = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
    auto r = rois_arg(ro, N, op);
    const int64_t K = r.shape(0);
    py::array_t<T, py::array::c_style> out({K, C, PH, PW});
    py::array_t<int64_t, py::array::c_style> arg({K, C, PH, PW});
    const T* xp = x.data();
    const double* rp = r.data();
    T* op_ = out.mutable_data();
    int64_t* ap = arg.mutable_data();
    {
      py::gil_scoped_release release;
      const int t = threads_for(K * C, 4);
#pragma omp parallel for num_threads(t) if (t > 1) schedule(dynamic, 1)
      for (int64_t kc = 0; kc < K * C; ++kc) {
        const int64_t k = kc / C, c = kc % C;
        const double* rk = rp + 5 * k;
        T* o = op_ + kc * PH * PW;
        int64_t* a = ap + kc * PH * PW;
        std::fill(o, o + PH * PW, T(0));
        std::fill(a, a + PH * PW, int64_t(-1));
        const RoiPoolGeom geo = roi_pool_geom(rk, scale, PH, PW);
        if (!geo.valid) continue;
        const T* plane = xp + (static_cast<int64_t>(rk[0]) * C + c) * H * W;
        for (int64_t ph = 0; ph < PH; ++ph) {
          int64_t hs, he, ws, we;
          roi_pool_bin(ph, geo.bh, geo.sh, H, hs, he);
          for (int64_t pw = 0; pw < PW; ++pw) {
            roi_pool_bin(pw, geo.bw, geo.sw, W, ws, we);
            if (he <= hs || we <= ws) continue;
            T best = plane[hs * W + ws];
            int64_t idx = hs * W + ws;
            for (int64_t h = hs; h < he; ++h)
              for (int64_t w = ws; w < we; ++w)
                if (plane[h * W + w] > best) best = plane[h * W + w], idx = h * W + w;
            o[ph * PW + pw] = best, a[ph * PW + pw] = idx;
          }
        }
      }
    }
    return py::make_tuple(out, arg);
  };
  return float_kind(xa, op, "input") == Float::f32 ? run(0.0f) : run(0.0);
}

py::array roi_pool_backward_py(const py::handle& go, const py::handle& ao, const py::handle& ro,
                               const py::object& shp) {
  const char* op = "roi_pool_backward";
  py::array ga = feature_arg(go, op, "grad_out");
  py::array aa = as_array(ao, op, "argmax");
  auto s = shape_arg(shp, op);
  const int64_t N = s[0], C = s[1], H = s[2], W = s[3];
  if (aa.ndim() != 4 || !std::equal(aa.shape(), aa.shape() + 4, ga.shape()))
    throw py::value_error(std::string(op) + ": argmax must have grad_out's shape " + shape_str(ga) + ", got " +
                          shape_str(aa));
  auto run = [&](auto zero) -> py::array {
    using T = decltype(zero);
    auto g = contiguous<T>(ga);
    auto a = py::reinterpret_borrow<py::array_t<int64_t, py::array::c_style>>(
        py::module_::import("numpy").attr("require")(aa, py::dtype::of<int64_t>(), "CA"));
    auto r = rois_arg(ro, N, op);
    const int64_t K = r.shape(0), PH = g.shape(2), PW = g.shape(3);
    if (g.shape(0) != K || g.shape(1) != C)
      throw py::value_error(std::string(op) + ": grad_out must be (" + std::to_string(K) + ", " + std::to_string(C) +
                            ", PH, PW), got " + shape_str(g));
    const int64_t* ap = a.data();
    for (int64_t q = 0; q < K * C * PH * PW; ++q)
      if (ap[q] < -1 || ap[q] >= H * W)
        throw py::value_error(std::string(op) + ": argmax holds " + std::to_string(ap[q]) + ", outside [-1, " +
                              std::to_string(H * W) + ")");
    py::array_t<T, py::array::c_style> dx({N, C, H, W});
    T* dp = dx.mutable_data();
    const T* gp = g.data();
    const double* rp = r.data();
    py::gil_scoped_release release;
    std::fill(dp, dp + N * C * H * W, T(0));
    const int t = threads_for(C, 1);
#pragma omp parallel for num_threads(t) if (t > 1) schedule(static)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t k = 0; k < K; ++k) {
        T* plane = dp + (static_cast<int64_t>(rp[5 * k]) * C + c) * H * W;
        const int64_t base = (k * C + c) * PH * PW;
        for (int64_t q = 0; q < PH * PW; ++q)
          if (ap[base + q] >= 0) plane[ap[base + q]] += gp[base + q];
      }
    return dx;
  };
  return float_kind(ga, op, "grad_out") == Float::f32 ? run(0.0f) : run(0.0);
}

}  // namespace

void bind_roi(py::module_& m) {
  m.def("roi_align_forward", &roi_align_forward_py, py::arg("input"), py::arg("rois"), py::arg("output_size"),
        py::arg("spatial_scale") = 1.0, py::arg("sampling_ratio") = -1, py::arg("aligned") = false);
  m.def("roi_align_backward", &roi_align_backward_py, py::arg("grad_out"), py::arg("rois"), py::arg("input_shape"),
        py::arg("spatial_scale") = 1.0, py::arg("sampling_ratio") = -1, py::arg("aligned") = false);
  m.def("roi_pool_forward", &roi_pool_forward_py, py::arg("input"), py::arg("rois"), py::arg("output_size"),
        py::arg("spatial_scale") = 1.0);
  m.def("roi_pool_backward", &roi_pool_backward_py, py::arg("grad_out"), py::arg("argmax"), py::arg("rois"),
        py::arg("input_shape"));
}

}  // namespace pydl
