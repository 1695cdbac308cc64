// pooling family on the CPU: max_pool2d (with the arg-max), max_unpool2d, avg_pool2d,
// adaptive_avg_pool2d, adaptive_max_pool2d, fractional_max_pool2d; forward and backward.
//
// What it computes (PyTorch's rules, csrc/include/pydl/pool.h):
//   max:  out[p, oh, ow] = max over the window of x[p, h, w], idx = h * W + w of the winner
//         (first maximum in scan order; the last NaN wins); backward scatters
//         grad_in[p, idx] += grad_out[p, oh, ow] (the seeds' "max routes" gate).
//   avg:  out = sum of the window / divisor (divisor_override, or the window's size with or
//         without the padding); backward spreads grad_out / divisor over the window.
//   adaptive windows [floor(iL/n), ceil((i+1)L/n)); fractional windows start where
//   fractional_start() says, from the caller's samples.
//
// Dimension legend: P = N * C planes (contiguous NCHW makes every plane a contiguous
// H * W run), (H, W) input plane, (OH, OW) output plane, window (KH, KW), stride (SH, SW),
// padding (PH, PW), dilation (DH, DW).
//
// Algorithm: one plane at a time, planes split across threads (no two threads ever write
// the same plane, so the backward's scatter needs no atomics and results do not depend on
// the thread count). A plane of the canonical N64 64x56x56 problem is 12.5 KB, so a
// backward zeroes its grad_in plane and scatters into it while it sits in L1: grad_in is
// written to memory once. max_pool2d's forward plane is SIMD, branch-free, per ISA
// (csrc/cpu/pool_isa.cpp: a compare-and-branch per tap mispredicts on real data); the
// other pooling loops are plain scalar code.
//
// Workspace: none beyond the outputs (fractional pooling keeps two small vectors of window
// starts per thread).
//
// Checked by tests/kernels/test_pool.py: parity with pydl/kernels/reference/pool.py over
// kernel/stride/padding/dilation/ceil_mode/count_include_pad/divisor_override, odd sizes,
// ties and NaN, empty batches, float32 and float64, several thread counts, bad arguments.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "pydl/checks.h"
#include "pydl/parallel.h"
#include "pydl/pool.h"

