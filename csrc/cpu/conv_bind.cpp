// conv2d / conv_transpose2d bindings: argument parsing and checks (every one before a
// pointer is touched), output allocation, dtype dispatch; the kernels are in conv.cpp.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <array>
#include <string>
#include <tuple>
#include <vector>

#include "pydl/checks.h"
#include "pydl/conv.h"

namespace pydl {

namespace {
namespace py = pybind11;

// Arguments beyond this are refused before any size is computed (no int64 overflow).
constexpr int64_t kMaxArg = int64_t(1) << 30;

bool index_value(const py::handle& h, int64_t& out) {
  if (PyBool_Check(h.ptr()) || !PyIndex_Check(h.ptr())) return false;
  const Py_ssize_t v = PyNumber_AsSsize_t(h.ptr(), nullptr);  // clips on overflow
  if (v == -1 && PyErr_Occurred()) {
    PyErr_Clear();
    return false;
  }
  out = v;
  return true;
}

std::string arg_repr(const py::handle& h) { return py::repr(h).cast<std::string>(); }

// An int or a pair of ints -> (vertical, horizontal), each in [lowest, kMaxArg].
std::pair<int64_t, int64_t> pair_arg(const py::handle& v, const char* op, const char* name, int64_t lowest) {
  int64_t a, b;
  bool ok = false;
  if (index_value(v, a)) {
    b = a, ok = true;
  } else if ((py::isinstance<py::tuple>(v) || py::isinstance<py::list>(v)) && py::len(v) == 2) {
    py::sequence s = py::reinterpret_borrow<py::sequence>(v);
    ok = index_value(s[0], a) && index_value(s[1], b);
  }
  if (!ok) throw py::type_error(std::string(op) + ": " + name + " must be an int or a pair of ints, got " + arg_repr(v));
  if (a < lowest || b < lowest)
    throw py::value_error(std::string(op) + ": " + name + " must be " + (lowest > 0 ? "positive" : "non-negative") +
                          ", got " + arg_repr(v));
  if (a > kMaxArg || b > kMaxArg)
    throw py::value_error(std::string(op) + ": " + name + " is too large: " + arg_repr(v));
  return {a, b};
}

int64_t groups_arg(const py::handle& v, const char* op) {
  int64_t gr;
  if (!index_value(v, gr)) throw py::type_error(std::string(op) + ": groups must be an int, got " + arg_repr(v));
  if (gr < 1) throw py::value_error(std::string(op) + ": groups must be positive, got " + std::to_string(gr));
  return gr;
}

std::array<bool, 3> needs_arg(const py::handle& v, const char* op) {
  if (!(py::isinstance<py::tuple>(v) || py::isinstance<py::list>(v)) || py::len(v) != 3)
    throw py::type_error(std::string(op) + ": needs must be a triple of bools (input, weight, bias), got " + arg_repr(v));
  py::sequence s = py::reinterpret_borrow<py::sequence>(v);
  return {py::bool_(s[0]).cast<bool>(), py::bool_(s[1]).cast<bool>(), py::bool_(s[2]).cast<bool>()};
}

std::string dims(int64_t a, int64_t b) { return std::to_string(a) + "x" + std::to_string(b); }

void check_groups(const char* op, int64_t groups, int64_t c_in, int64_t c_out) {
  if (c_in % groups)
    throw py::value_error(std::string(op) + ": groups=" + std::to_string(groups) + " must divide the input channels (" +
                          std::to_string(c_in) + ")");
  if (c_out % groups)
    throw py::value_error(std::string(op) + ": groups=" + std::to_string(groups) +
                          " must divide the output channels (" + std::to_string(c_out) + ")");
}

// Refuses outputs and buffers whose element counts overflow int64.
void check_size(const char* op, std::initializer_list<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n) || n > (int64_t(1) << 56))
      throw py::value_error(std::string(op) + ": output is too large to allocate");
}

struct Checked {
  py::array x, w;  // the operands as given (dtype checked)
  Float kind;
};

