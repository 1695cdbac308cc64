// softmax family binding: argument checks, output allocation, the loss reduction and
// the backward of the fused losses. The kernels are in softmax_isa.cpp (see the block
// comment there for the formulas and the algorithm).
//
// Fused losses: cross_entropy_forward / svm_loss_forward return (loss, cache) where the
// cache (a LossCache) holds the gradient of the reduced loss for grad_loss = 1, which
// the forward computed while it had each row in L1. The first backward hands that array
// out (scaled in place by grad_loss, untouched when grad_loss == 1) and the cache lets go
// of it; a second backward through the same cache (retain_graph) runs the forward again
// from the saved arguments, so the array returned the first time may be freely modified.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "pydl/checks.h"
#include "pydl/parallel.h"
#include "pydl/softmax.h"

namespace pydl {
namespace py = pybind11;

namespace {

// One row of ~16K elements is worth a thread; never more threads than rows.
int row_threads(int64_t N, int64_t C) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads_for(N * C, 1 << 14), N)));
}

const char* reduction_name(Reduction r) {
  switch (r) {
    case Reduction::mean: return "mean";
    case Reduction::sum: return "sum";
    default: return "none";
  }
}

Reduction parse_reduction(const std::string& s, const char* op) {
  if (s == "mean") return Reduction::mean;
  if (s == "sum") return Reduction::sum;
  if (s == "none") return Reduction::none;
  throw py::value_error(std::string(op) + ": reduction must be 'mean', 'sum' or 'none', got '" + s + "'");
}

std::vector<py::ssize_t> shape_of(const py::array& a) { return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()); }

// ---------------------------------------------------------------------------------
// softmax / log_softmax
// ---------------------------------------------------------------------------------

py::array checked_float(const py::object& obj, const char* op, const char* arg, Float* kind) {
  py::array a = as_array(obj, op, arg);
  *kind = float_kind(a, op, arg);
  if (a.ndim() == 0)
    throw py::value_error(std::string(op) + ": " + arg + " must have at least 1 dimension, got a 0-d array");
  return a;
}

template <typename T, typename Kernel>
py::array rowwise_forward(const py::array& x_in, Kernel kernel) {
  auto x = contiguous<T>(x_in);
  py::array_t<T, py::array::c_style> y(shape_of(x));
  const int64_t C = x.shape(x.ndim() - 1);
  if (x.size() == 0) return std::move(y);
  const int64_t N = x.size() / C;
  const T* xp = x.data();
  T* yp = y.mutable_data();
  {
    py::gil_scoped_release release;
    kernel(xp, yp, N, C, row_threads(N, C));  // first touch of y happens here, in parallel
  }
  return std::move(y);
}

template <typename T, typename Kernel>
py::array rowwise_backward(const py::array& gy_in, const py::array& y_in, Kernel kernel) {
  auto gy = contiguous<T>(gy_in);
  auto y = contiguous<T>(y_in);
  py::array_t<T, py::array::c_style> gx(shape_of(y));
  const int64_t C = y.shape(y.ndim() - 1);
  if (y.size() == 0) return std::move(gx);
  const int64_t N = y.size() / C;
  const T* gp = gy.data();
  const T* yp = y.data();
  T* out = gx.mutable_data();
  {
    py::gil_scoped_release release;
    kernel(gp, yp, out, N, C, row_threads(N, C));
  }
  return std::move(gx);
}

py::array softmax_forward_py(py::object x_obj) {
  Float k;
  py::array x = checked_float(x_obj, "softmax", "x", &k);
  if (k == Float::f32) return rowwise_forward<float>(x, pick_softmax<float>().softmax_forward);
  return rowwise_forward<double>(x, pick_softmax<double>().softmax_forward);
}

py::array log_softmax_forward_py(py::object x_obj) {
  Float k;
  py::array x = checked_float(x_obj, "log_softmax", "x", &k);
  if (k == Float::f32) return rowwise_forward<float>(x, pick_softmax<float>().log_softmax_forward);
  return rowwise_forward<double>(x, pick_softmax<double>().log_softmax_forward);
}

