// normalisation family on the CPU: batch_norm, layer_norm, group_norm (instance norm is
// group norm with num_groups == C), forward and backward, float32 and float64.
//
// Formulas (csrc/include/pydl/norm.h): xhat = (x - mean) * rstd, y = xhat * w + b;
// dx = rstd * (g - sum(g) / M - xhat * sum(g * xhat) / M) with g = dy * w, written per
// channel (or row) as the affine combination dx = dy * A + (x - mean) * B + C.
//
// Dimension legend: N batch, C channels, L = the product of the sizes after C (H * W),
// G groups of C / G channels; layer norm: R rows (the leading axes) of D values (the
// normalized_shape); M = the number of values one mean and variance are taken over.
//
// Algorithm. Everything is a sweep over contiguous runs (norm_isa.cpp, SIMD per ISA):
// - batch norm, training forward: sweep 1 sums each (n, c) plane into a per-plane double
//   pair (workspace (N, C, 2)), reduced over n in a fixed order (so the result is bitwise
//   the same on any number of threads); sweep 2 writes y. Backward: sweep 1 sums dy and
//   dy * (x - mean) per plane the same way; sweep 2 writes dx. Every sweep streams at
//   memory speed: 3 passes over the data forward (read, read + write), 5 backward. When
//   the planes are short (L < 32, e.g. BatchNorm1d's (N, C)), the planes are too short to
//   sweep one by one and the sums run down columns instead: the C * L columns are split
//   into fixed blocks of 256 (one thread each, rows in order, a register tile of 16
//   columns walking down blocks of rows), the element-wise sweeps go row by row with
//   per-column parameters.
// - layer norm: one row at a time, row in L1 between its sweeps: forward sums then writes;
//   backward reads dy and x once (sums and the parameter gradients' accumulators) then
//   writes dx. The parameter gradients accumulate in T over 8 rows, then in double per
//   chunk of rows (a fixed number of chunks, a function of R and D only), reduced over the
//   chunks in order.
// - group norm: one (n, g) group at a time: the group is one contiguous run of
//   (C / G) * L values for the statistics; the backward sums per (n, c) plane (the
//   parameter gradients need them per channel) and then writes dx per plane.
//
// Workspace: batch norm (N, C, 2) doubles (or 2 * C * L for short planes, plus per-column
// parameters); layer norm's backward 2 * D doubles per chunk (at most 64 chunks and 32 MB)
// and 2 * D values of T per thread;
// group norm's backward (N, C, 2) doubles.
//
// Checked by tests/kernels/test_norm.py: parity with pydl/kernels/reference/norm.py on
// every ISA path, (N, C) and (N, C, *) shapes, L below and above the plane threshold,
// running-stat updates, eval and train, needs masks, 1 and 2 threads (bitwise), a channel
// of 200K float32 values with mean 1e3, bad arguments.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "pydl/checks.h"
#include "pydl/norm.h"
#include "pydl/parallel.h"

namespace pydl {
namespace py = pybind11;

namespace {

constexpr int64_t kPlaneMin = 32;   // shorter planes are summed down columns
constexpr int64_t kColBlock = 256;  // columns per block in the column path
// Elements a thread must get before a second one is used, as the pointwise and pooling
// kernels: in a training step the threads are awake from the convolution before (CIFAR
// ResNet-18's batch norms of 0.25-1M values went from one thread to two: the step 0.8%
// faster, A/B in one process). Waking an idle second thread costs milliseconds whenever
// another process holds the other core: smaller problems stay on one.
constexpr int64_t kGrain = int64_t(1) << 18;

template <typename T>
using Arr = py::array_t<T, py::array::c_style>;

// "No array" (a null handle), for optional parameters: a default-constructed array_t
// would be a real, empty array.
template <typename T>
Arr<T> no_array() {
  return py::reinterpret_steal<Arr<T>>(py::handle());
}

std::vector<py::ssize_t> shape_of(const py::array& a) { return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()); }

std::array<bool, 3> needs_arg(const py::object& obj, const char* op) {
  std::array<bool, 3> r{};
  try {
    py::sequence s = py::reinterpret_borrow<py::sequence>(obj);
    if (!py::isinstance<py::sequence>(obj) || s.size() != 3) throw py::cast_error();
    for (int i = 0; i < 3; ++i) r[i] = py::bool_(s[i]);
  } catch (const py::error_already_set&) {
    throw py::value_error(std::string(op) + ": needs must be three booleans (input, weight, bias)");
  } catch (const py::cast_error&) {
    throw py::value_error(std::string(op) + ": needs must be three booleans (input, weight, bias)");
  }
  return r;
}

// None, or a float array of exactly `shape`, as contiguous T.
template <typename T>
Arr<T> param_arg(const py::object& obj, const char* op, const char* name, const std::vector<py::ssize_t>& shape,
                 const std::string& why) {
  if (obj.is_none()) return no_array<T>();
  py::array a = as_array(obj, op, name);
  float_kind(a, op, name);
  if (shape_of(a) != shape) {
    std::string want = "(";
    for (size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
    want += shape.size() == 1 ? ",)" : ")";
    throw py::value_error(std::string(op) + ": " + name + " must have shape " + want + why + ", got " + shape_str(a));
  }
  return contiguous<T>(a);
}

template <typename T>
const T* ptr_or_null(const Arr<T>& a) {
  return a.ptr() == nullptr ? nullptr : a.data();
}

int threads_over(int64_t items, int64_t per_item) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads_for(items * per_item, kGrain), items)));
}

// ---------------------------------------------------------------------------------------
// batch norm
// ---------------------------------------------------------------------------------------