Checked check_operands(const py::object& x_obj, const py::object& w_obj, const char* op, const char* x_name) {
  py::array x = as_array(x_obj, op, x_name), w = as_array(w_obj, op, "weight");
  Float kind = float_kind(x, op, x_name);
  float_kind(w, op, "weight");
  check_same_dtype(x, w, op, x_name, "weight");
  if (x.ndim() != 4)
    throw py::value_error(std::string(op) + ": " + x_name + " must have 4 dimensions (N, C, H, W), got shape " +
                          shape_str(x));
  check_ndim(w, {4}, op, "weight");
  return {x, w, kind};
}

// conv2d's geometry from its arguments, every check done.
ConvGeometry conv2d_geometry(const char* op, const py::array& x, const py::array& w, const py::handle& stride,
                             const py::handle& padding, const py::handle& dilation, const py::handle& groups) {
  ConvGeometry g{};
  g.N = x.shape(0), g.C = x.shape(1), g.H = x.shape(2), g.W = x.shape(3);
  g.K = w.shape(0), g.KH = w.shape(2), g.KW = w.shape(3);
  std::tie(g.SH, g.SW) = pair_arg(stride, op, "stride", 1);
  std::tie(g.DH, g.DW) = pair_arg(dilation, op, "dilation", 1);
  g.G = groups_arg(groups, op);
  check_groups(op, g.G, g.C, g.K);
  const int64_t Cg = w.shape(1);
  if (g.C != Cg * g.G)
    throw py::value_error(std::string(op) + ": input has " + std::to_string(g.C) + " channels but weight expects " +
                          std::to_string(Cg * g.G) +
                          (g.G > 1 ? " (" + std::to_string(Cg) + " per group x " + std::to_string(g.G) + " groups)" : ""));
  int64_t pb, pr;  // bottom / right padding
  if (py::isinstance<py::str>(padding)) {
    const std::string p = padding.cast<std::string>();
    if (p == "valid") {
      g.PH = g.PW = pb = pr = 0;
    } else if (p == "same") {
      if (g.SH != 1 || g.SW != 1)
        throw py::value_error(std::string(op) + ": padding='same' is not supported for strided convolutions (stride=" +
                              arg_repr(stride) + ")");
      const int64_t th = g.DH * (g.KH - 1), tw = g.DW * (g.KW - 1);  // odd pixel to the bottom / right
      g.PH = th / 2, pb = th - th / 2, g.PW = tw / 2, pr = tw - tw / 2;
    } else {
      throw py::value_error(std::string(op) + ": padding must be an int, a pair, 'same' or 'valid', got " + arg_repr(padding));
    }
  } else {
    std::tie(g.PH, g.PW) = pair_arg(padding, op, "padding", 0);
    pb = g.PH, pr = g.PW;
  }
  const int64_t eff_h = g.DH * (g.KH - 1) + 1, eff_w = g.DW * (g.KW - 1) + 1;
  const int64_t ph = g.H + g.PH + pb, pw = g.W + g.PW + pr;
  if (g.KH < 1 || g.KW < 1 || eff_h > ph || eff_w > pw)
    throw py::value_error(std::string(op) + ": output size would be non-positive: kernel " + dims(g.KH, g.KW) +
                          " (dilated " + dims(eff_h, eff_w) + ") is larger than the padded input " + dims(ph, pw));
  g.OH = (ph - eff_h) / g.SH + 1;
  g.OW = (pw - eff_w) / g.SW + 1;
  check_size(op, {g.N, g.K, g.OH, g.OW});
  check_size(op, {g.CKK(), g.OW});
  return g;
}