namespace pydl {
namespace py = pybind11;

namespace {

// Elements a thread must get before a second one is used, as the pointwise kernels: in a
// training step the threads are awake from the convolution before, and LeNet-5's two
// pools (1.3M and 0.8M element-operations) took 1.4 -> 0.7 ms per step (fwd + bwd) when
// they went from one thread (a grain of 2M) to two. Waking an idle second thread costs
// milliseconds whenever another process holds the other core: smaller problems stay on one.
constexpr int64_t kGrain = int64_t(1) << 18;

using Pair = std::array<int64_t, 2>;

std::string pair_str(const Pair& p) { return "(" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ")"; }

// An int, or a sequence of one or two ints (PyTorch's _pair).
Pair pair_arg(const py::handle& v, const char* op, const char* name) {
  try {
    if (py::isinstance<py::tuple>(v) || py::isinstance<py::list>(v)) {
      py::sequence s = py::reinterpret_borrow<py::sequence>(v);
      if (s.size() == 1) return {s[0].cast<int64_t>(), s[0].cast<int64_t>()};
      if (s.size() == 2) return {s[0].cast<int64_t>(), s[1].cast<int64_t>()};
    } else if (!py::isinstance<py::float_>(v) && !py::isinstance<py::bool_>(v)) {
      int64_t a = v.cast<int64_t>();
      return {a, a};
    }
  } catch (const py::cast_error&) {
  }
  throw py::type_error(std::string(op) + ": " + name + " must be an int or a pair of ints, got " +
                       py::repr(v).cast<std::string>());
}

struct PoolParams {
  Pair k, s, p, d;
};

PoolParams pool_params(const char* op, const py::handle& kernel_size, const py::handle& stride,
                       const py::handle& padding, const py::handle& dilation) {
  PoolParams r;
  r.k = pair_arg(kernel_size, op, "kernel_size");
  bool no_stride = stride.is_none() || ((py::isinstance<py::tuple>(stride) || py::isinstance<py::list>(stride)) &&
                                        py::len(stride) == 0);
  r.s = no_stride ? r.k : pair_arg(stride, op, "stride");
  r.p = pair_arg(padding, op, "padding");
  r.d = pair_arg(dilation, op, "dilation");
  if (r.k[0] <= 0 || r.k[1] <= 0)
    throw py::value_error(std::string(op) + ": kernel_size must be positive, got " + pair_str(r.k));
  if (r.s[0] <= 0 || r.s[1] <= 0) throw py::value_error(std::string(op) + ": stride must be positive, got " + pair_str(r.s));
  if (r.d[0] <= 0 || r.d[1] <= 0)
    throw py::value_error(std::string(op) + ": dilation must be positive, got " + pair_str(r.d));
  if (r.p[0] < 0 || r.p[1] < 0)
    throw py::value_error(std::string(op) + ": padding must be non-negative, got " + pair_str(r.p));
  if (r.p[0] > r.k[0] / 2 || r.p[1] > r.k[1] / 2)
    throw py::value_error(std::string(op) + ": pad should be at most half of kernel size, but got padding=" +
                          pair_str(r.p) + ", kernel_size=" + pair_str(r.k));
  const int64_t big = int64_t(1) << 31;
  for (int i = 0; i < 2; ++i)
    if (r.k[i] >= big || r.s[i] >= big || r.p[i] >= big || r.d[i] >= big)
      throw py::value_error(std::string(op) + ": kernel_size, stride, padding and dilation must be below 2**31");
  return r;
}

// The pooled input: (N, C, H, W) or (C, H, W), float32/float64, C, H, W non-zero.
struct PoolInput {
  py::array x;
  Float kind;
  bool batched;
  int64_t N, C, H, W;
};

PoolInput pool_input(const py::handle& obj, const char* op, const char* arg = "input") {
  PoolInput in;
  in.x = as_array(obj, op, arg);
  in.kind = float_kind(in.x, op, arg);
  if (in.x.ndim() != 3 && in.x.ndim() != 4)
    throw py::value_error(std::string(op) + ": " + arg +
                          " must have 3 or 4 dimensions, (C, H, W) or (N, C, H, W), got shape " + shape_str(in.x));
  in.batched = in.x.ndim() == 4;
  const int o = in.batched ? 1 : 0;
  in.N = in.batched ? in.x.shape(0) : 1;
  in.C = in.x.shape(o);
  in.H = in.x.shape(o + 1);
  in.W = in.x.shape(o + 2);
  if (in.C == 0 || in.H == 0 || in.W == 0)
    throw py::value_error(std::string(op) + ": " + arg +
                          " must have non-zero C, H and W (only the batch may be empty), got shape " + shape_str(in.x));
  return in;
}

std::vector<py::ssize_t> out_shape(const PoolInput& in, int64_t OH, int64_t OW) {
  if (in.batched) return {in.N, in.C, OH, OW};
  return {in.C, OH, OW};
}

Pair output_size(const char* op, const PoolInput& in, const PoolParams& pp, bool ceil_mode) {
  Pair o{pool_output_size(in.H, pp.k[0], pp.s[0], pp.p[0], pp.d[0], ceil_mode),
         pool_output_size(in.W, pp.k[1], pp.s[1], pp.p[1], pp.d[1], ceil_mode)};
  if (o[0] < 1 || o[1] < 1)
    throw py::value_error(std::string(op) + ": output size is too small: input (" + std::to_string(in.H) + ", " +
                          std::to_string(in.W) + ") gives output " + pair_str(o) + " with kernel_size=" +
                          pair_str(pp.k) + ", stride=" + pair_str(pp.s) + ", padding=" + pair_str(pp.p) +
                          ", dilation=" + pair_str(pp.d) + " (the dilated window is larger than the padded input)");
  return o;
}

// An integer array as contiguous int64 (indices); floats and bools are refused.
py::array_t<int64_t, py::array::c_style> index_array(const py::handle& obj, const char* op, const char* arg) {
  py::array a = as_array(obj, op, arg);
  const char k = a.dtype().kind();
  if (k != 'i' && k != 'u')
    throw py::type_error(std::string(op) + ": " + arg + " must be an integer array (int64), got " + dtype_str(a));
  return contiguous<int64_t>(a);
}

std::vector<int64_t> shape_arg(const py::handle& obj, const char* op, const char* arg) {
  std::vector<int64_t> s;
  try {
    for (auto v : py::reinterpret_borrow<py::iterable>(obj)) s.push_back(v.cast<int64_t>());
  } catch (const py::error_already_set&) {
    throw py::type_error(std::string(op) + ": " + arg + " must be a sequence of ints, got " +
                         py::repr(obj).cast<std::string>());
  } catch (const py::cast_error&) {
    throw py::type_error(std::string(op) + ": " + arg + " must be a sequence of ints, got " +
                         py::repr(obj).cast<std::string>());
  }
  for (int64_t v : s)
    if (v < 0) throw py::value_error(std::string(op) + ": " + arg + " must not hold negative sizes");
  return s;
}

std::string shape_vec_str(const std::vector<int64_t>& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

// Threads for a loop over P planes costing `per_plane` element-operations each.
int plane_threads(int64_t P, int64_t per_plane) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads_for(P * per_plane, kGrain), P)));
}

// ---------------------------------------------------------------------------------------
// max pooling kernels
// ---------------------------------------------------------------------------------------

template <typename T>
void max_pool2d_kernel(const T* x, T* out, int64_t* idx, const Pool2dShape& s) {
  const auto plane = pick_pool<T>().max_pool_plane;  // csrc/cpu/pool_isa.cpp
  const int t = plane_threads(s.P, std::max<int64_t>(s.H * s.W, s.OH * s.OW * s.KH * s.KW));
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
  for (int64_t p = 0; p < s.P; ++p) {
    const T* xp = x + p * s.H * s.W;  // (H, W)
    T* op = out + p * s.OH * s.OW;    // (OH, OW)
    int64_t* ip = idx + p * s.OH * s.OW;
    plane(xp, op, ip, s);
  }
}

// grad_in[p, idx[p, j]] += grad_out[p, j]. Returns false (and leaves the offending plane
// partly written) when an index is outside [0, HW).
template <typename T>
bool max_pool2d_backward_kernel(const T* g, const int64_t* idx, T* grad_in, int64_t P, int64_t HW, int64_t OHW) {
  std::atomic<bool> ok{true};
  const int t = plane_threads(P, HW + OHW);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
  for (int64_t p = 0; p < P; ++p) {
    T* gi = grad_in + p * HW;  // (H, W), zeroed while it is in L1
    std::memset(gi, 0, sizeof(T) * HW);
    const T* gp = g + p * OHW;
    const int64_t* ip = idx + p * OHW;
    bool plane_ok = true;
    for (int64_t j = 0; j < OHW; ++j) {
      const int64_t i = ip[j];
      if (static_cast<uint64_t>(i) >= static_cast<uint64_t>(HW)) {
        plane_ok = false;
        continue;
      }
      gi[i] += gp[j];
    }
    if (!plane_ok) ok.store(false, std::memory_order_relaxed);
  }
  return ok.load();
}