struct BnShape {
  int64_t N, C, L;
  bool planes() const { return L >= kPlaneMin; }
  double M() const { return static_cast<double>(N) * static_cast<double>(L); }
};

// Per-channel sums over (N, C, L): sum f1 and sum f2 where the sweep `plane(p, c, &a, &b)`
// adds one plane's pair and `cols(r0, r1, j0, j1, a, b)` adds columns [j0, j1) of rows [r0, r1).
template <typename PlaneFn, typename ColFn>
void channel_sums(const BnShape& s, PlaneFn&& plane, ColFn&& cols, std::vector<double>& out1,
                  std::vector<double>& out2) {
  out1.assign(s.C, 0.0);
  out2.assign(s.C, 0.0);
  if (s.N == 0 || s.L == 0) return;
  if (s.planes()) {
    const int64_t P = s.N * s.C;
    std::vector<double> ws(2 * P, 0.0);  // (N, C, 2): each plane's pair
    const int t = threads_over(P, s.L);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
    for (int64_t p = 0; p < P; ++p) plane(p, p % s.C, &ws[2 * p], &ws[2 * p + 1]);
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t c = 0; c < s.C; ++c) {
        out1[c] += ws[2 * (n * s.C + c)];
        out2[c] += ws[2 * (n * s.C + c) + 1];
      }
  } else {
    const int64_t CL = s.C * s.L, blocks = (CL + kColBlock - 1) / kColBlock;
    std::vector<double> a(CL, 0.0), b(CL, 0.0);  // (C, L) column sums
    const int t = threads_over(blocks, s.N * kColBlock);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t j0 = blk * kColBlock, j1 = std::min(CL, j0 + kColBlock);
      // rows in blocks of ~64 KB per array: a column tile's strided walk down the block
      // then finds the lines the previous tiles' walks brought into L2
      const int64_t rows_blk = std::max<int64_t>(8, (int64_t(1) << 14) / CL);
      for (int64_t r0 = 0; r0 < s.N; r0 += rows_blk) cols(r0, std::min(s.N, r0 + rows_blk), j0, j1, a.data(), b.data());
    }
    for (int64_t c = 0; c < s.C; ++c)
      for (int64_t l = 0; l < s.L; ++l) {
        out1[c] += a[c * s.L + l];
        out2[c] += b[c * s.L + l];
      }
  }
}

// A per-channel value repeated L times: (C,) -> (C * L,), for the column path.
template <typename T, typename F>
std::vector<T> per_column(const BnShape& s, F&& value) {
  std::vector<T> v(s.C * s.L);
  for (int64_t c = 0; c < s.C; ++c) std::fill(v.begin() + c * s.L, v.begin() + (c + 1) * s.L, static_cast<T>(value(c)));
  return v;
}

template <typename T>
void bn_normalise(const BnShape& s, const T* x, T* y, const std::vector<double>& mean,
                  const std::vector<double>& scale, const std::vector<double>& shift) {
  const NormKernelsT<T>& k = pick_norm<T>();
  if (s.planes()) {
    const int64_t P = s.N * s.C;
    const int t = threads_over(P, s.L);
    // Backwards through the planes: the statistics sweep just read them front to back,
    // so its last ~LLC-size of them is still cached and is read first here.
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
    for (int64_t i = 0; i < P; ++i) {
      const int64_t p = P - 1 - i, c = p % s.C;
      const HiLo<T> m = split_hi_lo<T>(mean[c]);
      k.affine(x + p * s.L, y + p * s.L, s.L, m.hi, m.lo, static_cast<T>(scale[c]), static_cast<T>(shift[c]));
    }
  } else {
    const int64_t CL = s.C * s.L;
    auto hi = per_column<T>(s, [&](int64_t c) { return split_hi_lo<T>(mean[c]).hi; });
    auto lo = per_column<T>(s, [&](int64_t c) { return split_hi_lo<T>(mean[c]).lo; });
    auto sc = per_column<T>(s, [&](int64_t c) { return scale[c]; });
    auto sh = per_column<T>(s, [&](int64_t c) { return shift[c]; });
    const int t = threads_over(s.N, CL);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
    for (int64_t n = 0; n < s.N; ++n) k.col_affine(x + n * CL, y + n * CL, CL, hi.data(), lo.data(), sc.data(), sh.data());
  }
}