// The geometry of the conv2d that conv_transpose2d transposes: its output is the conv's input.
ConvGeometry transpose_geometry(const char* op, const py::array& x, const py::array& w, const py::handle& stride,
                                const py::handle& padding, const py::handle& output_padding, const py::handle& groups,
                                const py::handle& dilation) {
  ConvGeometry g{};
  g.N = x.shape(0), g.OH = x.shape(2), g.OW = x.shape(3);
  const int64_t Cin = w.shape(0), Kg = w.shape(1);
  g.KH = w.shape(2), g.KW = w.shape(3);
  std::tie(g.SH, g.SW) = pair_arg(stride, op, "stride", 1);
  if (py::isinstance<py::str>(padding))
    throw py::type_error(std::string(op) + ": padding must be an int or a pair of ints, got " + arg_repr(padding));
  std::tie(g.PH, g.PW) = pair_arg(padding, op, "padding", 0);
  const auto [oph, opw] = pair_arg(output_padding, op, "output_padding", 0);
  g.G = groups_arg(groups, op);
  std::tie(g.DH, g.DW) = pair_arg(dilation, op, "dilation", 1);
  if (oph >= std::max(g.SH, g.DH) || opw >= std::max(g.SW, g.DW))
    throw py::value_error(std::string(op) + ": output_padding " + arg_repr(output_padding) +
                          " must be smaller than either stride " + arg_repr(stride) + " or dilation " + arg_repr(dilation));
  check_groups(op, g.G, x.shape(1), Kg * g.G);
  if (x.shape(1) != Cin)
    throw py::value_error(std::string(op) + ": input has " + std::to_string(x.shape(1)) +
                          " channels but weight expects " + std::to_string(Cin));
  g.K = Cin;         // the conv's output channels: this op's input channels
  g.C = Kg * g.G;    // the conv's input channels: this op's output channels
  g.H = (g.OH - 1) * g.SH - 2 * g.PH + g.DH * (g.KH - 1) + oph + 1;
  g.W = (g.OW - 1) * g.SW - 2 * g.PW + g.DW * (g.KW - 1) + opw + 1;
  if (g.H < 1 || g.W < 1 || g.KH < 1 || g.KW < 1)
    throw py::value_error(std::string(op) + ": output size would be non-positive: " + dims(g.H, g.W));
  check_size(op, {g.N, g.C, g.H, g.W});
  check_size(op, {g.CKK(), g.OW});
  return g;
}

template <typename T>
py::array_t<T, py::array::c_style> optional_bias(const py::object& bias, const py::array& x, int64_t channels,
                                                 const char* op) {
  if (bias.is_none()) return py::array_t<T, py::array::c_style>();
  py::array b = as_array(bias, op, "bias");
  float_kind(b, op, "bias");
  check_same_dtype(x, b, op, "input", "bias");
  if (b.ndim() != 1 || b.shape(0) != channels)
    throw py::value_error(std::string(op) + ": bias must have shape (" + std::to_string(channels) + ",), got " +
                          shape_str(b));
  return contiguous<T>(b);
}

void check_grad_out(const char* op, const py::array& x, const py::array& go, std::initializer_list<int64_t> shape) {
  std::vector<int64_t> want(shape);
  bool ok = go.ndim() == 4;
  for (int i = 0; ok && i < 4; ++i) ok = go.shape(i) == want[i];
  if (!ok) {
    std::string s = "(";
    for (size_t i = 0; i < want.size(); ++i) s += (i ? ", " : "") + std::to_string(want[i]);
    throw py::value_error(std::string(op) + ": grad_out must have shape " + s + "), got " + shape_str(go));
  }
  check_same_dtype(x, go, op, "input", "grad_out");
}

template <typename T>
using Arr = py::array_t<T, py::array::c_style>;

template <typename T>
py::array conv2d_forward_typed(const ConvGeometry& g, const py::array& xa, const py::array& wa, const py::object& bias,
                               const char* op) {
  Arr<T> b = optional_bias<T>(bias, xa, g.K, op);
  Arr<T> x = contiguous<T>(xa), w = contiguous<T>(wa);
  Arr<T> out({g.N, g.K, g.OH, g.OW});
  {
    py::gil_scoped_release release;
    conv2d_forward<T>(g, x.data(), w.data(), bias.is_none() ? nullptr : b.data(), out.mutable_data());
  }
  return std::move(out);
}

