// up-sampling family on the CPU: upsample_nearest2d and upsample_bilinear2d (forward and
// backward), pixel_shuffle and pixel_unshuffle.
//
// What it computes (PyTorch's rules, csrc/include/pydl/upsample.h):
//   nearest   out[p, i, j] = x[p, sh(i), sw(j)]
//   bilinear  out[p, i, j] = a0(i) (b0(j) x[h0, w0] + b1(j) x[h0, w1]) + a1(i) (b0(j) x[h1, w0] + b1(j) x[h1, w1])
//   backward: each output's gradient goes back to the inputs it read, with the same
//   weights (several outputs read each input, so the backward accumulates).
//   pixel_shuffle (*, C r^2, H, W) -> (*, C, H r, W r): out[c, h r + i, w r + j] = x[c r^2 + i r + j, h, w];
//   pixel_unshuffle is its inverse, and each one's backward is the other.
//
// Dimension legend: P = N * C planes, (H, W) input plane, (OH, OW) output plane, r the
// shuffle factor.
//
// Algorithm: the source rows and columns (indices and weights) depend on the output
// position only, so they are computed once per call (OH + OW taps), then every plane is
// a table look-up; planes split across threads. The backward zeroes its grad_in plane and
// scatters into it (one plane per thread at a time: no atomics, results independent of
// the thread count).
//
// Workspace: the OH + OW taps.
//
// Checked by tests/kernels/test_upsample.py: parity with pydl/kernels/reference/upsample.py
// for up- and down-sizing, align_corners both ways, explicit scales, sizes 1, 7 and 33,
// empty batches, float32 and float64, bad arguments.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "pydl/checks.h"
#include "pydl/parallel.h"
#include "pydl/upsample.h"

namespace pydl {
namespace py = pybind11;

namespace {

// Elements a thread must get before a second one is used: these kernels stream memory, so
// a second thread saves at most ~half of a pass (~0.35 ms per 2M float32 on one core),
// while waking it costs milliseconds whenever another process holds the other core.
constexpr int64_t kGrain = int64_t(1) << 21;

template <typename T>
using Arr = py::array_t<T, py::array::c_style>;

using Pair = std::array<int64_t, 2>;

Pair size_pair(const py::handle& v, const char* op, const char* name) {
  try {
    if (py::isinstance<py::tuple>(v) || py::isinstance<py::list>(v)) {
      py::sequence s = py::reinterpret_borrow<py::sequence>(v);
      if (s.size() == 2) return {s[0].cast<int64_t>(), s[1].cast<int64_t>()};
    }
  } catch (const py::cast_error&) {
  }
  throw py::value_error(std::string(op) + ": " + name + " must be a pair (OH, OW), got " +
                        py::repr(v).cast<std::string>());
}

// scales: None or a pair of (float or None); <= 0 means "from the sizes".
std::array<double, 2> scales_arg(const py::object& v, const char* op) {
  std::array<double, 2> r{0.0, 0.0};
  if (v.is_none()) return r;
  try {
    py::sequence s = py::reinterpret_borrow<py::sequence>(v);
    if (!py::isinstance<py::sequence>(v) || s.size() != 2) throw py::cast_error();
    for (int i = 0; i < 2; ++i) r[i] = s[i].is_none() ? 0.0 : s[i].cast<double>();
  } catch (const py::cast_error&) {
    throw py::value_error(std::string(op) + ": scales must be a pair (scale_h, scale_w) or None, got " +
                          py::repr(v).cast<std::string>());
  }
  return r;
}

struct Resize {
  int64_t P, H, W, OH, OW;
};

void check_sizes(const char* op, int64_t H, int64_t W, int64_t OH, int64_t OW) {
  if (H <= 0 || W <= 0 || OH <= 0 || OW <= 0)
    throw py::value_error(std::string(op) + ": input and output sizes must be positive, got input (H: " +
                          std::to_string(H) + ", W: " + std::to_string(W) + ") output (H: " + std::to_string(OH) +
                          ", W: " + std::to_string(OW) + ")");
}

// The resize problem of a forward: input (N, C, H, W) and output_size.
Resize forward_problem(const py::array& x, const py::object& output_size, const char* op) {
  if (x.ndim() != 4)
    throw py::value_error(std::string(op) + ": input must have 4 dimensions (N, C, H, W), got shape " + shape_str(x));
  Pair o = size_pair(output_size, op, "output_size");
  check_sizes(op, x.shape(2), x.shape(3), o[0], o[1]);
  return {x.shape(0) * x.shape(1), x.shape(2), x.shape(3), o[0], o[1]};
}

// The resize problem of a backward: grad_out (N, C, OH, OW) and input_size (N, C, H, W) or (H, W).
Resize backward_problem(const py::array& g, const py::object& input_size, const char* op) {
  if (g.ndim() != 4)
    throw py::value_error(std::string(op) + ": grad_out must have 4 dimensions (N, C, OH, OW), got shape " +
                          shape_str(g));
  std::vector<int64_t> s;
  try {
    for (auto v : py::reinterpret_borrow<py::iterable>(input_size)) s.push_back(v.cast<int64_t>());
  } catch (const std::exception&) {
    s.clear();
  }
  if (s.size() != 2 && s.size() != 4)
    throw py::value_error(std::string(op) + ": input_size must be (N, C, H, W) or (H, W), got " +
                          py::repr(input_size).cast<std::string>());
  if (s.size() == 4 && (s[0] != g.shape(0) || s[1] != g.shape(1)))
    throw py::value_error(std::string(op) + ": input_size " + py::repr(input_size).cast<std::string>() +
                          " does not match grad_out of shape " + shape_str(g));
  const int64_t H = s[s.size() - 2], W = s[s.size() - 1];
  check_sizes(op, H, W, g.shape(2), g.shape(3));
  return {g.shape(0) * g.shape(1), H, W, g.shape(2), g.shape(3)};
}

int plane_threads(int64_t P, int64_t per_plane) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads_for(P * per_plane, kGrain), P)));
}