template <typename T>
py::tuple batch_norm_forward_t(const py::array& xa, const py::object& rm_obj, const py::object& rv_obj,
                               const py::object& w_obj, const py::object& b_obj, bool training, double momentum,
                               double eps) {
  const char* op = "batch_norm";
  BnShape s{xa.shape(0), xa.shape(1), 1};
  for (py::ssize_t i = 2; i < xa.ndim(); ++i) s.L *= xa.shape(i);
  const std::string why = " to match the input's " + std::to_string(s.C) + " channels";
  const std::vector<py::ssize_t> cshape{s.C};
  Arr<T> w = param_arg<T>(w_obj, op, "weight", cshape, why);
  Arr<T> b = param_arg<T>(b_obj, op, "bias", cshape, why);
  // The running statistics are updated in place in training: they must be arrays of the
  // input's dtype that can be written where they are.
  Arr<T> rm = no_array<T>(), rv = no_array<T>();
  for (int i = 0; i < 2; ++i) {
    const py::object& obj = i == 0 ? rm_obj : rv_obj;
    const char* name = i == 0 ? "running_mean" : "running_var";
    if (obj.is_none()) continue;
    py::array a = as_array(obj, op, name);
    if (!a.dtype().is(xa.dtype()))
      throw py::type_error(std::string(op) + ": " + name + " must have the input's dtype " + dtype_str(xa) + ", got " +
                           dtype_str(a));
    if (shape_of(a) != cshape)
      throw py::value_error(std::string(op) + ": " + name + " must have shape (" + std::to_string(s.C) + ",)" + why +
                            ", got " + shape_str(a));
    if (training && (!(a.flags() & py::array::c_style) || !a.writeable()))
      throw py::value_error(std::string(op) + ": " + name +
                            " must be a writeable contiguous array in training (it is updated in place)");
    (i == 0 ? rm : rv) = training ? py::reinterpret_borrow<Arr<T>>(a) : contiguous<T>(a);
  }
  if (!training && (rm.ptr() == nullptr || rv.ptr() == nullptr))
    throw py::value_error(std::string(op) + ": running_mean and running_var are required in evaluation mode "
                                            "(training=False)");
  const double M = s.M();
  if (training && M == 1.0)
    throw py::value_error(std::string(op) + ": expected more than 1 value per channel when training, got input shape " +
                          shape_str(xa));
  Arr<T> x = contiguous<T>(xa);
  Arr<T> out(shape_of(xa)), save_mean(cshape), save_invstd(cshape);
  if (training && M == 0.0) {  // nothing to normalise; the running statistics stay
    std::fill(save_mean.mutable_data(), save_mean.mutable_data() + s.C, T(0));
    std::fill(save_invstd.mutable_data(), save_invstd.mutable_data() + s.C, T(0));
    return py::make_tuple(out, save_mean, save_invstd);
  }
  const T* xp = x.data();
  std::vector<double> mean(s.C), invstd(s.C), scale(s.C), shift(s.C);
  {
    py::gil_scoped_release release;
    if (training) {
      const NormKernelsT<T>& k = pick_norm<T>();
      // Shift each channel by its first value: var = E[(x-K)^2] - E[x-K]^2 without cancellation.
      std::vector<T> K(s.C);
      for (int64_t c = 0; c < s.C; ++c) K[c] = xp[c * s.L];
      std::vector<T> Kcol;
      if (!s.planes()) Kcol = per_column<T>(s, [&](int64_t c) { return K[c]; });
      std::vector<double> sum, sq;
      channel_sums(
          s, [&](int64_t p, int64_t c, double* a, double* q) { k.sums_shifted(xp + p * s.L, s.L, K[c], a, q); },
          [&](int64_t r0, int64_t r1, int64_t j0, int64_t j1, double* a, double* q) {
            const int64_t CL = s.C * s.L;
            k.col_sums_shifted(xp + r0 * CL + j0, r1 - r0, CL, j1 - j0, Kcol.data() + j0, a + j0, q + j0);
          },
          sum, sq);
      for (int64_t c = 0; c < s.C; ++c) {
        MeanVar mv = mean_var_from_shifted(sum[c], sq[c], static_cast<double>(K[c]), M);
        mean[c] = mv.mean;
        invstd[c] = 1.0 / std::sqrt(mv.var + eps);
        if (rm.ptr() != nullptr || rv.ptr() != nullptr) {
          double r_mean = rm.ptr() ? static_cast<double>(rm.data()[c]) : 0.0;
          double r_var = rv.ptr() ? static_cast<double>(rv.data()[c]) : 0.0;
          update_running(r_mean, r_var, mv.mean, mv.var, M, momentum);
          if (rm.ptr()) rm.mutable_data()[c] = static_cast<T>(r_mean);
          if (rv.ptr()) rv.mutable_data()[c] = static_cast<T>(r_var);
        }
      }
    } else {
      for (int64_t c = 0; c < s.C; ++c) {
        mean[c] = static_cast<double>(rm.data()[c]);
        invstd[c] = 1.0 / std::sqrt(static_cast<double>(rv.data()[c]) + eps);
      }
    }
    for (int64_t c = 0; c < s.C; ++c) {
      scale[c] = invstd[c] * (w.ptr() ? static_cast<double>(w.data()[c]) : 1.0);
      shift[c] = b.ptr() ? static_cast<double>(b.data()[c]) : 0.0;
      save_mean.mutable_data()[c] = static_cast<T>(mean[c]);
      save_invstd.mutable_data()[c] = static_cast<T>(invstd[c]);
    }
    if (M > 0) bn_normalise<T>(s, xp, out.mutable_data(), mean, scale, shift);
  }
  return py::make_tuple(out, save_mean, save_invstd);
}

py::tuple batch_norm_forward_py(py::object input, py::object running_mean, py::object running_var, py::object weight,
                                py::object bias, bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  py::array x = as_array(input, op, "input");
  Float kind = float_kind(x, op, "input");
  if (x.ndim() < 2)
    throw py::value_error(std::string(op) + ": input must have at least 2 dimensions (N, C, *), got shape " +
                          shape_str(x));
  return kind == Float::f32 ? batch_norm_forward_t<float>(x, running_mean, running_var, weight, bias, training,
                                                          momentum, eps)
                            : batch_norm_forward_t<double>(x, running_mean, running_var, weight, bias, training,
                                                           momentum, eps);
}