// grad_out (N, K, OH, OW), input (N, C, H, W), weight (K, Cg, KH, KW) of a conv2d.
template <typename T>
py::tuple conv2d_backward_typed(const ConvGeometry& g, const py::array& goa, const py::array& xa, const py::array& wa,
                                std::array<bool, 3> needs) {
  Arr<T> go = contiguous<T>(goa), x = contiguous<T>(xa), w = contiguous<T>(wa);
  Arr<T> gx, gw, gb;
  if (needs[0]) gx = Arr<T>({g.N, g.C, g.H, g.W});
  if (needs[1]) gw = Arr<T>({g.K, g.Cg(), g.KH, g.KW});
  if (needs[2]) gb = Arr<T>({g.K});
  {
    py::gil_scoped_release release;
    conv2d_backward<T>(g, go.data(), x.data(), w.data(), needs[0] ? gx.mutable_data() : nullptr,
                       needs[1] ? gw.mutable_data() : nullptr, needs[2] ? gb.mutable_data() : nullptr);
  }
  auto or_none = [](bool need, Arr<T>& a) -> py::object { return need ? py::object(a) : py::none(); };
  return py::make_tuple(or_none(needs[0], gx), or_none(needs[1], gw), or_none(needs[2], gb));
}

template <typename T>
py::array conv_transpose2d_forward_typed(const ConvGeometry& g, const py::array& xa, const py::array& wa,
                                         const py::object& bias, const char* op) {
  Arr<T> b = optional_bias<T>(bias, xa, g.C, op);
  Arr<T> x = contiguous<T>(xa), w = contiguous<T>(wa);
  Arr<T> out({g.N, g.C, g.H, g.W});
  {
    py::gil_scoped_release release;
    conv_transpose2d_forward<T>(g, x.data(), w.data(), bias.is_none() ? nullptr : b.data(), out.mutable_data());
  }
  return std::move(out);
}

// grad_out (N, C, H, W) and input (N, K, OH, OW) in the conv's terms; weight (K, Cg, KH, KW).
template <typename T>
py::tuple conv_transpose2d_backward_typed(const ConvGeometry& g, const py::array& goa, const py::array& xa,
                                          const py::array& wa, std::array<bool, 3> needs) {
  Arr<T> go = contiguous<T>(goa), x = contiguous<T>(xa), w = contiguous<T>(wa);
  Arr<T> gx, gw, gb;
  if (needs[0]) gx = Arr<T>({g.N, g.K, g.OH, g.OW});
  if (needs[1]) gw = Arr<T>({g.K, g.Cg(), g.KH, g.KW});
  if (needs[2]) gb = Arr<T>({g.C});
  {
    py::gil_scoped_release release;
    conv_transpose2d_backward<T>(g, go.data(), x.data(), w.data(), needs[0] ? gx.mutable_data() : nullptr,
                                 needs[1] ? gw.mutable_data() : nullptr, needs[2] ? gb.mutable_data() : nullptr);
  }
  auto or_none = [](bool need, Arr<T>& a) -> py::object { return need ? py::object(a) : py::none(); };
  return py::make_tuple(or_none(needs[0], gx), or_none(needs[1], gw), or_none(needs[2], gb));
}

py::array conv2d_forward_py(py::object input, py::object weight, py::object bias, py::object stride,
                            py::object padding, py::object dilation, py::object groups) {
  const char* op = "conv2d";
  Checked c = check_operands(input, weight, op, "input");
  ConvGeometry g = conv2d_geometry(op, c.x, c.w, stride, padding, dilation, groups);
  return c.kind == Float::f32 ? conv2d_forward_typed<float>(g, c.x, c.w, bias, op)
                              : conv2d_forward_typed<double>(g, c.x, c.w, bias, op);
}

py::tuple conv2d_backward_py(py::object grad_out, py::object input, py::object weight, py::object stride,
                             py::object padding, py::object dilation, py::object groups, py::object needs) {
  const char* op = "conv2d_backward";
  Checked c = check_operands(input, weight, op, "input");
  std::array<bool, 3> nd = needs_arg(needs, op);
  ConvGeometry g = conv2d_geometry(op, c.x, c.w, stride, padding, dilation, groups);
  py::array go = as_array(grad_out, op, "grad_out");
  check_grad_out(op, c.x, go, {g.N, g.K, g.OH, g.OW});
  return c.kind == Float::f32 ? conv2d_backward_typed<float>(g, go, c.x, c.w, nd)
                              : conv2d_backward_typed<double>(g, go, c.x, c.w, nd);
}