// ---------------------------------------------------------------------------------------
// nearest
// ---------------------------------------------------------------------------------------

template <typename T>
void nearest_forward(const T* x, T* out, const Resize& s, const std::vector<int64_t>& rows,
                     const std::vector<int64_t>& cols) {
  const int t = plane_threads(s.P, s.OH * s.OW);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
  for (int64_t p = 0; p < s.P; ++p) {
    const T* xp = x + p * s.H * s.W;  // (H, W)
    T* op = out + p * s.OH * s.OW;    // (OH, OW)
    for (int64_t i = 0; i < s.OH; ++i) {
      const T* xr = xp + rows[i] * s.W;
      for (int64_t j = 0; j < s.OW; ++j) op[i * s.OW + j] = xr[cols[j]];
    }
  }
}

template <typename T>
void nearest_backward(const T* g, T* gi, const Resize& s, const std::vector<int64_t>& rows,
                      const std::vector<int64_t>& cols) {
  const int t = plane_threads(s.P, s.OH * s.OW + s.H * s.W);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
  for (int64_t p = 0; p < s.P; ++p) {
    T* ip = gi + p * s.H * s.W;  // (H, W)
    std::memset(ip, 0, sizeof(T) * s.H * s.W);
    const T* gp = g + p * s.OH * s.OW;  // (OH, OW)
    for (int64_t i = 0; i < s.OH; ++i) {
      T* ir = ip + rows[i] * s.W;
      for (int64_t j = 0; j < s.OW; ++j) ir[cols[j]] += gp[i * s.OW + j];
    }
  }
}

std::vector<int64_t> nearest_map(int64_t out, int64_t in, double scale) {
  std::vector<int64_t> m(out);
  for (int64_t i = 0; i < out; ++i) m[i] = nearest_source_index(i, in, out, scale);
  return m;
}

