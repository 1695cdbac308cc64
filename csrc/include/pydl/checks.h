// Argument checks shared by the bindings: every check names the op, the argument, what
// was expected and what came, and runs before any pointer is touched.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace pydl {
namespace py = pybind11;

inline std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (i) s += ", ";
    s += std::to_string(a.shape(i));
  }
  return s + (a.ndim() == 1 ? ",)" : ")");
}

inline std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// Rejects anything that is not a NumPy array (lists, CuPy arrays, ...) by name.
inline py::array as_array(const py::handle& obj, const char* op, const char* arg) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(op) + ": " + arg + " must be a numpy.ndarray, got " +
                         py::str(py::type::of(obj)).cast<std::string>());
  return py::reinterpret_borrow<py::array>(obj);
}

enum class Float { f32, f64 };

// dtypes are compared with ==, not by identity: an equal dtype may be another object
// (arrays that went through pickle, e.g. from DataLoader worker processes).
inline Float float_kind(const py::array& a, const char* op, const char* arg) {
  if (a.dtype().equal(py::dtype::of<float>())) return Float::f32;
  if (a.dtype().equal(py::dtype::of<double>())) return Float::f64;
  throw py::type_error(std::string(op) + ": " + arg + " must be float32 or float64, got " + dtype_str(a));
}

inline void check_same_dtype(const py::array& a, const py::array& b, const char* op, const char* an, const char* bn) {
  if (!a.dtype().equal(b.dtype()))
    throw py::type_error(std::string(op) + ": " + an + " and " + bn + " must have the same dtype, got " +
                         dtype_str(a) + " and " + dtype_str(b));
}

inline void check_ndim(const py::array& a, std::initializer_list<int> allowed, const char* op, const char* arg) {
  for (int n : allowed)
    if (a.ndim() == n) return;
  std::string want;
  for (int n : allowed) want += (want.empty() ? "" : " or ") + std::to_string(n);
  throw py::value_error(std::string(op) + ": " + arg + " must have " + want + " dimensions, got shape " +
                        shape_str(a));
}

// A C-contiguous, aligned array of T: `a` itself when it already is one, else a copy
// (strided, negative-stride and misaligned views are copied, never misread).
template <typename T>
py::array_t<T, py::array::c_style> contiguous(const py::array& a) {
  const bool aligned = reinterpret_cast<uintptr_t>(a.data()) % alignof(T) == 0;
  if (aligned && (a.flags() & py::array::c_style) && a.dtype().equal(py::dtype::of<T>()))
    return py::reinterpret_borrow<py::array_t<T, py::array::c_style>>(a);
  py::object copy = py::module_::import("numpy").attr("require")(a, py::dtype::of<T>(), "CA");
  return py::reinterpret_borrow<py::array_t<T, py::array::c_style>>(copy);
}

// Element strides of `a` when every byte stride is a whole number of elements, for the
// kernels that read strided operands in place; empty when it must be copied first.
template <typename T>
std::vector<int64_t> element_strides(const py::array& a) {
  std::vector<int64_t> s;
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (a.strides(i) % static_cast<py::ssize_t>(sizeof(T)) != 0) return {};
    s.push_back(a.strides(i) / static_cast<py::ssize_t>(sizeof(T)));
  }
  if (reinterpret_cast<uintptr_t>(a.data()) % alignof(T) != 0) return {};
  return s;
}

}  // namespace pydl