py::array conv_transpose2d_forward_py(py::object input, py::object weight, py::object bias, py::object stride,
                                      py::object padding, py::object output_padding, py::object groups,
                                      py::object dilation) {
  const char* op = "conv_transpose2d";
  Checked c = check_operands(input, weight, op, "input");
  ConvGeometry g = transpose_geometry(op, c.x, c.w, stride, padding, output_padding, groups, dilation);
  return c.kind == Float::f32 ? conv_transpose2d_forward_typed<float>(g, c.x, c.w, bias, op)
                              : conv_transpose2d_forward_typed<double>(g, c.x, c.w, bias, op);
}

py::tuple conv_transpose2d_backward_py(py::object grad_out, py::object input, py::object weight, py::object stride,
                                       py::object padding, py::object output_padding, py::object groups,
                                       py::object dilation, py::object needs) {
  const char* op = "conv_transpose2d_backward";
  Checked c = check_operands(input, weight, op, "input");
  std::array<bool, 3> nd = needs_arg(needs, op);
  ConvGeometry g = transpose_geometry(op, c.x, c.w, stride, padding, output_padding, groups, dilation);
  py::array go = as_array(grad_out, op, "grad_out");
  check_grad_out(op, c.x, go, {g.N, g.C, g.H, g.W});
  return c.kind == Float::f32 ? conv_transpose2d_backward_typed<float>(g, go, c.x, c.w, nd)
                              : conv_transpose2d_backward_typed<double>(g, go, c.x, c.w, nd);
}

}  // namespace

void bind_conv(py::module_& m) {
  // Private: forces the algorithm choices (tests, tuning); no arguments restores the defaults.
  m.def("_conv_tuning", &conv_set_tuning, py::arg("tile_kb") = 0, py::arg("dot") = -1, py::arg("direct") = -1,
        py::arg("transposed") = -1, py::arg("padded") = -1, py::arg("implicit") = -1,
        py::arg("unpacked") = -1, py::arg("flipped") = -1, py::arg("winograd") = -1);
  auto needs_default = py::make_tuple(true, true, true);
  m.def("conv2d_forward", &conv2d_forward_py, py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(),
        py::arg("stride") = 1, py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1,
        R"doc(2-D convolution (cross-correlation): (N, C, H, W) -> (N, K, OH, OW).

weight (K, C/groups, KH, KW), bias (K,) or None; stride, dilation: int or pair; padding:
int, pair, 'same' (stride 1) or 'valid'. float32 or float64. See pydl.kernels.reference.)doc");
  m.def("conv2d_backward", &conv2d_backward_py, py::arg("grad_out"), py::arg("input"), py::arg("weight"),
        py::arg("stride") = 1, py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1,
        py::arg("needs") = needs_default,
        R"doc((grad_input, grad_weight, grad_bias) of conv2d_forward; None where needs (input, weight, bias) is False.)doc");
  m.def("conv_transpose2d_forward", &conv_transpose2d_forward_py, py::arg("input"), py::arg("weight"),
        py::arg("bias") = py::none(), py::arg("stride") = 1, py::arg("padding") = 0, py::arg("output_padding") = 0,
        py::arg("groups") = 1, py::arg("dilation") = 1,
        R"doc(Transposed 2-D convolution: (N, C, H, W) -> (N, K, HO, WO), weight (C, K/groups, KH, KW).)doc");
  m.def("conv_transpose2d_backward", &conv_transpose2d_backward_py, py::arg("grad_out"), py::arg("input"),
        py::arg("weight"), py::arg("stride") = 1, py::arg("padding") = 0, py::arg("output_padding") = 0,
        py::arg("groups") = 1, py::arg("dilation") = 1, py::arg("needs") = needs_default,
        R"doc((grad_input, grad_weight, grad_bias) of conv_transpose2d_forward; None where needs is False.)doc");
}

}  // namespace pydl
