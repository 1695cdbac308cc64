// Pointwise kernels of the training step on the CPU: ReLU forward and backward, the
// in-place add that accumulates gradients, and the fused SGD update of one parameter.
//
// What it computes (element by element, n = the arrays' size):
//   relu_forward:   y = x < 0 ? 0 : x                      (NaN passes through, as max(x, 0) in PyTorch)
//   relu_backward:  dx = y > 0 ? dy : 0                     (y: the forward's output; the max gate)
//   add_:           dst += src                              (the copy gate's sum, in place)
//   sgd_step_:      PyTorch's SGD for one parameter, in place on theta and the momentum buffer b:
//                   g = maximize ? -grad : grad;  g += weight_decay * theta;
//                   b = momentum * b + (1 - dampening) * g;  g = nesterov ? g + momentum * b : b;
//                   theta -= lr * g                          (momentum 0: no buffer, g is used as is)
//
// Dimension legend: n = number of elements; every operand has the same shape (no
// broadcasting: the callers take this path only for equal shapes and dtypes).
//
// Algorithm: one streaming pass over contiguous memory, split across threads in element
// ranges once a thread gets at least kGrain elements; the loops are branch-free selects and
// multiply-adds that the compiler vectorises, so no ISA-specific copy is needed (the
// kernels are bound by memory traffic, not arithmetic). NumPy's versions make two passes
// and a temporary (g * (y > 0), buf *= m; buf += g; p -= lr * buf) on one thread; the fused
// SGD reads grad, theta and b once and writes theta and b once.
//
// Workspace: none (outputs are allocated once per call; the in-place kernels write into
// their first argument, which must be C-contiguous, aligned and writable).
//
// Checked by tests/kernels/test_pointwise.py against pydl/kernels/reference/pointwise.py
// (float32 and float64, sizes around the thread split, NaN propagation, bad arguments).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "pydl/checks.h"
#include "pydl/parallel.h"