template <typename T>
py::tuple batch_norm_backward_t(const py::array& ga, const py::array& xa, const py::object& w_obj,
                                const py::object& mean_obj, const py::object& invstd_obj, bool training,
                                std::array<bool, 3> needs) {
  const char* op = "batch_norm_backward";
  BnShape s{xa.shape(0), xa.shape(1), 1};
  for (py::ssize_t i = 2; i < xa.ndim(); ++i) s.L *= xa.shape(i);
  const std::string why = " to match the input's " + std::to_string(s.C) + " channels";
  const std::vector<py::ssize_t> cshape{s.C};
  Arr<T> w = param_arg<T>(w_obj, op, "weight", cshape, why);
  if (mean_obj.is_none() || invstd_obj.is_none())
    throw py::value_error(std::string(op) + ": save_mean and save_invstd (from batch_norm_forward) are required");
  Arr<T> mean = param_arg<T>(mean_obj, op, "save_mean", cshape, why);
  Arr<T> invstd = param_arg<T>(invstd_obj, op, "save_invstd", cshape, why);
  const bool need_x = needs[0], need_w = needs[1] && w.ptr() != nullptr, need_b = needs[2];
  Arr<T> x = contiguous<T>(xa), g = contiguous<T>(ga);
  Arr<T> gx, gw, gb;
  if (need_x) gx = Arr<T>(shape_of(xa));
  if (need_w) gw = Arr<T>(cshape);
  if (need_b) gb = Arr<T>(cshape);
  const double M = s.M();
  {
    py::gil_scoped_release release;
    const NormKernelsT<T>& k = pick_norm<T>();
    const T* xp = x.data();
    const T* gp = g.data();
    const T* mp = mean.data();
    std::vector<double> sum_dy(s.C, 0.0), sum_dyx(s.C, 0.0);  // sum dy, sum dy (x - mean)
    if (need_w || need_b || (need_x && training)) {
      std::vector<T> mcol;
      if (!s.planes()) mcol = per_column<T>(s, [&](int64_t c) { return mp[c]; });
      channel_sums(
          s, [&](int64_t p, int64_t c, double* a, double* q) { k.sums_grad(gp + p * s.L, xp + p * s.L, s.L, mp[c], a, q); },
          [&](int64_t r0, int64_t r1, int64_t j0, int64_t j1, double* a, double* q) {
            const int64_t CL = s.C * s.L, o = r0 * CL + j0;
            k.col_sums_grad(gp + o, xp + o, r1 - r0, CL, j1 - j0, mcol.data() + j0, a + j0, q + j0);
          },
          sum_dy, sum_dyx);
    }
    for (int64_t c = 0; c < s.C; ++c) {
      const double r = invstd.data()[c];
      if (need_w) gw.mutable_data()[c] = static_cast<T>(r * sum_dyx[c]);
      if (need_b) gb.mutable_data()[c] = static_cast<T>(sum_dy[c]);
    }
    if (need_x && M > 0) {
      std::vector<double> A(s.C), B(s.C), Cc(s.C);
      for (int64_t c = 0; c < s.C; ++c) {
        const double r = invstd.data()[c];
        const NormGradCoeffs gc = norm_grad_coeffs(r, w.ptr() ? static_cast<double>(w.data()[c]) : 1.0, sum_dy[c],
                                                   sum_dyx[c], M);
        A[c] = gc.A;
        B[c] = training ? gc.B : 0.0;  // evaluation: the statistics are constants
        Cc[c] = training ? gc.C : 0.0;
      }
      T* dx = gx.mutable_data();
      if (s.planes()) {
        const int64_t P = s.N * s.C;
        const int t = threads_over(P, s.L);
        // backwards, as in bn_normalise: the sums sweep's tail of dy and x is still cached
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
        for (int64_t i = 0; i < P; ++i) {
          const int64_t p = P - 1 - i, c = p % s.C, o = p * s.L;
          if (training)
            k.affine_grad(gp + o, xp + o, dx + o, s.L, static_cast<T>(A[c]), mp[c], static_cast<T>(B[c]),
                          static_cast<T>(Cc[c]));
          else  // the statistics are constants: dx = dy * w * invstd, x not read
            k.affine(gp + o, dx + o, s.L, T(0), T(0), static_cast<T>(A[c]), T(0));
        }
      } else {
        const int64_t CL = s.C * s.L;
        auto a = per_column<T>(s, [&](int64_t c) { return A[c]; });
        auto bb = per_column<T>(s, [&](int64_t c) { return B[c]; });
        auto cc = per_column<T>(s, [&](int64_t c) { return Cc[c]; });
        auto m = per_column<T>(s, [&](int64_t c) { return mp[c]; });
        std::vector<T> zero(CL, T(0));
        const int t = threads_over(s.N, CL);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
        for (int64_t n = 0; n < s.N; ++n) {
          const int64_t o = n * CL;
          if (training) k.col_affine_grad(gp + o, xp + o, dx + o, CL, a.data(), m.data(), bb.data(), cc.data());
          else k.col_affine(gp + o, dx + o, CL, zero.data(), zero.data(), a.data(), zero.data());
        }
      }
    }
  }
  return py::make_tuple(need_x ? py::object(gx) : py::object(py::none()), need_w ? py::object(gw) : py::object(py::none()),
                        need_b ? py::object(gb) : py::object(py::none()));
}

py::tuple batch_norm_backward_py(py::object grad_out, py::object input, py::object weight, py::object save_mean,
                                 py::object save_invstd, bool training, py::object needs_obj) {
  const char* op = "batch_norm_backward";
  py::array x = as_array(input, op, "input"), g = as_array(grad_out, op, "grad_out");
  Float kind = float_kind(x, op, "input");
  float_kind(g, op, "grad_out");
  check_same_dtype(g, x, op, "grad_out", "input");
  if (x.ndim() < 2)
    throw py::value_error(std::string(op) + ": input must have at least 2 dimensions (N, C, *), got shape " +
                          shape_str(x));
  if (shape_of(g) != shape_of(x))
    throw py::value_error(std::string(op) + ": grad_out must have the input's shape " + shape_str(x) + ", got " +
                          shape_str(g));
  auto needs = needs_arg(needs_obj, op);
  return kind == Float::f32 ? batch_norm_backward_t<float>(g, x, weight, save_mean, save_invstd, training, needs)
                            : batch_norm_backward_t<double>(g, x, weight, save_mean, save_invstd, training, needs);
}