// The first index outside [0, limit), for error messages.
int64_t first_bad_index(const int64_t* idx, int64_t n, int64_t limit) {
  for (int64_t j = 0; j < n; ++j)
    if (idx[j] < 0 || idx[j] >= limit) return idx[j];
  return 0;
}

py::tuple max_pool2d_forward_py(py::object input, py::object kernel_size, py::object stride, py::object padding,
                                py::object dilation, bool ceil_mode) {
  const char* op = "max_pool2d";
  PoolInput in = pool_input(input, op);
  PoolParams pp = pool_params(op, kernel_size, stride, padding, dilation);
  Pair o = output_size(op, in, pp, ceil_mode);
  Pool2dShape s{in.N * in.C, in.H, in.W, o[0], o[1], pp.k[0], pp.k[1], pp.s[0], pp.s[1],
                pp.p[0], pp.p[1], pp.d[0], pp.d[1]};
  auto run = [&](auto tag) -> py::tuple {
    using T = decltype(tag);
    auto x = contiguous<T>(in.x);
    py::array_t<T, py::array::c_style> out(out_shape(in, o[0], o[1]));
    py::array_t<int64_t, py::array::c_style> idx(out_shape(in, o[0], o[1]));
    if (s.P > 0) {
      py::gil_scoped_release release;
      max_pool2d_kernel<T>(x.data(), out.mutable_data(), idx.mutable_data(), s);
    }
    return py::make_tuple(out, idx);
  };
  return in.kind == Float::f32 ? run(float{}) : run(double{});
}

// Shared by max_pool2d, adaptive_max_pool2d and fractional_max_pool2d.
py::array max_pool2d_backward_py(py::object grad_out, py::object indices, py::object input_shape) {
  const char* op = "max_pool2d_backward";
  py::array g = as_array(grad_out, op, "grad_out");
  Float kind = float_kind(g, op, "grad_out");
  auto idx = index_array(indices, op, "indices");
  std::vector<int64_t> shape = shape_arg(input_shape, op, "input_shape");
  if ((shape.size() != 3 && shape.size() != 4) || static_cast<size_t>(g.ndim()) != shape.size())
    throw py::value_error(std::string(op) + ": input_shape " + shape_vec_str(shape) + " and grad_out of shape " +
                          shape_str(g) + " must both be (N, C, H, W) or (C, H, W)");
  if (idx.ndim() != g.ndim() || !std::equal(g.shape(), g.shape() + g.ndim(), idx.shape()))
    throw py::value_error(std::string(op) + ": indices must have the shape of grad_out " + shape_str(g) + ", got " +
                          shape_str(idx));
  for (size_t i = 0; i + 2 < shape.size(); ++i)
    if (g.shape(i) != shape[i])
      throw py::value_error(std::string(op) + ": grad_out of shape " + shape_str(g) + " does not match input_shape " +
                            shape_vec_str(shape));
  const int nd = static_cast<int>(shape.size());
  const int64_t H = shape[nd - 2], W = shape[nd - 1];
  const int64_t P = shape.size() == 4 ? shape[0] * shape[1] : shape[0];
  const int64_t OHW = g.shape(nd - 2) * g.shape(nd - 1);
  auto run = [&](auto tag) -> py::array {
    using T = decltype(tag);
    auto gc = contiguous<T>(g);
    py::array_t<T, py::array::c_style> grad_in(std::vector<py::ssize_t>(shape.begin(), shape.end()));
    bool ok = true;
    if (P * H * W > 0) {
      if (OHW == 0) {
        std::memset(grad_in.mutable_data(), 0, sizeof(T) * P * H * W);
      } else {
        py::gil_scoped_release release;
        ok = max_pool2d_backward_kernel<T>(gc.data(), idx.data(), grad_in.mutable_data(), P, H * W, OHW);
      }
    }
    if (!ok)
      throw py::value_error(std::string(op) + ": indices must lie in [0, " + std::to_string(H * W) +
                            ") (the input plane of " + std::to_string(H) + "x" + std::to_string(W) + "), found " +
                            std::to_string(first_bad_index(idx.data(), idx.size(), H * W)));
    return grad_in;
  };
  return kind == Float::f32 ? run(float{}) : run(double{});
}

// ---------------------------------------------------------------------------------------
// max_unpool2d
// ---------------------------------------------------------------------------------------