py::array upsample_nearest2d_forward_py(py::object input, py::object output_size, py::object scales) {
  const char* op = "upsample_nearest2d";
  py::array xa = as_array(input, op, "input");
  Float kind = float_kind(xa, op, "input");
  Resize s = forward_problem(xa, output_size, op);
  auto sc = scales_arg(scales, op);
  auto rows = nearest_map(s.OH, s.H, sc[0]), cols = nearest_map(s.OW, s.W, sc[1]);
  auto run = [&](auto tag) -> py::array {
    using T = decltype(tag);
    Arr<T> x = contiguous<T>(xa);
    Arr<T> out(std::vector<py::ssize_t>{xa.shape(0), xa.shape(1), s.OH, s.OW});
    if (s.P > 0) {
      py::gil_scoped_release release;
      nearest_forward<T>(x.data(), out.mutable_data(), s, rows, cols);
    }
    return out;
  };
  return kind == Float::f32 ? run(float{}) : run(double{});
}

py::array upsample_nearest2d_backward_py(py::object grad_out, py::object input_size, py::object scales) {
  const char* op = "upsample_nearest2d_backward";
  py::array ga = as_array(grad_out, op, "grad_out");
  Float kind = float_kind(ga, op, "grad_out");
  Resize s = backward_problem(ga, input_size, op);
  auto sc = scales_arg(scales, op);
  auto rows = nearest_map(s.OH, s.H, sc[0]), cols = nearest_map(s.OW, s.W, sc[1]);
  auto run = [&](auto tag) -> py::array {
    using T = decltype(tag);
    Arr<T> g = contiguous<T>(ga);
    Arr<T> gi(std::vector<py::ssize_t>{ga.shape(0), ga.shape(1), s.H, s.W});
    if (s.P > 0) {
      py::gil_scoped_release release;
      nearest_backward<T>(g.data(), gi.mutable_data(), s, rows, cols);
    }
    return gi;
  };
  return kind == Float::f32 ? run(float{}) : run(double{});
}

// ---------------------------------------------------------------------------------------
// bilinear
// ---------------------------------------------------------------------------------------

template <typename T>
std::vector<LinearTap<T>> taps(int64_t out, int64_t in, bool align_corners, double scale) {
  std::vector<LinearTap<T>> t(out);
  for (int64_t i = 0; i < out; ++i) t[i] = bilinear_tap<T>(i, in, out, align_corners, scale);
  return t;
}

template <typename T>
void bilinear_forward(const T* x, T* out, const Resize& s, const std::vector<LinearTap<T>>& rt,
                      const std::vector<LinearTap<T>>& ct) {
  const int t = plane_threads(s.P, 4 * s.OH * s.OW);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
  for (int64_t p = 0; p < s.P; ++p) {
    const T* xp = x + p * s.H * s.W;  // (H, W)
    T* op = out + p * s.OH * s.OW;    // (OH, OW)
    for (int64_t i = 0; i < s.OH; ++i) {
      const LinearTap<T> r = rt[i];
      const T* x0 = xp + r.i0 * s.W;
      const T* x1 = xp + r.i1 * s.W;
      for (int64_t j = 0; j < s.OW; ++j) {
        const LinearTap<T> c = ct[j];
        op[i * s.OW + j] = r.l0 * (c.l0 * x0[c.i0] + c.l1 * x0[c.i1]) + r.l1 * (c.l0 * x1[c.i0] + c.l1 * x1[c.i1]);
      }
    }
  }
}

template <typename T>
void bilinear_backward(const T* g, T* gi, const Resize& s, const std::vector<LinearTap<T>>& rt,
                       const std::vector<LinearTap<T>>& ct) {
  const int t = plane_threads(s.P, 4 * s.OH * s.OW + s.H * s.W);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
  for (int64_t p = 0; p < s.P; ++p) {
    T* ip = gi + p * s.H * s.W;  // (H, W)
    std::memset(ip, 0, sizeof(T) * s.H * s.W);
    const T* gp = g + p * s.OH * s.OW;  // (OH, OW)
    for (int64_t i = 0; i < s.OH; ++i) {
      const LinearTap<T> r = rt[i];
      T* g0 = ip + r.i0 * s.W;
      T* g1 = ip + r.i1 * s.W;
      for (int64_t j = 0; j < s.OW; ++j) {
        const LinearTap<T> c = ct[j];
        const T v = gp[i * s.OW + j];
        g0[c.i0] += r.l0 * c.l0 * v;
        g0[c.i1] += r.l0 * c.l1 * v;
        g1[c.i0] += r.l1 * c.l0 * v;
        g1[c.i1] += r.l1 * c.l1 * v;
      }
    }
  }
}