// ---------------------------------------------------------------------------------------
// layer norm
// ---------------------------------------------------------------------------------------

std::vector<py::ssize_t> normalized_shape_arg(const py::object& obj, const py::array& x, const char* op) {
  std::vector<py::ssize_t> shape;
  try {
    if (py::isinstance<py::sequence>(obj) && !py::isinstance<py::str>(obj)) {
      for (auto v : py::reinterpret_borrow<py::sequence>(obj)) shape.push_back(v.cast<py::ssize_t>());
    } else {
      shape.push_back(obj.cast<py::ssize_t>());
    }
  } catch (const py::cast_error&) {
    throw py::type_error(std::string(op) + ": normalized_shape must be an int or a sequence of ints, got " +
                         py::repr(obj).cast<std::string>());
  }
  const py::ssize_t k = static_cast<py::ssize_t>(shape.size());
  bool ok = k > 0 && x.ndim() >= k;
  for (py::ssize_t i = 0; ok && i < k; ++i) ok = x.shape(x.ndim() - k + i) == shape[i];
  if (!ok) {
    std::string s = "[", t;
    for (py::ssize_t i = 0; i < k; ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    for (py::ssize_t i = 0; i < k; ++i) t += ", " + std::to_string(shape[i]);
    throw py::value_error(std::string(op) + ": normalized_shape=" + s + "] expects input of shape (*" + t + "), got " +
                          shape_str(x));
  }
  return shape;
}

template <typename T>
py::tuple layer_norm_forward_t(const py::array& xa, const std::vector<py::ssize_t>& ns, const py::object& w_obj,
                               const py::object& b_obj, double eps) {
  const char* op = "layer_norm";
  Arr<T> w = param_arg<T>(w_obj, op, "weight", ns, " (the normalized_shape)");
  Arr<T> b = param_arg<T>(b_obj, op, "bias", ns, " (the normalized_shape)");
  const py::ssize_t k = static_cast<py::ssize_t>(ns.size());
  int64_t D = 1, R = 1;
  for (auto v : ns) D *= v;
  std::vector<py::ssize_t> stat_shape;
  for (py::ssize_t i = 0; i < xa.ndim() - k; ++i) {
    R *= xa.shape(i);
    stat_shape.push_back(xa.shape(i));
  }
  for (py::ssize_t i = 0; i < k; ++i) stat_shape.push_back(1);
  Arr<T> x = contiguous<T>(xa);
  Arr<T> out(shape_of(xa)), mean(stat_shape), rstd(stat_shape);
  if (R > 0) {
    py::gil_scoped_release release;
    const NormKernelsT<T>& kk = pick_norm<T>();
    const T* xp = x.data();
    T* yp = out.mutable_data();
    T* mp = mean.mutable_data();
    T* rp = rstd.mutable_data();
    const T* wp = ptr_or_null(w);
    const T* bp = ptr_or_null(b);
    const int t = threads_over(R, std::max<int64_t>(D, 1));
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
    for (int64_t r = 0; r < R; ++r) {
      const T* xr = xp + r * D;
      if (D == 0) {
        mp[r] = rp[r] = std::numeric_limits<T>::quiet_NaN();
        continue;
      }
      double s = 0.0, q = 0.0;
      kk.sums_shifted(xr, D, static_cast<double>(xr[0]), &s, &q);
      MeanVar mv = mean_var_from_shifted(s, q, static_cast<double>(xr[0]), static_cast<double>(D));
      const double rs = 1.0 / std::sqrt(mv.var + eps);
      const HiLo<T> m = split_hi_lo<T>(mv.mean);
      kk.ln_affine(xr, yp + r * D, D, m.hi, m.lo, static_cast<T>(rs), wp, bp);
      mp[r] = static_cast<T>(mv.mean);
      rp[r] = static_cast<T>(rs);
    }
  }
  return py::make_tuple(out, mean, rstd);
}

py::tuple layer_norm_forward_py(py::object input, py::object normalized_shape, py::object weight, py::object bias,
                                double eps) {
  const char* op = "layer_norm";
  py::array x = as_array(input, op, "input");
  Float kind = float_kind(x, op, "input");
  auto ns = normalized_shape_arg(normalized_shape, x, op);
  return kind == Float::f32 ? layer_norm_forward_t<float>(x, ns, weight, bias, eps)
                            : layer_norm_forward_t<double>(x, ns, weight, bias, eps);
}

template <typename T>
py::tuple layer_norm_backward_t(const py::array& ga, const py::array& xa, const std::vector<py::ssize_t>& ns,
                                const py::object& mean_obj, const py::object& rstd_obj, const py::object& w_obj,
                                std::array<bool, 3> needs) {
  const char* op = "layer_norm_backward";
  Arr<T> w = param_arg<T>(w_obj, op, "weight", ns, " (the normalized_shape)");
  int64_t D = 1, R = 1;
  for (auto v : ns) D *= v;
  for (py::ssize_t i = 0; i < xa.ndim() - static_cast<py::ssize_t>(ns.size()); ++i) R *= xa.shape(i);
  auto stats = [&](const py::object& obj, const char* name) {
    py::array a = as_array(obj, op, name);
    float_kind(a, op, name);
    if (a.size() != R)
      throw py::value_error(std::string(op) + ": " + name + " must have one entry per sample (" + std::to_string(R) +
                            "), got shape " + shape_str(a));
    return contiguous<T>(a);
  };
  Arr<T> mean = stats(mean_obj, "mean"), rstd = stats(rstd_obj, "rstd");
  const bool need_x = needs[0], need_w = needs[1] && w.ptr() != nullptr, need_b = needs[2];
  Arr<T> x = contiguous<T>(xa), g = contiguous<T>(ga);
  Arr<T> gx, gw, gb;
  if (need_x) gx = Arr<T>(shape_of(xa));
  if (need_w) gw = Arr<T>(ns);
  if (need_b) gb = Arr<T>(ns);
  {
    py::gil_scoped_release release;
    const NormKernelsT<T>& kk = pick_norm<T>();
    const T* xp = x.data();
    const T* gp = g.data();
    const T* mp = mean.data();
    const T* rp = rstd.data();
    const T* wp = ptr_or_null(w);
    // A fixed number of row chunks (a function of R and D only, so the parameter
    // gradients come out bitwise the same on any number of threads), each with its own
    // double accumulators (at most 64 chunks and 4M doubles of them), fed every kFlush
    // rows from T accumulators the row kernel adds into.
    const bool acc = need_w || need_b;
    constexpr int64_t kFlush = 8;
    int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(64, (R + 15) / 16));
    if (acc && D > 0) chunks = std::max<int64_t>(1, std::min<int64_t>(chunks, (int64_t(1) << 22) / (2 * D)));
    const int64_t rows_per = R > 0 ? (R + chunks - 1) / chunks : 0;
    std::vector<double> ws(acc ? static_cast<size_t>(2 * D * chunks) : 0, 0.0);  // (chunks, 2, D)
    if ((need_x || acc) && R > 0 && D > 0) {
      const int t = static_cast<int>(std::min<int64_t>(threads_for(R * D, kGrain), chunks));
#pragma omp parallel num_threads(t) if (t > 1)
      {
        std::vector<T> scratch(need_x ? 0 : D);    // dx of a row nobody asked for
        std::vector<T> block(acc ? 2 * D : 0);     // (2, D): this block of rows' dw, db
#pragma omp for schedule(static)
        for (int64_t ch = 0; ch < chunks; ++ch) {
          double* dw = ws.data() + 2 * D * ch;  // (2, D): the chunk's dw, db
          T* bw = need_w ? block.data() : nullptr;
          T* bb = need_b ? block.data() + D : nullptr;
          const int64_t r0 = ch * rows_per, r1 = std::min(R, (ch + 1) * rows_per);
          for (int64_t r = r0; r < r1; ++r) {
            if (acc && (r - r0) % kFlush == 0) std::fill(block.begin(), block.end(), T(0));
            T* dx = need_x ? gx.mutable_data() + r * D : scratch.data();
            kk.ln_row_backward(gp + r * D, xp + r * D, dx, D, mp[r], rp[r], wp, bw, bb);
            if (acc && ((r - r0) % kFlush == kFlush - 1 || r == r1 - 1))
              for (int64_t j = 0; j < 2 * D; ++j) dw[j] += static_cast<double>(block[j]);
          }
        }
      }
    }
    for (int64_t j = 0; j < D; ++j) {
      double sw = 0.0, sb = 0.0;
      for (int64_t ch = 0; acc && ch < chunks; ++ch) {
        sw += ws[2 * D * ch + j];
        sb += ws[2 * D * ch + D + j];
      }
      if (need_w) gw.mutable_data()[j] = static_cast<T>(sw);
      if (need_b) gb.mutable_data()[j] = static_cast<T>(sb);
    }
  }
  return py::make_tuple(need_x ? py::object(gx) : py::object(py::none()), need_w ? py::object(gw) : py::object(py::none()),
                        need_b ? py::object(gb) : py::object(py::none()));
}