py::array max_unpool2d_forward_py(py::object input, py::object indices, py::object output_size_obj) {
  const char* op = "max_unpool2d";
  py::array xa = as_array(input, op, "input");
  Float kind = float_kind(xa, op, "input");
  if (xa.ndim() != 3 && xa.ndim() != 4)
    throw py::value_error(std::string(op) + ": input must have 3 or 4 dimensions, (C, H, W) or (N, C, H, W), got shape " +
                          shape_str(xa));
  auto idx = index_array(indices, op, "indices");
  if (idx.ndim() != xa.ndim() || !std::equal(xa.shape(), xa.shape() + xa.ndim(), idx.shape()))
    throw py::value_error(std::string(op) + ": indices must have the shape of input " + shape_str(xa) + ", got " +
                          shape_str(idx));
  Pair os = pair_arg(output_size_obj, op, "output_size");
  if (os[0] <= 0 || os[1] <= 0)
    throw py::value_error(std::string(op) + ": output_size must be positive, got " + pair_str(os));
  const int nd = static_cast<int>(xa.ndim());
  const int64_t P = nd == 4 ? xa.shape(0) * xa.shape(1) : xa.shape(0);
  const int64_t HW = xa.shape(nd - 2) * xa.shape(nd - 1), OHW = os[0] * os[1];
  std::vector<py::ssize_t> oshape(xa.shape(), xa.shape() + nd - 2);
  oshape.push_back(os[0]);
  oshape.push_back(os[1]);
  auto run = [&](auto tag) -> py::array {
    using T = decltype(tag);
    auto x = contiguous<T>(xa);
    py::array_t<T, py::array::c_style> out(oshape);
    std::atomic<bool> ok{true};
    if (P * OHW > 0) {
      py::gil_scoped_release release;
      const T* xp = x.data();
      const int64_t* ip = idx.data();
      T* op_ = out.mutable_data();
      const int t = plane_threads(P, HW + OHW);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
      for (int64_t p = 0; p < P; ++p) {
        T* o = op_ + p * OHW;  // (OH, OW)
        std::memset(o, 0, sizeof(T) * OHW);
        bool plane_ok = true;
        for (int64_t j = 0; j < HW; ++j) {
          const int64_t i = ip[p * HW + j];
          if (static_cast<uint64_t>(i) >= static_cast<uint64_t>(OHW)) {
            plane_ok = false;
            continue;
          }
          o[i] = xp[p * HW + j];  // a repeated index keeps the last value, as PyTorch's CPU loop does
        }
        if (!plane_ok) ok.store(false, std::memory_order_relaxed);
      }
    }
    if (!ok.load())
      throw py::value_error(std::string(op) + ": found an invalid max index " +
                            std::to_string(first_bad_index(idx.data(), idx.size(), OHW)) + " (the output planes are " +
                            std::to_string(os[0]) + "x" + std::to_string(os[1]) + ")");
    return out;
  };
  return kind == Float::f32 ? run(float{}) : run(double{});
}

py::array max_unpool2d_backward_py(py::object grad_out, py::object indices) {
  const char* op = "max_unpool2d_backward";
  py::array g = as_array(grad_out, op, "grad_out");
  Float kind = float_kind(g, op, "grad_out");
  auto idx = index_array(indices, op, "indices");
  const int nd = static_cast<int>(g.ndim());
  if ((nd != 3 && nd != 4) || idx.ndim() != nd || !std::equal(g.shape(), g.shape() + nd - 2, idx.shape()))
    throw py::value_error(std::string(op) + ": grad_out " + shape_str(g) + " and indices " + shape_str(idx) +
                          " must be (N, C, *, *) or (C, *, *) with the same leading dimensions");
  const int64_t P = nd == 4 ? g.shape(0) * g.shape(1) : g.shape(0);
  const int64_t OHW = g.shape(nd - 2) * g.shape(nd - 1), HW = idx.shape(nd - 2) * idx.shape(nd - 1);
  auto run = [&](auto tag) -> py::array {
    using T = decltype(tag);
    auto gc = contiguous<T>(g);
    py::array_t<T, py::array::c_style> grad_in(std::vector<py::ssize_t>(idx.shape(), idx.shape() + nd));
    std::atomic<bool> ok{true};
    if (P * HW > 0) {
      py::gil_scoped_release release;
      const T* gp = gc.data();
      const int64_t* ip = idx.data();
      T* gi = grad_in.mutable_data();
      const int t = plane_threads(P, HW);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
      for (int64_t p = 0; p < P; ++p) {
        bool plane_ok = true;
        for (int64_t j = 0; j < HW; ++j) {
          const int64_t i = ip[p * HW + j];
          if (static_cast<uint64_t>(i) >= static_cast<uint64_t>(OHW)) {
            plane_ok = false;
            gi[p * HW + j] = T(0);
            continue;
          }
          gi[p * HW + j] = gp[p * OHW + i];
        }
        if (!plane_ok) ok.store(false, std::memory_order_relaxed);
      }
    }
    if (!ok.load())
      throw py::value_error(std::string(op) + ": indices must lie in [0, " + std::to_string(OHW) + "), found " +
                            std::to_string(first_bad_index(idx.data(), idx.size(), OHW)));
    return grad_in;
  };
  return kind == Float::f32 ? run(float{}) : run(double{});
}

// ---------------------------------------------------------------------------------------
// avg_pool2d
// ---------------------------------------------------------------------------------------

template <typename T>
void avg_pool2d_kernel(const T* x, T* out, const Pool2dShape& s, bool cip, int64_t dov) {
  const int t = plane_threads(s.P, std::max<int64_t>(s.H * s.W, s.OH * s.OW * s.KH * s.KW));
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
  for (int64_t p = 0; p < s.P; ++p) {
    const T* xp = x + p * s.H * s.W;  // (H, W)
    T* op = out + p * s.OH * s.OW;    // (OH, OW)
    for (int64_t oh = 0; oh < s.OH; ++oh)
      for (int64_t ow = 0; ow < s.OW; ++ow) {
        AvgWindow a = avg_window(s, oh, ow, cip, dov);
        T sum = 0;
        for (int64_t h = a.h0; h < a.h1; ++h)
          for (int64_t w = a.w0; w < a.w1; ++w) sum += xp[h * s.W + w];
        op[oh * s.OW + ow] = (a.h0 < a.h1 && a.w0 < a.w1) ? sum / static_cast<T>(a.divisor) : T(0);
      }
  }
}