template <bool kLog>
py::array softmax_family_backward_py(py::object gy_obj, py::object y_obj) {
  const char* op = kLog ? "log_softmax_backward" : "softmax_backward";
  Float k;
  py::array gy = checked_float(gy_obj, op, "grad_y", &k);
  py::array y = checked_float(y_obj, op, "y", &k);
  check_same_dtype(gy, y, op, "grad_y", "y");
  if (shape_of(gy) != shape_of(y))
    throw py::value_error(std::string(op) + ": grad_y must have the shape of y " + shape_str(y) + ", got " +
                          shape_str(gy));
  if (k == Float::f32)
    return rowwise_backward<float>(gy, y, kLog ? pick_softmax<float>().log_softmax_backward
                                                : pick_softmax<float>().softmax_backward);
  return rowwise_backward<double>(gy, y, kLog ? pick_softmax<double>().log_softmax_backward
                                               : pick_softmax<double>().softmax_backward);
}

// ---------------------------------------------------------------------------------
// Fused losses
// ---------------------------------------------------------------------------------

// What a fused loss's backward needs: the gradient for grad_loss = 1, and a way to get
// it again once it has been handed out.
struct LossCache {
  std::string op;  // "cross_entropy" or "svm_loss"
  Reduction reduction;
  int64_t N, C;
  std::string dtype;
  py::object grad;                   // (N, C) array, None once handed out
  std::function<py::array()> rerun;  // the forward again, returning its gradient
};

// logits / scores: a 2-D float array with at least one class.
py::array checked_scores(const py::object& obj, const char* op, const char* arg, Float* kind) {
  py::array a = as_array(obj, op, arg);
  *kind = float_kind(a, op, arg);
  if (a.ndim() != 2)
    throw py::value_error(std::string(op) + ": " + arg + " must have 2 dimensions (N, C), got shape " + shape_str(a));
  if (a.shape(1) == 0)
    throw py::value_error(std::string(op) + ": " + arg + " must have at least one class, got shape " + shape_str(a));
  return a;
}

// target: (N,) integer class indices of any integer dtype, as a contiguous int64 array.
py::array_t<int64_t, py::array::c_style> checked_target(const py::object& obj, const char* op, int64_t N) {
  py::array t = as_array(obj, op, "target");
  const char kind = t.dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw py::type_error(std::string(op) + ": target must hold integer class indices, got " + dtype_str(t));
  if (t.ndim() != 1 || t.shape(0) != N)
    throw py::value_error(std::string(op) + ": target must have shape (N,) = (" + std::to_string(N) + ",), got " +
                          shape_str(t));
  return contiguous<int64_t>(t);
}

void check_target_range(const int64_t* t, int64_t N, int64_t C, const char* op, bool has_ignore, int64_t ignore) {
  for (int64_t i = 0; i < N; ++i) {
    if (has_ignore && t[i] == ignore) continue;
    if (t[i] < 0 || t[i] >= C)
      throw py::value_error(std::string(op) + ": target index " + std::to_string(t[i]) + " out of range for " +
                            std::to_string(C) + " classes (at target[" + std::to_string(i) + "])");
  }
}

// The reduced loss from the per-row losses, summed in row order (the same for any
// thread count). mean divides by `denominator`: 0 / 0 is NaN, as in PyTorch.
template <typename T>
py::array reduce_loss(const std::vector<double>& row_loss, Reduction r, double denominator) {
  if (r == Reduction::none) {
    py::array_t<T> out(static_cast<py::ssize_t>(row_loss.size()));
    T* p = out.mutable_data();
    for (size_t i = 0; i < row_loss.size(); ++i) p[i] = static_cast<T>(row_loss[i]);
    return std::move(out);
  }
  double total = 0.0;
  for (double l : row_loss) total += l;
  if (r == Reduction::mean) total /= denominator;
  py::array_t<T> out(std::vector<py::ssize_t>{});
  *out.mutable_data() = static_cast<T>(total);
  return std::move(out);
}