py::tuple layer_norm_backward_py(py::object grad_out, py::object input, py::object normalized_shape, py::object mean,
                                 py::object rstd, py::object weight, py::object needs_obj) {
  const char* op = "layer_norm_backward";
  py::array x = as_array(input, op, "input"), g = as_array(grad_out, op, "grad_out");
  Float kind = float_kind(x, op, "input");
  float_kind(g, op, "grad_out");
  check_same_dtype(g, x, op, "grad_out", "input");
  if (shape_of(g) != shape_of(x))
    throw py::value_error(std::string(op) + ": grad_out must have the input's shape " + shape_str(x) + ", got " +
                          shape_str(g));
  auto ns = normalized_shape_arg(normalized_shape, x, op);
  auto needs = needs_arg(needs_obj, op);
  return kind == Float::f32 ? layer_norm_backward_t<float>(g, x, ns, mean, rstd, weight, needs)
                            : layer_norm_backward_t<double>(g, x, ns, mean, rstd, weight, needs);
}

// ---------------------------------------------------------------------------------------
// group norm
// ---------------------------------------------------------------------------------------

struct GnShape {
  int64_t N, C, L, G;
  int64_t per() const { return C / G; }  // channels per group
};

GnShape gn_shape(const py::array& x, int64_t num_groups, const char* op) {
  if (x.ndim() < 2)
    throw py::value_error(std::string(op) + ": input must have at least 2 dimensions (N, C, *), got shape " +
                          shape_str(x));
  GnShape s{x.shape(0), x.shape(1), 1, num_groups};
  for (py::ssize_t i = 2; i < x.ndim(); ++i) s.L *= x.shape(i);
  if (num_groups <= 0 || s.C % num_groups != 0)
    throw py::value_error(std::string(op) + ": the input's " + std::to_string(s.C) +
                          " channels must be divisible by num_groups, got num_groups=" + std::to_string(num_groups) +
                          " (input shape " + shape_str(x) + ")");
  return s;
}