template <typename T>
void avg_pool2d_backward_kernel(const T* g, T* grad_in, const Pool2dShape& s, bool cip, int64_t dov) {
  const int t = plane_threads(s.P, std::max<int64_t>(s.H * s.W, s.OH * s.OW * s.KH * s.KW));
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
  for (int64_t p = 0; p < s.P; ++p) {
    T* gi = grad_in + p * s.H * s.W;  // (H, W)
    std::memset(gi, 0, sizeof(T) * s.H * s.W);
    const T* gp = g + p * s.OH * s.OW;  // (OH, OW)
    for (int64_t oh = 0; oh < s.OH; ++oh)
      for (int64_t ow = 0; ow < s.OW; ++ow) {
        AvgWindow a = avg_window(s, oh, ow, cip, dov);
        const T v = gp[oh * s.OW + ow] / static_cast<T>(a.divisor);
        for (int64_t h = a.h0; h < a.h1; ++h)
          for (int64_t w = a.w0; w < a.w1; ++w) gi[h * s.W + w] += v;
      }
  }
}

int64_t divisor_arg(const py::object& d, const char* op) {
  if (d.is_none()) return 0;
  int64_t v;
  try {
    v = d.cast<int64_t>();
  } catch (const py::cast_error&) {
    throw py::type_error(std::string(op) + ": divisor_override must be an int or None, got " +
                         py::repr(d).cast<std::string>());
  }
  if (v == 0) throw py::value_error(std::string(op) + ": divisor_override must not be zero");
  return v;
}

py::array avg_pool2d_forward_py(py::object input, py::object kernel_size, py::object stride, py::object padding,
                                bool ceil_mode, bool count_include_pad, py::object divisor_override) {
  const char* op = "avg_pool2d";
  PoolInput in = pool_input(input, op);
  const int64_t dov = divisor_arg(divisor_override, op);
  PoolParams pp = pool_params(op, kernel_size, stride, padding, py::int_(1));
  Pair o = output_size(op, in, pp, ceil_mode);
  Pool2dShape s{in.N * in.C, in.H, in.W, o[0], o[1], pp.k[0], pp.k[1], pp.s[0], pp.s[1], pp.p[0], pp.p[1], 1, 1};
  auto run = [&](auto tag) -> py::array {
    using T = decltype(tag);
    auto x = contiguous<T>(in.x);
    py::array_t<T, py::array::c_style> out(out_shape(in, o[0], o[1]));
    if (s.P > 0) {
      py::gil_scoped_release release;
      avg_pool2d_kernel<T>(x.data(), out.mutable_data(), s, count_include_pad, dov);
    }
    return out;
  };
  return in.kind == Float::f32 ? run(float{}) : run(double{});
}

py::array avg_pool2d_backward_py(py::object grad_out, py::object input_shape, py::object kernel_size,
                                 py::object stride, py::object padding, bool ceil_mode, bool count_include_pad,
                                 py::object divisor_override) {
  const char* op = "avg_pool2d_backward";
  py::array g = as_array(grad_out, op, "grad_out");
  Float kind = float_kind(g, op, "grad_out");
  std::vector<int64_t> shape = shape_arg(input_shape, op, "input_shape");
  if (shape.size() != 3 && shape.size() != 4)
    throw py::value_error(std::string(op) + ": input_shape must be (N, C, H, W) or (C, H, W), got " +
                          shape_vec_str(shape));
  const int64_t dov = divisor_arg(divisor_override, op);
  PoolParams pp = pool_params(op, kernel_size, stride, padding, py::int_(1));
  const int nd = static_cast<int>(shape.size());
  PoolInput in;
  in.batched = nd == 4;
  in.N = nd == 4 ? shape[0] : 1;
  in.C = shape[nd - 3];
  in.H = shape[nd - 2];
  in.W = shape[nd - 1];
  Pair o = output_size(op, in, pp, ceil_mode);
  std::vector<py::ssize_t> want = out_shape(in, o[0], o[1]);
  if (g.ndim() != nd || !std::equal(want.begin(), want.end(), g.shape()))
    throw py::value_error(std::string(op) + ": grad_out must have shape " +
                          shape_vec_str(std::vector<int64_t>(want.begin(), want.end())) + ", got " + shape_str(g));
  Pool2dShape s{in.N * in.C, in.H, in.W, o[0], o[1], pp.k[0], pp.k[1], pp.s[0], pp.s[1], pp.p[0], pp.p[1], 1, 1};
  auto run = [&](auto tag) -> py::array {
    using T = decltype(tag);
    auto gc = contiguous<T>(g);
    py::array_t<T, py::array::c_style> grad_in(std::vector<py::ssize_t>(shape.begin(), shape.end()));
    if (s.P * s.H * s.W > 0) {
      py::gil_scoped_release release;
      avg_pool2d_backward_kernel<T>(gc.data(), grad_in.mutable_data(), s, count_include_pad, dov);
    }
    return grad_in;
  };
  return kind == Float::f32 ? run(float{}) : run(double{});
}

// ---------------------------------------------------------------------------------------
// adaptive pooling
// ---------------------------------------------------------------------------------------

