// dropout on the CPU: out = x * (keep ? 1 / (1 - p) : 0), with the caller's keep-mask.
//
// What it computes: inverted dropout (the seeds' trick: scale the survivors at training
// time so nothing changes at test time). The mask (bool or uint8, non-zero = keep) has the
// input's shape, or a prefix of it with trailing size-1 axes allowed, and broadcasts over
// the rest: a (N, C) or (N, C, 1, 1) mask over (N, C, H, W) is dropout2d. The backward is
// the same product applied to the gradient. p == 1 multiplies by 0 (as PyTorch does, so
// NaN stays NaN and -x gives -0).
//
// Dimension legend: O = the mask's size (outer), I = the input's size / O (inner: the
// values one mask entry covers).
//
// Algorithm: one streaming pass, split across threads by element ranges; the per-element
// factor is a select between two constants, which the compiler vectorises. The random
// draw stays in Python (pydl's generator), so the kernel is deterministic.
//
// Workspace: none.
//
// Checked by tests/kernels/test_dropout.py against pydl/kernels/reference/dropout.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>
#include <vector>

#include "pydl/checks.h"
#include "pydl/parallel.h"

namespace pydl {
namespace py = pybind11;

namespace {

// Elements a thread must get before a second one is used: these kernels stream memory, so
// a second thread saves at most ~half of a pass (~0.35 ms per 2M float32 on one core),
// while waking it costs milliseconds whenever another process holds the other core.
constexpr int64_t kGrain = int64_t(1) << 21;

template <typename T>
void dropout_kernel(const T* x, const uint8_t* mask, T* y, int64_t O, int64_t I, T scale) {
  const int64_t n = O * I;
  const int t = threads_for(n, kGrain);
  if (I == 1) {
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * (mask[i] ? scale : T(0));
  } else {
    const int to = static_cast<int>(std::min<int64_t>(t, O));
#pragma omp parallel for schedule(static) num_threads(to) if (to > 1)
    for (int64_t o = 0; o < O; ++o) {
      const T f = mask[o] ? scale : T(0);
      for (int64_t i = 0; i < I; ++i) y[o * I + i] = x[o * I + i] * f;
    }
  }
}

py::array dropout_py(py::object input, double p, py::object mask_obj, const char* op, const char* xname) {
  py::array xa = as_array(input, op, xname);
  Float kind = float_kind(xa, op, xname);
  if (!(p >= 0.0 && p <= 1.0)) throw py::value_error(std::string(op) + ": p must lie in [0, 1], got " + std::to_string(p));
  py::array ma = as_array(mask_obj, op, "mask");
  if (!ma.dtype().is(py::dtype::of<bool>()) && !ma.dtype().is(py::dtype::of<uint8_t>()))
    throw py::type_error(std::string(op) + ": mask must be bool or uint8, got " + dtype_str(ma));
  // The mask's axes match a prefix of the input's; any after that must be 1.
  py::ssize_t k = 0;
  while (k < std::min(ma.ndim(), xa.ndim()) && ma.shape(k) == xa.shape(k)) ++k;
  bool ok = ma.ndim() <= xa.ndim();
  for (py::ssize_t i = k; ok && i < ma.ndim(); ++i) ok = ma.shape(i) == 1;
  if (!ok)
    throw py::value_error(std::string(op) + ": mask of shape " + shape_str(ma) + " must have the input's shape " +
                          shape_str(xa) + " or a prefix of it (e.g. (N, C) or (N, C, 1, 1) for dropout2d)");
  int64_t O = 1, I = 1;
  for (py::ssize_t i = 0; i < k; ++i) O *= xa.shape(i);
  for (py::ssize_t i = k; i < xa.ndim(); ++i) I *= xa.shape(i);
  py::array_t<uint8_t, py::array::c_style> m = contiguous<uint8_t>(ma.dtype().is(py::dtype::of<bool>()) ? ma.view("u1") : ma);
  const double scale = p == 1.0 ? 0.0 : 1.0 / (1.0 - p);
  auto run = [&](auto tag) -> py::array {
    using T = decltype(tag);
    auto x = contiguous<T>(xa);
    py::array_t<T, py::array::c_style> y(std::vector<py::ssize_t>(xa.shape(), xa.shape() + xa.ndim()));
    if (y.size() > 0) {
      py::gil_scoped_release release;
      dropout_kernel<T>(x.data(), m.data(), y.mutable_data(), O, I, static_cast<T>(scale));
    }
    return y;
  };
  return kind == Float::f32 ? run(float{}) : run(double{});
}

}  // namespace

void bind_dropout(py::module_& m) {
  m.def("dropout_forward", [](py::object x, double p, py::object mask) { return dropout_py(x, p, mask, "dropout", "input"); },
        py::arg("input"), py::arg("p"), py::arg("mask"),
        "input * (mask / (1 - p)); mask bool/uint8 of the input's shape or a prefix of it (dropout2d: (N, C)).");
  m.def("dropout_backward",
        [](py::object g, double p, py::object mask) { return dropout_py(g, p, mask, "dropout_backward", "grad_out"); },
        py::arg("grad_out"), py::arg("p"), py::arg("mask"), "Gradient of dropout: the same mask and scale.");
}

}  // namespace pydl