template <typename T>
py::tuple group_norm_forward_t(const py::array& xa, const GnShape& s, const py::object& w_obj,
                               const py::object& b_obj, double eps) {
  const char* op = "group_norm";
  const std::string why = " to match the input's " + std::to_string(s.C) + " channels";
  Arr<T> w = param_arg<T>(w_obj, op, "weight", {s.C}, why);
  Arr<T> b = param_arg<T>(b_obj, op, "bias", {s.C}, why);
  Arr<T> x = contiguous<T>(xa);
  Arr<T> out(shape_of(xa)), mean(std::vector<py::ssize_t>{s.N, s.G}), rstd(std::vector<py::ssize_t>{s.N, s.G});
  const int64_t NG = s.N * s.G, run = s.per() * s.L;  // groups, values per group
  if (NG > 0) {
    py::gil_scoped_release release;
    const NormKernelsT<T>& k = pick_norm<T>();
    const T* xp = x.data();
    T* yp = out.mutable_data();
    const T* wp = ptr_or_null(w);
    const T* bp = ptr_or_null(b);
    const int t = threads_over(NG, std::max<int64_t>(run, 1));
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
    for (int64_t ng = 0; ng < NG; ++ng) {
      const T* xg = xp + ng * run;  // the group: (C / G, L), contiguous
      if (run == 0) {
        mean.mutable_data()[ng] = rstd.mutable_data()[ng] = std::numeric_limits<T>::quiet_NaN();
        continue;
      }
      double sum = 0.0, sq = 0.0;
      k.sums_shifted(xg, run, static_cast<double>(xg[0]), &sum, &sq);
      MeanVar mv = mean_var_from_shifted(sum, sq, static_cast<double>(xg[0]), static_cast<double>(run));
      const double rs = 1.0 / std::sqrt(mv.var + eps);
      const HiLo<T> m = split_hi_lo<T>(mv.mean);
      const int64_t c0 = (ng % s.G) * s.per();
      for (int64_t i = 0; i < s.per(); ++i) {
        const int64_t c = c0 + i;
        const double sc = rs * (wp ? static_cast<double>(wp[c]) : 1.0);
        k.affine(xg + i * s.L, yp + ng * run + i * s.L, s.L, m.hi, m.lo, static_cast<T>(sc), bp ? bp[c] : T(0));
      }
      mean.mutable_data()[ng] = static_cast<T>(mv.mean);
      rstd.mutable_data()[ng] = static_cast<T>(rs);
    }
  }
  return py::make_tuple(out, mean, rstd);
}

py::tuple group_norm_forward_py(py::object input, int64_t num_groups, py::object weight, py::object bias,
                                double eps) {
  const char* op = "group_norm";
  py::array x = as_array(input, op, "input");
  Float kind = float_kind(x, op, "input");
  GnShape s = gn_shape(x, num_groups, op);
  return kind == Float::f32 ? group_norm_forward_t<float>(x, s, weight, bias, eps)
                            : group_norm_forward_t<double>(x, s, weight, bias, eps);
}