Pair adaptive_size(const py::handle& v, const PoolInput& in, const char* op) {
  Pair r;
  auto one = [&](const py::handle& e, int64_t keep) -> int64_t {
    if (e.is_none()) return keep;
    try {
      if (!py::isinstance<py::float_>(e) && !py::isinstance<py::bool_>(e)) return e.cast<int64_t>();
    } catch (const py::cast_error&) {
    }
    throw py::type_error(std::string(op) + ": output_size must be an int, None, or a pair of them, got " +
                         py::repr(v).cast<std::string>());
  };
  if (py::isinstance<py::tuple>(v) || py::isinstance<py::list>(v)) {
    py::sequence s = py::reinterpret_borrow<py::sequence>(v);
    if (s.size() != 2)
      throw py::value_error(std::string(op) + ": output_size must be an int or a pair, got " +
                            py::repr(v).cast<std::string>());
    r = {one(s[0], in.H), one(s[1], in.W)};
  } else {
    if (v.is_none()) throw py::value_error(std::string(op) + ": output_size is required");
    r = {one(v, in.H), one(v, in.W)};
  }
  if (r[0] < 0 || r[1] < 0)
    throw py::value_error(std::string(op) + ": output_size must be non-negative, got " + pair_str(r));
  return r;
}

template <typename T>
void adaptive_avg_kernel(const T* x, T* out, const Pool2dShape& s) {
  const int t = plane_threads(s.P, s.H * s.W + s.OH * s.OW);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
  for (int64_t p = 0; p < s.P; ++p) {
    const T* xp = x + p * s.H * s.W;
    T* op = out + p * s.OH * s.OW;
    for (int64_t oh = 0; oh < s.OH; ++oh) {
      const int64_t h0 = adaptive_start(oh, s.H, s.OH), h1 = adaptive_end(oh, s.H, s.OH);
      for (int64_t ow = 0; ow < s.OW; ++ow) {
        const int64_t w0 = adaptive_start(ow, s.W, s.OW), w1 = adaptive_end(ow, s.W, s.OW);
        T sum = 0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) sum += xp[h * s.W + w];
        op[oh * s.OW + ow] = sum / static_cast<T>((h1 - h0) * (w1 - w0));
      }
    }
  }
}

template <typename T>
void adaptive_avg_backward_kernel(const T* g, T* grad_in, const Pool2dShape& s) {
  const int t = plane_threads(s.P, s.H * s.W + s.OH * s.OW);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
  for (int64_t p = 0; p < s.P; ++p) {
    T* gi = grad_in + p * s.H * s.W;
    std::memset(gi, 0, sizeof(T) * s.H * s.W);
    const T* gp = g + p * s.OH * s.OW;
    for (int64_t oh = 0; oh < s.OH; ++oh) {
      const int64_t h0 = adaptive_start(oh, s.H, s.OH), h1 = adaptive_end(oh, s.H, s.OH);
      for (int64_t ow = 0; ow < s.OW; ++ow) {
        const int64_t w0 = adaptive_start(ow, s.W, s.OW), w1 = adaptive_end(ow, s.W, s.OW);
        const T v = gp[oh * s.OW + ow] / static_cast<T>((h1 - h0) * (w1 - w0));
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) gi[h * s.W + w] += v;
      }
    }
  }
}

// Max over explicit windows: row window i is [hs[i], hs[i] + hl[i]), column window j is
// [ws[j], ws[j] + wl[j]).
template <typename T>
void max_over_windows(const T* xp, T* op, int64_t* ip, int64_t W, const int64_t* hs, const int64_t* he,
                      int64_t OH, const int64_t* ws, const int64_t* we, int64_t OW) {
  for (int64_t oh = 0; oh < OH; ++oh)
    for (int64_t ow = 0; ow < OW; ++ow) {
      T best = -std::numeric_limits<T>::infinity();
      int64_t best_i = hs[oh] * W + ws[ow];
      for (int64_t h = hs[oh]; h < he[oh]; ++h)
        for (int64_t w = ws[ow]; w < we[ow]; ++w) {
          const T v = xp[h * W + w];
          if (max_pool_better(v, best)) {
            best = v;
            best_i = h * W + w;
          }
        }
      op[oh * OW + ow] = best;
      ip[oh * OW + ow] = best_i;
    }
}

py::array adaptive_avg_pool2d_forward_py(py::object input, py::object output_size_obj) {
  const char* op = "adaptive_avg_pool2d";
  PoolInput in = pool_input(input, op);
  Pair o = adaptive_size(output_size_obj, in, op);
  Pool2dShape s{in.N * in.C, in.H, in.W, o[0], o[1], 0, 0, 0, 0, 0, 0, 1, 1};
  auto run = [&](auto tag) -> py::array {
    using T = decltype(tag);
    auto x = contiguous<T>(in.x);
    py::array_t<T, py::array::c_style> out(out_shape(in, o[0], o[1]));
    if (s.P * s.OH * s.OW > 0) {
      py::gil_scoped_release release;
      adaptive_avg_kernel<T>(x.data(), out.mutable_data(), s);
    }
    return out;
  };
  return in.kind == Float::f32 ? run(float{}) : run(double{});
}

py::array adaptive_avg_pool2d_backward_py(py::object grad_out, py::object input_shape) {
  const char* op = "adaptive_avg_pool2d_backward";
  py::array g = as_array(grad_out, op, "grad_out");
  Float kind = float_kind(g, op, "grad_out");
  std::vector<int64_t> shape = shape_arg(input_shape, op, "input_shape");
  const int nd = static_cast<int>(shape.size());
  bool ok = (nd == 3 || nd == 4) && g.ndim() == nd;
  for (int i = 0; ok && i < nd - 2; ++i) ok = g.shape(i) == shape[i];
  if (!ok)
    throw py::value_error(std::string(op) + ": grad_out of shape " + shape_str(g) + " does not match input_shape " +
                          shape_vec_str(shape));
  const int64_t P = nd == 4 ? shape[0] * shape[1] : shape[0];
  Pool2dShape s{P, shape[nd - 2], shape[nd - 1], g.shape(nd - 2), g.shape(nd - 1), 0, 0, 0, 0, 0, 0, 1, 1};
  if ((s.H == 0 || s.W == 0) && s.OH * s.OW > 0)
    throw py::value_error(std::string(op) + ": input_shape " + shape_vec_str(shape) + " has an empty plane");
  auto run = [&](auto tag) -> py::array {
    using T = decltype(tag);
    auto gc = contiguous<T>(g);
    py::array_t<T, py::array::c_style> grad_in(std::vector<py::ssize_t>(shape.begin(), shape.end()));
    if (P * s.H * s.W > 0) {
      py::gil_scoped_release release;
      adaptive_avg_backward_kernel<T>(gc.data(), grad_in.mutable_data(), s);
    }
    return grad_in;
  };
  return kind == Float::f32 ? run(float{}) : run(double{});
}