struct CrossEntropyOptions {
  int64_t ignore_index;
  double label_smoothing;
  Reduction reduction;
};

template <typename T>
std::pair<py::array, py::array> cross_entropy_typed(const py::array& logits_in, const py::object& target_obj,
                                                    const py::object& weight_obj, const CrossEntropyOptions& o) {
  const char* op = "cross_entropy";
  auto logits = contiguous<T>(logits_in);
  const int64_t N = logits.shape(0), C = logits.shape(1);
  auto target = checked_target(target_obj, op, N);
  const int64_t* tp = target.data();
  check_target_range(tp, N, C, op, true, o.ignore_index);

  py::array_t<T, py::array::c_style> weight;
  const T* wp = nullptr;
  double weight_sum = static_cast<double>(C);
  if (!weight_obj.is_none()) {
    py::array w = as_array(weight_obj, op, "weight");
    float_kind(w, op, "weight");
    if (w.ndim() != 1 || w.shape(0) != C)
      throw py::value_error(std::string(op) + ": weight must have shape (C,) = (" + std::to_string(C) + ",), got " +
                            shape_str(w));
    weight = contiguous<T>(w);
    wp = weight.data();
    weight_sum = 0.0;
    for (int64_t c = 0; c < C; ++c) weight_sum += static_cast<double>(wp[c]);
  }
  // mean divides by the total weight of the targets that count (their number without weights).
  double denominator = 0.0;
  for (int64_t i = 0; i < N; ++i)
    if (tp[i] != o.ignore_index) denominator += wp ? static_cast<double>(wp[tp[i]]) : 1.0;

  py::array_t<T, py::array::c_style> grad({N, C});
  std::vector<double> row_loss(static_cast<size_t>(N));
  if (N > 0) {
    CrossEntropyArgs<T> a{N, C, logits.data(), tp, wp, weight_sum, o.ignore_index, o.label_smoothing,
                          o.reduction == Reduction::mean ? 1.0 / denominator : 1.0,
                          grad.mutable_data(), row_loss.data(), row_threads(N, C)};
    py::gil_scoped_release release;
    pick_softmax<T>().cross_entropy(a);
  }
  return {reduce_loss<T>(row_loss, o.reduction, denominator), std::move(grad)};
}

std::pair<py::array, py::array> cross_entropy_run(const py::object& logits_obj, const py::object& target,
                                                  const py::object& weight, const CrossEntropyOptions& o) {
  Float k;
  py::array logits = checked_scores(logits_obj, "cross_entropy", "logits", &k);
  return k == Float::f32 ? cross_entropy_typed<float>(logits, target, weight, o)
                         : cross_entropy_typed<double>(logits, target, weight, o);
}

py::tuple cross_entropy_forward_py(py::object logits, py::object target, py::object weight, int64_t ignore_index,
                                   double label_smoothing, const std::string& reduction) {
  const char* op = "cross_entropy";
  CrossEntropyOptions o{ignore_index, label_smoothing, parse_reduction(reduction, op)};
  if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0))
    throw py::value_error(std::string(op) + ": label_smoothing must be between 0.0 and 1.0, got " +
                          py::str(py::float_(label_smoothing)).cast<std::string>());
  auto [loss, grad] = cross_entropy_run(logits, target, weight, o);
  auto cache = std::make_unique<LossCache>();
  cache->op = op;
  cache->reduction = o.reduction;
  cache->N = grad.shape(0);
  cache->C = grad.shape(1);
  cache->dtype = dtype_str(grad);
  cache->grad = grad;
  cache->rerun = [logits, target, weight, o]() { return cross_entropy_run(logits, target, weight, o).second; };
  return py::make_tuple(loss, py::cast(std::move(cache)));
}