template <typename T>
py::tuple group_norm_backward_t(const py::array& ga, const py::array& xa, const GnShape& s, const py::object& mean_obj,
                                const py::object& rstd_obj, const py::object& w_obj, std::array<bool, 3> needs) {
  const char* op = "group_norm_backward";
  const std::string why = " to match the input's " + std::to_string(s.C) + " channels";
  Arr<T> w = param_arg<T>(w_obj, op, "weight", {s.C}, why);
  const int64_t NG = s.N * s.G, per = s.per();
  auto stats = [&](const py::object& obj, const char* name) {
    py::array a = as_array(obj, op, name);
    float_kind(a, op, name);
    if (a.size() != NG)
      throw py::value_error(std::string(op) + ": " + name + " must have shape (" + std::to_string(s.N) + ", " +
                            std::to_string(s.G) + "), got " + shape_str(a));
    return contiguous<T>(a);
  };
  Arr<T> mean = stats(mean_obj, "mean"), rstd = stats(rstd_obj, "rstd");
  const bool need_x = needs[0], need_w = needs[1] && w.ptr() != nullptr, need_b = needs[2];
  Arr<T> x = contiguous<T>(xa), g = contiguous<T>(ga);
  Arr<T> gx, gw, gb;
  if (need_x) gx = Arr<T>(shape_of(xa));
  if (need_w) gw = Arr<T>(std::vector<py::ssize_t>{s.C});
  if (need_b) gb = Arr<T>(std::vector<py::ssize_t>{s.C});
  {
    py::gil_scoped_release release;
    const NormKernelsT<T>& k = pick_norm<T>();
    const T* xp = x.data();
    const T* gp = g.data();
    const T* wp = ptr_or_null(w);
    const T* mp = mean.data();
    const T* rp = rstd.data();
    std::vector<double> ws(2 * s.N * s.C, 0.0);  // (N, C, 2): sum dy, sum dy (x - mean) per plane
    const double M = static_cast<double>(per) * static_cast<double>(s.L);
    const int t = threads_over(std::max<int64_t>(NG, 1), std::max<int64_t>(per * s.L, 1));
    if (NG > 0 && s.L > 0) {
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
      for (int64_t ng = 0; ng < NG; ++ng) {
        const int64_t n = ng / s.G, c0 = (ng % s.G) * per;
        double S1 = 0.0, S2 = 0.0;  // sum g, sum g (x - mean) with g = dy w
        for (int64_t i = 0; i < per; ++i) {
          const int64_t c = c0 + i, o = (n * s.C + c) * s.L;
          double* pr = &ws[2 * (n * s.C + c)];
          k.sums_grad(gp + o, xp + o, s.L, static_cast<double>(mp[ng]), pr, pr + 1);
          const double wc = wp ? static_cast<double>(wp[c]) : 1.0;
          S1 += wc * pr[0];
          S2 += wc * pr[1];
        }
        if (!need_x) continue;
        const double r = rp[ng];
        const NormGradCoeffs gc = norm_grad_coeffs(r, 1.0, S1, S2, M);  // w is inside S1, S2 (and A below)
        const T B = static_cast<T>(gc.B), Cc = static_cast<T>(gc.C);
        for (int64_t i = 0; i < per; ++i) {
          const int64_t c = c0 + i, o = (n * s.C + c) * s.L;
          const T A = static_cast<T>(r * (wp ? static_cast<double>(wp[c]) : 1.0));
          k.affine_grad(gp + o, xp + o, gx.mutable_data() + o, s.L, A, mp[ng], B, Cc);
        }
      }
    } else if (need_x && gx.size() > 0) {
      std::memset(gx.mutable_data(), 0, sizeof(T) * gx.size());
    }
    for (int64_t c = 0; c < s.C; ++c) {
      double sw = 0.0, sb = 0.0;
      for (int64_t n = 0; n < s.N; ++n) {
        sw += static_cast<double>(rp[n * s.G + c / per]) * ws[2 * (n * s.C + c) + 1];
        sb += ws[2 * (n * s.C + c)];
      }
      if (need_w) gw.mutable_data()[c] = static_cast<T>(sw);
      if (need_b) gb.mutable_data()[c] = static_cast<T>(sb);
    }
  }
  return py::make_tuple(need_x ? py::object(gx) : py::object(py::none()), need_w ? py::object(gw) : py::object(py::none()),
                        need_b ? py::object(gb) : py::object(py::none()));
}

py::tuple group_norm_backward_py(py::object grad_out, py::object input, int64_t num_groups, py::object mean,
                                 py::object rstd, py::object weight, py::object needs_obj) {
  const char* op = "group_norm_backward";
  py::array x = as_array(input, op, "input"), g = as_array(grad_out, op, "grad_out");
  Float kind = float_kind(x, op, "input");
  float_kind(g, op, "grad_out");
  check_same_dtype(g, x, op, "grad_out", "input");
  if (shape_of(g) != shape_of(x))
    throw py::value_error(std::string(op) + ": grad_out must have the input's shape " + shape_str(x) + ", got " +
                          shape_str(g));
  GnShape s = gn_shape(x, num_groups, op);
  auto needs = needs_arg(needs_obj, op);
  return kind == Float::f32 ? group_norm_backward_t<float>(g, x, s, mean, rstd, weight, needs)
                            : group_norm_backward_t<double>(g, x, s, mean, rstd, weight, needs);
}

}  // namespace

void bind_norm(py::module_& m) {
  const auto needs_default = py::make_tuple(true, true, true);
  m.def("batch_norm_forward", &batch_norm_forward_py, py::arg("input"), py::arg("running_mean"),
        py::arg("running_var"), py::arg("weight") = py::none(), py::arg("bias") = py::none(),
        py::arg("training") = false, py::arg("momentum") = 0.1, py::arg("eps") = 1e-5,
        "Batch norm over (N, C) or (N, C, *): (out, save_mean, save_invstd); training updates the running "
        "statistics in place.");
  m.def("batch_norm_backward", &batch_norm_backward_py, py::arg("grad_out"), py::arg("input"), py::arg("weight"),
        py::arg("save_mean"), py::arg("save_invstd"), py::arg("training"), py::arg("needs") = needs_default,
        "Gradients (grad_input, grad_weight, grad_bias) of batch_norm_forward.");
  m.def("layer_norm_forward", &layer_norm_forward_py, py::arg("input"), py::arg("normalized_shape"),
        py::arg("weight") = py::none(), py::arg("bias") = py::none(), py::arg("eps") = 1e-5,
        "Layer norm over the trailing normalized_shape: (out, mean, rstd).");
  m.def("layer_norm_backward", &layer_norm_backward_py, py::arg("grad_out"), py::arg("input"),
        py::arg("normalized_shape"), py::arg("mean"), py::arg("rstd"), py::arg("weight") = py::none(),
        py::arg("needs") = needs_default, "Gradients (grad_input, grad_weight, grad_bias) of layer_norm_forward.");
  m.def("group_norm_forward", &group_norm_forward_py, py::arg("input"), py::arg("num_groups"),
        py::arg("weight") = py::none(), py::arg("bias") = py::none(), py::arg("eps") = 1e-5,
        "Group norm over (N, C, *) in num_groups groups (instance norm: num_groups == C): (out, mean, rstd).");
  m.def("group_norm_backward", &group_norm_backward_py, py::arg("grad_out"), py::arg("input"), py::arg("num_groups"),
        py::arg("mean"), py::arg("rstd"), py::arg("weight") = py::none(), py::arg("needs") = needs_default,
        "Gradients (grad_input, grad_weight, grad_bias) of group_norm_forward.");
}

}  // namespace pydl