py::tuple adaptive_max_pool2d_forward_py(py::object input, py::object output_size_obj) {
  const char* op = "adaptive_max_pool2d";
  PoolInput in = pool_input(input, op);
  Pair o = adaptive_size(output_size_obj, in, op);
  const int64_t P = in.N * in.C, H = in.H, W = in.W, OH = o[0], OW = o[1];
  std::vector<int64_t> hs(OH), he(OH), ws(OW), we(OW);
  for (int64_t i = 0; i < OH; ++i) hs[i] = adaptive_start(i, H, OH), he[i] = adaptive_end(i, H, OH);
  for (int64_t j = 0; j < OW; ++j) ws[j] = adaptive_start(j, W, OW), we[j] = adaptive_end(j, W, OW);
  auto run = [&](auto tag) -> py::tuple {
    using T = decltype(tag);
    auto x = contiguous<T>(in.x);
    py::array_t<T, py::array::c_style> out(out_shape(in, OH, OW));
    py::array_t<int64_t, py::array::c_style> idx(out_shape(in, OH, OW));
    if (P * OH * OW > 0) {
      py::gil_scoped_release release;
      const T* xp = x.data();
      T* op_ = out.mutable_data();
      int64_t* ip = idx.mutable_data();
      const int t = plane_threads(P, H * W + OH * OW);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
      for (int64_t p = 0; p < P; ++p)
        max_over_windows(xp + p * H * W, op_ + p * OH * OW, ip + p * OH * OW, W, hs.data(), he.data(), OH, ws.data(),
                         we.data(), OW);
    }
    return py::make_tuple(out, idx);
  };
  return in.kind == Float::f32 ? run(float{}) : run(double{});
}

// ---------------------------------------------------------------------------------------
// fractional_max_pool2d
// ---------------------------------------------------------------------------------------

py::tuple fractional_max_pool2d_forward_py(py::object input, py::object kernel_size, py::object output_size_obj,
                                           py::object output_ratio, py::object samples_obj) {
  const char* op = "fractional_max_pool2d";
  PoolInput in = pool_input(input, op);
  Pair k = pair_arg(kernel_size, op, "kernel_size");
  if (k[0] <= 0 || k[1] <= 0) throw py::value_error(std::string(op) + ": kernel_size must be positive, got " + pair_str(k));
  if (output_size_obj.is_none() == output_ratio.is_none())
    throw py::value_error(std::string(op) + ": give exactly one of output_size and output_ratio");
  Pair o;
  if (!output_size_obj.is_none()) {
    o = pair_arg(output_size_obj, op, "output_size");
  } else {
    double rh, rw;
    try {
      if (py::isinstance<py::tuple>(output_ratio) || py::isinstance<py::list>(output_ratio)) {
        py::sequence s = py::reinterpret_borrow<py::sequence>(output_ratio);
        if (s.size() != 2) throw py::cast_error();
        rh = s[0].cast<double>();
        rw = s[1].cast<double>();
      } else {
        rh = rw = output_ratio.cast<double>();
      }
    } catch (const py::cast_error&) {
      throw py::type_error(std::string(op) + ": output_ratio must be a float or a pair of floats, got " +
                           py::repr(output_ratio).cast<std::string>());
    }
    if (!(rh > 0 && rh < 1 && rw > 0 && rw < 1))
      throw py::value_error(std::string(op) + ": output_ratio must lie in (0, 1), got (" + std::to_string(rh) + ", " +
                            std::to_string(rw) + ")");
    o = {static_cast<int64_t>(static_cast<double>(in.H) * rh), static_cast<int64_t>(static_cast<double>(in.W) * rw)};
  }
  if (o[0] <= 0 || o[1] <= 0)
    throw py::value_error(std::string(op) + ": output_size must be positive, got " + pair_str(o));
  if (o[0] + k[0] - 1 > in.H)
    throw py::value_error(std::string(op) + ": kernel height " + std::to_string(k[0]) +
                          " too large for output height " + std::to_string(o[0]) + " from input height " +
                          std::to_string(in.H) + " (needs output_size + kernel_size - 1 <= input size)");
  if (o[1] + k[1] - 1 > in.W)
    throw py::value_error(std::string(op) + ": kernel width " + std::to_string(k[1]) + " too large for output width " +
                          std::to_string(o[1]) + " from input width " + std::to_string(in.W) +
                          " (needs output_size + kernel_size - 1 <= input size)");
  if (samples_obj.is_none())
    throw py::value_error(std::string(op) +
                          ": samples (N, C, 2), uniform in [0, 1), are required: draw them from pydl's generator");
  py::array sa = as_array(samples_obj, op, "samples");
  const bool shape_ok = (sa.ndim() == 3 && sa.shape(0) == in.N && sa.shape(1) == in.C && sa.shape(2) == 2) ||
                        (!in.batched && sa.ndim() == 2 && sa.shape(0) == in.C && sa.shape(1) == 2);
  if (!shape_ok)
    throw py::value_error(std::string(op) + ": samples must have shape (" + std::to_string(in.N) + ", " +
                          std::to_string(in.C) + ", 2), got " + shape_str(sa));
  const int64_t P = in.N * in.C, H = in.H, W = in.W, OH = o[0], OW = o[1], KH = k[0], KW = k[1];
  auto run = [&](auto tag) -> py::tuple {
    using T = decltype(tag);
    auto x = contiguous<T>(in.x);
    auto u = contiguous<T>(sa);  // (P, 2): [0] places the columns, [1] the rows
    py::array_t<T, py::array::c_style> out(out_shape(in, OH, OW));
    py::array_t<int64_t, py::array::c_style> idx(out_shape(in, OH, OW));
    if (P > 0) {
      py::gil_scoped_release release;
      const T* xp = x.data();
      const T* up = u.data();
      T* op_ = out.mutable_data();
      int64_t* ip = idx.mutable_data();
      const int t = plane_threads(P, OH * OW * KH * KW);
#pragma omp parallel num_threads(t) if (t > 1)
      {
        std::vector<int64_t> hs(OH), he(OH), ws(OW), we(OW);
#pragma omp for schedule(static)
        for (int64_t p = 0; p < P; ++p) {
          for (int64_t i = 0; i < OH; ++i) hs[i] = fractional_start<T>(up[2 * p + 1], i, H, OH, KH), he[i] = hs[i] + KH;
          for (int64_t j = 0; j < OW; ++j) ws[j] = fractional_start<T>(up[2 * p], j, W, OW, KW), we[j] = ws[j] + KW;
          max_over_windows(xp + p * H * W, op_ + p * OH * OW, ip + p * OH * OW, W, hs.data(), he.data(), OH,
                           ws.data(), we.data(), OW);
        }
      }
    }
    return py::make_tuple(out, idx);
  };
  // The window starts are computed in the input's type, as PyTorch does; samples of the
  // other float type are converted to it first.
  return in.kind == Float::f32 ? run(float{}) : run(double{});
}