template <typename T>
std::pair<py::array, py::array> svm_typed(const py::array& scores_in, const py::object& target_obj, double margin,
                                          Reduction reduction) {
  const char* op = "svm_loss";
  auto scores = contiguous<T>(scores_in);
  const int64_t N = scores.shape(0), C = scores.shape(1);
  auto target = checked_target(target_obj, op, N);
  check_target_range(target.data(), N, C, op, false, 0);
  py::array_t<T, py::array::c_style> grad({N, C});
  std::vector<double> row_loss(static_cast<size_t>(N));
  if (N > 0) {
    SvmArgs<T> a{N, C, scores.data(), target.data(), margin,
                 reduction == Reduction::mean ? 1.0 / static_cast<double>(N) : 1.0,
                 grad.mutable_data(), row_loss.data(), row_threads(N, C)};
    py::gil_scoped_release release;
    pick_softmax<T>().svm_loss(a);
  }
  return {reduce_loss<T>(row_loss, reduction, static_cast<double>(N)), std::move(grad)};
}

std::pair<py::array, py::array> svm_run(const py::object& scores_obj, const py::object& target, double margin,
                                        Reduction reduction) {
  Float k;
  py::array scores = checked_scores(scores_obj, "svm_loss", "scores", &k);
  return k == Float::f32 ? svm_typed<float>(scores, target, margin, reduction)
                         : svm_typed<double>(scores, target, margin, reduction);
}

py::tuple svm_loss_forward_py(py::object scores, py::object target, double margin, const std::string& reduction) {
  const char* op = "svm_loss";
  Reduction r = parse_reduction(reduction, op);
  auto [loss, grad] = svm_run(scores, target, margin, r);
  auto cache = std::make_unique<LossCache>();
  cache->op = op;
  cache->reduction = r;
  cache->N = grad.shape(0);
  cache->C = grad.shape(1);
  cache->dtype = dtype_str(grad);
  cache->grad = grad;
  cache->rerun = [scores, target, margin, r]() { return svm_run(scores, target, margin, r).second; };
  return py::make_tuple(loss, py::cast(std::move(cache)));
}

template <typename T>
void scale_gradient(py::array& grad, const py::object& grad_loss, const LossCache& cache, const std::string& op) {
  const int64_t N = cache.N, C = cache.C;
  T* g = static_cast<T*>(grad.mutable_data());
  if (cache.reduction == Reduction::none) {
    py::array gl = as_array(grad_loss, op.c_str(), "grad_loss");
    float_kind(gl, op.c_str(), "grad_loss");
    if (gl.ndim() != 1 || gl.shape(0) != N)
      throw py::value_error(op + ": grad_loss must have shape (N,) = (" + std::to_string(N) +
                            ",) for reduction='none', got " + shape_str(gl));
    auto row = contiguous<T>(gl);
    const T* rp = row.data();
    py::gil_scoped_release release;
    if (N > 0) pick_softmax<T>().scale_rows(g, N, C, rp, T(1), row_threads(N, C));
    return;
  }
  double s;
  if (py::isinstance<py::array>(grad_loss)) {
    py::array gl = py::reinterpret_borrow<py::array>(grad_loss);
    if (gl.ndim() != 0)
      throw py::value_error(op + ": grad_loss must be a scalar (0-d) for reduction='" +
                            reduction_name(cache.reduction) + "', got shape " + shape_str(gl));
    s = py::float_(grad_loss).cast<double>();
  } else if (py::isinstance<py::float_>(grad_loss) || py::isinstance<py::int_>(grad_loss) ||
             py::isinstance(grad_loss, py::module_::import("numpy").attr("number"))) {
    s = py::float_(grad_loss).cast<double>();
  } else {
    throw py::type_error(op + ": grad_loss must be a number or a 0-d array, got " +
                         py::str(py::type::of(grad_loss)).cast<std::string>());
  }
  if (s == 1.0 || N == 0) return;  // the stored gradient is already the answer
  py::gil_scoped_release release;
  pick_softmax<T>().scale_rows(g, N, C, nullptr, static_cast<T>(s), row_threads(N, C));
}