py::array upsample_bilinear2d_forward_py(py::object input, py::object output_size, bool align_corners,
                                         py::object scales) {
  const char* op = "upsample_bilinear2d";
  py::array xa = as_array(input, op, "input");
  Float kind = float_kind(xa, op, "input");
  Resize s = forward_problem(xa, output_size, op);
  auto sc = scales_arg(scales, op);
  auto run = [&](auto tag) -> py::array {
    using T = decltype(tag);
    auto rt = taps<T>(s.OH, s.H, align_corners, sc[0]);
    auto ct = taps<T>(s.OW, s.W, align_corners, sc[1]);
    Arr<T> x = contiguous<T>(xa);
    Arr<T> out(std::vector<py::ssize_t>{xa.shape(0), xa.shape(1), s.OH, s.OW});
    if (s.P > 0) {
      py::gil_scoped_release release;
      bilinear_forward<T>(x.data(), out.mutable_data(), s, rt, ct);
    }
    return out;
  };
  return kind == Float::f32 ? run(float{}) : run(double{});
}

py::array upsample_bilinear2d_backward_py(py::object grad_out, py::object input_size, bool align_corners,
                                          py::object scales) {
  const char* op = "upsample_bilinear2d_backward";
  py::array ga = as_array(grad_out, op, "grad_out");
  Float kind = float_kind(ga, op, "grad_out");
  Resize s = backward_problem(ga, input_size, op);
  auto sc = scales_arg(scales, op);
  auto run = [&](auto tag) -> py::array {
    using T = decltype(tag);
    auto rt = taps<T>(s.OH, s.H, align_corners, sc[0]);
    auto ct = taps<T>(s.OW, s.W, align_corners, sc[1]);
    Arr<T> g = contiguous<T>(ga);
    Arr<T> gi(std::vector<py::ssize_t>{ga.shape(0), ga.shape(1), s.H, s.W});
    if (s.P > 0) {
      py::gil_scoped_release release;
      bilinear_backward<T>(g.data(), gi.mutable_data(), s, rt, ct);
    }
    return gi;
  };
  return kind == Float::f32 ? run(float{}) : run(double{});
}

// ---------------------------------------------------------------------------------------
// pixel shuffle
// ---------------------------------------------------------------------------------------

// shuffle: (B, C r^2, H, W) -> (B, C, H r, W r); unshuffle the inverse. B = the leading
// axes flattened.
template <typename T>
void pixel_shuffle_kernel(const T* x, T* y, int64_t B, int64_t C, int64_t H, int64_t W, int64_t r, bool inverse) {
  const int64_t rows = B * C * H * r;  // output rows of the shuffled layout, (B, C, H, r)
  const int t = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads_for(rows * W * r, kGrain), rows)));
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
  for (int64_t q = 0; q < rows; ++q) {
    const int64_t i = q % r, h = (q / r) % H, bc = q / (r * H);  // bc = b * C + c
    const int64_t big = q * W * r;  // row h r + i of the large plane bc: (W r,)
    for (int64_t j = 0; j < r; ++j) {
      const int64_t small = ((bc * r * r + i * r + j) * H + h) * W;  // row h of small plane bc r^2 + i r + j: (W,)
      if (!inverse)
        for (int64_t w = 0; w < W; ++w) y[big + w * r + j] = x[small + w];
      else
        for (int64_t w = 0; w < W; ++w) y[small + w] = x[big + w * r + j];
    }
  }
}