py::array same_backward(py::object g, py::object i, py::object s) { return max_pool2d_backward_py(g, i, s); }

}  // namespace

void bind_pool(py::module_& m) {
  m.def("max_pool2d_forward", &max_pool2d_forward_py, py::arg("input"), py::arg("kernel_size"),
        py::arg("stride") = py::none(), py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("ceil_mode") = false,
        "Max pooling: (N, C, H, W) or (C, H, W) -> (out, indices), indices int64 h * W + w per plane.");
  m.def("max_pool2d_backward", &max_pool2d_backward_py, py::arg("grad_out"), py::arg("indices"),
        py::arg("input_shape"), "grad_input[p, indices] += grad_out (max, adaptive max and fractional max pooling).");
  m.def("max_unpool2d_forward", &max_unpool2d_forward_py, py::arg("input"), py::arg("indices"),
        py::arg("output_size"), "Scatter input to indices in zero planes of output_size (OH, OW).");
  m.def("max_unpool2d_backward", &max_unpool2d_backward_py, py::arg("grad_out"), py::arg("indices"),
        "grad_input = grad_out gathered at indices.");
  m.def("avg_pool2d_forward", &avg_pool2d_forward_py, py::arg("input"), py::arg("kernel_size"),
        py::arg("stride") = py::none(), py::arg("padding") = 0, py::arg("ceil_mode") = false,
        py::arg("count_include_pad") = true, py::arg("divisor_override") = py::none(), "Average pooling.");
  m.def("avg_pool2d_backward", &avg_pool2d_backward_py, py::arg("grad_out"), py::arg("input_shape"),
        py::arg("kernel_size"), py::arg("stride") = py::none(), py::arg("padding") = 0, py::arg("ceil_mode") = false,
        py::arg("count_include_pad") = true, py::arg("divisor_override") = py::none(), "Gradient of avg_pool2d.");
  m.def("adaptive_avg_pool2d_forward", &adaptive_avg_pool2d_forward_py, py::arg("input"), py::arg("output_size"),
        "Adaptive average pooling to output_size (OH, OW).");
  m.def("adaptive_avg_pool2d_backward", &adaptive_avg_pool2d_backward_py, py::arg("grad_out"),
        py::arg("input_shape"), "Gradient of adaptive_avg_pool2d.");
  m.def("adaptive_max_pool2d_forward", &adaptive_max_pool2d_forward_py, py::arg("input"), py::arg("output_size"),
        "Adaptive max pooling: (out, indices).");
  m.def("adaptive_max_pool2d_backward", &same_backward, py::arg("grad_out"), py::arg("indices"),
        py::arg("input_shape"), "Gradient of adaptive_max_pool2d (max_pool2d_backward).");
  m.def("fractional_max_pool2d_forward", &fractional_max_pool2d_forward_py, py::arg("input"), py::arg("kernel_size"),
        py::arg("output_size") = py::none(), py::arg("output_ratio") = py::none(), py::arg("samples") = py::none(),
        "Fractional max pooling with the caller's samples (N, C, 2): (out, indices).");
  m.def("fractional_max_pool2d_backward", &same_backward, py::arg("grad_out"), py::arg("indices"),
        py::arg("input_shape"), "Gradient of fractional_max_pool2d (max_pool2d_backward).");
}

}  // namespace pydl