py::array loss_backward(const std::string& op, py::object grad_loss, py::object cache_obj) {
  const std::string name = op + "_backward";
  if (!py::isinstance<LossCache>(cache_obj))
    throw py::type_error(name + ": cache must be the cache returned by " + op + "_forward, got " +
                         py::str(py::type::of(cache_obj)).cast<std::string>());
  LossCache& cache = cache_obj.cast<LossCache&>();
  if (cache.op != op)
    throw py::type_error(name + ": cache must come from " + op + "_forward, got one from " + cache.op + "_forward");
  // Check grad_loss before the cache gives its gradient away.
  if (cache.reduction == Reduction::none) {
    py::array gl = as_array(grad_loss, name.c_str(), "grad_loss");
    float_kind(gl, name.c_str(), "grad_loss");
  }
  py::array grad = cache.grad.is_none() ? cache.rerun() : py::reinterpret_borrow<py::array>(cache.grad);
  if (dtype_str(grad) == "float32") scale_gradient<float>(grad, grad_loss, cache, name);
  else scale_gradient<double>(grad, grad_loss, cache, name);
  cache.grad = py::none();  // handed out: the caller owns it now
  return grad;
}

}  // namespace

void bind_softmax(py::module_& m) {
  m.def("softmax_forward", &softmax_forward_py, py::arg("x"),
        "softmax over the last axis: (..., C) -> (..., C), float32 or float64.");
  m.def("softmax_backward", &softmax_family_backward_py<false>, py::arg("grad_y"), py::arg("y"),
        "grad_x = y * (grad_y - sum(grad_y * y, -1)), from softmax's output y.");
  m.def("log_softmax_forward", &log_softmax_forward_py, py::arg("x"),
        "log_softmax over the last axis: (..., C) -> (..., C), float32 or float64.");
  m.def("log_softmax_backward", &softmax_family_backward_py<true>, py::arg("grad_y"), py::arg("y"),
        "grad_x = grad_y - exp(y) * sum(grad_y, -1), from log_softmax's output y.");

  py::class_<LossCache>(m, "LossCache", "What a fused loss's backward needs (opaque).")
      .def("__repr__", [](const LossCache& c) {
        return "<" + c.op + " cache: reduction='" + reduction_name(c.reduction) + "', gradient (" +
               std::to_string(c.N) + ", " + std::to_string(c.C) + ") " + c.dtype +
               (c.grad.is_none() ? ", handed out>" : ">");
      });

  m.def("cross_entropy_forward", &cross_entropy_forward_py, py::arg("logits"), py::arg("target"),
        py::arg("weight") = py::none(), py::kw_only(), py::arg("ignore_index") = -100,
        py::arg("label_smoothing") = 0.0, py::arg("reduction") = "mean",
        R"doc(Fused softmax cross-entropy (PyTorch's F.cross_entropy with class-index targets).

logits (N, C) float32/float64, target (N,) integer, weight (C,) or None.
Returns (loss, cache): loss is 0-d for 'mean'/'sum', (N,) for 'none'; the cache holds
the gradient computed in the same pass.)doc");
  m.def(
      "cross_entropy_backward",
      [](py::object grad_loss, py::object cache) { return loss_backward("cross_entropy", grad_loss, cache); },
      py::arg("grad_loss"), py::arg("cache"), "d loss / d logits (N, C), scaled by grad_loss.");
  m.def("svm_loss_forward", &svm_loss_forward_py, py::arg("scores"), py::arg("target"), py::kw_only(),
        py::arg("margin") = 1.0, py::arg("reduction") = "mean",
        R"doc(Multiclass SVM hinge loss: L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + margin).

scores (N, C) float32/float64, target (N,) integer. Returns (loss, cache).)doc");
  m.def(
      "svm_loss_backward",
      [](py::object grad_loss, py::object cache) { return loss_backward("svm_loss", grad_loss, cache); },
      py::arg("grad_loss"), py::arg("cache"), "d loss / d scores (N, C), scaled by grad_loss.");
}

}  // namespace pydl