namespace pydl {
namespace py = pybind11;

namespace {

// Elements a thread must get before a second one is used: ~50-100 us of streaming on one
// core, so the ~5 us of a parallel region is paid back while an image-sized activation
// (e.g. 32 x 64 x 32 x 32 = 2M) still goes on both cores.
constexpr int64_t kGrain = int64_t(1) << 18;

template <typename T>
void relu_forward_kernel(const T* x, T* y, int64_t n) {
  const int t = threads_for(n, kGrain);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];
}

template <typename T>
void relu_backward_kernel(const T* dy, const T* y, T* dx, int64_t n) {
  const int t = threads_for(n, kGrain);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
  for (int64_t i = 0; i < n; ++i) {
    const T g = dy[i];  // loaded unconditionally: a load under the condition would be a branch, not a select
    dx[i] = y[i] > T(0) ? g : T(0);
  }
}

template <typename T>
void add_inplace_kernel(T* dst, const T* src, int64_t n) {
  const int t = threads_for(n, kGrain);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

struct SgdOptions {
  double lr, momentum, dampening, weight_decay;
  bool nesterov, maximize;
};

// The operations in the order (and with the roundings) of pydl/optim/sgd.py's NumPy code,
// one element at a time: d = -g; d = d + wd * p; b = b * m + (1 - damp) * d; d = d + m * b.
// Decay and Momentum are template flags so that each variant is a branch-free loop (and
// weight_decay 0 never computes 0 * p, which would turn an infinite weight into NaN).
template <typename T, bool Decay, bool Momentum>
void sgd_step_loop(T* p, const T* grad, T* buf, int64_t n, const SgdOptions& o) {
  const T lr = T(o.lr), m = T(o.momentum), wd = T(o.weight_decay), keep = T(1.0 - o.dampening);
  const T sign = o.maximize ? T(-1) : T(1);  // exact: -g, or g
  const bool nesterov = o.nesterov;
  const int t = threads_for(n, kGrain);
#pragma omp parallel for schedule(static) num_threads(t) if (t > 1)
  for (int64_t i = 0; i < n; ++i) {
    T d = sign * grad[i];
    if (Decay) d = d + wd * p[i];
    if (Momentum) {
      const T b = buf[i] * m + keep * d;  // keep = 1 (no dampening) multiplies exactly
      buf[i] = b;
      d = nesterov ? d + m * b : b;
    }
    p[i] -= lr * d;
  }
}

template <typename T>
void sgd_step_kernel(T* p, const T* grad, T* buf, int64_t n, const SgdOptions& o) {
  const bool decay = o.weight_decay != 0.0;
  if (buf != nullptr)
    decay ? sgd_step_loop<T, true, true>(p, grad, buf, n, o) : sgd_step_loop<T, false, true>(p, grad, buf, n, o);
  else
    decay ? sgd_step_loop<T, true, false>(p, grad, buf, n, o) : sgd_step_loop<T, false, false>(p, grad, buf, n, o);
}

// An array the kernel may write into: C-contiguous, aligned, writable, float32/float64.
py::array writable(py::object obj, const char* op, const char* arg) {
  py::array a = as_array(obj, op, arg);
  float_kind(a, op, arg);
  const bool aligned = reinterpret_cast<uintptr_t>(a.data()) % a.itemsize() == 0;
  if (!(a.flags() & py::array::c_style) || !aligned)
    throw py::value_error(std::string(op) + ": " + arg + " must be C-contiguous (it is updated in place), got strides of "
                          "an array of shape " + shape_str(a));
  if (!a.writeable()) throw py::value_error(std::string(op) + ": " + arg + " is read-only (it is updated in place)");
  return a;
}

void check_same_shape(const py::array& a, const py::array& b, const char* op, const char* an, const char* bn) {
  bool same = a.ndim() == b.ndim();
  for (py::ssize_t i = 0; same && i < a.ndim(); ++i) same = a.shape(i) == b.shape(i);
  if (!same)
    throw py::value_error(std::string(op) + ": " + an + " and " + bn + " must have the same shape, got " +
                          shape_str(a) + " and " + shape_str(b));
}

template <typename T>
py::array_t<T, py::array::c_style> empty_like(const py::array& a) {
  return py::array_t<T, py::array::c_style>(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
}

py::array relu_forward_py(py::object input) {
  py::array xa = as_array(input, "relu", "input");
  Float kind = float_kind(xa, "relu", "input");
  auto run = [&](auto tag) -> py::array {
    using T = decltype(tag);
    auto x = contiguous<T>(xa);
    auto y = empty_like<T>(xa);
    if (y.size() > 0) {
      py::gil_scoped_release release;
      relu_forward_kernel<T>(x.data(), y.mutable_data(), y.size());
    }
    return y;
  };
  return kind == Float::f32 ? run(float{}) : run(double{});
}

// out = f(a, b) elementwise over two arrays of one shape and dtype, through `kernel`
// (a generic lambda called as kernel(a, b, out, n) with the element type's pointers).
template <typename Kernel>
py::array binary_elementwise(py::object a_obj, py::object b_obj, const char* op, const char* an, const char* bn,
                             Kernel kernel) {
  py::array aa = as_array(a_obj, op, an);
  py::array ba = as_array(b_obj, op, bn);
  Float kind = float_kind(aa, op, an);
  check_same_dtype(aa, ba, op, an, bn);
  check_same_shape(aa, ba, op, an, bn);
  auto run = [&](auto tag) -> py::array {
    using T = decltype(tag);
    auto a = contiguous<T>(aa);
    auto b = contiguous<T>(ba);
    auto out = empty_like<T>(aa);
    if (out.size() > 0) {
      py::gil_scoped_release release;
      kernel(a.data(), b.data(), out.mutable_data(), static_cast<int64_t>(out.size()));
    }
    return out;
  };
  return kind == Float::f32 ? run(float{}) : run(double{});
}

py::array relu_backward_py(py::object grad_out, py::object output) {
  return binary_elementwise(grad_out, output, "relu_backward", "grad_out", "output",
                            [](const auto* g, const auto* y, auto* dx, int64_t n) { relu_backward_kernel(g, y, dx, n); });
}

void add_inplace_py(py::object dst_obj, py::object src_obj) {
  const char* op = "add_";
  py::array dst = writable(dst_obj, op, "dst");
  py::array sa = as_array(src_obj, op, "src");
  check_same_dtype(dst, sa, op, "dst", "src");
  check_same_shape(dst, sa, op, "dst", "src");
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto src = contiguous<T>(sa);
    T* d = static_cast<T*>(dst.mutable_data());
    py::gil_scoped_release release;
    add_inplace_kernel<T>(d, src.data(), dst.size());
  };
  if (dst.size() == 0) return;
  float_kind(dst, op, "dst") == Float::f32 ? run(float{}) : run(double{});
}

void sgd_step_py(py::object param_obj, py::object grad_obj, py::object buf_obj, const SgdOptions& o) {
  const char* op = "sgd_step_";
  py::array p = writable(param_obj, op, "param");
  py::array ga = as_array(grad_obj, op, "grad");
  check_same_dtype(p, ga, op, "param", "grad");
  check_same_shape(p, ga, op, "param", "grad");
  py::array b;  // a default py::array is a real (empty) array, so has_buf says whether one came
  const bool has_buf = !buf_obj.is_none();
  if (has_buf) {
    b = writable(buf_obj, op, "momentum_buffer");
    check_same_dtype(p, b, op, "param", "momentum_buffer");
    check_same_shape(p, b, op, "param", "momentum_buffer");
  } else if (o.momentum != 0.0) {
    throw py::value_error(std::string(op) + ": momentum " + std::to_string(o.momentum) +
                          " needs a momentum_buffer (None given)");
  }
  if (o.nesterov && (o.momentum <= 0.0 || o.dampening != 0.0))
    throw py::value_error(std::string(op) + ": nesterov needs a momentum > 0 and zero dampening");
  if (p.size() == 0) return;
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto g = contiguous<T>(ga);
    T* pd = static_cast<T*>(p.mutable_data());
    T* bd = has_buf ? static_cast<T*>(b.mutable_data()) : nullptr;
    py::gil_scoped_release release;
    sgd_step_kernel<T>(pd, g.data(), bd, p.size(), o);
  };
  float_kind(p, op, "param") == Float::f32 ? run(float{}) : run(double{});
}

}  // namespace