py::array pixel_shuffle_py(py::object input, int64_t factor, bool inverse) {
  const char* op = inverse ? "pixel_unshuffle" : "pixel_shuffle";
  const char* fname = inverse ? "downscale_factor" : "upscale_factor";
  py::array xa = as_array(input, op, "input");
  Float kind = float_kind(xa, op, "input");
  if (factor <= 0) throw py::value_error(std::string(op) + ": " + fname + " must be positive, got " + std::to_string(factor));
  const int nd = static_cast<int>(xa.ndim());
  if (nd < 3)
    throw py::value_error(std::string(op) + ": input must have at least 3 dimensions (*, C, H, W), got shape " +
                          shape_str(xa));
  const int64_t r = factor;
  int64_t B = 1;
  for (int i = 0; i < nd - 3; ++i) B *= xa.shape(i);
  std::vector<py::ssize_t> oshape(xa.shape(), xa.shape() + nd);
  int64_t C, H, W;  // of the small (channels-heavy) layout
  if (!inverse) {
    if (xa.shape(nd - 3) % (r * r))
      throw py::value_error(std::string(op) + ": the input's " + std::to_string(xa.shape(nd - 3)) +
                            " channels must be divisible by upscale_factor**2 = " + std::to_string(r * r));
    C = xa.shape(nd - 3) / (r * r), H = xa.shape(nd - 2), W = xa.shape(nd - 1);
    oshape[nd - 3] = C, oshape[nd - 2] = H * r, oshape[nd - 1] = W * r;
  } else {
    if (xa.shape(nd - 2) % r || xa.shape(nd - 1) % r)
      throw py::value_error(std::string(op) + ": the input's height " + std::to_string(xa.shape(nd - 2)) +
                            " and width " + std::to_string(xa.shape(nd - 1)) +
                            " must be divisible by downscale_factor " + std::to_string(r));
    C = xa.shape(nd - 3), H = xa.shape(nd - 2) / r, W = xa.shape(nd - 1) / r;
    oshape[nd - 3] = C * r * r, oshape[nd - 2] = H, oshape[nd - 1] = W;
  }
  auto run = [&](auto tag) -> py::array {
    using T = decltype(tag);
    Arr<T> x = contiguous<T>(xa);
    Arr<T> y(oshape);
    if (y.size() > 0) {
      py::gil_scoped_release release;
      pixel_shuffle_kernel<T>(x.data(), y.mutable_data(), B, C, H, W, r, inverse);
    }
    return y;
  };
  return kind == Float::f32 ? run(float{}) : run(double{});
}

}  // namespace

void bind_upsample(py::module_& m) {
  m.def("upsample_nearest2d_forward", &upsample_nearest2d_forward_py, py::arg("input"), py::arg("output_size"),
        py::arg("scales") = py::none(), "Nearest resize (N, C, H, W) -> (N, C, OH, OW), PyTorch's index rule.");
  m.def("upsample_nearest2d_backward", &upsample_nearest2d_backward_py, py::arg("grad_out"), py::arg("input_size"),
        py::arg("scales") = py::none(), "Gradient of upsample_nearest2d.");
  m.def("upsample_bilinear2d_forward", &upsample_bilinear2d_forward_py, py::arg("input"), py::arg("output_size"),
        py::arg("align_corners"), py::arg("scales") = py::none(), "Bilinear resize (N, C, H, W) -> (N, C, OH, OW).");
  m.def("upsample_bilinear2d_backward", &upsample_bilinear2d_backward_py, py::arg("grad_out"), py::arg("input_size"),
        py::arg("align_corners"), py::arg("scales") = py::none(), "Gradient of upsample_bilinear2d.");
  m.def("pixel_shuffle_forward", [](py::object x, int64_t r) { return pixel_shuffle_py(x, r, false); },
        py::arg("input"), py::arg("upscale_factor"), "(*, C r^2, H, W) -> (*, C, H r, W r).");
  m.def("pixel_shuffle_backward", [](py::object g, int64_t r) { return pixel_shuffle_py(g, r, true); },
        py::arg("grad_out"), py::arg("upscale_factor"), "Gradient of pixel_shuffle (pixel_unshuffle of grad_out).");
  m.def("pixel_unshuffle_forward", [](py::object x, int64_t r) { return pixel_shuffle_py(x, r, true); },
        py::arg("input"), py::arg("downscale_factor"), "(*, C, H r, W r) -> (*, C r^2, H, W).");
  m.def("pixel_unshuffle_backward", [](py::object g, int64_t r) { return pixel_shuffle_py(g, r, false); },
        py::arg("grad_out"), py::arg("downscale_factor"), "Gradient of pixel_unshuffle (pixel_shuffle of grad_out).");
}

}  // namespace pydl