void bind_pointwise(py::module_& m) {
  m.def("relu_forward", &relu_forward_py, py::arg("input"), "max(x, 0) elementwise (NaN passes): any shape -> same shape.");
  m.def("relu_backward", &relu_backward_py, py::arg("grad_out"), py::arg("output"),
        "Gradient of relu from its output: grad_out where output > 0, else 0 (same shapes).");
  m.def("add_", &add_inplace_py, py::arg("dst"), py::arg("src"),
        "dst += src in place (same shape and dtype; dst C-contiguous and writable).");
  m.def(
      "sgd_step_",
      [](py::object param, py::object grad, py::object buf, double lr, double momentum, double dampening,
         double weight_decay, bool nesterov, bool maximize) {
        sgd_step_py(param, grad, buf, SgdOptions{lr, momentum, dampening, weight_decay, nesterov, maximize});
      },
      py::arg("param"), py::arg("grad"), py::arg("momentum_buffer"), py::arg("lr"), py::arg("momentum") = 0.0,
      py::arg("dampening") = 0.0, py::arg("weight_decay") = 0.0, py::arg("nesterov") = false,
      py::arg("maximize") = false,
      "One SGD update of param (and its momentum_buffer, None when momentum is 0) in place, as torch.optim.SGD.");
}

}  // namespace pydl
